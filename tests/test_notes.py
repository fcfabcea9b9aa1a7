"""The pitch tracker and segmenter on signals whose notes are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.listen.notes import interval_pitches, segment_notes
from hum2band.listen.pitch import HOP_S, TRACKER_SAMPLE_RATE_HZ, PitchTrack, frame_bright_db, track_pitch

SR = TRACKER_SAMPLE_RATE_HZ


def _cents(f_hz: float, midi: float) -> float:
    return 100.0 * (midi - (69.0 + 12.0 * np.log2(f_hz / 440.0)))


@pytest.mark.parametrize("f_hz", [70.0, 90.0, 120.0, 220.0])
def test_yin_reads_low_hums_in_tune(f_hz):
    t = np.arange(int(1.5 * SR)) / SR
    track = track_pitch(0.3 * np.sin(2 * np.pi * f_hz * t), SR, backend="yin")
    mid = track.midi_pitch[30:-30]
    assert np.isfinite(mid).all()
    assert abs(_cents(f_hz, float(np.median(mid)))) < 5.0


def _track(contour_midi: np.ndarray, rms_db: np.ndarray | None = None) -> PitchTrack:
    n = len(contour_midi)
    rms = np.full(n, -20.0) if rms_db is None else rms_db
    return PitchTrack(np.arange(n) * HOP_S, contour_midi.astype(float), np.ones(n), rms, "test", rms.copy())


def _with_silence(contour: np.ndarray, pad: int = 20):
    pitch = np.concatenate([np.full(pad, np.nan), contour, np.full(pad, np.nan)])
    rms = np.concatenate([np.full(pad, -90.0), np.full(len(contour), -20.0), np.full(pad, -90.0)])
    conf = np.concatenate([np.zeros(pad), np.ones(len(contour)), np.zeros(pad)])
    return PitchTrack(np.arange(len(pitch)) * HOP_S, pitch, conf, rms, "test", rms.copy())


def test_interval_pitches_measure_the_given_notes():
    contour = np.concatenate([np.full(50, 60.2), np.full(50, 64.0), np.linspace(64.0, 62.0, 10), np.full(40, 67.0)])
    track = _track(contour)
    got = interval_pitches(track, np.array([[0.0, 0.5], [0.5, 1.0], [1.1, 1.5]]))
    assert got == pytest.approx([60.2, 64.0, 67.0], abs=0.05)
    assert np.isnan(interval_pitches(_with_silence(np.full(30, 60.0)), np.array([[0.0, 0.1]]))[0])


def test_a_scoop_into_a_note_stays_part_of_it():
    # 0.18 s glide up from two and a half semitones below, then 0.6 s held on 62.
    from dataclasses import replace

    from hum2band.listen.notes import SegmenterSettings

    track = _with_silence(np.concatenate([np.linspace(59.5, 61.9, 18), np.full(60, 62.0)]))
    notes = segment_notes(track)
    assert len(notes) == 1
    assert notes[0].midi_pitch == pytest.approx(62.0, abs=0.2)
    assert notes[0].onset_s == pytest.approx(0.2, abs=0.03)  # the note starts with its scoop
    # Without the scoop rule the glide is cut off the note (and, heard for 0.07 s, is too short
    # to be a note of its own): the note starts 0.17 s late.
    alone = segment_notes(track, replace(SegmenterSettings(), scoop_max_s=0.0))
    assert [round(n.onset_s, 2) for n in alone] == [0.37]


def test_a_consonant_dents_the_bright_loudness_more_than_the_plain_one():
    """A vowel, a short consonant-like break in its upper harmonics only, the vowel again."""
    t = np.arange(int(1.0 * SR)) / SR
    f0 = 200.0
    low = 0.5 * np.sin(2 * np.pi * f0 * t)
    high = sum(0.08 * np.sin(2 * np.pi * k * f0 * t) for k in range(6, 14))
    gate = np.ones_like(t)
    gate[(t > 0.48) & (t < 0.52)] = 0.02  # the consonant: only the bright part drops
    x = low + high * gate
    n = int(len(x) / SR / HOP_S)
    from hum2band.listen.pitch import frame_rms_db

    plain = frame_rms_db(x, SR, n)
    bright = frame_bright_db(x, SR, n)
    i_mid, i_vowel = 50, 25
    assert bright[i_vowel] - bright[i_mid] > 6.0
    assert plain[i_vowel] - plain[i_mid] < 1.5


def test_a_note_an_octave_off_its_neighbours_is_folded_back_and_a_stray_is_dropped():
    from hum2band.listen.notes import repair_register
    from hum2band.music.melody import Note

    def melody(pitches, lengths=None):
        lengths = lengths or [0.4] * len(pitches)
        t, out = 0.0, []
        for p, d in zip(pitches, lengths):
            out.append(Note(t, t + d, float(p), int(round(p)), 80))
            t += d + 0.05
        return out

    # A tracker's octave slip in a stepwise line: back to the register, times unchanged.
    got = repair_register(melody([60, 62, 64, 76.3, 64, 62, 60]))
    assert [round(n.midi_pitch) for n in got] == [60, 62, 64, 64, 64, 62, 60]
    assert got[3].midi == 64 and got[3].onset_s == pytest.approx(3 * 0.45)
    assert got[3].midi_pitch == pytest.approx(64.3)
    # A short scrap far from everything (a breath, a click) goes; a long one is a sung note.
    got = repair_register(melody([60, 62, 45, 62, 60], [0.4, 0.4, 0.12, 0.4, 0.4]))
    assert [round(n.midi_pitch) for n in got] == [60, 62, 62, 60]
    assert len(repair_register(melody([60, 62, 45, 62, 60]))) == 5
    # A real octave leap that the melody follows is kept.
    leap = [60, 62, 64, 76, 74, 72, 71, 72]
    assert [round(n.midi_pitch) for n in repair_register(melody(leap))] == leap


def test_notes_far_under_the_takes_register_are_a_hum_not_the_singer():
    from hum2band.listen.notes import SegmenterSettings, drop_below_register, repair_register
    from hum2band.music.melody import Note

    def melody(pitches, lengths):
        t, out = 0.0, []
        for p, d in zip(pitches, lengths):
            out.append(Note(t, t + d, float(p), int(round(p)), 80))
            t += d + 0.05
        return out

    # A soprano's phrase around A4 with a room's 55 Hz hum read as three long notes at its end
    # (as in SSVD 1223): the stray rule keeps them (long, and each other's neighbours), the
    # register rule drops them.
    sung = [69, 71, 72, 74, 72, 71, 69, 67, 69, 71, 69]
    take = melody(sung + [33.2, 33.1, 33.0], [0.4] * len(sung) + [0.6, 0.5, 0.7])
    assert len(repair_register(take)) == len(take)
    assert [round(n.midi_pitch) for n in drop_below_register(take)] == sung
    off = SegmenterSettings(below_register_semitones=float("inf"))
    assert len(drop_below_register(take, off)) == len(take)
    # A melody's real low notes, an octave and more under its middle, stay.
    low = [69, 71, 72, 74, 72, 57, 55, 57, 69, 71, 69]
    assert [round(n.midi_pitch) for n in drop_below_register(melody(low, [0.4] * len(low)))] == low
