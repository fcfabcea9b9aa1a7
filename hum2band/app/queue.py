"""The job queue that lets ``hum2band serve`` and ``hum2band arrange`` grow past one machine.

``hum2band serve --queue redis://HOST:PORT/N`` and ``hum2band arrange --queue ...`` put takes on
an `RQ <https://python-rq.org>`_ queue in Redis; ``hum2band worker --queue ...`` processes, on any
number of machines, arrange them (see ``docs/queue.md`` for why RQ). Nothing is shared between
them but Redis: no folder.

What travels through Redis (all keys expire on their own)
---------------------------------------------------------
``hum2band:upload:ID``   the take as uploaded (bytes), until the job is finished
``rq:job:ID``            RQ's job: :func:`run_job` with the file's name and the ``ArrangeOptions``;
                         its ``meta`` carries the arranger's progress (stage, fraction)
``hum2band:result:ID``   the output folder as a ZIP (stored), until the client fetched it
``hum2band:alive:NAME``  a worker's heartbeat, renewed every second, gone ``ALIVE_TTL_S`` after
                         the worker stopped

``ID`` is the job id the client made (``secrets.token_urlsafe(16)``, unguessable).

A worker that dies
------------------
Each job is enqueued with one retry (``Retry(max=1)``). RQ itself notices a dead worker only a
minute after its last heartbeat, and only when another worker runs its maintenance; so every
client and worker also runs :func:`reap_dead_workers` every second or so: a job that RQ counts
as started on a worker whose ``hum2band:alive`` key is gone is handed to RQ's own clean-up at
once, which enqueues it again if it has its retry left (another worker takes it) and otherwise
fails it. The arranger's own errors (a take with no singing, say) are results, never retried.
A job's work horse dies with its worker (``PR_SET_PDEATHSIG``), so a retried job never runs
twice at once.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..errors import Hum2BandError, OptionError

log = logging.getLogger(__name__)

#: The RQ queue's name.
QUEUE_NAME = "hum2band"
UPLOAD_KEY = "hum2band:upload:{}"
RESULT_KEY = "hum2band:result:{}"
ALIVE_KEY = "hum2band:alive:{}"
#: Seconds a worker's heartbeat key lives; a worker silent this long counts as dead.
ALIVE_TTL_S = 10
#: Seconds between two heartbeats of a worker.
HEARTBEAT_S = 1.0
#: Seconds between two progress updates a job writes into Redis.
PROGRESS_EVERY_S = 0.5
#: Environment variable with a worker's own working folder (its horses make temp folders there).
WORK_DIR_ENV = "HUM2BAND_WORK_DIR"


@dataclass(frozen=True)
class JobOutcome:
    """What :func:`run_job` returns (stored by RQ as the job's result).

    Attributes
    ----------
    ok : bool
        The take was arranged and its files are in ``hum2band:result:ID``.
    message : str
        One line for the user when not ``ok``.
    internal : bool
        The failure is our bug rather than the take's.
    worker : str
        The worker that ran it.
    """

    ok: bool
    message: str = ""
    internal: bool = False
    worker: str = ""


def redis_module():
    """``redis`` and ``rq``, imported; a one-line :class:`OptionError` when missing."""
    try:
        import redis
        import rq
    except ImportError as error:
        raise OptionError(f"--queue needs the Python packages redis and rq ({error}): run "
                          "'make setup'") from None
    return redis, rq


def connect(url: str):
    """A Redis connection for ``redis://HOST:PORT/N`` (``rediss://`` and a password work too).

    Raises
    ------
    OptionError
        The URL is not a Redis URL, or nothing answers there (one line saying what to do).
    """
    redis, _ = redis_module()
    parts = urlsplit(url or "")
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise OptionError(f"--queue '{url}' is not a Redis URL: give one like "
                          "redis://localhost:6379/0")
    try:
        conn = redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        conn.ping()
    except (redis.exceptions.RedisError, ValueError, OSError) as error:
        port = f":{parts.port}" if parts.port else ""
        shown = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"  # no password
        raise OptionError(f"cannot reach the job queue at {shown} ({one_line(error)}): start "
                          "redis-server there, or check --queue") from None
    return conn


def rq_queue(conn):
    """The RQ queue on ``conn``."""
    _, rq = redis_module()
    return rq.Queue(QUEUE_NAME, connection=conn)


def one_line(text) -> str:
    return " ".join(str(text).split())


# ---- the client side ---------------------------------------------------------------------------
def submit(conn, job_id: str, input_name: str, data: bytes, options: Any, *,
           job_timeout_s: float, keep_s: float) -> None:
    """Put one take on the queue: its bytes into ``hum2band:upload:ID``, then the RQ job.

    Parameters
    ----------
    job_id : str
        An unguessable id (``secrets.token_urlsafe(16)``).
    input_name : str
        The file name the worker gives the take (its extension says the container; its stem is
        the lead sheet's title).
    data : bytes
        The take.
    options : ArrangeOptions
        For the arranger.
    job_timeout_s : float
        A job running longer is stopped and failed.
    keep_s : float
        How long Redis keeps what is left of the job (its result until fetched, its record).
    """
    _, rq = redis_module()
    queue = rq_queue(conn)
    # the upload lives until the job could have waited, run twice and been fetched
    upload_ttl_s = int(3 * job_timeout_s + keep_s)
    conn.set(UPLOAD_KEY.format(job_id), data, ex=upload_ttl_s)
    queue.enqueue_call("hum2band.app.queue.run_job", args=(job_id, input_name, options),
                       job_id=job_id, timeout=int(job_timeout_s), result_ttl=int(keep_s),
                       failure_ttl=int(keep_s), ttl=upload_ttl_s,
                       retry=rq.Retry(max=1), meta={"stage": "", "fraction": 0.0},
                       description=f"arrange {input_name}")


@dataclass
class QueueStatus:
    """A job as the queue sees it (see :func:`status`).

    Attributes
    ----------
    state : str
        "queued", "running", "done", "failed" or "lost" (Redis no longer knows the job).
    stage : str
    fraction : float
    message : str
        One line when failed.
    internal : bool
    retried : bool
        The job was started again after its worker died.
    position : int
        Takes ahead of it in the line (queued only).
    """

    state: str
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    internal: bool = False
    retried: bool = False
    position: int = 0


def statuses(conn, job_ids: list[str]) -> dict[str, QueueStatus]:
    """The state of each job in ``job_ids``, from Redis, in one round trip per kind."""
    _, rq = redis_module()
    from rq.job import Job, JobStatus

    out: dict[str, QueueStatus] = {}
    if not job_ids:
        return out
    queue = rq_queue(conn)
    waiting = queue.get_job_ids()
    running = len(queue.started_job_registry)
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=conn)):
        if job is None:
            out[job_id] = QueueStatus("lost", message="the job queue lost this take (Redis "
                                      "was emptied or restarted): upload it again",
                                      internal=True)
            continue
        meta = job.meta or {}
        retried = job.retries_left is not None and job.retries_left < 1
        state = job.get_status(refresh=False)
        if state == JobStatus.FINISHED:
            result = job.return_value()
            if isinstance(result, JobOutcome) and result.ok:
                out[job_id] = QueueStatus("done", "done", 1.0, retried=retried)
            elif isinstance(result, JobOutcome):
                out[job_id] = QueueStatus("failed", message=result.message,
                                          internal=result.internal, retried=retried)
            else:
                out[job_id] = QueueStatus("failed", message="internal error: the worker "
                                          "returned nothing usable", internal=True)
        elif state in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            out[job_id] = QueueStatus("failed", message=_failure_message(job), internal=True,
                                      retried=retried)
        elif state == JobStatus.STARTED:
            out[job_id] = QueueStatus("running", str(meta.get("stage") or "starting"),
                                      float(meta.get("fraction") or 0.0), retried=retried)
        else:  # queued, scheduled, deferred, created
            try:
                ahead = waiting.index(job_id)
            except ValueError:
                ahead = len(waiting)
            out[job_id] = QueueStatus("queued", "waiting for the band", retried=retried,
                                      position=ahead + running)
    return out


def _failure_message(job) -> str:
    """One line for a job RQ failed: its worker died (twice), or a time limit."""
    try:
        result = job.latest_result()
        text = result.exc_string if result is not None else ""
    except Exception:  # noqa: BLE001 - only for the wording
        text = ""
    text = text or ""
    if "JobTimeoutException" in text or "timeout" in text.lower():
        return ("arranging took longer than this server's time limit and was stopped: try a "
                "shorter take")
    return ("internal error: the worker arranging this take stopped, and so did the one that "
            "tried again: try again later, or try a shorter take")


def fetch_result(conn, job_id: str, out_dir: Path, exist_ok: bool = False) -> None:
    """Unpack ``hum2band:result:ID`` into ``out_dir`` (made; must not exist unless
    ``exist_ok``) and delete it and the upload from Redis.

    Only plain relative paths are unpacked (no ``..``, no absolute names, no links).

    Raises
    ------
    Hum2BandError
        The result is gone from Redis.
    """
    data = conn.get(RESULT_KEY.format(job_id))
    if data is None:
        raise Hum2BandError("the arranged files are gone from the job queue (expired): "
                            "arrange the take again")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=exist_ok)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = info.filename
            parts = Path(name).parts
            if (info.is_dir() or name.startswith("/") or ".." in parts or not parts
                    or (info.external_attr >> 16) & 0o170000 == 0o120000):
                continue
            target = out_dir.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                while True:
                    block = source.read(1 << 20)
                    if not block:
                        break
                    sink.write(block)
    forget(conn, job_id)


def forget(conn, job_id: str) -> None:
    """Delete a job's upload and result from Redis (RQ's own record expires by itself)."""
    conn.delete(UPLOAD_KEY.format(job_id), RESULT_KEY.format(job_id))


def reap_dead_workers(conn) -> list[str]:
    """Hand jobs started on workers that stopped beating to RQ's clean-up now.

    RQ retries such a job if it has its retry left (another worker takes it) and fails it
    otherwise. Returns the ids of the jobs handed over.
    """
    from rq.job import Job

    queue = rq_queue(conn)
    registry = queue.started_job_registry
    entries = conn.zrange(registry.key, 0, -1)
    if not entries:
        return []
    dead: list[tuple[bytes, str]] = []
    for entry in entries:
        job_id = entry.decode().split(":", 1)[0]
        job = Job.fetch_many([job_id], connection=conn)[0]
        if job is None or not job.worker_name:
            continue
        if not conn.exists(ALIVE_KEY.format(job.worker_name)):
            dead.append((entry, job_id))
    if not dead:
        return []
    for entry, job_id in dead:
        conn.zadd(registry.key, {entry: 1}, xx=True)  # expired as of 1970: cleaned up next
    registry.cleanup()
    log.warning("jobs whose worker stopped, handed back to the queue: %s",
                ", ".join(job_id for _, job_id in dead))
    return [job_id for _, job_id in dead]


# ---- the worker side ---------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Ask Linux to kill this process (a job's work horse) when its worker dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the worker died before we got here
        os._exit(1)


class _Progress:
    """Writes the arranger's progress into the RQ job's ``meta``, at most every half second."""

    def __init__(self, job) -> None:
        self.job = job
        self.last_s = 0.0

    def __call__(self, stage: str, fraction: float = 0.0) -> None:
        if self.job is None:
            return
        now_s = time.monotonic()
        try:
            value = min(max(float(fraction), 0.0), 1.0)
        except (TypeError, ValueError):
            value = 0.0
        if now_s - self.last_s < PROGRESS_EVERY_S and stage == self.job.meta.get("stage"):
            return
        self.last_s = now_s
        self.job.meta.update(stage=str(stage), fraction=value)
        try:
            self.job.save_meta()
        except Exception:  # noqa: BLE001 - progress is best effort
            pass


def zip_folder(folder: Path) -> bytes:
    """The files under ``folder`` (regular files only) as a stored ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def run_job(job_id: str, input_name: str, options: Any,
            arrange: Callable[..., Any] | None = None) -> JobOutcome:
    """Arrange one queued take (runs in a worker's work horse).

    Reads the take from ``hum2band:upload:ID``, arranges it in a temporary folder under the
    worker's own working folder, and stores the output folder as a ZIP in
    ``hum2band:result:ID``. The arranger's errors become a failed :class:`JobOutcome` (one line,
    paths replaced by the file's name), never an exception, so RQ retries only a worker that
    died.
    """
    _die_with_parent()
    from rq import get_current_job
    from rq.timeouts import JobTimeoutException

    job = get_current_job()
    conn = job.connection
    worker = job.worker_name or socket.gethostname()
    data = conn.get(UPLOAD_KEY.format(job_id))
    if data is None:
        return JobOutcome(False, "the take expired in the job queue before a worker was free: "
                                 "upload it again", False, worker)
    if arrange is None:
        arrange = load_arranger()
    work_dir = os.environ.get(WORK_DIR_ENV) or None
    if work_dir:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    safe_name = Path(input_name).name or "take.audio"
    with tempfile.TemporaryDirectory(prefix="hum2band-job-", dir=work_dir) as tmp:
        input_path = Path(tmp) / "in" / safe_name
        input_path.parent.mkdir()
        input_path.write_bytes(data)
        del data
        out_dir = Path(tmp) / "out"
        try:
            arrange(str(input_path), str(out_dir), options, force=True, progress=_Progress(job))
            _name_files_by_name(out_dir / "arrangement.json", input_path, safe_name)
            conn.set(RESULT_KEY.format(job_id), zip_folder(out_dir), ex=int(job.result_ttl or 3600))
        except JobTimeoutException:
            return JobOutcome(False, f"arranging took longer than {job.timeout / 60:.3g} minutes "
                                     "and was stopped: try a shorter take", False, worker)
        except Hum2BandError as error:
            return JobOutcome(False, _clean(str(error), input_path, out_dir, tmp, safe_name),
                              False, worker)
        except Exception as error:  # noqa: BLE001 - reported as an internal error
            log.error("arranging %s failed:\n%s", job_id, traceback.format_exc())
            return JobOutcome(False, _clean(f"internal error: {type(error).__name__}: {error}",
                                            input_path, out_dir, tmp, safe_name), True, worker)
    return JobOutcome(True, "", False, worker)


#: Environment variable naming another arranger as ``module:function`` (for tests).
ARRANGER_ENV = "HUM2BAND_ARRANGER"


def load_arranger() -> Callable[..., Any]:
    """``hum2band.pipeline.arrange_to_folder``, or the ``module:function`` in ``$HUM2BAND_ARRANGER``
    (a stand-in the tests give their workers)."""
    import importlib

    spec = os.environ.get(ARRANGER_ENV, "")
    if spec:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)
    from ..pipeline import arrange_to_folder

    return arrange_to_folder


def _name_files_by_name(arrangement: Path, input_path: Path, name: str) -> None:
    """Point ``arrangement.json`` at the take by its file name: the worker's folder it names
    (``input``, ``vocal``, the melody's source) is gone once the result leaves the worker."""
    import json

    def repoint(value):
        if isinstance(value, dict):
            return {k: repoint(v) for k, v in value.items()}
        if isinstance(value, list):
            return [repoint(v) for v in value]
        return name if value == str(input_path) else value

    try:
        data = json.loads(arrangement.read_text())
    except (OSError, ValueError):
        return
    arrangement.write_text(json.dumps(repoint(data), indent=1) + "\n")


def _clean(message: str, input_path: Path, out_dir: Path, tmp: str, name: str) -> str:
    text = one_line(message).replace(str(input_path), name)
    return text.replace(str(out_dir), "the output folder").replace(tmp, "the worker's folder")


# ---- hum2band arrange --queue ------------------------------------------------------------------
@dataclass
class QueuedTake:
    """One input of ``hum2band arrange --queue`` and what became of it."""

    source: Path
    dest: Path
    job_id: str
    state: str = "queued"
    message: str = ""
    internal: bool = False
    retried: bool = False
    waited_s: float = 0.0


def arrange_on_queue(url: str, pairs: list[tuple[Path, Path]], options: Any, *, force: bool,
                     say: Callable[[str], None], job_timeout_s: float = 1200.0,
                     keep_s: float = 3600.0, poll_s: float = 0.5) -> list[QueuedTake]:
    """Arrange every ``(input, output folder)`` on the workers of the queue at ``url``.

    Every take is put on the queue at once; each output folder appears complete, or not at all,
    as its take is done (:func:`hum2band.files.staging.staged_folder`). ``say`` gets one line
    per take when it is done or failed. Ctrl-C takes the unfinished ones off the queue.

    Raises
    ------
    OptionError
        Nothing answers at ``url``.
    """
    import secrets

    from ..files.staging import staged_folder

    conn = connect(url)
    started_s = time.monotonic()
    takes = []
    for source, dest in pairs:
        take = QueuedTake(Path(source), Path(dest), secrets.token_urlsafe(16))
        submit(conn, take.job_id, take.source.name, take.source.read_bytes(), options,
               job_timeout_s=job_timeout_s, keep_s=keep_s)
        takes.append(take)
    say(f"{len(takes)} take(s) on the job queue at {url}: waiting for 'hum2band worker'")
    last_reap_s = 0.0
    try:
        while any(t.state == "queued" for t in takes):
            waiting = [t for t in takes if t.state == "queued"]
            found = statuses(conn, [t.job_id for t in waiting])
            for take in waiting:
                status = found[take.job_id]
                take.retried = take.retried or status.retried
                if status.state in ("queued", "running"):
                    continue
                take.waited_s = time.monotonic() - started_s
                if status.state == "done":
                    try:
                        with staged_folder(take.dest, replace=force) as tmp:
                            fetch_result(conn, take.job_id, tmp, exist_ok=True)
                    except Hum2BandError as error:
                        take.state, take.message = "failed", one_line(error)
                    else:
                        take.state = "done"
                        say(f"{take.source.name}: done: {_describe(take.dest)} -> {take.dest} "
                            f"after {take.waited_s:.1f} s")
                        continue
                else:
                    forget(conn, take.job_id)
                    take.state, take.message = "failed", status.message
                    take.internal = status.internal
                say(f"{take.source.name}: {take.message}")
            if time.monotonic() - last_reap_s >= 1.0:
                last_reap_s = time.monotonic()
                reap_dead_workers(conn)
            if any(t.state == "queued" for t in takes):
                time.sleep(poll_s)
    except BaseException:
        from rq.job import Job

        for take in takes:
            if take.state == "queued":
                forget(conn, take.job_id)
                try:
                    Job.fetch(take.job_id, connection=conn).cancel()
                except Exception:  # noqa: BLE001 - best effort: it expires anyway
                    pass
        raise
    return takes


def _describe(folder: Path) -> str:
    """``pop, C major, 96 bpm 4/4, 12 bars`` from an output folder's arrangement.json."""
    import json

    try:
        d = json.loads((Path(folder) / "arrangement.json").read_text())
        key = d.get("key") or {}
        if isinstance(key, dict):
            key = f"{key.get('tonic', '')} {key.get('mode', '')}".strip()
        meter = d.get("meter") or ["?", "?"]
        bars = (d.get("grid") or {}).get("n_bars", "?")
        return (f"{d.get('style')}, {key}, {float(d.get('tempo_bpm', 0)):.0f} bpm "
                f"{meter[0]}/{meter[1]}, {bars} bars")
    except (OSError, ValueError, TypeError, AttributeError):
        return "arranged"


def run_arrange_queued(args, inputs: list[Path], targets: list[Path], options: Any, stdout,
                       stderr) -> int:
    """``hum2band arrange INPUT... --out DIR --queue URL`` once its options are checked; returns
    the exit status.

    Raises
    ------
    Hum2BandError
        An option that needs this machine's files (``--from``, ``--soundfont``), or no queue.
    """
    import json

    from .common import EXIT_INTERNAL, EXIT_OK, EXIT_USER

    if options.from_dir or options.soundfont:
        raise OptionError("--from and --soundfont name files on this machine, which the workers "
                          "do not share: leave them out with --queue")
    pairs = [(src, dest) for src, dest in zip(inputs, targets)]
    missing = [src for src, _ in pairs if not src.is_file()]
    for src in missing:
        stderr.write(f"hum2band: error: can't find '{src}': check the path and the file name\n")
    pairs = [(src, dest) for src, dest in pairs if src.is_file()]

    def say(line: str) -> None:
        if not args.quiet or ": done:" not in line:
            stderr.write(f"hum2band: {line}\n")
            stderr.flush()

    takes = arrange_on_queue(args.queue, pairs, options, force=args.force, say=say)
    results = [{"input": str(src), "ok": False, "error": "not found"} for src in missing]
    results += [{"input": str(t.source), "ok": t.state == "done", "out": str(t.dest),
                 "retried": t.retried, "waited_s": round(t.waited_s, 2),
                 **({} if t.state == "done" else {"error": t.message})} for t in takes]
    ok = all(r["ok"] for r in results)
    if args.json:
        stdout.write(json.dumps({"ok": ok, "results": results}, indent=1) + "\n")
    if ok:
        return EXIT_OK
    return EXIT_INTERNAL if any(t.internal for t in takes) else EXIT_USER
