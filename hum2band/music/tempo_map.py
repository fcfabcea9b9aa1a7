"""A MIDI tempo map built from the singer's beats, so that MIDI seconds equal recording seconds.

The band follows the singer: every counted beat the rhythm stage found becomes one beat of the
MIDI file, with a tempo event per beat. A DAW that imports the file next to the original take
then shows bar lines on the sung downbeats. Time before the first beat becomes a pickup (a
short first bar whose time signature holds just the beats before the first downbeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .key import Key
from .meter import Rhythm, beats_per_bar, quarter_notes_per_beat

TICKS_PER_QUARTER = 480


class NoteLike(Protocol):
    onset_s: float
    offset_s: float
    midi: int
    velocity: int


@dataclass
class TempoMap:
    """Beat times in seconds and their positions in MIDI ticks.

    Attributes
    ----------
    beat_times_s : np.ndarray, shape (n,)
        Strictly increasing; ``beat_times_s[0] == 0``.
    beat_ticks : np.ndarray, shape (n,)
        Tick of each beat (``i * ticks_per_beat``).
    meter : tuple of int
    first_downbeat_index : int
        Index into the beats of the first sung downbeat (a bar line of the file).
    """

    beat_times_s: np.ndarray
    meter: tuple
    first_downbeat_index: int
    ticks_per_beat: int

    @property
    def beat_ticks(self) -> np.ndarray:
        return np.arange(len(self.beat_times_s)) * self.ticks_per_beat

    @classmethod
    def from_rhythm(cls, rhythm: Rhythm, duration_s: float) -> "TempoMap":
        meter = tuple(int(x) for x in rhythm.meter)
        tpb = int(round(TICKS_PER_QUARTER * quarter_notes_per_beat(meter)))
        beats = np.asarray(rhythm.beats_s, dtype=float)
        beats = beats[beats >= 0.0]  # the file starts with the recording
        ibi_default = 60.0 / max(float(rhythm.tempo_bpm), 1.0)
        if len(beats) == 0:
            beats = np.array([0.0])
        ibi = float(np.median(np.diff(beats))) if len(beats) > 1 else ibi_default
        downbeats = np.asarray(rhythm.downbeats_s, dtype=float)
        downbeats = downbeats[downbeats >= 0.0]
        i0 = int(np.argmin(np.abs(beats - downbeats[0]))) if len(downbeats) else 0
        # Lead-in before the first beat: whole beats of about the sung length (at least one).
        lead = float(beats[0])
        n_lead = int(round(lead / ibi))
        if n_lead == 0 and lead > 0.0:
            # the first beat is within half a beat of the start: it becomes the file's beat 0
            beats = beats.copy()
            beats[0] = 0.0
        lead_beats = np.linspace(0.0, lead, n_lead, endpoint=False) if n_lead else np.zeros(0)
        times = np.concatenate([lead_beats, beats])
        # Extend after the last beat so every note falls inside the map.
        last_ibi = float(times[-1] - times[-2]) if len(times) > 1 else ibi
        last_ibi = max(last_ibi, 0.05)
        while times[-1] < duration_s + last_ibi:
            times = np.append(times, times[-1] + last_ibi)
        return cls(times, meter, n_lead + i0, tpb)

    # ---- conversions --------------------------------------------------------------------------
    def seconds_to_ticks(self, t_s: float | np.ndarray) -> np.ndarray:
        t = np.asarray(t_s, dtype=float)
        bt, tk = self.beat_times_s, self.beat_ticks.astype(float)
        ticks = np.interp(t, bt, tk)
        last_rate = (tk[-1] - tk[-2]) / (bt[-1] - bt[-2])
        ticks = np.where(t > bt[-1], tk[-1] + (t - bt[-1]) * last_rate, ticks)
        return np.round(ticks).astype(np.int64)

    def ticks_to_seconds(self, ticks: float | np.ndarray) -> np.ndarray:
        tk = np.asarray(ticks, dtype=float)
        bt, bk = self.beat_times_s, self.beat_ticks.astype(float)
        return np.interp(tk, bk, bt)

    def time_signature_events(self) -> list[tuple[int, int, int]]:
        """(tick, numerator, denominator) events: a pickup bar if needed, then the meter."""
        n, d = self.meter
        bpb = beats_per_bar(self.meter)
        pickup = self.first_downbeat_index % bpb
        if pickup == 0:
            return [(0, n, d)]
        units_per_beat = n // bpb  # 3 eighths per beat in 6/8, 1 otherwise
        return [(0, pickup * units_per_beat, d), (pickup * self.ticks_per_beat, n, d)]

    def bar_line_ticks(self, end_tick: int) -> np.ndarray:
        return np.asarray(bar_line_ticks(self.time_signature_events(), TICKS_PER_QUARTER, end_tick),
                          dtype=np.int64)

    # ---- writing ------------------------------------------------------------------------------
    def write_midi(self, path: str | Path,
                   tracks: Sequence[tuple],
                   key: Key | None = None,
                   markers: Sequence[tuple[float, str]] = (),
                   pitch_bend_cents: float = 0.0) -> None:
        """Write a type-1 MIDI file: a conductor track (tempo map, meter, key, markers) and one
        track per ``(name, gm_program, is_drum, notes)`` or ``(name, gm_program, is_drum, notes,
        controls)`` or ``(name, gm_program, is_drum, notes, controls, texts)``, where
        ``controls`` maps a controller number to its initial value at tick 0 (e.g.
        ``{10: 64, 7: 100}`` for pan and volume) and ``texts`` are text events at tick 0.

        ``pitch_bend_cents`` tunes every melodic channel by that many cents (±200 bend range).
        """
        import mido

        mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
        conductor = mido.MidiTrack()
        mid.tracks.append(conductor)
        events: list[tuple[int, int, object]] = []
        qpb = quarter_notes_per_beat(self.meter)
        times = self.beat_times_s
        for i in range(len(times) - 1):
            us_per_quarter = (times[i + 1] - times[i]) / qpb * 1e6
            us = int(np.clip(round(us_per_quarter), 1, 16_777_215))
            events.append((int(self.beat_ticks[i]), 1, mido.MetaMessage("set_tempo", tempo=us)))
        for tick, n, d in self.time_signature_events():
            events.append((tick, 0, mido.MetaMessage("time_signature", numerator=n, denominator=d)))
        if key is not None:
            name = key.tonic + ("m" if key.mode == "minor" else "")
            try:
                events.append((0, 0, mido.MetaMessage("key_signature", key=name)))
            except (ValueError, KeyError):
                pass
        for t_s, text in markers:
            events.append((int(self.seconds_to_ticks(t_s)), 2, mido.MetaMessage("marker", text=text)))
        _append_sorted(conductor, events)

        channel = 0
        for name, program, is_drum, notes, *rest in tracks:
            controls = rest[0] if rest else {}
            texts = rest[1] if len(rest) > 1 else ()
            if is_drum:
                ch = 9
            else:
                ch = channel
                channel += 1
                if channel == 9:
                    channel += 1
            tr = mido.MidiTrack()
            mid.tracks.append(tr)
            ev: list[tuple[int, int, object]] = [
                (0, 0, mido.MetaMessage("track_name", name=name)),
                (0, 1, mido.Message("program_change", channel=ch, program=int(program) & 127)),
            ]
            ev.extend((0, 0, mido.MetaMessage("text", text=str(t))) for t in texts)
            for ctl, val in controls.items():
                ev.append((0, 1, mido.Message("control_change", channel=ch, control=int(ctl),
                                              value=int(np.clip(val, 0, 127)))))
            if not is_drum and abs(pitch_bend_cents) > 0.5:
                # RPN 0 (pitch-bend range) = 2 semitones, then the tuning offset as a bend.
                for ctl, val in ((101, 0), (100, 0), (6, 2), (38, 0), (101, 127), (100, 127)):
                    ev.append((0, 1, mido.Message("control_change", channel=ch, control=ctl, value=val)))
                bend = int(np.clip(round(pitch_bend_cents / 200.0 * 8192), -8192, 8191))
                ev.append((0, 1, mido.Message("pitchwheel", channel=ch, pitch=bend)))
            for note in notes:
                on = int(self.seconds_to_ticks(note.onset_s))
                off = max(on + 1, int(self.seconds_to_ticks(note.offset_s)))
                pitch = int(np.clip(note.midi, 0, 127))
                vel = int(np.clip(note.velocity, 1, 127))
                ev.append((on, 3, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
                ev.append((off, 2, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
            _append_sorted(tr, ev)
        tmp = Path(str(path) + ".part")
        mid.save(tmp)
        tmp.replace(path)


def _append_sorted(track, events) -> None:
    import mido

    events.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=int(tick - now)))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))


def bar_line_ticks(meter_events: Sequence[tuple[int, int, int]], ticks_per_quarter: int,
                   end_tick: int) -> list[int]:
    """Ticks of every bar line before ``end_tick`` given ``(tick, numerator, denominator)`` time
    signatures; of several at the same tick the last one given counts (as a MIDI player reads
    them)."""
    events = sorted(meter_events, key=lambda e: e[0])
    out: list[int] = []
    for k, (tick, n, d) in enumerate(events):
        stop = events[k + 1][0] if k + 1 < len(events) else end_tick
        length = max(1, int(round(n * ticks_per_quarter * 4 / d)))
        out.extend(range(tick, stop, length))
    return out


def midi_downbeats_s(path: str | Path) -> list[float]:
    """Seconds of every bar line in a MIDI file, read back from its own tempo map and time
    signatures (what a DAW shows); used to check that the bars land on the sung downbeats.

    Returns
    -------
    list of float
        Bar-line times from the first bar to the last event of the file.
    """
    import mido
    import pretty_midi

    mid = mido.MidiFile(str(path))
    meters: list[tuple[int, int, int]] = [(0, 4, 4)]      # MIDI's default until the file says
    end = 0
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                meters.append((tick, msg.numerator, msg.denominator))
        end = max(end, tick)
    pm = pretty_midi.PrettyMIDI(str(path))
    return [float(pm.tick_to_time(t)) for t in bar_line_ticks(meters, mid.ticks_per_beat, end + 1)]
