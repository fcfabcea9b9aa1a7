"""Small audio the tests make themselves (not a test module: pytest collects only test_*.py)."""

from __future__ import annotations

import io
import wave

import numpy as np


def wav_bytes(seconds: float, rate_hz: int = 16000) -> bytes:
    """A 220 Hz sine at -10 dBFS as a 16-bit mono WAV file, in memory."""
    t_s = np.arange(int(seconds * rate_hz)) / rate_hz
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t_s) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()
