"""A small, bounded job queue for ``hum2band serve``.

Each uploaded take becomes a :class:`Job` with an unguessable id (``secrets.token_urlsafe``) and
its own folder under the queue's root::

    ROOT/JOB_ID/upload/NAME.EXT     the upload, as the browser sent it
    ROOT/JOB_ID/out/                what the arranger writes (mix.wav, stems/, ...)

Choices
-------
* Bounded: at most ``max_active`` jobs are uploading, waiting or running at once; one more is
  refused with :class:`QueueFull` (the web app turns it into "busy, try again" with HTTP 503)
  before its upload is read, so a burst of uploads costs neither disk nor memory.
* ``workers`` threads take jobs in order. With ``isolation="process"`` (the default) each job
  runs in a child process started from a warm ``forkserver`` that has already imported the
  arranger, so a crash, a runaway job (``job_timeout_s``) or a memory spike in one take cannot
  take the server down, and the server's own memory stays small. ``isolation="thread"`` runs the
  arranger in the worker thread itself (for tests and debugging).
* Disk: a done job keeps its upload (so it can be arranged again with other options without
  uploading it again, :meth:`JobQueue.again`); a failed job's folder goes at once.
* Expiry: a finished job (done or failed) is forgotten ``ttl_s`` seconds after it finished and
  its folder is deleted; at most ``max_kept`` finished jobs are kept, and their folders together
  take at most ``max_disk_bytes`` (the oldest results go first; a job that is uploading,
  waiting or running is never deleted, nor the newest result, which its user has yet to see). A sweeper thread checks every ``sweep_s`` seconds;
  :meth:`JobQueue.get` and every finished job also sweep.
* Messages: an arranger error (:class:`~hum2band.errors.Hum2BandError`) becomes the job's
  one-line ``message``; any other exception, or a child that dies, is reported as an internal
  error in one line and logged with its traceback. Server paths in messages are replaced by the
  file name the user uploaded.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_module
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...errors import Hum2BandError

log = logging.getLogger(__name__)

#: An arranger: ``arrange(input_path, out_dir, options, force=..., progress=...)``.
ArrangeFn = Callable[..., Any]

#: Job states, in order. "uploading": reserved, the upload is being read and checked.
UPLOADING, QUEUED, RUNNING, DONE, FAILED = "uploading", "queued", "running", "done", "failed"
ACTIVE_STATES = frozenset({UPLOADING, QUEUED, RUNNING})
FINISHED_STATES = frozenset({DONE, FAILED})

#: What a job id looks like (``secrets.token_urlsafe(16)`` gives 22 of these characters).
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")

#: A stem file name the server will hand out (checked against the folder's real listing too).
STEM_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.wav")


class QueueFull(Exception):
    """Too many takes are being arranged right now; ``retry_after_s`` is a hint for the client."""

    def __init__(self, active: int, retry_after_s: int):
        super().__init__(f"the band is busy with {active} other take(s): "
                         f"try again in about {retry_after_s} seconds")
        self.active = active
        self.retry_after_s = retry_after_s


class QueueUnavailable(Exception):
    """The job queue did not take the job (Redis down); ``str()`` is one line for the user."""


@dataclass
class Job:
    """One take on its way through the arranger.

    Attributes
    ----------
    id : str
        ``secrets.token_urlsafe(16)``; the only handle a client has.
    folder : Path
        The job's own folder (see the module notes).
    display_name : str
        The uploaded file's name, for messages (never used as a path).
    state : str
        One of "uploading", "queued", "running", "done", "failed".
    stage : str
        The arranger's current stage, as it reported it.
    fraction : float
        Progress 0..1 as the arranger reported it.
    message : str
        One line for the user when the job failed.
    internal : bool
        The failure is our bug rather than the take's.
    created_s, started_s, finished_s : float
        ``time.time()`` stamps (0 until reached); ``created_s`` is when its upload began.
    input_path : Path or None
        The checked upload, kept while the job is (see the module notes).
    options : object
        What the arranger is given.
    size_bytes : int
        Disk space of the job's folder, measured when it finished.
    retried : bool
        Started again after its worker died (job queue only).
    queue_position : int
        Takes ahead of it, as the job queue last said (job queue only).
    """

    id: str
    folder: Path
    display_name: str = "take"
    state: str = UPLOADING
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    internal: bool = False
    created_s: float = field(default_factory=time.time)
    started_s: float = 0.0
    finished_s: float = 0.0
    input_path: Path | None = None
    options: Any = None
    size_bytes: int = 0
    retried: bool = False
    queue_position: int = 0

    @property
    def upload_dir(self) -> Path:
        return self.folder / "upload"

    @property
    def waited_s(self) -> float:
        """Seconds from the start of the upload to the end (so far, while not finished)."""
        return (self.finished_s or time.time()) - self.created_s

    @property
    def out_dir(self) -> Path:
        return self.folder / "out"


def folder_bytes(folder: Path) -> int:
    """Disk space of the files under ``folder`` (0 if it is gone)."""
    total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                pass
    return total


def one_line(text: str) -> str:
    """Collapse whitespace so a message is a single line."""
    return " ".join(str(text).split())


def _report(arrange: ArrangeFn, input_path: str, out_dir: str, options: Any,
            send: Callable[[tuple], None]) -> None:
    """Run the arranger and describe how it went as messages passed to ``send``.

    Messages: ``("progress", stage, fraction)``, then ``("done",)`` or
    ``("error", one_line_message, internal)``.
    """
    def progress(stage: str, fraction: float = 0.0) -> None:
        try:
            value = float(fraction)
        except (TypeError, ValueError):
            value = 0.0
        send(("progress", str(stage), min(max(value, 0.0), 1.0)))

    try:
        arrange(input_path, out_dir, options, force=True, progress=progress)
    except Hum2BandError as error:
        send(("error", one_line(str(error)) or type(error).__name__, False))
    except Exception as error:  # noqa: BLE001 - reported as an internal error, with traceback
        log.error("arranging %s failed:\n%s", input_path, traceback.format_exc())
        send(("error", f"{type(error).__name__}: {one_line(str(error))}", True))
    else:
        send(("done",))


def _child_main(arrange: ArrangeFn, input_path: str, out_dir: str, options: Any, conn) -> None:
    """Entry point of a job's child process: run the arranger, report over ``conn``."""
    try:
        _report(arrange, input_path, out_dir, options, conn.send)
    finally:
        conn.close()


class JobQueue:
    """Bounded queue of arrangement jobs with worker threads and expiry.

    Parameters
    ----------
    arrange : callable
        ``arrange(input_path: str, out_dir: str, options, force: bool, progress)``; raises
        :class:`~hum2band.errors.Hum2BandError` for takes it cannot use. With process isolation it
        must be picklable (a module-level function).
    root : str or Path, optional
        Folder for job folders; a fresh temporary folder (deleted by :meth:`close`) if None.
    max_active : int
        Jobs uploading, queued or running at once; more are refused with :class:`QueueFull`.
    workers : int
        Jobs run side by side.
    ttl_s : float
        Seconds a finished job (and its files) is kept.
    max_kept : int
        Finished jobs kept at most; the oldest are deleted first.
    max_disk_bytes : int or None
        Disk space the finished jobs' folders may take together; past it the oldest go first
        (None: no budget).
    job_timeout_s : float
        A job running longer is stopped and failed (process isolation only).
    isolation : {"process", "thread"}
        Where the arranger runs (see the module notes).
    start_method : str
        multiprocessing start method for process isolation ("forkserver", "spawn" or "fork").
    preload : sequence of str
        Modules the forkserver imports once, so each job starts warm.
    sweep_s : float, optional
        Seconds between expiry sweeps (default: ``ttl_s / 4``, between 0.05 and 60).
    """

    def __init__(self, arrange: ArrangeFn, root: str | os.PathLike | None = None, *,
                 max_active: int = 4, workers: int = 1, ttl_s: float = 3600.0,
                 max_kept: int = 50, max_disk_bytes: int | None = None,
                 job_timeout_s: float = 1200.0,
                 isolation: str = "process", start_method: str = "forkserver",
                 preload: tuple[str, ...] = (), sweep_s: float | None = None):
        if isolation not in ("process", "thread"):
            raise ValueError(f"isolation must be 'process' or 'thread', not {isolation!r}")
        if max_active < 1 or workers < 1:
            raise ValueError("max_active and workers must be at least 1")
        self.arrange = arrange
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="hum2band-serve-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_active = int(max_active)
        self.ttl_s = float(ttl_s)
        self.max_kept = int(max_kept)
        self.max_disk_bytes = None if max_disk_bytes is None else int(max_disk_bytes)
        self.job_timeout_s = float(job_timeout_s)
        self.isolation = isolation
        self.workers = int(workers)
        self.sweep_s = float(sweep_s) if sweep_s is not None else min(max(self.ttl_s / 4, 0.05), 60.0)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._sweep_lock = threading.Lock()
        self._pending: queue_module.Queue = queue_module.Queue()
        self._closing = threading.Event()
        self._children: dict[str, Any] = {}
        self.counts = {"accepted": 0, "refused_busy": 0, "done": 0, "failed": 0, "expired": 0,
                       "over_budget": 0}
        self._mp = None
        if isolation == "process":
            self._mp = multiprocessing.get_context(start_method)
            if start_method == "forkserver" and preload:
                self._mp.set_forkserver_preload(list(preload))
        self._threads = [threading.Thread(target=self._work, name=f"hum2band-job-{i}", daemon=True)
                         for i in range(int(workers))]
        self._threads.append(threading.Thread(target=self._sweep_loop, name="hum2band-expiry",
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    # ---- client side --------------------------------------------------------------------------
    def reserve(self, display_name: str = "take") -> Job:
        """A new job in state "uploading", with its folders made.

        Raises
        ------
        QueueFull
            ``max_active`` jobs are already uploading, waiting or running.
        """
        with self._lock:
            active = sum(job.state in ACTIVE_STATES for job in self._jobs.values())
            if active >= self.max_active or self._closing.is_set():
                self.counts["refused_busy"] += 1
                raise QueueFull(active, self._retry_hint_s(active))
            job_id = secrets.token_urlsafe(16)
            while job_id in self._jobs:  # pragma: no cover - 128 random bits
                job_id = secrets.token_urlsafe(16)
            job = Job(job_id, self.root / job_id, display_name=display_name)
            job.upload_dir.mkdir(parents=True)
            self._jobs[job_id] = job
        return job

    def _retry_hint_s(self, active: int) -> int:
        """Seconds to suggest before trying again: the mean job time so far, else 30 s."""
        times = [j.finished_s - j.started_s for j in self._jobs.values()
                 if j.state == DONE and j.started_s]
        per_job_s = sum(times) / len(times) if times else 30.0
        return int(min(max(per_job_s * active / self.workers, 5.0), 600.0))

    def start(self, job: Job, input_path: str | os.PathLike, options: Any) -> None:
        """Queue a reserved job whose upload was accepted."""
        with self._lock:
            if self._jobs.get(job.id) is not job or job.state != UPLOADING:
                raise ValueError(f"job {job.id} is not waiting for its upload")
            job.input_path = Path(input_path)
            job.options = options
            job.state = QUEUED
            job.stage = "waiting for the band"
            self.counts["accepted"] += 1
        self._pending.put(job)

    def again(self, job: Job, options: Any) -> Job:
        """A new job for the upload of a done ``job``, arranged with other ``options``.

        The upload is linked (or copied) into the new job's own folder, so either can expire
        first.

        Raises
        ------
        QueueFull
            ``max_active`` jobs are already uploading, waiting or running.
        ValueError
            ``job`` is not done, or its upload is gone.
        """
        source = job.input_path
        if job.state != DONE or source is None or not source.is_file():
            raise ValueError("that take is no longer kept: upload it again")
        new = self.reserve(job.display_name)
        try:
            target = new.upload_dir / source.name
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            self.start(new, target, options)
        except BaseException:
            self.discard(new)
            raise
        return new

    def discard(self, job: Job) -> None:
        """Forget a reserved job whose upload was refused, and delete its folder."""
        with self._lock:
            if self._jobs.get(job.id) is job:
                del self._jobs[job.id]
        shutil.rmtree(job.folder, ignore_errors=True)

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (never existed, expired, or malformed id)."""
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            return None
        self.sweep()
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many takes are ahead of a queued ``job``: those running and those queued before
        it (0 when it is not queued)."""
        with self._lock:
            if job.state != QUEUED:
                return 0
            return sum(j.state == RUNNING or (j.state == QUEUED and j.created_s < job.created_s)
                       for j in self._jobs.values())

    def active_count(self) -> int:
        with self._lock:
            return sum(job.state in ACTIVE_STATES for job in self._jobs.values())

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    # ---- expiry -------------------------------------------------------------------------------
    def sweep(self, now_s: float | None = None) -> list[str]:
        """Forget finished jobs past their time, beyond ``max_kept`` or over the disk budget
        (oldest first, never an active one); returns their ids."""
        now_s = time.time() if now_s is None else now_s
        # One sweep at a time, deletions included: a job that a request no longer finds has no
        # folder left either.
        with self._sweep_lock:
            return self._sweep(now_s)

    def _sweep(self, now_s: float) -> list[str]:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.state in FINISHED_STATES),
                              key=lambda j: j.finished_s)
            n_over = max(len(finished) - self.max_kept, 0)
            gone = [j for i, j in enumerate(finished)
                    if i < n_over or now_s - j.finished_s >= self.ttl_s]
            kept = [j for j in finished if j not in gone]
            n_budget = 0
            if self.max_disk_bytes is not None:
                used = sum(j.size_bytes for j in kept)
                while len(kept) > 1 and used > self.max_disk_bytes:  # the newest stays
                    oldest = kept.pop(0)
                    used -= oldest.size_bytes
                    gone.append(oldest)
                    n_budget += 1
            for job in gone:
                del self._jobs[job.id]
            self.counts["expired"] += len(gone) - n_budget
            self.counts["over_budget"] += n_budget
        for job in gone:
            shutil.rmtree(job.folder, ignore_errors=True)
        return [job.id for job in gone]

    def disk_bytes(self) -> int:
        """Disk space the finished jobs take, as measured when each finished."""
        with self._lock:
            return sum(j.size_bytes for j in self._jobs.values() if j.state in FINISHED_STATES)

    def _sweep_loop(self) -> None:
        while not self._closing.wait(self.sweep_s):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the sweeper must keep going
                log.exception("expiry sweep failed")

    # ---- workers ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._pending.get()
            if job is None:
                return
            if self._closing.is_set():
                continue
            try:
                self._run(job)
            except Exception as error:  # noqa: BLE001 - one job never stops the worker
                log.exception("job %s failed in the server", job.id)
                self._finish(job, f"internal error in the server: {type(error).__name__}: "
                                  f"{one_line(str(error))}", internal=True)

    def _run(self, job: Job) -> None:
        with self._lock:
            job.state, job.stage, job.started_s = RUNNING, "starting", time.time()
        args = (str(job.input_path), str(job.out_dir), job.options)
        outcome: list[tuple] = []

        def handle(message: tuple) -> None:
            if message[0] == "progress":
                with self._lock:
                    job.stage, job.fraction = message[1], message[2]
            else:
                outcome.append(message)

        if self.isolation == "thread":
            _report(self.arrange, *args, handle)
        else:
            self._run_child(job, args, handle, outcome)
        if not outcome:
            return  # _run_child already failed the job
        if outcome[0][0] == "done":
            self._finish(job, "")
        else:
            message = outcome[0][1].replace(str(job.input_path), job.display_name)
            message = message.replace(str(job.out_dir), "the output folder")
            message = message.replace(str(job.folder), "the take's folder")
            self._finish(job, message, internal=bool(outcome[0][2]))

    def _run_child(self, job: Job, args: tuple, handle: Callable[[tuple], None],
                   outcome: list) -> None:
        receiver, sender = self._mp.Pipe(duplex=False)
        child = self._mp.Process(target=_child_main, args=(self.arrange, *args, sender),
                                 name=f"hum2band-job-{job.id[:6]}", daemon=True)
        child.start()
        sender.close()
        with self._lock:
            self._children[job.id] = child
        deadline_s = time.monotonic() + self.job_timeout_s
        why = ""
        try:
            while True:
                if time.monotonic() > deadline_s:
                    why = (f"arranging took longer than {self.job_timeout_s / 60:.3g} minutes "
                           "and was stopped: try a shorter take")
                    break
                if self._closing.is_set():
                    why = "the server is shutting down"
                    break
                try:
                    if receiver.poll(0.2):
                        handle(receiver.recv())
                        if outcome:
                            break
                    elif not child.is_alive():
                        if receiver.poll(0):  # a last message sent just before it exited
                            continue
                        break
                except (EOFError, OSError):
                    break
        finally:
            receiver.close()
            if why or not outcome:
                child.kill()
            child.join(10)
            if child.is_alive():  # finished its work but hangs on the way out
                child.kill()
                child.join(5)
            with self._lock:
                self._children.pop(job.id, None)
        if why:
            self._finish(job, why, internal=False)
        elif not outcome:
            log.error("job %s: the arranger process died (exit code %s)", job.id, child.exitcode)
            self._finish(job, "internal error: the arranger stopped unexpectedly "
                              f"(exit code {child.exitcode}); try again, or try a shorter take",
                         internal=True)

    def _finish(self, job: Job, message: str, internal: bool = False) -> None:
        """Mark ``job`` done (no message) or failed; everything of a failed job is deleted, a
        done one keeps its upload for :meth:`again`. Then sweep (the disk budget)."""
        if message:
            shutil.rmtree(job.folder, ignore_errors=True)
        size_bytes = 0 if message else folder_bytes(job.folder)
        with self._lock:
            job.state = FAILED if message else DONE
            job.message = message
            job.internal = internal
            job.finished_s = time.time()
            job.size_bytes = size_bytes
            if not message:
                job.stage, job.fraction = "done", 1.0
            self.counts["failed" if message else "done"] += 1
        self.sweep()

    # ---- shutdown -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers and children; delete every job's folder, and the root folder if
        the queue made it."""
        self._closing.set()
        for _ in self._threads:
            self._pending.put(None)
        with self._lock:
            children = list(self._children.values())
        for child in children:
            child.kill()
        for thread in self._threads:
            thread.join(15)
        with self._lock:
            folders = [job.folder for job in self._jobs.values()]
            self._jobs.clear()
        for folder in folders:  # in a --jobs-dir given by the user, only our own job folders
            shutil.rmtree(folder, ignore_errors=True)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def list_stems(out_dir: Path) -> list[str]:
    """Stem file names the arranger wrote into ``out_dir/stems`` (only plain ``*.wav`` files with
    safe names, sorted)."""
    folder = Path(out_dir) / "stems"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if STEM_NAME_PATTERN.fullmatch(n)
                  and (folder / n).is_file() and not (folder / n).is_symlink())


class _Chunks:
    """A write-only file object that collects what is written, for streaming a zip."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.written = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(files: list[tuple[Path, str]], chunk_bytes: int = 1 << 20):
    """Yield a ZIP archive of ``files`` ((path, name in the archive), ...) piece by piece.

    The members are stored, not compressed (WAV barely compresses), and the archive is built
    while it is sent, so it never takes disk space or more than about ``chunk_bytes`` of memory.
    """
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for path, name in files:
            info = zipfile.ZipInfo.from_file(path, arcname=name)
            info.compress_type = zipfile.ZIP_STORED
            with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as member:
                while True:
                    block = source.read(chunk_bytes)
                    if not block:
                        break
                    member.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
