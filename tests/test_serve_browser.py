"""``hum2band serve`` end to end in headless Chromium: record through the page, get the band.

Chromium's fake microphone plays ``examples/twinkle.wav`` (converted to 48 kHz 16-bit PCM, which
Chromium's fake capture wants). The test starts the server with uvicorn on a free port, runs the
real arranger (``hum2band.pipeline.arrange_to_folder``) in its worker process, records through the
page (count-in, then a few seconds of singing), submits, waits, and checks that

* the page's player decoded the mix to a buffer as long as ``mix.wav`` and one buffer per stem,
* mute/solo switch the gains of the running sources,
* every download link the page offers fetches a non-empty file of the right type.

Needs Debian's ``chromium`` (``/usr/bin/chromium``, or ``$HUM2BAND_CHROMIUM``) and the
``playwright`` Python package (its own browser downloads are never used); skipped only when
Chromium is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("HUM2BAND_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Chromium is not installed (Debian package 'chromium')")

#: First bytes and media type of each download the page offers.
EXPECTED_DOWNLOADS = {
    "mix.wav": (b"RIFF", "audio/wav"),
    "stems.zip": (b"PK\x03\x04", "application/zip"),
    "arrangement.mid": (b"MThd", "audio/midi"),
    "leadsheet.musicxml": (b"<?xml", "application/vnd.recordare.musicxml+xml"),
    "pianoroll.png": (b"\x89PNG", "image/png"),
    "arrangement.json": (b"{", "application/json"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_microphone_wav(folder: Path) -> Path:
    """``examples/twinkle.wav`` as 48 kHz mono 16-bit PCM for Chromium's fake capture."""
    from hum2band.files.audio import decode, write_wav

    audio = decode(ROOT / "examples" / "twinkle.wav", sample_rate_hz=48000, max_duration_s=None)
    path = folder / "fake_mic.wav"
    write_wav(path, audio.samples, 48000)
    return path


@contextlib.contextmanager
def served_page(arrange, tmp_path: Path):
    """Serve with ``arrange`` (in a worker process) on a free port; yield ``(app, base URL,
    launched headless Chromium)`` whose fake microphone plays twinkle."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    from hum2band.app.serve.app import PIPELINE_PRELOAD, ServeSettings, create_app

    preload = PIPELINE_PRELOAD if arrange.__module__ == "hum2band.pipeline" else (arrange.__module__,)
    settings = ServeSettings(jobs_dir=str(tmp_path / "jobs"), isolation="process",
                             preload=preload, start_method="forkserver")
    app = create_app(settings, arrange=arrange)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    mic = fake_microphone_wav(tmp_path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}", "--headless", "--no-sandbox",
                "--disable-gpu", "--disable-background-networking",
                "--autoplay-policy=no-user-gesture-required"])
            try:
                yield app, f"http://127.0.0.1:{port}", browser
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(15)
        app.state.queue.close()


def arranged_again(page, app, first_id: str, timeout_s: float) -> dict:
    """Wait until the page plays the band of a job other than ``first_id`` (or shows an error);
    return that job's ``arrangement.json``."""
    page.wait_for_function(
        f"() => (window.hum2band.job && window.hum2band.job.id !== '{first_id}' && "
        "window.hum2band.player && window.hum2band.player.ready) || "
        "!document.getElementById('error').hidden", timeout=timeout_s * 1000)
    assert page.is_hidden("#error"), page.text_content("#error")
    job = app.state.queue.get(page.evaluate("hum2band.job.id"))
    return json.loads((job.out_dir / "arrangement.json").read_text())


def browser_round_trip(arrange, tmp_path: Path, record_s: float = 6.0,
                       timeout_s: float = 80.0, tempo_bpm: int = 134) -> dict:
    """Serve with ``arrange``, record and submit through the page, return what was checked."""
    import numpy as np
    import soundfile as sf

    from hum2band.files.audio import decode

    checked: dict = {}
    with served_page(arrange, tmp_path) as (app, base, browser):
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(base + "/")
            page.wait_for_function("() => document.querySelectorAll('#style option').length > 0")
            # a text file named .m4a is refused in the page at once, before any upload
            notes = tmp_path / "notes.m4a"
            notes.write_text("shopping: milk, eggs, a new microphone\n")
            page.set_input_files("#file", str(notes))
            page.wait_for_selector("#error:not([hidden])", timeout=5_000)
            checked["text_file_error"] = page.text_content("#error")
            checked["text_file_take_hidden"] = page.is_hidden("#take-ready")
            checked["meters"] = page.evaluate(
                "() => Array.from(document.querySelectorAll('#meter option')).map(o => o.value)")
            page.fill("#tempo", str(tempo_bpm))
            page.select_option("#meter", "4/4")
            page.click("#record")
            page.wait_for_function(
                "() => document.getElementById('countdown').textContent === 'sing!'",
                                   timeout=10_000)
            page.wait_for_timeout(int(record_s * 1000))
            page.click("#stop")
            page.wait_for_selector("#take-ready:not([hidden])", timeout=10_000)
            take = page.evaluate("""() => ({size: hum2band.take.blob.size,
                type: hum2band.take.blob.type, name: hum2band.take.name,
                tempoBpm: hum2band.take.tempoBpm, downbeatS: hum2band.take.firstDownbeatS})""")
            checked["take"] = take
            assert take["size"] > 10_000, take
            # the count-in starts 0.15 s after the recording; plus the output latency
            count_in_s = 0.15 + 4 * 60.0 / tempo_bpm
            assert take["tempoBpm"] == tempo_bpm, take
            assert count_in_s - 0.01 < take["downbeatS"] < count_in_s + 0.3, take
            t0 = time.monotonic()
            page.click("#submit")
            page.wait_for_function(
                "() => (window.hum2band.player && window.hum2band.player.ready) || "
                "!document.getElementById('error').hidden", timeout=timeout_s * 1000)
            checked["elapsed_s"] = time.monotonic() - t0
            checked["stage_text"] = page.text_content("#stage")
            error = page.text_content("#error")
            assert page.is_hidden("#error"), f"the page shows an error: {error}\n" + \
                "\n".join(console)
            player = page.evaluate("""() => { const p = hum2band.player; return {
                rate: p.ctx.sampleRate, length: p.mixBuffer.length,
                duration: p.mixBuffer.duration, channels: p.mixBuffer.numberOfChannels,
                stems: p.stems.map(s => ({name: s.name, duration: s.buffer.duration})),
                chords: hum2band.job.chords.length,
                shownChords: document.querySelectorAll('#chords li').length,
                image: document.getElementById('pianoroll').naturalWidth}; }""")
            checked["player"] = player
            job = app.state.queue.get(page.evaluate("hum2band.job.id"))
            # the vocal stem is the take
            take_audio = decode(job.out_dir / "stems" / "vocal.wav", sample_rate_hz=16000,
                                max_duration_s=None)
            checked["take_rms"] = float(np.sqrt(np.mean(take_audio.samples ** 2)))
            arrangement = json.loads((job.out_dir / "arrangement.json").read_text())
            checked["tempo_bpm"] = arrangement["tempo_bpm"]
            checked["downbeats_s"] = arrangement.get("downbeats", [])
            checked["offset_s"] = arrangement.get("offset_s", 0.0)
            mix_info = sf.info(str(job.out_dir / "mix.wav"))
            checked["mix_wav_s"] = mix_info.frames / mix_info.samplerate
            stem_files = sorted(p.name for p in (job.out_dir / "stems").glob("*.wav"))
            checked["stem_files"] = stem_files

            # play, then solo the first stem: the mix goes silent, only that stem sounds
            page.click("#play")
            page.wait_for_timeout(300)
            page.click("#mixer tbody tr:first-child button.solo")
            page.wait_for_timeout(300)
            gains = page.evaluate("""() => { const p = hum2band.player; return {
                playing: p.playing, t: p.ctx.currentTime - p.startedAt,
                mix: p.mixGain.gain.value, scale: p.stemScale,
                stems: p.stems.map(s => s.gain.gain.value)}; }""")
            checked["gains"] = gains
            page.click("#halt")

            links = page.evaluate("""async () => {
                const out = [];
                for (const a of document.querySelectorAll('a.download, a.stem-download')) {
                    const r = await fetch(a.href);
                    const bytes = new Uint8Array(await r.arrayBuffer());
                    out.push({name: a.dataset.name || a.textContent, status: r.status,
                              type: r.headers.get('content-type'), size: bytes.length,
                              head: Array.from(bytes.slice(0, 8))});
                }
                return out; }""")
            checked["links"] = links

            # move bar 1 a beat later and arrange again, without uploading the take again
            first_id = page.evaluate("hum2band.job.id")
            before = page.evaluate("hum2band.again.downbeatS")
            page.click("#again-panel button.shift[data-beats='1']")
            page.click("#again")
            again = arranged_again(page, app, first_id, timeout_s)
            checked["again"] = {"before_s": before, "tempo_bpm": again["tempo_bpm"],
                                "downbeats_s": [d - again.get("offset_s", 0.0)
                                                for d in again.get("downbeats", [])]}
            checked["console"] = console
        finally:
            page.close()
    return checked


def assert_round_trip(checked: dict, follows_count_in: bool = True) -> None:
    assert "text file" in checked["text_file_error"] and checked["text_file_take_hidden"]
    assert "2/4" not in checked["meters"]  # no style plays it
    assert checked["stage_text"].startswith("done in "), checked["stage_text"]
    # arranged again from the kept upload with bar 1 a beat later, at the tempo it had
    again = checked["again"]
    beat_s = 60.0 / again["tempo_bpm"]
    assert min(abs(d - (again["before_s"] + beat_s)) for d in again["downbeats_s"]) < 0.01, again
    # the fake microphone was recorded (the take is not silence)
    assert checked["take_rms"] > 0.01, checked["take_rms"]
    if follows_count_in:
        # the band follows the count-in: its tempo, and a bar line where the count-in put one
        take = checked["take"]
        assert abs(checked["tempo_bpm"] - take["tempoBpm"]) < 0.5, checked["tempo_bpm"]
        downbeat_s = take["downbeatS"] + checked["offset_s"]
        assert min(abs(d - downbeat_s) for d in checked["downbeats_s"]) < 0.01, \
            (downbeat_s, checked["downbeats_s"][:4])
    player = checked["player"]
    # the decoded mix is as long as mix.wav (decodeAudioData resamples to the context's rate)
    assert abs(player["duration"] - checked["mix_wav_s"]) <= 2.0 / player["rate"] + 1e-6, \
        (player, checked["mix_wav_s"])
    assert player["length"] > 0.5 * player["rate"]
    assert sorted(s["name"] + ".wav" for s in player["stems"]) == checked["stem_files"]
    assert len(player["stems"]) >= 2 and "vocal.wav" in checked["stem_files"]
    assert all(s["duration"] > 0 for s in player["stems"])
    assert player["chords"] >= 1 and player["shownChords"] == player["chords"]
    assert player["image"] > 0  # the piano roll loaded
    gains = checked["gains"]
    assert gains["playing"] and gains["t"] > 0.2, gains  # the audio clock runs
    assert gains["mix"] < 0.05, gains
    assert gains["stems"][0] == pytest.approx(gains["scale"], rel=0.05)
    assert all(g < 0.05 for g in gains["stems"][1:]), gains
    links = {link["name"]: link for link in checked["links"] if link["name"] in EXPECTED_DOWNLOADS}
    assert set(links) == set(EXPECTED_DOWNLOADS)
    for name, (magic, media_type) in EXPECTED_DOWNLOADS.items():
        link = links[name]
        assert link["status"] == 200 and link["size"] > len(magic), link
        assert bytes(link["head"]).startswith(magic), link
        assert link["type"].startswith(media_type), link
    stem_links = [link for link in checked["links"] if link["name"].endswith(".wav")
                  and link["name"] not in EXPECTED_DOWNLOADS]
    assert sorted(link["name"] for link in stem_links) == checked["stem_files"]
    assert all(bytes(link["head"][:4]) == b"RIFF" and link["size"] > 44 for link in stem_links)


def test_record_in_the_browser_and_play_the_band(tmp_path):
    from hum2band.pipeline import arrange_to_folder

    checked = browser_round_trip(arrange_to_folder, tmp_path)
    assert_round_trip(checked)


def test_a_memo_counted_another_way_from_the_page(tmp_path):
    """A memo dropped on the page: the other tempi and meters it could be counted in are
    buttons; one click and "Arrange again" arranges the kept upload in that meter at that tempo,
    with bar 1 found again (no bar line pinned)."""
    from hum2band.pipeline import arrange_to_folder

    timeout_s = 80.0
    with served_page(arrange_to_folder, tmp_path) as (app, base, browser):
        page = browser.new_page()
        try:
            page.goto(base + "/")
            page.wait_for_function("() => document.querySelectorAll('#style option').length > 0")
            page.set_input_files("#file", str(ROOT / "examples" / "ode_to_joy.m4a"))
            page.wait_for_selector("#take-ready:not([hidden])", timeout=10_000)
            page.click("#submit")
            page.wait_for_function(
                "() => (window.hum2band.player && window.hum2band.player.ready) || "
                "!document.getElementById('error').hidden", timeout=timeout_s * 1000)
            assert page.is_hidden("#error"), page.text_content("#error")
            first_id = page.evaluate("hum2band.job.id")
            offered = page.evaluate("hum2band.job.other_tempi")
            page.wait_for_selector("#counts-row:not([hidden])", timeout=5_000)
            buttons = page.eval_on_selector_all(
                "#counts button", "bs => bs.map(b => ({words: b.textContent, flags: b.title}))")
            sent: list[str] = []
            page.on("request", lambda r: sent.append(r.url) if "/again" in r.url else None)
            page.click("#counts button:first-child")
            info = page.text_content("#again-info")
            page.click("#again")
            again = arranged_again(page, app, first_id, timeout_s)
        finally:
            page.close()
    # the offers are the rhythm stage's, in the style's meters, described for a musician
    assert buttons and offered, (buttons, offered)
    first = offered[0]
    assert buttons[0]["words"] == first["words"]
    assert buttons[0]["flags"] == f"--meter {first['meter']} --tempo {first['tempo_bpm']:.0f}"
    assert info.startswith(f"counted in {first['meter']}"), info
    # sent as that meter and tempo, bar 1 not pinned; the band plays it that way
    from urllib.parse import parse_qs, urlparse

    query = parse_qs(urlparse(sent[-1]).query)
    assert query["meter"] == [first["meter"]] and "downbeat_s" not in query, query
    assert float(query["tempo_bpm"][0]) == pytest.approx(round(first["tempo_bpm"]), abs=0.01)
    assert "/".join(str(x) for x in again["meter"]) == first["meter"]
    assert again["tempo_bpm"] == pytest.approx(first["tempo_bpm"], rel=0.06)
