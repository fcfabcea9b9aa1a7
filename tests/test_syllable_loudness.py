"""Syllables in noise: the segmenter weighs the high-emphasised loudness's bands by how far the
voice stands above the take's noise in each."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from hum2band.listen.notes import segment_notes, syllable_loudness_db, voicing, SegmenterSettings
from hum2band.listen.pitch import (
    BRIGHT_BAND_EDGES_HZ,
    HOP_S,
    TRACKER_SAMPLE_RATE_HZ as SR,
    frame_bright_bands_db,
    frame_bright_db,
    track_pitch,
)


def _voice(f0_hz: float, envelope: np.ndarray) -> np.ndarray:
    """A harmonic tone (harmonics up to 3.5 kHz, amplitude 1/k) shaped by ``envelope`` (one gain
    per sample), shape (n,)."""
    t = np.arange(len(envelope)) / SR
    x = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, 40) if k * f0_hz < 3500.0)
    return envelope * x


def test_the_bands_sum_to_the_bright_loudness():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR) * np.linspace(0.01, 1.0, SR)
    n = SR // int(HOP_S * SR) + 1
    bands = frame_bright_bands_db(x, SR, n)
    assert bands.shape == (n, len(BRIGHT_BAND_EDGES_HZ) - 1)
    total = 10.0 * np.log10(np.sum(10.0 ** (bands / 10.0), axis=1))
    assert np.allclose(total[5:-5], frame_bright_db(x, SR, n)[5:-5], atol=0.01)


def _two_syllables_in_hiss(noise_gain: float) -> np.ndarray:
    """Two syllables on one pitch (A3), 0.5 s each, joined by a 60 ms consonant where the upper
    harmonics fall away (the low ones go on: one breath), in hiss above 4 kHz, with 0.5 s of
    hiss alone before and after."""
    n = SR // 2
    low = np.ones(2 * n)
    high = np.ones(2 * n)
    high[n - int(0.03 * SR):n + int(0.03 * SR)] = 0.02
    lows = sosfilt(butter(4, 500.0, fs=SR, output="sos"), _voice(220.0, low))
    highs = sosfilt(butter(4, 500.0, btype="high", fs=SR, output="sos"), _voice(220.0, high))
    voice = np.concatenate([np.zeros(n), 0.3 * (lows + highs), np.zeros(n)])
    hiss = sosfilt(butter(8, 4000.0, btype="high", fs=SR, output="sos"),
                   np.random.default_rng(1).standard_normal(len(voice)))
    return (voice + noise_gain * hiss).astype(np.float32)


def test_a_consonant_dip_filled_by_hiss_is_found_in_the_bands_the_voice_holds():
    x = _two_syllables_in_hiss(0.3)
    track = track_pitch(x, SR, backend="yin")
    voiced = voicing(track, SegmenterSettings())
    weighed = syllable_loudness_db(track, voiced)
    dip = slice(96, 105)   # the consonant, 0.97-1.03 s
    held = slice(70, 85)   # the first syllable's vowel
    # the hiss above 4 kHz, far louder there than the voice's weak top harmonics, fills the dip
    # of the plain bright loudness; weighed, the dip shows
    assert np.median(track.bright_db[held]) - np.min(track.bright_db[dip]) < 4.0
    assert np.median(weighed[held]) - np.min(weighed[dip]) > 5.0
    notes = segment_notes(track)
    assert len(notes) == 2 and abs(notes[1].onset_s - 1.0) < 0.05


def test_a_quiet_take_keeps_its_bright_loudness():
    x = _two_syllables_in_hiss(0.0)
    x = x + (1e-4 * np.random.default_rng(2).standard_normal(len(x))).astype(np.float32)
    track = track_pitch(x, SR, backend="yin")
    voiced = voicing(track, SegmenterSettings())
    weighed = syllable_loudness_db(track, voiced)
    # every band the voice sounds in stands far above the faint hiss of the pauses: weights
    # near 1, the same loudness over the sung frames, the consonant's dip included
    assert np.max(np.abs(weighed[voiced] - track.bright_db[voiced])) < 0.5


def test_a_track_without_bands_keeps_its_bright_loudness():
    x = _two_syllables_in_hiss(0.3)
    track = track_pitch(x, SR, backend="yin")
    track.bright_bands_db = None
    voiced = voicing(track, SegmenterSettings())
    assert np.array_equal(syllable_loudness_db(track, voiced), track.bright_db)
