"""Harmony metrics on hand-computed examples, the HMM baseline, and the lead-sheet loaders."""

import math
import textwrap

import numpy as np
import pytest

from hum2band.music.chords import ChordSymbol
from hum2band.music.leadsheet import (BeatNote, ChordSpan, LeadSheet, key_in_force, seconds_to_beats,
                                      split_of)
from hum2band.train.datasets import load_source, read_abc_tunes, resolve_data_dir, _score_to_leadsheet
from hum2band.music.musicxml import read_musicxml
from hum2band.train import harmony_metrics as hm
from hum2band.compose.hmm_harmonizer import HMMHarmonizer, half_bar_features

C, G, F, Am, Dm = (ChordSymbol.parse(x) for x in ("C", "G", "F", "Am", "Dm"))


def notes(*pairs, start=0.0):
    """Notes from (midi, beats) pairs, back to back."""
    out, t = [], start
    for m, d in pairs:
        out.append(BeatNote(t, t + d, m))
        t += d
    return out


# ---- metrics --------------------------------------------------------------------------------
def test_che_cc_ctd_by_hand():
    frames = [C, C, G, G]
    assert hm.che(frames) == pytest.approx(math.log(2))
    assert hm.che([C, C, C]) == 0.0
    assert hm.cc(frames) == 2
    assert hm.ctd([C, C, C]) == 0.0
    d = np.linalg.norm(hm.tonal_centroid(C.pitch_classes()) - hm.tonal_centroid(G.pitch_classes()))
    assert hm.ctd([C, G, C]) == pytest.approx(d)
    assert d > 0


def test_tonal_centroid_single_pitch_class_norm():
    # A single pitch class lies on all three circles: sqrt(1^2 + 1^2 + 0.5^2) = 1.5.
    for pc in range(12):
        assert np.linalg.norm(hm.tonal_centroid([pc])) == pytest.approx(1.5)
    # Fifth-related pitch classes are closer on the fifths circle than a semitone.
    tc = hm.tonal_centroid
    assert np.linalg.norm(tc([0]) - tc([7])) < np.linalg.norm(tc([0]) - tc([1]))


def test_ctnctr_by_hand():
    chords = [ChordSpan(0, 4, C)]
    # C E D C: D is a non-chord tone resolving by a step -> (3 + 1) / (3 + 1) = 1.
    assert hm.ctnctr(notes((60, 1), (64, 1), (62, 1), (60, 1)), chords) == pytest.approx(1.0)
    # C E F# C: F# leaps away by a tritone -> (3 + 0) / 4.
    assert hm.ctnctr(notes((60, 1), (64, 1), (66, 1), (60, 1)), chords) == pytest.approx(0.75)
    assert math.isnan(hm.ctnctr(notes((60, 1)), []))


def test_pcs_by_hand():
    chords = [ChordSpan(0, 4, C)]
    # Melody C over C-E-G: unison +1, minor sixth above E +1, fourth above G 0 -> 2/3.
    assert hm.pcs(notes((60, 1)), chords) == pytest.approx(2 / 3)
    # Melody D: major 2nd -1, minor 7th above E -1, fifth above G +1 -> -1/3.
    assert hm.pcs(notes((62, 1)), chords) == pytest.approx(-1 / 3)
    # One beat of each, equal frames: (2/3 - 1/3) / 2.
    assert hm.pcs(notes((60, 1), (62, 1)), chords) == pytest.approx(1 / 6)


def test_mctd_is_duration_weighted():
    chords = [ChordSpan(0, 8, C)]
    tc = hm.tonal_centroid
    d_c = np.linalg.norm(tc([0]) - tc([0, 4, 7]))
    d_cs = np.linalg.norm(tc([1]) - tc([0, 4, 7]))
    assert d_c < d_cs
    assert hm.mctd(notes((60, 1), (61, 3)), chords) == pytest.approx((d_c + 3 * d_cs) / 4)


def test_chord_accuracy_beat_weighted():
    ref = [ChordSpan(0, 4, C), ChordSpan(4, 8, Am)]
    mm, root = hm.chord_accuracy(ref, [ChordSpan(0, 8, C)])
    assert (mm, root) == (pytest.approx(0.5), pytest.approx(0.5))
    # Sevenths reduce to their triads for majmin.
    est = [ChordSpan(0, 4, ChordSymbol.parse("C7")), ChordSpan(4, 8, ChordSymbol.parse("Am7"))]
    assert hm.chord_accuracy(ref, est) == (pytest.approx(1.0), pytest.approx(1.0))
    # Right root, wrong third over 1 beat of 8; a gap in the estimate counts as wrong.
    est = [ChordSpan(0, 1, ChordSymbol.parse("Cm")), ChordSpan(1, 4, C), ChordSpan(6, 8, Am)]
    mm, root = hm.chord_accuracy(ref, est)
    assert mm == pytest.approx(5 / 8) and root == pytest.approx(6 / 8)


def test_half_bar_frames_and_distinct():
    chords = [ChordSpan(0, 1.5, C), ChordSpan(1.5, 4, G), ChordSpan(4, 8, ChordSymbol.parse("G/B"))]
    frames = hm.half_bar_frames(chords, 4)
    assert [c.label for c in frames] == ["C", "G", "G/B", "G/B"]
    assert hm.distinct_chords(chords) == 3
    s = hm.evaluate(notes((60, 2), (62, 2), (59, 4)), chords, 4, reference=chords)
    assert s.majmin == pytest.approx(1.0) and s.cc == 3 and s.distinct == 3


# ---- HMM ------------------------------------------------------------------------------------
DIATONIC = [(0, "maj"), (2, "min"), (4, "min"), (5, "maj"), (7, "maj"), (9, "min")]
PROGRESSIONS = [[0, 3, 4, 0], [0, 5, 3, 4], [0, 1, 4, 0], [0, 3, 0, 4], [5, 3, 4, 0], [0, 2, 3, 4]]


def synthetic_song(key_pc, prog, i):
    """Two chords per bar of 4/4; the melody walks root, passing second, third, fifth."""
    mel, spans = [], []
    t = 0.0
    for bar in range(2):
        for deg in prog:
            r, q = DIATONIC[deg]
            ch = ChordSymbol.make(key_pc + r, q)
            spans.append(ChordSpan(t, t + 2, ch))
            root = 60 + (key_pc + r) % 12
            third = root + (3 if q == "min" else 4)
            mel += [BeatNote(t, t + 1, root), BeatNote(t + 1, t + 1.25, root + 2),
                    BeatNote(t + 1.25, t + 1.5, third), BeatNote(t + 1.5, t + 2, root + 7)]
            t += 2
    return LeadSheet(f"syn{i}", "synthetic", mel, spans, (4, 4), None, 4, 120.0)


@pytest.fixture(scope="module")
def trained_hmm():
    songs = [synthetic_song(k, p, i) for i, (k, p) in
             enumerate((k, p) for k in (0, 2, 5, 7, 9) for p in PROGRESSIONS)]
    return HMMHarmonizer().fit(songs)


def test_half_bar_features():
    ls = synthetic_song(0, [0, 3, 4, 0], 0)
    pcb, states = half_bar_features(ls)
    assert pcb.shape == (8, 12) and pcb.sum() == pytest.approx(16.0)
    assert list(states[:4]) == [0, 5, 7, 0]  # C F G C major states
    assert pcb[0, 0] == pytest.approx(1.0) and pcb[0, 2] == pytest.approx(0.25)


def test_hmm_harmonizes_c_major_scale_with_diatonic_triads(trained_hmm, tmp_path):
    scale = notes((60, 1), (62, 1), (64, 1), (65, 1), (67, 1), (69, 1), (71, 1), (72, 1), (72, 4))
    ls = LeadSheet("scale", "test", scale, [], (4, 4), None, 4, 100.0)
    spans = trained_hmm.harmonize(ls)
    diatonic = {ChordSymbol.make(r, q) for r, q in DIATONIC}
    assert spans[0].start_beat == 0 and spans[-1].end_beat == pytest.approx(12.0)
    assert all(c in diatonic for _, _, c in spans), [c.label for _, _, c in spans]
    assert spans[-1].chord == C and spans[0].chord == C
    # Every chord holds the melody's longest note in its span.
    assert hm.ctnctr(scale, spans) >= 0.75
    # Save / load round trip decodes the same.
    trained_hmm.save(tmp_path / "hmm.npz")
    again = HMMHarmonizer.load(tmp_path / "hmm.npz")
    assert [c for _, _, c in again.harmonize(ls)] == [c for _, _, c in spans]


def test_hmm_recovers_training_style_chords(trained_hmm):
    ls = synthetic_song(2, [0, 3, 4, 0], 99)  # D major: D G A D
    spans = trained_hmm.harmonize(ls)
    mm, root = hm.chord_accuracy(ls.chords, spans)
    assert mm > 0.9 and root > 0.9


def test_hmm_untrained_raises():
    with pytest.raises(ValueError):
        HMMHarmonizer().decode_states(np.zeros((2, 12)))


# ---- loaders --------------------------------------------------------------------------------
MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <movement-title>Tiny</movement-title>
  <part-list><score-part id="P1"><part-name>Lead</part-name></score-part></part-list>
  <part id="P1">
    <measure number="0" implicit="yes">
      <attributes><divisions>2</divisions><key><fifths>-1</fifths><mode>major</mode></key>
        <time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><voice>1</voice></note>
    </measure>
    <measure number="1">
      <harmony><root><root-step>F</root-step></root><kind>major</kind></harmony>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>4</duration><voice>1</voice>
        <tie type="start"/></note>
      <harmony><root><root-step>B</root-step><root-alter>-1</root-alter></root><kind>major-seventh</kind>
        <bass><bass-step>D</bass-step></bass></harmony>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration><voice>1</voice>
        <tie type="stop"/></note>
    </measure>
    <measure number="2">
      <harmony><root><root-step>C</root-step></root><kind>dominant</kind></harmony>
      <note><pitch><step>B</step><alter>-1</alter><octave>4</octave></pitch><duration>2</duration><voice>1</voice></note>
      <note><chord/><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration><voice>1</voice></note>
      <note><rest/><duration>2</duration><voice>1</voice></note>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>2</duration><voice>1</voice></note>
    </measure>
  </part>
</score-partwise>
"""


def test_musicxml_reader_pickup_ties_harmony(tmp_path):
    p = tmp_path / "tiny.xml"
    p.write_text(MUSICXML)
    ls = _score_to_leadsheet(read_musicxml(p), "tiny", "chord-melody")
    assert ls.meter == (3, 4) and ls.beats_per_bar == 3 and ls.key.tonic == "F" and ls.title == "Tiny"
    # The one-beat pickup is shifted so the first full bar starts on beat 3.
    assert [(n.onset_beat, n.offset_beat, n.midi) for n in ls.melody] == [
        (2.0, 3.0, 72), (3.0, 6.0, 69), (6.0, 7.0, 70), (8.0, 9.0, 67)]
    assert [(s, e, c.label) for s, e, c in ls.chords] == [
        (3.0, 5.0, "F"), (5.0, 6.0, "Bbmaj7/D"), (6.0, 9.0, "C7")]


ABC = textwrap.dedent("""\
    X: 1
    T:Tiny Jig
    M:6/8
    L:1/8
    K:G
    D|"G"GAB "D7"AFD|"G"G3 G2:|

    X: 2
    T:Tiny Reel
    M:4/4
    L:1/8
    K:Em
    "Em"E2B2 "D"A2F2|"Em"E8|]
    """)


def test_abc_reader(tmp_path):
    p = tmp_path / "tiny.abc"
    p.write_text(ABC)
    tunes = read_abc_tunes(p)
    assert [t.song_id for t in tunes] == ["tiny/1", "tiny/2"]
    jig, reel = tunes
    assert jig.meter == (6, 8) and jig.beats_per_bar == 2 and jig.key.tonic == "G"
    # Counted beats are dotted quarters: the eighth-note pickup is a third of a beat before bar 1.
    assert jig.melody[0].onset_beat == pytest.approx(2 - 1 / 3)
    assert [c.label for _, _, c in jig.chords] == ["G", "D7", "G"]
    assert jig.chords[0].start_beat == pytest.approx(2.0) and jig.chords[1].start_beat == pytest.approx(3.0)
    assert reel.key.mode == "minor" and reel.key.tonic == "E"
    assert [(s, e, c.label) for s, e, c in reel.chords] == [(0, 2, "Em"), (2, 4, "D"), (4, 8, "Em")]


def test_pop909_reader_and_cache(tmp_path):
    import pretty_midi

    song = tmp_path / "pop909" / "001"
    song.mkdir(parents=True)
    beat_s = 0.5 + 0.5 * np.arange(12)  # 120 bpm; the downbeat flag starts at the 2nd beat
    lines = [f"{t} 1.0 {1.0 if (i - 1) % 4 == 0 else 0.0}" for i, t in enumerate(beat_s)]
    (song / "beat_midi.txt").write_text("\n".join(lines) + "\n")
    (song / "chord_midi.txt").write_text("0.0\t1.0\tN\n1.0\t3.0\tA:min\n3.0\t5.0\tF:maj/3\n")
    (song / "key_audio.txt").write_text("0.0\t6.0\tC:maj\n")
    pm = pretty_midi.PrettyMIDI()
    mel = pretty_midi.Instrument(0, name="MELODY")
    mel.notes = [pretty_midi.Note(90, 69, 1.0, 1.5), pretty_midi.Note(90, 72, 1.5, 2.5)]
    pm.instruments = [pretty_midi.Instrument(0, name="PIANO"), mel]
    pm.write(str(song / "001.mid"))
    ls = load_source("pop909", tmp_path, cache_dir=tmp_path / "cache")[0]
    assert ls.meter == (4, 4) and ls.key.tonic == "C" and ls.tempo_bpm == pytest.approx(120)
    # Beat index 1 (1.0 s) is the first downbeat, so it is beat 4 (bar 1).
    assert [(n.onset_beat, n.offset_beat, n.midi) for n in ls.melody] == [
        (pytest.approx(4.0), pytest.approx(5.0), 69), (pytest.approx(5.0), pytest.approx(7.0), 72)]
    assert [(round(s, 6), round(e, 6), c.label) for s, e, c in ls.chords] == [
        (4.0, 8.0, "Am"), (8.0, 12.0, "F/A")]
    assert len(list((tmp_path / "cache").glob("pop909-*.pkl"))) == 1
    again = load_source("pop909", tmp_path, cache_dir=tmp_path / "cache")[0]
    assert again.melody == ls.melody


def test_pop909_key_changes_are_read_on_the_beats(tmp_path):
    """key_audio.txt's later lines become key_changes (in beats, like the notes); an excerpt's key
    is the one in force for most of it; a line that repeats the key (in another spelling) is no
    change."""
    from hum2band.train.datasets import pop909_keys

    path = tmp_path / "key_audio.txt"
    path.write_text("0.0\t3.0\tF:min\n3.0\t4.0\tF:min\n4.0\t9.0\tBb:maj\n9.0\t12.0\tA#:maj\n")
    beat_s = 0.5 * np.arange(30)  # 120 bpm from 0 s
    first, changes = pop909_keys(path, beat_s, 0.0)
    assert (first.tonic, first.mode) == ("F", "minor")
    assert [(round(b, 6), k.tonic, k.mode) for b, k in changes] == [(8.0, "Bb", "major")]
    def key_over(start, stop):
        return key_in_force(first, changes, start, stop)

    assert key_over(0, 8).mode == "minor" and key_over(4, 16).tonic == "Bb"
    assert key_over(6, 10).tonic == "F"  # 2 beats of each: the earlier
    assert pop909_keys(tmp_path / "missing.txt", beat_s, 0.0) == (None, ())
    path.write_text("0.0\t3.0\tC:maj\n")
    assert pop909_keys(path, beat_s, 0.0)[1] == ()


def test_seconds_to_beats_extrapolates():
    b = seconds_to_beats(np.array([0.0, 1.25, 3.0]), np.array([1.0, 1.5, 2.0]), 4.0)
    assert b == pytest.approx([2.0, 4.5, 8.0])


def test_split_is_deterministic_and_balanced():
    ids = [str(i) for i in range(2000)]
    splits = [split_of("pop909", i) for i in ids]
    assert splits == [split_of("pop909", i) for i in ids]
    frac = {s: splits.count(s) / len(ids) for s in ("train", "validation", "test")}
    assert 0.75 < frac["train"] < 0.85 and 0.07 < frac["test"] < 0.13


def test_real_data_if_present():
    try:
        root = resolve_data_dir()
    except Exception:
        pytest.skip("../shared/data is not here")
    if not (root / "chord-melody").is_dir():
        pytest.skip("chord-melody data is not here")
    sheets = load_source("chord-melody", root, limit=3)
    assert len(sheets) == 3
    for ls in sheets:
        assert ls.melody and ls.chords and ls.beats_per_bar == 4
        assert all(a.onset_beat <= b.onset_beat for a, b in zip(ls.melody, ls.melody[1:]))


# ---- twins share a split ----------------------------------------------------------------------
def _sheet(source, song_id, title=""):
    return LeadSheet(song_id, source, [BeatNote(0.0, 1.0, 60)], [], (4, 4), None, 4, 100.0, "", title)


@pytest.mark.parametrize("a, b", [("The Holly and the Ivy", "holly_and_the_ivy"),
                                  ("All the Things You Are", "all_the_things_you_are"),
                                  ("Oh! Susanna", "Oh Susanna"), ("A Fine Romance", "fine_romance"),
                                  ("Quaker's Wife (version 2)", "Quaker's Wife"),
                                  ("Pack Up Your Troubles", "pack-up-your-troubles"),
                                  ("Café Rouge", "cafe rouge")])
def test_one_tune_spelled_two_ways_has_one_title_key(a, b):
    from hum2band.train.datasets import title_key

    assert title_key(a) == title_key(b) != ""


def test_different_tunes_keep_different_title_keys():
    from hum2band.train.datasets import title_key

    assert title_key("Blue Room") != title_key("Blue Moon")
    assert title_key("The Rights of Man") != title_key("Rights")


def test_twins_share_the_earliest_split_of_their_group():
    from hum2band.train.datasets import group_twins

    # Find real (source, id) pairs whose own hash falls in each split, so the rule is visible.
    def ids_in(split, source, n):
        out, i = [], 0
        while len(out) < n:
            if split_of(source, f"t{i}") == split:
                out.append(f"t{i}")
            i += 1
        return out

    test_id = ids_in("test", "chord-melody", 1)[0]
    train_id = ids_in("train", "openewld", 1)[0]
    val_id = ids_in("validation", "nottingham", 1)[0]
    alone_id = ids_in("test", "nottingham", 2)[1]
    sheets = [_sheet("chord-melody", test_id, "All the Things You Are"),
              _sheet("openewld", train_id, "All The Things You Are"),
              _sheet("nottingham", val_id, "Rights of Man"),
              _sheet("nottingham", alone_id, "Bonnie Kate"),
              _sheet("pop909", "001"), _sheet("pop909", "002")]
    assert group_twins(sheets) == 2
    assert [s.split for s in sheets[:2]] == ["train", "train"]  # the test twin was learned from
    assert sheets[2].split == "validation" and sheets[3].split == "test"
    assert [s.split for s in sheets[4:]] == [split_of("pop909", "001"), split_of("pop909", "002")]


def test_a_test_song_never_has_a_twin_outside_the_test_split():
    from hum2band.errors import InputError
    from hum2band.train.datasets import load_all, twin_key

    try:
        data = load_all()
    except InputError:
        pytest.skip("../shared/data is not here")
    by_key: dict[str, set] = {}
    for sheets in data.values():
        for ls in sheets:
            by_key.setdefault(twin_key(ls), set()).add(ls.split)
    assert all(len(splits) == 1 for splits in by_key.values())
    # "All the Things You Are" is in chord-melody and OpenEWLD: one split for both.
    att = [ls for v in data.values() for ls in v if twin_key(ls) == "all the things you are"]
    assert len(att) == 2 and len({ls.split for ls in att}) == 1
