"""Key finding from notes: the cues per key and how they combine. Expectations by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.music import keyfinding as K
from hum2band.music.melody import Note


def note(on, off, midi, snapped=True):
    return Note(on, off, float(midi), int(round(midi)) if snapped else 0, 90)


def test_the_distribution_weighs_how_long_each_pitch_class_is_held():
    # C held 1 s; E sung 0.5 s but nothing follows for 1 s (it rings to the next onset); G held
    # 3 s but counted as 1.5 s at most; a 10 ms D counts as 50 ms. Given out of order.
    notes = [note(2.0, 5.0, 67), note(0.0, 1.0, 60), note(1.0, 1.5, 64), note(5.0, 5.01, 62)]
    hist = K.pitch_class_distribution(notes)
    weights = np.zeros(12)
    weights[[0, 4, 7, 2]] = [1.0, 1.0, 1.5, 0.05]
    assert np.allclose(hist, weights / weights.sum())
    assert np.allclose(K.pitch_class_distribution([]), np.zeros(12))


def test_unsnapped_notes_are_named_on_the_estimated_tuning():
    # Sung 40 cents sharp and never snapped (midi 0): 60.4 is a C, 62.4 a D, not C#/D#.
    notes = [note(i, i + 0.5, p + 0.4, snapped=False) for i, p in enumerate([60, 62, 64, 65, 67])]
    assert list(K._snapped_midi(notes)) == [60, 62, 64, 65, 67]
    hist = K.pitch_class_distribution(notes)
    assert hist[[0, 2, 4, 5, 7]].sum() == pytest.approx(1.0)


def test_a_profile_correlates_best_with_its_own_key():
    for prof_major, prof_minor in ((K.TEMPERLEY_MAJOR, K.TEMPERLEY_MINOR), (K.ALBRECHT_MAJOR, K.ALBRECHT_MINOR)):
        major = prof_major / prof_major.sum()
        corr = K._correlations(major, prof_major, prof_minor)
        assert corr.shape == (24,) and corr[0] == pytest.approx(1.0) and np.argmax(corr) == 0
        g_major = np.roll(major, 7)
        assert np.argmax(K._correlations(g_major, prof_major, prof_minor)) == 7
        e_minor = np.roll(prof_minor / prof_minor.sum(), 4)
        assert np.argmax(K._correlations(e_minor, prof_major, prof_minor)) == 12 + 4
    # Correlation, not overlap: a flat profile shifted up gives the same numbers.
    hist = np.roll(K.TEMPERLEY_MAJOR, 2)
    assert np.allclose(K._correlations(hist, K.TEMPERLEY_MAJOR, K.TEMPERLEY_MINOR),
                       K._correlations(hist + 5.0, K.TEMPERLEY_MAJOR, K.TEMPERLEY_MINOR))


def test_the_cues_of_each_key():
    # "G A B | (rest) | D E F# G": two phrases, the second ending on G, the tune starting on G.
    pitches = [(0, 67), (1, 69), (2, 71), (4, 74), (5, 76), (6, 78), (7, 79)]
    notes = [note(t, t + 0.9, p) for t, p in pitches]
    f = K.key_features(notes)
    assert f.shape == (24, len(K.FEATURE_NAMES)) == (24, 13 + 24 * 8)
    col = {n: i for i, n in enumerate(K.FEATURE_NAMES)}
    g_major, e_minor, c_major, g_minor = 7, 12 + 4, 0, 12 + 7
    assert f[g_major, col["final_tonic"]] == 1 and f[c_major, col["final_tonic"]] == 0
    assert f[g_major, col["first_tonic"]] == 1 and f[g_minor, col["first_tonic"]] == 1
    # The final G is in the triads of G major, E minor and C major, not in D major's or A minor's.
    assert [f[k, col["final_triad"]] for k in (g_major, e_minor, c_major, 2, 12 + 9)] == [1, 1, 1, 0, 0]
    # Phrases end on B (after 2.9 s a 1.1 s rest) and on the last G: half each.
    assert f[g_major, col["phrase_end_tonic"]] == pytest.approx(0.5)
    assert f[12 + 11, col["phrase_end_tonic"]] == pytest.approx(0.5)            # B minor's tonic
    assert f[e_minor, col["phrase_end_triad"]] == pytest.approx(1.0)           # E G B hold both
    assert f[g_major, col["tonic_share"]] == pytest.approx(K.pitch_class_distribution(notes)[7])
    assert list(f[:, col["is_minor"]]) == [0.0] * 12 + [1.0] * 12
    assert f[:, col["loglik_temperley"]].max() == 0.0
    assert K.estimate_key(notes).tonic == "G" and K.estimate_key(notes).mode == "major"


def test_a_tonic_triad_in_minor_uses_the_minor_third():
    f = K.key_features([note(0, 1, 63)])  # an Eb alone
    col = K.FEATURE_NAMES.index("final_triad")
    assert f[12 + 0, col] == 1 and f[0, col] == 0      # in C minor's triad, not C major's
    assert f[3, col] == 1 and f[12 + 3, col] == 1      # Eb major's and Eb minor's root
    assert f[8, col] == 1 and f[11, col] == 1          # Ab major's fifth, B major's third (D#)
    assert f[2, col] == 0 and f[12 + 2, col] == 0      # not in D major's or D minor's triad


def test_confidence_and_the_empty_melody():
    empty = K.estimate_key([])
    assert (empty.tonic, empty.mode, empty.confidence) == ("C", "major", 0.0)
    scale = [note(i * 0.5, i * 0.5 + 0.45, p) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    sure = K.estimate_key(scale)
    assert sure.tonic == "C" and sure.mode == "major" and 0.0 < sure.confidence <= 1.0
    two = K.estimate_key([note(0, 1, 60), note(1, 2, 67), note(2, 3, 60)])
    # Two pitch classes say little: the confidence is halved, so below one half.
    assert two.confidence < 0.5


def test_flat_keys_are_spelled_with_flats():
    tune = [63, 65, 67, 68, 70, 72, 74, 75, 70, 67, 63]
    key = K.estimate_key([note(i * 0.5, i * 0.5 + 0.45, p) for i, p in enumerate(tune)])
    assert (key.tonic, key.mode) == ("Eb", "major")


# ---- the cues per scale degree and the fitted model ---------------------------------------------
def _tune(pitches, durs=None, start=0.0, legato=0.9):
    durs = durs or [0.5] * len(pitches)
    out, t = [], start
    for p, d in zip(pitches, durs):
        out.append(note(t, t + d * legato, p))
        t += d
    return out


def test_the_feature_names_match_the_weights_and_the_blocks():
    assert len(K.FEATURE_NAMES) == len(K.KEY_WEIGHTS) == len(K.SCALAR_FEATURES) + 24 * len(K.DEGREE_BLOCKS)
    assert K.FEATURE_NAMES[:len(K.SCALAR_FEATURES)] == K.SCALAR_FEATURES
    col = K.FEATURE_NAMES.index("last_maj0")
    assert K.FEATURE_NAMES[col + 11] == "last_maj11" and K.FEATURE_NAMES[col + 12] == "last_min0"
    for name, w in zip(K.SCALAR_FEATURES, K.KEY_WEIGHTS):
        assert K.SCALAR_WEIGHTS[name] == w
    for b in K.DEGREE_BLOCKS:
        for m in ("maj", "min"):
            start = K.FEATURE_NAMES.index(f"{b}_{m}0")
            assert np.array_equal(K.KEY_WEIGHTS[start:start + 12], K.DEGREE_WEIGHTS[b, m])


def test_degree_cues_are_read_from_each_key_tonic():
    # "E F# G | (rest) | B C": the last note C; a semitone up B->C, and F#->G; phrases start on E, B.
    notes = _tune([64, 66, 67], [0.5, 0.5, 1.0]) + _tune([71, 72], [0.5, 2.0], start=2.5)
    f = K.key_features(notes)
    col = {n: i for i, n in enumerate(K.FEATURE_NAMES)}
    c_major, a_minor, g_major, e_minor = 0, 12 + 9, 7, 12 + 4
    assert f[c_major, col["last_maj0"]] == 1 and f[c_major, col["last_min0"]] == 0
    assert f[a_minor, col["last_min3"]] == 1 and f[g_major, col["last_maj5"]] == 1
    assert f[a_minor, col["last_maj3"]] == 0                          # minor rows use min columns
    # up-steps land on G (F#->G) and C (B->C): each one of the four steps
    assert f[c_major, col["up_maj0"]] == pytest.approx(0.25)
    assert f[g_major, col["up_maj0"]] == pytest.approx(0.25)          # G from G's tonic
    assert f[c_major, col["down_maj0"]] == 0
    # phrases start on E and B: half each; read from E minor's tonic they are degrees 0 and 7
    assert f[e_minor, col["start_min0"]] == pytest.approx(0.5) == f[e_minor, col["start_min7"]]
    # long notes (1.5 median holds of 0.5 s or more): the G before the rest (sung 0.9 s, rings to
    # the next onset, counted 1.5 s at most) and the last C (1.8 s, counted 1.5 s): half each
    assert f[c_major, col["long_maj0"]] == pytest.approx(0.5) == f[c_major, col["long_maj7"]]
    hist = K.pitch_class_distribution(notes)
    assert f[c_major, col["pc_maj7"]] == pytest.approx(hist[7])
    assert f[e_minor, col["heard_min0"]] == pytest.approx(np.sqrt(hist[4]))
    assert f[c_major, col["final_tonic_long"]] == pytest.approx(0.75)  # 3 median holds of 4
    assert f[g_major, col["final_tonic_long"]] == 0
    assert f[12 + 4, col["lowest_tonic"]] == 1 and f[c_major, col["lowest_tonic"]] == 0


def test_a_tune_on_the_dominant_chord_that_ends_on_its_tonic_is_in_the_tonic():
    # C major: after a first C, most of the tune circles the dominant seventh G B D F, and F (not
    # F#) says C, not G; the tune comes home to a long C.
    pitches = [60, 67, 71, 74, 77, 74, 71, 67, 65, 67, 71, 74, 71, 69, 67, 65, 64, 62, 71, 72]
    durs = [0.5] * 19 + [2.0]
    key = K.estimate_key(_tune(pitches, durs))
    assert (key.tonic, key.mode) == ("C", "major")


def test_the_relative_minor_with_its_leading_tone_and_tonic_ending():
    # A minor against C major: the same notes but G# rising to A and phrases ending on a long A.
    pitches = [69, 72, 71, 69, 68, 69, 64, 65, 64, 62, 60, 59, 68, 69]
    durs = [0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2.0]
    minor = K.estimate_key(_tune(pitches, durs))
    assert (minor.tonic, minor.mode) == ("A", "minor")
    # The same contour on C, its leading tone B rising to a long C: C major.
    major = K.estimate_key(_tune([60, 64, 62, 60, 59, 60, 67, 65, 64, 62, 60, 59, 59, 60], durs))
    assert (major.tonic, major.mode) == ("C", "major")


@pytest.mark.parametrize("k", range(12))
def test_a_transposed_melody_rotates_every_cue(k):
    pitches = [62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62]
    base = K.key_features(_tune(pitches))
    moved = K.key_features(_tune([p + k for p in pitches]))
    # the key k semitones up scores the moved tune as the original key scored the original
    rows = np.concatenate([(np.arange(12) - k) % 12, 12 + (np.arange(12) - k) % 12])
    assert np.allclose(moved, base[rows])
    key = K.estimate_key(_tune([p + k for p in pitches]))
    assert (key.tonic_pitch_class, key.mode) == ((2 + k) % 12, "major")


def _borderline_melody(last_midi_pitch: float, transpose: int = 0, shift_s: float = 0.0):
    """A phrase in F major, sung a little out of tune (fixed draws), whose last note is
    ``last_midi_pitch``; snapped on its own tuning."""
    from hum2band.music.tuning import estimate_tuning_cents, snap_notes

    rng = np.random.default_rng(3)
    sung = [65, 65, 72, 72, 74, 74, 72, 70, 70, 69, 69, 67, 67, 65, 72, 72, 70, 70, 69, 69, 67]
    pitch = [p + rng.normal(0.0, 0.08) for p in sung] + [last_midi_pitch]
    notes = [Note(shift_s + 0.5 * i, shift_s + 0.5 * i + 0.45, float(p) + transpose)
             for i, p in enumerate(pitch)]
    return snap_notes(notes, estimate_tuning_cents(notes))


def test_a_note_sung_half_way_between_two_semitones_does_not_decide_the_key():
    # The last note is sung half-way between C and C#: 5 cents below the middle it is named C,
    # 5 cents above C#. On the notes alone that tips the key (the case this test is about);
    # the vote over copies whose notes move by 10 cents reads the same key either way.
    below, above = _borderline_melody(60.45), _borderline_melody(60.55)
    assert (below[-1].midi, above[-1].midi) == (60, 61)
    alone = K.estimate_key(below, vote=False), K.estimate_key(above, vote=False)
    assert alone[0].tonic != alone[1].tonic, "precondition: the notes alone flip here"
    voted = K.estimate_key(below), K.estimate_key(above)
    assert voted[0].tonic == voted[1].tonic == "F" and voted[0].mode == voted[1].mode == "major"


def test_the_key_vote_is_deterministic_and_follows_transposition_and_time_shifts():
    notes = _borderline_melody(60.45)
    key = K.estimate_key(notes)
    assert K.estimate_key(notes) == key  # the same draws every time
    up = K.estimate_key(_borderline_melody(60.45, transpose=5))
    assert (up.tonic_pitch_class, up.mode) == ((key.tonic_pitch_class + 5) % 12, key.mode)
    assert up.confidence == pytest.approx(key.confidence, abs=1e-9)
    later = K.estimate_key(_borderline_melody(60.45, shift_s=12.0))
    assert (later.tonic, later.mode) == (key.tonic, key.mode)
    assert later.confidence == pytest.approx(key.confidence, abs=1e-9)  # times shift in float
    copies = K.perturbed_copies(notes)
    assert len(copies) == K.KEY_VOTE_COPIES
    # each copy names its notes on the melody's own grid, moved by about 10 cents
    moved = np.concatenate([[n.midi_pitch for n in c] for c in copies])
    assert all(abs(n.midi_pitch - n.midi) <= 0.5 + 0.02 for c in copies for n in c)
    assert 0.5 * len(notes) * K.KEY_VOTE_COPIES < len(moved) <= len(notes) * K.KEY_VOTE_COPIES


def test_phrase_ends_and_long_notes_fade_in_rather_than_switch():
    # Silences of 0.1, 0.25 and 0.4 s after C, D and E: phrase-end weights 0, 1/2 and 1 (and the
    # last note, F, 1), so a few ms of onset jitter move the cues a little, not all at once.
    notes = [note(0.0, 0.9, 60), note(1.0, 1.75, 62), note(2.0, 2.6, 64), note(3.0, 3.5, 65)]
    f = K.key_features(notes)
    col = {n: i for i, n in enumerate(K.FEATURE_NAMES)}
    ends = np.array([0.0, 0.5, 1.0, 1.0])          # C D E F
    holds = np.array([1.0, 1.0, 1.0, 0.5])          # each rings to the next onset
    expected = np.zeros(12)
    expected[[0, 2, 4, 5]] = ends * holds
    assert np.allclose(f[0, col["end_maj0"]:col["end_maj0"] + 12], expected / expected.sum())
    assert f[0, col["phrase_end_tonic"]] == 0 and f[2, col["phrase_end_tonic"]] == pytest.approx(0.5 / 2.5)
    # phrase starts: the first note, then the notes after those ends (D 0, E 1/2, F 1)
    starts = np.zeros(12)
    starts[[0, 2, 4, 5]] = [1.0, 0.0, 0.5, 1.0]
    assert np.allclose(f[0, col["start_maj0"]:col["start_maj0"] + 12], starts / starts.sum())
    # long notes: a ramp from 1.2 to 1.8 median holds; here 1.0 s against a median of 1.0 s: none
    assert np.allclose(f[:, col["long_maj0"]:col["long_maj0"] + 24], 0.0)


def test_the_key_vote_has_converged_its_own_draws_barely_move_it():
    # The vote's draws follow the notes' order, so a codec's extra note redraws every copy after
    # it; with too few copies a close call is then decided by the draws. Two sets of draws
    # (seeds) must give nearly the same probabilities (with 24 copies they differ by up to 0.08).
    from hum2band.music.tuning import estimate_tuning_cents, snap_notes

    scale = [0, 2, 4, 5, 7, 9, 11]
    worst = 0.0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        degree = np.clip(np.cumsum(rng.integers(-2, 3, 40)), -4, 10)
        pitch = [60 + 12 * (d // 7) + scale[d % 7] + rng.normal(0.0, 0.15) for d in degree]
        notes = [Note(0.4 * i, 0.4 * i + 0.35, float(p)) for i, p in enumerate(pitch)]
        notes = snap_notes(notes, estimate_tuning_cents(notes))
        a, b = K.vote_probabilities(notes, seed=0), K.vote_probabilities(notes, seed=1)
        assert a.shape == (24,) and a.sum() == pytest.approx(1.0)
        worst = max(worst, 0.5 * float(np.abs(a - b).sum()))
    assert worst < 0.04


def test_the_vote_scores_the_same_copies_as_perturbed_copies():
    notes = _borderline_melody(60.45)
    prob = np.zeros(24)
    for copy in [notes] + K.perturbed_copies(notes, 30):
        s = K.key_scores(copy)
        prob += np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    assert np.allclose(K.vote_probabilities(notes, 30), prob / prob.sum(), atol=1e-12)


def test_a_note_gained_or_lost_leaves_the_other_notes_draws_as_they_were():
    # A codec or the telephone band gains, loses, splits or merges a short note now and then.
    # The vote's draws are read at each note's own time (since the first note), so every other
    # note keeps its time move and whether it is kept in every copy; draws taken in the order of
    # the notes redrew each copy after the change, and a near tie was then decided by the draws.
    notes = _borderline_melody(60.5)
    gained = sorted(notes + [Note(4.46, 4.52, 70.3)], key=lambda n: n.onset_s)

    def moved(copies):
        return [[(round(n.onset_s, 9), round(n.offset_s, 9)) for n in c
                 if not 4.4 < n.onset_s < 4.6] for c in copies]

    assert moved(K.perturbed_copies(gained)) == moved(K.perturbed_copies(notes))
    on, off, pitch = notes[4].onset_s, notes[4].offset_s, notes[4].midi_pitch
    split = notes[:4] + [Note(on, on + 0.2, pitch), Note(on + 0.22, off, pitch)] + notes[5:]
    a, b = K.vote_draws(np.array([n.onset_s for n in notes])), \
        K.vote_draws(np.array([n.onset_s for n in split]))
    for x, y in zip(a, b):
        assert np.array_equal(np.delete(y, 5, axis=1), x)  # the split's second half is new


def test_the_vote_moves_pitches_by_the_singers_own_spread_around_the_grid():
    # In tune (10 cents around the grid): moves of 10 cents. A singer 25 cents around the grid
    # leaves more names in doubt: 0.8 of that.
    rng = np.random.default_rng(0)
    grid = rng.integers(60, 72, 400)
    tight = grid + rng.normal(0.0, 0.10, 400)
    loose = grid + rng.normal(0.0, 0.25, 400)
    assert K.vote_pitch_cents(tight, 0.0) == K.KEY_VOTE_PITCH_CENTS
    assert K.vote_pitch_cents(loose, 0.0) == pytest.approx(0.8 * 25.0, abs=2.5)
    assert K.vote_pitch_cents(loose + 0.3, 30.0) == pytest.approx(K.vote_pitch_cents(loose, 0.0))
    d_pitch, _, _ = K.vote_draws(np.arange(300) * 0.4, 200, 0, 20.0)
    assert 100.0 * d_pitch.std() == pytest.approx(20.0, rel=0.05)


def test_the_vote_names_its_copies_on_the_grid_the_notes_were_snapped_to():
    # C major sung near the quarter tone: every pitch 48-53 cents above its C-major name. The
    # transcription snapped the notes with a tuning of +49 (the pitch each note settles on); the
    # notes' own pitches, which keep a scoop, read the grid on the other side of the quarter tone
    # (-49). Named on that other grid the copies would sing C# major; told the snapping tuning,
    # the vote keeps the notes' names.
    from hum2band.music.tuning import estimate_tuning_cents, snap_notes

    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 69, 67, 65, 64, 62, 60]
    durs = [0.5] * 18 + [2.0]
    rng = np.random.default_rng(3)
    tune, t = [], 0.0
    for p, d in zip(pitches, durs):
        tune.append(Note(t, t + d, p + 0.505 + rng.normal(0.0, 0.015), 0, 90))
        t += d + 0.1
    assert estimate_tuning_cents(tune) < -40.0  # the notes' own grid: across the quarter tone
    snapped = snap_notes(tune, 49.0)
    assert [n.midi for n in snapped] == pitches
    key = K.estimate_key(snapped, tuning_cents=49.0)
    assert (key.tonic, key.mode) == ("C", "major")
    # the copies keep the names (each pitch moves by the singer's spread, a few cents)
    names = [n.midi % 12 for c in K.perturbed_copies(snapped, 10, tuning_cents=49.0) for n in c]
    assert np.mean(np.isin(names, [0, 2, 4, 5, 7, 9, 11])) > 0.8
    other = K.estimate_key(snapped)  # the copies named on the notes' own grid
    assert (other.tonic, other.mode) != ("C", "major")
