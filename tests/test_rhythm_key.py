"""Tuning, rhythm and key estimation on note lists built here, with known answers.

The melodies are small folk-like tunes written as (length in beats or eighths, pitch) per note,
performed with a drifting tempo (+-5 %), 15 ms onset jitter, a singer's tuning offset and a
little per-note intonation error -- what the transcriber hands to these stages.
"""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.music.keyfinding import estimate_key
from hum2band.music.melody import Note
from hum2band.music.meter import beats_per_bar
from hum2band.listen.rhythm import estimate_rhythm
from hum2band.music.tuning import estimate_tuning_cents, snap_notes

# MIDI numbers
A3, B3, C4, D4, E4, F4, Fs4, G4, Gs4, A4, B4, C5, Cs5, D5, E5 = (
    57, 59, 60, 62, 64, 65, 66, 67, 68, 69, 71, 72, 73, 74, 76)

# 3/4 waltz in G major: (length in quarter notes, pitch); a one-beat pickup, then 16 bars.
WALTZ = [(1, D4)] + [
    (2, G4), (1, B4), (1, A4), (1, G4), (1, A4), (2, B4), (1, G4), (3, D5),
    (2, C5), (1, B4), (1, A4), (1, B4), (1, C5), (2, B4), (1, A4), (3, G4),
    (2, G4), (1, B4), (1, D5), (1, C5), (1, B4), (2, A4), (1, Fs4), (3, A4),
    (2, B4), (1, A4), (1, G4), (1, Fs4), (1, E4), (2, Fs4), (1, A4), (3, G4),
    (2, G4), (1, B4), (1, A4), (1, G4), (1, A4), (2, B4), (1, G4), (3, D5),
    (2, C5), (1, B4), (1, A4), (1, B4), (1, C5), (2, B4), (1, A4), (2, G4),
]
# 6/8 jig in D major: (length in eighth notes, pitch); an eighth pickup, then 16 bars.
JIG = [(1, A4)] + [
    (2, D5), (1, A4), (2, Fs4), (1, A4), (1, D5), (1, E5), (1, D5), (2, Cs5), (1, A4),
    (2, B4), (1, G4), (2, E4), (1, G4), (1, B4), (1, A4), (1, G4), (2, Fs4), (1, A4),
    (2, D5), (1, A4), (2, Fs4), (1, A4), (1, D5), (1, E5), (1, D5), (2, Cs5), (1, E5),
    (2, D5), (1, B4), (1, A4), (1, G4), (1, E4), (3, D4), (2, D4), (1, A4),
    (2, D5), (1, A4), (2, Fs4), (1, A4), (1, D5), (1, E5), (1, D5), (2, Cs5), (1, A4),
    (2, B4), (1, G4), (2, E4), (1, G4), (1, B4), (1, A4), (1, G4), (2, Fs4), (1, A4),
    (2, D5), (1, A4), (2, Fs4), (1, A4), (1, D5), (1, E5), (1, D5), (2, Cs5), (1, E5),
    (2, D5), (1, B4), (1, A4), (1, G4), (1, E4), (3, D4), (3, D4),
]
# 4/4 tune in A minor: (length in eighth notes, pitch); 12 bars, ends on the tonic.
MINOR = [
    (2, A4), (2, C5), (2, E5), (2, C5), (2, A4), (1, B4), (1, C5), (4, B4),
    (2, E4), (2, Gs4), (2, B4), (2, E5), (2, D5), (2, C5), (4, B4),
    (2, A4), (2, C5), (2, E5), (2, A4), (1, B4), (1, C5), (2, D5), (4, E5),
    (2, D5), (2, C5), (2, B4), (2, Gs4), (8, A4),
    (2, E5), (2, D5), (2, C5), (2, A4), (2, F4), (2, A4), (4, C5),
    (2, B4), (2, Gs4), (2, E4), (2, Gs4), (8, A4),
]


def perform(score, beat_units: int, tempo_bpm: float, tuning_cents: float = 0.0, seed: int = 0,
            drift: float = 0.05, start_s: float = 0.5, pickup_units: int = 0):
    """Sing a score: returns notes and the true beat times.

    ``score`` lengths are in units of ``1 / beat_units`` beats (1: quarters for a quarter beat,
    2: eighths for a quarter beat, 3: eighths for a dotted-quarter beat); the first
    ``pickup_units`` units come before the first beat.
    """
    rng = np.random.default_rng(seed)
    lengths = np.array([u for u, _ in score], dtype=float) / beat_units
    onsets_beats = np.concatenate([[0.0], np.cumsum(lengths)])
    total = onsets_beats[-1]
    # tempo drift: the beat period wanders smoothly by +-drift
    x = np.linspace(-1.0, total + 2.0, 4000)
    period = 60.0 / tempo_bpm * (1.0 + drift * np.sin(2 * np.pi * x / 24.0 + 0.7))
    t_of_x = np.concatenate([[0.0], np.cumsum(period[1:] * np.diff(x))])
    t_of_x += start_s - np.interp(0.0, x, t_of_x)
    on = np.interp(onsets_beats[:-1], x, t_of_x) + rng.normal(0.0, 0.015, len(score))
    end = np.interp(onsets_beats[1:], x, t_of_x)
    notes = []
    for i, (_, midi) in enumerate(score):
        off = on[i] + 0.85 * (end[i] - on[i])
        pitch = midi + (tuning_cents + rng.normal(0.0, 8.0)) / 100.0
        notes.append(Note(float(on[i]), float(off), float(pitch)))
    first_beat = (pickup_units % beat_units) / beat_units
    beat_times = np.interp(np.arange(first_beat, total + 1e-9), x, t_of_x)
    return notes, beat_times


def _true_tempo(beat_times: np.ndarray) -> float:
    return 60.0 / float(np.median(np.diff(beat_times)))


def _beat_f(ref: np.ndarray, est: np.ndarray, window_s: float = 0.07) -> float:
    import mir_eval

    return float(mir_eval.beat.f_measure(np.asarray(ref), np.asarray(est), window_s))


def _check_grid(rhythm, meter):
    assert rhythm.meter == meter
    beats, downs = np.asarray(rhythm.beats_s), np.asarray(rhythm.downbeats_s)
    assert np.all(np.diff(beats) > 0)
    assert np.all(np.isin(downs, beats))
    if len(downs) > 2:  # bars of beats_per_bar beats
        idx = np.searchsorted(beats, downs)
        assert set(np.diff(idx)) == {beats_per_bar(meter)}
    assert 0.0 <= rhythm.meter_confidence <= 1.0 and 0.0 <= rhythm.tempo_confidence <= 1.0


def test_waltz_with_drift_tempo_meter_beats():
    notes, beats = perform(WALTZ, beat_units=1, tempo_bpm=96.0, tuning_cents=12.0, seed=1)
    snapped = snap_notes(notes, estimate_tuning_cents(notes))
    rhythm = estimate_rhythm(snapped, duration_s=notes[-1].offset_s + 1.0)
    _check_grid(rhythm, (3, 4))
    assert rhythm.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)
    # the beats follow the drift: almost every true beat is found within 70 ms
    sung = beats[(beats >= notes[0].onset_s - 0.1) & (beats <= notes[-1].offset_s)]
    assert _beat_f(sung, rhythm.beats_s[rhythm.beats_s <= notes[-1].offset_s]) > 0.85
    # bar lines: the first downbeat after the pickup is the second note
    assert np.min(np.abs(rhythm.downbeats_s - notes[1].onset_s)) < 0.07
    # the grid covers the take: a beat at or before the first note, beats to the last
    assert rhythm.beats_s[0] <= notes[0].onset_s + 0.07
    assert rhythm.beats_s[-1] >= notes[-1].onset_s


def test_jig_is_six_eight_in_dotted_quarters():
    notes, beats = perform(JIG, beat_units=3, tempo_bpm=60.0, seed=2, pickup_units=1)
    rhythm = estimate_rhythm(snap_notes(notes, estimate_tuning_cents(notes)),
                             duration_s=notes[-1].offset_s + 1.0)
    _check_grid(rhythm, (6, 8))
    assert rhythm.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)
    sung = beats[(beats >= notes[0].onset_s - 0.1) & (beats <= notes[-1].offset_s)]
    assert _beat_f(sung, rhythm.beats_s[rhythm.beats_s <= notes[-1].offset_s]) > 0.85
    key = estimate_key(snap_notes(notes, estimate_tuning_cents(notes)))
    assert (key.tonic, key.mode) == ("D", "major")


def test_four_four_tune_in_a_minor():
    notes, beats = perform(MINOR, beat_units=2, tempo_bpm=100.0, tuning_cents=-20.0, seed=3)
    snapped = snap_notes(notes, estimate_tuning_cents(notes))
    key = estimate_key(snapped)
    assert (key.tonic, key.mode) == ("A", "minor")
    assert 0.0 < key.confidence <= 1.0
    rhythm = estimate_rhythm(snapped, duration_s=notes[-1].offset_s + 1.0)
    _check_grid(rhythm, (4, 4))
    assert rhythm.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)


def test_key_of_unsnapped_notes_uses_the_tuning():
    # 45 cents sharp: naive rounding would put half the notes a semitone up
    notes, _ = perform(MINOR, beat_units=2, tempo_bpm=100.0, tuning_cents=45.0, seed=4)
    key = estimate_key(notes)
    assert (key.tonic, key.mode) == ("A", "minor")


def test_tuning_recovered_and_notes_snapped():
    notes, _ = perform(WALTZ, beat_units=1, tempo_bpm=96.0, tuning_cents=-30.0, seed=5)
    # glides and out-of-tune notes: a few notes far off the grid
    notes[3] = Note(notes[3].onset_s, notes[3].offset_s, notes[3].midi_pitch + 0.45)
    notes[10] = Note(notes[10].onset_s, notes[10].offset_s, notes[10].midi_pitch - 0.4)
    cents = estimate_tuning_cents(notes)
    assert cents == pytest.approx(-30.0, abs=5.0)
    snapped = snap_notes(notes, cents)
    expected = [m for _, m in WALTZ]
    assert sum(n.midi == m for n, m in zip(snapped, expected)) >= len(expected) - 2
    assert notes[0].midi == 0  # inputs untouched
    # offsets near +-50 cents wrap around the semitone
    sharp, _ = perform(WALTZ, beat_units=1, tempo_bpm=96.0, tuning_cents=48.0, seed=6)
    c = estimate_tuning_cents(sharp)
    assert min(abs(c - 48.0), abs(c + 52.0)) < 6.0 and -50.0 <= c < 50.0


def test_overrides_are_obeyed():
    notes, beats = perform(WALTZ, beat_units=1, tempo_bpm=96.0, seed=7)
    snapped = snap_notes(notes, estimate_tuning_cents(notes))
    duration = notes[-1].offset_s + 1.0
    forced = estimate_rhythm(snapped, duration, meter=(4, 4))
    _check_grid(forced, (4, 4))
    assert forced.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)
    # a tempo at twice the sung beat: beats at the eighth notes, still following the drift
    fast = estimate_rhythm(snapped, duration, tempo_bpm=2 * 96.0)
    assert fast.tempo_bpm == pytest.approx(2 * _true_tempo(beats), rel=0.04)
    both = estimate_rhythm(snapped, duration, tempo_bpm=96.0, meter=(2, 4))
    _check_grid(both, (2, 4))
    assert both.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)


def test_bar_line_fixes_move_bar_one():
    notes, beats = perform(WALTZ, beat_units=1, tempo_bpm=96.0, seed=8)
    snapped = snap_notes(notes, estimate_tuning_cents(notes))
    duration = notes[-1].offset_s + 1.0
    # the waltz has a one-beat pickup: bar 1 starts on the second note
    picked = estimate_rhythm(snapped, duration, pickup_beats=1)
    assert np.min(np.abs(picked.downbeats_s - notes[1].onset_s)) < 0.07
    # told otherwise, the grid obeys: the first note on a bar line, or a bar at the third note
    none = estimate_rhythm(snapped, duration, meter=(3, 4), pickup_beats=0)
    _check_grid(none, (3, 4))
    assert np.min(np.abs(none.downbeats_s - notes[0].onset_s)) < 0.07
    at = estimate_rhythm(snapped, duration, meter=(3, 4), downbeat_s=notes[2].onset_s)
    assert np.min(np.abs(at.downbeats_s - notes[2].onset_s)) < 0.07
    assert at.tempo_bpm == pytest.approx(_true_tempo(beats), rel=0.04)


def test_onset_strength_is_accepted():
    notes, beats = perform(WALTZ, beat_units=1, tempo_bpm=96.0, seed=8)
    t = np.arange(0.0, notes[-1].offset_s + 1.0, 0.01)
    strength = np.ones_like(t)
    rhythm = estimate_rhythm(notes, t[-1], onset_strength=(t, strength))
    _check_grid(rhythm, (3, 4))


def test_bar_line_fixes_out_of_range_are_one_line_errors():
    from hum2band.errors import OptionError

    notes, _ = perform(WALTZ, beat_units=1, tempo_bpm=96.0, seed=9)
    with pytest.raises(OptionError, match="outside the take"):
        estimate_rhythm(notes, 20.0, downbeat_s=25.0)
    with pytest.raises(OptionError, match="less than a bar"):
        estimate_rhythm(notes, 20.0, meter=(6, 8), pickup_beats=2)


def test_empty_and_tiny_inputs():
    assert estimate_tuning_cents([]) == 0.0
    assert snap_notes([], 10.0) == []
    key = estimate_key([])
    assert (key.tonic, key.mode, key.confidence) == ("C", "major", 0.0)
    empty = estimate_rhythm([], 5.0)
    assert empty.meter == (4, 4) and empty.tempo_bpm > 0 and len(empty.beats_s) >= 1
    assert np.all(np.isin(empty.downbeats_s, empty.beats_s))

    one = [Note(1.0, 1.6, 60.2)]
    assert estimate_tuning_cents(one) == pytest.approx(20.0, abs=1.0)
    assert snap_notes(one, 20.0)[0].midi == 60
    k = estimate_key(snap_notes(one, 20.0))
    assert k.mode in ("major", "minor") and 0.0 <= k.confidence < 0.5
    r = estimate_rhythm(one, 3.0, meter=(3, 4))
    assert r.meter == (3, 4) and r.beats_s[0] == pytest.approx(1.0)
    assert r.meter_confidence == 0.0

    two = [Note(0.5, 0.9, 62.0, 62), Note(1.1, 1.5, 64.0, 64)]
    r2 = estimate_rhythm(two, 2.0, tempo_bpm=120.0)
    assert r2.tempo_bpm == pytest.approx(120.0)
    # all notes at once, zero-length notes, a long silence
    odd = [Note(2.0, 2.0, 60.0), Note(2.0, 2.5, 64.0), Note(2.01, 2.4, 67.0),
           Note(30.0, 30.5, 60.0), Note(30.6, 31.0, 62.0), Note(31.2, 32.0, 64.0)]
    r3 = estimate_rhythm(odd, 33.0)
    assert len(r3.beats_s) > 0 and np.all(np.diff(r3.beats_s) > 0)
    assert estimate_key(odd).mode in ("major", "minor")
