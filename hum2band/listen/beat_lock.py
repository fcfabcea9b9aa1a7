"""The chosen grid's beats locked onto the melody, beat by beat, by the beat-offset note model.

The rhythm stage (:mod:`hum2band.listen.rhythm`) chooses a tempo, a meter and a grid of beats
that bends with a pulse tracked over the onsets. In a syncopated melody that pulse can drift off
the beat for a stretch -- onto the "and" for a phrase of sixteenths, then back -- so a take whose
tempo and beats are right overall has a phrase or two of its beats half a beat off. This module
tracks the beats again, one beat time after another, in the spirit of Ellis's (2007) dynamic
programming beat tracker, but its evidence is the beat-offset note model's beliefs
(:func:`hum2band.listen.beats.take_beliefs` with ``models/beats-offset.pt``) about where in the
beat each onset sits rather than an onset envelope:

* **the onsets between two beats**: for a pair of consecutive beats at ``a`` and ``b``, each
  onset between them has the density
  ``sum_c P(place c) N(onset; a + c (b - a) / 12, sd) + P(off the grid) / (b - a)``
  (``c`` = 0..12 twelfths of the beat, 12 being the next beat). Every onset lies between exactly
  one pair of beats of any path, so paths compare on the same onsets;
* **tempo**: ``-tempo_weight * log2(interval / period)^2``, ``period`` being the chosen grid's
  own beat interval there, a median over five (so the beats follow the singer's drift as the
  grid did, but not a jump of its pulse);
* **the chosen grid**: a beat within ``anchor_sd_s`` of one of the grid's beats earns up to
  ``anchor_weight``. The locked beats leave the grid only where the model's evidence over a
  stretch outweighs it: half a beat off for a phrase, not a whole take on a whim. (The rhythm
  stage sets the weight per meter, :data:`hum2band.listen.rhythm.LOCK_ANCHOR_WEIGHTS`: in 3/4,
  whose beats already come from the beat model's own path, it is 0 and only the tempo leads.)

The bar lines are carried over from the grid (:func:`carry_downbeats`): each locked beat that
lies near a grid beat votes for the grid's count of the bar, and the majority places bar 1.

All times are seconds of the recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .beats import OFF_GRID, UNITS_PER_BEAT


@dataclass(frozen=True)
class LockSettings:
    """Weights of :func:`lock_beats` (chosen on the validation split's cached takes, see
    :data:`hum2band.listen.rhythm.LOCK_ANCHOR_WEIGHTS`).

    Attributes
    ----------
    hop_s : float
        Resolution of the beat times, s.
    timing_sd_s : float
        Timing error (s, 1 sd) of a sung onset against its place in the beat.
    tempo_weight : float
        Weight of the squared log2 ratio of a beat interval to the grid's own there.
    anchor_weight, anchor_sd_s : float
        Reward of a beat that falls on one of the chosen grid's beats, and its width (s, 1 sd).
    shortest, longest : float
        Beat intervals considered, as ratios to the grid's own interval there.
    """

    hop_s: float = 0.01
    timing_sd_s: float = 0.035
    tempo_weight: float = 50.0
    anchor_weight: float = 1.0
    anchor_sd_s: float = 0.05
    shortest: float = 0.7
    longest: float = 1.4


def local_period_s(beats_s: np.ndarray, times_s: np.ndarray, window: int = 5) -> np.ndarray:
    """The beat interval (s) of a grid of beats around each of ``times_s``: the median of the
    ``window`` intervals around it (so one odd interval of the grid, where its pulse jumped, does
    not set the tempo), held at the ends. ``beats_s`` needs at least 2 beats."""
    beats_s = np.asarray(beats_s, dtype=float)
    ibi = np.diff(beats_s)
    if window > 1 and len(ibi) >= window:
        half = window // 2
        padded = np.pad(ibi, half, mode="edge")
        ibi = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)
    mid = (beats_s[:-1] + beats_s[1:]) / 2
    return np.interp(np.asarray(times_s, dtype=float), mid, ibi)


def nearest_index(sorted_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Index of the nearest of ``sorted_s`` (increasing, at least 2) to each of ``times_s``
    (the earlier one on a tie)."""
    j = np.clip(np.searchsorted(sorted_s, times_s), 1, len(sorted_s) - 1)
    return np.where(np.abs(times_s - sorted_s[j - 1]) <= np.abs(sorted_s[j] - times_s), j - 1, j)


def lock_beats(onset_s: np.ndarray, log_place: np.ndarray, grid_beats_s: np.ndarray,
               settings: LockSettings = LockSettings()) -> np.ndarray:
    """Beat times from just before the first onset to just after the last, locked onto the
    onsets' places in the beat (see the module doc).

    Parameters
    ----------
    onset_s : np.ndarray, shape (n,)
        Distinct onset times, s, increasing (n >= 1).
    log_place : np.ndarray, shape (n, 13)
        The beat-offset note model's log-probabilities of each onset's place in the beat, in
        twelfths (column 12: off the grid), :class:`hum2band.listen.beats.NoteBeliefs`.
    grid_beats_s : np.ndarray, shape (m,)
        The chosen grid's beats, s, increasing, m >= 2: their intervals are the tempo the locked
        beats follow, their times the anchors.
    settings : LockSettings

    Returns
    -------
    np.ndarray
        Locked beat times, s: the first at or before the first onset (it may lie before the
        recording starts), the last after the last onset, on a grid of ``settings.hop_s``
        counted from the first onset.
    """
    frames, score, prev = _forward(onset_s, log_place, grid_beats_s, settings)
    return _best_path(frames, score, prev, onset_s[-1])


def _forward(onset_s, log_place, grid_beats_s, settings: LockSettings):
    """Check the inputs and run the forward pass: (frames, score, prev), see
    :func:`_lock_path_py`."""
    on = np.asarray(onset_s, dtype=float)
    grid = np.asarray(grid_beats_s, dtype=float)
    lp = np.asarray(log_place, dtype=float)
    if len(on) < 1 or len(grid) < 2 or lp.shape != (len(on), UNITS_PER_BEAT + 1):
        raise ValueError("lock_beats needs onsets, their (n, 13) place beliefs and two grid beats")
    s = settings
    first_period = float(local_period_s(grid, on[:1])[0])
    last_period = float(local_period_s(grid, on[-1:])[0])
    # frames counted from the first onset (a take with more silence before it gets the same
    # beats, moved); the first may lie before the recording starts
    k_before = int(np.ceil(s.longest * first_period / s.hop_s)) + 1
    k_after = int(np.ceil((on[-1] - on[0] + s.longest * last_period) / s.hop_s)) + 2
    frames = on[0] + s.hop_s * np.arange(-k_before, k_after)
    period = local_period_s(grid, frames)
    near = np.abs(frames - grid[nearest_index(grid, frames)])
    anchor = s.anchor_weight * np.exp(-0.5 * (near / s.anchor_sd_s) ** 2)
    prob = np.exp(lp)
    # places 0..12: the next beat's place 0 closes the interval
    place = np.concatenate([prob[:, :UNITS_PER_BEAT], prob[:, :1]], axis=1)
    start = (frames <= on[0] + 1e-9) & (frames >= on[0] - s.longest * first_period)
    score, prev = _lock_path(on, np.ascontiguousarray(place),
                             np.ascontiguousarray(prob[:, OFF_GRID]), frames, period, anchor,
                             start, float(s.timing_sd_s), float(s.tempo_weight),
                             float(s.shortest), float(s.longest), float(s.hop_s))
    return frames, score, prev


def _best_path(frames, score, prev, last_onset_s: float) -> np.ndarray:
    """The beat times of the best path that ends after the last onset."""
    ends = np.flatnonzero(frames > last_onset_s)
    ends = ends[np.isfinite(score[ends])]
    f = int(ends[np.argmax(score[ends])])
    path = [f]
    while prev[path[-1]] >= 0:
        path.append(int(prev[path[-1]]))
    return frames[np.array(path[::-1])]


def _lock_path_py(on, place, off, frames, period, anchor, start, sd, tempo_weight, shortest,
                  longest, hop):
    """The forward pass of :func:`lock_beats` (compiled with numba when present): the best score
    of a path of beats ending at each frame, and the frame of the beat before it (-1: the path
    starts there)."""
    n_frames = len(frames)
    n = len(on)
    score = np.full(n_frames, -np.inf)
    prev = np.full(n_frames, -1, dtype=np.int64)
    norm = 1.0 / (sd * np.sqrt(2.0 * np.pi))
    for f in range(n_frames):
        if start[f]:
            score[f] = anchor[f]
        t = frames[f]
        k_lo = int(np.floor(shortest * period[f] / hop))
        k_hi = int(np.ceil(longest * period[f] / hop))
        best, best_i = -np.inf, -1
        for k in range(k_lo, k_hi + 1):
            i = f - k
            if i < 0:
                break
            if not np.isfinite(score[i]):
                continue
            a = frames[i]
            span = t - a
            ratio = np.log2(span / period[i])
            total = score[i] - tempo_weight * ratio * ratio
            # the onsets in [a, t)
            lo = np.searchsorted(on, a - 1e-9)
            for m in range(lo, n):
                o = on[m]
                if o >= t - 1e-9:
                    break
                dens = off[m] / span
                for c in range(UNITS_PER_BEAT + 1):
                    z = (o - a - c * span / UNITS_PER_BEAT) / sd
                    if z < 8.0 and z > -8.0:
                        dens += place[m, c] * norm * np.exp(-0.5 * z * z)
                total += np.log(dens + 1e-12)
            if total > best:
                best, best_i = total, i
        if best_i >= 0 and (not start[f] or best + anchor[f] > score[f]):
            score[f] = best + anchor[f]
            prev[f] = best_i
    return score, prev


try:  # numba comes with librosa; the loops are about 100 times faster compiled
    import numba

    _lock_path = numba.njit(cache=True, nogil=True)(_lock_path_py)
except ImportError:  # pragma: no cover
    _lock_path = _lock_path_py


def carry_downbeats(beats_s: np.ndarray, grid_beats_s: np.ndarray, grid_downbeats_s: np.ndarray,
                    beats_per_bar: int) -> np.ndarray:
    """The bar lines of a grid carried over onto new beats.

    Every new beat within a quarter of a beat of a grid beat votes for the grid's count of the
    bar there (which beat of the bar it is); the count most votes agree on is laid on the new
    beats, bar after bar. Without any such beat, each new beat takes the count of the nearest
    grid beat.

    Parameters
    ----------
    beats_s : np.ndarray, shape (n,)
        The new beats, s, increasing.
    grid_beats_s, grid_downbeats_s : np.ndarray
        The grid's beats and its bar lines (a subset of them), s.
    beats_per_bar : int

    Returns
    -------
    np.ndarray
        The new beats that start a bar, s.
    """
    beats_s = np.asarray(beats_s, dtype=float)
    grid = np.asarray(grid_beats_s, dtype=float)
    downs = np.asarray(grid_downbeats_s, dtype=float)
    if not len(beats_s) or len(grid) < 2 or not len(downs):
        return beats_s[:0]
    first_down = int(np.argmin(np.abs(grid - downs[0])))
    count = (np.arange(len(grid)) - first_down) % beats_per_bar
    nearest = nearest_index(grid, beats_s)
    dist = np.abs(beats_s - grid[nearest]) / local_period_s(grid, beats_s)
    votes = (count[nearest] - np.arange(len(beats_s))) % beats_per_bar
    close = dist < 0.25
    pool = votes[close] if close.any() else votes
    phase = int(np.argmax(np.bincount(pool, minlength=beats_per_bar)))
    return beats_s[(np.arange(len(beats_s)) + phase) % beats_per_bar == 0]
