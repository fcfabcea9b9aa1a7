"""How good a chord sequence is for a melody: the six metrics of Yeh et al. plus accuracy.

Yeh, Hsiao, Fukayama, Kitahara, Genchel, Liu, Dong, Chen, Leong & Yang (2021), "Automatic melody
harmonization with triad chords: A comparative study", Journal of New Music Research 50(1).
Three metrics look at the chords alone (CHE, CC, CTD), three at chords against the melody
(CTnCTR, PCS, MCTD). Formulas are written out in each function's docstring.

On top: beat-weighted ``mir_eval`` ``majmin`` and ``root`` accuracy against reference chords, and
the number of distinct chord labels per song.

Conventions
-----------
* Times are counted beats (see :mod:`hum2band.train.datasets`); melodies are lists of objects with
  ``onset_beat``, ``offset_beat`` and ``midi``; chords are lists of ``(start_beat, end_beat,
  ChordSymbol)``.
* The chord-only metrics run on a **half-bar frame sequence**, the time step of the paper (where
  every system emits one chord per half bar): a frame's chord is the one that sounds longest in it;
  frames without a chord are left out.
* PCS uses sixteenth-note frames (a quarter of a counted beat here), as in the paper.
* CTnCTR and MCTD take the chord sounding at each melody note's onset; notes without a chord are
  left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..music.chords import ChordSymbol

_R = (1.0, 1.0, 0.5)  # radii of the fifths, minor-thirds and major-thirds circles (Harte 2006)


def tonal_centroid(pitch_classes: Sequence[int] | np.ndarray) -> np.ndarray:
    """6-D tonal centroid of a set of pitch classes (Harte, Sandler & Gasser 2006).

    zeta = (1 / ||c||_1) * Phi @ c, where c is the 12-bin pitch-class vector and column ``l`` of
    Phi is ``[r1 sin(7 pi l/6), r1 cos(7 pi l/6), r2 sin(3 pi l/2), r2 cos(3 pi l/2),
    r3 sin(2 pi l/3), r3 cos(2 pi l/3)]`` with r1 = r2 = 1, r3 = 0.5.

    Returns
    -------
    np.ndarray, shape (6,) (zeros for an empty set)
    """
    c = np.zeros(12)
    for pc in pitch_classes:
        c[int(pc) % 12] += 1.0
    if c.sum() == 0:
        return np.zeros(6)
    return _PHI @ c / c.sum()


def _phi() -> np.ndarray:
    l = np.arange(12)
    rows = []
    for r, ang in zip(_R, (7 * np.pi / 6, 3 * np.pi / 2, 2 * np.pi / 3)):
        rows += [r * np.sin(l * ang), r * np.cos(l * ang)]
    return np.array(rows)


_PHI = _phi()


# ---- framing ----------------------------------------------------------------------------------
def _end_beat(melody, chords) -> float:
    return max([n.offset_beat for n in melody] + [c[1] for c in chords] + [0.0])


def chord_at(chords, beat: float) -> ChordSymbol | None:
    """The chord whose span holds ``beat`` (None in a gap or on N.C.)."""
    for s, e, c in chords:
        if s <= beat < e:
            return None if c.is_no_chord else c
    return None


def half_bar_frames(chords, beats_per_bar: int, end_beat: float | None = None) -> list[ChordSymbol]:
    """One chord per half bar: the chord sounding longest in it (frames with none are dropped).

    A half bar is ``beats_per_bar / 2`` counted beats (1.5 beats in 3/4, one dotted quarter in 6/8).
    """
    if not chords:
        return []
    half = beats_per_bar / 2.0
    end = end_beat if end_beat is not None else max(c[1] for c in chords)
    out = []
    for k in range(int(math.ceil(end / half - 1e-9))):
        a, b = k * half, (k + 1) * half
        best, best_len = None, 0.0
        for s, e, c in chords:
            ov = min(b, e) - max(a, s)
            if ov > best_len + 1e-9 and not c.is_no_chord:
                best, best_len = c, ov
        if best is not None:
            out.append(best)
    return out


# ---- chord-only metrics ------------------------------------------------------------------------
def che(frames: Sequence[ChordSymbol]) -> float:
    """Chord histogram entropy: CHE = -sum_i p_i log p_i (natural log).

    p_i is the count of chord label i divided by the number of frames. Higher means a more
    varied use of chords; 0 for a single chord.
    """
    if not frames:
        return float("nan")
    _, counts = np.unique([c.harte for c in frames], return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def cc(frames: Sequence[ChordSymbol]) -> int:
    """Chord coverage: CC = number of distinct chord labels in the sequence."""
    return len({c.harte for c in frames})


def ctd(frames: Sequence[ChordSymbol]) -> float:
    """Chord tonal distance: mean over adjacent frames of ||TC(chord_t) - TC(chord_t+1)||_2.

    TC is :func:`tonal_centroid` of the chord's pitch classes. Lower means smoother progressions.
    NaN for fewer than two frames.
    """
    if len(frames) < 2:
        return float("nan")
    tcs = np.array([tonal_centroid(c.pitch_classes()) for c in frames])
    return float(np.linalg.norm(np.diff(tcs, axis=0), axis=1).mean())


# ---- melody/chord metrics ----------------------------------------------------------------------
def ctnctr(melody, chords) -> float:
    """Chord-tone to non-chord-tone ratio: CTnCTR = (n_c + n_p) / (n_c + n_n).

    Counting melody notes against the chord at their onset: n_c chord tones, n_n non-chord tones,
    n_p "proper" non-chord tones -- those whose next melody note lies 1 or 2 semitones away (a
    passing or neighbour tone that resolves by step). 1 is best. NaN without any note on a chord.
    """
    n_c = n_n = n_p = 0
    notes = sorted(melody, key=lambda n: n.onset_beat)
    for i, n in enumerate(notes):
        c = chord_at(chords, n.onset_beat)
        if c is None:
            continue
        if n.midi % 12 in c.pitch_classes():
            n_c += 1
        else:
            n_n += 1
            if i + 1 < len(notes) and 1 <= abs(notes[i + 1].midi - n.midi) <= 2:
                n_p += 1
    if n_c + n_n == 0:
        return float("nan")
    return (n_c + n_p) / (n_c + n_n)


#: PCS interval scores, index = (melody pc - chord pc) mod 12: unison/octave, thirds, perfect
#: fifth and sixths +1; perfect fourth 0; seconds, tritone and sevenths -1.
PCS_INTERVAL_SCORE = np.array([1, -1, -1, 1, 1, 0, -1, 1, 1, 1, -1, -1], dtype=float)


def pcs(melody, chords, frame_beats: float = 0.25) -> float:
    """Pitch consonance score: mean over sixteenth-note frames of the mean interval score.

    In every frame where a melody note and a chord sound, each chord pitch class ``q`` is scored
    against the melody pitch class ``m`` by ``PCS_INTERVAL_SCORE[(m - q) mod 12]`` (the melody is
    taken to be above the chord); the frame's score is the mean over the chord's tones, PCS the
    mean over frames. Range -1 (all dissonant) to 1.
    """
    end = _end_beat(melody, chords)
    n_frames = int(math.ceil(end / frame_beats))
    if n_frames == 0:
        return float("nan")
    mel_pc = np.full(n_frames, -1)
    for n in melody:
        a = int(math.ceil(n.onset_beat / frame_beats - 1e-9))
        b = int(math.ceil(n.offset_beat / frame_beats - 1e-9))
        mel_pc[a:b] = n.midi % 12
    scores = []
    table = {}
    for k in np.flatnonzero(mel_pc >= 0):
        c = chord_at(chords, (k + 0.5) * frame_beats)
        if c is None:
            continue
        key = (c, int(mel_pc[k]))
        if key not in table:
            q = np.array(c.pitch_classes())
            table[key] = float(PCS_INTERVAL_SCORE[(mel_pc[k] - q) % 12].mean())
        scores.append(table[key])
    return float(np.mean(scores)) if scores else float("nan")


def mctd(melody, chords) -> float:
    """Melody-chord tonal distance: MCTD = sum_n d_n ||TC(m_n) - TC(c_n)||_2 / sum_n d_n.

    m_n is the pitch class of melody note n, c_n the chord at its onset, d_n its duration in beats,
    TC :func:`tonal_centroid`. Lower means the melody sits closer to its chords.
    """
    num = den = 0.0
    for n in melody:
        c = chord_at(chords, n.onset_beat)
        if c is None:
            continue
        d = n.offset_beat - n.onset_beat
        num += d * float(np.linalg.norm(tonal_centroid([n.midi % 12]) - tonal_centroid(c.pitch_classes())))
        den += d
    return num / den if den > 0 else float("nan")


# ---- accuracy against reference chords ---------------------------------------------------------
def chord_accuracy(reference, estimate, frame_beats: float = 0.25) -> tuple[float, float]:
    """Beat-weighted ``mir_eval`` ``majmin`` and ``root`` accuracy of ``estimate`` vs ``reference``.

    Both sequences are sampled at the centres of ``frame_beats`` frames over the reference's
    chord spans (reference gaps are not scored; an estimate gap counts as ``N``), compared with
    ``mir_eval.chord.majmin`` / ``root``, and averaged with equal weight per frame, which is
    weighting by duration in beats. Reference chords ``majmin`` cannot score (sus, aug, dim...)
    are left out of that score, as mir_eval does.

    Returns
    -------
    (majmin, root) : tuple of float (NaN when nothing can be scored)
    """
    import mir_eval.chord as mc

    ref_labels, est_labels = [], []
    for s, e, c in reference:
        if c.is_no_chord:
            continue
        k0 = int(math.ceil(s / frame_beats - 0.5 - 1e-9))
        k1 = int(math.ceil(e / frame_beats - 0.5 - 1e-9))
        for k in range(k0, k1):
            t = (k + 0.5) * frame_beats
            est = chord_at(estimate, t)
            ref_labels.append(c.harte)
            est_labels.append("N" if est is None else est.harte)
    if not ref_labels:
        return float("nan"), float("nan")
    weights = np.ones(len(ref_labels))
    out = []
    for fn in (mc.majmin, mc.root):
        comp = fn(ref_labels, est_labels)
        if np.all(comp < 0):
            out.append(float("nan"))
        else:
            out.append(float(mc.weighted_accuracy(comp, weights)))
    return out[0], out[1]


def distinct_chords(chords) -> int:
    """Number of distinct chord labels (Harte, bass included) in a song."""
    return len({c.harte for _, _, c in chords if not c.is_no_chord})


@dataclass
class HarmonyScores:
    """All metrics for one song (NaN where undefined; majmin/root NaN without a reference)."""

    majmin: float
    root: float
    che: float
    cc: float
    ctd: float
    ctnctr: float
    pcs: float
    mctd: float
    distinct: float

    def as_dict(self) -> dict:
        return asdict(self)


METRIC_NAMES = ("majmin", "root", "che", "cc", "ctd", "ctnctr", "pcs", "mctd", "distinct")


def evaluate(melody, chords, beats_per_bar: int, reference=None) -> HarmonyScores:
    """Every metric for ``chords`` under ``melody`` (and accuracy against ``reference`` if given)."""
    frames = half_bar_frames(chords, beats_per_bar, _end_beat(melody, chords))
    mm, rt = chord_accuracy(reference, chords) if reference is not None else (float("nan"),) * 2
    return HarmonyScores(mm, rt, che(frames), float(cc(frames)), ctd(frames), ctnctr(melody, chords),
                         pcs(melody, chords), mctd(melody, chords), float(distinct_chords(chords)))
