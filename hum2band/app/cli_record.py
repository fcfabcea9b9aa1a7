"""``hum2band record`` and ``hum2band devices``: sing into the microphone, get the band.

The same rules as the rest of the command line (see :mod:`hum2band.app.cli`): options are checked
before the microphone opens, every error is one line with exit status 2, outputs appear complete
or not at all, and an existing output folder is replaced only with ``--force``. A take is never
lost: if arranging fails, the take is kept beside the output folder and the error says where.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import traceback
from pathlib import Path
from typing import TextIO

from ..errors import Hum2BandError, OptionError
from .common import EXIT_INTERNAL, EXIT_OK, EXIT_USER


def add_record_parsers(sub) -> None:
    """Add ``record`` and ``devices`` to the sub-command parsers ``sub``."""
    from .cli_arrange import add_arrange_options

    r = sub.add_parser(
        "record", help="sing into the microphone (with a count-in and click), then get the band",
        description="Record a take from the microphone and arrange it: DIR gets take.wav and "
                    "everything 'hum2band arrange' writes. With --tempo you get a count-in (one "
                    "bar unless --count-in says otherwise) and the band follows that tempo and "
                    "bar 1 exactly. Stop with Enter, or give --seconds.")
    r.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: take.wav and the arrangement")
    r.add_argument("--seconds", type=float, metavar="S",
                   help="stop S seconds after bar 1 (default: when you press Enter)")
    r.add_argument("--device", metavar="MIC",
                   help="microphone: its number or part of its name from 'hum2band devices' "
                        "(default: the system's)")
    r.add_argument("--output-device", metavar="OUT",
                   help="where the count-in and click play (default: the system's output)")
    r.add_argument("--count-in", type=int, metavar="BEATS",
                   help="beats of click before bar 1; needs --tempo (default: one bar with "
                        "--tempo, none without)")
    r.add_argument("--click", action="store_true",
                   help="keep clicking while you sing (wear headphones); needs --tempo")
    r.add_argument("--latency-ms", type=float, metavar="MS",
                   help="round-trip latency of your sound card to correct for (default: measured "
                        "from the count-in when the microphone hears it, else what the system "
                        "reports)")
    r.add_argument("--calibrate", action="store_true",
                   help="first measure the latency with a few clicks (hold the headphones to the "
                        "microphone, or turn the speakers up)")
    r.add_argument("--rate", type=int, metavar="HZ",
                   help="sample rate (default: the microphone's own)")
    r.add_argument("--take-only", action="store_true",
                   help="only record DIR/take.wav; arrange it later with 'hum2band arrange'")
    add_arrange_options(r)
    r.add_argument("--force", action="store_true", help="replace an existing output folder")
    r.add_argument("--quiet", action="store_true", help="no level meter or progress on stderr")
    r.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")

    d = sub.add_parser("devices", help="list the microphones hum2band can record from",
                       description="List the input devices (microphones) for 'hum2band record "
                                   "--device'; the default one is marked with *.")
    d.add_argument("--json", action="store_true", help="print as JSON")


def _one(text) -> str:
    return " ".join(str(text).split())


def run_devices(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``hum2band devices``; returns the exit status."""
    from .record import list_input_devices

    try:
        devices = list_input_devices()
    except Hum2BandError as err:
        stderr.write(f"hum2band: error: {_one(err)}\n")
        if args.json:
            stdout.write(json.dumps({"ok": False, "error": _one(err), "devices": []}) + "\n")
        return EXIT_USER
    if args.json:
        stdout.write(json.dumps({"ok": True, "devices": [
            {"index": d.index, "name": d.name, "channels": d.channels,
             "default_sample_rate_hz": d.default_sample_rate_hz, "is_default": d.is_default,
             "host_api": d.host_api} for d in devices]}, indent=1) + "\n")
        return EXIT_OK
    for d in devices:
        stdout.write(f"{'*' if d.is_default else ' '} {d.index:3d}  {d.name}  "
                     f"({d.channels} ch, {d.default_sample_rate_hz:.0f} Hz, {d.host_api})\n")
    return EXIT_OK


def _kept_take_path(out: Path) -> Path:
    """A free place beside ``out`` for the take until it moves in: ``DIR-take/take.wav``.

    The file is named ``take.wav`` already, as it will be in ``DIR``, so what the arrangement
    records of it (the lead sheet's title, the piano roll's) names the file that ends up there.
    """
    folder, i = out.parent / f"{out.name}-take", 1
    while folder.exists():
        i += 1
        folder = out.parent / f"{out.name}-take-{i}"
    return folder / "take.wav"


def _repoint(value, old: str, new: str):
    """``value`` (JSON data) with every string equal to ``old`` replaced by ``new``."""
    if isinstance(value, dict):
        return {k: _repoint(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_repoint(v, old, new) for v in value]
    return new if value == old else value


def _move_take_in(take_path: Path, out: Path) -> Path:
    """Move the take into ``out/take.wav`` and point ``arrangement.json`` at it (``input``,
    ``vocal``, the melody's source): every path the outputs name exists afterwards."""
    final = out / "take.wav"
    os.replace(take_path, final)
    try:
        take_path.parent.rmdir()
    except OSError:
        pass
    arrangement = out / "arrangement.json"
    if arrangement.is_file():
        d = _repoint(json.loads(arrangement.read_text()), str(take_path), str(final))
        tmp = arrangement.with_name(f".arrangement.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(d, indent=1) + "\n")
        os.replace(tmp, arrangement)
    return final


def run_record(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``hum2band record --out DIR``; returns the exit status."""
    from ..music.meter import beats_per_bar
    from . import record as R
    from .cli_arrange import StageProgress, options_from_args
    from .common import debug_enabled, parse_meter

    out = Path(args.out)
    meter_line = None if args.quiet else stderr

    def fail(err: BaseException, internal: bool = False) -> int:
        if internal:
            if debug_enabled():
                traceback.print_exc(file=stderr)
            stderr.write(f"hum2band: internal error: {_one(err)} ({type(err).__name__}; run "
                         "with HUM2BAND_DEBUG=1 for the traceback)\n")
        else:
            stderr.write(f"hum2band: error: {_one(err)}\n")
        if args.json:
            stdout.write(json.dumps({"ok": False, "error": _one(err)}) + "\n")
        return EXIT_INTERNAL if internal else EXIT_USER

    try:
        meter = parse_meter(args.meter) if args.meter else None
        meter_beats = beats_per_bar(meter) if meter else 4
        count_in = args.count_in
        if count_in is None:
            count_in = meter_beats if args.tempo is not None else 0
        if not args.take_only:
            options_from_args(args)  # style, tempo, key, ... checked before the microphone opens
        if out.exists() and not out.is_dir():
            raise OptionError(f"{out} is a file: --out takes a folder")
        if out.exists() and not args.force:
            raise OptionError(f"{out} already exists: add --force to replace it, or choose "
                              "another --out")
        if args.latency_ms is not None and args.calibrate:
            raise OptionError("give --latency-ms or --calibrate, not both")
        latency_s = None if args.latency_ms is None else args.latency_ms / 1000.0
        if args.calibrate:
            m = R.measure_latency(args.device, args.output_device, args.rate)
            latency_s = m.latency_s
            if meter_line is not None:
                meter_line.write(f"latency: {m.latency_s * 1000:.1f} ms round trip (the system "
                                 f"reports {m.reported_latency_s * 1000:.1f} ms)\n")
        # The arrangement replaces DIR as a whole, so the take waits beside it (DIR-take/take.wav)
        # and moves in once the arrangement is written; if arranging fails it stays there.
        take_path = out / "take.wav" if args.take_only else _kept_take_path(out)
        take = R.record_take(
            take_path, seconds=args.seconds, device=args.device, sample_rate_hz=args.rate,
            bpm=args.tempo, count_in_beats=count_in, click=args.click, meter_beats=meter_beats,
            level_meter=meter_line, latency_s=latency_s, output_device=args.output_device,
            max_seconds=float(args.max_minutes) * 60.0, shown_path=out / "take.wav",
        )
    except Hum2BandError as err:
        return fail(err)
    for note in R.take_warnings(take):
        stderr.write(f"hum2band: warning: {note}\n")
    if args.take_only:
        if args.json:
            stdout.write(json.dumps({"ok": True, "take": take.to_json()}, indent=1) + "\n")
        return EXIT_OK

    args.first_downbeat_s = take.first_downbeat_s
    prog = StageProgress(out.name, stderr, not args.quiet)
    try:
        from ..pipeline import arrange_to_folder

        summary = arrange_to_folder(take_path, out, options_from_args(args), force=args.force,
                                    progress=prog)
        final = _move_take_in(take_path, out)
        take = dataclasses.replace(take, path=str(final))
        summary = _repoint(summary, str(take_path), str(final))
    except Exception as err:  # noqa: BLE001 - one line, and say where the take is
        prog.abandon()
        kept = take_path if take_path.exists() else None
        where = (f"; your take is kept in {kept}: 'hum2band arrange {kept} --out {out}' tries "
                 "again" if kept else "")
        if isinstance(err, Hum2BandError):
            return fail(OptionError(f"{_one(err)}{where}") if where else err)
        return fail(RuntimeError(f"{_one(err)}{where}"), internal=True)
    prog.done(f"{summary['style']}, {summary['key']}, {summary['tempo_bpm']:.0f} bpm "
              f"{summary['meter']}, {summary['bars']} bars, {', '.join(summary['parts'])} "
              f"-> {out}")
    if args.json:
        stdout.write(json.dumps({"ok": True, "take": take.to_json(), **summary}, indent=1) + "\n")
    return EXIT_OK
