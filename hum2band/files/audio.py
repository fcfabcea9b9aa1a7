"""Audio in and out: decode any recording with PyAV (FFmpeg), write WAV stems.

:func:`decode` turns whatever a phone or laptop recorded (wav, flac, mp3, m4a/AAC, ogg/vorbis,
ogg/opus, webm/opus, amr, 3gp, caf, ...) into a float32 array at the rate the analysis wants.
Everything the user can get wrong becomes a one-line :mod:`hum2band.errors` message that names
the file; no PyAV/FFmpeg exception escapes.

Choices
-------
* Channels: ``channels=1`` is the equal-weight mean of all channels ((L + R) / 2 for stereo), so
  a mix never clips. ``channels=2`` keeps stereo, doubles a mono file into both channels and takes
  the first two channels (front left/right in FFmpeg's order) of a file with more.
* Resampling: FFmpeg's resampler (``av.AudioResampler``), flushed at the end so no tail is lost.
  Encoder delay ("priming") is removed by FFmpeg where the file records it (mp3 LAME header,
  m4a edit list, opus pre-skip, ogg granules), so onsets stay in place; a lossy file may still
  run up to one codec frame (a few tens of ms) past the original end.
* Damaged files: a file FFmpeg cannot open, or from which no audio at all decodes, is an
  :class:`~hum2band.errors.InputError`. A file that opens and is damaged further in (a recording
  cut off mid-write, a bad packet) gives the audio that does decode; bad packets are skipped and
  a warning is logged on ``hum2band.files.audio``.
* Length: a take longer than ``max_duration_s`` is a :class:`~hum2band.errors.TakeLengthError`.
  When the file states its length and that is clearly over the limit, we refuse before decoding;
  in any case decoding stops as soon as the limit is passed. A file that decodes to no samples at
  all is a ``TakeLengthError`` too.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import av
import numpy as np
import soundfile as sf

from ..errors import InputError, OptionError, TakeLengthError

log = logging.getLogger(__name__)

#: An up-front length estimate must exceed the limit by this factor (plus 1 s) before we refuse
#: without decoding: estimates from a bitrate (VBR mp3 without a header) can be well off.
_ESTIMATE_MARGIN = 1.1

#: Demuxers that FFmpeg uses for still images and text: such a file is "not audio" at all.
_IMAGE_OR_TEXT_FORMATS = frozenset({"image2", "apng", "gif", "webp", "ico", "tty", "jpegxl_anim"})


@dataclass(frozen=True)
class Audio:
    """A decoded recording.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,) or (n_samples, 2), float32
        The signal in [-1, 1]; shape (n_samples, 2) only when decoded with ``channels=2``.
    sample_rate_hz : int
        Samples per second.
    source : str
        The path as the user gave it, for messages.
    """

    samples: np.ndarray
    sample_rate_hz: int
    source: str

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / float(self.sample_rate_hz)


def _shown(path: str | os.PathLike) -> str:
    """The path as given, safe to put inside a one-line message."""
    return os.fspath(path).replace("\r", "\\r").replace("\n", "\\n")


def _reason(error: BaseException) -> str:
    """FFmpeg's short reason for an error, on one line."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _minutes(seconds: float) -> str:
    return f"{seconds / 60.0:.3g}"


def _too_long(name: str, max_duration_s: float, length_s: float | None) -> TakeLengthError:
    if length_s is None:
        what = f"is longer than the {_minutes(max_duration_s)}-minute limit"
        allow = "pass a larger --max-minutes"
    else:
        what = f"is {_minutes(length_s)} minutes long, over the {_minutes(max_duration_s)}-minute limit"
        allow = f"pass --max-minutes {math.ceil(length_s / 60.0)}"
    return TakeLengthError(f"{name} {what}: trim the take, or {allow} to allow it")


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    """Open ``path`` for reading, turning every way that can fail into an InputError."""
    name = _shown(path)
    if not os.path.lexists(path):
        raise InputError(f"{name}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{name} is a folder, not a recording: give the path of one audio file")
    try:
        size_bytes = os.path.getsize(path)
    except OSError as error:
        raise InputError(f"cannot read {name}: {_reason(error)}") from error
    if size_bytes == 0:
        raise InputError(f"{name} is empty (0 bytes): save or export the recording again")
    try:
        return av.open(os.fspath(path), mode="r", metadata_errors="replace")
    except PermissionError as error:
        raise InputError(f"cannot read {name}: permission denied") from error
    except Exception as error:  # PyAV raises many kinds (FFmpegError, OSError, ValueError)
        raise InputError(f"{name} is not an audio file FFmpeg can read (or it is damaged): "
                         f"{_reason(error)}") from error


def _audio_stream(container: av.container.InputContainer, name: str) -> av.audio.stream.AudioStream:
    """The file's main audio stream, or an InputError saying why there is none."""
    if container.streams.audio:
        return container.streams.best("audio") or container.streams.audio[0]
    fmt = container.format.name
    if fmt in _IMAGE_OR_TEXT_FORMATS or fmt.endswith("_pipe") or not container.streams.video:
        raise InputError(f"{name} is not an audio file FFmpeg can read (FFmpeg sees it as "
                         f"'{fmt}' with no audio stream)")
    raise InputError(f"{name} has no sound: it holds video but no audio stream; "
                     "record or export the take with audio")


def _stated_duration_s(container: av.container.InputContainer, stream) -> float | None:
    """Length the file's headers state, in seconds, or None when they do not."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / float(av.time_base)
    return None


def probe_duration_s(path: str | os.PathLike) -> float | None:
    """Length of a recording as its headers state it, without decoding.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file.

    Returns
    -------
    float or None
        Seconds, or None when the file does not say (the exact length needs :func:`decode`).

    Raises
    ------
    InputError
        The file is missing, empty, not audio or has no audio stream.
    """
    with _open(path) as container:
        stream = _audio_stream(container, _shown(path))
        return _stated_duration_s(container, stream)


def _frames(container, stream, name: str, problems: list[str]):
    """Decoded audio frames, skipping packets FFmpeg cannot decode and stopping at a cut-off end.

    What went wrong is appended to ``problems`` so the caller can tell a damaged file from one
    that is simply empty.
    """
    packets = container.demux(stream)
    n_bad_packets = 0
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as error:  # the file ends mid-packet or its index is broken
            problems.append(f"the file breaks off at a damaged part: {_reason(error)}")
            try:
                yield from stream.decode(None)
            except av.FFmpegError:
                pass
            break
        try:
            yield from stream.decode(packet)
        except av.FFmpegError as error:
            if not n_bad_packets:
                problems.append(f"it has damaged audio packets: {_reason(error)}")
            n_bad_packets += 1


def decode(path: str | os.PathLike, sample_rate_hz: int | None = 16000,
           max_duration_s: float | None = 900.0, channels: int = 1) -> Audio:
    """Decode an audio file to float32 samples.

    Parameters
    ----------
    path : str or os.PathLike
        Any file FFmpeg reads that has an audio stream (of a video file, the sound is used).
    sample_rate_hz : int or None
        Output rate in Hz; None keeps the file's own rate.
    max_duration_s : float or None
        Refuse takes longer than this many seconds (None: no limit).
    channels : {1, 2}
        1: mono mix, ``samples`` shape (n_samples,); 2: stereo, shape (n_samples, 2).

    Returns
    -------
    Audio
        ``samples`` float32 in [-1, 1] at ``sample_rate_hz``; ``source`` is ``path`` as given.

    Raises
    ------
    InputError
        Missing file, folder, empty file, not audio, no audio stream, or nothing decodable.
    TakeLengthError
        Longer than ``max_duration_s``, or no samples at all.
    OptionError
        ``sample_rate_hz``, ``max_duration_s`` or ``channels`` out of range.
    """
    if channels not in (1, 2):
        raise OptionError(f"channels must be 1 (mono) or 2 (stereo), not {channels!r}")
    if sample_rate_hz is not None and (int(sample_rate_hz) != sample_rate_hz or sample_rate_hz <= 0):
        raise OptionError(f"sample rate must be a positive whole number of Hz, not {sample_rate_hz!r}")
    if max_duration_s is not None and not max_duration_s > 0:
        raise OptionError(f"the maximum take length must be positive, not {max_duration_s!r} s")
    name = _shown(path)
    with _open(path) as container:
        stream = _audio_stream(container, name)
        stated_s = _stated_duration_s(container, stream)
        if (max_duration_s is not None and stated_s is not None
                and stated_s > _ESTIMATE_MARGIN * max_duration_s + 1.0):
            raise _too_long(name, max_duration_s, stated_s)
        problems: list[str] = []
        try:
            chunks, out_rate_hz = _decode_stream(container, stream, name, sample_rate_hz,
                                                 max_duration_s, problems)
        except (av.FFmpegError, ValueError) as error:  # resampler / filter graph failures
            raise InputError(f"{name}: FFmpeg could not convert its audio: {_reason(error)}") from error
    if not chunks and problems:
        raise InputError(f"{name} is damaged: FFmpeg could not decode any of its audio "
                         f"({problems[0]})")
    if not chunks:
        raise TakeLengthError(f"{name} is 0 seconds long: there is no recording in it")
    for problem in problems:
        log.warning("%s: %s; using the audio that decodes", name, problem)
    samples = _mix(chunks, channels)
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples=samples, sample_rate_hz=out_rate_hz, source=os.fspath(path))


def _decode_stream(container, stream, name: str, sample_rate_hz: int | None,
                   max_duration_s: float | None, problems: list[str]
                   ) -> tuple[list[np.ndarray], int]:
    """Decode and resample ``stream``; returns (channel-first float32 chunks, output rate in Hz).

    A new resampler is started whenever the input's format, layout or rate changes mid-stream
    (FFmpeg's resampler is set up for one input kind); the old one is flushed first.
    """
    chunks: list[np.ndarray] = []
    resampler, kind, out_rate_hz = None, None, sample_rate_hz
    decoded_s = 0.0

    def drain(frames) -> None:
        for out in frames:
            if out is not None and out.samples:  # a pass-through resampler echoes None on flush
                chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))

    for frame in _frames(container, stream, name, problems):
        if not frame.samples:
            continue
        decoded_s += frame.samples / float(frame.sample_rate)
        if max_duration_s is not None and decoded_s > max_duration_s:
            raise _too_long(name, max_duration_s, None)
        frame_kind = (frame.format.name, frame.layout.name, frame.sample_rate)
        if frame_kind != kind:
            if resampler is not None:
                drain(resampler.resample(None))
            out_rate_hz = out_rate_hz or frame.sample_rate
            resampler, kind = av.AudioResampler(format="fltp", rate=out_rate_hz), frame_kind
        frame.pts = None  # samples are joined in decode order; timestamp gaps are not filled
        drain(resampler.resample(frame))
    if resampler is not None:
        drain(resampler.resample(None))
    return chunks, int(out_rate_hz or stream.rate or 0)


def _mix(chunks: list[np.ndarray], channels: int) -> np.ndarray:
    """Join channel-first chunks into (n,) mono or (n, 2) stereo float32 (see module notes)."""
    n_in = max(chunk.shape[0] for chunk in chunks)
    if any(chunk.shape[0] != n_in for chunk in chunks):  # channel count changed mid-file
        chunks = [chunk.mean(axis=0, keepdims=True) for chunk in chunks]
        n_in = 1
    signal = np.concatenate(chunks, axis=1)  # (n_in, n_samples)
    if channels == 1:
        return np.ascontiguousarray(signal.mean(axis=0), dtype=np.float32)
    pair = signal[[0, 0]] if n_in == 1 else signal[:2]
    return np.ascontiguousarray(pair.T, dtype=np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate_hz: int,
              float32: bool = False) -> None:
    """Write a WAV file atomically (to a temporary name in the same folder, then renamed).

    Parameters
    ----------
    path : str or os.PathLike
        Destination; an existing file is replaced only once the new one is complete.
    samples : np.ndarray, shape (n_samples,) or (n_samples, n_channels)
        Signal in [-1, 1]; values outside are clipped.
    sample_rate_hz : int
        Samples per second.
    float32 : bool
        Write 32-bit float samples instead of 16-bit PCM.

    Raises
    ------
    ValueError
        ``samples`` has the wrong shape or holds NaN/inf (a bug upstream, not a user error).
    OptionError
        The destination cannot be written (missing folder, no permission, disk full).
    """
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim not in (1, 2) or (data.ndim == 2 and data.shape[1] < 1):
        raise ValueError(f"samples must have shape (n,) or (n, channels), not {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("samples hold NaN or infinite values")
    data = np.clip(data, -1.0, 1.0)
    target = os.fspath(path)
    tmp_path = os.path.join(os.path.dirname(target),
                            f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        sf.write(tmp_path, data, int(sample_rate_hz), format="WAV",
                 subtype="FLOAT" if float32 else "PCM_16")
        os.replace(tmp_path, target)
    except (OSError, sf.LibsndfileError) as error:
        raise OptionError(f"cannot write {_shown(path)}: {_reason(error)}; "
                          "choose another output folder") from error
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
