"""Tests for hum2band.app.record: microphone capture, count-in/click timing, device errors.

The recording tests are real: they start a private PulseAudio daemon whose only sink is a null
sink and whose default source is that sink's monitor, play examples/twinkle.wav into it with
``paplay`` and record it through PortAudio (ALSA's ``pulse`` plugin, Debian libasound2-plugins)
with :func:`hum2band.app.record.record_take`. The monitor also hears the click that record_take
plays, which makes a loopback for checking latency compensation and where bar 1 lands.
They skip only when PulseAudio is not installed (Debian: pulseaudio, pulseaudio-utils).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from hum2band.app import record as R
from hum2band.errors import Hum2BandError, OptionError, TakeLengthError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "twinkle.wav"
SINK = "h2b_null"      # what the "microphone" (its monitor) hears
PHONES = "h2b_phones"  # a second sink nobody listens to: headphones
SINK_RATE_HZ = 44100

needs_pulse = pytest.mark.skipif(
    shutil.which("pulseaudio") is None or shutil.which("paplay") is None,
    reason="PulseAudio is not installed (Debian/Ubuntu: apt-get install pulseaudio "
           "pulseaudio-utils libasound2-plugins)",
)


# ---- a private PulseAudio server -------------------------------------------------------------
def _pulse_env(base: Path) -> dict[str, str]:
    run = base / "run"
    return {
        "HOME": str(base),
        "XDG_RUNTIME_DIR": str(run),
        "PULSE_RUNTIME_PATH": str(run / "pulse"),
        "PULSE_STATE_PATH": str(base / "state"),
        "PULSE_SERVER": f"unix:{run / 'native'}",
        "PULSE_CLIENTCONFIG": str(base / "client.conf"),
        "PULSE_SINK": SINK,
        "PULSE_SOURCE": f"{SINK}.monitor",
    }


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """Start PulseAudio with one null sink; yields the environment that reaches it."""
    if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
        pytest.skip("PulseAudio is not installed (Debian/Ubuntu: apt-get install pulseaudio "
                    "pulseaudio-utils libasound2-plugins)")
    base = tmp_path_factory.mktemp("pulse")
    env_add = _pulse_env(base)
    (base / "run" / "pulse").mkdir(parents=True)
    (base / "state").mkdir()
    (base / "client.conf").write_text("autospawn = no\n")
    config = base / "server.pa"
    config.write_text(
        "load-module module-native-protocol-unix auth-anonymous=1 "
        f"socket={base / 'run' / 'native'}\n"
        f"load-module module-null-sink sink_name={SINK} rate={SINK_RATE_HZ} channels=1\n"
        f"load-module module-null-sink sink_name={PHONES} rate={SINK_RATE_HZ} channels=2\n"
        f"set-default-sink {SINK}\n"
        f"set-default-source {SINK}.monitor\n"
    )
    env = {**os.environ, **env_add}
    log = open(base / "pulseaudio.log", "w")
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "-F", str(config),
         "--use-pid-file=no", "--disable-shm=yes", "--log-target=stderr"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            ok = subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0
            if ok:
                break
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start: "
                                   + (base / "pulseaudio.log").read_text()[-2000:])
            time.sleep(0.1)
        yield {"env": env, "add": env_add, "dir": base}
    finally:
        daemon.terminate()
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


@pytest.fixture
def pulse_here(pulse):
    """Point this process's PortAudio at the private PulseAudio server (and back afterwards)."""
    saved = {k: os.environ.get(k) for k in pulse["add"]}
    os.environ.update(pulse["add"])
    R.refresh_devices()
    try:
        names = [d.name for d in R.list_input_devices()]
    except R.AudioDeviceError as error:
        _restore(saved)
        pytest.fail(f"PortAudio sees no input through PulseAudio ({error}): install ALSA's "
                    "pulse plugin (Debian/Ubuntu: libasound2-plugins)")
    assert "pulse" in names or "default" in names, names
    try:
        yield pulse
    finally:
        _restore(saved)


def _restore(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    R.refresh_devices()


def _excerpt(tmp_path: Path, start_s: float, length_s: float) -> tuple[Path, np.ndarray, int]:
    """A piece of twinkle.wav (singing from the first beat on) as its own WAV file."""
    x, rate = sf.read(EXAMPLE, dtype="float32")
    piece = x[int(start_s * rate):int((start_s + length_s) * rate)]
    path = tmp_path / "excerpt.wav"
    sf.write(path, piece, rate, subtype="PCM_16")
    return path, piece, rate


def _align(take: np.ndarray, take_rate: int, piece: np.ndarray, piece_rate: int):
    """(lag_s, correlation) of ``piece`` inside ``take`` after resampling to the take's rate."""
    ratio = Fraction(take_rate, piece_rate)
    ref = resample_poly(piece.astype(np.float64), ratio.numerator, ratio.denominator)
    at, r = R.find_template(take, ref, 0, len(take) - len(ref))
    return at / take_rate, r


def _steady_take(record, tries: int = 3):
    """``record()``, again (up to ``tries`` times) while the take reports dropouts.

    Under heavy load PulseAudio's ALSA plugin sometimes delivers input late and PortAudio pads
    it with silence (reported as dropouts), which shifts the rest of the take's time line; the
    library reports that, and these tests check timing on takes without it.
    """
    for _ in range(tries):
        take = record()
        if take.dropouts == 0:
            return take
    pytest.fail(f"every take had dropouts ({take.dropouts} in the last): the machine is too "
                "busy for real-time audio")


def _play(pulse, path: Path) -> subprocess.Popen:
    return subprocess.Popen(["paplay", "-d", SINK, str(path)], env=pulse["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# ---- recording through PulseAudio ------------------------------------------------------------
@needs_pulse
def test_record_take_matches_the_example(pulse_here, tmp_path):
    excerpt, piece, piece_rate = _excerpt(tmp_path, 1.0, 3.0)
    started, box = threading.Event(), {}

    def run():
        try:
            box["take"] = R.record_take(tmp_path / "take.wav", seconds=4.0,
                                        started_event=started)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = error
            started.set()

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(20), "recording never started"
    player = _play(pulse_here, excerpt)
    worker.join(30)
    assert player.wait(10) == 0, player.stderr.read()
    assert "error" not in box, box.get("error")
    take = box["take"]

    info = sf.info(take.path)
    assert (info.channels, info.samplerate, info.subtype) == (1, SINK_RATE_HZ, "PCM_16")
    assert take.sample_rate_hz == SINK_RATE_HZ
    assert take.duration_s == pytest.approx(4.0, abs=1e-6)
    assert info.frames == 4 * SINK_RATE_HZ
    assert (take.tempo_bpm, take.first_downbeat_s, take.latency_source) == (None, None, "none")
    assert take.stopped_by == "seconds" and take.dropouts == 0
    assert take.clipped_fraction == 0.0 and -20 < take.peak_dbfs < 0
    assert not list(tmp_path.glob(".take.wav*")), "temporary file left behind"

    x, rate = sf.read(take.path, dtype="float32")
    lag_s, r = _align(x, rate, piece, piece_rate)
    print(f"in-process take: lag {lag_s * 1000:.1f} ms, correlation {r:.4f}")
    assert 0.0 <= lag_s <= 0.9, lag_s  # paplay starts after the recording did
    assert r > 0.9, r
    # before the example starts the take is silence: nothing else got in
    assert np.abs(x[:max(0, int((lag_s - 0.01) * rate))]).max(initial=0.0) < 1e-3


def _click_positions(x: np.ndarray, rate: int, expected_s: list[float], window_s: float = 0.08):
    """Found start (s) and (accent, beat) correlations of the click expected near each time."""
    accent, beat = R.click_sound(rate, True), R.click_sound(rate, False)
    found = []
    for t in expected_s:
        lo, hi = int((t - window_s) * rate), int((t + window_s) * rate)
        at_a, r_a = R.find_template(x, accent, lo, hi)
        at_b, r_b = R.find_template(x, beat, lo, hi)
        found.append(((at_a if r_a >= r_b else at_b) / rate, r_a, r_b))
    return found


@needs_pulse
def test_latency_and_downbeat_through_a_loopback(pulse_here, tmp_path):
    # The null sink's monitor hears the output, like a microphone next to the speakers.
    m = R.measure_latency(clicks=5)
    print(f"loopback: measured round trip {m.latency_s * 1000:.2f} ms (PortAudio reports "
          f"{m.reported_latency_s * 1000:.2f} ms), spread {m.spread_s * 1000:.2f} ms")
    assert m.clicks_found >= 3 and m.spread_s <= 0.0005
    assert 0.0 < m.latency_s < 0.3

    # One bar of count-in at 150 bpm, click kept on; the latency is found from the count-in
    # clicks heard in the input. Bar 1 is beat 4 = 1.6 s after the first click as heard.
    take = _steady_take(lambda: R.record_take(tmp_path / "click.wav", seconds=1.3, bpm=150,
                                              count_in_beats=4, click=True, meter_beats=4))
    assert (take.latency_source, take.tempo_bpm) == ("heard", 150.0)
    assert 0.0 < take.latency_s < 0.3
    assert take.first_downbeat_s == pytest.approx(1.6, abs=1e-9)
    assert take.duration_s == pytest.approx(1.6 + 1.3, abs=1e-6)
    x, rate = sf.read(take.path, dtype="float32")
    beats_s = [k * 0.4 for k in range(7)]  # t = 0 is the first click as heard
    found = _click_positions(x, rate, beats_s)
    errors_ms = [(f - t) * 1000 for (f, _, _), t in zip(found, beats_s)]
    print(f"heard round trip {take.latency_s * 1000:.2f} ms; clicks in the take - beat grid (ms):",
          np.round(errors_ms, 2).tolist())
    assert max(abs(e) for e in errors_ms) <= 3.0, errors_ms
    assert found[4][0] == pytest.approx(take.first_downbeat_s, abs=0.003)  # bar 1
    # the higher click falls on bar lines (beats 0 and 4 = bar 1), the lower on the others
    assert [r_a > r_b for _, r_a, r_b in found] == [True, False, False, False, True, False, False]

    # A given latency is used as it is (here a wrong one, 0): every click then lands the same
    # true round trip late, bar 1 included; after a count-in without click the take is silent.
    take = _steady_take(lambda: R.record_take(tmp_path / "given.wav", seconds=0.8, bpm=120,
                                              count_in_beats=2, click=False, meter_beats=3,
                                              latency_s=0.0))
    assert (take.latency_source, take.latency_s, take.first_downbeat_s) == ("given", 0.0, 1.0)
    x, rate = sf.read(take.path, dtype="float32")
    late = [f - t for (f, _, _), t in zip(_click_positions(x, rate, [0.05, 0.55], 0.05),
                                          [0.0, 0.5])]
    print(f"given latency 0: count-in clicks land {np.round(np.array(late) * 1000, 2)} ms late")
    assert 0.0 < late[0] < 0.1 and abs(late[1] - late[0]) <= 0.003
    after = x[int((1.0 + late[0] + R.CLICK_LENGTH_S) * rate) + 10:]
    assert len(after) > 0.5 * rate and np.abs(after).max() < 1e-3


@needs_pulse
def test_click_in_headphones_stays_out_of_the_take(pulse, tmp_path):
    """A subprocess records with count-in and click while the click goes to another sink
    (headphones: the input cannot hear it) and the example plays into the input."""
    excerpt, piece, piece_rate = _excerpt(tmp_path, 1.0, 1.5)
    code = (
        "import json, sys, threading\n"
        "from hum2band.app.record import record_take\n"
        "ev = threading.Event()\n"
        "threading.Thread(target=lambda: (ev.wait(), print('started', flush=True)), "
        "daemon=True).start()\n"
        "take = record_take(sys.argv[1], seconds=7.0, bpm=120, count_in_beats=2, click=True, "
        "started_event=ev, level_meter=sys.stderr)\n"
        "print(json.dumps(take.to_json()), flush=True)\n"
    )
    out = tmp_path / "phones" / "take.wav"
    env = {**pulse["env"], "PULSE_SINK": PHONES}

    def attempt():
        proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()
            assert first.strip() == "started", (first, proc.stderr.read())
            player = _play(pulse, excerpt)  # from bar 1 on: the count-in went by in silence
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert player.wait(10) == 0
        assert proc.returncode == 0, stderr
        take = json.loads(stdout)
        assert take["latency_source"] == "reported" and take["first_downbeat_s"] == 1.0
        assert take["tempo_bpm"] == 120.0 and take["duration_s"] == pytest.approx(8.0, abs=1e-4)
        # stderr is a pipe: plain lines, no \r; exactly two, saying what happened: no PortAudio
        # or ALSA lines, and a sound server that fails before bar 1 is retried quietly
        lines = stderr.strip().splitlines()
        assert "\r" not in stderr and len(lines) == 2, stderr
        assert lines[0] == ("recording from 'default' at 44100 Hz (for 7 s), count-in 2 at "
                            "120 bpm")
        assert lines[-1].startswith(f"recorded 8.0 s to {out}")
        x, rate = sf.read(out, dtype="float32")
        lag_s, r = _align(x, rate, piece, piece_rate)
        print(f"headphones take: lag {lag_s * 1000:.1f} ms, correlation {r:.4f}; count-in part "
              f"peak {np.abs(x[:int(lag_s * rate)]).max():.2g}")
        return x, rate, lag_s, r

    # The example is played once the recorder says bar 1 is in; on a machine busy enough that the
    # recorder reads its input seconds behind the sound card, that is too late for the excerpt
    # to fit in the take: such an attempt says nothing about the recorder, so try again.
    for _ in range(3):
        x, rate, lag_s, r = attempt()
        if r > 0.9:
            break
    assert 1.0 <= lag_s <= 6.5 and r > 0.9, (lag_s, r)
    # the click played all through the count-in, yet that part of the take is silent
    assert np.abs(x[:int((lag_s - 0.01) * rate)]).max() < 1e-3


@needs_pulse
def test_unknown_device_names(pulse_here, tmp_path):
    with pytest.raises(R.AudioDeviceError, match="no microphone matches 'no-such-microphone'"):
        R.record_take(tmp_path / "x.wav", seconds=1, device="no-such-microphone")
    with pytest.raises(R.AudioDeviceError, match="no microphone has number 999"):
        R.find_input_device(999)
    with pytest.raises(R.AudioDeviceError, match="matches several microphones"):
        R.find_input_device("u")  # 'pulse' and 'default'
    assert R.find_input_device("PULSE").name == "pulse"
    assert R.find_input_device(None).is_default
    assert not (tmp_path / "x.wav").exists()


# ---- no input device at all ------------------------------------------------------------------
_CLI_LIKE = (
    "import sys\n"
    "from hum2band.errors import Hum2BandError\n"
    "from hum2band.app.record import record_take\n"
    "try:\n"
    "    record_take(sys.argv[1], seconds=1.0)\n"
    "except Hum2BandError as err:\n"
    "    sys.stderr.write(f'hum2band: error: {err}\\n')\n"
    "    sys.exit(err.exit_code)\n"
)


def _no_device_env(tmp_path: Path) -> dict[str, str]:
    """An environment where PortAudio finds no device: an ALSA configuration that defines none,
    and a PulseAudio server address that leads nowhere."""
    if os.path.exists("/dev/dsp"):
        pytest.skip("this machine has an OSS device (/dev/dsp) that PortAudio would still find")
    conf = tmp_path / "alsa.conf"
    # (an empty configuration makes PortAudio abort; one PCM on a card that cannot exist works)
    conf.write_text("pcm.default { type hw card 99 }\nctl.default { type hw card 99 }\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(ALSA_CONFIG_PATH=str(conf), PULSE_SERVER=f"unix:{tmp_path / 'nowhere'}",
               PULSE_CLIENTCONFIG=str(tmp_path / "client.conf"), JACK_NO_START_SERVER="1")
    (tmp_path / "client.conf").write_text("autospawn = no\n")
    return env


def test_no_microphone_is_one_line_and_nonzero(tmp_path):
    env = _no_device_env(tmp_path)
    out = tmp_path / "take.wav"
    proc = subprocess.run([sys.executable, "-c", _CLI_LIKE, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"hum2band: error: {R.NO_MICROPHONE}\n"
    assert not out.exists()
    listing = subprocess.run(
        [sys.executable, "-c", "from hum2band.app.record import list_input_devices as l; l()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode != 0 and "AudioDeviceError: no microphone found" in listing.stderr


def test_cli_without_microphone(tmp_path):
    env = _no_device_env(tmp_path)
    for args in (["record", "--out", str(tmp_path / "rec"), "--seconds", "1"], ["devices"]):
        proc = subprocess.run([sys.executable, "-m", "hum2band", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr == f"hum2band: error: {R.NO_MICROPHONE}\n", args
    assert not (tmp_path / "rec" / "take.wav").exists()


@needs_pulse
def test_cli_devices_lists_pulse(pulse):
    proc = subprocess.run([sys.executable, "-m", "hum2band", "devices", "--json"], cwd=ROOT,
                          env=pulse["env"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = [d["name"] for d in json.loads(proc.stdout)["devices"]]
    assert "default" in names


# ---- pure functions --------------------------------------------------------------------------
def test_plan_take_arithmetic():
    plan = R.plan_take(48000, 120.0, 4, 0.0123, clicks=True)
    assert plan.first_click_frame == 14400            # 0.3 s lead-in
    assert plan.latency_frames == 590                 # round(0.0123 * 48000)
    assert plan.take_start_frame == 14400 + 590       # first click as heard = take t=0
    assert plan.downbeat_frame == 14990 + 96000       # 4 beats of 0.5 s later
    assert plan.first_downbeat_s == 2.0
    # odd tempo: rounded to whole samples, never drifting more than half a sample
    plan = R.plan_take(44100, 97.0, 3, 0.2, clicks=True)
    assert abs(plan.first_downbeat_s - 3 * 60 / 97) <= 0.5 / 44100
    assert plan.downbeat_frame - plan.take_start_frame == round(3 * 60 / 97 * 44100)
    # no count-in but a click: bar 1 is the first click, at the start of the take
    assert R.plan_take(44100, 100.0, 0, 0.05, clicks=True).first_downbeat_s == 0.0
    # no clicks: nothing to compensate, no known downbeat
    assert R.plan_take(44100, 100.0, 0, 0.05, clicks=False) == R.TakePlan(None, 0, 0, None, 0)
    with pytest.raises(ValueError):
        R.plan_take(44100, None, 4, 0.0, clicks=True)


def test_render_clicks_blockwise_equals_whole():
    rate = 8000
    sounds = (R.click_sound(rate, True), R.click_sound(rate, False))
    beat = 60 / 137 * rate  # not a whole number of frames
    whole = R.render_clicks(0, 4 * rate, 2400, beat, None, 2, 3, sounds)
    rng = np.random.default_rng(0)
    parts, at = [], 0
    while at < 4 * rate:
        n = int(rng.integers(1, 700))
        parts.append(R.render_clicks(at, n, 2400, beat, None, 2, 3, sounds))
        at += n
    assert np.array_equal(np.concatenate(parts)[:4 * rate], whole)
    starts = [2400 + round(b * beat) for b in range(8)]
    for b, s in enumerate(starts):
        expected = sounds[0] if (b - 2) % 3 == 0 else sounds[1]
        assert np.array_equal(whole[s:s + len(expected)], expected), b
    assert np.all(whole[:2400] == 0)
    # a count-in only: n_beats clicks, then silence
    only = R.render_clicks(0, 4 * rate, 2400, beat, 2, 2, 3, sounds)
    assert np.array_equal(only[:starts[2]], whole[:starts[2]])
    assert np.all(only[starts[2]:] == 0)


def test_click_sound_is_short_and_above_the_voice():
    rate = 44100
    for accent in (True, False):
        c = R.click_sound(rate, accent)
        assert len(c) == round(0.02 * rate) and 0.3 < np.abs(c).max() <= 0.5
        spectrum = np.abs(np.fft.rfft(c, 8192))
        peak_hz = np.argmax(spectrum) * rate / 8192
        assert peak_hz > 1400  # above the pitch tracker's 1050 Hz ceiling
    from hum2band.listen.pitch import FMAX_HZ

    assert min(R.ACCENT_CLICK_HZ, R.BEAT_CLICK_HZ) > FMAX_HZ


def test_mix_levels_and_meter():
    rng = np.random.default_rng(1)
    voice = 0.3 * rng.standard_normal(1000).astype(np.float32)
    dead = 1e-4 * rng.standard_normal(1000).astype(np.float32)
    assert np.array_equal(R.mix_to_mono(np.stack([dead, voice], 1)), voice)
    both = np.stack([voice, 0.5 * voice], 1)
    assert np.allclose(R.mix_to_mono(both), 0.75 * voice)
    assert np.array_equal(R.mix_to_mono(voice[:, None]), voice)

    x = np.array([0.5, -1.0, 0.2, 0.0], dtype=np.float32)
    clipped, peak = R.level_stats(x)
    assert clipped == 0.25 and peak == pytest.approx(0.0)
    assert R.level_stats(np.zeros(10))[1] == R.SILENCE_DBFS
    assert R.dbfs(0.5) == pytest.approx(-6.0206, abs=1e-3)

    line = R.meter_line(67.25, -18.0, -6.0, hint="Enter stops")
    assert line.startswith("REC 1:07.2 [") and "-18 dBFS" in line and "Enter stops" in line
    assert line.count("#") == round(24 * 42 / 60) and len(line) < 80
    assert "CLIP" in R.meter_line(1.0, -3.0, 0.0)
    assert R.meter_line(0, -99, -99, count_in=(2, 4)) == "count-in 1 2 . ."


def test_heard_latency_from_clicks():
    rate = 16000
    rng = np.random.default_rng(3)
    sounds = [R.click_sound(rate, b == 0) for b in range(4)]
    starts = [4800 + b * 8000 for b in range(4)]
    sig = 1e-3 * rng.standard_normal(40000)
    for s, c in zip(starts, sounds):
        sig[s + 777:s + 777 + len(c)] += 0.3 * c
    assert R.heard_latency_s(sig, rate, starts, sounds, 4000) == 777 / rate
    # one click lost in noise: the others still agree
    sig2 = sig.copy()
    sig2[starts[2]:starts[2] + 4000] += 0.5 * rng.standard_normal(4000)
    assert R.heard_latency_s(sig2, rate, starts, sounds, 4000) == 777 / rate
    # a dropout shifted the time line after click 1: the last clicks (from bar 1 on) count
    sig4 = 1e-3 * rng.standard_normal(40000)
    for k, (s, c) in enumerate(zip(starts, sounds)):
        at = s + 777 + (368 if k >= 1 else 0)
        sig4[at:at + len(c)] += 0.3 * c
    assert R.heard_latency_s(sig4, rate, starts, sounds, 4000) == (777 + 368) / rate
    # clicks that all disagree (3 ms apart) or are not there: not trusted
    sig3 = 1e-3 * rng.standard_normal(40000)
    for k, (s, c) in enumerate(zip(starts, sounds)):
        sig3[s + 777 + 48 * k:s + 777 + 48 * k + len(c)] += 0.3 * c
    assert R.heard_latency_s(sig3, rate, starts, sounds, 4000) is None
    assert R.heard_latency_s(1e-3 * rng.standard_normal(40000), rate, starts, sounds, 4000) is None
    # clicks whose window is not recorded yet are left out
    assert R.heard_latency_s(sig[:20000], rate, starts, sounds, 4000) == 777 / rate


def test_find_template_finds_the_lag():
    rng = np.random.default_rng(2)
    sig = 0.01 * rng.standard_normal(20000)
    t = rng.standard_normal(300)
    sig[12345:12645] += t
    at, r = R.find_template(sig, t, 10000, 15000)
    assert at == 12345 and r > 0.99
    at, r = R.find_template(np.zeros(5000), t, 0, 4000)
    assert r == 0.0


def test_option_errors_come_before_any_device(tmp_path):
    import io

    with pytest.raises(OptionError, match="needs a tempo"):
        R.record_take(tmp_path / "t.wav", seconds=2, count_in_beats=4)
    with pytest.raises(OptionError, match="out of range"):
        R.record_take(tmp_path / "t.wav", seconds=2, bpm=500, count_in_beats=4)
    with pytest.raises(OptionError, match="nothing would stop the recording"):
        R.record_take(tmp_path / "t.wav", stdin=io.StringIO(""))
    with pytest.raises(OptionError, match="is a folder"):
        R.record_take(tmp_path, seconds=1)
    with pytest.raises(OptionError, match="latency"):
        R.record_take(tmp_path / "t.wav", seconds=1, bpm=100, click=True, latency_s=-0.1)
    assert issubclass(R.AudioDeviceError, Hum2BandError)
    assert len(str(TakeLengthError("x")).splitlines()) == 1


def test_take_warnings():
    ok = R.RecordedTake("t.wav", 3.0, 48000, "mic", None, None, 0.0, "none", 0.0, -6.0)
    assert R.take_warnings(ok) == []
    bad = R.RecordedTake("t.wav", 3.0, 48000, "mic", None, None, 0.0, "none", 0.02, 0.0,
                         dropouts=2)
    notes = R.take_warnings(bad)
    assert len(notes) == 2 and "clipped (2.0%" in notes[0] and "2 time(s)" in notes[1]
    quiet = R.RecordedTake("t.wav", 3.0, 48000, "mic", None, None, 0.0, "none", 0.0, -55.0)
    assert "very quiet" in R.take_warnings(quiet)[0]
    d = bad.to_json()
    assert d["device"] == "mic" and d["first_downbeat_s"] is None and json.dumps(d)


@needs_pulse
def test_cli_record_then_arrange(pulse, tmp_path):
    """``hum2band record`` through the virtual microphone: the take is the example, and the
    arrangement of it is made beside it."""
    _, piece, piece_rate = _excerpt(tmp_path, 0.0, 7.0)
    # 2 s of silence first: however long the sound card takes to open after the recorder says
    # it is recording, the whole sung part lands inside the take
    excerpt = tmp_path / "padded.wav"
    sf.write(excerpt, np.concatenate([np.zeros(2 * piece_rate, piece.dtype), piece]), piece_rate,
             subtype="PCM_16")
    out = tmp_path / "song"
    proc = subprocess.Popen([sys.executable, "-m", "hum2band", "record", "--out", str(out), "--seconds", "10",
                             "--style", "folk", "--json"],
                            cwd=ROOT, env=pulse["env"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    # play only once the recorder says it is recording (its imports can take seconds under load)
    first = proc.stderr.readline()
    assert first.startswith("recording from"), first
    time.sleep(0.5)
    player = _play(pulse, excerpt)
    stdout, rest = proc.communicate(timeout=240)
    stderr = first + rest
    assert player.wait(10) == 0
    assert proc.returncode == 0, stderr
    take_path = out / "take.wav"
    x, rate = sf.read(take_path, dtype="float32")
    lag_s, r = _align(x, rate, piece, piece_rate)
    assert r > 0.9 and 0.0 <= lag_s < 3.0, (lag_s, r)
    for f in ("mix.wav", "arrangement.mid", "leadsheet.musicxml", "pianoroll.png", "arrangement.json"):
        assert (out / f).is_file(), f
    data = json.loads((out / "arrangement.json").read_text())
    assert data["style"] == "folk" and data["chords"] and data["parts"]
    assert Path(data["vocal"]).resolve() == take_path.resolve()
    # every path the outputs and messages name is a file that exists: the take in out/take.wav
    assert Path(data["input"]).resolve() == take_path.resolve()
    summary = json.loads(stdout)
    assert Path(summary["take"]["path"]).resolve() == take_path.resolve()
    assert Path(summary["input"]).resolve() == take_path.resolve()
    assert f"recorded 10.0 s to {take_path}" in stderr or f"to {take_path} (" in stderr, stderr
    assert not any(p.name.startswith("song-take") for p in tmp_path.iterdir())
    assert "pa_linux_alsa" not in stderr and "ALSA lib" not in stderr, stderr
    vocal, sr = sf.read(out / "stems" / "vocal.wav", dtype="float32", always_2d=True)
    mix, sr2 = sf.read(out / "mix.wav", dtype="float32", always_2d=True)
    assert sr == sr2 == 44100 and vocal.shape == mix.shape


# ---- a device that stalls before bar 1 (a stand-in for sounddevice) --------------------------
class _FakeStatus:
    input_overflow = input_underflow = False

    def __bool__(self):
        return False


class _FakeStream:
    """A duplex stream whose input is a function of the wall clock (the singer does not stop
    when the sound card does); the first ``dies`` streams stop after ``die_after_s``."""

    made: list = []

    def __init__(self, device=None, channels=None, samplerate=None, dtype=None, callback=None):
        self.rate, self.callback = int(samplerate), callback
        self.active = False
        self.latency = (0.0, 0.0)
        self.number = len(_FakeStream.made)
        _FakeStream.made.append(self)
        self._thread = None

    def _pump(self):
        block = 256
        opened = time.monotonic()
        sent = 0
        while self.active:
            if self.number < _FakeStream.dies and time.monotonic() - opened > _FakeStream.die_after_s:
                self.active = False  # the device stopped
                return
            now = time.monotonic()
            # the block that ends now: the singer's signal at those wall-clock times
            t = now - _FakeStream.epoch_s - (np.arange(block)[::-1] / self.rate)
            indata = _FakeStream.signal(t).astype(np.float32)[:, None]
            outdata = np.zeros((block, 1), np.float32)
            self.callback(indata, outdata, block, None, _FakeStatus())
            sent += block
            delay = opened + sent / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self):
        if self.number:  # a sound card takes a while to come back
            time.sleep(_FakeStream.reopen_s)
        self.active = True
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.active = False
        self._thread.join(2)


class _FakeSd:
    PortAudioError = RuntimeError
    Stream = InputStream = _FakeStream


def test_a_restart_before_bar_1_keeps_the_singer_on_the_grid(tmp_path, monkeypatch):
    """The stream dies 0.4 s into the count-in and is reopened quietly; a burst sung exactly at
    bar 1 of the first count-in (wall clock) lands at first_downbeat_s in the take."""
    rate, bpm, beats = 8000, 120.0, 4
    _FakeStream.made, _FakeStream.dies, _FakeStream.die_after_s = [], 1, 0.4
    _FakeStream.reopen_s = 0.6
    _FakeStream.epoch_s = 0.0
    bar1_wall = {}

    def signal(t):  # a 50 ms burst at bar 1 as the singer heard it
        at = bar1_wall.get("t")
        if at is None:
            return np.zeros(len(t))
        return np.where((t >= at) & (t < at + 0.05), 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)

    _FakeStream.signal = staticmethod(signal)
    mic = R.InputDevice(0, "fake mic", 1, float(rate), True, "fake")
    monkeypatch.setattr(R, "sounddevice_module", lambda: _FakeSd)
    monkeypatch.setattr(R, "find_input_device", lambda device=None: mic)
    monkeypatch.setattr(R, "_output_device", lambda sd, device: {
        "index": 1, "name": "fake phones", "max_output_channels": 1})
    # bar 1 on the wall clock: the first stream's first callback + the planned lead-in + count-in
    real_catch = R._Capture.duplex_callback

    def watch(self, indata, outdata, frames, time_info, status):
        if "t" not in bar1_wall and self.frame == 0:
            bar1_wall["t"] = time.monotonic() - frames / rate + R.CLICK_LEAD_IN_S + beats * 60 / bpm
        return real_catch(self, indata, outdata, frames, time_info, status)

    monkeypatch.setattr(R._Capture, "duplex_callback", watch)
    err = io.StringIO()
    take = R.record_take(tmp_path / "take.wav", seconds=1.0, bpm=bpm, count_in_beats=beats,
                         latency_s=0.0, level_meter=err)
    assert len(_FakeStream.made) == 2, "the stream was not reopened"
    assert err.getvalue().count("\n") == 2, err.getvalue()  # no restart notice: quiet
    x, got_rate = sf.read(tmp_path / "take.wav", dtype="float32")
    assert got_rate == rate and take.first_downbeat_s == pytest.approx(2.0)
    loud = np.flatnonzero(np.abs(x) > 0.1)
    assert len(loud), "the burst is missing"
    onset_s = loud[0] / rate
    # a few callback blocks of jitter either way; a restart that lost the time the card was
    # down would put the burst 0.6 s early, one that started the count-in over 1 s early
    assert abs(onset_s - take.first_downbeat_s) < 0.08, onset_s


def test_portaudio_lines_stay_off_the_terminal(capfd, monkeypatch):
    """What PortAudio writes to fd 2 is dropped; our own lines on stderr still get through."""
    monkeypatch.delenv("HUM2BAND_DEBUG", raising=False)
    with R.portaudio_quiet(sys.stderr) as ours:
        os.write(2, b"Expression 'err' failed in 'src/hostapi/alsa/pa_linux_alsa.c'\n")
        ours.write("recording from 'mic'\n")
        ours.flush()
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "pa_linux_alsa" not in err and "recording from 'mic'" in err and "after" in err
