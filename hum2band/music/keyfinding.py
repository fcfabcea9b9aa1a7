"""The key of a sung melody: tonic and mode (major or minor) with a confidence.

Each of the 24 major and minor keys is scored from cues of the melody, and the best wins:

* how well the melody's pitch-class distribution (each note weighted by how long it is held)
  matches the key's profile, in the manner of Krumhansl and Schmuckler: correlation with the
  Kostka-Payne profiles of Temperley (2007) and with Albrecht and Shanahan's (2013), and the
  log-likelihood of the distribution under Temperley's profile read as probabilities. These
  profiles, counted on real music rather than probe-tone ratings, give the chromatic notes and the
  leading tone the low weight they have in melodies;
* where the melody comes to rest: whether its last note (and how long it is held), the notes that
  end its phrases (before a breath) and its first note are the tonic or in the tonic triad, and
  whether its lowest note is the tonic;
* how much of the melody sits on the tonic itself;
* the same distributions read per scale degree from the key's tonic (:data:`DEGREE_BLOCKS`), with a
  weight per degree and mode learned from data: how long each degree is held and whether it is
  heard at all, the degrees that end and start phrases, the last note, the long notes, and where
  semitone steps land (the leading tone rising to the tonic, fa falling to mi), which set a key
  apart from its dominant, its subdominant and its relative.

The cues are combined linearly (a score per key). The weights were fitted by conditional logistic
regression over the 24 keys (``python -m hum2band.train.keys``) on renditions of the train split
of POP909, Nottingham, OpenEWLD and chord-melody made to look like transcribed singing: excerpts
of 20-40 s and whole songs, at sung tempi, with onset jitter and lost, merged, split, scooped,
semitone- and octave-wrong notes, in every key. For the key-signature sources the target is the
pair {major key, relative minor} unless the last chord settles the mode (see that module). The
confidence is ``1 - exp(-margin)`` where the margin is the score difference between the best and
second-best key (a log-odds).

**Vote.** A note sung near the middle between two semitones, or a short note that one recording
keeps and another loses, can tip a close call between two keys (F or C major when the last note
sits half-way between C and C#). So :func:`estimate_key` averages the keys' probabilities
(softmax of the scores) over the notes and :data:`KEY_VOTE_COPIES` perturbed copies of them, in
which every note's pitch moves (1 sd :func:`vote_pitch_cents`) before it is named again, its
times by :data:`KEY_VOTE_JITTER_S`, and one note in twenty is left out: the key is the one that
holds up when the notes move as another recording of the same singing would move them. There are
enough copies that the vote has converged (its own random draws barely change it), so two
recordings that give nearly the same notes give nearly the same vote.
The confidence is then ``1 - p2 / p1`` of the two most probable keys (the same quantity on one
copy). The rhythm stage and the beat model read the key of the notes alone (``vote=False``),
as they were fitted.

Two things make the vote hold up when a take goes through a codec or the telephone band (issue
12), which moves the tuning estimate by about 5 cents (up to 15), a few notes' pitch by 5-40 cents
and gains, loses, splits or merges about one note in twelve:

* the pitch moves are as large as the singer's own doubt about the names: 0.8 times the take's
  spread of notes around its own semitone grid (1.4826 x the median distance; real singers of the
  SSVD takes 25 cents, so 20 cents; the validation renditions 10, the rhythm_key validation takes
  18), at least 10 cents. A singer far off the grid has many notes near the middle between two
  names, and with moves of 10 cents the 5 cents a codec moves them by swung the vote (SSVD take
  1078: one 0.34 s note moving from 9.6 to 3.6 cents above the middle moved the vote between its
  two best keys by 0.04);
* the draws are read off smooth random functions of the time since the first note
  (:func:`vote_draws`) rather than drawn in the order of the notes, so a note gained or lost
  leaves every other note's draws as they were instead of redrawing each copy after it.

Measured on notes transcribed (as at 73d3abe) from 24 SSVD takes (12 even ones to choose by, the
odd ones a check) under AAC, Opus, MP3, AMR-NB, telephone, pink noise 20 dB (and pink 10 dB, three
more draws of pink 20 dB, two rooms), key changed against the clean take: 22 -> 13 of 288 (even
takes 13 -> 8), telephone 2 -> 0 of 24 (1078 now reads F# major clean and through the telephone,
424 C major both); the key of the rhythm_key validation takes 97 -> 98 of 120 and of the validation
renditions of ``hum2band.train.keys`` 578 -> 577 of 726 (with 1.0 times the spread: 96 of 120; with
0.6: 98 of 120, 15 changes). Leaving short notes out more often (half of those under 0.15 s) read
96 of 120 and changed more keys: not done.

Since the take's tuning is read from the pitch each note settles on (:mod:`hum2band.music.tuning`),
the vote is given that tuning (``tuning_cents``) and names its copies on the grid the notes were
snapped to; named on the notes' own grid, which can lie across the quarter tone from it (SSVD 410:
+49 against -48), the copies changed the key on 47 of 360 conditioned SSVD takes instead of 26
(``benchmarks/robustness.py``). With it: 28 of 360; 1078 now reads Eb major through the telephone
(F# clean), a near tie.

**Tried and not kept (December 2026, issue 10's key column).** Measured on cached transcriptions
of ``benchmarks/rhythm_key.py``'s validation takes (180 and 360; the vote as shipped reads 0.822
and 0.778 of them):

* a learned correction on top of these scores: a small convolutional net over the notes (34,000
  parameters; each note's pitch class relative to each candidate tonic, its length, the phrase
  ends and starts, the steps to its neighbours), trained with the same set likelihood on 24,000
  and then 80,000 renditions made by ``hum2band.train.keys``. On that module's validation
  renditions it read 0.788 -> 0.830, but on the transcribed takes the notes alone 0.806 -> 0.800
  and 0.761 -> 0.772, and with the vote 0.822 -> 0.800 and 0.778 -> 0.775: it learned the
  renditions, not the singing;
* the weights refitted with 720 transcribed train-split takes added to the renditions (5 and
  20 times): with the vote 0.822 -> 0.828 and 0.778 -> 0.772 (a refit on the renditions alone:
  0.828 and 0.778).

Most misses are excerpts that sit in the song's dominant (a verse that ends on V, with #4 sung
and 4 absent) and POP909 minor songs read as their relative major; the label is the song's key.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .key import PITCH_CLASS_NAMES, Key
from .melody import Note

#: Temperley (2007) Kostka-Payne profiles, C major / C minor.
TEMPERLEY_MAJOR = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366,
                            0.057, 0.400])
TEMPERLEY_MINOR = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067,
                            0.133, 0.330])
#: Albrecht and Shanahan (2013) profiles, C major / C minor.
ALBRECHT_MAJOR = np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080,
                           0.008, 0.081])
ALBRECHT_MINOR = np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022,
                           0.061, 0.052])

#: A note counts as held at most this long (s) when weighing the distribution.
MAX_HOLD_S = 1.5
#: A silence (s) after a note longer than this ends a phrase (a ramp from 0.1 s below to 0.1 s
#: above).
PHRASE_GAP_S = 0.25

#: The key vote (see the module doc): perturbed copies, pitch change (cents, 1 sd; the least of
#: it: see KEY_VOTE_SPREAD), onset and offset shift (s, 1 sd), share of notes left out. 10 cents
#: is about how far a note's median pitch moves between two recordings of it. 200 copies, because
#: with 24 the key of 11 of 300 validation-split renditions depended on the vote's own random
#: draws (seeds 0-3), with 96 on 9, with 200 on 5, with 400 on 4 (draws then taken in the order of
#: the notes). On the validation split the vote read the key of 0.808 of the takes (0.796 without)
#: and of 0.792 -> 0.793 of 600 renditions (24 copies -> 200). (Moving all of a copy's notes
#: together as well, by the tuning estimate's own error of about 6 cents, read 0.788 of them, and
#: on the SSVD takes changed as many keys: not done.)
KEY_VOTE_COPIES = 200
KEY_VOTE_PITCH_CENTS = 10.0
#: A singer whose notes sit far from their own semitone grid leaves more of them in doubt: the
#: vote's pitch moves are KEY_VOTE_SPREAD times the take's own spread of the notes around the grid
#: (cents, 1.4826 x the median distance), at least KEY_VOTE_PITCH_CENTS (see the module doc).
KEY_VOTE_SPREAD = 0.8
KEY_VOTE_JITTER_S = 0.015
KEY_VOTE_DROP = 0.05
#: The draws are smooth random functions of time (:func:`vote_draws`): their correlation falls
#: off over KEY_VOTE_FIELD_S (s, shorter than the shortest note); KEY_VOTE_FIELD_TERMS cosines.
KEY_VOTE_FIELD_S = 0.05
KEY_VOTE_FIELD_TERMS = 16

#: A note held at least this many times the take's median hold counts as a long note (a ramp
#: from 0.3 below to 0.3 above).
LONG_NOTE = 1.5

#: Names of the scalar per-key cues, in order (see :func:`key_features`).
SCALAR_FEATURES = (
    "corr_temperley", "corr_albrecht", "loglik_temperley", "final_tonic", "final_triad",
    "first_tonic", "first_triad", "phrase_end_tonic", "phrase_end_triad", "tonic_share", "is_minor",
    "final_tonic_long", "lowest_tonic",
)
#: Cues given per scale degree (0 = tonic ... 11 = leading tone), one set for the major keys and
#: one for the minor keys, each a pitch-class distribution read from the key's tonic:
#: ``pc`` how long each pitch class is held (:func:`pitch_class_distribution`); ``heard`` its
#: square root (whether a pitch class is heard at all, more than how much); ``end`` the notes
#: that end a phrase (before a breath, and the last note) weighted by how long they are held;
#: ``last`` the last note; ``start`` the notes that start a phrase (the first note and those after
#: a breath); ``long`` the notes held longer than :data:`LONG_NOTE` times the median hold;
#: ``up`` / ``down`` where semitone steps up / down land (the leading tone resolving, fa to mi).
DEGREE_BLOCKS = ("pc", "heard", "end", "last", "start", "long", "up", "down")
#: Names of all per-key cues, in order: the scalar ones, then ``BLOCK_maj0`` ... ``BLOCK_min11``.
FEATURE_NAMES = SCALAR_FEATURES + tuple(
    f"{b}_{m}{d}" for b in DEGREE_BLOCKS for m in ("maj", "min") for d in range(12))

#: Weights of :data:`SCALAR_FEATURES` in a key's score (``python -m hum2band.train.keys``).
SCALAR_WEIGHTS = {
    "corr_temperley": 1.351, "corr_albrecht": 1.811, "loglik_temperley": 0.913,
    "final_tonic": 0.088, "final_triad": 0.101, "first_tonic": -0.104,
    "first_triad": 0.413, "phrase_end_tonic": -1.240, "phrase_end_triad": -0.048,
    "tonic_share": 3.368, "is_minor": -0.332, "final_tonic_long": 1.090,
    "lowest_tonic": 0.131,
}
#: Weights of the per-degree cues (:data:`DEGREE_BLOCKS`), per mode, degree 0 (the tonic) first.
#: Each block's cues add up to one (or zero) in every key, so a constant added to a block's
#: twelve weights of one mode only moves every key of that mode alike: only differences count.
DEGREE_WEIGHTS = {
    ("pc", "maj"): np.array([0.72, -3.32, 2.71, 5.05, 4.20, -5.42, -5.41, 5.95, 5.37, 4.73, 1.90, -3.77]),
    ("pc", "min"): np.array([4.13, -6.49, -4.22, 0.21, -4.96, 4.17, -0.66, 4.08, -5.03, -6.53, 5.19, -2.61]),
    ("heard", "maj"): np.array([3.92, -1.67, -0.33, -3.69, 4.44, 0.32, -2.39, 2.22, -1.63, 0.94, -7.10, 2.79]),
    ("heard", "min"): np.array([2.74, -4.20, 1.34, 5.51, -2.64, 1.67, -2.01, 5.34, -2.66, -4.59, 1.71, -0.00]),
    ("end", "maj"): np.array([1.25, 1.28, 0.24, 0.05, -0.10, 0.51, 0.59, -0.07, 0.02, -0.09, 1.12, 0.65]),
    ("end", "min"): np.array([0.26, 0.22, -0.16, -0.38, -0.86, -0.40, -1.18, -0.49, 0.04, -0.34, -0.68, -1.46]),
    ("last", "maj"): np.array([0.11, 0.21, 0.35, -0.11, 0.27, 0.08, 0.18, 0.10, 0.41, 0.28, -0.27, 0.39]),
    ("last", "min"): np.array([0.06, -0.44, 0.03, -0.17, -0.63, -0.21, -0.59, 0.09, -0.48, -0.49, 0.11, 0.71]),
    ("start", "maj"): np.array([0.88, 0.07, 0.79, 0.69, 1.01, 0.40, -0.32, 1.54, -0.13, 0.84, -0.58, 0.67]),
    ("start", "min"): np.array([0.11, -1.96, -0.10, -0.64, -1.02, -0.29, 0.90, 0.31, -0.78, -1.64, -0.32, -0.43]),
    ("long", "maj"): np.array([-0.63, 0.69, -0.36, 1.64, -2.03, 1.54, -1.17, -1.52, -0.06, -1.18, 3.87, -1.67]),
    ("long", "min"): np.array([-1.37, 3.30, -0.69, -1.49, -0.51, -2.12, 2.83, -1.53, 2.80, -0.01, -1.00, 0.68]),
    ("up", "maj"): np.array([4.03, -7.36, 1.67, -0.58, 8.93, 5.98, 10.29, -2.41, -5.02, 10.08, -8.71, 16.70]),
    ("up", "min"): np.array([-0.41, -9.22, 5.18, 5.08, -3.37, -7.46, -4.50, -1.28, 1.30, -8.38, 7.07, -17.60]),
    ("down", "maj"): np.array([-4.58, -3.17, -4.98, -2.07, 5.21, 10.07, -7.49, -0.16, 1.39, -4.55, 13.93, -1.85]),
    ("down", "min"): np.array([-5.10, 2.91, 9.61, 3.31, 6.44, 7.97, -3.95, 9.03, -4.44, -13.90, -9.59, -4.07]),
}
#: Weights of :data:`FEATURE_NAMES` in a key's score.
KEY_WEIGHTS = np.concatenate([[SCALAR_WEIGHTS[n] for n in SCALAR_FEATURES]]
                             + [DEGREE_WEIGHTS[b, m] for b in DEGREE_BLOCKS for m in ("maj", "min")])


def _snapped_midi(notes: Sequence[Note]) -> np.ndarray:
    """Snapped MIDI note per note; snaps with the estimated tuning if the notes are unsnapped."""
    midi = np.array([n.midi for n in notes], dtype=float)
    pitch = np.array([n.midi_pitch for n in notes], dtype=float)
    snapped = np.any(midi != 0) and np.all(np.abs(midi - pitch) < 1.0)
    if not snapped:
        from .tuning import estimate_tuning_cents

        midi = np.round(pitch - estimate_tuning_cents(notes) / 100.0)
    return midi.astype(int)


def _profile_matrix(profile: np.ndarray) -> np.ndarray:
    """Profile rotated to every tonic, shape (12 tonics, 12 pitch classes)."""
    return profile[(np.arange(12)[None, :] - np.arange(12)[:, None]) % 12]


def _correlations(hist: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Pearson correlation of a distribution with each key's profile, shape (24,)."""
    out = []
    b = hist - hist.mean()
    for prof in (major, minor):
        a = _profile_matrix(prof - prof.mean())  # every rotation has the same mean and spread
        out.append((a @ b) / (np.sqrt((a[0] ** 2).sum() * (b ** 2).sum()) + 1e-12))
    return np.concatenate(out)


def pitch_class_distribution(notes: Sequence[Note]) -> np.ndarray:
    """Duration-weighted pitch-class distribution of a melody.

    Returns
    -------
    np.ndarray, shape (12,)
        Weight per pitch class (0 = C), summing to 1; all zeros when there are no notes.
    """
    if len(notes) == 0:
        return np.zeros(12)
    notes = sorted(notes, key=lambda n: n.onset_s)
    pcs = np.mod(_snapped_midi(notes), 12)
    onset_s = np.array([n.onset_s for n in notes], dtype=float)
    offset_s = np.array([n.offset_s for n in notes], dtype=float)
    next_onset_s = np.append(onset_s[1:], offset_s[-1])
    hold_s = np.clip(np.maximum(offset_s - onset_s, next_onset_s - onset_s), 0.05, MAX_HOLD_S)
    hist = np.bincount(pcs, weights=hold_s, minlength=12)
    return hist / hist.sum()


#: Index (tonic, degree) -> pitch class: ``v[_DEGREES]`` reads a pitch-class vector from each tonic.
_DEGREES = (np.arange(12)[:, None] + np.arange(12)[None, :]) % 12


def _share(pcs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Normalized (weighted) pitch-class count, shape (12,); zeros when empty."""
    h = np.bincount(pcs, weights=weights, minlength=12).astype(float)
    return h / h.sum() if h.sum() > 0 else h


def key_features(notes: Sequence[Note]) -> np.ndarray:
    """Cues for each of the 24 keys.

    Returns
    -------
    np.ndarray, shape (24, len(FEATURE_NAMES))
        Rows 0-11: C major ... B major; rows 12-23: C minor ... B minor.
    """
    notes = sorted(notes, key=lambda n: n.onset_s)
    return _features(np.array([n.onset_s for n in notes], dtype=float),
                     np.array([n.offset_s for n in notes], dtype=float), _snapped_midi(notes))


def _features(onset_s: np.ndarray, offset_s: np.ndarray, midi: np.ndarray) -> np.ndarray:
    """:func:`key_features` of notes given as arrays in time order (shape (n_notes,) each; s, s,
    snapped MIDI)."""
    pcs = np.mod(midi, 12)
    next_onset_s = np.append(onset_s[1:], offset_s[-1])
    hold_s = np.clip(np.maximum(offset_s - onset_s, next_onset_s - onset_s), 0.05, MAX_HOLD_S)
    hist = hold_s @ (pcs[:, None] == np.arange(12))
    hist = hist / hist.sum()
    gap_after = np.append(onset_s[1:] - offset_s[:-1], np.inf)
    # how much a note ends a phrase: 0 up to a silence of PHRASE_GAP_S - 0.1 s after it, 1 from
    # PHRASE_GAP_S + 0.1 s (a ramp, so that a few ms of the transcription's timing change little)
    phrase_end = np.clip((gap_after - PHRASE_GAP_S + 0.1) / 0.2, 0.0, 1.0)
    phrase_start = np.insert(phrase_end[:-1], 0, 1.0)
    end_hist = _share(pcs, phrase_end)
    median_hold = float(np.median(hold_s))
    long_note = np.clip((hold_s / median_hold - LONG_NOTE + 0.3) / 0.6, 0.0, 1.0)
    step = np.diff(midi)

    tonic = np.concatenate([np.arange(12), np.arange(12)])
    third = np.concatenate([(np.arange(12) + 4) % 12, (np.arange(12) + 3) % 12])
    fifth = (tonic + 7) % 12
    triad = np.zeros((24, 12))
    triad[np.arange(24), tonic] = triad[np.arange(24), third] = triad[np.arange(24), fifth] = 1.0

    log_major = np.log(TEMPERLEY_MAJOR / TEMPERLEY_MAJOR.sum())
    log_minor = np.log(TEMPERLEY_MINOR / TEMPERLEY_MINOR.sum())
    loglik = np.concatenate([_profile_matrix(log_major) @ hist, _profile_matrix(log_minor) @ hist])
    f = np.zeros((24, len(FEATURE_NAMES)))
    f[:, 0] = _correlations(hist, TEMPERLEY_MAJOR, TEMPERLEY_MINOR)
    f[:, 1] = _correlations(hist, ALBRECHT_MAJOR, ALBRECHT_MINOR)
    f[:, 2] = loglik - loglik.max()
    f[:, 3] = tonic == pcs[-1]
    f[:, 4] = triad[:, pcs[-1]]
    f[:, 5] = tonic == pcs[0]
    f[:, 6] = triad[:, pcs[0]]
    f[:, 7] = end_hist[tonic]
    f[:, 8] = triad @ end_hist
    f[:, 9] = hist[tonic]
    f[12:, 10] = 1.0
    f[:, 11] = (tonic == pcs[-1]) * min(hold_s[-1] / median_hold, 4.0) / 4.0
    f[:, 12] = tonic == pcs[np.argmin(midi)]

    blocks = (
        hist,
        np.sqrt(hist),
        _share(pcs, hold_s * phrase_end),
        np.eye(12)[pcs[-1]],
        _share(pcs, phrase_start),
        _share(pcs, hold_s * long_note),
        np.bincount(pcs[1:][step == 1], minlength=12) / max(len(step), 1),
        np.bincount(pcs[1:][step == -1], minlength=12) / max(len(step), 1),
    )
    col = len(SCALAR_FEATURES)
    for v in blocks:
        rel = v[_DEGREES]
        f[:12, col:col + 12] = rel
        f[12:, col + 12:col + 24] = rel
        col += 24
    return f


def key_scores(notes: Sequence[Note]) -> np.ndarray:
    """Score of each key for these notes alone, shape (24,): C major ... B major, C minor ...
    B minor (a log-odds scale: the softmax is the keys' probabilities)."""
    return key_features(notes) @ KEY_WEIGHTS


def vote_draws(onset_s: np.ndarray, copies: int = KEY_VOTE_COPIES,
               seed: int = 0, pitch_cents: float = KEY_VOTE_PITCH_CENTS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random moves of the key vote's copies, read off smooth random functions of time.

    Each copy draws three random functions of the time since the first onset (a sum of
    :data:`KEY_VOTE_FIELD_TERMS` cosines with random frequencies and phases: normal at every
    instant, with a correlation that falls off over :data:`KEY_VOTE_FIELD_S`), and each note
    reads its pitch move, time move and whether it is kept at its own onset. So a note keeps its
    draws when another note is gained, lost, split or merged, and nearly keeps them when its
    onset moves by a few ms; draws that followed the notes' order (as before) redrew every copy
    after such a change.

    Parameters
    ----------
    onset_s : np.ndarray, shape (n_notes,)
        Onsets (s), in time order.
    copies : int
    seed : int
    pitch_cents : float
        1 sd of the pitch moves (:func:`vote_pitch_cents`).

    Returns
    -------
    d_pitch : np.ndarray, shape (copies, n_notes)
        Pitch moves, semitones (1 sd ``pitch_cents``).
    d_time : np.ndarray, shape (copies, n_notes)
        Onset and offset moves, s (1 sd :data:`KEY_VOTE_JITTER_S`).
    keep : np.ndarray of bool, shape (copies, n_notes)
        The notes kept: each is left out with probability :data:`KEY_VOTE_DROP`.
    """
    from scipy.special import ndtri

    onset_s = np.asarray(onset_s, dtype=float)
    t = onset_s - onset_s[0] if len(onset_s) else onset_s
    rng = np.random.default_rng(seed)
    freq = rng.normal(0.0, 1.0 / KEY_VOTE_FIELD_S, (3, copies, KEY_VOTE_FIELD_TERMS, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (3, copies, KEY_VOTE_FIELD_TERMS, 1))
    arg = (freq * t).astype(np.float32)  # float32: a third of the time, far finer than needed
    arg += phase.astype(np.float32)
    field = np.cos(arg, out=arg).sum(axis=2, dtype=np.float64)
    field *= np.sqrt(2.0 / KEY_VOTE_FIELD_TERMS)
    keep = field[2] >= ndtri(KEY_VOTE_DROP)
    return field[0] * pitch_cents / 100.0, field[1] * KEY_VOTE_JITTER_S, keep


def vote_pitch_cents(pitch: np.ndarray, tuning_cents: float) -> float:
    """How far (cents, 1 sd) the key vote moves each note's pitch: :data:`KEY_VOTE_SPREAD` times
    the notes' own spread around the singer's semitone grid (1.4826 x the median distance of
    ``pitch``, fractional MIDI, from the grid ``tuning_cents`` gives), at least
    :data:`KEY_VOTE_PITCH_CENTS`."""
    pitch = np.asarray(pitch, dtype=float)
    if len(pitch) == 0:
        return KEY_VOTE_PITCH_CENTS
    dev = pitch - tuning_cents / 100.0
    spread = 100.0 * 1.4826 * float(np.median(np.abs(dev - np.round(dev))))
    return max(KEY_VOTE_PITCH_CENTS, KEY_VOTE_SPREAD * spread)


def _vote_tuning(ordered: Sequence[Note], tuning_cents: float | None) -> float:
    """The semitone grid the vote names its copies' notes on, in semitones: ``tuning_cents``
    (the tuning the notes were snapped with) when given, else estimated from the notes."""
    from .tuning import estimate_tuning_cents

    return (estimate_tuning_cents(ordered) if tuning_cents is None else float(tuning_cents)) / 100.0


def perturbed_copies(notes: Sequence[Note], copies: int = KEY_VOTE_COPIES,
                     seed: int = 0, tuning_cents: float | None = None) -> list[list[Note]]:
    """The key vote's copies of a melody (:func:`vote_draws`): each note's pitch moved and named
    again on the melody's own semitone grid (``tuning_cents``, default: estimated from the notes),
    its onset and offset moved together, some notes left out; copies with no note left are not
    returned. (:func:`vote_probabilities` scores the same copies without building them.)"""
    from .tuning import copies_from_draws

    ordered = sorted(notes, key=lambda n: n.onset_s)
    if not ordered:
        return []
    tuning = _vote_tuning(ordered, tuning_cents)
    onset_s = np.array([n.onset_s for n in ordered], dtype=float)
    pitch = np.array([n.midi_pitch for n in ordered], dtype=float)
    draws = vote_draws(onset_s, copies, seed, vote_pitch_cents(pitch, 100.0 * tuning))
    return copies_from_draws(ordered, *draws, tuning)


def _softmax(score: np.ndarray) -> np.ndarray:
    p = np.exp(score - score.max())
    return p / p.sum()


def vote_probabilities(notes: Sequence[Note], copies: int = KEY_VOTE_COPIES,
                       seed: int = 0, tuning_cents: float | None = None) -> np.ndarray:
    """The keys' probabilities averaged over the notes and :func:`perturbed_copies` of them,
    shape (24,) (the rows of :func:`key_features`), summing to 1. ``tuning_cents``: the grid the
    copies' notes are named on (default: estimated from the notes); give the tuning the notes
    were snapped with, so that a copy's notes keep their names unless their pitch moves.

    The copies are scored from arrays (the same draws, :func:`vote_draws`), without building their
    notes: 200 copies cost about 70 ms; reading the draws off functions of time adds about 7 %
    for 40 notes and 19 % for 300 (a 2-minute take) to draws in the order of the notes.
    """
    ordered = sorted(notes, key=lambda n: n.onset_s)
    prob = _softmax(key_scores(ordered))
    onset_s = np.array([n.onset_s for n in ordered], dtype=float)
    offset_s = np.array([n.offset_s for n in ordered], dtype=float)
    pitch = np.array([n.midi_pitch for n in ordered], dtype=float)
    tuning = _vote_tuning(ordered, tuning_cents)
    d_pitch, d_time, keep = vote_draws(onset_s, copies, seed,
                                       vote_pitch_cents(pitch, 100.0 * tuning))
    for dp, dt, k in zip(d_pitch, d_time, keep):
        if not k.any():
            continue
        on = onset_s[k] + dt[k]
        order = np.argsort(on, kind="stable")  # as the notes of a copy would be sorted
        midi = np.round(pitch[k] + dp[k] - tuning).astype(int)
        off = offset_s[k] + dt[k]
        prob += _softmax(_features(on[order], off[order], midi[order]) @ KEY_WEIGHTS)
    return prob / prob.sum()


def estimate_key(notes: Sequence[Note], vote: bool = True,
                 tuning_cents: float | None = None) -> Key:
    """Estimate the key of a melody.

    Parameters
    ----------
    notes : sequence of Note
        Snapped notes (``midi`` set by :func:`hum2band.music.tuning.snap_notes`) or unsnapped ones
        (then the tuning is estimated here first).
    vote : bool
        Average the keys' probabilities over the notes and :func:`perturbed_copies` of them
        (default; see the module doc). False: the notes alone (what the rhythm stage and the beat
        model were fitted with).
    tuning_cents : float, optional
        The tuning the notes were snapped with (:func:`hum2band.music.tuning.snap_notes`): the
        vote names its copies' notes on that grid. Default: estimated from the notes' pitches,
        which is the same grid when the notes were snapped with that estimate.

    Returns
    -------
    Key
        ``tonic`` from :data:`PITCH_CLASS_NAMES`, ``mode`` ``"major"`` or ``"minor"``,
        ``confidence`` in 0-1. With no notes: C major, confidence 0.
    """
    if len(notes) == 0:
        return Key("C", "major", 0.0)
    score = (np.log(vote_probabilities(notes, tuning_cents=tuning_cents)) if vote
             else key_scores(notes))
    order = np.argsort(score)[::-1]
    margin = float(score[order[0]] - score[order[1]])
    confidence = 1.0 - np.exp(-max(margin, 0.0))
    if len(set(np.mod(_snapped_midi(notes), 12))) < 3:
        confidence *= 0.5  # one or two pitch classes say little about a key
    mode = "major" if order[0] < 12 else "minor"
    return Key(PITCH_CLASS_NAMES[int(order[0] % 12)], mode, float(np.clip(confidence, 0.0, 1.0)))
