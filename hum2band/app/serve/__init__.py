"""``hum2band serve``: a small web app to record or drop a take and hear the band it gets.

Importing this package is light (no Starlette, no uvicorn): :func:`add_arguments` and
:func:`run` are what the ``hum2band`` command line wires in; :func:`serve` starts the server.
The app itself is :mod:`hum2band.app.serve.app`, its job queue :mod:`hum2band.app.serve.jobs`.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any, Callable, Sequence, TextIO

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def is_loopback(host: str) -> bool:
    """True for ``127.0.0.1``, ``::1``, ``localhost`` and the rest of 127.0.0.0/8."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``hum2band serve``'s options to ``parser``."""
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this computer only; "
                             "anything else lets other machines upload takes)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB",
                        help="largest upload accepted, in megabytes (default 50)")
    parser.add_argument("--max-minutes", type=float, default=5.0, metavar="MIN",
                        help="longest take accepted, in minutes (default 5; the page decodes "
                             "every stem to play it with mute/solo)")
    parser.add_argument("--keep-minutes", type=float, default=60.0, metavar="MIN",
                        help="finished takes and their files are deleted after this many minutes "
                             "(default 60)")
    parser.add_argument("--max-active", type=int, default=16, metavar="N",
                        help="takes waiting or being arranged at once; the page shows each its "
                             "place in the line; more are told to try again, which the page "
                             "does by itself (default 16)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="takes arranged side by side (default 1)")
    parser.add_argument("--max-disk-mb", type=float, default=2000.0, metavar="MB",
                        help="disk space finished takes may use together; past it the oldest "
                             "results are deleted first, never a take still being arranged "
                             "(default 2000)")
    parser.add_argument("--queue", metavar="URL",
                        help="arrange takes on 'hum2band worker' processes through this Redis "
                             "job queue, like redis://localhost:6379/0 (default: in this "
                             "server's own worker processes; see docs/queue.md)")
    parser.add_argument("--jobs-dir", metavar="DIR",
                        help="folder for the takes' files (default: a temporary folder, deleted "
                             "when the server stops)")


def settings_from_args(args: argparse.Namespace):
    """:class:`~hum2band.app.serve.app.ServeSettings` from parsed options.

    Raises
    ------
    OptionError
        A limit is not positive or the port is out of range.
    """
    from ...errors import OptionError
    from .app import ServeSettings

    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-minutes", args.max_minutes),
                        ("--keep-minutes", args.keep_minutes), ("--max-active", args.max_active),
                        ("--workers", args.workers), ("--max-disk-mb", args.max_disk_mb)):
        if not value > 0:
            raise OptionError(f"{flag} {value:g} must be more than 0")
    if not 1 <= args.port <= 65535:
        raise OptionError(f"--port {args.port} is not a port: give one from 1 to 65535")
    return ServeSettings(max_upload_bytes=int(args.max_upload_mb * 1e6),
                         max_duration_s=float(args.max_minutes) * 60.0,
                         ttl_s=float(args.keep_minutes) * 60.0, max_active=int(args.max_active),
                         workers=int(args.workers), jobs_dir=args.jobs_dir,
                         max_disk_bytes=int(args.max_disk_mb * 1e6),
                         queue_url=getattr(args, "queue", None))


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, settings=None,
          arrange: Callable[..., Any] | None = None, log_level: str = "warning",
          stderr: TextIO | None = None) -> int:
    """Run the web app until Ctrl+C; returns an exit status.

    Parameters
    ----------
    host, port : str, int
        Where to listen. A host that is not loopback gets a warning and answers to any Host
        header; a loopback one answers only to loopback names.
    settings : ServeSettings, optional
    arrange : callable, optional
        The arranger (default ``hum2band.pipeline.arrange_to_folder``, run in child processes).
    log_level : str
        uvicorn's log level (requests themselves are not logged).
    """
    import dataclasses

    import uvicorn

    from ...errors import Hum2BandError

    from .app import LOOPBACK_HOSTS, ServeSettings, create_app

    stderr = stderr or sys.stderr
    settings = settings or ServeSettings()
    if is_loopback(host):
        settings = dataclasses.replace(settings, allowed_hosts=tuple(
            sorted(set(LOOPBACK_HOSTS) | {host.strip("[]").lower()})))
    else:
        stderr.write(f"hum2band: warning: listening on {host}, not just this computer: anyone who "
                     "can reach it can upload takes and use its CPU (there is no login); use the "
                     f"default --host {DEFAULT_HOST} unless you mean it\n")
        settings = dataclasses.replace(settings, allowed_hosts=None)
    if arrange is None:
        from .app import load_arrange

        try:
            arrange = load_arrange()
        except ImportError as error:
            stderr.write(f"hum2band: error: the arranger cannot be loaded ({error}): reinstall "
                         "hum2band with 'make setup'\n")
            return 2
        if settings.isolation == "process" and not settings.preload and not settings.queue_url:
            from .app import PIPELINE_PRELOAD

            settings = dataclasses.replace(settings, preload=PIPELINE_PRELOAD)
    try:
        app = create_app(settings, arrange=arrange)
    except Hum2BandError as error:  # the job queue does not answer
        stderr.write(f"hum2band: error: {error}\n")
        return 2
    if (settings.isolation == "process" and settings.start_method == "forkserver"
            and not settings.queue_url):
        _warm_forkserver()
    shown = f"[{host}]" if ":" in host else host
    where = (f"; takes go to the workers of {settings.queue_url}" if settings.queue_url else "")
    stderr.write(f"hum2band: serving on http://{shown}:{port}/ (Ctrl+C to stop); takes are kept "
                 f"{settings.ttl_s / 60:.3g} minutes in {app.state.queue.root}{where}\n")
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                            server_header=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind
        if exc.code:
            stderr.write(f"hum2band: error: cannot listen on {host}:{port} (in use, or not an "
                         "address of this machine): pass another --port or --host\n")
            return 2
    finally:
        app.state.queue.close()
    return 0


def _warm_forkserver() -> None:
    """Start the forkserver now (it imports the arranger once), so the first take starts fast."""
    import threading
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="hum2band-forkserver",
                     daemon=True).start()


def run(args: argparse.Namespace, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """Run ``hum2band serve`` for options parsed by a parser given :func:`add_arguments`
    (``stdout`` is unused: the server writes only to ``stderr``)."""
    from ...errors import Hum2BandError

    stderr = stderr or sys.stderr
    try:
        settings = settings_from_args(args)
    except Hum2BandError as error:
        stderr.write(f"hum2band: error: {error}\n")
        return 2
    return serve(args.host, args.port, settings, stderr=stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hum2band.app.serve [options]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="hum2band serve",
                                     description="Record or drop a take in your browser and hear "
                                                 "the backing band hum2band makes for it.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
