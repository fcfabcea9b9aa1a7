"""Benchmark: ``hum2band serve`` under a burst of uploads.

Starts the server (``python -m hum2band.app.serve``, the real arranger in its job processes) on a
free loopback port, sends ``--uploads`` (default 20) uploads of the shipped examples at once, and
follows every accepted take to the end. It reports, per upload, whether the take was arranged,
failed, or was told to try again (HTTP 503 "busy, try again", with Retry-After), then whether the
server stayed up (it still answers ``/api/health`` and its process is alive), and memory: the
server process's own peak RSS (VmHWM) and the peak RSS of the server with its job processes
(sampled every 0.2 s over the whole process tree).

Run: ``.venv/bin/python benchmarks/serve_load.py [--uploads 20] [--max-active 4]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
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


def one_upload(port: int, outcome: Outcome, start: threading.Event, timeout_s: float) -> None:
    body = (ROOT / "examples" / outcome.example).read_bytes()
    start.wait()
    t0 = time.monotonic()
    try:
        status, headers, data = request(
            port, "POST", f"/api/jobs?filename={outcome.example}&style={STYLE_OF.get(outcome.example, 'pop')}",
            body)
    except OSError as error:
        outcome.outcome, outcome.message = "error", f"{type(error).__name__}: {error}"
        outcome.total_s = time.monotonic() - t0
        return
    outcome.http_status = status
    outcome.upload_s = time.monotonic() - t0
    if status == 503:
        outcome.outcome = "retry"
        outcome.retry_after_s = headers.get("retry-after", "")
        outcome.message = data.get("error", "")
        outcome.total_s = outcome.upload_s
        return
    if status != 202:
        outcome.outcome, outcome.message = "refused", data.get("error", str(data))
        outcome.total_s = outcome.upload_s
        return
    url = data["status_url"]
    deadline = t0 + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            code, _, job = request(port, "GET", url)
        except OSError as error:
            outcome.outcome, outcome.message = "error", f"lost the server: {error}"
            break
        if code != 200:
            outcome.outcome, outcome.message = "error", job.get("error", f"HTTP {code}")
            break
        if job["state"] in ("done", "failed"):
            outcome.outcome = job["state"]
            outcome.message = job.get("error", "") if job["state"] == "failed" else \
                f"{len(job.get('stems', []))} stems, {len(job.get('chords', []))} chords"
            break
    else:
        outcome.outcome, outcome.message = "error", f"not finished after {timeout_s:.0f} s"
    outcome.total_s = time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=20, help="uploads sent at once (default 20)")
    parser.add_argument("--max-active", type=int, default=4,
                        help="the server's --max-active (default 4, as hum2band serve)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds to wait for all takes (default 900)")
    args = parser.parse_args(argv)

    port = free_port()
    jobs_dir = tempfile.mkdtemp(prefix="hum2band-serve-load-")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_path = Path(jobs_dir).parent / (Path(jobs_dir).name + ".log")
    log = open(log_path, "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "hum2band.app.serve", "--port", str(port), "--jobs-dir", jobs_dir,
         "--max-active", str(args.max_active)], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request(port, "GET", "/api/health", timeout_s=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
            if server.poll() is not None:
                print(log_path.read_text())
                print("the server did not start", file=sys.stderr)
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
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(jobs_dir, ignore_errors=True)

    print(f"{'#':>3}  {'example':<20} {'HTTP':>4}  {'outcome':<8} {'upload_s':>8} "
          f"{'total_s':>8}  message")
    for o in outcomes:
        extra = f" (Retry-After {o.retry_after_s} s)" if o.retry_after_s else ""
        print(f"{o.index:>3}  {o.example:<20} {o.http_status or '-':>4}  {o.outcome:<8} "
              f"{o.upload_s:8.2f} {o.total_s:8.2f}  {(o.message + extra)[:110]}")
    count = {k: sum(o.outcome == k for o in outcomes)
             for k in ("done", "failed", "retry", "refused", "error")}
    print()
    print(f"uploads: {len(outcomes)} at once; finished {count['done']}, failed {count['failed']}, "
          f"told to retry {count['retry']}, refused {count['refused']}, errors {count['error']}; "
          f"wall {wall_s:.1f} s")
    print(f"server stayed up: {'yes' if alive and code == 200 else 'NO'} "
          f"(process alive: {alive}, /api/health: HTTP {code}); server counts: "
          f"{health.get('counts')}")
    print(f"server peak RSS: {server_peak_kb / 1024:.0f} MB (VmHWM of the server process); "
          f"peak RSS with its job processes: {peak_tree_kb[0] / 1024:.0f} MB (sampled)")
    print(f"server log: {log_path}")
    ok = alive and code == 200 and count["error"] == 0 and count["done"] + count["retry"] + \
        count["failed"] == len(outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
