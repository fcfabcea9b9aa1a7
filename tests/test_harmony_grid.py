"""The harmony model's beat grid: conditions, chord classes, melody features, targets and back to
chord spans. Expectations are counted out by hand from the definitions in the module docstring."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hum2band.compose.harmony import grid as G
from hum2band.music.chords import ChordSymbol
from hum2band.music.key import Key

C = ChordSymbol.parse


def bn(on, off, midi):
    return SimpleNamespace(onset_beat=on, offset_beat=off, midi=midi)


@pytest.mark.parametrize("name, index", [(None, 0), ("", 0), ("pop", 1), ("Rock", 2), (" swing ", 6),
                                         ("jazz", 6), ("jazzballad", 7), ("Jazz Ballad", 7),
                                         ("bossa", 8), ("bossanova", 8), ("waltz", 12)])
def test_style_index(name, index):
    assert G.style_index(name) == index


def test_an_unknown_style_names_itself_and_the_styles():
    with pytest.raises(ValueError, match=r"unknown style 'polka': use one of pop, rock, ballad"):
        G.style_index("polka")


@pytest.mark.parametrize("meter, index", [((4, 4), 1), ((3, 4), 2), ((2, 4), 3), ((6, 8), 4), ((6, 4), 10),
                                          ((7, 8), 11), (("12", "8"), 8)])
def test_meter_index(meter, index):
    assert G.meter_index(meter) == index


@pytest.mark.parametrize("bpm, band", [(40, 0), (69.9, 0), (70, 1), (94.9, 1), (95, 2), (119.9, 2), (120, 3),
                                       (149.9, 3), (150, 4), (240, 4)])
def test_tempo_bands(bpm, band):
    assert G.tempo_band(bpm) == band


def test_conditions():
    c = G.Conditions.of("swing", (3, 4), "minor", 100.0)
    assert (c.style, c.meter, c.mode, c.tempo) == (6, 2, 1, 2)
    assert G.Conditions.of(None, (4, 4), "major", 60.0) == G.Conditions(0, 1, 0, 0)
    arr = c.as_array()
    assert arr.dtype == np.int64 and list(arr) == [6, 2, 1, 2]


@pytest.mark.parametrize("source, genre, style", [("pop909", "", "pop"), ("nottingham", "", "folk"),
                                                  ("chord-melody", "", "swing"), ("openewld", "Jazz", "swing"),
                                                  ("openewld", "Blues", "swing"), ("openewld", "Latin", "latin"),
                                                  ("openewld", "Classical", ""), ("openewld", "", "")])
def test_style_of_leadsheet(source, genre, style):
    assert G.style_of_leadsheet(SimpleNamespace(source=source, genre=genre)) == style


def test_chord_classes_are_key_relative():
    # QUALITY_LIST: maj 0, min 1, dim 2, aug 3, sus2 4, sus4 5, 7 6, maj7 7, min7 8, ...
    assert G.N_QUALITIES == 18 and G.N_CHORD_CLASSES == 216
    assert G.chord_class(C("C"), 0) == 0
    assert G.chord_class(C("Am7"), 0) == 9 * 18 + 8 == 170
    assert G.chord_class(C("Am7/G"), 0) == 170          # the bass is not part of the class
    assert G.chord_class(C("Am7"), 9) == 8              # in A: the tonic's min7
    assert G.chord_class(C("G7"), 2) == 5 * 18 + 6      # in D: the fourth's dominant seventh
    assert G.class_chord(170, 0) == C("Am7")
    assert G.class_chord(170, 0, 10) == C("Am7/G")
    assert G.class_chord(8, 9) == C("Am7")
    assert G.class_chord(5 * 18 + 6, 2) == C("G7")
    assert G.class_chord(5 * 18 + 6, 2, 4) == C("G7/B")


def test_majmin_families():
    fam = {q: int(G.MAJMIN_FAMILY[i]) for i, q in enumerate(G.QUALITY_LIST)}
    assert fam == {"maj": 1, "7": 1, "maj7": 1, "maj6": 1, "9": 1, "maj9": 1,
                   "min": 0, "min7": 0, "minmaj7": 0, "min6": 0, "min9": 0,
                   "dim": -1, "aug": -1, "sus2": -1, "sus4": -1, "hdim7": -1, "dim7": -1, "7sus4": -1}
    assert all(G.MAJMIN_FAMILY[r * 18 + 1] == 0 for r in range(12))
    assert G.MAJMIN_FAMILY.shape == (216,)


def _parts(f):
    S = G.SUBS_PER_BEAT
    return dict(pc=f[:, : S * 13].reshape(-1, S, 13), onset=f[:, S * 13: S * 14], dur=f[:, S * 14: S * 14 + 12],
                reg=f[:, -2], held=f[:, -1])


def test_melody_features_of_one_held_note():
    # An E5 (76, the major third of C) from beat 0.5 to 1.75 of a 3-beat grid in C: sixteenths
    # 2..6 sound E (pitch class 4), it starts on sixteenth 2, sounds half of beat 0 and three
    # quarters of beat 1 (held over from beat 0), and sits 16 semitones over middle C.
    f = G.melody_features([bn(0.5, 1.75, 76)], n_beats=3, tonic_pc=0)
    assert f.shape == (3, G.N_BEAT_FEATURES) and f.dtype == np.float32
    p = _parts(f)
    sounding = p["pc"].reshape(12, 13).argmax(axis=1)
    assert list(sounding) == [12, 12, 4, 4, 4, 4, 4, 12, 12, 12, 12, 12]
    assert p["pc"].sum() == 12  # one-hot
    assert list(p["onset"].reshape(-1)) == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert p["dur"][0, 4] == pytest.approx(0.5) and p["dur"][1, 4] == pytest.approx(0.75)
    assert p["dur"].sum() == pytest.approx(1.25)
    assert list(p["reg"]) == pytest.approx([16 / 12, 16 / 12, 0.0])
    assert list(p["held"]) == [0, 1, 0]


def test_melody_features_mix_two_notes_in_a_beat_and_clip_at_the_end():
    # In D (tonic 2): D4 (62, degree 0) for the first half of beat 0, F#4 (66, degree 4) for the
    # second; a note from beat 1.5 runs past the 2-beat grid and is cut there; one past the end
    # and one of no length are ignored.
    notes = [bn(0.0, 0.5, 62), bn(0.5, 1.0, 66), bn(1.5, 9.0, 69), bn(2.5, 3.0, 60), bn(1.0, 1.0, 50)]
    p = _parts(G.melody_features(notes, n_beats=2, tonic_pc=2))
    assert list(p["pc"].reshape(8, 13).argmax(axis=1)) == [0, 0, 4, 4, 12, 12, 7, 7]
    assert list(p["onset"].reshape(-1)) == [1, 0, 1, 0, 0, 0, 1, 0]
    assert p["dur"][0, 0] == pytest.approx(0.5) and p["dur"][0, 4] == pytest.approx(0.5)
    assert p["dur"][1, 7] == pytest.approx(0.5)
    # Mean register of beat 0: half at 2/12, half at 6/12 -> 4/12.
    assert p["reg"][0] == pytest.approx(4 / 12) and p["reg"][1] == pytest.approx(9 / 12)
    assert list(p["held"]) == [0, 0]


def test_a_long_note_saturates_its_duration_at_one_beat():
    p = _parts(G.melody_features([bn(0.0, 3.0, 60)], n_beats=3, tonic_pc=0))
    assert list(p["dur"][:, 0]) == [1.0, 1.0, 1.0]
    assert list(p["held"]) == [0, 1, 1]


def test_melody_features_are_key_relative():
    tune = [(0, 1, 60), (1, 1.5, 64), (1.5, 2, 67), (2, 4, 72)]
    in_c = G.melody_features([bn(a, b, m) for a, b, m in tune], 4, 0)
    in_a = G.melody_features([bn(a, b, m - 3) for a, b, m in tune], 4, 9)
    assert np.array_equal(in_c[:, :-2], in_a[:, :-2])
    assert np.allclose(in_c[:, -2] - in_a[:, -2], 3 / 12)  # only the register moves


def test_chord_targets_from_spans():
    spans = [(0.0, 2.0, C("C")), (2.0, 3.5, C("G7/B")), (3.5, 6.0, C("Am")), (6.0, 7.0, C("N")),
             (8.0, 9.0, C("F"))]
    chord, bass, early = G.chord_targets(spans, n_beats=10, tonic_pc=0)
    I = G.IGNORE
    assert list(chord) == [0, 0, 7 * 18 + 6, 7 * 18 + 6, 9 * 18 + 1, 9 * 18 + 1, I, I, 5 * 18, I]
    assert list(bass) == [0, 0, 4, 4, 0, 0, I, I, 0, I]          # B is the third of G7
    # Am starts at 3.5: half a beat before beat 4, an anticipation of beat 4's chord.
    assert list(early) == [0, 0, 0, 0, 1, 0, I, I, 0, I]


def test_a_held_chord_is_not_early_and_an_unsorted_list_is_read_in_order():
    spans = [(2.5, 4.0, C("C")), (0.0, 2.5, C("C"))]
    chord, _, early = G.chord_targets(spans, n_beats=4, tonic_pc=0)
    assert list(chord) == [0, 0, 0, 0] and list(early) == [0, 0, 0, 0]


def test_decoder_inputs_are_the_previous_beat():
    assert list(G.decoder_inputs(np.array([5, G.IGNORE, 7, 7]))) == \
        [G.START_INPUT, 5, G.NO_CHORD_INPUT, 7]
    assert G.START_INPUT == 217 and G.NO_CHORD_INPUT == 216 and G.MASK_INPUT == 218


def test_grid_to_spans_inverts_the_targets():
    spans = [(0.0, 2.0, C("C")), (2.0, 3.5, C("G7/B")), (3.5, 6.0, C("Am"))]
    chord, bass, early = G.chord_targets(spans, 6, 0)
    assert G.grid_to_spans(chord, bass, early, 0) == spans
    shifted = G.grid_to_spans(chord, bass, early, 0, start_beat=8.0)
    assert shifted == [(a + 8, b + 8, c) for a, b, c in spans]
    # In another key the same classes are other chords.
    assert [c for _, _, c in G.grid_to_spans(chord, bass, early, 2)] == [C("D"), C("A7/C#"), C("Bm")]


def test_grid_to_spans_leaves_gaps_and_an_early_chord_after_a_gap_on_its_beat():
    I = G.IGNORE
    chord = np.array([0, I, 0, 5 * 18])
    bass = np.array([0, I, 0, 0])
    early = np.array([0, I, 1, 1])
    # Beat 2's C follows a gap: it cannot start early. Beat 3's F takes the second half of beat 2.
    assert G.grid_to_spans(chord, bass, early, 0) == [(0.0, 1.0, C("C")), (2.0, 2.5, C("C")),
                                                       (2.5, 4.0, C("F"))]


def test_song_grid_counts_whole_bars_and_estimates_the_key():
    notes = [bn(0, 1, 67), bn(1, 2, 71), bn(2, 3, 74), bn(3, 4, 72), bn(4, 5.2, 67)]
    g = G.song_grid(notes, (4, 4), 4, None, 100.0, "pop")
    assert g.n_beats == 8 and g.n_bars == 2 and g.beats_per_bar == 4
    assert list(g.beat_in_bar) == [0, 1, 2, 3, 0, 1, 2, 3]
    assert g.tonic_pc == 7                                        # G major, stated by the tune
    assert (g.chord == G.IGNORE).all() and (g.bass == G.IGNORE).all()
    assert g.conditions == G.Conditions(1, 1, 0, 2)
    g2 = G.song_grid(notes, (3, 4), 3, Key("C", "major"), 100.0, None,
                     chords=[(0.0, 9.0, C("G"))], source="s", song_id="x")
    assert g2.n_beats == 9 and g2.tonic_pc == 0 and list(g2.chord) == [7 * 18] * 9
    assert (g2.source, g2.song_id) == ("s", "x")
