"""The shipped accompaniment model through :func:`hum2band.compose.parts.accompany.accompany`: every style and
meter, seeds, locked bars, the melody-clash rule, chord-following parts."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.compose.parts import grid as G
from hum2band.compose.parts.accompany import accompany, load_parts_model
from hum2band.music.chords import QUALITIES, ChordSymbol
from hum2band.errors import OptionError
from hum2band.music.styles import all_styles, get_style


def _melody(n_bars: int, bpb: int) -> tuple[np.ndarray, list]:
    notes = np.array([[b * bpb + k, b * bpb + k + 0.9, [60, 62, 64, 65, 67][(b + k) % 5]]
                      for b in range(n_bars) for k in range(bpb)], dtype=float)
    prog = [0, 5, 7, 0]
    chords = [(b * bpb * 1.0, (b + 1) * bpb * 1.0, ChordSymbol.make(prog[b % 4], "maj")) for b in range(n_bars)]
    return notes, chords


@pytest.mark.parametrize("style", [s.name for s in all_styles()])
def test_every_style_plays_every_meter_it_lists(style):
    model, _ = load_parts_model()
    st = get_style(style)
    assert st.meters, style
    for meter in st.meters:
        bpb = {(4, 4): 4, (3, 4): 3, (6, 8): 2}[meter]
        notes, chords = _melody(4, bpb)
        ps = accompany(notes, chords, 4, meter, 0, "major", 100.0, style, seed=1, model=model)
        assert len(ps.parts["drums"]) > 0, (style, meter)
        assert len(ps.parts["bass"]) > 0, (style, meter)
        for arr in ps.parts.values():
            if len(arr):
                assert arr[:, 0].min() >= 0 and arr[:, 0].max() < 4 * bpb
                assert (arr[:, 1] > 0).all()
                assert ((arr[:, 3] >= 1) & (arr[:, 3] <= 127)).all()


def test_a_style_says_which_meters_it_cannot_play():
    notes, chords = _melody(2, 3)
    with pytest.raises(OptionError, match="funk cannot be played in 3/4"):
        accompany(notes, chords, 2, (3, 4), 0, "major", 100.0, "funk", seed=0)
    with pytest.raises(OptionError, match="waltz cannot be played in 4/4"):
        accompany(*_melody(2, 4), 2, (4, 4), 0, "major", 100.0, "waltz", seed=0)


def test_same_seed_same_parts_and_another_seed_differs():
    notes, chords = _melody(8, 4)
    a = accompany(notes, chords, 8, (4, 4), 0, "major", 110.0, "pop", seed=5)
    b = accompany(notes, chords, 8, (4, 4), 0, "major", 110.0, "pop", seed=5)
    c = accompany(notes, chords, 8, (4, 4), 0, "major", 110.0, "pop", seed=6)
    for k in a.parts:
        assert np.array_equal(a.parts[k], b.parts[k])
    assert any(not np.array_equal(a.parts[k], c.parts[k]) for k in a.parts)


def test_parts_follow_the_chords_they_are_given_and_avoid_melody_clashes():
    notes, chords = _melody(8, 4)
    ps = accompany(notes, chords, 8, (4, 4), 0, "major", 100.0, "pop", seed=0, temperature=0.0)
    mel = G.melody_grid(notes, 8, 4)
    flat = mel.pitch[:, :48].reshape(-1)
    for name in ("bass", "keys", "guitar", "pads"):
        arr = ps.parts.get(name)
        if arr is None or not len(arr):
            continue
        for on, dur, midi, _ in arr:
            t = int(round(on * G.TICKS_PER_BEAT))
            assert not G.clashes_with_melody(int(midi), t, t + int(round(dur * G.TICKS_PER_BEAT)), flat)
    # the bass starts each bar on a chord tone
    bass = ps.parts["bass"]
    downbeat_notes = bass[np.isclose(bass[:, 0] % 4, 0)]
    assert len(downbeat_notes) >= 6
    tones = []
    for on, _, midi, _ in downbeat_notes:
        c = chords[int(on // 4)][2]
        tones.append((int(midi) - c.root) % 12 in QUALITIES[c.quality])
    assert np.mean(tones) >= 0.8


def test_regenerating_bars_keeps_the_others():
    notes, chords = _melody(8, 4)
    a = accompany(notes, chords, 8, (4, 4), 0, "major", 110.0, "rock", seed=1)
    b = accompany(notes, chords, 8, (4, 4), 0, "major", 110.0, "rock", seed=99, keep=a,
                  regenerate_bars=(2, 4))
    assert b.variant == a.variant
    for name in a.parts:
        for arr_a, arr_b in ((a.parts[name], b.parts[name]),):
            outside_a = arr_a[(arr_a[:, 0] < 8) | (arr_a[:, 0] >= 16)] if len(arr_a) else arr_a
            outside_b = arr_b[(arr_b[:, 0] < 8) | (arr_b[:, 0] >= 16)] if len(arr_b) else arr_b
            assert np.allclose(outside_a, outside_b)
    assert not np.array_equal(a.onsets[2:4], b.onsets[2:4])
    assert np.array_equal(a.onsets[:2], b.onsets[:2]) and np.array_equal(a.onsets[4:], b.onsets[4:])
