"""The song's form from the melody (hum2band.compose.form): sections, repeated harmony, fills into
each section, the band's shape, and the sections in arrangement.json and the MIDI markers."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from hum2band.compose import form as F
from hum2band.errors import OptionError
from hum2band.music.arrangement import Arrangement, Part, PartNote, SectionSpan
from hum2band.music.chords import ChordSymbol
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import Rhythm

A_TUNE = [60, 62, 64, 60, 64, 65, 67, 67, 67, 69, 67, 65, 64, 62, 60, 60]   # one note a beat, 4 bars
B_TUNE = [69, 69, 71, 72, 74, 74, 72, 71, 69, 67, 69, 71, 72, 72, 71, 69]


def _aaba(bars_per_phrase: int = 8) -> np.ndarray:
    """An AABA song in 4/4: each section is a 4-bar tune sung twice with a small change."""
    notes = []
    for s, tune in enumerate((A_TUNE, A_TUNE, B_TUNE, A_TUNE)):
        for rep in range(bars_per_phrase // 4):
            for i, p in enumerate(tune):
                t = s * bars_per_phrase * 4 + rep * 16 + i
                notes.append([t, t + 0.9, p + (2 if rep == 1 and i == 15 else 0)])
    return np.array(notes, dtype=float)


def test_sections_are_found_from_repeated_melody():
    sections = F.find_sections(_aaba(), 0, 32, 4)
    assert [(s.start_bar, s.end_bar) for s in sections] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert [s.label for s in sections] == ["A", "A", "B", "A"]
    assert sections[0].energy < sections[2].energy      # a sparser first verse, a fuller bridge


def test_a_pickup_or_intro_is_not_part_of_the_form_and_a_short_song_is_one_section():
    notes = _aaba()
    notes[:, :2] += 8                                       # two bars of intro
    sections = F.find_sections(notes, 2, 34, 4)
    assert sections[0].start_bar == 2 and sections[-1].end_bar == 34
    assert [s.label for s in sections] == ["A", "A", "B", "A"]
    assert [(s.start_bar, s.end_bar, s.label) for s in F.find_sections(notes[:32], 2, 10, 4)] == [(2, 10, "A")]


def test_a_pickup_bar_joins_the_first_section_and_the_grid_starts_after_it():
    notes = _aaba()
    notes[:, :2] += 4
    notes = np.vstack([[[3.0, 3.9, 55.0]], notes])          # one pickup note on beat 4 of bar 0
    sections = F.find_sections(notes, 0, 33, 4)
    assert [(s.start_bar, s.end_bar) for s in sections] == [(0, 9), (9, 17), (17, 25), (25, 33)]
    assert [s.label for s in sections] == ["A", "A", "B", "A"]


def test_a_user_names_the_form():
    sections = F.sections_from_form("A A B A", 1, 33)
    assert [(s.start_bar, s.end_bar, s.label) for s in sections] == [
        (1, 9, "A"), (9, 17, "A"), (17, 25, "B"), (25, 33, "A")]
    with pytest.raises(OptionError, match="--form"):
        F.sections_from_form("   ", 0, 8)
    with pytest.raises(OptionError, match="only 2 sung bars"):
        F.sections_from_form("A B C", 0, 2)


def test_a_repeated_section_gets_the_chords_of_its_first_appearance():
    melody = _aaba()
    sections = F.find_sections(melody, 0, 32, 4)
    c, f, g, am = (ChordSymbol.make(0), ChordSymbol.make(5), ChordSymbol.make(7), ChordSymbol.make(9, "min"))
    first = [c, f, g, c, c, f, g, c]
    chords = [(b * 4.0, b * 4.0 + 4, ch) for b, ch in enumerate(first)]
    chords += [(32.0 + b * 4, 36.0 + b * 4, ch) for b, ch in enumerate([am, f, g, c, am, f, g, g])]
    chords += [(64.0 + b * 4, 68.0 + b * 4, g) for b in range(8)]
    chords += [(96.0 + b * 4, 100.0 + b * 4, ch) for b, ch in enumerate([c, c, g, c, am, f, g, c])]
    out = F.repeat_harmony(chords, melody, sections, 4)
    for start in (8, 24):
        at = [next(ch for s, e, ch in out if s <= (start + b) * 4 + 0.5 < e) for b in range(8)]
        assert at == first, start
    bridge = [next(ch for s, e, ch in out if s <= (16 + b) * 4 + 0.5 < e) for b in range(8)]
    assert bridge == [g] * 8                                 # new material keeps its own chords
    assert all(abs(out[i][1] - out[i + 1][0]) < 1e-9 for i in range(len(out) - 1))


def test_fills_lead_into_every_new_section_and_every_eighth_bar():
    sections = [F.Section(1, 5, "A"), F.Section(5, 21, "B"), F.Section(21, 29, "A")]
    ends = F.section_phrase_ends(sections, 30, 8)
    assert set(np.nonzero(ends)[0]) == {0, 4, 12, 20}


def test_the_first_section_is_sparser_than_the_next():
    sections = F.plan_energy([F.Section(0, 8, "A"), F.Section(8, 16, "B")])
    parts = {"pads": np.array([[0.0, 4.0, 60, 80], [32.0, 4.0, 60, 80]]),
             "guitar": np.array([[0.5, 0.5, 64, 80], [1.0, 0.5, 64, 80], [32.5, 0.5, 64, 80]]),
             "drums": np.array([[0.0, 0.25, 36, 100], [32.0, 0.25, 36, 100]])}
    out = F.shape_parts(parts, sections, 4)
    assert out["pads"][:, 0].tolist() == [32.0]
    assert out["guitar"][:, 0].tolist() == [1.0, 32.5]
    assert out["drums"][0, 3] < out["drums"][1, 3]


def test_sections_in_arrangement_json_and_midi_markers(tmp_path):
    beats = np.arange(0, 17) * 0.5
    rhythm = Rhythm(beats, beats[::4], (4, 4), 120.0)
    melody = Melody([Note(0.0, 0.4, 60.0, 60, 90)], 0.0, rhythm, Key("C", "major"), 8.5)
    sections = [SectionSpan("A", 0.0, 4.0, 0, 2, 0), SectionSpan("B", 4.0, 8.0, 2, 4, 2)]
    arr = Arrangement(melody, [Part("bass", 33, False, [PartNote(0.0, 1.0, 36, 90)])], [],
                      style="pop", sections=sections)
    back = Arrangement.from_json(arr.to_json())
    assert back.sections == sections
    arr.write_midi(tmp_path / "a.mid")
    mid = mido.MidiFile(tmp_path / "a.mid")
    marks = []
    for track in mid.tracks:
        t = 0
        for msg in track:
            t += msg.time
            if msg.type == "marker":
                marks.append((t, msg.text))
    assert ("Section A" in [m for _, m in marks]) and ("Section B" in [m for _, m in marks])
    tick_b = next(t for t, m in marks if m == "Section B")
    assert tick_b == 4 * mid.ticks_per_beat * 2       # bar 3's downbeat: two 4/4 bars in
