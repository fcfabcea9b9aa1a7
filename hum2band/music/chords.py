"""Chord symbols: one small vocabulary shared by the data loaders, the metrics and the models.

A :class:`ChordSymbol` is a root pitch class (0 = C), a quality from :data:`QUALITIES` and a bass
pitch class. It reads both the symbols musicians write (``"Am7"``, ``"F#m7b5"``, ``"Bb/D"``,
``"G7sus4"``, ``"N.C."``) and Harte syntax as used by POP909 and ``mir_eval``
(``"A:min7"``, ``"C:maj/3"``, ``"G:sus4(b7)"``, ``"N"``), and writes both back
(:attr:`ChordSymbol.label`, :attr:`ChordSymbol.harte`).

Chords outside the vocabulary are reduced to the nearest quality: extensions and alterations
(``"C13"``, ``"D7b9"``, ``"Fadd9"``) are dropped, keeping the seventh chord or triad beneath them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import OptionError
from .key import PITCH_CLASS_NAMES, TONIC_PITCH_CLASS

#: Quality -> intervals in semitones above the root (root included). 18 qualities.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "minmaj7": (0, 3, 7, 11),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2),
    "min9": (0, 3, 7, 10, 2),
    "7sus4": (0, 5, 7, 10),
}

#: Quality -> its Harte shorthand (``mir_eval.chord`` reads all of these).
HARTE_QUALITY = {q: q for q in QUALITIES}
HARTE_QUALITY["7sus4"] = "sus4(b7)"

#: Quality -> suffix of the common symbol written after the root.
LABEL_SUFFIX = {
    "maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4", "7": "7",
    "maj7": "maj7", "min7": "m7", "minmaj7": "mMaj7", "hdim7": "m7b5", "dim7": "dim7",
    "maj6": "6", "min6": "m6", "9": "9", "maj9": "maj9", "min9": "m9", "7sus4": "7sus4",
}

#: Quality -> its triad for major/minor evaluation and triad-only models.
TRIAD_OF = {
    "maj": "maj", "min": "min", "dim": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4",
    "7": "maj", "maj7": "maj", "min7": "min", "minmaj7": "min", "hdim7": "dim", "dim7": "dim",
    "maj6": "maj", "min6": "min", "9": "maj", "maj9": "maj", "min9": "min", "7sus4": "sus4",
}

#: Harte scale degree written for a bass ``n`` semitones above the root.
_BASS_DEGREE = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")
_DEGREE_SEMITONES = {"1": 0, "2": 2, "3": 4, "4": 5, "5": 7, "6": 9, "7": 11, "9": 2, "11": 5,
                     "13": 9}

# Common-symbol suffixes (after the root, before any '/bass'), longest match wins.
_SUFFIXES: dict[str, str] = {
    "": "maj", "M": "maj", "maj": "maj", "major": "maj", "5": "maj", "add9": "maj", "add2": "maj",
    "m": "min", "mi": "min", "min": "min", "minor": "min", "-": "min", "madd9": "min",
    "dim": "dim", "o": "dim", "°": "dim", "mb5": "dim", "m(b5)": "dim",
    "aug": "aug", "+": "aug", "#5": "aug", "+5": "aug", "(#5)": "aug",
    "sus2": "sus2", "sus4": "sus4", "sus": "sus4",
    "7": "7", "dom7": "7", "11": "7", "13": "7", "7alt": "7",
    "maj7": "maj7", "M7": "maj7", "ma7": "maj7", "Maj7": "maj7", "Δ": "maj7", "Δ7": "maj7",
    "j7": "maj7", "maj11": "maj7", "maj13": "maj7", "M13": "maj7",
    "m7": "min7", "min7": "min7", "mi7": "min7", "-7": "min7", "m11": "min7", "m13": "min7",
    "min11": "min7", "-11": "min7",
    "mMaj7": "minmaj7", "mmaj7": "minmaj7", "mM7": "minmaj7", "minmaj7": "minmaj7",
    "-maj7": "minmaj7", "m(maj7)": "minmaj7", "-Δ7": "minmaj7",
    "m7b5": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7",
    "m7(b5)": "hdim7", "hdim7": "hdim7", "hdim": "hdim7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7",
    "6": "maj6", "maj6": "maj6", "M6": "maj6", "69": "maj6", "6/9": "maj6", "add6": "maj6",
    "m6": "min6", "min6": "min6", "-6": "min6", "m69": "min6",
    "9": "9", "7(9)": "9", "maj9": "maj9", "M9": "maj9", "Δ9": "maj9",
    "m9": "min9", "min9": "min9", "-9": "min9",
    "7sus4": "7sus4", "7sus": "7sus4", "sus7": "7sus4", "9sus4": "7sus4", "9sus": "7sus4",
    "11sus": "7sus4", "13sus": "7sus4", "13sus4": "7sus4", "sus4(b7)": "7sus4",
}
_SUFFIX_KEYS = sorted(_SUFFIXES, key=len, reverse=True)
# What may follow a known suffix and be dropped: alterations and added tones.
_ALTERATIONS = re.compile(r"^(\(?\s*(add)?[#b+\-]?(2|4|5|6|9|11|13)\s*[,)]?\s*|alt|\(|\))*$")
_ROOT = re.compile(r"^([A-Ga-g])([#b♯♭]?)")
_NO_CHORD = {"N", "N.C.", "NC", "N.C", "X", "n.c.", "nc", ""}


def _root_pc(text: str, what: str) -> int:
    name = text.replace("♯", "#").replace("♭", "b")
    pc = TONIC_PITCH_CLASS.get(name.upper())
    if pc is None:
        raise OptionError(f"chord '{what}': '{text}' is not a note name: write chords like Am7, Bb/D or F#m7b5")
    return pc


@dataclass(frozen=True)
class ChordSymbol:
    """One chord: root, quality and bass, all as pitch classes (0 = C ... 11 = B).

    Attributes
    ----------
    root : int
        Root pitch class 0-11, or -1 for no chord.
    quality : str
        A key of :data:`QUALITIES`, or ``"N"`` for no chord.
    bass : int
        Bass pitch class 0-11 (equals ``root`` in root position), or -1 for no chord.
    """

    root: int
    quality: str
    bass: int

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def no_chord(cls) -> "ChordSymbol":
        return cls(-1, "N", -1)

    @classmethod
    def make(cls, root: int, quality: str = "maj", bass: int | None = None) -> "ChordSymbol":
        """A chord from a root pitch class and quality; ``bass`` defaults to the root."""
        if quality not in QUALITIES:
            raise OptionError(f"chord quality '{quality}' is not one of {', '.join(QUALITIES)}")
        r = int(root) % 12
        return cls(r, quality, r if bass is None else int(bass) % 12)

    @classmethod
    def parse(cls, text: str) -> "ChordSymbol":
        """Read a common chord symbol (``"Am7"``, ``"Bb/D"``) or Harte (``"A:min7"``, ``"C:maj/3"``).

        Raises
        ------
        OptionError
            If the text is not a chord symbol.
        """
        t = text.strip()
        if t in _NO_CHORD or t.upper() in {"N", "N.C.", "NC", "X"}:
            return cls.no_chord()
        if ":" in t:
            return cls._parse_harte(t)
        return cls._parse_common(t)

    @classmethod
    def _parse_common(cls, t: str) -> "ChordSymbol":
        body, bass_txt = t, None
        # A slash followed by a note name is a bass note ("C/E"); "6/9" is a suffix.
        m = re.match(r"^(.*)/([A-Ga-g][#b♯♭]?)$", t)
        if m:
            body, bass_txt = m.group(1), m.group(2)
        rm = _ROOT.match(body)
        if not rm:
            raise OptionError(f"chord '{t}' does not start with a note name: write chords like Am7, Bb/D or F#m7b5")
        root = _root_pc(rm.group(1) + rm.group(2), t)
        suffix = body[rm.end():].strip()
        quality = _SUFFIXES.get(suffix)
        if quality is None:
            quality = _reduce_suffix(suffix, t)
        bass = root if bass_txt is None else _root_pc(bass_txt, t)
        return cls(root, quality, bass)

    @classmethod
    def _parse_harte(cls, t: str) -> "ChordSymbol":
        root_txt, rest = t.split(":", 1)
        root = _root_pc(root_txt.strip(), t)
        qual_txt, bass_deg = rest, None
        if "/" in rest:
            qual_txt, bass_deg = rest.rsplit("/", 1)
        qual_txt = qual_txt.strip() or "maj"
        quality = next((q for q, h in HARTE_QUALITY.items() if h == qual_txt), None)
        if quality is None:
            quality = _nearest_quality_from_harte(root_txt.strip() + ":" + qual_txt, t)
        bass = root
        if bass_deg:
            bass = (root + _degree_to_semitones(bass_deg.strip(), t)) % 12
        return cls(root, quality, bass)

    # ---- views ------------------------------------------------------------------------------
    @property
    def is_no_chord(self) -> bool:
        return self.quality == "N"

    @property
    def harte(self) -> str:
        """Harte syntax, e.g. ``"A:min7"``, ``"C:maj/3"``, ``"D:7/b7"``, ``"N"``."""
        if self.is_no_chord:
            return "N"
        s = f"{PITCH_CLASS_NAMES[self.root]}:{HARTE_QUALITY[self.quality]}"
        if self.bass != self.root:
            s += "/" + _BASS_DEGREE[(self.bass - self.root) % 12]
        return s

    @property
    def label(self) -> str:
        """Common symbol, e.g. ``"Am7"``, ``"F#m7b5"``, ``"Bb/D"``, ``"N.C."``."""
        if self.is_no_chord:
            return "N.C."
        s = PITCH_CLASS_NAMES[self.root] + LABEL_SUFFIX[self.quality]
        if self.bass != self.root:
            s += "/" + PITCH_CLASS_NAMES[self.bass]
        return s

    def pitch_classes(self) -> tuple[int, ...]:
        """Sorted pitch classes of the chord, bass included (empty for no chord)."""
        if self.is_no_chord:
            return ()
        pcs = {(self.root + i) % 12 for i in QUALITIES[self.quality]}
        pcs.add(self.bass)
        return tuple(sorted(pcs))

    def transpose(self, semitones: int) -> "ChordSymbol":
        if self.is_no_chord:
            return self
        return ChordSymbol((self.root + semitones) % 12, self.quality, (self.bass + semitones) % 12)

    def triad(self) -> "ChordSymbol":
        """The triad under this chord in root position (``"Am7/G"`` -> ``"Am"``)."""
        if self.is_no_chord:
            return self
        return ChordSymbol(self.root, TRIAD_OF[self.quality], self.root)

    def __str__(self) -> str:
        return self.label


def _reduce_suffix(suffix: str, whole: str) -> str:
    """Longest known suffix at the start of ``suffix`` whose remainder is only alterations."""
    for key in _SUFFIX_KEYS:
        if key and suffix.startswith(key) and _ALTERATIONS.match(suffix[len(key):].strip()):
            return _SUFFIXES[key]
    if _ALTERATIONS.match(suffix):
        return "maj"
    raise OptionError(f"chord '{whole}' has a quality I don't know ('{suffix}'): "
                      "write it like C, Cm, C7, Cmaj7, Cm7, Cm7b5, Cdim7, Csus4 or C6")


def _degree_to_semitones(deg: str, whole: str) -> int:
    m = re.match(r"^([b#]*)(\d+)$", deg)
    if not m or m.group(2) not in _DEGREE_SEMITONES:
        raise OptionError(f"chord '{whole}': bass '/{deg}' is not a scale degree like /3, /5 or /b7")
    return _DEGREE_SEMITONES[m.group(2)] + m.group(1).count("#") - m.group(1).count("b")


def _nearest_quality_from_harte(text: str, whole: str) -> str:
    """Map any Harte quality ``mir_eval`` reads to the vocabulary quality sharing most tones."""
    import mir_eval.chord as mc

    try:
        _, bitmap, _ = mc.encode(text, reduce_extended_chords=False)
    except Exception as exc:  # mir_eval raises InvalidChordException and ValueError
        raise OptionError(f"chord '{whole}' is not Harte syntax I can read ({exc})") from None
    tones = {i for i in range(12) if bitmap[i]} | {0}
    if tones <= {0, 7}:  # a power chord (or a bare root) is read as major, as "C5" is
        return "maj"
    best, best_score = "maj", -1.0
    for q, ivs in QUALITIES.items():
        s = set(ivs)
        # Jaccard on tones, with the third and fifth weighted double (they decide the family).
        score = len(tones & s) / len(tones | s) + 0.5 * sum(((i in tones) == (i in s)) for i in (3, 4, 6, 7, 8))
        if score > best_score:
            best, best_score = q, score
    return best


def parse_chord_line(text: str) -> list[list[ChordSymbol]]:
    """Parse a chord chart line into bars: ``"C | Am | F G | C"`` -> ``[[C], [Am], [F, G], [C]]``.

    Bars are separated by ``|``; chords within a bar by spaces (they share the bar equally).
    ``%`` repeats the previous bar; ``-`` or ``.`` inside a bar continues the previous chord
    (``"C - G -"`` is two beats each of C and G in 4/4, returned as ``[C, C, G, G]``).

    Raises
    ------
    OptionError
        On an empty chart or a symbol that is not a chord.
    """
    bars: list[list[ChordSymbol]] = []
    for raw in text.replace("||", "|").split("|"):
        toks = raw.split()
        if not toks:
            continue
        if toks == ["%"]:
            if not bars:
                raise OptionError("chord chart starts with '%' (repeat bar): write the first bar's chords")
            bars.append(list(bars[-1]))
            continue
        bar: list[ChordSymbol] = []
        for tok in toks:
            if tok in {"-", ".", "/"}:
                prev = bar[-1] if bar else (bars[-1][-1] if bars else None)
                if prev is None:
                    raise OptionError(f"chord chart '{text}' starts with '{tok}': write a chord first")
                bar.append(prev)
            else:
                bar.append(ChordSymbol.parse(tok))
        bars.append(bar)
    if not bars:
        raise OptionError("the chord chart is empty: write it like 'C | Am | F G | C'")
    return bars


def vocabulary(with_inversions: bool = False) -> list[ChordSymbol]:
    """Every chord of the vocabulary: 12 roots x :data:`QUALITIES` (x chord-tone basses)."""
    out = []
    for r in range(12):
        for q, ivs in QUALITIES.items():
            out.append(ChordSymbol(r, q, r))
            if with_inversions:
                out.extend(ChordSymbol(r, q, (r + i) % 12) for i in ivs if i % 12 != 0)
    return out
