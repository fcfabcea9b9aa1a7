"""--downbeat SECONDS and --pickup BEATS on arrange and transcribe, and the API names behind them
(``transcribe(..., downbeat_s=, pickup_beats=)``, ``ArrangeOptions.downbeat_s / pickup_beats``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hum2band.app import cli
from hum2band.app.cli_arrange import options_from_args
from hum2band.errors import OptionError
from hum2band.pipeline import ArrangeOptions

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_arrange_flags_reach_the_options():
    args = cli.build_parser().parse_args(
        ["arrange", "take.m4a", "--out", "out", "--downbeat", "1.25", "--pickup", "0.5"])
    opts = options_from_args(args)
    assert (opts.downbeat_s, opts.pickup_beats) == (1.25, 0.5)
    plain = options_from_args(cli.build_parser().parse_args(["arrange", "take.m4a", "--out", "o"]))
    assert (plain.downbeat_s, plain.pickup_beats) == (None, None)


def test_transcribe_flags_reach_the_options():
    args = cli.build_parser().parse_args(["transcribe", "take.m4a", "--out", "o", "--downbeat", "2", "--pickup", "1"])
    opts = cli.validate_options(args)
    assert (opts.downbeat_s, opts.pickup_beats) == (2.0, 1.0)


@pytest.mark.parametrize("fields, needle", [
    ({"downbeat_s": -0.5}, "outside the take"),
    ({"downbeat_s": float("nan")}, "outside the take"),
    ({"pickup_beats": -1.0}, "pickup"),
    ({"pickup_beats": 4.0}, "less than a bar"),
    ({"pickup_beats": 2.0, "meter": (6, 8), "style": "folk"}, "less than a bar (2 beats)"),
])
def test_bad_fixes_are_one_line_option_errors(fields, needle):
    with pytest.raises(OptionError, match=needle.replace("(", r"\(").replace(")", r"\)")) as e:
        ArrangeOptions(**fields).checked()
    assert "\n" not in str(e.value)


def test_good_fixes_pass_the_check_unchanged():
    o = ArrangeOptions(downbeat_s=3.5, pickup_beats=1.5, meter=(3, 4), style="waltz").checked()
    assert (o.downbeat_s, o.pickup_beats) == (3.5, 1.5)


def test_downbeat_after_the_take_ends_is_refused_before_any_pitch_work(capsys, tmp_path):
    take = EXAMPLES / "twinkle.wav"
    rc = cli.main(["transcribe", str(take), "--downbeat", "999", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert "outside the take" in err and "999" in err and len(err.splitlines()) == 1


def test_transcribe_audio_checks_the_downbeat_against_the_take():
    from hum2band.listen.transcription import transcribe_audio

    with pytest.raises(OptionError, match=r"outside the take \(0 to 2.0 s\)"):
        transcribe_audio(np.zeros(32000, dtype=np.float32), 16000, downbeat_s=5.0)


def test_written_melodies_keep_their_own_bar_lines(tmp_path):
    import pretty_midi

    from hum2band.pipeline import melody_from_file

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0, name="melody")
    inst.notes = [pretty_midi.Note(80, 60 + k, 0.5 * k, 0.5 * k + 0.4) for k in range(8)]
    pm.instruments.append(inst)
    path = tmp_path / "tune.mid"
    pm.write(str(path))
    with pytest.raises(OptionError, match="only apply to audio takes"):
        melody_from_file(path, ArrangeOptions(pickup_beats=1.0))
