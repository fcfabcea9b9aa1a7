"""Record a take from the microphone, with an optional count-in and click (issue 5).

:func:`record_take` captures one mono take from an input device with PortAudio (through
``sounddevice``), shows a level meter on the terminal, and saves it as a 16-bit WAV file
(atomically: a temporary file in the same folder, then :func:`os.replace`). With a tempo it can
play a count-in and a click on the output device, and it tells where bar 1 lands in the saved
take, so the arrangement can use the tempo and downbeat the singer heard instead of guessing them.

Time lines
----------
A count-in or click needs input and output together, so they run in one duplex PortAudio stream:
its callback receives ``frames`` input samples and fills ``frames`` output samples, so input and
output share one frame counter ``f`` (frames since the stream's first callback). A sound written
at output frame ``f`` is *heard* ``output latency`` later; what the singer sings at that moment
reaches the program ``input latency`` later still, i.e. at input frame
``f + round(latency_s * rate)`` with the round trip ``latency_s = input + output latency``.
The saved take therefore starts at input frame ``first_click_frame + round(latency_s * rate)``:
``t = 0`` in the take is the moment the singer heard the first count-in click, and bar 1 (the
first beat after the count-in) lands at ``first_downbeat_s = count_in_beats * 60 / tempo_bpm``
(rounded to whole samples). The count-in stays in the take so pickup notes sung before bar 1 are
kept. See :func:`plan_take`.

``latency_s`` comes, in this order, from

1. the caller (``latency_s=``, e.g. from :func:`measure_latency` or a ``--latency-ms`` option);
2. the count-in itself ("heard"): when the microphone hears the clicks (speakers), the first
   clicks are found in the input by cross-correlation (:func:`heard_latency_s`) as soon as they
   are in, which measures the round trip of this very stream;
3. the latencies PortAudio reports for the stream, input + output ("reported"), e.g. with
   headphones. Reported latencies are buffer sizes and can be off by tens of milliseconds
   (PulseAudio: about three times the real round trip); :func:`measure_latency` measures the
   real one once, with the headphones held to the microphone or a cable from output to input.

The click never enters the take electronically: the take holds only the input samples; the click
is rendered into the output buffer alone. With headphones it is not in the take at all. Through
speakers the microphone may pick it up; then it is a 20 ms burst at 1.5-2 kHz, above the highest
pitch the pitch tracker follows (:data:`hum2band.listen.pitch.FMAX_HZ`, 1050 Hz) and shorter than the
shortest note the note segmenter keeps (0.1 s), and the arrangement uses the known tempo and
``first_downbeat_s`` instead of tracking beats, so a click heard in the take does not move the
beat. Headphones are still best.

Importing this module does not import ``sounddevice``; it is imported, and PortAudio loaded, on
the first call that needs a device, and a missing library becomes a one-line
:class:`AudioDeviceError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import queue
import select
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from ..errors import InputError, OptionError, TakeLengthError

#: Tempo range accepted with a count-in or click, in beats per minute (as ``--tempo``).
TEMPO_RANGE_BPM = (30.0, 300.0)
#: Longest take recorded when nothing else stops it (15 minutes, like ``--max-minutes``).
DEFAULT_MAX_SECONDS = 15 * 60.0
#: Silence between the stream starting and the first click, so the stream settles first.
CLICK_LEAD_IN_S = 0.3
#: Length of one metronome click.
CLICK_LENGTH_S = 0.02
#: Click pitches: first beat of a bar, other beats (above the pitch tracker's range).
ACCENT_CLICK_HZ, BEAT_CLICK_HZ = 2000.0, 1500.0
#: Click amplitude (full scale is 1).
CLICK_LEVEL = 0.5
#: A sample at or above this magnitude counts as clipped.
CLIP_LEVEL = 0.999
#: Floor for levels in dBFS (silence).
SILENCE_DBFS = -120.0
#: How long to wait for the first samples from a device before giving up.
START_TIMEOUT_S = 10.0
#: How long a running device may stay silent (no callbacks) before giving up.
STALL_TIMEOUT_S = 3.0
#: Longest round trip looked for when listening for the count-in clicks in the input.
MAX_HEARD_LATENCY_S = 0.5
#: Seconds between two updates of the level meter.
METER_INTERVAL_S = 0.1

NO_MICROPHONE = ("no microphone found: connect one or pick another with --device; "
                 "'hum2band devices' lists them")


class AudioDeviceError(InputError):
    """No usable microphone or speaker, PortAudio missing, or a device that fails to record."""


# ---- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputDevice:
    """One device that can record.

    Attributes
    ----------
    index : int
        PortAudio device index (what ``--device`` accepts besides a name).
    name : str
        Device name as PortAudio reports it.
    channels : int
        Most input channels it can record.
    default_sample_rate_hz : float
        Its native sample rate; takes are recorded at this rate unless told otherwise.
    is_default : bool
        True for the system's default input.
    host_api : str
        The PortAudio host API (ALSA, Core Audio, WASAPI, ...).
    """

    index: int
    name: str
    channels: int
    default_sample_rate_hz: float
    is_default: bool
    host_api: str = ""


@dataclass(frozen=True)
class RecordedTake:
    """A take saved by :func:`record_take`.

    Attributes
    ----------
    path : str
        The WAV file (mono, 16-bit PCM, at ``sample_rate_hz``).
    duration_s : float
        Length of the saved take, count-in included.
    sample_rate_hz : int
        Sample rate of the take (the device's native rate unless one was asked for).
    device : str
        Name of the input device.
    tempo_bpm : float or None
        The tempo given for the take (None when none was given).
    first_downbeat_s : float or None
        Where bar 1 lands in the saved take's time line, latency compensated: the moment the
        singer heard the first beat after the count-in. None without a count-in or click.
    latency_s : float
        Round-trip latency used to compensate (input + output; 0 without a click).
    latency_source : str
        Where ``latency_s`` came from: ``"given"``, ``"heard"`` (the count-in clicks found in
        the input), ``"reported"`` (PortAudio's stream latencies) or ``"none"`` (no click
        played, nothing to compensate).
    clipped_fraction : float
        Fraction of the take's samples at full scale (0 to 1); above ~0.001 the take distorts.
    peak_dbfs : float
        Highest sample level in dB relative to full scale (-120 for silence).
    count_in_beats : int
        Beats of count-in before bar 1.
    meter_beats : int
        Beats per bar used for the click's accents.
    dropouts : int
        Times the computer lost input samples during the take (0 when all went well).
    stopped_by : str
        ``"seconds"``, ``"enter"``, ``"stop_event"``, ``"interrupt"`` (Ctrl-C),
        ``"max_length"`` or ``"device_error"`` (the device failed after bar 1; the take holds
        what came in until then).
    """

    path: str
    duration_s: float
    sample_rate_hz: int
    device: str
    tempo_bpm: float | None
    first_downbeat_s: float | None
    latency_s: float
    latency_source: str
    clipped_fraction: float
    peak_dbfs: float
    count_in_beats: int = 0
    meter_beats: int = 4
    dropouts: int = 0
    stopped_by: str = "seconds"

    def to_json(self) -> dict:
        """A JSON-ready dict of all fields (seconds rounded to 0.1 ms)."""
        d = asdict(self)
        for k in ("duration_s", "first_downbeat_s", "latency_s"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        d["peak_dbfs"] = round(float(d["peak_dbfs"]), 2)
        d["clipped_fraction"] = round(float(d["clipped_fraction"]), 6)
        return d


@dataclass(frozen=True)
class TakePlan:
    """Where the take starts and where bar 1 lands; see :func:`plan_take`.

    Attributes
    ----------
    first_click_frame : int or None
        Stream frame of the first click written to the output (None without clicks).
    take_start_frame : int
        Stream frame of the first input sample saved in the take.
    downbeat_frame : int
        Stream frame (input side) of bar 1; recording for ``seconds`` counts from here.
    first_downbeat_s : float or None
        ``downbeat_frame - take_start_frame`` in seconds (None without clicks).
    latency_frames : int
        Round-trip latency in frames.
    """

    first_click_frame: int | None
    take_start_frame: int
    downbeat_frame: int
    first_downbeat_s: float | None
    latency_frames: int


@dataclass(frozen=True)
class LatencyMeasurement:
    """A loopback latency measurement; see :func:`measure_latency`.

    Attributes
    ----------
    latency_s : float
        Measured round trip, output sample written to input sample read (median over clicks).
    reported_latency_s : float
        What PortAudio reported for the same stream (input + output latency).
    spread_s : float
        Largest minus smallest round trip over the clicks found.
    clicks_found : int
        Clicks heard that agree (within 2 ms), of ``clicks_played``.
    clicks_played : int
    sample_rate_hz : int
    """

    latency_s: float
    reported_latency_s: float
    spread_s: float
    clicks_found: int
    clicks_played: int
    sample_rate_hz: int


# ---- PortAudio access ------------------------------------------------------------------------
_ALSA_HANDLER = None


def _quiet_alsa() -> None:
    """Silence alsa-lib's own stderr messages ("ALSA lib pcm.c: ... Unknown PCM ...").

    PortAudio probes every ALSA device it knows, and alsa-lib prints a line for each that fails;
    those lines would break the one-line error contract. ``HUM2BAND_DEBUG=1`` keeps them.
    """
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None or not sys.platform.startswith("linux"):
        return
    if os.environ.get("HUM2BAND_DEBUG", "") not in ("", "0"):
        return
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                        ctypes.c_int, ctypes.c_char_p)
        handler = handler_type(lambda *args: None)
        lib.snd_lib_error_set_handler(handler)
        _ALSA_HANDLER = handler  # keep a reference: alsa-lib calls it later
    except (OSError, AttributeError):
        _ALSA_HANDLER = False


def _debugging() -> bool:
    return os.environ.get("HUM2BAND_DEBUG", "") not in ("", "0")


def _fileno(stream) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, ValueError, OSError, TypeError):
        return None


@contextlib.contextmanager
def portaudio_quiet(stream: TextIO | None = None):
    """Keep PortAudio's own lines off the terminal while it runs.

    PortAudio's ALSA host API prints diagnostics such as ``Expression 'err' failed in
    'src/hostapi/alsa/pa_linux_alsa.c'`` straight to file descriptor 2, from its own threads as
    well, which no Python-level redirection can catch. Inside this context fd 2 points at
    ``/dev/null`` (``HUM2BAND_DEBUG=1`` keeps it); our own lines still reach the terminal.

    Parameters
    ----------
    stream : TextIO, optional
        Where the caller writes its own lines (the level meter). If it writes to fd 2, the
        context yields a stream on a copy of the real fd 2 to write to instead.

    Yields
    ------
    TextIO or None
        ``stream``, or its stand-in on the real fd 2.
    """
    if _debugging() or not sys.platform.startswith(("linux", "darwin")):
        yield stream
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no fd 2 at all: nothing to keep quiet
        yield stream
        return
    substitute = None
    try:
        os.dup2(null, 2)
        if stream is not None and _fileno(stream) == 2:
            substitute = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8",
                                   errors="replace")
        yield substitute if substitute is not None else stream
    finally:
        if substitute is not None:
            try:
                substitute.flush()
            finally:
                substitute.close()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def sounddevice_module():
    """Import ``sounddevice`` (loading PortAudio); raises :class:`AudioDeviceError` if missing."""
    _quiet_alsa()
    try:
        with portaudio_quiet():
            import sounddevice
    except ImportError as error:
        raise AudioDeviceError(
            "recording needs the Python package 'sounddevice' "
            f"({_one_line(error)}): run '.venv/bin/pip install sounddevice' or 'make setup'"
        ) from error
    except OSError as error:  # sounddevice raises OSError when libportaudio is not found
        raise AudioDeviceError(
            "recording needs the PortAudio library, which is missing: install it "
            "(Debian/Ubuntu: sudo apt-get install libportaudio2; macOS: brew install portaudio)"
        ) from error
    return sounddevice


def refresh_devices() -> None:
    """Make PortAudio look for devices again (after plugging in a microphone, or changing the
    audio server); the device list is otherwise fixed when PortAudio is first loaded."""
    sd = sounddevice_module()
    with portaudio_quiet():
        sd._terminate()
        sd._initialize()


def _query(sd):
    try:
        with portaudio_quiet():
            return list(sd.query_devices()), list(sd.query_hostapis())
    except sd.PortAudioError as error:
        raise AudioDeviceError(f"the audio system does not answer ({_one_line(error)}): "
                               "check your sound settings") from error


def _default_index(sd, kind: str) -> int:
    try:
        return int(sd.query_devices(kind=kind)["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        return -1


def _all_input_devices(sd) -> list[InputDevice]:
    devices, apis = _query(sd)
    default = _default_index(sd, "input")
    found = []
    for d in devices:
        if int(d["max_input_channels"]) <= 0:
            continue
        api = d.get("hostapi", -1)
        found.append(InputDevice(
            index=int(d["index"]), name=str(d["name"]), channels=int(d["max_input_channels"]),
            default_sample_rate_hz=float(d["default_samplerate"]),
            is_default=int(d["index"]) == default,
            host_api=str(apis[api]["name"]) if 0 <= api < len(apis) else "",
        ))
    if found and not any(d.is_default for d in found):  # no system default: the first one
        first = found[0]
        found[0] = InputDevice(first.index, first.name, first.channels,
                               first.default_sample_rate_hz, True, first.host_api)
    return found


def list_input_devices() -> list[InputDevice]:
    """Every device that can record, in PortAudio's order.

    Returns
    -------
    list of InputDevice
        Never empty; exactly one has ``is_default`` set.

    Raises
    ------
    AudioDeviceError
        There is no input device at all, or PortAudio / sounddevice is missing.
    """
    found = _all_input_devices(sounddevice_module())
    if not found:
        raise AudioDeviceError(NO_MICROPHONE)
    return found


def find_input_device(device: int | str | None = None) -> InputDevice:
    """The input device for ``device``: None (the default), an index, or part of a name.

    A name matches case-insensitively: an exact name wins, otherwise it must be part of exactly
    one device's name.

    Raises
    ------
    AudioDeviceError
        No input device at all, none that matches, or several that match.
    """
    found = list_input_devices()
    if device is None:
        return next(d for d in found if d.is_default)
    text = str(device).strip()
    if isinstance(device, int) or text.isdigit():
        for d in found:
            if d.index == int(text):
                return d
        raise AudioDeviceError(f"no microphone has number {text}: 'hum2band devices' lists them")
    exact = [d for d in found if d.name.casefold() == text.casefold()]
    if exact:
        return exact[0]
    part = [d for d in found if text.casefold() in d.name.casefold()]
    if len(part) == 1:
        return part[0]
    if not part:
        raise AudioDeviceError(f"no microphone matches '{text}': pick one of "
                               f"{_names(found)}, or see 'hum2band devices'")
    raise AudioDeviceError(f"'{text}' matches several microphones ({_names(part)}): give more "
                           "of the name, or its number from 'hum2band devices'")


def _names(devices: list[InputDevice], most: int = 6) -> str:
    shown = ", ".join(f"{d.index} '{d.name}'" for d in devices[:most])
    return shown + (f" and {len(devices) - most} more" if len(devices) > most else "")


def _output_device(sd, device: int | str | None) -> dict:
    """PortAudio's description of the output device for the click."""
    devices, _ = _query(sd)
    outputs = [d for d in devices if int(d["max_output_channels"]) > 0]
    no_output = ("no speaker or headphones found for the click: connect some, pick them with "
                 "--output-device, or record without --count-in and --click")
    if not outputs:
        raise AudioDeviceError(no_output)
    if device is None:
        index = _default_index(sd, "output")
        return next((d for d in outputs if int(d["index"]) == index), outputs[0])
    text = str(device).strip()
    if isinstance(device, int) or text.isdigit():
        match = [d for d in outputs if int(d["index"]) == int(text)]
    else:
        match = [d for d in outputs if d["name"].casefold() == text.casefold()] or \
                [d for d in outputs if text.casefold() in d["name"].casefold()]
    if len(match) != 1:
        raise AudioDeviceError(f"no single output device matches '{text}' for the click: "
                               "'hum2band devices' lists them")
    return match[0]


# ---- pure helpers (timing, click, levels) ----------------------------------------------------
def beat_period_s(tempo_bpm: float) -> float:
    """Seconds per beat at ``tempo_bpm`` beats per minute."""
    return 60.0 / float(tempo_bpm)


def plan_take(sample_rate_hz: int, tempo_bpm: float | None, count_in_beats: int,
              latency_s: float, clicks: bool,
              lead_in_s: float = CLICK_LEAD_IN_S) -> TakePlan:
    """Where the saved take starts in the stream and where bar 1 lands in it.

    Parameters
    ----------
    sample_rate_hz : int
        Stream sample rate.
    tempo_bpm : float or None
        Tempo of the click (needed when ``clicks``).
    count_in_beats : int
        Beats of count-in before bar 1.
    latency_s : float
        Round trip from writing an output sample to reading the input sample recorded at the
        moment it was heard (input + output latency), in seconds.
    clicks : bool
        Whether any click is played (count-in or click track). Without clicks the take starts at
        the stream's first frame and has no known downbeat.
    lead_in_s : float
        Silence before the first click.

    Returns
    -------
    TakePlan
        With clicks: the first click is written at output frame ``F = round(lead_in_s * rate)``,
        heard at input frame ``F + L`` (``L = round(latency_s * rate)``), which is where the take
        starts; bar 1 is beat ``count_in_beats``, written at ``F + round(n * 60 / bpm * rate)``,
        so it lands ``round(n * 60 / bpm * rate) / rate`` seconds into the take.
    """
    if not clicks:
        return TakePlan(None, 0, 0, None, 0)
    if tempo_bpm is None:
        raise ValueError("clicks need a tempo")
    rate = int(sample_rate_hz)
    latency_frames = max(0, int(round(float(latency_s) * rate)))
    first_click = int(round(lead_in_s * rate))
    bar1_offset = int(round(count_in_beats * beat_period_s(tempo_bpm) * rate))
    start = first_click + latency_frames
    return TakePlan(first_click, start, start + bar1_offset, bar1_offset / rate, latency_frames)


def click_sound(sample_rate_hz: int, accent: bool) -> np.ndarray:
    """One metronome click: a 20 ms sine burst with a fast decay, shape (n,), float32.

    The accent (first beat of a bar) is higher (2 kHz) than the other beats (1.5 kHz).
    """
    n = max(1, int(round(CLICK_LENGTH_S * sample_rate_hz)))
    t = np.arange(n) / float(sample_rate_hz)
    freq = ACCENT_CLICK_HZ if accent else BEAT_CLICK_HZ
    attack = np.minimum(1.0, np.arange(n) / max(1.0, 0.001 * sample_rate_hz))
    env = attack * np.exp(-t / (CLICK_LENGTH_S / 5.0))
    return (CLICK_LEVEL * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def render_clicks(start_frame: int, n_frames: int, first_click_frame: int,
                  beat_period_frames: float, n_beats: int | None, count_in_beats: int,
                  meter_beats: int, sounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The click track for output frames ``[start_frame, start_frame + n_frames)``.

    Beat ``b`` (0, 1, ...) starts at frame ``first_click_frame + round(b * beat_period_frames)``;
    beat ``count_in_beats`` is bar 1, and beats ``count_in_beats + k * meter_beats`` (and the
    count-in beats a whole number of bars before them) are accented.

    Parameters
    ----------
    n_beats : int or None
        Number of beats to click (None: no end).
    sounds : (accent, beat)
        The two click sounds from :func:`click_sound`.

    Returns
    -------
    np.ndarray, shape (n_frames,), float32
    """
    out = np.zeros(int(n_frames), dtype=np.float32)
    longest = max(len(sounds[0]), len(sounds[1]))
    lo = math.ceil((start_frame - longest - first_click_frame) / beat_period_frames)
    hi = math.floor((start_frame + n_frames - 1 - first_click_frame) / beat_period_frames)
    lo = max(lo, 0)
    if n_beats is not None:
        hi = min(hi, n_beats - 1)
    for b in range(lo, hi + 1):
        sound = sounds[0] if (b - count_in_beats) % meter_beats == 0 else sounds[1]
        at = first_click_frame + int(round(b * beat_period_frames)) - start_frame
        a, z = max(at, 0), min(at + len(sound), n_frames)
        if z > a:
            out[a:z] += sound[a - at:z - at]
    return out


def mix_to_mono(frames: np.ndarray) -> np.ndarray:
    """One channel from an input of shape (n, channels).

    Two-channel audio interfaces often carry a microphone on one input only; averaging would
    lose 6 dB. A channel more than 20 dB quieter than the loudest is therefore left out, and the
    rest are averaged.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.shape[1] == 1:
        return np.ascontiguousarray(x[:, 0])
    if not len(x):
        return np.zeros(0, dtype=np.float32)
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=0))
    keep = rms >= 0.1 * rms.max() if rms.max() > 0 else np.ones(x.shape[1], dtype=bool)
    return np.ascontiguousarray(x[:, keep].mean(axis=1), dtype=np.float32)


def dbfs(level: float) -> float:
    """A linear level (1 = full scale) in dBFS, floored at :data:`SILENCE_DBFS`."""
    return max(SILENCE_DBFS, 20.0 * math.log10(level)) if level > 0 else SILENCE_DBFS


def level_stats(samples: np.ndarray) -> tuple[float, float]:
    """``(clipped_fraction, peak_dbfs)`` of samples in [-1, 1] (any shape)."""
    x = np.abs(np.asarray(samples, dtype=np.float32))
    if x.size == 0:
        return 0.0, SILENCE_DBFS
    return float(np.mean(x >= CLIP_LEVEL)), dbfs(float(x.max()))


def meter_line(elapsed_s: float, rms_dbfs: float, peak_dbfs: float, width: int = 24,
               count_in: tuple[int, int] | None = None, hint: str = "") -> str:
    """One line of the level meter, e.g. ``REC 0:07.3 [#########.......] -18 dBFS peak -6``.

    ``count_in=(beat, of)`` shows the count-in instead (beat 1-based). The bar spans -60 to
    0 dBFS; a peak at full scale shows ``CLIP``.
    """
    if count_in is not None:
        beat, total = count_in
        dots = " ".join(str(i + 1) if i < beat else "." for i in range(total))
        return f"count-in {dots}  {hint}".rstrip()
    filled = int(round(width * min(1.0, max(0.0, (rms_dbfs + 60.0) / 60.0))))
    minutes, seconds = divmod(max(0.0, elapsed_s), 60.0)
    peak = "CLIP" if peak_dbfs >= dbfs(CLIP_LEVEL) else f"peak {peak_dbfs:4.0f}"
    return (f"REC {int(minutes)}:{seconds:04.1f} [{'#' * filled}{'.' * (width - filled)}] "
            f"{max(rms_dbfs, -99.0):4.0f} dBFS {peak}  {hint}").rstrip()


def find_template(signal: np.ndarray, template: np.ndarray, lo: int,
                  hi: int) -> tuple[int, float]:
    """Where ``template`` starts in ``signal[lo:hi + len(template)]``, by cross-correlation.

    Returns
    -------
    (frame, correlation)
        Start frame in ``signal`` of the best match, and its normalised correlation (-1 to 1).
    """
    from scipy.signal import correlate

    x = np.asarray(signal, dtype=np.float64)
    t = np.asarray(template, dtype=np.float64)
    lo = max(0, int(lo))
    seg = x[lo:min(len(x), int(hi) + len(t))]
    if len(seg) < len(t):
        return lo, 0.0
    c = correlate(seg, t, mode="valid", method="fft")
    csum = np.concatenate([[0.0], np.cumsum(seg * seg)])
    energy = np.maximum(csum[len(t):] - csum[:-len(t)], 0.0)  # energy of each window
    norm = np.sqrt(np.maximum(energy, 1e-20) * float(np.dot(t, t)))
    r = c / norm
    r[energy < 1e-12 * len(t)] = 0.0
    k = int(np.argmax(r))
    return lo + k, float(r[k])


# ---- recording -------------------------------------------------------------------------------
def _one_line(text) -> str:
    return " ".join(str(text).split())


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _EnterKey:
    """Non-blocking check for a pressed Enter on a terminal's stdin."""

    def __init__(self, stdin) -> None:
        self.stdin = stdin

    def pressed(self) -> bool:
        if sys.platform == "win32":  # pragma: no cover - Windows console
            import msvcrt

            while msvcrt.kbhit():
                if msvcrt.getwch() in ("\r", "\n"):
                    return True
            return False
        try:
            ready, _, _ = select.select([self.stdin], [], [], 0)
        except (OSError, ValueError):
            return False
        if ready:
            self.stdin.readline()
            return True
        return False


class _Meter:
    """The level meter on ``stream``: one live line on a terminal, a few plain lines elsewhere."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.live = stream is not None and _isatty(stream)
        self.last = 0.0
        self.width = 0

    def say(self, text: str) -> None:
        if self.stream is None:
            return
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def show(self, text: str, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self.last < METER_INTERVAL_S:
            return
        self.last = now
        self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
        self.width = len(text)
        self.stream.flush()

    def clear(self) -> None:
        if self.live and self.width:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.width = 0


class _Capture:
    """State shared between the PortAudio callback (its thread) and the recording loop.

    ``frame`` counts frames on the take's one time line. A capture that replaces a stream which
    died (``resume``: the old capture's last ``(monotonic_s, frame)``) starts at the frame the
    old one reached and, on its first callback, first puts in as many frames of silence as
    went by on the clock meanwhile, so the clicks it plays and the input it records stay where
    they would have been: a restart never moves the singer against the grid.
    """

    def __init__(self, sample_rate_hz: int, plan: TakePlan, tempo_bpm: float | None,
                 count_in_beats: int, meter_beats: int, click: bool, start_frame: int = 0,
                 resume: tuple[float, int] | None = None) -> None:
        self.chunks: queue.SimpleQueue = queue.SimpleQueue()
        self.rate = int(sample_rate_hz)
        self.frame = int(start_frame)
        self.resume = resume
        self.clock: tuple[float, int] | None = None  # (monotonic_s, frame) after the last block
        self.problems: list[tuple[int, str]] = []
        self.plan = plan
        self.clicks = plan.first_click_frame is not None
        if self.clicks:
            self.beat_frames = beat_period_s(tempo_bpm) * sample_rate_hz
            self.n_beats = None if click else count_in_beats
            self.count_in_beats = count_in_beats
            self.meter_beats = meter_beats
            self.sounds = (click_sound(sample_rate_hz, True), click_sound(sample_rate_hz, False))

    def _note(self, status, frames: int) -> None:
        if status and (status.input_overflow or status.input_underflow):
            self.problems.append((self.frame, str(status)))

    def _catch_up(self, frames: int, channels: int, now_s: float) -> None:
        """Silence for the time the stream was down (first callback after a restart only)."""
        if self.resume is None:
            return
        then_s, then_frame = self.resume
        self.resume = None
        gap = int(round((now_s - then_s) * self.rate)) - frames - (self.frame - then_frame)
        if gap > 0:
            self.chunks.put(np.zeros((gap, channels), dtype=np.float32))
            self.problems.append((self.frame, "restart"))
            self.frame += gap

    def input_callback(self, indata, frames, time_info, status) -> None:
        now_s = time.monotonic()
        self._catch_up(frames, indata.shape[1], now_s)
        self._note(status, frames)
        self.chunks.put(indata.copy())
        self.frame += frames
        self.clock = (now_s, self.frame)

    def duplex_callback(self, indata, outdata, frames, time_info, status) -> None:
        now_s = time.monotonic()
        self._catch_up(frames, indata.shape[1], now_s)
        self._note(status, frames)
        self.chunks.put(indata.copy())
        track = render_clicks(self.frame, frames, self.plan.first_click_frame, self.beat_frames,
                              self.n_beats, self.count_in_beats, self.meter_beats, self.sounds)
        outdata[:] = track[:, None]
        self.frame += frames
        self.clock = (now_s, self.frame)


def _check_options(seconds, bpm, count_in_beats, click, meter_beats, latency_s, sample_rate_hz,
                   max_seconds) -> None:
    if seconds is not None and not (0 < seconds <= max_seconds):
        raise OptionError(f"recording length {seconds:g} s is out of range: give more than 0 and "
                          f"at most {max_seconds:g} seconds")
    if bpm is not None and not (TEMPO_RANGE_BPM[0] <= bpm <= TEMPO_RANGE_BPM[1]):
        raise OptionError(f"tempo {bpm:g} bpm is out of range: give a tempo between "
                          f"{TEMPO_RANGE_BPM[0]:.0f} and {TEMPO_RANGE_BPM[1]:.0f} bpm")
    if int(count_in_beats) != count_in_beats or not 0 <= count_in_beats <= 64:
        raise OptionError(f"count-in of {count_in_beats} beats: give a whole number of beats "
                          "from 0 to 64")
    if (count_in_beats or click) and bpm is None:
        raise OptionError("a count-in or click needs a tempo: add --tempo BPM")
    if int(meter_beats) != meter_beats or not 1 <= meter_beats <= 16:
        raise OptionError(f"{meter_beats} beats per bar: give 1 to 16")
    if latency_s is not None and not (0 <= latency_s < 2.0):
        raise OptionError(f"latency {latency_s * 1000:g} ms is out of range: give 0 to 2000 ms")
    if sample_rate_hz is not None and not (8000 <= sample_rate_hz <= 384000):
        raise OptionError(f"sample rate {sample_rate_hz:g} Hz is out of range: give 8000 to "
                          "384000 Hz, or leave it out to use the microphone's own rate")


def _check_writable(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = _one_line(error.strerror or error)
        raise OptionError(f"cannot create the folder '{folder}' for the take ({reason}): "
                          "choose another place") from error
    if path.is_dir():
        raise OptionError(f"'{path}' is a folder: give a file name for the take, like take.wav")
    if not os.access(folder, os.W_OK):
        raise OptionError(f"cannot write into '{folder}': choose another place for the take")


def _channels(in_dev: InputDevice, out_dev: dict | None) -> tuple[int, int]:
    """Channels opened: up to 2 inputs (mixed to mono later) and up to 2 outputs (the click).

    :func:`record_take` and :func:`measure_latency` open the same layout, so a measured latency
    holds for the recording stream (with PulseAudio it depends on the channel count).
    """
    in_channels = max(1, min(2, in_dev.channels))
    out_channels = 0 if out_dev is None else max(1, min(2, int(out_dev["max_output_channels"])))
    return in_channels, out_channels


def _open_stream(sd, in_dev: InputDevice, out_dev: dict | None, rate: int, capture: _Capture):
    channels, out_channels = _channels(in_dev, out_dev)
    try:
        if out_dev is None:
            return sd.InputStream(device=in_dev.index, channels=channels, samplerate=rate,
                                  dtype="float32", callback=capture.input_callback)
        return sd.Stream(device=(in_dev.index, int(out_dev["index"])),
                         channels=(channels, out_channels), samplerate=rate, dtype="float32",
                         callback=capture.duplex_callback)
    except (sd.PortAudioError, ValueError) as error:
        both = f" with '{out_dev['name']}' for the click" if out_dev is not None else ""
        raise AudioDeviceError(
            f"cannot record from '{in_dev.name}'{both} at {rate} Hz ({_one_line(error)}): "
            "close other programs using it, or pick another with --device"
        ) from error


def record_take(path: str | os.PathLike, seconds: float | None = None,
                device: int | str | None = None, sample_rate_hz: int | None = None,
                bpm: float | None = None, count_in_beats: int = 0, click: bool = False,
                meter_beats: int = 4, level_meter: TextIO | None = None,
                stop_event: threading.Event | None = None, latency_s: float | None = None,
                output_device: int | str | None = None,
                started_event: threading.Event | None = None,
                max_seconds: float = DEFAULT_MAX_SECONDS, stdin=None,
                shown_path: str | os.PathLike | None = None) -> RecordedTake:
    """Record one take from a microphone and save it as a mono 16-bit WAV file.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save the take (``.wav``); its folder is created, an existing file replaced.
    seconds : float, optional
        Stop after this many seconds of singing, counted from bar 1 (from the start without a
        count-in). On a terminal, Enter stops earlier. None: stop when Enter is pressed (stdin
        must be a terminal) or ``stop_event`` is set.
    device : int or str, optional
        Input device: index or part of its name (default: the system's default input).
    sample_rate_hz : int, optional
        Recording rate (default: the device's native rate).
    bpm : float, optional
        Tempo the singer will sing at. Needed for a count-in or click; returned as
        ``tempo_bpm`` so the arrangement can use it.
    count_in_beats : int
        Clicks before bar 1 (0: none).
    click : bool
        Keep clicking after the count-in, for the whole take.
    meter_beats : int
        Beats per bar: the first beat of each bar gets the higher click.
    level_meter : TextIO, optional
        Where to show the level meter (a terminal: one live line; otherwise a start and an end
        line). None: show nothing.
    stop_event : threading.Event, optional
        Set it (from another thread) to stop recording.
    latency_s : float, optional
        Round-trip latency to compensate (e.g. from :func:`measure_latency`); default: the
        round trip of the count-in clicks if the microphone hears them, else what PortAudio
        reports for the stream.
    output_device : int or str, optional
        Device for the click (default: the system's default output).
    started_event : threading.Event, optional
        Set when the recording reaches bar 1 (without a count-in: when the first samples
        arrive). From then on the take is under way: a device failure no longer restarts it.
    max_seconds : float
        Stop anyway after this many seconds after bar 1.
    stdin : file, optional
        Where Enter is read from (default: ``sys.stdin``).
    shown_path : str or os.PathLike, optional
        The path the closing "recorded ... to PATH" line names (default: ``path``), for a caller
        that moves the take to its final place afterwards.

    Returns
    -------
    RecordedTake

    Raises
    ------
    OptionError
        A bad option, nothing that could stop the recording, or a take that cannot be written.
    AudioDeviceError
        No microphone (or none matching ``device``), no output for the click, PortAudio missing,
        or a device that fails or stays silent before bar 1 three times in a row. A stream that
        fails before bar 1 is reopened quietly on the same time line: the count-in carries on
        where it was, the time it was down is silence in the take, and bar 1 stays where the
        singer heard it (the gap counts as a dropout if it falls inside the take). One that
        fails after bar 1 ends the take, with ``stopped_by="device_error"``.
    TakeLengthError
        Recording stopped before bar 1.
    KeyboardInterrupt
        Ctrl-C during the count-in (nothing is saved). Ctrl-C after bar 1 stops and saves.
    """
    _check_options(seconds, bpm, count_in_beats, click, meter_beats, latency_s, sample_rate_hz,
                   max_seconds)
    count_in_beats, meter_beats = int(count_in_beats), int(meter_beats)
    stdin = sys.stdin if stdin is None else stdin
    enter = _EnterKey(stdin) if _isatty(stdin) else None  # Enter stops, even with seconds
    if seconds is None and enter is None and stop_event is None:
        raise OptionError("nothing would stop the recording: give --seconds N, or run it in a "
                          "terminal and press Enter to stop")
    target = Path(path)
    if target.is_dir():
        raise OptionError(f"'{target}' is a folder: give a file name for the take, like take.wav")
    with portaudio_quiet(level_meter) as level_meter:
        return _record(target, seconds, device, sample_rate_hz, bpm, count_in_beats, click,
                       meter_beats, level_meter, stop_event, latency_s, output_device,
                       started_event, max_seconds, enter, shown_path or target)


def _record(target: Path, seconds, device, sample_rate_hz, bpm, count_in_beats, click,
            meter_beats, level_meter, stop_event, latency_s, output_device, started_event,
            max_seconds, enter, shown_path) -> RecordedTake:
    """:func:`record_take` once its options are checked (PortAudio kept quiet around it)."""
    sd = sounddevice_module()
    in_dev = find_input_device(device)
    _check_writable(target)  # creates the folder: only once there is a microphone
    clicks = bpm is not None and (count_in_beats > 0 or click)
    out_dev = _output_device(sd, output_device) if clicks else None
    rate = int(round(sample_rate_hz or in_dev.default_sample_rate_hz))

    meter = _Meter(level_meter)
    if enter is None:
        how = f"for {seconds:g} s" if seconds is not None else "until stopped"
    else:
        how = (f"for {seconds:g} s, or press Enter" if seconds is not None
               else "press Enter to stop")
    meter.say(f"recording from '{in_dev.name}' at {rate} Hz ({how})"
              + (f", count-in {count_in_beats} at {bpm:g} bpm" if count_in_beats else ""))
    settings = _Settings(rate, bpm, count_in_beats, click, meter_beats, clicks, seconds,
                         max_seconds, latency_s)
    session = _Session(sd, in_dev, out_dev, settings, meter, enter, stop_event, started_event)
    for attempt in range(1 + START_RETRIES):
        try:
            session.run()
            break
        except _StreamDied as died:
            if session.received > session.plan.downbeat_frame:
                session.stopped_by = "device_error"  # keep what was sung before it stopped
                break
            if attempt == START_RETRIES:
                raise AudioDeviceError(f"'{in_dev.name}' {died} {attempt + 1} times before bar "
                                       "1: check it is connected and not used by another "
                                       "program, then try again") from None
            # quietly: the new stream carries on the same time line (see _Capture)
            session.reopen(sd, in_dev, out_dev)
    return session.save(target, shown_path)


#: Times a stream that fails before bar 1 is opened again (the count-in starts over).
START_RETRIES = 2


class _StreamDied(Exception):
    """The PortAudio stream stopped or went silent; ``str()`` says which."""


@dataclass(frozen=True)
class _Settings:
    """What :func:`record_take` was asked for, after checking."""

    rate: int
    bpm: float | None
    count_in_beats: int
    click: bool
    meter_beats: int
    clicks: bool
    seconds: float | None
    max_seconds: float
    latency_s: float | None


class _Session:
    """One attempt at recording: a stream, its click schedule, and the loop that reads it."""

    def __init__(self, sd, in_dev: InputDevice, out_dev: dict | None, settings: _Settings,
                 meter: _Meter, enter: _EnterKey | None, stop_event, started_event) -> None:
        s = settings
        self.s, self.in_dev, self.meter = s, in_dev, meter
        self.enter, self.stop_event, self.started_event = enter, stop_event, started_event
        # The callback only reads the click schedule (first click frame, beat length), which
        # does not depend on the latency; the take's start and bar 1 do, planned below.
        self.schedule = plan_take(s.rate, s.bpm, s.count_in_beats, 0.0, s.clicks)
        self.capture = _Capture(s.rate, self.schedule, s.bpm, s.count_in_beats, s.meter_beats,
                                s.click)
        self.problems: list[tuple[int, str]] = []
        self.stream = _open_stream(sd, in_dev, out_dev, s.rate, self.capture)
        if not s.clicks:
            self.latency_s, self.source = 0.0, "none"
        elif s.latency_s is not None:
            self.latency_s, self.source = float(s.latency_s), "given"
        else:
            self.latency_s, self.source = float(sum(self.stream.latency)), "reported"
        self._plan()
        # Without a given latency, listen for the first clicks in the input (speakers near the
        # microphone, or a loopback) and, if they are there, use the round trip they show.
        self.listen = (_listening_plan(self.plan, s.rate, s.bpm, s.count_in_beats,
                                       s.meter_beats, s.click)
                       if self.source == "reported" else None)
        self.chunks: list[np.ndarray] = []
        self.received = 0
        self.stopped_by: str | None = None

    def _plan(self) -> None:
        s = self.s
        self.plan = plan_take(s.rate, s.bpm, s.count_in_beats, self.latency_s, s.clicks)
        self.end_frame = (None if s.seconds is None
                          else self.plan.downbeat_frame + int(round(s.seconds * s.rate)))
        self.limit_frame = self.plan.downbeat_frame + int(round(s.max_seconds * s.rate))

    def _try_listening(self) -> None:
        heard = _listen(self.chunks, self.listen, self.s.rate)
        self.listen = None
        if heard is not None:
            self.latency_s, self.source = heard, "heard"
            self._plan()

    def reopen(self, sd, in_dev: InputDevice, out_dev: dict | None) -> None:
        """Open a new stream after the old one died, on the same time line.

        What the old stream delivered is kept; the new capture starts at the frame the old one
        reached and pads the time the device was down with silence, so the count-in and click
        go on where they were and bar 1 stays where the singer heard it. The latency and the
        plan are kept as they were. If the old stream never delivered a sample, nothing was
        heard yet and the time line simply starts again.
        """
        old = self.capture
        while True:
            try:
                block = old.chunks.get_nowait()
            except queue.Empty:
                break
            self.chunks.append(block)
            self.received += len(block)
        self.problems.extend(old.problems)
        s = self.s
        resume = old.clock if self.received else None
        self.capture = _Capture(s.rate, self.schedule, s.bpm, s.count_in_beats, s.meter_beats,
                                s.click, start_frame=self.received, resume=resume)
        self.stream = _open_stream(sd, in_dev, out_dev, s.rate, self.capture)
        self.stopped_by = None

    def run(self) -> None:
        """Record until a stop condition; raises :class:`_StreamDied` if the stream fails."""
        s, meter = self.s, self.meter
        meter.show(f"starting '{self.in_dev.name}'...", force=True)
        rms_db = peak_db = SILENCE_DBFS
        seen, last_data = 0, time.monotonic()
        opened = last_data
        hint = "Enter stops" if self.enter is not None else ""
        try:
            with self.stream:
                while self.stopped_by is None:
                    try:
                        block = self.capture.chunks.get(timeout=0.05)
                    except queue.Empty:
                        block = None
                    while block is not None:
                        self.chunks.append(block)
                        self.received += len(block)
                        level = np.abs(block)
                        if len(level):
                            rms_db = dbfs(float(np.sqrt(np.mean(np.square(level)))))
                            peak_db = max(peak_db - 0.5, dbfs(float(level.max())))
                        try:
                            block = self.capture.chunks.get_nowait()
                        except queue.Empty:
                            block = None
                    now = time.monotonic()
                    if self.received > seen:
                        seen, last_data = self.received, now
                    if self.listen is not None and self.received >= self.listen.ready_frame:
                        self._try_listening()
                    if (self.started_event is not None and self.listen is None
                            and self.received > self.plan.downbeat_frame):
                        self.started_event.set()
                    self.stopped_by = self._stop_reason(now, opened, last_data)
                    if self.stopped_by is None:
                        _show_progress(meter, self.received, self.plan, s.rate, s.bpm,
                                       s.count_in_beats, rms_db, peak_db, hint)
        except KeyboardInterrupt:
            meter.clear()
            if self.received <= self.plan.downbeat_frame:
                raise
            self.stopped_by = "interrupt"
        finally:
            meter.clear()

    def _stop_reason(self, now: float, opened: float, last_data: float) -> str | None:
        # with seconds, stop only once the latency is settled (bar 1 may still move)
        if self.end_frame is not None and self.received >= self.end_frame and self.listen is None:
            return "seconds"
        if self.received >= self.limit_frame:
            return "max_length"
        if self.stop_event is not None and self.stop_event.is_set():
            return "stop_event"
        if self.enter is not None and self.enter.pressed():
            return "enter"
        if not self.stream.active:
            raise _StreamDied("stopped recording")
        if not self.received and now - opened > START_TIMEOUT_S:
            raise _StreamDied("sends no sound")
        if self.received and now - last_data > STALL_TIMEOUT_S:
            raise _StreamDied("stopped sending sound")
        return None

    def save(self, target: Path, shown_path) -> RecordedTake:
        """Write the take (from the first click as heard, or the start) and describe it."""
        s, plan = self.s, self.plan
        if self.listen is not None:  # stopped early: use the clicks that did come in
            self._try_listening()
            plan = self.plan
        if self.received <= plan.downbeat_frame:
            raise TakeLengthError("recording stopped before bar 1, so there is no take: stop it "
                                  "after you finish singing")
        stop = self.received if self.end_frame is None else min(self.received, self.end_frame)
        frames = np.concatenate(self.chunks)[plan.take_start_frame:stop]
        mono = mix_to_mono(frames)
        clipped, peak = level_stats(frames)
        from ..files.audio import write_wav

        write_wav(target, mono, s.rate)
        problems = self.problems + self.capture.problems
        dropouts = sum(1 for f, _ in problems if f >= plan.take_start_frame)
        take = RecordedTake(
            path=str(target), duration_s=len(mono) / s.rate, sample_rate_hz=s.rate,
            device=self.in_dev.name, tempo_bpm=None if s.bpm is None else float(s.bpm),
            first_downbeat_s=plan.first_downbeat_s, latency_s=self.latency_s,
            latency_source=self.source, clipped_fraction=clipped, peak_dbfs=peak,
            count_in_beats=s.count_in_beats, meter_beats=s.meter_beats, dropouts=dropouts,
            stopped_by=self.stopped_by,
        )
        self.meter.say(f"recorded {take.duration_s:.1f} s to {shown_path} (peak {peak:.1f} dBFS)")
        return take


@dataclass(frozen=True)
class _ListenPlan:
    """Which clicks to look for in the input to find the round-trip latency."""

    click_frames: tuple[int, ...]   # output frame of each click
    templates: tuple[np.ndarray, ...]
    window_frames: int              # latest arrival looked for, after each click
    ready_frame: int                # input frames needed before looking


def _listening_plan(plan: TakePlan, rate: int, bpm: float, count_in_beats: int,
                    meter_beats: int, click: bool) -> _ListenPlan | None:
    """The first clicks (count-in, else the first four of the click track) to listen for."""
    n = count_in_beats if count_in_beats >= 2 else (4 if click else 0)
    if n < 2:
        return None
    beat = beat_period_s(bpm) * rate
    frames = tuple(plan.first_click_frame + int(round(b * beat)) for b in range(n))
    sounds = (click_sound(rate, True), click_sound(rate, False))
    templates = tuple(sounds[0] if (b - count_in_beats) % meter_beats == 0 else sounds[1]
                      for b in range(n))
    window = int(min(MAX_HEARD_LATENCY_S * rate, beat - len(sounds[0]) - 1))
    return _ListenPlan(frames, templates, window, frames[-1] + window + len(sounds[0]))


def _listen(chunks: list[np.ndarray], listen: _ListenPlan, rate: int) -> float | None:
    mono = mix_to_mono(np.concatenate(chunks)[:listen.ready_frame]) if chunks else np.zeros(0)
    return heard_latency_s(mono, rate, listen.click_frames, listen.templates,
                           listen.window_frames)


def heard_latency_s(signal: np.ndarray, sample_rate_hz: int, click_frames: Sequence[int],
                    templates: Sequence[np.ndarray], window_frames: int,
                    min_correlation: float = 0.6, max_spread_s: float = 0.002) -> float | None:
    """The round trip shown by clicks heard in the input, or None if they are not heard clearly.

    Parameters
    ----------
    signal : np.ndarray, shape (n,)
        Input samples on the stream's frame counter (frame 0 = first input frame).
    click_frames : sequence of int
        Output frame where each click started.
    templates : sequence of np.ndarray
        The sound of each click.
    window_frames : int
        Look for each click from its output frame up to this many frames later.
    min_correlation : float
        Normalised cross-correlation a click needs to count as heard.
    max_spread_s : float
        Largest disagreement allowed between the clicks' round trips.

    Returns
    -------
    float or None
        Median round trip in seconds over the last clicks heard that agree with the last one
        within ``max_spread_s`` (a dropout early in the count-in shifts the input's time line;
        what counts is the time line from bar 1 on; clicks not heard are skipped); None when
        fewer than two clicks agree.
    """
    trips = []
    for start, template in zip(click_frames, templates):
        if start + window_frames + len(template) > len(signal):
            continue
        at, r = find_template(signal, template, start, start + window_frames)
        trips.append(at - start if r >= min_correlation else None)
    while trips and trips[-1] is None:
        trips.pop()
    agree = []
    for trip in reversed(trips):
        if trip is None:  # not heard (sung over, say): skip it
            continue
        if abs(trip - trips[-1]) > max_spread_s * sample_rate_hz:
            break
        agree.append(trip)
    if len(agree) < 2:
        return None
    return float(np.median(agree)) / sample_rate_hz


def _show_progress(meter: _Meter, received: int, plan: TakePlan, rate: int,
                   bpm: float | None, count_in_beats: int, rms_db: float, peak_db: float,
                   hint: str) -> None:
    if not meter.live or not received:
        return
    if received < plan.downbeat_frame and bpm is not None and count_in_beats:
        heard_s = (received - plan.take_start_frame) / rate
        beat = int(heard_s // beat_period_s(bpm)) + 1 if heard_s >= 0 else 0
        meter.show(meter_line(0.0, rms_db, peak_db, count_in=(min(beat, count_in_beats),
                                                              count_in_beats), hint=hint))
    else:
        meter.show(meter_line((received - plan.downbeat_frame) / rate, rms_db, peak_db,
                              hint=hint))


def take_warnings(take: RecordedTake) -> list[str]:
    """One-line advice about a take's level and dropouts (empty when all is well)."""
    notes = []
    if take.clipped_fraction > 0.001:
        notes.append(f"the take clipped ({take.clipped_fraction * 100:.1f}% of samples at full "
                     "scale): turn the input gain down or move back from the microphone")
    if take.peak_dbfs < -40.0:
        notes.append(f"the take is very quiet (peak {take.peak_dbfs:.0f} dBFS): check the "
                     "microphone is on and turn the input gain up")
    if take.stopped_by == "device_error":
        notes.append(f"the microphone stopped after {take.duration_s:.1f} s: the take is saved "
                     "up to there; check the connection")
    if take.dropouts:
        notes.append(f"the computer lost sound {take.dropouts} time(s) while recording: close "
                     "other programs and record again")
    return notes


# ---- latency calibration ---------------------------------------------------------------------
def _calibration_click(sample_rate_hz: int) -> np.ndarray:
    """A 6 ms noise burst (fixed seed): its cross-correlation has one sharp peak."""
    n = max(16, int(round(0.006 * sample_rate_hz)))
    rng = np.random.default_rng(5)
    return (0.7 * rng.uniform(-1, 1, n) * np.hanning(n)).astype(np.float32)


def measure_latency(device: int | str | None = None, output_device: int | str | None = None,
                    sample_rate_hz: int | None = None, clicks: int = 6,
                    interval_s: float = 0.25, max_latency_s: float = 0.5) -> LatencyMeasurement:
    """Measure the round-trip latency by playing clicks and finding them in the input.

    Works when the input hears the output: a microphone near the speakers, a cable from the
    output to the input, or a "monitor" input of the output. Each click is a noise burst;
    its position in the input is found by cross-correlation, and the round trip is the median
    of (input frame - output frame) over the largest group of clicks that agree within 2 ms.

    Returns
    -------
    LatencyMeasurement

    Raises
    ------
    AudioDeviceError
        No devices, or the clicks were not heard clearly (fewer than half of them, or fewer
        than two, agree within 2 ms).
    """
    with portaudio_quiet():
        return _measure_latency(device, output_device, sample_rate_hz, clicks, interval_s,
                                max_latency_s)


def _measure_latency(device, output_device, sample_rate_hz, clicks, interval_s,
                     max_latency_s) -> LatencyMeasurement:
    sd = sounddevice_module()
    in_dev = find_input_device(device)
    out_dev = _output_device(sd, output_device)
    rate = int(round(sample_rate_hz or in_dev.default_sample_rate_hz))
    burst = _calibration_click(rate)
    first = int(round(CLICK_LEAD_IN_S * rate))
    step = int(round(interval_s * rate))
    starts = [first + k * step for k in range(clicks)]
    total = starts[-1] + int(round((max_latency_s + 0.1) * rate)) + len(burst)
    track = np.zeros(total, dtype=np.float32)
    for s in starts:
        track[s:s + len(burst)] = burst
    recorded: list[np.ndarray] = []
    state = {"frame": 0}
    done = threading.Event()

    def callback(indata, outdata, frames, time_info, status):
        f = state["frame"]
        seg = track[f:f + frames]
        outdata[:len(seg)] = seg[:, None]
        outdata[len(seg):] = 0
        recorded.append(indata.copy())
        state["frame"] = f + frames
        if f + frames >= total:
            done.set()

    try:
        stream = sd.Stream(device=(in_dev.index, int(out_dev["index"])),
                           channels=_channels(in_dev, out_dev), samplerate=rate,
                           dtype="float32", callback=callback)
    except (sd.PortAudioError, ValueError) as error:
        raise AudioDeviceError(f"cannot play and record at once on '{in_dev.name}' and "
                               f"'{out_dev['name']}' ({_one_line(error)})") from error
    reported = float(sum(stream.latency))
    with stream:
        if not done.wait(START_TIMEOUT_S + total / rate):
            raise AudioDeviceError(f"'{in_dev.name}' sends no sound: check it is connected")
    signal = mix_to_mono(np.concatenate(recorded))
    trips = []
    for s in starts:
        at, r = find_template(signal, burst, s, s + int(round(max_latency_s * rate)))
        if r > 0.5:
            trips.append(at - s)
    # the largest group of clicks that agree within 2 ms (a dropout shifts the ones after it)
    groups = [[t for t in trips if abs(t - u) <= 0.002 * rate] for u in trips]
    best = max(groups, key=len, default=[])
    if len(best) < max(2, (clicks + 1) // 2):
        raise AudioDeviceError(
            "could not hear the calibration clicks clearly: turn the speakers up and hold the "
            "microphone near them, or give the latency yourself with --latency-ms"
        )
    trips_s = np.asarray(best) / rate
    return LatencyMeasurement(float(np.median(trips_s)), reported,
                              float(trips_s.max() - trips_s.min()), len(best), clicks, rate)
