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
    assert f.shape == (24, len(K.FEATURE_NAMES)) == (24, 11)
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
