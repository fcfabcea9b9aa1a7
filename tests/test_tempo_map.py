"""The MIDI tempo map on the singer's beats: every expectation below is worked out by hand from
the beat times (see the comments), then read back from the file with mido, never with the code
under test."""

from __future__ import annotations

from types import SimpleNamespace

import mido
import numpy as np
import pytest

from hum2band.music.key import Key
from hum2band.music.meter import Rhythm
from hum2band.music.tempo_map import TICKS_PER_QUARTER, TempoMap, bar_line_ticks, midi_downbeats_s

#: A sung 4/4 take: first beat at 1.3 s, a one-beat pickup (bar 1 starts on the second beat).
BEATS_S = np.array([1.3, 1.8, 2.3, 2.9, 3.5, 4.0, 4.6, 5.2, 5.7])
# Inter-beat intervals 0.5 0.5 0.6 0.6 0.5 0.6 0.6 0.5: median 0.55 s, so the 1.3 s before the first
# beat hold round(1.3 / 0.55) = 2 lead-in beats of 0.65 s: the file's beats are at
# 0, 0.65, 1.3, 1.8, ... and bar 1 (1.8 s) is the file's beat 3: a pickup bar of 3/4 first.
FILE_BEATS_S = [0.0, 0.65, 1.3, 1.8, 2.3, 2.9, 3.5, 4.0, 4.6, 5.2, 5.7]


def sung_map(duration_s: float = 6.5) -> TempoMap:
    rhythm = Rhythm(BEATS_S, BEATS_S[1::4], (4, 4), 110.0)
    return TempoMap.from_rhythm(rhythm, duration_s=duration_s)


def note(on, off, midi=60, vel=90):
    return SimpleNamespace(onset_s=on, offset_s=off, midi=midi, velocity=vel)


def read_events(path):
    """(absolute tick, message) per track."""
    out = []
    for track in mido.MidiFile(str(path)).tracks:
        tick, evs = 0, []
        for msg in track:
            tick += msg.time
            evs.append((tick, msg))
        out.append(evs)
    return out


def test_lead_in_pickup_and_the_beats_after_the_take():
    tmap = sung_map()
    # After 5.7 s the last interval (0.5 s) goes on until a beat lies past 6.5 + 0.5 s: 6.2, 6.7, 7.2.
    assert np.allclose(tmap.beat_times_s, FILE_BEATS_S + [6.2, 6.7, 7.2])
    assert tmap.first_downbeat_index == 3
    assert tmap.ticks_per_beat == TICKS_PER_QUARTER
    assert list(tmap.beat_ticks[:4]) == [0, 480, 960, 1440]
    assert tmap.time_signature_events() == [(0, 3, 4), (1440, 4, 4)]
    assert list(tmap.bar_line_ticks(1440 + 3 * 1920 + 1)) == [0, 1440, 3360, 5280, 7200]


def test_a_first_beat_right_at_the_start_becomes_beat_zero_and_no_pickup():
    beats = np.array([0.1, 0.7, 1.3, 1.9, 2.5, 3.1, 3.7])
    tmap = TempoMap.from_rhythm(Rhythm(beats, beats[::3], (3, 4), 100.0), duration_s=4.0)
    assert tmap.beat_times_s[0] == 0.0 and np.allclose(tmap.beat_times_s[1:7], beats[1:])
    assert tmap.first_downbeat_index == 0
    assert tmap.time_signature_events() == [(0, 3, 4)]


def test_compound_meter_counts_dotted_quarters():
    beats = np.array([0.9 * i for i in range(1, 9)])  # 6/8 at 66.7 dotted quarters a minute
    tmap = TempoMap.from_rhythm(Rhythm(beats, beats[1::2], (6, 8), 66.7), duration_s=8.0)
    # A beat is a dotted quarter: 720 ticks; one lead-in beat (0.9 s) then a 1-beat pickup before
    # the first downbeat (1.8 s = file beat 2): a 3/8 bar, then 6/8 from tick 1440.
    assert tmap.ticks_per_beat == 720
    assert tmap.first_downbeat_index == 2
    assert tmap.time_signature_events() == [(0, 6, 8)]
    beats2 = np.array([0.9 * i for i in range(1, 9)])
    tmap2 = TempoMap.from_rhythm(Rhythm(beats2, beats2[0::2], (6, 8), 66.7), duration_s=8.0)
    assert tmap2.first_downbeat_index == 1
    assert tmap2.time_signature_events() == [(0, 3, 8), (720, 6, 8)]


def test_seconds_and_ticks_convert_linearly_between_beats_and_past_the_last():
    tmap = sung_map()
    assert int(tmap.seconds_to_ticks(1.3)) == 960
    assert int(tmap.seconds_to_ticks(1.55)) == 1200          # halfway between beats 2 and 3
    assert int(tmap.seconds_to_ticks(2.6)) == 1920 + 240     # halfway across a 0.6 s beat
    last_tick = (len(tmap.beat_times_s) - 1) * 480
    assert int(tmap.seconds_to_ticks(7.2)) == last_tick
    assert int(tmap.seconds_to_ticks(7.45)) == last_tick + 240  # 0.5 s beats go on after the map
    arr = tmap.seconds_to_ticks(np.array([0.0, 0.325, 1.8]))
    assert arr.dtype == np.int64 and list(arr) == [0, 240, 1440]
    assert float(tmap.ticks_to_seconds(1200)) == pytest.approx(1.55)
    assert float(tmap.ticks_to_seconds(2160)) == pytest.approx(2.6)
    t = np.array([0.2, 1.0, 3.3, 5.9])
    assert np.allclose(tmap.ticks_to_seconds(tmap.seconds_to_ticks(t)), t, atol=1e-3)


def test_the_file_holds_a_tempo_per_beat_the_meter_the_key_and_markers(tmp_path):
    tmap = sung_map()
    path = tmp_path / "song.mid"
    tmap.write_midi(path, tracks=[], key=Key("A", "minor"), markers=[(1.8, "verse"), (4.6, "chorus")])
    mid = mido.MidiFile(str(path))
    assert mid.type == 1 and mid.ticks_per_beat == 480
    conductor = read_events(path)[0]
    tempos = [(t, m.tempo) for t, m in conductor if m.type == "set_tempo"]
    # One per beat: 0.65 s beats -> 650000 us per quarter, 0.5 s -> 500000, 0.6 s -> 600000.
    assert tempos[:6] == [(0, 650000), (480, 650000), (960, 500000), (1440, 500000), (1920, 600000),
                          (2400, 600000)]
    assert len(tempos) == len(tmap.beat_times_s) - 1
    sigs = [(t, m.numerator, m.denominator) for t, m in conductor if m.type == "time_signature"]
    assert sigs == [(0, 3, 4), (1440, 4, 4)]
    assert [(t, m.key) for t, m in conductor if m.type == "key_signature"] == [(0, "Am")]
    assert [(t, m.text) for t, m in conductor if m.type == "marker"] == [(1440, "verse"), (3840, "chorus")]
    assert conductor[-1][1].type == "end_of_track"
    # A time signature comes before the tempo at the same tick, as a reader expects.
    types_at_0 = [m.type for t, m in conductor if t == 0]
    assert types_at_0.index("time_signature") < types_at_0.index("set_tempo")


def test_compound_tempo_is_written_per_quarter_note(tmp_path):
    beats = np.array([0.9 * i for i in range(0, 8)])
    tmap = TempoMap.from_rhythm(Rhythm(beats, beats[0::2], (6, 8), 66.7), duration_s=7.0)
    path = tmp_path / "jig.mid"
    tmap.write_midi(path, tracks=[], key=Key("Eb", "major"))
    conductor = read_events(path)[0]
    # A 0.9 s dotted quarter is 1.5 quarters: 600000 us per quarter.
    assert {m.tempo for _, m in conductor if m.type == "set_tempo"} == {600000}
    assert [m.key for _, m in conductor if m.type == "key_signature"] == ["Eb"]


def test_a_key_midi_cannot_spell_is_left_out_not_an_error(tmp_path):
    path = tmp_path / "k.mid"
    sung_map().write_midi(path, tracks=[], key=Key("D#", "major"))
    assert not [m for _, m in read_events(path)[0] if m.type == "key_signature"]


def test_tracks_channels_programs_controls_and_notes(tmp_path):
    tmap = sung_map()
    melodic = [(f"p{i}", 130 + i, False, [note(1.3, 1.8, 60 + i)]) for i in range(11)]
    drums = ("drums", 0, True, [note(1.8, 1.8, 36, 200), note(2.3, 2.4, 38, 0)], {10: 64, 7: 300})
    path = tmp_path / "band.mid"
    tmap.write_midi(path, tracks=melodic[:9] + [drums] + melodic[9:])
    tracks = read_events(path)[1:]
    channels = [{m.channel for _, m in tr if hasattr(m, "channel")} for tr in tracks]
    # Melodic parts take channels 0-8, then 10, 11 (9 is General MIDI's drum channel).
    assert channels == [{c} for c in range(9)] + [{9}] + [{10}, {11}]
    names = [next(m.name for _, m in tr if m.type == "track_name") for tr in tracks]
    assert names == [f"p{i}" for i in range(9)] + ["drums", "p9", "p10"]
    programs = [next(m.program for _, m in tr if m.type == "program_change") for tr in tracks]
    assert programs[0] == 2 and programs[9] == 0  # 130 & 127 = 2
    drum = tracks[9]
    cc = {m.control: m.value for _, m in drum if m.type == "control_change"}
    assert cc == {10: 64, 7: 127}
    ons = [(t, m.note, m.velocity) for t, m in drum if m.type == "note_on"]
    offs = [(t, m.note) for t, m in drum if m.type == "note_off"]
    # A zero-length hit still lasts one tick; velocities are clipped into 1-127.
    assert ons == [(1440, 36, 127), (1920, 38, 1)]
    assert offs == [(1441, 36), (1920 + 80, 38)]  # 0.1 s into a 0.6 s beat: 480 / 6
    first = tracks[0]
    assert [(t, m.type, m.note) for t, m in first if m.type in ("note_on", "note_off")] == \
           [(960, "note_on", 60), (1440, "note_off", 60)]


def test_a_note_that_ends_where_the_next_begins_is_released_first(tmp_path):
    path = tmp_path / "legato.mid"
    sung_map().write_midi(path, tracks=[("m", 0, False, [note(1.3, 1.8, 62), note(1.8, 2.3, 62)])])
    evs = [(t, m.type) for t, m in read_events(path)[1] if m.type in ("note_on", "note_off")]
    assert evs == [(960, "note_on"), (1440, "note_off"), (1440, "note_on"), (1920, "note_off")]


def test_pitch_bend_tunes_melodic_channels_only(tmp_path):
    path = tmp_path / "bend.mid"
    sung_map().write_midi(path, tracks=[("keys", 0, False, [note(1.3, 1.8)]),
                                        ("drums", 0, True, [note(1.3, 1.4, 36)])], pitch_bend_cents=50.0)
    keys, drums = read_events(path)[1:]
    # RPN 0,0 = bend range 2 semitones (6 -> 2, 38 -> 0), then the null RPN; 50 cents of 200 is
    # a quarter of the range: 8192 / 4 = 2048.
    cc = [(m.control, m.value) for _, m in keys if m.type == "control_change"]
    assert cc == [(101, 0), (100, 0), (6, 2), (38, 0), (101, 127), (100, 127)]
    assert [m.pitch for _, m in keys if m.type == "pitchwheel"] == [2048]
    assert not [m for _, m in drums if m.type in ("pitchwheel", "control_change")]
    path2 = tmp_path / "in_tune.mid"
    sung_map().write_midi(path2, tracks=[("keys", 0, False, [note(1.3, 1.8)])], pitch_bend_cents=0.4)
    assert not [m for _, m in read_events(path2)[1] if m.type in ("pitchwheel", "control_change")]
    path3 = tmp_path / "flat.mid"
    sung_map().write_midi(path3, tracks=[("keys", 0, False, [note(1.3, 1.8)])], pitch_bend_cents=-400)
    assert [m.pitch for _, m in read_events(path3)[1] if m.type == "pitchwheel"] == [-8192]


def test_a_track_carries_its_controls_and_texts_at_tick_zero(tmp_path):
    path = tmp_path / "texts.mid"
    sung_map().write_midi(path, tracks=[("keys", 0, False, [note(1.3, 1.8)], {7: 75, 10: 64},
                                         ("hum2band level cc7=75 gain_db=-2.00", "second")),
                                        ("bass", 33, False, [note(1.3, 1.8, 40)], {7: 90})])
    keys, bass = read_events(path)[1:]
    assert [(t, m.text) for t, m in keys if m.type == "text"] == [
        (0, "hum2band level cc7=75 gain_db=-2.00"), (0, "second")]
    assert [(t, m.control, m.value) for t, m in keys if m.type == "control_change"] == [(0, 7, 75), (0, 10, 64)]
    assert not [m for _, m in bass if m.type == "text"]
    assert [(t, m.control, m.value) for t, m in bass if m.type == "control_change"] == [(0, 7, 90)]


def test_bar_lines_of_meter_changes():
    assert bar_line_ticks([(0, 4, 4)], 480, 1920 * 3) == [0, 1920, 3840]
    assert bar_line_ticks([(0, 4, 4)], 480, 1920 * 3 + 1) == [0, 1920, 3840, 5760]
    # A 3/4 pickup of one bar, then 4/4; given out of order.
    assert bar_line_ticks([(1440, 4, 4), (0, 3, 4)], 480, 6000) == [0, 1440, 3360, 5280]
    # 6/8 bars are six eighths = 1440 ticks; 2/2 bars 1920.
    assert bar_line_ticks([(0, 6, 8)], 480, 4000) == [0, 1440, 2880]
    assert bar_line_ticks([(0, 2, 2)], 480, 4000) == [0, 1920, 3840]
    # Of two signatures at one tick the last one given counts, as a MIDI player reads them.
    assert bar_line_ticks([(0, 4, 4), (0, 3, 4)], 480, 3000) == [0, 1440, 2880]


def test_downbeats_read_back_from_a_file_without_a_time_signature(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=3840))
    path = tmp_path / "plain.mid"
    mid.save(path)
    # MIDI's default meter is 4/4: a bar is 4 quarters = 2 s at 120 bpm; the file ends at tick 3840.
    assert midi_downbeats_s(path) == pytest.approx([0.0, 2.0, 4.0])


def test_downbeats_read_back_are_the_sung_ones(tmp_path):
    path = tmp_path / "sung.mid"
    tmap = sung_map()
    tmap.write_midi(path, tracks=[("m", 0, False, [note(1.3, 6.4)])])
    bars = midi_downbeats_s(path)
    # The pickup bar starts at 0; bar lines then fall on the sung downbeats 1.8 s and 4.0 s.
    assert bars[:3] == pytest.approx([0.0, 1.8, 4.0], abs=1e-3)
