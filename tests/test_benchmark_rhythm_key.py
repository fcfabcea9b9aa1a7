"""The rhythm benchmark's own bookkeeping (``benchmarks/rhythm_key.py``): how a take starts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "rhythm_key.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("rhythm_key_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    del sys.modules[spec.name]


def _tune(bench, onsets_beats, first_downbeat_beats=0.0, beat_s=0.5):
    on = np.asarray(onsets_beats, dtype=float) * beat_s
    beats = np.arange(0.0, on.max() / beat_s + 4.0) * beat_s
    downs = beats[beats >= first_downbeat_beats * beat_s - 1e-9][::4]
    return bench.Tune("t", "pop909", (4, 4), 0, "major", on, on + 0.4 * beat_s,
                      np.full(len(on), 60.0), beats, downs)


def test_take_start_tells_on_the_bar_line_pickup_and_silent_beat_one(bench):
    assert bench.take_start(_tune(bench, [0.0, 1.0, 2.0, 3.0, 4.0])) == "on 1"
    assert bench.take_start(_tune(bench, [0.04, 1.0, 2.0, 3.0, 4.0])) == "on 1"  # sung a bit late
    # the excerpt's grid starts a beat before its first bar line; the note on the "and" of it
    assert bench.take_start(_tune(bench, [0.5, 1.0, 2.0, 3.0, 5.0], first_downbeat_beats=1.0)) \
        == "pickup"
    assert bench.take_start(_tune(bench, [1.0, 1.5, 2.0, 3.0, 4.0])) == "after 1"
    # a score that writes the pickup's bar in full: beat 4 of a silent bar is still a pickup
    assert bench.take_start(_tune(bench, [3.0, 4.0, 5.0, 6.0, 8.0])) == "pickup"
    assert bench.take_start(_tune(bench, [1.5, 2.0, 3.0, 4.0])) == "after 1"


def test_excerpts_with_a_pickup_are_reported_as_pickups(bench):
    # 4-bar phrases of quarter notes, each after the first led in by an eighth after a rest
    beat_s = 0.5
    notes = []  # (onset, length) in beats
    for k in range(12):
        if k:
            notes.append((16.0 * k - 0.5, 0.45))
        notes += [(16.0 * k + b, 0.9) for b in range(14)]
    on = np.array([a for a, _ in notes]) * beat_s
    off = on + np.array([n for _, n in notes]) * beat_s
    beats = np.arange(0.0, 12 * 16 + 4) * beat_s
    tune = bench.Tune("t", "pop909", (4, 4), 0, "major", on, off, np.full(len(on), 62.0),
                      beats, beats[::4])
    rng = np.random.default_rng(0)
    kinds = []
    for _ in range(12):
        ex = bench.excerpt(tune, 20.0, rng)
        if ex is not None:
            kinds.append(bench.take_start(ex))
    assert "pickup" in kinds and set(kinds) <= {"pickup", "on 1"}
    names = [name for name, rs in bench.groups([bench.Result(
        bench.Take(ex, [], [], None, ex.beats_s, ex.downbeats_s, 120.0, 0.0, 10.0, 0),
        120.0, (4, 4), 0, "major", 0.0, 1.0, 1.0, True, 0.0)])]
    assert f"start {bench.take_start(ex)}" in names


def test_the_weight_fit_keeps_frozen_columns_and_learns_the_others(bench, capsys):
    """Groups of candidates where column 0 tells the right one; column 1 is noise with a
    weight chosen elsewhere (frozen); column 2 points the wrong way: the fit keeps column 1's
    weight, makes column 0's large and positive and column 2's negative."""
    rng = np.random.default_rng(0)
    data = []
    for _ in range(200):
        X = rng.normal(size=(5, 3))
        right = int(rng.integers(5))
        X[right, 0] += 2.0
        X[right, 2] -= 1.0
        data.append((X, np.arange(5) == right))
    w0 = np.array([0.1, 0.7, 0.0])
    w = bench._conditional_logit(data, w0, lam=1e-3, frozen=(1,))
    assert w[1] == 0.7 and w[0] > 1.0 and w[2] < -0.3
    # drawn towards the start instead of towards 0: a strong penalty keeps it near w0
    near = bench._conditional_logit(data, w0, lam=10.0, frozen=(1,), toward_start=True)
    assert np.allclose(near, w0, atol=0.1)
    assert "accuracy" in capsys.readouterr().out


def test_anticipation_counts_long_notes_on_the_and_against_long_notes_on_the_beat(bench):
    beat_s = 0.5
    beats = np.arange(0.0, 20.0) * beat_s

    def tune(onsets_beats, lengths_beats):
        on = np.asarray(onsets_beats, dtype=float) * beat_s
        off = on + np.asarray(lengths_beats, dtype=float) * beat_s
        return bench.Tune("t", "pop909", (4, 4), 0, "major", on, off, np.full(len(on), 60.0),
                          beats, beats[::4])

    # a pop line that anticipates the bar: eighths, then a note on the "and" of 4 held over it
    pushed = tune([0.0, 0.5, 1.0, 1.5, 2.0, 3.5, 6.0, 6.5, 7.5], [0.5, 0.5, 0.5, 0.5, 1.0, 2.5,
                                                                  0.5, 1.0, 2.0])
    assert bench.anticipation(pushed) == (3, 1)  # 3.5, 6.5 and 7.5 against 2.0
    # the same notes half a beat later: square, every long note on a beat
    square = tune(np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.5, 6.0, 6.5, 7.5]) + 0.5,
                  [0.5, 0.5, 0.5, 0.5, 1.0, 2.5, 0.5, 1.0, 2.0])
    assert bench.anticipation(square) == (1, 3)
    # short notes on the "and" do not count
    assert bench.anticipation(tune([0.5, 1.5, 2.5], [0.25, 0.25, 0.25])) == (0, 0)


def _plain_take(bench):
    """A plain 4/4 tune at 120 bpm (a dotted quarter on every bar line) sung as written:
    ``(take, sung notes, true beats)``."""
    from hum2band.music.melody import Note

    beat_s = 0.5
    sung = []
    for b in range(12):
        t = 1.0 + 4 * beat_s * b
        for start, length in ((0, 1.5), (1.5, 0.5), (2, 1), (3, 1)):
            a = t + start * beat_s
            p = 60 + b % 3 + 2 * (start > 0)
            sung.append(Note(a, a + length * beat_s - 0.04, float(p), p, 80))
    beats = 1.0 + np.arange(-1, 50) * beat_s
    downs = beats[1::4]
    on = np.array([n.onset_s for n in sung])
    tune = bench.Tune("t", "nottingham", (4, 4), 0, "major", on, on + 0.4, np.full(len(on), 60.0),
                      beats, downs)
    return bench.Take(tune, sung, sung, None, beats, downs, 120.0, 0.0, 26.0, 0), sung, beats


def test_one_move_keeps_the_offered_reading_that_puts_the_bar_lines_right(bench):
    # the plain tune whose bar lines were read a beat late;
    # among the readings offered, one bar line is the true one: '1 move' finds it, and a take
    # offered nothing keeps its own reading
    from hum2band.listen.rhythm import estimate_rhythm
    from hum2band.music.meter import OtherReading, Rhythm

    take, sung, beats = _plain_take(bench)
    late = Rhythm(beats, beats[2::4], (4, 4), 120.0, 1.0, 1.0, (
        OtherReading("off-beat", 1.75, 0.5, 1.0), OtherReading("bar line", 2.5, 1.0, 0.5),
        OtherReading("bar line", 1.0, -1.0, 0.7)))
    as_read = bench.score(take, 0.0, None, late, 0.0)
    assert as_read.phase_right and as_read.downbeat_f < 0.2
    moved = bench.one_move(take, sung, late, as_read, 0.0, None)
    assert moved.phase_right and moved.downbeat_f > 0.9
    # the moves are real re-readings with --downbeat: the true bar line's reading reads right
    assert np.min(np.abs(estimate_rhythm(sung, 26.0, downbeat_s=1.0).downbeats_s - 1.0)) < 0.05
    alone = Rhythm(beats, beats[2::4], (4, 4), 120.0, 1.0, 1.0, ())
    assert bench.one_move(take, sung, alone, as_read, 0.0, None) is as_read


def test_one_move_keeps_the_offered_tempo_that_reads_the_take_right(bench):
    # the plain tune read at double time: among the other tempi offered, the true one
    # ('--meter 4/4 --tempo 120') puts tempo, beats and bar lines right; '1 move' keeps it
    from hum2band.music.meter import OtherTempo, Rhythm

    take, sung, beats = _plain_take(bench)
    fast = 1.0 + np.arange(0, 100) * 0.25  # beats every half beat
    double = Rhythm(fast, fast[::4], (4, 4), 240.0, 1.0, 1.0, (),
                    (OtherTempo((3, 4), 240.0, 0.5), OtherTempo((4, 4), 120.0, 1.0)))
    as_read = bench.score(take, 0.0, None, double, 0.0)
    assert bench._ratio_class(as_read.tempo_bpm, take.tempo_bpm) == "x2"
    moved = bench.one_move(take, sung, double, as_read, 0.0, None)
    assert bench._ratio_class(moved.tempo_bpm, take.tempo_bpm) == "ok" and moved.meter == (4, 4)
    assert moved.phase_right and moved.downbeat_f > 0.9
