"""The rhythm stage's vote on meter and tempo (:func:`hum2band.listen.rhythm.voted_meter_tempo`)
and the perturbed copies it votes over, with expectations worked out here."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.listen import rhythm as R
from hum2band.music.melody import Note


def _melody(n: int = 400, start_s: float = 0.5, semitones: float = 0.0) -> list[Note]:
    return [Note(start_s + 0.4 * k, start_s + 0.4 * k + 0.3, 60.0 + semitones + k % 5,
                 60 + int(semitones) + k % 5, 70 + k % 20) for k in range(n)]


def test_copies_are_the_same_every_time_and_as_many_as_asked():
    a, b = R.perturbed_copies(_melody(50), 3), R.perturbed_copies(_melody(50), 3)
    assert len(a) == 3
    assert [[(n.onset_s, n.offset_s) for n in c] for c in a] == [[(n.onset_s, n.offset_s) for n in c] for c in b]
    assert R.perturbed_copies(_melody(50), 0) == []
    assert len(R.perturbed_copies(_melody(50))) == R.ENSEMBLE_RUNS


def test_a_copy_moves_each_note_whole_and_keeps_its_pitch_and_velocity():
    notes = _melody(400)
    for copy in R.perturbed_copies(notes, 4):
        by_pitch_and_vel = {(n.midi_pitch, n.velocity, round(n.offset_s - n.onset_s, 9)) for n in notes}
        for n in copy:
            assert (n.midi_pitch, n.velocity, round(n.offset_s - n.onset_s, 9)) in by_pitch_and_vel
            assert n.midi in (60, 61, 62, 63, 64)


def test_copies_move_onsets_by_the_jitter_and_leave_out_about_one_note_in_twenty():
    notes = _melody(4000)
    moves, kept = [], []
    for copy in R.perturbed_copies(notes, 4):
        # the notes are 0.4 s apart and move by ~15 ms: each one is matched by its grid slot
        slot = np.round((np.array([n.onset_s for n in copy]) - 0.5) / 0.4).astype(int)
        moves.append(np.array([n.onset_s for n in copy]) - (0.5 + 0.4 * slot))
        kept.append(len(copy))
    moves = np.concatenate(moves)
    # sample sd of 15,000-odd normal draws of sd 15 ms: within 2 % of it
    assert np.std(moves) == pytest.approx(R.ENSEMBLE_JITTER_S, rel=0.02)
    assert abs(np.mean(moves)) < 0.001
    # 4 x 4000 notes each left out with p = 0.05: 800 expected, sd sqrt(16000 * 0.05 * 0.95) = 27.6
    dropped = 4 * 4000 - sum(kept)
    assert abs(dropped - 800) < 4 * 27.6


def test_copies_of_a_later_or_transposed_take_are_later_or_transposed_copies():
    base = R.perturbed_copies(_melody(60), 2)
    later = R.perturbed_copies(_melody(60, start_s=3.5), 2)
    up = R.perturbed_copies(_melody(60, semitones=5.0), 2)
    for c0, c1, c2 in zip(base, later, up):
        assert [n.onset_s + 3.0 for n in c0] == pytest.approx([n.onset_s for n in c1], abs=1e-9)
        assert [n.midi_pitch + 5.0 for n in c0] == [n.midi_pitch for n in c2]


def test_copies_follow_the_notes_time_order_whatever_order_they_come_in():
    notes = _melody(40)
    assert [[n.onset_s for n in c] for c in R.perturbed_copies(notes[::-1], 2)] == \
        [[n.onset_s for n in c] for c in R.perturbed_copies(notes, 2)]


class _H:
    """A stand-in hypothesis: its score is features @ FEATURE_WEIGHTS (one feature set to s / w0)."""

    def __init__(self, meter, tempo_bpm, score):
        self.meter, self.tempo_bpm = meter, tempo_bpm
        self.features = np.zeros(len(R.FEATURE_WEIGHTS))
        self.features[0] = score / R.FEATURE_WEIGHTS[0]


def _vote(monkeypatch, own, per_copy):
    """Vote with the notes' own hypotheses ``own`` and, per perturbed copy, the best reading
    ``(meter, tempo)`` its hypotheses give."""
    copies = iter(per_copy)
    monkeypatch.setattr(R, "ENSEMBLE_RUNS", len(per_copy))

    def fake(notes, *args, **kwargs):
        m, t = next(copies)
        return None, [_H((4, 4), 999.0, -5.0), _H(m, t, 1.0)]

    monkeypatch.setattr(R, "rhythm_hypotheses", fake)
    return R.voted_meter_tempo(own, _melody(20), 10.0)


def test_the_reading_most_copies_agree_on_wins(monkeypatch):
    own = [_H((3, 4), 96.0, 2.0), _H((6, 8), 64.0, 1.9)]
    # the notes say 3/4 at 96 (1 vote); five copies say 6/8 at about 64, three 3/4 at 96:
    # 6/8 has 5 votes, 3/4 has 1 + 3 = 4
    votes = [((6, 8), 64.0), ((6, 8), 65.5), ((3, 4), 96.0), ((6, 8), 63.0), ((3, 4), 97.0),
             ((6, 8), 64.4), ((3, 4), 95.5), ((6, 8), 64.9)]
    meter, low, high = _vote(monkeypatch, own, votes)
    # the stretch 63.0 .. 65.5, widened by 4 % each side
    assert meter == (6, 8)
    assert (low, high) == pytest.approx((63.0 * 0.96, 65.5 * 1.04))


def test_tempi_within_four_percent_of_a_neighbour_are_one_tempo_and_further_apart_are_not(monkeypatch):
    own = [_H((4, 4), 100.0, 3.0)]
    # 100, 102 and 103 are each within 4 % of the next: 3 votes; 110 is 6.8 % above 103:
    # 3 votes; a tie, so the notes' own. Counted one by one, 110 would win.
    votes = [((4, 4), 102.0), ((4, 4), 110.0), ((4, 4), 103.0), ((4, 4), 110.0), ((4, 4), 110.0)]
    assert _vote(monkeypatch, own, votes) == ((4, 4), pytest.approx(96.0), pytest.approx(103.0 * 1.04))
    # one more at 110 and it wins
    assert _vote(monkeypatch, own, votes + [((4, 4), 110.0)]) == \
        ((4, 4), pytest.approx(110.0 * 0.96), pytest.approx(110.0 * 1.04))


def test_a_singer_who_drifts_keeps_the_tempo_the_copies_spread_around(monkeypatch):
    # The copies of a drifting take read 58 to 64 bpm, in 4/4 and some in 3/4; a few read one
    # tight tempo near 111. Around any single vote at most 5 of the slow ones lie within 4 %
    # (and fewer in one meter), against 5 at 111 (the notes' own among them); as one stretch they are 7.
    own = [_H((4, 4), 111.4, 3.0), _H((4, 4), 63.9, 2.9)]
    votes = [((4, 4), 58.6), ((4, 4), 60.5), ((3, 4), 61.3), ((4, 4), 61.9), ((3, 4), 62.6),
             ((4, 4), 63.9), ((4, 4), 110.9), ((4, 4), 111.6), ((4, 4), 111.6), ((3, 4), 109.9),
             ((4, 4), 60.6)]
    meter, low, high = _vote(monkeypatch, own, votes)
    assert meter == (4, 4)  # 5 of the stretch's 7 votes
    # the stretch spans 9 %: its densest part, 6 votes within 8 % (58.6-62.6 and 60.5-63.9 tie,
    # the notes' own best is in neither: the slower), widened by 4 % each side
    assert (low, high) == pytest.approx((58.6 * 0.96, 62.6 * 1.04))


def test_a_long_chain_of_votes_gives_its_densest_part(monkeypatch):
    # SSVD 1201 through the telephone band: one stretch of 54.5-63.9 bpm (each vote within 4 % of
    # the next), 11 of its 16 votes within 8 % (58.6-62.6); the notes' own best, 111.4, lies elsewhere
    own = [_H((4, 4), 111.4, 3.0), _H((4, 4), 55.7, 2.9), _H((4, 4), 63.3, 2.8)]
    slow = [54.5, 55.8, 56.6, 58.6, 58.6, 58.9, 60.5, 60.6, 61.3, 61.6, 61.6, 61.6, 61.9, 62.6, 63.3,
            63.9]
    votes = [((4, 4), t) for t in slow] + [((4, 4), 111.4)] * 7
    meter, low, high = _vote(monkeypatch, own, votes)
    assert meter == (4, 4)
    assert (low, high) == pytest.approx((58.6 * 0.96, 62.6 * 1.04))
    assert not low <= 55.7 <= high and low <= 63.3 <= high


def test_the_whole_stretch_when_none_of_the_notes_own_readings_lies_in_its_densest_part(monkeypatch):
    own = [_H((4, 4), 111.4, 3.0), _H((4, 4), 55.0, 2.9)]
    votes = [((4, 4), t) for t in (54.0, 56.0, 58.0, 60.0, 60.5, 61.0, 61.5, 62.0)]
    assert _vote(monkeypatch, own, votes) == \
        ((4, 4), pytest.approx(54.0 * 0.96), pytest.approx(62.0 * 1.04))
    # with one of them there, that part
    own.append(_H((4, 4), 61.0, 2.0))
    assert _vote(monkeypatch, own, votes) == \
        ((4, 4), pytest.approx(58.0 * 0.96), pytest.approx(62.0 * 1.04))


def test_the_densest_tempi():
    assert R.densest_tempi([100.0], 100.0) == (100.0, 100.0)
    # two runs of 3 within 8 %: the one with the notes' own, else the slower
    runs = [90.0, 92.0, 94.0, 100.0, 102.0, 104.0]
    assert R.densest_tempi(runs, 0.0) == (90.0, 94.0)
    assert R.densest_tempi(runs, 103.0) == (100.0, 104.0)
    # 8 % exactly is in, more is out
    assert R.densest_tempi([100.0, 108.0, 108.1], 0.0) == (100.0, 108.0)


def test_the_same_tempo_in_another_meter_is_the_same_tempo_and_the_meter_is_voted_within_it(monkeypatch):
    own = [_H((4, 4), 100.0, 3.0)]
    # 4 votes for 3/4 at 100, 2 for 4/4 at 100 (the notes' own among them), 3 for 6/8 at 67:
    # counted by meter, 3/4 would have 4 and 6/8 3; as a tempo 100 has 6, and within it 3/4 4
    votes = [((3, 4), 100.0)] * 4 + [((4, 4), 100.0)] + [((6, 8), 67.0)] * 3
    assert _vote(monkeypatch, own, votes)[0] == (3, 4)
    # 5 votes for 6/8 at 67 against 2 + 4 at 100: the tempo at 100 still wins, in 3/4
    votes = [((3, 4), 100.0)] * 4 + [((4, 4), 100.0)] + [((6, 8), 67.0)] * 5
    assert _vote(monkeypatch, own, votes)[0] == (3, 4)
    # a tie of meters within the tempo goes to the notes' own
    votes = [((3, 4), 100.0)] * 2 + [((4, 4), 100.0)]
    assert _vote(monkeypatch, own, votes)[0] == (4, 4)


def test_a_tie_goes_to_the_notes_own_best(monkeypatch):
    own = [_H((6, 8), 70.0, 1.0), _H((4, 4), 105.0, 4.0)]   # the best: 4/4 at 105
    votes = [((6, 8), 70.0), ((6, 8), 70.0), ((4, 4), 105.0)]   # 2 against 1 + 1
    assert _vote(monkeypatch, own, votes)[:1] == ((4, 4),)
    assert _vote(monkeypatch, own, votes)[1] == pytest.approx(105.0 * 0.96)
    # no copies at all: the notes' own best
    assert _vote(monkeypatch, own, []) == ((4, 4), pytest.approx(105.0 * 0.96), pytest.approx(105.0 * 1.04))


def test_a_copy_with_too_few_notes_for_any_hypothesis_does_not_vote(monkeypatch):
    own = [_H((4, 4), 120.0, 1.0)]
    monkeypatch.setattr(R, "ENSEMBLE_RUNS", 2)
    monkeypatch.setattr(R, "rhythm_hypotheses", lambda *a, **k: (None, []))
    assert R.voted_meter_tempo(own, _melody(20), 10.0) == \
        ((4, 4), pytest.approx(120.0 * 0.96), pytest.approx(120.0 * 1.04))


def test_the_vote_passes_the_take_and_its_overrides_to_every_copy(monkeypatch):
    seen = []

    def fake(notes, duration_s, tempo_bpm, meters, onset_strength, downbeat_s, pickup_beats,
             beliefs):
        seen.append((len(notes), duration_s, tempo_bpm, meters, onset_strength, downbeat_s, pickup_beats,
                     beliefs))
        return None, [_H((3, 4), 90.0, 0.0)]

    monkeypatch.setattr(R, "ENSEMBLE_RUNS", 3)
    monkeypatch.setattr(R, "rhythm_hypotheses", fake)
    notes = _melody(200)
    R.voted_meter_tempo([_H((3, 4), 90.0, 0.0)], notes, 81.0, 90.0, ((3, 4),), "curve", 2.5, 1.0,
                        "beliefs")
    assert len(seen) == 3
    # every copy borrows the beat model's beliefs about the take itself
    assert all(s[1:] == (81.0, 90.0, ((3, 4),), "curve", 2.5, 1.0, "beliefs") for s in seen)
    assert all(150 < s[0] <= 200 for s in seen)  # copies of the notes, a few left out
