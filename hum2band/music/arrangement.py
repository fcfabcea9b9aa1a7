"""The arrangement: the sung melody, the band's parts and the chords, on the singer's time line.

This is the object model that ``arrange`` builds and that rendering and export read:

* :class:`PartNote` -- one note a band part plays (seconds of the recording, integer MIDI note).
* :class:`Part` -- one instrument of the band: name, General MIDI program, drum flag, notes,
  pan and gain.
* :class:`ChordSpan` -- one chord symbol and the stretch of the take it covers, in seconds and in
  the singer's beats.
* :class:`Arrangement` -- all of it plus where it came from (style, seed, model version); writes
  ``arrangement.json`` and ``arrangement.mid`` and reads a (possibly DAW-edited) MIDI file back.

Times are seconds of the original recording, as everywhere in hum2band: the band follows the
singer, the take is never stretched. Beat positions (``*_beat``) count the singer's beats
(``melody.rhythm.beats_s``): beat 0.0 is the first sung beat, 1.5 is halfway between the second
and the third; before the first and after the last beat they extend at the nearest beat length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .chords import ChordSymbol
from .key import Key
from .melody import Melody, Note
from .meter import Rhythm, quarter_notes_per_beat

#: Name of the melody's track in ``arrangement.mid``.
MELODY_TRACK_NAME = "Melody"


# ---- beat positions ---------------------------------------------------------------------------
def seconds_to_beats(rhythm: Rhythm, times_s: float | np.ndarray) -> np.ndarray:
    """Fractional beat index of each time on the singer's beat grid.

    Parameters
    ----------
    rhythm : Rhythm
        The singer's beats (``beats_s``); with fewer than two beats, ``tempo_bpm`` gives the grid.
    times_s : float or np.ndarray
        Times in seconds of the recording.

    Returns
    -------
    np.ndarray
        Beat positions (0.0 = first sung beat), same shape as ``times_s``; linear between beats and
        extended at the first/last beat length outside them.
    """
    t = np.asarray(times_s, dtype=float)
    beats = np.asarray(rhythm.beats_s, dtype=float)
    if len(beats) < 2:
        ibi = 60.0 / max(float(rhythm.tempo_bpm), 1.0)
        origin = float(beats[0]) if len(beats) else 0.0
        return (t - origin) / ibi
    idx = np.arange(len(beats), dtype=float)
    out = np.interp(t, beats, idx)
    first_ibi, last_ibi = beats[1] - beats[0], beats[-1] - beats[-2]
    out = np.where(t < beats[0], (t - beats[0]) / first_ibi, out)
    out = np.where(t > beats[-1], idx[-1] + (t - beats[-1]) / last_ibi, out)
    return out


def beats_to_seconds(rhythm: Rhythm, beats: float | np.ndarray) -> np.ndarray:
    """Inverse of :func:`seconds_to_beats`: seconds of the recording for beat positions."""
    b = np.asarray(beats, dtype=float)
    grid = np.asarray(rhythm.beats_s, dtype=float)
    if len(grid) < 2:
        ibi = 60.0 / max(float(rhythm.tempo_bpm), 1.0)
        origin = float(grid[0]) if len(grid) else 0.0
        return origin + b * ibi
    idx = np.arange(len(grid), dtype=float)
    out = np.interp(b, idx, grid)
    first_ibi, last_ibi = grid[1] - grid[0], grid[-1] - grid[-2]
    out = np.where(b < 0, grid[0] + b * first_ibi, out)
    out = np.where(b > idx[-1], grid[-1] + (b - idx[-1]) * last_ibi, out)
    return out


# ---- the object model -------------------------------------------------------------------------
@dataclass
class PartNote:
    """One note of a band part.

    Attributes
    ----------
    onset_s, offset_s : float
        Start and end in seconds of the recording.
    midi : int
        MIDI note number (for drums: the General MIDI percussion key, 36 = kick).
    velocity : int
        1-127.
    """

    onset_s: float
    offset_s: float
    midi: int
    velocity: int = 90

    def to_json(self) -> dict:
        return {"onset": round(float(self.onset_s), 4), "offset": round(float(self.offset_s), 4),
                "midi": int(self.midi), "velocity": int(self.velocity)}

    @classmethod
    def from_json(cls, d: dict) -> "PartNote":
        return cls(float(d["onset"]), float(d["offset"]), int(d["midi"]), int(d.get("velocity", 90)))


@dataclass
class Part:
    """One instrument of the band.

    Attributes
    ----------
    name : str
        ``"drums"``, ``"bass"``, ``"keys"``...; also the stem's file name (``stems/NAME.wav``).
    program : int
        General MIDI program 0-127 (for drums: the GM kit number, 0 = standard kit).
    is_drum : bool
        Played on the percussion channel (MIDI channel 10).
    notes : list
        Objects with ``onset_s``, ``offset_s``, ``midi``, ``velocity`` (:class:`PartNote` or
        :class:`hum2band.music.melody.Note`).
    pan : float
        -1 (left) ... 0 (centre) ... 1 (right).
    gain_db : float
        Level of this part in the mix relative to the others, in dB.
    """

    name: str
    program: int
    is_drum: bool = False
    notes: list = field(default_factory=list)
    pan: float = 0.0
    gain_db: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= int(self.program) <= 127:
            raise ValueError(f"program must be 0-127, not {self.program}")
        self.pan = float(np.clip(self.pan, -1.0, 1.0))

    @property
    def end_s(self) -> float:
        """Offset of the last note in seconds (0 without notes)."""
        return max((float(n.offset_s) for n in self.notes), default=0.0)

    def to_json(self, stem: str | None = None) -> dict:
        return {
            "name": self.name,
            "program": int(self.program),
            "is_drum": bool(self.is_drum),
            "pan": round(float(self.pan), 3),
            "gain_db": round(float(self.gain_db), 2),
            "stem": stem if stem is not None else f"stems/{stem_file_name(self.name)}",
            "notes": [_note_json(n) for n in self.notes],
        }

    @classmethod
    def from_json(cls, d: dict) -> "Part":
        return cls(d["name"], int(d["program"]), bool(d.get("is_drum", False)),
                   [PartNote.from_json(n) for n in d["notes"]],
                   float(d.get("pan", 0.0)), float(d.get("gain_db", 0.0)))


def _note_json(n) -> dict:
    return {"onset": round(float(n.onset_s), 4), "offset": round(float(n.offset_s), 4),
            "midi": int(n.midi), "velocity": int(n.velocity)}


def stem_file_name(part_name: str) -> str:
    """File name of a part's stem: ``"Lead Guitar"`` -> ``"lead_guitar.wav"``."""
    safe = "".join(c if c.isalnum() else "_" for c in part_name.strip().lower()).strip("_")
    return (safe or "part") + ".wav"


@dataclass
class ChordSpan:
    """One chord and the stretch of the take it sounds over.

    Attributes
    ----------
    start_s, end_s : float
        Seconds of the recording.
    start_beat, end_beat : float
        The same in the singer's beats (see :func:`seconds_to_beats`).
    chord : ChordSymbol
    """

    start_s: float
    end_s: float
    start_beat: float
    end_beat: float
    chord: ChordSymbol

    @classmethod
    def from_beats(cls, rhythm: Rhythm, start_beat: float, end_beat: float,
                   chord: ChordSymbol | str) -> "ChordSpan":
        """A span given in beats; the seconds come from the singer's beat grid."""
        c = ChordSymbol.parse(chord) if isinstance(chord, str) else chord
        s, e = beats_to_seconds(rhythm, [start_beat, end_beat])
        return cls(float(s), float(e), float(start_beat), float(end_beat), c)

    @classmethod
    def from_seconds(cls, rhythm: Rhythm, start_s: float, end_s: float,
                     chord: ChordSymbol | str) -> "ChordSpan":
        """A span given in seconds; the beats come from the singer's beat grid."""
        c = ChordSymbol.parse(chord) if isinstance(chord, str) else chord
        b0, b1 = seconds_to_beats(rhythm, [start_s, end_s])
        return cls(float(start_s), float(end_s), float(b0), float(b1), c)

    def to_json(self) -> dict:
        return {"start": round(float(self.start_s), 4), "end": round(float(self.end_s), 4),
                "start_beat": round(float(self.start_beat), 4),
                "end_beat": round(float(self.end_beat), 4),
                "chord": self.chord.harte, "label": self.chord.label}

    @classmethod
    def from_json(cls, d: dict) -> "ChordSpan":
        return cls(float(d["start"]), float(d["end"]), float(d["start_beat"]), float(d["end_beat"]),
                   ChordSymbol.parse(d["chord"]))


@dataclass
class SectionSpan:
    """One section of the song's form on the recording's time line.

    Attributes
    ----------
    label : str
        "A", "B", ... (the same letter: the same material) or the user's ``--form`` name.
    start_s, end_s : float
        Seconds of the recording (the arrangement's time line).
    start_bar, end_bar : int
        Bars ``start_bar <= b < end_bar`` of the arrangement's bar grid (0-based).
    energy : int
        0 sparse, 1 full, 2 fullest: how much the band plays.
    pickup_bars : int
        Bars of the section before its first phrase starts (a pickup).
    phrase_starts : tuple of int
        Bars inside the section where a phrase starts (where a fill or pickup leads in): what a
        regenerated section (``--section``, ``--bars``) needs to play to the same phrases.
    """

    label: str
    start_s: float
    end_s: float
    start_bar: int
    end_bar: int
    energy: int = 1
    pickup_bars: int = 0
    phrase_starts: tuple = ()

    def to_json(self) -> dict:
        return {"label": self.label, "start_s": round(float(self.start_s), 4),
                "end_s": round(float(self.end_s), 4), "start_bar": int(self.start_bar),
                "end_bar": int(self.end_bar), "energy": int(self.energy),
                "pickup_bars": int(self.pickup_bars),
                "phrase_starts": [int(b) for b in self.phrase_starts]}

    @classmethod
    def from_json(cls, d: dict) -> "SectionSpan":
        return cls(str(d["label"]), float(d["start_s"]), float(d["end_s"]), int(d["start_bar"]),
                   int(d["end_bar"]), int(d.get("energy", 1)), int(d.get("pickup_bars", 0)),
                   tuple(int(b) for b in d.get("phrase_starts", ())))

    @property
    def marker(self) -> str:
        """The MIDI marker text (never read back as a chord symbol)."""
        return f"Section {self.label}"


@dataclass
class Arrangement:
    """A backing band for one take.

    Attributes
    ----------
    melody : Melody
        The transcribed take (notes, tuning, beats, meter, key).
    parts : list of Part
        The band, in the order the tracks and stems are written.
    chords : list of ChordSpan
        In time order, not overlapping.
    style : str
        Style name (see ``soundfonts/catalogue.json``).
    seed : int
        Random seed the parts were generated with.
    model_version : str
        Version of the accompaniment model that made the parts.
    tuning_cents : float
        The singer's reference pitch relative to A440 in cents; the band is tuned to it.
    vocal_path : str or None
        The original take, the lead of the mix (None: no vocal).
    input_path : str
        What the user gave (an audio take, or a MIDI/MusicXML melody).
    melody_program : int
        GM program of the melody's MIDI track (and of the optional melody instrument).
    timings_s : dict
        Wall time per stage in seconds.
    sections : list of SectionSpan
        The song's form (``arrangement.json`` "sections", MIDI markers "Section A"...).
    """

    melody: Melody
    parts: list[Part]
    chords: list[ChordSpan]
    style: str = ""
    seed: int = 0
    model_version: str = ""
    tuning_cents: float = 0.0
    vocal_path: str | None = None
    input_path: str = ""
    melody_program: int = 0
    timings_s: dict = field(default_factory=dict)
    sections: list = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Length of the band's material: the take, or the last note/chord if that is later."""
        ends = [float(self.melody.duration_s)] + [p.end_s for p in self.parts]
        ends += [float(c.end_s) for c in self.chords]
        ends += [float(n.offset_s) for n in self.melody.notes]
        return max(ends)

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self, stems: dict[str, str] | None = None) -> dict:
        """The ``arrangement.json`` schema of issue 4.

        Parameters
        ----------
        stems : dict, optional
            Part name -> stem path relative to the output folder (default ``stems/NAME.wav``).
        """
        m = self.melody
        d = {
            "input": self.input_path or m.source,
            "vocal": self.vocal_path,
            "style": self.style,
            "seed": int(self.seed),
            "model_version": self.model_version,
            "key": m.key.to_json(),
            "tuning_cents": round(float(self.tuning_cents), 2),
            "meter": [int(m.rhythm.meter[0]), int(m.rhythm.meter[1])],
            "tempo_bpm": round(float(m.rhythm.tempo_bpm), 2),
            "beats": [round(float(b), 4) for b in m.rhythm.beats_s],
            "downbeats": [round(float(b), 4) for b in m.rhythm.downbeats_s],
            # other readings of the grid, as bar lines in the take's own seconds (--downbeat)
            "other_readings": [r.to_json() for r in m.rhythm.other_readings],
            # other tempi and meters to count it in (--meter, --tempo)
            "other_tempi": [r.to_json() for r in m.rhythm.other_tempi],
            "duration_s": round(float(self.duration_s), 4),
            "melody": m.to_json(),
            "melody_program": int(self.melody_program),
            "chords": [c.to_json() for c in self.chords],
            "parts": [p.to_json(None if stems is None else stems.get(p.name)) for p in self.parts],
            "timings_s": {k: round(float(v), 4) for k, v in self.timings_s.items()},
            "sections": [x.to_json() for x in self.sections],
        }
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Arrangement":
        """Read back what :meth:`to_json` wrote (``arrangement.json`` of an earlier run)."""
        return cls(
            melody=Melody.from_json(d["melody"]),
            parts=[Part.from_json(p) for p in d["parts"]],
            chords=[ChordSpan.from_json(c) for c in d["chords"]],
            style=d.get("style", ""),
            seed=int(d.get("seed", 0)),
            model_version=d.get("model_version", ""),
            tuning_cents=float(d.get("tuning_cents", 0.0)),
            vocal_path=d.get("vocal"),
            input_path=d.get("input", ""),
            melody_program=int(d.get("melody_program", 0)),
            timings_s=dict(d.get("timings_s", {})),
            sections=[SectionSpan.from_json(x) for x in d.get("sections", [])],
        )

    def write_json(self, path: str | Path, stems: dict[str, str] | None = None) -> None:
        """Write ``arrangement.json`` atomically."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_text(json.dumps(self.to_json(stems), indent=1) + "\n")
        tmp.replace(target)

    # ---- MIDI -------------------------------------------------------------------------------
    def midi_tracks(self, volumes: Sequence[int] | None = None) -> list[tuple]:
        """``(name, program, is_drum, notes, controls, texts)`` per track: the melody, then the
        parts.

        ``controls`` holds the initial pan (CC 10) and volume (CC 7): from ``gain_db``, or, where
        ``volumes`` gives one per part (the mix balance, see
        :func:`hum2band.perform.export.midi_volumes`), that volume, with a text event
        ``"hum2band level cc7=V gain_db=G"`` so that reading the file back gives the part its own
        ``gain_db`` again (plus whatever a DAW moved the volume by), not the balance twice.
        """
        tracks = [(MELODY_TRACK_NAME, int(self.melody_program), False, list(self.melody.notes),
                   {10: 64, 7: gain_db_to_cc7(0.0)}, ())]
        for i, p in enumerate(self.parts):
            cc7, texts = gain_db_to_cc7(p.gain_db), ()
            if volumes is not None:
                cc7 = int(np.clip(int(volumes[i]), 1, 127))
                texts = (f"{LEVEL_TEXT} cc7={cc7} gain_db={float(p.gain_db):.2f}",)
            tracks.append((p.name, int(p.program), bool(p.is_drum), list(p.notes),
                           {10: pan_to_cc10(p.pan), 7: cc7}, texts))
        return tracks

    def write_midi(self, path: str | Path, volumes: Sequence[int] | None = None) -> None:
        """Write ``arrangement.mid``: type 1, on the singer's tempo map.

        A conductor track holds the tempo map (one tempo event per sung beat, so MIDI seconds
        equal recording seconds and bar lines fall on the sung downbeats), the meter, the key and
        one marker per chord (its common symbol, e.g. ``"Am7"``) and one per section of the form
        (``"Section A"``). Then one named track for the
        melody and one per part, with its GM program, pan and volume; drums on channel 10; every
        melodic channel tuned by ``tuning_cents`` with a pitch-bend offset (bend range ±2
        semitones). Where a chord ends before the next begins (or the last one ends), an
        ``"N.C."`` marker says so. ``volumes``: each part's CC 7 (see :meth:`midi_tracks`).
        """
        from .tempo_map import TempoMap

        tmap = TempoMap.from_rhythm(self.melody.rhythm, duration_s=self.duration_s)
        markers = sorted(chord_markers(self.chords) + [(float(x.start_s), x.marker) for x in self.sections],
                         key=lambda m: m[0])
        tmap.write_midi(path, tracks=self.midi_tracks(volumes), key=self.melody.key, markers=markers,
                        pitch_bend_cents=float(self.tuning_cents))

    @classmethod
    def from_midi(cls, path: str | Path, vocal_path: str | None = None,
                  duration_s: float | None = None, style: str = "",
                  melody_track: str = MELODY_TRACK_NAME) -> "Arrangement":
        """Read an arrangement back from a MIDI file (``hum2band render ARRANGEMENT.mid``).

        Every track with notes becomes a :class:`Part` (name, program, drum channel, pan and
        volume from its first CC 10 / CC 7), except the track named ``melody_track``, which
        becomes the melody; a track that plays on several channels (a type-0 file) gives one
        part per channel. Chords come from the marker events that read as chord symbols (each
        lasts until the next; ``"N.C."`` after the last one ends it, else the end of the music);
        other markers ("Verse") are ignored. The beat grid is the file's own: one beat per counted
        beat of its meter, timed by its tempo map; the tuning from the first pitch bend on a
        melodic channel (with the file's RPN 0 bend range, default ±2 semitones).

        Parameters
        ----------
        path : str or Path
            A type-0 or type-1 MIDI file, e.g. ``arrangement.mid`` after editing in a DAW.
        vocal_path : str, optional
            The take to put back as the lead.
        duration_s : float, optional
            Length of the take in seconds (default: the end of the last note).

        Raises
        ------
        InputError
            The file is not a MIDI file mido can read.
        """
        from ..errors import InputError

        try:
            return _read_midi(Path(path), vocal_path, duration_s, style, melody_track)
        except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
            raise InputError(f"cannot read {path} as a MIDI file ({error}); "
                             "give the arrangement.mid that hum2band wrote, or a MIDI export of it") from error


# ---- MIDI helpers -----------------------------------------------------------------------------
#: Marker text that ends a chord without starting another.
NO_CHORD_MARKER = "N.C."


def chord_markers(chords: Sequence[ChordSpan], gap_s: float = 0.001) -> list[tuple[float, str]]:
    """``(time_s, text)`` marker events: each chord's label at its start, and ``"N.C."`` where
    a chord ends more than ``gap_s`` before the next one starts, and at the end of the last."""
    spans = sorted(chords, key=lambda c: c.start_s)
    out: list[tuple[float, str]] = []
    for i, c in enumerate(spans):
        out.append((float(c.start_s), c.chord.label))
        nxt = spans[i + 1].start_s if i + 1 < len(spans) else None
        if (nxt is None or c.end_s < nxt - gap_s) and not c.chord.is_no_chord:
            out.append((float(c.end_s), NO_CHORD_MARKER))
    return out


def pan_to_cc10(pan: float) -> int:
    """Pan -1..1 as MIDI CC 10 (0 = left, 64 = centre, 127 = right)."""
    p = float(np.clip(pan, -1.0, 1.0))
    return int(np.clip(round(64 + p * (63 if p >= 0 else 64)), 0, 127))


def cc10_to_pan(value: int) -> float:
    v = int(value)
    return (v - 64) / (63.0 if v >= 64 else 64.0)


#: CC 7 value that means 0 dB (GM: gain = 40 log10(cc / 127), 100 is the customary default).
_CC7_UNITY = 100
#: Start of the text event that records the volume hum2band wrote on a track and the part's own
#: gain (see :meth:`Arrangement.midi_tracks`).
LEVEL_TEXT = "hum2band level"


def gain_db_to_cc7(gain_db: float) -> int:
    """A part gain in dB as MIDI CC 7 (GM volume curve 40·log10(v/127), 0 dB at 100)."""
    v = _CC7_UNITY * 10 ** (float(gain_db) / 40.0)
    return int(np.clip(round(v), 1, 127))


def _level_text(text: str) -> tuple[int, float] | None:
    """``(cc7, gain_db)`` of a ``"hum2band level cc7=V gain_db=G"`` text event, else None."""
    import re

    m = re.search(r"cc7=(\d+)\s+gain_db=(-?[\d.]+)", text)
    return (int(m.group(1)), float(m.group(2))) if m else None


def cc7_to_gain_db(value: int) -> float:
    return 40.0 * float(np.log10(max(int(value), 1) / _CC7_UNITY))


def _read_midi(path: Path, vocal_path, duration_s, style, melody_track) -> "Arrangement":
    import mido
    import pretty_midi

    from ..errors import OptionError
    from .tempo_map import bar_line_ticks

    mid = mido.MidiFile(str(path))
    pm = pretty_midi.PrettyMIDI(str(path))
    resolution = mid.ticks_per_beat

    # Conductor information from every track (type 0 files keep it with the notes).
    meter_events, markers, key = [], [], None
    channel_program: dict[int, int] = {}
    tracks = []
    for tr in mid.tracks:
        tick, name = 0, ""
        notes_on: dict[tuple[int, int], list] = {}
        notes, bends, rpn, bend_range = [], [], {}, {}
        program: dict[int, int] = {}        # channel -> first program change in this track
        ctl: dict[int, dict[int, int]] = {}  # channel -> {controller: first value}
        level = None  # (cc7 written, gain_db) from hum2band's level text
        for msg in tr:
            tick += msg.time
            if msg.type == "track_name" and not name:
                name = msg.name
            elif msg.type == "time_signature":
                meter_events.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "marker":
                markers.append((tick, msg.text))
            elif msg.type == "text" and msg.text.startswith(LEVEL_TEXT) and level is None:
                level = _level_text(msg.text)
            elif msg.type == "key_signature" and key is None:
                try:
                    key = Key.parse(msg.key)
                except OptionError:
                    pass
            elif msg.type == "program_change":
                channel_program.setdefault(msg.channel, msg.program)
                program.setdefault(msg.channel, msg.program)
            elif msg.type == "control_change":
                ch, c = msg.channel, msg.control
                sel = rpn.setdefault(ch, [None, None])
                if c in (7, 10):
                    ctl.setdefault(ch, {}).setdefault(c, msg.value)
                elif c == 101:
                    sel[0] = msg.value
                elif c == 100:
                    sel[1] = msg.value
                elif c == 6 and sel == [0, 0]:
                    bend_range[ch] = 100.0 * msg.value + bend_range.get(ch, 0.0) % 100.0
                elif c == 38 and sel == [0, 0]:
                    bend_range[ch] = 100.0 * (bend_range.get(ch, 200.0) // 100.0) + msg.value
            elif msg.type == "pitchwheel":
                bends.append((msg.channel, msg.pitch))
            elif msg.type == "note_on" and msg.velocity > 0:
                notes_on.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_off", "note_on"):
                stack = notes_on.get((msg.channel, msg.note))
                if stack:
                    on_tick, vel = stack.pop(0)
                    notes.append((on_tick, max(tick, on_tick + 1), msg.note, vel, msg.channel))
        channels = sorted({n[4] for n in notes})
        for ch in channels:  # a track playing on several channels (type 0) -> one part each
            ch_notes = [n for n in notes if n[4] == ch]
            label = name
            if len(channels) > 1 or not name:
                prefix = f"{name} " if name and mid.type != 0 else ""
                label = prefix + _channel_part_name(ch, program.get(ch))
            tracks.append((label, program.get(ch), ch == 9, ch_notes, ctl.get(ch, {}),
                           [b for b in bends if b[0] == ch], bend_range, level))

    def sec(tick):
        return float(pm.tick_to_time(int(tick)))

    # Beat grid: counted beats of the meter in force, timed by the file's tempo map.
    meter_events.sort()
    meter = (meter_events[-1][1], meter_events[-1][2]) if meter_events else (4, 4)
    if len(meter_events) > 1 and meter_events[0][0] == 0 and meter_events[1][0] > 0:
        meter = (meter_events[1][1], meter_events[1][2])  # a pickup bar, then the meter
    end_tick = max((n[1] for t in tracks for n in t[3]), default=0)
    end_tick = max([end_tick] + [m[0] for m in markers])
    music_end_s = sec(end_tick)
    dur = float(duration_s) if duration_s is not None else music_end_s
    beat_ticks = int(round(resolution * quarter_notes_per_beat(meter)))
    n_beats = int(np.ceil(max(end_tick, pm.time_to_tick(dur)) / beat_ticks)) + 1
    beats_s = np.array([sec(i * beat_ticks) for i in range(n_beats)])
    bar_ticks = bar_line_ticks(meter_events or [(0, 4, 4)], resolution, n_beats * beat_ticks)
    downbeats_s = np.array([sec(t) for t in bar_ticks])
    tempo_bpm = 60.0 / float(np.median(np.diff(beats_s))) if len(beats_s) > 1 else 120.0
    rhythm = Rhythm(beats_s, downbeats_s, tuple(meter), tempo_bpm)

    # Tuning: first pitch bend of a melodic channel.
    tuning_cents = 0.0
    for _, _, drum, _, _, bends, ranges, _ in tracks:
        melodic = [(ch, p) for ch, p in bends if ch != 9]
        if melodic and not drum:
            ch, p = melodic[0]
            tuning_cents = p / 8192.0 * ranges.get(ch, 200.0)  # RPN 0 range in cents
            break

    melody_notes, parts = [], []
    for name, program, drum, notes, ctl, _, _, level in tracks:
        notes = sorted(notes)
        if name.strip().lower() == melody_track.strip().lower() and not melody_notes:
            melody_notes = [Note(sec(a), sec(b), float(p) + tuning_cents / 100.0, int(p), int(v))
                            for a, b, p, v, _ in notes]
            continue
        if program is None:
            program = channel_program.get(notes[0][4], 0)
        part_notes = [PartNote(sec(a), sec(b), int(p), int(v)) for a, b, p, v, _ in notes]
        gain_db = cc7_to_gain_db(ctl.get(7, _CC7_UNITY))
        if level is not None:  # hum2band wrote the balance as the volume: the part's own gain,
            written, own_db = level  # moved by what the volume was moved by since
            gain_db = own_db + gain_db - cc7_to_gain_db(written)
        parts.append(Part(name or f"part{len(parts) + 1}", int(program), drum, part_notes,
                          cc10_to_pan(ctl.get(10, 64)), gain_db))

    chord_marks = []
    for tick, text in sorted(markers):
        try:
            chord_marks.append((tick, ChordSymbol.parse(text)))
        except OptionError:
            continue  # a section name ("Verse") or other marker a DAW added: not a chord
    chords = []
    for i, (tick, chord) in enumerate(chord_marks):
        start = sec(tick)
        if i + 1 < len(chord_marks):
            end = sec(chord_marks[i + 1][0])
        elif chord.is_no_chord and chords:
            break  # the closing "N.C." of the last chord
        else:
            later_bars = [t for t in bar_ticks if t > tick]
            end = max(music_end_s, sec(later_bars[0]) if later_bars else music_end_s)
        chords.append(ChordSpan.from_seconds(rhythm, start, end, chord))

    if key is None:
        key = Key("C", "major", 0.0)
    melody = Melody(melody_notes, tuning_cents, rhythm, key, dur, source=str(path))
    return Arrangement(melody, parts, chords, style=style, tuning_cents=tuning_cents,
                       vocal_path=vocal_path, input_path=str(path))


def _channel_part_name(channel: int, program: int | None) -> str:
    """A part name for notes found on a MIDI channel: ``"drums"`` or the GM instrument."""
    if channel == 9:
        return "drums"
    import pretty_midi

    return pretty_midi.program_to_instrument_name(int(program or 0)).lower()
