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


def as_meter(value: str | Sequence[int]) -> tuple[int, int]:
    """A meter as JSON gives it, ``"3/4"`` or ``[3, 4]``, as ``(3, 4)``."""
    parts = value.split("/") if isinstance(value, str) else value
    return tuple(int(x) for x in parts)


#: Kinds of :class:`OtherReading`: the beats a fraction of a beat away (on the "and"; in 6/8 an
#: eighth away), or the same beats with bar 1 on another beat.
READING_KINDS = ("off-beat", "bar line")

_COUNT_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}


def move_words(beats: float, meter: Sequence[int]) -> str:
    """A move of the bar lines by ``beats`` counted beats (positive: later), in words:
    ``0.5`` -> ``"half a beat later"``, ``-1`` -> ``"a beat earlier"``, in 6/8 ``1/3`` ->
    ``"an eighth later"``."""
    way = "later" if beats > 0 else "earlier"
    b = abs(float(beats))
    if quarter_notes_per_beat(meter) == 1.5:  # compound: count the eighths of a dotted quarter
        eighths = int(round(b * 3))
        if abs(eighths - b * 3) < 0.02 and eighths % 3:
            return ("an eighth" if eighths == 1 else f"{_COUNT_WORDS.get(eighths, eighths)} eighths") + f" {way}"
    if abs(b - 0.5) < 0.01:
        return f"half a beat {way}"
    whole = int(round(b))
    if abs(whole - b) < 0.01 and whole >= 1:
        return ("a beat" if whole == 1 else f"{_COUNT_WORDS.get(whole, whole)} beats") + f" {way}"
    return f"{b:g} beats {way}"


@dataclass(frozen=True)
class OtherReading:
    """Another way the take's beat grid could be read, for a musician to try in one move.

    Attributes
    ----------
    kind : str
        ``"off-beat"``: the beats a fraction of a beat from the take's (half a beat; in 6/8 an
        eighth); ``"bar line"``: the same beats, bar 1 on another beat.
    downbeat_s : float
        A time in the take (s from its start) at which a bar starts in this reading: give it as
        ``--downbeat`` to arrange the take on it.
    beats_later : float
        How far this reading's bar lines lie after the chosen ones, in counted beats, in
        (-beats per bar / 2, beats per bar / 2] (negative: earlier).
    margin : float
        How far it scored below the chosen reading (>= 0, the rhythm stage's own units; the
        smaller, the closer the call).
    """

    kind: str
    downbeat_s: float
    beats_later: float
    margin: float

    def words(self, meter: Sequence[int]) -> str:
        """The move in words, e.g. ``"half a beat later"`` (:func:`move_words`)."""
        return move_words(self.beats_later, meter)

    def to_json(self) -> dict:
        return {"kind": self.kind, "downbeat_s": round(float(self.downbeat_s), 3),
                "beats_later": round(float(self.beats_later), 3), "margin": round(float(self.margin), 3)}

    @classmethod
    def from_json(cls, d: dict) -> "OtherReading":
        return cls(str(d["kind"]), float(d["downbeat_s"]), float(d.get("beats_later", 0.0)),
                   float(d.get("margin", 0.0)))


#: Tempo ratios a musician names (another reading of one meter at ``ratio`` times the tempo).
_RATIO_WORDS = ((0.5, "half the tempo"), (2.0, "double the tempo"), (1.0 / 3.0, "a third of the tempo"),
                (3.0, "three times the tempo"), (2.0 / 3.0, "two thirds of the tempo"),
                (1.5, "one and a half times the tempo"))


def count_words(meter: Sequence[int], tempo_bpm: float, as_read_meter: Sequence[int],
                as_read_bpm: float) -> str:
    """Another way to count a take, in words, against the way it was read: another meter
    ``"in 3/4 at 125 bpm"``; the same meter at a named ratio of the tempo ``"at half the tempo,
    62 bpm"``; else ``"at 82 bpm"``. Tempi in counted beats a minute (dotted quarters in 6/8)."""
    bpm = float(tempo_bpm)
    if tuple(int(x) for x in meter) != tuple(int(x) for x in as_read_meter):
        return f"in {int(meter[0])}/{int(meter[1])} at {bpm:.0f} bpm"
    ratio = bpm / max(float(as_read_bpm), 1e-6)
    for r, words in _RATIO_WORDS:
        if abs(np.log(ratio / r)) < np.log(1.06):
            return f"at {words}, {bpm:.0f} bpm"
    return f"at {bpm:.0f} bpm"


@dataclass(frozen=True)
class OtherTempo:
    """Another tempo or meter the take could be counted in, for a musician to try in one move
    (double or half time, a waltz read as 6/8, ...).

    Attributes
    ----------
    meter : tuple of int
        (numerator, denominator): give it as ``--meter``.
    tempo_bpm : float
        Counted beats a minute (dotted quarters in 6/8) of that reading: give it as ``--tempo``.
    margin : float
        How far it scored below the reading chosen (>= 0, the rhythm stage's own units; the
        smaller, the closer the call).
    """

    meter: tuple
    tempo_bpm: float
    margin: float

    def words(self, as_read_meter: Sequence[int], as_read_bpm: float) -> str:
        """The reading in words, e.g. ``"in 3/4 at 125 bpm"`` (:func:`count_words`)."""
        return count_words(self.meter, self.tempo_bpm, as_read_meter, as_read_bpm)

    def flags(self) -> str:
        """The options that arrange the take this way: ``"--meter 3/4 --tempo 125"``."""
        return f"--meter {int(self.meter[0])}/{int(self.meter[1])} --tempo {float(self.tempo_bpm):.0f}"

    def to_json(self) -> dict:
        return {"meter": f"{int(self.meter[0])}/{int(self.meter[1])}",
                "tempo_bpm": round(float(self.tempo_bpm), 1), "margin": round(float(self.margin), 3)}

    @classmethod
    def from_json(cls, d: dict) -> "OtherTempo":
        return cls(as_meter(d["meter"]), float(d["tempo_bpm"]), float(d.get("margin", 0.0)))


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
    other_readings : tuple of OtherReading
        Other readings of the grid, each one ``--downbeat`` away, in the take's own seconds: the
        grid the rhythm stage chose, where the beats were locked onto the melody away from it;
        the likeliest with the beats elsewhere; then every other bar line on the chosen beats,
        likeliest first; empty when the bar line was fixed by hand or the learned models were
        left out.
    other_tempi : tuple of OtherTempo
        Other tempi and meters the take could be counted in (``--meter`` and ``--tempo``),
        likeliest first; empty when the bar line was fixed by hand.
    """

    beats_s: np.ndarray
    downbeats_s: np.ndarray
    meter: tuple
    tempo_bpm: float
    meter_confidence: float = 1.0
    tempo_confidence: float = 1.0
    other_readings: tuple = ()
    other_tempi: tuple = ()

    def to_json(self) -> dict:
        return {
            "tempo_bpm": round(float(self.tempo_bpm), 2),
            "beats": [round(float(b), 4) for b in self.beats_s],
            "downbeats": [round(float(b), 4) for b in self.downbeats_s],
            "meter": [int(self.meter[0]), int(self.meter[1])],
            "meter_confidence": round(float(self.meter_confidence), 3),
            "tempo_confidence": round(float(self.tempo_confidence), 3),
            "other_readings": [r.to_json() for r in self.other_readings],
            "other_tempi": [r.to_json() for r in self.other_tempi],
        }
