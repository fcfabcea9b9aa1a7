"""How the rhythm stage reads the beat model (:mod:`hum2band.listen.beats`): which onset borrows
which beliefs, which belief column each bar position reads, and that the bar phase follows the
model when the model is given the say. Expectations are worked out here by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.listen import rhythm as R
from hum2band.listen.beats import BAR_CLASSES, OFF_GRID, UNITS_PER_BEAT, NoteBeliefs
from hum2band.music.melody import Note


def _onsets(times):
    t = np.asarray(times, dtype=float)
    one = np.ones(len(t))
    return R.Onsets(t, one, one * 0.3, one, one * 60.0, float(t[-1] + 0.3))


def _beliefs(n: int, place_value=None, bar_value=None) -> NoteBeliefs:
    """Beliefs whose every entry is distinct: log_place[i, c] = -(100 i + c) / 1000 and
    log_bar[i, c] = -(100 i + 50 + c) / 1000, unless values are given."""
    i = np.arange(n)[:, None]
    lp = -(100.0 * i + np.arange(UNITS_PER_BEAT + 1)[None, :]) / 1000.0
    lb = -(100.0 * i + 50.0 + np.arange(len(BAR_CLASSES))[None, :]) / 1000.0
    return NoteBeliefs(lp if place_value is None else place_value, lb if bar_value is None else bar_value)


def test_each_onset_borrows_the_beliefs_of_the_nearest_believed_onset():
    bel = _beliefs(3)
    got = R.onset_beliefs(_onsets([0.01, 0.97, 1.6, 2.4, 9.0]), (np.array([0.0, 1.0, 2.0]), bel))
    # 1.6 is nearer 2.0 than 1.0; 2.4 and 9.0 lie past the last one
    np.testing.assert_array_equal(got.log_place, bel.log_place[[0, 1, 2, 2, 2]])
    np.testing.assert_array_equal(got.log_bar, bel.log_bar[[0, 1, 2, 2, 2]])
    # an onset before the first believed one borrows the first's; halfway goes to the earlier one
    early = R.onset_beliefs(_onsets([-0.5, 0.5]), (np.array([0.0, 1.0, 2.0]), bel))
    np.testing.assert_array_equal(early.log_place, bel.log_place[[0, 0]])


def test_sixteenth_positions_of_a_4_4_bar_read_their_twelfths_and_beats():
    n = 2
    bel = R.OnsetBeliefs(*(_beliefs(n).log_place, _beliefs(n).log_bar))
    own = np.ones(n, dtype=bool)
    place, bar = R._model_by_position(bel, own, q_len=16, d=4, meter=(4, 4))
    assert place.shape == bar.shape == (n, 16)
    for q in range(16):
        col = 3 * (q % 4)  # a sixteenth is three twelfths of a beat
        for i in range(n):
            want = np.logaddexp(bel.log_place[i, col], bel.log_place[i, OFF_GRID])
            assert place[i, q] == pytest.approx(want)
            assert bar[i, q] == bel.log_bar[i, BAR_CLASSES.index((0, q // 4))]


def test_a_grid_finer_than_twelfths_reads_off_the_grid_and_6_8_reads_its_eighths():
    bel = R.OnsetBeliefs(_beliefs(1).log_place, _beliefs(1).log_bar)
    own = np.ones(1, dtype=bool)
    # 4/4 with 32nd notes: d = 8, odd positions are 1.5 twelfths into a beat
    place, _ = R._model_by_position(bel, own, q_len=32, d=8, meter=(4, 4))
    assert place[0, 1] == pytest.approx(bel.log_place[0, OFF_GRID])
    assert place[0, 2] == pytest.approx(np.logaddexp(bel.log_place[0, 3], bel.log_place[0, OFF_GRID]))
    # 6/8: six sixteenths a dotted-quarter beat, two twelfths each; two beats a bar
    place, bar = R._model_by_position(bel, own, q_len=12, d=6, meter=(6, 8))
    assert place[0, 2] == pytest.approx(np.logaddexp(bel.log_place[0, 4], bel.log_place[0, OFF_GRID]))
    assert bar[0, 7] == bel.log_bar[0, BAR_CLASSES.index((2, 1))]
    # a meter the model does not know gives nothing
    assert R._model_by_position(bel, own, q_len=8, d=4, meter=(2, 4)) is None


def _quarters(n: int = 48, beat_s: float = 0.5) -> list[Note]:
    # a tune of quarter notes, the same pitch pattern in every bar: nothing in the notes tells a
    # beat from the "and" except where the notes start
    return [Note(1.0 + beat_s * k, 1.0 + beat_s * k + 0.4, 60.0 + (0, 4, 7, 4)[k % 4],
                 60 + (0, 4, 7, 4)[k % 4], 80) for k in range(n)]


def _grid_offset_beats(notes, rhythm) -> float:
    """Median distance (beats) from each onset to the beat before it."""
    on = np.array([n.onset_s for n in notes])
    b = rhythm.beats_s
    u = np.interp(on, b, np.arange(len(b), dtype=float))
    return float(np.median(u - np.floor(u + 1e-6)))


@pytest.mark.parametrize("place", [0, 6])
def test_with_the_say_the_bar_phase_follows_where_the_model_puts_the_notes(monkeypatch, place):
    notes = _quarters()
    lp = np.full((len(notes), UNITS_PER_BEAT + 1), np.log(0.01))
    lp[:, place] = np.log(0.87)
    bar = np.full((len(notes), len(BAR_CLASSES)), np.log(1.0 / len(BAR_CLASSES)))
    beliefs = (np.array([n.onset_s for n in notes]), NoteBeliefs(lp, bar))
    monkeypatch.setattr(R, "model_beliefs", lambda _notes, _key=None: beliefs)
    monkeypatch.setattr(R, "offset_model_beliefs", lambda _notes, _key=None: beliefs)
    for k in R.PHASE_WEIGHTS:
        w = R.PHASE_WEIGHTS[k].copy()
        w[R.MODEL_PHASE_COLUMN] = 50.0  # the model's say outweighs every note cue
        monkeypatch.setitem(R.PHASE_WEIGHTS, k, w)
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4))
    # the model says every note is on the beat (0) or on the "and" (6 twelfths = half a beat)
    assert _grid_offset_beats(notes, r) == pytest.approx(place / UNITS_PER_BEAT, abs=0.1)


def test_without_the_model_the_estimate_is_the_note_cues_alone(monkeypatch):
    notes = _quarters()
    called = []
    monkeypatch.setattr(R, "model_beliefs", lambda _notes, _key=None: called.append(1))
    r = R.estimate_rhythm(notes, 30.0, beat_model=False)
    assert called == []
    assert r.tempo_bpm == pytest.approx(120.0, rel=0.04) or r.tempo_bpm == pytest.approx(60.0, rel=0.04)


def _waltz(bars: int = 16, beat_s: float = 0.5) -> list[Note]:
    # a waltz: a long chord tone on each downbeat (two beats), a short step on beat three
    notes = []
    for b in range(bars):
        t = 1.0 + 3 * beat_s * b
        root = 60 + (0, 5, 7, 0)[b % 4]
        notes.append(Note(t, t + 2 * beat_s - 0.05, float(root), root, 90))
        notes.append(Note(t + 2 * beat_s, t + 3 * beat_s - 0.05, float(root + 2), root + 2, 70))
    return notes


@pytest.mark.parametrize("meter", [(3, 4)])
def test_in_3_4_the_beats_and_bar_lines_are_the_model_path_at_the_chosen_meter_and_tempo(
        monkeypatch, meter):
    notes = _waltz()
    seen = []
    path_beats = np.arange(1.0, 25.0, 0.47)

    def fake(ev, beliefs, duration_s, settings, tempo_bpm, m, downbeat_s=None, pickup_beats=None,
             tempo_steps=2):
        seen.append((tuple(m), tempo_bpm, tempo_steps, len(ev.onset_s), duration_s))
        from hum2band.music.meter import Rhythm
        return Rhythm(path_beats, path_beats[::3], tuple(m), 127.0, 1.0, 1.0)

    monkeypatch.setattr(R, "decode_rhythm", fake)
    monkeypatch.setattr(R, "LOCK_ANCHOR_WEIGHTS", {})  # the path's own beats, not locked again
    tempo = 120.0 if meter == (3, 4) else 40.0
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=tempo, meter=meter)
    assert len(seen) == 1
    m, t, steps, n_events, dur = seen[0]
    # held to the chosen meter, to one 3 % step of the tempo the grid counts, over every onset
    assert m == meter and steps == R.MODEL_PATH_TEMPO_STEPS == 1
    assert t == pytest.approx(tempo, rel=0.04)
    assert n_events == len(notes) and dur == 30.0
    np.testing.assert_allclose(r.beats_s, path_beats)
    np.testing.assert_allclose(r.downbeats_s, path_beats[::3])
    # the tempo is the one the path's beats count
    assert r.tempo_bpm == pytest.approx(60.0 / 0.47, rel=0.01)


def test_4_4_6_8_a_fixed_bar_line_and_no_beat_model_keep_the_grid(monkeypatch):
    called = []
    monkeypatch.setattr(R, "decode_rhythm", lambda *a, **k: called.append(1))
    R.estimate_rhythm(_quarters(), 30.0, tempo_bpm=120.0, meter=(4, 4))
    R.estimate_rhythm(_waltz(), 30.0, tempo_bpm=40.0, meter=(6, 8))
    R.estimate_rhythm(_waltz(), 30.0, tempo_bpm=120.0, meter=(3, 4), downbeat_s=1.0)
    R.estimate_rhythm(_waltz(), 30.0, tempo_bpm=120.0, meter=(3, 4), pickup_beats=0.0)
    R.estimate_rhythm(_waltz(), 30.0, meter=(3, 4), beat_model=False)
    assert called == []


def test_a_waltz_gets_its_bar_lines_on_the_long_downbeat_notes():
    notes = _waltz()
    r = R.estimate_rhythm(notes, 26.0, meter=(3, 4))
    assert r.tempo_bpm == pytest.approx(120.0, rel=0.04)
    long_on = np.array([n.onset_s for n in notes[::2]])
    # every bar line of the sung part within 70 ms of a long note, and every long note on one
    sung = r.downbeats_s[(r.downbeats_s >= 0.95) & (r.downbeats_s <= notes[-1].offset_s)]
    assert len(sung) == len(long_on)
    assert np.max(np.abs(sung - long_on)) < 0.07


def test_the_beats_move_half_a_beat_where_the_beat_model_places_the_notes_on_the_and(monkeypatch):
    # quarter notes that the onset grid reads on the beat, and a beat model that hears every one
    # of them on the "and" (6 twelfths): the beats are looked at again and follow the model;
    # without that second look (no BEAT_OFFSET_WEIGHTS) nor the beat-by-beat lock (which reads
    # the same beliefs) they stay on the notes
    notes = _quarters()
    lp = np.full((len(notes), UNITS_PER_BEAT + 1), np.log(0.01))
    lp[:, 6] = np.log(0.87)
    bar = np.full((len(notes), len(BAR_CLASSES)), np.log(1.0 / len(BAR_CLASSES)))
    beliefs = (np.array([n.onset_s for n in notes]), NoteBeliefs(lp, bar))
    monkeypatch.setattr(R, "model_beliefs", lambda _notes, _key=None: beliefs)
    monkeypatch.setattr(R, "offset_model_beliefs", lambda _notes, _key=None: beliefs)
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4))
    assert _grid_offset_beats(notes, r) == pytest.approx(0.5, abs=0.1)
    monkeypatch.setattr(R, "BEAT_OFFSET_WEIGHTS", {})
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4))
    assert _grid_offset_beats(notes, r) == pytest.approx(0.5, abs=0.1)  # the lock alone
    monkeypatch.setattr(R, "LOCK_ANCHOR_WEIGHTS", {})
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4))
    assert _grid_offset_beats(notes, r) == pytest.approx(0.0, abs=0.1)
    # a fixed bar line keeps the grid the fix chose, whatever the model says
    monkeypatch.setattr(R, "BEAT_OFFSET_WEIGHTS", {(4, 4): (1.0, 0.1)})
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4), downbeat_s=1.0)
    assert _grid_offset_beats(notes, r) == pytest.approx(0.0, abs=0.1)


def _beliefs_at(notes, place: int):
    """Note-model beliefs that put every onset at ``place`` twelfths of the beat."""
    lp = np.full((len(notes), UNITS_PER_BEAT + 1), np.log(0.01))
    lp[:, place] = np.log(0.87)
    bar = np.full((len(notes), len(BAR_CLASSES)), np.log(1.0 / len(BAR_CLASSES)))
    return np.array([n.onset_s for n in notes]), NoteBeliefs(lp, bar)


@pytest.mark.parametrize("offset_place, expected", [(6, 0.5), (0, 0.0)])
def test_the_beat_offset_look_reads_the_offset_model(monkeypatch, offset_place, expected):
    # the beat model hears the quarter notes on the beat; the beat-offset model decides where
    # the beats end up, on the notes or half a beat away
    notes = _quarters()
    monkeypatch.setattr(R, "model_beliefs", lambda _n, _k=None: _beliefs_at(notes, 0))
    monkeypatch.setattr(R, "offset_model_beliefs", lambda _n, _k=None: _beliefs_at(notes, offset_place))
    r = R.estimate_rhythm(notes, 30.0, tempo_bpm=120.0, meter=(4, 4))
    assert _grid_offset_beats(notes, r) == pytest.approx(expected, abs=0.1)


def test_place_on_a_grid_reads_each_onset_at_its_step():
    notes = _quarters(8)
    times, bel = _beliefs_at(notes, 6)
    beats = np.arange(0.75, 6.0, 0.5)  # the notes (1.0, 1.5, ...) on the "and"
    assert R.place_log_prob_on_grid((times, bel), beats, 4) == pytest.approx(
        np.logaddexp(np.log(0.87), np.log(0.01)))
    assert R.place_log_prob_on_grid((times, bel), beats + 0.25, 4) == pytest.approx(
        np.logaddexp(np.log(0.01), np.log(0.01)))
    # a step that is not a whole twelfth (a 32nd note) reads "off the grid"
    assert R.place_log_prob_on_grid((times, bel), beats + 0.0625, 8) == pytest.approx(np.log(0.01))


def test_the_offset_model_ships_and_loads():
    from hum2band.listen.beats import load_beat_model, load_offset_model

    m, b = load_offset_model(), load_beat_model()
    assert m is not b and m.weights.keys() == b.weights.keys()


def test_4_4_and_3_4_beats_are_locked_onto_the_melody_unless_the_bar_line_is_fixed(monkeypatch):
    seen, pulls = [], []
    real = R.locked_grid

    def spy(place_beliefs, beats_s, downbeats_s, bpb, anchor_weight):
        seen.append(bpb)
        pulls.append(anchor_weight)
        return real(place_beliefs, beats_s, downbeats_s, bpb, anchor_weight)

    monkeypatch.setattr(R, "locked_grid", spy)
    r = R.estimate_rhythm(_quarters(), 30.0, tempo_bpm=120.0, meter=(4, 4))
    assert seen == [4]
    # the locked beats still count the tempo, and the bar lines are among them
    assert r.tempo_bpm == pytest.approx(120.0, rel=0.04)
    assert set(np.round(r.downbeats_s, 6)) <= set(np.round(r.beats_s, 6))
    assert np.all(np.diff(r.beats_s) > 0)
    R.estimate_rhythm(_waltz(), 30.0, tempo_bpm=120.0, meter=(3, 4))
    assert seen == [4, 3]
    R.estimate_rhythm(_waltz(), 30.0, tempo_bpm=40.0, meter=(6, 8))
    R.estimate_rhythm(_quarters(), 30.0, tempo_bpm=120.0, meter=(4, 4), downbeat_s=1.0)
    R.estimate_rhythm(_quarters(), 30.0, meter=(4, 4), beat_model=False)
    assert seen == [4, 3]
    # held to the chosen grid in 4/4, free of the 3/4 model path's beats
    assert pulls == [1.0, 0.0]
