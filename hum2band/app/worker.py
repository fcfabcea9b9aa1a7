"""``hum2band worker --queue redis://HOST:PORT/N``: arrange takes from the job queue.

Run any number of these, on any machines that reach Redis; ``hum2band serve --queue`` and
``hum2band arrange --queue`` put takes on the queue (see :mod:`hum2band.app.queue` and
``docs/queue.md``). A worker is an RQ worker: it imports the arranger once, then forks a work
horse per take, so a crash in one take fails (and retries) only that take. It beats a heartbeat
into Redis every second; a job started on a worker whose heartbeat stopped is retried once on
another worker, then failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import TextIO

from ..errors import Hum2BandError, OptionError
from .common import EXIT_OK, EXIT_USER

#: Modules a worker imports before it takes jobs, so every work horse starts warm.
PRELOAD = ("hum2band.pipeline", "hum2band.listen.transcription",
           "hum2band.compose.harmony.harmonize", "hum2band.compose.parts.accompany",
           "hum2band.perform.render", "hum2band.perform.export")


def add_worker_parser(sub) -> None:
    """Add ``worker`` to the sub-command parsers ``sub``."""
    w = sub.add_parser(
        "worker", help="arrange takes from a job queue (for 'serve --queue' and 'arrange --queue')",
        description="Take jobs from the Redis queue that 'hum2band serve --queue' or 'hum2band "
                    "arrange --queue' fill and arrange them; run as many as you like, on any "
                    "machines that reach Redis. Nothing but Redis is shared: no folder.")
    w.add_argument("--queue", required=True, metavar="URL",
                   help="the job queue, like redis://localhost:6379/0")
    w.add_argument("--work-dir", metavar="DIR",
                   help="this worker's own folder for takes while they are arranged (default: "
                        "the system's temporary folder)")
    w.add_argument("--name", metavar="NAME",
                   help="the worker's name in logs (default: HOST.PID.RANDOM)")
    w.add_argument("--arranger", metavar="MODULE:FUNCTION", help=argparse.SUPPRESS)  # tests
    w.add_argument("--burst", action="store_true",
                   help="stop when the queue is empty instead of waiting for more takes")


def _heartbeat(conn, name: str, stop: threading.Event) -> None:
    """Keep ``hum2band:alive:NAME`` alive; hand back jobs of workers that stopped beating."""
    from .queue import ALIVE_KEY, ALIVE_TTL_S, HEARTBEAT_S, reap_dead_workers

    log = logging.getLogger("hum2band.worker")
    beats = 0
    while not stop.is_set():
        try:
            conn.set(ALIVE_KEY.format(name), os.getpid(), ex=ALIVE_TTL_S)
            if beats % 3 == 0:
                reap_dead_workers(conn)
        except Exception as error:  # noqa: BLE001 - the heartbeat keeps trying
            log.warning("heartbeat: %s", " ".join(str(error).split()))
        beats += 1
        stop.wait(HEARTBEAT_S)
    try:
        conn.delete(ALIVE_KEY.format(name))
    except Exception:  # noqa: BLE001 - Redis may be gone already
        pass


def run_worker(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``hum2band worker``; returns the exit status."""
    import importlib

    from .queue import QUEUE_NAME, WORK_DIR_ENV, connect, redis_module

    try:
        conn = connect(args.queue)
        _, rq = redis_module()
        if args.work_dir:
            work = Path(args.work_dir)
            if work.exists() and not work.is_dir():
                raise OptionError(f"--work-dir {work} is a file: give a folder")
            work.mkdir(parents=True, exist_ok=True)
            os.environ[WORK_DIR_ENV] = str(work.resolve())
    except Hum2BandError as error:
        stderr.write(f"hum2band: error: {' '.join(str(error).split())}\n")
        return EXIT_USER
    except OSError as error:
        stderr.write(f"hum2band: error: cannot use --work-dir {args.work_dir} "
                     f"({error.strerror or error}): choose another folder\n")
        return EXIT_USER
    if args.arranger:
        from .queue import ARRANGER_ENV, load_arranger

        os.environ[ARRANGER_ENV] = args.arranger
        load_arranger()  # imported once here, so every work horse starts warm
    else:
        for module in PRELOAD:
            importlib.import_module(module)
    name = args.name or f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"
    logging.basicConfig(level=logging.WARNING, stream=stderr,
                        format="hum2band worker: %(levelname)s: %(message)s")
    worker = rq.Worker([rq.Queue(QUEUE_NAME, connection=conn)], connection=conn, name=name,
                       maintenance_interval=30)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(conn, name, stop), daemon=True,
                            name="hum2band-heartbeat")
    beat.start()
    stderr.write(f"hum2band: worker {name} takes jobs from {args.queue} (Ctrl+C to stop)\n")
    stderr.flush()
    try:
        worker.work(burst=args.burst, logging_level="WARNING", with_scheduler=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        beat.join(5)
    return EXIT_OK


def main(argv=None) -> int:
    """``python -m hum2band.app.worker --queue URL``."""
    parser = argparse.ArgumentParser(prog="hum2band worker")
    sub = parser.add_subparsers(dest="command")
    add_worker_parser(sub)
    args = parser.parse_args(["worker", *(sys.argv[1:] if argv is None else argv)])
    return run_worker(args, sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
