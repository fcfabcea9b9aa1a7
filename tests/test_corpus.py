"""The parts corpus: mma renderings, Groove MIDI drums and POP909 piano, on a few real songs."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hum2band.train import corpus as cp
from hum2band.train import datasets as ds
from hum2band.music.chords import ChordSymbol
from hum2band.errors import Hum2BandError

STDLIB = Path("/usr/share/mma/lib/stdlib")
needs_mma = pytest.mark.skipif(shutil.which(cp.MMA_BIN) is None, reason="mma is not installed")


@pytest.fixture(scope="module")
def root():
    try:
        r = ds.resolve_data_dir()
    except Hum2BandError:
        pytest.skip("../shared/data is not here")
    return r


@pytest.fixture(scope="module")
def ashover(root):
    """Nottingham 'ashover.abc': tunes in 3/4, 6/8, 4/4, 2/4 and 2/2."""
    path = root / "nottingham" / "ABC_cleaned" / "ashover.abc"
    if not path.exists():
        pytest.skip("Nottingham data is not here")
    songs = [cp._song_from_leadsheet(ls) for ls in ds.read_abc_tunes(path)]
    return [s for s in songs if s is not None]


def song_of(songs, meter):
    return next(s for s in songs if s.meter == meter and s.n_bars >= 8)


def pc_match(parts, chords, shift=0.0):
    """Share of bass notes whose pitch class is a tone of the chord at (onset + shift)."""
    hits = n = 0
    for on, _, midi, _ in parts["bass"]:
        t = on + 0.1 + shift
        ch = next((c for s, e, c in chords if s <= t < e), None)
        if ch is None:
            continue
        n += 1
        hits += int(midi) % 12 in ch.pitch_classes()
    return hits / max(n, 1)


# ---- the groove table ---------------------------------------------------------------------------
@pytest.mark.skipif(not STDLIB.is_dir(), reason="mma's style library is not installed")
def test_every_groove_exists_with_its_time():
    for groove, time_sig in cp.GROOVE_TIME.items():
        found = None
        for f in STDLIB.glob("*.mma"):
            t, time_now = f.read_text(errors="replace"), None
            for line in t.splitlines():
                m = re.match(r"\s*Time\s+(\d+)", line, re.I)
                if m:
                    time_now = int(m.group(1))
                m = re.match(r"\s*DefGroove\s+(\S+)", line, re.I)
                if m and m.group(1).lower() == groove.lower():
                    found = time_now
        assert found == time_sig, f"{groove}: Time {found} in the stdlib, {time_sig} in GROOVE_TIME"
    for style, by_meter in cp.STYLE_GROOVES.items():
        assert style in cp.STYLES
        for meter, grooves in by_meter.items():
            assert meter in cp.METERS and grooves
            bpb = 2 if meter == (6, 8) else meter[0]
            for g in grooves:
                assert cp.GROOVE_TIME[g] == bpb * cp.MMA_BEATS_PER_COUNTED_BEAT[g]
    assert cp.styles_for_meter((6, 8)) == ["ballad", "folk"]
    assert "waltz" not in cp.styles_for_meter((4, 4)) and "funk" not in cp.styles_for_meter((3, 4))


def test_mma_chord_names():
    name = lambda t: cp.mma_chord_name(ChordSymbol.parse(t))  # noqa: E731
    assert name("Am7") == "Am7" and name("Bbm7b5") == "Bbm7b5" and name("CmMaj7") == "CmM7"
    assert name("C/E") == "C/E" and name("Fmaj7") == "FM7" and name("G7sus4") == "G7sus"
    assert name("D/C") == "D7/C"          # bass a seventh above: played as D7/C
    assert name("C/F#") == "C"            # a bass mma would ignore is dropped
    assert name("N") == "z"


def test_jazz_chord_tokens():
    assert cp.parse_jazz_chord("Ab07") == ChordSymbol.parse("Abdim7")
    assert cp.parse_jazz_chord("F#0") == ChordSymbol.parse("F#dim")
    assert cp.parse_jazz_chord("Cm/maj7") == ChordSymbol.parse("CmMaj7")
    assert cp.parse_jazz_chord("C7b9sus") == ChordSymbol.parse("C7sus4")
    assert cp.parse_jazz_chord("(A7b9)") is None and cp.parse_jazz_chord("") is None


def test_jazz_chart_unfolds_endings(tmp_path):
    chart = {"Title": "T", "Key": "Dmin", "Rhythm": "Waltz", "TimeSignature": "3/4",
             "Sections": [{"MainSegment": {"Chords": "Dm|E07,A7"},
                           "Endings": [{"Chords": "Dm|A7"}, {"Chords": "Dm|Dm(Em7b5),(A7)"}]}]}
    p = tmp_path / "t.json"
    p.write_text(__import__("json").dumps(chart))
    s = cp.read_jazz_chart(p)
    assert s.meter == (3, 4) and s.n_bars == 8 and s.tonic_pc == 2 and s.mode == "minor"
    assert s.hints == ("waltz",)
    labels = [(st, c.label) for st, _, c in s.chords]
    assert labels[:4] == [(0.0, "Dm"), (3.0, "Edim7"), (4.5, "A7"), (6.0, "Dm")]
    assert s.chords[-1][1] == 24.0 and labels[-1] == (18.0, "Dm")  # 2nd ending: held to the end


# ---- mma renderings -----------------------------------------------------------------------------
@needs_mma
def test_chord_change_lands_where_the_chart_says():
    C, Fs = ChordSymbol.parse("C"), ChordSymbol.parse("F#")
    for groove, meter, bpb in (("8Beat", (4, 4), 4), ("Swing", (4, 4), 4), ("Waltz", (3, 4), 3),
                               ("68March", (6, 8), 2), ("68Swing", (6, 8), 2), ("Ballad68", (6, 8), 2)):
        change = 4 * bpb
        parts = cp.render_with_mma([(0, change, C), (change, 2 * change, Fs)], meter, bpb, 90, groove, 8)
        bass = parts["bass"]
        assert bass[:, 0].max() < 8 * bpb
        before = bass[bass[:, 0] < change - 0.5]
        after = bass[bass[:, 0] >= change - 0.05]
        assert len(before) and len(after)
        assert 6 not in set(before[:, 2].astype(int) % 12), groove
        assert abs(after[0, 0] - change) < 0.1, groove
        if groove == "68Swing":  # a walking bass: scale tones of the new chord, not always its root
            fs_major = {6, 8, 10, 11, 1, 3, 5}
            assert set(after[:4, 2].astype(int) % 12) <= fs_major, groove
        else:
            assert int(after[0, 2]) % 12 == 6, groove


@needs_mma
def test_six_eight_grooves_play_eighths_of_a_dotted_quarter_beat():
    C = ChordSymbol.parse("C")
    for groove in cp.STYLE_GROOVES["ballad"][(6, 8)] + cp.STYLE_GROOVES["folk"][(6, 8)]:
        parts = cp.render_with_mma([(0, 16, C)], (6, 8), 2, 60, groove, 8)
        ons = np.concatenate([a[:, 0] for a in parts.values()])
        assert ons.max() < 16
        # every onset sits on the eighth-note grid (a third of a counted beat), up to mma's jitter
        off_grid = np.abs(ons * 3 - np.round(ons * 3)) / 3
        assert np.mean(off_grid < 0.05) > 0.9, groove
        # the bass starts each bar on its downbeat (every 2 counted beats)
        b = parts["bass"][:, 0]
        assert all(np.any(np.abs(b - 2 * k) < 0.05) for k in range(8)), groove


@needs_mma
def test_song_renderings_parts_meters_alignment_and_determinism(ashover):
    for meter, bpb in (((4, 4), 4), ((3, 4), 3), ((6, 8), 2)):
        song = song_of(ashover, meter)
        ex = cp.examples_from_song_mma(song, max_bars=8, styles_per_song=2)
        assert len(ex) >= 2
        styles = {e.style for e in ex}
        assert len(styles) == 2 and all(meter in cp.STYLE_GROOVES[s] for s in styles)
        for e in ex:
            assert e.meter == meter and e.beats_per_bar == bpb and 1 <= e.n_bars <= 8
            assert e.origin == "mma" and e.source == "nottingham"
            assert {"drums", "bass"} <= set(e.parts) or {"bass", "guitar"} <= set(e.parts)
            assert set(e.parts) & {"keys", "guitar", "pads"}
            assert set(e.parts) <= set(cp.PART_NAMES)
            for a in e.parts.values():
                assert a.shape[1] == 4 and a[:, 0].min() >= 0 and a[:, 0].max() < e.n_beats
                assert np.all(a[:, 0] + a[:, 1] <= e.n_beats + 1e-4)
            if len(e.melody):
                assert e.melody[:, 0].min() >= 0 and e.melody[:, 1].max() <= e.n_beats + 1e-4
            assert e.chords and e.chords[-1][1] <= e.n_beats + 1e-6
        # bass on chord tones (walking basses add passing scale tones), better than a beat off
        matched = np.mean([pc_match(e.parts, e.chords) for e in ex])
        late = np.mean([pc_match(e.parts, e.chords, shift=1.0) for e in ex])
        early = np.mean([pc_match(e.parts, e.chords, shift=-1.0) for e in ex])
        assert matched >= 0.7 and matched > max(late, early), (meter, matched, late, early)
        again = cp.examples_from_song_mma(song, max_bars=8, styles_per_song=2)
        assert [e.example_id for e in again] == [e.example_id for e in ex]
        for a, b in zip(ex, again):
            assert set(a.parts) == set(b.parts)
            assert all(np.array_equal(a.parts[k], b.parts[k]) for k in a.parts)


@needs_mma
def test_jazz_standard_rendering_follows_its_rhythm(root):
    path = root / "jazz-standards" / "JazzStandards" / "Alone Together.json"
    if not path.exists():
        pytest.skip("JazzStandards data is not here")
    song = cp.read_jazz_chart(path)
    ex = cp.examples_from_song_mma(song, max_bars=32, styles_per_song=2)
    assert ex[0].style == "swing" and ex[0].groove in cp.STYLE_GROOVES["swing"][(4, 4)]
    assert len(ex[0].melody) == 0 and ex[0].split == cp.split_name("jazz-standards", song.song_id)
    assert all(np.array_equal(e.melody, np.zeros((0, 3), np.float32)) for e in ex)
    # grooves whose bass plays chord tones: aligned with the chart, not a beat off
    for groove in ("Swing", "8Beat", "DSoul"):
        parts = cp.render_with_mma(song.chords, (4, 4), 4, 120, groove, song.n_bars)
        matched = pc_match(parts, song.chords)
        assert matched > 0.9, groove
        assert matched > max(pc_match(parts, song.chords, 1.0), pc_match(parts, song.chords, -1.0))


# ---- Groove MIDI and POP909 ---------------------------------------------------------------------
def test_groove_midi_drums_on_the_grid(root):
    info = root / "groove" / "info.csv"
    if not info.exists():
        pytest.skip("Groove MIDI data is not here")
    rows = cp._gmd_rows(root, None)
    assert rows and all(cp.gmd_style(r["style"]) in cp.STYLES for r in rows)
    ex = [e for r in rows[:6] for e in cp.examples_from_gmd(r, root, 8)]
    assert ex
    dev = []
    for e in ex:
        assert list(e.parts) == ["drums"] and len(e.melody) == 0 and e.chords == []
        assert e.split in ("train", "valid", "test") and e.n_bars <= 8 and e.meter == (4, 4)
        d = e.parts["drums"]
        assert d[:, 0].min() >= 0 and d[:, 0].max() < e.n_beats
        dev.append(np.abs(d[:, 0] * 4 - np.round(d[:, 0] * 4)) / 4)
    # human timing around the sixteenth grid (uniform random phases would give 0.0625)
    assert np.median(np.concatenate(dev)) < 0.05


def test_pop909_piano_accompaniment(root):
    if not (root / "pop909").is_dir():
        pytest.skip("POP909 data is not here")
    sheets = ds.load_source("pop909", root, limit=1)
    ex = cp.examples_from_pop909(sheets[0], root, 32)
    assert len(ex) >= 2
    pcs_hit = n = 0
    for e in ex:
        assert e.origin == "pop909" and list(e.parts) == ["keys"] and e.style in ("pop", "ballad")
        assert e.split == cp.split_name("pop909", sheets[0].song_id)
        k = e.parts["keys"]
        assert k[:, 0].min() >= 0 and k[:, 0].max() < e.n_beats
        for on, _, midi, _ in k:
            ch = next((c for s, en, c in e.chords if s <= on + 0.1 < en), None)
            if ch is not None:
                n += 1
                pcs_hit += int(midi) % 12 in ch.pitch_classes()
    assert pcs_hit / n > 0.6  # the accompaniment plays the annotated chords


# ---- the corpus ---------------------------------------------------------------------------------
@needs_mma
def test_build_corpus_cache_splits(root, tmp_path):
    kw = dict(cache_dir=tmp_path, jobs=1, max_bars=16, limit=2,
              sources=("chord-melody", "jazz-standards", "groove"), origins=("mma", "groove"))
    calls = []
    ex = cp.build_corpus(root, progress=lambda d, t, n: calls.append((d, t, n)), **kw)
    assert calls and calls[-1][0] == calls[-1][1]
    assert {e.origin for e in ex} == {"mma", "groove"}
    assert len({e.example_id for e in ex}) == len(ex)
    by_song = {}
    for e in ex:
        by_song.setdefault((e.source, e.song_id), set()).add(e.split)
        assert e.style in cp.STYLES and e.meter in cp.METERS
    assert all(len(s) == 1 for s in by_song.values())
    shard_dir = cp.corpus_dir(root, tmp_path, 16, 2, 2)
    shards = sorted(shard_dir.glob("*.pkl"))
    assert shards
    shards[0].unlink()  # a lost shard is rebuilt, the others are read back
    again = cp.build_corpus(root, **kw)
    assert [e.example_id for e in again] == [e.example_id for e in ex]
    train = cp.load_corpus(root, split="train", **kw)
    assert train and all(e.split == "train" for e in train)
    assert [e.example_id for e in train] == [e.example_id for e in again if e.split == "train"]
