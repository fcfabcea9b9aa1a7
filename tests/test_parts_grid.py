"""The accompaniment model's bar-by-tick grid: layout, conditions, chords and melody on ticks,
targets and back. Every number is counted by hand from the module docstring (12 ticks a beat,
48 relative pitches a part, bass floor 20, chord instruments 40)."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.compose.parts import grid as G
from hum2band.music.chords import ChordSymbol

C = ChordSymbol.parse


def test_output_and_input_layout():
    assert (G.N_DRUM, G.N_REL, G.MAX_TICKS) == (16, 48, 48)
    # 16 drum onsets + 16 drum velocities, then per pitched part 48 onsets, velocities, durations.
    assert G.OUT_SIZE == 32 + 4 * 3 * 48 == 608
    assert G.ONSET_SIZE == 16 + 4 * 48 == 208
    assert G.part_slices("bass") == (slice(32, 80), slice(80, 128), slice(128, 176))
    assert G.part_slices("keys") == (slice(176, 224), slice(224, 272), slice(272, 320))
    assert G.part_slices("pads") == (slice(464, 512), slice(512, 560), slice(560, 608))
    assert G.TICK_FEATURES == 2 + 12 + 12 + 1 + 12 + 18 + 12 + 2 + 2 == 73
    assert G.VELOCITY_COLUMN[3] == 19 and G.DURATION_COLUMN[3] == -1
    assert G.VELOCITY_COLUMN[32] == 80 and G.DURATION_COLUMN[32] == 128
    assert G.VELOCITY_COLUMN[223] == 271 and G.DURATION_COLUMN[223] == 319
    assert G.VELOCITY_COLUMN[80] == -1 and G.DURATION_COLUMN[80] == -1  # a velocity column itself
    assert list(G.COLUMN_PART[[0, 31, 32, 175, 176, 319, 320, 607]]) == [0, 0, 1, 1, 2, 2, 3, 4]
    assert len(G.ONSET_COLUMNS) == 208 and G.ONSET_COLUMNS[16] == 32 and G.ONSET_COLUMNS[-1] == 511


def test_drum_classes_read_every_general_midi_spelling():
    assert G.DRUM_CLASS_OF_KEY[35] == G.DRUM_CLASS_OF_KEY[36] == 0          # both kicks
    assert G.DRUM_CLASS_OF_KEY[44] == G.DRUM_CLASS_OF_KEY[42] == 4          # pedal hi-hat is closed
    assert G.DRUM_CLASS_OF_KEY[57] == 7 and G.DRUM_CLASS_OF_KEY[59] == 6    # crash 2, ride 2
    assert 81 not in G.DRUM_CLASS_OF_KEY


@pytest.mark.parametrize("meter, index", [((4, 4), 0), ((3, 4), 1), ((6, 8), 2), ((2, 4), 0),
                                          ((12, 8), 2), ((9, 8), 2), ((3, 2), 1), ((5, 4), 0),
                                          ((2, 2), 0), (("6", "8"), 2)])
def test_meter_index(meter, index):
    assert G.meter_index(meter) == index


@pytest.mark.parametrize("bpm, band", [(50, 0), (69.9, 0), (70, 1), (89.9, 1), (90, 2), (110, 3),
                                       (129.9, 3), (130, 4), (159.9, 4), (160, 5), (300, 5)])
def test_tempo_band(bpm, band):
    assert G.tempo_band(bpm) == band


def test_bar_ticks_and_mask():
    assert (G.bar_ticks(4), G.bar_ticks(3), G.bar_ticks(2)) == (48, 36, 24)
    m = G.tick_mask(2, 3)
    assert m.shape == (2, 48) and m[:, :36].all() and not m[:, 36:].any()


def test_chords_on_ticks_hold_and_lead_in():
    # 4/4, one bar: C from beat 0.5, G7/B from beat 2; the lead-in before the first chord takes C.
    ch = G.chord_grid([(0.5, 2.0, C("C")), (2.0, 4.0, C("G7/B"))], n_bars=1, beats_per_bar=4)
    assert list(ch.root_pc[0, :24]) == [0] * 24 and list(ch.root_pc[0, 24:]) == [7] * 24
    assert list(ch.bass_pc[0, 22:26]) == [0, 0, 11, 11]
    q7 = G.QUALITY_NAMES.index("7")
    assert list(ch.quality[0, 22:26]) == [0, 0, q7, q7]
    assert np.nonzero(ch.starts[0])[0].tolist() == [0, 24]


def test_chords_fill_gaps_forward_and_pad_short_bars():
    # 3/4, two bars (36 ticks each): C for beat 0, F from beat 4 (bar 2, tick 12) to the end; the
    # gap keeps C (N.C. is no chord to hold); a G after the last bar is cut.
    ch = G.chord_grid([(0.0, 1.0, C("C")), (2.0, 3.0, C("N")), (4.0, 6.0, C("F")), (7.0, 9.0, C("G"))],
                      n_bars=2, beats_per_bar=3)
    assert list(ch.root_pc[0, :36]) == [0] * 36
    assert list(ch.root_pc[1, :12]) == [0] * 12 and list(ch.root_pc[1, 12:36]) == [5] * 24
    assert (ch.root_pc[:, 36:] == -1).all() and (ch.quality[:, 36:] == -1).all()
    assert (ch.bass_pc[:, 36:] == -1).all() and not ch.starts[:, 36:].any()
    assert np.nonzero(ch.starts[0])[0].tolist() == [0] and np.nonzero(ch.starts[1])[0].tolist() == [12]


def test_a_new_bass_or_quality_is_a_new_chord():
    ch = G.chord_grid([(0, 1, C("C")), (1, 2, C("C/E")), (2, 3, C("C7/E")), (3, 4, C("C7/E"))], 1, 4)
    assert np.nonzero(ch.starts[0])[0].tolist() == [0, 12, 24]


def test_no_chords_at_all():
    ch = G.chord_grid([], 1, 4)
    assert (ch.root_pc == -1).all() and (ch.quality == -1).all()


def test_melody_on_ticks():
    # 4/4, 2 bars: a pickup from beat -0.5 to 0.5 (no onset in the grid), C from 0.25 to 0.75
    # overlapping it, a zero-length E at beat 5, a note past the end.
    rows = np.array([[-0.5, 0.5, 67], [0.25, 0.75, 60.4], [5.0, 5.0, 64], [9.0, 10.0, 72]])
    m = G.melody_grid(rows, n_bars=2, beats_per_bar=4)
    assert list(m.pitch[0, :9]) == [67, 67, 67, 60, 60, 60, 60, 60, 60]
    assert m.pitch[0, 9] == -1
    assert np.nonzero(m.onset.reshape(-1))[0].tolist() == [3, 48 + 12]
    assert m.pitch[1, 12] == 64 and m.pitch[1, 13] == -1          # one tick long
    assert (m.pitch[1, 14:] == -1).all()


def test_tick_features_of_one_tick():
    # Key of D (tonic 2); chord A7/C# (root 9, bass 1); melody F#4 (66) starting on beat 1.
    mel = G.melody_grid(np.array([[1.0, 2.0, 66]]), 1, 4)
    ch = G.chord_grid([(0.0, 4.0, C("A7/C#"))], 1, 4)
    f = G.tick_features(mel, ch, tonic_pc=2, beats_per_bar=4)
    assert f.shape == (1, 48, 73) and f.dtype == np.float32
    v = f[0, 12]
    on = np.nonzero(v)[0].tolist()
    q7 = G.QUALITY_NAMES.index("7")
    # onset, sounding, F# is degree 4 of D, degree 9 over A, register (66-60)/12, root A is degree
    # 7 of D, the quality, C# is 4 over A, a beat starts (not a chord: A7 began at tick 0).
    assert on == [0, 1, 2 + 4, 14 + 9, 26, 27 + 7, 39 + q7, 39 + 18 + 4, 69 + 2]
    assert v[26] == pytest.approx(0.5)
    t0 = np.nonzero(f[0, 0])[0].tolist()
    assert t0 == [27 + 7, 39 + q7, 39 + 18 + 4, 69, 71, 72]  # chord starts, beat, bar; no melody
    assert np.nonzero(f[0, 5])[0].tolist() == [27 + 7, 39 + q7, 39 + 18 + 4]


def test_tick_features_flag_bars_without_a_chord():
    mel = G.melody_grid(np.zeros((0, 3)), 1, 3)
    f = G.tick_features(mel, G.chord_grid([], 1, 3), 0, 3)
    assert (f[0, :36, 70] == 1).all() and (f[0, 36:, 70] == 0).all()
    assert np.nonzero(f[0, :, 71])[0].tolist() == [0, 12, 24]


def test_clashes_are_read_on_counted_beats():
    mel = np.full(48, 60)
    assert G.clashes_with_melody(49, 0, 13, mel)          # C# against C on beat 1 (any octave)
    assert G.clashes_with_melody(71, 5, 13, mel)          # B against C on beat 2
    assert not G.clashes_with_melody(49, 1, 12, mel)      # sounds only between beats
    assert not G.clashes_with_melody(72, 0, 48, mel)      # an octave
    assert not G.clashes_with_melody(63, 0, 48, mel)      # a minor third
    rest = np.full(48, -1)
    assert not G.clashes_with_melody(61, 0, 48, rest)
    assert not G.clashes_with_melody(61, 40, 60, np.full(44, 60))  # a beat past the end


def test_part_events_place_every_note_by_hand():
    ch = G.chord_grid([(0.0, 8.0, C("C"))], 2, 4)
    parts = {
        "drums": [[0.0, 0.1, 36, 100], [0.0, 0.1, 44, 64], [1.0, 0.1, 81, 90], [9.0, 0.1, 36, 90]],
        "bass": [[0.0, 1.0, 40, 127], [1.0, 10.0, 14, 60], [4.5, 0.5, 40, 0]],
        "keys": [[2.0, 0.5, 100, 80], [2.0, 0.5, 100, 120]],
        "sitar": [[0.0, 1.0, 60, 90]],
    }
    ev = G.part_events(parts, ch, 2, 4, drop_clashes=False)
    got = {(int(t), int(c)): (float(v), float(d)) for t, c, v, d in
           zip(ev.tick, ev.column, ev.velocity, ev.log2_dur)}
    # kick and pedal hi-hat on tick 0; the unknown drum 81 and the hit past bar 2 are dropped.
    assert got[(0, 0)] == pytest.approx((100 / 127, 0.0))
    assert got[(0, 4)] == pytest.approx((64 / 127, 0.0))
    # E2 (40) over C: 40 - 0 - 20 = relative 20 -> column 32 + 20; one beat = 12 ticks.
    assert got[(0, 52)] == pytest.approx((1.0, np.log2(12)))
    # A low D0 (14): relative -6 -> up an octave to 6; ten beats are capped at eight (96 ticks).
    assert got[(12, 38)] == pytest.approx((60 / 127, np.log2(96)))
    # Beat 4.5 is bar 2, tick 6: song tick 48 + 6; velocity 0 counts as 1.
    assert got[(54, 52)] == pytest.approx((1 / 127, np.log2(6)))
    # Keys at E7 (100): relative 60 -> down an octave to 48 -> 36 -> column 176 + 36; of the two
    # identical notes the louder stays.
    assert got[(24, 212)] == pytest.approx((120 / 127, np.log2(6)))
    assert len(got) == 6
    assert list(ev.present) == [True, True, True, False, False]
    assert list(ev.tick) == sorted(ev.tick)


def test_part_events_in_three_four_use_the_padded_row():
    ch = G.chord_grid([(0.0, 6.0, C("G"))], 2, 3)
    ev = G.part_events({"bass": [[4.5, 1.0, 43, 100]]}, ch, 2, 3)
    # Beat 4.5 of 3/4 is tick 54 of the song: bar 1 (36 ticks a bar), tick 18 -> 48 + 18.
    # G2 (43) over G (7): 43 - 7 - 20 = 16 -> column 48.
    assert ev.tick.tolist() == [66] and ev.column.tolist() == [32 + 16]


def test_clashing_notes_are_dropped_from_the_targets_only_when_asked():
    ch = G.chord_grid([(0.0, 4.0, C("C"))], 1, 4)
    mel = G.melody_grid(np.array([[0.0, 4.0, 60]]), 1, 4)
    parts = {"keys": [[1.0, 1.0, 61, 90], [1.0, 1.0, 64, 90]]}
    kept = G.part_events(parts, ch, 1, 4, mel=mel)
    assert kept.column.tolist() == [176 + 64 - 40]         # the C# went, the E stayed
    both = G.part_events(parts, ch, 1, 4, mel=mel, drop_clashes=False)
    assert sorted(both.column.tolist()) == [176 + 61 - 40, 176 + 64 - 40]


def test_densify_puts_each_event_in_its_bar_and_columns():
    ch = G.chord_grid([(0.0, 12.0, C("C"))], 3, 4)
    ev = G.part_events({"drums": [[0.0, 0.1, 38, 127]], "bass": [[4.0, 2.0, 40, 127], [8.0, 1.0, 36, 127]]},
                       ch, 3, 4)
    on, vel, dur = G.densify(ev, n_bars=2, first_bar=1)
    assert on.shape == vel.shape == dur.shape == (2, 48, 608)
    # The snare of bar 0 is outside; the bass of bar 1 lands at bar 0 tick 0 of the window.
    assert on.sum() == 2
    assert on[0, 0, 52] == 1 and vel[0, 0, 80 + 20] == pytest.approx(1.0)
    assert dur[0, 0, 128 + 20] == pytest.approx(np.log2(24))
    assert on[1, 0, 48] == 1 and dur[1, 0, 128 + 16] == pytest.approx(np.log2(12))
    on0, vel0, dur0 = G.densify(ev, n_bars=1)
    assert on0[0, 0, 1] == 1 and vel0[0, 0, 17] == pytest.approx(1.0) and dur0.sum() == 0


def test_bar_positions_mark_phrase_ends():
    rows = np.array([[0.0, 8.0, 60], [12.0, 16.0, 62]])     # rests through bar 2 (beats 8-12)
    mel = G.melody_grid(rows, 4, 4)
    pos = G.bar_positions(4, mel)
    assert pos.shape == (4, 4)
    assert pos[:, 0].tolist() == [0, 1, 2, 3]
    assert pos[:, 1].tolist() == [4, 5, 6, 7]
    assert pos[:, 2].tolist() == [15, 14, 13, 12]             # bars left: 3, 2, 1, 0
    assert pos[:, 3].tolist() == [16, 17, 16, 17]             # the melody rests at bar 2 and after
    late = G.bar_positions(4, mel, total_bars=14, first_bar=9)
    assert late[:, 0].tolist() == [1, 2, 3, 0] and late[:, 1].tolist() == [5, 6, 7, 8]
    assert late[:, 2].tolist() == [15, 15, 14, 13]            # 4, 3, 2, 1 bars left, capped at 3
