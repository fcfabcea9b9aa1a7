"""``hum2band arrange``, ``hum2band styles`` and ``hum2band render``: the band commands.

The same rules as the rest of the command line (see :mod:`hum2band.app.cli`): options are checked
before anything is decoded, every error is one line with exit status 2, outputs appear complete
or not at all, and an existing output folder is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import traceback
from pathlib import Path
from typing import TextIO

from ..errors import Hum2BandError, InputError, OptionError
from .common import EXIT_INTERNAL, EXIT_OK, EXIT_USER, Progress


def add_arrange_options(p: argparse.ArgumentParser) -> None:
    """The options ``arrange`` and ``record`` share."""
    p.add_argument("--style", default="pop", metavar="STYLE",
                   help="pop, rock, ballad, folk, country, swing, jazz-ballad, bossa nova, latin, funk, "
                        "reggae or waltz; 'hum2band styles' describes them (default: %(default)s)")
    p.add_argument("--tempo", "--bpm", dest="tempo", type=float, metavar="BPM",
                   help="the tempo you meant, beats per minute (default: from the take)")
    p.add_argument("--meter", metavar="N/D", help="4/4, 3/4 or 6/8 (default: from the take)")
    p.add_argument("--key", metavar="KEY", help="the key you meant, like 'A minor' or 'Eb' (default: from the take)")
    p.add_argument("--chords", metavar="CHART",
                   help="lock the chords, one bar per '|': \"C | Am | F G | C\" (common symbols or Harte "
                        "like A:min7); bars after the chart are harmonized by the model")
    p.add_argument("--seed", type=int, default=0, help="same seed, same band (default: 0)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="how adventurous the parts are, 0 = the model's most likely parts (default: 0.6)")
    p.add_argument("--bars", metavar="A-B", help="with --from: regenerate bars A to B (1-based) and keep the rest")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="an earlier output folder, for --bars or --section")
    p.add_argument("--form", metavar="'A A B A'",
                   help="name the song's sections (equal lengths); default: found from the melody")
    p.add_argument("--section", type=int, metavar="N",
                   help="with --from: regenerate section N (1-based, see 'sections' in arrangement.json)")
    p.add_argument("--intro", type=int, default=0, metavar="BARS",
                   help="bars the band plays before you come in (0-8, default: 0)")
    p.add_argument("--soundfont", metavar="PATH", help="any SF2/SF3 file (default: FluidR3_GM, else TimGM6mb)")
    p.add_argument("--vocal-level", type=float, default=0.0, metavar="DB",
                   help="your voice against the band in dB (default 0: the band sits 6 LU under "
                        "your voice, whatever level you recorded at)")
    p.add_argument("--no-vocal", action="store_true", help="leave your take out of the mix and the stems")
    p.add_argument("--melody-instrument", metavar="NAME",
                   help="double your melody with a General MIDI instrument (flute, violin, 73, ...)")
    p.add_argument("--pitch-backend", default="default", metavar="NAME", help="pitch tracker for audio takes")
    p.add_argument("--max-minutes", type=float, default=15.0, metavar="MIN",
                   help="refuse takes longer than this (default: %(default)g minutes)")


def add_bar_fix_options(p: argparse.ArgumentParser) -> None:
    """``--downbeat`` and ``--pickup``: move the bar lines when the take's were read wrong."""
    p.add_argument("--downbeat", type=float, metavar="SECONDS", dest="downbeat_s",
                   help="a time in the take at which a bar starts, e.g. 1.25: the bar lines go "
                        "through it (default: found from the take)")
    p.add_argument("--pickup", type=float, metavar="BEATS", dest="pickup_beats",
                   help="beats you sing before the first bar line, e.g. 1 or 0.5 (0: the first "
                        "note is on bar 1; default: found from the take)")


def add_arrange_parser(sub) -> None:
    a = sub.add_parser(
        "arrange", help="turn a take (or a MIDI/MusicXML melody) into a band with your voice on top",
        description="Arrange sung takes (any audio format) or MIDI/MusicXML melodies for a band in a "
                    "style: DIR gets mix.wav, stems/, arrangement.mid, leadsheet.musicxml, pianoroll.png "
                    "and arrangement.json (several inputs: one subfolder each).")
    a.add_argument("inputs", nargs="+", metavar="INPUT", help="audio take(s), or .mid/.musicxml melodies")
    a.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_arrange_options(a)
    add_bar_fix_options(a)
    a.add_argument("--force", action="store_true", help="replace an existing output folder")
    a.add_argument("--quiet", action="store_true", help="no progress on stderr")
    a.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    a.add_argument("--queue", metavar="URL",
                   help="arrange on 'hum2band worker' processes through this Redis job queue, "
                        "like redis://localhost:6379/0, all inputs at once (see docs/queue.md)")

    s = sub.add_parser("styles", help="list the styles: description, parts, meters",
                       description="List the styles hum2band plays, with their parts and meters.")
    s.add_argument("--json", action="store_true", help="print as JSON")

    r = sub.add_parser(
        "render", help="render an arrangement.mid (edited in a DAW) to a mix and stems",
        description="Render a (possibly edited) arrangement.mid: DIR gets mix.wav, stems/ and "
                    "arrangement.json. Tracks become parts; the track named 'Melody' is the melody.")
    r.add_argument("midi", metavar="ARRANGEMENT.mid")
    r.add_argument("--vocal", metavar="INPUT", help="the take to put back on top (any audio format)")
    r.add_argument("--out", required=True, metavar="DIR")
    r.add_argument("--soundfont", metavar="PATH")
    r.add_argument("--vocal-level", type=float, default=0.0, metavar="DB")
    r.add_argument("--style", default="", metavar="STYLE", help="style name to record in arrangement.json")
    r.add_argument("--force", action="store_true")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--json", action="store_true")


def parse_bars(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", text)
    if not m:
        raise OptionError(f"--bars '{text}' is not a bar range: give e.g. 9-16")
    a = int(m.group(1))
    z = int(m.group(2) or a)
    return a, z


def options_from_args(args: argparse.Namespace):
    """:class:`hum2band.pipeline.ArrangeOptions` from parsed arguments (checked)."""
    from ..pipeline import ArrangeOptions
    from .common import parse_meter

    meter = parse_meter(args.meter) if args.meter else None
    return ArrangeOptions(
        style=args.style, tempo_bpm=args.tempo, meter=meter, key=args.key, chords=args.chords,
        seed=args.seed, temperature=args.temperature, bars=parse_bars(args.bars),
        from_dir=args.from_dir, form=getattr(args, "form", None), section=getattr(args, "section", None),
        intro_bars=args.intro, soundfont=args.soundfont,
        vocal_level_db=args.vocal_level, no_vocal=args.no_vocal,
        melody_instrument=args.melody_instrument, pitch_backend=args.pitch_backend,
        max_minutes=args.max_minutes,
        first_downbeat_s=getattr(args, "first_downbeat_s", None),
        downbeat_s=getattr(args, "downbeat_s", None),
        pickup_beats=getattr(args, "pickup_beats", None),
    ).checked()


class StageProgress(Progress):
    """:class:`hum2band.app.common.Progress` for the pipeline's ``progress(stage, fraction)`` calls:
    ``memo.m4a: transcribe… chords… parts… arrange… render… export… done: ...``, each stage
    shown once, when it starts."""

    def __call__(self, stage: str, fraction: float = 0.0) -> None:
        if fraction > 0 or (self.stages and self.stages[-1] == stage):
            return
        super().__call__(stage)

    def done(self, text: str) -> None:
        self.finish(f"done: {text}\n")


def _one(text) -> str:
    return " ".join(str(text).split())


def run_arrange(args: argparse.Namespace, stdout: TextIO, stderr: TextIO, inputs=None) -> int:
    """``hum2band arrange INPUT... --out DIR``; returns the exit status."""
    from ..pipeline import arrange_to_folder
    from ..music.styles import get_style
    from .common import debug_enabled, parse_meter, readings_hint, tempi_hint, unique_names

    inputs = [Path(p) for p in (inputs if inputs is not None else args.inputs)]
    out = Path(args.out)
    try:
        opts = options_from_args(args)
        if out.exists() and not out.is_dir():
            raise OptionError(f"{out} is a file: --out takes a folder")
        several = len(inputs) > 1
        if several and opts.bars is not None:
            raise OptionError("--bars regenerates one arrangement: give one input")
        targets = [out / n for n in unique_names(inputs)] if several else [out]
        for src, dest in zip(inputs, targets):
            if not src.is_file():
                if several:
                    continue
                raise InputError(f"can't find '{src}': check the path and the file name")
            if dest.exists() and not args.force:
                raise OptionError(f"{dest} already exists: add --force to replace it, or choose another --out")
        if getattr(args, "queue", None):
            from .queue import run_arrange_queued

            return run_arrange_queued(args, inputs, targets, opts, stdout, stderr)
    except Hum2BandError as err:
        stderr.write(f"hum2band: error: {_one(err)}\n")
        if args.json:
            stdout.write(json.dumps({"ok": False, "error": _one(err), "results": []}) + "\n")
        return EXIT_USER
    results, internal = [], False
    for src, dest in zip(inputs, targets):
        label = src.name
        prog = StageProgress(label, stderr, not args.quiet)
        t0 = time.perf_counter()
        try:
            if not src.is_file():
                raise InputError(f"can't find '{src}': check the path and the file name")
            summary = arrange_to_folder(src, dest, opts, force=args.force, progress=prog)
        except Hum2BandError as err:
            prog.abandon()
            msg = _one(err) if label in str(err) else f"{label}: {_one(err)}"
            stderr.write(f"hum2band: error: {msg}\n")
            results.append({"input": str(src), "ok": False, "error": msg})
            continue
        except Exception as err:  # noqa: BLE001 - one line, never a traceback
            prog.abandon()
            if debug_enabled():
                traceback.print_exc(file=stderr)
            stderr.write(f"hum2band: internal error: {label}: {_one(err)} ({type(err).__name__}; "
                         "run with HUM2BAND_DEBUG=1 for the traceback)\n")
            results.append({"input": str(src), "ok": False, "error": _one(err)})
            internal = True
            continue
        elapsed = time.perf_counter() - t0
        prog.done(f"{summary['style']}, {summary['key']}, {summary['tempo_bpm']:.0f} bpm "
                  f"{summary['meter']}, {summary['bars']} bars, {', '.join(summary['parts'])} -> {dest} "
                  f"in {elapsed:.1f} s")
        meter = parse_meter(summary["meter"])
        if not args.quiet and len(inputs) == 1:  # one input: lines ready to paste
            for hint in (readings_hint(summary.get("other_readings", ()), meter),
                         tempi_hint(summary.get("other_tempi", ()), meter, summary["tempo_bpm"],
                                    get_style(summary["style"]).meters)):
                if hint:
                    stderr.write(f"{label}: {hint}\n")
        results.append({"input": str(src), "ok": True, **summary, "elapsed_s": round(elapsed, 3)})
    ok = all(r["ok"] for r in results)
    if args.json:
        stdout.write(json.dumps({"ok": ok, "results": results}, indent=1) + "\n")
    if ok:
        return EXIT_OK
    return EXIT_INTERNAL if internal else EXIT_USER


def run_styles(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from ..music.styles import all_styles

    styles = all_styles()
    if args.json:
        stdout.write(json.dumps([{"name": s.name, "description": s.description, "parts": list(s.parts),
                                  "meters": [f"{n}/{d}" for n, d in s.meters],
                                  "chords_per_bar": s.chords_per_bar, "feel": s.feel} for s in styles],
                                indent=1) + "\n")
        return EXIT_OK
    width = max(len(s.name) for s in styles)
    for s in styles:
        meters = ", ".join(f"{n}/{d}" for n, d in s.meters)
        stdout.write(f"{s.name:<{width}}  {s.description}\n{'':<{width}}  parts: {', '.join(s.parts)}; "
                     f"meters: {meters}; feel: {s.feel}\n")
    return EXIT_OK


def run_render(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``hum2band render ARRANGEMENT.mid [--vocal INPUT] --out DIR``."""
    from ..files.staging import staged_folder
    from ..music.arrangement import Arrangement
    from ..perform.render import render_arrangement, write_mix, write_stems
    from ..perform.soundfonts import find_soundfont
    from .common import debug_enabled

    out = Path(args.out)
    t0 = time.perf_counter()
    try:
        src = Path(args.midi)
        if not src.is_file():
            raise InputError(f"can't find '{src}': check the path and the file name")
        if args.vocal and not Path(args.vocal).is_file():
            raise InputError(f"can't find the vocal take '{args.vocal}'")
        if not -40.0 <= args.vocal_level <= 20.0:
            raise OptionError(f"--vocal-level must be between -40 and +20 dB, not {args.vocal_level}")
        if out.exists() and not args.force:
            raise OptionError(f"{out} already exists: add --force to replace it, or choose another --out")
        font = find_soundfont(args.soundfont)
        duration = None
        if args.vocal:
            from ..files.audio import probe_duration_s

            duration = probe_duration_s(args.vocal)
        arrangement = Arrangement.from_midi(src, vocal_path=args.vocal, duration_s=duration, style=args.style)
        if not arrangement.parts:
            raise InputError(f"{src.name} has no band tracks to render")
        mix = render_arrangement(arrangement, font, vocal=bool(args.vocal), vocal_level_db=args.vocal_level,
                                 workers=2)
        with staged_folder(out, replace=args.force) as tmp:
            write_mix(tmp / "mix.wav", mix)
            stems = write_stems(tmp / "stems", mix)
            arrangement.write_json(tmp / "arrangement.json", {k: f"stems/{p.name}" for k, p in stems.items()})
    except Hum2BandError as err:
        stderr.write(f"hum2band: error: {_one(err)}\n")
        return EXIT_USER
    except Exception as err:  # noqa: BLE001
        if debug_enabled():
            traceback.print_exc(file=stderr)
        stderr.write(f"hum2band: internal error: {_one(err)} ({type(err).__name__})\n")
        return EXIT_INTERNAL
    summary = {"out": str(out), "parts": [p.name for p in arrangement.parts],
               "duration_s": round(mix.mix.shape[0] / mix.sample_rate_hz, 3),
               "elapsed_s": round(time.perf_counter() - t0, 3)}
    if not args.quiet:
        stderr.write(f"{src.name}: rendered {', '.join(summary['parts'])} -> {out} in {summary['elapsed_s']:.1f} s\n")
    if args.json:
        stdout.write(json.dumps({"ok": True, **summary}) + "\n")
    return EXIT_OK
