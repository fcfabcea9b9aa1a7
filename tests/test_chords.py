"""Chord symbols: parsing, Harte/label output, mir_eval compatibility, chord charts."""

import numpy as np
import pytest
import mir_eval.chord as mc

from hum2band.music.chords import ChordSymbol, QUALITIES, parse_chord_line, vocabulary
from hum2band.errors import OptionError


@pytest.mark.parametrize("text, root, quality, bass, harte, label", [
    ("Am7", 9, "min7", 9, "A:min7", "Am7"),
    ("F#m7b5", 6, "hdim7", 6, "F#:hdim7", "F#m7b5"),
    ("Bb/D", 10, "maj", 2, "Bb:maj/3", "Bb/D"),
    ("Cmaj7", 0, "maj7", 0, "C:maj7", "Cmaj7"),
    ("G7sus4", 7, "7sus4", 7, "G:sus4(b7)", "G7sus4"),
    ("C6", 0, "maj6", 0, "C:maj6", "C6"),
    ("D7/C", 2, "7", 0, "D:7/b7", "D7/C"),
    ("Ebdim7", 3, "dim7", 3, "Eb:dim7", "Ebdim7"),
    ("A:min7", 9, "min7", 9, "A:min7", "Am7"),
    ("C:maj/3", 0, "maj", 4, "C:maj/3", "C/E"),
    ("Gb:maj7", 6, "maj7", 6, "F#:maj7", "F#maj7"),
    ("G:sus4(b7)", 7, "7sus4", 7, "G:sus4(b7)", "G7sus4"),
    ("C13", 0, "7", 0, "C:7", "C7"),
    ("D7b9", 2, "7", 2, "D:7", "D7"),
    ("Fadd9", 5, "maj", 5, "F:maj", "F"),
    ("E:min11", 4, "min7", 4, "E:min7", "Em7"),
])
def test_parse_common_and_harte(text, root, quality, bass, harte, label):
    c = ChordSymbol.parse(text)
    assert (c.root, c.quality, c.bass) == (root, quality, bass)
    assert c.harte == harte
    assert c.label == label
    assert ChordSymbol.parse(c.harte) == c
    assert ChordSymbol.parse(c.label) == c


@pytest.mark.parametrize("text", ["N.C.", "N", "NC"])
def test_no_chord(text):
    c = ChordSymbol.parse(text)
    assert c.is_no_chord and c.harte == "N" and c.label == "N.C." and c.pitch_classes() == ()


def test_pitch_classes():
    assert ChordSymbol.parse("Am7").pitch_classes() == (0, 4, 7, 9)
    assert ChordSymbol.parse("C/Bb").pitch_classes() == (0, 4, 7, 10)
    assert ChordSymbol.parse("G9").pitch_classes() == (2, 5, 7, 9, 11)


def test_every_harte_string_reads_in_mir_eval_with_same_tones():
    vocab = vocabulary(with_inversions=True)
    assert len(vocab) > 12 * len(QUALITIES) * 3
    for c in vocab:
        root, bitmap, bass = mc.encode(c.harte, reduce_extended_chords=True)
        assert root == c.root, c.harte
        assert (root + bass) % 12 == c.bass, c.harte
        tones = {(root + i) % 12 for i in np.flatnonzero(bitmap)} | {c.bass}
        assert tones == set(c.pitch_classes()), c.harte
        assert ChordSymbol.parse(c.harte) == c
        assert ChordSymbol.parse(c.label) == c


def test_bad_symbols_raise_musician_errors():
    for bad in ["H7", "Cxyz", "", "C:maj/q"]:
        if bad == "":
            assert ChordSymbol.parse(bad).is_no_chord
            continue
        with pytest.raises(OptionError):
            ChordSymbol.parse(bad)


def test_parse_chord_line():
    bars = parse_chord_line("C | Am | F G | C")
    assert [[c.label for c in b] for b in bars] == [["C"], ["Am"], ["F", "G"], ["C"]]
    bars = parse_chord_line("Dm7 - G7 - | % | Cmaj7/E")
    assert [[c.label for c in b] for b in bars] == [["Dm7", "Dm7", "G7", "G7"],
                                                    ["Dm7", "Dm7", "G7", "G7"], ["Cmaj7/E"]]
    with pytest.raises(OptionError):
        parse_chord_line(" | ")
    with pytest.raises(OptionError):
        parse_chord_line("% | C")


# ---- details a musician meets (each expectation worked out by hand) --------------------------
@pytest.mark.parametrize("text, root, quality, bass", [
    ("F♯m", 6, "min", 6), ("B♭7", 10, "7", 10), ("E♭/G", 3, "maj", 7), ("c#m", 1, "min", 1),
    ("bbmaj7", 10, "maj7", 10), ("C:/5", 0, "maj", 7), ("C:maj/#4", 0, "maj", 6),
    ("C:maj/9", 0, "maj", 2), ("C:min/b3", 0, "min", 3), ("C:(1,b3,5)", 0, "min", 0),
    ("C:(1,3,#5)", 0, "aug", 0), ("C:(1,b3,b5,bb7)", 0, "dim7", 0), ("C:(1,3,5,6)", 0, "maj6", 0),
    ("C:(1,4,5)", 0, "sus4", 0), ("C:(1,b3,b5,b7)", 0, "hdim7", 0), ("C:(1,3,5,7)", 0, "maj7", 0),
    ("C:min(11)", 0, "min", 0), ("C:7(#9)", 0, "7", 0), ("Cadd9", 0, "maj", 0),
    ("C7b9", 0, "7", 0), ("Cm11", 0, "min7", 0), ("C(add9)", 0, "maj", 0), ("C6(add9)", 0, "maj6", 0),
    # Harte interval lists: a third decides the family, a seventh the colour.
    ("C:(1,b3)", 0, "min", 0), ("C:(1,3)", 0, "maj", 0), ("C:(1,3,b7)", 0, "7", 0),
    ("C:(1,b3,b7)", 0, "min7", 0), ("C:(1,3,7)", 0, "maj7", 0), ("C:(1,4,b7)", 0, "7sus4", 0),
    ("C:(1,b3,5,6)", 0, "min6", 0), ("C:(1,2,5)", 0, "sus2", 0),
    # A power chord is major in both spellings.
    ("C5", 0, "maj", 0), ("C:5", 0, "maj", 0), ("C:(1,5)", 0, "maj", 0), ("G:(1)", 7, "maj", 7),
])
def test_accidentals_degrees_and_nearest_qualities(text, root, quality, bass):
    c = ChordSymbol.parse(text)
    assert (c.root, c.quality, c.bass) == (root, quality, bass)


@pytest.mark.parametrize("text", ["N.C.", "n.c.", "N.c.", "NC", "nc", "Nc", "N", "n", "X", "x", " N "])
def test_every_no_chord_spelling(text):
    c = ChordSymbol.parse(text)
    assert c == ChordSymbol.no_chord() == ChordSymbol(-1, "N", -1)
    assert c.is_no_chord and c.pitch_classes() == () and c.harte == "N" and c.label == "N.C."
    assert c.transpose(5) == c and c.triad() == c


def test_make_defaults_and_wraps_pitch_classes():
    assert ChordSymbol.make(2) == ChordSymbol(2, "maj", 2)
    assert ChordSymbol.make(14, "min7") == ChordSymbol(2, "min7", 2)
    assert ChordSymbol.make(0, "maj", 16) == ChordSymbol(0, "maj", 4)
    assert ChordSymbol.make(-1, "maj", -8) == ChordSymbol(11, "maj", 4)


@pytest.mark.parametrize("text, triad", [("Am7/G", "Am"), ("G7sus4", "Gsus4"), ("F#m7b5", "F#dim"),
                                         ("Cmaj9", "C"), ("EbmMaj7", "Ebm"), ("Bbdim7/E", "Bbdim")])
def test_the_triad_under_a_chord(text, triad):
    assert ChordSymbol.parse(text).triad() == ChordSymbol.parse(triad)


@pytest.mark.parametrize("call, words", [
    (lambda: ChordSymbol.parse("H7"), r"^chord 'H7' does not start with a note name: write chords like Am7"),
    (lambda: ChordSymbol.parse("C/H"), r"chord 'C/H'.*'C/H' is not a note name|chord 'C/H' has a quality"),
    (lambda: ChordSymbol.parse("Cxyz"), r"^chord 'Cxyz' has a quality I don't know \('xyz'\): write it like C, Cm, C7"),
    (lambda: ChordSymbol.parse("C:maj/x"), r"chord 'C:maj/x': bass '/x' is not a scale degree like /3"),
    (lambda: ChordSymbol.parse("C:maj:7"), r"chord 'C:maj:7' is not Harte syntax"),
    (lambda: ChordSymbol.parse("Q:maj"), r"chord 'Q:maj': 'Q' is not a note name"),
    (lambda: ChordSymbol.make(0, "power"), r"chord quality 'power' is not one of maj, min, dim"),
    (lambda: parse_chord_line("% | C"), r"^chord chart starts with '%' \(repeat bar\): write the first bar's chords"),
    (lambda: parse_chord_line("- C | G"), r"chord chart '- C \| G' starts with '-': write a chord first"),
    (lambda: parse_chord_line(" | || "), r"^the chord chart is empty: write it like 'C \| Am \| F G \| C'"),
])
def test_errors_say_what_is_wrong_and_how_to_write_it(call, words):
    with pytest.raises(OptionError, match=words):
        call()


@pytest.mark.parametrize("chart, bars", [
    ("C || G", [["C"], ["G"]]),
    ("C | | G", [["C"], ["G"]]),
    ("C | % | G", [["C"], ["C"], ["G"]]),
    ("C - G .", [["C", "C", "G", "G"]]),
    ("C / G /", [["C", "C", "G", "G"]]),
    ("Am | - F", [["Am"], ["Am", "F"]]),
    ("C G | Am F | % ", [["C", "G"], ["Am", "F"], ["Am", "F"]]),
])
def test_chord_chart_continuations_and_repeats(chart, bars):
    assert parse_chord_line(chart) == [[ChordSymbol.parse(c) for c in bar] for bar in bars]


def test_vocabulary_with_inversions_puts_only_chord_tones_in_the_bass():
    plain = vocabulary()
    assert len(plain) == 12 * len(QUALITIES) and all(c.bass == c.root for c in plain)
    assert vocabulary(False) == plain
    full = vocabulary(with_inversions=True)
    assert len(full) == 12 * sum(len(set(ivs)) for ivs in QUALITIES.values())
    assert len(set(full)) == len(full)
    for c in full:
        assert (c.bass - c.root) % 12 in {i % 12 for i in QUALITIES[c.quality]}
