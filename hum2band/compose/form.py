"""The song's form, found from the melody: sections, which ones repeat, and how the band shapes them.

A songwriter's hum has a form before it has a band: phrases of four or eight bars, some sung
again (a verse, a chorus), some new (a bridge), ending on a cadence. :func:`find_sections` reads
it from the melody alone:

1. **phrases**: the melody's bars are cut into phrases of ``PHRASE_BARS`` (4) bars, counted from
   the first sung bar, or from the bar after it when that is a pickup (its first note in the
   second half of the bar: the pickup belongs to the phrase it leads into);
2. **repeats**: two phrases are the same material when their melodies match on most 16ths
   (:func:`melody_similarity`: the same pitch sounding, or the same rest, at each 16th);
3. **sections**: phrases are paired into 8-bar sections where the song allows (an odd phrase at
   the end joins the section before it) and sections are labelled A, B, C... by first
   appearance: a section sung again gets its first appearance's letter.

A user may name the form instead (``--form "A A B A"``: :func:`sections_from_form`).

The sections then shape the arrangement: :func:`repeat_harmony` gives a repeated section the
chords of its first appearance (unless those fit its melody clearly worse),
:func:`section_phrase_ends` puts a drum fill into every new section, and :func:`shape_parts`
makes the band build: a sparser first section, a fuller one for the contrasting or returning
material, the last bar landing with the last sung note.

Times are counted beats from the first bar line (beat 0), bars 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import OptionError
from ..music.chords import QUALITIES, ChordSymbol

PHRASE_BARS = 4
SECTION_BARS = 8
#: Share of 16ths that must match for two phrases to be the same material.
SAME_MATERIAL = 0.6
#: A repeated section keeps its own chords when the first appearance's chords cover this much
#: less of its melody with chord tones.
HARMONY_SLACK = 0.15
#: Velocity scale and parts thinned out in a section by its energy level.
ENERGY_VELOCITY = {0: 0.82, 1: 0.92, 2: 1.0}


@dataclass(frozen=True)
class Section:
    """One section of the song.

    Attributes
    ----------
    start_bar, end_bar : int
        Bars ``start_bar <= b < end_bar`` (0-based, on the arrangement's bar grid).
    label : str
        "A", "B", ... (the same letter: the same material), or a user's name from ``--form``.
    energy : int
        0 (sparse), 1 (full), 2 (fullest): how much the band plays.
    pickup_bars : int
        Bars at its start before its material's first bar (a pickup bar: 0 or 1); repeats are
        compared and copied from ``start_bar + pickup_bars``.
    """

    start_bar: int
    end_bar: int
    label: str
    energy: int = 1
    pickup_bars: int = 0

    @property
    def material_bar(self) -> int:
        return self.start_bar + self.pickup_bars

    @property
    def n_bars(self) -> int:
        return self.end_bar - self.start_bar


def _sixteenths(melody: np.ndarray, first_bar: int, n_bars: int, beats_per_bar: int) -> np.ndarray:
    """Sounding MIDI pitch (-1 rest) on every 16th of ``n_bars`` bars from ``first_bar``."""
    step = 1.0 / 6.0 if beats_per_bar == 2 else 0.25
    per_bar = int(round(beats_per_bar / step))
    t0 = first_bar * beats_per_bar
    grid = t0 + np.arange(n_bars * per_bar) * step
    out = -np.ones(len(grid), dtype=np.int64)
    for on, off, midi in np.asarray(melody, dtype=float).reshape(-1, 3):
        out[(grid >= on - 1e-6) & (grid < off - 1e-6)] = int(round(midi))
    return out


def melody_similarity(melody: np.ndarray, bar_a: int, bar_b: int, n_bars: int, beats_per_bar: int) -> float:
    """Share of 16ths on which two stretches of melody (``n_bars`` from ``bar_a`` and from
    ``bar_b``) sound the same pitch or both rest; 0 when neither is sung."""
    a = _sixteenths(melody, bar_a, n_bars, beats_per_bar)
    b = _sixteenths(melody, bar_b, n_bars, beats_per_bar)
    sung = (a >= 0) | (b >= 0)
    if not sung.any():
        return 0.0
    return float(np.mean(a[sung] == b[sung]))


def is_pickup_bar(melody: np.ndarray, bar: int, beats_per_bar: int) -> bool:
    """Is ``bar`` a pickup: its first note comes in the second half of the bar?"""
    mel = np.asarray(melody, dtype=float).reshape(-1, 3)
    inside = mel[(mel[:, 0] >= bar * beats_per_bar - 1e-6) & (mel[:, 0] < (bar + 1) * beats_per_bar - 1e-6)]
    return bool(len(inside)) and float(inside[:, 0].min()) >= (bar + 0.5) * beats_per_bar - 1e-6


def find_sections(melody: np.ndarray, first_bar: int, end_bar: int, beats_per_bar: int) -> list[Section]:
    """The sections of the sung bars ``first_bar <= b < end_bar`` (see the module doc).

    Parameters
    ----------
    melody : np.ndarray, shape (N, 3)
        onset_beat, offset_beat, MIDI pitch.
    first_bar, end_bar : int
        The first sung bar and the bar after the last (an intro before and the ending after are
        not part of the form).
    beats_per_bar : int

    Returns
    -------
    list of Section
        Contiguous, covering ``first_bar`` to ``end_bar``, energies from :func:`plan_energy`.
    """
    n = end_bar - first_bar
    if n <= 0:
        return []
    if n < SECTION_BARS + PHRASE_BARS:
        return plan_energy([Section(first_bar, end_bar, "A")])
    grid_start = first_bar + int(is_pickup_bar(melody, first_bar, beats_per_bar))
    bounds = list(range(grid_start, end_bar - PHRASE_BARS // 2, SECTION_BARS))
    if end_bar - bounds[-1] < PHRASE_BARS and len(bounds) > 1:
        bounds.pop()
    spans = [(a, b) for a, b in zip(bounds, bounds[1:] + [end_bar])]   # material, grid-aligned
    labels: list[str] = []
    firsts: list[tuple[int, int]] = []
    for a, b in spans:
        label = None
        for (fa, fb), lab in zip(firsts, sorted(set(labels), key=labels.index)):
            length = min(b - a, fb - fa)
            if melody_similarity(melody, fa, a, length, beats_per_bar) >= SAME_MATERIAL:
                label = lab
                break
        if label is None:
            label = chr(ord("A") + len(firsts)) if len(firsts) < 26 else "Z"
            firsts.append((a, b))
        labels.append(label)
    # a pickup bar belongs to the section it leads into
    out = [Section(a, b, lab) for (a, b), lab in zip(spans, labels)]
    out[0] = Section(first_bar, out[0].end_bar, out[0].label, pickup_bars=grid_start - first_bar)
    return plan_energy(out)


def sections_from_form(form: str, first_bar: int, end_bar: int) -> list[Section]:
    """Sections named by the user: ``"A A B A"`` splits the sung bars into that many sections of
    equal length (whole bars; the last takes what is left)."""
    labels = form.replace(",", " ").split()
    if not labels:
        raise OptionError('--form needs section names, e.g. --form "A A B A"')
    n = end_bar - first_bar
    if len(labels) > n:
        raise OptionError(f"--form names {len(labels)} sections but the song has only {n} sung bars: "
                          "name at most one section a bar")
    size = n // len(labels)
    starts = [first_bar + i * size for i in range(len(labels))] + [end_bar]
    return plan_energy([Section(starts[i], starts[i + 1], lab) for i, lab in enumerate(labels)])


def plan_energy(sections: Sequence[Section]) -> list[Section]:
    """How much the band plays per section: the first is sparse (0), a section of new material
    after the first and every return after one is full (1), the last appearance of the most
    repeated material and any section after a contrasting one builds to the fullest (2)."""
    out = []
    seen: set[str] = set()
    for i, s in enumerate(sections):
        if i == 0:
            energy = 0 if len(sections) > 1 else 1
        elif s.label not in seen or (i == len(sections) - 1 and len(sections) > 2):
            energy = 2
        else:
            energy = 1
        seen.add(s.label)
        out.append(Section(s.start_bar, s.end_bar, s.label, energy, s.pickup_bars))
    return out


def section_phrase_ends(sections: Sequence[Section], n_bars: int, phrase_bars: int = SECTION_BARS) -> np.ndarray:
    """Bars a drum fill leads out of, shape (n_bars,) bool: the last bar before every new section,
    and the end of every ``phrase_bars`` inside a long section; never the song's last bar."""
    ends = np.zeros(n_bars, dtype=bool)
    for s in sections:
        if 0 < s.start_bar < n_bars:
            ends[s.start_bar - 1] = True
        for b in range(s.start_bar + phrase_bars - 1, s.end_bar - 1, phrase_bars):
            if 0 <= b < n_bars:
                ends[b] = True
    if n_bars:
        ends[n_bars - 1] = False
    return ends


# ---- harmony ------------------------------------------------------------------------------------
def _chord_at(chords: Sequence[tuple[float, float, ChordSymbol]], beat: float) -> ChordSymbol | None:
    for s, e, c in chords:
        if s - 1e-9 <= beat < e - 1e-9:
            return c
    return None


def chord_tone_share(melody: np.ndarray, chords, first_bar: int, end_bar: int, beats_per_bar: int,
                     shift_bars: int = 0) -> float:
    """Share of the sung 16ths in bars [first_bar, end_bar) whose pitch is a tone of the chord
    sounding ``shift_bars`` bars earlier (0: the chord written there)."""
    step = 1.0 / 6.0 if beats_per_bar == 2 else 0.25
    pitches = _sixteenths(melody, first_bar, end_bar - first_bar, beats_per_bar)
    t0 = first_bar * beats_per_bar
    good = sung = 0
    for i, p in enumerate(pitches):
        if p < 0:
            continue
        c = _chord_at(chords, t0 + i * step - shift_bars * beats_per_bar)
        if c is None or c.root < 0:
            continue
        sung += 1
        good += (p - c.root) % 12 in QUALITIES[c.quality]
    return good / sung if sung else 0.0


def repeat_harmony(chords: list, melody: np.ndarray, sections: Sequence[Section],
                   beats_per_bar: int) -> list:
    """The chords with every repeated section given its first appearance's chords, unless they
    cover clearly less of the repeat's melody with chord tones (:data:`HARMONY_SLACK`).

    Parameters
    ----------
    chords : list of (start_beat, end_beat, ChordSymbol)
    melody : np.ndarray, shape (N, 3)
    sections : sequence of Section
    beats_per_bar : int

    Returns
    -------
    list of (start_beat, end_beat, ChordSymbol), sorted, contiguous where the input was.
    """
    first: dict[str, Section] = {}
    out = sorted(chords, key=lambda c: c[0])
    for s in sections:
        src = first.setdefault(s.label, s)
        if src is s:
            continue
        length = min(s.end_bar - s.material_bar, src.end_bar - src.material_bar)
        shift = s.material_bar - src.material_bar
        a, z = s.material_bar * beats_per_bar, (s.material_bar + length) * beats_per_bar
        own = chord_tone_share(melody, out, s.material_bar, s.material_bar + length, beats_per_bar)
        copied = chord_tone_share(melody, out, s.material_bar, s.material_bar + length, beats_per_bar, shift)
        if copied < own - HARMONY_SLACK:
            continue
        d = shift * beats_per_bar
        src_spans = [(max(cs, a - d) + d, min(ce, z - d) + d, c) for cs, ce, c in out
                     if ce > a - d + 1e-9 and cs < z - d - 1e-9]
        kept = []
        for cs, ce, c in out:
            if ce <= a + 1e-9 or cs >= z - 1e-9:
                kept.append((cs, ce, c))
                continue
            if cs < a - 1e-9:
                kept.append((cs, a, c))
            if ce > z + 1e-9:
                kept.append((z, ce, c))
        out = sorted(kept + src_spans, key=lambda c: c[0])
    return out


# ---- the band's shape ----------------------------------------------------------------------------
def shape_parts(parts: dict, sections: Sequence[Section], beats_per_bar: int,
                bars: np.ndarray | None = None) -> dict:
    """The band shaped by the sections' energy (a new dict; arrays (M, 4): onset_beat,
    duration_beats, midi, velocity).

    * energy 0: no pads, the guitar on counted beats only, every part a little softer;
    * energy 1: as written, slightly softer than the fullest;
    * energy 2: as written at full velocity.

    ``bars`` (bool per bar), if given, limits the shaping to those bars (the others are kept
    exactly, as when bars of an earlier arrangement are regenerated).
    """
    out = {}
    for name, notes in parts.items():
        arr = np.asarray(notes, dtype=float).reshape(-1, 4).copy()
        if not len(arr):
            out[name] = arr
            continue
        bar = np.floor(arr[:, 0] / beats_per_bar + 1e-9).astype(int)
        mine = np.ones(len(arr), dtype=bool) if bars is None else bars[np.clip(bar, 0, len(bars) - 1)]
        keep = np.ones(len(arr), dtype=bool)
        for s in sections:
            inside = (bar >= s.start_bar) & (bar < s.end_bar) & mine
            if not inside.any():
                continue
            arr[inside, 3] = np.clip(np.round(arr[inside, 3] * ENERGY_VELOCITY[s.energy]), 1, 127)
            if s.energy == 0:
                if name == "pads":
                    keep &= ~inside
                elif name == "guitar":
                    on_beat = np.abs(arr[:, 0] - np.round(arr[:, 0])) < 1e-6
                    keep &= ~inside | on_beat
        out[name] = arr[keep]
    return out
