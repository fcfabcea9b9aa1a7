"""Unit tests of the rhythm stage's building blocks on hand-built onsets, with expectations worked
out by hand from each function's documented meaning (onset merging and accents, the onset-pair
histogram, pulse candidates, the pulse tracker and its smoothing, the onsets on a pulse track,
melodic repetition, the sixteenth grid, the bar-phase cues and features, the chord fit, bar-line
fixes, the steady fallback grid and the grid statistics, the pop tempo slope).

The hypothesis scoring itself (``hypotheses_on_track``, ``choose_phase``, ``rhythm_hypotheses``,
``estimate_rhythm``) is checked on whole takes in ``test_rhythm_key.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hum2band.errors import OptionError
from hum2band.listen import rhythm as R
from hum2band.listen.rhythm import (HOLD_PROFILE, PHASE_FEATURE_NAMES, Hypothesis, NoteCues, Onsets,
                                    Track)
from hum2band.music.melody import Note

SQ2PI = math.sqrt(2 * math.pi)
NF = len(PHASE_FEATURE_NAMES)


def close(actual, desired, **kw):
    np.testing.assert_allclose(actual, desired, rtol=1e-7, atol=1e-12, **kw)


def col(name: str) -> int:
    return PHASE_FEATURE_NAMES.index(name)


def onsets(times, salience=None, end_s=None, pitch=None) -> Onsets:
    """Onsets built by hand (only what the function under test reads matters)."""
    t = np.asarray(times, dtype=float)
    sal = np.ones(len(t)) if salience is None else np.asarray(salience, dtype=float)
    hold = np.append(np.diff(t), 0.5) if len(t) else np.zeros(0)
    gap = np.concatenate([[np.inf], np.zeros(max(len(t) - 1, 0))]) if len(t) else np.zeros(0)
    p = np.full(len(t), 60.0) if pitch is None else np.asarray(pitch, dtype=float)
    end = (float(t[-1]) + 0.5 if len(t) else 0.0) if end_s is None else end_s
    return Onsets(t, sal, hold, gap, p, end)


# ---- onsets_from_notes ---------------------------------------------------------------------------
def test_onsets_merge_close_attacks_and_weigh_long_notes_and_phrase_starts():
    notes = [
        Note(1.6, 3.6, 65.0),
        Note(0.52, 1.2, 64.0),     # 20 ms after the 0.5 attack: the same event, but it ends later
        Note(0.0, 0.4, 60.0),
        Note(0.5, 0.9, 62.0),
        Note(1.0, float("inf"), 61.0),   # ignored: no finite offset
        Note(float("nan"), 2.0, 61.0),   # ignored: no onset
        Note(2.0, 2.2, float("nan")),    # ignored: no pitch
    ]
    ons = R.onsets_from_notes(notes)
    np.testing.assert_allclose(ons.time_s, [0.0, 0.5, 1.6])
    np.testing.assert_allclose(ons.pitch, [60.0, 62.0, 65.0])   # the first of a merged group
    # held until the next onset; the last until its offset
    np.testing.assert_allclose(ons.hold_s, [0.5, 1.1, 2.0])
    # silence before: none known before the first; 0.5 - 0.4; 1.6 - 1.2 (the merged group's end)
    assert ons.gap_before_s[0] == np.inf
    np.testing.assert_allclose(ons.gap_before_s[1:], [0.1, 0.4])
    assert ons.end_s == pytest.approx(3.6)
    # salience: sqrt(hold / median hold) (+0.5 after a silence over 0.25 s), scaled to mean 1
    med = 1.1
    raw = np.array([math.sqrt(0.5 / med) + 0.5, 1.0, math.sqrt(2.0 / med) + 0.5])
    np.testing.assert_allclose(ons.salience, raw / raw.mean())


def test_onset_merging_is_measured_from_the_kept_onset():
    # 0.04 is merged into 0.0; 0.08 is 80 ms after the kept 0.0 and stays; 0.13 stays (50 ms is
    # not "closer than 50 ms"); the notes end at 0.04, 0.5, 0.6 and 1.0
    notes = [Note(0.0, 0.04, 60), Note(0.04, 0.05, 61), Note(0.08, 0.5, 62), Note(0.13, 0.6, 63),
             Note(0.125 + 0.875, 1.25, 64)]
    ons = R.onsets_from_notes(notes)
    np.testing.assert_allclose(ons.time_s, [0.0, 0.08, 0.13, 1.0])
    # exactly 50 ms apart (binary-exact times): two onsets
    two = R.onsets_from_notes([Note(0.0, 0.05, 60), Note(0.05, 0.5, 62)])
    np.testing.assert_allclose(two.time_s, [0.0, 0.05])


def test_salience_clips_the_hold_ratio_and_needs_a_gap_over_a_quarter_second():
    # holds 0.125 (clipped to a quarter of the median), 1, 1, 1 and 8 (clipped to 4 medians);
    # the gap before the third note is exactly 0.25 s: no phrase-start bonus
    notes = [Note(0.0, 0.1, 60), Note(0.125, 0.875, 62), Note(1.125, 2.0, 64),
             Note(2.125, 3.0, 65), Note(3.125, 11.125, 67)]
    ons = R.onsets_from_notes(notes)
    np.testing.assert_allclose(ons.hold_s, [0.125, 1.0, 1.0, 1.0, 8.0])
    np.testing.assert_allclose(ons.gap_before_s[1:], [0.025, 0.25, 0.125, 0.125])
    raw = np.array([0.5 + 0.5, 1.0, 1.0, 1.0, 2.0])
    np.testing.assert_allclose(ons.salience, raw / raw.mean())
    assert ons.end_s == 11.125


def test_salience_is_scaled_to_mean_one_also_when_it_is_below_one():
    # holds 1, 1, 1, 0.25, 0.25 (median 1): sqrt -> 1 (+0.5 for the first), 1, 1, 0.5, 0.5
    notes = [Note(0.0, 1.0, 60), Note(1.0, 2.0, 62), Note(2.0, 3.0, 64), Note(3.0, 3.25, 65),
             Note(3.25, 3.5, 67)]
    ons = R.onsets_from_notes(notes)
    raw = np.array([1.5, 1.0, 1.0, 0.5, 0.5])
    np.testing.assert_allclose(ons.salience, raw / 0.9)
    assert ons.salience.mean() == pytest.approx(1.0)


def test_a_note_that_ends_before_it_starts_ends_at_its_onset():
    ons = R.onsets_from_notes([Note(0.0, 0.3, 60), Note(1.0, 0.5, 62)])
    assert ons.end_s == 1.0
    np.testing.assert_allclose(ons.hold_s, [1.0, 0.02])   # a zero hold counts as 20 ms


def test_onset_strength_scales_salience_by_the_attack():
    notes = [Note(0.25, 1.0, 60), Note(1.0, 1.5, 62), Note(1.5, 2.0, 64)]
    plain = R.onsets_from_notes(notes)
    raw = np.array([math.sqrt(1.5) + 0.5, 1.0, 1.0])   # holds 0.75, 0.5, 0.5 (median 0.5)
    np.testing.assert_allclose(plain.salience, raw / raw.mean())
    # a two-frame curve -2 -> 6 over 0-2 s reads -1 (clipped to 0), 2 and 4 at the onsets; its
    # mean is 2, so the factors are 0.5 + 0.5 * (0, 2, 4) / 2 = 0.5, 1, 1.5
    loud = R.onsets_from_notes(notes, onset_strength=(np.array([0.0, 2.0]), np.array([-2.0, 6.0])))
    scaled = raw * np.array([0.5, 1.0, 1.5])
    np.testing.assert_allclose(loud.salience, scaled / scaled.mean())
    # half as loud (-1 -> 3, mean 1 at the onsets): the same factors
    half = R.onsets_from_notes(notes, onset_strength=(np.array([0.0, 2.0]), np.array([-1.0, 3.0])))
    np.testing.assert_allclose(half.salience, scaled / scaled.mean())
    # a silent curve, a curve of one frame or of mismatched lengths change nothing
    for curve in [(np.array([0.0, 2.0]), np.array([0.0, 0.0])),
                  (np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0]))]:
        np.testing.assert_allclose(R.onsets_from_notes(notes, onset_strength=curve).salience,
                                   plain.salience)


def test_no_notes_give_empty_onsets():
    ons = R.onsets_from_notes([Note(float("nan"), 1.0, 60.0)])
    for arr in (ons.time_s, ons.salience, ons.hold_s, ons.gap_before_s, ons.pitch):
        assert isinstance(arr, np.ndarray) and arr.shape == (0,)
    assert ons.end_s == 0.0


# ---- periodicity ---------------------------------------------------------------------------------
def test_lag_grid_is_log_spaced_48_per_octave_from_0_1_to_1_6_s():
    g = R.lag_grid()
    assert len(g) == 4 * 48 + 1
    assert g[0] == pytest.approx(0.1) and g[48] == pytest.approx(0.2)
    assert g[-1] == pytest.approx(1.6)
    np.testing.assert_allclose(g[1:] / g[:-1], 2.0 ** (1 / 48))


def _kernel_peak(lag, jitter=0.03, rel=0.03):
    """Height of a normalised Gaussian (sd from jitter and relative spread) on 5 ms bins."""
    sd = math.sqrt(2 * jitter ** 2 + (rel * lag) ** 2)
    return 0.005 / (SQ2PI * sd), sd


def test_lag_histogram_of_one_pair():
    # one pair 0.4 s apart with saliences 2 and 1: weight 2, and a pair as long as the take
    # is counted 4 times (the span correction never divides by less than a quarter of the span)
    ons = onsets([1.0, 1.4], salience=[2.0, 1.0])
    h = R.lag_histogram(ons)
    grid = R.lag_grid()
    assert h.shape == grid.shape
    i = 96                                   # grid[96] = 0.1 * 2**2 = 0.4 s
    peak, sd = _kernel_peak(0.4)
    assert h[i] == pytest.approx(8.0 * peak, rel=1e-6)
    assert int(np.argmax(h)) == i
    g = grid[100]                            # a neighbour: the Gaussian's value there
    pk, sdg = _kernel_peak(g)
    assert h[100] == pytest.approx(8.0 * pk * math.exp(-0.5 * ((0.4 - g) / sdg) ** 2), rel=1e-6)
    # a narrower kernel: jitter 10 ms, no relative spread
    pk, _ = _kernel_peak(0.4, 0.01, 0.0)
    assert R.lag_histogram(ons, jitter_s=0.01, rel_sd=0.0)[i] == pytest.approx(8.0 * pk, rel=1e-6)


def test_lag_histogram_of_three_onsets_corrects_for_the_span():
    # 1.0, 1.4, 1.8 with saliences 2, 1, 0.5: pairs 0.4 apart weigh 2*1 + 1*0.5 = 2.5, counted
    # span / (span - lag) = 0.8 / 0.4 = 2 times; the pair 0.8 apart weighs 1, counted 4 times
    ons = onsets([1.0, 1.4, 1.8], salience=[2.0, 1.0, 0.5])
    h = R.lag_histogram(ons)
    assert h[96] == pytest.approx(2.5 * 2 * _kernel_peak(0.4)[0], rel=1e-6)
    assert h[144] == pytest.approx(1.0 * 4 * _kernel_peak(0.8)[0], rel=1e-6)   # grid[144] = 0.8


def test_lag_histogram_ignores_pairs_1_6_s_apart_or_more_and_single_onsets():
    assert not R.lag_histogram(onsets([0.0, 1.6])).any()
    assert not R.lag_histogram(onsets([2.0, 4.0, 6.0])).any()
    one = R.lag_histogram(onsets([1.0]))
    assert one.shape == R.lag_grid().shape and not one.any()


def _nearest(lag):
    g = R.lag_grid()
    return float(g[np.argmin(np.abs(g - lag))])


def test_pulse_candidates_of_steady_quarters():
    # onsets every 0.5 s: the strongest period is 0.5 s, the next 1.0 s; nothing at 0.25 s
    ons = onsets(0.5 * np.arange(17))
    assert R.pulse_candidates(ons) == [_nearest(0.5), _nearest(1.0)]
    assert R.pulse_candidates(ons, n=1) == [_nearest(0.5)]


def test_pulse_candidates_prefer_periods_near_0_45_s():
    # onsets every 0.3 s: 0.6 s is 0.415 octaves from 0.45 s, 0.3 s is 0.585 octaves away, so
    # 0.6 s ranks first although the 0.3 s peak is a little sharper (narrower kernel)
    # (the weighting moves the 0.3 s peak up by at most one grid step, towards 0.45 s)
    ons = onsets(0.3 * np.arange(25))
    first, second = R.pulse_candidates(ons)
    assert first == _nearest(0.6)
    assert 0 <= math.log2(second / 0.3) * 48 <= 1


def test_pulse_candidates_add_half_the_pulse_when_the_histogram_has_it():
    # eighths every 0.25 s: the pulse is 0.5 s, and 0.25 s is as strong in the histogram
    ons = onsets(0.25 * np.arange(9))
    assert R.pulse_candidates(ons, n=1) == [_nearest(0.5), _nearest(0.25)]
    # a fine pulse exactly at the lower bound is still looked for
    lo = 0.5 * _nearest(0.5)
    assert R.pulse_candidates(ons, n=1, lo_s=lo) == [_nearest(0.5), _nearest(0.25)]
    # not below the lower bound
    assert R.pulse_candidates(ons, n=1, lo_s=0.3) == [_nearest(0.5)]


def test_pulse_candidates_within_bounds_include_the_bounds():
    ons = onsets(0.4 * np.arange(13))
    g = R.lag_grid()
    assert g[96] == 0.4
    assert R.pulse_candidates(ons, n=1, hi_s=0.4) == [0.4]
    assert R.pulse_candidates(ons, n=1, lo_s=0.4) == [0.4]


def test_pulse_candidates_keep_periods_a_twelfth_apart_whatever_their_product():
    # onsets every 0.4 s, three candidates: 0.4, 0.8 and 1.2 s (0.8 * 1.2 is about 1)
    first, second, third = R.pulse_candidates(onsets(0.4 * np.arange(13)), n=3)
    assert (first, second) == (0.4, 0.8)                  # grid points 96 and 144
    assert abs(math.log2(third / 1.2)) * 48 <= 1


def test_pulse_candidates_fall_back_to_the_median_interval():
    # onsets 2 s apart: no pair under 1.6 s, no peak: the median interval, clipped to the range
    ons = onsets([1.0, 3.0])
    assert R.pulse_candidates(ons) == [1.3]
    assert R.pulse_candidates(ons, hi_s=1.0) == [1.0]
    assert R.pulse_candidates(onsets([0.0, 0.5, 1.0, 1.5]), lo_s=2.0, hi_s=3.0) == [2.0]
    assert R.pulse_candidates(onsets([1.0])) == []


# ---- pulse tracking ------------------------------------------------------------------------------
def test_dp_pulse_on_steady_onsets_hits_every_onset():
    t = 0.5 * np.arange(9)
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), t, atol=1e-12)


def test_dp_pulse_fills_a_missing_onset_at_equal_steps():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 3.5, 4.0])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), 0.5 * np.arange(9), atol=1e-12)


def test_dp_pulse_follows_a_linear_tempo_ramp():
    # intervals 0.50, 0.51, ..., 0.69 s: every onset is a pulse (no equal-step fill-ins)
    t = np.concatenate([[0.0], np.cumsum(0.5 + 0.01 * np.arange(20))])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), t, atol=1e-12)


def test_dp_pulse_takes_the_salient_onsets_at_its_period():
    # eighths every 0.25 s, the quarters accented (salience 2 against 0.5): a 0.5 s pulse takes
    # the quarters; a step of a quarter period costs far more than an onset brings
    t = 0.25 * np.arange(17)
    sal = np.where(np.arange(17) % 2 == 0, 2.0, 0.5)
    np.testing.assert_allclose(R.dp_pulse(onsets(t, salience=sal), 0.5), t[::2], atol=1e-12)


def test_dp_pulse_ends_within_one_and_a_half_periods_of_the_last_onset():
    # 2.75 s is 0.75 s (two steps of 0.375 s) after 2.0 s: it costs more than it brings, and the
    # chain may end 1.5 periods before the last onset -- at 2.0 s
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.75])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), t[:5], atol=1e-12)
    # 3.25 s is further than that: the chain must reach it, in two steps of 0.625 s from 2.0 s
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.25])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), [0.0, 0.5, 1.0, 1.5, 2.0, 2.625, 3.25],
                               atol=1e-12)


def test_dp_pulse_penalises_a_step_off_the_period_by_its_squared_log_ratio():
    # 1.0 -> 1.6 s is one step of 0.6 s against a running and a starting period of 0.5 s: it
    # costs (TIGHTNESS + ANCHOR) * ln(1.2)^2 = 14 * 0.0332 = 0.465. A last onset worth more than
    # that is taken, one worth less is left (the chain may end 1.5 periods before it)
    cost = (R.TIGHTNESS + R.ANCHOR) * math.log(1.2) ** 2
    t = [0.0, 0.5, 1.0, 1.6]
    for s, want in [(cost + 0.015, t), (cost - 0.015, t[:3])]:
        got = R.dp_pulse(onsets(t, salience=[1.0, 1.0, 1.0, s]), 0.5)
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_dp_pulse_may_start_afresh_only_within_two_periods_of_the_first_onset():
    # 0.3 s after the first onset is no step of a 0.5 s pulse: the chain starts at 0.3 s
    t = np.array([0.0, 0.3, 0.8, 1.3, 1.8, 2.3])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), t[1:], atol=1e-12)
    # a phase jump at 1.25 s (2.5 periods in) must be bridged: the chain still starts at 0
    t = np.array([0.0, 0.5, 1.0, 1.25, 1.75, 2.25, 2.75, 3.25])
    # (from 1.0 s the bridge to 1.75 s in two steps costs 2.32, through 1.25 s a little more)
    got = R.dp_pulse(onsets(t), 0.5)
    assert got[0] == 0.0
    np.testing.assert_allclose(got[-4:], t[-4:], atol=1e-12)


def test_dp_pulse_starts_a_chain_at_an_onset_within_half_a_period_of_the_first():
    # 0.1 s is too close to 0 s to follow it; the pulse runs 0.1, 0.6, 1.1, 1.6
    t = np.array([0.0, 0.1, 0.6, 1.1, 1.6])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), t[1:], atol=1e-12)


def test_dp_pulse_jumps_a_long_rest_from_the_last_onset_before_it():
    # a rest of 3.8 s (over MAX_GAP_PULSES = 6 pulses) after an off-beat onset at 1.7 s: the
    # chain jumps from that onset, in 7 equal steps (3.8 / 7 = 0.54 s, nearest the running
    # period), not from an earlier onset that would fit the beat better
    t = np.array([0.0, 0.5, 1.0, 1.7, 5.5, 6.0, 6.5])
    want = np.concatenate([[0.0, 0.5, 1.0, 1.7], 1.7 + 3.8 * np.arange(1, 8) / 7, [6.0, 6.5]])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), want, atol=1e-12)


def test_dp_pulse_follows_an_onset_half_a_period_later_only_at_a_cost():
    # 5.25 s is half a period after 5.0 s: a step there costs 14 ln(2)^2 = 6.7, more than its
    # salience 3 brings, and the chain cannot skip 5.0 s to reach it: it ends at 5.0 s
    t = np.array([0.0, 0.5, 1.0, 1.5, 5.0, 5.25])
    got = R.dp_pulse(onsets(t, salience=[1, 1, 1, 1, 1, 3]), 0.5)
    np.testing.assert_allclose(got, 0.5 * np.arange(11), atol=1e-12)


def test_dp_pulse_steps_over_an_off_beat_onset_when_the_beat_fits_better():
    # 1.5 -> 2.5 s in two exact steps beats 1.5 -> 2.1 -> 2.5 (steps of 0.6 and 0.4 s cost 0.47
    # and 0.84, more than the onset at 2.1 s brings)
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.1, 2.5])
    np.testing.assert_allclose(R.dp_pulse(onsets(t), 0.5), 0.5 * np.arange(6), atol=1e-12)


def _gauss(sd, r):
    k = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (k / sd) ** 2)
    return w / w.sum()


@pytest.mark.parametrize("width, sd, r", [(0.5, 1.0, 3), (1.0, 2.0, 5), (0.1, 0.5, 2)])
def test_smooth_pulses_spreads_one_displaced_pulse_by_gaussian_weights(width, sd, r):
    # pulses every 0.5 s, the 8th moved by 0.1 s: the moving average keeps the line and spreads
    # the 0.1 s over the neighbours within r pulses, by the normalised Gaussian weights
    # (1 sd = width / 0.5 s pulses, at least half a pulse; r = ceil(2.5 sd))
    lin = 0.5 * np.arange(15)
    t = lin.copy()
    t[7] += 0.1
    want = lin.copy()
    want[7 - r: 7 + r + 1] += 0.1 * _gauss(sd, r)
    np.testing.assert_allclose(R.smooth_pulses(t, width), want, atol=1e-12)


def test_smooth_pulses_keeps_a_line_and_short_tracks():
    lin = 1.0 + 0.5 * np.arange(12)
    for width in (0.1, 0.5, 1.0):
        np.testing.assert_allclose(R.smooth_pulses(lin, width), lin, atol=1e-12)
    four = np.array([0.0, 0.5, 1.1, 1.5])
    np.testing.assert_array_equal(R.smooth_pulses(four, 0.5), four)
    # five pulses are smoothed (the same spread as above, sd 1 pulse, r = 3)
    five = np.array([0.0, 0.5, 1.1, 1.5, 2.0])
    want = 0.5 * np.arange(5) + 0.1 * _gauss(1.0, 3)[1:6]
    np.testing.assert_allclose(R.smooth_pulses(five, 0.5), want, atol=1e-12)


def test_smooth_pulses_extends_the_ends_by_the_first_and_last_four_pulses():
    # four pulses 0.5 s apart, then 0.6 s, then the last four 0.5 s apart again: with a window of
    # +-2 pulses (sd half a pulse) the first two and the last two pulses see only straight lines
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.1, 2.7, 3.3, 3.9, 4.4, 4.9, 5.4])
    out = R.smooth_pulses(t, 0.1)
    assert out.shape == t.shape
    np.testing.assert_allclose(out[[0, 1, -2, -1]], [0.0, 0.5, 4.9, 5.4], atol=1e-12)


def test_track_pulse_covers_the_onsets_and_a_pulse_and_a_half_around_them():
    # onsets every 0.5 s from 1.0 to 5.0, the last note ends at 5.4: the pulses reach from
    # 1.0 - 0.75 to 5.4 + 0.75 at the tracked period
    ons = onsets(1.0 + 0.5 * np.arange(9), end_s=5.4)
    np.testing.assert_allclose(R.track_pulse(ons, 0.5), 0.5 + 0.5 * np.arange(12), atol=1e-9)


def test_track_pulse_reaches_a_pulse_and_a_half_of_the_tracked_period_beyond_the_onsets():
    # tracked from a 0.45 s candidate, the onsets every 0.5 s give 0.5 s pulses: the track
    # reaches 0.75 s before the first onset and after the last note's end (5.3 + 0.75 = 6.05)
    ons = onsets(1.0 + 0.5 * np.arange(9), end_s=5.3)
    np.testing.assert_allclose(R.track_pulse(ons, 0.45), 0.5 + 0.5 * np.arange(12), atol=1e-9)


def test_track_pulse_extends_each_end_at_its_own_period():
    # 16 onsets 0.5 s apart, then 7 at 0.55 s; the last note ends 0.2 s after its onset
    t = np.concatenate([1.0 + 0.5 * np.arange(16), 8.5 + 0.55 * np.arange(1, 8)])
    out = R.track_pulse(onsets(t, end_s=t[-1] + 0.2), 0.5)
    assert len(out) == len(t) + 2
    np.testing.assert_allclose(out[[0, 1, -2, -1]], [0.5, 1.0, t[-1], t[-1] + 0.55], atol=1e-9)


def test_track_pulse_of_one_or_two_onsets():
    # one onset at 2.0 s (ends 2.4): a steady grid at the period from 2.0 - 0.75 to 2.4 + 0.75
    np.testing.assert_allclose(R.track_pulse(onsets([2.0], end_s=2.4), 0.5),
                               [1.25, 1.75, 2.25, 2.75], atol=1e-12)
    # 1.1 s is too close to 1.0 s to follow it; the pulse 1.1 -> 1.65 s (0.55 s) reaches 1.5 of
    # its periods before the first onset (0.175 s) and after the last note's end (2.775 s)
    np.testing.assert_allclose(R.track_pulse(onsets([1.0, 1.1, 1.65], end_s=1.95), 0.5),
                               [0.55, 1.1, 1.65, 2.2, 2.75], atol=1e-12)
    # two onsets a period apart: they, one pulse before and one after
    np.testing.assert_allclose(R.track_pulse(onsets([1.0, 1.5], end_s=1.7), 0.5),
                               [0.5, 1.0, 1.5, 2.0], atol=1e-12)


# ---- onsets on a pulse track ---------------------------------------------------------------------
def test_make_track_puts_onsets_in_pulse_units_and_pairs_them_for_repetition():
    # pulses every 0.5 s, so an onset at t s is at pulse 2t; holds in pulses: 2, 2.4, 3.4, 2.2, 2
    # (the last to the end of its note at 6 s); pitches round to 60 60 60 60 62
    t = [0.0, 1.0, 2.2, 3.9, 5.0]
    ons = onsets(t, end_s=6.0, pitch=[60.3, 59.8, 60.2, 60.4, 61.6])
    tr = R.make_track(ons, 0.5 * np.arange(14), 8.0)
    np.testing.assert_allclose(tr.onset_u, [0.0, 2.0, 4.4, 7.8, 10.0])
    assert tr.period_s == pytest.approx(0.5)
    # pairs up to 8 pulses apart (the 10-pulse pair is left out), sorted by distance; a pair
    # matches with the same rounded pitch and lengths within 2**0.4 of each other:
    #   2.0 (0,1) 2.4/2: yes   2.2 (3,4) pitch: no   2.4 (1,2) 3.4/2.4: no   3.4 (2,3) 2.2/3.4: no
    #   4.4 (0,2) 3.4/2: no    5.6 (2,4) pitch: no   5.8 (1,3) 2.2/2.4: yes  7.8 (0,3) 2.2/2: yes
    #   8.0 (1,4) pitch: no
    np.testing.assert_allclose(tr.pair_du, [2.0, 2.2, 2.4, 3.4, 4.4, 5.6, 5.8, 7.8, 8.0])
    np.testing.assert_allclose(tr.pair_match_cum, [0, 1, 1, 1, 1, 1, 1, 2, 3, 3])


def test_make_track_compares_short_holds_and_may_have_no_pairs():
    # holds of a quarter and half a pulse are an octave apart: no match
    tr = R.make_track(onsets([0.0, 0.25], end_s=0.75), np.arange(4.0), 2.0)
    np.testing.assert_allclose(tr.pair_du, [0.25])
    np.testing.assert_allclose(tr.pair_match_cum, [0.0, 0.0])
    # the last note is held to its end: 1 pulse like the first, a match
    last = R.make_track(onsets([0.0, 1.0], end_s=2.0), np.arange(4.0), 2.0)
    np.testing.assert_allclose(last.pair_match_cum, [0.0, 1.0])
    none = R.make_track(onsets([0.0, 1.0, 2.0]), np.arange(4.0), 0.0)
    assert none.pair_du.shape == (0,)
    np.testing.assert_array_equal(none.pair_match_cum, [0.0])


def test_repetition_is_the_match_share_near_a_lag_minus_the_overall_share():
    # 8 pairs, 5 of them matching (overall share 5/8)
    tr = Track(np.arange(10.0), np.zeros(3), np.array([1, 1, 1, 1, 2, 2, 2, 3], dtype=float),
               np.cumsum([0, 1, 1, 1, 0, 0, 0, 1, 1]).astype(float))
    got = R._repetition(tr, (1.0, 2.0, 3.0), 0.25)
    # lag 1: 3 of 4 match; lag 2: 1 of 3; lag 3: one pair only (fewer than 3: no evidence)
    np.testing.assert_allclose(got, [3 / 4 - 5 / 8, 1 / 3 - 5 / 8, 0.0])
    # a window [lag - tol, lag + tol) that takes in the lags 1 and 2
    np.testing.assert_allclose(R._repetition(tr, [1.5], 0.51), [4 / 7 - 5 / 8])
    empty = Track(np.arange(10.0), np.zeros(3), np.zeros(0), np.zeros(1))
    np.testing.assert_array_equal(R._repetition(empty, (4.0, 8.0), 0.25), [0.0, 0.0])


def test_onset_grid_assigns_onsets_to_the_nearest_point_with_a_timing_likelihood():
    pulses = np.array([0.0, 0.5, 1.0, 2.0, 3.0])        # the period grows from 0.5 to 1.0 s
    ons = onsets([0.5, 1.02, 1.08, 2.45, 3.0])
    tr = Track(pulses, np.interp(ons.time_s, pulses, np.arange(5.0)), np.zeros(0), np.zeros(1))
    j0, n_pts, filled, ll, n_bg, owner = R._onset_grid(ons, tr, 1.0)

    def ll_of(dev, period):   # Gaussian log-density, sd from 35 ms and 5 % of the local period
        sd = math.sqrt(0.035 ** 2 + (0.05 * period) ** 2)
        return -0.5 * (dev / sd) ** 2 - math.log(SQ2PI * sd)

    # grid points 1..4 (the onsets' nearest pulses); the local period at a pulse is interpolated
    # between the neighbouring intervals: 0.5 at pulse 1, 0.75 at pulse 2, 1.0 at pulses 3 and 4
    assert (j0, n_pts) == (1, 4)
    np.testing.assert_array_equal(filled, [True, True, False, True])
    assert ll == pytest.approx(ll_of(0.0, 0.5) + ll_of(0.02, 0.75) + ll_of(0.0, 1.0))
    # 1.08 s loses pulse 2 to 1.02 s; 2.45 s is 0.45 s from pulse 3, nowhere near enough
    np.testing.assert_array_equal(owner, [1, 2, -1, -1, 4])
    assert n_bg == 2


# ---- bar-phase cues ------------------------------------------------------------------------------
D4, Fs4, A4, F4, G4, D5 = 62, 66, 69, 65, 67, 74


def test_note_cues_in_d_major_and_d_minor():
    ons = Onsets(np.arange(7.0), np.ones(7), np.array([0.5, 0.01, 1.0, 0.25, 2.0, 0.5, 4.0]),
                 np.array([np.inf, 0.0, 0.3, 0.25, 0.1, 1.0, 0.0]),
                 np.array([D4, Fs4, A4, F4, D5 + 0.4, 50.2, G4]), 7.5)
    major = R.note_cues(ons, 2, False)
    np.testing.assert_allclose(major.log_hold, [-1.0, math.log2(0.02), 0.0, -2.0, 1.0, -1.0, 2.0])
    np.testing.assert_array_equal(major.phrase_start, [1, 0, 1, 0, 0, 1, 0])   # gap over 0.25 s
    np.testing.assert_array_equal(major.phrase_end, [0, 1, 0, 0, 1, 0, 1])     # and the last
    np.testing.assert_array_equal(major.triad, [1, 1, 1, 0, 1, 1, 0])          # D F# A
    np.testing.assert_allclose(major.leap, [0, 4, 3, 4, 7, 7, 7])             # capped at 7
    np.testing.assert_array_equal(major.pitch_class, [2, 6, 9, 5, 2, 2, 7])
    assert np.issubdtype(major.pitch_class.dtype, np.integer)   # an index (chord histograms)
    np.testing.assert_array_equal(major.chords, R.diatonic_triads(2, False))
    minor = R.note_cues(ons, 2, True)
    np.testing.assert_array_equal(minor.triad, [1, 0, 1, 1, 1, 1, 0])          # D F A
    np.testing.assert_array_equal(minor.chords, R.diatonic_triads(2, True))


def test_diatonic_triads_spell_the_keys_chords():
    def rows(tonic, minor):
        return [set(np.flatnonzero(r)) for r in R.diatonic_triads(tonic, minor)]

    C, Cs, D, E, F, Fs, G, Gs, A, B = 0, 1, 2, 4, 5, 6, 7, 8, 9, 11
    assert rows(0, False) == [{C, E, G}, {D, F, A}, {E, G, B}, {F, A, C}, {G, B, D}, {A, C, E}]
    assert rows(2, False) == [{D, Fs, A}, {E, G, B}, {Fs, A, Cs}, {G, B, D}, {A, Cs, E},
                              {B, D, Fs}]
    assert rows(9, True) == [{A, C, E}, {C, E, G}, {D, F, A}, {E, G, B}, {E, Gs, B}, {F, A, C},
                             {G, B, D}]
    assert set(np.unique(R.diatonic_triads(9, True))) == {0.0, 1.0}


C_MAJOR = [{0, 4, 7}, {2, 5, 9}, {4, 7, 11}, {5, 9, 0}, {7, 11, 2}, {9, 0, 4}]


def chord_fit(bars, chords=C_MAJOR):
    """Mean over bars, weighted by the square root of each bar's note weight, of the largest
    share of the bar's weight that one chord covers. ``bars``: lists of (pitch class, weight)."""
    num = den = 0.0
    for notes in bars:
        tot = sum(w for _, w in notes)
        best = max(sum(w for pc, w in notes if pc in ch) for ch in chords)
        num += math.sqrt(tot) * best / tot
        den += math.sqrt(tot)
    return num / den


def test_chord_fit_by_shift_takes_each_bars_best_chord():
    C, D, E, F, G, A, B = 0, 2, 4, 5, 7, 9, 11
    pos = np.arange(8)
    pc = np.array([C, E, G, D, F, A, C, B])
    w = np.array([1, 1, 1, 2, 1, 1, 1, 1], dtype=float)
    got = R._chord_fit_by_shift(pos, pc, w, np.array([0, 1]), 4, R.diatonic_triads(0, False))
    # shift s puts grid point j at bar position j + s (4 per bar):
    # shift 0: bars C E G D(2) | F A C B; shift 1: C E G | D(2) F A C | B
    want = [chord_fit([[(C, 1), (E, 1), (G, 1), (D, 2)], [(F, 1), (A, 1), (C, 1), (B, 1)]]),
            chord_fit([[(C, 1), (E, 1), (G, 1)], [(D, 2), (F, 1), (A, 1), (C, 1)], [(B, 1)]])]
    np.testing.assert_allclose(got, want)
    assert want[0] == pytest.approx((0.6 * math.sqrt(5) + 0.75 * 2) / (math.sqrt(5) + 2))
    # one light note: it fits its chord entirely, whatever its weight
    one = R._chord_fit_by_shift(np.array([0]), np.array([C]), np.array([0.25]), np.array([0]), 4,
                                R.diatonic_triads(0, False))
    np.testing.assert_allclose(one, [1.0])
    empty = R._chord_fit_by_shift(np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0),
                                  np.array([0, 1, 2]), 4, R.diatonic_triads(0, False))
    np.testing.assert_array_equal(empty, np.zeros(3))
    assert R._chord_fit_by_shift(pos, pc, w, np.zeros(0, dtype=int), 4,
                                 R.diatonic_triads(0, False)).shape == (0,)


def test_phase_model_names_the_weights_of_a_meter_and_style():
    assert R.phase_model((4, 4), 2) == "4/4 pop"     # the last of the three 4/4 styles
    assert R.phase_model((4, 4), 1) == "4/4 folk"
    assert R.phase_model((4, 4), 0) == "4/4 folk"
    assert R.phase_model([2, 4], 2) == "4/4 pop"
    assert R.phase_model((2, 4), 1) == "4/4 folk"
    assert R.phase_model((3, 4), 1) == "3/4"
    assert R.phase_model((6, 8), 0) == "6/8"
    for m, s in [((4, 4), 2), ((4, 4), 0), ((3, 4), 0), ((6, 8), 1)]:
        assert R.phase_model(m, s) in R.PHASE_WEIGHTS


def _hypotheses_of(pattern_16ths, beat_s, bars=8):
    """Every hypothesis on the pulse of a melody sung in time: the same bar of onsets (sixteenths
    from the bar line) ``bars`` times, a scale tune around C."""
    step = beat_s / 4
    times = [(b * 16 + k) * step for b in range(bars) for k in pattern_16ths]
    notes = [Note(t, t + 0.9 * step, 60.0 + (2 * i) % 7) for i, t in enumerate(times)]
    ons = R.onsets_from_notes(notes)
    track = R.make_track(ons, R.track_pulse(ons, beat_s / 2), 33.0)
    return R.hypotheses_on_track(ons, track, R.METERS, R.BEAT_PER_PULSE, R.note_cues(ons, 0, False))


def test_the_pop_tempo_slope_reads_only_four_four_grids_that_fit_the_pop_template():
    """``z_4/4_pop`` is log2(tempo / 100 bpm) on a 4/4 hypothesis whose best onset template is
    the pop one and 0 on every other, and it moves the score by POP_TEMPO_SLOPE per octave: a
    syncopated ballad's slow reading gains on its double."""
    col_ = R.POP_TEMPO_COLUMN
    assert R.FEATURE_NAMES[col_] == "z_4/4_pop" and len(R.FEATURE_WEIGHTS) == len(R.FEATURE_NAMES)
    assert R.FEATURE_WEIGHTS[col_] == R.POP_TEMPO_SLOPE < 0
    seen = set()
    for pattern in ([0, 3, 6, 10, 13], [0, 4, 8, 12], [0, 2, 4, 6, 8, 10, 12, 14]):
        for h in _hypotheses_of(pattern, 60.0 / 65.0):
            pop = tuple(h.meter) == (4, 4) and h.phase_model == "4/4 pop"
            seen.add(pop)
            want = math.log2(h.tempo_bpm / 100.0) if pop else 0.0
            assert h.features[col_] == pytest.approx(want, abs=1e-9)
            without = h.features.copy()
            without[col_] = 0.0
            assert float(R.FEATURE_WEIGHTS @ h.features) - float(R.FEATURE_WEIGHTS @ without) == \
                pytest.approx(R.POP_TEMPO_SLOPE * want, abs=1e-9)
    assert seen == {True, False}   # both kinds of grid were met
    # A syncopated sixteenth-note bar at 65 bpm fits the pop template; read at double time its
    # eighths fit a folk one: only the slow reading gets the slope, 0.5 x 0.62 octave below 100.
    got = {round(h.tempo_bpm): h.features[col_] for h in _hypotheses_of([0, 3, 6, 10, 13], 60 / 65)
           if tuple(h.meter) == (4, 4)}
    assert got[65] == pytest.approx(math.log2(0.65), abs=0.01) and got[130] == 0.0
    assert R.POP_TEMPO_SLOPE * got[65] == pytest.approx(0.31, abs=0.01)


def cues_of(rows, beat_s, chords):
    """NoteCues from rows (rel_hold, phrase_start, phrase_end, triad, leap, pitch class), the
    hold given relative to the beat (log2 of beats)."""
    a = np.array(rows, dtype=float)
    return NoteCues(a[:, 0] + math.log2(beat_s), a[:, 1], a[:, 2], a[:, 3], a[:, 4],
                    a[:, 5].astype(int), chords)


def spikes(n, at):
    """An array of n zeros with values at some indices: {index: value}."""
    out = np.zeros(n)
    for i, v in at.items():
        out[i] = v
    return out


def test_phase_features_of_a_four_four_phrase_worked_by_hand():
    C, D, E, F, G = 0, 2, 4, 5, 7
    # grid point (sixteenths; 16 per bar, 4 per beat) and cues of each note; the 4th note is
    # left to the background (grid index -1): its cues must not count
    owner = np.array([2, 4, 16, -1, 18, 21, 32])
    rows = [  # rel hold (log2 beats), phrase start, phrase end, triad, leap, pitch class
        (0, 0, 0, 1, 0, G),
        (1, 0, 1, 1, 5, C),
        (1, 0, 0, 0, 2, D),
        (3, 1, 1, 1, 7, E),
        (-1, 0, 0, 0, 3, F),
        (-1, 1, 0, 1, 1, E),
        (3, 0, 1, 1, 4, C),
    ]
    cues = cues_of(rows, 0.5, R.diatonic_triads(0, False))
    q, n_on = 16, 7
    weights = spikes(NF, {0: 1.0})           # rank the shifts by the onset likelihood alone
    ll_shift = n_on * np.arange(q, dtype=float)
    f = R._phase_features(cues, owner, q, 4, ll_shift, n_on, 0.5, (4, 4), 0, weights)
    assert f.shape == (16, NF)
    close(f[:, col("onset_ll")], np.arange(16))

    # Shift s puts grid point j at bar position (j + s) % 16, so the downbeat under shift s is
    # the note position (-s) % 16. The six notes sit at positions 2, 4, 0, 2, 5, 0 with relative
    # holds 0, 1, 1, -1, -1, 3 (mean 0.5): mean hold 2 at position 0, -0.5 at 2, 1 at 4, -1 at 5.
    # A downbeat on an empty position reads the mean: difference 0.
    close(f[:, col("hold_downbeat")],
                               spikes(16, {0: 1.5, 14: -1.0, 12: 0.5, 11: -1.5}))
    # beats are the positions p with (p + s) % 4 == 0: {0, 4} (holds 1, 3, 1), {2} (0, -1),
    # {5} (-1), or no note
    close(f[:, col("hold_beat")],
                               np.tile([5 / 3 - 0.5, 0.0, -0.5 - 0.5, -1.0 - 0.5], 4))
    # phrase ends at positions 4 and 0 (notes 2 and 7): shares on the downbeat, on the beats
    close(f[:, col("phrase_end_downbeat")], spikes(16, {0: 0.5, 12: 0.5}))
    close(f[:, col("phrase_end_beat")], np.tile([1.0, 0, 0, 0], 4))
    # tonic-triad notes: share 4/6; by position 0: 1/2, 2: 1/2, 4: 1, 5: 1
    close(f[:, col("triad_downbeat")],
                               spikes(16, {0: -1 / 6, 14: -1 / 6, 12: 1 / 3, 11: 1 / 3}))
    # leaps 0 5 2 3 1 4 (mean 2.5); by position 0: 3, 2: 1.5, 4: 5, 5: 1; in 7ths of an octave
    close(f[:, col("leap_downbeat")],
                               spikes(16, {0: 0.5 / 7, 14: -1 / 7, 12: 2.5 / 7, 11: -1.5 / 7}))
    # the last note (grid 32, position 0) on the downbeat
    close(f[:, col("last_note_downbeat")], spikes(16, {0: 1.0}))
    # note lengths (centred) against the 4/4 profile of lengths by bar position
    pos = [2, 4, 0, 2, 5, 0]
    rel = np.array([0, 1, 1, -1, -1, 3]) - 0.5
    prof = HOLD_PROFILE[(4, 4)]
    close(f[:, col("hold_profile")],
                               [sum(prof[(p + s) % 16] * r for p, r in zip(pos, rel)) / 6
                                for s in range(16)])
    # phrase starts: the first note (position 2) and the note after a breath (position 5; the
    # background note's breath does not count), half each. Bar positions: 0 downbeat, 12 the last
    # beat, 14 the last eighth, 4 and 8 the other beats
    close(f[:, col("start_downbeat")], spikes(16, {14: 0.5, 11: 0.5}))
    close(f[:, col("start_last_beat")], spikes(16, {10: 0.5, 7: 0.5}))
    close(f[:, col("start_last_eighth")], spikes(16, {12: 0.5, 9: 0.5}))
    close(f[:, col("start_other_beat")],
                               spikes(16, {2: 0.5, 6: 0.5, 15: 0.5, 3: 0.5}))
    close(f[:, col("first_downbeat")], spikes(16, {14: 1.0}))
    close(f[:, col("first_last_beat")], spikes(16, {10: 1.0}))
    close(f[:, col("first_last_eighth")], spikes(16, {12: 1.0}))
    close(f[:, col("first_other_beat")], spikes(16, {2: 1.0, 6: 1.0}))
    # notes held 1.5 beats or more: positions 4, 0, 0 -- on the downbeat, or half a bar after it
    close(f[:, col("long_downbeat")], spikes(16, {0: 2 / 3, 12: 1 / 3}))
    close(f[:, col("long_mid_bar")], spikes(16, {8: 2 / 3, 4: 1 / 3}))

    # chord fit, for the six best shifts by the weights (10..15), the lowest of them elsewhere;
    # a note weighs its length in beats, at most 2: G 1, C 2, D 2, F 0.5, E 0.5, C 2 at grid
    # points 2, 4, 16, 18, 21, 32 -- bar (16) and half-bar (8) of each under shift s: (j + s) // n
    G1, C2, D2, F5, E5 = (G, 1), (C, 2), (D, 2), (F, 0.5), (E, 0.5)
    bars = {10: [[G1, C2], [D2, F5, E5], [C2]], 11: [[G1, C2], [D2, F5], [E5, C2]],
            12: [[G1], [C2, D2, F5], [E5, C2]], 13: [[G1], [C2, D2, F5], [E5, C2]],
            14: [[G1, C2, D2], [F5, E5, C2]], 15: [[G1, C2, D2], [F5, E5, C2]]}
    halves = {10: [[G1, C2], [D2, F5, E5], [C2]], 11: [[G1, C2], [D2, F5], [E5], [C2]],
              12: [[G1], [C2], [D2, F5], [E5], [C2]], 13: [[G1], [C2], [D2, F5], [E5], [C2]],
              14: [[G1, C2], [D2], [F5, E5], [C2]], 15: [[G1, C2], [D2], [F5, E5], [C2]]}
    for name, groups in (("bar_chord_fit", bars), ("half_bar_chord_fit", halves)):
        top = {s: chord_fit(g) for s, g in groups.items()}
        low = min(top.values())
        close(f[:, col(name)], [top.get(s, low) for s in range(16)],
                                   err_msg=name)
    assert len(set(np.round(f[:, col("bar_chord_fit")], 9))) > 2


def test_phase_features_of_a_three_four_phrase_with_background_ends():
    C, D, E = 0, 2, 4
    # the first and the last note are background; the first counted note (grid 0) is held
    # exactly 1.5 beats and starts a phrase; one phrase end (grid 5)
    owner = np.array([-1, 0, 5, 8, -1])
    rows = [(2, 1, 0, 1, 0, C), (math.log2(1.5), 1, 0, 1, 0, C), (0, 0, 1, 1, 4, E),
            (0, 0, 0, 0, 2, D), (2, 0, 1, 1, 2, C)]
    cues = cues_of(rows, 0.5, R.diatonic_triads(0, False))
    q, n_on = 12, 5
    f = R._phase_features(cues, owner, q, 4, -n_on * np.arange(12.0), n_on, 0.5, (3, 4), 0,
                          spikes(NF, {0: 1.0}))
    assert not f[:, col("last_note_downbeat")].any()         # the last note is not on the grid
    for name in ("first_downbeat", "first_last_beat", "first_last_eighth", "first_other_beat"):
        assert not f[:, col(name)].any(), name               # nor is the first
    # the phrase start at position 0: bar positions 0 (downbeat), 8 (last beat), 10 (last
    # eighth) and 4 (the other beat) of a 3/4 bar
    close(f[:, col("start_downbeat")], spikes(12, {0: 1.0}))
    close(f[:, col("start_last_beat")], spikes(12, {8: 1.0}))
    close(f[:, col("start_last_eighth")], spikes(12, {10: 1.0}))
    close(f[:, col("start_other_beat")], spikes(12, {4: 1.0}))
    # one phrase end, at position 5: on the downbeat under shift 7, on a beat under 3, 7, 11
    close(f[:, col("phrase_end_downbeat")], spikes(12, {7: 1.0}))
    close(f[:, col("phrase_end_beat")], spikes(12, {3: 1.0, 7: 1.0, 11: 1.0}))
    # a note held exactly 1.5 beats is long; three beats to the bar have no middle
    close(f[:, col("long_downbeat")], spikes(12, {0: 1.0}))
    assert not f[:, col("long_mid_bar")].any()
    # chord fit on whole bars only (an odd number of beats): C (weight 1.5), E, D at grid 0, 5,
    # 8; the six best shifts are 0..5 (the onset likelihood falls with the shift)
    C15, E1, D1 = (C, 1.5), (E, 1), (D, 1)
    top = {s: chord_fit([[C15, E1, D1]]) for s in range(4)}
    top.update({4: chord_fit([[C15, E1], [D1]]), 5: chord_fit([[C15, E1], [D1]])})
    want = [top.get(s, min(top.values())) for s in range(12)]
    close(f[:, col("bar_chord_fit")], want)
    close(f[:, col("half_bar_chord_fit")], want)
    assert top[0] == pytest.approx(2.5 / 3.5)


def test_phase_features_on_a_grid_finer_than_sixteenths():
    # one extra level (32nds, 8 steps a beat): the 4/4 length profile sits on the even points,
    # the odd points get its lowest value. Notes at 32nd 0 (held 1 beat) and 5 (held 1/4)
    cues = cues_of([(0, 1, 0, 1, 0, 0), (-2, 0, 1, 1, 2, 4)], 1.0, R.diatonic_triads(0, False))
    f = R._phase_features(cues, np.array([0, 5]), 32, 8, np.zeros(32), 2, 1.0, (4, 4), 1,
                          np.zeros(NF))
    prof = np.full(32, HOLD_PROFILE[(4, 4)].min())
    prof[::2] = HOLD_PROFILE[(4, 4)]
    close(f[:, col("hold_profile")],
          [(prof[s] * 1 + prof[(5 + s) % 32] * -1) / 2 for s in range(32)])


def test_phase_features_of_a_six_eight_start():
    # 6/8: 6 sixteenths per dotted-quarter beat, 12 per bar; the last eighth is 2 before the bar
    cues = cues_of([(0, 1, 1, 1, 0, 0)], 0.75, R.diatonic_triads(0, False))
    f = R._phase_features(cues, np.array([0]), 12, 6, np.zeros(12), 1, 0.75, (6, 8), 0,
                          np.zeros(NF))
    close(f[:, col("start_last_eighth")], spikes(12, {10: 1.0}))
    close(f[:, col("start_last_beat")], spikes(12, {6: 1.0}))
    close(f[:, col("first_last_eighth")], spikes(12, {10: 1.0}))


def test_phase_features_without_notes_on_the_grid_keep_only_the_onset_likelihood():
    cues = cues_of([(0, 1, 1, 1, 0, 0), (1, 0, 1, 0, 2, 2)], 0.5, R.diatonic_triads(0, False))
    ll = np.arange(16.0)
    f = R._phase_features(cues, np.array([-1, -1]), 16, 4, ll, 2, 0.5, (4, 4), 0, np.ones(NF))
    close(f[:, 0], ll / 2)
    assert not f[:, 1:].any()


# ---- grid times and bar-line fixes ---------------------------------------------------------------
def hyp(pulses, onset_u, meter, beat_per_pulse, steps_per_beat, shift):
    track = Track(np.asarray(pulses, dtype=float), np.asarray(onset_u, dtype=float), np.zeros(0),
                  np.zeros(1))
    return Hypothesis(meter, beat_per_pulse, steps_per_beat, shift, np.zeros(16), track)


def test_grid_times_follow_the_pulses_and_reach_back_a_beat_before_the_first_note():
    # pulses 1.0, 1.6, 2.0, ... 4.0; the first note at pulse 0.4; beat = 1 pulse in eighths
    # (2 grid steps), 3/4. The grid reaches back to a beat before the first note's pulse (at
    # the first pulse period, 0.6 s) and on to the last pulse
    pulses = [1.0, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0]
    beats, downs = R._grid_times(hyp(pulses, [0.4, 2.7], (3, 4), 1.0, 2, 2))
    close(beats, [0.4, 1.0, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0])
    close(downs, [0.4, 2.0, 3.5])
    # shift 1: the beats fall on the half pulses (eighth steps in between the pulses)
    beats, downs = R._grid_times(hyp(pulses, [0.4, 2.7], (3, 4), 1.0, 2, 1))
    close(beats, [0.7, 1.3, 1.8, 2.25, 2.75, 3.25, 3.75])
    close(downs, [0.7, 2.25, 3.75])
    # a beat of two pulses reaches back two pulses
    beats, downs = R._grid_times(hyp(pulses, [0.4, 2.7], (3, 4), 2.0, 2, 0))
    close(beats, [-0.2, 1.0, 2.0, 3.0, 4.0])
    close(downs, [1.0, 4.0])
    # a first note later in the track: the grid starts at the first pulse
    beats, downs = R._grid_times(hyp(pulses, [3.2, 4.0], (3, 4), 1.0, 2, 2))
    close(beats, pulses)
    close(downs, [2.0, 3.5])


def test_fix_errors_measure_each_bar_phase_against_a_downbeat_and_a_pickup():
    # pulses every 0.5 s from 1.0 s: grid point j (eighths) at 1.0 + 0.25 j, j = -2 .. 12, 3/4.
    # Under shift s the downbeats are the j with (j + s) % 6 == 0
    h = hyp(1.0 + 0.5 * np.arange(7), [0.4], (3, 4), 1.0, 2, 4)
    # nearest downbeat to 2.0 s under shift 0: 1.0/2.5/4.0; 1: 2.25; 2: 2.0; 3: 1.75; 4: 1.5;
    # 5: 1.25/2.75
    down = [0.5, 0.25, 0.0, 0.25, 0.5, 0.75]
    close(R.fix_errors(h, 6, 1.5, 2.0, None), down)
    assert h.shift == 4                                   # left as it was
    # the first note at 1.5 s is grid point 2: steps to the next bar line 4, 3, 2, 1, 0, 5;
    # a pickup of one beat wants 2 steps, of half a beat 1
    pick1 = [2, 1, 0, 1, 2, 3]
    close(R.fix_errors(h, 6, 1.5, None, 1.0), pick1)
    close(R.fix_errors(h, 6, 1.5, None, 0.5), [3, 2, 1, 0, 1, 4])
    close(R.fix_errors(h, 6, 1.5, 2.0, 1.0), np.add(down, pick1))
    close(R.fix_errors(h, 6, 1.5, None, None), np.zeros(6))
    assert h.shift == 4


def test_fix_errors_of_a_grid_without_a_downbeat_are_infinite():
    # two pulses, 4/4 in sixteenths: grid points -4 .. 4; under shifts 5..11 none is a downbeat
    h = hyp([1.0, 1.5], [0.5], (4, 4), 1.0, 4, 0)
    err = R.fix_errors(h, 16, 1.0, 1.0, None)
    assert np.isinf(err[5:12]).all() and np.isfinite(err[:5]).all() and np.isfinite(err[12:]).all()
    assert err[0] == 0.0


def test_check_bar_fix_accepts_the_take_and_its_ends():
    for t in (0.0, 0.5, 5.0):
        R.check_bar_fix(t, None, 5.0)
    R.check_bar_fix(1e6, None)                            # no duration known
    R.check_bar_fix(None, 0.0, 5.0, (3, 4))
    R.check_bar_fix(None, 2.5, 5.0, (3, 4))


def test_check_bar_fix_explains_what_it_refuses():
    with pytest.raises(OptionError) as e:
        R.check_bar_fix(5.5, None, 5.0)
    assert str(e.value) == ("downbeat 5.5 s is outside the take (0 to 5.0 s): give the time in "
                            "seconds from the start of the take at which a bar starts")
    with pytest.raises(OptionError) as e:
        R.check_bar_fix(-1.0, None)
    assert str(e.value) == ("downbeat -1.0 s is outside the take: give the time in seconds from "
                            "the start of the take at which a bar starts")
    with pytest.raises(OptionError, match=r"less than a bar \(3 beats\)"):
        R.check_bar_fix(None, 3.0, 5.0, (3, 4))
    with pytest.raises(OptionError, match=r"less than a bar \(4 beats\)"):
        R.check_bar_fix(None, 4.0)


# ---- the steady fallback grid --------------------------------------------------------------------
def test_steady_rhythm_from_the_first_note():
    ons = onsets([1.0, 2.0], end_s=3.0)
    r = R._steady_rhythm(ons, 4.0, 120.0, (3, 4))
    close(r.beats_s, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    close(r.downbeats_s, [1.0, 2.5])
    assert (r.meter, r.tempo_bpm) == ((3, 4), 120.0)
    assert (r.meter_confidence, r.tempo_confidence) == (0.0, 0.0)
    # a pickup of one beat: bar 1 starts a beat after the first note
    r = R._steady_rhythm(ons, 4.0, 120.0, (3, 4), pickup_beats=1.0)
    close(r.beats_s, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    close(r.downbeats_s, [1.5, 3.0])
    # a downbeat at 2.25 s: the beats go through it, from the first at or after the first note
    r = R._steady_rhythm(ons, 4.0, 120.0, (3, 4), downbeat_s=2.25)
    close(r.beats_s, [1.25, 1.75, 2.25, 2.75, 3.25, 3.75])
    close(r.downbeats_s, [2.25, 3.75])
    # a downbeat before the first note
    r = R._steady_rhythm(ons, 4.0, 120.0, (3, 4), downbeat_s=0.2)
    close(r.beats_s, [1.2, 1.7, 2.2, 2.7, 3.2, 3.7])
    close(r.downbeats_s, [1.7, 3.2])
    # in 4/4 (at 120 bpm a beat is 0.5 s)
    r = R._steady_rhythm(ons, 4.0, 120.0, (4, 4), pickup_beats=1.0)
    close(r.downbeats_s, [1.5, 3.5])
    # no tempo: 100 bpm
    r = R._steady_rhythm(ons, 4.0, None, (4, 4))
    close(r.beats_s, [1.0, 1.6, 2.2, 2.8, 3.4])
    assert r.tempo_bpm == 100.0


def test_steady_rhythm_reaches_the_end_of_the_take_or_of_the_last_note():
    close(R._steady_rhythm(onsets([0.0], end_s=1.0), 2.0, 120.0, (4, 4)).beats_s,
          [0.0, 0.5, 1.0, 1.5])                          # a beat at 0 s is in the take
    close(R._steady_rhythm(onsets([1.0], end_s=3.0), 2.0, 120.0, (4, 4)).beats_s,
          [1.0, 1.5, 2.0, 2.5])                          # the note outlasts the take
    close(R._steady_rhythm(onsets([1.0], end_s=1.0), 0.5, 120.0, (4, 4)).beats_s, [1.0])
    r = R._steady_rhythm(onsets([]), 2.0, 120.0, (4, 4))
    close(r.beats_s, [0.0, 0.5, 1.0, 1.5])
    close(r.downbeats_s, [0.0])


# ---- grid statistics -----------------------------------------------------------------------------
def test_grid_statistics_count_onsets_and_holds_per_bar_position():
    # beats every 0.5 s from 0.5 s, bars (4/4) from 1.0 s: a pickup quarter, a bar of quarters,
    # a bar of four eighths and a half note, and a note after the last beat (background)
    on_off = [(0.5, 1.0), (1.0, 1.5), (1.5, 2.0), (2.0, 2.5), (2.5, 3.0), (3.0, 3.25),
              (3.25, 3.5), (3.5, 3.75), (3.75, 4.0), (4.0, 5.0), (5.6, 5.8)]
    notes = [Note(a, b, 60.0) for a, b in on_off]
    st = R.grid_statistics(notes, 0.5 + 0.5 * np.arange(10), [1.0, 3.0, 5.0], (4, 4))
    # sixteenths from 0.5 s (the pickup beat, bar position 12) to the sixteenth of the note after
    # the last beat (clamped to the last beat's grid point 36, bar position 0): 37 points
    total = np.full(16, 2.0)
    total[[0, 12, 13, 14, 15]] = 3
    close(st.total, total)
    # onsets by bar position: pickup 12; bar 1: 0, 4, 8, 12; bar 2: 0, 2, 4, 6, 8
    close(st.filled, spikes(16, {0: 2, 2: 1, 4: 2, 6: 1, 8: 2, 12: 2}))
    assert st.n_background == 1
    # log2 of the hold (time to the next onset) in beats, centred over the counted notes
    rel = np.array([0, 0, 0, 0, 0, -1, -1, -1, -1, math.log2(1.6 / 0.5)])
    c = rel - rel.mean()
    close(st.hold_sum, spikes(16, {12: c[0] + c[4], 0: c[1] + c[5], 4: c[2] + c[7],
                                   8: c[3] + c[9], 2: c[6], 6: c[8]}))


def test_grid_statistics_without_downbeats_count_bars_from_the_first_beat():
    # beats 0, 0.5, 1.0, 1.5 s; two sixteenths at 0.5 and 0.75 s (grid points 4 and 6): the
    # take's grid runs from point 4 to 6
    notes = [Note(0.5, 0.75, 60.0), Note(0.75, 1.0, 62.0)]
    beats = [0.0, 0.5, 1.0, 1.5]
    st = R.grid_statistics(notes, beats, [], (4, 4))
    close(st.total, spikes(16, {4: 1, 5: 1, 6: 1}))
    close(st.filled, spikes(16, {4: 1, 6: 1}))
    close(st.hold_sum, np.zeros(16))                      # equal holds: centred to 0
    assert st.n_background == 0
    # a bar from 1.0 s (beat 2, grid point 8): the notes are 12 and 10 sixteenths before it
    st = R.grid_statistics(notes, beats, [1.0], (4, 4))
    close(st.total, spikes(16, {12: 1, 13: 1, 14: 1}))
    close(st.filled, spikes(16, {12: 1, 14: 1}))


def test_the_tempo_is_the_beat_rate_of_the_body_of_the_take():
    # sixteen beats 0.5 s apart, then a ritardando of three beats 0.7 s apart: a musician says
    # 120 bpm with a ritardando; counting 19 beats in 9.6 s would say 118.75 and, with a longer
    # ritardando, more than 4 % slow
    beats = np.concatenate([np.arange(17) * 0.5, 8.0 + np.arange(1, 4) * 0.7])
    close(R.mean_beat_rate_bpm(beats, 0.0, beats[-1], 90.0), 120.0)
    # a drifting singer: the mean of the middle half of the intervals
    drift = np.cumsum(np.concatenate([[0.0], np.linspace(0.45, 0.55, 21)]))
    ibi = np.sort(np.diff(drift))
    close(R.mean_beat_rate_bpm(drift, 0.0, drift[-1], 90.0), 60.0 / ibi[5:16].mean())
    # by rank: intervals that are equal but for rounding choose the same ones
    close(R.mean_beat_rate_bpm(drift + 1e-12 * np.arange(len(drift)), 0.0, drift[-1], 90.0),
          60.0 / ibi[5:16].mean())
    # beats before the first note and after the last one (more than 0.1 s) are not counted
    padded = np.concatenate([[-1.5, -1.0], beats, [beats[-1] + 3.0]])
    close(R.mean_beat_rate_bpm(padded, 0.0, beats[-1], 90.0), 120.0)
    # fewer than three beats sung: all the beats; fewer than two: the fallback
    # (three intervals: the middle half by rank, rounded outwards, is all of them)
    close(R.mean_beat_rate_bpm(np.array([0.0, 0.4, 0.8, 1.3]), 1.0, 1.0, 90.0), 60.0 / 1.3 * 3)
    assert R.mean_beat_rate_bpm(np.array([2.0]), 0.0, 4.0, 90.0) == 90.0
