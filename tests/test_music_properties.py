"""Invariants a musician relies on, checked as properties (Hypothesis) and against answers worked
out from music theory by hand -- never against the code's own output.

* notes never overlap and stay inside the take, whatever the pitch track;
* shifting a take in time shifts every note and nothing else; transposing it transposes its notes,
  its key and its chords and nothing else;
* a chord symbol survives parse -> Harte -> parse and parse -> label -> parse, and the symbols
  musicians write spell the pitch classes theory says they do;
* the key of a melody that plainly states it (scale, tonic on the long notes) is that key;
* a tempo map puts every bar line of the MIDI file on a sung downbeat.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hum2band.listen.notes import segment_notes
from hum2band.listen.pitch import HOP_S, PitchTrack
from hum2band.music.chords import QUALITIES, ChordSymbol
from hum2band.music.key import PITCH_CLASS_NAMES, TONIC_PITCH_CLASS
from hum2band.music.keyfinding import estimate_key
from hum2band.music.melody import Note
from hum2band.music.meter import Rhythm, beats_per_bar
from hum2band.music.tempo_map import TempoMap, midi_downbeats_s

SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- pitch tracks made of sung notes --------------------------------------------------------
@st.composite
def pitch_tracks(draw):
    """A frame-wise track of held notes with rests, scoops, vibrato and loudness swells."""
    n_notes = draw(st.integers(1, 8))
    midi, voiced, loud = [], [], []
    for _ in range(n_notes):
        rest = draw(st.integers(0, 40))
        midi += [np.nan] * rest
        voiced += [0.0] * rest
        loud += [-70.0] * rest
        frames = draw(st.integers(2, 120))
        pitch = draw(st.floats(45.0, 80.0))
        scoop = draw(st.floats(0.0, 2.0))
        vib = draw(st.floats(0.0, 0.6))
        t = np.arange(frames)
        contour = pitch + vib * np.sin(2 * np.pi * 5.5 * t * HOP_S) - scoop * np.exp(-t / 4.0)
        swell = draw(st.floats(-30.0, -6.0)) + 3.0 * np.sin(np.pi * t / max(frames - 1, 1))
        midi += list(contour)
        voiced += [draw(st.floats(0.55, 1.0))] * frames
        loud += list(swell)
    tail = draw(st.integers(0, 20))
    midi += [np.nan] * tail
    voiced += [0.0] * tail
    loud += [-70.0] * tail
    n = len(midi)
    start_s = draw(st.sampled_from([0.0, 0.37, 2.8]))
    return PitchTrack(times_s=start_s + np.arange(n) * HOP_S, midi_pitch=np.array(midi),
                      periodicity=np.array(voiced), rms_db=np.array(loud), backend="test")


def _shifted(track: PitchTrack, seconds: float = 0.0, semitones: float = 0.0) -> PitchTrack:
    return PitchTrack(track.times_s + seconds, track.midi_pitch + semitones, track.periodicity,
                      track.rms_db, track.backend, track.bright_db)


@SLOW
@given(pitch_tracks())
def test_notes_never_overlap_and_stay_inside_the_take(track):
    notes = segment_notes(track)
    start, end = track.times_s[0], track.times_s[-1] + HOP_S
    for n in notes:
        assert start - 1e-9 <= n.onset_s < n.offset_s <= end + 1e-9
        assert np.isfinite(n.midi_pitch)
    for a, b in zip(notes, notes[1:]):
        assert a.offset_s <= b.onset_s + 1e-9, f"{a} overlaps {b}"


@SLOW
@given(pitch_tracks(), st.integers(1, 400))
def test_a_later_take_gives_the_same_notes_later(track, frames):
    shift_s = frames * HOP_S
    before, after = segment_notes(track), segment_notes(_shifted(track, seconds=shift_s))
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert b.onset_s == pytest.approx(a.onset_s + shift_s, abs=1e-9)
        assert b.offset_s == pytest.approx(a.offset_s + shift_s, abs=1e-9)
        assert (b.midi_pitch, b.midi, b.velocity) == (a.midi_pitch, a.midi, a.velocity)


@SLOW
@given(pitch_tracks(), st.sampled_from([-7, -5, -2, 3, 4, 12]))
def test_a_transposed_take_gives_the_same_notes_transposed(track, k):
    before, after = segment_notes(track), segment_notes(_shifted(track, semitones=k))
    assert [(a.onset_s, a.offset_s, a.velocity) for a in before] == \
           [(b.onset_s, b.offset_s, b.velocity) for b in after]
    for a, b in zip(before, after):
        assert b.midi_pitch == pytest.approx(a.midi_pitch + k, abs=1e-9)


# ---- chords ---------------------------------------------------------------------------------
chords = st.builds(lambda r, q, b: ChordSymbol.make(r, q, b if b >= 0 else None),
                   st.integers(0, 11), st.sampled_from(sorted(QUALITIES)), st.integers(-1, 11))


@given(chords)
def test_a_chord_survives_harte_and_its_written_label(chord):
    assert ChordSymbol.parse(chord.harte) == chord
    assert ChordSymbol.parse(chord.label) == chord


@given(chords, st.integers(-24, 24))
def test_transposing_a_chord_moves_every_pitch_class(chord, k):
    moved = chord.transpose(k)
    assert moved.pitch_classes() == tuple(sorted((p + k) % 12 for p in chord.pitch_classes()))
    assert moved.quality == chord.quality


#: What musicians write -> the pitch classes and bass theory gives them (C = 0).
SPELLED = {
    "C": ({0, 4, 7}, 0), "Cm": ({0, 3, 7}, 0), "Csus": ({0, 5, 7}, 0), "Csus4": ({0, 5, 7}, 0),
    "Csus2": ({0, 2, 7}, 0), "G7sus4": ({7, 0, 2, 5}, 7), "C6": ({0, 4, 7, 9}, 0),
    "C6/9": ({0, 4, 7, 9}, 0),  # the vocabulary has no 9th on a sixth chord: it keeps the 6
    "Cm6": ({0, 3, 7, 9}, 0), "Cdim": ({0, 3, 6}, 0), "Cdim7": ({0, 3, 6, 9}, 0),
    "Caug": ({0, 4, 8}, 0), "C+": ({0, 4, 8}, 0), "F#m7b5": ({6, 9, 0, 4}, 6),
    "CmMaj7": ({0, 3, 7, 11}, 0), "Cmaj7": ({0, 4, 7, 11}, 0), "Bb/D": ({10, 2, 5}, 2),
    "Am7/G": ({9, 0, 4, 7}, 7), "D9": ({2, 6, 9, 0, 4}, 2), "Ebm9": ({3, 6, 10, 1, 5}, 3),
    "A:min7": ({9, 0, 4, 7}, 9), "C:maj/3": ({0, 4, 7}, 4), "G:sus4(b7)": ({7, 0, 2, 5}, 7),
    "D:7/b7": ({2, 6, 9, 0}, 0), "E:hdim7": ({4, 7, 10, 2}, 4), "F:maj6": ({5, 9, 0, 2}, 5),
}


@pytest.mark.parametrize("text", sorted(SPELLED))
def test_written_chords_spell_their_pitch_classes(text):
    pcs, bass = SPELLED[text]
    chord = ChordSymbol.parse(text)
    assert set(chord.pitch_classes()) == pcs | {bass}
    assert chord.bass == bass


# ---- key ------------------------------------------------------------------------------------
def _melody(pitches_durations, start_s: float = 0.0) -> list[Note]:
    notes, t = [], start_s
    for pitch, dur in pitches_durations:
        notes.append(Note(t, t + dur * 0.9, float(pitch), int(pitch), 90))
        t += dur
    return notes


#: Tunes that state their key the way a songwriter would: the scale, the tonic on long notes and
#: at the ends of phrases, the leading tone of the minor rising to the tonic.
STATED_KEYS = {
    "C major": [(60, .5), (62, .5), (64, .5), (65, .5), (67, 1), (64, .5), (60, 1.5),
                (67, .5), (65, .5), (64, .5), (62, .5), (59, .5), (62, .5), (60, 2)],
    "A minor": [(69, 1), (71, .5), (72, .5), (74, .5), (72, .5), (71, .5), (68, .5), (69, 2),
                (64, .5), (69, .5), (72, .5), (71, .5), (68, .5), (71, .5), (69, 2)],
    "C minor": [(60, 1), (62, .5), (63, .5), (65, .5), (67, 1), (68, .5), (67, .5), (63, .5),
                (62, .5), (59, .5), (60, 2), (67, .5), (63, .5), (62, .5), (59, .5), (60, 2)],
    "G major": [(67, 1), (71, .5), (74, .5), (72, .5), (71, .5), (69, .5), (66, .5), (67, 2),
                (62, .5), (66, .5), (69, .5), (72, .5), (71, .5), (69, .5), (67, 2)],
}


@pytest.mark.parametrize("name", sorted(STATED_KEYS))
def test_a_melody_that_states_its_key_gets_that_key(name):
    tonic, mode = name.split()
    key = estimate_key(_melody(STATED_KEYS[name]))
    assert (key.tonic_pitch_class, key.mode) == (TONIC_PITCH_CLASS[tonic.upper()], mode)


@pytest.mark.parametrize("name", sorted(STATED_KEYS))
@pytest.mark.parametrize("k", [-5, -1, 2, 6])
def test_a_transposed_melody_has_the_transposed_key(name, k):
    base = estimate_key(_melody(STATED_KEYS[name]))
    moved = estimate_key(_melody([(p + k, d) for p, d in STATED_KEYS[name]]))
    assert moved.mode == base.mode
    assert moved.tonic_pitch_class == (base.tonic_pitch_class + k) % 12
    assert moved.tonic == PITCH_CLASS_NAMES[moved.tonic_pitch_class]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(55, 79), st.sampled_from([0.25, 0.5, 1.0, 1.5])),
                min_size=6, max_size=40),
       st.integers(-11, 11), st.floats(0.0, 30.0))
def test_key_follows_transposition_and_ignores_when_the_tune_starts(tune, k, start_s):
    base = estimate_key(_melody(tune))
    moved = estimate_key(_melody([(p + k, d) for p, d in tune], start_s=start_s))
    assert moved.mode == base.mode
    assert moved.tonic_pitch_class == (base.tonic_pitch_class + k) % 12


# ---- tempo map ------------------------------------------------------------------------------
@st.composite
def sung_rhythms(draw):
    meter = draw(st.sampled_from([(4, 4), (3, 4), (6, 8), (2, 4)]))
    bpb = beats_per_bar(meter)
    n_bars = draw(st.integers(2, 12))
    tempo = draw(st.floats(50.0, 180.0))
    drift = draw(st.floats(-0.15, 0.15))
    jitter = draw(st.lists(st.floats(-0.04, 0.04), min_size=n_bars * bpb + 1, max_size=n_bars * bpb + 1))
    first = draw(st.floats(0.0, 4.0))
    periods = 60.0 / tempo * np.exp(drift * np.linspace(0, 1, n_bars * bpb + 1))
    beats = first + np.concatenate([[0.0], np.cumsum(periods[:-1])]) + np.array(jitter) * 60.0 / tempo
    beats = np.maximum.accumulate(beats)
    beats -= min(0.0, float(beats[0]))  # a take's beats are inside the recording
    assume_ok = np.all(np.diff(beats) > 0.15)
    pickup = draw(st.integers(0, bpb - 1))
    downbeats = beats[pickup::bpb]
    return Rhythm(beats, downbeats, meter, float(tempo)), assume_ok


@settings(max_examples=30, deadline=None)
@given(sung_rhythms())
def test_every_bar_line_of_the_midi_file_is_a_sung_downbeat(case):
    rhythm, ok = case
    if not ok:
        return
    duration_s = float(rhythm.beats_s[-1] + 1.0)
    tmap = TempoMap.from_rhythm(rhythm, duration_s=duration_s)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bars.mid"
        tmap.write_midi(path, tracks=[])
        bar_lines = np.array(midi_downbeats_s(path))
    sung = rhythm.downbeats_s
    # Every sung downbeat is a bar line of the file (to within a MIDI tick); a first beat within
    # half a beat of the start of the recording becomes the file's beat 0 (the file starts with
    # the recording and counts whole beats).
    half_beat_s = 0.5 * float(np.median(np.diff(rhythm.beats_s)))
    for t in sung:
        expected = 0.0 if t < half_beat_s and t == rhythm.beats_s[0] else t
        assert np.min(np.abs(bar_lines - expected)) < 2e-3, f"downbeat {t:.3f} s is not a bar line"
    # ... and between the first and last sung downbeat there are no others.
    inner = bar_lines[(bar_lines > sung[0] + 2e-3) & (bar_lines < sung[-1] - 2e-3)]
    assert len(inner) == len(sung) - 2


# ---- the shipped takes ----------------------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("take", ["amazing_grace.opus", "ode_to_joy.m4a", "row_your_boat.mp3", "twinkle.wav"])
def test_notes_of_a_real_take_never_overlap_and_stay_inside_it(take):
    from hum2band.listen.transcription import transcribe

    melody = transcribe(EXAMPLES / take)
    assert melody.notes
    for n in melody.notes:
        assert 0.0 <= n.onset_s < n.offset_s <= melody.duration_s + 1e-6
    for a, b in zip(melody.notes, melody.notes[1:]):
        assert a.offset_s <= b.onset_s + 1e-9, f"{take}: {a} overlaps {b}"
