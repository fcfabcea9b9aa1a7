"""``hum2band arrange`` end to end on the shipped examples: every output, the options, the rules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from hum2band.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def run(*argv) -> tuple[int, str, str]:
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Three styles in three meters, arranged once for the whole module."""
    base = tmp_path_factory.mktemp("arrange")
    runs = {
        "pop": (EX / "ode_to_joy.m4a", ["--style", "pop", "--seed", "3"]),
        "waltz": (EX / "amazing_grace.opus", ["--style", "waltz", "--meter", "3/4", "--intro", "1"]),
        "folk": (EX / "row_your_boat.mp3", ["--style", "folk", "--meter", "6/8",
                                             "--melody-instrument", "flute"]),
    }
    out = {}
    for name, (src, opts) in runs.items():
        d = base / name
        rc, stdout, stderr = run("arrange", src, "--out", d, "--json", *opts)
        assert rc == 0, stderr
        out[name] = (src, d, json.loads(stdout))
    return out


def _read(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return x, sr


@pytest.mark.parametrize("name", ["pop", "waltz", "folk"])
def test_every_output_is_there_and_consistent(made, name):
    src, d, summary = made[name]
    assert summary["ok"] and summary["results"][0]["style"] == name
    for f in ("mix.wav", "arrangement.mid", "leadsheet.musicxml", "pianoroll.png", "arrangement.json"):
        assert (d / f).is_file() and (d / f).stat().st_size > 0, f
    data = json.loads((d / "arrangement.json").read_text())
    for k in ("input", "style", "seed", "model_version", "key", "tuning_cents", "meter", "tempo_bpm",
              "beats", "downbeats", "melody", "chords", "parts", "timings_s"):
        assert k in data, k
    assert data["style"] == name
    assert {"transcribe", "chords", "parts", "render", "export"} <= set(data["timings_s"])
    # the grid's other readings: bar lines in the take's own seconds (the mix starts offset_s
    # earlier), none of them a bar line of the chosen reading
    readings = data["other_readings"]
    assert readings and readings == summary["results"][0]["other_readings"]
    assert data["other_tempi"] == summary["results"][0]["other_tempi"]
    take_downs = [t - data["offset_s"] for t in data["downbeats"]]
    for r in readings:
        assert 0.0 <= r["downbeat_s"] <= data["duration_s"]
        assert min(abs(r["downbeat_s"] - t) for t in take_downs) > 0.05

    # mix: 44.1 kHz stereo, loudness-normalised, no clipping; stems sum to it
    mix, sr = _read(d / "mix.wav")
    assert sr == 44100 and mix.shape[1] == 2
    assert np.abs(mix).max() < 1.0
    stems = sorted((d / "stems").glob("*.wav"))
    names = {p.stem for p in stems}
    assert {"drums", "bass", "vocal"} <= names
    total = np.zeros_like(mix)
    for p in stems:
        x, sr2 = _read(p)
        assert sr2 == 44100 and x.shape == mix.shape, p.name
        total += x
    err = np.sqrt(np.mean((total - mix) ** 2)) / np.sqrt(np.mean(mix ** 2))
    assert 20 * np.log10(max(err, 1e-12)) < -40
    # every part in the JSON has its stem, program and notes
    for part in data["parts"]:
        assert (d / part["stem"]).is_file()
        assert 0 <= part["program"] <= 127 and part["notes"]

    # vocal stem: the take, untouched except for one gain (and the intro's leading silence)
    from hum2band.files.audio import decode

    take = decode(src, sample_rate_hz=44100, max_duration_s=None, channels=2).samples.astype(np.float64)
    vocal, _ = _read(d / "stems" / "vocal.wav")
    lead = int(data["offset_samples"])
    seg = vocal[lead:lead + take.shape[0]]
    g = float(np.sum(seg * take) / np.sum(take * take))
    resid = np.sqrt(np.mean((seg - g * take) ** 2)) / np.sqrt(np.mean((g * take) ** 2))
    assert resid < 1e-3 and np.abs(vocal[:lead]).max(initial=0.0) == 0.0

    # MIDI: type 1, a named track per part + the melody, drums on channel 10, chord markers
    mid = mido.MidiFile(str(d / "arrangement.mid"))
    assert mid.type == 1
    track_names = {msg.name for t in mid.tracks for msg in t if msg.type == "track_name"}
    assert {"Melody"} | {p["name"] for p in data["parts"]} <= track_names
    for t in mid.tracks:
        tname = next((m.name for m in t if m.type == "track_name"), "")
        chans = {m.channel for m in t if m.type == "note_on"}
        if tname == "drums":
            assert chans == {9}
        elif chans:
            assert 9 not in chans
    # each track's volume (CC 7, at time 0 on its channel) carries the mix's balance: the loudest
    # part at 100, none louder
    volumes = {}
    for t in mid.tracks:
        tname = next((m.name for m in t if m.type == "track_name"), "")
        if tname in {p["name"] for p in data["parts"]}:
            first = next(m for m in t if m.type == "control_change" and m.control == 7)
            assert sum(m.time for m in t[:t.index(first) + 1]) == 0, tname
            assert first.channel == (9 if tname == "drums" else first.channel) and 1 <= first.value <= 100
            volumes[tname] = first.value
    assert max(volumes.values()) == 100, volumes
    markers = [m.text for t in mid.tracks for m in t if m.type == "marker" and m.text != "N.C."]
    assert [m for m in markers if not m.startswith("Section ")] == [c["label"] for c in data["chords"]]
    # the form: sections cover the sung bars, one marker each
    sections = data["sections"]
    assert sections and [m for m in markers if m.startswith("Section ")] == [f"Section {s['label']}" for s in sections]
    assert all(a["end_bar"] == b["start_bar"] for a, b in zip(sections, sections[1:]))
    # the tempo map puts the downbeats on the singer's downbeats
    from hum2band.music.tempo_map import midi_downbeats_s

    downs_midi = midi_downbeats_s(d / "arrangement.mid")
    for t in data["downbeats"]:
        assert np.min(np.abs(np.asarray(downs_midi) - t)) < 0.03

    # lead sheet: parses, has the chords, meter and key
    import music21

    score = music21.converter.parse(str(d / "leadsheet.musicxml"))
    assert len(list(score.recurse().getElementsByClass("ChordSymbol"))) >= 1
    ts = score.recurse().getElementsByClass("TimeSignature")[0]
    assert [ts.numerator, ts.denominator] == data["meter"]
    # pianoroll is a PNG
    assert (d / "pianoroll.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_intro_and_melody_instrument(made):
    _, d, _ = made["waltz"]
    data = json.loads((d / "arrangement.json").read_text())
    first_note = data["melody"]["notes"][0]["onset"]
    drums = next(p for p in data["parts"] if p["name"] == "drums")
    assert drums["notes"][0]["onset"] < first_note - 1.0          # the band starts before the singer
    _, d2, _ = made["folk"]
    data2 = json.loads((d2 / "arrangement.json").read_text())
    lead = next(p for p in data2["parts"] if p["name"] == "lead")
    assert lead["program"] == 73 and len(lead["notes"]) == len(data2["melody"]["notes"])
    assert (d2 / "stems" / "lead.wav").is_file()


def test_locked_chords_and_seed(tmp_path):
    chart = "D | A | D | A D"
    a, b = tmp_path / "a", tmp_path / "b"
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "bossa nova", "--chords", chart,
                     "--seed", "7", "--out", a, "--quiet")
    assert rc == 0, err
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "bossa nova", "--chords", chart,
                     "--seed", "7", "--out", b, "--quiet")
    assert rc == 0, err
    ja = json.loads((a / "arrangement.json").read_text())
    jb = json.loads((b / "arrangement.json").read_text())
    assert ja["parts"] == jb["parts"] and ja["chords"] == jb["chords"]
    bpb = ja["grid"]["beats_per_bar"]
    first = ja["grid"]["first_bar"] * bpb
    want = [("D", 0, 1), ("A", 1, 2), ("D", 2, 3), ("A", 3, 3.5), ("D", 3.5, 4)]
    for label, s, e in want:
        spans = [c for c in ja["chords"] if c["start_beat"] <= first + s * bpb + 1e-6 < c["end_beat"]]
        assert spans and spans[0]["label"] == label, (label, s, spans)


def test_bars_regenerates_only_those_bars(made, tmp_path):
    _, d, _ = made["pop"]
    new = tmp_path / "again"
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "pop", "--seed", "11", "--bars", "3-4",
                     "--from", d, "--out", new, "--quiet")
    assert rc == 0, err
    old_j = json.loads((d / "arrangement.json").read_text())
    new_j = json.loads((new / "arrangement.json").read_text())
    assert old_j["chords"] == new_j["chords"]
    bpb = old_j["grid"]["beats_per_bar"]
    a, z = 2 * bpb, 4 * bpb
    changed = False
    for name, old_notes in old_j["grid"]["parts_beats"].items():
        new_notes = new_j["grid"]["parts_beats"][name]
        outside = lambda ns: [n for n in ns if not a - 1e-6 <= n[0] < z - 1e-6]  # noqa: E731
        inside = lambda ns: [n for n in ns if a - 1e-6 <= n[0] < z - 1e-6]  # noqa: E731
        # the same notes outside the range (simultaneous notes may be listed in another order)
        assert sorted(outside(old_notes)) == sorted(outside(new_notes)), name
        changed |= inside(old_notes) != inside(new_notes)
    assert changed


@pytest.mark.parametrize("argv, fragment", [
    (["--style", "disco"], "style 'disco' is not one I know"),
    (["--meter", "5/4"], "5/4"),
    (["--chords", "C | H7 | G"], "H7"),
    (["--bars", "3-4"], "--bars needs --from"),
    (["--intro", "12"], "--intro takes 0 to 8"),
    (["--melody-instrument", "kazoo-9000"], "not a General MIDI instrument"),
    (["--soundfont", "/nonexistent.sf2"], "nonexistent.sf2"),
])
def test_bad_options_give_one_line_and_leave_no_folder(tmp_path, argv, fragment):
    out = tmp_path / "out"
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--out", out, *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("hum2band: error:") and fragment in err, err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir()], list(tmp_path.iterdir())


def test_bad_input_gives_one_line_and_leaves_no_folder(tmp_path):
    bad = tmp_path / "notes.m4a"
    bad.write_text("this is not audio")
    out = tmp_path / "out"
    rc, _, err = run("arrange", bad, "--out", out)
    assert rc == 2 and err.count("\n") == 1 and "notes.m4a" in err, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["notes.m4a"]


def test_existing_folder_needs_force(made, tmp_path):
    _, d, _ = made["pop"]
    before = (d / "arrangement.json").read_text()
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--out", d, "--style", "rock")
    assert rc == 2 and "already exists" in err and "--force" in err
    assert (d / "arrangement.json").read_text() == before


def test_styles_command_lists_twelve_styles():
    rc, out, _ = run("styles", "--json")
    assert rc == 0
    styles = json.loads(out)
    assert len(styles) == 12
    assert {s["name"] for s in styles} == {"pop", "rock", "ballad", "folk", "country", "swing", "jazz-ballad",
                                           "bossa nova", "latin", "funk", "reggae", "waltz"}
    assert all(s["description"] and s["parts"] and s["meters"] for s in styles)


def test_render_an_edited_midi(made, tmp_path):
    src, d, _ = made["pop"]
    # "edit in a DAW": drop the pads/guitar tracks, keep the rest
    mid = mido.MidiFile(str(d / "arrangement.mid"))
    keep = [t for t in mid.tracks if next((m.name for m in t if m.type == "track_name"), "") not in ("guitar", "pads")]
    mid.tracks = keep
    edited = tmp_path / "edited.mid"
    mid.save(str(edited))
    out = tmp_path / "rendered"
    rc, stdout, err = run("render", edited, "--vocal", src, "--out", out, "--json")
    assert rc == 0, err
    names = {p.stem for p in (out / "stems").glob("*.wav")}
    assert "guitar" not in names and "pads" not in names and {"drums", "bass", "vocal"} <= names
    mix, sr = _read(out / "mix.wav")
    assert sr == 44100 and mix.shape[0] > 10 * sr


def test_python_api(tmp_path):
    import hum2band

    song = hum2band.arrange(EX / "twinkle.wav", style="country", seed=2)
    assert song.chords and {p.name for p in song.parts} >= {"drums", "bass"}
    files = song.export(tmp_path / "score")
    assert sorted(p.name for p in files.values()) == ["arrangement.mid", "leadsheet.musicxml", "pianoroll.png"]
    assert all(p.stat().st_size > 0 for p in files.values())
    mix = song.render()
    assert mix.sample_rate_hz == 44100 and "vocal" in mix.stems
    out = song.write(tmp_path / "api")
    assert (out / "mix.wav").is_file() and (out / "stems" / "vocal.wav").is_file()


def test_several_inputs_in_one_process_get_a_folder_each(tmp_path):
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    rc, stdout, err = run("arrange", EX / "twinkle.wav", EX / "amazing_grace.opus", bad, "--out", out,
                          "--style", "country", "--meter", "3/4", "--json", "--quiet")
    assert rc == 2                      # one input failed, the others were still arranged
    assert err.count("\n") == 1 and "empty.wav" in err
    results = {Path(r["input"]).name: r for r in json.loads(stdout)["results"]}
    assert results["twinkle.wav"]["ok"] and results["amazing_grace.opus"]["ok"]
    assert not results["empty.wav"]["ok"]
    assert sorted(p.name for p in out.iterdir()) == ["amazing_grace", "twinkle"]
    for name in ("twinkle", "amazing_grace"):
        data = json.loads((out / name / "arrangement.json").read_text())
        assert data["meter"] == [3, 4] and data["style"] == "country"


def test_the_band_lands_with_the_singers_last_held_note():
    from hum2band.compose.parts.accompany import PartsScore
    from hum2band.pipeline import SongGrid, _with_ending

    def grid(last_note):
        notes = np.array([[0.0, 1.0, 60.0], [4.0, 5.0, 62.0], last_note], dtype=float)
        return SongGrid(notes, (4, 4), 4, 0, 4, np.arange(17) * 0.5, 0, "major", 120.0)

    keys = np.array([[b + 0.0, 1.0, 64.0, 80.0] for b in range(16)])      # a note every beat
    ps = PartsScore({"keys": keys}, 1, np.zeros((4, 48, 1)))
    held = _with_ending(ps, grid([8.0, 11.5, 60.0]), []).parts["keys"]   # bar 3's downbeat, held
    assert held[:, 0].max() == 8.0 and held[-1, 0] + held[-1, 1] == 16.0
    assert (held[:, 0] <= 8.0).all() and len(held) == 9
    short = _with_ending(ps, grid([8.0, 8.5, 60.0]), []).parts["keys"]   # a short last note
    assert short[:, 0].max() == 12.0 and len(short) == 13


def test_an_intro_plays_the_songs_own_last_bars():
    from hum2band.music.chords import ChordSymbol
    from hum2band.pipeline import intro_chords

    c, f, g, am = (ChordSymbol.make(0), ChordSymbol.make(5), ChordSymbol.make(7), ChordSymbol.make(9, "min"))
    # two intro bars (beats 0-8), then eight sung bars of 4/4 (beats 8-40)
    spans = [(8.0, 12.0, c), (12.0, 16.0, am), (16.0, 24.0, f), (24.0, 32.0, c), (32.0, 36.0, f),
             (36.0, 38.0, g), (38.0, 40.0, c)]
    assert intro_chords(spans, 8.0, 40.0) == [(0.0, 4.0, f), (4.0, 6.0, g), (6.0, 8.0, c)]
    # a song shorter than its intro: the first chord held
    assert intro_chords([(8.0, 12.0, am)], 8.0, 12.0) == [(0.0, 8.0, am)]


def test_form_names_the_sections_and_section_regenerates_one(tmp_path):
    first, again = tmp_path / "form", tmp_path / "again"
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "rock", "--form", "A B", "--seed", "2",
                     "--out", first, "--quiet")
    assert rc == 0, err
    a = json.loads((first / "arrangement.json").read_text())
    assert [s["label"] for s in a["sections"]] == ["A", "B"]
    assert a["sections"][0]["end_bar"] == a["sections"][1]["start_bar"]
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "rock", "--seed", "9", "--section", "2",
                     "--from", first, "--out", again, "--quiet")
    assert rc == 0, err
    b = json.loads((again / "arrangement.json").read_text())
    assert b["sections"] == a["sections"] and b["chords"] == a["chords"]
    bpb = a["grid"]["beats_per_bar"]
    cut = a["sections"][1]["start_bar"] * bpb
    changed = False
    for name, notes in a["grid"]["parts_beats"].items():
        before = sorted(n for n in notes if n[0] < cut - 1e-6)
        assert before == sorted(n for n in b["grid"]["parts_beats"][name] if n[0] < cut - 1e-6), name
        changed |= sorted(notes) != sorted(b["grid"]["parts_beats"][name])
    assert changed
    rc, _, err = run("arrange", EX / "ode_to_joy.m4a", "--style", "rock", "--section", "5", "--from", first,
                     "--out", tmp_path / "no")
    assert rc != 0 and "--section 5: the arrangement" in err and "has 2 sections" in err


def _sixteen_bar_tune(path: Path) -> Path:
    """Ode to Joy as written, A A' B A' (16 bars of 4/4 at 120 bpm), as a MIDI melody."""
    import pretty_midi

    e, f, g, c, d = 64, 65, 67, 60, 62
    a1 = [(e, 1), (e, 1), (f, 1), (g, 1), (g, 1), (f, 1), (e, 1), (d, 1), (c, 1), (c, 1), (d, 1), (e, 1),
          (e, 1.5), (d, .5), (d, 2)]
    a2 = a1[:12] + [(d, 1.5), (c, .5), (c, 2)]
    b = [(d, 1), (d, 1), (e, 1), (c, 1), (d, 1), (e, .5), (f, .5), (e, 1), (c, 1), (d, 1), (e, .5), (f, .5),
         (e, 1), (d, 1), (c, 1), (d, 1), (55, 2)]
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0, name="Melody")
    beat = 0.0
    for pitch, length in a1 + a2 + b + a2:
        inst.notes.append(pretty_midi.Note(90, pitch, beat * 0.5, (beat + length) * 0.5 - 0.02))
        beat += length
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_a_regenerated_section_keeps_its_inner_phrases(tmp_path, monkeypatch):
    """``--section N`` plays to the first arrangement's form: the section's inner phrase starts
    come back from arrangement.json (or, from an older one without them, from the melody), so the
    parts model gets the same fill bars as the first time, not a fill every 8 bars."""
    import hum2band
    from hum2band.compose.form import section_phrase_ends
    from hum2band.compose.parts import accompany as acc

    seen = []
    real = acc.accompany

    def spy(*args, **kwargs):
        seen.append(list(kwargs["sections"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(acc, "accompany", spy)
    tune = _sixteen_bar_tune(tmp_path / "ode16.mid")
    first = tmp_path / "first"
    song = hum2band.arrange(tune, style="pop", seed=1)
    song.write(first)
    a = json.loads((first / "arrangement.json").read_text())
    inner = [i for i, s in enumerate(a["sections"]) if s["phrase_starts"]]
    assert inner, a["sections"]                   # the B section has a phrase inside it
    number = inner[-1] + 1
    sec = a["sections"][number - 1]
    assert [(s.start_bar, s.end_bar, list(s.phrase_starts)) for s in song.sections] == [
        (s["start_bar"], s["end_bar"], s["phrase_starts"]) for s in a["sections"]]
    ends_first = section_phrase_ends(seen[0], song.grid.n_bars, 8)
    # the fill inside it sits before its inner phrase, not where every-8-bars would put it
    for b in sec["phrase_starts"]:
        assert ends_first[b - 1] == 1

    old = tmp_path / "old"                        # an arrangement.json written before they were kept
    import shutil

    shutil.copytree(first, old)
    data = json.loads((old / "arrangement.json").read_text())
    for s in data["sections"]:
        del s["phrase_starts"], s["pickup_bars"]
    (old / "arrangement.json").write_text(json.dumps(data))

    for source in (first, old):
        again = hum2band.arrange(tune, style="pop", seed=7, section=number, from_dir=str(source))
        assert again.sections == song.sections, source.name
        ends = section_phrase_ends(seen[-1], again.grid.n_bars, 8)
        assert ends.tolist() == ends_first.tolist(), source.name
    again.write(tmp_path / "again")
    b = json.loads((tmp_path / "again" / "arrangement.json").read_text())
    assert b["sections"] == a["sections"]
