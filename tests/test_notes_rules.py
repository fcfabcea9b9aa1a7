"""The segmenter's rules one at a time, on small synthetic pitch tracks (issue 15).

Each test builds a pitch track (or the loudness / contour one step reads) frame by frame and
states the expected cut, onset, offset or pitch worked out by hand from the rule's meaning and
the settings' values, with the arithmetic in the comments. The frame hop is 10 ms, so the
default settings are, in frames: pitch hold 9, dip window 8, shortest note 10, bridged gap 3,
onset search 5, joined-offset search 8, joined-onset delay 2, longest scoop 20.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hum2band.listen.notes import (
    SegmenterSettings,
    _clean_up,
    _merge_scoops,
    _refine_onsets,
    _running_nanmedian,
    _runs,
    _smooth,
    _split_by_dips,
    _split_by_pitch,
    interval_pitches,
    median_filter_nearest,
    repair_octaves,
    repair_register,
    segment_notes,
    voicing,
)
from hum2band.listen.pitch import HOP_S, PitchTrack
from hum2band.music.melody import Note

S = SegmenterSettings()
HOP = HOP_S
assert HOP == 0.01  # every frame count below assumes 10 ms frames

SILENCE_DB = -90.0


def _track(pitch, rms=None, conf=None, bright=None, narrow=False) -> PitchTrack:
    pitch = np.asarray(pitch, float)
    n = len(pitch)
    rms = np.full(n, -20.0) if rms is None else np.asarray(rms, float)
    conf = np.where(np.isfinite(pitch), 1.0, 0.0) if conf is None else np.asarray(conf, float)
    bright = None if bright is None else np.asarray(bright, float)
    return PitchTrack(np.arange(n) * HOP, pitch, conf, rms, "test", bright, narrow)


def _sung(contour, rms=None, pad=20, bright=None, narrow=False) -> PitchTrack:
    """``contour`` sung at ``rms`` (default -20 dB) with ``pad`` silent frames either side."""
    contour = np.asarray(contour, float)
    n = len(contour)
    rms = np.full(n, -20.0) if rms is None else np.asarray(rms, float)
    gap_p, gap_db = np.full(pad, np.nan), np.full(pad, SILENCE_DB)
    if bright is not None:
        bright = np.concatenate([gap_db, np.asarray(bright, float), gap_db])
    return _track(np.concatenate([gap_p, contour, gap_p]), np.concatenate([gap_db, rms, gap_db]),
                  bright=bright, narrow=narrow)


# ---- voicing ---------------------------------------------------------------------------------

def _voicing_case(frames, floor_db, n_floor=10):
    """``n_floor`` unpitched frames at ``floor_db`` at each end, then the frames under test
    (rms, periodicity, pitch), each followed by a loud sung frame so that the take's top level
    is -20 dB. Returns the track and the indices of the frames under test."""
    rms, conf, pitch, idx = [], [], [], []
    for _ in range(n_floor):
        rms.append(floor_db), conf.append(0.1), pitch.append(np.nan)
    for r, p, f in frames:
        idx.append(len(rms))
        rms.append(r), conf.append(p), pitch.append(f)
        rms.append(-20.0), conf.append(1.0), pitch.append(60.0)
    for _ in range(n_floor):
        rms.append(floor_db), conf.append(0.1), pitch.append(np.nan)
    return _track(pitch, rms, conf), idx


NO_BRIDGE = replace(S, bridge_gap_s=0.0)


def test_a_frame_is_sung_when_confident_and_loud_or_clearly_pitched_and_above_the_floor():
    # Floor -60 dB (the 5th percentile: 21 of the 40 frames), top -20 dB (the 99th percentile),
    # so the headroom is min(12, 0.4 * 40) = 12 dB: "loud" is >= -48 dB (and >= -20 - 40 = -60);
    # "clear" is periodicity >= 0.9 and >= -60 + 8 = -52 dB.
    cases = [
        ((-20.0, 1.0, 60.0), True),    # a sung frame
        ((-20.0, 0.5, 60.0), True),    # confidence exactly at the 0.5 gate
        ((-20.0, 0.3, 60.0), False),   # loud but not confident (breath, hiss)
        ((-20.0, 0.6, np.nan), False),  # confident, but the tracker gave no pitch
        ((-60.0, 0.6, 60.0), False),   # at the noise floor
        ((-48.0, 0.6, 60.0), True),    # exactly 12 dB over the floor
        ((-50.0, 0.6, 60.0), False),   # 10 dB over the floor and only fairly confident
        ((-50.0, 0.9, 60.0), True),    # ... but clearly pitched: 10 >= 8 dB over the floor
        ((-52.0, 0.95, 60.0), True),   # clearly pitched exactly 8 dB over the floor
        ((-58.0, 0.95, 60.0), False),  # clearly pitched but only 2 dB over the floor
    ]
    track, idx = _voicing_case([c for c, _ in cases], floor_db=-60.0)
    got = voicing(track, NO_BRIDGE)
    assert [bool(got[i]) for i in idx] == [want for _, want in cases]
    assert got[idx[0] + 1]  # the loud sung frames in between


def test_a_frame_more_than_40_db_under_the_take_is_not_sung_however_clear():
    # Floor -90 dB, top -20 dB: headroom 12 dB ("loud" from -78 dB), but a frame must also be
    # within 40 dB of the top, i.e. >= -60 dB.
    track, idx = _voicing_case([(-60.0, 0.6, 60.0), (-61.0, 0.6, 60.0), (-61.0, 1.0, 60.0)],
                               floor_db=-90.0)
    got = voicing(track, NO_BRIDGE)
    assert [bool(got[i]) for i in idx] == [True, False, False]


def test_a_clear_frame_exactly_40_db_under_the_top_is_sung():
    # Floor -70 dB, top -20 dB: "loud" needs -70 + 12 = -58 dB, so a -60 dB frame is not loud;
    # it is clear (periodicity 0.95, -60 >= -70 + 8) and exactly 40 dB under the top: sung.
    track, idx = _voicing_case([(-60.0, 0.95, 60.0), (-60.0, 0.6, 60.0)], floor_db=-70.0)
    got = voicing(track, NO_BRIDGE)
    assert [bool(got[i]) for i in idx] == [True, False]


def test_a_take_sung_throughout_asks_for_less_headroom_over_its_quietest_frames():
    # Floor -40 dB, top -20 dB: only 20 dB of range, so the headroom is 0.4 * 20 = 8 dB (not
    # 12): a fairly confident frame at -30 dB (10 dB over the floor) is sung, one at -35 is not.
    track, idx = _voicing_case([(-30.0, 0.6, 60.0), (-35.0, 0.6, 60.0)], floor_db=-40.0)
    got = voicing(track, NO_BRIDGE)
    assert [bool(got[i]) for i in idx] == [True, False]


def _mask_track(mask):
    mask = np.asarray(mask, bool)
    return _track(np.where(mask, 60.0, np.nan), np.full(len(mask), -20.0))


def test_gaps_of_up_to_three_frames_inside_a_note_are_bridged_but_not_at_the_ends():
    V, U = True, False
    mask = [V] + [U] * 2 + [V] * 10 + [U] * 3 + [V] * 10 + [U] * 4 + [V] * 10 + [U] * 2
    got = voicing(_mask_track(mask), S)
    want = [V] * 3 + [V] * 10 + [V] * 3 + [V] * 10 + [U] * 4 + [V] * 10 + [U] * 2
    assert got.tolist() == want
    # A gap at the very start is not inside a note.
    got = voicing(_mask_track([U] * 2 + [V] * 10), S)
    assert got.tolist() == [U] * 2 + [V] * 10


# ---- octave repair ---------------------------------------------------------------------------

def test_frames_about_an_octave_off_their_neighbourhood_are_folded_back():
    p = np.full(60, 60.0)
    p[10:12] = 72.0   # an octave up: -> 60
    p[20] = 71.0      # 11 up (within 1.5 of an octave): -> 59
    p[30] = 73.5      # 13.5 up (1.5 from an octave, not within): kept
    p[40:42] = 48.0   # an octave down: -> 60
    p[45] = 49.0      # 11 down: -> 61
    p[50] = 46.5      # 13.5 down: kept
    # Every 25-frame neighbourhood holds at most 4 of these frames, so its median is 60.
    got = repair_octaves(p, np.ones(60, bool))
    want = np.full(60, 60.0)
    want[20], want[30], want[45], want[50] = 59.0, 73.5, 61.0, 46.5
    assert got.tolist() == want.tolist()


def test_octave_repair_leaves_unsung_frames_without_pitch():
    p = np.array([60.0, 60.0, 72.0, 60.0, 60.0])
    voiced = np.array([True, True, True, True, False])
    got = repair_octaves(p, voiced)
    assert got[:4].tolist() == [60.0, 60.0, 60.0, 60.0] and np.isnan(got[4])


def test_a_stretch_read_an_octave_low_between_two_pieces_on_its_pitch_is_one_note():
    # 0.4 s on 60, 0.5 s read on 48 (the tracker's doubled period in a room), 0.4 s on 60,
    # without a break: the 25-frame median of the frame repair follows the 50 low frames, so
    # the pitch cut makes three pieces; the middle one sits an octave under both pieces it
    # touches and is moved up: one note of 1.3 s on 60.
    track = _sung([60.0] * 40 + [48.0] * 50 + [60.0] * 40)
    got = segment_notes(track, S)
    assert [(n.onset_s, n.midi) for n in got] == [(0.2, 60)]
    assert got[0].offset_s == pytest.approx(1.5)


def test_without_the_piece_fold_that_stretch_is_three_notes(monkeypatch):
    import hum2band.listen.notes as notes

    monkeypatch.setattr(notes, "_fold_octave_pieces", lambda pieces, smooth, max_end: False)
    got = notes.segment_notes(_sung([60.0] * 40 + [48.0] * 50 + [60.0] * 40), S)
    assert len(got) == 3


def test_a_piece_an_octave_under_only_one_neighbour_is_a_leap_and_stays():
    # 55 -> 60 -> 48 -> 50: the singer leapt down and went on; no piece is folded.
    got = segment_notes(_sung([55.0] * 40 + [60.0] * 40 + [48.0] * 50 + [50.0] * 40), S)
    assert [n.midi for n in got] == [55, 60, 48, 50]


def test_a_short_start_of_a_stretch_read_an_octave_low_belongs_to_the_note():
    # 0.15 s read on 48 (under 0.2 s, and shorter than what follows), then 0.6 s on 60 without
    # a break: the start is the tracker's slip, moved up: one note from the first frame.
    got = segment_notes(_sung([48.0] * 15 + [60.0] * 60), S)
    assert [(n.onset_s, n.midi) for n in got] == [(0.2, 60)]


def test_a_legato_octave_leap_with_notes_longer_than_a_stray_is_two_notes():
    # "Some-where": 0.3 s on 60, then 0.8 s an octave up, in one breath: both notes stay.
    got = segment_notes(_sung([60.0] * 30 + [72.0] * 80), S)
    assert [n.midi for n in got] == [60, 72]


def test_a_sung_stretch_reaches_back_over_quiet_frames_that_slip_an_octave():
    # Floor -60 dB, top -20 dB: loud from -48 dB. Eight frames at -50 dB with periodicity 0.8
    # (neither loud nor clear) before a loud stretch on 60, every second one read an octave
    # low (48): they are 10 dB over the floor (>= 6) and confident (>= 0.7), and each is on the
    # stretch's pitch or an octave from it, so the stretch reaches back over all eight (0.08 s
    # <= 0.1 s). An octave-off frame used to stop it after the first frame.
    floor = [(-60.0, 0.1, np.nan)] * 10
    quiet = [(-50.0, 0.8, 60.0 if k % 2 else 48.0) for k in range(8)]
    loud = [(-20.0, 1.0, 60.0)] * 30
    rms, conf, pitch = zip(*(floor + quiet + loud + floor))
    got = voicing(_track(pitch, rms, conf), NO_BRIDGE)
    assert got[10:48].all() and not got[:10].any() and not got[48:].any()
    # a quiet frame a fifth off is not the stretch's pitch: the reach stops after it
    quiet[2] = (-50.0, 0.8, 67.0)
    rms, conf, pitch = zip(*(floor + quiet + loud + floor))
    got = voicing(_track(pitch, rms, conf), NO_BRIDGE)
    assert got[13:48].all() and not got[:13].any()


# ---- helpers ---------------------------------------------------------------------------------

def _median_by_hand(x, k):
    """Running median of k samples, the edges repeated, the element of rank k // 2 (scipy's)."""
    x = list(map(float, x))
    left = k // 2
    padded = [x[0]] * left + x + [x[-1]] * (k - 1 - left)
    return [sorted(padded[i:i + k])[k // 2] for i in range(len(x))]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_the_median_filter_repeats_the_edges_and_takes_the_middle_rank(k):
    x = np.array([61.0, 57.0, 64.0, 59.0, 66.0, 58.0, 63.0, 60.0, 55.0, 62.0])
    got = median_filter_nearest(x, k)
    assert got.tolist() == _median_by_hand(x, k)


def test_the_median_filter_by_hand_values():
    x = np.array([60.0, 62.0, 64.0])
    # k = 3: windows [60 60 62] [60 62 64] [62 64 64]
    assert median_filter_nearest(x, 3).tolist() == [60.0, 62.0, 64.0]
    # k = 2: windows [x(i-1), x(i)] with the first sample repeated, the upper of the two.
    assert median_filter_nearest(np.array([60.0, 62.0, 60.0, 62.0]), 2).tolist() == [60.0, 62.0, 62.0, 62.0]
    # k = 5 on a spike: windows of 5 around each sample, the middle one of the sorted five.
    y = np.array([60.0, 60.0, 70.0, 60.0, 61.0, 62.0])
    # [60 60 60 60 70] [60 60 60 70 60] [60 60 70 60 61] [60 70 60 61 62] [70 60 61 62 62] [60 61 62 62 62]
    assert median_filter_nearest(y, 5).tolist() == [60.0, 60.0, 60.0, 61.0, 62.0, 62.0]


def test_smoothing_of_zero_or_one_frame_is_none_and_two_frames_takes_the_upper():
    p = np.array([60.0, 62.0, 60.0, 62.0])
    on = np.ones(4, bool)
    assert _smooth(p, on, 0).tolist() == p.tolist()
    assert _smooth(p, on, 1).tolist() == p.tolist()
    assert _smooth(p, on, 2).tolist() == [60.0, 62.0, 62.0, 62.0]
    # Unsung frames are filled from their neighbours before smoothing.
    assert _smooth(np.array([60.0, 99.0, 62.0]), np.array([True, False, True]), 1).tolist() == [60.0, 61.0, 62.0]


def test_the_running_median_of_the_octave_repair():
    x = np.array([5.0, 1.0, 2.0, 8.0, 3.0])
    # window 3, edges repeated: [5 5 1] [5 1 2] [1 2 8] [2 8 3] [8 3 3]
    assert _running_nanmedian(x, 3).tolist() == [5.0, 2.0, 2.0, 3.0, 3.0]
    # unsung frames (nan) are left out of each window
    y = np.array([5.0, np.nan, 2.0, 8.0, 3.0])
    assert _running_nanmedian(y, 3).tolist() == [5.0, 3.5, 5.0, 3.0, 3.0]
    # a stretch no longer than the window takes the median of all of it
    assert _running_nanmedian(x, 5).tolist() == [3.0] * 5


def test_runs_of_a_mask_include_one_that_reaches_the_end():
    assert [tuple(map(int, r)) for r in _runs(np.array([True, True, False, True, True]))] == [(0, 2), (3, 5)]
    assert [tuple(map(int, r)) for r in _runs(np.array([False, True, False]))] == [(1, 2)]


# ---- splitting by pitch ----------------------------------------------------------------------

def _pieces(got):
    return [(int(c), int(d)) for c, d in got]


def test_a_new_semitone_held_for_the_hold_time_starts_a_note_at_its_first_frame():
    smooth = np.concatenate([np.full(30, 60.0), np.full(30, 62.0), np.full(30, 64.0)])
    assert _pieces(_split_by_pitch(smooth, 0, 90, S, HOP)) == [(0, 30), (30, 60), (60, 90)]


def test_a_step_of_exactly_the_change_threshold_is_not_a_new_note():
    s = replace(S, change_semitones=1.5)
    flat = np.concatenate([np.full(30, 60.0), np.full(30, 61.5)])
    assert _pieces(_split_by_pitch(flat, 0, 60, s, HOP)) == [(0, 60)]
    step = np.concatenate([np.full(30, 60.0), np.full(30, 61.75)])
    assert _pieces(_split_by_pitch(step, 0, 60, s, HOP)) == [(0, 30), (30, 60)]


def test_the_current_pitch_is_the_median_of_the_last_27_frames():
    # 15 frames on 60, 14 on 61 (a step of 1.0 < 1.1: no cut), then 61.8. At the first 61.8
    # frame (29) the last 27 frames (2-28) hold 13 x 60 and 14 x 61: median 61, and 61.8 is only
    # 0.8 from it; later the median only moves up. One note.
    smooth = np.concatenate([np.full(15, 60.0), np.full(14, 61.0), np.full(31, 61.8)])
    assert _pieces(_split_by_pitch(smooth, 0, 60, S, HOP)) == [(0, 60)]


def test_a_glide_must_settle_within_twice_the_threshold_before_it_is_cut():
    # change 1.5 semitones: the 9 frames ahead must all be > 1.5 from 60 and span < 3.0.
    # A glide 62 -> 65 in steps of 0.375 over 9 frames (30-38), then 65. From frame 30 the
    # ahead window spans 65 - 62 = 3.0 (not < 3.0); from frame 31, 65 - 62.375 = 2.625: cut at 31.
    s = replace(S, change_semitones=1.5)
    ramp = 62.0 + 0.375 * np.arange(9)
    smooth = np.concatenate([np.full(30, 60.0), ramp, np.full(30, 65.0)])
    assert _pieces(_split_by_pitch(smooth, 0, 69, s, HOP)) == [(0, 31), (31, 69)]


def test_a_hold_of_one_frame_cuts_at_every_new_pitch():
    s = replace(S, change_hold_s=0.01)
    smooth = np.concatenate([np.full(10, 60.0), [62.0], np.full(10, 60.0)])
    assert _pieces(_split_by_pitch(smooth, 0, 21, s, HOP)) == [(0, 10), (10, 11), (11, 21)]


# ---- scoops ----------------------------------------------------------------------------------

def test_a_scoop_joins_the_note_it_glides_into():
    # 10 frames gliding 59.0 -> 61.7 into 62: it starts 3.0 from 62 and ends 0.3 from it, an
    # approach of 2.7 > 0.3 semitones, and is shorter than 0.2 s (20 frames): one note.
    smooth = np.concatenate([59.0 + 0.3 * np.arange(10), np.full(40, 62.0), np.full(40, 65.0)])
    got = _merge_scoops([(0, 10), (10, 50), (50, 90)], smooth, S, HOP)
    assert _pieces(got) == [(0, 50), (50, 90)]


def test_every_scoop_of_a_phrase_is_joined():
    smooth = np.concatenate([np.full(30, 60.0), 61.0 + 0.3 * np.arange(10), np.full(30, 64.0),
                             65.0 + 0.3 * np.arange(10), np.full(30, 68.0)])
    pieces = [(0, 30), (30, 40), (40, 70), (70, 80), (80, 110)]
    assert _pieces(_merge_scoops(pieces, smooth, S, HOP)) == [(0, 30), (30, 70), (70, 110)]


def test_a_glide_of_the_full_scoop_length_is_a_note():
    # 20 frames = 0.2 s is not shorter than scoop_max_s.
    smooth = np.concatenate([58.0 + 0.2 * np.arange(20), np.full(40, 62.0)])
    assert _pieces(_merge_scoops([(0, 20), (20, 60)], smooth, S, HOP)) == [(0, 20), (20, 60)]


@pytest.mark.parametrize("last, merged", [
    (60.0, False),   # a short note that does not move: no approach
    (60.2, False),   # approach 2.0 - 1.8 = 0.2 <= 0.3
    (60.4, True),    # approach 2.0 - 1.6 = 0.4 > 0.3
])
def test_a_short_piece_is_a_scoop_only_when_its_end_approaches_the_next_pitch(last, merged):
    smooth = np.concatenate([np.full(14, 60.0), [last], np.full(40, 62.0)])
    got = _pieces(_merge_scoops([(0, 15), (15, 55)], smooth, S, HOP))
    assert got == ([(0, 55)] if merged else [(0, 15), (15, 55)])


def test_an_approach_of_exactly_the_threshold_is_not_a_scoop():
    s = replace(S, scoop_approach_semitones=0.25)
    smooth = np.concatenate([np.full(14, 60.0), [60.25], np.full(40, 62.0)])  # 2.0 - 1.75 = 0.25
    assert _pieces(_merge_scoops([(0, 15), (15, 55)], smooth, s, HOP)) == [(0, 15), (15, 55)]


# ---- splitting at loudness dips --------------------------------------------------------------
#
# The loudness is smoothed over 3 frames: with 5 frames at the bottom value B between
# plateaus at P, the smoothed curve is P, (2P + B)/3, (P + 2B)/3, B, B, B, (P + 2B)/3, ...

def _dip(bottom, n_before=28, n_bottom=5, n_after=27, level=-20.0):
    return np.concatenate([np.full(n_before, level), np.full(n_bottom, bottom), np.full(n_after, level)])


def test_a_syllable_dip_cuts_where_the_loudness_rises_halfway_out_of_it():
    # Bottom -24.5 dB at frames 28-32; smoothed: 27 -21.5, 28 -23, 29-31 -24.5, 32 -23, 33 -21.5.
    # The first minimum is frame 29, 4.5 dB under the -20 dB peaks within 8 frames (>= 4 dB).
    # Half the rise is 2.25 dB: frames 30, 31 (+0) and 32 (+1.5) are below it, 33 (+3) is not,
    # so j = 32 and the cut is 29 + (32 - 29) // 2 = 30 (offset by the 5 frames before a).
    rms = np.concatenate([np.full(5, -20.0), _dip(-24.5)])
    assert _pieces(_split_by_dips(rms, 5, 65, S, HOP)) == [(5, 35), (35, 65)]


def test_a_dip_shallower_than_4_db_does_not_cut():
    assert _pieces(_split_by_dips(_dip(-23.5), 0, 60, S, HOP)) == [(0, 60)]


def test_a_dip_of_exactly_4_db_cuts_where_the_rise_reaches_half():
    # Bottom -24 at 28-32, then -22 at 33, then -20. Smoothed: 29-31 -24, 32 -23.33, 33 -22,
    # 34 -20.67. Depth 4.0 (>= 4). Half the rise is 2.0: frame 32 (+0.67) is below it, frame 33
    # (+2.0) is not, so j = 32 and the cut is 29 + 3 // 2 = 30.
    rms = np.concatenate([np.full(28, -20.0), np.full(5, -24.0), [-22.0], np.full(26, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 30), (30, 60)]


def test_a_wide_dip_cuts_in_the_middle_of_its_floor():
    # 6 frames at -24.5 (28-33): smoothed bottom 29-32, 34 is +1.5 and 35 +3.0 over it, so
    # j = 33 and the cut is 29 + (33 - 29) // 2 = 31.
    rms = _dip(-24.5, n_bottom=6, n_after=26)
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 31), (31, 60)]


def test_a_dip_window_of_0_02_s_looks_two_frames_either_side():
    # A V-shaped dip: -23, -26 at 25, 26, -29 at 27-29, -26, -23 at 30, 31. Smoothed: 25 -23,
    # 26 -26, 27 -28, 28 -29, 29 -28, 30 -26, 31 -23. Two frames either side of the minimum (28)
    # peak at -26: 3 dB, no cut; three frames either side would reach -23 (6 dB).
    rms = np.full(60, -20.0)
    rms[25:32] = [-23.0, -26.0, -29.0, -29.0, -29.0, -26.0, -23.0]
    assert _pieces(_split_by_dips(rms, 0, 60, replace(S, dip_window_s=0.02), HOP)) == [(0, 60)]
    assert _pieces(_split_by_dips(rms, 0, 60, replace(S, dip_window_s=0.03), HOP)) == [(0, 28), (28, 60)]


def test_a_step_down_in_loudness_with_a_notch_is_not_a_syllable():
    # -20, a notch at -33 (frames 30-32), then settling at -30: smoothed 30 -28.67, 31 -33,
    # 32 -32, 33 -31, 34 -30. The loudness comes back only 3 dB (< 4) after the notch: no cut.
    rms = np.concatenate([np.full(30, -20.0), np.full(3, -33.0), np.full(27, -30.0)])
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 60)]


def test_two_dips_far_apart_make_three_notes():
    # Two dips as in the first test, the second with its bottom at 58-62 (cut 29 + 30 + 1 = 60).
    rms = np.concatenate([np.full(28, -20.0), np.full(5, -24.5), np.full(25, -20.0), np.full(5, -24.5),
                          np.full(27, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 90, S, HOP)) == [(0, 30), (30, 60), (60, 90)]


def test_a_second_dip_that_would_leave_a_note_shorter_than_0_1_s_does_not_cut():
    # First cut at 30 (as above). The scan resumes at 29 + 10 = 39. A 3-frame dip at 38-40
    # (smoothed 38 -23, 39 -24.5, 40 -23, 41 -21.5) has its minimum at 39; 40 is +1.5 < 2.25,
    # 41 +3.0: j = 40, cut 39 + 1 // 2 = 39, only 9 frames after 30: no cut.
    rms = np.full(60, -20.0)
    rms[28:33] = -24.5
    rms[38:41] = -24.5
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 30), (30, 60)]
    # One frame later (bottom 39-41, minimum at 40): cut 40, exactly 10 frames after 30.
    rms = np.full(60, -20.0)
    rms[28:33] = -24.5
    rms[39:42] = -24.5
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 30), (30, 40), (40, 60)]


def test_a_dip_is_cut_at_its_floor_not_on_its_way_down():
    # A slow fall (-21 at 20 down by 1.5 dB a frame to -30 at 26), -30 at 26-29, a jump back to
    # -20 at 30. Smoothed: 26 -29.5, 27-28 -30, 29 -26.67, 30 -23.33, 31 -20. The first frame no
    # louder than both neighbours is 27 (9.67 dB under the peaks); half the 10 dB rise is 5:
    # 28 (+0) and 29 (+3.33) are under it, 30 (+6.67) is not: cut 27 + (29 - 27) // 2 = 28.
    rms = np.concatenate([np.full(20, -20.0), -21.0 - 1.5 * np.arange(7), np.full(3, -30.0),
                          np.full(30, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 60, S, HOP)) == [(0, 28), (28, 60)]


def test_a_dip_within_the_first_0_1_s_does_not_cut():
    # Bottom -27 at 6-10 (smoothed minimum at 7-9): the scan starts at frame 10, on the rise.
    rms = np.concatenate([np.full(6, -20.0), np.full(5, -27.0), np.full(29, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 40, S, HOP)) == [(0, 40)]


def test_a_dip_within_the_last_0_1_s_does_not_cut():
    # 40 frames, bottom -26 at 29-33 (smoothed minimum 30-32): the scan ends before frame 30.
    rms = np.concatenate([np.full(29, -20.0), np.full(5, -26.0), np.full(6, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 40, S, HOP)) == [(0, 40)]


def test_a_short_stretch_with_a_dip_in_its_middle_is_cut():
    # 25 frames, bottom -26 at 10-14: smoothed minimum at 11 (6 dB deep); 12, 13 +0 and 14 +2
    # are under half the rise (3 dB), 15 (+4) is not: cut 11 + 3 // 2 = 12.
    rms = np.concatenate([np.full(10, -20.0), np.full(5, -26.0), np.full(10, -20.0)])
    assert _pieces(_split_by_dips(rms, 0, 25, S, HOP)) == [(0, 12), (12, 25)]


def _bands(n, dipping, bottom_db, n_bands=15, level=-40.0):
    """``n_bands`` band levels (n frames) at ``level``; the first ``dipping`` of them fall by
    ``bottom_db`` at frames 28-32, as the summed loudness of :func:`_dip` does."""
    bands = np.full((n, n_bands), level)
    bands[28:33, :dipping] = level - bottom_db
    return bands


def test_a_syllable_dip_that_few_of_the_bands_show_does_not_cut():
    # The summed loudness dips 6 dB (a cut without the bands, as above), but only 4 of the 15
    # bands dip with it (by 10 dB, a room's mode swept by the vibrato): 4 / 15 = 0.27 of them
    # lie 3 dB (dip_band_db) or more under their peaks, under dip_band_share (0.3): no cut.
    syl = _dip(-26.0)
    assert _pieces(_split_by_dips(syl, 0, 60, S, HOP)) == [(0, 30), (30, 60)]
    assert _pieces(_split_by_dips(syl, 0, 60, S, HOP, _bands(60, 4, 10.0))) == [(0, 60)]


def test_a_syllable_dip_that_enough_of_the_bands_show_cuts():
    # 5 of 15 bands (0.33 >= 0.3) dip 10 dB: a consonant dims the voice across its spectrum.
    # Bands that dip less than 3 dB do not count: 15 bands dipping 2.5 dB (smoothed the same
    # at the bottom) leave the share at 0.
    syl = _dip(-26.0)
    assert _pieces(_split_by_dips(syl, 0, 60, S, HOP, _bands(60, 5, 10.0))) == [(0, 30), (30, 60)]
    assert _pieces(_split_by_dips(syl, 0, 60, S, HOP, _bands(60, 15, 2.5))) == [(0, 60)]


def _formant_swing_track(reverberance):
    """One held note (60 frames on MIDI 60, plain loudness flat) between 30 frames of a -80 dB
    floor, whose 16 bright bands hold the voice in bands 1-4 (-30 dB; the rest -50 dB): at
    frames 28-32 of the note bands 1-4 swing 10 dB down, as a room's modes do under the
    vibrato. The summed syllable loudness dips 9 dB (0.00412 -> 0.00052 of full scale)."""
    n, pad = 60, 30
    bands = np.full((n, 16), -50.0)
    bands[:, 1:5] = -30.0
    bands[28:33, 1:5] = -40.0
    floor = np.full((pad, 16), -80.0)
    track = _sung(np.full(n, 60.0), pad=pad, bright=np.full(n, -40.0))
    track.bright_bands_db = np.concatenate([floor, bands, floor])
    track.reverberance = reverberance
    return track


def test_in_a_room_a_syllable_dip_that_few_bands_show_leaves_a_held_note_whole():
    # 4 of the 15 bands above the lowest dip (0.27 < dip_band_share): one note where the take
    # reads reverberant (the dereverberation stage's measure), two in a dry take, where every
    # 4 dB dip of the syllable loudness cuts as before.
    assert len(segment_notes(_formant_swing_track(1.0))) == 1
    assert len(segment_notes(_formant_swing_track(S.dip_band_reverberance - 0.01))) == 2
    assert len(segment_notes(_formant_swing_track(1.0), replace(S, dip_band_share=0.0))) == 2


# ---- clean-up --------------------------------------------------------------------------------

def test_short_fragments_are_merged_into_the_note_they_touch_or_dropped():
    smooth = np.full(90, np.nan)
    smooth[0:30] = 60.0
    smooth[30:35] = 60.5   # touches the note before, 0.5 semitone away: merged
    smooth[50:55] = 70.0   # alone: dropped
    smooth[60:90] = 64.0
    got = _clean_up([(0, 30), (30, 35), (50, 55), (60, 90)], smooth, S, HOP)
    assert _pieces(got) == [(0, 35), (60, 90)]


def test_a_fragment_1_5_semitones_off_the_note_it_touches_is_dropped():
    smooth = np.concatenate([np.full(30, 60.0), np.full(5, 61.5)])
    assert _pieces(_clean_up([(0, 30), (30, 35)], smooth, S, HOP)) == [(0, 30)]


def test_a_note_of_exactly_0_1_s_is_kept_and_a_shorter_first_one_dropped():
    smooth = np.full(40, 60.0)
    assert _pieces(_clean_up([(0, 10)], smooth, S, HOP)) == [(0, 10)]
    assert _pieces(_clean_up([(0, 9), (20, 40)], smooth, S, HOP)) == [(20, 40)]


def test_a_shortest_note_of_one_frame_keeps_one_frame_notes():
    s = replace(S, min_note_s=0.01)
    assert _pieces(_clean_up([(0, 1), (5, 6)], np.full(10, 60.0), s, HOP)) == [(0, 1), (5, 6)]


# ---- onsets and offsets ----------------------------------------------------------------------

def test_the_onset_moves_to_where_the_loudness_comes_within_9_db_of_the_peak():
    rms = np.full(40, -20.0)
    rms[:3] = [-40.0, -35.0, -32.0]   # under -20 - 9 = -29; frame 3 (-25) is not
    rms[3] = -25.0
    assert _pieces(_refine_onsets([(0, 40)], rms, S, HOP)) == [(3, 40)]
    rms[:3] = [-40.0, -29.0, -20.0]   # exactly 9 dB under: already the note
    assert _pieces(_refine_onsets([(0, 40)], rms, S, HOP)) == [(1, 40)]


def test_the_onset_moves_at_most_to_the_middle_of_a_short_note():
    # A 9-frame note (10-19) quiet for its first 6 frames: the search stops at 10 + 9 // 2 = 14
    # (before 10 + 5 = 15).
    rms = np.full(30, -20.0)
    rms[10:16] = -40.0
    assert _pieces(_refine_onsets([(10, 19)], rms, S, HOP)) == [(14, 19)]


def test_the_onset_search_is_at_most_0_05_s():
    rms = np.full(40, -20.0)
    rms[:8] = -40.0
    assert _pieces(_refine_onsets([(0, 40)], rms, S, HOP)) == [(5, 40)]


def test_an_onset_search_of_one_frame_moves_the_onset_by_at_most_one():
    rms = np.full(40, -20.0)
    rms[:3] = -40.0
    assert _pieces(_refine_onsets([(0, 40)], rms, replace(S, onset_search_s=0.01), HOP)) == [(1, 40)]


def test_a_joined_offset_search_of_one_frame_leaves_the_end_at_the_cut():
    rms = np.full(80, -20.0)
    rms[38] = -25.0
    s = replace(S, joined_offset_search_s=0.01)
    assert _pieces(_refine_onsets([(0, 40), (40, 80)], rms, s, HOP))[0] == (0, 40)
    # with two frames to search, the quieter one (38) is the end
    s = replace(S, joined_offset_search_s=0.02)
    assert _pieces(_refine_onsets([(0, 40), (40, 80)], rms, s, HOP))[0] == (0, 38)


def test_a_note_ends_where_its_loudness_has_fallen_14_db():
    rms = np.full(40, -20.0)
    rms[36:40] = [-30.0, -34.0, -40.0, -45.0]  # under -34: the last two frames
    assert _pieces(_refine_onsets([(0, 40)], rms, S, HOP)) == [(0, 38)]


def test_a_fading_note_keeps_at_least_half_its_length():
    # 20-50, loud for 10 frames then 20 dB down: the end moves back to 20 + 30 // 2 + 1 = 36.
    rms = np.full(60, -20.0)
    rms[30:50] = -40.0
    assert _pieces(_refine_onsets([(20, 50)], rms, S, HOP)) == [(20, 36)]


def _joined_rms():
    rms = np.full(130, -20.0)
    rms[32:40] = [-21.0, -22.0, -23.0, -24.0, -26.0, -25.0, -24.0, -23.0]  # quietest at 36
    rms[80:90] = SILENCE_DB
    return rms


#: The joined-offset rule at its limit: the quietest frame itself (joined_offset_fraction 0).
QUIETEST = replace(S, joined_offset_fraction=0.0)


def test_a_note_sung_straight_into_the_next_ends_at_the_quietest_frame_before_it():
    # 0-40 joined to 40-80: the first ends at the quietest of its last 8 frames (32-39): 36;
    # the second is heard 2 frames (0.02 s) after the cut. Neither fades, so 80 stays the end.
    got = _refine_onsets([(0, 40), (40, 80)], _joined_rms(), QUIETEST, HOP)
    assert _pieces(got) == [(0, 36), (42, 80)]


def test_a_joined_note_ends_half_way_down_to_the_quietest_frame():
    # By default the end is the first of frames 32-39 at most half-way from their loudest (-21,
    # frame 32) to their quietest (-26, frame 36): -23.5 or under, frame 35 (-24).
    got = _refine_onsets([(0, 40), (40, 80)], _joined_rms(), S, HOP)
    assert _pieces(got) == [(0, 35), (42, 80)]


def test_a_joined_note_in_a_room_ends_where_the_fall_begins_not_at_the_tail_bottom():
    # The voice stops after frame 32 and the room's tail falls 1.5 dB per frame (150 dB/s: RT60
    # 0.4 s) until the next note starts at frame 40; the quietest frame is the tail's last (39).
    # Half-way down the fall (-20 to -30.5: -25.25 or under) is frame 36.
    rms = np.full(80, -20.0)
    rms[33:40] = -20.0 - 1.5 * np.arange(1, 8)
    got = _refine_onsets([(0, 40), (40, 80)], rms, S, HOP)
    assert _pieces(got)[0] == (0, 36)
    assert _pieces(_refine_onsets([(0, 40), (40, 80)], rms, QUIETEST, HOP))[0] == (0, 39)


def test_only_joined_notes_get_the_joined_onset_and_offset():
    # The third note (90-120) follows a break: no delay, and its end is its own.
    got = _refine_onsets([(0, 40), (40, 80), (90, 120)], _joined_rms(), QUIETEST, HOP)
    assert _pieces(got) == [(0, 36), (42, 80), (90, 120)]


def test_a_short_joined_note_searches_its_second_half_for_the_quietest_frame():
    # 20-32 joined to 32-60: the search runs from max(20 + 12 // 2, 32 - 8) = 26 to 31. The
    # quietest frame of the note (25) lies before it; the quietest from 26 on is 29.
    rms = np.full(60, -20.0)
    rms[25] = -25.0
    rms[29] = -23.0
    got = _refine_onsets([(20, 32), (32, 60)], rms, S, HOP)
    assert _pieces(got) == [(20, 29), (34, 60)]


def test_a_joined_note_of_two_or_three_frames():
    rms = np.full(30, -20.0)
    rms[1:3] = [-22.0, -21.0]
    # 3 frames: the second half is frames 1-2, the quieter is 1.
    assert _pieces(_refine_onsets([(0, 3), (3, 30)], rms, S, HOP))[0] == (0, 1)
    # 2 frames: one frame to choose from, so the end stays.
    assert _pieces(_refine_onsets([(0, 2), (2, 30)], rms, S, HOP))[0] == (0, 2)


# ---- the whole segmenter ---------------------------------------------------------------------

def test_a_fall_off_the_end_of_a_note_is_not_part_of_it():
    # 40 frames on 60 (frames 20-59 of the take), then a fall 59.0, 57.5, ... 51.5. Frames more
    # than 1 semitone off 60 at the end are cut: the 59.0 frame (exactly 1.0 off) stays, so the
    # note ends after frame 60: 0.61 s.
    fall = 59.0 - 1.5 * np.arange(6)
    notes = segment_notes(_sung(np.concatenate([np.full(40, 60.0), fall])))
    assert len(notes) == 1
    assert notes[0].onset_s == pytest.approx(0.20, abs=1e-9)
    assert notes[0].offset_s == pytest.approx(0.61, abs=1e-9)
    assert notes[0].midi_pitch == 60.0


def test_the_fall_off_cut_never_takes_more_than_the_second_half_of_a_note():
    # 22 frames on 61.05, then 28 on 60.0 (a step of 1.05: too small for a new note, more than
    # the 1.0 of a fall). The pitch is the median of the first 85% (43 frames: 22 x 61.05,
    # 21 x 60.0) = 61.05; all of the 60.0 frames are off it, but the cut stops at the middle:
    # the note (frames 20-69) keeps frames 20-45 and ends at 0.46 s.
    notes = segment_notes(_sung(np.concatenate([np.full(22, 61.05), np.full(28, 60.0)])))
    assert len(notes) == 1
    assert notes[0].midi_pitch == 61.05
    assert notes[0].offset_s == pytest.approx(0.46, abs=1e-9)


def test_notes_carry_their_times_pitch_name_and_velocity_from_their_loudness():
    # Four notes of 30 frames, 20 silent frames between: at -20, -30, -40 and -60 dB. The loudest
    # sung frame is -20 dB; velocity = 100 + 2 per dB against it: 100, 80, 60, 20.
    contour, rms = [], []
    for pitch, level in [(60.3, -20.0), (62.0, -30.0), (63.6, -40.0), (65.0, -60.0)]:
        contour += [np.full(30, pitch), np.full(20, np.nan)]
        rms += [np.full(30, level), np.full(20, SILENCE_DB)]
    track = _sung(np.concatenate(contour[:-1]), np.concatenate(rms[:-1]))
    notes = segment_notes(track)
    assert [(round(n.onset_s, 6), round(n.offset_s, 6)) for n in notes] == [
        (0.2, 0.5), (0.7, 1.0), (1.2, 1.5), (1.7, 2.0)]
    assert [n.midi_pitch for n in notes] == [60.3, 62.0, 63.6, 65.0]
    assert [n.midi for n in notes] == [60, 62, 64, 65]
    assert [n.velocity for n in notes] == [100, 80, 60, 20]


def test_a_brief_accent_does_not_set_a_notes_velocity():
    # A reference note at -20 dB, then a note of 101 frames: 10 at -30 dB (its first 0.1 s),
    # 91 at -40 dB. Its loudness is the 90th percentile of its frames, frame 90 of the 101 in
    # order: -40 dB (the accent is under 10 % of it), so velocity 100 + 2 * (-40 + 20) = 60.
    contour = np.concatenate([np.full(30, 60.0), np.full(20, np.nan), np.full(101, 62.0)])
    rms = np.concatenate([np.full(30, -20.0), np.full(20, SILENCE_DB), np.full(10, -30.0),
                          np.full(91, -40.0)])
    notes = segment_notes(_sung(contour, rms))
    assert [n.velocity for n in notes] == [100, 60]


def test_the_velocity_is_at_least_20():
    # A 5-frame blip at -5 dB (too short for a note, but the loudest sung frame), a note at
    # -20 dB and one at -60 dB, in 600 frames of room noise at -80 dB (so that the take's top
    # level, its 99th percentile, stays at -20 dB and -60 dB is still within 40 dB of it).
    # Velocities against the blip: 100 + 2 * (-20 + 5) = 70, and 100 + 2 * (-60 + 5) = -10 -> 20.
    n = 600
    pitch, rms = np.full(n, np.nan), np.full(n, -80.0)
    pitch[50:55], rms[50:55] = 62.0, -5.0
    pitch[100:130], rms[100:130] = 60.0, -20.0
    pitch[200:230], rms[200:230] = 64.0, -60.0
    notes = segment_notes(_track(pitch, rms))
    assert [round(n.midi_pitch) for n in notes] == [60, 64]
    assert [n.velocity for n in notes] == [70, 20]


def test_a_silent_take_has_no_notes():
    assert segment_notes(_track(np.full(50, np.nan), np.full(50, SILENCE_DB))) == []


def _dip_take(bright_bottom, narrow=False, rms_bottom=-22.0):
    """60 frames on 60, the bright loudness dipping to ``bright_bottom`` at frames 28-32, the
    plain loudness only to ``rms_bottom`` (so the note's end is clear when it is cut)."""
    return _sung(np.full(60, 60.0), _dip(rms_bottom), bright=_dip(bright_bottom), narrow=narrow)


def test_syllables_are_found_in_the_bright_loudness():
    # A 4.5 dB dip in the bright loudness only: a consonant, two notes on one pitch.
    assert len(segment_notes(_dip_take(-24.5))) == 2
    # A 4.5 dB dip in the plain loudness only (a vowel getting softer): one note.
    assert len(segment_notes(_sung(np.full(60, 60.0), _dip(-24.5), bright=np.full(60, -20.0)))) == 1


def test_a_narrow_band_take_needs_a_5_db_dip():
    assert len(segment_notes(_dip_take(-24.5, narrow=True))) == 1
    assert len(segment_notes(_dip_take(-25.5, narrow=True))) == 2


class _TrackWithoutBandFlag:
    """A pitch track made before ``narrow_band`` existed (or by another tool): no such field."""

    def __init__(self, track: PitchTrack):
        for name in ("times_s", "midi_pitch", "periodicity", "rms_db", "backend", "bright_db"):
            setattr(self, name, getattr(track, name))
        self.hop_s = track.hop_s

    def __len__(self):
        return len(self.times_s)


def test_a_track_without_the_band_flag_is_cut_as_full_band():
    assert len(segment_notes(_TrackWithoutBandFlag(_dip_take(-24.5)))) == 2


def test_the_register_repair_uses_the_given_settings():
    # 60, 62, a 0.12 s scrap on 41, 62, 60 (notes of 0.3 s, 0.2 s of silence between): the scrap
    # is 21 below both neighbours; the register (60 62 | 62 60) is 61, and 41 + 24 = 65 is 4 from
    # it, so it is not a slip: a stray by default, kept when strays must be shorter than 0.05 s.
    gap = np.full(20, np.nan)
    contour = np.concatenate([np.full(30, 60.0), gap, np.full(30, 62.0), gap, np.full(12, 41.0), gap,
                              np.full(30, 62.0), gap, np.full(30, 60.0)])
    rms = np.where(np.isfinite(contour), -20.0, SILENCE_DB)
    track = _sung(contour, rms)
    assert [round(n.midi_pitch) for n in segment_notes(track)] == [60, 62, 62, 60]
    # (41 is also 20 under the take's register: the rule for a hum far below it is switched off
    # here, so that only the stray limit decides)
    kept = segment_notes(track, replace(S, stray_max_s=0.05, below_register_semitones=np.inf))
    assert [round(n.midi_pitch) for n in kept] == [60, 62, 41, 62, 60]


# ---- interval pitches ------------------------------------------------------------------------

def test_interval_pitches_at_the_edges_of_the_take():
    track = _track(np.full(100, 60.0))
    got = interval_pitches(track, np.array([[-0.1, 0.3], [0.0, 0.01], [0.1, -0.05]]))
    assert got[0] == 60.0          # an interval from before the take: from its start
    assert got[1] == 60.0          # the first frame alone
    assert np.isnan(got[2])        # an interval that ends before it starts holds no frame


def test_the_release_at_the_end_of_a_note_does_not_pull_its_pitch():
    # 20 frames: 9 on 60, 8 on 62, 3 (the last 15%) on 70. Without its last 15% (17 frames:
    # 9 x 60, 8 x 62) the median is 60; with them it would be 62.
    contour = np.concatenate([np.full(9, 60.0), np.full(8, 62.0), np.full(3, 70.0), np.full(10, np.nan)])
    rms = np.where(np.isfinite(contour), -20.0, SILENCE_DB)
    assert interval_pitches(_track(contour, rms), np.array([[0.0, 0.2]]))[0] == 60.0


# ---- register --------------------------------------------------------------------------------

def _melody(pitches, lengths=None, velocity=64):
    lengths = lengths or [0.4] * len(pitches)
    t, out = 0.0, []
    for p, d in zip(pitches, lengths):
        out.append(Note(t, t + d, float(p), int(round(p)), velocity))
        t += d + 0.05
    return out


def _pitches(notes):
    return [n.midi_pitch for n in notes]


def test_the_first_note_an_octave_off_is_folded_back_keeping_its_velocity():
    # 72.2 against 60, 62, 64 (median 62): 10.2 above, round(10.2 / 12) = 1 octave; 60.2 is 1.8
    # from 62, within 3: folded.
    got = repair_register(_melody([72.2, 60, 62, 64]))
    assert _pitches(got) == pytest.approx([60.2, 60, 62, 64])
    assert got[0].midi == 60 and got[0].velocity == 64


def test_an_octave_slip_in_a_take_of_three_notes_is_folded_back():
    # 72.3 between two 60s: 12.3 above both, register 60, one octave; 60.3 is 0.3 from 60.
    got = repair_register(_melody([60, 72.3, 60]))
    assert _pitches(got) == pytest.approx([60, 60.3, 60])


def test_every_stray_of_a_melody_is_dropped():
    got = repair_register(_melody([60, 40, 60, 62, 41, 62, 60], [0.4, 0.12, 0.4, 0.4, 0.12, 0.4, 0.4]))
    assert _pitches(got) == [60, 60, 62, 62, 60]


@pytest.mark.parametrize("pitches", [[64, 70, 62, 60], [60, 62, 70, 64]])
def test_a_short_note_a_leap_from_one_neighbour_only_is_kept(pitches):
    # 70 is 6 from one neighbour and 8 from the other: not out of the register.
    short = [0.4] * 4
    short[pitches.index(70)] = 0.12
    assert _pitches(repair_register(_melody(pitches, short))) == pitches


@pytest.mark.parametrize("pitches", [[60, 62, 64, 65], [60, 67, 60, 60], [60, 53, 60, 60]])
def test_short_notes_a_step_or_at_most_a_fifth_away_are_kept(pitches):
    assert _pitches(repair_register(_melody(pitches, [0.4, 0.12, 0.4, 0.4]))) == pitches


def test_a_slip_of_two_octaves_is_folded_by_two():
    # 86 against 60, 62, 62, 60 (median 61): 25 above, 2 octaves; 62 is 1 from 61.
    assert _pitches(repair_register(_melody([60, 62, 86, 62, 60]))) == [60, 62, 62, 62, 60]


@pytest.mark.parametrize("pitches, want", [
    # register 62 (60 62 64 | 64 62 60): 77 - 12 = 65 is exactly 3 from it: folded.
    ([60, 62, 64, 77, 64, 62, 60], [60, 62, 64, 65, 64, 62, 60]),
    # 77.5 - 12 = 65.5 is 3.5 from it: a long note, kept as sung.
    ([60, 62, 64, 77.5, 64, 62, 60], [60, 62, 64, 77.5, 64, 62, 60]),
    # register of up to three notes each side: 60 60 60 | 62 62 62 -> 61; 76 - 12 = 64, 3 from
    # it (the 56 and 58 further out are not part of it).
    ([56, 60, 60, 60, 76, 62, 62, 62, 58], [56, 60, 60, 60, 64, 62, 62, 62, 58]),
    # 62 62 62 | 60 60 60 -> 61: both sides count.
    ([62, 62, 62, 76, 60, 60, 60], [62, 62, 62, 64, 60, 60, 60]),
    # near the start: 56 60 60 | 62 62 62 -> 61; 70 - 12 = 58, 3 from it.
    ([56, 60, 60, 70, 62, 62, 62], [56, 60, 60, 58, 62, 62, 62]),
])
def test_a_note_is_folded_when_it_lands_within_3_semitones_of_the_register(pitches, want):
    assert _pitches(repair_register(_melody(pitches))) == want


def test_a_note_exactly_as_long_as_the_stray_limit_is_kept():
    s = replace(S, stray_max_s=0.25)
    # 41 between 62s, register 61 (60 62 | 62 60): 41 + 24 = 65 is 4 from it, not a slip.
    notes = [Note(0.0, 0.5, 60.0, 60, 64), Note(0.5, 1.0, 62.0, 62, 64), Note(1.0, 1.25, 41.0, 41, 64),
             Note(1.25, 1.75, 62.0, 62, 64), Note(1.75, 2.25, 60.0, 60, 64)]
    assert _pitches(repair_register(notes, s)) == [60.0, 62.0, 41.0, 62.0, 60.0]
    assert _pitches(repair_register(notes, replace(s, stray_max_s=0.26))) == [60.0, 62.0, 62.0, 60.0]


# ---- repair_register at the ends of a take (found by the time-shift property) ---------------------
def test_a_scrap_next_to_the_first_note_is_dropped_and_the_first_note_kept():
    from hum2band.listen.notes import repair_register

    # 60, a 0.12 s scrap at 40 (20 semitones under both neighbours, no octave brings it within
    # 3 semitones of the register 60), 60: the scrap goes, both 60s stay as sung
    notes = [Note(0.0, 0.5, 60.0), Note(0.5, 0.62, 40.0), Note(0.62, 1.2, 60.0)]
    assert [n.midi_pitch for n in repair_register(notes)] == [60.0, 60.0]


def test_an_octave_slip_next_to_the_last_note_is_folded_and_the_last_note_kept():
    from hum2band.listen.notes import repair_register

    # 45, 59 (an octave slip of 47: 14 over both neighbours), 45 held 0.2 s at the end
    notes = [Note(0.11, 0.31, 45.0), Note(0.34, 0.41, 59.0), Note(0.44, 0.64, 45.0)]
    assert [n.midi_pitch for n in repair_register(notes)] == [45.0, 47.0, 45.0]


@pytest.mark.parametrize("start_s", [0.0, 0.04, 0.37, 2.8])
def test_a_note_exactly_stray_max_s_long_gets_the_same_verdict_anywhere_in_the_take(start_s):
    from hum2band.listen.notes import repair_register

    # 20 frames of 0.01 s: exactly stray_max_s (0.2 s), so not a stray wherever it lies, although
    # offset - onset comes out as 0.2 s or a hair under it depending on the times (at 0.04 s and
    # 0.37 s: under)
    s = SegmenterSettings()
    on = start_s + 0.11
    notes = [Note(on, on + 0.2, 72.0), Note(on + 0.23, on + 0.5, 55.0), Note(on + 0.5, on + 0.9, 55.0)]
    assert [n.midi_pitch for n in repair_register(notes, s)] == [72.0, 55.0, 55.0]


def _take(*pitch_and_length):
    """Back-to-back notes of the given (pitch, length in s)."""
    out, t = [], 0.0
    for p, length in pitch_and_length:
        out.append(Note(t, t + length, float(p)))
        t += length
    return out


@pytest.mark.parametrize("away", [40.0, 80.0])
def test_the_last_note_is_not_judged_by_a_long_note_out_of_register_before_it(away):
    from hum2band.listen.notes import repair_register

    # 60 61 60, then a 0.3 s note 20 semitones away (too long for a stray, no octave brings it
    # within 3 of the register 60: kept), then a short 60 to end on. The last note's one
    # neighbour is itself out of register (20 from both of its neighbours), so the last note is
    # kept; judged by its neighbour alone it would be out of register and, at 0.15 s, dropped.
    notes = _take((60, 0.5), (61, 0.3), (60, 0.3), (away, 0.3), (60, 0.15))
    assert [n.midi_pitch for n in repair_register(notes)] == [60.0, 61.0, 60.0, away, 60.0]


@pytest.mark.parametrize("before, last", [(67.0, 58.0), (53.0, 62.0)])
def test_a_neighbour_exactly_a_leap_from_the_register_does_not_shield_the_last_note(before, last):
    from hum2band.listen.notes import repair_register

    # The note before the last lies exactly 7 semitones (leap_semitones) from one of its
    # neighbours: not *more* than a leap, so not out of register, and the last note (9 from it,
    # 0.15 s, no octave fold within 3 of the register 61/60) is judged and dropped as a stray.
    notes = _take((60, 0.5), (61, 0.3), (60, 0.3), (before, 0.3), (last, 0.15))
    assert [n.midi_pitch for n in repair_register(notes)] == [60.0, 61.0, 60.0, before]


@pytest.mark.parametrize("quiet, kept", [(2, True), (3, False)])
def test_a_note_heard_for_less_than_the_shortest_note_once_placed_is_dropped(quiet, kept):
    # 12 frames on one pitch: long enough for the clean-up (shortest note 10 frames). The first
    # ``quiet`` frames are 12 dB under the note's peak, more than onset_rise_db (9 dB): the onset
    # moves past them. With 2 the note is heard for 10 frames (0.22-0.32 s) and kept; with 3 for
    # 9, shorter than a note: a fragment (in a room, a piece of a note cut off by a dip), dropped.
    rms = np.full(12, -20.0)
    rms[:quiet] = -32.0
    got = segment_notes(_sung(np.full(12, 60.0), rms=rms))
    if kept:
        assert [(round(n.onset_s, 2), round(n.offset_s, 2)) for n in got] == [(0.22, 0.32)]
    else:
        assert got == []
