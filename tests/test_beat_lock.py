"""The chosen grid's beats locked onto the onsets' places in the beat (listen.beat_lock)."""

import numpy as np
import pytest

from hum2band.listen import beat_lock
from hum2band.listen.beat_lock import LockSettings, carry_downbeats, lock_beats


def beliefs(places_twelfths, sure=0.9):
    """Log place beliefs (n, 13) sure of each onset's place (twelfths of a beat)."""
    n = len(places_twelfths)
    p = np.full((n, 13), (1.0 - sure) / 12)
    p[np.arange(n), np.asarray(places_twelfths) % 12] = sure
    return np.log(p)


def syncopated_take(period_s=0.6, bars=8, drift=0.0):
    """True beats (s) drifting by ``drift`` of the period over the take, and onsets on each beat
    and on its "and"'s last sixteenth (places 0 and 9), the model sure of both."""
    n_beats = 4 * bars + 1
    ibi = period_s * (1.0 + drift * np.arange(n_beats - 1) / (n_beats - 1))
    beats = np.concatenate([[0.5], 0.5 + np.cumsum(ibi)])
    onsets, places = [], []
    for a, b in zip(beats[:-1], beats[1:]):
        onsets += [a, a + 0.75 * (b - a)]
        places += [0, 9]
    return beats, np.array(onsets), beliefs(places)


def max_miss_beats(locked, true):
    """The largest distance (in beats) of a true beat under the onsets from the nearest locked
    beat."""
    period = np.median(np.diff(true))
    return max(np.min(np.abs(locked - t)) for t in true) / period


def test_locked_beats_come_back_from_a_stretch_half_a_beat_off():
    true, on, lp = syncopated_take()
    grid = true.copy()
    grid[8:18] += 0.5 * 0.6  # ten beats of the grid on the "and"
    locked = lock_beats(on, lp, grid)
    assert max_miss_beats(locked, true[:-1]) < 0.05
    assert locked[0] <= on[0] and locked[-1] > on[-1]


def test_without_evidence_the_grid_stays():
    true, on, _ = syncopated_take()
    flat = np.log(np.full((len(on), 13), 1.0 / 13))
    grid = true + 0.3  # half a beat late everywhere
    locked = lock_beats(on, flat, grid)
    inside = grid[(grid >= on[0] - 0.05) & (grid <= on[-1] + 0.05)]
    assert max(np.min(np.abs(locked - g)) for g in inside) < 0.02


def test_locked_beats_follow_the_singers_drift():
    true, on, lp = syncopated_take(drift=0.15)
    grid = np.linspace(true[0], true[-1], len(true))  # a steady grid at the mean tempo
    locked = lock_beats(on, lp, grid)
    assert max_miss_beats(locked, true[:-1]) < 0.06


def test_compiled_and_python_forward_passes_agree():
    true, on, lp = syncopated_take(bars=2)
    grid = true + 0.1
    s = LockSettings()
    args = None

    def run(fn):
        nonlocal args
        frames = np.arange(0.0, on[-1] + 1.0, s.hop_s)
        period = beat_lock.local_period_s(grid, frames)
        p = np.exp(lp)
        place = np.concatenate([p[:, :12], p[:, :1]], axis=1)
        start = (frames <= on[0]) & (frames >= on[0] - 0.8)
        anchor = np.zeros(len(frames))
        return fn(on, place, p[:, 12].copy(), frames, period, anchor, start, s.timing_sd_s,
                  s.tempo_weight, s.shortest, s.longest, s.hop_s)

    a_score, a_prev = run(beat_lock._lock_path_py)
    b_score, b_prev = run(beat_lock._lock_path)
    assert np.array_equal(a_prev, b_prev)
    assert np.allclose(a_score, b_score, equal_nan=True)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        lock_beats(np.array([1.0, 2.0]), np.zeros((2, 5)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError):
        lock_beats(np.array([1.0]), np.zeros((1, 13)), np.array([0.0]))


def test_bar_lines_carry_over_by_the_grids_count():
    grid = np.arange(20) * 0.5
    downs = grid[1::4]  # bar 1 on the grid's second beat
    moved = grid + 0.03
    assert np.allclose(carry_downbeats(moved, grid, downs, 4), downs + 0.03)
    # a beat more in the new beats early on: the count the most beats agree on wins
    extra = np.sort(np.append(moved, 0.26))
    got = carry_downbeats(extra, grid, downs, 4)
    assert np.allclose(got[1:], downs[1:] + 0.03)
    assert set(np.round(got, 6)) <= set(np.round(extra, 6))
