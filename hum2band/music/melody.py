"""The small object model every stage shares.

A take flows through the stages as these dataclasses, never as loose dicts:

* :class:`Note` -- one sung note: onset/offset in seconds of the recording, the sung pitch as
  fractional MIDI and the snapped integer MIDI note.
* :class:`Rhythm` -- the singer's own beat grid: beat and downbeat times in seconds, meter, tempo.
* :class:`Key` -- tonic, mode and a confidence.
* :class:`Melody` -- the notes plus tuning, rhythm and key: what ``hum2band transcribe`` writes and
  what the accompaniment stages read.

Times are always seconds of the original recording (``*_s``); pitches are MIDI numbers
(``midi_pitch`` fractional, ``midi`` integer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .key import Key
from .meter import OtherReading, OtherTempo, Rhythm


@dataclass
class Note:
    """One sung note.

    Attributes
    ----------
    onset_s, offset_s : float
        Start and end in seconds of the recording.
    midi_pitch : float
        The sung pitch: median of the pitch track over the note, fractional MIDI (69.0 = A440).
    midi : int
        The note name it is heard as: ``midi_pitch`` snapped to a semitone after removing the
        singer's tuning offset.
    velocity : int
        1-127, from the note's loudness relative to the take.
    """

    onset_s: float
    offset_s: float
    midi_pitch: float
    midi: int = 0
    velocity: int = 80

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s

    def to_json(self) -> dict:
        return {
            "onset": round(float(self.onset_s), 4),
            "offset": round(float(self.offset_s), 4),
            "pitch": round(float(self.midi_pitch), 3),
            "midi": int(self.midi),
            "velocity": int(self.velocity),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Note":
        return cls(float(d["onset"]), float(d["offset"]), float(d["pitch"]), int(d["midi"]),
                   int(d.get("velocity", 80)))


@dataclass
class Melody:
    """A transcribed take: the notes and everything known about how they were sung.

    This is the contract between transcription and the later stages, and the schema of the
    ``NAME.json`` that ``hum2band transcribe`` writes.
    """

    notes: list[Note]
    tuning_cents: float
    rhythm: Rhythm
    key: Key
    duration_s: float
    source: str = ""
    pitch_backend: str = ""
    timings_s: dict = field(default_factory=dict)
    #: The pitch track the notes came from (a hum2band.listen.pitch.PitchTrack; not part of the JSON).
    pitch_track: object = field(default=None, repr=False, compare=False)

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        d = {
            "source": self.source,
            "duration_s": round(float(self.duration_s), 4),
            "pitch_backend": self.pitch_backend,
            "notes": [n.to_json() for n in self.notes],
            "tuning_cents": round(float(self.tuning_cents), 2),
        }
        d.update(self.rhythm.to_json())
        d["key"] = self.key.to_json()
        if self.timings_s:
            d["timings_s"] = {k: round(float(v), 4) for k, v in self.timings_s.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Melody":
        rhythm = Rhythm(
            beats_s=np.asarray(d["beats"], dtype=float),
            downbeats_s=np.asarray(d["downbeats"], dtype=float),
            meter=tuple(int(x) for x in d["meter"]),
            tempo_bpm=float(d["tempo_bpm"]),
            meter_confidence=float(d.get("meter_confidence", 1.0)),
            tempo_confidence=float(d.get("tempo_confidence", 1.0)),
            other_readings=tuple(OtherReading.from_json(r) for r in d.get("other_readings", [])),
            other_tempi=tuple(OtherTempo.from_json(r) for r in d.get("other_tempi", [])),
        )
        k = d["key"]
        return cls(
            notes=[Note.from_json(n) for n in d["notes"]],
            tuning_cents=float(d["tuning_cents"]),
            rhythm=rhythm,
            key=Key(k["tonic"], k["mode"], float(k.get("confidence", 1.0))),
            duration_s=float(d.get("duration_s", 0.0)),
            source=d.get("source", ""),
            pitch_backend=d.get("pitch_backend", ""),
        )

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    # ---- MIDI -------------------------------------------------------------------------------
    def write_midi(self, path: str | Path, program: int = 0, track_name: str = "Melody") -> None:
        """Write the melody as a MIDI file on the singer's tempo map.

        MIDI seconds equal recording seconds: every counted beat of :attr:`rhythm` is a beat of
        the file, so a DAW shows bar lines on the sung downbeats.
        """
        from .tempo_map import TempoMap

        tmap = TempoMap.from_rhythm(self.rhythm, duration_s=self.duration_s)
        tmap.write_midi(path, tracks=[(track_name, program, False, self.notes)],
                        key=self.key)

    def snapped_pitches(self) -> np.ndarray:
        return np.array([n.midi for n in self.notes], dtype=int)
