"""Meter and the singer's beat grid: counted beats, bars and :class:`Rhythm`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Meters the rhythm stage knows, as (numerator, denominator).
SUPPORTED_METERS = ((4, 4), (3, 4), (6, 8), (2, 4))


def beats_per_bar(meter: Sequence[int]) -> int:
    """Counted beats per bar: 6/8 is counted in two (dotted quarters), the rest by numerator."""
    n, d = int(meter[0]), int(meter[1])
    if d == 8 and n % 3 == 0 and n > 3:
        return n // 3
    return n


def quarter_notes_per_beat(meter: Sequence[int]) -> float:
    """Length of one counted beat in quarter notes (1.5 for compound meters such as 6/8)."""
    n, d = int(meter[0]), int(meter[1])
    if d == 8 and n % 3 == 0 and n > 3:
        return 1.5
    return 4.0 / d


@dataclass
class Rhythm:
    """The singer's beat grid.

    Attributes
    ----------
    beats_s : np.ndarray, shape (n_beats,)
        Counted beats in seconds (dotted quarters in 6/8), increasing; they follow rubato and drift.
    downbeats_s : np.ndarray, shape (n_bars,)
        The first beat of every bar, a subset of ``beats_s``.
    meter : tuple of int
        (numerator, denominator), e.g. (4, 4), (3, 4), (6, 8).
    tempo_bpm : float
        Median tempo in counted beats per minute.
    meter_confidence, tempo_confidence : float
        0-1.
    """

    beats_s: np.ndarray
    downbeats_s: np.ndarray
    meter: tuple
    tempo_bpm: float
    meter_confidence: float = 1.0
    tempo_confidence: float = 1.0

    def to_json(self) -> dict:
        return {
            "tempo_bpm": round(float(self.tempo_bpm), 2),
            "beats": [round(float(b), 4) for b in self.beats_s],
            "downbeats": [round(float(b), 4) for b in self.downbeats_s],
            "meter": [int(self.meter[0]), int(self.meter[1])],
            "meter_confidence": round(float(self.meter_confidence), 3),
            "tempo_confidence": round(float(self.tempo_confidence), 3),
        }
