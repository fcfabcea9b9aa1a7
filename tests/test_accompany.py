"""The shipped accompaniment model through :func:`hum2band.compose.parts.accompany.accompany`: every style and
meter, seeds, locked bars, the melody-clash rule, chord-following parts, no flams, a bass player's
bass, fills into each phrase. Every musical check reads the note lists with its own arithmetic, not
the decoder's rules."""

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
        for name, arr in ps.parts.items():
            if len(arr) and name in ("keys", "guitar", "pads"):
                assert arr[:, 2].max() <= 84, (style, name, arr[:, 2].max())   # under C6
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


def _clashing_ticks(arr: np.ndarray, melody: np.ndarray, step_beats: float = 1.0 / 12) -> list:
    """Times (beats) where a note of ``arr`` sounds a m2 / M7 / m9 against a sounding melody note,
    read from the note lists on a fine grid (independent of the decoder's own rule)."""
    bad = []
    for on, dur, midi, _ in arr:
        for t in np.arange(on, on + dur - 1e-9, step_beats):
            sung = melody[(melody[:, 0] <= t + 1e-9) & (melody[:, 1] > t + 1e-9)]
            if len(sung) and (int(midi) - int(sung[0, 2])) % 12 in (1, 11):
                bad.append(t)
    return bad


def test_parts_follow_the_chords_they_are_given_and_avoid_melody_clashes():
    notes, chords = _melody(8, 4)
    # a chromatic melody between the beats too: clashes must be avoided wherever it sounds
    notes = notes.copy()
    notes[1::2, 2] += 1
    ps = accompany(notes, chords, 8, (4, 4), 0, "major", 100.0, "pop", seed=0, temperature=0.0)
    for name in ("bass", "keys", "guitar", "pads"):
        arr = ps.parts.get(name)
        if arr is None or not len(arr):
            continue
        assert _clashing_ticks(arr, notes) == [], name
    # the bass starts each bar on a chord tone
    bass = ps.parts["bass"]
    downbeat_notes = bass[np.isclose(bass[:, 0] % 4, 0)]
    assert len(downbeat_notes) >= 6
    tones = []
    for on, _, midi, _ in downbeat_notes:
        c = chords[int(on // 4)][2]
        tones.append((int(midi) - c.root) % 12 in QUALITIES[c.quality])
    assert np.mean(tones) >= 0.8


@pytest.mark.parametrize("style", ["pop", "rock", "funk", "reggae", "swing", "bossa nova"])
def test_no_flams_one_hit_where_one_was_meant(style):
    notes, chords = _melody(16, 4)
    ps = accompany(notes, chords, 16, (4, 4), 0, "major", 110.0, style, seed=3)
    for name, arr in ps.parts.items():
        for key in np.unique(arr[:, 2]):
            on = np.sort(arr[arr[:, 2] == key, 0])
            assert np.all(np.diff(on) >= 0.1), (name, key, on[:-1][np.diff(on) < 0.1])


@pytest.mark.parametrize("style", ["pop", "ballad", "jazz-ballad", "waltz", "funk"])
def test_the_bass_plays_the_root_or_stated_bass_on_each_change_in_a_bass_register(style):
    meter = (3, 4) if style == "waltz" else (4, 4)
    bpb = meter[0]
    notes, _ = _melody(16, bpb)
    # chords changing on the bar and mid-bar, one with a stated bass (C/E)
    spans, t = [], 0.0
    prog = [ChordSymbol.make(0, "maj", 4), ChordSymbol.make(9, "min7"), ChordSymbol.make(2, "min7"),
            ChordSymbol.make(7, "7")]
    k = 0
    while t < 16 * bpb:
        length = bpb if k % 3 else 2.0
        spans.append((t, min(t + length, 16.0 * bpb), prog[k % 4]))
        t, k = t + length, k + 1
    ps = accompany(notes, spans, 16, meter, 0, "major", 96.0, style, seed=2)
    bass = ps.parts["bass"]
    assert len(bass)
    assert bass[:, 2].min() >= 28 and bass[:, 2].max() <= 55, (bass[:, 2].min(), bass[:, 2].max())
    hits = played = 0
    prev = None
    for s, _, c in spans:
        if c == prev:
            continue
        prev = c
        near = bass[np.abs(bass[:, 0] - s) <= 0.5]
        if not len(near):
            continue
        played += 1
        first = near[np.argmin(np.abs(near[:, 0] - s))]
        hits += int(first[2]) % 12 in (c.root, c.bass)
    assert played >= len(spans) // 2
    assert hits / played >= 0.9, (hits, played)
    leaps = np.abs(np.diff(bass[:, 2])) >= 12
    assert leaps.mean() <= (0.35 if style == "funk" else 0.05)


def _drum_bar(drums: np.ndarray, bar: int, bpb: int) -> set:
    sel = drums[(drums[:, 0] >= bar * bpb - 1e-9) & (drums[:, 0] < (bar + 1) * bpb - 1e-9)]
    return {(int(k), round(float(on - bar * bpb) * 12)) for on, _, k, _ in sel}


@pytest.mark.parametrize("style", ["pop", "ballad", "rock"])
def test_the_drums_fill_into_each_new_phrase_and_do_not_loop_one_bar(style):
    notes, chords = _melody(17, 4)
    ps = accompany(notes, chords, 17, (4, 4), 0, "major", 100.0, style, seed=0, temperature=0.0)
    drums = ps.parts["drums"]
    toms_and_snare = {38, 37, 45, 48, 40, 41, 43, 47, 50}
    for end_bar in (7, 15):
        last_beat = [(k, t) for k, t in _drum_bar(drums, end_bar, 4) if t >= 36]
        assert sum(k in toms_and_snare for k, _ in last_beat) >= 3, (end_bar, sorted(last_beat))
        assert any(k in (49, 51) and t == 0 for k, t in _drum_bar(drums, end_bar + 1, 4)), end_bar
    bars = [_drum_bar(drums, b, 4) for b in range(16)]
    assert len({frozenset(b) for b in bars}) > 1


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
