"""``hum2band serve --queue`` / ``hum2band worker`` / ``hum2band arrange --queue`` on a real Redis.

Each test module run starts its own ``redis-server`` (Debian package ``redis-server``, installed
by ``make setup``) on a free loopback port, with no persistence, and ``hum2band worker``
processes with separate working folders: they share nothing with the server but Redis. The
server runs in this process (uvicorn on a free port) and is used through its HTTP API. A missing
``redis-server`` fails these tests (it is part of the setup), it does not skip them.

The workers run a small stand-in arranger (:func:`slow_arrange`: decodes the take, writes a mix,
stems and arrangement.json, and takes ``SLOW_S`` seconds doing it) so that a worker can be killed
while it is arranging; the real arranger goes through the same code (``benchmarks/serve_load.py
--queue`` runs it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sounds import wav_bytes

ROOT = Path(__file__).resolve().parent.parent
SLOW_S = 4.0
RATE_HZ = 16000


# ---- the stand-in arranger the workers run -----------------------------------------------------
def slow_arrange(input_path, out_dir, options, force=False, progress=None):
    """Decode the take, then take ``SLOW_S`` seconds to write a mix, stems and a JSON file that
    names the worker's folder (so a test can tell which worker made it)."""
    from hum2band.files.audio import decode, write_wav

    progress = progress or (lambda stage, fraction=0.0: None)
    progress("transcribe", 0.0)
    audio = decode(input_path, sample_rate_hz=RATE_HZ, max_duration_s=None)
    steps = 8
    for i in range(steps):
        time.sleep(SLOW_S / steps)
        progress("render", (i + 1) / steps)
    out = Path(out_dir)
    (out / "stems").mkdir(parents=True, exist_ok=True)
    tone = 0.2 * np.sin(2 * np.pi * 110.0 * np.arange(audio.samples.shape[0]) / RATE_HZ)
    write_wav(out / "stems" / "bass.wav", tone, RATE_HZ)
    write_wav(out / "stems" / "vocal.wav", audio.samples, RATE_HZ)
    write_wav(out / "mix.wav", 0.5 * (tone + audio.samples), RATE_HZ)
    style = getattr(options, "style", None) or (options or {}).get("style", "")
    (out / "arrangement.json").write_text(json.dumps({
        "style": style, "tempo_bpm": 100.0, "meter": [4, 4], "key": {"tonic": "C", "mode": "major"},
        "grid": {"n_bars": 2}, "chords": [{"start": 0.0, "end": 1.0, "label": "C"}],
        "parts": [{"name": "bass", "stem": "stems/bass.wav"}],
        "worker_dir": os.environ.get("HUM2BAND_WORK_DIR", ""), "input": str(input_path)}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Redis and the workers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A private redis-server on a free port (no persistence); its URL."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: run 'make setup' (Debian/Ubuntu: apt-get "
                    "install redis-server); the job queue tests need a real Redis")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    import redis

    conn = redis.Redis(port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            conn.ping()
            break
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start: {proc.stdout.read()[-2000:]!r}")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def clean_redis(redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


class Workers:
    """``hum2band worker`` processes, each with its own working folder."""

    def __init__(self, url: str, base: Path):
        self.url, self.base = url, base
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "hum2band", "worker", "--queue", self.url, "--name", name,
             "--work-dir", str(self.base / name), "--arranger", "test_queue:slow_arrange"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        line = proc.stderr.readline()
        assert f"worker {name} takes jobs" in line, line + proc.stderr.read()
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL the worker (as a machine that dies would); its work horse dies with it."""
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def workers(clean_redis, tmp_path):
    made = Workers(clean_redis, tmp_path / "workers")
    yield made
    made.stop_all()


@pytest.fixture
def server(clean_redis, tmp_path):
    """``hum2band serve --queue`` in this process (uvicorn on a free port); yields (app, port)."""
    import uvicorn

    from hum2band.app.serve.app import ServeSettings, create_app

    settings = ServeSettings(queue_url=clean_redis, jobs_dir=str(tmp_path / "server"),
                             allowed_hosts=None, job_timeout_s=120.0)
    app = create_app(settings)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield app, port
    srv.should_exit = True
    thread.join(15)
    app.state.queue.close()


def call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body,
                       headers={"content-type": "application/octet-stream"} if body else {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {}
    return response.status, parsed, data


def upload(port: int, seconds: float = 2.0, name: str = "take.wav") -> str:
    from urllib.parse import quote

    status, body, _ = call(port, "POST", f"/api/jobs?filename={quote(name)}&style=rock",
                           wav_bytes(seconds))
    assert status == 202, body
    return body["id"]


def wait_state(port: int, job_id: str, states, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    body = {}
    while time.monotonic() < deadline:
        _, body, _ = call(port, "GET", f"/api/jobs/{job_id}")
        if body.get("state") in states:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {body}")


def redis_keys(url: str) -> list[str]:
    import redis

    return sorted(k.decode() for k in redis.Redis.from_url(url).keys("hum2band:*")
                  if not k.startswith(b"hum2band:alive:"))


def worker_of(url: str, job_id: str) -> str:
    import redis
    from rq.job import Job

    return Job.fetch(job_id, connection=redis.Redis.from_url(url)).worker_name


# ---- the tests ---------------------------------------------------------------------------------
def test_upload_is_arranged_by_a_worker_with_no_shared_folder(server, workers, clean_redis,
                                                              tmp_path):
    app, port = server
    workers.start("w1")
    job_id = upload(port, name="my take.wav")
    assert len(job_id) >= 22  # unguessable, as with the embedded pool
    running = wait_state(port, job_id, ("running", "done"), 30)
    assert running["state"] in ("running", "done")
    done = wait_state(port, job_id, ("done", "failed"), 60)
    assert done["state"] == "done", done
    assert done["stems"] and "mix.wav" in done["files"] and done["style"] == "rock"
    status, _, mix = call(port, "GET", done["files"]["mix.wav"])
    assert status == 200 and mix[:4] == b"RIFF"
    job = app.state.queue.get(job_id)
    data = json.loads((job.out_dir / "arrangement.json").read_text())
    # arranged in the worker's own folder, from a copy that came through Redis
    assert data["worker_dir"] == str((tmp_path / "workers" / "w1").resolve())
    assert data["input"] == "my_take.wav"  # by name: the worker's folder is gone
    assert not str(job.folder).startswith(data["worker_dir"])
    assert list((tmp_path / "workers" / "w1").iterdir()) == []  # the worker keeps nothing
    assert redis_keys(clean_redis) == []  # the upload and the result left Redis
    # arranged again from the upload the server kept, through the queue
    status, body, _ = call(port, "POST", f"/api/jobs/{job_id}/again?style=folk&tempo_bpm=90")
    assert status == 202, body
    again = wait_state(port, body["id"], ("done", "failed"), 60)
    assert again["state"] == "done" and again["style"] == "folk"


def test_a_job_whose_worker_dies_completes_on_the_other(server, workers, clean_redis, tmp_path):
    app, port = server
    workers.start("w1")
    workers.start("w2")
    job_id = upload(port)
    wait_state(port, job_id, ("running",), 30)
    time.sleep(1.0)  # well into the job
    first = worker_of(clean_redis, job_id)
    other = "w2" if first == "w1" else "w1"
    workers.kill(first)
    done = wait_state(port, job_id, ("done", "failed"), 90)
    assert done["state"] == "done", done
    job = app.state.queue.get(job_id)
    data = json.loads((job.out_dir / "arrangement.json").read_text())
    assert data["worker_dir"] == str((tmp_path / "workers" / other).resolve())
    _, health, _ = call(port, "GET", "/api/health")
    assert health["counts"]["retried"] == 1 and health["counts"]["lost"] == 0
    assert health["counts"]["done"] == 1 and health["counts"]["failed"] == 0


def test_a_job_whose_workers_both_die_is_failed_not_left_running(server, workers, clean_redis):
    app, port = server
    workers.start("w1")
    workers.start("w2")
    job_id = upload(port)
    wait_state(port, job_id, ("running",), 30)
    first = worker_of(clean_redis, job_id)
    workers.kill(first)
    deadline = time.monotonic() + 60
    second = first
    while second == first and time.monotonic() < deadline:  # retried on the other worker
        time.sleep(0.2)
        body = wait_state(port, job_id, ("running", "failed", "done"), 60)
        second = worker_of(clean_redis, job_id) if body["state"] == "running" else first
    assert second != first
    workers.kill(second)
    failed = wait_state(port, job_id, ("done", "failed"), 60)
    assert failed["state"] == "failed" and failed["internal"] is True
    assert "\n" not in failed["error"] and "stopped" in failed["error"], failed
    assert redis_keys(clean_redis) == []


def test_arrange_queue_over_a_folder_of_memos(workers, clean_redis, tmp_path):
    workers.start("w1")
    workers.start("w2")
    memos = tmp_path / "memos"
    memos.mkdir()
    for i in range(3):
        (memos / f"memo{i}.wav").write_bytes(wav_bytes(1.5))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "hum2band", "arrange", *sorted(map(str, memos.iterdir())),
                           "--out", str(out), "--queue", clean_redis, "--style", "folk", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] and len(result["results"]) == 3
    dirs = set()
    for i in range(3):
        data = json.loads((out / f"memo{i}" / "arrangement.json").read_text())
        assert data["style"] == "folk" and (out / f"memo{i}" / "mix.wav").is_file()
        dirs.add(data["worker_dir"])
    assert len(dirs) == 2  # both workers took some
    lines = proc.stderr.strip().splitlines()
    assert sum(": done:" in line for line in lines) == 3, proc.stderr
    assert redis_keys(clean_redis) == []


def test_a_queue_nobody_answers_is_one_line(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for argv in (["worker", "--queue", dead],
                 ["arrange", str(ROOT / "examples" / "twinkle.wav"), "--out", str(tmp_path / "o"),
                  "--queue", dead],
                 ["serve", "--queue", dead, "--port", str(free_port())]):
        proc = subprocess.run([sys.executable, "-m", "hum2band", *argv], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach the job queue" in lines[0], proc.stderr
