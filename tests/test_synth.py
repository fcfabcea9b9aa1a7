"""Tests for hum2band.train.synth (the singing synthesizer) and the shipped examples it makes."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from hum2band.train import synth
from hum2band.music.melody import Note
from hum2band.music.meter import beats_per_bar

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SR = 22050


def f0_yin_hz(x: np.ndarray, sr: int, fmin_hz: float = 60.0, fmax_hz: float = 1000.0,
              frame: int = 2048, hop: int = 512) -> np.ndarray:
    """Per-frame f0 by the cumulative-mean-normalised difference function (YIN), shape (n,)."""
    lag_min, lag_max = int(sr / fmax_hz), int(sr / fmin_hz)
    out = []
    for start in range(0, len(x) - frame - lag_max, hop):
        seg = x[start:start + frame + lag_max].astype(float)
        ref = seg[:frame]
        energy = np.cumsum(seg ** 2)
        e0 = energy[frame - 1]
        lags = np.arange(1, lag_max + 1)
        e_lag = energy[lags + frame - 1] - energy[lags - 1]
        n_fft = 1 << int(np.ceil(np.log2(len(seg) + frame)))
        corr = np.fft.irfft(np.fft.rfft(seg, n_fft) * np.conj(np.fft.rfft(ref, n_fft)), n_fft)
        d = e0 + e_lag - 2 * corr[1:lag_max + 1]
        cmnd = d * lags / np.maximum(np.cumsum(d), 1e-12)
        cand = np.flatnonzero(cmnd[lag_min - 1:] < 0.15)
        if len(cand) == 0:
            out.append(np.nan)
            continue
        i = cand[0] + lag_min - 1
        while i + 1 < len(cmnd) and cmnd[i + 1] < cmnd[i]:
            i += 1
        a, b, c = cmnd[i - 1], cmnd[i], cmnd[min(i + 1, len(cmnd) - 1)]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        out.append(sr / (i + 1 + shift))
    return np.asarray(out)


def hz_to_midi(f_hz):
    return 69.0 + 12.0 * np.log2(np.asarray(f_hz) / 440.0)


def rms_db(x: np.ndarray, sr: int, frame_s: float = 0.01) -> np.ndarray:
    n = int(frame_s * sr)
    m = len(x) // n
    return 10 * np.log10(np.mean(x[: m * n].reshape(m, n).astype(float) ** 2, axis=1) + 1e-12)


def melody(n_notes: int = 12, start_s: float = 0.5, step_s: float = 0.4, seed: int = 0) -> list[Note]:
    rng = np.random.default_rng(seed)
    return [Note(start_s + i * step_s, start_s + (i + 1) * step_s, float(rng.integers(55, 72)))
            for i in range(n_notes)]


# ---- determinism, length, level ----------------------------------------------------------------
def test_same_seed_same_take_other_seed_other_take():
    notes = melody()
    style = synth.random_style(7)
    a = synth.sing(notes, SR, style, seed=3)
    b = synth.sing(notes, SR, style, seed=3)
    c = synth.sing(notes, SR, style, seed=4)
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert synth.sung_notes(notes, style, 3) == synth.render(notes, SR, style, 3).notes


def test_length_follows_duration_and_notes():
    notes = melody(5)
    assert len(synth.sing(notes, SR, seed=1, duration_s=4.321)) == round(4.321 * SR)
    assert len(synth.sing(notes, 16000, seed=1, duration_s=4.321)) == round(4.321 * 16000)
    last = max(n.offset_s for n in notes)
    assert len(synth.sing(notes, SR, seed=1)) == round((last + 0.8) * SR)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_amplitude_in_range_and_peak_level(seed):
    style = synth.random_style(seed)
    y = synth.sing(melody(8, seed=seed), SR, style, seed)
    assert np.all(np.isfinite(y))
    assert np.max(np.abs(y)) <= 1.0
    # the voice is normalised to peak_dbfs; the background noise adds a little
    peak_db = 20 * np.log10(np.max(np.abs(y)))
    assert abs(peak_db - style.peak_dbfs) < 1.0


def test_loud_style_is_clipped_to_full_scale():
    style = replace(synth.SingerStyle(), peak_dbfs=0.0, noise_db=-10.0)
    y = synth.sing(melody(6), SR, style, 0)
    assert np.max(np.abs(y)) <= 1.0 and np.max(np.abs(y)) > 0.99


def test_no_notes_is_background_noise_at_its_level():
    style = replace(synth.SingerStyle(), noise_db=-40.0)
    y = synth.sing([], SR, style, 0, duration_s=2.0)
    assert len(y) == 2 * SR
    level = 10 * np.log10(np.mean(y.astype(float) ** 2))
    assert abs(level - (-40.0)) < 0.5
    with pytest.raises(ValueError):
        synth.sing([], SR, style, 0)


def test_bad_style_fields_are_refused():
    with pytest.raises(ValueError, match="vowel"):
        synth.sing(melody(2), SR, replace(synth.SingerStyle(), vowel="x"))
    with pytest.raises(ValueError, match="consonant"):
        synth.sing(melody(2), SR, replace(synth.SingerStyle(), consonant="zz"))
    with pytest.raises(ValueError, match="legato"):
        synth.sing(melody(2), SR, replace(synth.SingerStyle(), legato=1.5))


# ---- pitch -------------------------------------------------------------------------------------
@pytest.mark.parametrize("vowel,midi_pitch,tuning_cents", [
    ("a", 57.0, -30.0), ("i", 64.0, 20.0), ("u", 48.0, -45.0), ("m", 52.0, 35.0),
    ("o", 69.5, 0.0), ("e", 74.0, -10.0),
])
def test_held_note_is_sung_at_its_pitch_plus_tuning(vowel, midi_pitch, tuning_cents):
    style = replace(synth.SingerStyle(), vowel=vowel, tuning_cents=tuning_cents,
                    note_error_cents=0.0, tuning_drift_cents=0.0, legato=1.0)
    notes = [Note(0.3, 2.3, midi_pitch)]
    take = synth.render(notes, SR, style, seed=11)
    want = midi_pitch + tuning_cents / 100.0
    # the truth: median sung pitch within 15 cents of score + tuning (wander, vibrato, scoop)
    assert abs(take.notes[0].midi_pitch - want) < 0.15
    # the audio: measured f0 in the middle of the note within 15 cents of the truth and target
    mid = take.samples[int(0.8 * SR):int(1.9 * SR)]
    f0 = f0_yin_hz(mid, SR)
    assert np.mean(np.isfinite(f0)) > 0.9
    measured = float(np.nanmedian(hz_to_midi(f0)))
    assert abs(measured - take.notes[0].midi_pitch) < 0.15
    assert abs(measured - want) < 0.15


def test_pitch_moves_vibrato_scoop_and_wander():
    """Not a pure sine: f0 varies within a note, and notes start below with a scoop."""
    style = replace(synth.SingerStyle(), vibrato_depth_cents=50.0, vibrato_rate_hz=5.5,
                    scoop_cents=-150.0, scoop_s=0.15, note_error_cents=0.0)
    notes = [Note(0.5, 2.5, 60.0)]
    perf = synth.perform(notes, style, seed=2)
    f0 = perf.f0_midi
    rate = synth.CONTROL_RATE_HZ
    steady = f0[int(1.2 * rate):int(2.2 * rate)] - 60.0
    assert 20.0 < np.std(steady) * 100 < 80.0  # 50 cents peak vibrato: std about 35 cents
    spec = np.abs(np.fft.rfft((steady - steady.mean()) * np.hanning(len(steady)), 8192))
    freqs = np.fft.rfftfreq(8192, 1.0 / rate)
    band = (freqs > 2.0) & (freqs < 12.0)
    assert abs(freqs[band][np.argmax(spec[band])] - 5.5) < 0.8
    assert f0[int(0.51 * rate)] < 60.0 - 0.3  # starts well below the note
    # vibrato fades in after the delay (same seed without vibrato: same contour otherwise)
    plain = synth.perform(notes, replace(style, vibrato_depth_cents=0.0), seed=2).f0_midi
    vib_cents = (f0 - plain) * 100
    delay = style.vibrato_delay_s
    assert np.max(np.abs(vib_cents[int(0.5 * rate):int((0.5 + 0.75 * delay) * rate)])) < 1.0
    late = np.max(np.abs(vib_cents[int((0.8 + delay) * rate):int(2.3 * rate)]))
    assert 0.6 * 50.0 - 1 <= late <= 1.2 * 50.0 + 1


def test_repeated_notes_are_separated_by_a_dip():
    for vowel, consonant in (("a", "l"), ("m", ""), ("o", "d"), ("e", "")):
        style = replace(synth.SingerStyle(), vowel=vowel, consonant=consonant, legato=1.0,
                        reverb_mix=0.0, noise_db=-70.0)
        notes = [Note(0.5 + 0.5 * i, 1.0 + 0.5 * i, 62.0) for i in range(4)]
        y = synth.sing(notes, SR, style, seed=5)
        db = rms_db(y, SR)
        for boundary_s in (1.0, 1.5, 2.0):
            i = int(round(boundary_s / 0.01))
            dip = db[i - 4:i + 4].min()
            inside = np.median(db[i + 10:i + 35])
            assert inside - dip > 6.0, (vowel, consonant, boundary_s, inside - dip)


def test_legato_leaves_gaps_and_truth_offsets_match():
    style = replace(synth.SingerStyle(), legato=0.7, reverb_mix=0.0, noise_db=-80.0)
    notes = [Note(0.5 + 0.6 * i, 1.1 + 0.6 * i, 60.0 + 2 * i) for i in range(4)]
    take = synth.render(notes, SR, style, seed=1)
    for score, sung in zip(notes, take.notes):
        assert sung.onset_s == score.onset_s
        sounded = (sung.offset_s - sung.onset_s) / (score.offset_s - score.onset_s)
        assert 0.55 < sounded < 0.85
        assert sung.midi == round(score.midi_pitch)
    db = rms_db(take.samples, SR)
    gaps = [db[int((n.offset_s + 0.06) / 0.01)] for n in take.notes[:-1]]
    loud = np.median([db[int((n.onset_s + 0.15) / 0.01)] for n in take.notes])
    assert max(gaps) < loud - 25.0


def test_three_minute_take_has_the_asked_length():
    """A long take renders whole (speed is measured by benchmarks, not asserted here)."""
    rng = np.random.default_rng(0)
    notes, t = [], 0.5
    while t < 179.0:
        d = float(rng.choice([0.25, 0.5, 1.0]))
        notes.append(Note(t, t + d, float(rng.integers(50, 72))))
        t += d
    y = synth.sing(notes, SR, synth.random_style(1), seed=1, duration_s=180.0)
    assert len(y) == 180 * SR
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


# ---- styles and timing -------------------------------------------------------------------------
def test_random_style_is_deterministic_and_varied():
    styles = [synth.random_style(s) for s in range(40)]
    assert synth.random_style(3) == styles[3]
    for st in styles:
        st.check()
        assert -45 <= st.tuning_cents <= 45 and 0.65 <= st.legato <= 0.95
        assert -58 <= st.noise_db <= -40
    assert len({st.vowel for st in styles}) >= 4
    assert len({round(st.tuning_cents, 3) for st in styles}) == 40


def test_humanize_timing_without_drift_is_identity():
    notes = melody(10)
    beats = np.arange(0.5, 4.5, 0.4)
    res = synth.humanize_timing(notes, beats, tempo_drift=0.0, onset_jitter_s=0.0,
                                phrase_rubato=0.0, ritardando=0.0, seed=1)
    assert np.allclose(res.beats_s, beats, atol=1e-9)
    for a, b in zip(notes, res.notes):
        assert abs(a.onset_s - b.onset_s) < 1e-9 and abs(a.offset_s - b.offset_s) < 1e-9
        assert a.midi_pitch == b.midi_pitch


def test_humanize_timing_warps_notes_and_beats_together():
    notes = melody(40, step_s=0.5)
    beats = np.arange(0.5, 20.5, 0.5)
    res = synth.humanize_timing(notes, beats, tempo_drift=0.06, onset_jitter_s=0.02,
                                tempo_trend=0.1, seed=9)
    assert np.all(np.diff(res.beats_s) > 0)
    assert np.allclose(res.warp(beats), res.beats_s)
    ibi = np.diff(res.beats_s)
    assert ibi.std() / ibi.mean() > 0.01  # the tempo really moves
    assert 0.3 < ibi.mean() < 0.7
    on = np.array([n.onset_s for n in res.notes])
    assert np.all(np.diff(on) > 0)
    assert np.max(np.abs(on - res.warp([n.onset_s for n in notes]))) <= 2.5 * 0.02 + 1e-9
    for a, b in zip(res.notes[:-1], res.notes[1:]):
        assert abs(a.offset_s - b.onset_s) < 1e-9  # joined notes stay joined
    # tempo_trend 0.1: the end is faster than the start
    assert ibi[-8:].mean() < ibi[:8].mean()


# ---- the shipped examples ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def make_examples():
    name = "hum2band_examples_make_examples"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def regenerated(make_examples, tmp_path_factory):
    out = tmp_path_factory.mktemp("examples")
    assert make_examples.main(["--out", str(out)]) == 0
    return out


def read_notes(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter="\t", ndmin=2)


def test_shipped_notes_and_truth_are_what_the_script_writes(make_examples, regenerated):
    assert len(make_examples.TUNES) >= 3
    for tune in make_examples.TUNES:
        shipped = read_notes(EXAMPLES / f"{tune.name}.notes.txt")
        fresh = read_notes(regenerated / f"{tune.name}.notes.txt")
        assert shipped.shape == fresh.shape and shipped.shape[1] == 3
        assert np.allclose(shipped, fresh, atol=2e-3), tune.name
        a = json.loads((EXAMPLES / f"{tune.name}.truth.json").read_text())
        b = json.loads((regenerated / f"{tune.name}.truth.json").read_text())
        for k in ("beats", "downbeats", "tempo_bpm"):
            assert np.allclose(a[k], b[k], atol=2e-3), (tune.name, k)
        for k in ("meter", "key", "tuning_cents", "notes_midi", "audio"):
            assert a[k] == b[k], (tune.name, k)


def _decode_mono(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return np.concatenate(chunks), stream.codec_context.sample_rate


def test_examples_are_consistent_and_small(make_examples, regenerated):
    total = 0
    for tune in make_examples.TUNES:
        truth = json.loads((EXAMPLES / f"{tune.name}.truth.json").read_text())
        notes = read_notes(EXAMPLES / f"{tune.name}.notes.txt")
        audio = EXAMPLES / truth["audio"]
        assert audio.is_file() and (regenerated / truth["audio"]).is_file()
        total += sum(p.stat().st_size for p in EXAMPLES.glob(f"{tune.name}.*"))
        # 10-25 s, decodes to its stated length
        assert 10.0 <= truth["duration_s"] <= 25.0
        y, sr = _decode_mono(audio)
        assert abs(len(y) / sr - truth["duration_s"]) < 0.06, tune.name
        # notes inside the take, in order; pitches near score + tuning
        assert np.all(np.diff(notes[:, 0]) > 0) and np.all(notes[:, 1] > notes[:, 0])
        assert notes[-1, 1] < truth["duration_s"]
        dev = notes[:, 2] - np.asarray(truth["notes_midi"]) - truth["tuning_cents"] / 100.0
        assert np.all(np.abs(dev) < 0.5) and abs(np.median(dev)) < 0.15, tune.name
        # beat grid: downbeats are every bar's first beat
        beats, downs = np.asarray(truth["beats"]), np.asarray(truth["downbeats"])
        bpb = beats_per_bar(truth["meter"])
        idx = np.searchsorted(beats, downs)
        assert np.allclose(beats[idx], downs) and np.all(np.diff(idx) == bpb)
        assert abs(60.0 / np.median(np.diff(beats)) - truth["tempo_bpm"]) < 0.1
    assert total < 1.6e6, f"examples take {total / 1e6:.2f} MB"


def test_example_audio_sings_the_true_notes():
    """The WAV example: measured f0 in the middle of each long note matches its notes.txt pitch."""
    y, sr = _decode_mono(EXAMPLES / "twinkle.wav")
    y = y.astype(np.float32) / (32768.0 if y.dtype == np.int16 else 1.0)
    notes = read_notes(EXAMPLES / "twinkle.notes.txt")
    errors = []
    for on, off, pitch in notes:
        if off - on < 0.3:
            continue
        seg = y[int((on + 0.1) * sr):int((off - 0.05) * sr)]
        f0 = f0_yin_hz(seg, sr, frame=1024, hop=256)
        if np.mean(np.isfinite(f0)) < 0.5:
            errors.append(np.inf)
            continue
        errors.append(abs(float(np.nanmedian(hz_to_midi(f0))) - pitch))
    assert len(errors) >= 10
    assert np.median(errors) < 0.1 and np.max(errors) < 0.3
