"""The dereverberation stage (issue 12, "Rooms"): the room's decay out, the voice kept.

Synthetic sung notes go through the synthetic room of ``test_reverb_offsets`` (RT60 0.4 s:
the direct sound, then exponentially decaying noise of equal energy). What the stage must do:
make the gaps the room fills quieter without taking the notes down, tell a dry take from a room
and give the dry take back exactly as it was, and be blind to the take's level and to digital
silence around it.
"""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.listen.dereverb import DRY_DB, HOP_S, REVERBERANT_DB, dereverberate, reverberation_db
from hum2band.listen.transcription import transcribe_audio
from test_reverb_offsets import DURATION_S, PHRASES, RATE_HZ, in_room, sung


def level_db(x: np.ndarray, start_s: float, end_s: float) -> float:
    part = np.asarray(x[int(start_s * RATE_HZ):int(end_s * RATE_HZ)], float)
    return 10.0 * np.log10(np.mean(part ** 2) + 1e-20)


@pytest.fixture(scope="module")
def dry():
    return sung(PHRASES, DURATION_S).astype(np.float32)


@pytest.fixture(scope="module")
def room(dry):
    return in_room(dry, 0.4).astype(np.float32)


def test_the_gap_a_room_fills_gets_quieter_and_the_notes_do_not(dry, room):
    # 80 ms between two notes on one pitch (3.00-3.08 s): the room fills it to 10 dB under the
    # notes; dereverberated, it is 6 dB quieter (the phrase's end, 1.95-2.05 s, 5 dB). The notes
    # (which the room makes up to 5 dB louder where its echo adds to the held tone) come out
    # nearer their dry level, not under it.
    out = dereverberate(room, RATE_HZ)
    assert level_db(room, 3.0, 3.08) - level_db(out, 3.0, 3.08) >= 4.0
    assert level_db(room, 1.95, 2.05) - level_db(out, 1.95, 2.05) >= 3.5
    for on_s, off_s, _ in PHRASES:
        inside = (on_s + 0.05, off_s - 0.05)
        assert level_db(out, *inside) >= level_db(dry, *inside) - 1.5
        assert abs(level_db(out, *inside) - level_db(dry, *inside)) \
            <= abs(level_db(room, *inside) - level_db(dry, *inside)) + 0.5


def test_a_dry_take_comes_back_as_it_was_and_a_room_is_heard(dry, room):
    assert reverberation_db(dry, RATE_HZ) < DRY_DB < REVERBERANT_DB < reverberation_db(room, RATE_HZ)
    out = dereverberate(dry, RATE_HZ)
    assert out.dtype == np.float32 and np.array_equal(out, dry)
    assert not np.array_equal(dereverberate(room, RATE_HZ), room)
    assert reverberation_db(np.zeros(100, np.float32), RATE_HZ) == -np.inf


def test_digital_silence_around_a_take_only_shifts_it(room):
    hop = int(round(HOP_S * RATE_HZ))
    before, after = 137 * hop, 59 * hop + 33          # whole hops before; any length after
    padded = np.concatenate([np.zeros(before, np.float32), room, np.zeros(after, np.float32)])
    out = dereverberate(padded, RATE_HZ)
    assert np.array_equal(out[before:before + len(room)], dereverberate(room, RATE_HZ))
    assert not out[:before].any() and not out[before + len(room):].any()


def test_a_quieter_take_comes_out_quieter_and_the_same(room):
    gain = 10.0 ** (-24.0 / 20.0)
    loud = dereverberate(room, RATE_HZ)
    quiet = dereverberate((room * gain).astype(np.float32), RATE_HZ)
    np.testing.assert_allclose(quiet / gain, loud, atol=1e-4 * np.abs(loud).max())


def test_no_iterations_and_silence_give_the_take_back(room):
    np.testing.assert_allclose(dereverberate(room, RATE_HZ, iterations=0), room, atol=1e-6)
    assert not dereverberate(np.zeros(4000, np.float32), RATE_HZ).any()
    assert len(dereverberate(np.zeros(0, np.float32), RATE_HZ)) == 0
    with pytest.raises(ValueError, match="mono"):
        dereverberate(np.zeros((2, 4000), np.float32), RATE_HZ)


def test_the_transcription_reads_the_dereverberated_take_unless_told_not_to(room):
    # The dereverberated take is what the pitch tracker reads: its loudness contour is the
    # dereverberated one, quieter in the gap the room fills.
    on = transcribe_audio(room, RATE_HZ)
    off = transcribe_audio(room, RATE_HZ, dereverb=False)
    gap = (on.pitch_track.times_s >= 3.0) & (on.pitch_track.times_s < 3.08)
    assert on.pitch_track.rms_db[gap].mean() < off.pitch_track.rms_db[gap].mean() - 3.0
    assert "dereverb" in on.timings_s
