"""Integrated loudness (ITU-R BS.1770-4, LUFS) with numpy only.

The mix is normalised to a loudness target on every ``arrange``; measuring it with pyloudnorm
costs more to import (its filters pull in ``scipy.signal``, about 0.5 s of every run's cold
start) than to compute. This meter does the same computation: the K-weighting filter (the
standard's high-shelf and high-pass biquads, designed for the actual sample rate with the
Audio-EQ-Cookbook formulas, as pyloudnorm does) applied through the FFT of the zero-padded
signal (exactly the IIR filter's output for its first ``n`` samples, up to the tail it leaves
after the padding), then 400 ms blocks with 75 % overlap, the absolute gate at -70 LUFS and the
relative gate 10 LU below. ``tests/test_render.py`` checks it against pyloudnorm.
"""

from __future__ import annotations

import numpy as np

BLOCK_S = 0.4
OVERLAP = 0.75
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
#: The K-weighting stages of BS.1770: (kind, gain dB, Q, corner Hz).
K_STAGES = (("high_shelf", 4.0, 1 / np.sqrt(2), 1500.0), ("high_pass", 0.0, 0.5, 38.0))


def _biquad(kind: str, gain_db: float, q: float, fc_hz: float, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of a cookbook biquad, normalised so a[0] = 1."""
    amp = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * fc_hz / rate_hz
    alpha = np.sin(w0) / (2.0 * q)
    c = np.cos(w0)
    if kind == "high_shelf":
        sa = 2.0 * np.sqrt(amp) * alpha
        b = amp * np.array([(amp + 1) + (amp - 1) * c + sa, -2 * ((amp - 1) + (amp + 1) * c),
                            (amp + 1) + (amp - 1) * c - sa])
        a = np.array([(amp + 1) - (amp - 1) * c + sa, 2 * ((amp - 1) - (amp + 1) * c),
                      (amp + 1) - (amp - 1) * c - sa])
    elif kind == "high_pass":
        b = np.array([(1 + c) / 2, -(1 + c), (1 + c) / 2])
        a = np.array([1 + alpha, -2 * c, 1 - alpha])
    else:
        raise ValueError(kind)
    return b / a[0], a / a[0]


def _fast_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (a fast FFT length)."""
    best = 1 << int(np.ceil(np.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def k_weighting_response(n_fft: int, rate_hz: float) -> np.ndarray:
    """Complex frequency response of the K-weighting filter at the ``rfft`` bins of ``n_fft``."""
    z1 = np.exp(-1j * np.pi * np.arange(n_fft // 2 + 1) / (n_fft / 2))   # z^-1 on the bins
    h = np.ones_like(z1)
    for kind, g, q, fc in K_STAGES:
        b, a = _biquad(kind, g, q, fc, rate_hz)
        h *= (b[0] + b[1] * z1 + b[2] * z1 * z1) / (a[0] + a[1] * z1 + a[2] * z1 * z1)
    return h


#: Above this length (s) the filters run as IIR biquads with scipy.signal (fast per sample, slow
#: to import); below it, as an FFT convolution with numpy alone.
LONG_INPUT_S = 60.0
#: Length of the K-weighting impulse response used (its tail is far below 1e-9 by then).
IR_SECONDS = 0.75


def k_weighting_ir(rate_hz: float) -> np.ndarray:
    """The K-weighting filter's impulse response, ``IR_SECONDS`` long (float64)."""
    n = _fast_size(int(IR_SECONDS * rate_hz) * 4)
    return np.fft.irfft(k_weighting_response(n, rate_hz), n=n)[: int(IR_SECONDS * rate_hz)]


def k_weighted(audio: np.ndarray, rate_hz: float) -> np.ndarray:
    """K-weighted copy of ``audio`` (shape (n,) or (n, channels)), float64.

    Overlap-add FFT convolution with the filter's impulse response: the same output as running
    the two biquads (to within the truncated tail), in blocks, so long takes stay fast.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n, ch = x.shape
    if n > LONG_INPUT_S * rate_hz:
        # long takes: the biquads themselves (scipy.signal's import cost is small against them)
        from scipy.signal import lfilter

        y = x
        for kind, g, q, fc in K_STAGES:
            b, a = _biquad(kind, g, q, fc, rate_hz)
            y = lfilter(b, a, y, axis=0)
        return y
    h = k_weighting_ir(rate_hz)
    hop = 1 << 16
    n_fft = _fast_size(hop + len(h))
    hf = np.fft.rfft(h, n=n_fft)[:, None]
    out = np.zeros((n + n_fft, ch))
    for start in range(0, n, hop):
        blk = x[start:start + hop]
        y = np.fft.irfft(np.fft.rfft(blk, n=n_fft, axis=0) * hf, n=n_fft, axis=0)
        out[start:start + n_fft] += y
    return out[:n]


def integrated_loudness(audio: np.ndarray, rate_hz: float) -> float:
    """BS.1770-4 integrated loudness in LUFS of ``audio`` (shape (n,) or (n, channels); channel
    weights 1, i.e. mono or stereo); ``-inf`` for silence or less than one 400 ms block."""
    y = k_weighted(audio, rate_hz)
    n, ch = y.shape
    block = BLOCK_S * rate_hz
    step = BLOCK_S * (1.0 - OVERLAP)
    n_blocks = int(np.round((n / rate_hz - BLOCK_S) / step)) + 1
    if n < int(block) or n_blocks < 1:
        return float("-inf")
    j = np.arange(n_blocks)
    lo = (BLOCK_S * (j * (1.0 - OVERLAP)) * rate_hz).astype(np.int64)
    hi = np.minimum((BLOCK_S * (j * (1.0 - OVERLAP) + 1.0) * rate_hz).astype(np.int64), n)
    csum = np.vstack([np.zeros((1, ch)), np.cumsum(y * y, axis=0)])
    z = (csum[hi] - csum[lo]) / block                       # (blocks, channels) mean squares
    power = z.sum(axis=1)
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10.0 * np.log10(power)
    gated = lj >= ABSOLUTE_GATE_LUFS
    if not gated.any():
        return float("-inf")
    with np.errstate(divide="ignore"):
        gamma_r = -0.691 + 10.0 * np.log10(z[gated].mean(axis=0).sum()) + RELATIVE_GATE_LU
    keep = (lj > gamma_r) & (lj > ABSOLUTE_GATE_LUFS)
    if not keep.any():
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(-0.691 + 10.0 * np.log10(z[keep].mean(axis=0).sum()))
