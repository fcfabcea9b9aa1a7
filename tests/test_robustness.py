"""What must not change with how a take was recorded: silence around it and its level.

Silence before and after a take only shifts its times, and a quieter recording of the same take is
the same take: notes, tuning, key, meter and tempo must come out identical (times shifted by the
silence), on every shipped example. The silence is a whole number of pitch frames long (the frame
grid is then the same) and digital zeros, the hardest case for a noise-floor estimate (a browser
with noise suppression records them during a count-in).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hum2band.files.audio import decode
from hum2band.listen.pitch import HOP_S, TRACKER_SAMPLE_RATE_HZ
from hum2band.listen.transcription import transcribe_audio

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TAKES = ["twinkle.wav", "ode_to_joy.m4a", "amazing_grace.opus", "row_your_boat.mp3"]
SR = TRACKER_SAMPLE_RATE_HZ
#: Silence put before and after, in pitch frames (a browser count-in is 2-3 s).
BEFORE_FRAMES, AFTER_FRAMES = 280, 200


@pytest.fixture(scope="module")
def takes():
    out = {}
    for name in TAKES:
        x = decode(EXAMPLES / name, sample_rate_hz=SR).samples
        out[name] = (x, transcribe_audio(x, SR, source=name))
    return out


def _same_music(clean, other, shift_s: float) -> None:
    assert len(other.notes) == len(clean.notes)
    np.testing.assert_allclose([n.onset_s for n in other.notes],
                               [n.onset_s + shift_s for n in clean.notes], atol=1e-6)
    np.testing.assert_allclose([n.offset_s for n in other.notes],
                               [n.offset_s + shift_s for n in clean.notes], atol=1e-6)
    np.testing.assert_allclose([n.midi_pitch for n in other.notes],
                               [n.midi_pitch for n in clean.notes], atol=1e-4)
    assert [n.midi for n in other.notes] == [n.midi for n in clean.notes]
    assert other.tuning_cents == pytest.approx(clean.tuning_cents, abs=0.01)
    assert (other.key.tonic, other.key.mode) == (clean.key.tonic, clean.key.mode)
    assert other.rhythm.meter == clean.rhythm.meter
    assert other.rhythm.tempo_bpm == pytest.approx(clean.rhythm.tempo_bpm, rel=1e-6)
    # The beats inside the clean take, shifted (the padded take may hold a beat or two more in
    # its silence).
    end_s = clean.duration_s + shift_s
    beats = np.asarray(other.rhythm.beats_s)
    beats = beats[(beats >= shift_s - 1e-6) & (beats <= end_s + 1e-6)] - shift_s
    np.testing.assert_allclose(beats, clean.rhythm.beats_s, atol=1e-6)


@pytest.mark.parametrize("name", TAKES)
def test_silence_around_a_take_only_shifts_it(takes, name):
    x, clean = takes[name]
    hop = int(round(HOP_S * SR))
    padded = np.concatenate([np.zeros(BEFORE_FRAMES * hop, np.float32), x,
                             np.zeros(AFTER_FRAMES * hop, np.float32)])
    _same_music(clean, transcribe_audio(padded, SR, source=name), BEFORE_FRAMES * HOP_S)


@pytest.mark.parametrize("name", TAKES)
def test_a_quieter_recording_is_the_same_take(takes, name):
    x, clean = takes[name]
    quiet = (x * 10.0 ** (-24.0 / 20.0)).astype(np.float32)
    _same_music(clean, transcribe_audio(quiet, SR, source=name), 0.0)


def test_the_piano_roll_draws_the_voice_only():
    from hum2band.music.melody import Note
    from hum2band.perform.export import voice_contour

    times_s = np.arange(300) * HOP_S
    pitch = np.full(300, 62.0)
    pitch[100:150] = 30.0             # a dive between the notes (breath, room tail)
    pitch[60] = 74.0                  # an octave slip inside the first note
    pitch[200:205] = 59.5             # a scoop into the second note
    notes = [Note(0.0, 1.0, 62.0, 62, 80), Note(2.0, 3.0, 61.0, 61, 80)]
    got = voice_contour(times_s, pitch, notes)
    assert np.isnan(got[100:200]).all()                   # nothing between the notes
    assert got[60] == pytest.approx(62.0)                 # folded back
    assert got[200:205] == pytest.approx(np.full(5, 59.5))  # the scoop stays
    assert np.nanmax(np.abs(got - np.where(times_s < 1.5, 62.0, 61.0))) <= 3.0
