"""Exports for people: the multi-track MIDI file with the mix's balance, a lead sheet (MusicXML)
and a piano-roll picture (PNG).

* :func:`write_arrangement_midi` -- ``arrangement.mid`` with each track's volume (CC 7) set
  from the balance the render gave its stem (:func:`midi_volumes`), so the parts come into a DAW
  balanced as in the mix.

* :func:`write_leadsheet_musicxml` -- the melody snapped to the singer's beat grid (sixteenths or
  triplet eighths, chosen per beat; sixteenths in compound meters) with chord symbols as
  ``<harmony>``, the meter and the key. Opens in MuseScore, Finale, Sibelius, Dorico and music21.
* :func:`write_pianoroll_png` -- pitch contour, melody notes, chords, band parts and bar lines
  against the recording's time axis.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from ..music.arrangement import Arrangement, ChordSpan, seconds_to_beats
from ..music.chords import ChordSymbol
from ..music.key import PITCH_CLASS_NAMES, Key
from ..music.melody import Melody
from ..music.meter import beats_per_bar, quarter_notes_per_beat

#: Our chord qualities as MusicXML ``<kind>`` values (7sus4 is written as sus4 plus a b7 degree).
MUSICXML_KIND = {
    "maj": "major", "min": "minor", "dim": "diminished", "aug": "augmented",
    "sus2": "suspended-second", "sus4": "suspended-fourth", "7": "dominant",
    "maj7": "major-seventh", "min7": "minor-seventh", "minmaj7": "major-minor",
    "hdim7": "half-diminished", "dim7": "diminished-seventh", "maj6": "major-sixth",
    "min6": "minor-sixth", "9": "dominant-ninth", "maj9": "major-ninth", "min9": "minor-ninth",
    "7sus4": "suspended-fourth",
}

#: Note values (in quarter notes) a tied piece may have, longest first.
_PIECES = tuple(Fraction(x) for x in ("4", "3", "2", "3/2", "1", "3/4", "2/3", "1/2", "3/8",
                                      "1/3", "1/4", "1/8", "1/6", "1/12"))


@dataclass
class SheetNote:
    """A quantized melody note on the lead sheet: positions in beats from the first bar line."""

    start_beat: Fraction
    end_beat: Fraction
    midi: int


# ---- MIDI --------------------------------------------------------------------------------------
#: CC 7 value of the loudest part in the exported MIDI (the customary default channel volume).
LOUDEST_CC7 = 100


def part_levels_db(parts, style: str | None, gains_db: dict | None = None) -> list[float]:
    """Each part's level in the mix (dB, on one common but arbitrary scale), in order.

    Parameters
    ----------
    parts : list of Part
    style : str or None
        The arrangement's style (for the fallback).
    gains_db : dict, optional
        Stem name -> the gain the render applied to that stem relative to the raw FluidSynth render
        (:attr:`hum2band.perform.render.Mix.part_gains_db`): a part found there gets it, as the
        same soundfont in a DAW needs the same gain to sound as in the mix.

    A part without a measured gain (no render, or a silent stem) falls back to its role's
    ``balance_lu`` in the style plus its ``gain_db``, moved onto the measured parts' scale by
    the median of (measured gain - balance_lu - gain_db) over them (by 0 when none was measured).
    """
    from .render import stem_names
    from .soundfonts import balance_lu

    gains = dict(gains_db or {})
    names = stem_names(parts)
    fallback = [balance_lu(p.name, style or None) + float(p.gain_db) for p in parts]
    measured = [gains[n] - f for n, f in zip(names, fallback) if n in gains]
    shift = float(np.median(measured)) if measured else 0.0
    return [float(gains[n]) if n in gains else f + shift for n, f in zip(names, fallback)]


def midi_volumes(parts, style: str | None, gains_db: dict | None = None) -> list[int]:
    """CC 7 (channel volume) per part, in order, that carries the mix's balance into a DAW.

    The curve is General MIDI's recommended one (GM Level 2, RP-036), gain_dB =
    40·log10(cc/127): each part's level from :func:`part_levels_db` is taken relative to the
    loudest part, which sits at :data:`LOUDEST_CC7` (100), so a part ``x`` dB under it gets
    ``round(100 · 10**(x/40))``, clamped to 1..127 (a part more than ~80 dB under sits at 1).
    """
    levels = part_levels_db(parts, style, gains_db)
    if not levels:
        return []
    top = max(levels)
    return [int(np.clip(round(LOUDEST_CC7 * 10.0 ** ((x - top) / 40.0)), 1, 127)) for x in levels]


def write_arrangement_midi(path: str | os.PathLike, arrangement: Arrangement,
                           gains_db: dict | None = None) -> list[int]:
    """Write ``arrangement.mid`` (see :meth:`hum2band.music.arrangement.Arrangement.write_midi`)
    with each part's track volume (CC 7 at time 0 on its channel) from :func:`midi_volumes`;
    the melody track stays at :data:`LOUDEST_CC7`. The arrangement itself is not changed.

    Returns
    -------
    list of int
        The CC 7 value of each part, in the order of ``arrangement.parts``.
    """
    volumes = midi_volumes(arrangement.parts, arrangement.style, gains_db)
    # the parts keep their own gain_db, recorded beside the volume, so that reading the file
    # back (hum2band render) does not add the balance the renderer applies again
    arrangement.write_midi(path, volumes=volumes)
    return volumes


# ---- quantization -----------------------------------------------------------------------------
def _subdivisions(meter: Sequence[int]) -> tuple[int, ...]:
    """Grid candidates per counted beat: 4 or 3 in simple meters, 6 (sixteenths) in compound."""
    return (6,) if quarter_notes_per_beat(meter) == 1.5 else (4, 3)


def _snap(points: np.ndarray, grids: tuple[int, ...], decide: np.ndarray | None = None
          ) -> list[Fraction]:
    """Snap beat positions to a grid chosen per beat.

    The grid of a beat is the one that fits the ``decide`` points in it (the onsets) with the
    smaller total error, triplets only when they halve the error of sixteenths; a beat without
    such points uses the first grid.
    """
    points = np.asarray(points, dtype=float)
    decide = np.ones(len(points), bool) if decide is None else np.asarray(decide, bool)
    beat_of = np.floor(points + 1e-9).astype(int)
    grid_of_beat: dict[int, int] = {}
    for b in np.unique(beat_of):
        sel = points[(beat_of == b) & decide]
        best = 0
        if len(grids) > 1 and len(sel):
            errs = [np.abs(sel * g - np.round(sel * g)).sum() / g for g in grids]
            if errs[1] < 0.5 * errs[0]:
                best = 1
        grid_of_beat[int(b)] = grids[best]
    return [Fraction(int(round(p * grid_of_beat[int(b)])), grid_of_beat[int(b)])
            for p, b in zip(points, beat_of)]


#: A rest shorter than this many beats between two notes is sung breath or articulation, not
#: notated: the earlier note is held to the next one.
LEGATO_GAP_BEATS = Fraction(1, 2)


def quantize_melody(melody: Melody, meter: Sequence[int] | None = None
                    ) -> tuple[list[SheetNote], float]:
    """The melody on the lead-sheet grid.

    Returns
    -------
    notes : list of SheetNote
        Monophonic, in order, positions in beats counted from the first bar line of the sheet.
        Onsets and offsets are snapped to the grid of their beat (chosen from the onsets in
        it); a note followed by a gap of at most :data:`LEGATO_GAP_BEATS` is held to the next.
    origin_beat : float
        That bar line as a beat position of the singer's grid (see
        :func:`hum2band.music.arrangement.seconds_to_beats`); time ``t`` is at sheet beat
        ``seconds_to_beats(rhythm, t) - origin_beat``.
    """
    rhythm = melody.rhythm
    meter = tuple(meter or rhythm.meter)
    bpb = beats_per_bar(meter)
    origin = _origin_beat(melody, bpb)
    if not melody.notes:
        return [], origin
    ons = seconds_to_beats(rhythm, [n.onset_s for n in melody.notes]) - origin
    offs = seconds_to_beats(rhythm, [n.offset_s for n in melody.notes]) - origin
    k = len(ons)
    snapped = _snap(np.concatenate([ons, offs]), _subdivisions(meter),
                    decide=np.arange(2 * k) < k)
    unit = Fraction(1, _subdivisions(meter)[0])
    notes: list[SheetNote] = []
    for i, n in enumerate(melody.notes):
        s, e = snapped[i], snapped[k + i]
        if e <= s:
            e = s + unit
        if notes and s <= notes[-1].start_beat:
            continue  # two onsets on one grid point: keep the first note
        if notes and notes[-1].end_beat > s:
            notes[-1].end_beat = s  # overlapping (legato) notes: the earlier one ends here
        notes.append(SheetNote(max(s, Fraction(0)), e, int(n.midi)))
    for a, b in zip(notes[:-1], notes[1:]):
        if b.start_beat - a.end_beat <= LEGATO_GAP_BEATS:
            a.end_beat = b.start_beat
    return notes, origin


def _origin_beat(melody: Melody, bpb: int) -> float:
    """The bar line at or before the first note, in the singer's beats (whole bars before the
    first sung downbeat)."""
    rhythm = melody.rhythm
    if len(rhythm.downbeats_s):
        d0 = float(np.round(seconds_to_beats(rhythm, rhythm.downbeats_s[0])))
    else:
        d0 = 0.0
    first = min([n.onset_s for n in melody.notes], default=None)
    if first is None:
        return d0
    b = float(seconds_to_beats(rhythm, first))
    early = d0 - b - 0.25  # a note sung up to a sixteenth early still starts on the downbeat
    if early > 0:
        return d0 - bpb * math.ceil(early / bpb)
    return d0


def _split(start: Fraction, end: Fraction, bar_beats: int) -> list[tuple[Fraction, Fraction]]:
    """Cut [start, end) at bar lines, and at beat boundaries where an end is off the beat."""
    cuts = {start, end}
    b = math.floor(start / bar_beats) * bar_beats + bar_beats
    while b < end:
        cuts.add(Fraction(b))
        b += bar_beats
    if start.denominator != 1 and math.ceil(start) < end:
        cuts.add(Fraction(math.ceil(start)))
    if end.denominator != 1 and math.floor(end) > start:
        cuts.add(Fraction(math.floor(end)))
    pts = sorted(cuts)
    return list(zip(pts[:-1], pts[1:]))


def _pieces(quarters: Fraction) -> list[Fraction]:
    """A duration in quarter notes as note values that can be written (greedy, longest first)."""
    out, left = [], quarters
    while left > 0:
        piece = next((p for p in _PIECES if p <= left), None)
        if piece is None:
            raise ValueError(f"cannot write a duration of {quarters} quarter notes")
        out.append(piece)
        left -= piece
    return out


def _m21_pitch_name(pc: int) -> str:
    return PITCH_CLASS_NAMES[pc % 12].replace("b", "-")


def m21_chord_symbol(chord: ChordSymbol):
    """A music21 ``ChordSymbol`` (or ``NoChord``) for one of ours, built from root, kind, bass."""
    from music21 import harmony

    if chord.is_no_chord:
        return harmony.NoChord()
    kind = MUSICXML_KIND[chord.quality]
    cs = harmony.ChordSymbol(root=_m21_pitch_name(chord.root), kind=kind,
                             bass=_m21_pitch_name(chord.bass))
    if chord.quality == "7sus4":
        cs.addChordStepModification(harmony.ChordStepModification("add", 7, -1))
    return cs


def write_leadsheet_musicxml(path: str | os.PathLike, melody: Melody,
                             chords: Sequence[ChordSpan], key: Key | None = None,
                             meter: Sequence[int] | None = None, title: str = "") -> None:
    """Write the lead sheet: quantized melody, chord symbols, meter and key.

    Parameters
    ----------
    path : str or PathLike
        The ``.musicxml`` file (uncompressed MusicXML, written atomically).
    melody : Melody
        Notes in seconds and the singer's beats they are snapped to.
    chords : sequence of ChordSpan
        Each chord is written at its start, snapped to the nearest half beat.
    key : Key, optional
        Key signature (default the melody's key).
    meter : (int, int), optional
        Time signature (default the melody's meter).
    title : str
        Shown as the work title.
    """
    from music21 import key as m21key
    from music21 import metadata, note, stream, tie
    from music21 import meter as m21meter

    meter = tuple(int(x) for x in (meter or melody.rhythm.meter))
    key = key or melody.key
    bpb = beats_per_bar(meter)
    qpb = Fraction(quarter_notes_per_beat(meter)).limit_denominator(8)
    notes, origin = quantize_melody(melody, meter)

    chord_marks: dict[Fraction, ChordSymbol] = {}
    for span in chords:
        pos = Fraction(int(round((float(span.start_beat) - origin) * 2)), 2)
        if pos >= 0:
            chord_marks[pos] = span.chord  # a later chord on the same half beat wins
    end = max([n.end_beat for n in notes] + [p + 1 for p in chord_marks] + [Fraction(1)])
    n_bars = math.ceil(end / bpb)

    # Events in beats: notes, and rests filling every gap up to the end of the last bar.
    events: list[tuple[Fraction, Fraction, int | None]] = []
    pos = Fraction(0)
    for n in notes:
        if n.start_beat > pos:
            events.append((pos, n.start_beat, None))
        events.append((n.start_beat, n.end_beat, n.midi))
        pos = n.end_beat
    if pos < n_bars * bpb:
        events.append((pos, Fraction(n_bars * bpb), None))

    part = stream.Part()
    part.partName = "Melody"
    measures = []
    for i in range(n_bars):
        m = stream.Measure(number=i + 1)
        if i == 0:
            m.insert(0, m21key.Key(_m21_pitch_name(key.tonic_pitch_class), key.mode))
            m.insert(0, m21meter.TimeSignature(f"{meter[0]}/{meter[1]}"))
        measures.append(m)
    for start, stop, midi in events:
        segments = [(a, b) for a, b in _split(start, stop, bpb)]
        pieces = []
        for a, b in segments:
            offset_q = (a - (math.floor(a / bpb) * bpb)) * qpb
            bar = math.floor(a / bpb)
            for d in _pieces((b - a) * qpb):
                pieces.append((bar, offset_q, d))
                offset_q += d
        for j, (bar, offset_q, d) in enumerate(pieces):
            if midi is None:
                el = note.Rest()
            else:
                el = note.Note(midi)
                if len(pieces) > 1:
                    el.tie = tie.Tie("start" if j == 0 else "stop" if j == len(pieces) - 1 else "continue")
            el.duration.quarterLength = d
            measures[bar].insert(offset_q, el)
    for pos_beat, chord in sorted(chord_marks.items()):
        bar = math.floor(pos_beat / bpb)
        if bar < n_bars:
            measures[bar].insert((pos_beat - bar * bpb) * qpb, m21_chord_symbol(chord))
    for m in measures:
        part.append(m)
    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = title or Path(melody.source).stem or "hum2band"
    score.insert(0, part)

    target = Path(path)
    tmp = target.with_name(f".{target.name}.part.musicxml")
    try:
        score.write("musicxml", fp=str(tmp))
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---- piano roll -------------------------------------------------------------------------------
_PART_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22")


#: The drawn pitch contour keeps to this many semitones of the note it belongs to: a scoop into
#: the note is drawn, a tracker's octave slip or the previous note's reverberation is not.
CONTOUR_SPAN_SEMITONES = 3.0


def voice_contour(times_s: np.ndarray, midi_pitch: np.ndarray, notes: Sequence,
                  periodicity: np.ndarray | None = None) -> np.ndarray:
    """The sung-pitch contour as the piano roll draws it: the voice only.

    Parameters
    ----------
    times_s : np.ndarray, shape (n_frames,)
        Frame times, s.
    midi_pitch : np.ndarray, shape (n_frames,)
        Fractional MIDI pitch per frame, nan where none was found.
    notes : sequence of Note
        The melody: a frame is drawn only inside a note (``onset_s <= t < offset_s``).
    periodicity : np.ndarray, shape (n_frames,), optional
        The tracker's confidence; frames under 0.5 are not drawn (breath, noise).

    Returns
    -------
    np.ndarray, shape (n_frames,)
        The contour, with frames an octave off their note folded back to it, and nan outside the
        notes, where unpitched, and where still more than :data:`CONTOUR_SPAN_SEMITONES` from the
        note's pitch (between the notes a tracker reads pauses, breaths and the room's tail, and
        draws dives to C1-G2).
    """
    t = np.asarray(times_s, dtype=float)
    pitch = np.asarray(midi_pitch, dtype=float)
    out = np.full(len(pitch), np.nan)
    for n in notes:
        inside = (t >= float(n.onset_s)) & (t < float(n.offset_s))
        d = pitch[inside] - float(n.midi_pitch)
        octaves = np.round(d / 12.0)
        d = np.where(np.abs(d - 12.0 * octaves) < 1.5, d - 12.0 * octaves, d)  # octave slips
        out[inside] = np.where(np.abs(d) <= CONTOUR_SPAN_SEMITONES, float(n.midi_pitch) + d, np.nan)
    if periodicity is not None:
        out[np.asarray(periodicity, dtype=float) < 0.5] = np.nan
    return out


def write_pianoroll_png(path: str | os.PathLike, melody: Melody, pitch_track=None,
                        chords: Sequence[ChordSpan] = (), parts: Sequence = (),
                        width_px: int = 1600, dpi: int = 100) -> None:
    """Draw the take and the band against time and write a PNG.

    Parameters
    ----------
    path : str or PathLike
    melody : Melody
        Its notes are drawn as black bars at their sung (fractional) pitch, its downbeats as bar
        lines.
    pitch_track : PitchTrack, optional
        Anything with ``times_s`` and ``midi_pitch`` (fractional MIDI, nan where unvoiced), drawn
        as a thin line over the melody's notes only (:func:`voice_contour`).
    chords : sequence of ChordSpan
        Labels along the top.
    parts : sequence of Part
        Coloured bars, one colour per part; drum parts get a strip of their own below the pitches.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, 6.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    end_s = max([float(melody.duration_s)] + [float(n.offset_s) for n in melody.notes]
                + [float(c.end_s) for c in chords]
                + [float(n.offset_s) for p in parts for n in p.notes] + [1.0])
    pitched = [float(n.midi) for p in parts if not p.is_drum for n in p.notes]
    pitched += [float(n.midi_pitch) for n in melody.notes]
    lo = min(pitched, default=48.0) - 3
    hi = max(pitched, default=72.0) + 3
    drum_parts = [p for p in parts if p.is_drum]
    drum_lo = lo - 4 * len(drum_parts)

    from matplotlib.collections import PolyCollection

    def boxes(x0, width, y0, height):
        """(N, 4, 2) rectangle vertices: one PolyCollection draws them all at once."""
        x0, width, y0 = (np.asarray(v, dtype=float) for v in (x0, width, y0))
        x1, y1 = x0 + width, y0 + height
        return np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                         np.stack([x0, y1], 1)], 1)

    for i, p in enumerate(parts):
        colour = _PART_COLOURS[i % len(_PART_COLOURS)]
        on = np.array([float(n.onset_s) for n in p.notes])
        off = np.array([float(n.offset_s) for n in p.notes])
        if len(on):
            if p.is_drum:
                row = lo - 4 * (drum_parts.index(p) + 1)
                verts = boxes(on, np.maximum(off - on, 0.03), np.full(len(on), row + 0.5), 3.0)
                ax.add_collection(PolyCollection(verts, facecolors=colour, alpha=0.6, linewidths=0))
            else:
                mid = np.array([float(n.midi) for n in p.notes])
                verts = boxes(on, off - on, mid - 0.4, 0.8)
                ax.add_collection(PolyCollection(verts, facecolors=colour, alpha=0.45, linewidths=0))
        ax.plot([], [], color=colour, lw=6, alpha=0.6, label=p.name)
    if melody.notes:
        on = np.array([float(n.onset_s) for n in melody.notes])
        off = np.array([float(n.offset_s) for n in melody.notes])
        mp = np.array([float(n.midi_pitch) for n in melody.notes])
        ax.add_collection(PolyCollection(boxes(on, off - on, mp - 0.4, 0.8), facecolors="none",
                                         edgecolors="black", linewidths=1.2))
    ax.plot([], [], color="black", lw=1.2, label="melody")
    if pitch_track is not None:
        contour = voice_contour(pitch_track.times_s, pitch_track.midi_pitch, melody.notes,
                                getattr(pitch_track, "periodicity", None))
        ax.plot(np.asarray(pitch_track.times_s), contour, color="crimson", lw=0.8, label="sung pitch")
    ax.vlines(np.asarray(melody.rhythm.beats_s, dtype=float), drum_lo, hi, colors="0.88", lw=0.5, zorder=0)
    ax.vlines(np.asarray(melody.rhythm.downbeats_s, dtype=float), drum_lo, hi, colors="0.6", lw=0.8, zorder=0)
    top = hi + 0.5
    for c in chords:
        ax.text(float(c.start_s), top, c.chord.label, fontsize=9, va="bottom", ha="left",
                clip_on=False)
    ax.set_xlim(0.0, end_s)
    ax.set_ylim(drum_lo, hi)
    ticks = [m for m in range(int(math.ceil(lo)), int(hi) + 1) if m % 12 == 0 or m % 12 == 7]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{PITCH_CLASS_NAMES[m % 12]}{m // 12 - 1}" for m in ticks])
    ax.set_xlabel("time in the recording (s)")
    title = Path(melody.source).name if melody.source else "hum2band"
    ax.set_title(title, loc="left", pad=18)
    ax.legend(loc="upper right", fontsize=8, ncol=min(6, len(parts) + 2))
    fig.tight_layout()
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part.png")
    try:
        fig.savefig(str(tmp), format="png")
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()
