"""The singer's reference pitch: how far their semitone grid sits from A440, in cents.

Nobody sings at exactly A = 440 Hz without a reference. What matters for naming notes is where
the singer's own semitone grid lies: if most notes land 30 cents flat, the take is sung with a
reference about A = 432 Hz, and a note sung at fractional MIDI 61.72 is a D (62), not a C# that
happens to be sharp.

The estimate is the mode of the duration-weighted distribution of each note's fractional pitch
``midi_pitch - round(midi_pitch)`` on the circle of 100 cents (a kernel density, so notes 49
cents sharp and 49 cents flat count as neighbours), refined by a robust circular mean around that
mode. Glides, out-of-tune notes and octave errors do not move it much: they fall outside the
kernel around the mode, and very short notes (most glides) weigh little.

What pitch each note brings matters as much. A singer who scoops up into every note (most do) pulls
the median of each note's contour, and with it the take's grid, a few cents flat: the scoop decays
into the note rather than ending at once. The transcription stage therefore gives this estimate the
pitch each note settles on (:func:`hum2band.listen.notes.settled_notes`: the median of the
tracker's frames from 30 % to 90 % of the note, those within half a semitone of the note's own
pitch), while the notes keep their own pitch for their names, and the key's vote names its copies
of the notes on that same grid (:func:`hum2band.music.keyfinding.estimate_key`'s ``tuning_cents``).
Tuning within 10 cents on sung renditions with known tuning (``benchmarks/rhythm_key.py``'s takes,
audio path, every second one an AAC memo): train split 300 takes 0.897 -> 0.943, validation split
180 takes 0.956 -> 0.961 (without the half-semitone limit 0.950 and 0.972). On 63 real SSVD takes,
against the tuning of their annotated notes each measured again from the audio over its middle 70 %
(``benchmarks/transcription.py``'s re-measured reference): mean error 4.57 -> 4.01 cents, within 10
cents 0.905 -> 0.905, the worst three 28.6, 32.1, 33.6 -> 12.5, 16.0, 27.5. Without the half-
semitone limit the raw tracker's slips on real voices (SSVD 364: 52.5 read as 45.7) cost there:
4.70 cents, 0.857.

**Weighting by length is kept although the renditions say otherwise** (December 2026, issue 10's
tuning column). The benchmark's singer misses each note by its own intonation error whatever its
length, so on its takes a note should count once: with each note's weight capped at 0.3 s
instead of 1 s, the settled notes of 480 transcribed train-split takes read within 10 cents
0.929 -> 0.944 (mean error 3.98 -> 3.76 cents) and 240 validation takes 0.950 -> 0.954 (3.90 ->
3.78); 0.2 and 0.5 s gained less on the train takes. But on the 67 real SSVD takes (the same re-measured reference,
itself read with the cap) the mean error grew 4.16 -> 4.60 cents and the worst three 14.3, 16.0,
27.5 -> 18.9, 30.7, 34.8: a real singer settles on long notes and passes through short ones. On
those renditions even the plain mean of each note's exact sung pitch (before any tracker) is
within 10 cents on only 0.95 of 120 train takes (a drift of up to 25 cents and 5-20 cents of
per-note error over 20-60 notes): the benchmark's tuning column sits near its own floor.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .melody import Note

#: Width (cents, 1 sd) of the kernel that smooths the circular histogram of note offsets.
KERNEL_WIDTH_CENTS = 20.0
#: Half-width (cents) of the window around the mode used by the robust refinement.
REFINE_HALF_WIDTH_CENTS = 50.0
#: Notes shorter than this weigh as this much; notes longer than the cap weigh as the cap.
MIN_WEIGHT_S, MAX_WEIGHT_S = 0.03, 1.0


def _wrap_cents(c: np.ndarray | float) -> np.ndarray:
    """Wrap cents to [-50, 50)."""
    return (np.asarray(c, dtype=float) + 50.0) % 100.0 - 50.0


def estimate_tuning_cents(notes: Sequence[Note]) -> float:
    """Estimate the singer's reference-pitch offset from A440.

    Parameters
    ----------
    notes : sequence of Note
        Uses ``midi_pitch`` (fractional MIDI) and the duration of each note.

    Returns
    -------
    float
        Offset in cents in [-50, 50): positive when the singer's semitone grid is sharp of
        A440. 0.0 when there are no usable notes.
    """
    pitch = np.array([n.midi_pitch for n in notes], dtype=float)
    dur_s = np.array([n.offset_s - n.onset_s for n in notes], dtype=float)
    ok = np.isfinite(pitch) & np.isfinite(dur_s) & (pitch > 0)
    if not ok.any():
        return 0.0
    pitch, dur_s = pitch[ok], dur_s[ok]
    frac_cents = _wrap_cents(100.0 * pitch)
    weight = np.clip(dur_s, MIN_WEIGHT_S, MAX_WEIGHT_S)

    # Kernel density on the circle (von Mises kernel), 1-cent grid.
    grid_cents = np.arange(-50.0, 50.0, 1.0)
    kappa = 1.0 / (2.0 * np.pi * KERNEL_WIDTH_CENTS / 100.0) ** 2
    ang = 2.0 * np.pi / 100.0
    density = np.exp(kappa * (np.cos(ang * (grid_cents[:, None] - frac_cents[None, :])) - 1.0)) @ weight
    mode = float(grid_cents[int(np.argmax(density))])

    # Robust refinement: biweight mean of the circular deviations from the mode.
    center = mode
    for _ in range(3):
        dev = _wrap_cents(frac_cents - center)
        u = dev / REFINE_HALF_WIDTH_CENTS
        w = weight * np.where(np.abs(u) < 1.0, (1.0 - u ** 2) ** 2, 0.0)
        if w.sum() <= 0:
            break
        center = center + float(np.sum(w * dev) / np.sum(w))
    return float(_wrap_cents(center))


def snap_notes(notes: Sequence[Note], tuning_cents: float) -> list[Note]:
    """Name each note on the singer's own semitone grid.

    Parameters
    ----------
    notes : sequence of Note
    tuning_cents : float
        The offset from :func:`estimate_tuning_cents`.

    Returns
    -------
    list of Note
        Copies with ``midi = round(midi_pitch - tuning_cents / 100)``; the inputs are not changed.
    """
    shift = float(tuning_cents) / 100.0
    return [replace(n, midi=int(np.round(n.midi_pitch - shift))) for n in notes]


def perturbation_draws(n_notes: int, copies: int, jitter_s: float, drop: float,
                       pitch_cents: float = 0.0,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random moves of :func:`perturbed_copies`, as arrays (for callers that score the copies
    without building notes).

    Returns
    -------
    d_pitch : np.ndarray, shape (copies, n_notes)
        Pitch moves, semitones: each note's own normal draw of ``pitch_cents`` (1 sd); zeros
        without ``pitch_cents``.
    d_time : np.ndarray, shape (copies, n_notes)
        Onset (and offset) moves, s (1 sd ``jitter_s``).
    keep : np.ndarray of bool, shape (copies, n_notes)
        The notes kept (each left out with probability ``drop``).
    """
    rng = np.random.default_rng(seed)
    d_pitch = np.zeros((copies, n_notes))
    d_time = np.zeros((copies, n_notes))
    keep = np.ones((copies, n_notes), dtype=bool)
    for c in range(copies):
        if pitch_cents:
            d_pitch[c] = rng.normal(0.0, pitch_cents / 100.0, n_notes)
        d_time[c] = rng.normal(0.0, jitter_s, n_notes)
        keep[c] = rng.random(n_notes) >= drop
    return d_pitch, d_time, keep


def perturbed_copies(notes: Sequence[Note], copies: int, jitter_s: float, drop: float,
                     pitch_cents: float = 0.0, seed: int = 0) -> list[list[Note]]:
    """Copies of a melody as another recording or transcription of the same singing could give
    them (the key vote and the rhythm stage's meter/tempo vote).

    Each note's onset and offset move together by a normal draw of ``jitter_s`` (s, 1 sd) and
    the note is left out with probability ``drop``. With ``pitch_cents``, its pitch first moves
    by a normal draw of that many cents (1 sd) and is named again on the singer's own semitone
    grid (the tuning the notes themselves give); without, pitch and name stay. The draws
    (:func:`perturbation_draws`) depend only on the notes' order (fixed ``seed``): the same notes
    give the same copies, and a transposed or time-shifted melody gives transposed or shifted
    copies. Copies with no note left are not returned.
    """
    ordered = sorted(notes, key=lambda n: n.onset_s)
    if not ordered:
        return []
    tuning = estimate_tuning_cents(ordered) / 100.0 if pitch_cents else None
    return copies_from_draws(ordered, *perturbation_draws(len(ordered), copies, jitter_s, drop,
                                                          pitch_cents, seed), tuning)


def copies_from_draws(ordered: Sequence[Note], d_pitch: np.ndarray, d_time: np.ndarray,
                      keep: np.ndarray, tuning_semitones: float | None = None) -> list[list[Note]]:
    """The copies of ``ordered`` (notes in time order) that the draws describe.

    Parameters
    ----------
    ordered : sequence of Note
    d_pitch, d_time : np.ndarray, shape (copies, n_notes)
        Pitch moves (semitones) and onset and offset moves (s), per copy and note.
    keep : np.ndarray of bool, shape (copies, n_notes)
        The notes each copy keeps.
    tuning_semitones : float, optional
        The singer's grid: each moved pitch is named again on it; without, names stay.

    Returns
    -------
    list of list of Note
        One list per copy; copies with no note left are not returned.
    """
    out = []
    for dps, dts, ks in zip(d_pitch, d_time, keep):
        copy = [Note(n.onset_s + dt, n.offset_s + dt, n.midi_pitch + dp,
                     n.midi if tuning_semitones is None
                     else int(round(n.midi_pitch + dp - tuning_semitones)), n.velocity)
                for n, dp, dt, k in zip(ordered, dps, dts, ks) if k]
        if copy:
            out.append(copy)
    return out
