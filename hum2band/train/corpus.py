"""Training corpus for the accompaniment ("parts") model: melody + chords -> band parts.

Three origins, one dataclass (:class:`PartsExample`):

* ``"mma"`` -- every lead sheet of :func:`hum2band.train.datasets.load_all` (POP909, Nottingham,
  chord-melody, OpenEWLD) and every JazzStandards chart (chords only) is rendered by Debian's
  ``mma`` (Musical MIDI Accompaniment) in ``styles_per_song`` styles that can play the song's
  meter (:data:`STYLE_GROOVES`), one groove variant per style, picked at random but seeded by the
  song id. The whole song is rendered once per style and cut into chunks of ``max_bars`` bars;
  mma's tracks are mapped to parts (:func:`part_of_track`), its solo/melody/aria tracks dropped.
* ``"groove"`` -- Groove MIDI Dataset ``beat`` performances (real drums, micro-timing kept):
  seconds -> beats with the session bpm from ``info.csv`` (the drummers played to a click that
  starts on a downbeat at 0 s), style labels mapped by :data:`GMD_STYLE`. No melody, no chords.
* ``"pop909"`` -- POP909's PIANO track (the real accompaniment) on the song's annotated beat
  grid, with the song's melody and chords; style "ballad" under 80 bpm, else "pop".

Time unit
---------
Counted beats of the song (a quarter note in 4/4 and 3/4, a dotted quarter in 6/8); beat 0 is
the first downbeat of the chunk and a bar is ``beats_per_bar`` beats. Pickups follow
:mod:`hum2band.train.datasets`: the song is shifted so the pickup sits at the end of a padded first bar
(nothing is dropped); that bar has no chord, so mma plays drums only there. Songs in 2/2 are read
as 4/4 (beats doubled), 2/4 songs as 4/4 (two bars merged into one); other meters (9/8, 6/4, 3/2,
...) are left out. Meters in the corpus: (4, 4), (3, 4), (6, 8).

mma and 6/8
-----------
One MIDI quarter note of mma's output is one *mma beat*. For 6/8 the grooves differ:
``68March`` has ``Time 2`` (mma beat = counted beat), ``68Swing`` has ``Time 6`` (mma beat = an
eighth note, three per counted beat) and ``Ballad68`` has ``Time 4`` with its six eighths placed
at mma beats 1, 1.66, 2.33, 3, 3.66, 4.33 (its doc: "multiply the real tempo by 2"), i.e. one
mma bar is ONE 6/8 bar and two mma beats make a counted beat -- not a 12/8 bar of two 6/8 bars.
:func:`render_with_mma` converts MIDI ticks to counted beats with the groove's ratio
(:data:`MMA_BEATS_PER_COUNTED_BEAT`) and writes the tempo in mma beats.

Chord onsets are snapped to a half beat (4/4, 3/4) or a third of a beat (6/8: an eighth note)
before rendering; the chords stored in an mma example are the snapped ones that were rendered.

Cache
-----
Pickle shards under ``cache_dir/parts-corpus-v1/<tag>/`` (``cache_dir`` defaults to
``~/.cache/hum2band``), one per group of songs; a shard is written when finished, so an
interrupted build resumes. ``refresh=True`` rebuilds every shard.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import pickle
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import InputError, OptionError
from ..music.chords import QUALITIES, ChordSymbol
from ..music.key import PITCH_CLASS_NAMES
from ..music.leadsheet import LeadSheet, seconds_to_beats, split_of
from ..music.styles import STYLE_GROOVES, STYLE_NAMES
from . import datasets as ds

log = logging.getLogger(__name__)

CORPUS_VERSION = 1
ORIGINS = ("mma", "groove", "pop909")
SOURCES = ("pop909", "nottingham", "chord-melody", "openewld", "jazz-standards", "groove")
PART_NAMES = ("drums", "bass", "keys", "guitar", "pads")
STYLES = STYLE_NAMES
METERS = ((4, 4), (3, 4), (6, 8))


#: mma's ``Time`` (mma beats per mma bar) of each groove used above.
GROOVE_TIME: dict[str, int] = {g: 4 for s in STYLE_GROOVES.values() for g in s.get((4, 4), [])}
GROOVE_TIME.update({g: 3 for s in STYLE_GROOVES.values() for g in s.get((3, 4), [])})
GROOVE_TIME.update({"Ballad68": 4, "68March": 2, "68Swing": 6})

#: mma beats (MIDI quarter notes of mma's output) per counted beat of the song.
MMA_BEATS_PER_COUNTED_BEAT: dict[str, int] = {g: 1 for g in GROOVE_TIME}
MMA_BEATS_PER_COUNTED_BEAT.update({"68Swing": 3, "Ballad68": 2})

#: Counted-beat tempo range per style (4/4 and 3/4) the song tempo is clamped to.
TEMPO_RANGE_BPM: dict[str, tuple[float, float]] = {
    "pop": (76, 128), "rock": (100, 150), "ballad": (60, 80), "folk": (84, 140),
    "country": (80, 140), "swing": (110, 180), "jazz-ballad": (55, 80), "bossa nova": (110, 150),
    "latin": (95, 140), "funk": (85, 115), "reggae": (90, 150), "waltz": (90, 180),
}
#: Tempo ranges in 6/8 (dotted quarters per minute).
TEMPO_RANGE_68_BPM: dict[str, tuple[float, float]] = {"ballad": (40, 66), "folk": (80, 130)}

#: Groove MIDI style label (first part, or the whole "a/b" label) -> corpus style. Left out:
#: afrobeat, highlife, gospel, blues, middleeastern, neworleans/secondline, jazz/march (no style
#: of the twelve plays them). soul -> funk (GMD's soul grooves are R&B/Motown backbeats around
#: 100 bpm, the feel of mma's R&B/DSoul), soul/motown -> pop, hiphop -> funk, jazz/fusion and
#: jazz/funk -> funk, latin/brazilian-bossa -> bossa nova, afrocuban/calypso -> reggae (mma's
#: reggae stand-in is Calypso/Ska).
GMD_STYLE: dict[str, str] = {
    "rock": "rock", "punk": "rock", "pop": "pop", "dance": "pop", "soul/motown": "pop",
    "funk": "funk", "hiphop": "funk", "soul": "funk", "neworleans/funk": "funk",
    "jazz/funk": "funk", "jazz/fusion": "funk", "jazz": "swing", "latin": "latin",
    "afrocuban": "latin", "latin/brazilian-bossa": "bossa nova", "afrocuban/calypso": "reggae",
    "reggae": "reggae", "country": "country",
}
_GMD_DROP = {"neworleans/secondline", "jazz/march"}

#: JazzStandards ``Rhythm`` label -> style hint; tempo (quarter bpm) when the chart gives none.
JAZZ_RHYTHM: dict[str, tuple[str, float]] = {
    "Medium Swing": ("swing", 140), "Up Tempo Swing": ("swing", 200),
    "Medium Up Swing": ("swing", 170), "Slow Swing": ("swing", 110), "Ballad": ("jazz-ballad", 65),
    "Waltz": ("waltz", 150), "Bossa Nova": ("bossa nova", 130), "Latin": ("latin", 120),
    "Samba": ("latin", 110), "Afro": ("latin", 120), "Latin-Swing": ("latin", 130),
    "Calypso": ("reggae", 120), "Funk": ("funk", 100), "Even 8ths": ("pop", 110),
    "Rock Pop": ("rock", 120), "Slow Rock": ("pop", 80), "Even 16ths": ("funk", 100),
    "Medium Slow": ("swing", 110),
}
#: OpenEWLD Discogs genre -> style hints.
GENRE_HINTS: dict[str, tuple[str, ...]] = {
    "Pop": ("pop", "ballad"), "Rock": ("rock",), "Jazz": ("swing", "jazz-ballad"),
    "Folk, World, & Country": ("folk", "country"), "Funk / Soul": ("funk",), "Latin": ("latin",),
    "Reggae": ("reggae",), "Blues": ("swing",), "folk": ("folk",),
}

MMA_BIN = os.environ.get("HUM2BAND_MMA", "mma")
_MMA_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4", "7": "7",
    "maj7": "M7", "min7": "m7", "minmaj7": "mM7", "hdim7": "m7b5", "dim7": "dim7", "maj6": "6",
    "min6": "m6", "9": "9", "maj9": "M9", "min9": "m9", "7sus4": "7sus",
}
# A slash bass mma would ignore (not in the chord or its scale): add it as a seventh/sixth.
_SLASH_FIX = {("maj", 10): "7", ("maj", 11): "maj7", ("maj", 9): "maj6", ("min", 10): "min7",
              ("min", 11): "minmaj7", ("min", 9): "min6"}


# ---- the example ------------------------------------------------------------------------------
@dataclass
class PartsExample:
    """One training example: a melody and chords with the band parts that play them.

    Attributes
    ----------
    example_id : str
        Unique, e.g. ``"mma/nottingham/jigs/12/c0/folk/68March"``.
    origin : str
        ``"mma"``, ``"groove"`` or ``"pop909"``.
    source : str
        Lead-sheet source: pop909, nottingham, chord-melody, openewld, jazz-standards, groove.
    song_id : str
    split : str
        ``"train"``, ``"valid"`` or ``"test"``, by song.
    style : str
        One of :data:`STYLES`.
    groove : str
        mma groove name, or the Groove MIDI style label.
    meter : tuple of int
        (4, 4), (3, 4) or (6, 8).
    beats_per_bar : int
        Counted beats per bar (4, 3, 2).
    tempo_bpm : float
        Counted beats per minute.
    tonic_pc : int
        Key tonic pitch class 0-11 (0 if unknown).
    mode : str
        ``"major"`` or ``"minor"``.
    n_bars : int
    melody : np.ndarray, shape (N, 3), float32
        onset_beat, offset_beat, midi. May be empty.
    chords : list of (start_beat, end_beat, ChordSymbol)
        May be empty.
    parts : dict of str -> np.ndarray, shape (M, 4), float32
        Part name (:data:`PART_NAMES`) -> onset_beat, duration_beats, midi, velocity; drums use
        GM percussion keys.
    """

    example_id: str
    origin: str
    source: str
    song_id: str
    split: str
    style: str
    groove: str
    meter: tuple
    beats_per_bar: int
    tempo_bpm: float
    tonic_pc: int
    mode: str
    n_bars: int
    melody: np.ndarray
    chords: list
    parts: dict = field(default_factory=dict)

    @property
    def n_beats(self) -> int:
        return self.n_bars * self.beats_per_bar


# ---- small helpers ----------------------------------------------------------------------------
def split_name(source: str, song_id: str) -> str:
    """:func:`hum2band.music.leadsheet.split_of` with ``"validation"`` written ``"valid"``."""
    s = split_of(source, song_id)
    return "valid" if s == "validation" else s


def _seed(*parts) -> int:
    return int(hashlib.sha1("/".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:8], 16)


def _empty(cols: int) -> np.ndarray:
    return np.zeros((0, cols), np.float32)


def _cut(notes: np.ndarray, lo: float, hi: float, offset_col: bool) -> np.ndarray:
    """Notes with onset in ``[lo, hi)``, shifted by ``-lo`` and cut at ``hi``.

    ``offset_col``: column 1 is an offset (melody) rather than a duration (parts).
    """
    if len(notes) == 0:
        return _empty(notes.shape[1] if notes.ndim == 2 else 3)
    eps = 1e-6
    m = (notes[:, 0] >= lo - eps) & (notes[:, 0] < hi - eps)
    out = notes[m].astype(np.float64).copy()
    if offset_col:
        out[:, 1] = np.minimum(out[:, 1], hi)
    else:
        out[:, 1] = np.minimum(out[:, 1], hi - out[:, 0])
    out[:, 0] -= lo
    out[:, 0] = np.maximum(out[:, 0], 0.0)
    if offset_col:
        out[:, 1] -= lo
    return out.astype(np.float32)


def _cut_chords(chords, lo: float, hi: float) -> list:
    out = []
    for s, e, c in chords:
        s2, e2 = max(s, lo), min(e, hi)
        if e2 > s2 + 1e-6:
            out.append((float(s2 - lo), float(e2 - lo), c))
    return out


def _chunk_ranges(n_bars: int, max_bars: int, min_bars: int = 4) -> list[tuple[int, int]]:
    """Bar ranges ``[b0, b1)`` of at most ``max_bars``; a tail under ``min_bars`` bars is dropped
    (unless it is the whole song)."""
    out = []
    for b0 in range(0, n_bars, max_bars):
        b1 = min(n_bars, b0 + max_bars)
        if b1 - b0 >= min(min_bars, n_bars):
            out.append((b0, b1))
    return out


# ---- songs normalised for rendering -----------------------------------------------------------
@dataclass
class _Song:
    source: str
    song_id: str
    meter: tuple
    beats_per_bar: int
    tempo_bpm: float
    tonic_pc: int
    mode: str
    melody: np.ndarray          # (N, 3) float32 onset, offset, midi
    chords: list                # [(start, end, ChordSymbol)]
    n_bars: int
    hints: tuple = ()


def _song_from_leadsheet(ls: LeadSheet) -> _Song | None:
    meter = tuple(ls.meter)
    scale, tempo = 1.0, float(ls.tempo_bpm)
    if meter == (2, 2):
        meter, scale, tempo = (4, 4), 2.0, tempo * 2.0
    elif meter == (2, 4):
        meter = (4, 4)
    if meter not in METERS:
        return None
    bpb = 2 if meter == (6, 8) else meter[0]
    mel = np.array([(n.onset_beat * scale, n.offset_beat * scale, n.midi) for n in ls.melody],
                   np.float32).reshape(-1, 3)
    chords = [(float(c.start_beat) * scale, float(c.end_beat) * scale, c.chord) for c in ls.chords]
    end = max([float(mel[:, 1].max()) if len(mel) else 0.0] + [e for _, e, _ in chords])
    n_bars = int(math.ceil(end / bpb - 1e-6))
    if ls.source == "nottingham":
        hints = ("folk",)
    elif ls.source == "openewld":
        hints = GENRE_HINTS.get(ls.genre, ())
    else:
        hints = ()
    key = ls.key
    return _Song(ls.source, ls.song_id, meter, bpb, tempo, key.tonic_pitch_class if key else 0,
                 key.mode if key else "major", mel, chords, n_bars, hints)


_JAZZ_FIXES = [(re.compile(r"^([A-G][b#]?)07"), r"\1dim7"), (re.compile(r"^([A-G][b#]?)0$"), r"\1dim"),
               (re.compile(r"^([A-G][b#]?)0/"), r"\1dim/"), (re.compile(r"m/maj7"), "mMaj7"),
               (re.compile(r"7b9sus|7b13sus|7sus4?b9|9sus"), "7sus4"),
               (re.compile(r"^([A-G][b#]?)maug"), r"\1aug")]


def parse_jazz_chord(token: str) -> ChordSymbol | None:
    """One JazzStandards chord token (``"Ab07"`` = Ab dim7, ``"F#0"`` = F# dim,
    ``"Cm/maj7"`` = minor-major seventh); None for an empty slot or an unreadable token."""
    t = re.sub(r"\(.*?\)", "", token).strip()
    if not t:
        return None
    for pat, rep in _JAZZ_FIXES:
        t = pat.sub(rep, t)
    try:
        c = ChordSymbol.parse(t)
    except OptionError:
        # "Am/maj7/G#"-like leftovers: read the part before the first slash.
        try:
            c = ChordSymbol.parse(t.split("/")[0])
        except OptionError:
            return None
    return None if c.is_no_chord else c


def read_jazz_chart(path: Path) -> _Song | None:
    """A JazzStandards JSON chart as a chord-only song (repeats with endings unfolded: each
    ending is played after the section's main segment).

    Chords of a bar (``","``-separated) share it equally; an empty slot holds the previous chord;
    parenthesised alternates are dropped. Unknown key: the root/mode of the last chord.
    """
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    ts = d.get("TimeSignature") or "4/4"
    meter = {"4/4": (4, 4), "3/4": (3, 4)}.get(ts)
    if meter is None:
        return None
    bpb = meter[0]
    bars: list[str] = []
    for sec in d.get("Sections", []):
        main = sec.get("MainSegment", {}).get("Chords", "")
        endings = [e.get("Chords", "") for e in sec.get("Endings", [])] or [None]
        for e in endings:
            bars.extend(main.split("|") if main else [])
            if e:
                bars.extend(e.split("|"))
    onsets: list[tuple[float, ChordSymbol]] = []
    prev = None
    for bi, bar in enumerate(bars):
        slots = bar.split(",")
        for si, tok in enumerate(slots):
            c = parse_jazz_chord(tok)
            if c is not None and c != prev:
                onsets.append((bi * bpb + si * bpb / len(slots), c))
                prev = c
    if not onsets:
        return None
    end = len(bars) * bpb
    chords = []
    for i, (t, c) in enumerate(onsets):
        t1 = onsets[i + 1][0] if i + 1 < len(onsets) else end
        if t1 > t:
            chords.append((float(t), float(t1), c))
    rhythm = d.get("Rhythm") or "Medium Swing"
    style, tempo = JAZZ_RHYTHM.get(rhythm, ("swing", 140.0))
    if rhythm in ("Even 8ths", "Rock Pop", "Slow Rock"):
        style = ("pop", "rock")[_seed("jazz", d.get("Title", "")) % 2] if rhythm == "Even 8ths" else style
    key_txt = d.get("Key")
    if key_txt:
        mode = "minor" if key_txt.endswith("min") else "major"
        tonic_pc = ChordSymbol.parse(key_txt[:-3] if mode == "minor" else key_txt).root
    else:
        last = chords[-1][2]
        tonic_pc = last.root
        mode = "minor" if last.quality in ("min", "min7", "min6", "minmaj7", "min9") else "major"
    title = d.get("Title") or Path(path).stem
    return _Song("jazz-standards", title, meter, bpb, float(tempo), int(tonic_pc), mode,
                 _empty(3), chords, len(bars), (style,))


def load_jazz_standards(root: Path, limit: int | None = None) -> list[_Song]:
    paths = sorted((root / "jazz-standards" / "JazzStandards").glob("*.json"))
    out = []
    for p in paths:
        try:
            s = read_jazz_chart(p)
        except (ValueError, KeyError, OptionError) as exc:
            log.warning("jazz-standards: skipped %s (%s)", p.name, exc)
            s = None
        if s is not None:
            out.append(s)
        if limit is not None and len(out) >= limit:
            break
    return out


# ---- chords -> mma --------------------------------------------------------------------------
_MMA_SCALES: dict[str, tuple[int, ...]] | None = None


def _mma_scales() -> dict[str, tuple[int, ...]]:
    """mma chord name suffix -> pitch classes its bass may take (chord tones and its scale),
    read from mma's own chord table; chord tones only if the table is not found."""
    global _MMA_SCALES
    if _MMA_SCALES is not None:
        return _MMA_SCALES
    table: dict[str, tuple[int, ...]] = {}
    path = Path("/usr/share/mma/MMA/chordtable.py")
    if path.exists():
        ns: dict = {}
        try:
            import warnings

            with warnings.catch_warnings():  # its doc strings hold LaTeX escapes
                warnings.simplefilter("ignore")
                exec(compile(path.read_text(), str(path), "exec"), ns)  # a plain table module
            cl = ns["chordlist"]
            for name, (notes, scale, _doc) in cl.items():
                table[name] = tuple(sorted({n % 12 for n in notes} | {n % 12 for n in scale}))
            for alias, target, _doc in ns.get("aliases", ()):
                if target in table:
                    table[alias] = table[target]
        except Exception as exc:  # an unexpected table format: fall back to chord tones
            log.warning("could not read mma's chord table (%s): slash basses limited to chord tones", exc)
            table = {}
    _MMA_SCALES = table
    return table


def mma_chord_name(chord: ChordSymbol) -> str:
    """The chord in mma's syntax, e.g. ``"Bbm7b5"``, ``"CmM7"``, ``"C/E"``, ``"D7/C"``.

    mma plays a slash bass only if it is in the chord or the chord's scale; a bass a seventh or
    sixth above the root becomes part of the chord (``D/C`` -> ``D7/C``); any other bass mma
    would ignore is dropped (the chord is played in root position).
    """
    if chord.is_no_chord:
        return "z"
    quality = chord.quality
    iv = (chord.bass - chord.root) % 12
    if iv:
        if quality in QUALITIES and iv in {i % 12 for i in QUALITIES[quality]}:
            pass
        else:
            suffix = _MMA_SUFFIX[quality]
            key = suffix if suffix else "M"
            allowed = _mma_scales().get(key, tuple(i % 12 for i in QUALITIES[quality]))
            if iv not in allowed:
                fix = _SLASH_FIX.get((quality, iv))
                if fix is not None:
                    quality = fix
                else:
                    iv = 0
    name = PITCH_CLASS_NAMES[chord.root] + _MMA_SUFFIX[quality]
    if iv:
        name += "/" + PITCH_CLASS_NAMES[chord.bass]
    return name


def snap_chords(chords, grid_beats: float, end_beat: float | None = None) -> list:
    """Chord starts/ends snapped to ``grid_beats``; spans that vanish are dropped, and each
    chord is held until the next one if the gap between them is under one grid step."""
    out = []
    for s, e, c in chords:
        s2 = round(s / grid_beats) * grid_beats
        e2 = round(e / grid_beats) * grid_beats
        if end_beat is not None:
            e2 = min(e2, end_beat)
        if out and s2 < out[-1][1]:
            s2 = out[-1][1]
        if e2 > s2 + 1e-9:
            out.append((float(s2), float(e2), c))
    return out


def mma_chart(chords, n_beats: float, groove: str, beats_per_bar: int) -> list[str]:
    """Bar lines of an mma chart (``"C@1 G7@3"``), one per mma bar, covering ``n_beats``.

    ``chords`` are ``(start_beat, end_beat, ChordSymbol)`` in counted beats; beats without a chord
    are ``z`` (drums only).
    """
    time_sig = GROOVE_TIME[groove]
    r = MMA_BEATS_PER_COUNTED_BEAT[groove]
    bar_beats = time_sig / r  # counted beats per mma bar
    if abs(bar_beats / beats_per_bar - round(bar_beats / beats_per_bar)) > 1e-9:
        raise OptionError(f"groove {groove} cannot play {beats_per_bar} beats to the bar")
    events: list[tuple[float, str]] = []
    t_prev_end = 0.0
    for s, e, c in sorted(chords, key=lambda x: x[0]):
        if s > t_prev_end + 1e-6 or not events:
            if s > 1e-6:
                events.append((t_prev_end, "z"))
        events.append((s, mma_chord_name(c)))
        t_prev_end = e
    events.append((t_prev_end, "z"))
    events = [(t, n) for t, n in events if t < n_beats - 1e-6]
    if not events:
        events = [(0.0, "z")]
    n_mma_bars = int(math.ceil(n_beats / bar_beats - 1e-9))
    lines = []
    ei = 0
    current = "z"
    for m in range(n_mma_bars):
        t0, t1 = m * bar_beats, (m + 1) * bar_beats
        while ei < len(events) and events[ei][0] <= t0 + 1e-6:
            current = events[ei][1]
            ei += 1
        items = [(1.0, current)]
        while ei < len(events) and events[ei][0] < t1 - 1e-6:
            t, name = events[ei]
            pos = round(1.0 + (t - t0) * r, 3)
            if pos <= items[-1][0] + 1e-6:
                items[-1] = (items[-1][0], name)
            else:
                items.append((pos, name))
            current = name
            ei += 1
        lines.append(" ".join(n if abs(p - 1.0) < 1e-9 else f"{n}@{p:g}" for p, n in items))
    return lines


def part_of_track(track_name: str, channel: int, program: int) -> str | None:
    """Part an mma MIDI track's note belongs to (None: a melody/solo track, left out).

    Drum tracks (channel 10) -> drums; Bass/Walk -> bass; Chord/Arpeggio/Scale/Plectrum by GM
    program: 0-23 (pianos, chromatic percussion, organs) keys, 24-31 guitar, 32-39 bass,
    40-55 and 88-95 (strings, ensembles, choirs, synth pads) pads, 56-79 (brass, reeds, pipes)
    pads, 104-107 (sitar, banjo, shamisen, koto) guitar, anything else keys.
    """
    kind = track_name.split("-")[0].strip().lower()
    if channel == 9 or kind == "drum":
        return "drums"
    if kind in ("solo", "melody", "aria"):
        return None
    if kind in ("bass", "walk"):
        return "bass"
    p = int(program)
    if p < 24:
        return "keys"
    if p < 32:
        return "guitar"
    if p < 40:
        return "bass"
    if p < 80 or 88 <= p < 96:
        return "pads"
    if 104 <= p < 108:
        return "guitar"
    return "keys"


def midi_to_parts(midi_path: str | os.PathLike, beats_per_mma_beat: float, end_beat: float) -> dict[str, np.ndarray]:
    """mma's MIDI file -> ``{part: (M, 4) array}`` in counted beats, cut at ``end_beat``."""
    import mido

    mf = mido.MidiFile(str(midi_path))
    tpb = float(mf.ticks_per_beat)
    acc: dict[str, list] = {}
    for tr in mf.tracks:
        name = tr.name or ""
        tick = 0
        program = {}
        active: dict[tuple[int, int], list] = {}
        for msg in tr:
            tick += msg.time
            if msg.type == "program_change":
                program[msg.channel] = msg.program
            elif msg.type == "note_on" and msg.velocity > 0:
                active.setdefault((msg.channel, msg.note), []).append(
                    (tick, msg.velocity, program.get(msg.channel, 0)))
            elif msg.type in ("note_off", "note_on"):
                stack = active.get((msg.channel, msg.note))
                if not stack:
                    continue
                t_on, vel, prog = stack.pop(0)
                part = part_of_track(name, msg.channel, prog)
                if part is None:
                    continue
                on = t_on / tpb / beats_per_mma_beat
                if on >= end_beat - 1e-6:
                    continue
                dur = min((tick - t_on) / tpb / beats_per_mma_beat, end_beat - on)
                acc.setdefault(part, []).append((on, max(dur, 1.0 / 192), msg.note, vel))
    out = {}
    for part, rows in acc.items():
        a = np.array(sorted(rows), np.float32).reshape(-1, 4)
        out[part] = a
    return out


def render_with_mma(chords, meter, beats_per_bar: int, tempo_bpm: float, groove: str,
                    n_bars: int, seed: int = 1, workdir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Render a chord chart with mma in ``groove`` and return its parts.

    Parameters
    ----------
    chords : list of (start_beat, end_beat, ChordSymbol)
        Counted beats from the first downbeat; beats without a chord get drums only.
    meter : tuple of int
        (4, 4), (3, 4) or (6, 8); ``groove`` must play it (see :data:`STYLE_GROOVES`).
    beats_per_bar : int
    tempo_bpm : float
        Counted beats per minute (only the MIDI tempo; the returned times are in beats).
    groove : str
        An mma stdlib groove from :data:`GROOVE_TIME`.
    n_bars : int
        Length rendered; notes are cut at ``n_bars * beats_per_bar`` beats.
    seed : int
        mma's ``RndSeed`` (its random timing/volume/skips), so renderings are repeatable.

    Returns
    -------
    dict of str -> np.ndarray, shape (M, 4), float32
        Part (drums/bass/keys/guitar/pads) -> onset_beat, duration_beats, midi, velocity.

    Raises
    ------
    OptionError
        Unknown groove or a meter the groove cannot play.
    InputError
        mma is missing or fails.
    """
    if groove not in GROOVE_TIME:
        raise OptionError(f"groove '{groove}' is not one I know: use one of {', '.join(sorted(GROOVE_TIME))}")
    r = MMA_BEATS_PER_COUNTED_BEAT[groove]
    if GROOVE_TIME[groove] != beats_per_bar * r or tuple(meter) not in \
            {m for s in STYLE_GROOVES.values() for m, gs in s.items() if groove in gs}:
        raise OptionError(f"groove {groove} cannot play {meter[0]}/{meter[1]}")
    if shutil.which(MMA_BIN) is None:
        raise InputError("mma is not installed: install it with 'apt-get install mma' (or set HUM2BAND_MMA)")
    n_beats = float(n_bars * beats_per_bar)
    lines = mma_chart(chords, n_beats, groove, beats_per_bar)
    text = "\n".join([f"Tempo {max(20.0, tempo_bpm * r):.1f}", f"Groove {groove}",
                      f"RndSeed {int(seed) % 100000}"]
                     + [f"{i + 1} {ln}" for i, ln in enumerate(lines)]) + "\n"
    tmp = tempfile.mkdtemp(prefix="h2b-mma-", dir=workdir)
    try:
        src, out = os.path.join(tmp, "song.mma"), os.path.join(tmp, "song.mid")
        with open(src, "w") as f:
            f.write(text)
        proc = subprocess.run([MMA_BIN, "-w", "-xNOCREDIT", "-m", "5000", "-f", out, src],
                              capture_output=True, text=True, timeout=120, cwd=tmp)
        if proc.returncode != 0 or not os.path.exists(out):
            msg = (proc.stdout + proc.stderr).strip().splitlines()
            err = next((m for m in msg if "Error" in m), msg[-1] if msg else "no output")
            raise InputError(f"mma failed on groove {groove}: {err}")
        return midi_to_parts(out, r, n_beats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- style choice -----------------------------------------------------------------------------
def styles_for_meter(meter) -> list[str]:
    return [s for s in STYLES if tuple(meter) in STYLE_GROOVES[s]]


def pick_styles(source: str, song_id: str, meter, n: int, hints: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``n`` (style, groove) pairs for a song: the first hint the meter allows first, the rest at
    random among the styles that can play the meter; one groove variant each. Seeded by song."""
    rng = random.Random(_seed("styles", source, song_id))
    ok = styles_for_meter(meter)
    chosen = [h for h in hints if h in ok][:1]
    rest = [s for s in ok if s not in chosen]
    rng.shuffle(rest)
    chosen = (chosen + rest)[:n]
    return [(s, rng.choice(STYLE_GROOVES[s][tuple(meter)])) for s in chosen]


def style_tempo(style: str, meter, tempo_bpm: float) -> float:
    lo, hi = (TEMPO_RANGE_68_BPM if tuple(meter) == (6, 8) else TEMPO_RANGE_BPM).get(style, (60, 180))
    return float(min(max(tempo_bpm, lo), hi))


# ---- per-origin example builders (run in worker processes) -------------------------------------
def examples_from_song_mma(song: _Song, max_bars: int, styles_per_song: int) -> list[PartsExample]:
    """Render one song in ``styles_per_song`` styles and cut it into chunks."""
    grid = 1.0 / 3.0 if song.meter == (6, 8) else 0.5
    n_beats = song.n_bars * song.beats_per_bar
    chords = snap_chords(song.chords, grid, n_beats)
    if not chords or song.n_bars < 1:
        return []
    split = split_name(song.source, song.song_id)
    out = []
    for style, groove in pick_styles(song.source, song.song_id, song.meter, styles_per_song, song.hints):
        tempo = style_tempo(style, song.meter, song.tempo_bpm)
        try:
            parts = render_with_mma(chords, song.meter, song.beats_per_bar, tempo, groove, song.n_bars,
                                    seed=_seed("mma", song.source, song.song_id, groove))
        except (InputError, subprocess.TimeoutExpired) as exc:
            log.warning("mma: skipped %s/%s in %s (%s)", song.source, song.song_id, groove, exc)
            continue
        for k, (b0, b1) in enumerate(_chunk_ranges(song.n_bars, max_bars)):
            lo, hi = b0 * song.beats_per_bar, b1 * song.beats_per_bar
            ch = _cut_chords(chords, lo, hi)
            if not ch:
                continue
            p = {name: _cut(a, lo, hi, offset_col=False) for name, a in parts.items()}
            p = {name: a for name, a in p.items() if len(a)}
            if "drums" not in p and "bass" not in p:
                continue
            out.append(PartsExample(
                f"mma/{song.source}/{song.song_id}/c{k}/{style}/{groove}", "mma", song.source,
                song.song_id, split, style, groove, tuple(song.meter), song.beats_per_bar, tempo,
                song.tonic_pc, song.mode, b1 - b0, _cut(song.melody, lo, hi, offset_col=True), ch, p))
    return out


def gmd_style(label: str) -> str | None:
    """Corpus style of a Groove MIDI style label (``"latin/brazilian-bossa"``), None if dropped."""
    label = label.strip().lower()
    if label in _GMD_DROP:
        return None
    if label in GMD_STYLE:
        return GMD_STYLE[label]
    return GMD_STYLE.get(label.split("/")[0])


def examples_from_gmd(row: dict, root: Path, max_bars: int) -> list[PartsExample]:
    """One Groove MIDI ``beat`` performance -> chunks of drums (micro-timing kept).

    Seconds -> beats: ``beat = t_s * bpm / 60`` (first downbeat at 0 s: the sessions were
    recorded to a click; the tests check that kicks and snares fall near the eighth-note grid).
    """
    import pretty_midi

    style = gmd_style(row["style"])
    meter = {"4-4": (4, 4), "3-4": (3, 4)}.get(row["time_signature"])
    if style is None or meter is None or row["beat_type"] != "beat":
        return []
    bpm = float(row["bpm"])
    pm = pretty_midi.PrettyMIDI(str(root / "groove" / row["midi_filename"]))
    rows = [(n.start * bpm / 60.0, (n.end - n.start) * bpm / 60.0, n.pitch, n.velocity)
            for inst in pm.instruments for n in inst.notes]
    if not rows:
        return []
    notes = np.array(sorted(rows), np.float32)
    bpb = meter[0]
    n_bars = int(math.ceil(float(notes[:, 0].max()) / bpb + 1e-6))
    split = {"validation": "valid"}.get(row["split"], row["split"])
    song_id = row["id"]
    out = []
    for k, (b0, b1) in enumerate(_chunk_ranges(n_bars, max_bars, min_bars=2)):
        lo, hi = b0 * bpb, b1 * bpb
        d = _cut(notes, lo, hi, offset_col=False)
        if len(d) < 8:
            continue
        out.append(PartsExample(f"groove/{song_id}/c{k}", "groove", "groove", song_id, split, style,
                                row["style"], meter, bpb, bpm, 0, "major", b1 - b0, _empty(3), [],
                                {"drums": d}))
    return out


def pop909_piano_beats(folder: Path, ls: LeadSheet) -> np.ndarray | None:
    """POP909 PIANO notes on the lead sheet's beat grid: (M, 4) onset_beat, duration_beats,
    midi, velocity. Uses the beat annotations and shift of
    :func:`hum2band.train.datasets.read_pop909_song` (checked against the lead sheet's first note)."""
    import pretty_midi

    beats = np.loadtxt(folder / "beat_midi.txt", ndmin=2)
    beat_s, down = beats[:, 0], beats[:, 2] > 0.5
    down_idx = np.flatnonzero(down)
    bpb = ls.beats_per_bar
    first_number = float((bpb - down_idx[0] % bpb) % bpb)
    pm = pretty_midi.PrettyMIDI(str(folder / f"{folder.name}.mid"))
    tracks = {i.name.strip().upper(): i for i in pm.instruments}
    piano, mel = tracks.get("PIANO"), tracks.get("MELODY")
    if piano is None or mel is None or not piano.notes or not mel.notes:
        return None
    mel_on = seconds_to_beats(np.array([n.start for n in mel.notes]), beat_s, first_number)
    starts = [float(mel_on.min())]
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        f = line.split()
        if len(f) >= 3 and not ChordSymbol.parse(f[2]).is_no_chord:
            starts.append(float(seconds_to_beats(np.array([float(f[0])]), beat_s, first_number)[0]))
    lowest = min(starts)
    shift = float(np.ceil(-lowest / bpb) * bpb) if lowest < 0 else 0.0
    first_mel = float(np.sort(mel_on)[0] + shift)
    if abs(first_mel - ls.melody[0].onset_beat) > 1e-3:
        return None
    on = seconds_to_beats(np.array([n.start for n in piano.notes]), beat_s, first_number) + shift
    off = seconds_to_beats(np.array([n.end for n in piano.notes]), beat_s, first_number) + shift
    a = np.stack([on, np.maximum(off - on, 1.0 / 48), [n.pitch for n in piano.notes],
                  [n.velocity for n in piano.notes]], axis=1)
    return a[np.argsort(a[:, 0], kind="stable")].astype(np.float32)


def examples_from_pop909(ls: LeadSheet, root: Path, max_bars: int) -> list[PartsExample]:
    song = _song_from_leadsheet(ls)
    if song is None:
        return []
    piano = pop909_piano_beats(root / "pop909" / ls.song_id, ls)
    if piano is None:
        return []
    style = "ballad" if ls.tempo_bpm < 80 else "pop"
    split = split_name("pop909", ls.song_id)
    n_bars = max(song.n_bars, int(math.ceil(float((piano[:, 0]).max()) / song.beats_per_bar - 1e-6)))
    out = []
    for k, (b0, b1) in enumerate(_chunk_ranges(n_bars, max_bars)):
        lo, hi = b0 * song.beats_per_bar, b1 * song.beats_per_bar
        keys = _cut(piano, lo, hi, offset_col=False)
        if len(keys) < 4:
            continue
        out.append(PartsExample(f"pop909/{ls.song_id}/c{k}", "pop909", "pop909", ls.song_id, split,
                                style, "pop909-piano", tuple(song.meter), song.beats_per_bar,
                                float(ls.tempo_bpm), song.tonic_pc, song.mode, b1 - b0,
                                _cut(song.melody, lo, hi, offset_col=True),
                                _cut_chords(song.chords, lo, hi), {"keys": keys}))
    return out


# ---- shards -------------------------------------------------------------------------------------
@dataclass
class _Shard:
    name: str
    kind: str                 # "mma", "groove", "pop909"
    items: list
    root: str
    max_bars: int
    styles_per_song: int


def _build_shard(shard: _Shard, path: Path) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(shard.root)
    out: list[PartsExample] = []
    for it in shard.items:
        try:
            if shard.kind == "mma":
                out.extend(examples_from_song_mma(it, shard.max_bars, shard.styles_per_song))
            elif shard.kind == "groove":
                out.extend(examples_from_gmd(it, root, shard.max_bars))
            else:
                out.extend(examples_from_pop909(it, root, shard.max_bars))
        except Exception as exc:  # one bad song must not stop the corpus; it is logged
            sid = getattr(it, "song_id", None) or (it.get("id") if isinstance(it, dict) else "?")
            log.warning("%s: skipped %s (%s: %s)", shard.name, sid, type(exc).__name__, exc)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return len(out)


def _gmd_rows(root: Path, limit: int | None) -> list[dict]:
    info = root / "groove" / "info.csv"
    if not info.exists():
        return []
    with open(info, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["beat_type"] == "beat"]
    rows = [r for r in rows if gmd_style(r["style"]) is not None and r["time_signature"] in ("4-4", "3-4")]
    return rows[:limit]


def _item_id(item) -> str:
    if isinstance(item, dict):
        return str(item.get("id", ""))
    return f"{item.source}/{item.song_id}"


def _plan(root: Path, sources, origins, max_bars, styles_per_song, limit, cache_dir,
          refresh_leadsheets=False, shard_size=40) -> list[_Shard]:
    shards: list[_Shard] = []

    def add(kind, source, items, size=shard_size):
        for i in range(0, len(items), size):
            chunk = items[i:i + size]
            # the shard's songs are part of its name: a changed data folder never reuses a stale shard
            ids = hashlib.sha1("|".join(_item_id(x) for x in chunk).encode("utf-8")).hexdigest()[:8]
            shards.append(_Shard(f"{kind}-{source}-{i // size:03d}-{ids}", kind, chunk, str(root),
                                 max_bars, styles_per_song))

    ls_sources = [s for s in ds.SOURCES if s in sources]
    sheets: dict[str, list[LeadSheet]] = {}
    for s in ls_sources:
        if not (root / ds.SOURCE_FOLDERS[s]).is_dir():
            continue
        lc = cache_dir / "leadsheets" if cache_dir is not None else None
        sheets[s] = ds.load_source(s, root, lc, refresh_leadsheets, limit=limit)
    if "mma" in origins:
        for s, lst in sheets.items():
            songs = [x for x in (_song_from_leadsheet(ls) for ls in lst) if x is not None]
            add("mma", s, songs)
        if "jazz-standards" in sources and (root / "jazz-standards").is_dir():
            add("mma", "jazz-standards", load_jazz_standards(root, limit), shard_size * 2)
    if "pop909" in origins and "pop909" in sheets:
        add("pop909", "pop909", sheets["pop909"])
    if "groove" in origins and "groove" in sources:
        add("groove", "groove", _gmd_rows(root, limit), 80)
    return shards


def corpus_dir(data_dir=None, cache_dir=None, max_bars: int = 32, styles_per_song: int = 2,
               limit: int | None = None) -> Path:
    """Folder of the pickle shards for these settings."""
    root = ds.resolve_data_dir(data_dir)
    base = Path(cache_dir) if cache_dir else ds.default_cache_dir().parent
    tag = hashlib.sha1(f"{root}|{max_bars}|{styles_per_song}|{limit}".encode()).hexdigest()[:10]
    return base / f"parts-corpus-v{CORPUS_VERSION}" / tag


def build_corpus(data_dir=None, cache_dir=None, jobs: int = 2, max_bars: int = 32,
                 styles_per_song: int = 2, sources: Iterable[str] = SOURCES,
                 origins: Iterable[str] = ORIGINS, refresh: bool = False,
                 progress: Callable[[int, int, str], None] | None = None,
                 limit: int | None = None) -> list[PartsExample]:
    """Build (or load from the shard cache) the parts corpus.

    Parameters
    ----------
    data_dir : path, optional
        Data folder (default ``$HUM2BAND_DATA`` or ``../shared/data``).
    cache_dir : path, optional
        Cache root (default ``~/.cache/hum2band``); shards go to ``parts-corpus-v1/<tag>/``.
    jobs : int
        Worker processes.
    max_bars : int
        Longest chunk in bars.
    styles_per_song : int
        mma styles rendered per song.
    sources, origins : iterable of str
        Subsets of :data:`SOURCES` and :data:`ORIGINS`.
    refresh : bool
        Rebuild every shard (finished shards are otherwise kept, so a build resumes).
    progress : callable, optional
        Called as ``progress(done_shards, total_shards, shard_name)``.
    limit : int, optional
        Only the first N songs/performances of each source (for tests); cached separately.

    Returns
    -------
    list of PartsExample
        Sorted by ``example_id``; only the requested sources/origins.
    """
    sources, origins = tuple(sources), tuple(origins)
    bad = [s for s in sources if s not in SOURCES] + [o for o in origins if o not in ORIGINS]
    if bad:
        raise OptionError(f"unknown corpus source/origin {', '.join(bad)}: use {', '.join(SOURCES + ORIGINS)}")
    if max_bars < 1 or styles_per_song < 1:
        raise OptionError("max_bars and styles_per_song must be at least 1")
    root = ds.resolve_data_dir(data_dir)
    out_dir = corpus_dir(root, cache_dir, max_bars, styles_per_song, limit)
    out_dir.mkdir(parents=True, exist_ok=True)
    cdir = Path(cache_dir) if cache_dir else None
    shards = _plan(root, sources, origins, max_bars, styles_per_song, limit, cdir)
    todo = [s for s in shards if refresh or not (out_dir / f"{s.name}.pkl").exists()]
    done = len(shards) - len(todo)
    if todo and "mma" in {s.kind for s in todo} and shutil.which(MMA_BIN) is None:
        raise InputError("mma is not installed: install it with 'apt-get install mma' (or set HUM2BAND_MMA)")
    if todo:
        if jobs <= 1:
            for s in todo:
                _build_shard(s, out_dir / f"{s.name}.pkl")
                done += 1
                if progress:
                    progress(done, len(shards), s.name)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("fork") if hasattr(os, "fork") else None
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futs = {pool.submit(_build_shard, s, out_dir / f"{s.name}.pkl"): s for s in todo}
                for fut in as_completed(futs):
                    fut.result()
                    done += 1
                    if progress:
                        progress(done, len(shards), futs[fut].name)
    examples: list[PartsExample] = []
    for s in shards:
        with open(out_dir / f"{s.name}.pkl", "rb") as f:
            examples.extend(_Unpickler(f).load())
    return sorted(examples, key=lambda e: e.example_id)


def load_corpus(data_dir=None, cache_dir=None, split: str | None = None, **kwargs) -> list[PartsExample]:
    """:func:`build_corpus` (from the cache when built), optionally one split only."""
    ex = build_corpus(data_dir, cache_dir, **kwargs)
    if split is not None:
        split = "valid" if split == "validation" else split
        ex = [e for e in ex if e.split == split]
    return ex


class _Unpickler(ds.CacheUnpickler):
    main_module = __name__


def summary(examples: list[PartsExample]) -> str:
    """Counts per origin, style, meter, split and part, as text."""
    lines = [f"{len(examples)} examples, {sum(e.n_bars for e in examples)} bars"]
    for title, key in (("origin", lambda e: e.origin), ("style", lambda e: e.style),
                       ("meter", lambda e: f"{e.meter[0]}/{e.meter[1]}"), ("split", lambda e: e.split),
                       ("source", lambda e: e.source)):
        c = Counter(key(e) for e in examples)
        lines.append(f"{title:7s} " + "  ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    c = Counter(p for e in examples for p in e.parts)
    lines.append("parts   " + "  ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    c = Counter((e.origin, e.style) for e in examples)
    lines.append("origin x style " + "  ".join(f"{o}/{s}: {v}" for (o, s), v in sorted(c.items())))
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m hum2band.train.corpus [--data DIR] [--jobs 2] [--limit N]``: build and count."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-bars", type=int, default=32)
    ap.add_argument("--styles-per-song", type=int, default=2)
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--origins", default=",".join(ORIGINS))
    ap.add_argument("--refresh", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from . import corpus as c  # pickle the classes under their module, not __main__

    t0 = time.perf_counter()

    def prog(done, total, name):
        print(f"[{time.perf_counter() - t0:6.0f} s] {done}/{total} {name}", flush=True)

    ex = c.build_corpus(a.data, a.cache, a.jobs, a.max_bars, a.styles_per_song,
                        a.sources.split(","), a.origins.split(","), a.refresh, prog, a.limit)
    print(c.summary(ex))
    print(f"time {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
