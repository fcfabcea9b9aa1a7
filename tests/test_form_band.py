"""The band follows the form the melody has: fills where the sections and phrases found from the
melody end (not on a fixed 8-bar grid), a break or a build where the singer rests, a groove that
varies as a player's does. The checks read the note lists with their own arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.compose import form as FM
from hum2band.compose.parts import fills as F
from hum2band.compose.parts import grid as G
from hum2band.compose.parts.accompany import accompany, load_parts_model
from hum2band.music.chords import ChordSymbol

from test_form_phrases import BRIDGE_8, PHRASE_6, _tune

TOMS_AND_SNARE = {38, 37, 40, 41, 43, 45, 47, 48, 50}
CYMBALS = {49, 51, 52, 55, 57, 59}


def _chords(n_bars: int, bpb: int = 4) -> list:
    prog = [0, 5, 7, 0, 9, 5, 7, 0]
    return [(b * bpb * 1.0, (b + 1) * bpb * 1.0, ChordSymbol.make(prog[b % 8], "min" if prog[b % 8] == 9 else "maj"))
            for b in range(n_bars)]


def _bar(drums: np.ndarray, bar: int, bpb: int = 4) -> list:
    sel = drums[(drums[:, 0] >= bar * bpb - 1e-9) & (drums[:, 0] < (bar + 1) * bpb - 1e-9)]
    return sorted((int(k), int(round((on - bar * bpb) * 12))) for on, _, k, _ in sel)


def _fills(drums: np.ndarray, bar: int, bpb: int = 4) -> bool:
    """Three or more snare/tom hits in the bar's last counted beat."""
    return sum(k in TOMS_AND_SNARE and t >= (bpb - 1) * 12 for k, t in _bar(drums, bar, bpb)) >= 3


@pytest.mark.parametrize("style", ["pop", "rock", "country"])
def test_fills_go_where_the_melodys_sections_end_not_every_eight_bars(style):
    melody = _tune(*PHRASE_6, *PHRASE_6, *BRIDGE_8, *PHRASE_6)         # A A B A: 6 + 6 + 8 + 6 bars
    sections = FM.find_sections(melody, 0, 26, 4)
    assert [s.start_bar for s in sections] == [0, 6, 12, 20]
    ps = accompany(melody, _chords(27), 27, (4, 4), 0, "major", 100.0, style, seed=0, temperature=0.0,
                   model=load_parts_model()[0], sections=sections)
    drums = ps.parts["drums"]
    for end in (5, 11, 19):                                            # the bars before 7, 13, 21 (1-based)
        assert _fills(drums, end), (end, _bar(drums, end))
        assert any(k in CYMBALS and t == 0 for k, t in _bar(drums, end + 1)), end
    assert not _fills(drums, 7) and not _fills(drums, 23)              # the old grid's bars 8 and 24


def _song_with_a_rest(n_rest: int) -> tuple[np.ndarray, int]:
    rest = [(4.0, None)]
    melody = _tune(*PHRASE_6, *([rest] * n_rest), *PHRASE_6)
    return melody, 12 + n_rest


def test_a_stop_where_the_singer_rests_in_funk_the_band_hits_the_downbeat_and_the_drums_lead_back():
    melody, n = _song_with_a_rest(2)                                  # bars 6 and 7 are empty
    sections = FM.find_sections(melody, 0, n, 4)
    ps = accompany(melody, _chords(n + 1), n + 1, (4, 4), 0, "major", 100.0, "funk", seed=1,
                   model=load_parts_model()[0], sections=sections)
    for bar in (6, 7):
        for name, arr in ps.parts.items():
            inside = arr[(arr[:, 0] > bar * 4 + 0.1) & (arr[:, 0] < bar * 4 + 3 - 1e-9)] if len(arr) else arr
            assert not len(inside), (name, bar, inside[:, :3])          # nothing between the downbeat and beat 4
        assert any(k in CYMBALS or k == 36 for k, t in _bar(ps.parts["drums"], bar) if t == 0), bar
    assert _fills(ps.parts["drums"], 7)                                # the drums lead back in
    assert not _fills(ps.parts["drums"], 6)
    assert len(_bar(ps.parts["drums"], 5)) > 4 and len(_bar(ps.parts["drums"], 8)) > 4   # a groove around it


def test_a_build_where_the_singer_rests_in_rock_the_drums_fill_the_whole_bar():
    melody, n = _song_with_a_rest(1)                                  # bar 6 is empty
    sections = FM.find_sections(melody, 0, n, 4)
    ps = accompany(melody, _chords(n + 1), n + 1, (4, 4), 0, "major", 100.0, "rock", seed=1,
                   model=load_parts_model()[0], sections=sections)
    hits = [(k, t) for k, t in _bar(ps.parts["drums"], 6) if k in TOMS_AND_SNARE]
    assert len(hits) >= 10 and min(t for _, t in hits) < 12, hits     # from beat 1 on, 16ths
    vel = ps.parts["drums"][(ps.parts["drums"][:, 0] >= 24) & (ps.parts["drums"][:, 0] < 28)
                            & np.isin(ps.parts["drums"][:, 2], list(TOMS_AND_SNARE))][:, 3]
    assert vel[-1] > vel[0]                                            # it builds


@pytest.mark.parametrize("style", ["pop", "funk", "bossa nova", "waltz"])
def test_the_groove_repeats_within_a_section_and_varies_without_looping_or_flams(style):
    meter = (3, 4) if style == "waltz" else (4, 4)
    bpb = meter[0]
    notes = np.array([[b * bpb + k, b * bpb + k + 0.9, [60, 62, 64, 65, 67][(b + k) % 5]]
                      for b in range(16) for k in range(bpb)], dtype=float)
    chords = _chords(17, bpb)
    sections = FM.plan_energy([FM.Section(0, 8, "A"), FM.Section(8, 16, "A")])
    ps = accompany(notes, chords, 17, meter, 0, "major", 100.0, style, seed=2, model=load_parts_model()[0],
                   sections=sections)
    drums = ps.parts["drums"]
    bars = [tuple(_bar(drums, b, bpb)) for b in range(16)]
    for lo in (0, 8):
        own = bars[lo:lo + 7]                                          # the fill bar left out
        common = max(set(own), key=own.count)
        assert own.count(common) >= 3, (style, lo)                    # a groove comes back
        assert len(set(own)) >= 2, (style, lo)                        # and is varied
    assert len(set(bars[:15])) > 2                                     # no loop of one bar
    for key in np.unique(drums[:, 2]):
        on = np.sort(drums[drums[:, 2] == key, 0])
        assert np.all(np.diff(on) >= 0.1), (style, key)                # no flams from the variations


def test_a_comping_hit_moves_an_eighth_earlier_and_a_voicing_turns_over():
    n = G.bar_ticks(4)
    fire = np.zeros((G.MAX_TICKS, G.ONSET_SIZE), dtype=bool)
    vel = np.full(fire.shape, 0.7)
    dur = np.zeros(fire.shape)
    block = slice(G.N_DRUM, G.N_DRUM + G.N_REL)
    for t in (0, 12, 24, 36):                                          # a chord on every beat: rel 20, 24, 27
        fire[t, block.start + np.array([20, 24, 27])] = True
        dur[t, block] = np.log2(6)
    keep = np.zeros(n, dtype=bool)
    keep[0] = True
    assert F.displace_comping(fire, vel, dur, n, block, keep)
    hits = sorted(set(np.nonzero(fire[:n, block].any(axis=1))[0].tolist()))
    assert hits == [0, 12, 24, 30]                                     # beat 4's chord on the "and" of 3
    assert np.allclose(2.0 ** dur[30, block.start + 20], 12)            # held on through the beat it left
    F.invert_voicing(fire, vel, dur, n, block)
    assert np.nonzero(fire[0, block])[0].tolist() == [24, 27, 32]      # root up an octave: first inversion
