"""Dereverberation: the room's late reverberation taken out of a take before its pitch is read.

A take sung in a kitchen or a living room reaches the microphone twice: the voice, and the room's
echo of the last 50-500 ms of it. The echo holds each note on after the singer left it (offsets
late, onsets of the next note read late or at the old pitch) and gives the pitch tracker two
periods at once. This stage removes it with weighted prediction error (WPE; Nakatani et al.
2010, Yoshioka & Nakatani 2012), single channel:

- the take's short-time spectrum ``Y[t, f]`` (window :data:`WINDOW_S`, hop :data:`HOP_S`, the
  pitch tracker's hop, so silence of whole pitch frames moves the frame grid by whole frames);
- per frequency, the late reverberation is predicted from the take's own past, from
  :data:`DELAY_S` back over :data:`TAPS` frames: ``R[t, f] = sum_k g_k[f] Y[t - D - k, f]``;
- the filters ``g[f]`` minimise the prediction error weighted by the inverse power of the
  dereverberated take itself (the voice is loud and changing, so it is not predicted away; the
  room's decay after each note is), re-estimated :data:`ITERATIONS` times;
- the error ``Y - R`` is the dry voice, turned back into samples (in a room ``R`` is taken out
  :data:`OVERSUBTRACTION` times).

The prediction is linear and fitted to the take, so it needs no room model or training and
adapts to each room's decay per frequency. How much the take's past predicts of it
(:func:`reverberation_db`) says whether it was sung in a room at all: a dry take (a close
microphone, a booth, most phone memos) is left exactly as it is, so codecs and the telephone
band, which move that measure a little, cannot move the notes of a dry take through this
stage. A take scaled in level or with digital silence of whole pitch frames before it gives the
same output, scaled or shifted.
Cost: about 0.012 s per second of take (0.7 s a minute) on one core.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from .pitch import HOP_S  # the frame hop: the pitch tracker's, so both grids move together

#: Analysis window, s (Hann).
WINDOW_S = 0.06
#: How far back the prediction starts, s: the voice's own early reflections and the first
#: 40 ms of its sound are kept.
DELAY_S = 0.04
#: Prediction frames (12 hops: 40 to 160 ms back; the decay continues through the filter's
#: own output, so longer rooms are reached too).
TAPS = 12
#: Re-estimations of the weights and filters.
ITERATIONS = 3
#: Takes whose predicted late part is under this (dB against the take) are dry: left as they
#: are, sample for sample; over :data:`REVERBERANT_DB` it is taken out :data:`OVERSUBTRACTION`
#: times (in proportion between). Set between the even SSVD takes as recorded (at most
#: -20.8 dB) and in a 0.4 s room (at least -18.8 dB).
DRY_DB = -21.0
REVERBERANT_DB = -18.0
#: In a room, the predicted late part is taken out twice over: a filter of TAPS frames fitted to
#: the whole take under-predicts the decay. Even SSVD takes, COnPOff in the 0.4 s / 0.8 s rooms
#: of ``benchmarks/robustness.py`` and in its room with early reflections (0.4 s): once 0.632 /
#: 0.393 / 0.480, 1.6 times 0.640 / 0.417 / 0.491, twice 0.641 / 0.424 / 0.503, 2.5 times
#: 0.630 / 0.409 / 0.517. Dry takes are not touched, so codecs cannot be over-subtracted.
OVERSUBTRACTION = 2.0
#: Bins quieter than this, relative to the loudest, count as this loud in the weights; bins
#: of the take itself under it are digital silence and left out (dB).
FLOOR_DB = -100.0
#: Frequency bins worked on at once (their delayed copies take about 5 MB a minute of take).
BLOCK_BINS = 8
#: Diagonal loading of each frequency's correlation matrix, relative to its mean diagonal.
LOADING = 1e-4


def dereverberate(samples: np.ndarray, sample_rate_hz: int, iterations: int = ITERATIONS) -> np.ndarray:
    """The take with its late reverberation removed; a dry take comes back as it is.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono audio.
    sample_rate_hz : int
    iterations : int
        Re-estimations of the prediction filters (0: the take back unchanged).

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
        The same length and time line as ``samples``. How much of the predicted late part is
        taken out follows :func:`reverberation_db`: none under :data:`DRY_DB`,
        :data:`OVERSUBTRACTION` times over :data:`REVERBERANT_DB`.
    """
    return dereverberate_measured(samples, sample_rate_hz, iterations)[0]


def dereverberate_measured(samples: np.ndarray, sample_rate_hz: int,
                           iterations: int = ITERATIONS) -> tuple[np.ndarray, float]:
    """:func:`dereverberate`'s output and how reverberant the take read
    (:func:`reverberance`: 0 dry to 1 a room), from one analysis."""
    x, span, analysis = _analyse(samples, sample_rate_hz, iterations)
    out = x.copy()
    if analysis is None:
        return out, 0.0
    spectrum, late, win, hop, reverberation = analysis
    share = _share(reverberation)
    if share > 0.0:
        out[span] = _istft(spectrum - share * late, win, hop, span.stop - span.start)
    return out, reverberance(reverberation)


def reverberance(reverberation: float) -> float:
    """How far into a room's reverberation a take reads, from its :func:`reverberation_db`:
    0 under :data:`DRY_DB` (left as it is), 1 over :data:`REVERBERANT_DB` (its predicted late
    part taken out :data:`OVERSUBTRACTION` times), in proportion between."""
    return float(np.clip((reverberation - DRY_DB) / (REVERBERANT_DB - DRY_DB), 0.0, 1.0))


def reverberation_db(samples: np.ndarray, sample_rate_hz: int, iterations: int = ITERATIONS) -> float:
    """How reverberant a take is: the energy of the late part its own past predicts, against
    the take's, dB (-inf for silence).

    The 24 SSVD takes of ``benchmarks/robustness.py`` as recorded read -30 to -20 dB (one,
    1252, reads -9 dB and is dereverberated), through its codecs and telephone band -34 to
    -20 dB, and in its rooms -19 to -13 dB.
    """
    analysis = _analyse(samples, sample_rate_hz, iterations)[2]
    return -np.inf if analysis is None else analysis[4]


def _analyse(samples, sample_rate_hz, iterations):
    """(samples as float32, the span worked on, (spectrum, late part, window, hop,
    reverberation dB) or None for digital silence)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"dereverberate expects mono samples, got shape {x.shape}")
    hop = int(round(HOP_S * sample_rate_hz))
    window = hop * int(round(WINDOW_S / HOP_S))
    delay = int(round(DELAY_S / HOP_S))
    sounding = np.flatnonzero(x)
    if len(sounding) == 0:
        return x, slice(0, 0), None
    # digital silence before and after (whole hops of it) is cut off and put back, so a take
    # with a count-in of zeros is worked on exactly as the take alone
    span = slice((sounding[0] // hop) * hop, min(len(x), -(-(sounding[-1] + 1) // hop) * hop))
    spectrum, win = _stft(x[span], window, hop)               # (n_freqs, n_frames)
    # bins of digital silence (a count-in a browser zeroed, the padding past the end) say
    # nothing about the room: they are left out, so silence around a take changes nothing
    observed = spectrum.real ** 2 + spectrum.imag ** 2
    floor = float(observed.max()) * 10.0 ** (FLOOR_DB / 10.0)
    heard = observed > floor
    late = np.zeros_like(spectrum)
    # the products are small (TAPS x TAPS per bin): one BLAS thread does them fastest, and
    # several would spin against other takes worked on in parallel (a server's workers)
    with threadpool_limits(limits=1, user_api="blas"):
        for lo in range(0, len(spectrum), BLOCK_BINS):
            block = slice(lo, lo + BLOCK_BINS)
            late[block] = _late_part(spectrum[block], heard[block], floor, delay, iterations)
    power = (late.real ** 2 + late.imag ** 2)[heard].sum()
    reverberation = float(10.0 * np.log10(max(power, 1e-30) / observed[heard].sum()))
    return x, span, (spectrum, late, win, hop, reverberation)


def _share(reverberation: float) -> float:
    """How many times the predicted late part is taken out: none under :data:`DRY_DB`,
    :data:`OVERSUBTRACTION` times over :data:`REVERBERANT_DB`, in proportion between (so a
    codec that moves the measure a little moves the output a little)."""
    return OVERSUBTRACTION * reverberance(reverberation)


def _late_part(spectrum: np.ndarray, heard: np.ndarray, floor: float, delay: int,
               iterations: int) -> np.ndarray:
    """WPE on a few frequency bins: the late reverberation of ``spectrum`` (n_bins, n_frames)
    predicted from :data:`TAPS` frames ``delay`` frames back; ``heard`` (n_bins, n_frames)
    marks the bins that are not digital silence."""
    n_bins, n_frames = spectrum.shape
    past = np.zeros((n_bins, TAPS, n_frames), np.complex64)    # delayed copies, tap by tap
    for k in range(TAPS):
        lag = delay + k
        if lag < n_frames:
            past[:, k, lag:] = spectrum[:, :n_frames - lag]
    late = np.zeros_like(spectrum)
    eye = np.eye(TAPS, dtype=np.float32)
    weights = heard.astype(np.float32)
    for _ in range(iterations):
        dry = spectrum - late
        power = np.maximum(dry.real ** 2 + dry.imag ** 2, floor)
        weighted = past * (weights / power)[:, None, :]
        corr = weighted @ np.conj(np.swapaxes(past, 1, 2))         # (n_bins, TAPS, TAPS)
        cross = weighted @ np.conj(spectrum)[:, :, None]            # (n_bins, TAPS, 1)
        load = LOADING * np.trace(corr, axis1=1, axis2=2).real / TAPS + 1e-30
        filters = np.linalg.solve(corr + load[:, None, None] * eye, cross)
        late = (np.conj(filters[:, :, 0])[:, None, :] @ past)[:, 0, :]
    return late


def _stft(x: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed spectra, shape (window // 2 + 1, n_frames); frame j starts at sample
    ``j * hop - (window - hop)``, so sample 0 is in every frame's window it can be in."""
    win = np.hanning(window + 1)[:-1].astype(np.float32)
    padded = np.concatenate([np.zeros(window - hop, np.float32), x, np.zeros(window, np.float32)])
    n = 1 + (len(padded) - window) // hop
    starts = hop * np.arange(n)
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[starts]
    return np.fft.rfft(frames * win, axis=1).astype(np.complex64).T, win


def _istft(spectrum: np.ndarray, win: np.ndarray, hop: int, length: int) -> np.ndarray:
    """Overlap-add of the windowed inverse frames, normalised by the summed squared window."""
    window = len(win)
    frames = (np.fft.irfft(spectrum.T, n=window, axis=1) * win).astype(np.float32)
    n = frames.shape[0]
    overlap = window // hop
    out = np.zeros(hop * (n - 1) + window, np.float32)
    for j in range(overlap):
        run = frames[j::overlap].reshape(-1)
        out[j * hop: j * hop + len(run)] += run
    norm = sum(np.roll(win ** 2, j * hop) for j in range(overlap))
    out /= float(np.mean(norm))
    return out[window - hop: window - hop + length]
