"""Lead sheets (melody + chords on a beat grid) from the melody/chord data sets in the data folder.

Every source is read into one dataclass, :class:`LeadSheet`. Sources and what is read:

* ``pop909`` -- POP909: the MELODY track of ``NNN/NNN.mid``, chords from ``chord_midi.txt`` and the
  beat grid from ``beat_midi.txt`` (seconds are turned into beats by linear interpolation between
  the annotated beats), key from the first line of ``key_audio.txt``. ``N`` spans are left out.
  The meter is the most common number of beats between annotated downbeats (4 -> 4/4, 3 -> 3/4;
  6, found in 27 songs, is read as 3/4 with a downbeat marked every second bar).
* ``nottingham`` -- Nottingham folk tunes, ``ABC_cleaned/*.abc`` with quoted chords, read with
  music21's ABC parser (about 0.15 s a tune; read once, then cached).
* ``chord-melody`` -- shiehn chord-melody MusicXML (``*.xml``), read with :func:`read_musicxml`.
* ``openewld`` -- OpenEWLD ``.mxl`` lead sheets, the same reader, plus the most-tagged Discogs
  genre of each work from ``OpenEWLD.db``.

Time unit
---------
All times are **counted beats** (the beat a musician taps: a quarter note in 4/4, 3/4 and 2/4, a
dotted quarter in 6/8, 9/8 and 12/8; see :func:`hum2band.melody.beats_per_bar`). Beat 0 is a
downbeat: a pickup is shifted so that bar ``k`` spans beats ``[k*bpb, (k+1)*bpb)`` with
``bpb = beats_per_bar``. Repeats in the scores are not unfolded (melody and chords stay aligned).

Split
-----
:func:`split_of` assigns each song by a hash of ``"source/song_id"`` (SHA-1, first 8 hex digits as
an integer, modulo 100): 0-79 train, 80-89 validation, 90-99 test. It depends on nothing but the
name, so a song stays in its split when files are added or removed.

Cache
-----
Parsed sources are pickled under ``~/.cache/hum2band/leadsheets`` (or ``cache_dir``), one file per
source, keyed by the absolute data path and :data:`CACHE_VERSION`; ``refresh=True`` re-reads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import sqlite3
import time
import zipfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .chords import ChordSymbol
from .errors import InputError
from .melody import PITCH_CLASS_NAMES, Key, beats_per_bar, quarter_notes_per_beat

log = logging.getLogger(__name__)

SOURCES = ("pop909", "nottingham", "chord-melody", "openewld")
SPLITS = ("train", "validation", "test")
#: Bumped per source whenever its reader changes, so stale caches are re-read.
CACHE_VERSION = {"pop909": 2, "nottingham": 1, "chord-melody": 2, "openewld": 2}
PROJECT_ROOT = Path(__file__).resolve().parents[1]


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

    @property
    def end_beat(self) -> float:
        ends = [n.offset_beat for n in self.melody] + [c.end_beat for c in self.chords]
        return max(ends) if ends else 0.0

    @property
    def n_bars(self) -> int:
        return int(np.ceil(self.end_beat / self.beats_per_bar - 1e-9))

    @property
    def split(self) -> str:
        return split_of(self.source, self.song_id)

    def chord_at(self, beat: float) -> ChordSymbol | None:
        """The chord sounding at ``beat`` (None in a gap)."""
        for c in self.chords:
            if c.start_beat <= beat < c.end_beat:
                return c.chord
        return None


# ---- split, paths, cache ---------------------------------------------------------------------
def split_of(source: str, song_id: str) -> str:
    """Deterministic split by song: 80 % train, 10 % validation, 10 % test (see module doc)."""
    h = int(hashlib.sha1(f"{source}/{song_id}".encode("utf-8")).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("validation" if h < 90 else "test")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$HUM2BAND_DATA``, else ``../shared/data`` next to the project root."""
    if data_dir is None:
        data_dir = os.environ.get("HUM2BAND_DATA") or (PROJECT_ROOT / ".." / "shared" / "data")
    p = Path(data_dir).expanduser().resolve()
    if not p.is_dir():
        raise InputError(f"data folder {p} does not exist: pass --data DIR or set HUM2BAND_DATA")
    return p


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hum2band" / "leadsheets"


def load_source(source: str, data_dir=None, cache_dir=None, refresh: bool = False,
                limit: int | None = None) -> list[LeadSheet]:
    """Read one source (cached). ``limit`` reads only the first N songs and skips the cache."""
    if source not in LOADERS:
        raise InputError(f"unknown data source '{source}': use one of {', '.join(SOURCES)}")
    root = resolve_data_dir(data_dir)
    if limit is not None:
        return LOADERS[source](root, limit)
    cdir = Path(cache_dir) if cache_dir else default_cache_dir()
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    path = cdir / f"{source}-v{CACHE_VERSION[source]}-{tag}.pkl"
    if path.exists() and not refresh:
        with open(path, "rb") as f:
            return _Unpickler(f).load()
    sheets = LOADERS[source](root, None)
    cdir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(sheets, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return sheets


class _Unpickler(pickle.Unpickler):
    """Reads caches written by ``python -m hum2band.datasets`` (classes pickled as ``__main__``)."""

    def find_class(self, module, name):
        if module == "__main__":
            module = __name__
        return super().find_class(module, name)


def load_all(data_dir=None, sources=SOURCES, cache_dir=None, refresh: bool = False,
             split: str | None = None) -> dict[str, list[LeadSheet]]:
    """Every source that exists in the data folder, as ``{source: [LeadSheet, ...]}``.

    Sources whose folder is missing are left out. ``split`` keeps only that split.
    """
    root = resolve_data_dir(data_dir)
    out = {}
    for s in sources:
        if not (root / SOURCE_FOLDERS[s]).is_dir():
            continue
        sheets = load_source(s, root, cache_dir, refresh)
        out[s] = [ls for ls in sheets if split is None or ls.split == split]
    return out


# ---- shared helpers -------------------------------------------------------------------------
def _key_from_pc(pc: int, mode: str) -> Key:
    return Key(PITCH_CLASS_NAMES[pc % 12], mode, 1.0)


def _spans_from_onsets(onsets: list[tuple[float, ChordSymbol]], end: float) -> list[ChordSpan]:
    """Chords that last until the next chord (the last one until ``end``); N.C. leaves a gap."""
    onsets = sorted(onsets, key=lambda x: x[0])
    spans = []
    for i, (t, c) in enumerate(onsets):
        t_next = onsets[i + 1][0] if i + 1 < len(onsets) else max(end, t)
        if t_next > t and not c.is_no_chord:
            spans.append(ChordSpan(float(t), float(t_next), c))
    return spans


def _monophonic(notes: list[BeatNote]) -> list[BeatNote]:
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


def _finish(song_id, source, notes, chord_onsets_or_spans, meter, key, tempo_bpm, genre, title,
            shift_beats: float, spans_given: bool = False) -> LeadSheet | None:
    notes = [BeatNote(n.onset_beat + shift_beats, n.offset_beat + shift_beats, n.midi, n.velocity)
             for n in notes]
    notes = _monophonic(notes)
    end = max([n.offset_beat for n in notes], default=0.0)
    if spans_given:
        spans = [ChordSpan(s + shift_beats, e + shift_beats, c) for s, e, c in chord_onsets_or_spans]
    else:
        onsets = [(t + shift_beats, c) for t, c in chord_onsets_or_spans]
        end = max(end, max([t for t, _ in onsets], default=0.0))
        bpb = beats_per_bar(meter)
        end = np.ceil(end / bpb - 1e-9) * bpb  # the last chord lasts to the end of its bar
        spans = _spans_from_onsets(onsets, end)
    if not notes or not spans:
        return None
    return LeadSheet(song_id, source, notes, spans, tuple(int(x) for x in meter), key,
                     beats_per_bar(meter), float(tempo_bpm), genre, title)


# ---- MusicXML (chord-melody, OpenEWLD) ------------------------------------------------------
_STEP_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_KIND_QUALITY = {
    "major": "maj", "minor": "min", "augmented": "aug", "diminished": "dim", "dominant": "7",
    "major-seventh": "maj7", "minor-seventh": "min7", "diminished-seventh": "dim7",
    "augmented-seventh": "7", "half-diminished": "hdim7", "major-minor": "minmaj7",
    "major-sixth": "maj6", "minor-sixth": "min6", "dominant-ninth": "9", "major-ninth": "maj9",
    "minor-ninth": "min9", "dominant-11th": "7sus4", "major-11th": "maj7", "minor-11th": "min7",
    "dominant-13th": "7", "major-13th": "maj7", "minor-13th": "min7",
    "suspended-second": "sus2", "suspended-fourth": "sus4", "Neapolitan": "maj", "Italian": "7",
    "French": "7", "German": "7", "pedal": "maj", "power": "maj", "Tristan": "hdim7",
    "other": "maj", "": "maj",
}


def _text(el, path, default=None):
    x = el.find(path)
    return x.text.strip() if x is not None and x.text is not None else default


def _xml_root(path: Path) -> ET.Element:
    if path.suffix.lower() == ".mxl":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.startswith("META-INF")]
            try:
                cont = ET.fromstring(z.read("META-INF/container.xml"))
                rootfile = cont.find(".//rootfile").get("full-path")
            except (KeyError, AttributeError, ET.ParseError):
                rootfile = next(n for n in names if n.endswith((".xml", ".musicxml")))
            return ET.fromstring(z.read(rootfile))
    return ET.parse(path).getroot()


@dataclass
class _Score:
    notes: list[BeatNote]       # in quarter notes here
    chords: list[tuple[float, ChordSymbol]]
    meter: tuple
    key: Key | None
    tempo_bpm_quarter: float | None
    pickup_q: float             # length of an incomplete first bar in quarter notes (0 if none)
    title: str


def read_musicxml(path: str | os.PathLike) -> _Score:
    """Melody notes and ``<harmony>`` chord symbols of the first part that has notes.

    Times are quarter notes from the start. Only the first voice of staff 1 is read; chord
    notes keep their top note later; ties are merged; grace notes are dropped.
    """
    root = _xml_root(Path(path))
    if root.tag != "score-partwise":
        raise InputError(f"{path} is not a partwise MusicXML score")
    title = _text(root, "movement-title", "") or _text(root, "work/work-title", "") or ""
    meters, keys, tempo = [], [], None
    for part in root.findall("part"):
        if part.find(".//note/pitch") is None:
            continue
        notes: list[BeatNote] = []
        chords: list[tuple[float, ChordSymbol]] = []
        divisions, transpose = 1.0, 0
        t_measure = 0.0
        first_len = None
        voice0 = None
        for mi, measure in enumerate(part.findall("measure")):
            cur, max_cur = 0.0, 0.0
            for el in measure:
                tag = el.tag
                if tag == "attributes":
                    divisions = float(_text(el, "divisions", divisions))
                    if el.find("time/beats") is not None:
                        try:
                            meters.append((t_measure, (int(_text(el, "time/beats").split("+")[0]),
                                                       int(_text(el, "time/beat-type")))))
                        except ValueError:
                            pass
                    if el.find("key/fifths") is not None:
                        fifths = int(_text(el, "key/fifths"))
                        mode = (_text(el, "key/mode", "major") or "major").lower()
                        pc = (fifths * 7) % 12
                        if mode == "minor":
                            keys.append(_key_from_pc(pc + 9, "minor"))
                        else:
                            keys.append(_key_from_pc(pc, "major"))
                    if el.find("transpose") is not None:
                        transpose = int(float(_text(el, "transpose/chromatic", "0"))) + \
                            12 * int(float(_text(el, "transpose/octave-change", "0")))
                elif tag == "sound" or (tag == "direction" and el.find("sound") is not None):
                    snd = el if tag == "sound" else el.find("sound")
                    if snd.get("tempo") and tempo is None:
                        tempo = float(snd.get("tempo"))
                elif tag == "backup":
                    cur -= float(_text(el, "duration", "0")) / divisions
                elif tag == "forward":
                    cur += float(_text(el, "duration", "0")) / divisions
                    max_cur = max(max_cur, cur)
                elif tag == "harmony":
                    step = _text(el, "root/root-step")
                    if step is None:
                        continue
                    rpc = _STEP_PC[step.upper()] + int(float(_text(el, "root/root-alter", "0")))
                    kind = _text(el, "kind", "major") or "major"
                    off = float(_text(el, "offset", "0")) / divisions
                    if abs(off) < 0.5:  # a nudge of the printed symbol, not a later chord
                        off = 0.0
                    if kind == "none":
                        chords.append((t_measure + cur + off, ChordSymbol.no_chord()))
                        continue
                    bstep = _text(el, "bass/bass-step")
                    bpc = None if bstep is None else \
                        _STEP_PC[bstep.upper()] + int(float(_text(el, "bass/bass-alter", "0")))
                    chords.append((t_measure + cur + off,
                                   ChordSymbol.make(rpc, _KIND_QUALITY.get(kind, "maj"), bpc)))
                elif tag == "note":
                    if el.find("grace") is not None or el.find("cue") is not None:
                        continue
                    dur = float(_text(el, "duration", "0")) / divisions
                    is_chord = el.find("chord") is not None
                    voice = _text(el, "voice", "1")
                    staff = _text(el, "staff", "1")
                    if voice0 is None and el.find("pitch") is not None:
                        voice0 = voice
                    start = cur - dur if is_chord else cur
                    if not is_chord:
                        cur += dur
                        max_cur = max(max_cur, cur)
                    if el.find("rest") is not None or el.find("pitch") is None:
                        continue
                    if voice != voice0 or staff != "1":
                        continue
                    midi = (int(_text(el, "pitch/octave")) + 1) * 12 + _STEP_PC[_text(el, "pitch/step").upper()] \
                        + int(round(float(_text(el, "pitch/alter", "0")))) + transpose
                    onset = t_measure + start
                    if is_chord:
                        if notes and abs(notes[-1].onset_beat - onset) < 1e-6 and midi > notes[-1].midi:
                            notes[-1].midi = midi
                        continue
                    ties = {t.get("type") for t in el.findall("tie")}
                    if "stop" in ties and notes and notes[-1].midi == midi and \
                            abs(notes[-1].offset_beat - onset) < 1e-3:
                        notes[-1].offset_beat = onset + dur
                    else:
                        notes.append(BeatNote(onset, onset + dur, midi))
            if mi == 0:
                first_len = max_cur
            t_measure += max_cur
        if not notes:
            continue
        meter = meters[0][1] if meters else (4, 4)
        bar_q = meter[0] * 4.0 / meter[1]
        pickup = first_len if first_len is not None and 0 < first_len < bar_q - 1e-6 else 0.0
        return _Score(notes, chords, meter, keys[0] if keys else None, tempo, pickup, title)
    raise InputError(f"{path} has no melody notes")


def _score_to_leadsheet(score: _Score, song_id, source, genre="") -> LeadSheet | None:
    meter = score.meter
    qpb = quarter_notes_per_beat(meter)
    bpb = beats_per_bar(meter)
    shift_beats = (bpb - score.pickup_q / qpb) if score.pickup_q > 0 else 0.0
    notes = [BeatNote(n.onset_beat / qpb, n.offset_beat / qpb, n.midi, n.velocity) for n in score.notes]
    # Harmony onsets snap to a 1/12 quarter grid (MusicXML <offset>s of a few ticks are layout).
    chords = [(round(t * 12.0) / 12.0 / qpb, c) for t, c in score.chords]
    tempo = (score.tempo_bpm_quarter / qpb) if score.tempo_bpm_quarter else 120.0
    return _finish(song_id, source, notes, chords, meter, score.key, tempo, genre, score.title,
                   shift_beats)


def _read_all(paths, reader: Callable, source: str) -> list[LeadSheet]:
    out, failed = [], 0
    for p in paths:
        try:
            ls = reader(p)
        except Exception as exc:  # one unreadable song must not stop a corpus load
            log.warning("%s: skipped %s (%s)", source, p, exc)
            ls = None
        if ls is None:
            failed += 1
        else:
            out.append(ls)
    if failed:
        log.info("%s: %d songs skipped (unreadable, no melody or no chords)", source, failed)
    return out


def load_chord_melody(root: Path, limit: int | None = None) -> list[LeadSheet]:
    paths = sorted((root / "chord-melody").glob("*.xml"))[:limit]
    return _read_all(paths, lambda p: _score_to_leadsheet(read_musicxml(p), p.stem, "chord-melody"),
                     "chord-melody")


def _openewld_genres(root: Path) -> dict[str, str]:
    db = root / "openewld" / "OpenEWLD.db"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT w.path_leadsheet, g.genre, g.occurrences FROM works w "
            "JOIN work_genres g ON g.id = w.id").fetchall()
    finally:
        con.close()
    best: dict[str, tuple[int, str]] = {}
    for path, genre, occ in rows:
        occ = occ or 0
        if path not in best or occ > best[path][0]:
            best[path] = (occ, genre)
    return {p: g for p, (_, g) in best.items()}


def load_openewld(root: Path, limit: int | None = None) -> list[LeadSheet]:
    base = root / "openewld"
    genres = _openewld_genres(root)
    paths = sorted((base / "dataset").rglob("*.mxl"))[:limit]

    def read(p: Path):
        rel = str(p.relative_to(base))
        return _score_to_leadsheet(read_musicxml(p), rel, "openewld", genres.get(rel, ""))

    return _read_all(paths, read, "openewld")


# ---- ABC (Nottingham) -----------------------------------------------------------------------
def read_abc_tunes(path: Path, source: str = "nottingham", genre: str = "folk") -> list[LeadSheet]:
    """Every tune of an ABC file with quoted chords, via music21 (song id ``"file/X"``)."""
    import music21

    opus = music21.converter.parse(str(path), format="abc")
    scores = opus.scores if hasattr(opus, "scores") else [opus]
    out = []
    for i, sc in enumerate(scores):
        number = sc.metadata.number if sc.metadata and sc.metadata.number else str(i + 1)
        song_id = f"{path.stem}/{number}"
        try:
            ls = _music21_to_leadsheet(sc, song_id, source, genre)
        except Exception as exc:  # a malformed tune is skipped, not the file
            log.warning("%s: skipped %s (%s)", source, song_id, exc)
            ls = None
        if ls is not None:
            out.append(ls)
    return out


def _music21_to_leadsheet(sc, song_id, source, genre) -> LeadSheet | None:
    from music21 import harmony

    part = sc.parts[0] if sc.parts else sc
    flat = part.flatten()
    tss = list(flat.getElementsByClass("TimeSignature"))
    ts0 = [t for t in tss if t.offset <= 0] or tss
    meter = (ts0[-1].numerator, ts0[-1].denominator) if ts0 else (4, 4)
    keys = [k for k in flat.getElementsByClass("Key")]
    key = _key_from_pc(keys[0].tonic.pitchClass, "minor" if keys[0].mode == "minor" else "major") \
        if keys else None
    mms = list(flat.getElementsByClass("MetronomeMark"))
    q_bpm = mms[0].getQuarterBPM() if mms and mms[0].number else None
    notes, chords = [], []
    for el in flat.notesAndRests:
        off = float(el.offset)
        if isinstance(el, harmony.ChordSymbol):
            try:
                chords.append((off, ChordSymbol.parse(el.figure)))
            except Exception:
                root_pc = el.root().pitchClass if el.root() is not None else None
                if root_pc is not None:
                    chords.append((off, ChordSymbol.make(root_pc, "maj")))
            continue
        if el.isRest:
            continue
        dur = float(el.quarterLength)
        if dur <= 0:
            continue
        midi = max(p.midi for p in el.pitches) if el.isChord else el.pitch.midi
        tie = el.tie.type if el.tie is not None else None
        if tie in ("stop", "continue") and notes and notes[-1].midi == midi and \
                abs(notes[-1].offset_beat - off) < 1e-3:
            notes[-1].offset_beat = off + dur
        else:
            notes.append(BeatNote(off, off + dur, int(midi)))
    measures = list(part.getElementsByClass("Measure"))
    bar_q = meter[0] * 4.0 / meter[1]
    pickup = 0.0
    if len(measures) > 1:
        first_len = float(measures[1].offset - measures[0].offset)
        if 0 < first_len < bar_q - 1e-6:
            pickup = first_len
    title = sc.metadata.title if sc.metadata and sc.metadata.title else ""
    score = _Score(notes, chords, meter, key, q_bpm, pickup, title)
    return _score_to_leadsheet(score, song_id, source, genre)


def load_nottingham(root: Path, limit: int | None = None) -> list[LeadSheet]:
    out = []
    for p in sorted((root / "nottingham" / "ABC_cleaned").glob("*.abc")):
        out.extend(read_abc_tunes(p))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


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


def read_pop909_song(folder: Path) -> LeadSheet | None:
    import pretty_midi

    sid = folder.name
    beats = np.loadtxt(folder / "beat_midi.txt", ndmin=2)
    beat_s, down = beats[:, 0], beats[:, 2] > 0.5
    down_idx = np.flatnonzero(down)
    if len(beat_s) < 4 or len(down_idx) < 2:
        return None
    bpb = int(np.bincount(np.diff(down_idx)).argmax())
    if bpb == 6:
        # Six beats between downbeats, the half-bar flag every three: a triple meter with a
        # downbeat marked every second bar (tempi 80-150 rule out eighth-note rows of 6/8).
        bpb = 3
    bpb = bpb if bpb in (2, 3, 4) else 4
    meter = (bpb, 4)
    first_number = float((bpb - down_idx[0] % bpb) % bpb)  # so the first downbeat is 0 mod bpb
    pm = pretty_midi.PrettyMIDI(str(folder / f"{sid}.mid"))
    mel = next((i for i in pm.instruments if i.name.strip().upper() == "MELODY"), None)
    if mel is None or not mel.notes:
        return None
    on = seconds_to_beats(np.array([n.start for n in mel.notes]), beat_s, first_number)
    off = seconds_to_beats(np.array([n.end for n in mel.notes]), beat_s, first_number)
    notes = [BeatNote(float(a), float(b), int(n.pitch), int(n.velocity))
             for a, b, n in zip(on, off, mel.notes)]
    spans = []
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        c = ChordSymbol.parse(parts[2])
        if c.is_no_chord:
            continue
        s, e = seconds_to_beats(np.array([float(parts[0]), float(parts[1])]), beat_s, first_number)
        if e > s:
            spans.append((float(s), float(e), c))
    key = None
    kf = folder / "key_audio.txt"
    if kf.exists():
        lines = kf.read_text().split()
        if len(lines) >= 3:
            try:
                key = Key.parse(lines[2])
            except Exception:
                key = None
    shift = 0.0
    lowest = min([n.onset_beat for n in notes] + [s for s, _, _ in spans])
    if lowest < 0:  # notes before the first annotated beat: move whole bars
        shift = float(np.ceil(-lowest / bpb) * bpb)
    tempo = 60.0 / float(np.median(np.diff(beat_s)))
    return _finish(sid, "pop909", notes, spans, meter, key, tempo, "pop", "", shift, spans_given=True)


def load_pop909(root: Path, limit: int | None = None) -> list[LeadSheet]:
    folders = sorted(p for p in (root / "pop909").iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))
    return _read_all(folders[:limit], read_pop909_song, "pop909")


LOADERS: dict[str, Callable[[Path, int | None], list[LeadSheet]]] = {
    "pop909": load_pop909, "nottingham": load_nottingham, "chord-melody": load_chord_melody,
    "openewld": load_openewld,
}
SOURCE_FOLDERS = {"pop909": "pop909", "nottingham": "nottingham/ABC_cleaned",
                  "chord-melody": "chord-melody", "openewld": "openewld/dataset"}


def main(argv=None) -> int:
    """``python -m hum2band.datasets [--data DIR] [--refresh]``: load, cache and count."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--sources", default=",".join(SOURCES))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from hum2band import datasets as ds  # pickle the classes under their module, not __main__

    for s in a.sources.split(","):
        t0 = time.perf_counter()
        sheets = ds.load_source(s, a.data, a.cache, a.refresh)
        dt = time.perf_counter() - t0
        n_split = {k: sum(ls.split == k for ls in sheets) for k in SPLITS}
        meters = {}
        for ls in sheets:
            meters[f"{ls.meter[0]}/{ls.meter[1]}"] = meters.get(f"{ls.meter[0]}/{ls.meter[1]}", 0) + 1
        print(f"{s:13s} {len(sheets):4d} songs  {n_split}  meters {meters}  "
              f"chords/song {np.mean([len(l.chords) for l in sheets]):.0f}  load {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
