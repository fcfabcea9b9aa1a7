"""The singer's beat: tempo, beats, downbeats and meter from the notes of a sung take.

A sung take has no click: the singer drifts, slows down at phrase ends and breathes, and the
transcribed onsets are 20-50 ms off, with some notes split, merged or missing. The estimate works
from the note onsets (and, optionally, an audio onset-strength curve) in four steps.

1. **Pulse candidates.** A salience-weighted histogram of the distances between all pairs of
   onsets (longer notes and notes after a breath weigh more) gives the most regular periods
   between 0.12 and 1.3 s; the two strongest are kept, plus half the faster one (sixteenths under
   syncopated melodies) when the histogram supports it.
2. **Pulse tracking.** For each candidate, dynamic programming over the onsets -- in the spirit of
   Ellis (2007), but over the sparse note onsets instead of an envelope -- finds the chain of
   pulses that hits the most salient onsets while every step stays close to the chain's own
   running period (so it follows drift and rubato) and not too far from the candidate period.
   Pulses fall on onsets or at equal steps between them; a light smoothing removes onset jitter.
3. **Metrical hypotheses.** On each track, every choice of beat = g pulses (g in 1/2, 1, 3/2, 2,
   3, 4) and meter (4/4, 3/4, 6/8) defines a sixteenth-note grid that bends with the pulses. Its
   bar phase is chosen first, among all grid shifts, by a phase score: the likelihood of which
   grid points carry onsets under the meter's onset-probability template per bar position; note
   lengths by position (long notes on strong beats); where phrases start (downbeat, or a pickup of
   a beat or an eighth -- the first note above all) and end; tonic-triad notes and leaps on the
   downbeat; the last note; how well each bar's notes fit one diatonic chord of the key
   (harmonic rhythm); and the **beat model** (:mod:`hum2band.listen.beats`, a small recurrent
   net over the notes trained on thousands of melodies with real bar lines): the mean
   log-probability it gives each onset's place in the beat under that phase -- the cue that
   tells the beat from the "and" of a syncopated pop melody. The hypothesis is then scored by that
   onset likelihood (templates are a mixture of styles: dense and sparse folk tunes, syncopated
   pop), the onsets' timing likelihood, the onsets no grid point explains, a tempo prior per
   meter (in 4/4 a slower one where the onsets fit the pop template best:
   :data:`POP_TEMPO_SLOPE`), melodic repetition at 1, 2 and 4 bars (the share of onset pairs that
   far apart that are the same note: it tells a 4/4 reel from the same eighth notes grouped as
   6/8), and whether downbeat and beat notes are held longer than the rest.
   The hypothesis score also reads the chosen bar phase: its phase score by the note cues, how
   sure they are against the other phases, the chord fit per bar and half bar, phrase starts,
   long notes and the first note on the downbeat; and the beat model's mean log-probabilities of
   the onsets' places in the beat and of their (meter, beat of the bar) on that grid, which
   weigh a tempo against its double or half and one meter against another.
4. **Vote.** Meter and tempo are voted on by the estimate on the notes and on 24 perturbed
   copies of them (onsets moved by 15 ms, one note in twenty left out, the same draws every
   time), the tempo first, whatever the meter, then the meter within it: a near tie between two
   readings is decided by the one that holds up when the onsets move the way another recording
   of the same singing moves them (a codec, a room), not by which onset happened to land a few
   milliseconds early.
5. **Result.** The best hypothesis of the voted meter and tempo gives the beats (its grid's beat
   points, which follow the singer), the downbeats and the meter; the tempo is the mean beat
   rate over the sung part. The confidences are posterior probabilities (softmax of the
   hypothesis scores) of the chosen meter and of the chosen tempo. In 4/4 the beats and the bar
   line are looked at again first (:func:`refine_phase`): whether the beats sit where the grid
   put them or half a beat away, by a beat model's place of each onset in the beat (the same
   net trained with more steps, ``models/beats-offset.pt``; with a little of the bar model's
   fit, :data:`BEAT_OFFSET_WEIGHTS`), and then, with the **bar model**
   (:mod:`hum2band.listen.bars`, a recurrent net that reads the melody laid on the chosen beats,
   one token per beat, trained on the same melodies), which of the four beats starts the bar.
   In 3/4 the beats and bar lines are instead those of the beat model's own bar-pointer path
   (:func:`hum2band.listen.beats.decode_rhythm`), held to the chosen meter and within 3 % of
   the chosen grid's tempo (:data:`MODEL_PATH_METERS`). Last, in 4/4 and 3/4, the beats are
   locked onto the melody beat by beat (:mod:`hum2band.listen.beat_lock`,
   :data:`LOCK_ANCHOR_WEIGHTS`): a dynamic programme over beat times, led by the grid's own
   tempo and (in 4/4) drawn to its beats, whose evidence is the beat-offset model's place of
   each onset in the beat, brings back a phrase where the grid's pulse drifted onto the "and";
   the bar lines keep the grid's count.

The onset templates and note-length profiles were counted, and the weights of both scores fitted
by conditional logistic regression (the correct hypothesis / bar phase among all), on the train
split of the corpora (POP909, Nottingham, OpenEWLD, chord-melody): six sets of 120 sung takes
(40 per meter family), synthesized, every second one through an AAC memo, and transcribed by the
listen stage -- the same path as the benchmark's, on songs it never uses
(``benchmarks/rhythm_key.py --fit-rhythm``). 6/8 is counted in two dotted-quarter beats per bar.
The 2/4 templates are older (counted on notes-path renditions of Nottingham and POP909). 2/4 is
never chosen (a melody alone cannot tell it from 4/4) but is honoured as an override.
Overrides: ``tempo_bpm`` makes the beat itself the tracked pulse (the beats still follow the
singer's drift), ``meter`` restricts the hypotheses to that meter. Bar-line fixes: ``downbeat_s``
(a time at which a bar starts) and ``pickup_beats`` (beats sung before bar 1) keep, on every
hypothesis, only the bar phases (to a sixteenth) that obey them best (:func:`fix_errors`), so a
grid on the "and" is moved onto the beat as well.

**Other readings.** Where the stage is wrong, a musician fixes it in one move, and the stage says
which moves to try (``Rhythm.other_readings``, :func:`other_readings`): the likeliest reading
with the beats elsewhere (half a beat away; in 6/8 an eighth) and every other bar line on the
chosen beats, likeliest first, each as a bar line in the take to give as ``downbeat_s``
(``--downbeat``). They are the readings :func:`refine_phase` weighed (:func:`phase_readings`),
ranked by the same scores, and measured from the bar lines the take ends up with
(:func:`placed_readings`); where the lock or the 3/4 path moved the beats away from the chosen
grid, that grid comes first (on 180 cached validation takes it is offered on about 7, and the
best of one move's downbeat F goes 0.840 -> 0.843). The meter stays as read (``--meter``).
``benchmarks/rhythm_key.py --one-move`` measures what one move gives. A take read at twice its tempo or in the wrong meter
needs the tempo or the meter instead, and the stage offers those too (``Rhythm.other_tempi``,
:func:`other_tempi`): the best hypothesis of each other reading -- another meter, or a tempo at
least :data:`OTHER_TEMPO_APART` from the others of its meter -- at most :data:`OTHER_TEMPI`,
likeliest first, each given as ``--meter`` and ``--tempo``. On cached transcriptions of
validation takes (rhythm stage only, three offered), of the takes read in the wrong tempo or
meter one offered reading put both right on 20 of 28 (180 takes; 16 by the first) and 33 of 44
(360 more; 32 by the first); the third never did, so two are offered. The best of the take as
read and of every offered move (tempo and meter right first, then beat phase, then downbeat F;
120 takes): validation split tempo 0.88 -> 0.97, meter 0.93 -> 0.97, beat phase right 0.90 ->
0.96, downbeat F 0.77 -> 0.83; test split 0.88 -> 0.97, 0.87 -> 1.00, 0.87 -> 0.93, 0.65 ->
0.76 (the syncopated POP909 takes' beat phase 0.64 -> 0.82, downbeat F 0.24 -> 0.45).

The beat model's four weights (its two features in the phase score, shared by every meter, and
in the hypothesis score) were chosen on the **validation split** (cached transcriptions of its
sung takes), the other weights kept: the model was trained on the train-split songs, so its
beliefs about them are surer than about a song it has never seen. ``beat_model=False`` leaves
the model out (the note cues alone). The model's own bar-pointer decoder choosing tempo and
meter too (:func:`hum2band.listen.beats.track_beats`) stays an alternative, benchmarked with
``benchmarks/rhythm_key.py --beat-model``; held to the chosen meter and tempo, its path gives
the beats and bar lines of 3/4 takes (:data:`MODEL_PATH_METERS`, where it says why not 6/8:
smoothing the path's beats over 0.5 s did not recover the 6/8 loss, so it is not the onsets'
jitter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import OptionError
from ..music.melody import Note
from ..music.key import Key, key_of_pitch_class
from ..music.meter import OtherReading, OtherTempo, Rhythm, beats_per_bar
from ..music.tuning import perturbed_copies as tuning_copies
from .bar_fix import check_bar_fix
from .beats import BAR_CLASSES, OFF_GRID, UNITS_PER_BEAT, NoteBeliefs, take_beliefs
from .beats import decode_rhythm, load_beat_model, load_offset_model, note_events
from .beats import METERS as MODEL_METERS

#: Onsets closer than this (s) are one event.
ONSET_MERGE_S = 0.05
#: A silence (s) longer than this separates phrases.
PHRASE_GAP_S = 0.25
#: Lag range (s) and resolution (bins per octave) of the onset-pair histogram.
LAG_MIN_S, LAG_MAX_S = 0.1, 1.6
LAG_BINS_PER_OCTAVE = 48
#: Pulse candidates are looked for in this range of periods (s).
PULSE_MIN_S, PULSE_MAX_S = 0.12, 1.3
#: A pulse at half the fastest candidate is tracked too when its onset-pair histogram reaches this
#: share of the strongest periodicity.
FINE_PULSE_MIN_ACF = 0.3
#: Pulse tracker: weight of the squared log ratio of a step to the chain's running period, and
#: to the period it was started with; how fast the running period adapts; longest jump (pulses).
TIGHTNESS = 10.0
ANCHOR = 4.0
PERIOD_ADAPT = 0.15
MAX_GAP_PULSES = 6.0
#: Width (s, 1 sd) over which tracked pulse times are smoothed.
PULSE_SMOOTH_S = 0.5
#: Meters the estimator chooses among.
METERS = ((4, 4), (3, 4), (6, 8))
#: Beat-per-pulse ratios tried on each tracked pulse.
BEAT_PER_PULSE = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
#: Hypotheses kept for the bar-phase stage (the best by their score before it).
MAX_PHASED_HYPOTHESES = 8
#: Counted-beat tempo range (bpm) of the hypotheses (an override may lie outside).
MIN_BPM, MAX_BPM = 36.0, 220.0
#: Two tempi within this ratio are the same tempo (for the tempo confidence and the vote).
SAME_TEMPO = 0.04
#: The meter and tempo are voted on by the estimates on the notes and on this many perturbed copies
#: of them (see :func:`voted_meter_tempo`): onsets moved by this much (s, 1 sd), notes left out
#: with this probability. 24 copies rather than 8: on a near tie the vote is itself a sample of
#: how often each reading holds up, and with 9 voters two recordings of the same singing could
#: land on either side of it. On 600 validation-split takes the choice changed nothing in
#: accuracy (tempo 0.870 -> 0.873, meter 0.907 -> 0.910, beat phase 0.852 -> 0.857), and
#: clean/AAC pairs of the validation benchmark changed tempo on 1 of 120 instead of 2. It costs
#: about 0.15 s more per take of 30 s. 48 copies moved more SSVD takes' tempo through the codecs,
#: not fewer (``benchmarks/robustness.py``: Opus and MP3 1 -> 2 of 24, December 2026).
ENSEMBLE_RUNS = 24
ENSEMBLE_JITTER_S = 0.015
ENSEMBLE_DROP = 0.05
#: The voted tempo is the densest part of the winning stretch of votes: the most votes within this
#: ratio of each other (twice :data:`SAME_TEMPO`; see :func:`voted_meter_tempo`). Neighbours
#: within 4 % chain a drifting singer's copies into one stretch, but the chain can reach far: SSVD
#: take 1201 (a singer drifting between about 56 and 64 bpm) gave one stretch of 54.5-63.9 bpm
#: through the telephone band, within which a hypothesis at 55.7 bpm outscored one at 63.3 by
#: 0.05 while 11 of the 16 votes lay within 8 % (58.6-62.6; clean: 63 bpm). With the core:
#: telephone tempo changed on 1 of 24 SSVD takes instead of 2 (``benchmarks/robustness.py``,
#: every other condition as before); on cached validation takes (rhythm stage only, 180 and 360)
#: every figure within 0.003 (one take's downbeat F 0.45 -> 0.08, its tempo already wrong).
VOTE_CORE_SPAN = 0.08

# ---- metrical templates --------------------------------------------------------------------------
#: Grid points per counted beat: sixteenths (4 per quarter, 6 per dotted quarter).
SUBDIVISIONS = {(4, 4): 4, (3, 4): 4, (6, 8): 6, (2, 4): 4}
#: Probability that a sixteenth-note grid point carries a note onset, per position in the bar
#: (position 0 = downbeat), per onset style. Counted on transcribed sung takes of the corpora's
#: train split against their known grid (``benchmarks/rhythm_key.py --fit-rhythm``, see the module
#: doc); 2/4 on the older notes-path renditions of Nottingham and POP909. A third 3/4 style counted
#: on POP909's pop waltzes (38 train takes) read no more of them as 3/4 on the validation takes and
#: lost tempo elsewhere (0.872 -> 0.861 and 0.906 -> 0.900): not kept.
ONSET_PROB = {
    (4, 4): (
        np.array([0.76, 0.11, 0.44, 0.09, 0.71, 0.06, 0.68, 0.08,
                  0.66, 0.11, 0.50, 0.07, 0.76, 0.08, 0.64, 0.12]),    # folk, dense
        np.array([0.74, 0.06, 0.15, 0.08, 0.51, 0.06, 0.21, 0.08,
                  0.56, 0.06, 0.15, 0.06, 0.56, 0.06, 0.23, 0.06]),    # folk, sparse
        np.array([0.68, 0.09, 0.44, 0.17, 0.52, 0.12, 0.46, 0.18,
                  0.55, 0.09, 0.43, 0.18, 0.53, 0.13, 0.50, 0.21]),    # pop
    ),
    (3, 4): (
        np.array([0.76, 0.09, 0.21, 0.04, 0.53, 0.05, 0.32, 0.04,
                  0.66, 0.08, 0.45, 0.07]),    # folk, dense
        np.array([0.76, 0.12, 0.03, 0.01, 0.31, 0.05, 0.09, 0.02,
                  0.66, 0.08, 0.09, 0.04]),    # folk, sparse
    ),
    (6, 8): (
        np.array([0.88, 0.06, 0.75, 0.04, 0.80, 0.07, 0.87, 0.05,
                  0.64, 0.04, 0.87, 0.07]),    # folk, dense
        np.array([0.80, 0.12, 0.30, 0.08, 0.64, 0.10, 0.71, 0.11,
                  0.37, 0.06, 0.73, 0.09]),    # folk, sparse
    ),
    (2, 4): (
        np.array([0.94, 0.10, 0.57, 0.10, 0.89, 0.08, 0.74, 0.09]),    # folk, dense
        np.array([0.89, 0.07, 0.08, 0.01, 0.66, 0.04, 0.18, 0.02]),    # folk, sparse
        np.array([0.69, 0.11, 0.43, 0.18, 0.53, 0.09, 0.52, 0.18]),    # pop
    ),
}
#: Mean log2 of a note's length (relative to the take's mean) by the bar position it starts on:
#: long notes start on strong positions. Same source as ONSET_PROB.
HOLD_PROFILE = {
    (4, 4): np.array([0.37, 0.26, -0.08, -0.12, 0.02, -0.14, -0.13, -0.08,
                      0.16, -0.06, -0.19, -0.19, -0.03, -0.20, -0.25, -0.25]),
    (3, 4): np.array([0.48, 0.46, -0.23, -0.25, 0.04, -0.06, -0.56, -0.52,
                      -0.21, -0.33, -0.59, -0.52]),
    (6, 8): np.array([0.30, 0.10, -0.11, -0.30, -0.15, -0.30, 0.23, 0.06,
                      -0.12, -0.29, -0.17, -0.34]),
    (2, 4): np.array([0.30, -0.05, -0.11, -0.29, -0.01, -0.34, -0.22, -0.32]),
}


#: Longest grid step (s): hypotheses with slow beats get grid levels below the sixteenth, each
#: point with onset probability FINER_ONSET_PROB.
MAX_STEP_S = 0.16
FINER_ONSET_PROB = 0.04
#: Rate (onsets/s) of onsets that no grid point explains (glide fragments, split notes, triplets).
BACKGROUND_RATE = 0.05
#: Onset timing error (s, 1 sd) around a grid point, and its part proportional to the pulse period.
TIMING_SD_S, TIMING_SD_REL = 0.035, 0.05


@dataclass
class Onsets:
    """Note onsets of a take with the accents that shape the meter.

    Attributes
    ----------
    time_s : np.ndarray, shape (n,)
    salience : np.ndarray, shape (n,)
        Accent weight, mean 1.
    hold_s : np.ndarray, shape (n,)
        Time to the next onset (the last: its duration), seconds.
    gap_before_s : np.ndarray, shape (n,)
        Silence before the note, seconds (first: inf).
    pitch : np.ndarray, shape (n,)
        Fractional MIDI pitch.
    end_s : float
        Offset of the last note.
    """

    time_s: np.ndarray
    salience: np.ndarray
    hold_s: np.ndarray
    gap_before_s: np.ndarray
    pitch: np.ndarray
    end_s: float


def onsets_from_notes(notes: Sequence[Note], onset_strength=None) -> Onsets:
    """The distinct note onsets of a take and their accents.

    Parameters
    ----------
    notes : sequence of Note
        Any order; notes with non-finite times or pitch are ignored.
    onset_strength : tuple of np.ndarray, optional
        ``(times_s, strength)``, both shape (n_frames,): an onset-strength curve of the audio
        (e.g. spectral flux). Where given, an onset's salience is scaled by the curve's value at
        the onset relative to its mean over all onsets (loudly attacked notes weigh more).

    Returns
    -------
    Onsets
        Onsets closer than :data:`ONSET_MERGE_S` are merged into the first. Salience grows with
        the square root of how long a note is held (relative to the median) and by 0.5 after a
        silence of more than :data:`PHRASE_GAP_S`; it is scaled to mean 1.
    """
    notes = [n for n in notes if np.isfinite(n.onset_s) and np.isfinite(n.offset_s)
             and np.isfinite(n.midi_pitch)]
    notes = sorted(notes, key=lambda n: n.onset_s)
    on = np.array([n.onset_s for n in notes], dtype=float)
    off = np.array([max(n.offset_s, n.onset_s) for n in notes], dtype=float)
    pitch = np.array([n.midi_pitch for n in notes], dtype=float)
    if len(on) == 0:
        empty = np.zeros(0)
        return Onsets(empty, empty, empty, empty, empty, 0.0)
    keep = np.ones(len(on), dtype=bool)
    last = -np.inf
    for i in range(len(on)):
        if on[i] - last < ONSET_MERGE_S:
            keep[i] = False
        else:
            last = on[i]
    idx = np.flatnonzero(keep)
    group_end = np.append(idx[1:], len(on))
    off_g = np.array([off[a:b].max() for a, b in zip(idx, group_end)])
    on, pitch = on[idx], pitch[idx]
    nxt = np.append(on[1:], off_g[-1])
    hold = np.maximum(nxt - on, 0.02)
    gap = np.concatenate([[np.inf], on[1:] - np.maximum.accumulate(off_g)[:-1]])
    med = float(np.median(hold))
    sal = np.sqrt(np.clip(hold / med, 0.25, 4.0)) + 0.5 * (gap > PHRASE_GAP_S)
    if onset_strength is not None:
        t_s, strength = (np.asarray(x, dtype=float) for x in onset_strength)
        if len(t_s) > 1 and len(t_s) == len(strength):
            at = np.maximum(np.interp(on, t_s, strength), 0.0)
            if at.mean() > 0:
                sal = sal * (0.5 + 0.5 * at / at.mean())
    sal = sal / max(float(np.mean(sal)), 1e-9)
    return Onsets(on, sal, hold, gap, pitch, float(off_g.max()))


# ---- periodicity ---------------------------------------------------------------------------------
def lag_grid() -> np.ndarray:
    """Log-spaced lags (s) from LAG_MIN_S to LAG_MAX_S, LAG_BINS_PER_OCTAVE per octave."""
    n = int(np.floor(np.log2(LAG_MAX_S / LAG_MIN_S) * LAG_BINS_PER_OCTAVE)) + 1
    return LAG_MIN_S * 2.0 ** (np.arange(n) / LAG_BINS_PER_OCTAVE)


def lag_histogram(ons: Onsets, jitter_s: float = 0.03, rel_sd: float = 0.03) -> np.ndarray:
    """Salience-weighted histogram of all onset-pair distances on :func:`lag_grid`."""
    grid = lag_grid()
    t, w = ons.time_s, ons.salience
    n = len(t)
    if n < 2:
        return np.zeros_like(grid)
    res = 0.005
    nb = int(LAG_MAX_S / res) + 2
    hist = np.zeros(nb)
    for k in range(1, n):
        d = t[k:] - t[:-k]
        ok = d < LAG_MAX_S
        if not ok.any():
            break
        hist += np.bincount(np.round(d[ok] / res).astype(int), weights=(w[k:] * w[:-k])[ok],
                            minlength=nb)[:nb]
    centers = np.arange(nb) * res
    span = max(ons.time_s[-1] - ons.time_s[0], 1e-3)
    hist *= span / np.maximum(span - centers, 0.25 * span)
    sd = np.sqrt(2 * jitter_s ** 2 + (rel_sd * grid) ** 2)
    kern = np.exp(-0.5 * ((centers[None, :] - grid[:, None]) / sd[:, None]) ** 2)
    kern /= kern.sum(axis=1, keepdims=True)
    return kern @ hist


def pulse_candidates(ons: Onsets, n: int = 2, lo_s: float = PULSE_MIN_S,
                     hi_s: float = PULSE_MAX_S) -> list[float]:
    """Pulse periods (s) to track: the ``n`` strongest peaks of the onset-pair histogram within
    [lo_s, hi_s] (weighted by a broad preference for about 0.45 s), strongest first, plus half
    the fastest of them when the histogram has a peak there too. Falls back to the median
    inter-onset interval when the histogram has no peak."""
    grid = lag_grid()
    acf = lag_histogram(ons)
    prior = np.exp(-0.5 * (np.log2(grid / 0.45) / 1.0) ** 2)
    v = acf * prior
    v[(grid < lo_s) | (grid > hi_s)] = 0.0
    peaks = np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] >= v[2:])) + 1
    peaks = peaks[np.argsort(v[peaks])[::-1]]
    out: list[float] = []
    for p in peaks:
        per = float(grid[p])
        if all(abs(np.log2(per / q)) > 0.1 for q in out):
            out.append(per)
        if len(out) >= n:
            break
    if not out:
        if len(ons.time_s) < 2:
            return []
        return [float(np.clip(np.median(np.diff(ons.time_s)), lo_s, hi_s))]
    # a finer pulse too (sixteenths under syncopated melodies), when the ACF shows one
    fine = 0.5 * min(out)
    if fine >= lo_s:
        i = int(np.argmin(np.abs(grid - fine)))
        lo_i, hi_i = max(i - 3, 0), min(i + 4, len(v))
        j = lo_i + int(np.argmax(acf[lo_i:hi_i]))
        if acf[j] >= FINE_PULSE_MIN_ACF * acf[(grid >= lo_s) & (grid <= hi_s)].max():
            out.append(float(grid[j]))
    return out


# ---- pulse tracking ------------------------------------------------------------------------------
def dp_pulse(ons: Onsets, period_s: float) -> np.ndarray:
    """Pulse times (s) through the onsets by dynamic programming, following tempo drift.

    A pulse falls on an onset or, between two onsets it connects, at equal steps. The best chain
    maximises the salience of the onsets it hits minus, for every step, ``TIGHTNESS`` times the
    squared log ratio of the step to the chain's own running period (so it follows drift and
    rubato) plus ``ANCHOR`` times the squared log ratio to ``period_s`` (so it keeps its level).
    In the spirit of Ellis (2007), but over the sparse note onsets instead of envelope frames.
    """
    t, sal = ons.time_s, ons.salience
    n = len(t)
    score = np.zeros(n)
    back = -np.ones(n, dtype=int)
    steps = np.zeros(n, dtype=int)
    per = np.full(n, period_s)
    log_p0 = np.log(period_s)
    min_step = 0.5 * period_s
    window = MAX_GAP_PULSES * period_s
    lo_idx = np.searchsorted(t, t - window)
    hi_idx = np.searchsorted(t, t - min_step, side="right")  # predecessors: [lo, hi)
    can_start = t <= t[0] + 2.0 * period_s
    log_per = np.full(n, log_p0)
    for j in range(1, n):
        lo, hi = lo_idx[j], hi_idx[j]
        if hi <= 0:
            score[j] = sal[j]
            continue
        if lo >= hi:
            lo = hi - 1  # a long rest: jump from the last onset before it
        d = t[j] - t[lo:hi]
        k = np.maximum(np.round(d / per[lo:hi]), 1.0)
        ls = np.log(d / k)
        pen = k * (TIGHTNESS * (ls - log_per[lo:hi]) ** 2 + ANCHOR * (ls - log_p0) ** 2)
        val = score[lo:hi] - pen
        b = int(np.argmax(val))
        if can_start[j] and val[b] < 0:
            score[j] = sal[j]
            continue
        i = lo + b
        score[j] = sal[j] + val[b]
        back[j] = i
        steps[j] = int(k[b])
        per[j] = (1.0 - PERIOD_ADAPT) * per[i] + PERIOD_ADAPT * d[b] / k[b]
        log_per[j] = np.log(per[j])
    tail = np.flatnonzero(t >= t[-1] - 1.5 * period_s)
    j = int(tail[np.argmax(score[tail])])
    chain = [j]
    while back[chain[-1]] >= 0:
        chain.append(back[chain[-1]])
    chain = chain[::-1]
    out = [t[chain[0]]]
    for a, b in zip(chain[:-1], chain[1:]):
        k = steps[b]
        out.extend(t[a] + (t[b] - t[a]) * np.arange(1, k + 1) / k)
    return np.asarray(out)


def track_pulse(ons: Onsets, period_s: float) -> np.ndarray:
    """Pulse times (s) at about ``period_s`` that follow the singer, covering all onsets."""
    t = dp_pulse(ons, period_s)
    t = smooth_pulses(t, PULSE_SMOOTH_S)
    p0 = float(np.median(np.diff(t))) if len(t) > 1 else period_s
    lo, hi = ons.time_s[0] - 1.5 * p0, ons.end_s + 1.5 * p0
    t = t[(t >= lo) & (t <= hi)]
    if len(t) < 2:
        t = np.arange(lo, hi, period_s)
    p_first = float(np.median(np.diff(t[:5])))
    n_before = int(np.floor((t[0] - lo) / p_first))
    p_last = float(np.median(np.diff(t[-5:])))
    n_after = int(np.floor((hi - t[-1]) / p_last))
    return np.concatenate([t[0] - p_first * np.arange(n_before, 0, -1), t,
                           t[-1] + p_last * np.arange(1, n_after + 1)])


def smooth_pulses(t: np.ndarray, width_s: float) -> np.ndarray:
    """Gaussian moving average of pulse times over about ``width_s`` (1 sd): removes the jitter
    a tracker picks up from individual onsets and keeps the tempo curve (linear trends exactly)."""
    if len(t) < 5:
        return t
    p = float(np.median(np.diff(t)))
    sd = max(width_s / p, 0.5)
    r = int(np.ceil(2.5 * sd))
    k = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (k / sd) ** 2)
    w /= w.sum()
    # extend linearly at both ends so the average is unbiased there
    n_fit = min(len(t), 4)
    p_head = (t[n_fit - 1] - t[0]) / (n_fit - 1)
    p_tail = (t[-1] - t[-n_fit]) / (n_fit - 1)
    head = t[0] + p_head * np.arange(-r, 0)
    tail = t[-1] + p_tail * np.arange(1, r + 1)
    ext = np.concatenate([head, t, tail])
    return np.convolve(ext, w, mode="valid")


# ---- metrical hypotheses -------------------------------------------------------------------------
@dataclass
class Track:
    """A tracked pulse and what every hypothesis on it shares.

    Attributes
    ----------
    pulses_s : np.ndarray, shape (k,)
        Pulse times, seconds.
    onset_u : np.ndarray, shape (n,)
        Onsets in pulse units (pulse index, fractional): drift and rubato removed.
    pair_du : np.ndarray, shape (n_pairs,)
        Distances in pulse units of onset pairs up to a few bars apart, sorted.
    pair_match_cum : np.ndarray, shape (n_pairs + 1,)
        Running count, in that order, of pairs whose notes match (same pitch, similar length):
        melodic repetition.
    """

    pulses_s: np.ndarray
    onset_u: np.ndarray
    pair_du: np.ndarray
    pair_match_cum: np.ndarray

    @property
    def period_s(self) -> float:
        return float(np.median(np.diff(self.pulses_s)))


@dataclass
class Hypothesis:
    """Beat = ``beat_per_pulse`` pulses of a track, a meter, and the bar phase."""

    meter: tuple
    beat_per_pulse: float
    steps_per_beat: int
    shift: int  # grid point j has bar position (j + shift) % (steps_per_beat * beats_per_bar)
    features: np.ndarray
    track: Track
    score: float = 0.0
    phase_features: np.ndarray | None = None
    phase_model: str = ""
    pending: tuple | None = None  # what choose_phase needs

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / (self.beat_per_pulse * self.track.period_s)


#: Names of the hypothesis features, in order (see :func:`hypotheses_on_track`).
FEATURE_NAMES = (
    "onset_ll", "timing_ll", "background", "is_3/4", "is_6/8",
    "z_4/4", "z2_4/4", "z_3/4", "z2_3/4", "z_6/8", "z2_6/8",
    "repeat_1bar", "repeat_2bar", "repeat_4bar", "hold_downbeat", "hold_beat",
    "phase_best", "phase_sure", "bar_chord_fit", "half_bar_chord_fit", "start_downbeat",
    "long_downbeat", "first_downbeat", "model_place", "model_bar", "z_4/4_pop",
)
#: The column of ``z_4/4_pop``: log2(tempo / 100 bpm) of a 4/4 hypothesis whose onsets fit the
#: pop template best, else 0 (weighted by :data:`POP_TEMPO_SLOPE`).
POP_TEMPO_COLUMN = FEATURE_NAMES.index("z_4/4_pop")
#: Features of :data:`FEATURE_NAMES` read from the chosen bar phase's features
#: (:data:`PHASE_FEATURE_NAMES`): (hypothesis feature index, phase feature index).
FROM_PHASE = ((0, 0), (14, 1), (15, 2), (18, 9), (19, 10), (20, 3), (21, 15), (22, 17), (23, 21),
              (24, 22))


def make_track(ons: Onsets, pulses_s: np.ndarray, max_lag_pulses: float) -> Track:
    """Put the onsets on a pulse track (pulse units) and collect the onset pairs up to
    ``max_lag_pulses`` apart for the repetition cue."""
    k = np.arange(len(pulses_s), dtype=float)
    u = np.interp(ons.time_s, pulses_s, k)
    end_u = float(np.interp(ons.end_s, pulses_s, k))
    hold_u = np.maximum(np.diff(np.append(u, end_u)), 1e-3)
    pitch = np.round(ons.pitch)
    du_list, match_list = [], []
    n = len(u)
    for lag in range(1, n):
        du = u[lag:] - u[:-lag]
        ok = du <= max_lag_pulses
        if not ok.any():
            break
        same = (pitch[lag:] == pitch[:-lag]) & (np.abs(np.log2(hold_u[lag:] / hold_u[:-lag])) < 0.4)
        du_list.append(du[ok])
        match_list.append(same[ok])
    pair_du = np.concatenate(du_list) if du_list else np.zeros(0)
    pair_match = np.concatenate(match_list).astype(float) if match_list else np.zeros(0)
    order = np.argsort(pair_du)
    return Track(pulses_s, u, pair_du[order], np.concatenate([[0.0], np.cumsum(pair_match[order])]))


def _repetition(track: Track, lags_u: Sequence[float], tol_u: float) -> np.ndarray:
    """Share of onset pairs about ``lag`` apart whose notes match, minus the share at any lag."""
    du, cum = track.pair_du, track.pair_match_cum
    if len(du) == 0:
        return np.zeros(len(lags_u))
    base = cum[-1] / len(du)
    lags = np.asarray(lags_u, dtype=float)
    lo = np.searchsorted(du, lags - tol_u)
    hi = np.searchsorted(du, lags + tol_u)
    n = hi - lo
    share = (cum[hi] - cum[lo]) / np.maximum(n, 1)
    return np.where(n >= 3, share - base, 0.0)


def _onset_grid(ons: Onsets, track: Track, step_u: float):
    """Assign onsets to the nearest grid point (every ``step_u`` pulses).

    Returns the first grid index, number of grid points, filled mask per point, summed timing
    log-likelihood of the filled points, number of onsets left to the background, and the grid
    index of every onset (-1 when background).
    """
    k = np.arange(len(track.pulses_s), dtype=float)
    u = track.onset_u
    j = np.round(u / step_u).astype(int)
    ju = j * step_u
    period = np.interp(ju, k[:-1] + 0.5, np.diff(track.pulses_s))
    dev = ons.time_s - np.interp(ju, k, track.pulses_s)
    sd = np.sqrt(TIMING_SD_S ** 2 + (TIMING_SD_REL * period) ** 2)
    ll_t = -0.5 * (dev / sd) ** 2 - np.log(np.sqrt(2 * np.pi) * sd)
    j0 = int(j.min())
    n_pts = int(j.max()) - j0 + 1
    best = np.full(n_pts, -np.inf)
    np.maximum.at(best, j - j0, ll_t)
    filled = best > np.log(BACKGROUND_RATE)
    owner = np.where((ll_t >= best[j - j0]) & filled[j - j0], j, -1)
    n_bg = len(u) - int(filled.sum())
    return j0, n_pts, filled, float(best[filled].sum()), n_bg, owner


#: Names of the per-shift (bar phase) features, in order (see :func:`hypotheses_on_track`).
PHASE_FEATURE_NAMES = (
    "onset_ll", "hold_downbeat", "hold_beat", "start_downbeat", "phrase_end_downbeat",
    "phrase_end_beat", "triad_downbeat", "leap_downbeat", "last_note_downbeat", "bar_chord_fit",
    "half_bar_chord_fit", "hold_profile", "start_last_beat", "start_last_eighth", "start_other_beat",
    "long_downbeat", "long_mid_bar", "first_downbeat", "first_last_beat", "first_last_eighth",
    "first_other_beat", "model_place", "model_bar",
)
#: The first of the beat model's columns in :data:`PHASE_FEATURE_NAMES`.
MODEL_PHASE_COLUMN = PHASE_FEATURE_NAMES.index("model_place")
#: Weights of :data:`PHASE_FEATURE_NAMES` in a bar phase's score, per meter and, for 4/4, per
#: style (see :func:`phase_model`): syncopated pop melodies place their beats differently.
#: Refitted in December 2026 with the beat model read and its columns frozen (720 train takes,
#: L2 3e-3 and 1e-2 on the change), they lost on cached validation takes (beat phase 0.900 ->
#: 0.878 and 0.928 -> 0.906, 4/4 POP909 0.883 -> 0.783 on the second set): not kept.
PHASE_WEIGHTS = {
    "4/4 folk": np.array([
        1.232, 0.479, 0.751, 1.420, 0.616, -0.226, 0.387, -0.013, -0.306, 0.236, 0.550, 0.437,
        1.263, 0.901, -0.042, 0.832, 0.546, 2.188, 1.217, 0.771, 0.294, 0.500, 0.000
    ]),
    "4/4 pop": np.array([
        3.111, 0.185, 1.041, -0.413, 2.359, -1.475, 0.317, 0.849, 0.389, -0.823, -0.270, 1.331,
        0.131, -2.471, 0.595, 0.098, -0.127, 1.334, 0.203, 1.073, -1.163, 0.500, 0.000
    ]),
    "3/4": np.array([
        0.504, -0.299, -0.014, 0.354, 0.233, 0.479, 0.056, -0.786, 0.121, 0.436, 0.436, 0.811,
        0.842, 0.194, 0.195, 3.012, 0.000, 1.165, 0.034, -0.370, -0.143, 0.500, 0.000
    ]),
    "6/8": np.array([
        1.924, -0.007, 2.928, 1.219, 0.812, -0.748, 0.124, 0.346, -1.401, 0.518, 0.336, 0.676,
        -0.249, 1.097, 0.000, 0.860, -0.551, 1.886, -0.706, 0.266, 0.000, 0.500, 0.000
    ]),
}

@dataclass
class NoteCues:
    """Per-onset cues for the bar phase, shape (n,) each."""

    log_hold: np.ndarray      # log2 of the time to the next onset (s)
    phrase_start: np.ndarray  # 1 after a silence
    phrase_end: np.ndarray    # 1 before a silence, and the last note
    triad: np.ndarray         # 1 when the pitch class is in the tonic triad of the key
    leap: np.ndarray          # |interval| from the previous note, semitones (capped at 7)
    pitch_class: np.ndarray   # 0-11 (absolute)
    chords: np.ndarray        # the key's diatonic triads as pitch-class indicator rows, (7, 12)


def note_cues(ons: Onsets, tonic_pc: int, minor: bool) -> NoteCues:
    """Per-onset cues for the bar phase, given the key (tonic pitch class 0-11, minor or not)."""
    n = len(ons.time_s)
    gap_after = np.append(ons.gap_before_s[1:], np.inf)
    pc = np.mod(np.round(ons.pitch).astype(int) - tonic_pc, 12)
    triad = np.isin(pc, (0, 3 if minor else 4, 7)).astype(float)
    leap = np.minimum(np.abs(np.diff(ons.pitch, prepend=ons.pitch[:1] if n else ons.pitch)), 7.0)
    return NoteCues(np.log2(np.maximum(ons.hold_s, 0.02)), (ons.gap_before_s > PHRASE_GAP_S) * 1.0,
                    (gap_after > PHRASE_GAP_S) * 1.0, triad, leap,
                    np.mod(np.round(ons.pitch).astype(int), 12), diatonic_triads(tonic_pc, minor))


@dataclass
class OnsetBeliefs:
    """The beat model's beliefs (:mod:`hum2band.listen.beats`) about each onset of a take.

    Attributes
    ----------
    log_place : np.ndarray, shape (n, UNITS_PER_BEAT + 1)
        Log-probability of the onset's place in the beat, in twelfths of a beat (last column:
        off the grid -- a split note, a glide).
    log_bar : np.ndarray, shape (n, len(BAR_CLASSES))
        Log-probability of (meter, beat of the bar), jointly.
    """

    log_place: np.ndarray
    log_bar: np.ndarray


def model_beliefs(notes: Sequence[Note], key: Key | None = None
                  ) -> tuple[np.ndarray, NoteBeliefs] | None:
    """The beat model's beliefs about a take's distinct onsets: (onset times (s), beliefs), or
    None with fewer than 3 onsets. Loads ``models/beats.pt`` once. ``key``: see
    :func:`hum2band.listen.beats.take_beliefs`."""
    return _onset_beliefs_of(notes, key, None)


def offset_model_beliefs(notes: Sequence[Note], key: Key | None = None
                         ) -> tuple[np.ndarray, NoteBeliefs] | None:
    """:func:`model_beliefs` of the beat-offset note model (``models/beats-offset.pt``,
    :func:`hum2band.listen.beats.load_offset_model`), which the 4/4 beat-offset look reads."""
    return _onset_beliefs_of(notes, key, load_offset_model())


def _onset_beliefs_of(notes: Sequence[Note], key: Key | None, model
                      ) -> tuple[np.ndarray, NoteBeliefs] | None:
    """(onset times (s), beliefs) of a note model (None: the default, ``models/beats.pt``)."""
    out = take_beliefs(notes, model=model, key=key)
    if out is None:
        return None
    ev, bel = out
    return ev.onset_s, bel


def place_log_prob_on_grid(beliefs: tuple[np.ndarray, NoteBeliefs], beats_s: np.ndarray,
                           steps_per_beat: int) -> float:
    """Mean over the believed onsets of the log-probability of the place in the beat a grid of
    beats gives them.

    Parameters
    ----------
    beliefs : (np.ndarray, NoteBeliefs)
        Onset times (s), shape (n,), and the note model's beliefs about them
        (:func:`model_beliefs`, :func:`offset_model_beliefs`).
    beats_s : np.ndarray
        The grid's beats (s), at least 2; continued beyond its ends at the end beats' period.
    steps_per_beat : int
        The grid's steps per beat: each onset is read at its nearest step, a step that is not
        a whole twelfth of a beat as "off the grid" (as :data:`PHASE_FEATURE_NAMES`'
        ``model_place``).

    Returns
    -------
    float
    """
    from .bars import grid_positions

    onset_s, bel = beliefs
    u = grid_positions(np.asarray(onset_s, dtype=float), np.asarray(beats_s, dtype=float))
    exact, col = _place_columns(np.round(u * steps_per_beat).astype(int), steps_per_beat)
    off = bel.log_place[:, OFF_GRID]
    on_grid = np.logaddexp(bel.log_place[np.arange(len(u)), col], off)
    return float(np.mean(np.where(exact, on_grid, off)))


def _place_columns(step: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """For grid steps (``d`` a beat): whether each falls on a whole twelfth of the beat, and the
    note model's place column it reads (:data:`OFF_GRID` where it does not)."""
    twelfths = np.mod(step, d) * UNITS_PER_BEAT / d
    exact = np.abs(twelfths - np.round(twelfths)) < 1e-6
    return exact, np.where(exact, np.round(twelfths).astype(int) % UNITS_PER_BEAT, OFF_GRID)


def onset_beliefs(ons: Onsets, beliefs: tuple[np.ndarray, NoteBeliefs]) -> OnsetBeliefs:
    """:func:`model_beliefs` for each onset of ``ons``: those of the nearest believed onset in time
    (the same onsets when both come from the same notes; a perturbed copy of the notes borrows
    the beliefs about the original's)."""
    times, bel = beliefs
    times = np.asarray(times, dtype=float)
    j = np.clip(np.searchsorted(times, ons.time_s), 1, max(len(times) - 1, 1))
    left = np.clip(j - 1, 0, len(times) - 1)
    right = np.clip(j, 0, len(times) - 1)
    pick = np.where(np.abs(ons.time_s - times[left]) <= np.abs(times[right] - ons.time_s), left, right)
    return OnsetBeliefs(bel.log_place[pick], bel.log_bar[pick])


def _model_by_position(bel: OnsetBeliefs, own: np.ndarray, q_len: int, d: int,
                       meter) -> tuple[np.ndarray, np.ndarray] | None:
    """Log-probabilities, per owned onset and bar position (grid step), of that onset's place in
    the beat and of its (meter, beat of the bar) at that position, shapes (n_own, q_len) each;
    None for a meter the model does not know. A position finer than a twelfth of a beat reads
    the model's "off the grid"."""
    m = tuple(meter)
    if m not in MODEL_METERS:
        return None
    mi = MODEL_METERS.index(m)
    q = np.arange(q_len)
    exact, col = _place_columns(q, d)
    lp = bel.log_place[own]
    off = lp[:, OFF_GRID:OFF_GRID + 1]
    place = np.where(exact[None, :], np.logaddexp(lp[:, col], off), off)
    bar_col = np.array([BAR_CLASSES.index((mi, int(b))) for b in q // d])
    return place, bel.log_bar[own][:, bar_col]


#: Bar phases (the best by the other phase cues) for which the chord fit is computed.
CHORD_FIT_SHIFTS = 6
#: Diatonic triads as (root, third, fifth) in semitones above the tonic: I ii iii IV V vi in major;
#: i III iv v V VI VII in minor.
MAJOR_KEY_TRIADS = ((0, 4, 7), (2, 5, 9), (4, 7, 11), (5, 9, 0), (7, 11, 2), (9, 0, 4))
MINOR_KEY_TRIADS = ((0, 3, 7), (3, 7, 10), (5, 8, 0), (7, 10, 2), (7, 11, 2), (8, 0, 3), (10, 2, 5))


def diatonic_triads(tonic_pc: int, minor: bool) -> np.ndarray:
    """The key's diatonic triads as pitch-class indicator rows, shape (n_triads, 12)."""
    triads = MINOR_KEY_TRIADS if minor else MAJOR_KEY_TRIADS
    t = np.zeros((len(triads), 12))
    for i, tri in enumerate(triads):
        t[i, [(tonic_pc + x) % 12 for x in tri]] = 1.0
    return t


def _chord_fit_by_shift(pos: np.ndarray, pc: np.ndarray, weight: np.ndarray, shifts: np.ndarray,
                        seg_len: int, chords: np.ndarray) -> np.ndarray:
    """For each shift, the mean over segments (bars) of the largest share of note weight one
    chord covers. ``pos``: grid index of each note (>= 0). Returns shape (len(shifts),)."""
    n_sh = len(shifts)
    if len(pos) == 0 or n_sh == 0:
        return np.zeros(n_sh)
    seg = (pos[None, :] + np.asarray(shifts)[:, None]) // seg_len
    n_seg = int(seg.max()) + 1
    row = np.arange(n_sh)[:, None]
    idx = ((row * n_seg + seg) * 12 + pc[None, :]).ravel()
    hist = np.bincount(idx, weights=np.broadcast_to(weight, seg.shape).ravel(),
                       minlength=n_sh * n_seg * 12).reshape(n_sh, n_seg, 12)
    tot = hist.sum(axis=2)
    fit = (hist @ chords.T).max(axis=2) / np.maximum(tot, 1e-9)
    wts = np.sqrt(tot)
    return (fit * wts).sum(axis=1) / np.maximum(wts.sum(axis=1), 1e-9)


def phase_model(meter, style: int) -> str:
    """Key of :data:`PHASE_WEIGHTS` for a meter and the index of its best-fitting onset style."""
    m = tuple(meter)
    if m in ((4, 4), (2, 4)):
        return "4/4 pop" if style == len(ONSET_PROB[m]) - 1 else "4/4 folk"
    return f"{m[0]}/{m[1]}"


def _phase_features(cues: NoteCues, owner: np.ndarray, q_len: int, d: int, ll_shift: np.ndarray,
                    n_on: int, beat_s: float, meter, extra: int, weights: np.ndarray,
                    beliefs: OnsetBeliefs | None = None) -> np.ndarray:
    """Per-shift phase features, shape (q_len, len(PHASE_FEATURE_NAMES)).

    ``owner``: grid index of each onset's grid point (-1: background); shift ``s`` puts grid
    point ``j`` at bar position ``(j + s) % q_len``. ``beliefs``: the beat model's, per onset
    (the last two features stay 0 without them).
    """
    own = owner >= 0
    f = np.zeros((q_len, len(PHASE_FEATURE_NAMES)))
    f[:, 0] = ll_shift / n_on
    if not own.any():
        return f
    p0 = np.mod(owner[own], q_len)
    rel_hold = cues.log_hold[own] - np.log2(beat_s)

    def per_pos(x):
        return np.bincount(p0, weights=x, minlength=q_len)

    cnt = per_pos(np.ones(len(p0)))
    shifts = np.arange(q_len)
    down = (-shifts) % q_len  # unshifted position that is the downbeat under each shift
    beat_mask = ((np.arange(q_len)[None, :] + shifts[:, None]) % d) == 0  # (shift, p)

    def mean_at_down(x):
        sx = per_pos(x)
        return np.where(cnt[down] > 0, sx[down] / np.maximum(cnt[down], 1), np.mean(x) if len(x) else 0)

    def mean_at_beats(x):
        sx = per_pos(x)
        c = beat_mask @ cnt
        return np.where(c > 0, (beat_mask @ sx) / np.maximum(c, 1), np.mean(x) if len(x) else 0)

    def share_at_down(x):
        sx = per_pos(x)
        return sx[down] / max(float(x.sum()), 1.0)

    f[:, 1] = mean_at_down(rel_hold) - rel_hold.mean() if len(p0) else 0.0
    f[:, 2] = mean_at_beats(rel_hold) - rel_hold.mean() if len(p0) else 0.0
    f[:, 4] = share_at_down(cues.phrase_end[own])
    pe = cues.phrase_end[own]
    f[:, 5] = (beat_mask @ per_pos(pe)) / max(float(pe.sum()), 1.0)
    tri = cues.triad[own]
    f[:, 6] = mean_at_down(tri) - (tri.mean() if len(tri) else 0.0)
    lp = cues.leap[own]
    f[:, 7] = (mean_at_down(lp) - (lp.mean() if len(lp) else 0.0)) / 7.0
    if own[-1]:
        f[:, 8] = (down == np.mod(owner[-1], q_len)).astype(float)
    # note lengths against the meter's profile of lengths by position
    prof16 = HOLD_PROFILE[tuple(meter)]
    prof = np.full(q_len, float(prof16.min()))
    prof[:: 2 ** extra] = prof16
    centred = rel_hold - rel_hold.mean() if len(rel_hold) else rel_hold
    hs = per_pos(centred)  # (p,)
    pos_idx = (np.arange(q_len)[None, :] + shifts[:, None]) % q_len  # (shift, p) -> bar position
    f[:, 11] = (prof[pos_idx] @ hs) / max(len(p0), 1)
    # phrases (the first note, and every note after a breath) start on the downbeat or with a
    # short pickup: where do they start under each shift?
    starts = own & ((cues.phrase_start > 0) | (np.arange(len(owner)) == 0))
    if starts.any():
        ps = np.bincount(np.mod(owner[starts], q_len), minlength=q_len).astype(float)
        ps /= ps.sum()
        sub = d // 2 if SUBDIVISIONS[tuple(meter)] == 4 else d // 3  # steps per eighth
        cat = np.full(q_len, -1)
        cat[np.arange(0, q_len, d)] = 3          # another beat
        cat[q_len - sub] = 2                     # the last eighth of the bar
        cat[q_len - d] = 1                       # the last beat of the bar
        cat[0] = 0                               # the downbeat
        pos_cat = cat[pos_idx]                   # (shift, p)
        for c, col in ((0, 3), (1, 12), (2, 13), (3, 14)):
            f[:, col] = ((pos_cat == c) * ps[None, :]).sum(axis=1)
        if own[0]:  # the first note on its own: the take starts a phrase
            first_cat = pos_cat[:, int(np.mod(owner[0], q_len))]
            for c, col in ((0, 17), (1, 18), (2, 19), (3, 20)):
                f[:, col] = first_cat == c
    # the longest notes (held 1.5 beats or more): on the downbeat, or in the middle of the bar?
    long_note = rel_hold >= np.log2(1.5)
    if long_note.any():
        lc = np.bincount(p0[long_note], minlength=q_len).astype(float) / long_note.sum()
        f[:, 15] = lc[down]
        bpb = q_len // d
        if bpb % 2 == 0:
            f[:, 16] = lc[(down + q_len // 2) % q_len]
    # the beat model: how likely, by the melody around it, is each onset's place in the beat and
    # beat of the bar under each shift (mean log-probability over the onsets on the grid)
    by_pos = None if beliefs is None else _model_by_position(beliefs, own, q_len, d, meter)
    if by_pos is not None:
        at = (p0[None, :] + shifts[:, None]) % q_len  # (shift, onset) -> bar position
        rows = np.arange(len(p0))[None, :]
        f[:, 21] = by_pos[0][rows, at].mean(axis=1)
        f[:, 22] = by_pos[1][rows, at].mean(axis=1)
    # harmonic rhythm: with the right bar lines each bar's notes fit one chord better. Only for
    # the most likely shifts (the rest get the lowest value found), to save time.
    top = np.argsort(f @ weights)[-CHORD_FIT_SHIFTS:]
    pcs = cues.pitch_class[own]
    w = np.minimum(2.0 ** rel_hold, 2.0)
    o = owner[own] - int(owner[own].min()) + int(owner[own].min()) % q_len
    half = q_len // 2 if (q_len // d) % 2 == 0 else q_len
    for col, seg_len in ((9, q_len), (10, half)):
        fit = _chord_fit_by_shift(o, pcs, w, top, seg_len, cues.chords)
        f[:, col] = fit.min()
        f[top, col] = fit
    return f


def hypotheses_on_track(ons: Onsets, track: Track, meters, ratios, cues: NoteCues,
                        bpm_range: tuple[float, float] = (MIN_BPM, MAX_BPM)) -> list[Hypothesis]:
    """Every (beat per pulse, meter) hypothesis on a track with its features
    (:data:`FEATURE_NAMES`), before its bar phase is chosen (see :func:`choose_phase`)."""
    out = []
    n_on = max(len(ons.time_s), 1)
    for g in ratios:
        beat_s = g * track.period_s
        bpm = 60.0 / beat_s
        if not (bpm_range[0] <= bpm <= bpm_range[1]):
            continue
        for m in meters:
            d0 = SUBDIVISIONS[m]
            if abs(g - round(g)) > 1e-6 and d0 != 6:
                continue  # 1.5 pulses per beat only makes sense for a compound beat
            # finer levels until a grid step is short enough, so every hypothesis has about
            # the same number of grid points per second
            extra = max(0, int(np.ceil(np.log2(beat_s / d0 / MAX_STEP_S))))
            d = d0 * 2 ** extra
            bpb = beats_per_bar(m)
            q_len = d * bpb
            j0, n_pts, filled, ll_timing, n_bg, owner = _onset_grid(ons, track, g / d)
            pos = (np.arange(n_pts) + j0) % q_len
            f_cnt = np.bincount(pos[filled], minlength=q_len).astype(float)
            e_cnt = np.bincount(pos[~filled], minlength=q_len).astype(float)
            idx = (np.arange(q_len)[:, None] + np.arange(q_len)[None, :]) % q_len  # (q, shift)
            per_style = []
            for pi16 in ONSET_PROB[m]:
                pi = np.full(q_len, FINER_ONSET_PROB)
                pi[:: 2 ** extra] = pi16
                pi = np.clip(pi, 0.01, 0.99)
                per_style.append(f_cnt @ np.log(pi)[idx] + e_cnt @ np.log1p(-pi)[idx])
            per_style = np.array(per_style)
            top = per_style.max(axis=0)
            ll_s = top + np.log(np.mean(np.exp(per_style - top), axis=0))
            model = phase_model(m, int(np.argmax(per_style.max(axis=1))))
            shift = int(np.argmax(ll_s))
            bar_u = g * bpb
            rep = _repetition(track, (bar_u, 2 * bar_u, 4 * bar_u), tol_u=0.25 * g / d0)
            z = np.log2(bpm / 100.0)
            mi = {(4, 4): 0, (3, 4): 1, (6, 8): 2}.get(m, 0)
            tempo_f = np.zeros(6)
            tempo_f[2 * mi], tempo_f[2 * mi + 1] = z, z * z
            f = np.concatenate([
                [ll_s[shift] / n_on, ll_timing / n_on, n_bg / n_on, float(mi == 1), float(mi == 2)],
                tempo_f, rep, np.zeros(len(FEATURE_NAMES) - 14)])
            if m == (4, 4) and model == "4/4 pop":  # see POP_TEMPO_SLOPE
                f[POP_TEMPO_COLUMN] = z
            h = Hypothesis(m, g, d, shift, f, track, phase_model=model)
            h.pending = (owner, q_len, ll_s, beat_s, extra)
            out.append(h)
    return out


def choose_phase(h: Hypothesis, ons: Onsets, cues: NoteCues, downbeat_s: float | None = None,
                 pickup_beats: float | None = None, beliefs: OnsetBeliefs | None = None) -> None:
    """Compute a hypothesis' phase features for all shifts, choose its bar phase and complete its
    features (onset likelihood and note lengths at that phase). A bar-line fix (``downbeat_s``,
    ``pickup_beats``) keeps only the shifts that obey it best (see :func:`fix_errors`)."""
    owner, q_len, ll_s, beat_s, extra = h.pending
    n_on = max(len(ons.time_s), 1)
    w = PHASE_WEIGHTS[h.phase_model]
    pf = _phase_features(cues, owner, q_len, h.steps_per_beat, ll_s, n_on, beat_s, h.meter,
                         extra, w, beliefs)
    score = pf @ w
    if downbeat_s is not None or pickup_beats is not None:
        err = fix_errors(h, q_len, float(ons.time_s[0]), downbeat_s, pickup_beats)
        score = np.where(err <= err.min() + 1e-6, score, -np.inf)
    h.shift = int(np.argmax(score))
    for i, k in FROM_PHASE:
        h.features[i] = pf[h.shift, k]
    # how well the chosen bar phase explains the melody by the note cues alone (the beat model's
    # say enters the hypothesis score through its own two features), and how sure they are of it
    cues_only = np.where(np.isfinite(score), pf[:, :MODEL_PHASE_COLUMN] @ w[:MODEL_PHASE_COLUMN],
                         -np.inf)
    top = float(cues_only[h.shift])
    h.features[16] = top / 10.0
    h.features[17] = -float(np.log(np.sum(np.exp(cues_only[np.isfinite(cues_only)] - top))))
    h.phase_features = pf
    h.pending = None


def fix_errors(h: Hypothesis, q_len: int, first_onset_s: float, downbeat_s: float | None,
               pickup_beats: float | None) -> np.ndarray:
    """How far each bar phase (shift) of a hypothesis is from a bar-line fix, shape (q_len,):
    the distance (s) from ``downbeat_s`` to the nearest downbeat of the grid, plus the distance
    (in grid steps) from the first note to where ``pickup_beats`` puts it before a bar line."""
    err = np.zeros(q_len)
    keep = h.shift
    step = h.beat_per_pulse / h.steps_per_beat
    for sh in range(q_len):
        h.shift = sh
        beats, downs = _grid_times(h)
        if downbeat_s is not None:
            err[sh] += float(np.min(np.abs(downs - downbeat_s))) if len(downs) else np.inf
        if pickup_beats is not None:
            # the first note's place in the grid, in steps, counted back from the next bar line
            u_first = float(np.interp(first_onset_s, h.track.pulses_s,
                                      np.arange(len(h.track.pulses_s), dtype=float))) / step
            j = int(np.round(u_first))
            to_bar = (-(j + sh)) % q_len
            want = int(round(float(pickup_beats) * h.steps_per_beat)) % q_len
            err[sh] += abs(to_bar - want)
    h.shift = keep
    return err


def _grid_times(h: Hypothesis) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat times (s) of a hypothesis: its grid over the pulses, from a beat at or
    before the first note to the end of the track."""
    d = h.steps_per_beat
    bpb = beats_per_bar(h.meter)
    pulses = h.track.pulses_s
    k_last = len(pulses) - 1
    step = h.beat_per_pulse / d
    u_first = min(0.0, float(np.floor(h.track.onset_u[0])) - h.beat_per_pulse)
    j = np.arange(int(np.ceil(u_first / step - 1e-9)), int(np.floor(k_last / step + 1e-9)) + 1)
    u = j * step
    t = np.interp(u, np.arange(len(pulses), dtype=float), pulses)
    before = u < 0  # extrapolate at the first pulse period
    t[before] = pulses[0] + u[before] * (pulses[1] - pulses[0])
    pos = np.mod(j + h.shift, d * bpb)
    return t[pos % d == 0], t[pos == 0]


#: Weight of the bar model (:mod:`hum2band.listen.bars`) per meter against a phase's score by
#: the note cues (:data:`PHASE_WEIGHTS`) when the chosen grid's bar line is looked at again
#: (:func:`refine_phase`): its mean log-probability of the bar lines. Chosen on the validation
#: split (600 sung renditions): in 4/4 the model moves the bar line to the right beat more often
#: than away from it (downbeat F 0.499 -> 0.529); in 3/4 and 6/8 the note cues already find the
#: bar line of nearly every take whose beats are right, and the model's say lost there (6/8
#: downbeat F 0.774 -> 0.740 at weight 1), so it is not read.
#: Harmony beside it was tried in December 2026 and is not read: a key-free chord HMM on the grid
#: (24 triads; the chance of a chord change on each beat of the bar, 0.76 on beat 1 and 0.38 on
#: beat 3 in 4/4, and each note's interval to the chord by its place, counted on the train
#: split's lead sheets) found the bar line of clean 8-bar validation excerpts in 4/4 about as
#: often as the bar model (POP909 0.66 against 0.64, both 0.66), and added to the bar model's
#: score it gained nothing on cached validation takes (4/4 downbeat F 0.578 at weights 1, 3 and
#: 20, 0.574 at 60). Nor is the harmony transformer (``models/harmony.pt``): its confidence in
#: the chords it would write on a grid (mean max log-probability, or negative entropy, every
#: previous chord hidden) placed the true 4/4 bar line of cached validation takes above the other
#: three on 11 and 9 of 30 POP909 takes, and preferred the true beats to the half-shifted ones on
#: 23 and 21 of 30 (the beat-offset model: 78-89 %).
BAR_MODEL_WEIGHTS = {(4, 4): 1.0}

#: Where the beats of the chosen grid sit, looked at again before its bar line
#: (:func:`refine_phase`), per meter: on the hypothesis' own beats or half a beat away, whichever
#: scores best by (weight of the beat model's place in the beat -- the mean log-probability of
#: each onset's place in the beat, :data:`PHASE_FEATURE_NAMES`' ``model_place`` --, weight of
#: the bar model's fit -- its mean log-odds that the grid's beats are the melody's,
#: :func:`hum2band.listen.bars.grid_fit`). In a syncopated melody as many notes start on the
#: "and" as on the beat, and the onset grid's phase score, which weighs where the first note and
#: the phrases start, put the beats on the "and" of a quarter of the pop takes; the beat model,
#: which reads each note's place from the melody around it, tells the two apart better. Chosen on
#: transcribed takes of the train split (720, ``benchmarks/rhythm_key.py``'s audio path), checked
#: on the validation split (180): 4/4 beat phase right 0.754 -> 0.792 (syncopated 0.607 ->
#: 0.679) and 0.800 -> 0.817 (0.641 -> 0.692), downbeat F over all takes 0.690 -> 0.694 and
#: 0.744 -> 0.748. The place alone read 0.783 / 0.800; with the phase score (0.1) beside it
#: 0.787 / 0.800. In 6/8 (a third of a beat either way) it lost on the validation takes (downbeat
#: F over all 0.748 -> 0.735), so 6/8 keeps its beats; the bar-pointer path places the 3/4 beats.
#: Reproduced by ``benchmarks/rhythm_key.py --choose-beat-offset --fit-reps 4 --n-per-meter 60``
#: (the takes read as 4/4; train 260, another validation set 67): beat phase right 0.708 ->
#: 0.750 (syncopated 0.576 -> 0.667) and 0.687 -> 0.701; fit weights 0.05 and 0.1 tie on train,
#: 0.3 and 1 read less.
#: Since December 2026 the place in the beat is read from the beat-offset note model
#: (``models/beats-offset.pt``, :func:`offset_model_beliefs`, :func:`place_log_prob_on_grid`):
#: the same net trained for the same budget with 2.4 times the steps, whose place head tells a
#: syncopated melody's beat from its "and" better but whose bar head lost 3/4 and 6/8 when the
#: hypotheses read it, so it is read here only. Cached transcriptions (rhythm stage only; shipped
#: model -> offset model): validation, 180 takes (seed 1000): beat phase right 0.872 -> 0.878,
#: syncopated 0.692 -> 0.744, beat F 0.820 -> 0.826, downbeat F 0.751 -> 0.746; validation, 360
#: more takes (seeds 1001-1002): 0.886 -> 0.908, syncopated 0.654 -> 0.756, 4/4 0.767 -> 0.833,
#: beat F 0.798 -> 0.810, downbeat F 0.735 -> 0.737; train, 720 takes: 0.872 -> 0.874, syncopated
#: 0.696 -> 0.708, downbeat F 0.695 -> 0.699. Tempo and meter do not move (they are chosen
#: before). The weights stay as chosen with the shipped model's place head. Reading both note
#: models' places (the shipped one's added at 0.5 and 1) lost on the second validation set (beat
#: phase right 0.928 -> 0.925 -> 0.922, 4/4 from other sources 0.900 -> 0.867): not kept.
#: In 6/8 it was tried again with the lock in place (December 2026; weights (1, 0), offsets of a
#: third of a beat): with the shipped model's place, 6/8 beat phase right on cached validation
#: takes 0.883 -> 0.900 (60) but 0.900 -> 0.850 (120); with a note model trained on 6/8 songs only
#: (``--meters 6/8 --best-by place``; place right per onset 0.86 on 6/8 validation excerpts after
#: 13 minutes, the run stopped there) 0.883 -> 0.917 early in the run and 0.900 -> 0.883, then
#: 0.850, later. Given the true beats of the 120, the 6/8 model prefers them to the beats a third
#: away on 110 and the shipped model on 109: a jig's steady eighths read either way. The 6/8
#: model's lock (:data:`LOCK_ANCHOR_WEIGHTS`, pull 1 and 0.3) lost as the shipped model's did
#: (6/8 beat phase right 0.883 -> 0.850 and 0.900 -> 0.875 at both).
BEAT_OFFSET_WEIGHTS = {(4, 4): (1.0, 0.1)}

#: Meters whose beats and bar lines are those of the beat model's bar-pointer path
#: (:func:`hum2band.listen.beats.decode_rhythm`) held to the chosen meter and to within
#: :data:`MODEL_PATH_TEMPO_STEPS` 3 % steps of the chosen grid's tempo, rather than the chosen
#: grid's own: the onset grid chooses the tempo and the meter (the beat model alone gets the
#: tempo right less often), the model places the beats and the bar lines on the notes. Chosen on
#: the validation split: in 3/4 the bar lines gained on its notes (``benchmarks/rhythm_key.py
#: --split validation --from-notes --n-per-meter 150``, 450 renditions: tempo 0.93 -> 0.95,
#: downbeat F 0.81 -> 0.85) and on its audio (120 takes: downbeat F 0.79 -> 0.84, beat F
#: 0.88 -> 0.86). In 6/8 it gained on the notes (beat phase 0.76 -> 0.83) but lost on the audio
#: (beat F 0.83 -> 0.70, downbeat F 0.83 -> 0.64, tempo 0.93 -> 0.85): on steady-eighth jigs the
#: path slips an eighth for stretches. In 4/4 it gained as much as it lost on the notes (beat
#: phase 0.77 -> 0.79, tempo 0.79 -> 0.78), so 4/4 keeps the grid and the bar model's bar line
#: (:data:`BAR_MODEL_WEIGHTS`). Six 3 % steps either side (the decoder's default) lost tempo
#: (4/4 0.79 -> 0.75): the path skipped or added a beat in a phrase.
MODEL_PATH_METERS = ((3, 4),)
MODEL_PATH_TEMPO_STEPS = 1


@dataclass
class PhaseReading:
    """One way to lay a chosen hypothesis' grid on the take: its bar phase (``shift``), how far
    the beats sit from the hypothesis' own (``offset_steps`` grid steps), and the two scores the
    stage ranks readings by: where the beats sit (``offset_score``) first, then the bar line
    (``bar_score``) among the readings with those beats."""

    shift: int
    offset_steps: int
    offset_score: float
    bar_score: float


def phase_readings(h: Hypothesis, notes: Sequence[Note], tonic_pc: int, minor: bool,
                   bar_weight: float | None = None, offset_weights: tuple | None = None,
                   model=None, place_beliefs=None) -> list[PhaseReading]:
    """Every reading of the hypothesis' grid that :func:`refine_phase` weighs: the beats on the
    hypothesis' own beats or a fraction of a beat away (half a beat; a third or two thirds in
    6/8), each with every bar line on those beats.

    Scores, as :func:`refine_phase` describes them, where the meter has weights
    (:data:`BEAT_OFFSET_WEIGHTS`, :data:`BAR_MODEL_WEIGHTS`) and the beat model is read;
    otherwise by the phase score of the note cues alone (``offset_score``: the best phase score
    with those beats). The hypothesis is left as it was."""
    from .bars import bar_log_probs, downbeat_scores, grid_features, grid_fit, load_bar_model
    from .bars import token_log_probs

    m = tuple(h.meter)
    bar_weight, offset_weights = _look_weights(m, bar_weight, offset_weights)
    if h.phase_features is None:
        return []
    d = h.steps_per_beat
    bpb = beats_per_bar(h.meter)
    q_len = d * bpb
    base = h.phase_features @ PHASE_WEIGHTS[h.phase_model]
    sub = d // 3 if SUBDIVISIONS.get(m) == 6 else d // 2
    offsets = [0] + ([sub, 2 * sub] if SUBDIVISIONS.get(m) == 6 else [sub])
    keep = h.shift
    if not _reads_models(m, bar_weight, offset_weights):
        out = []
        for o in offsets:
            shifts = [(keep - o + k * d) % q_len for k in range(bpb)]
            top = max(float(base[s]) for s in shifts)
            out += [PhaseReading(s, o, top, float(base[s])) for s in shifts]
        return out
    model = model or load_bar_model()
    if not offset_weights:
        offsets = [0]
    on = np.array([n.onset_s for n in notes])
    off = np.array([n.offset_s for n in notes])
    pitch = np.array([n.midi_pitch for n in notes])
    if offset_weights and place_beliefs is None:  # the beat-offset model's, where the beats sit
        key = key_of_pitch_class(tonic_pc, "minor" if minor else "major")
        place_beliefs = offset_model_beliefs(notes, key)
    out = []
    try:
        for o in offsets:
            h.shift = (keep - o) % q_len
            beats, _ = _grid_times(h)
            if len(beats) < 2:
                continue
            tokens = grid_features(on, off, pitch, beats, tonic_pc, minor, h.meter)
            lp = token_log_probs(model, tokens)
            score = 0.0
            if offset_weights:
                place = (h.phase_features[h.shift, MODEL_PHASE_COLUMN] if place_beliefs is None
                         else place_log_prob_on_grid(place_beliefs, beats, d))
                score = offset_weights[0] * place + offset_weights[1] * grid_fit(lp)
            bar = downbeat_scores(bar_log_probs(lp, h.meter))
            for k in range(bpb):
                h.shift = (keep - o + k * d) % q_len
                b2, downs = _grid_times(h)
                if not len(downs):
                    continue
                i0 = int(np.argmin(np.abs(b2 - downs[0])))
                out.append(PhaseReading(h.shift, o, float(score), float(
                    base[h.shift] + bar_weight * bar[(i0 - tokens.first_beat) % bpb])))
    finally:
        h.shift = keep
    return out


def _look_weights(meter, bar_weight: float | None, offset_weights: tuple | None
                  ) -> tuple[float, tuple | None]:
    """The second look's weights (:func:`refine_phase`): those given, else the meter's
    (:data:`BAR_MODEL_WEIGHTS`, :data:`BEAT_OFFSET_WEIGHTS`)."""
    m = tuple(meter)
    return (BAR_MODEL_WEIGHTS.get(m, 0.0) if bar_weight is None else bar_weight,
            BEAT_OFFSET_WEIGHTS.get(m) if offset_weights is None else offset_weights)


def _reads_models(meter, bar_weight: float | None, offset_weights: tuple | None) -> bool:
    """Whether :func:`refine_phase` lets the learned models move a grid of this meter (given
    weights, else the meter's defaults)."""
    bar_weight, offset_weights = _look_weights(meter, bar_weight, offset_weights)
    return tuple(meter) in MODEL_METERS and bool(bar_weight or offset_weights)


def chosen_shift(h: Hypothesis, readings: Sequence[PhaseReading], bar_weight: float | None = None,
                 offset_weights: tuple | None = None) -> int:
    """The bar phase :func:`refine_phase` chooses among :func:`phase_readings` of ``h``
    (:func:`best_reading`); the hypothesis' own where its meter does not read the models."""
    if readings and _reads_models(h.meter, bar_weight, offset_weights):
        return best_reading(readings).shift
    return h.shift


def other_readings(h: Hypothesis, readings: Sequence[PhaseReading], first_onset_s: float,
                   duration_s: float) -> list[tuple[str, float, float]]:
    """The other readings among :func:`phase_readings` of the chosen hypothesis ``h`` (whose
    ``shift`` is the chosen one), as ``(kind, downbeat_s, margin)``: the chosen reading itself
    (``"chosen"``, margin 0: a move back to it where the lock or the 3/4 path moved the beats
    off it), the best reading whose beats sit elsewhere (``"off-beat"``), then every other bar
    line on the chosen beats (``"bar line"``), likeliest first. Each is given by a bar line in
    the take at or after half a bar before the first note and by how far it scored below the
    chosen reading; :func:`placed_readings` measures them from the bar lines the take ends up
    with (where the chosen one is no move, it is dropped) and makes them
    :class:`hum2band.music.meter.OtherReading`. Empty without readings."""
    chosen = next((r for r in readings if r.shift == h.shift), None)
    if chosen is None:
        return []
    picks = [("chosen", chosen, 0.0)]
    elsewhere = [r for r in readings if r.offset_steps != chosen.offset_steps]
    if elsewhere:
        alt = best_reading(elsewhere)
        picks.append(("off-beat", alt, chosen.offset_score - alt.offset_score))
    same = [r for r in readings if r.offset_steps == chosen.offset_steps and r.shift != chosen.shift]
    for alt in sorted(same, key=lambda r: -r.bar_score):
        picks.append(("bar line", alt, chosen.bar_score - alt.bar_score))
    bar_s = beats_per_bar(h.meter) * 60.0 / h.tempo_bpm
    keep = h.shift
    out = []
    try:
        for kind, r, margin in picks:
            h.shift = r.shift
            _, downs = _grid_times(h)
            downs = downs[(downs >= max(0.0, first_onset_s - 0.5 * bar_s)) & (downs <= duration_s)]
            if len(downs):
                out.append((kind, float(downs[0]), max(float(margin), 0.0)))
    finally:
        h.shift = keep
    return out


#: Other tempi and meters offered (:func:`other_tempi`): at most this many.
OTHER_TEMPI = 2
#: Two hypotheses of one meter whose tempi lie within this ratio are one reading there (drift
#: and rubato move a tempo by a few per cent; another reading is double, half, 3/2, ... of it).
OTHER_TEMPO_APART = 0.15


def other_tempi(choice: VotedChoice, limit: int = OTHER_TEMPI) -> tuple[OtherTempo, ...]:
    """Other tempi and meters the take could be counted in, likeliest first: the best-scoring
    hypothesis of each reading (a meter, and a tempo more than :data:`OTHER_TEMPO_APART` from
    every reading already taken in that meter) other than the chosen one, at most ``limit``.

    These are the misses a bar line cannot mend: a pop ballad read at double time, a fast waltz
    counted in 6/8 (two bars to one), a waltz read as 4/4. Each is arranged by giving its meter
    and tempo (``--meter``, ``--tempo``), which restricts the hypotheses to that meter and makes
    that tempo the tracked pulse. ``margin``: the chosen hypothesis' score minus this one's (0 when
    it scored higher but lost the vote)."""
    best = choice.best

    def apart(h: Hypothesis, meter, bpm: float) -> bool:
        return (tuple(h.meter) != tuple(meter)
                or abs(np.log(h.tempo_bpm / bpm)) >= np.log1p(OTHER_TEMPO_APART))

    taken: list[tuple[tuple, float]] = [(tuple(best.meter), float(best.tempo_bpm))]
    out = []
    for h in sorted(choice.hyps, key=lambda h: -h.score):
        if len(out) >= limit:
            break
        if all(apart(h, m, bpm) for m, bpm in taken):
            taken.append((tuple(h.meter), float(h.tempo_bpm)))
            out.append(OtherTempo(tuple(h.meter), round(float(h.tempo_bpm), 1),
                                  max(float(best.score - h.score), 0.0)))
    return tuple(out)


def placed_readings(others: Sequence[tuple[str, float, float]], beats_s: np.ndarray,
                    downbeats_s: np.ndarray, bar_beats: int) -> tuple[OtherReading, ...]:
    """:func:`other_readings`' ``(kind, downbeat_s, margin)`` measured against the beats and bar
    lines the take ends up with (in 3/4 the beat model's path and in 4/4 and 3/4 the lock can
    move them from the chosen grid's): ``beats_later`` from those bar lines (``bar_beats``
    counted beats a bar), and a reading dropped where its bar line lands within a sixth of a beat
    of one of them (no move) or of an earlier reading's place. The kind is the move's: the
    beats elsewhere (``"off-beat"``) where it is not a whole number of beats, else another bar
    line (``"bar line"``)."""
    if len(beats_s) < 2 or not len(downbeats_s):
        return ()
    idx = np.arange(len(beats_s), dtype=float)

    def beat_index(t: float) -> float:  # continued past the ends at the end beats' period
        if t < beats_s[0]:
            return (t - beats_s[0]) / (beats_s[1] - beats_s[0])
        if t > beats_s[-1]:
            return idx[-1] + (t - beats_s[-1]) / (beats_s[-1] - beats_s[-2])
        return float(np.interp(t, beats_s, idx))

    first_bar_u = beat_index(downbeats_s[0])
    out, seen = [], []
    for _, downbeat_s, margin in others:
        later = float((beat_index(downbeat_s) - first_bar_u) % bar_beats)
        if later > bar_beats / 2 + 1e-6:  # in (-bar / 2, bar / 2]: 6/8's other beat is later
            later -= bar_beats
        if abs(later) < 1 / 6 or any(abs(later - x) < 1 / 6 for x in seen):
            continue
        seen.append(later)
        kind = "bar line" if abs(later - round(later)) < 1 / 6 else "off-beat"
        out.append(OtherReading(kind, downbeat_s, round(later * 6) / 6, margin))
    return tuple(out)


def best_reading(readings: Sequence[PhaseReading]) -> PhaseReading:
    """The reading :func:`refine_phase` chooses: the best beats (``offset_score``; the first
    offset on a tie), then the best bar line on them (the first on a tie)."""
    top = max(r.offset_score for r in readings)
    o = next(r.offset_steps for r in readings if r.offset_score == top)
    mine = [r for r in readings if r.offset_steps == o]
    return max(mine, key=lambda r: r.bar_score)  # max keeps the first of equals


def refine_phase(h: Hypothesis, notes: Sequence[Note], tonic_pc: int, minor: bool,
                 bar_weight: float | None = None, offset_weights: tuple | None = None,
                 model=None, place_beliefs=None) -> int:
    """The chosen hypothesis' beats and bar line looked at again with the learned models: first
    where the beats sit (when ``offset_weights`` is given: on the hypothesis' own beats or half
    a beat away), then which beat starts the bar.

    The beats: each offset's score is ``offset_weights[0]`` times the beat-offset note model's
    mean log-probability of the onsets' places in the beat on that grid
    (:func:`offset_model_beliefs`, read by :func:`place_log_prob_on_grid`) plus
    ``offset_weights[1]`` times the bar model's mean log-odds that the grid's beats are the
    melody's (default: :data:`BEAT_OFFSET_WEIGHTS` of the meter; a meter without them keeps its
    beats). The bar line: among the shifts that keep those beats, the phase score by the note
    cues plus ``bar_weight`` times the bar model's mean log-probability of the shift's bar lines
    (default: :data:`BAR_MODEL_WEIGHTS` of the meter; a meter without a weight keeps its shift).
    Tempo and meter stay the hypothesis'. ``place_beliefs``: the beat-offset model's beliefs
    about ``notes`` when already read (:func:`offset_model_beliefs`). Returns the best shift (the
    hypothesis is left as it was); :func:`phase_readings` gives every reading it weighs.
    """
    if h.phase_features is None or not _reads_models(h.meter, bar_weight, offset_weights):
        return h.shift
    return chosen_shift(h, phase_readings(h, notes, tonic_pc, minor, bar_weight, offset_weights,
                                          model, place_beliefs), bar_weight, offset_weights)


def rhythm_hypotheses(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                      meters=METERS, onset_strength=None, downbeat_s: float | None = None,
                      pickup_beats: float | None = None,
                      beliefs: tuple[np.ndarray, NoteBeliefs] | None = None,
                      key: Key | None = None) -> tuple[Onsets, list[Hypothesis]]:
    """All metrical hypotheses for a take, with their features, unscored (see the module doc).

    ``beliefs``: the beat model's (:func:`model_beliefs`), read by the bar phase; without them
    its two features are 0. ``key``: the notes' own key, ``estimate_key(notes, vote=False)`` as
    the weights were fitted (computed here when not given). Returns the onsets and the
    hypotheses; no hypotheses when there are fewer than 3 onsets.
    """
    ons = onsets_from_notes(notes, onset_strength)
    if len(ons.time_s) < 3:
        return ons, []
    bel = None if beliefs is None else onset_beliefs(ons, beliefs)
    if key is None:
        from ..music.keyfinding import estimate_key

        key = estimate_key(notes, vote=False)  # as the weights were fitted
    cues = note_cues(ons, key.tonic_pitch_class, key.mode == "minor")
    if tempo_bpm is not None:
        periods, ratios, bpm_range = [60.0 / float(tempo_bpm)], (1.0,), (0.0, np.inf)
    else:
        periods, ratios, bpm_range = pulse_candidates(ons), BEAT_PER_PULSE, (MIN_BPM, MAX_BPM)
    hyps = []
    for p in periods:
        pulses = track_pulse(ons, p)
        track = make_track(ons, pulses, max(ratios) * 4 * 4 + 1)
        hyps += hypotheses_on_track(ons, track, meters, ratios, cues, bpm_range)
    # the bar phase (the costly part) only for the hypotheses that score best without it
    if pickup_beats is not None:  # a pickup shorter than a bar
        hyps = [h for h in hyps if float(pickup_beats) < beats_per_bar(h.meter)]
    hyps.sort(key=lambda h: float(FEATURE_WEIGHTS @ h.features), reverse=True)
    hyps = hyps[:MAX_PHASED_HYPOTHESES]
    for h in hyps:
        choose_phase(h, ons, cues, downbeat_s, pickup_beats, bel)
    return ons, hyps


# ---- public --------------------------------------------------------------------------------------
#: The 4/4 tempo prior's extra slope (per octave of tempo above 100 bpm, per onset) for a 4/4
#: hypothesis whose onsets fit the syncopated-pop onset template best (:data:`ONSET_PROB`): the
#: weight of the ``z_4/4_pop`` feature. The fitted 4/4 prior (``z_4/4``, ``z2_4/4``) peaks near 95
#: bpm for every style, and a pop ballad whose beat runs at 55-66 bpm under sixteenth notes was
#: read at double time (on one validation set, 9 of 30 POP909 takes). Chosen by hand on cached
#: transcriptions of the validation split (rhythm stage only; 0 -> -0.5 -> -1.0 -> -1.5), checked
#: on the train split the other weights were fitted on; -0.5, the mildest, gained on all three sets
#: and lost one take: 180 takes (seed 1000) tempo 0.872 -> 0.872, beat phase 0.894 ->
#: 0.900; 360 more (seeds 1001-1002) tempo 0.903 -> 0.906 (POP909 4/4 0.817 -> 0.850, one
#: Nottingham waltz now read as 4/4 at half tempo), beat phase 0.922 -> 0.928, downbeat F 0.758 ->
#: 0.757; train split, 360 takes, tempo 0.897 -> 0.900, beat phase 0.897 -> 0.900. At -1.0 and
#: -1.5 the POP909 takes gained more on one set and the other sources' fast reels lost their
#: tempo (4/4 other 0.867 -> 0.833 -> 0.817). Not fitted with the other weights: a refit that
#: fitted it too (to -2.0) was not kept (see :data:`FEATURE_WEIGHTS`).
#: The beat-offset model's place in the beat also tells a 4/4 pop melody's tempo from its double
#: (on the true grids of 90 cached validation POP909 takes it prefers the true tempo to double
#: and half on 76, the shipped model on 68), but choosing between the voted 4/4 hypothesis and the
#: best at half and double its tempo by score + w x that place (the better of the grid and the
#: grid half a beat away; December 2026, w 1, 3, 10) was not kept: at w 3 validation tempo 0.872
#: -> 0.889 (180 takes) and 0.906 -> 0.908 (360), but on train-split takes POP909 4/4 tempo 0.833
#: -> 0.767 and beat phase 0.833 -> 0.750 (360) and 0.800 -> 0.783 phase (360 more).
POP_TEMPO_SLOPE = -0.5

#: Weights of :data:`FEATURE_NAMES` in a hypothesis' score (per onset). Fitted on the train split
#: before the beat model's columns and ``z_4/4_pop`` existed (those three set on the validation
#: split). A refit of the rest with the beat model read and its columns frozen (``benchmarks/
#: rhythm_key.py --fit-rhythm --fit-only hypotheses --fit-reps 4 --n-per-meter 60``, 720 train
#: takes, December 2026) was not kept: on cached validation takes (180 and 360) tempo 0.872 ->
#: 0.900 and 0.906 -> 0.900, meter 0.950 -> 0.961 and 0.922 -> 0.936, beat phase 0.900 -> 0.917
#: and 0.928 -> 0.933, downbeat F flat, and on the test split tempo 0.88 -> 0.90, meter 0.87 ->
#: 0.88, 3/4 meter 0.65 -> 0.72, but it read real singing (24 SSVD takes) as 4/4 less surely and
#: less stably: under ``benchmarks/robustness.py``'s 15 conditions the meter changed on 20 of 360
#: instead of 11 (tempo 30 against 32), and one take (1201: 4/4 at 63 bpm before, 3/4 at 114
#: after) changed meter through MP3 and the telephone (with the shipped weights its tempo moves
#: through the telephone instead). With the meter prior (``is_3/4``, ``is_6/8``) also frozen the
#: meter held, but 1201's tempo moved between 110 and 115 bpm through MP3 and Opus.
#: The beat model reads a pop waltz as 4/4 (POP909's 3/4 songs: a mean 0.89 of 4/4 on the
#: validation takes; ``model_bar`` then outweighs the rest). Its meter belief tempered (the
#: ``model_bar`` feature read as log p(beat | meter) + lambda log p(meter); lambda 0.7, 0.5, 0.3)
#: gained on the validation takes (meter 0.950 -> 0.961 and 0.922 -> 0.928 at 0.5) but lost 4/4
#: on the train split's (0.942 -> 0.917) and read at most one more pop waltz right: not kept.
FEATURE_WEIGHTS = np.array([
    6.221, 2.132, -0.004, -0.280, 0.210, -0.566, -3.731, 1.199, -4.162, -0.498, -2.109, 1.712,
    2.305, 2.951, 0.736, -0.107, -1.125, 1.003, 0.966, 1.202, 0.173, 0.461, 0.166, 0.500, 0.250,
    POP_TEMPO_SLOPE,
])


@dataclass
class VotedChoice:
    """A take's voted hypothesis (:func:`voted_choice`), before its beats and bar line are looked
    at again (:func:`refine_phase`)."""

    best: Hypothesis
    hyps: list
    post: np.ndarray  # posterior probability of each hypothesis (softmax of the scores)
    key: Key          # the notes' own key, as the weights were fitted
    beliefs: tuple | None


def voted_choice(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                 meters=METERS, onset_strength=None, downbeat_s: float | None = None,
                 pickup_beats: float | None = None,
                 beat_model: bool = True) -> tuple[Onsets, VotedChoice | None]:
    """Steps 1-4 of :func:`estimate_rhythm` (see the module doc): the hypotheses, their scores
    and the best one of the voted meter and tempo. Returns the onsets and the choice (None when
    no hypothesis is left: fewer than 3 onsets, or a pickup as long as a bar)."""
    from ..music.keyfinding import estimate_key

    # the notes' own key, as the weights, the beat model and the bar model were fitted
    key = estimate_key(notes, vote=False)
    # the model knows 4/4, 3/4 and 6/8: a 2/4 override gets nothing from it
    beliefs = model_beliefs(notes, key) if beat_model and set(meters) & set(MODEL_METERS) else None
    ons, hyps = rhythm_hypotheses(notes, duration_s, tempo_bpm, meters, onset_strength,
                                  downbeat_s, pickup_beats, beliefs, key)
    if not hyps:
        return ons, None
    scores = np.array([float(FEATURE_WEIGHTS @ h.features) for h in hyps])
    for h, sc in zip(hyps, scores):
        h.score = float(sc)
    post = np.exp(scores - scores.max())
    post /= post.sum()
    meter_v, low_bpm, high_bpm = voted_meter_tempo(hyps, notes, duration_s, tempo_bpm, meters,
                                                   onset_strength, downbeat_s, pickup_beats,
                                                   beliefs)
    voted = np.array([is_voted(h, meter_v, low_bpm, high_bpm) for h in hyps])
    best = hyps[int(np.argmax(np.where(voted, scores, -np.inf)))] if voted.any() \
        else hyps[int(np.argmax(scores))]
    return ons, VotedChoice(best, hyps, post, key, beliefs)


def estimate_rhythm(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                    meter: tuple[int, int] | None = None, onset_strength=None,
                    downbeat_s: float | None = None, pickup_beats: float | None = None,
                    beat_model: bool = True) -> Rhythm:
    """Tempo, beats, downbeats and meter of a sung take that follow the singer.

    Parameters
    ----------
    notes : sequence of Note
        The transcribed notes (onsets, offsets and pitches are used).
    duration_s : float
        Length of the take, s.
    tempo_bpm : float, optional
        Override: the tempo in counted beats per minute (dotted quarters in 6/8). The beats
        then start from this tempo and follow the singer's drift.
    meter : tuple of int, optional
        Override: (4, 4), (3, 4), (6, 8) or (2, 4). The tempo and the bar phase are still
        estimated for it.
    onset_strength : tuple of np.ndarray, optional
        ``(times_s, strength)`` onset-strength curve of the audio, to weigh the onsets (see
        :func:`onsets_from_notes`).
    downbeat_s : float, optional
        Fix: a time in the take (s) at which a bar starts; the bar phase (to a sixteenth) is
        chosen among those whose grid puts a downbeat nearest to it.
    pickup_beats : float, optional
        Fix: counted beats sung before the first bar line (0: the first note is on it).
    beat_model : bool
        Let the beat model (``models/beats.pt``, :mod:`hum2band.listen.beats`) weigh in on the
        bar phase and the hypotheses (default). False: onset timing and the hand-made note cues
        only.

    Returns
    -------
    Rhythm
        ``beats_s`` cover the sung part (from the beat at or before the first note to the end of
        the last); ``downbeats_s`` is a subset; ``tempo_bpm`` the mean beat rate over the sung
        part; ``meter_confidence`` and ``tempo_confidence`` are posterior probabilities. With
        fewer than 3 distinct onsets: a steady grid at ``tempo_bpm`` (default 100 bpm) from the
        first note, confidences 0.
    """
    check_bar_fix(downbeat_s, pickup_beats, duration_s, meter)
    meters = (tuple(int(x) for x in meter),) if meter is not None else METERS
    ons, choice = voted_choice(notes, duration_s, tempo_bpm, meters, onset_strength, downbeat_s,
                               pickup_beats, beat_model)
    if choice is None and len(ons.time_s) >= 3:
        raise OptionError(f"a pickup of {pickup_beats} beats is longer than a bar of "
                          f"{beats_per_bar(meters[0])} beats: give a shorter pickup")
    if choice is None:
        return _steady_rhythm(ons, duration_s, tempo_bpm, meters[0], downbeat_s, pickup_beats)
    fixed = downbeat_s is not None or pickup_beats is not None
    return rhythm_from_choice(notes, duration_s, ons, choice, look_again=beat_model and not fixed,
                              offer_tempi=not fixed)


def rhythm_from_choice(notes: Sequence[Note], duration_s: float, ons: Onsets, choice: VotedChoice,
                       look_again: bool = True, offset_weights: tuple | None = None,
                       offer_tempi: bool = True) -> Rhythm:
    """Step 5 of :func:`estimate_rhythm` (see the module doc): the beats, bar lines, tempo and
    confidences of a take's :func:`voted_choice`. ``look_again``: the learned models look at the
    chosen grid's beats and bar line again (:func:`refine_phase`, with ``offset_weights``) and
    place the 3/4 beats (:data:`MODEL_PATH_METERS`); False with a bar-line fix or without the
    beat model. ``offer_tempi``: give the other tempi and meters (:func:`other_tempi`); False
    with a bar-line fix. Sets ``choice.best.shift`` to the bar phase it reads."""
    best, hyps, post = choice.best, choice.hyps, choice.post
    meter = tuple(best.meter)
    place_beliefs = None
    if look_again and meter in LOCK_ANCHOR_WEIGHTS:
        place_beliefs = offset_model_beliefs(notes, choice.key)
    readings = []
    if look_again:
        readings = phase_readings(best, notes, choice.key.tonic_pitch_class,
                                  choice.key.mode == "minor", offset_weights=offset_weights,
                                  place_beliefs=place_beliefs)
        best.shift = chosen_shift(best, readings, offset_weights=offset_weights)
    others = other_readings(best, readings, float(ons.time_s[0]), duration_s)
    beats, downbeats = _grid_times(best)
    if look_again and choice.beliefs is not None and meter in MODEL_PATH_METERS:
        beats, downbeats = _model_path(notes, choice.beliefs[1], duration_s, best, beats, ons)
    if place_beliefs is not None and len(beats) >= 2:
        beats, downbeats = locked_grid(place_beliefs, beats, downbeats, beats_per_bar(meter),
                                       LOCK_ANCHOR_WEIGHTS[meter])
    # The grid may reach back before the recording starts: keep only times inside the take.
    beats = beats[(beats >= 0.0) & (beats <= duration_s)]
    downbeats = downbeats[(downbeats >= 0.0) & (downbeats <= duration_s)]
    others = placed_readings(others, beats, downbeats, beats_per_bar(meter))
    tempo = mean_beat_rate_bpm(beats, ons.time_s[0], ons.end_s, best.tempo_bpm)
    meter_conf = float(sum(p for h, p in zip(hyps, post) if h.meter == best.meter))
    tempo_conf = float(sum(p for h, p in zip(hyps, post)
                           if abs(h.tempo_bpm / best.tempo_bpm - 1.0) <= SAME_TEMPO))
    return Rhythm(beats, downbeats, best.meter, float(tempo), min(meter_conf, 1.0),
                  min(tempo_conf, 1.0), others, other_tempi(choice) if offer_tempi else ())


#: Meters whose chosen beats are locked onto the melody beat by beat after their bar line is
#: chosen (:func:`locked_grid`, :mod:`hum2band.listen.beat_lock`), and the weight of the pull
#: towards the chosen grid's beats there (:class:`hum2band.listen.beat_lock.LockSettings`'
#: ``anchor_weight``): the grid's pulse can drift half a beat off for a phrase of a syncopated
#: melody (on a take whose tempo and beats are right overall), the beat-offset model's place of
#: each onset in the beat brings it back. Chosen, with the other lock settings, on cached
#: transcriptions of the validation split (rhythm stage only; no lock -> 4/4 -> 4/4 and 3/4):
#: 180 takes (seed 1000) beat F 0.826 -> 0.835 -> 0.842, downbeat F 0.746 -> 0.750 -> 0.753;
#: 360 more (seeds 1001-1002) 0.810 -> 0.820 -> 0.831, 0.737 -> 0.744 -> 0.748, 4/4 beat phase
#: right 0.833 -> 0.875, syncopated 0.756 -> 0.808. In 6/8 it lost (180 takes: 6/8 beat F 0.842
#: -> 0.808): on steady eighths a beat a third off fits the notes as well. In 4/4 the pull holds a
#: right grid: without it (weight 0) the syncopated takes gained on one validation set and lost
#: on the train split (720 takes: their beat F 0.674 -> 0.657), and 4 validation takes lost a
#: right grid whole. In 3/4 the beats come from the beat model's own bar-pointer path
#: (:data:`MODEL_PATH_METERS`), and the lock does better free of it: 3/4 beat F 0.898 -> 0.905,
#: 0.875 -> 0.894 and, on the train split, 0.880 -> 0.894 (downbeat F 0.870 -> 0.874, 0.838 ->
#: 0.847, 0.792 -> 0.791; beat F over all takes 0.841 -> 0.843, 0.830 -> 0.837, 0.821 -> 0.826).
LOCK_ANCHOR_WEIGHTS = {(4, 4): 1.0, (3, 4): 0.0}


def locked_grid(place_beliefs: tuple[np.ndarray, NoteBeliefs], beats_s: np.ndarray,
                downbeats_s: np.ndarray, beats_per_bar_: int, anchor_weight: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """A grid's beats locked onto the onsets' places in the beat
    (:func:`hum2band.listen.beat_lock.lock_beats`) over the sung part, continued at the end
    beats' period to cover what the grid covered, and its bar lines carried over
    (:func:`hum2band.listen.beat_lock.carry_downbeats`).

    Parameters
    ----------
    place_beliefs : (np.ndarray, NoteBeliefs)
        Onset times (s) and the beat-offset model's beliefs about them
        (:func:`offset_model_beliefs`).
    beats_s, downbeats_s : np.ndarray
        The chosen grid's beats (at least 2) and bar lines, s.
    beats_per_bar_ : int
    anchor_weight : float
        Pull of the locked beats towards the grid's (:data:`LOCK_ANCHOR_WEIGHTS`).

    Returns
    -------
    (np.ndarray, np.ndarray)
        Beats and bar lines, s.
    """
    from .beat_lock import LockSettings, carry_downbeats, lock_beats

    onset_s, bel = place_beliefs
    locked = lock_beats(onset_s, bel.log_place, beats_s, LockSettings(anchor_weight=anchor_weight))
    if len(locked) < 2:
        return beats_s, downbeats_s
    p0, p1 = locked[1] - locked[0], locked[-1] - locked[-2]
    n_before = max(int(np.floor((locked[0] - beats_s[0]) / p0 + 0.5)), 0)
    n_after = max(int(np.floor((beats_s[-1] - locked[-1]) / p1 + 0.5)), 0)
    beats = np.concatenate([locked[0] - p0 * np.arange(n_before, 0, -1), locked,
                            locked[-1] + p1 * np.arange(1, n_after + 1)])
    return beats, carry_downbeats(beats, beats_s, downbeats_s, beats_per_bar_)


def _model_path(notes: Sequence[Note], beliefs: NoteBeliefs, duration_s: float, best: Hypothesis,
                grid_beats_s: np.ndarray, ons: Onsets) -> tuple[np.ndarray, np.ndarray]:
    """Beats and downbeats (s) of the beat model's bar-pointer path over the notes, held to the
    chosen hypothesis' meter and to :data:`MODEL_PATH_TEMPO_STEPS` of the tempo its grid counts
    (see :data:`MODEL_PATH_METERS`)."""
    ev = note_events([n.onset_s for n in notes], [n.offset_s for n in notes],
                     [n.midi_pitch for n in notes])
    inside = grid_beats_s[(grid_beats_s >= 0.0) & (grid_beats_s <= duration_s)]
    tempo = mean_beat_rate_bpm(inside, ons.time_s[0], ons.end_s, best.tempo_bpm)
    path = decode_rhythm(ev, beliefs, duration_s, load_beat_model().settings, tempo,
                         best.meter, tempo_steps=MODEL_PATH_TEMPO_STEPS)
    return path.beats_s, path.downbeats_s


#: The quantiles of a take's beat intervals between which their mean gives the tempo
#: (:func:`mean_beat_rate_bpm`). Chosen on cached transcriptions of the validation split
#: (rhythm stage only; the span count -> the interquartile mean): tempo right 0.878 -> 0.889
#: (180 takes) and 0.889 -> 0.900 (360 more); the tenth and ninetieth percentiles read the same.
TEMPO_QUARTILES = (0.25, 0.75)


def mean_beat_rate_bpm(beats_s: np.ndarray, first_onset_s: float, end_s: float,
                       fallback_bpm: float) -> float:
    """The take's tempo (bpm): the beat rate of the body of the sung part.

    The beats from the one at the first note to the one at the end of the last note (0.1 s of
    slack); the tempo is that of the mean of their intervals between the intervals' first and
    third quartiles (:data:`TEMPO_QUARTILES`, by rank), the tempo a musician would give the
    take: a final ritardando or a phrase held back does not slow it (counting all the beats over
    their span put takes with a 15 % ritardando 4-5 % slow), and, unlike the median interval, it
    does not jump by 4 % between two recordings of the same singing when a beat or two of a
    rubato phrase lands on the other side of the median. With fewer than 3 beats sung, all the
    beats; ``fallback_bpm`` with fewer than 2.
    """
    sung = beats_s[(beats_s >= first_onset_s - 0.1) & (beats_s <= end_s + 0.1)]
    use = sung if len(sung) > 2 else beats_s
    if len(use) < 2 or use[-1] <= use[0]:
        return float(fallback_bpm)
    ibi = np.sort(np.diff(use))  # by rank: equal intervals (beats on a time grid) tie safely
    lo = int(np.floor(TEMPO_QUARTILES[0] * len(ibi)))
    hi = max(int(np.ceil(TEMPO_QUARTILES[1] * len(ibi))), lo + 1)
    return 60.0 / float(np.mean(ibi[lo:hi]))


def perturbed_copies(notes: Sequence[Note], runs: int = ENSEMBLE_RUNS,
                     seed: int = 0) -> list[list[Note]]:
    """The meter/tempo vote's copies of a take's notes
    (:func:`hum2band.music.tuning.perturbed_copies`): onsets and offsets moved by
    :data:`ENSEMBLE_JITTER_S`, notes left out with probability :data:`ENSEMBLE_DROP`, pitches
    kept."""
    return tuning_copies(notes, runs, ENSEMBLE_JITTER_S, ENSEMBLE_DROP, seed=seed)


def voted_meter_tempo(hyps: Sequence[Hypothesis], notes: Sequence[Note], duration_s: float,
                      tempo_bpm=None, meters=METERS, onset_strength=None, downbeat_s=None,
                      pickup_beats=None, beliefs=None) -> tuple[tuple, float, float]:
    """The meter and tempo most of the estimates agree on: the best hypothesis on the notes and
    on each of :func:`perturbed_copies` votes (meter, tempo).

    The tempo is voted on first, whatever the meter: the votes are sorted by tempo and cut where
    two neighbours lie more than :data:`SAME_TEMPO` apart, and the stretch with most votes is the
    tempo (a tie goes to the stretch that holds the notes' own best, else to the slower). The
    meter is then the one most votes of that stretch give (a tie to the notes' own best, then in
    the order of ``meters``), and the tempo range the densest part of the stretch
    (:func:`densest_tempi`, the most votes within :data:`VOTE_CORE_SPAN`), or the whole stretch
    when none of the notes' own hypotheses of that meter lies there.

    A near tie between two readings (4/4 or 6/8, a tempo or its double) is otherwise decided by
    whichever one onset lands a few milliseconds earlier; the vote decides it by the reading that
    holds up when the onsets move as another recording would move them. Counting the tempo
    apart from the meter, and as a stretch rather than a window around one vote, keeps one
    reading from splitting its votes: a singer who drifts gets copies read at 58 to 64 bpm, some
    of them in 3/4 and some in 4/4, against a few at one tight double-time tempo.

    Returns
    -------
    tuple
        ``(meter, lowest_bpm, highest_bpm)``: the hypotheses of that meter whose tempo lies in
        that range are the voted ones (the densest part of the stretch widened by
        :data:`SAME_TEMPO` each side).
    """
    def best_of(hs):
        return max(hs, key=lambda h: float(FEATURE_WEIGHTS @ h.features))

    b0 = best_of(hyps)
    votes = [(tuple(b0.meter), float(b0.tempo_bpm))]
    for copy in perturbed_copies(notes, ENSEMBLE_RUNS):
        _, hs = rhythm_hypotheses(copy, duration_s, tempo_bpm, meters, onset_strength, downbeat_s,
                                  pickup_beats, beliefs)
        if hs:
            b = best_of(hs)
            votes.append((tuple(b.meter), float(b.tempo_bpm)))
    order = sorted(range(len(votes)), key=lambda i: votes[i][1])
    stretches = [[order[0]]]
    for i in order[1:]:
        if votes[i][1] / votes[stretches[-1][-1]][1] - 1.0 <= SAME_TEMPO:
            stretches[-1].append(i)
        else:
            stretches.append([i])
    won = max(stretches, key=lambda s: (len(s), 0 in s))  # index 0: the notes' own best
    given = [votes[i][0] for i in won]
    rank = {tuple(m): k for k, m in enumerate(meters)}
    meter = max(dict.fromkeys(given), key=lambda m: (given.count(m), m == votes[0][0],
                                                       -rank.get(m, len(rank))))
    tempi = sorted(votes[i][1] for i in won)
    low, high = densest_tempi(tempi, votes[0][1])
    low_bpm, high_bpm = low * (1.0 - SAME_TEMPO), high * (1.0 + SAME_TEMPO)
    if not any(is_voted(h, meter, low_bpm, high_bpm) for h in hyps):
        # none of the notes' own there: the whole stretch
        low_bpm, high_bpm = tempi[0] * (1.0 - SAME_TEMPO), tempi[-1] * (1.0 + SAME_TEMPO)
    return meter, low_bpm, high_bpm


def is_voted(h: Hypothesis, meter, low_bpm: float, high_bpm: float) -> bool:
    """Whether a hypothesis is of the voted meter and tempo range (:func:`voted_meter_tempo`)."""
    return tuple(h.meter) == tuple(meter) and low_bpm <= h.tempo_bpm <= high_bpm


def densest_tempi(tempi: Sequence[float], own_bpm: float) -> tuple[float, float]:
    """The lowest and highest tempo (bpm) of the largest run of ``tempi`` (sorted) that spans no
    more than :data:`VOTE_CORE_SPAN`; a tie goes to the run that holds ``own_bpm`` (the notes'
    own best), else to the slower."""
    best = None
    for a in range(len(tempi)):
        b = a
        while b + 1 < len(tempi) and tempi[b + 1] <= tempi[a] * (1.0 + VOTE_CORE_SPAN):
            b += 1
        rank = (b - a + 1, tempi[a] <= own_bpm <= tempi[b])
        if best is None or rank > best[0]:
            best = (rank, a, b)
    return float(tempi[best[1]]), float(tempi[best[2]])


def _steady_rhythm(ons: Onsets, duration_s: float, tempo_bpm: float | None, meter,
                   downbeat_s: float | None = None, pickup_beats: float | None = None) -> Rhythm:
    """A steady grid from the first note when there is too little to follow (bar 1 moved by a
    pickup, or laid through a given downbeat)."""
    bpm = float(tempo_bpm) if tempo_bpm else 100.0
    beat_s = 60.0 / bpm
    first = float(ons.time_s[0]) if len(ons.time_s) else 0.0
    bar1 = first + (float(pickup_beats) * beat_s if pickup_beats else 0.0)
    if downbeat_s is not None:
        bar1 = float(downbeat_s)
    start = bar1 - np.floor((bar1 - first) / beat_s + 1e-6) * beat_s
    end = max(float(duration_s), ons.end_s, start + beat_s)
    beats = np.arange(start, end, beat_s)
    index = np.round((beats - bar1) / beat_s).astype(int)
    inside = beats >= 0.0
    beats, index = beats[inside], index[inside]
    return Rhythm(beats, beats[index % beats_per_bar(meter) == 0], tuple(meter), bpm, 0.0, 0.0)


@dataclass
class GridStatistics:
    """Statistics of a take's onsets on its known sixteenth-note grid (for fitting templates).

    Attributes are per bar position (shape (steps per bar,)) unless noted.
    """

    filled: np.ndarray      # grid points that carry an onset
    total: np.ndarray       # all grid points
    hold_sum: np.ndarray    # sum of log2(hold / beat) of the onsets there, centred per take
    n_background: int       # onsets no grid point explains


def grid_statistics(notes: Sequence[Note], beats_s: np.ndarray, downbeats_s: np.ndarray,
                    meter) -> GridStatistics:
    """Onset statistics of a take on its known beats and downbeats, for fitting
    :data:`ONSET_PROB` and :data:`HOLD_PROFILE`."""
    ons = onsets_from_notes(notes)
    m = tuple(meter)
    d = SUBDIVISIONS[m]
    q = d * beats_per_bar(m)
    beats_s = np.asarray(beats_s, dtype=float)
    track = make_track(ons, beats_s, 0.0)
    j0, n_pts, filled, _, n_bg, owner = _onset_grid(ons, track, 1.0 / d)
    k_down = np.round(np.interp(np.asarray(downbeats_s, dtype=float), beats_s,
                                np.arange(len(beats_s)))).astype(int)
    first_down = int(k_down[0]) if len(k_down) else 0
    pos = ((np.arange(n_pts) + j0) - first_down * d) % q
    own = owner >= 0
    on_pos = (owner[own] - first_down * d) % q
    beat_s = float(np.median(np.diff(beats_s)))
    rel = np.log2(np.maximum(ons.hold_s[own], 0.02) / beat_s)
    rel = rel - rel.mean()
    return GridStatistics(np.bincount(pos[filled], minlength=q).astype(float),
                          np.bincount(pos, minlength=q).astype(float),
                          np.bincount(on_pos, weights=rel, minlength=q), int(n_bg))
