"""Benchmark: ``hum2band serve`` under load, with its embedded pool and on the Redis job queue.

Burst (default): starts the server (``python -m hum2band.app.serve``, the real arranger in its job
processes) on a free loopback port, sends ``--uploads`` (default 20) uploads of the shipped
examples at once, and follows every take to the end; a client told "busy, try again" (HTTP 503)
waits the Retry-After and sends it again, as the page does. It reports, per upload, what became of
it, whether the server stayed up (it still answers ``/api/health`` and its process is alive), and
memory: the server process's own peak RSS (VmHWM) and the peak RSS of the server with its job
processes (sampled every 0.2 s over the whole process tree).

``--queue``: for each worker count in ``--workers`` (default 1,2,4) it starts a private
``redis-server``, ``hum2band serve --queue`` and that many ``hum2band worker`` processes (each
with its own working folder), and ``--clients`` (default 50) clients send ``--uploads`` (default
200) uploads between them, one after the other per client; then the same against the embedded
pool with ``--workers N``. One line per run: throughput (takes per minute), the median and 95th
percentile time from the start of an upload to its result, and counts of finished, retried
(started again after a worker died), failed and lost (never came back; must be 0).
``--kill-after S`` kills the first worker S seconds into each queue run (and starts another).

Exit status: 0 only when every take was arranged (none failed, none lost, no client error).

Run: ``.venv/bin/python benchmarks/serve_load.py [--uploads 20] [--max-active 16]``
     ``.venv/bin/python benchmarks/serve_load.py --queue [--uploads 200 --clients 50 --workers 1,2,4]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["twinkle.wav", "ode_to_joy.m4a", "row_your_boat.mp3", "amazing_grace.opus"]


@dataclass
class Outcome:
    """What happened to one upload."""

    index: int
    example: str
    http_status: int = 0
    outcome: str = ""  # "done", "failed", "retry", "refused", "error"
    upload_s: float = 0.0
    total_s: float = 0.0
    retry_after_s: str = ""
    message: str = ""
    resent: int = 0



#: A style that plays each example's meter (row_your_boat is in 6/8: folk or ballad).
STYLE_OF = {"twinkle.wav": "pop", "ode_to_joy.m4a": "rock", "amazing_grace.opus": "waltz",
            "row_your_boat.mp3": "folk"}

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None,
            timeout_s: float = 60.0) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request(method, path, body=body,
                           headers={"content-type": "application/octet-stream"} if body else {})
        response = connection.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"raw": raw[:200].decode("latin-1")}
        return response.status, dict(response.getheaders()), data
    finally:
        connection.close()


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in kB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_upload(port: int, outcome: Outcome, start: threading.Event | None, timeout_s: float) -> None:
    """Send one take and follow it to its end (as the page does: after a 503 it waits the
    Retry-After and sends the take again); fills in ``outcome``."""
    body = (ROOT / "examples" / outcome.example).read_bytes()
    if start is not None:
        start.wait()
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    style = STYLE_OF.get(outcome.example, "pop")
    while True:
        try:
            status, headers, data = request(
                port, "POST", f"/api/jobs?filename={outcome.example}&style={style}", body)
        except OSError as error:
            outcome.outcome, outcome.message = "error", f"{type(error).__name__}: {error}"
            outcome.total_s = time.monotonic() - t0
            return
        outcome.http_status = status
        outcome.upload_s = time.monotonic() - t0
        if status != 503:
            break
        outcome.resent += 1
        outcome.retry_after_s = headers.get("retry-after", "")
        wait_s = min(max(float(outcome.retry_after_s or 5), 1.0), 30.0)
        if time.monotonic() + wait_s > deadline:
            outcome.outcome, outcome.message = "error", "still busy at the time limit"
            outcome.total_s = time.monotonic() - t0
            return
        time.sleep(wait_s)
    if status != 202:
        outcome.outcome, outcome.message = "refused", data.get("error", str(data))
        outcome.total_s = outcome.upload_s
        return
    url = data["status_url"]
    while time.monotonic() < deadline:
        time.sleep(0.25)
        try:
            code, _, job = request(port, "GET", url)
        except OSError as error:
            outcome.outcome, outcome.message = "lost", f"lost the server: {error}"
            break
        if code != 200:
            outcome.outcome, outcome.message = "lost", job.get("error", f"HTTP {code}")
            break
        if job["state"] in ("done", "failed"):
            outcome.outcome = job["state"]
            outcome.message = job.get("error", "") if job["state"] == "failed" else \
                f"{len(job.get('stems', []))} stems, {len(job.get('chords', []))} chords"
            break
    else:
        outcome.outcome, outcome.message = "lost", f"not finished after {timeout_s:.0f} s"
    outcome.total_s = time.monotonic() - t0


def wait_healthy(port: int, proc: subprocess.Popen, log_path: Path, timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/api/health", timeout_s=2)[0] == 200:
                return True
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    print(log_path.read_text()[-3000:])
    print("the server did not start", file=sys.stderr)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def burst_ok(outcomes: list, alive: bool, health_code: int) -> bool:
    """The burst passed: the server stayed up and every take was arranged (a failed, refused or
    lost take, or a client error, fails the benchmark)."""
    return alive and health_code == 200 and all(o.outcome == "done" for o in outcomes)


def burst(args: argparse.Namespace) -> int:
    """The burst: ``--uploads`` at once against the embedded pool."""
    port = free_port()
    jobs_dir = tempfile.mkdtemp(prefix="hum2band-serve-load-")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_path = Path(jobs_dir).parent / (Path(jobs_dir).name + ".log")
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "hum2band.app.serve", "--port", str(port), "--jobs-dir", jobs_dir,
         "--max-active", str(args.max_active)], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        if not wait_healthy(port, server, log_path):
            return 1
        peak_tree_kb = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak_tree_kb[0] = max(peak_tree_kb[0], tree_rss_kb(server.pid))
                sampling.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        outcomes = [Outcome(i + 1, EXAMPLES[i % len(EXAMPLES)]) for i in range(args.uploads)]
        start = threading.Event()
        threads = [threading.Thread(target=one_upload, args=(port, o, start, args.timeout))
                   for o in outcomes]
        for thread in threads:
            thread.start()
        t0 = time.monotonic()
        start.set()
        for thread in threads:
            thread.join()
        wall_s = time.monotonic() - t0
        sampling.set()
        sampler.join()
        alive = server.poll() is None
        try:
            code, _, health = request(port, "GET", "/api/health", timeout_s=5)
        except OSError:
            code, health = 0, {}
        server_peak_kb = status_kb(server.pid, "VmHWM")
    finally:
        stop(server)
        log.close()
        shutil.rmtree(jobs_dir, ignore_errors=True)

    print(f"{'#':>3}  {'example':<20} {'HTTP':>4}  {'outcome':<8} {'resent':>6} {'upload_s':>8} "
          f"{'total_s':>8}  message")
    for o in outcomes:
        extra = f" (Retry-After {o.retry_after_s} s)" if o.retry_after_s else ""
        print(f"{o.index:>3}  {o.example:<20} {o.http_status or '-':>4}  {o.outcome:<8} "
              f"{o.resent:>6} {o.upload_s:8.2f} {o.total_s:8.2f}  {(o.message + extra)[:110]}")
    count = {k: sum(o.outcome == k for o in outcomes)
             for k in ("done", "failed", "refused", "lost", "error")}
    print()
    print(f"uploads: {len(outcomes)} at once; finished {count['done']}, failed {count['failed']}, "
          f"refused {count['refused']}, lost {count['lost']}, errors {count['error']}; "
          f"sent again after 'busy' {sum(o.resent for o in outcomes)} times; wall {wall_s:.1f} s")
    print(f"server stayed up: {'yes' if alive and code == 200 else 'NO'} "
          f"(process alive: {alive}, /api/health: HTTP {code}); server counts: "
          f"{health.get('counts')}")
    print(f"server peak RSS: {server_peak_kb / 1024:.0f} MB (VmHWM of the server process); "
          f"peak RSS with its job processes: {peak_tree_kb[0] / 1024:.0f} MB (sampled)")
    print(f"server log: {log_path}")
    ok = burst_ok(outcomes, alive, code)
    if not ok:
        print("FAILED: not every take was arranged (see above)", file=sys.stderr)
    return 0 if ok else 1


# ---- the job queue -------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One load run: a server with its workers, and what became of the takes."""

    mode: str
    workers: int
    outcomes: list
    wall_s: float
    counts: dict

    def line(self) -> str:
        done = [o.total_s for o in self.outcomes if o.outcome == "done"]
        n = {k: sum(o.outcome == k for o in self.outcomes)
             for k in ("done", "failed", "refused", "lost", "error")}
        per_min = 60.0 * n["done"] / self.wall_s if self.wall_s else 0.0
        med = statistics.median(done) if done else float("nan")
        p95 = percentile(done, 95) if done else float("nan")
        retried = int(self.counts.get("retried", 0))
        lost = n["lost"] + int(self.counts.get("lost", 0))
        return (f"{self.mode:<8} {self.workers:>7}  {len(self.outcomes):>7} {per_min:>10.2f} "
                f"{med:>9.1f} {p95:>9.1f}  {n['done']:>8} {retried:>7} "
                f"{n['failed'] + n['refused'] + n['error']:>6} {lost:>4}  {self.wall_s:>7.1f}")

    def ok(self) -> bool:
        lost = int(self.counts.get("lost", 0))
        return lost == 0 and all(o.outcome == "done" for o in self.outcomes)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile, linear between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def drive(port: int, uploads: int, clients: int, timeout_s: float) -> tuple[list, float]:
    """``clients`` threads send ``uploads`` takes between them, each one after the other."""
    outcomes = [Outcome(i + 1, EXAMPLES[i % len(EXAMPLES)]) for i in range(uploads)]
    todo = iter(outcomes)
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                outcome = next(todo, None)
            if outcome is None:
                return
            one_upload(port, outcome, None, timeout_s)

    threads = [threading.Thread(target=client) for _ in range(max(1, clients))]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, time.monotonic() - t0


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("serve_load: redis-server is not installed: run 'make setup'")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    conn = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            conn.ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("serve_load: redis-server did not start")


def one_run(mode: str, n_workers: int, args: argparse.Namespace) -> RunResult | None:
    """A fresh server (and Redis and workers for the queue), ``--uploads`` takes, then stop."""
    base = Path(tempfile.mkdtemp(prefix=f"hum2band-load-{mode}{n_workers}-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    port = free_port()
    log_path = base / "server.log"
    log = open(log_path, "w")
    procs: list[subprocess.Popen] = []
    try:
        command = [sys.executable, "-m", "hum2band.app.serve", "--port", str(port), "--jobs-dir",
                   str(base / "server"), "--max-active", str(max(args.clients, 1))]
        def worker(name: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "hum2band", "worker", "--queue", url, "--work-dir",
                 str(base / name), "--name", name], cwd=ROOT, env=env, stdout=log, stderr=log)

        if mode == "queue":
            redis_proc, url = start_redis(base)
            procs.append(redis_proc)
            procs.extend(worker(f"w{i + 1}") for i in range(n_workers))
            command += ["--queue", url]
        else:
            command += ["--workers", str(n_workers)]
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        procs.append(server)
        if not wait_healthy(port, server, log_path):
            return None
        killer = None
        if mode == "queue" and args.kill_after:
            def kill_one() -> None:  # a machine that dies mid-run, and a new one in its place
                procs[1].kill()
                procs.append(worker("w1-again"))

            killer = threading.Timer(args.kill_after, kill_one)
            killer.start()
        outcomes, wall_s = drive(port, args.uploads, args.clients, args.timeout)
        if killer is not None:
            killer.cancel()
        try:
            _, _, health = request(port, "GET", "/api/health", timeout_s=5)
        except OSError:
            health = {}
        return RunResult(mode, n_workers, outcomes, wall_s, health.get("counts") or {})
    finally:
        for proc in reversed(procs):
            stop(proc)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def queue_mode(args: argparse.Namespace) -> int:
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    print(f"{args.uploads} uploads from {args.clients} clients (one take after another per "
          f"client), examples {', '.join(EXAMPLES)}; this machine: {os.cpu_count()} CPUs")
    header = (f"{'mode':<8} {'workers':>7}  {'uploads':>7} {'takes/min':>10} {'median_s':>9} "
              f"{'p95_s':>9}  {'finished':>8} {'retried':>7} {'failed':>6} {'lost':>4}  "
              f"{'wall_s':>7}")
    results = []
    for n in counts:
        for mode in ("queue", "embedded"):
            if mode == "embedded" and args.no_embedded:
                continue
            result = one_run(mode, n, args)
            if result is None:
                return 1
            if not results:
                print(header, flush=True)
            results.append(result)
            print(result.line(), flush=True)
            for o in result.outcomes:
                if o.outcome != "done":
                    print(f"    #{o.index} {o.example}: {o.outcome}: {o.message[:120]}")
    ok = all(r.ok() for r in results)
    if not ok:
        print("FAILED: takes failed or were lost (see above)", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", action="store_true",
                        help="the Redis job queue against the embedded pool (see above)")
    parser.add_argument("--uploads", type=int,
                        help="takes sent (default 20 at once; with --queue 200)")
    parser.add_argument("--clients", type=int, default=50,
                        help="with --queue: clients sending them (default 50)")
    parser.add_argument("--workers", default="1,2,4",
                        help="with --queue: worker counts to run, comma-separated (default 1,2,4)")
    parser.add_argument("--kill-after", type=float, metavar="S",
                        help="with --queue: SIGKILL the first worker S seconds into each run and "
                             "start another in its place (its take must be retried, not lost)")
    parser.add_argument("--no-embedded", action="store_true",
                        help="with --queue: leave out the embedded pool's runs")
    parser.add_argument("--max-active", type=int, default=16,
                        help="the burst server's --max-active (default 16, as hum2band serve)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a take may take from upload to result (default 900; with "
                             "--queue 7200)")
    args = parser.parse_args(argv)
    if args.queue:
        args.uploads = 200 if args.uploads is None else args.uploads
        args.timeout = 7200.0 if args.timeout is None else args.timeout
        return queue_mode(args)
    args.uploads = 20 if args.uploads is None else args.uploads
    args.timeout = 900.0 if args.timeout is None else args.timeout
    return burst(args)


if __name__ == "__main__":
    raise SystemExit(main())
