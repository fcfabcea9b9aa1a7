"""The rhythm stage's other tempi and meters of a take: one move (``--meter``, ``--tempo``) away each."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.app.common import tempi_hint
from hum2band.listen import rhythm as R
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import OtherTempo, Rhythm, count_words

from test_other_readings import _tune


def _apart(a: tuple, b: tuple) -> bool:
    """Two (meter, bpm) readings are different readings: another meter, or 15 % of tempo apart."""
    return a[0] != b[0] or abs(np.log(a[1] / b[1])) >= np.log(1.15) - 1e-9


def test_a_tune_read_at_half_its_tempo_offers_its_own_tempo_first_and_the_move_reads_it():
    # half, quarter, quarter at 120 bpm: the stage hears it in halves (60 bpm); its likeliest
    # other count is the tune's own, and giving it reads the take that way
    notes = _tune()
    r = R.estimate_rhythm(notes, 26.0)
    assert r.meter == (4, 4) and r.tempo_bpm == pytest.approx(60.0, rel=0.03)
    assert 1 <= len(r.other_tempi) <= R.OTHER_TEMPI
    first = r.other_tempi[0]
    assert first.meter == (4, 4) and first.tempo_bpm == pytest.approx(120.0, rel=0.03)
    assert first.words(r.meter, r.tempo_bpm) == "at double the tempo, 120 bpm"
    margins = [o.margin for o in r.other_tempi]
    assert all(m >= 0.0 for m in margins) and margins == sorted(margins)  # likeliest first
    readings = [((4, 4), r.tempo_bpm)] + [(o.meter, o.tempo_bpm) for o in r.other_tempi]
    for i, a in enumerate(readings):  # each one is another reading
        assert all(_apart(a, b) for b in readings[i + 1:])
    for o in r.other_tempi:  # the move: arranged again with its flags, the take is read that way
        moved = R.estimate_rhythm(notes, 26.0, meter=o.meter, tempo_bpm=float(f"{o.tempo_bpm:.0f}"))
        assert moved.meter == o.meter and moved.tempo_bpm == pytest.approx(o.tempo_bpm, rel=0.05)
    moved = R.estimate_rhythm(notes, 26.0, meter=first.meter, tempo_bpm=120.0)
    long_on = np.array([n.onset_s for n in notes[::3]])
    assert np.max(np.min(np.abs(moved.beats_s[:, None] - long_on[None, :]), axis=0)) < 0.07


def test_a_waltz_offers_6_8_and_a_given_tempo_or_meter_keeps_to_it():
    notes = []
    for b in range(16):  # a long chord tone and a short step, 3/4 at 120 bpm
        t = 1.0 + 1.5 * b
        root = 60 + (0, 5, 7, 0)[b % 4]
        notes.append(Note(t, t + 0.95, float(root), root, 90))
        notes.append(Note(t + 1.0, t + 1.45, float(root + 2), root + 2, 70))
    r = R.estimate_rhythm(notes, 26.0)
    assert r.meter == (3, 4)
    assert r.other_tempi[0].meter == (6, 8)  # two bars of it as one bar of 6/8
    assert r.other_tempi[0].tempo_bpm == pytest.approx(r.tempo_bpm / 3, rel=0.03)
    # a meter given: only other tempi of it; a tempo given: only other meters at it
    pinned = R.estimate_rhythm(notes, 26.0, meter=(3, 4))
    assert pinned.other_tempi and all(o.meter == (3, 4) for o in pinned.other_tempi)
    pinned = R.estimate_rhythm(notes, 26.0, tempo_bpm=120.0)
    assert pinned.other_tempi and all(o.meter != pinned.meter for o in pinned.other_tempi)
    assert all(o.tempo_bpm == pytest.approx(120.0, rel=0.01) for o in pinned.other_tempi
               if o.meter != (6, 8))
    # a bar line fixed by hand is not second-guessed
    assert R.estimate_rhythm(notes, 26.0, downbeat_s=1.0).other_tempi == ()


def test_other_tempi_go_through_json_and_into_a_hint():
    rhythm = Rhythm(np.arange(1.0, 5.0, 0.5), np.array([1.0, 3.0]), (4, 4), 120.4, 0.9, 0.8, (),
                    (OtherTempo((4, 4), 60.2, 0.4), OtherTempo((3, 4), 120.0, 1.5),
                     OtherTempo((6, 8), 40.0, 3.0)))
    melody = Melody([Note(1.0, 1.4, 60.0, 60, 80)], 0.0, rhythm, Key("C", "major", 0.9), 5.0)
    d = melody.to_json()
    assert d["other_tempi"][0] == {"meter": "4/4", "tempo_bpm": 60.2, "margin": 0.4}
    back = Melody.from_json(d)
    assert back.rhythm.other_tempi == rhythm.other_tempi
    hint = tempi_hint([o.to_json() for o in rhythm.other_tempi], (4, 4), 120.4)
    assert hint == ("to count it another way, give: at half the tempo, 60 bpm --meter 4/4 --tempo 60; "
                    "in 3/4 at 120 bpm --meter 3/4 --tempo 120; in 6/8 at 40 bpm --meter 6/8 --tempo 40")
    assert tempi_hint([], (4, 4), 120.0) == ""
    # an older melody file without them reads as none offered
    del d["other_tempi"]
    assert Melody.from_json(d).rhythm.other_tempi == ()


@pytest.mark.parametrize("meter, bpm, words", [
    ((4, 4), 62.0, "at half the tempo, 62 bpm"), ((4, 4), 250.0, "at double the tempo, 250 bpm"),
    ((4, 4), 190.0, "one and a half times the tempo"), ((4, 4), 84.0, "two thirds of the tempo"),
    ((4, 4), 42.0, "a third of the tempo"), ((4, 4), 100.0, "at 100 bpm"),
    ((3, 4), 125.0, "in 3/4 at 125 bpm"), ((6, 8), 41.6, "in 6/8 at 42 bpm")])
def test_counts_in_words(meter, bpm, words):
    assert words in count_words(meter, bpm, (4, 4), 125.0)
