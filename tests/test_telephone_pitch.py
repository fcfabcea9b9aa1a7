"""Pitch tracking through a telephone band: a low voice whose fundamental the line removes."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from scipy.signal import butter, sosfilt

from hum2band.listen import pitch
from hum2band.listen.pitch import TRACKER_SAMPLE_RATE_HZ as SR
from hum2band.listen.pitch import hz_to_midi, track_pitch


def _voice(f0_hz: float, odd_gain: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic tone (amplitude 1/k), its odd harmonics scaled by ``odd_gain``, shape (n,)."""
    t = np.arange(int(seconds * SR)) / SR
    return sum((odd_gain if k % 2 else 1.0) / k * np.sin(2 * np.pi * k * f0_hz * t + 0.3 * k)
               for k in range(1, 25) if k * f0_hz < 3800.0)


def _telephone(x: np.ndarray) -> np.ndarray:
    """8 kHz, 300-3400 Hz band (4th-order Butterworth), back at the tracker's rate."""
    y = soxr.resample(x, SR, 8000)
    y = sosfilt(butter(4, [300.0, 3400.0], btype="band", fs=8000, output="sos"), y)
    y = soxr.resample(y, 8000, SR)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def _median_error(x: np.ndarray, f0_hz: float) -> float:
    track = track_pitch(x, SR, backend="yin")
    return float(np.nanmedian(track.midi_pitch[20:-20]) - hz_to_midi(f0_hz))


@pytest.mark.parametrize("f0_hz", [150.0, 175.0])
def test_a_low_voice_through_a_telephone_band_keeps_its_octave(f0_hz):
    # The band takes the fundamental; with weak odd harmonics the signal nearly repeats every
    # half period, and the first dip of YIN's difference function lies there.
    x = _telephone(_voice(f0_hz, odd_gain=0.3))
    assert abs(_median_error(x, f0_hz)) < 0.3


def test_the_half_period_check_is_what_keeps_the_octave(monkeypatch):
    x = _telephone(_voice(150.0, odd_gain=0.3))
    monkeypatch.setattr(pitch, "YIN_OCTAVE_RATIO", 0.0)
    assert abs(_median_error(x, 150.0) - 12.0) < 0.3


@pytest.mark.parametrize("f0_hz", [110.0, 220.0, 440.0])
def test_a_full_band_voice_is_not_read_an_octave_low(f0_hz):
    assert abs(_median_error((0.3 * _voice(f0_hz, odd_gain=1.0)).astype(np.float32), f0_hz)) < 0.3


def _bright_voice(f0_hz: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic tone whose third harmonic stands out (amplitude 1, the others 0.15/k), as a
    bright vowel with a formant on it, shape (n,)."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum((1.0 if k == 3 else 0.15 / k) * np.sin(2 * np.pi * k * f0_hz * t + 0.3 * k)
            for k in range(1, 25) if k * f0_hz < 7000.0)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.mark.parametrize("f0_hz", [110.0, 220.0, 300.0])
def test_a_voice_with_a_strong_third_harmonic_is_not_read_a_twelfth_high(f0_hz):
    # The tone nearly repeats every third of its period, and YIN's first dip lies there.
    assert abs(_median_error(_bright_voice(f0_hz), f0_hz)) < 0.3


def test_the_third_period_check_is_what_keeps_the_pitch(monkeypatch):
    monkeypatch.setattr(pitch, "YIN_THIRD_CHECK", False)
    assert abs(_median_error(_bright_voice(220.0), 220.0) - 19.02) < 0.3
