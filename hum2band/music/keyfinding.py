"""The key of a sung melody: tonic and mode (major or minor) with a confidence.

Each of the 24 major and minor keys is scored from a few cues of the melody, and the best wins:

* how well the melody's pitch-class distribution (each note weighted by how long it is held)
  matches the key's profile, in the manner of Krumhansl and Schmuckler: correlation with the
  Kostka-Payne profiles of Temperley (2007) and with Albrecht and Shanahan's (2013), and the
  log-likelihood of the distribution under Temperley's profile read as probabilities. These
  profiles, counted on real music rather than probe-tone ratings, give the chromatic notes and the
  leading tone the low weight they have in melodies;
* where the melody comes to rest: whether its last note, the notes that end its phrases (before a
  breath) and its first note are the tonic or in the tonic triad;
* how much of the melody sits on the tonic itself.

The cues are combined linearly; the weights were fitted (conditional logistic regression over the
24 keys) on renditions of the development half of the benchmark (``benchmarks/rhythm_key.py
--fit-key``: Nottingham folk tunes and POP909 songs with even ids). The confidence is
``1 - exp(-margin)`` where the margin is the score difference between the best and second-best
key (a log-odds).
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
#: A silence (s) after a note longer than this ends a phrase.
PHRASE_GAP_S = 0.25

#: Names of the per-key cues, in order (see :func:`key_features`).
FEATURE_NAMES = (
    "corr_temperley", "corr_albrecht", "loglik_temperley", "final_tonic", "final_triad",
    "first_tonic", "first_triad", "phrase_end_tonic", "phrase_end_triad", "tonic_share", "is_minor",
)
#: Weights of :data:`FEATURE_NAMES` in a key's score.
KEY_WEIGHTS = np.array([3.730, 4.522, 4.110, 0.219, 0.201, -0.532, 1.328, 0.332, -0.357, 0.285, -0.110])


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
    return np.stack([np.roll(profile, t) for t in range(12)])


def _correlations(hist: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Pearson correlation of a distribution with each key's profile, shape (24,)."""
    out = []
    b = hist - hist.mean()
    for prof in (major, minor):
        a = _profile_matrix(prof)
        a = a - a.mean(axis=1, keepdims=True)
        out.append((a @ b) / (np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum()) + 1e-12))
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


def key_features(notes: Sequence[Note]) -> np.ndarray:
    """Cues for each of the 24 keys.

    Returns
    -------
    np.ndarray, shape (24, len(FEATURE_NAMES))
        Rows 0-11: C major ... B major; rows 12-23: C minor ... B minor.
    """
    notes = sorted(notes, key=lambda n: n.onset_s)
    hist = pitch_class_distribution(notes)
    pcs = np.mod(_snapped_midi(notes), 12)
    onset_s = np.array([n.onset_s for n in notes], dtype=float)
    offset_s = np.array([n.offset_s for n in notes], dtype=float)
    gap_after = np.append(onset_s[1:] - offset_s[:-1], np.inf)
    phrase_end = gap_after > PHRASE_GAP_S
    end_hist = np.bincount(pcs[phrase_end], minlength=12).astype(float)
    end_hist /= max(end_hist.sum(), 1.0)

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
    return f


def estimate_key(notes: Sequence[Note]) -> Key:
    """Estimate the key of a melody.

    Parameters
    ----------
    notes : sequence of Note
        Snapped notes (``midi`` set by :func:`hum2band.music.tuning.snap_notes`) or unsnapped ones
        (then the tuning is estimated here first).

    Returns
    -------
    Key
        ``tonic`` from :data:`PITCH_CLASS_NAMES`, ``mode`` ``"major"`` or ``"minor"``,
        ``confidence`` in 0-1. With no notes: C major, confidence 0.
    """
    if len(notes) == 0:
        return Key("C", "major", 0.0)
    score = key_features(notes) @ KEY_WEIGHTS
    order = np.argsort(score)[::-1]
    margin = float(score[order[0]] - score[order[1]])
    confidence = 1.0 - np.exp(-max(margin, 0.0))
    if len(set(np.mod(_snapped_midi(notes), 12))) < 3:
        confidence *= 0.5  # one or two pitch classes say little about a key
    mode = "major" if order[0] < 12 else "minor"
    return Key(PITCH_CLASS_NAMES[int(order[0] % 12)], mode, float(np.clip(confidence, 0.0, 1.0)))
