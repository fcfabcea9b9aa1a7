"""The beat grid the harmony model reads and writes (see ``docs/model.md``).

A song becomes one row per counted beat, everything relative to the key's tonic:

Encoder input (the melody), per beat, :data:`N_BEAT_FEATURES` numbers:
    * for each of the beat's 4 sixteenths, the sounding pitch class (one-hot of 12) or a rest (13th);
    * for each sixteenth, 1 if a note starts there;
    * the time each pitch class sounds in the beat (fraction of the beat, 12);
    * the mean register of what sounds (``(midi - 60) / 12``, 0 for a rest) and a flag for a note
      held over from the previous beat.
  plus the beat's position in its bar and the song's conditions (style, meter, mode, tempo band).

Decoder output, per beat:
    * ``chord``: root relative to the tonic (0-11) x quality of :data:`hum2band.music.chords.QUALITIES`
      (:data:`N_CHORD_CLASSES` classes), the chord sounding in the first half of the beat;
    * ``bass``: bass pitch class relative to the chord's root (0 = root position);
    * ``early``: 1 when this beat's chord already starts half a beat before it (an anticipation,
      as in bossa nova and pop pushes: a change on the "and" belongs to the next beat).

The decoder's input at beat ``t`` is what it wrote at beat ``t - 1`` (its memory of the harmony
so far). Gaps without a chord in the data are :data:`IGNORE` targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...music.chords import QUALITIES, ChordSymbol
from ...music.key import Key
from ...music.melody import Note
from ...music.styles import STYLE_NAMES

SUBS_PER_BEAT = 4  #: sixteenths per counted beat in the melody features
MAX_BEATS_PER_BAR = 6
QUALITY_LIST = tuple(QUALITIES)
N_QUALITIES = len(QUALITY_LIST)
N_CHORD_CLASSES = 12 * N_QUALITIES  #: 216 key-relative chords
NO_CHORD_INPUT = N_CHORD_CLASSES  #: decoder input id of a beat without chord
START_INPUT = N_CHORD_CLASSES + 1  #: decoder input id before the first beat
MASK_INPUT = N_CHORD_CLASSES + 2  #: decoder input id hiding the previous chord (training dropout)
N_CHORD_INPUTS = N_CHORD_CLASSES + 3
IGNORE = -100
N_BEAT_FEATURES = SUBS_PER_BEAT * 13 + SUBS_PER_BEAT + 12 + 2

# ---- conditions ----------------------------------------------------------------------------
#: Style vocabulary: "" (unknown) is index 0, then the twelve styles in their fixed order.
STYLES = ("",) + STYLE_NAMES
STYLE_ALIASES = {"bossa": "bossa nova", "bossanova": "bossa nova", "jazz": "swing",
                 "jazzballad": "jazz-ballad", "jazz ballad": "jazz-ballad"}
METERS = ((4, 4), (3, 4), (2, 4), (6, 8), (2, 2), (3, 8), (9, 8), (12, 8), (5, 4), (6, 4))
TEMPO_BANDS_BPM = (70.0, 95.0, 120.0, 150.0)  #: band edges, counted beats per minute
MODES = ("major", "minor")
N_METERS = len(METERS) + 2  #: 0 unused, 1..len known, len+1 other
N_TEMPO_BANDS = len(TEMPO_BANDS_BPM) + 1

#: Training style label of each source / OpenEWLD Discogs genre.
SOURCE_STYLE = {"pop909": "pop", "nottingham": "folk", "chord-melody": "swing"}
GENRE_STYLE = {"Pop": "pop", "Jazz": "swing", "Rock": "rock", "Folk, World, & Country": "folk",
               "Latin": "latin", "Funk / Soul": "funk", "Reggae": "reggae", "Blues": "swing"}


def style_index(style: str | None) -> int:
    """Index of a style name in :data:`STYLES` (0 for None or "").

    Raises
    ------
    ValueError
        For a non-empty name that is not a style (callers turn it into an OptionError).
    """
    if not style:
        return 0
    s = style.strip().lower()
    s = STYLE_ALIASES.get(s, s)
    if s not in STYLES:
        raise ValueError(f"unknown style '{style}': use one of {', '.join(x for x in STYLES if x)}")
    return STYLES.index(s)


def meter_index(meter: Sequence[int]) -> int:
    m = (int(meter[0]), int(meter[1]))
    return METERS.index(m) + 1 if m in METERS else len(METERS) + 1


def tempo_band(tempo_bpm: float) -> int:
    return int(np.searchsorted(TEMPO_BANDS_BPM, float(tempo_bpm), side="right"))


@dataclass(frozen=True)
class Conditions:
    """What the model is told besides the melody (indices into its embedding tables)."""

    style: int
    meter: int
    mode: int
    tempo: int

    @classmethod
    def of(cls, style: str | None, meter: Sequence[int], mode: str, tempo_bpm: float) -> "Conditions":
        return cls(style_index(style), meter_index(meter), 1 if mode == "minor" else 0, tempo_band(tempo_bpm))

    def as_array(self) -> np.ndarray:
        return np.array([self.style, self.meter, self.mode, self.tempo], dtype=np.int64)


def style_of_leadsheet(ls) -> str:
    """The style label a lead sheet trains under ("" when the source says nothing usable)."""
    if ls.source in SOURCE_STYLE:
        return SOURCE_STYLE[ls.source]
    return GENRE_STYLE.get(ls.genre, "")


def key_of_notes(notes) -> Key:
    """Key of beat-grid notes via :func:`hum2band.music.keyfinding.estimate_key` (beats stand in for seconds)."""
    from ...music.keyfinding import estimate_key

    return estimate_key([Note(float(n.onset_beat), float(n.offset_beat), float(n.midi), int(n.midi))
                         for n in notes], vote=False)  # score notes: nothing to vote over


# ---- chords <-> classes ------------------------------------------------------------------------
def chord_class(chord: ChordSymbol, tonic_pc: int) -> int:
    """Key-relative class of a chord (bass not included)."""
    return ((chord.root - tonic_pc) % 12) * N_QUALITIES + QUALITY_LIST.index(chord.quality)


def class_chord(cls_: int, tonic_pc: int, bass_rel_root: int = 0) -> ChordSymbol:
    """The chord of a class, in absolute pitch classes, with the bass ``bass_rel_root`` above the root."""
    root = (int(cls_) // N_QUALITIES + tonic_pc) % 12
    return ChordSymbol(root, QUALITY_LIST[int(cls_) % N_QUALITIES], (root + int(bass_rel_root)) % 12)


#: Per class: 1 for the major-like, 0 for the minor-like, -1 for the rest (majmin groups).
def _majmin_family() -> np.ndarray:
    fam = np.full(N_CHORD_CLASSES, -1, dtype=np.int64)
    for q, name in enumerate(QUALITY_LIST):
        iv = QUALITIES[name]
        third = 4 in iv and 7 in iv
        minor = 3 in iv and 7 in iv
        for r in range(12):
            fam[r * N_QUALITIES + q] = 1 if third else (0 if minor else -1)
    return fam


MAJMIN_FAMILY = _majmin_family()


# ---- a song on the grid --------------------------------------------------------------------------
@dataclass
class SongGrid:
    """A melody (and its chords, if known) on the beat grid, key-relative.

    Attributes
    ----------
    features : np.ndarray, shape (n_beats, N_BEAT_FEATURES), float32
    beat_in_bar : np.ndarray, shape (n_beats,), int64
    conditions : Conditions
    chord : np.ndarray, shape (n_beats,), int64
        Target classes (:data:`IGNORE` where unknown or a gap).
    bass : np.ndarray, shape (n_beats,), int64
        Bass relative to the chord root (:data:`IGNORE` where no chord).
    early : np.ndarray, shape (n_beats,), int64
        1 where the beat's chord starts half a beat early (:data:`IGNORE` where no chord).
    tonic_pc : int
    beats_per_bar : int
    """

    features: np.ndarray
    beat_in_bar: np.ndarray
    conditions: Conditions
    chord: np.ndarray
    bass: np.ndarray
    early: np.ndarray
    tonic_pc: int
    beats_per_bar: int
    source: str = ""
    song_id: str = ""

    @property
    def n_beats(self) -> int:
        return len(self.beat_in_bar)

    @property
    def n_bars(self) -> int:
        return int(math.ceil(self.n_beats / self.beats_per_bar))


def melody_features(notes, n_beats: int, tonic_pc: int) -> np.ndarray:
    """Per-beat melody features (see the module docstring).

    Parameters
    ----------
    notes : sequence of BeatNote-like
        ``onset_beat``, ``offset_beat``, ``midi``; monophonic.
    n_beats : int
    tonic_pc : int

    Returns
    -------
    np.ndarray, shape (n_beats, N_BEAT_FEATURES), float32
    """
    S = SUBS_PER_BEAT
    n_sub = n_beats * S
    pc_sub = np.full(n_sub, 12, dtype=np.int64)
    onset_sub = np.zeros(n_sub, dtype=np.float32)
    dur = np.zeros((n_beats, 12), dtype=np.float32)
    reg_num = np.zeros(n_beats, dtype=np.float32)
    reg_den = np.zeros(n_beats, dtype=np.float32)
    held = np.zeros(n_beats, dtype=np.float32)
    for n in notes:
        a, b = float(n.onset_beat), min(float(n.offset_beat), float(n_beats))
        if b <= a or a >= n_beats:
            continue
        pc = (int(n.midi) - tonic_pc) % 12
        k0 = int(math.floor(a * S + 0.5))
        k1 = max(k0 + 1, int(math.floor(b * S + 0.5)))
        pc_sub[max(0, k0):min(n_sub, k1)] = pc
        if 0 <= k0 < n_sub:
            onset_sub[k0] = 1.0
        for beat in range(max(0, int(math.floor(a))), min(n_beats, int(math.ceil(b)))):
            ov = min(b, beat + 1.0) - max(a, float(beat))
            if ov > 0:
                dur[beat, pc] += ov
                reg_num[beat] += ov * (int(n.midi) - 60) / 12.0
                reg_den[beat] += ov
                if a < beat - 1e-6:
                    held[beat] = 1.0
    one_hot = np.zeros((n_sub, 13), dtype=np.float32)
    one_hot[np.arange(n_sub), pc_sub] = 1.0
    reg = np.where(reg_den > 0, reg_num / np.maximum(reg_den, 1e-9), 0.0).astype(np.float32)
    return np.concatenate([one_hot.reshape(n_beats, S * 13), onset_sub.reshape(n_beats, S),
                           np.minimum(dur, 1.0), reg[:, None], held[:, None]], axis=1)


def chord_targets(spans, n_beats: int, tonic_pc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-beat chord, bass and anticipation targets from ``(start_beat, end_beat, chord)`` spans."""
    chord = np.full(n_beats, IGNORE, dtype=np.int64)
    bass = np.full(n_beats, IGNORE, dtype=np.int64)
    early = np.full(n_beats, IGNORE, dtype=np.int64)
    spans = sorted(spans, key=lambda x: x[0])
    starts = np.array([s[0] for s in spans], float)

    def at(t: float):
        i = int(np.searchsorted(starts, t, side="right")) - 1
        if i >= 0 and spans[i][1] > t and not spans[i][2].is_no_chord:
            return i
        return None

    for b in range(n_beats):
        i = at(b + 0.25)
        if i is None:
            continue
        c = spans[i][2]
        chord[b] = chord_class(c, tonic_pc)
        bass[b] = (c.bass - c.root) % 12
        prev = at(b - 0.75) if b > 0 else None
        changed = prev is None or chord_class(spans[prev][2], tonic_pc) != chord[b]
        early[b] = int(changed and spans[i][0] <= b - 0.25)
    return chord, bass, early


def song_grid(notes, meter, beats_per_bar: int, key: Key | None, tempo_bpm: float, style: str | None,
              chords=None, n_beats: int | None = None, source: str = "", song_id: str = "") -> SongGrid:
    """A melody (and chords) on the beat grid; ``key`` None estimates it from the melody."""
    if key is None:
        key = key_of_notes(notes)
    tonic = key.tonic_pitch_class
    if n_beats is None:
        ends = [n.offset_beat for n in notes] + [c[1] for c in (chords or [])] + [beats_per_bar]
        n_beats = int(math.ceil(max(ends) / beats_per_bar - 1e-9)) * beats_per_bar
    feats = melody_features(notes, n_beats, tonic)
    if chords:
        chord, bass, early = chord_targets(chords, n_beats, tonic)
    else:
        chord = bass = early = np.full(n_beats, IGNORE, dtype=np.int64)
    return SongGrid(feats, np.arange(n_beats, dtype=np.int64) % beats_per_bar,
                    Conditions.of(style, meter, key.mode, tempo_bpm), chord, bass, early, tonic,
                    beats_per_bar, source, song_id)


def leadsheet_grid(ls, style: str | None = "auto") -> SongGrid:
    """A :class:`hum2band.music.leadsheet.LeadSheet` on the grid (``style="auto"``: its own label)."""
    st = style_of_leadsheet(ls) if style == "auto" else style
    return song_grid(ls.melody, ls.meter, ls.beats_per_bar, ls.key, ls.tempo_bpm, st, chords=ls.chords,
                     n_beats=ls.n_bars * ls.beats_per_bar, source=ls.source, song_id=ls.song_id)


def decoder_inputs(chord: np.ndarray) -> np.ndarray:
    """Decoder input ids: the chord of the previous beat (start id first, gaps as no-chord)."""
    prev = np.empty(len(chord), dtype=np.int64)
    prev[0] = START_INPUT
    prev[1:] = np.where(chord[:-1] < 0, NO_CHORD_INPUT, chord[:-1])
    return prev


def grid_to_spans(chord: np.ndarray, bass: np.ndarray, early: np.ndarray, tonic_pc: int,
                  start_beat: float = 0.0) -> list[tuple[float, float, ChordSymbol]]:
    """Per-beat classes back to merged ``(start_beat, end_beat, ChordSymbol)`` spans.

    A chord flagged ``early`` starts half a beat before its beat (taking that half from the
    chord before it); repeated chords are merged.
    """
    spans: list[list] = []
    for b in range(len(chord)):
        if chord[b] < 0:
            continue
        c = class_chord(int(chord[b]), tonic_pc, int(bass[b]) if bass[b] >= 0 else 0)
        t0, t1 = start_beat + b, start_beat + b + 1.0
        if spans and spans[-1][2] == c and abs(spans[-1][1] - t0) < 1e-9:
            spans[-1][1] = t1
            continue
        if early[b] == 1 and spans and abs(spans[-1][1] - t0) < 1e-9 and spans[-1][1] - spans[-1][0] > 0.5:
            spans[-1][1] = t0 - 0.5
            t0 -= 0.5
        spans.append([t0, t1, c])
    return [(float(a), float(b), c) for a, b, c in spans]
