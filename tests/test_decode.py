"""Tests for hum2band.files.audio: every format we promise, resampling, and every bad input.

Each test file is made here: a known signal is encoded with PyAV (the same FFmpeg that decodes
it), so the expected samples are known exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

import hum2band.files.audio as decode_module
from hum2band.files.audio import Audio, decode, probe_duration_s, write_wav
from hum2band.errors import InputError, OptionError, TakeLengthError

SIGNAL_S = 1.5
ONSET_S = 0.25  # the tone starts here, after silence, so we can check nothing shifts in time
FADE_S = 0.01


def tone(rate_hz: int, n_channels: int, onset_s: float = ONSET_S) -> np.ndarray:
    """Test signal, shape (n_channels, n): left 0.6 * 440 Hz, right 0.3 * 660 Hz (mono: their mean)."""
    t_s = np.arange(int(round(SIGNAL_S * rate_hz))) / rate_hz
    gain = np.clip((t_s - onset_s) / FADE_S, 0.0, 1.0)
    left = 0.6 * np.sin(2 * np.pi * 440.0 * t_s) * gain
    right = 0.3 * np.sin(2 * np.pi * 660.0 * t_s) * gain
    pair = np.stack([left, right])
    return (pair if n_channels == 2 else pair.mean(axis=0, keepdims=True)).astype(np.float32)


def encode(path, muxer: str, codec: str, signal: np.ndarray, rate_hz: int,
           codec_options: dict | None = None, muxer_options: dict | None = None) -> None:
    """Encode ``signal`` (n_channels, n) float32 into ``path`` with PyAV, or skip the test."""
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no '{codec}' codec")
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"this PyAV build cannot encode '{codec}'")
    layout = "stereo" if signal.shape[0] == 2 else "mono"
    with av.open(os.fspath(path), "w", format=muxer, options=muxer_options or {}) as container:
        stream = container.add_stream(codec, rate=rate_hz, layout=layout, options=codec_options or {})
        context = stream.codec_context
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate_hz, 0, Fraction(1, rate_hz)
        resampler = av.AudioResampler(format=context.format, layout=layout, rate=rate_hz,
                                      frame_size=context.frame_size or None)
        pts = 0
        for chunk in resampler.resample(frame) + resampler.resample(None):
            chunk.pts, pts = pts, pts + chunk.samples
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@dataclass(frozen=True)
class Case:
    """One format to check.

    ``step`` is the quantisation step of a lossless format (None for lossy ones); ``extra_s`` how
    much longer than the original a decode may be (lossy codecs pad to whole codec frames);
    ``min_corr`` the least correlation with the original (None: not waveform-preserving).
    """

    id: str
    filename: str
    muxer: str
    codec: str
    rate_hz: int
    n_channels: int
    step: float | None = None
    extra_s: float = 0.0
    min_corr: float | None = 0.99
    onset_tol_s: float = 0.002
    codec_options: tuple = ()


CASES = [
    Case("wav-s16", "take.wav", "wav", "pcm_s16le", 48000, 2, step=2.0**-15),
    Case("wav-s24", "take.wav", "wav", "pcm_s24le", 44100, 1, step=2.0**-23),
    Case("wav-s32", "take.wav", "wav", "pcm_s32le", 96000, 2, step=2.0**-31),
    Case("wav-f32", "take.wav", "wav", "pcm_f32le", 22050, 1, step=0.0),
    Case("wav-u8", "take.wav", "wav", "pcm_u8", 8000, 1, step=2.0**-7),
    Case("flac", "take.flac", "flac", "flac", 22050, 2, step=2.0**-15),
    Case("caf-alac", "take.caf", "caf", "alac", 44100, 2, step=2.0**-15),
    Case("mp3", "take.mp3", "mp3", "libmp3lame", 44100, 2, extra_s=0.005),
    # AAC pads the end to a whole 1024-sample frame: up to 23 ms at 44.1 kHz, 46 ms at 22.05 kHz.
    Case("m4a-aac", "take.m4a", "ipod", "aac", 44100, 1, extra_s=1024 / 44100),
    Case("3gp-aac", "take.3gp", "3gp", "aac", 22050, 1, extra_s=1024 / 22050),
    # FFmpeg's own vorbis encoder is experimental and coarse: lower correlation.
    Case("ogg-vorbis", "take.ogg", "ogg", "vorbis", 44100, 2, extra_s=0.005, min_corr=0.85,
         codec_options=(("strict", "experimental"),)),
    Case("ogg-opus", "take.opus", "ogg", "libopus", 48000, 2, extra_s=0.005),
    Case("webm-opus", "take.webm", "webm", "libopus", 48000, 1, extra_s=0.005),
    # AMR-NB is a speech codec: it keeps pitch but not the waveform, pads to 20 ms frames and
    # stores no encoder delay, so onsets may come up to one frame (20 ms) late.
    Case("amr-nb", "take.amr", "amr", "libopencore_amrnb", 8000, 1, extra_s=0.02, min_corr=None,
         onset_tol_s=0.02),
    Case("3gp-amr", "take.3gp", "3gp", "libopencore_amrnb", 8000, 1, extra_s=0.02,
         min_corr=None, onset_tol_s=0.02),
]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """Encode each case once per module: case id -> (path, original signal at its own rate)."""
    made: dict = {}

    def get(case: Case):
        if case.id not in made:
            path = tmp_path_factory.mktemp(case.id) / case.filename
            signal = tone(case.rate_hz, case.n_channels)
            encode(path, case.muxer, case.codec, signal, case.rate_hz, dict(case.codec_options))
            made[case.id] = (path, signal)
        return made[case.id]

    return get


def peak_hz(samples: np.ndarray, rate_hz: int) -> float:
    """Frequency of the strongest FFT bin of the tone part (after the onset)."""
    part = samples[int((ONSET_S + 0.05) * rate_hz):]
    spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part)), n=8 * len(part)))
    return float(np.fft.rfftfreq(8 * len(part), 1.0 / rate_hz)[np.argmax(spectrum)])


def onset_s(samples: np.ndarray, rate_hz: int) -> float:
    """Time the signal first reaches a third of the tone's level (0.3 + 0.15 for the mono mix)."""
    return float(np.argmax(np.abs(samples) > 0.15) / rate_hz)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decodes_each_format_to_16k_mono(case, encoded):
    path, signal = encoded(case)
    audio = decode(path)
    assert isinstance(audio, Audio)
    assert audio.sample_rate_hz == 16000 and audio.source == os.fspath(path)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert np.abs(audio.samples).max() <= 1.0
    assert SIGNAL_S - 0.001 <= audio.duration_s <= SIGNAL_S + case.extra_s + 0.001
    assert peak_hz(audio.samples, 16000) == pytest.approx(440.0, abs=2.0)
    expected = tone(16000, 1)[0]
    assert onset_s(audio.samples, 16000) == pytest.approx(onset_s(expected, 16000),
                                                          abs=case.onset_tol_s)
    n = min(len(expected), len(audio.samples))
    if case.min_corr is not None:
        assert np.corrcoef(expected[:n], audio.samples[:n])[0, 1] >= case.min_corr
    if case.step is not None:  # lossless: only quantisation plus resampler error
        assert np.sqrt(np.mean((audio.samples[:n] - expected[:n]) ** 2)) < 1e-3 + case.step


@pytest.mark.parametrize("case", [c for c in CASES if c.step is not None],
                         ids=[c.id for c in CASES if c.step is not None])
def test_lossless_formats_are_exact_at_their_own_rate(case, encoded):
    path, signal = encoded(case)
    mono = decode(path, sample_rate_hz=None)
    stereo = decode(path, sample_rate_hz=None, channels=2)
    assert mono.sample_rate_hz == case.rate_hz == stereo.sample_rate_hz
    assert mono.samples.shape == (signal.shape[1],)
    assert stereo.samples.shape == (signal.shape[1], 2)
    tol = case.step + 1e-7
    assert np.abs(mono.samples - signal.mean(axis=0)).max() <= tol
    for channel in range(2):  # a mono file is doubled into both channels
        assert np.abs(stereo.samples[:, channel] - signal[min(channel, len(signal) - 1)]).max() <= tol


@pytest.mark.parametrize("case", [c for c in CASES if c.n_channels == 2],
                         ids=[c.id for c in CASES if c.n_channels == 2])
def test_stereo_keeps_channels_and_mono_is_their_mean(case, encoded):
    path, _ = encoded(case)
    stereo = decode(path, sample_rate_hz=None, channels=2)
    mono = decode(path, sample_rate_hz=None)
    assert peak_hz(stereo.samples[:, 0], stereo.sample_rate_hz) == pytest.approx(440.0, abs=2.0)
    assert peak_hz(stereo.samples[:, 1], stereo.sample_rate_hz) == pytest.approx(660.0, abs=2.0)
    np.testing.assert_allclose(mono.samples, stereo.samples.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("in_rate_hz", [8000, 22050, 44100, 48000, 96000])
@pytest.mark.parametrize("out_rate_hz", [16000, 22050, 44100])
def test_resampling_keeps_length_and_tail(tmp_path, in_rate_hz, out_rate_hz):
    signal = tone(in_rate_hz, 1, onset_s=0.0)  # tone right to the last sample
    path = tmp_path / "take.wav"
    sf.write(path, signal[0], in_rate_hz, subtype="FLOAT")
    audio = decode(path, sample_rate_hz=out_rate_hz)
    assert abs(len(audio.samples) - round(SIGNAL_S * out_rate_hz)) <= 1
    expected = tone(out_rate_hz, 1, onset_s=0.0)[0]
    tail = slice(-int(0.02 * out_rate_hz), -int(0.002 * out_rate_hz))  # last 20 ms, minus edge
    n = min(len(expected), len(audio.samples))
    assert np.sqrt(np.mean((audio.samples[:n][tail] - expected[:n][tail]) ** 2)) < 0.01
    assert np.sqrt(np.mean((audio.samples[:n] - expected[:n]) ** 2)) < 0.005


def test_sample_rate_change_mid_stream_is_followed(tmp_path):
    """Concatenated mp3s at 44.1 kHz mono then 22.05 kHz stereo: both halves decode."""
    parts = []
    for rate_hz, n_channels in ((44100, 1), (22050, 2)):
        part = tmp_path / f"part{rate_hz}.mp3"
        encode(part, "mp3", "libmp3lame", tone(rate_hz, n_channels, onset_s=0.0), rate_hz,
               muxer_options={"write_xing": "0"})
        parts.append(part.read_bytes())
    path = tmp_path / "joined.mp3"
    path.write_bytes(b"".join(parts))
    audio = decode(path, sample_rate_hz=16000)
    assert 2 * SIGNAL_S - 0.01 <= audio.duration_s <= 2 * SIGNAL_S + 0.15
    first, second = audio.samples[8000:20000], audio.samples[-20000:-8000]
    assert peak_hz(first, 16000) == pytest.approx(440.0, abs=2.0)
    for half in (first, second):  # both at the mono mix's level: 0.3 * 440 Hz + 0.15 * 660 Hz
        assert np.sqrt(np.mean(half ** 2)) == pytest.approx(np.sqrt(0.3**2 / 2 + 0.15**2 / 2), rel=0.1)


def test_path_with_spaces_and_accents(tmp_path):
    path = tmp_path / "my täke (1).wav"
    sf.write(path, tone(16000, 1)[0], 16000)
    assert decode(path).duration_s == pytest.approx(SIGNAL_S)
    assert probe_duration_s(path) == pytest.approx(SIGNAL_S)


# --- bad inputs -------------------------------------------------------------------------------

def assert_one_line_naming(error: pytest.ExceptionInfo, path) -> str:
    message = str(error.value)
    assert "\n" not in message and message.strip() == message and message
    assert os.fspath(path) in message
    return message


def bad_file(tmp_path, kind: str):
    """Make a file for one kind of bad input; returns its path."""
    path = tmp_path / {"missing": "memo.m4a", "folder": "memos", "empty": "memo.m4a",
                       "text": "x.txt", "png": "x.png", "random": "memo.m4a",
                       "cut-m4a": "memo.m4a", "garbled-m4a": "memo.m4a",
                       "video-only": "clip.mp4"}[kind]
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("Verse 1: hum the tune\nChorus: louder\n")
    elif kind == "png":
        encode_png(path)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(20000))
    elif kind in ("cut-m4a", "garbled-m4a"):
        encode(path, "ipod", "aac", tone(44100, 1), 44100)
        data = bytearray(path.read_bytes())
        if kind == "cut-m4a":  # the recorder crashed: the index at the end never got written
            data = data[: len(data) // 2]
        else:  # index intact, every byte of audio replaced by noise
            start, end = data.index(b"mdat") + 4, data.index(b"moov") - 4
            assert start < end
            data[start:end] = np.random.default_rng(1).bytes(end - start)
        path.write_bytes(bytes(data))
    elif kind == "video-only":
        encode_video(path)
    return path


def encode_png(path) -> None:
    with av.open(os.fspath(path), "w", format="image2", options={"update": "1"}) as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)


def encode_video(path) -> None:
    if "mpeg4" not in av.codecs_available:
        pytest.skip("this PyAV build has no mpeg4 video encoder")
    with av.open(os.fspath(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        packets = []
        for i in range(5):
            image = np.full((16, 16, 3), 40 * i, np.uint8)
            packets += stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24"))
        for packet in packets + list(stream.encode(None)):
            container.mux(packet)


@pytest.mark.parametrize("kind, words", [
    ("missing", "no such file"),
    ("folder", "is a folder"),
    ("empty", "is empty (0 bytes)"),
    ("text", "is not an audio file FFmpeg can read"),
    ("png", "is not an audio file FFmpeg can read"),
    ("random", "is not an audio file FFmpeg can read"),
    ("cut-m4a", "is not an audio file FFmpeg can read (or it is damaged)"),
    ("garbled-m4a", "is damaged"),
    ("video-only", "no audio stream"),
])
def test_bad_input_is_a_one_line_input_error(tmp_path, kind, words):
    path = bad_file(tmp_path, kind)
    with pytest.raises(InputError) as error:
        decode(path)
    assert words in assert_one_line_naming(error, path)


@pytest.mark.parametrize("kind", ["missing", "folder", "empty", "text", "video-only"])
def test_probe_refuses_bad_input_too(tmp_path, kind):
    path = bad_file(tmp_path, kind)
    with pytest.raises(InputError) as error:
        probe_duration_s(path)
    assert_one_line_naming(error, path)


def test_zero_length_audio_is_a_take_length_error(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(0, np.float32), 16000, subtype="PCM_16")
    assert path.stat().st_size > 0
    with pytest.raises(TakeLengthError) as error:
        decode(path)
    assert "0 seconds" in assert_one_line_naming(error, path)


def test_cut_off_wav_gives_the_part_that_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(16000, 1)[0], 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 2 * 16000 + 1])  # header + 1 s + half a sample
    audio = decode(path)
    assert audio.duration_s == pytest.approx(1.0, abs=0.001)
    np.testing.assert_allclose(audio.samples, tone(16000, 1)[0][:16000], atol=2.0**-15)


def test_too_long_is_refused_from_the_header_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, tone(16000, 1)[0], 16000)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded a take whose header already says it is too long")

    monkeypatch.setattr(decode_module, "_decode_stream", must_not_decode)
    with pytest.raises(TakeLengthError) as error:
        decode(path, max_duration_s=0.3)
    message = assert_one_line_naming(error, path)
    assert "--max-minutes 1" in message and "0.025 minutes" in message


def test_too_long_stops_decoding_at_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "long.flac"
    sf.write(path, tone(16000, 1)[0], 16000)  # 1.5 s; the header's length is within the margin
    decoded_s = []
    frames = decode_module._frames

    def counting_frames(*args):
        for frame in frames(*args):
            decoded_s.append(frame.samples / frame.sample_rate)
            yield frame

    monkeypatch.setattr(decode_module, "_frames", counting_frames)
    with pytest.raises(TakeLengthError) as error:
        decode(path, max_duration_s=1.0)
    assert "--max-minutes" in assert_one_line_naming(error, path)
    assert sum(decoded_s[:-1]) <= 1.0 < sum(decoded_s) < 1.5


def test_no_limit_and_limit_above_length(tmp_path):
    path = tmp_path / "take.flac"
    sf.write(path, tone(16000, 1)[0], 16000)
    assert decode(path, max_duration_s=None).duration_s == pytest.approx(SIGNAL_S)
    assert decode(path, max_duration_s=1.6).duration_s == pytest.approx(SIGNAL_S)


@pytest.mark.parametrize("kwargs", [{"channels": 3}, {"channels": 0}, {"sample_rate_hz": 0},
                                    {"sample_rate_hz": 16000.5}, {"max_duration_s": 0}])
def test_bad_options(tmp_path, kwargs):
    path = tmp_path / "take.wav"
    sf.write(path, tone(16000, 1)[0], 16000)
    with pytest.raises(OptionError) as error:
        decode(path, **kwargs)
    assert "\n" not in str(error.value)


def test_probe_duration(encoded):
    path, _ = encoded(CASES[0])
    assert probe_duration_s(path) == pytest.approx(SIGNAL_S)


# --- write_wav --------------------------------------------------------------------------------

@pytest.mark.parametrize("float32", [False, True])
@pytest.mark.parametrize("n_channels", [1, 2])
def test_write_wav_round_trip(tmp_path, float32, n_channels):
    signal = tone(22050, n_channels)
    samples = signal[0] if n_channels == 1 else signal.T
    path = tmp_path / "stem.wav"
    write_wav(path, samples, 22050, float32=float32)
    info = sf.info(path)
    assert info.samplerate == 22050 and info.channels == n_channels
    assert info.subtype == ("FLOAT" if float32 else "PCM_16")
    back = decode(path, sample_rate_hz=None, channels=n_channels).samples
    np.testing.assert_allclose(back, samples, atol=1e-7 if float32 else 2.0**-15)


def test_write_wav_clips_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "stem.wav"
    write_wav(path, np.zeros(100), 16000)
    write_wav(path, np.array([2.0, -2.0, 0.5]), 16000)
    data, rate_hz = sf.read(path)
    assert rate_hz == 16000
    np.testing.assert_allclose(data, [32767 / 32768, -1.0, 0.5])
    assert os.listdir(tmp_path) == ["stem.wav"]


def test_write_wav_errors(tmp_path):
    missing_folder = tmp_path / "no" / "such" / "folder" / "stem.wav"
    with pytest.raises(OptionError) as error:
        write_wav(missing_folder, np.zeros(10), 16000)
    assert_one_line_naming(error, missing_folder)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "nan.wav", np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "cube.wav", np.zeros((2, 2, 2)), 16000)
    assert os.listdir(tmp_path) == []
