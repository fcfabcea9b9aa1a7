"""Fitting the key finder (hum2band.train.keys): the set target, the truth per source, renditions."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.music import keyfinding as K
from hum2band.music.chords import ChordSymbol
from hum2band.music.key import Key
from hum2band.music.leadsheet import BeatNote, ChordSpan, LeadSheet
from hum2band.train import keys as T


def sheet(source="nottingham", key=Key("C", "major"), last_chord=None, pitches=None, beats=None):
    # "C D E F | G A B C | ..." in quarter notes, four bars a line, ending on a whole-bar C
    pitches = pitches or ([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 62, 59] * 6 + [60])
    beats = beats or [1.0] * (len(pitches) - 1) + [4.0]
    notes, t = [], 0.0
    for p, d in zip(pitches, beats):
        notes.append(BeatNote(t, t + d, int(p), 80))
        t += d
    chords = [ChordSpan(0.0, 4.0, ChordSymbol.make(0, "maj"))]
    if last_chord is not None:
        chords.append(ChordSpan(t - 4.0, t, last_chord))
    return LeadSheet("x", source, notes, chords, (4, 4), key, 4, 100.0)


def test_the_set_target_counts_both_relatives():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 24, 5))
    w = rng.normal(size=5)
    ok = np.zeros((3, 24), dtype=bool)
    ok[0, 0] = ok[0, 12 + 9] = True          # C major or A minor
    ok[1, 7] = True                          # G major only
    ok[2, 2] = ok[2, 12 + 11] = True         # D major or B minor
    loss, grad = T.set_loss(w, X, ok, 0.0, np.ones(5))
    z = X @ w
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean([np.log(p[0, 0] + p[0, 21]), np.log(p[1, 7]), np.log(p[2, 2] + p[2, 23])])
    assert loss == pytest.approx(expected)
    eps = 1e-6
    numeric = [(T.set_loss(w + eps * e, X, ok, 0.0, np.ones(5))[0]
                - T.set_loss(w - eps * e, X, ok, 0.0, np.ones(5))[0]) / (2 * eps) for e in np.eye(5)]
    assert np.allclose(grad, numeric, atol=1e-6)
    # the penalty: lam * |w / scale|^2 and its gradient
    scale = np.array([1.0, 2.0, 0.5, 1.0, 4.0])
    loss2, grad2 = T.set_loss(w, X, ok, 0.1, scale)
    assert loss2 == pytest.approx(loss + 0.1 * np.sum((w / scale) ** 2))
    assert np.allclose(grad2, grad + 0.2 * w / scale ** 2)


def test_a_set_target_teaches_the_pair_not_the_mode():
    # One cue says "this pair" (C major and A minor both 1), another says "minor": with the pair
    # as the target, fitting raises the first and leaves the mode cue near zero.
    X = np.zeros((40, 24, 2))
    X[:, [0, 21], 0] = 1.0
    X[:, 12:, 1] = 1.0
    ok = np.zeros((40, 24), dtype=bool)
    ok[:, [0, 21]] = True
    w = T.fit(X, ok, 1e-4)
    assert w[0] > 3.0 and abs(w[1]) < 0.2


def test_the_truth_of_each_source():
    ok, why = T.key_targets(sheet("pop909", Key("A", "minor")))
    assert why == "mode" and list(np.flatnonzero(ok)) == [12 + 9]
    # a key signature: the last chord decides when it is the tonic of one of the pair
    ok, why = T.key_targets(sheet("openewld", last_chord=ChordSymbol.make(9, "min7")))
    assert why == "last chord" and list(np.flatnonzero(ok)) == [12 + 9]
    ok, why = T.key_targets(sheet("chord-melody", last_chord=ChordSymbol.make(0, "maj7")))
    assert why == "last chord" and list(np.flatnonzero(ok)) == [0]
    ok, why = T.key_targets(sheet("openewld", last_chord=ChordSymbol.make(7, "7")))
    assert why == "pair" and list(np.flatnonzero(ok)) == [0, 12 + 9]
    # a signature read as minor (E minor): the pair is G major and E minor
    ok, why = T.key_targets(sheet("openewld", Key("E", "minor"), ChordSymbol.make(4, "maj")))
    assert why == "pair" and list(np.flatnonzero(ok)) == [7, 12 + 4]


def test_renditions_are_transposed_with_their_key():
    ls = sheet("pop909")
    rng = np.random.default_rng(3)
    for excerpt in (False, True):
        notes, transpose = T.sung_rendition(ls, rng, excerpt)
        assert all(n.midi != 0 and abs(n.midi_pitch - n.midi) < 0.5 for n in notes)
        pcs = np.mod([n.midi - transpose for n in notes], 12)
        assert np.mean(np.isin(pcs, [0, 2, 4, 5, 7, 9, 11])) > 0.85  # a few notes sung off
        assert 50 <= np.median([n.midi for n in notes]) <= 74
        assert all(b.onset_s >= a.onset_s for a, b in zip(notes, notes[1:]))
    # the targets move with the transposition: the clear C major tune is found in its new key
    data = T.rendition_set([ls] * 10, 1, seed=0)
    assert len(data) == 10
    assert np.mean([ok[np.argmax(X @ K.KEY_WEIGHTS)] for X, ok, _ in data]) >= 0.8
    assert all(ok.sum() == 1 for _, ok, _ in data)


def test_key_changing_songs_are_left_out():
    ls = sheet("pop909")
    assert len(T.rendition_set([ls], 2, 0)) == 2
    ls.key_changes = ((32.0, Key.parse("D major")),)
    assert T.rendition_set([ls], 2, 0) == []
