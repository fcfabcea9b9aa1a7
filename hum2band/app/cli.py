"""The ``hum2band`` command line.

``hum2band transcribe INPUT [INPUT ...] --out PATH`` turns sung or hummed takes into a JSON file
(notes, tuning, beats, meter, key; see README.md for the contract) and a MIDI file on the
singer's own tempo map.

Rules the command keeps, so a musician never sees a traceback or a half-written file:

* Options are checked before any audio is decoded or any model is loaded.
* Every :class:`~hum2band.errors.Hum2BandError` becomes one line on stderr,
  ``hum2band: error: <message>``, and exit status 2; usage errors too. Anything unexpected is one
  line ``hum2band: internal error: ...`` and exit status 1 (``HUM2BAND_DEBUG=1`` adds the
  traceback).
* Outputs are written into a temporary folder next to their destination and moved into place
  with :func:`os.replace` (MIDI first, JSON last), so an output that exists is complete. An
  existing output is only replaced with ``--force``.
* With several inputs, one bad take reports its error and the others still complete; the exit
  status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import secrets
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

from .. import __version__
from ..errors import Hum2BandError, InputError, OptionError
from ..music.key import Key
from ..music.melody import Melody
from .common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USER,
    METER_TEXT,
    TEMPO_RANGE_BPM,
    Progress,
    debug_enabled,
    parse_meter,
    readings_hint,
    tempi_hint,
    unique_names,
)

#: Default for ``--max-minutes``: longer takes are refused.
DEFAULT_MAX_MINUTES = 15.0
#: Exit statuses.


# ---- argument parsing ------------------------------------------------------------------------
class UsageError(Exception):
    """Raised instead of argparse's multi-line usage message; ``str()`` is one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (and which never calls ``sys.exit``)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(f"{_one_line(message)}; see '{self.prog} --help'")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    """--force, --quiet and --json, the same for every command that writes files."""
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The full ``hum2band`` parser (sub-command ``transcribe``)."""
    parser = _Parser(
        prog="hum2band",
        description="hum2band: sing or hum a melody and get a band that follows you: a mix, stems, "
                    "MIDI and a lead sheet with chords.",
    )
    parser.add_argument("--version", action="version", version=f"hum2band {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    t = sub.add_parser(
        "transcribe",
        help="transcribe sung/hummed takes to JSON + MIDI",
        description=(
            "Transcribe sung or hummed takes (m4a, mp3, opus, ogg, wav, flac, ...) into NAME.json "
            "(notes, tuning, beats, meter, key) and NAME.mid (the notes on the singer's tempo "
            "map)."
        ),
    )
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file(s) of a sung take")
    t.add_argument(
        "--out", required=True, metavar="PATH",
        help=("where to write. One input: a directory (created), or a path ending in .json "
              "(the .mid is written beside it). Several inputs: a directory that gets one "
              "NAME.json + NAME.mid per input (NAME = input file name without extension)"),
    )
    t.add_argument(
        "--pitch-backend", default="default", metavar="NAME",
        help=(f"pitch tracker: {', '.join(_backend_names())}, or single ones joined with '+' "
              "(default: %(default)s)"),
    )
    t.add_argument("--tempo", type=float, metavar="BPM",
                   help=f"the tempo you meant, {TEMPO_RANGE_BPM[0]:.0f}-{TEMPO_RANGE_BPM[1]:.0f} "
                        "beats per minute (default: found from the take)")
    t.add_argument("--meter", metavar="N/D",
                   help=f"the meter you meant, one of {METER_TEXT} (default: found from the take)")
    t.add_argument("--key", metavar="KEY",
                   help="the key you meant, like 'A minor', 'Am', 'Eb' (default: found from the take)")
    t.add_argument("--max-minutes", type=float, default=DEFAULT_MAX_MINUTES, metavar="MIN",
                   help="refuse takes longer than this (default: %(default)g minutes)")
    from .cli_arrange import add_bar_fix_options

    add_bar_fix_options(t)
    _add_output_flags(t)

    h = sub.add_parser(
        "harmonize",
        help="write chords for MIDI or MusicXML melodies",
        description=(
            "Write chords for melodies (MIDI .mid, MusicXML .xml/.musicxml/.mxl) with the "
            "harmony model, using each file's own tempo map and time signatures: DIR/NAME.json "
            "per input (key, meter, chords with seconds, beats, Harte symbol and label)."
        ),
    )
    h.add_argument("inputs", nargs="+", metavar="MELODY", help="melody file(s)")
    h.add_argument("--out", required=True, metavar="DIR", help="directory for NAME.json files")
    h.add_argument("--style", default="pop", metavar="STYLE",
                   help="style: pop, rock, ballad, folk, country, swing, jazz-ballad, "
                        "bossa nova, latin, funk, reggae, waltz (default: %(default)s)")
    h.add_argument("--seed", type=int, default=0, help="same seed, same chords (default: 0)")
    h.add_argument("--temperature", type=float, metavar="T",
                   help="sampling temperature of each chord's colour (7th, 6th, sus, bass; the root and "
                        "major/minor are always the model's most likely): 0 = most likely, default 1")
    _add_output_flags(h)

    from .cli_arrange import add_arrange_parser
    from .cli_record import add_record_parsers
    from .cli_train import add_train_parser

    add_arrange_parser(sub)
    add_train_parser(sub)
    add_record_parsers(sub)

    from .serve import (
        add_arguments as add_serve_arguments,  # light: web libraries load on run
    )

    sv = sub.add_parser(
        "serve", help="a web page on this computer: record or drop a take, hear the band",
        description=("Serve the hum2band web app (default http://127.0.0.1:8000/): record a take "
                     "in the browser with a count-in or drop a voice memo, pick the style, play "
                     "the band with mute/solo per part, and download the mix, the stems, MIDI "
                     "and the lead sheet."))
    add_serve_arguments(sv)

    from .worker import add_worker_parser

    add_worker_parser(sub)
    return parser


# ---- option validation -----------------------------------------------------------------------
@dataclass
class TranscribeOptions:
    """Validated options for :func:`hum2band.listen.transcription.transcribe`."""

    pitch_backend: str
    tempo_bpm: float | None
    meter: tuple[int, int] | None
    key: Key | None
    max_duration_s: float
    downbeat_s: float | None = None
    pickup_beats: float | None = None

    def bar_fix(self) -> dict:
        """The bar-line fixes given (``downbeat_s``, ``pickup_beats``), as keyword arguments."""
        fix = {"downbeat_s": self.downbeat_s, "pickup_beats": self.pickup_beats}
        return {k: v for k, v in fix.items() if v is not None}


def validate_options(args: argparse.Namespace) -> TranscribeOptions:
    """Check every option value before any heavy work; raises :class:`OptionError`."""
    tempo = args.tempo
    if tempo is not None and not (TEMPO_RANGE_BPM[0] <= tempo <= TEMPO_RANGE_BPM[1]):
        raise OptionError(f"tempo {tempo:g} bpm is out of range: give a tempo between "
                          f"{TEMPO_RANGE_BPM[0]:.0f} and {TEMPO_RANGE_BPM[1]:.0f} bpm")
    meter = parse_meter(args.meter) if args.meter is not None else None
    key = Key.parse(args.key) if args.key is not None else None
    if not (args.max_minutes > 0):
        raise OptionError(f"--max-minutes {args.max_minutes:g} must be more than 0 minutes")
    backend = args.pitch_backend
    names = _backend_names()
    if backend not in names and not _is_backend_combination(backend):
        raise OptionError(f"pitch backend '{backend}' is not one I have: use one of "
                          f"{', '.join(names)}, or join single ones with '+'")
    from ..listen.bar_fix import check_bar_fix

    downbeat_s, pickup_beats = getattr(args, "downbeat_s", None), getattr(args, "pickup_beats", None)
    check_bar_fix(downbeat_s, pickup_beats, meter=meter)
    return TranscribeOptions(backend, tempo, meter, key, float(args.max_minutes) * 60.0,
                             downbeat_s, pickup_beats)


def load_transcribe():
    """The pipeline entry point, :func:`hum2band.listen.transcription.transcribe` (imported on demand)."""
    from ..listen.transcription import transcribe

    return transcribe


def _backend_names() -> tuple[str, ...]:
    from ..listen.pitch import BACKEND_NAMES

    return tuple(BACKEND_NAMES)


def _is_backend_combination(name: str) -> bool:
    """True for a '+'-joined combination the pitch stage accepts (``"pyin+basic-pitch"``)."""
    from ..listen import pitch

    if "+" not in name or not hasattr(pitch, "resolve_backend"):
        return False
    try:
        pitch.resolve_backend(name)
    except Hum2BandError:
        return False
    return True


# ---- output planning -------------------------------------------------------------------------
@dataclass
class Job:
    """One input and where its outputs go."""

    input_path: Path
    json_path: Path
    midi_path: Path
    error: Hum2BandError | None = None

    @property
    def label(self) -> str:
        return self.input_path.name


def plan_jobs(inputs: Sequence[str], out: str, force: bool) -> list[Job]:
    """Map inputs to output paths and check each job can run (input exists, output free).

    Raises :class:`OptionError` when ``--out`` cannot work at all; a problem with one input
    is stored in its :attr:`Job.error` so the others can still run.
    """
    paths = [Path(p) for p in inputs]
    out_path = Path(out)
    if out_path.suffix.lower() == ".json":
        if len(paths) > 1:
            raise OptionError(f"--out '{out}' is a .json file but you gave {len(paths)} inputs: "
                              "give a directory to --out instead")
        if out_path.is_dir():
            raise OptionError(f"--out '{out}' is a directory, not a .json file: give another "
                              "path")
        jobs = [Job(paths[0], out_path, out_path.with_suffix(".mid"))]
    else:
        if out_path.exists() and not out_path.is_dir():
            raise OptionError(f"--out '{out}' is a file, not a directory: give a directory, "
                              "or a path ending in .json for one input")
        jobs = [Job(p, out_path / f"{n}.json", out_path / f"{n}.mid")
                for p, n in zip(paths, unique_names(paths))]
    for job in jobs:
        job.error = _check_job(job, force)
    return jobs


def _check_job(job: Job, force: bool) -> Hum2BandError | None:
    p = job.input_path
    if not p.exists():
        return InputError(f"can't find '{p}': check the path and the file name")
    if p.is_dir():
        return InputError(f"'{p}' is a folder: give the audio file(s) inside it")
    if not force:
        for target in (job.json_path, job.midi_path):
            if target.exists():
                return OptionError(f"'{target}' already exists: add --force to overwrite it, "
                                   "or choose another --out")
    return None


# ---- writing ---------------------------------------------------------------------------------
def write_outputs(melody: Melody, job: Job, force: bool) -> None:
    """Write ``job``'s JSON and MIDI so that neither appears unless both are complete.

    Both files are written into a fresh hidden folder next to their destination. If the
    destination folder does not exist yet, that folder is renamed into place in one step;
    otherwise the MIDI and then the JSON are moved in with :func:`os.replace`.
    """
    dest_dir = job.json_path.parent
    whole_dir = not dest_dir.exists()
    stage_parent = dest_dir.parent if whole_dir else dest_dir
    stage_parent.mkdir(parents=True, exist_ok=True)
    stage = stage_parent / f".{(dest_dir if whole_dir else job.json_path).name}.{secrets.token_hex(4)}.hum2band-tmp"
    stage.mkdir()
    try:
        melody.write_midi(stage / job.midi_path.name)
        melody.write_json(stage / job.json_path.name)
        if whole_dir:
            try:
                os.replace(stage, dest_dir)
                return
            except OSError:  # someone created the folder meanwhile: move the files instead
                if not dest_dir.is_dir():
                    raise
        if not force:
            for target in (job.json_path, job.midi_path):
                if target.exists():
                    raise OptionError(f"'{target}' already exists: add --force to overwrite it, "
                                      "or choose another --out")
        os.replace(stage / job.midi_path.name, job.midi_path)
        os.replace(stage / job.json_path.name, job.json_path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def summary_text(melody: Melody) -> str:
    """``"42 notes, 96 bpm 4/4, A minor"``."""
    n, d = melody.rhythm.meter
    return (f"{len(melody.notes)} notes, {melody.rhythm.tempo_bpm:.0f} bpm {n}/{d}, "
            f"{melody.key.tonic} {melody.key.mode}")


# ---- main ------------------------------------------------------------------------------------
@dataclass
class Result:
    input: str
    ok: bool
    json: str | None = None
    midi: str | None = None
    error: str | None = None
    internal: bool = False
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = {"input": self.input, "ok": self.ok}
        if self.ok:
            d.update(json=self.json, midi=self.midi, **self.details)
        else:
            d["error"] = self.error
        return d


def _error_line(err: BaseException, label: str | None = None) -> str:
    msg = _one_line(str(err)) or type(err).__name__
    if label and label not in msg:
        msg = f"{label}: {msg}"
    return msg


def _internal_line(err: BaseException, label: str | None = None) -> str:
    return (f"hum2band: internal error: {_error_line(err, label)} ({type(err).__name__}; run "
            "with HUM2BAND_DEBUG=1 for the traceback)")


def run_transcribe(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``hum2band transcribe`` for parsed ``args``; returns the exit status."""
    results: list[Result] = []
    try:
        opts = validate_options(args)
        jobs = plan_jobs(args.inputs, args.out, args.force)
        if len(jobs) == 1 and jobs[0].error is not None:
            raise jobs[0].error
    except Hum2BandError as err:
        stderr.write(f"hum2band: error: {_error_line(err)}\n")
        if args.json:
            stdout.write(json.dumps({"ok": False, "error": _error_line(err), "results": []}) + "\n")
        return EXIT_USER

    transcribe = load_transcribe()

    several = len(jobs) > 1
    for job in jobs:
        label = job.label if several else None
        if job.error is not None:
            stderr.write(f"hum2band: error: {_error_line(job.error, label)}\n")
            results.append(Result(str(job.input_path), False, error=_error_line(job.error, label)))
            continue
        progress = Progress(job.label, stderr, enabled=not args.quiet)
        t0 = time.perf_counter()
        try:
            melody = transcribe(
                str(job.input_path), pitch_backend=opts.pitch_backend, tempo_bpm=opts.tempo_bpm,
                meter=opts.meter, key=opts.key, max_duration_s=opts.max_duration_s,
                progress=progress, **opts.bar_fix(),
            )
            write_outputs(melody, job, args.force)
        except Hum2BandError as err:
            progress.abandon()
            stderr.write(f"hum2band: error: {_error_line(err, label)}\n")
            results.append(Result(str(job.input_path), False, error=_error_line(err, label)))
            continue
        except Exception as err:  # noqa: BLE001 - last line of defence, reported in one line
            progress.abandon()
            if debug_enabled():
                traceback.print_exc(file=stderr)
            stderr.write(_internal_line(err, label) + "\n")
            results.append(Result(str(job.input_path), False, error=_error_line(err, label),
                                  internal=True))
            continue
        elapsed_s = time.perf_counter() - t0
        progress.done(summary_text(melody), elapsed_s)
        readings = [r.to_json() for r in melody.rhythm.other_readings]
        tempi = [r.to_json() for r in melody.rhythm.other_tempi]
        if not args.quiet and not several:  # one input: lines ready to paste
            for hint in (readings_hint(readings, melody.rhythm.meter),
                         tempi_hint(tempi, melody.rhythm.meter, melody.rhythm.tempo_bpm)):
                if hint:
                    stderr.write(f"{job.label}: {hint}\n")
        n, d = melody.rhythm.meter
        results.append(Result(
            str(job.input_path), True, json=str(job.json_path), midi=str(job.midi_path),
            details={
                "notes": len(melody.notes),
                "duration_s": round(float(melody.duration_s), 3),
                "tempo_bpm": round(float(melody.rhythm.tempo_bpm), 2),
                "meter": f"{n}/{d}",
                "key": f"{melody.key.tonic} {melody.key.mode}",
                "other_readings": readings,
                "other_tempi": tempi,
                "elapsed_s": round(elapsed_s, 3),
            },
        ))

    ok = all(r.ok for r in results)
    if args.json:
        stdout.write(json.dumps({"ok": ok, "results": [r.to_json() for r in results]},
                                indent=1) + "\n")
    if ok:
        return EXIT_OK
    return EXIT_INTERNAL if any(r.internal for r in results) else EXIT_USER


def run_harmonize(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``hum2band harmonize`` for parsed ``args``; returns the exit status."""
    from ..compose.harmony import grid as G
    from ..compose.harmony import harmonize as H

    results: list[Result] = []
    try:
        try:
            G.style_index(args.style)
        except ValueError as exc:
            raise OptionError(_one_line(str(exc))) from None
        if args.temperature is not None and not 0.0 <= args.temperature <= 3.0:
            raise OptionError(f"temperature {args.temperature} is out of range: give 0 to 3")
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise OptionError(f"{out} is a file: --out takes a directory")
        model = H.load_harmony_model()
    except Hum2BandError as err:
        stderr.write(f"hum2band: error: {_error_line(err)}\n")
        return EXIT_USER
    inputs = [Path(p) for p in args.inputs]
    for path, name in zip(inputs, unique_names(inputs)):
        dest = out / f"{name}.json"
        t0 = time.perf_counter()
        try:
            if not path.is_file():
                raise InputError(f"can't find '{path}': check the path and the file name")
            if dest.exists() and not args.force:
                raise OptionError(f"{dest} exists: pass --force to overwrite it")
            H.harmonize_file(path, out, style=args.style, seed=args.seed,
                             temperature=args.temperature, model=model, name=name)
        except Hum2BandError as err:
            stderr.write(f"hum2band: error: {_error_line(err, path.name)}\n")
            results.append(Result(str(path), False, error=_error_line(err, path.name)))
            continue
        except Exception as err:  # noqa: BLE001 - last line of defence, reported in one line
            if debug_enabled():
                traceback.print_exc(file=stderr)
            stderr.write(_internal_line(err, path.name) + "\n")
            results.append(Result(str(path), False, error=_error_line(err, path.name),
                                  internal=True))
            continue
        n_chords = len(json.loads(dest.read_text())["chords"])
        if not args.quiet:
            stderr.write(f"{path.name}: {n_chords} chords -> {dest} "
                         f"in {time.perf_counter() - t0:.1f} s\n")
        results.append(Result(str(path), True, json=str(dest), details={"chords": n_chords}))
    ok = all(r.ok for r in results)
    if args.json:
        stdout.write(json.dumps({"ok": ok, "results": [r.to_json() for r in results]},
                                indent=1) + "\n")
    if ok:
        return EXIT_OK
    return EXIT_INTERNAL if any(r.internal for r in results) else EXIT_USER


class UserLogHandler(logging.Handler):
    """Shows hum2band's own log warnings as one line each (``hum2band: warning: ...``).

    Installed on the root logger while the command runs, so other libraries' log chatter (for
    example basic-pitch listing the model runtimes it did not find) stays off the terminal;
    with ``HUM2BAND_DEBUG=1`` every library's records are shown.
    """

    def __init__(self, stream: TextIO, debug: bool):
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self.stream = stream
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        ours = record.name == "hum2band" or record.name.startswith("hum2band.")
        if not (ours or self.debug):
            return
        try:
            text = _one_line(record.getMessage())
            who = "" if ours else f"[{record.name}] "
            self.stream.write(f"hum2band: {record.levelname.lower()}: {who}{text}\n")
            self.stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


def library_prints_kept_off():
    """While a command runs, a library's own ``print`` goes nowhere (to stderr with
    ``HUM2BAND_DEBUG=1``): the command writes to the stdout it was given at the start, and a
    stray line -- pyfluidsynth says where it found libfluidsynth whenever ``$CI`` is set -- must
    not land in front of a ``--json`` summary."""
    return contextlib.redirect_stdout(sys.stderr if debug_enabled() else io.StringIO())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hum2band`` console script; returns the exit status."""
    stdout, stderr = sys.stdout, sys.stderr
    handler = UserLogHandler(stderr, debug_enabled())
    root = logging.getLogger()
    root.addHandler(handler)  # also keeps logging.basicConfig() (used by some libraries) away
    try:
        with warnings.catch_warnings():
            if not debug_enabled():
                # Library warnings (e.g. resampy's pkg_resources deprecation) mean nothing to a
                # musician and would break the one-line rule; HUM2BAND_DEBUG=1 shows them.
                warnings.simplefilter("ignore")
            args = build_parser().parse_args(argv)
            if args.command is None:
                raise UsageError("choose a command (record, arrange, transcribe, harmonize, styles, "
                                 "render, devices, serve, worker, train); see 'hum2band --help'")
            if args.command == "serve":
                from .serve import run as run_serve

                return run_serve(args, stdout, stderr)
            if args.command == "worker":
                from .worker import run_worker

                return run_worker(args, stdout, stderr)
            if args.command == "train":
                from .cli_train import run_train

                return run_train(args, stdout, stderr)
            with library_prints_kept_off():
                if args.command == "harmonize":
                    return run_harmonize(args, stdout, stderr)
                if args.command in ("record", "devices"):
                    from . import cli_record

                    run = {"record": cli_record.run_record, "devices": cli_record.run_devices}
                    return run[args.command](args, stdout, stderr)
                if args.command in ("arrange", "styles", "render"):
                    from . import cli_arrange

                    run = {"arrange": cli_arrange.run_arrange, "styles": cli_arrange.run_styles,
                           "render": cli_arrange.run_render}[args.command]
                    return run(args, stdout, stderr)
                return run_transcribe(args, stdout, stderr)
    except UsageError as err:
        stderr.write(f"hum2band: error: {err}\n")
        return EXIT_USER
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        stderr.write("hum2band: interrupted\n")
        return 130
    except BrokenPipeError:  # e.g. 'hum2band styles | head': the reader has gone, nothing to say
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter exit quiet
        except OSError:
            pass
        return EXIT_OK
    except Exception as err:  # noqa: BLE001 - anything else is our bug: one line, no traceback
        if debug_enabled():
            traceback.print_exc(file=stderr)
        stderr.write(_internal_line(err) + "\n")
        return EXIT_INTERNAL
    finally:
        root.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
