"""The web app's jobs on a Redis job queue (``hum2band serve --queue redis://HOST:PORT/N``).

:class:`RedisJobQueue` is a :class:`~hum2band.app.serve.jobs.JobQueue` whose takes are arranged by
``hum2band worker`` processes elsewhere instead of in the server's own child processes: the
server accepts and checks uploads, puts each on the queue (:func:`hum2band.app.queue.submit`),
follows it, and once it is done pulls its files out of Redis into the job's folder here and
serves them as before. The server and the workers share no folder. Everything else holds as with
the embedded pool: unguessable ids, ``max_active``, expiry, ``max_kept``, the disk budget, and
arranging a done take again from its kept upload.

One thread watches the server's active jobs (every ``poll_s``) and, every second, hands jobs of
workers that stopped beating back to the queue (:func:`hum2band.app.queue.reap_dead_workers`), so
a job whose worker died is retried once on another and otherwise failed, never left running.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ...errors import Hum2BandError
from ..queue import connect, fetch_result, forget, reap_dead_workers, statuses, submit
from .jobs import QUEUED, RUNNING, UPLOADING, Job, JobQueue, QueueUnavailable

log = logging.getLogger(__name__)


class RedisJobQueue(JobQueue):
    """Jobs arranged by ``hum2band worker`` processes through Redis.

    Parameters
    ----------
    url : str
        ``redis://HOST:PORT/N``.
    root : str or Path, optional
        The server's own folder for uploads and fetched results (see :class:`JobQueue`).
    poll_s : float
        Seconds between two looks at the active jobs in Redis.
    **limits
        ``max_active``, ``ttl_s``, ``max_kept``, ``max_disk_bytes``, ``job_timeout_s``,
        ``sweep_s``, as for :class:`JobQueue`.

    Raises
    ------
    OptionError
        Nothing answers at ``url``.
    """

    def __init__(self, url: str, root: str | os.PathLike | None = None, *, poll_s: float = 0.3,
                 **limits: Any):
        self.url = url
        self.conn = connect(url)
        self.poll_s = float(poll_s)
        limits.pop("workers", None)
        limits.pop("isolation", None)
        super().__init__(None, root, workers=1, isolation="thread", **limits)
        self.counts.update(retried=0, lost=0)

    # ---- client side --------------------------------------------------------------------------
    def start(self, job: Job, input_path: str | os.PathLike, options: Any) -> None:
        """Put a reserved job whose upload was accepted on the queue (blocking: run it in a
        thread from async code).

        Raises
        ------
        QueueUnavailable
            Redis did not answer.
        """
        with self._lock:
            if self._jobs.get(job.id) is not job or job.state != UPLOADING:
                raise ValueError(f"job {job.id} is not waiting for its upload")
        path = Path(input_path)
        try:
            submit(self.conn, job.id, path.name, path.read_bytes(), options,
                   job_timeout_s=self.job_timeout_s, keep_s=self.ttl_s)
        except Exception as error:  # noqa: BLE001 - redis errors and the like, in one line
            log.error("enqueueing %s failed: %s", job.id, error)
            raise QueueUnavailable("the job queue does not answer: try again in a minute") from None
        with self._lock:
            job.input_path = path
            job.options = options
            job.state = QUEUED
            job.stage = "waiting for the band"
            self.counts["accepted"] += 1

    def position(self, job: Job) -> int:
        with self._lock:
            return job.queue_position if job.state == QUEUED else 0

    # ---- following the jobs -------------------------------------------------------------------
    def _work(self) -> None:
        last_reap_s = 0.0
        while not self._closing.wait(self.poll_s):
            try:
                self._watch()
                if time.monotonic() - last_reap_s >= 1.0:
                    last_reap_s = time.monotonic()
                    reap_dead_workers(self.conn)
            except Exception:  # noqa: BLE001 - the watcher must keep going (Redis may be back)
                log.exception("watching the job queue failed")

    def _watch(self) -> None:
        with self._lock:
            active = [j for j in self._jobs.values() if j.state in (QUEUED, RUNNING)]
        if not active:
            return
        found = statuses(self.conn, [j.id for j in active])
        for job in active:
            status = found[job.id]
            with self._lock:
                if status.retried and not job.retried:
                    job.retried = True
                    self.counts["retried"] += 1
                if status.state == "queued":
                    job.queue_position = status.position
                    if job.state == RUNNING:  # handed back after its worker died
                        job.state, job.stage, job.fraction = QUEUED, status.stage, 0.0
                    continue
                if status.state == "running":
                    if job.state == QUEUED:
                        job.state, job.started_s = RUNNING, time.time()
                    job.stage, job.fraction = status.stage, status.fraction
                    continue
                if not job.started_s:
                    job.started_s = time.time()
            if status.state == "done":
                try:
                    fetch_result(self.conn, job.id, job.out_dir)
                except Hum2BandError as error:
                    self._finish(job, str(error), internal=True)
                else:
                    self._finish(job, "")
                continue
            forget(self.conn, job.id)
            if status.state == "lost":
                with self._lock:
                    self.counts["lost"] += 1
            self._finish(job, status.message, internal=status.internal)

    def close(self) -> None:
        """Stop watching; the server's unfinished takes are taken off the queue's store."""
        with self._lock:
            active = [j.id for j in self._jobs.values() if j.state in (QUEUED, RUNNING)]
        for job_id in active:
            try:
                forget(self.conn, job_id)
            except Exception:  # noqa: BLE001 - Redis may be gone already
                pass
        super().close()
