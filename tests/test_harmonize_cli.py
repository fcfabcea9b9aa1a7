"""``hum2band harmonize``: MIDI melodies in, chord JSON out, errors in one line."""

from __future__ import annotations

import json
from pathlib import Path

import mir_eval
import pytest

from hum2band.app import cli
from hum2band.listen.transcription import transcribe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"



@pytest.fixture(scope="module")
def melodies(tmp_path_factory):
    folder = tmp_path_factory.mktemp("melodies")
    paths = []
    for name in ("ode_to_joy.m4a", "amazing_grace.opus"):
        m = transcribe(EXAMPLES / name)
        p = folder / (name.split(".")[0] + ".mid")
        m.write_midi(p)
        paths.append(p)
    return paths


def _run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def test_writes_one_json_per_melody(melodies, tmp_path, capsys):
    rc, _, _ = _run(["harmonize", *map(str, melodies), "--style", "folk", "--out",
                     str(tmp_path / "h"), "--quiet"], capsys)
    assert rc == 0
    for p in melodies:
        d = json.loads((tmp_path / "h" / f"{p.stem}.json").read_text())
        assert set(d) >= {"key", "meter", "chords"} and len(d["chords"]) >= 2
        prev_end = 0.0
        for c in d["chords"]:
            assert 0.0 <= c["start"] < c["end"] and c["start_beat"] < c["end_beat"]
            assert c["start"] >= prev_end - 1e-3
            prev_end = c["end"]
            mir_eval.chord.encode(c["chord"])  # valid Harte
            assert c["label"]


def test_same_seed_same_chords(melodies, tmp_path, capsys):
    outs = []
    for k in range(2):
        rc, _, _ = _run(["harmonize", str(melodies[0]), "--seed", "7", "--temperature", "1.0",
                         "--out", str(tmp_path / f"s{k}"), "--quiet"], capsys)
        assert rc == 0
        outs.append(json.loads((tmp_path / f"s{k}" / f"{melodies[0].stem}.json").read_text()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("extra", [["--style", "polka"], ["--temperature", "-1"]])
def test_bad_options_are_one_line(melodies, tmp_path, capsys, extra):
    rc, _, err = _run(["harmonize", str(melodies[0]), "--out", str(tmp_path / "x"), *extra],
                      capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("hum2band: error:")
    assert not (tmp_path / "x").exists()


def test_bad_input_and_existing_output(melodies, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a melody")
    out = tmp_path / "o"
    rc, _, err = _run(["harmonize", str(text), str(melodies[0]), "--out", str(out), "--quiet"],
                      capsys)
    assert rc == 2 and len(err) == 1 and "notes.txt" in err[0]
    assert (out / f"{melodies[0].stem}.json").is_file()  # the good one is still done
    before = (out / f"{melodies[0].stem}.json").read_bytes()
    rc, _, err = _run(["harmonize", str(melodies[0]), "--out", str(out), "--seed", "3"], capsys)
    assert rc == 2 and "--force" in err[0]
    assert (out / f"{melodies[0].stem}.json").read_bytes() == before
