"""``hum2band serve``: the HTTP API, the job queue and the safety rules (fast; no browser).

The arranger here is a small real one (:func:`small_arrange`): it decodes the upload with
:mod:`hum2band.files.audio` and writes every file the real pipeline writes (WAV mix and stems, MIDI,
MusicXML, PNG, JSON), so downloads, zipping and expiry are exercised on real files.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sounds import wav_bytes

import uvicorn  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hum2band.files.audio import decode, write_wav  # noqa: E402
from hum2band.errors import NoSingingError  # noqa: E402
from hum2band.app.serve import is_loopback, main as serve_main  # noqa: E402
from hum2band.app.serve.app import ServeSettings, create_app, display_name  # noqa: E402
from hum2band.perform.soundfonts import styles  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TWINKLE = ROOT / "examples" / "twinkle.wav"
ODE = ROOT / "examples" / "ode_to_joy.m4a"
RATE_HZ = 22050
SECRET = b"SECRET-UPLOAD-CONTENT"


# ---- a small real arranger ---------------------------------------------------------------------
def small_arrange(input_path, out_dir, options, force=False, progress=None):
    """Decode the take and write the pipeline's files for it (a sine band under the voice)."""
    progress = progress or (lambda stage, fraction: None)
    progress("decoding", 0.1)
    audio = decode(input_path, sample_rate_hz=RATE_HZ, max_duration_s=None)
    n = audio.samples.shape[0]
    t_s = np.arange(n) / RATE_HZ
    out = Path(out_dir)
    (out / "stems").mkdir(parents=True, exist_ok=True)
    progress("rendering", 0.5)
    bass = 0.2 * np.sin(2 * np.pi * 110.0 * t_s)
    keys = 0.1 * np.sin(2 * np.pi * 261.63 * t_s)
    write_wav(out / "stems" / "bass.wav", bass, RATE_HZ)
    write_wav(out / "stems" / "keys.wav", keys, RATE_HZ)
    write_wav(out / "stems" / "vocal.wav", audio.samples, RATE_HZ)
    mix = 0.5 * (bass + keys + audio.samples)
    write_wav(out / "mix.wav", np.stack([mix, mix], axis=1), RATE_HZ)
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    piano = pretty_midi.Instrument(program=0, name="keys")
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.0, end=1.0))
    midi.instruments.append(piano)
    midi.write(str(out / "arrangement.mid"))
    (out / "leadsheet.musicxml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="4.0"><part-list>'
        '<score-part id="P1"><part-name>Melody</part-name></score-part></part-list>'
        '<part id="P1"><measure number="1"/></part></score-partwise>\n')
    from PIL import Image

    Image.new("RGB", (64, 32), (250, 250, 250)).save(out / "pianoroll.png")
    half_s = n / RATE_HZ / 2
    (out / "arrangement.json").write_text(json.dumps({
        "tempo_bpm": 100.0, "meter": "4/4", "key": "C major",
        "chords": [{"start": 0.0, "end": half_s, "label": "C"},
                   {"start": half_s, "end": 2 * half_s, "label": "G7"}],
        "parts": [{"name": "keys", "stem": "stems/keys.wav"},
                  {"name": "bass", "stem": "stems/bass.wav"}],
        "other_readings": [{"kind": "off-beat", "downbeat_s": 0.3, "beats_later": 0.5, "margin": 0.4},
                           {"kind": "bar line", "downbeat_s": 0.6, "beats_later": -1.0, "margin": 1.5}],
        "other_tempi": [{"meter": "3/4", "tempo_bpm": 100.0, "margin": 0.8},
                        {"meter": "4/4", "tempo_bpm": 50.2, "margin": 2.0}],
        "options": options if isinstance(options, dict) else None,
    }, default=str))
    progress("done", 1.0)


def refusing_arrange(input_path, out_dir, options, force=False, progress=None):
    raise NoSingingError(f"{input_path} has no singing I can follow: sing louder")


def crashing_arrange(input_path, out_dir, options, force=False, progress=None):
    os._exit(3)  # a crash no exception handler sees (like a segfault in a native library)


def sleepy_arrange(input_path, out_dir, options, force=False, progress=None):
    progress("thinking", 0.2)
    time.sleep(30)


# ---- fixtures ----------------------------------------------------------------------------------
def make_client(tmp_path, arrange=small_arrange, **overrides):
    values = dict(isolation="thread", allowed_hosts=None, jobs_dir=str(tmp_path / "jobs"))
    values.update(overrides)
    app = create_app(ServeSettings(**values), arrange=arrange, make_options=dict)
    return app, TestClient(app)


@pytest.fixture
def served(tmp_path):
    made = []

    def make(**kwargs):
        app, client = make_client(tmp_path, **kwargs)
        made.append(app)
        return app, client

    yield make
    for app in made:
        app.state.queue.close()


def wait_for(client, job_id, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status.get("state") in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def upload(client, data: bytes, filename="take.wav", **params):
    params = {"filename": filename, **params}
    return client.post("/api/jobs", params=params, content=data,
                       headers={"content-type": "application/octet-stream"})


def is_one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and len(message) < 400


# ---- the page and the config -------------------------------------------------------------------
def test_page_static_files_and_security_headers(served):
    _, client = served()
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/static/app.js">' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_config_lists_the_catalogue_styles(served):
    _, client = served()
    config = client.get("/api/config").json()
    assert config["styles"] == styles() and config["default_style"] in config["styles"]
    assert "4/4" in config["meters"] and config["max_upload_bytes"] == 50_000_000
    # only meters some style plays are offered
    played = {m for info in config["style_info"].values() for m in info["meters"]}
    assert set(config["meters"]) <= played
    from hum2band.music.styles import get_style

    assert config["style_info"]["waltz"]["meters"] == [f"{n}/{d}" for n, d in
                                                       get_style("waltz").meters]


# ---- a take, start to finish -------------------------------------------------------------------
def test_upload_runs_to_done_and_every_download_is_served(served):
    app, client = served()
    response = upload(client, ODE.read_bytes(), filename="Ode to Joy.m4a",
                      style="Bossa-Nova", tempo_bpm="96", meter="3/4", key="Am", seed="7")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert len(job_id) >= 22 and response.json()["status_url"] == f"/api/jobs/{job_id}"
    status = wait_for(client, job_id)
    assert status["state"] == "done", status
    assert status["fraction"] == 1.0 and status["name"] == "Ode to Joy.m4a"
    assert [c["label"] for c in status["chords"]] == ["C", "G7"]
    assert status["tempo_bpm"] == 100.0 and status["meter"] == "4/4" and status["key"] == "C major"
    # stems: in the arrangement's part order, the vocal (not a part) last
    assert [s["file"] for s in status["stems"]] == ["keys.wav", "bass.wav", "vocal.wav"]
    # the options reached the arranger, checked and canonical
    job = app.state.queue.get(job_id)
    sent = json.loads((job.out_dir / "arrangement.json").read_text())["options"]
    assert sent["style"] == "bossa nova" and sent["tempo_bpm"] == 96.0 and sent["seed"] == 7
    assert sent["meter"] == [3, 4] and sent["key"] == "A minor" and sent["max_minutes"] == 5
    # the stored upload is named after its real type, not the name the browser sent
    assert job.input_path.name == "Ode_to_Joy.m4a"

    magic = {"mix.wav": (b"RIFF", "audio/wav"), "stems.zip": (b"PK\x03\x04", "application/zip"),
             "arrangement.mid": (b"MThd", "audio/midi"),
             "leadsheet.musicxml": (b"<?xml", "application/vnd.recordare.musicxml+xml"),
             "pianoroll.png": (b"\x89PNG", "image/png"),
             "arrangement.json": (b"{", "application/json")}
    assert set(status["files"]) == set(magic)
    for name, url in status["files"].items():
        got = client.get(url)
        assert got.status_code == 200, name
        assert got.content.startswith(magic[name][0]), name
        assert got.headers["content-type"].startswith(magic[name][1]), name
        assert 'filename="Ode_to_Joy-' in got.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(client.get(status["files"]["stems.zip"]).content)) as z:
        assert z.testzip() is None
        assert sorted(z.namelist()) == ["Ode_to_Joy-stems/bass.wav", "Ode_to_Joy-stems/keys.wav",
                                        "Ode_to_Joy-stems/vocal.wav"]
        assert z.read("Ode_to_Joy-stems/bass.wav") == \
            (job.out_dir / "stems" / "bass.wav").read_bytes()
    for stem in status["stems"]:
        got = client.get(stem["url"])
        assert got.status_code == 200 and got.content[:4] == b"RIFF"
        assert got.headers["content-type"] == "audio/wav"


def test_type_comes_from_the_content_not_the_name(served):
    app, client = served()
    # a real WAV called .txt is accepted ...
    response = upload(client, wav_bytes(2.0), filename="notes.txt")
    assert response.status_code == 202
    assert wait_for(client, response.json()["id"])["state"] == "done"
    # ... text, an image and random bytes called .wav are not: one line naming the user's file
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    rng = np.random.default_rng(0)
    for data in (b"hello, this is not a song\n" * 50, png.getvalue(), rng.bytes(50_000),
                 b"RIFF\x10\x00\x00\x00WAVEfmt garbage"):
        response = upload(client, data, filename="song.wav")
        assert response.status_code == 400, response.text
        message = response.json()["error"]
        assert is_one_line(message) and message.startswith("song.wav"), message
        assert str(app.state.queue.root) not in message and "take.upload" not in message
    empty = upload(client, b"", filename="song.wav")
    assert empty.status_code == 400 and "empty" in empty.json()["error"]
    # nothing of the refused uploads is left on disk
    folders = [p for p in app.state.queue.root.iterdir()]
    assert len(folders) == 1


def test_bad_upload_then_good_one_server_keeps_working(served):
    _, client = served()
    assert upload(client, b"\x00" * 1000, filename="broken.m4a").status_code == 400
    assert upload(client, ODE.read_bytes()[:2000], filename="cut.m4a").status_code == 400
    response = upload(client, TWINKLE.read_bytes(), filename="twinkle.wav")
    assert response.status_code == 202
    assert wait_for(client, response.json()["id"])["state"] == "done"
    assert client.get("/api/health").json()["ok"] is True


def test_upload_size_limit_with_and_without_content_length(served):
    app, client = served(max_upload_bytes=200_000)
    data = TWINKLE.read_bytes()
    assert len(data) > 200_000
    response = upload(client, data, filename="twinkle.wav")
    assert response.status_code == 413
    message = response.json()["error"]
    assert is_one_line(message) and "twinkle.wav" in message and "0.2 MB" in message

    def chunks():  # no Content-Length: the limit is enforced while the body streams
        for i in range(0, len(data), 32_768):
            yield data[i:i + 32_768]

    response = client.post("/api/jobs", params={"filename": "twinkle.wav"}, content=chunks())
    assert response.status_code == 413 and "0.2 MB" in response.json()["error"]
    assert list(app.state.queue.root.iterdir()) == []
    assert upload(client, wav_bytes(2.0)).status_code == 202


def test_duration_limits(served):
    _, client = served(max_duration_s=10.0, min_duration_s=1.0)
    response = upload(client, TWINKLE.read_bytes(), filename="twinkle.wav")  # 23 s
    assert response.status_code == 413
    message = response.json()["error"]
    assert is_one_line(message) and "twinkle.wav" in message and "limit" in message
    assert "--max-minutes" not in message  # a web user has no command-line flags
    short = upload(client, wav_bytes(0.3), filename="blip.wav")
    assert short.status_code == 400 and "0.3 seconds" in short.json()["error"]


def test_bad_options_are_one_line_400s(served):
    _, client = served()
    for params, needle in (({"style": "dubstep-metal"}, "dubstep-metal"),
                           ({"tempo_bpm": "fast"}, "fast"), ({"tempo_bpm": "900"}, "900"),
                           ({"meter": "5/4"}, "5/4"), ({"key": "H minor"}, "H"),
                           ({"seed": "-1"}, "seed")):
        response = upload(client, wav_bytes(2.0), **params)
        assert response.status_code == 400, params
        message = response.json()["error"]
        assert is_one_line(message) and needle in message, message


# ---- the queue ---------------------------------------------------------------------------------
def test_full_queue_says_busy_try_again(served):
    release = threading.Event()

    def held_arrange(*args, **kwargs):
        release.wait(10)
        small_arrange(*args, **kwargs)

    app, client = served(arrange=held_arrange, max_active=2)
    first = upload(client, wav_bytes(2.0))
    second = upload(client, wav_bytes(2.0))
    assert first.status_code == 202 and second.status_code == 202
    busy = upload(client, wav_bytes(2.0))
    assert busy.status_code == 503
    assert busy.json()["error"].startswith("busy, try again")
    assert int(busy.headers["retry-after"]) >= 5
    status = client.get(second.json()["status_url"]).json()
    assert status["state"] == "queued" and status["queue_position"] == 1
    release.set()
    for response in (first, second):
        assert wait_for(client, response.json()["id"])["state"] == "done"
    again = upload(client, wav_bytes(2.0))
    assert again.status_code == 202
    assert app.state.queue.counts["refused_busy"] == 1


def test_disk_budget_deletes_the_oldest_results_never_an_active_one(served):
    release = threading.Event()
    calls = []

    def held_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            release.wait(10)
        small_arrange(*args, **kwargs)

    app, client = served(arrange=held_after_two, max_disk_bytes=1, workers=1)
    first = upload(client, wav_bytes(2.0)).json()["id"]
    assert wait_for(client, first)["state"] == "done"
    # a budget of one byte keeps only the newest result: it pushes the older one out
    second = upload(client, wav_bytes(2.0)).json()["id"]
    assert wait_for(client, second)["state"] in ("done",)
    assert client.get(f"/api/jobs/{first}").status_code == 404
    assert not (app.state.queue.root / first).exists()
    running = upload(client, wav_bytes(2.0)).json()["id"]
    waiting = upload(client, wav_bytes(2.0)).json()["id"]
    app.state.queue.sweep()
    for job_id in (running, waiting):  # over budget, yet an active take is never deleted
        assert client.get(f"/api/jobs/{job_id}").json()["state"] in ("queued", "running")
        assert (app.state.queue.root / job_id).exists()
    release.set()
    assert wait_for(client, waiting, timeout_s=30)["state"] == "done"
    assert app.state.queue.counts["over_budget"] >= 2
    health = client.get("/api/health").json()
    assert health["counts"]["over_budget"] >= 2 and "disk_mb" in health


def test_waited_time_and_place_in_line(served):
    release = threading.Event()

    def held_arrange(*args, **kwargs):
        release.wait(10)
        small_arrange(*args, **kwargs)

    app, client = served(arrange=held_arrange, max_active=4)
    ids = [upload(client, wav_bytes(1.5)).json()["id"] for _ in range(3)]
    places = [client.get(f"/api/jobs/{i}").json()["queue_position"] for i in ids]
    assert places == [0, 1, 2]
    time.sleep(0.3)
    release.set()
    status = wait_for(client, ids[-1])
    # the time the user waited in all: from the upload to the result, line included
    assert status["waited_s"] >= 0.3 and status["waited_s"] >= status["elapsed_s"]


def test_arrange_again_uses_the_kept_upload(served):
    app, client = served()
    first = upload(client, TWINKLE.read_bytes(), filename="twinkle.wav", style="pop").json()["id"]
    status = wait_for(client, first)
    assert status["state"] == "done" and "first_downbeat_s" in status
    # the grid's other readings, each a bar line in the take, described for the page's buttons
    assert status["other_readings"] == [
        {"kind": "off-beat", "downbeat_s": 0.3, "words": "half a beat later"},
        {"kind": "bar line", "downbeat_s": 0.6, "words": "a beat earlier"}]
    # and the other tempi and meters it could be counted in, for the page's other buttons
    assert status["other_tempi"] == [
        {"meter": "3/4", "tempo_bpm": 100.0, "words": "in 3/4 at 100 bpm"},
        {"meter": "4/4", "tempo_bpm": 50.2, "words": "at half the tempo, 50 bpm"}]
    kept = app.state.queue.get(first).input_path
    assert kept.is_file()  # kept while the job is, for arranging again
    again = client.post(f"/api/jobs/{first}/again",
                        params={"style": "rock", "tempo_bpm": "92.5", "first_downbeat_s": "0.75"})
    assert again.status_code == 202, again.text
    second = again.json()["id"]
    assert second != first and len(second) >= 22
    done = wait_for(client, second)
    assert done["state"] == "done" and done["name"] == "twinkle.wav"
    job = app.state.queue.get(second)
    sent = json.loads((job.out_dir / "arrangement.json").read_text())["options"]
    assert sent["style"] == "rock" and sent["tempo_bpm"] == 92.5
    assert sent["first_downbeat_s"] == 0.75
    assert job.input_path.read_bytes() == kept.read_bytes()
    # Bar 1 moved without a new tempo: the bar's start goes as downbeat_s and the beats are
    # still tracked (no steady grid from a first downbeat and a tempo).
    moved = client.post(f"/api/jobs/{first}/again", params={"style": "pop", "downbeat_s": "0.4"})
    assert moved.status_code == 202, moved.text
    third = wait_for(client, moved.json()["id"])
    assert third["state"] == "done", third
    sent = json.loads((app.state.queue.get(moved.json()["id"]).out_dir / "arrangement.json").read_text())["options"]
    assert sent["downbeat_s"] == 0.4 and sent.get("first_downbeat_s") is None and sent.get("tempo_bpm") is None
    late = client.post(f"/api/jobs/{first}/again", params={"downbeat_s": "9999"})
    assert late.status_code == 400 and is_one_line(late.json()["error"])
    # a bad option, an unknown job, a cross-origin page: one-line refusals
    bad = client.post(f"/api/jobs/{first}/again", params={"tempo_bpm": "900"})
    assert bad.status_code == 400 and is_one_line(bad.json()["error"])
    assert client.post("/api/jobs/" + "x" * 22 + "/again").status_code == 404
    foreign = client.post(f"/api/jobs/{first}/again", headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403


def test_finished_jobs_expire_and_their_files_are_deleted(served):
    app, client = served(ttl_s=0.5)
    response = upload(client, wav_bytes(2.0))
    job_id = response.json()["id"]
    assert wait_for(client, job_id)["state"] == "done"
    folder = app.state.queue.root / job_id
    assert (folder / "out" / "mix.wav").is_file()
    deadline = time.monotonic() + 5
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the sweeper thread deletes it without any request
    assert not folder.exists()
    gone = client.get(f"/api/jobs/{job_id}")
    assert gone.status_code == 404 and "expired" in gone.json()["error"]
    assert client.get(f"/api/jobs/{job_id}/files/mix.wav").status_code == 404


def test_kept_jobs_are_capped(served):
    app, client = served(max_kept=2)
    ids = []
    for _ in range(3):
        ids.append(upload(client, wav_bytes(1.5)).json()["id"])
        wait_for(client, ids[-1])
    assert client.get(f"/api/jobs/{ids[0]}").status_code == 404
    assert not (app.state.queue.root / ids[0]).exists()
    assert all(client.get(f"/api/jobs/{i}").status_code == 200 for i in ids[1:])


def test_arranger_errors_fail_only_their_job(served):
    app, client = served(arrange=refusing_arrange)
    response = upload(client, wav_bytes(2.0), filename="hum.wav")
    status = wait_for(client, response.json()["id"])
    assert status["state"] == "failed" and status["internal"] is False
    assert status["error"] == "hum.wav has no singing I can follow: sing louder"
    assert client.get(f"/api/jobs/{status['id']}/files/mix.wav").status_code == 404
    assert not (app.state.queue.root / status["id"]).exists()  # nothing kept of a failed take


def test_process_isolation_survives_a_crash_and_stops_a_runaway(served):
    app, client = served(arrange=crashing_arrange, isolation="process", job_timeout_s=60.0,
                         start_method="spawn")
    queue = app.state.queue
    crashed = wait_for(client, upload(client, wav_bytes(2.0)).json()["id"], timeout_s=40)
    assert crashed["state"] == "failed" and crashed["internal"] is True
    assert "stopped unexpectedly" in crashed["error"] and "exit code 3" in crashed["error"]
    queue.arrange, queue.job_timeout_s = sleepy_arrange, 3.0
    t0 = time.monotonic()
    slow = wait_for(client, upload(client, wav_bytes(2.0)).json()["id"], timeout_s=40)
    assert slow["state"] == "failed" and "longer than" in slow["error"]
    assert time.monotonic() - t0 < 15
    queue.arrange, queue.job_timeout_s = small_arrange, 60.0
    good = wait_for(client, upload(client, wav_bytes(2.0)).json()["id"], timeout_s=40)
    assert good["state"] == "done", good


# ---- names and hosts ---------------------------------------------------------------------------
def test_unknown_and_malformed_job_ids_are_404(served):
    _, client = served()
    for job_id in ("nope", "A" * 22, "..", "%2e%2e", "A" * 200):
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 404


def test_host_header_and_cross_origin_uploads_are_refused(tmp_path):
    app = create_app(ServeSettings(isolation="thread", jobs_dir=str(tmp_path / "j")),
                     arrange=small_arrange, make_options=dict)
    try:
        local = TestClient(app, base_url="http://127.0.0.1:8000")
        assert local.get("/api/config").status_code == 200
        assert TestClient(app, base_url="http://localhost:8000").get("/").status_code == 200
        rebound = TestClient(app, base_url="http://evil.example:8000").get("/api/config")
        assert rebound.status_code == 400 and "127.0.0.1" in rebound.json()["error"]
        cross = local.post("/api/jobs", content=wav_bytes(2.0),
                           headers={"origin": "http://evil.example"})
        assert cross.status_code == 403
        same = local.post("/api/jobs", content=wav_bytes(2.0),
                          headers={"origin": "http://127.0.0.1:8000"})
        assert same.status_code == 202
    finally:
        app.state.queue.close()


def test_display_names_are_safe():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\memo 1.m4a") == "memo 1.m4a"
    assert display_name("a\nb\r<script>.wav") == "a_b__script_.wav"
    assert display_name("") == "your recording"
    assert len(display_name("x" * 500)) == 80


def test_is_loopback_and_option_checks(capsys):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert serve_main(["--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb 0 must be more than 0" in capsys.readouterr().err
    assert serve_main(["--port", "70000"]) == 2


# ---- path traversal, against the real server ---------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path):
    settings = ServeSettings(isolation="thread", jobs_dir=str(tmp_path / "jobs"))
    app = create_app(settings, arrange=small_arrange, make_options=dict)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield app, port
    server.should_exit = True
    thread.join(10)
    app.state.queue.close()


def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET with the request target sent exactly as written (no client-side normalising)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", target, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_downloads_cannot_leave_the_job_folder(live_server):
    app, port = live_server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/api/jobs?filename=take.wav", body=wav_bytes(2.0) + b"",
                       headers={"content-type": "application/octet-stream"})
    job_id = json.loads(connection.getresponse().read())["id"]
    connection.close()
    deadline = time.monotonic() + 20
    while app.state.queue.get(job_id).state != "done" and time.monotonic() < deadline:
        time.sleep(0.05)
    job = app.state.queue.get(job_id)
    assert job.state == "done"
    assert job.input_path.is_file()  # the upload is kept (for arranging again), never served
    # secrets next to and above the downloadable files
    (job.upload_dir / "secret.txt").write_bytes(SECRET)
    (job.folder / "secret.txt").write_bytes(SECRET)
    (app.state.queue.root / "secret.txt").write_bytes(SECRET)
    (job.out_dir / "secret.txt").write_bytes(SECRET)
    (job.out_dir / "stems" / "evil.wav").symlink_to(job.upload_dir / "secret.txt")
    base = f"/api/jobs/{job_id}"
    assert _raw_get(port, f"{base}/files/mix.wav")[0] == 200
    attempts = [
        f"{base}/files/../upload/secret.txt",
        f"{base}/files/..%2Fupload%2Fsecret.txt",
        f"{base}/files/%2e%2e%2fupload%2fsecret.txt",
        f"{base}/files/%2E%2E%2Fsecret.txt",
        f"{base}/files/..%252Fsecret.txt",
        f"{base}/files/..%5Csecret.txt",
        f"{base}/files/..\\secret.txt",
        f"{base}/files/secret.txt",
        f"{base}/files/upload%2Fsecret.txt",
        f"{base}/files/%2Fetc%2Fpasswd",
        f"{base}/files//etc/passwd",
        f"{base}/files/mix.wav%00.png",
        f"{base}/files/.%2Fsecret.txt",
        f"{base}/stems/..%2Fsecret.txt",
        f"{base}/stems/..%2F..%2Fupload%2Fsecret.txt",
        f"{base}/stems/%2e%2e/secret.txt",
        f"{base}/stems/evil.wav",
        f"{base}/stems/..%2Fmix.wav",
        f"{base}/stems/%2Fetc%2Fpasswd",
        f"{base}/stems/vocal.wav%00",
        f"/api/jobs/..%2F{job_id}/files/secret.txt",
        f"/api/jobs/{job_id}%2F..%2F/secret.txt",
        "/api/jobs/..%2Fsecret.txt/files/mix.wav",
        "/api/jobs/../secret.txt",
        "/static/../jobs.py",
        "/static/..%2Fjobs.py",
        "/static/%2e%2e%2fapp.py",
        "/static/%2e%2e/%2e%2e/errors.py",
        "/static/..%5Capp.py",
    ]
    for target in attempts:
        status, body = _raw_get(port, target)
        assert status in (400, 404), (target, status)
        assert SECRET not in body and b"import" not in body, target


def test_uvicorn_server_keeps_serving_after_a_bad_upload(live_server):
    app, port = live_server
    for body, expect in ((b"not audio at all" * 100, 400), (wav_bytes(2.0), 202)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/api/jobs?filename=x.wav", body=body)
        response = connection.getresponse()
        assert response.status == expect, response.read()
        connection.close()


def test_serve_warns_off_loopback_and_reports_a_busy_port(tmp_path, monkeypatch):
    from hum2band.app.serve import serve

    seen = []

    def fake_run(server, *args, **kwargs):
        seen.append(server.config)
        if server.config.port == 1:
            raise SystemExit(1)  # what uvicorn does when it cannot bind

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    settings = ServeSettings(isolation="thread", jobs_dir=str(tmp_path / "j"))
    err = io.StringIO()
    assert serve("0.0.0.0", 8123, settings, arrange=small_arrange, stderr=err) == 0
    text = err.getvalue()
    assert "warning: listening on 0.0.0.0" in text and "--host 127.0.0.1" in text
    assert seen[-1].host == "0.0.0.0" and seen[-1].port == 8123
    assert seen[-1].app.state.settings.allowed_hosts is None
    err = io.StringIO()
    assert serve("127.0.0.1", 8124, settings, arrange=small_arrange, stderr=err) == 0
    assert "warning" not in err.getvalue() and "http://127.0.0.1:8124/" in err.getvalue()
    assert "localhost" in seen[-1].app.state.settings.allowed_hosts
    err = io.StringIO()
    assert serve("127.0.0.1", 1, settings, arrange=small_arrange, stderr=err) == 2
    assert "cannot listen on 127.0.0.1:1" in err.getvalue()


def test_stems_zip_is_streamed_intact(tmp_path):
    from hum2band.app.serve.jobs import zip_stream

    rng = np.random.default_rng(1)
    files = []
    for name, size in (("a.wav", 2_500_000), ("b.wav", 10), ("c.wav", 0)):
        path = tmp_path / name
        path.write_bytes(rng.bytes(size))
        files.append((path, f"stems/{name}"))
    pieces = list(zip_stream(files, chunk_bytes=1 << 20))
    assert max(len(p) for p in pieces) < (1 << 20) + 4096  # never the whole archive at once
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as z:
        assert z.testzip() is None
        for path, name in files:
            assert z.read(name) == path.read_bytes()


def test_closing_deletes_every_job_folder_but_not_a_given_jobs_dir(tmp_path):
    jobs_dir = tmp_path / "jobs"
    app, client = make_client(tmp_path)
    job_id = upload(client, wav_bytes(2.0)).json()["id"]
    assert wait_for(client, job_id)["state"] == "done"
    (jobs_dir / "keep.txt").write_text("the user's")
    app.state.queue.close()
    assert sorted(p.name for p in jobs_dir.iterdir()) == ["keep.txt"]


def test_the_load_benchmark_fails_when_a_take_fails():
    """benchmarks/serve_load.py exits non-zero when any take failed or was lost (issue 15)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_load", ROOT / "benchmarks" / "serve_load.py")
    bench = importlib.util.module_from_spec(spec)
    import sys

    sys.modules["serve_load"] = bench  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    done = [bench.Outcome(i, "twinkle.wav", outcome="done", total_s=10.0 + i) for i in range(4)]
    failed = bench.Outcome(9, "twinkle.wav", outcome="failed", message="no singing")
    lost = bench.Outcome(9, "twinkle.wav", outcome="lost")
    assert bench.burst_ok(done, True, 200)
    assert not bench.burst_ok(done + [failed], True, 200)
    assert not bench.burst_ok(done + [lost], True, 200)
    assert not bench.burst_ok(done, False, 200)
    assert bench.RunResult("queue", 2, done, 60.0, {"retried": 1, "lost": 0}).ok()
    assert not bench.RunResult("queue", 2, done + [failed], 60.0, {}).ok()
    assert not bench.RunResult("queue", 2, done, 60.0, {"lost": 1}).ok()
    line = bench.RunResult("queue", 2, done, 60.0, {"retried": 1}).line()
    assert line.split()[:4] == ["queue", "2", "4", "4.00"] and line.split()[-5:-1] == ["4", "1", "0", "0"]
    assert bench.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
