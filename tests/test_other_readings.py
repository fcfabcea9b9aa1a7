"""The rhythm stage's other readings of a take's grid: one move (``--downbeat``) away each."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.app.common import readings_hint
from hum2band.listen import rhythm as R
from hum2band.music.melody import Melody, Note
from hum2band.music.key import Key
from hum2band.music.meter import OtherReading, Rhythm, move_words


def _tune(bars: int = 12, beat_s: float = 0.5, meter=(4, 4)) -> list[Note]:
    """A plain tune with a long chord tone on every bar line: 4/4 as half, quarter, quarter;
    6/8 as dotted quarter, quarter, eighth (in dotted-quarter beats)."""
    notes = []
    degrees = (0, 4, 7, 5, 2, 7, 4, 0)
    for b in range(bars):
        root = 60 + degrees[b % len(degrees)]
        if meter == (4, 4):
            t = 1.0 + 4 * beat_s * b
            parts = ((0.0, 2.0, 0), (2.0, 1.0, 2), (3.0, 1.0, 4))
        else:
            t = 1.0 + 2 * beat_s * b
            parts = ((0.0, 1.0, 0), (1.0, 2 / 3, 2), (5 / 3, 1 / 3, 4))
        for start, length, step in parts:
            a = t + start * beat_s
            notes.append(Note(a, a + length * beat_s - 0.04, float(root + step), root + step, 80))
    return notes


def _phase(times, beats_s) -> np.ndarray:
    """Each time's place between the beats (0: on a beat, 0.5: half-way)."""
    u = np.interp(np.asarray(times, dtype=float), beats_s, np.arange(len(beats_s), dtype=float))
    return u - np.floor(u + 1e-6)


def test_a_4_4_take_offers_the_off_beat_and_another_bar_line_one_move_away():
    notes = _tune()
    r = R.estimate_rhythm(notes, 26.0, tempo_bpm=120.0, meter=(4, 4))
    long_on = np.array([n.onset_s for n in notes[::3]])
    sung = r.downbeats_s[(r.downbeats_s > 0.9) & (r.downbeats_s < notes[-1].offset_s)]
    assert np.max(np.min(np.abs(sung[:, None] - long_on), axis=1)) < 0.07  # bar lines read right
    kinds = [o.kind for o in r.other_readings]
    assert kinds == ["off-beat", "bar line", "bar line", "bar line"]
    off, bar = r.other_readings[:2]
    assert all(o.margin >= 0.0 for o in r.other_readings)
    margins = [o.margin for o in r.other_readings[1:]]
    assert margins == sorted(margins)  # likeliest bar line first
    assert abs(off.beats_later) == 0.5
    assert sorted(o.beats_later for o in r.other_readings[1:]) == [-1.0, 1.0, 2.0]
    for o in r.other_readings:  # the bar line lies where beats_later says
        k = np.argmin(np.abs(r.downbeats_s - o.downbeat_s))
        beat_s = 0.5
        assert (o.downbeat_s - r.downbeats_s[k]) / beat_s % 4 == pytest.approx(o.beats_later % 4, abs=0.15)
    assert _phase([off.downbeat_s], r.beats_s)[0] == pytest.approx(0.5, abs=0.08)
    assert _phase([bar.downbeat_s], r.beats_s)[0] == pytest.approx(0.0, abs=0.08)
    assert np.min(np.abs(r.downbeats_s - bar.downbeat_s)) > 0.2  # another beat of the bar
    # the move itself: arranged again with that bar line, the take is read that way
    moved = R.estimate_rhythm(notes, 26.0, tempo_bpm=120.0, meter=(4, 4), downbeat_s=off.downbeat_s)
    assert np.median(_phase(r.beats_s[2:-2], moved.beats_s)) == pytest.approx(0.5, abs=0.1)
    assert moved.other_readings == ()  # a bar line fixed by hand is not second-guessed
    moved = R.estimate_rhythm(notes, 26.0, tempo_bpm=120.0, meter=(4, 4), downbeat_s=bar.downbeat_s)
    assert np.min(np.abs(moved.downbeats_s - bar.downbeat_s)) < 0.05
    assert np.median(np.abs(_phase(r.beats_s[2:-2], moved.beats_s) - 0.5)) > 0.4  # same beats


def test_in_6_8_the_off_beat_reading_is_an_eighth_away():
    notes = _tune(bars=12, beat_s=0.75, meter=(6, 8))
    r = R.estimate_rhythm(notes, 20.0, tempo_bpm=80.0, meter=(6, 8))
    off = next(o for o in r.other_readings if o.kind == "off-beat")
    ph = _phase([off.downbeat_s], r.beats_s)[0]
    assert min(abs(ph - 1 / 3), abs(ph - 2 / 3)) < 0.08
    assert off.words((6, 8)) in ("an eighth later", "an eighth earlier", "two eighths later",
                                 "two eighths earlier")


def test_the_readings_are_refine_phases_own_candidates(monkeypatch):
    # refine_phase chooses among phase_readings: the best beats, then the best bar line
    notes = _tune()
    ons, choice = R.voted_choice(notes, 26.0, tempo_bpm=120.0, meters=((4, 4),))
    h = choice.best
    readings = R.phase_readings(h, notes, choice.key.tonic_pitch_class, choice.key.mode == "minor")
    shift = R.refine_phase(h, notes, choice.key.tonic_pitch_class, choice.key.mode == "minor")
    best = R.best_reading(readings)
    assert best.shift == shift
    assert best.offset_score == max(x.offset_score for x in readings)
    same = [x for x in readings if x.offset_steps == best.offset_steps]
    assert best.bar_score == max(x.bar_score for x in same)
    assert len(readings) == 2 * 4  # two places of the beats, four bar lines on each


def test_other_readings_go_through_json_and_into_a_hint():
    rhythm = Rhythm(np.arange(1.0, 5.0, 0.5), np.array([1.0, 3.0]), (4, 4), 120.0, 0.9, 0.8,
                    (OtherReading("off-beat", 1.25, 0.5, 0.4), OtherReading("bar line", 1.5, 1.0, 2.0),
                     OtherReading("bar line", 2.5, -1.0, 3.0)))
    melody = Melody([Note(1.0, 1.4, 60.0, 60, 80)], 0.0, rhythm, Key("C", "major", 0.9), 5.0)
    back = Melody.from_json(melody.to_json())
    assert back.rhythm.other_readings == rhythm.other_readings
    hint = readings_hint([o.to_json() for o in rhythm.other_readings], (4, 4))
    assert hint == ("to move bar 1, keep --meter 4/4 and give: half a beat later --downbeat 1.25; "
                    "a beat later --downbeat 1.50; a beat earlier --downbeat 2.50")
    assert readings_hint([], (4, 4)) == ""


@pytest.mark.parametrize("beats, meter, words", [
    (0.5, (4, 4), "half a beat later"), (-0.5, (3, 4), "half a beat earlier"),
    (1, (4, 4), "a beat later"), (2, (4, 4), "two beats later"), (-1, (3, 4), "a beat earlier"),
    (1 / 3, (6, 8), "an eighth later"), (-2 / 3, (6, 8), "two eighths earlier"),
    (1, (6, 8), "a beat later"), (0.75, (4, 4), "0.75 beats later")])
def test_moves_in_words(beats, meter, words):
    assert move_words(beats, meter) == words


def test_in_3_4_the_readings_are_measured_from_the_bar_lines_the_take_ends_up_with():
    # a waltz: 3/4 beats and bar lines come from the beat model's own path, not the chosen
    # grid's; each offered move is a real move from them, and says how far
    notes = []
    for b in range(16):
        t = 1.0 + 1.5 * b
        root = 60 + (0, 5, 7, 0)[b % 4]
        notes.append(Note(t, t + 0.95, float(root), root, 90))
        notes.append(Note(t + 1.0, t + 1.45, float(root + 2), root + 2, 70))
    r = R.estimate_rhythm(notes, 26.0, meter=(3, 4))
    assert r.other_readings
    beat_s = 60.0 / r.tempo_bpm
    for o in r.other_readings:
        gap = (o.downbeat_s - r.downbeats_s[np.argmin(np.abs(r.downbeats_s - o.downbeat_s))]) / beat_s
        assert abs(gap) > 1 / 6  # not where a bar line already is
        assert (gap - o.beats_later) % 3 == pytest.approx(0.0, abs=0.2) or \
            (gap - o.beats_later) % 3 == pytest.approx(3.0, abs=0.2)
    later = [o.beats_later for o in r.other_readings]
    assert len(set(later)) == len(later)  # one reading per move


def test_placed_readings_drop_no_moves_and_measure_from_the_final_bar_lines():
    beats = np.arange(0.0, 10.0, 0.5)
    downs = beats[1::4]  # bar lines at 0.5, 2.5, ...
    others = (("off-beat", 0.75, 1.0), ("bar line", 2.5, 2.0), ("bar line", 4.0, 3.0),
              ("bar line", 0.25, 4.0), ("bar line", 6.0, 5.0))
    placed = R.placed_readings(others, beats, downs, 4)
    # 2.5 is a bar line already; 6.0 is 4.0's move again; 0.25 lies before the first beat
    assert [(o.downbeat_s, o.beats_later) for o in placed] == [(0.75, 0.5), (4.0, -1.0), (0.25, -0.5)]


def test_the_chosen_grid_is_offered_back_where_the_take_ended_up_elsewhere():
    # other_readings puts the chosen reading first: no move where the take's final bar lines
    # are the chosen grid's (dropped), a move back to it where the lock or the 3/4 path moved
    # them; each reading's kind is that of its move (half a beat: "off-beat")
    beats = np.arange(0.0, 10.0, 0.5)
    downs = beats[1::4]  # bar lines at 0.5, 2.5, ...
    same = R.placed_readings((("chosen", 2.5, 0.0), ("bar line", 1.0, 1.0)), beats, downs, 4)
    assert [(o.kind, o.beats_later) for o in same] == [("bar line", 1.0)]
    moved = R.placed_readings((("chosen", 0.75, 0.0), ("off-beat", 2.5, 0.5), ("bar line", 1.25, 1.0)),
                              beats, downs, 4)
    assert [(o.kind, o.downbeat_s, o.beats_later) for o in moved] == [
        ("off-beat", 0.75, 0.5), ("off-beat", 1.25, 1.5)]
    # on a take the stage reads, the chosen reading is the first candidate
    notes = _tune()
    ons, choice = R.voted_choice(notes, 26.0, tempo_bpm=120.0, meters=((4, 4),))
    h = choice.best
    readings = R.phase_readings(h, notes, choice.key.tonic_pitch_class, choice.key.mode == "minor")
    h.shift = R.chosen_shift(h, readings)
    others = R.other_readings(h, readings, float(ons.time_s[0]), 26.0)
    assert others[0][0] == "chosen" and others[0][2] == 0.0
    assert [k for k, _, _ in others[1:]] == ["off-beat", "bar line", "bar line", "bar line"]
