"""The singer's tuning: where their semitone grid sits against A440. Expectations by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hum2band.music.melody import Note
from hum2band.music.tuning import estimate_tuning_cents, snap_notes


def sung(pitches, durations=None):
    durations = durations or [0.5] * len(pitches)
    notes, t = [], 0.0
    for p, d in zip(pitches, durations):
        notes.append(Note(t, t + d, float(p), int(round(p)), 90))
        t += d + 0.1
    return notes


def circular_gap(a, b):
    return abs((a - b + 50.0) % 100.0 - 50.0)


@pytest.mark.parametrize("cents", [-40.0, -17.0, 0.0, 12.0, 30.0, 45.0])
def test_a_singer_steady_on_a_shifted_grid(cents):
    tune = [60, 62, 64, 65, 67, 69, 71, 72]
    assert estimate_tuning_cents(sung([p + cents / 100 for p in tune])) == pytest.approx(cents, abs=0.5)


def test_sharp_and_flat_near_the_quarter_tone_are_neighbours():
    # 48 cents sharp of one semitone is 52 flat of the next: notes either side of the quarter tone
    # sit together on the circle, about 50 cents from A440 (not averaged to 0).
    est = estimate_tuning_cents(sung([60.48, 62.52, 64.49, 65.51, 67.48, 69.52]))
    assert circular_gap(est, 50.0) < 2.0
    assert -50.0 <= est < 50.0


def test_out_of_tune_notes_and_glides_do_not_pull_the_grid():
    # Eight held notes 20 cents sharp; two held notes 40 cents flat (60 cents off the grid, out
    # of the refinement window) and short glide fragments wherever.
    pitches = [60.2, 62.2, 64.2, 65.2, 67.2, 69.2, 71.2, 72.2, 63.6, 66.6, 61.9, 64.55, 68.75]
    durs = [0.8] * 8 + [0.8, 0.8] + [0.03, 0.03, 0.03]
    assert estimate_tuning_cents(sung(pitches, durs)) == pytest.approx(20.0, abs=3.0)


def test_long_notes_count_more_but_only_up_to_a_second():
    # A 3 s note at +10 weighs as 1 s; three 10 ms notes at -30 weigh 30 ms each: +10 wins.
    assert estimate_tuning_cents(sung([60.1, 62.7, 64.7, 65.7], [3.0, 0.01, 0.01, 0.01])) == \
        pytest.approx(10.0, abs=3.0)
    # Two 1 s notes at -30 against one 3 s note at +10 (capped to 1 s): -30 has the weight.
    assert estimate_tuning_cents(sung([60.1, 62.7, 64.7], [3.0, 1.0, 1.0])) == pytest.approx(-30.0, abs=5.0)


def test_nothing_usable_is_in_tune():
    assert estimate_tuning_cents([]) == 0.0
    bad = [Note(0.0, 0.5, float("nan"), 0, 90), Note(1.0, 1.5, 0.0, 0, 90)]
    assert estimate_tuning_cents(bad) == 0.0
    assert estimate_tuning_cents(bad + sung([60.25])) == pytest.approx(25.0, abs=0.5)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(48, 84), min_size=3, max_size=30), st.floats(-49.0, 49.0),
       st.integers(-12, 12))
def test_tuning_ignores_which_notes_and_transposition(tune, cents, k):
    a = estimate_tuning_cents(sung([p + cents / 100 for p in tune]))
    b = estimate_tuning_cents(sung([p + k + cents / 100 for p in reversed(tune)]))
    assert circular_gap(a, cents) < 0.5 and circular_gap(a, b) < 1e-6


def test_snapping_names_notes_on_the_singers_grid():
    notes = sung([61.72, 61.4, 59.55])
    # 30 cents flat singer: 61.72 is a D (62); +45 cents: 61.4 is C# - 0.45 -> 60.95 -> 61.
    assert [n.midi for n in snap_notes(notes, -30.0)] == [62, 62, 60]
    assert [n.midi for n in snap_notes(notes, 45.0)] == [61, 61, 59]
    # Copies: the inputs keep their midi, and everything but midi is unchanged.
    snapped = snap_notes(notes, -30.0)
    assert [n.midi for n in notes] == [62, 61, 60]
    assert [(n.onset_s, n.offset_s, n.midi_pitch, n.velocity) for n in snapped] == \
           [(n.onset_s, n.offset_s, n.midi_pitch, n.velocity) for n in notes]
    assert np.all([isinstance(n.midi, int) for n in snapped])


def test_very_short_notes_still_count_as_thirty_milliseconds():
    # Ten 1 ms blips at +40 weigh 10 x 30 ms = 0.3 s against one 0.1 s note at -10: +40 wins.
    pitches = [61.40] * 10 + [63.90]
    assert estimate_tuning_cents(sung(pitches, [0.001] * 10 + [0.1])) == pytest.approx(40.0, abs=1.0)


def test_of_two_groups_half_a_semitone_apart_the_heavier_wins_untouched():
    # Five seconds at +20, four at -30: 50 cents apart, so the lighter group is outside the
    # refinement window and does not pull the estimate at all.
    pitches = [60.2, 62.2, 64.2, 65.2, 67.2, 59.7, 61.7, 63.7, 66.7]
    assert estimate_tuning_cents(sung(pitches, [1.0] * 9)) == pytest.approx(20.0, abs=0.01)
    # Weighted by the cap: five 1 s notes at -30 against four 3 s notes (capped to 1 s) at +20.
    pitches = [59.7, 61.7, 63.7, 66.7, 68.7, 60.2, 62.2, 64.2, 65.2]
    assert estimate_tuning_cents(sung(pitches, [1.0] * 5 + [3.0] * 4)) == pytest.approx(-30.0, abs=0.01)


# ---- the pitch a note settles on (hum2band.listen.notes.settled_notes) --------------------------
def _scooped_take(cents: float, scoop_cents: float = -100.0, tau_s: float = 0.05):
    """A pitch track of eight 0.3 s notes sung ``cents`` off A440, each scooping up into its pitch
    from ``scoop_cents`` away, the gap decaying with time constant ``tau_s`` (as a voice glides
    into a note), with rests between."""
    from hum2band.listen.pitch import HOP_S, PitchTrack

    pitch, rms = [np.full(20, np.nan)], [np.full(20, -90.0)]
    t = np.arange(int(round(0.3 / HOP_S))) * HOP_S
    for p in (60, 62, 64, 65, 67, 65, 64, 62):
        pitch += [p + (cents + scoop_cents * np.exp(-t / tau_s)) / 100.0, np.full(15, np.nan)]
        rms += [np.full(len(t), -20.0), np.full(15, -90.0)]
    pitch, rms = np.concatenate(pitch), np.concatenate(rms)
    conf = np.isfinite(pitch).astype(float)
    return PitchTrack(np.arange(len(pitch)) * HOP_S, pitch, conf, rms, "test", rms.copy())


@pytest.mark.parametrize("cents", [-30.0, 0.0, 18.0])
def test_a_singer_who_scoops_into_every_note_is_read_where_the_notes_settle(cents):
    from hum2band.listen.notes import segment_notes, settled_notes

    track = _scooped_take(cents)
    notes = segment_notes(track)
    assert len(notes) == 8
    # each note's own pitch keeps its scoop, which pulls the take's tuning flat ...
    assert circular_gap(estimate_tuning_cents(notes), cents) > 6.0
    # ... the pitch it settles on much less
    assert circular_gap(estimate_tuning_cents(settled_notes(notes, track)), cents) < 3.5


def test_settled_notes_change_only_the_pitch_and_keep_what_they_cannot_read():
    from dataclasses import replace

    from hum2band.listen.notes import segment_notes, settled_notes

    track = _scooped_take(10.0)
    notes = segment_notes(track)
    out = settled_notes(notes, track)
    assert [(n.onset_s, n.offset_s, n.midi, n.velocity) for n in out] == \
        [(n.onset_s, n.offset_s, n.midi, n.velocity) for n in notes]
    assert all(abs(a.midi_pitch - b.midi_pitch) > 0.01 for a, b in zip(out, notes))
    # a note of under 5 frames, and a note whose frames hold no pitch, keep their own pitch
    short = replace(notes[0], offset_s=notes[0].onset_s + 0.03, midi_pitch=59.7)
    silent = replace(notes[0], onset_s=0.0, offset_s=0.19, midi_pitch=61.3)
    assert [n.midi_pitch for n in settled_notes([short, silent], track)] == [59.7, 61.3]


def test_settled_pitch_leaves_out_the_trackers_slips():
    # On real voices the raw tracker slips for stretches to intervals that are not whole octaves
    # (a fifth and a bit): most of the settled part of this note reads 6.8 semitones low, which
    # would move the take's grid by 20 cents. Frames that far from the note's own pitch are left
    # out; the rest say where the note settles.
    from hum2band.listen.notes import settled_notes
    from hum2band.listen.pitch import HOP_S, PitchTrack

    n_frames = 50
    frames = np.full(n_frames, 64.12)
    frames[20:42] = 64.12 - 6.8
    track = PitchTrack(np.arange(n_frames) * HOP_S, frames, np.ones(n_frames), np.full(n_frames, -20.0),
                       "test", np.full(n_frames, -20.0))
    note = Note(0.0, n_frames * HOP_S, 64.1, 64, 90)
    assert settled_notes([note], track)[0].midi_pitch == pytest.approx(64.12)
