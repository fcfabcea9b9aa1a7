"""Lead sheets: a melody and its chords on a grid of counted beats.

The shape a written melody (MIDI, MusicXML, a corpus song) takes before it is harmonized:
:class:`BeatNote`, :class:`ChordSpan`, :class:`LeadSheet`. Times are **counted beats** (see
:func:`hum2band.music.meter.beats_per_bar`); beat 0 is a downbeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .chords import ChordSymbol
from .key import Key


@dataclass
class BeatNote:
    """One melody note on the beat grid.

    Attributes
    ----------
    onset_beat, offset_beat : float
        Start and end in counted beats from the first downbeat (a pickup starts before beat
        ``beats_per_bar`` but never below 0).
    midi : int
        MIDI note number (sounding pitch).
    velocity : int
        1-127 (80 where the source has none).
    """

    onset_beat: float
    offset_beat: float
    midi: int
    velocity: int = 80

    @property
    def duration_beats(self) -> float:
        return self.offset_beat - self.onset_beat


class ChordSpan(NamedTuple):
    """A chord held from ``start_beat`` to ``end_beat`` (counted beats)."""

    start_beat: float
    end_beat: float
    chord: ChordSymbol


@dataclass
class LeadSheet:
    """A melody with its chords, on a beat grid.

    Attributes
    ----------
    song_id : str
        Unique within its source (POP909 folder name, ``"jigs/12"``, file stem, OpenEWLD path).
    source : str
        One of :data:`SOURCES`.
    melody : list of BeatNote
        Monophonic melody, sorted by onset.
    chords : list of ChordSpan
        Non-overlapping, sorted; gaps are beats without a chord label.
    meter : tuple of int
        (numerator, denominator) of the main time signature.
    key : Key or None
        The notated / annotated key (first one if it changes), None if unknown.
    key_changes : tuple of (float, Key)
        Where the annotated key changes: ``(start_beat, key)`` of each key after the first, in
        order (POP909's ``key_audio.txt``); empty where the key holds or the source does not say.
        :func:`key_in_force` reads the key of an excerpt.
    beats_per_bar : int
        Counted beats per bar (2 in 6/8).
    tempo_bpm : float
        Counted beats per minute (120 where the score gives none).
    genre : str
        Style label if the source has one (OpenEWLD Discogs genre; "folk" for Nottingham,
        "pop" for POP909, "" otherwise).
    title : str
    """

    song_id: str
    source: str
    melody: list[BeatNote]
    chords: list[ChordSpan]
    meter: tuple
    key: Key | None
    beats_per_bar: int
    tempo_bpm: float
    genre: str = ""
    title: str = ""
    #: The split the data loader gave this song and its twins (the same tune under another name
    #: or in another source); "" = by its own name (:func:`split_of`).
    group_split: str = ""
    key_changes: tuple = ()

    @property
    def end_beat(self) -> float:
        ends = [n.offset_beat for n in self.melody] + [c.end_beat for c in self.chords]
        return max(ends) if ends else 0.0

    @property
    def n_bars(self) -> int:
        return int(np.ceil(self.end_beat / self.beats_per_bar - 1e-9))

    @property
    def split(self) -> str:
        """"train", "validation" or "test": the twins' shared split, else :func:`split_of`."""
        return self.group_split or split_of(self.source, self.song_id)

    def chord_at(self, beat: float) -> ChordSymbol | None:
        """The chord sounding at ``beat`` (None in a gap)."""
        for c in self.chords:
            if c.start_beat <= beat < c.end_beat:
                return c.chord
        return None


def key_in_force(first_key, changes, start: float, stop: float):
    """Of a piece's keys (``first_key``, then ``(start, key)`` for each change, in order), the one
    in force for the longest part of ``[start, stop)``; the earlier one on a tie. The keys may be
    any objects and the times any unit (beats, seconds)."""
    regions = [(-np.inf, first_key)] + list(changes)
    best, best_len = first_key, -np.inf
    for i, (begin, key) in enumerate(regions):
        end = regions[i + 1][0] if i + 1 < len(regions) else np.inf
        overlap = min(end, stop) - max(begin, start)
        if overlap > best_len + 1e-9:
            best, best_len = key, overlap
    return best


# ---- split, paths, cache ---------------------------------------------------------------------
def split_of(source: str, song_id: str) -> str:
    """Deterministic split by song: 80 % train, 10 % validation, 10 % test (see module doc)."""
    h = int(hashlib.sha1(f"{source}/{song_id}".encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("validation" if h < 90 else "test")


def monophonic(notes: list[BeatNote]) -> list[BeatNote]:
    """Sort by onset; on equal onsets keep the highest; cut each note at the next onset."""
    notes = sorted(notes, key=lambda n: (n.onset_beat, -n.midi))
    out: list[BeatNote] = []
    for n in notes:
        if out and abs(out[-1].onset_beat - n.onset_beat) < 1e-6:
            continue
        if out and out[-1].offset_beat > n.onset_beat:
            out[-1].offset_beat = n.onset_beat
        if n.offset_beat > n.onset_beat:
            out.append(n)
    return [n for n in out if n.offset_beat - n.onset_beat > 1e-6]


# ---- POP909 ---------------------------------------------------------------------------------
def seconds_to_beats(times_s: np.ndarray, beat_times_s: np.ndarray,
                     first_beat_number: float = 0.0) -> np.ndarray:
    """Map seconds to beat numbers by linear interpolation between annotated beats.

    Parameters
    ----------
    times_s : np.ndarray, shape (n,)
    beat_times_s : np.ndarray, shape (n_beats,), increasing, n_beats >= 2
    first_beat_number : float
        Beat number of ``beat_times_s[0]``.

    Returns
    -------
    np.ndarray, shape (n,)
        Beat numbers; outside the annotated range the first/last beat interval is extended.
    """
    bt = np.asarray(beat_times_s, float)
    idx = np.arange(len(bt), dtype=float) + first_beat_number
    t = np.asarray(times_s, float)
    out = np.interp(t, bt, idx)
    lo, hi = t < bt[0], t > bt[-1]
    out[lo] = idx[0] + (t[lo] - bt[0]) / (bt[1] - bt[0])
    out[hi] = idx[-1] + (t[hi] - bt[-1]) / (bt[-1] - bt[-2])
    return out
