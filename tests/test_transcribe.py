"""Note accuracy on the shipped examples against their true notes, through the whole front end."""

from __future__ import annotations

import json
from pathlib import Path

import mir_eval
import numpy as np
import pytest

from hum2band.music.melody import Melody
from hum2band.listen.transcription import transcribe

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TAKES = ["twinkle.wav", "ode_to_joy.m4a", "amazing_grace.opus", "row_your_boat.mp3"]


def _hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, float) - 69.0) / 12.0)


@pytest.fixture(scope="module")
def melodies():
    return {name: transcribe(EXAMPLES / name) for name in TAKES}


@pytest.mark.parametrize("name", TAKES)
def test_notes_match_the_true_notes(melodies, name):
    stem = name.split(".")[0]
    ref = np.loadtxt(EXAMPLES / f"{stem}.notes.txt", ndmin=2)
    truth = json.loads((EXAMPLES / f"{stem}.truth.json").read_text())
    m = melodies[name]
    est_iv = np.array([[n.onset_s, n.offset_s] for n in m.notes])
    t = mir_eval.transcription
    conp = t.precision_recall_f1_overlap(ref[:, :2], _hz(ref[:, 2]), est_iv,
                                         _hz([n.midi_pitch for n in m.notes]),
                                         onset_tolerance=0.05, offset_ratio=None)[2]
    # The synthesizer's true onsets start at the consonant ("n" of "no") and at the start of a
    # slur; the segmenter, tuned on real annotated singing (SSVD), puts the onset where the
    # vowel and the new pitch are established (20-40 ms later), so the slurred, consonant-led
    # amazing_grace take loses about a third of its onsets at the 50 ms tolerance. The mean
    # over the examples is held higher below.
    assert conp >= 0.65, f"{name}: COnP {conp:.2f}"
    # Snapped notes: the written pitches, once the singer's tuning is taken out.
    written = np.round(ref[:, 2] - truth["tuning_cents"] / 100.0)
    snapped = t.precision_recall_f1_overlap(ref[:, :2], _hz(written), est_iv,
                                            _hz([n.midi for n in m.notes]),
                                            onset_tolerance=0.05, offset_ratio=None)[2]
    assert snapped >= 0.65, f"{name}: snapped COnP {snapped:.2f}"
    assert abs(m.tuning_cents - truth["tuning_cents"]) <= 10.0


def test_mean_accuracy_over_the_examples(melodies):
    scores = []
    for name, m in melodies.items():
        ref = np.loadtxt(EXAMPLES / f"{name.split('.')[0]}.notes.txt", ndmin=2)
        est_iv = np.array([[n.onset_s, n.offset_s] for n in m.notes])
        scores.append(mir_eval.transcription.precision_recall_f1_overlap(
            ref[:, :2], _hz(ref[:, 2]), est_iv, _hz([n.midi_pitch for n in m.notes]),
            onset_tolerance=0.05, offset_ratio=None)[2])
    assert np.mean(scores) >= 0.9, scores


@pytest.mark.parametrize("name", TAKES)
def test_meter_and_key_match(melodies, name):
    truth = json.loads((EXAMPLES / f"{name.split('.')[0]}.truth.json").read_text())
    m = melodies[name]
    assert list(m.rhythm.meter) == list(truth["meter"])
    assert (m.key.tonic, m.key.mode) == (truth["key"]["tonic"], truth["key"]["mode"])
    assert m.rhythm.tempo_bpm > 0 and len(m.rhythm.beats_s) > 4
    beats = m.rhythm.beats_s
    assert beats[0] >= 0.0 and beats[-1] <= m.duration_s and np.all(np.diff(beats) > 0)
    assert set(np.round(m.rhythm.downbeats_s, 6)) <= set(np.round(beats, 6))


def test_json_round_trip(melodies, tmp_path):
    m = melodies["ode_to_joy.m4a"]
    m.write_json(tmp_path / "m.json")
    back = Melody.from_json(json.loads((tmp_path / "m.json").read_text()))
    assert len(back.notes) == len(m.notes)
    assert back.rhythm.meter == m.rhythm.meter
    np.testing.assert_allclose([n.onset_s for n in back.notes], [n.onset_s for n in m.notes], atol=1e-3)


def test_overrides_are_obeyed():
    m = transcribe(EXAMPLES / "ode_to_joy.m4a", tempo_bpm=100, meter=(3, 4), key="E minor")
    assert m.rhythm.meter == (3, 4)
    assert (m.key.tonic, m.key.mode) == ("E", "minor")
    assert abs(m.rhythm.tempo_bpm - 100) / 100 < 0.1


@pytest.mark.parametrize("backend", ["crepe-tiny", "pyin", "basic-pitch", "yin+crepe-tiny"])
def test_other_backends_transcribe(backend):
    m = transcribe(EXAMPLES / "ode_to_joy.m4a", pitch_backend=backend)
    truth = np.loadtxt(EXAMPLES / "ode_to_joy.notes.txt", ndmin=2)
    assert abs(len(m.notes) - len(truth)) <= 0.25 * len(truth)
    assert m.pitch_backend == backend


def test_running_median_matches_scipy():
    from scipy.ndimage import median_filter

    from hum2band.listen.notes import median_filter_nearest

    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 4, 5, 9):
        for n in (1, 3, 10, 500):
            x = rng.standard_normal(n)
            assert np.allclose(median_filter(x, size=k, mode="nearest"), median_filter_nearest(x, k)), (k, n)
