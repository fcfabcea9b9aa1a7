"""The ``hum2band`` command line: errors, outputs, the JSON contract, several inputs.

Most runs call :func:`hum2band.app.cli.main` in-process (models load once per test session); one
test runs the installed console script in a subprocess. Bad inputs are made in ``tmp_path``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hum2band.app import cli
from hum2band.errors import NoSingingError
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import Rhythm

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ode_to_joy.m4a"
SR = 22050


# ---- helpers ---------------------------------------------------------------------------------
def run(argv, capsys):
    """Run the CLI in-process; returns (exit status, stdout, stderr lines)."""
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def write_wav(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    sf.write(str(path), samples.astype(np.float32), sr, subtype="PCM_16")
    return path


def sung_tone(duration_s: float, f0_hz: float = 220.0, sr: int = SR) -> np.ndarray:
    """A voice-like tone: 6 harmonics with a 5.5 Hz vibrato and soft attack/release."""
    t = np.arange(int(duration_s * sr)) / sr
    f = f0_hz * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 7))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return 0.25 * x * env


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_error_line(rc: int, err_lines: list[str], expected_rc: int = 2) -> None:
    assert rc == expected_rc, err_lines
    assert len(err_lines) == 1, err_lines
    assert err_lines[0].startswith("hum2band: error: "), err_lines


@pytest.fixture(scope="module")
def example() -> Path:
    assert EXAMPLE.is_file(), f"{EXAMPLE} is missing (the examples ship with the repository)"
    return EXAMPLE


@pytest.fixture(scope="module")
def short_take(example, tmp_path_factory) -> Path:
    """The first 7 s of the shipped example as a WAV: a real take that transcribes quickly."""
    from hum2band.files.audio import decode

    audio = decode(example, sample_rate_hz=16000)
    path = tmp_path_factory.mktemp("short") / "ode_start.wav"
    return write_wav(path, audio.samples[: 7 * 16000], 16000)


# ---- bad inputs: one line, exit 2, nothing written ----------------------------------------------
def _bad_input(kind: str, tmp_path: Path) -> tuple[Path, list[str]]:
    """Make the bad input ``kind`` in ``tmp_path``; returns it and extra CLI options."""
    rng = np.random.default_rng(0)
    if kind == "missing":
        return tmp_path / "nope.m4a", []
    if kind == "empty":
        p = tmp_path / "empty.wav"
        p.write_bytes(b"")
        return p, []
    if kind == "text":
        p = tmp_path / "notes.wav"
        p.write_text("this is a shopping list, not a recording\n" * 20)
        return p, []
    if kind == "corrupt":
        p = tmp_path / "cut.m4a"
        p.write_bytes(EXAMPLE.read_bytes()[:200])
        return p, []
    if kind == "silence":
        return write_wav(tmp_path / "silence.wav", np.zeros(5 * SR)), []
    if kind == "noise":
        return write_wav(tmp_path / "noise.wav", 0.3 * rng.standard_normal(5 * SR)), []
    if kind == "short":  # 0.6 s of singing between two pauses
        pause = np.zeros(SR)
        return write_wav(tmp_path / "short.wav", np.concatenate([pause, sung_tone(0.6), pause])), []
    if kind == "long":
        return write_wav(tmp_path / "long.wav", sung_tone(5.0)), ["--max-minutes", "0.05"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, reason", [
    ("missing", "can't find"), ("empty", "empty"), ("text", "not an audio file"),
    ("corrupt", "damaged"), ("silence", "no singing"), ("noise", "no singing"),
    ("short", "too short"), ("long", "minutes long"),
])
def test_bad_input_is_one_line_and_leaves_nothing(kind, reason, tmp_path, capsys, example):
    src, extra = _bad_input(kind, tmp_path)
    before = listing(tmp_path)
    out = tmp_path / ("take.json" if kind in ("missing", "silence") else "out")
    rc, stdout, err = run(["transcribe", src, "--out", out, *extra], capsys)
    assert_one_error_line(rc, err)
    assert reason in err[0] and src.name in err[0]
    assert stdout == ""
    assert listing(tmp_path) == before  # no output, no temporary folder left behind


def test_silence_is_no_singing_error(tmp_path):
    """The silent take fails for the right reason (not, say, a decoding error)."""
    src = write_wav(tmp_path / "silence.wav", np.zeros(5 * SR))
    with pytest.raises(NoSingingError):
        cli.load_transcribe()(str(src))


@pytest.mark.parametrize("option, value, needle", [
    ("--meter", "5/4", "meter"),
    ("--meter", "four", "meter"),
    ("--key", "H major", "key"),
    ("--key", "", "key"),
    ("--tempo", "12", "tempo"),
    ("--tempo", "fast", "tempo"),
    ("--max-minutes", "0", "max-minutes"),
    ("--pitch-backend", "nope", "pitch backend"),
])
def test_bad_option_is_one_line(option, value, needle, tmp_path, capsys):
    src = write_wav(tmp_path / "take.wav", sung_tone(2.0))
    before = listing(tmp_path)
    rc, _, err = run(["transcribe", src, "--out", tmp_path / "out", option, value], capsys)
    assert_one_error_line(rc, err)
    assert needle in err[0]
    assert listing(tmp_path) == before


def test_usage_errors_are_one_line(capsys):
    for argv in (["transcribe"], ["transcribe", "x.wav"], ["sing"], [],
                 ["transcribe", "x.wav", "--out", "o", "--bogus"]):
        rc, _, err = run(argv, capsys)
        assert_one_error_line(rc, err)
        assert "--help" in err[0]


def test_help_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert cli.__version__ in capsys.readouterr().out
    assert cli.main(["transcribe", "--help"]) == 0
    assert "--pitch-backend" in capsys.readouterr().out


def test_several_inputs_need_a_directory(tmp_path, capsys):
    a = write_wav(tmp_path / "a.wav", sung_tone(2.0))
    b = write_wav(tmp_path / "b.wav", sung_tone(2.0))
    rc, _, err = run(["transcribe", a, b, "--out", tmp_path / "x.json"], capsys)
    assert_one_error_line(rc, err)


def test_out_is_an_existing_file(tmp_path, capsys):
    a = write_wav(tmp_path / "a.wav", sung_tone(2.0))
    (tmp_path / "out").write_text("I am a file")
    rc, _, err = run(["transcribe", a, "--out", tmp_path / "out"], capsys)
    assert_one_error_line(rc, err)


# ---- the real pipeline on a shipped example ----------------------------------------------------
@pytest.fixture(scope="module")
def transcribed(example, tmp_path_factory):
    """``hum2band transcribe examples/ode_to_joy.m4a --out DIR/ode.json`` in-process."""
    out = tmp_path_factory.mktemp("ode") / "ode.json"
    stderr = io.StringIO()
    saved = sys.stderr
    sys.stderr = stderr
    try:
        rc = cli.main(["transcribe", str(example), "--out", str(out)])
    finally:
        sys.stderr = saved
    return rc, out, stderr.getvalue()


def test_transcribe_writes_json_and_midi(transcribed):
    rc, out, err = transcribed
    assert rc == 0, err
    assert out.is_file() and out.with_suffix(".mid").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    lines = err.splitlines()
    assert len(lines) == 3 and lines[0].startswith("ode_to_joy.m4a: ") and " done (" in lines[0]
    # the moves to try when the band is off: the grid's other readings, ready to paste
    d = json.loads(out.read_text())
    assert lines[1].startswith(f"ode_to_joy.m4a: to move bar 1, keep --meter {d['meter'][0]}/"
                               f"{d['meter'][1]} and give: half a beat ")
    for r in d["other_readings"]:
        assert f"--downbeat {r['downbeat_s']:.2f}" in lines[1]
    # and the other tempi and meters to count it in
    assert lines[2].startswith("ode_to_joy.m4a: to count it another way, give: ")
    for r in d["other_tempi"]:
        assert f"--meter {r['meter']} --tempo {r['tempo_bpm']:.0f}" in lines[2]


def test_json_contract(transcribed):
    _, out, _ = transcribed
    d = json.loads(out.read_text())
    assert isinstance(d["notes"], list) and len(d["notes"]) > 0
    for n in d["notes"]:
        assert set(n) >= {"onset", "offset", "pitch", "midi", "velocity"}
        assert isinstance(n["onset"], float) and isinstance(n["offset"], float)
        assert isinstance(n["pitch"], float)
        assert isinstance(n["midi"], int) and 0 <= n["midi"] <= 127
        assert isinstance(n["velocity"], int) and 1 <= n["velocity"] <= 127
        assert 0.0 <= n["onset"] < n["offset"] <= d["duration_s"] + 0.05
        assert abs(n["pitch"] - n["midi"]) < 1.0
    onsets = [n["onset"] for n in d["notes"]]
    assert onsets == sorted(onsets)
    assert isinstance(d["tuning_cents"], (int, float)) and -50.0 <= d["tuning_cents"] <= 50.0
    assert isinstance(d["tempo_bpm"], (int, float)) and 30.0 <= d["tempo_bpm"] <= 300.0
    for name in ("beats", "downbeats"):
        assert isinstance(d[name], list) and all(isinstance(t, (int, float)) for t in d[name])
        assert d[name] == sorted(d[name])
    assert set(d["downbeats"]) <= set(d["beats"])
    assert [r["kind"] for r in d["other_readings"]] == ["off-beat"] + ["bar line"] * 3  # 4/4
    assert sorted(abs(r["beats_later"]) for r in d["other_readings"]) == [0.5, 1, 1, 2]
    for r in d["other_readings"]:
        assert 0.0 <= r["downbeat_s"] <= d["duration_s"] and r["margin"] >= 0.0
        assert min(abs(r["downbeat_s"] - t) for t in d["downbeats"]) > 0.05  # not a bar line read
    assert isinstance(d["meter"], list) and len(d["meter"]) == 2
    assert tuple(d["meter"]) in {(4, 4), (3, 4), (6, 8), (2, 4)}
    assert 1 <= len(d["other_tempi"]) <= 2
    for r in d["other_tempi"]:
        assert r["meter"] in {"4/4", "3/4", "6/8"} and 30.0 <= r["tempo_bpm"] <= 300.0
        assert r["margin"] >= 0.0
        assert r["meter"] != f"{d['meter'][0]}/{d['meter'][1]}" or \
            abs(r["tempo_bpm"] / d["tempo_bpm"] - 1.0) > 0.1  # another reading
    key = d["key"]
    assert key["tonic"] in {"C", "C#", "Db", "D", "D#", "Eb", "E", "F", "F#", "Gb", "G", "G#",
                            "Ab", "A", "A#", "Bb", "B"}
    assert key["mode"] in {"major", "minor"}
    assert isinstance(key["confidence"], float) and 0.0 <= key["confidence"] <= 1.0
    assert isinstance(d["source"], str) and isinstance(d["pitch_backend"], str)
    # The contract round-trips through the object model.
    m = Melody.from_json(d)
    assert len(m.notes) == len(d["notes"])
    assert [r.to_json() for r in m.rhythm.other_readings] == d["other_readings"]
    assert [r.to_json() for r in m.rhythm.other_tempi] == d["other_tempi"]


def test_midi_matches_json(transcribed):
    import pretty_midi

    _, out, _ = transcribed
    d = json.loads(out.read_text())
    pm = pretty_midi.PrettyMIDI(str(out.with_suffix(".mid")))
    notes = sorted((n for inst in pm.instruments for n in inst.notes),
                   key=lambda n: (n.start, n.pitch))
    assert len(notes) == len(d["notes"])
    for got, want in zip(notes, d["notes"]):
        assert got.pitch == want["midi"]
        assert abs(got.start - want["onset"]) <= 0.010
        assert abs(got.end - want["offset"]) <= 0.010
        assert got.velocity == want["velocity"]


def test_existing_output_needs_force(transcribed, example, capsys):
    _, out, _ = transcribed
    before = out.read_bytes(), out.with_suffix(".mid").read_bytes()
    rc, _, err = run(["transcribe", example, "--out", out], capsys)
    assert_one_error_line(rc, err)
    assert "--force" in err[0]
    assert (out.read_bytes(), out.with_suffix(".mid").read_bytes()) == before


def test_force_overwrites_and_options_reach_the_result(short_take, tmp_path, capsys):
    out = tmp_path / "take.json"
    out.write_text("old")
    out.with_suffix(".mid").write_text("old")
    rc, stdout, err = run(["transcribe", short_take, "--out", out, "--force", "--quiet", "--json",
                           "--tempo", "100", "--meter", "3/4", "--key", "F# minor"], capsys)
    assert rc == 0, err
    assert err == []  # --quiet
    summary = json.loads(stdout)
    assert summary["ok"] is True and len(summary["results"]) == 1
    r = summary["results"][0]
    assert r["json"] == str(out) and r["midi"] == str(out.with_suffix(".mid"))
    d = json.loads(out.read_text())
    assert d["meter"] == [3, 4] == [int(x) for x in r["meter"].split("/")]
    assert (d["key"]["tonic"], d["key"]["mode"]) == ("F#", "minor")
    assert 75.0 <= d["tempo_bpm"] <= 125.0  # the given tempo, as followed through the take
    assert r["notes"] == len(d["notes"]) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.json", "take.mid"]


def _console_script() -> str:
    script = Path(sys.executable).with_name("hum2band")
    return str(script) if script.exists() else shutil.which("hum2band")


def test_several_inputs_console_script(short_take, tmp_path):
    """One process, three inputs: two good (same name: de-duplicated) and one silent."""
    script = _console_script()
    assert script, "the hum2band console script is not installed (pip install -e .)"
    other = tmp_path / "copy" / short_take.name
    other.parent.mkdir()
    shutil.copy(short_take, other)
    silent = write_wav(tmp_path / "silence.wav", np.zeros(4 * SR))
    out = tmp_path / "out"
    env = dict(os.environ, HUM2BAND_DEBUG="")
    proc = subprocess.run([script, "transcribe", str(short_take), str(silent), str(other),
                           "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr  # progress, error, progress: nothing else
    assert lines[1].startswith("hum2band: error: ") and "silence.wav" in lines[1]
    assert all(" done (" in lines[i] for i in (0, 2))
    assert sorted(p.name for p in out.iterdir()) == [
        "ode_start-2.json", "ode_start-2.mid", "ode_start.json", "ode_start.mid"]
    summary = json.loads(proc.stdout)
    assert summary["ok"] is False
    assert [r["ok"] for r in summary["results"]] == [True, False, True]
    a = json.loads((out / "ode_start.json").read_text())
    b = json.loads((out / "ode_start-2.json").read_text())
    assert a["notes"] == b["notes"] and len(a["notes"]) > 0  # same audio, same answer


# ---- CLI logic with a stand-in pipeline (fast, no models) ---------------------------------------
def _melody(n_notes: int = 3) -> Melody:
    notes = [Note(0.5 + i, 1.2 + i, 60.1 + i, 60 + i, 90) for i in range(n_notes)]
    beats = np.arange(0.5, 0.5 + n_notes + 1, 0.5)
    rhythm = Rhythm(beats, beats[::4], (4, 4), 120.0)
    return Melody(notes, 10.0, rhythm, Key("C", "major", 0.9), duration_s=n_notes + 1.0,
                  source="x", pitch_backend="default")


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace the pipeline with one that records calls and follows a script per file stem."""
    calls = []

    def fake_transcribe(path, pitch_backend="default", tempo_bpm=None, meter=None, key=None,
                        max_duration_s=900.0, progress=None):
        calls.append(dict(path=path, pitch_backend=pitch_backend, tempo_bpm=tempo_bpm,
                          meter=meter, key=key, max_duration_s=max_duration_s))
        stem = Path(path).stem
        if stem == "chatty":
            logging.getLogger("some.library").warning("runtime X is not installed")
            logging.warning("root logger chatter")  # would call logging.basicConfig()
            logging.getLogger("hum2band.files.audio").warning("%s: 2 bad packets\nskipped", path)
        for stage in ("decoding", "pitch", "notes", "rhythm"):
            if progress:
                progress(stage)
            if stem == "quiet" and stage == "pitch":
                raise NoSingingError(f"{path}: no singing found")
            if stem == "buggy" and stage == "notes":
                raise ZeroDivisionError("division by zero")
        return _melody()

    monkeypatch.setattr(cli, "load_transcribe", lambda: fake_transcribe)
    monkeypatch.setattr(cli, "_backend_names", lambda: ("default", "crepe"))
    return calls


def test_options_are_passed_through(fake_pipeline, tmp_path, capsys):
    src = write_wav(tmp_path / "a.wav", np.zeros(10))
    rc, _, err = run(["transcribe", src, "--out", tmp_path / "o", "--pitch-backend", "crepe",
                      "--tempo", "96", "--meter", "6/8", "--key", "Am", "--max-minutes", "2"],
                     capsys)
    assert rc == 0, err
    (call,) = fake_pipeline
    assert call["pitch_backend"] == "crepe" and call["tempo_bpm"] == 96.0
    assert call["meter"] == (6, 8) and call["max_duration_s"] == 120.0
    assert (call["key"].tonic, call["key"].mode) == ("A", "minor")
    assert err == ["a.wav: decoding… pitch… notes… rhythm… done (3 notes, 120 bpm 4/4, "
                   "C major) in " + err[0].split(" in ")[-1]]


def test_bad_take_among_several(fake_pipeline, tmp_path, capsys):
    srcs = [write_wav(tmp_path / f"{s}.wav", np.zeros(10)) for s in ("a", "quiet", "b")]
    rc, stdout, err = run(["transcribe", *srcs, tmp_path / "gone.wav", "--out", tmp_path / "o",
                           "--json"], capsys)
    assert rc == 2
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.json", "a.mid", "b.json",
                                                                   "b.mid"]
    errors = [l for l in err if l.startswith("hum2band: error:")]
    assert len(errors) == 2 and "quiet.wav" in errors[0] and "gone.wav" in errors[1]
    assert [r["ok"] for r in json.loads(stdout)["results"]] == [True, False, True, False]


def test_internal_error_is_one_line_exit_1(fake_pipeline, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HUM2BAND_DEBUG", raising=False)
    src = write_wav(tmp_path / "buggy.wav", np.zeros(10))
    rc, _, err = run(["transcribe", src, "--out", tmp_path / "o"], capsys)
    assert rc == 1
    assert len(err) == 1 and err[0].startswith("hum2band: internal error: ")
    assert "HUM2BAND_DEBUG=1" in err[0]
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("HUM2BAND_DEBUG", "1")
    rc, _, err = run(["transcribe", src, "--out", tmp_path / "o"], capsys)
    assert rc == 1 and any("Traceback" in l for l in err)


def test_library_log_chatter_stays_off_stderr(fake_pipeline, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HUM2BAND_DEBUG", raising=False)
    handlers = list(logging.getLogger().handlers)
    src = write_wav(tmp_path / "chatty.wav", np.zeros(10))
    rc, _, err = run(["transcribe", src, "--out", tmp_path / "o"], capsys)
    assert rc == 0
    assert len(err) == 2, err
    assert err[0] == f"hum2band: warning: {src}: 2 bad packets skipped"
    assert err[1].startswith("chatty.wav: decoding… ")
    assert logging.getLogger().handlers == handlers  # nothing left installed after main()


def test_name_clashes_are_deduplicated():
    names = cli.unique_names([Path("a/take.m4a"), Path("b/take.wav"), Path("Take.opus"),
                              Path("take-2.wav")])
    assert names == ["take", "take-2", "Take-3", "take-2-2"]
    assert len({n.casefold() for n in names}) == len(names)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    melody = _melody()
    job = cli.Job(Path("a.wav"), tmp_path / "new" / "a.json", tmp_path / "new" / "a.mid")

    def broken(self, path):
        Path(path).write_text("{half")
        raise OSError("disk full")

    monkeypatch.setattr(Melody, "write_json", broken)
    with pytest.raises(OSError):
        cli.write_outputs(melody, job, force=False)
    assert listing(tmp_path) == set()


def test_write_into_existing_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    job = cli.Job(Path("a.wav"), tmp_path / "a.json", tmp_path / "a.mid")
    cli.write_outputs(_melody(), job, force=False)
    assert listing(tmp_path) == {"keep.txt", "a.json", "a.mid"}
    assert Melody.from_json(json.loads((tmp_path / "a.json").read_text())).notes == _melody().notes


def test_progress_on_a_terminal_is_erased_on_error():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    p = cli.Progress("a.wav", stream, enabled=True)
    p("decoding")
    p("pitch")
    assert stream.getvalue() == "a.wav: decoding… pitch… "
    p.abandon()
    assert stream.getvalue().endswith("\r\033[K")
    quiet = Tty()
    q = cli.Progress("a.wav", quiet, enabled=False)
    q("decoding")
    q.done("x", 1.0)
    assert quiet.getvalue() == ""


def test_import_is_light_and_transcribe_is_the_function():
    code = (
        "import sys, hum2band\n"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'\n"
        "hum2band.Melody, hum2band.Key, hum2band.NoSingingError\n"
        "assert 'torch' not in sys.modules\n"
        "import hum2band.listen.transcription\n"
        "assert callable(hum2band.transcribe) and hum2band.transcribe.__name__ == 'transcribe'\n"
        "assert hum2band.transcribe is hum2band.listen.transcription.transcribe\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_bad_options_fail_before_heavy_imports(tmp_path):
    code = (
        "import sys\n"
        "from hum2band.app.cli import main\n"
        f"rc = main(['transcribe', {str(tmp_path / 'x.wav')!r}, '--out', 'o', '--meter', '5/4'])\n"
        "assert rc == 2, rc\n"
        "assert 'torch' not in sys.modules and 'av' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "meter" in proc.stderr


def test_a_library_print_never_reaches_stdout(monkeypatch, capsys):
    # pyfluidsynth prints where it found libfluidsynth when $CI is set; any such line in front
    # of a --json summary would break it. A library that prints while the styles are listed:
    # the summary must still be the whole of stdout.
    from hum2band.app import cli as cli_module
    from hum2band.music import styles

    real = styles.all_styles

    def chatty():
        print("'fluidsynth' was found at libfluidsynth.so.3.")
        return real()

    monkeypatch.setattr(styles, "all_styles", chatty)
    code = cli_module.main(["styles", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)
