"""The key of a sung melody: tonic and mode (major or minor) with a confidence.

Key-profile matching in the manner of Krumhansl and Schmuckler: a pitch-class distribution of the
melody is correlated with a major and a minor profile rotated to each of the 12 tonics, and the
best of the 24 keys wins. Two things make it work on melodies rather than on harmony:

* The profiles are Aarden's, counted on the Essen folk-song collection (melodies, not chords),
  blended with Albrecht and Shanahan's; both give the leading tone and the chromatic notes far less
  weight than the older probe-tone profiles.
* The distribution weighs each note by how long it is held (onset to next onset, capped) and gives
  extra weight to the notes that end phrases (followed by a breath) and most of all to the last
  note: melodies end, and mostly pause, on the tonic.

The confidence is the margin between the best and the second-best key's correlation, mapped to
0-1 (0: a toss-up, 1: clear).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .melody import Key, Note, PITCH_CLASS_NAMES

#: Aarden (2003) Essen folk-song profiles, C major / C minor.
AARDEN_MAJOR = np.array([17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062,
                         0.145624, 8.15494, 0.232998, 4.95122])
AARDEN_MINOR = np.array([18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161,
                         4.56621, 1.93186, 7.37619, 1.75623])
#: Albrecht and Shanahan (2013) profiles, C major / C minor.
ALBRECHT_MAJOR = np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080,
                           0.008, 0.081])
ALBRECHT_MINOR = np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022,
                           0.061, 0.052])

#: The profiles used: the two sources normalised and averaged.
MAJOR_PROFILE = AARDEN_MAJOR / AARDEN_MAJOR.sum() + ALBRECHT_MAJOR / ALBRECHT_MAJOR.sum()
MINOR_PROFILE = AARDEN_MINOR / AARDEN_MINOR.sum() + ALBRECHT_MINOR / ALBRECHT_MINOR.sum()

#: A note counts as held at most this long (s) when weighing the distribution.
MAX_HOLD_S = 1.5
#: A gap (s) after a note longer than this marks the end of a phrase.
PHRASE_GAP_S = 0.25
#: Extra weight of a phrase-final note and of the last note, in units of the mean note weight.
PHRASE_END_BONUS = 1.0
FINAL_NOTE_BONUS = 3.0
#: Correlation margin that maps to confidence 1 - 1/e.
CONFIDENCE_SCALE = 0.08


def _pitch_classes(notes: Sequence[Note]) -> np.ndarray:
    """Snapped pitch class per note; snaps with the estimated tuning if the notes are unsnapped."""
    midi = np.array([n.midi for n in notes], dtype=float)
    pitch = np.array([n.midi_pitch for n in notes], dtype=float)
    snapped = np.any(midi != 0) and np.all(np.abs(midi - pitch) < 1.0)
    if not snapped:
        from .tuning import estimate_tuning_cents

        midi = np.round(pitch - estimate_tuning_cents(notes) / 100.0)
    return np.mod(midi.astype(int), 12)


def pitch_class_distribution(notes: Sequence[Note]) -> np.ndarray:
    """Weighted pitch-class distribution of a melody.

    Parameters
    ----------
    notes : sequence of Note

    Returns
    -------
    np.ndarray, shape (12,)
        Weight per pitch class (0 = C), summing to 1; all zeros when there are no notes.
    """
    if len(notes) == 0:
        return np.zeros(12)
    order = np.argsort([n.onset_s for n in notes], kind="stable")
    notes = [notes[i] for i in order]
    pcs = _pitch_classes(notes)
    onset_s = np.array([n.onset_s for n in notes], dtype=float)
    offset_s = np.array([n.offset_s for n in notes], dtype=float)
    dur_s = np.maximum(offset_s - onset_s, 0.0)
    next_onset_s = np.append(onset_s[1:], offset_s[-1])
    hold_s = np.clip(np.maximum(dur_s, next_onset_s - onset_s), 0.05, MAX_HOLD_S)
    weight = hold_s.copy()
    gap_after_s = np.append(onset_s[1:] - offset_s[:-1], np.inf)
    mean_w = float(np.mean(hold_s))
    weight += PHRASE_END_BONUS * mean_w * (gap_after_s > PHRASE_GAP_S)
    weight[-1] += FINAL_NOTE_BONUS * mean_w
    hist = np.bincount(pcs, weights=weight, minlength=12)
    return hist / hist.sum()


def key_correlations(distribution: np.ndarray) -> np.ndarray:
    """Correlation of a pitch-class distribution with all 24 keys.

    Returns
    -------
    np.ndarray, shape (2, 12)
        Row 0 major, row 1 minor; column = tonic pitch class.
    """
    h = np.asarray(distribution, dtype=float)
    out = np.zeros((2, 12))
    for row, prof in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        # Rotating the profile to tonic t: profile index (pc - t) mod 12.
        rolled = np.stack([np.roll(prof, t) for t in range(12)])  # (12 tonics, 12 pcs)
        a = rolled - rolled.mean(axis=1, keepdims=True)
        b = h - h.mean()
        denom = np.sqrt((a ** 2).sum(axis=1) * (b ** 2).sum()) + 1e-12
        out[row] = (a @ b) / denom
    return out


def estimate_key(notes: Sequence[Note]) -> Key:
    """Estimate the key of a melody.

    Parameters
    ----------
    notes : sequence of Note
        Snapped notes (``midi`` set by :func:`hum2band.tuning.snap_notes`) or unsnapped ones
        (then the tuning is estimated here first).

    Returns
    -------
    Key
        ``tonic`` from :data:`PITCH_CLASS_NAMES`, ``mode`` ``"major"`` or ``"minor"``,
        ``confidence`` in 0-1. With no notes: C major, confidence 0.
    """
    if len(notes) == 0:
        return Key("C", "major", 0.0)
    corr = key_correlations(pitch_class_distribution(notes))
    flat = corr.ravel()
    order = np.argsort(flat)[::-1]
    best, second = flat[order[0]], flat[order[1]]
    mode = "major" if order[0] < 12 else "minor"
    tonic = PITCH_CLASS_NAMES[int(order[0] % 12)]
    confidence = 1.0 - np.exp(-max(best - second, 0.0) / CONFIDENCE_SCALE)
    if len(notes) < 3:
        confidence *= len(notes) / 3.0
    return Key(tonic, mode, float(np.clip(confidence, 0.0, 1.0)))
