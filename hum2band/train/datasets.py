"""Lead sheets (melody + chords on a beat grid) from the melody/chord data sets in the data folder.

Every source is read into one dataclass, :class:`LeadSheet`. Sources and what is read:

* ``pop909`` -- POP909: the MELODY track of ``NNN/NNN.mid``, chords from ``chord_midi.txt`` and the
  beat grid from ``beat_midi.txt`` (seconds are turned into beats by linear interpolation between
  the annotated beats), key from the first line of ``key_audio.txt`` and its later lines as
  ``key_changes`` (:func:`pop909_keys`). ``N`` spans are left out.
  Where the song's chords change on the annotated off-beats instead of its downbeats, the bar
  lines are moved by whole beats (:func:`pop909_bar_shift`: 114 of 819 songs).
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
dotted quarter in 6/8, 9/8 and 12/8; see :func:`hum2band.music.meter.beats_per_bar`). Beat 0 is a
downbeat: a pickup is shifted so that bar ``k`` spans beats ``[k*bpb, (k+1)*bpb)`` with
``bpb = beats_per_bar``. Repeats in the scores are not unfolded (melody and chords stay aligned).

Split
-----
:func:`split_of` assigns each song by a hash of ``"source/song_id"`` (SHA-1, first 8 hex digits as
an integer, modulo 100): 0-79 train, 80-89 validation, 90-99 test. It depends on nothing but the
name, so a song stays in its split when files are added or removed. Twins -- one tune in two
sources ("All the Things You Are" in chord-melody and OpenEWLD) or two versions of a folk tune --
then share the earliest split of the group (:func:`group_twins`), so no tune is learned from in
one spelling and tested on in another.

Cache
-----
Parsed sources are pickled under ``~/.cache/hum2band/leadsheets`` (or ``cache_dir``), one file per
source, keyed by the absolute data path and :data:`CACHE_VERSION`; ``refresh=True`` re-reads.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pickle
import re
import sqlite3
import time
import unicodedata
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, OptionError
from ..files.paths import PROJECT_ROOT
from ..music.chords import ChordSymbol
from ..music.key import Key, key_of_pitch_class
from ..music.leadsheet import (
    BeatNote,
    ChordSpan,
    LeadSheet,
    monophonic,
    seconds_to_beats,
    split_of,
)
from ..music.meter import beats_per_bar, quarter_notes_per_beat
from ..music.musicxml import MusicXMLScore, read_musicxml

log = logging.getLogger(__name__)

SOURCES = ("pop909", "nottingham", "chord-melody", "openewld")
SPLITS = ("train", "validation", "test")
#: Bumped per source whenever its reader changes, so stale caches are re-read.
CACHE_VERSION = {"pop909": 4, "nottingham": 2, "chord-melody": 2, "openewld": 2}


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
            return CacheUnpickler(f).load()
    sheets = LOADERS[source](root, None)
    cdir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(sheets, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return sheets


#: Where the classes of caches written before the package was split into stages now live
#: (old flat module -> the modules that took its names, tried in order).
_MOVED_MODULES = {
    "hum2band.datasets": ("hum2band.music.leadsheet", "hum2band.music.musicxml", __name__),
    "hum2band.melody": ("hum2band.music.melody", "hum2band.music.key", "hum2band.music.meter"),
    "hum2band.chords": ("hum2band.music.chords",),
    "hum2band.corpus": ("hum2band.train.corpus",),
}


class CacheUnpickler(pickle.Unpickler):
    """Reads the caches of this module and :mod:`hum2band.train.corpus`: also those written by
    ``python -m ...`` (classes pickled as ``__main__``) and before the package was split into
    stages (classes pickled under their old module)."""

    main_module = __name__

    def find_class(self, module, name):
        if module == "__main__":
            module = self.main_module
        for candidate in _MOVED_MODULES.get(module, ()):
            if hasattr(importlib.import_module(candidate), name):
                return super().find_class(candidate, name)
        return super().find_class(module, name)


def load_all(data_dir=None, sources=SOURCES, cache_dir=None, refresh: bool = False,
             split: str | None = None) -> dict[str, list[LeadSheet]]:
    """Every source that exists in the data folder, as ``{source: [LeadSheet, ...]}``.

    Sources whose folder is missing are left out. ``split`` keeps only that split. Twins (one
    tune in two sources or two versions, see :func:`group_twins`) share a split, decided over
    every source in the folder, whichever ones are asked for.
    """
    root = resolve_data_dir(data_dir)
    found = {s: load_source(s, root, cache_dir, refresh) for s in SOURCES
             if (root / SOURCE_FOLDERS[s]).is_dir()}
    group_twins([ls for sheets in found.values() for ls in sheets])
    return {s: [ls for ls in sheets if split is None or ls.split == split]
            for s, sheets in found.items() if s in sources}


# ---- twins share a split ---------------------------------------------------------------------
#: Splits from the one models learn from to the one they are tested on.
SPLIT_ORDER = ("train", "validation", "test")


def title_key(title: str) -> str:
    """A title folded so that one tune's spellings meet.

    ``"The Holly and the Ivy"``, ``"holly_and_the_ivy"`` and ``"Holly And The Ivy (version 2)"``
    all give ``"holly and the ivy"``: accents, case, punctuation, a parenthesis, a leading article
    and a version number are dropped.
    """
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"\(.*?\)", " ", t.replace("_", " ").replace("-", " "))
    t = re.sub(r"[^a-z0-9 ]", " ", t)
    t = re.sub(r"\b(version|ver|no|number)\s*\d+\b", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    return re.sub(r"^(the|a|an) ", "", t)


def twin_key(ls: LeadSheet) -> str:
    """What twins share: the folded title (a chord-melody file is named for its title; an
    OpenEWLD file's folder is its title when the score has none). POP909 songs have no title
    here: each is its own group."""
    if ls.source == "pop909":
        return f"pop909/{ls.song_id}"
    title = ls.title
    if not title and ls.source == "openewld":
        parts = ls.song_id.split("/")
        title = parts[2] if len(parts) > 2 else parts[-1]
    return title_key(title or ls.song_id) or f"{ls.source}/{ls.song_id}"


def twin_groups(sheets: list[LeadSheet]) -> list[list[LeadSheet]]:
    """``sheets`` grouped by :func:`twin_key`, in first-seen order."""
    groups: dict[str, list[LeadSheet]] = {}
    for ls in sheets:
        groups.setdefault(twin_key(ls), []).append(ls)
    return list(groups.values())


def count_twins(sheets: list[LeadSheet]) -> int:
    """How many of ``sheets`` share their :func:`twin_key` with another (for the benchmarks)."""
    return sum(len(g) for g in twin_groups(sheets) if len(g) > 1)


def group_twins(sheets: list[LeadSheet]) -> int:
    """Give every group of twins one split; returns how many songs have a twin.

    A group takes the earliest split of its members (train before validation before test), so
    a tune that any model learned from never reaches a test split through its twin, and the
    shipped models' test songs stay unseen (the test split only loses songs).
    """
    groups = twin_groups(sheets)
    for members in groups:
        shared = min((split_of(ls.source, ls.song_id) for ls in members), key=SPLIT_ORDER.index)
        for ls in members:
            ls.group_split = shared
    return sum(len(g) for g in groups if len(g) > 1)


# ---- shared helpers -------------------------------------------------------------------------


def _spans_from_onsets(onsets: list[tuple[float, ChordSymbol]], end: float) -> list[ChordSpan]:
    """Chords that last until the next chord (the last one until ``end``); N.C. leaves a gap."""
    onsets = sorted(onsets, key=lambda x: x[0])
    spans = []
    for i, (t, c) in enumerate(onsets):
        t_next = onsets[i + 1][0] if i + 1 < len(onsets) else max(end, t)
        if t_next > t and not c.is_no_chord:
            spans.append(ChordSpan(float(t), float(t_next), c))
    return spans


def _finish(song_id, source, notes, chord_onsets_or_spans, meter, key, tempo_bpm, genre, title,
            shift_beats: float, spans_given: bool = False, key_changes: tuple = ()
            ) -> LeadSheet | None:
    notes = [BeatNote(n.onset_beat + shift_beats, n.offset_beat + shift_beats, n.midi, n.velocity)
             for n in notes]
    notes = monophonic(notes)
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
    changes = tuple((float(b) + shift_beats, k) for b, k in key_changes)
    return LeadSheet(song_id, source, notes, spans, tuple(int(x) for x in meter), key,
                     beats_per_bar(meter), float(tempo_bpm), genre, title, key_changes=changes)


def _score_to_leadsheet(score: MusicXMLScore, song_id, source, genre="") -> LeadSheet | None:
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
def abc_tunes(text: str) -> list[str]:
    """The tunes of an ABC file, each as a text of its own: the file header (what comes before
    the first ``X:`` line) followed by the tune, from its ``X:`` line to the next.

    Each tune is parsed on its own because music21, reading a whole file as one opus, carries a
    tune's unit note length (``L:``) over to the tunes after it that state none: in the
    Nottingham jigs, every tune after "The Lark in the Clear Air" (``L:1/4``) came out with its
    eighth notes read as quarters, two bars of music in every 6/8 bar.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("X:")]
    if not starts:
        return [text] if text.strip() else []
    header = lines[:starts[0]]
    # only the file header's fields (a free-text preamble is not ABC)
    header = [line for line in header if len(line) > 1 and line[1] == ":" and line[0].isalpha()]
    bounds = starts + [len(lines)]
    return ["\n".join(header + lines[a:b]) + "\n" for a, b in zip(bounds[:-1], bounds[1:])]


def read_abc_tunes(path: Path, source: str = "nottingham", genre: str = "folk") -> list[LeadSheet]:
    """Every tune of an ABC file with quoted chords, via music21 (song id ``"file/X"``), each
    tune parsed on its own (see :func:`abc_tunes`)."""
    import music21

    out = []
    for i, tune in enumerate(abc_tunes(Path(path).read_text(encoding="utf-8", errors="replace"))):
        song_id = f"{path.stem}/{i + 1}"
        try:
            sc = music21.converter.parse(tune, format="abc")
            if hasattr(sc, "scores"):
                sc = sc.scores[0]
            number = sc.metadata.number if sc.metadata and sc.metadata.number else str(i + 1)
            song_id = f"{path.stem}/{number}"
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
    key = key_of_pitch_class(keys[0].tonic.pitchClass, "minor" if keys[0].mode == "minor" else "major") \
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
    score = MusicXMLScore(notes, chords, meter, key, q_bpm, pickup, title)
    return _score_to_leadsheet(score, song_id, source, genre)


def load_nottingham(root: Path, limit: int | None = None) -> list[LeadSheet]:
    out = []
    for p in sorted((root / "nottingham" / "ABC_cleaned").glob("*.abc")):
        out.extend(read_abc_tunes(p))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


#: POP909's ``beat_midi.txt`` flags its downbeats from the MIDI file's bar lines, and in about
#: one song in seven those are not the song's: its chords (``chord_midi.txt``) change on annotated
#: beats 2 and 4, or on beat 3 but hardly ever on 1. A pop song's chords change on its downbeats
#: (and half bars), so where at least this share of the chord changes falls on the odd beats of
#: the annotated 4/4 bar, the bar lines move to the one of them with more changes...
POP909_ODD_BEAT_SHARE = 0.7
#: ... and where the share of changes on one other beat exceeds that on the annotated downbeat
#: by this much (4/4: beat 3; 3/4: beat 2 or 3), they move there. Songs with fewer than
#: :data:`POP909_MIN_CHANGES` chord changes on beats keep their flags.
POP909_OTHER_BEAT_MARGIN = 0.3
POP909_MIN_CHANGES = 16


def pop909_bar_shift(beat_s: np.ndarray, first_downbeat: int, bpb: int,
                     chord_starts_s: np.ndarray) -> int:
    """Beats (0 to bpb - 1) by which to move POP909's annotated bar lines so that the song's
    chord changes fall on its downbeats (see :data:`POP909_ODD_BEAT_SHARE`).

    Parameters
    ----------
    beat_s : np.ndarray, shape (n_beats,)
        The annotated beats (s).
    first_downbeat : int
        Index in ``beat_s`` of the first annotated downbeat.
    bpb : int
        Beats per bar (3 or 4; other values are left alone).
    chord_starts_s : np.ndarray
        Times (s) at which a chord (not ``N``) starts.
    """
    t = np.asarray(chord_starts_s, dtype=float)
    t = t[(t >= beat_s[0]) & (t <= beat_s[-1])]
    u = np.interp(t, beat_s, np.arange(len(beat_s), dtype=float))
    on_beat = np.abs(u - np.round(u)) < 0.1
    if bpb not in (3, 4) or on_beat.sum() < POP909_MIN_CHANGES:
        return 0
    pos = (np.round(u[on_beat]).astype(int) - first_downbeat) % bpb
    share = np.bincount(pos, minlength=bpb) / len(pos)
    if bpb == 4:
        if share[1] + share[3] >= POP909_ODD_BEAT_SHARE:
            return 1 if share[1] >= share[3] else 3
        return 2 if share[2] - share[0] >= POP909_OTHER_BEAT_MARGIN else 0
    k = int(np.argmax(share))
    return k if share[k] - share[0] >= POP909_OTHER_BEAT_MARGIN else 0


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
    chord_lines = [ln.split() for ln in (folder / "chord_midi.txt").read_text().splitlines()]
    chord_starts = np.array([float(p[0]) for p in chord_lines if len(p) >= 3 and p[2] != "N"])
    first_down = int(down_idx[0]) + pop909_bar_shift(beat_s, int(down_idx[0]), bpb, chord_starts)
    first_number = float((-first_down) % bpb)  # so the (corrected) downbeats are 0 mod bpb
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
    key, key_changes = pop909_keys(folder / "key_audio.txt", beat_s, first_number)
    shift = 0.0
    lowest = min([n.onset_beat for n in notes] + [s for s, _, _ in spans])
    if lowest < 0:  # notes before the first annotated beat: move whole bars
        shift = float(np.ceil(-lowest / bpb) * bpb)
    tempo = 60.0 / float(np.median(np.diff(beat_s)))
    return _finish(sid, "pop909", notes, spans, meter, key, tempo, "pop", "", shift, spans_given=True,
                   key_changes=key_changes)


def pop909_keys(path: Path, beat_s: np.ndarray, first_beat_number: float
                ) -> tuple[Key | None, tuple]:
    """A POP909 song's annotated keys: (the first key, ``(start_beat, key)`` of each later one).

    ``key_audio.txt`` gives ``start_s end_s key`` lines on the audio's clock, which POP909's MIDI
    follows to within a few tenths of a second (its first chords start within 0.2 s of the
    audio's), so the starts are read on the MIDI's annotated beats. About one song in six changes
    key (song 091: F minor, then Bb major from 84 s); an excerpt from after the change is in the
    later key. A line that does not parse ends the list there.
    """
    if not path.exists():
        return None, ()
    keys: list[tuple[float, Key]] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            start_s, key = float(parts[0]), Key.parse(parts[2])
        except (ValueError, OptionError):
            break
        if not keys or (key.tonic_pitch_class, key.mode) != (keys[-1][1].tonic_pitch_class,
                                                             keys[-1][1].mode):
            keys.append((start_s, key))
    if not keys:
        return None, ()
    starts = seconds_to_beats(np.array([t for t, _ in keys[1:]]), beat_s, first_beat_number)
    return keys[0][1], tuple((float(b), k) for b, (_, k) in zip(starts, keys[1:]))


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
    """``python -m hum2band.train.datasets [--data DIR] [--refresh]``: load, cache and count."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=None)
    ap.add_argument("--refresh", action="store_true")
    ap.add_argument("--sources", default=",".join(SOURCES))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from . import datasets as ds  # pickle the classes under their module, not __main__

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
