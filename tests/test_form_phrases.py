"""Phrases and sections found from the melody itself (hum2band.compose.form): phrase boundaries
from rests, long notes and cadences, phrase lengths other than 8, repeats grouped under one label
with the same chords, and the bars the singer leaves empty. The melodies are written by hand
here; each expectation is what a musician reads off the score."""

from __future__ import annotations

import numpy as np

from hum2band.compose import form as F
from hum2band.music.chords import ChordSymbol


def _tune(*bars: list, bpb: int = 4, start_bar: int = 0) -> np.ndarray:
    """Notes (onset_beat, offset_beat, midi) from bars written as lists of (beats, midi) in
    sequence; midi None is a rest."""
    out, t = [], float(start_bar * bpb)
    for bar in bars:
        assert abs(sum(d for d, _ in bar) - bpb) < 1e-9, bar
        for d, m in bar:
            if m is not None:
                out.append([t, t + d * 0.95, m])
            t += d
    return np.array(out, dtype=float)


Q = 1.0
# a 6-bar phrase in C major that runs on in quarters and comes to rest on a long tonic
PHRASE_6 = [[(Q, 64), (Q, 65), (Q, 67), (Q, 69)], [(Q, 67), (Q, 65), (Q, 64), (Q, 62)],
            [(Q, 64), (Q, 65), (Q, 67), (Q, 72)], [(Q, 71), (Q, 69), (Q, 67), (Q, 65)],
            [(Q, 64), (Q, 62), (Q, 64), (Q, 62)], [(3.0, 60), (Q, None)]]
# another 6-bar phrase (other notes, another rhythm) ending on the tonic too
OTHER_6 = [[(2.0, 67), (Q, 69), (Q, 71)], [(2.0, 72), (Q, 71), (Q, 69)],
           [(Q, 67), (Q, 69), (Q, 67), (Q, 65)], [(2.0, 64), (2.0, 65)],
           [(Q, 67), (Q, 65), (Q, 64), (Q, 62)], [(3.0, 60), (Q, None)]]
# an 8-bar bridge in running eighths and quarters, ending on the dominant
BRIDGE_8 = [[(0.5, 69), (0.5, 71), (Q, 72), (Q, 74), (Q, 72)], [(Q, 71), (Q, 69), (2.0, 67)],
            [(0.5, 65), (0.5, 67), (Q, 69), (Q, 71), (Q, 69)], [(Q, 67), (Q, 65), (2.0, 64)],
            [(0.5, 69), (0.5, 71), (Q, 72), (Q, 74), (Q, 76)], [(Q, 77), (Q, 76), (2.0, 74)],
            [(Q, 72), (Q, 71), (Q, 69), (Q, 71)], [(3.0, 67), (Q, None)]]


def test_two_six_bar_phrases_with_a_rest_and_a_tonic_cadence_are_two_sections_at_bars_1_and_7():
    melody = _tune(*PHRASE_6, *OTHER_6)
    assert F.find_phrases(melody, 0, 12, 4) == [(0, 6), (6, 12)]
    sections = F.find_sections(melody, 0, 12, 4)
    assert [s.start_bar + 1 for s in sections] == [1, 7]            # 1-based, as a musician counts
    assert [s.label for s in sections] == ["A", "B"]


def test_an_aaba_of_six_and_eight_bar_phrases_is_labelled_aaba_and_the_as_keep_their_chords():
    melody = _tune(*PHRASE_6, *PHRASE_6, *BRIDGE_8, *PHRASE_6)
    sections = F.find_sections(melody, 0, 26, 4)
    assert [(s.start_bar, s.end_bar) for s in sections] == [(0, 6), (6, 12), (12, 20), (20, 26)]
    assert [s.label for s in sections] == ["A", "A", "B", "A"]
    assert sections[0].energy < sections[2].energy                   # the bridge plays fuller
    c, f, g, am, dm = (ChordSymbol.make(0), ChordSymbol.make(5), ChordSymbol.make(7),
                       ChordSymbol.make(9, "min"), ChordSymbol.make(2, "min"))
    first = [c, f, c, am, dm, c]
    chords = [(b * 4.0, b * 4.0 + 4, ch) for b, ch in enumerate(first)]
    chords += [(24.0 + b * 4, 28.0 + b * 4, ch) for b, ch in enumerate([c, dm, am, f, g, c])]   # a harmonizer's second guess
    chords += [(48.0 + b * 4, 52.0 + b * 4, ch) for b, ch in enumerate([f, g, dm, c, f, dm, g, g])]
    chords += [(80.0 + b * 4, 84.0 + b * 4, ch) for b, ch in enumerate([am, f, c, f, g, c])]
    out = F.repeat_harmony(chords, melody, sections, 4)

    def bar_chords(start: int, n: int) -> list:
        return [next(ch for s, e, ch in out if s <= (start + b) * 4 + 0.5 < e) for b in range(n)]

    assert bar_chords(6, 6) == first and bar_chords(20, 6) == first
    assert bar_chords(12, 8) == [f, g, dm, c, f, dm, g, g]            # the bridge keeps its own


def test_phrases_that_come_in_with_a_pickup_start_at_the_bar_line_after_it():
    # 4-bar phrases, each led in by two eighths on the last beat of the bar before
    pick = [(Q, 62), (Q, 64), (Q, None), (0.5, 67), (0.5, 65)]
    body = [[(Q, 64), (Q, 62), (Q, 60), (Q, 62)], [(Q, 64), (Q, 64), (2.0, 64)],
            [(Q, 62), (Q, 62), (Q, 64), (Q, 62)]]
    bars = [[(3.0, None), (0.5, 67), (0.5, 65)]]                       # bar 0: a pickup bar
    for k in range(4):
        bars += body + ([pick] if k < 3 else [[(2.0, 60), (2.0, None)]])
    melody = _tune(*bars)
    phrases = F.find_phrases(melody, 0, 17, 4)
    assert [a for a, _ in phrases] == [0, 5, 9, 13] or [a for a, _ in phrases] == [0, 9]
    sections = F.find_sections(melody, 0, 17, 4)
    assert sections[0].start_bar == 0 and sections[0].pickup_bars == 1
    assert [s.start_bar for s in sections] == [0, 9]
    assert [s.label for s in sections] == ["A", "A"]


def test_a_melody_that_runs_on_without_a_breath_falls_back_to_eight_bar_sections():
    rng = np.random.default_rng(4)
    pitches = 60 + rng.choice([0, 2, 4, 5, 7, 9], size=128)
    melody = np.array([[i, i + 0.95, p] for i, p in enumerate(pitches)], dtype=float)
    sections = F.find_sections(melody, 0, 32, 4)
    assert [s.start_bar for s in sections] == [0, 8, 16, 24]


def test_bars_the_singer_leaves_empty_are_rest_bars_but_an_intro_or_a_pickup_is_not():
    rest_bar = [(4.0, None)]
    melody = _tune(*PHRASE_6, rest_bar, rest_bar, *OTHER_6, start_bar=1)    # bar 0: the band alone
    rests = F.melody_rest_bars(melody, 16, 4)
    # PHRASE_6 ends with a beat of rest in bar 6; bars 7 and 8 are empty; OTHER_6 runs 9-14
    assert np.nonzero(rests)[0].tolist() == [7, 8]
    with_pickup = melody.copy()
    with_pickup = np.vstack([with_pickup, [[35.5, 35.95, 67.0]]])          # a pickup on beat 4 of bar 8
    assert np.nonzero(F.melody_rest_bars(with_pickup, 16, 4))[0].tolist() == [7, 8]
    sections = F.find_sections(melody, 1, 15, 4)
    assert [s.start_bar for s in sections] == [1, 9]                      # the rest ends the phrase before


def test_fills_go_into_each_section_and_each_phrase_inside_one_at_two_strengths():
    sections = [F.Section(0, 8, "A", phrase_starts=(4,)), F.Section(8, 14, "B"), F.Section(14, 26, "A")]
    ends = F.section_phrase_ends(sections, 27, 8)
    assert {int(b): int(ends[b]) for b in np.nonzero(ends)[0]} == {3: 1, 7: 2, 13: 2, 21: 1}


def test_bars_before_the_singer_comes_in_are_an_intro_section_and_the_form_starts_after_it():
    melody = _tune(*PHRASE_6, *PHRASE_6, *BRIDGE_8, *PHRASE_6, start_bar=3)
    sections = F.find_sections(melody, 0, 29, 4)
    assert [(s.start_bar, s.end_bar, s.label) for s in sections] == [
        (0, 3, F.INTRO_LABEL), (3, 9, "A"), (9, 15, "A"), (15, 23, "B"), (23, 29, "A")]
    assert sections[0].energy == sections[1].energy == 0              # the band starts sparse
