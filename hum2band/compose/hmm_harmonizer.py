"""The baseline harmonizer: a MySong-style hidden Markov model over 24 triads.

After Simon, Morris & Basu (2008), "MySong: automatic accompaniment generation for vocal
melodies" (CHI). Hidden states are the 24 major and minor triads, one per half bar. Each half bar
emits the melody's pitch-class durations in it; each chord type (major, minor) has a
root-relative pitch-class distribution learned from the training songs, so every training chord
teaches all 12 roots (transposition augmentation by construction). Transitions are learned as
(type -> type, root interval) counts, also pooled over all 12 transpositions. Viterbi decoding
picks the most likely chord sequence.

Emission log-likelihood of a half bar with pitch-class durations ``h`` (beats, shape (12,)) under
chord (root r, type t)::

    log P(h | r, t) = w * sum_pc h[pc] * log E[t, (pc - r) mod 12]

with ``w = emission_weight`` (the melody's weight against the transition prior), chosen on
held-out songs by :meth:`HMMHarmonizer.tune_emission_weight` (2 on this data's validation split).
Everything is transposition-invariant, so the model has no notion of key: it knows which chord
moves are common, and the melody has to place them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..music.chords import ChordSymbol
from ..music.leadsheet import ChordSpan, LeadSheet

TYPES = ("maj", "min")
#: Vocabulary quality -> HMM type index (0 major, 1 minor): by the chord's third.
TYPE_OF_QUALITY = {
    "maj": 0, "aug": 0, "sus2": 0, "sus4": 0, "7": 0, "maj7": 0, "maj6": 0, "9": 0, "maj9": 0,
    "7sus4": 0, "min": 1, "dim": 1, "min7": 1, "minmaj7": 1, "hdim7": 1, "dim7": 1, "min6": 1,
    "min9": 1,
}


def state_of(chord: ChordSymbol) -> int:
    """State index ``type * 12 + root`` of the triad a chord reduces to."""
    return TYPE_OF_QUALITY[chord.quality] * 12 + chord.root


def chord_of_state(state: int) -> ChordSymbol:
    return ChordSymbol.make(state % 12, TYPES[state // 12])


def half_bar_features(lead_sheet: LeadSheet) -> tuple[np.ndarray, np.ndarray]:
    """Per half bar: melody pitch-class durations and the reference state.

    Returns
    -------
    pc_beats : np.ndarray, shape (n_frames, 12)
        Beats each pitch class sounds in the half bar.
    states : np.ndarray of int, shape (n_frames,)
        State of the chord sounding longest in the half bar, -1 where there is none.
    """
    half = lead_sheet.beats_per_bar / 2.0
    n = max(1, int(math.ceil(lead_sheet.end_beat / half - 1e-9)))
    pc_beats = np.zeros((n, 12))
    for note in lead_sheet.melody:
        a, b = note.onset_beat, note.offset_beat
        k = int(a // half)
        while a < b - 1e-9 and k < n:
            seg_end = min(b, (k + 1) * half)
            pc_beats[k, note.midi % 12] += seg_end - a
            a, k = seg_end, k + 1
    overlap = np.zeros((n, 24))
    for s, e, c in lead_sheet.chords:
        if c.is_no_chord:
            continue
        st = state_of(c)
        for k in range(int(s // half), min(n, int(math.ceil(e / half - 1e-9)))):
            overlap[k, st] += max(0.0, min(e, (k + 1) * half) - max(s, k * half))
    states = np.where(overlap.max(axis=1) > 0, overlap.argmax(axis=1), -1)
    return pc_beats, states


@dataclass
class HMMHarmonizer:
    """24-triad HMM; see the module docstring.

    Attributes
    ----------
    log_emission : np.ndarray, shape (2, 12)
        log E[type, interval above root] of melody pitch-class duration.
    log_transition : np.ndarray, shape (2, 2, 12)
        log P(next type, next root - root mod 12 | type).
    log_prior : np.ndarray, shape (2,)
        log P(type) of the first chord (roots uniform).
    emission_weight : float
    """

    log_emission: np.ndarray | None = None
    log_transition: np.ndarray | None = None
    log_prior: np.ndarray | None = None
    emission_weight: float = 1.0

    def fit(self, lead_sheets: Iterable[LeadSheet], smoothing: float = 1.0) -> "HMMHarmonizer":
        """Count emissions and transitions over the training songs (add-``smoothing``)."""
        emis = np.full((2, 12), smoothing * 0.1)
        trans = np.full((2, 2, 12), smoothing)
        prior = np.full(2, smoothing)
        n_frames = 0
        for ls in lead_sheets:
            pcb, states = half_bar_features(ls)
            prev = -1
            for h, st in zip(pcb, states):
                if st < 0:
                    prev = -1
                    continue
                t, r = divmod(int(st), 12)
                emis[t] += np.roll(h, -r)
                if prev >= 0:
                    pt, pr = divmod(prev, 12)
                    trans[pt, t, (r - pr) % 12] += 1
                else:
                    prior[t] += 1
                prev = int(st)
                n_frames += 1
        if n_frames == 0:
            raise ValueError("no chord-labelled half bars in the training songs")
        self.log_emission = np.log(emis / emis.sum(axis=1, keepdims=True))
        self.log_transition = np.log(trans / trans.sum(axis=(1, 2), keepdims=True))
        self.log_prior = np.log(prior / prior.sum())
        return self

    def tune_emission_weight(self, validation: Iterable[LeadSheet],
                             weights=(0.5, 1.0, 2.0, 4.0, 8.0)) -> float:
        """Set ``emission_weight`` to the value with the best mean half-bar triad accuracy.

        Accuracy here is the share of chord-labelled half bars whose decoded state equals the
        reference state, pooled over the (held-out) ``validation`` songs.
        """
        feats = [half_bar_features(ls) for ls in validation]
        if not feats:
            return self.emission_weight
        best_w, best_acc = self.emission_weight, -1.0
        for w in weights:
            self.emission_weight = float(w)
            hit = tot = 0
            for pcb, states in feats:
                path = self.decode_states(pcb)
                mask = states >= 0
                hit += int((path[mask] == states[mask]).sum())
                tot += int(mask.sum())
            acc = hit / max(tot, 1)
            if acc > best_acc:
                best_w, best_acc = float(w), acc
        self.emission_weight = best_w
        return best_w

    # ---- decoding ---------------------------------------------------------------------------
    def _emission_matrix(self, pc_beats: np.ndarray) -> np.ndarray:
        """(n_frames, 24) emission log-likelihoods."""
        E = np.zeros((24, 12))
        for t in range(2):
            for r in range(12):
                E[t * 12 + r] = np.roll(self.log_emission[t], r)  # E[state, pc]
        return self.emission_weight * pc_beats @ E.T

    def _transition_matrix(self) -> np.ndarray:
        """(24, 24) log P(state_j | state_i)."""
        A = np.zeros((24, 24))
        for i in range(24):
            ti, ri = divmod(i, 12)
            for j in range(24):
                tj, rj = divmod(j, 12)
                A[i, j] = self.log_transition[ti, tj, (rj - ri) % 12]
        return A

    def decode_states(self, pc_beats: np.ndarray) -> np.ndarray:
        """Viterbi path, shape (n_frames,), of states for half-bar pitch-class durations."""
        if self.log_emission is None:
            raise ValueError("the HMM is not trained: call fit() or load() first")
        B = self._emission_matrix(pc_beats)
        A = self._transition_matrix()
        n = len(B)
        delta = np.repeat(self.log_prior, 12) - math.log(12) + B[0]
        back = np.zeros((n, 24), dtype=int)
        for k in range(1, n):
            cand = delta[:, None] + A
            back[k] = cand.argmax(axis=0)
            delta = cand.max(axis=0) + B[k]
        path = np.zeros(n, dtype=int)
        path[-1] = int(delta.argmax())
        for k in range(n - 1, 0, -1):
            path[k - 1] = back[k, path[k]]
        return path

    def harmonize(self, lead_sheet: LeadSheet) -> list[ChordSpan]:
        """One triad per half bar over the melody (repeats merged into longer spans)."""
        pcb, _ = half_bar_features(lead_sheet)
        path = self.decode_states(pcb)
        half = lead_sheet.beats_per_bar / 2.0
        spans: list[ChordSpan] = []
        for k, st in enumerate(path):
            c = chord_of_state(int(st))
            if spans and spans[-1].chord == c:
                spans[-1] = ChordSpan(spans[-1].start_beat, (k + 1) * half, c)
            else:
                spans.append(ChordSpan(k * half, (k + 1) * half, c))
        return spans

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        np.savez(path, log_emission=self.log_emission, log_transition=self.log_transition,
                 log_prior=self.log_prior, emission_weight=np.array(self.emission_weight))

    @classmethod
    def load(cls, path: str | Path) -> "HMMHarmonizer":
        with np.load(path) as z:
            return cls(z["log_emission"], z["log_transition"], z["log_prior"],
                       float(z["emission_weight"]))
