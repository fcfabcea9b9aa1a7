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
