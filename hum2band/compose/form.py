"""The song's form, found from the melody: sections, which ones repeat, and how the band shapes them.

A songwriter's hum has a form before it has a band: phrases of four or eight bars (or six, or
twelve), some sung again (a verse, a chorus), some new (a bridge), each ending on a cadence.
:func:`find_sections` reads it from the melody alone:

1. **phrases** (:func:`find_phrases`): every bar line is scored as a phrase boundary from the
   melody around it (:func:`boundary_strengths`): a rest or a long note before it, a cadence (that
   note the tonic, or a tone of the tonic triad), the melody starting again as the song started;
   a note held across the bar line counts against it. The bars are then cut into phrases by
   dynamic programming over those scores and a prior on phrase lengths (4 and 8 bars likeliest,
   then 6, 12, 2, ...), so a song of two 6-bar phrases is cut at bar 7 and a song that runs on
   without a breath falls back to 4-bar phrases. A pickup bar at the start (its first note in the
   second half of the bar) belongs to the first phrase; a pickup inside the song (notes in the
   half bar before a bar line, after a breath) belongs to the phrase it leads into;
2. **repeats**: two phrases are the same material when their melodies match on most 16ths
   (:func:`melody_similarity`: the same pitch sounding, or the same rest, at each 16th);
3. **sections** (:func:`group_phrases`): phrases are grouped into sections of about 8 bars (two
   4-bar phrases, one 6- or 8-bar phrase, ...) by dynamic programming that prefers sections whose
   run of phrases is sung again elsewhere; sections are labelled A, B, C... by first appearance: a
   section sung again (the same run of phrases, or a melody matching on most 16ths) gets its first
   appearance's letter. The phrase boundaries inside a section are kept (``phrase_starts``).

A user may name the form instead (``--form "A A B A"``: :func:`sections_from_form`).

The sections then shape the arrangement: :func:`repeat_harmony` gives a repeated section the
chords of its first appearance (unless those fit its melody clearly worse),
:func:`section_phrase_ends` says where the drums fill (2: into a new section, 1: into a phrase
inside one), :func:`melody_rest_bars` finds the bars the singer leaves empty (the band breaks or
builds there), and :func:`shape_parts` makes the band build: a sparser first section, a fuller
one for the contrasting or returning material, the last bar landing with the last sung note.

Times are counted beats from the first bar line (beat 0), bars 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
#: Log-prior of a phrase of so many bars (other lengths: :data:`OTHER_PHRASE`): songs are made of
#: 4- and 8-bar phrases, then 6 and 12; 2 and 3 only where the melody clearly says so.
PHRASE_PRIOR = {1: -4.0, 2: -2.2, 3: -1.8, 4: 0.0, 5: -1.5, 6: -0.7, 7: -1.6, 8: -0.4, 10: -1.6,
                12: -1.6, 16: -2.4}
OTHER_PHRASE = -2.5
#: The last phrase of a take may be cut short (the singer stopped): a length of 3-7 bars costs at
#: most this there.
LAST_PHRASE = -1.2
MAX_PHRASE_BARS = 16
#: A bar line with no cue at all scores this as a boundary (a melody that runs on).
BOUNDARY_BASE = -1.0
#: Added to a bar line a multiple of :data:`PHRASE_BARS` bars from the first full bar.
HYPERMETER = 0.25
#: Log-prior of a section of so many bars (others: :data:`OTHER_SECTION`), and the bonus of a
#: section whose run of phrases is sung again elsewhere.
SECTION_PRIOR = {4: -0.9, 6: -0.3, 8: 0.0, 10: -0.6, 12: -0.7, 16: -0.9}
OTHER_SECTION = -1.2
REPEAT_BONUS = 1.0
MAX_SECTION_BARS = 16
#: The label of the bars before the singer comes in, when :func:`find_sections` is given them.
INTRO_LABEL = "intro"


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
    phrase_starts : tuple of int
        First bars of the phrases inside the section after its first (the section's own start
        not included): where a phrase ends inside it.
    """

    start_bar: int
    end_bar: int
    label: str
    energy: int = 1
    pickup_bars: int = 0
    phrase_starts: tuple = ()

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


# ---- phrases ------------------------------------------------------------------------------------
_MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
_MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])


def melody_tonic(melody: np.ndarray) -> tuple[int, str]:
    """(tonic pitch class, "major"/"minor") of a melody in counted beats: the key profile
    (Temperley's) that best fits its duration-weighted pitch classes, its last note as tie-break."""
    mel = np.asarray(melody, dtype=float).reshape(-1, 3)
    if not len(mel):
        return 0, "major"
    pcs = np.round(mel[:, 2]).astype(int) % 12
    hist = np.bincount(pcs, weights=np.clip(mel[:, 1] - mel[:, 0], 0.1, 4.0), minlength=12)
    last = np.zeros(12)
    last[pcs[int(np.argmax(mel[:, 0]))]] = 0.05
    best, key = -np.inf, (0, "major")
    for mode, prof in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for t in range(12):
            score = float(np.corrcoef(np.roll(prof, t), hist)[0, 1]) if hist.std() > 0 else 0.0
            score += last[t]
            if score > best + 1e-9:
                best, key = score, (t, mode)
    return key


def boundary_strengths(melody: np.ndarray, first_bar: int, end_bar: int, beats_per_bar: int,
                       tonic_pc: int | None = None, mode: str | None = None) -> np.ndarray:
    """How strongly each bar line ``first_bar < b < end_bar`` ends a phrase, shape (end_bar + 1,)
    (0 elsewhere).

    At bar line ``b`` the melody may start again anywhere from half a bar before it (a pickup)
    to half a bar after it (a phrase that comes in late); for each such restart, the note before
    it scores (relative to the melody's median note-to-note time):

    * a rest before the restart: its length against the median, up to +2;
    * a long note: 0.7 log2 of its length against the median, up to +1.4;
    * a cadence, when the note is held three times the median or followed by a rest of half of
      it: +1 on the tonic, +0.5 on the third or fifth of the tonic triad, +0.3 on the second
      degree (a half cadence), and +0.3 more when that note lands on a strong beat (the bar's
      first, or its middle in 4/4);
    * the restart sung as the song's opening was (two bars, most 16ths): +0.8.

    The best restart counts, plus :data:`BOUNDARY_BASE`, plus :data:`HYPERMETER` on a bar line
    a multiple of 4 bars from the first full bar (where a phrase that gives no cue is expected). A bar line with no restart near it
    scores -2 when a note is held across it, -0.5 when the melody rests over it (the boundary
    goes where the singer comes back in).
    """
    mel = np.asarray(melody, dtype=float).reshape(-1, 3)
    mel = mel[np.argsort(mel[:, 0], kind="stable")]
    out = np.zeros(end_bar + 1)
    if len(mel) < 2:
        return out
    if tonic_pc is None or mode is None:
        tonic_pc, mode = melody_tonic(mel)
    third = 3 if mode == "minor" else 4
    on, off, pitch = mel[:, 0], mel[:, 1], np.round(mel[:, 2]).astype(int)
    ioi = np.diff(on)
    med = float(np.median(ioi[ioi > 1e-6])) if np.any(ioi > 1e-6) else 1.0
    bpb = beats_per_bar
    half = bpb / 2.0
    grid_start = first_bar + int(is_pickup_bar(mel, first_bar, bpb))
    for b in range(first_bar + 1, end_bar):
        line = b * bpb
        cand = np.nonzero((on[1:] >= line - half - 1e-6) & (on[1:] < line + half - 1e-6))[0] + 1
        if not len(cand):
            held = np.any((on < line - 1e-6) & (off > line + 0.25))
            out[b] = -2.0 if held else -0.5
            continue
        best = -np.inf
        restart = 0.8 if b > grid_start + 1 and melody_similarity(mel, b, grid_start, 2, bpb) >= 0.75 else 0.0
        for j in cand:
            i = j - 1
            rest = max(on[j] - off[i], 0.0)
            long = (on[j] - on[i]) / med
            score = min(rest / med, 2.0) + 0.7 * float(np.clip(np.log2(max(long, 1e-6)), 0.0, 2.0))
            if long >= 3.0 or rest >= 0.5 * med:
                degree = (pitch[i] - tonic_pc) % 12
                score += 1.0 if degree == 0 else 0.5 if degree in (third, 7) else 0.3 if degree == 2 else 0.0
                pos = on[i] - np.floor(on[i] / bpb + 1e-9) * bpb
                if abs(pos) < 1e-6 or (bpb == 4 and abs(pos - 2.0) < 1e-6):
                    score += 0.3
            best = max(best, score + restart)
        out[b] = BOUNDARY_BASE + best + (HYPERMETER if (b - grid_start) % PHRASE_BARS == 0 else 0.0)
    return out


def _phrase_prior(length: int, last: bool) -> float:
    p = PHRASE_PRIOR.get(length, OTHER_PHRASE)
    return max(p, LAST_PHRASE) if last and 3 <= length < SECTION_BARS else p


def find_phrases(melody: np.ndarray, first_bar: int, end_bar: int, beats_per_bar: int,
                 tonic_pc: int | None = None, mode: str | None = None) -> list[tuple[int, int]]:
    """The melody's phrases as bar ranges ``(start, end)``, contiguous from ``first_bar`` to
    ``end_bar`` (a pickup bar at the start belongs to the first phrase): the cut that maximises the
    boundary scores (:func:`boundary_strengths`) plus the phrase-length prior
    (:data:`PHRASE_PRIOR`)."""
    if end_bar <= first_bar:
        return []
    strength = boundary_strengths(melody, first_bar, end_bar, beats_per_bar, tonic_pc, mode)
    grid_start = first_bar + int(is_pickup_bar(melody, first_bar, beats_per_bar))
    if end_bar - grid_start < 2:
        return [(first_bar, end_bar)]
    best = {grid_start: (0.0, None)}
    for b in range(grid_start + 1, end_bar + 1):
        cands = []
        for a in range(max(grid_start, b - MAX_PHRASE_BARS), b):
            if a not in best:
                continue
            score = best[a][0] + _phrase_prior(b - a, b == end_bar) + (strength[a] if a > grid_start else 0.0)
            cands.append((score, a))
        if cands:
            best[b] = max(cands, key=lambda x: (x[0], -x[1]))
    cuts = _backtrack(best, end_bar)
    cuts[0] = first_bar
    return list(zip(cuts[:-1], cuts[1:]))


def _backtrack(best: dict, end: int) -> list[int]:
    """The cut points of a dynamic programme's best path, in order: ``best[j] = (score, i)``
    with ``i`` the previous cut before ``j`` (None at the start)."""
    cuts, j = [end], end
    while best[j][1] is not None:
        j = best[j][1]
        cuts.append(j)
    return sorted(cuts)


def _label_phrases(melody: np.ndarray, phrases: Sequence[tuple[int, int]], beats_per_bar: int,
                   skip_first: int = 0) -> list[int]:
    """Per phrase, the index of the first phrase with the same material (itself if new)."""
    out: list[int] = []
    for k, (a, b) in enumerate(phrases):
        a = a + (skip_first if k == 0 else 0)
        same = k
        for m in sorted(set(out)):
            fa, fb = phrases[m]
            fa = fa + (skip_first if m == 0 else 0)
            if abs((b - a) - (fb - fa)) > 2:
                continue
            if melody_similarity(melody, fa, a, min(b - a, fb - fa), beats_per_bar) >= SAME_MATERIAL:
                same = m
                break
        out.append(same)
    return out


def group_phrases(melody: np.ndarray, phrases: Sequence[tuple[int, int]], beats_per_bar: int,
                  pickup_bars: int = 0) -> list[Section]:
    """Sections from phrases (see the module doc), labelled by first appearance; energies are not
    planned here."""
    if not phrases:
        return []
    kinds = _label_phrases(melody, phrases, beats_per_bar, pickup_bars)
    n = len(phrases)
    lengths = [b - a - (pickup_bars if k == 0 else 0) for k, (a, b) in enumerate(phrases)]

    def runs(i: int, j: int) -> tuple:
        return tuple(kinds[i:j])

    # how often each run of phrases (as material kinds with lengths) occurs, non-overlapping
    def repeated(i: int, j: int) -> bool:
        key = runs(i, j)
        for s in range(0, n - (j - i) + 1):
            if (s + (j - i) <= i or s >= j) and runs(s, s + (j - i)) == key:
                return True
        return False

    best = {0: (0.0, None)}
    for j in range(1, n + 1):
        cands = []
        for i in range(j - 1, -1, -1):
            size = sum(lengths[i:j])
            if size > MAX_SECTION_BARS and j - i > 1:
                break
            score = best[i][0] + SECTION_PRIOR.get(size, OTHER_SECTION)
            if n > 1 and repeated(i, j):
                score += REPEAT_BONUS
            cands.append((score, i))
        best[j] = max(cands, key=lambda x: (x[0], -x[1]))
    cuts = _backtrack(best, n)
    sections: list[Section] = []
    labels: list[str] = []
    firsts: list[tuple[int, int, tuple]] = []
    for i, j in zip(cuts[:-1], cuts[1:]):
        start, end = phrases[i][0], phrases[j - 1][1]
        material = start + (pickup_bars if i == 0 else 0)
        label = None
        for (fa, fb, key), lab in zip(firsts, sorted(set(labels), key=labels.index)):
            length = min(end - material, fb - fa)
            if key == runs(i, j) or melody_similarity(melody, fa, material, length, beats_per_bar) >= SAME_MATERIAL:
                label = lab
                break
        if label is None:
            label = chr(ord("A") + len(firsts)) if len(firsts) < 26 else "Z"
            firsts.append((material, end, runs(i, j)))
        labels.append(label)
        sections.append(Section(start, end, label, pickup_bars=pickup_bars if i == 0 else 0,
                                phrase_starts=tuple(phrases[k][0] for k in range(i + 1, j))))
    return sections


def find_sections(melody: np.ndarray, first_bar: int, end_bar: int, beats_per_bar: int,
                  tonic_pc: int | None = None, mode: str | None = None) -> list[Section]:
    """The sections of the sung bars ``first_bar <= b < end_bar`` (see the module doc).

    Parameters
    ----------
    melody : np.ndarray, shape (N, 3)
        onset_beat, offset_beat, MIDI pitch.
    first_bar, end_bar : int
        The first sung bar and the bar after the last (an intro before and the ending after are
        not part of the form).
    beats_per_bar : int
    tonic_pc, mode : int, str, optional
        The song's key for the cadences; estimated from the melody when not given
        (:func:`melody_tonic`).

    Returns
    -------
    list of Section
        Contiguous, covering ``first_bar`` to ``end_bar``, energies from :func:`plan_energy`; a
        song shorter than 12 bars is one section (its phrases inside it); two bars or more before
        the first note are a section of their own, :data:`INTRO_LABEL`, sparse like the first
        sung one.
    """
    n = end_bar - first_bar
    if n <= 0:
        return []
    mel = np.asarray(melody, dtype=float).reshape(-1, 3)
    sung = int(np.floor(mel[:, 0].min() / beats_per_bar + 1e-9)) if len(mel) else first_bar
    if sung - first_bar >= 2 and sung < end_bar:
        # bars before the singer comes in: an instrumental intro, sparse, then the song's own form
        song = find_sections(mel, sung, end_bar, beats_per_bar, tonic_pc, mode)
        return [Section(first_bar, sung, INTRO_LABEL, 0)] + [replace(s, energy=0) if i == 0 else s
                                                             for i, s in enumerate(song)]
    phrases = find_phrases(mel, first_bar, end_bar, beats_per_bar, tonic_pc, mode)
    pickup = int(is_pickup_bar(mel, first_bar, beats_per_bar)) if phrases and phrases[0][1] - first_bar > 1 else 0
    if n < SECTION_BARS + PHRASE_BARS:
        return plan_energy([Section(first_bar, end_bar, "A", pickup_bars=pickup,
                                    phrase_starts=tuple(a for a, _ in phrases[1:]))])
    return plan_energy(group_phrases(mel, phrases, beats_per_bar, pickup))


def melody_rest_bars(melody: np.ndarray, n_bars: int, beats_per_bar: int) -> np.ndarray:
    """Bars inside the song (after its first sung bar, before its last) in which the singer rests,
    shape (n_bars,) bool: no note sounds in the bar before its last counted beat (a pickup into
    the next bar may start there)."""
    mel = np.asarray(melody, dtype=float).reshape(-1, 3)
    out = np.zeros(n_bars, dtype=bool)
    if not len(mel):
        return out
    first = int(np.floor(mel[:, 0].min() / beats_per_bar + 1e-9))
    last = int(np.floor((mel[:, 1].max() - 1e-6) / beats_per_bar + 1e-9))
    for b in range(max(first + 1, 0), min(last, n_bars)):
        lo, hi = b * beats_per_bar, (b + 1) * beats_per_bar - 1.0
        out[b] = not np.any((mel[:, 0] < hi - 1e-6) & (mel[:, 1] > lo + 0.25))
    return out


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
        out.append(Section(s.start_bar, s.end_bar, s.label, energy, s.pickup_bars, tuple(s.phrase_starts)))
    return out


def section_phrase_ends(sections: Sequence[Section], n_bars: int, phrase_bars: int = SECTION_BARS) -> np.ndarray:
    """Bars a drum fill leads out of, shape (n_bars,) int: 2 on the last bar before every new
    section, 1 on the last bar of every phrase inside a section (its ``phrase_starts``) and, in a
    section with no phrase found inside it, every ``phrase_bars`` bars; 0 elsewhere and always on
    the song's last bar."""
    ends = np.zeros(n_bars, dtype=np.int8)
    for s in sections:
        inside = list(s.phrase_starts) or list(range(s.start_bar + phrase_bars, s.end_bar, phrase_bars))
        for b in inside:
            if 0 < b < n_bars and s.start_bar < b < s.end_bar:
                ends[b - 1] = max(ends[b - 1], 1)
        if 0 < s.start_bar < n_bars:
            ends[s.start_bar - 1] = 2
    if n_bars:
        ends[n_bars - 1] = 0
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
