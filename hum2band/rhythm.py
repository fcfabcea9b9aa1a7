"""The singer's beat: tempo, beats, downbeats and meter from the notes of a sung take.

DRAFT v2 (docstring to be finished).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .melody import Note, Rhythm, beats_per_bar

#: Frame rate (frames/s) of the onset envelope the pulse tracker runs on.
FPS = 50.0
#: Onsets closer than this (s) are one event.
ONSET_MERGE_S = 0.05
#: Width (s, 1 sd) of each onset's bump in the envelope: about the onset error of a transcriber.
BUMP_SD_S = 0.03
#: Lag range (s) and resolution of the periodicity analysis.
LAG_MIN_S, LAG_MAX_S = 0.1, 1.6
LAG_BINS_PER_OCTAVE = 48
#: Pulse tracker: weight of the squared log ratio of a step to the chain's running period, and
#: to the period it was started with; how fast the running period adapts; longest jump (pulses).
TIGHTNESS = 15.0
ANCHOR = 2.0
PERIOD_ADAPT = 0.3
MAX_GAP_PULSES = 6.0
#: Width (s, 1 sd) over which tracked pulse times are smoothed.
PULSE_SMOOTH_S = 0.5
#: Meters the estimator chooses among.
METERS = ((4, 4), (3, 4), (6, 8))

# ---- metrical templates --------------------------------------------------------------------------
#: Position classes of a metrical grid point.
DOWNBEAT, HALF_BAR, BEAT, SUB1, SUB2 = range(5)
#: Grid points per counted beat: sixteenths (4 per quarter, 6 per dotted quarter).
SUBDIVISIONS = {(4, 4): 4, (3, 4): 4, (6, 8): 6, (2, 4): 4}
#: Probability that a sixteenth-note grid point carries a note onset, per position in the bar
#: (position 0 = downbeat). Counted on degraded sung renditions of the development half of the
#: benchmark (benchmarks/rhythm_key.py --fit-templates: Nottingham reels, hornpipes, waltzes,
#: jigs and POP909 songs, even song ids only).
ONSET_PROB = {
    (4, 4): (
        np.array([0.89, 0.08, 0.37, 0.06, 0.69, 0.07, 0.51, 0.07,    # folk: reels, hornpipes
                  0.86, 0.06, 0.34, 0.06, 0.79, 0.08, 0.50, 0.08]),
        np.array([0.69, 0.12, 0.41, 0.14, 0.48, 0.07, 0.54, 0.19,    # pop songs
                  0.59, 0.09, 0.38, 0.18, 0.52, 0.11, 0.47, 0.16]),
    ),
    (3, 4): (np.array([0.89, 0.05, 0.06, 0.03, 0.37, 0.06, 0.26, 0.05, 0.79, 0.10, 0.22, 0.05]),),
    (6, 8): (np.array([0.92, 0.05, 0.50, 0.05, 0.72, 0.06, 0.80, 0.06, 0.49, 0.05, 0.84, 0.08]),),
    (2, 4): (np.array([0.87, 0.09, 0.36, 0.10, 0.64, 0.08, 0.51, 0.12]),),
}
#: Mean log2 of a note's length (relative to the take's mean) by the bar position it starts on:
#: long notes start on strong positions. Same source as ONSET_PROB (4/4: folk and pop averaged).
HOLD_PROFILE = {
    (4, 4): np.array([0.46, 0.18, -0.08, -0.26, 0.02, -0.44, -0.24, -0.36,
                      0.25, 0.02, -0.14, -0.58, -0.09, -0.30, -0.25, -0.34]),
    (3, 4): np.array([0.57, 0.33, -0.43, -1.01, 0.05, 0.01, -0.66, -1.22, -0.06, -0.38, -0.51, -1.10]),
    (6, 8): np.array([0.34, -0.25, -0.07, -0.72, -0.07, -0.79, 0.29, -0.26, -0.10, -0.58, -0.23, -0.91]),
    (2, 4): np.array([0.36, 0.10, -0.11, -0.42, -0.04, -0.37, -0.25, -0.35]),
}


def first_position_prior(meter) -> np.ndarray:
    """Prior on the bar position of a take's first note: singers start a phrase on the downbeat
    or with a short pickup (the last beat, or the last eighth, of the bar before)."""
    m = tuple(meter)
    d = SUBDIVISIONS[m]
    q = d * beats_per_bar(m)
    eighth = d // 2 if d == 4 else d // 3
    p = np.full(q, 0.15 / q)
    beats = np.arange(0, q, d)
    p[beats] += 0.15 / len(beats)
    p[0] += 0.35
    p[q - d] += 0.25
    p[q - eighth] += 0.10
    return p / p.sum()


#: Longest grid step (s): hypotheses with slow beats get grid levels below the sixteenth, each
#: point with onset probability FINER_ONSET_PROB.
MAX_STEP_S = 0.16
FINER_ONSET_PROB = 0.04
#: Rate (onsets/s) of onsets that no grid point explains (glide fragments, split notes, triplets).
BACKGROUND_RATE = 0.05
#: Onset timing error (s, 1 sd) around a grid point, and its part proportional to the pulse period.
TIMING_SD_S, TIMING_SD_REL = 0.035, 0.05
#: Log-normal tempo prior on the counted beat: centre (bpm) and spread (octaves, 1 sd).
TEMPO_PRIOR = {(4, 4): (100.0, 0.5), (3, 4): (110.0, 0.5), (6, 8): (66.0, 0.5), (2, 4): (100.0, 0.5)}
#: Beat-per-pulse ratios tried on each tracked pulse.
BEAT_PER_PULSE = (0.5, 1.0, 1.5, 2.0, 3.0)
#: Allowed counted-beat tempo range (bpm).
MIN_BPM, MAX_BPM = 36.0, 220.0


def position_classes(meter) -> np.ndarray:
    """Class of each grid position in one bar, shape (subdivisions * beats_per_bar,)."""
    m = tuple(meter)
    d = SUBDIVISIONS[m]
    bpb = beats_per_bar(m)
    q = np.arange(d * bpb)
    cls = np.full(len(q), SUB2)
    half = d // 2 if d == 4 else d // 3  # sub-beat step: eighths
    cls[q % half == 0] = SUB1
    cls[q % d == 0] = BEAT
    if bpb == 4:
        cls[q == 2 * d] = HALF_BAR
    cls[0] = DOWNBEAT
    return cls


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


def onsets_from_notes(notes: Sequence[Note]) -> Onsets:
    notes = sorted(notes, key=lambda n: n.onset_s)
    on = np.array([n.onset_s for n in notes], dtype=float)
    off = np.array([max(n.offset_s, n.onset_s) for n in notes], dtype=float)
    pitch = np.array([n.midi_pitch for n in notes], dtype=float)
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
    nxt = np.append(on[1:], off_g[-1] if len(off_g) else 0.0)
    hold = np.maximum(nxt - on, 0.02)
    gap = np.concatenate([[np.inf], on[1:] - np.maximum.accumulate(off_g)[:-1]]) if len(on) else np.zeros(0)
    med = float(np.median(hold)) if len(hold) else 1.0
    sal = np.sqrt(np.clip(hold / med, 0.25, 4.0))
    sal = sal + 0.5 * (gap > 0.25)
    sal = sal / max(float(np.mean(sal)), 1e-9) if len(sal) else sal
    return Onsets(on, sal, hold, gap, pitch, float(off_g.max()) if len(off_g) else 0.0)


# ---- periodicity ---------------------------------------------------------------------------------
def lag_grid() -> np.ndarray:
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
        hist += np.bincount(np.round(d[ok] / res).astype(int), weights=(w[k:] * w[:-k])[ok], minlength=nb)[:nb]
    centers = np.arange(nb) * res
    span = max(ons.time_s[-1] - ons.time_s[0], 1e-3)
    hist *= span / np.maximum(span - centers, 0.25 * span)
    sd = np.sqrt(2 * jitter_s ** 2 + (rel_sd * grid) ** 2)
    kern = np.exp(-0.5 * ((centers[None, :] - grid[:, None]) / sd[:, None]) ** 2)
    kern /= kern.sum(axis=1, keepdims=True)
    return kern @ hist


def pulse_candidates(ons: Onsets, n: int = 2, lo_s: float = 0.2, hi_s: float = 1.3) -> list[float]:
    """Most salient periodicities (s) of the onsets within [lo_s, hi_s], strongest first."""
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


def _snap_to_onsets(t: np.ndarray, onset_s: np.ndarray, tol_s: float) -> np.ndarray:
    if len(onset_s) == 0:
        return t
    j = np.clip(np.searchsorted(onset_s, t), 1, len(onset_s) - 1)
    left, right = onset_s[j - 1], onset_s[j]
    near = np.where(np.abs(t - left) < np.abs(t - right), left, right)
    out = np.where(np.abs(near - t) < tol_s, near, t)
    return np.maximum.accumulate(out + np.arange(len(out)) * 1e-6)


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

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / (self.beat_per_pulse * self.track.period_s)


#: Names of the hypothesis features, in order (see :func:`hypotheses_on_track`).
FEATURE_NAMES = (
    "onset_ll", "timing_ll", "background", "is_3/4", "is_6/8",
    "z_4/4", "z2_4/4", "z_3/4", "z2_3/4", "z_6/8", "z2_6/8",
    "repeat_1bar", "repeat_2bar", "repeat_4bar", "hold_downbeat", "hold_beat",
)


def make_track(ons: Onsets, pulses_s: np.ndarray, max_lag_pulses: float) -> Track:
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
    "onset_ll", "hold_downbeat", "hold_beat", "phrase_start_downbeat", "phrase_end_downbeat",
    "phrase_end_beat", "triad_downbeat", "leap_downbeat", "last_note_downbeat", "bar_chord_fit",
    "half_bar_chord_fit", "hold_profile", "first_position",
)
#: Weights of :data:`PHASE_FEATURE_NAMES` in a bar phase's score.
PHASE_WEIGHTS = {
    (4, 4): np.array([2.770, 1.001, 1.025, -0.031, 1.026, 0.153, 0.131, -0.214, -0.841, 1.295, 0.551, 0.937, 1.243]),
    (3, 4): np.array([2.281, 2.301, 0.147, -1.851, 2.313, 0.153, -0.283, -0.132, -1.366, 0.556, 0.556, 0.575, 1.203]),
    (6, 8): np.array([3.936, 0.158, 3.627, -0.505, 1.635, -1.992, 0.814, -0.266, -1.392, 1.367, 0.762, 0.818, 0.859]),
}
PHASE_WEIGHTS[(2, 4)] = PHASE_WEIGHTS[(4, 4)]
#: A silence (s) longer than this separates phrases.
PHRASE_GAP_S = 0.25


@dataclass
class NoteCues:
    """Per-onset cues for the bar phase, shape (n,) each."""

    log_hold: np.ndarray      # log2 of the time to the next onset (s)
    phrase_start: np.ndarray  # 1 after a silence
    phrase_end: np.ndarray    # 1 before a silence, and the last note
    triad: np.ndarray         # 1 when the pitch class is in the tonic triad of the key
    leap: np.ndarray          # |interval| from the previous note, semitones (capped at 7)
    pitch_class: np.ndarray   # 0-11 (absolute)


def note_cues(ons: Onsets, tonic_pc: int, minor: bool) -> NoteCues:
    n = len(ons.time_s)
    gap_after = np.append(ons.gap_before_s[1:], np.inf)
    pc = np.mod(np.round(ons.pitch).astype(int) - tonic_pc, 12)
    triad = np.isin(pc, (0, 3 if minor else 4, 7)).astype(float)
    leap = np.minimum(np.abs(np.diff(ons.pitch, prepend=ons.pitch[:1] if n else ons.pitch)), 7.0)
    return NoteCues(np.log2(np.maximum(ons.hold_s, 0.02)), (ons.gap_before_s > PHRASE_GAP_S) * 1.0,
                    (gap_after > PHRASE_GAP_S) * 1.0, triad, leap,
                    np.mod(np.round(ons.pitch).astype(int), 12))


def _triad_templates() -> np.ndarray:
    """The 24 major and minor triads as pitch-class indicator rows, shape (24, 12)."""
    t = np.zeros((24, 12))
    for root in range(12):
        t[root, [root, (root + 4) % 12, (root + 7) % 12]] = 1.0
        t[12 + root, [root, (root + 3) % 12, (root + 7) % 12]] = 1.0
    return t


TRIADS = _triad_templates()


def _chord_fit_by_shift(pos: np.ndarray, pc: np.ndarray, weight: np.ndarray, q_len: int,
                        seg_len: int) -> np.ndarray:
    """For every shift, the mean over segments (bars) of the largest share of note weight one
    triad covers. ``pos``: grid index of each note (>= 0). Returns shape (q_len,)."""
    if len(pos) == 0:
        return np.zeros(q_len)
    sh = np.arange(q_len)[:, None]
    seg = (pos[None, :] + sh) // seg_len
    n_seg = int(seg.max()) + 1
    idx = ((sh * n_seg + seg) * 12 + pc[None, :]).ravel()
    hist = np.bincount(idx, weights=np.broadcast_to(weight, seg.shape).ravel(),
                       minlength=q_len * n_seg * 12).reshape(q_len, n_seg, 12)
    tot = hist.sum(axis=2)
    fit = (hist @ TRIADS.T).max(axis=2) / np.maximum(tot, 1e-9)
    wts = np.sqrt(tot)
    return (fit * wts).sum(axis=1) / np.maximum(wts.sum(axis=1), 1e-9)


def _phase_features(cues: NoteCues, owner: np.ndarray, q_len: int, d: int, ll_shift: np.ndarray,
                    n_on: int, beat_s: float, meter, extra: int) -> np.ndarray:
    """Per-shift phase features, shape (q_len, len(PHASE_FEATURE_NAMES))."""
    own = owner >= 0
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

    f = np.zeros((q_len, len(PHASE_FEATURE_NAMES)))
    f[:, 0] = ll_shift / n_on
    f[:, 1] = mean_at_down(rel_hold) - rel_hold.mean() if len(p0) else 0.0
    f[:, 2] = mean_at_beats(rel_hold) - rel_hold.mean() if len(p0) else 0.0
    f[:, 3] = share_at_down(cues.phrase_start[own])
    f[:, 4] = share_at_down(cues.phrase_end[own])
    pe = cues.phrase_end[own]
    f[:, 5] = (beat_mask @ per_pos(pe)) / max(float(pe.sum()), 1.0)
    tri = cues.triad[own]
    f[:, 6] = mean_at_down(tri) - (tri.mean() if len(tri) else 0.0)
    lp = cues.leap[own]
    f[:, 7] = (mean_at_down(lp) - (lp.mean() if len(lp) else 0.0)) / 7.0
    if own[-1]:
        f[:, 8] = (down == np.mod(owner[-1], q_len)).astype(float)
    # harmonic rhythm: with the right bar lines each bar's notes fit one chord better
    pcs = cues.pitch_class[own]
    w = np.minimum(2.0 ** rel_hold, 2.0)
    o = owner[own] - int(owner[own].min()) + int(owner[own].min()) % q_len
    half = q_len // 2 if (q_len // d) % 2 == 0 else q_len
    f[:, 9] = _chord_fit_by_shift(o, pcs, w, q_len, q_len)
    f[:, 10] = _chord_fit_by_shift(o, pcs, w, q_len, half)
    # note lengths against the meter's profile of lengths by position
    prof16 = HOLD_PROFILE[tuple(meter)]
    prof = np.full(q_len, float(prof16.min()))
    prof[:: 2 ** extra] = prof16
    centred = rel_hold - rel_hold.mean() if len(rel_hold) else rel_hold
    hs = per_pos(centred)  # (p,)
    pos_idx = (np.arange(q_len)[None, :] + shifts[:, None]) % q_len  # (shift, p) -> bar position
    f[:, 11] = (prof[pos_idx] @ hs) / max(len(p0), 1)
    # the first note starts a phrase: downbeat or a short pickup
    first16 = first_position_prior(meter)
    first = np.full(q_len, 0.2 / q_len)
    first[:: 2 ** extra] = first16
    starts = own & ((cues.phrase_start > 0) | (np.arange(len(owner)) == 0))
    if starts.any():
        ps = np.bincount(np.mod(owner[starts], q_len), minlength=q_len)
        f[:, 12] = (np.log(first)[pos_idx] @ ps) / ps.sum()
    return f


def hypotheses_on_track(ons: Onsets, track: Track, meters, ratios, cues: NoteCues) -> list[Hypothesis]:
    out = []
    n_on = max(len(ons.time_s), 1)
    for g in ratios:
        beat_s = g * track.period_s
        bpm = 60.0 / beat_s
        if not (MIN_BPM <= bpm <= MAX_BPM):
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
            pf = _phase_features(cues, owner, q_len, d, ll_s, n_on, beat_s, m, extra)
            shift = int(np.argmax(pf @ PHASE_WEIGHTS[m]))
            bar_u = g * bpb
            rep = _repetition(track, (bar_u, 2 * bar_u, 4 * bar_u), tol_u=0.25 * g / d0)
            z = np.log2(bpm / 100.0)
            mi = {(4, 4): 0, (3, 4): 1, (6, 8): 2}.get(m, 0)
            tempo_f = np.zeros(6)
            tempo_f[2 * mi], tempo_f[2 * mi + 1] = z, z * z
            f = np.concatenate([
                [ll_s[shift] / n_on, ll_timing / n_on, n_bg / n_on, float(mi == 1), float(mi == 2)],
                tempo_f, rep, pf[shift, 1:3]])
            h = Hypothesis(m, g, d, shift, f, track)
            h.phase_features = pf
            out.append(h)
    return out


def _grid_times(h: Hypothesis) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat times (s) of a hypothesis over its pulses."""
    d = h.steps_per_beat
    bpb = beats_per_bar(h.meter)
    pulses = h.track.pulses_s
    k = np.arange(len(pulses), dtype=float)
    step = h.beat_per_pulse / d
    j = np.arange(int(np.ceil(k[-1] / step)) + 1)
    t = np.interp(j * step, k, pulses)
    pos = (j + h.shift) % (d * bpb)
    return t[pos % d == 0], t[pos == 0]


def rhythm_hypotheses(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                      meters=METERS) -> tuple[Onsets, list[Hypothesis]]:
    """All metrical hypotheses for a take with their features (unscored)."""
    ons = onsets_from_notes(notes)
    if len(ons.time_s) < 3:
        return ons, []
    from .key import estimate_key

    key = estimate_key(notes)
    cues = note_cues(ons, key.tonic_pitch_class, key.mode == "minor")
    if tempo_bpm is not None:
        periods, ratios = [60.0 / float(tempo_bpm)], (1.0,)
    else:
        periods, ratios = pulse_candidates(ons), BEAT_PER_PULSE
    hyps = []
    for p in periods:
        pulses = track_pulse(ons, p)
        track = make_track(ons, pulses, max(ratios) * 4 * 4 + 1)
        hyps += hypotheses_on_track(ons, track, meters, ratios, cues)
    return ons, hyps


# ---- public --------------------------------------------------------------------------------------
#: Weights of :data:`FEATURE_NAMES` in a hypothesis' score (per onset).
FEATURE_WEIGHTS = np.array([6.441, 1.152, -0.057, -0.782, 1.198, 1.104, -3.605, 2.856, -2.824, -0.478, -3.103, 0.769, 2.130, 3.576, 2.053, -0.693])


def estimate_rhythm(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                    meter: tuple[int, int] | None = None, onset_strength=None) -> Rhythm:
    meters = (tuple(meter),) if meter is not None else METERS
    default_meter = meters[0]
    ons, hyps = rhythm_hypotheses(notes, duration_s, tempo_bpm, meters)
    if not hyps:
        bpm = float(tempo_bpm) if tempo_bpm else 100.0
        start = float(ons.time_s[0]) if len(ons.time_s) else 0.0
        end = max(duration_s, start + 60.0 / bpm)
        beats = np.arange(start, end, 60.0 / bpm)
        return Rhythm(beats, beats[:: beats_per_bar(default_meter)], default_meter, bpm, 0.0, 0.0)
    for h in hyps:
        h.score = float(FEATURE_WEIGHTS @ h.features)
    hyps.sort(key=lambda h: h.score, reverse=True)
    best = hyps[0]
    beats, downbeats = _grid_times(best)
    ibi = np.diff(beats)
    tempo = 60.0 / float(np.median(ibi)) if len(ibi) else best.tempo_bpm
    others = [h for h in hyps if h.meter != best.meter]
    n = len(ons.time_s)
    meter_conf = 1.0 / (1.0 + np.exp(-n * (best.score - others[0].score))) if others else 1.0
    return Rhythm(beats, downbeats, best.meter, tempo, float(meter_conf), 0.5)


@dataclass
class GridStatistics:
    """Statistics of a take's onsets on its known sixteenth-note grid (for fitting templates).

    Attributes are per bar position (shape (steps per bar,)) unless noted.
    """

    filled: np.ndarray      # grid points that carry an onset
    total: np.ndarray       # all grid points
    hold_sum: np.ndarray    # sum of log2(hold / beat) of the onsets there, centred per take
    first_position: int     # bar position of the first onset
    n_background: int       # onsets no grid point explains


def grid_statistics(notes: Sequence[Note], beats_s: np.ndarray, downbeats_s: np.ndarray,
                    meter) -> GridStatistics:
    """Onset statistics of a take on a known grid, for fitting :data:`ONSET_PROB`,
    :data:`HOLD_PROFILE` and :data:`FIRST_POSITION_PROB`."""
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
    first = int((owner[0] - first_down * d) % q) if own[0] else -1
    return GridStatistics(np.bincount(pos[filled], minlength=q).astype(float),
                          np.bincount(pos, minlength=q).astype(float),
                          np.bincount(on_pos, weights=rel, minlength=q), first, int(n_bg))
