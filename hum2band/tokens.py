"""The token representation of the accompaniment model (harmony half; parts append later).

See ``docs/model.md`` for why it looks like this. In short:

Encoder input (the melody and the conditions)
    A sequence of *events*, each embedded as a sum of factor embeddings (one position per event,
    not one per factor, to keep sequences short on a CPU):

    * 4 condition events first: style, meter, key mode, tempo band (:data:`STYLES`,
      :data:`METERS`, :data:`TEMPO_BANDS_BPM`);
    * per bar of the window: a BAR event, then one NOTE event per melody note starting in the bar,
      with factors position in bar (``1/12`` of a counted beat: 16ths and triplets are exact),
      pitch class **relative to the key's tonic**, octave, duration bin, plus the bar's index in
      the window. A note tied over a bar line gets a continuation NOTE event at position 0 of the
      next bar (flag ``tied``), so every bar sees what sounds in it.

Decoder output (what the band plays), bar-synchronous::

    BOS  BAR [POS_p CHORD_rq [BASS_b]]*  BAR [POS_p CHORD_rq ...]*  ...

    * ``POS_p``: onset of a chord in the bar, ``p`` in 1/12 beats (harmonic rhythm is explicit:
      a chord per bar is ``BAR POS_0 CHORD``; an anticipation is ``POS_42``);
    * ``CHORD_rq``: root relative to the tonic (0-11) x quality of :data:`hum2band.chords.QUALITIES`;
    * ``BASS_b``: only for inversions, bass pitch class relative to the tonic;
    * a bar without chord events keeps the chord that sounds (held over the bar line); the first
      bar of a window restates the sounding chord at ``POS_0`` so a window is self-contained.

    Part tokens (drums, bass, keys...) will be appended per bar after the chord events, behind
    their own PART marker, with ids after :data:`N_HARMONY_TOKENS` (see ``docs/model.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .chords import QUALITIES, ChordSymbol
from .melody import Key, Note

TICKS_PER_BEAT = 12  #: position grid: 1/12 counted beat (16ths and 8th triplets both exact)
MAX_BEATS_PER_BAR = 6
N_POS = TICKS_PER_BEAT * MAX_BEATS_PER_BAR  #: 72 positions in a bar
MAX_CHORDS_PER_BAR = 4
MAX_NOTES_PER_BAR = 24

# ---- conditions ----------------------------------------------------------------------------
#: Style vocabulary: issue 3's twelve styles; "" (unknown) is index 0.
STYLES = ("", "pop", "rock", "ballad", "folk", "country", "swing", "jazz-ballad", "bossa nova",
          "latin", "funk", "reggae", "waltz")
STYLE_ALIASES = {"bossa": "bossa nova", "bossanova": "bossa nova", "jazz": "swing",
                 "jazzballad": "jazz-ballad", "jazz ballad": "jazz-ballad"}
METERS = ((4, 4), (3, 4), (2, 4), (6, 8), (2, 2), (3, 8), (9, 8), (12, 8), (5, 4), (6, 4))
TEMPO_BANDS_BPM = (70.0, 95.0, 120.0, 150.0)  #: band edges, counted beats per minute
MODES = ("major", "minor")
# Condition ids: one embedding table, offsets per kind (0 = none).
_COND_STYLE = 1
_COND_METER = _COND_STYLE + len(STYLES)
_COND_MODE = _COND_METER + len(METERS) + 1
_COND_TEMPO = _COND_MODE + len(MODES)
N_COND = _COND_TEMPO + len(TEMPO_BANDS_BPM) + 1

#: Duration bin edges in ticks (1/12 beat): bins 1..len+1 (0 = none).
DUR_EDGES_TICKS = (1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 14.0, 20.0, 30.0, 42.0, 60.0, 84.0)
N_DUR = len(DUR_EDGES_TICKS) + 2
N_OCT = 12  # octave index midi // 12 clipped to 1..10, 0 = none
# Encoder event kinds.
EV_PAD, EV_COND, EV_BAR, EV_NOTE, EV_TIED = 0, 1, 2, 3, 4
N_EV_KINDS = 5

# ---- decoder vocabulary ----------------------------------------------------------------------
PAD, BOS, EOS, BAR = 0, 1, 2, 3
POS0 = 4
CHORD0 = POS0 + N_POS
QUALITY_LIST = tuple(QUALITIES)
N_CHORDS = 12 * len(QUALITY_LIST)
BASS0 = CHORD0 + N_CHORDS
N_HARMONY_TOKENS = BASS0 + 12  #: decoder vocabulary size of the harmony model


def style_index(style: str | None) -> int:
    """Index of a style name in :data:`STYLES` (0 for None/unknown-but-empty).

    Raises
    ------
    ValueError
        For a non-empty name that is not a style (the caller turns it into an OptionError).
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


def condition_ids(style: str | None, meter: Sequence[int], mode: str, tempo_bpm: float) -> list[int]:
    """The 4 condition ids (style, meter, mode, tempo band) in the shared condition table."""
    return [_COND_STYLE + style_index(style), _COND_METER + meter_index(meter),
            _COND_MODE + (1 if mode == "minor" else 0), _COND_TEMPO + tempo_band(tempo_bpm)]


def chord_token(chord: ChordSymbol, tonic_pc: int) -> int:
    return CHORD0 + ((chord.root - tonic_pc) % 12) * len(QUALITY_LIST) + QUALITY_LIST.index(chord.quality)


def token_chord(token: int, tonic_pc: int, bass_token: int | None = None) -> ChordSymbol:
    """The chord of a CHORD token (and optional BASS token), in absolute pitch classes."""
    r_rel, q = divmod(token - CHORD0, len(QUALITY_LIST))
    root = (r_rel + tonic_pc) % 12
    bass = root if bass_token is None else (bass_token - BASS0 + tonic_pc) % 12
    return ChordSymbol(root, QUALITY_LIST[q], bass)


def is_pos(t: int) -> bool:
    return POS0 <= t < CHORD0


def is_chord(t: int) -> bool:
    return CHORD0 <= t < BASS0


def is_bass(t: int) -> bool:
    return BASS0 <= t < N_HARMONY_TOKENS


# ---- melody events ---------------------------------------------------------------------------
@dataclass
class BarNotes:
    """Encoder note events of one bar, as int arrays of shape (n_notes,)."""

    pos: np.ndarray
    pc: np.ndarray
    octave: np.ndarray
    dur: np.ndarray
    tied: np.ndarray
    #: Ticks each key-relative pitch class sounds in each beat, shape (MAX_BEATS_PER_BAR, 12).
    beat_pc: np.ndarray = field(default_factory=lambda: np.zeros((MAX_BEATS_PER_BAR, 12), np.float32))


def duration_bin(ticks: float) -> int:
    return 1 + int(np.searchsorted(DUR_EDGES_TICKS, ticks, side="right"))


def melody_bars(notes, beats_per_bar: int, n_bars: int, tonic_pc: int) -> list[BarNotes]:
    """Cut a melody into per-bar note events (positions in ticks, pitch classes key-relative).

    Parameters
    ----------
    notes : sequence of objects with ``onset_beat``, ``offset_beat``, ``midi``
    beats_per_bar : int
    n_bars : int
    tonic_pc : int

    Returns
    -------
    list of BarNotes, length n_bars
    """
    per: list[list[tuple]] = [[] for _ in range(n_bars)]
    bar_ticks = beats_per_bar * TICKS_PER_BEAT
    beat_pc = np.zeros((n_bars, MAX_BEATS_PER_BAR, 12), np.float32)
    for n in notes:
        on = int(round(n.onset_beat * TICKS_PER_BEAT))
        off = max(on + 1, int(round(n.offset_beat * TICKS_PER_BEAT)))
        pc = (n.midi - tonic_pc) % 12
        for beat in range(max(0, on // TICKS_PER_BEAT), min(n_bars * beats_per_bar, -(-off // TICKS_PER_BEAT))):
            ov = min(off, (beat + 1) * TICKS_PER_BEAT) - max(on, beat * TICKS_PER_BEAT)
            bb, bk = divmod(beat, beats_per_bar)
            if ov > 0 and bk < MAX_BEATS_PER_BAR:
                beat_pc[bb, bk, pc] += ov
        b = on // bar_ticks
        first = True
        while b < n_bars and on < off:
            bar_end = (b + 1) * bar_ticks
            seg_end = min(off, bar_end)
            if b >= 0:
                per[b].append((min(on - b * bar_ticks, N_POS - 1), (n.midi - tonic_pc) % 12,
                               int(np.clip(n.midi // 12, 1, N_OCT - 1)), duration_bin(off - on),
                               0 if first else 1))
            first = False
            on, b = seg_end, b + 1
    out = []
    for b, evs in enumerate(per):
        evs = sorted(evs)[:MAX_NOTES_PER_BAR]
        a = np.array(evs, dtype=np.int64).reshape(-1, 5)
        out.append(BarNotes(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], beat_pc[b]))
    return out


N_MELODY_FEATURES = 36


def melody_feature(bars: Sequence[BarNotes], bar: int, pos_ticks: int) -> np.ndarray:
    """What the melody does around a decoder token, shape (36,): key-relative pitch-class
    durations (each block normalized to sum 1, zeros if silent) of the whole bar, of the bar from
    the token's beat to the bar line, and of the token's beat alone.

    This gives the decoder the melody under the chord it is about to write directly (the encoder
    gives the context); it is what an HMM's emission sees, so training need not discover it.
    """
    f = np.zeros(N_MELODY_FEATURES, np.float32)
    if not (0 <= bar < len(bars)):
        return f
    h = bars[bar].beat_pc
    k = min(pos_ticks // TICKS_PER_BEAT, MAX_BEATS_PER_BAR - 1)
    for i, v in enumerate((h.sum(0), h[k:].sum(0), h[k])):
        t = float(v.sum())
        if t > 0:
            f[12 * i:12 * i + 12] = v / t
    return f


def decoder_features(bars: Sequence[BarNotes], start_bar: int, tokens: Sequence[int]) -> np.ndarray:
    """:func:`melody_feature` of every decoder token of a window starting at ``start_bar``,
    shape (n_tokens, 36). BOS gets zeros; BAR position 0; POS/CHORD/BASS their chord's position."""
    out = np.zeros((len(tokens), N_MELODY_FEATURES), np.float32)
    bar, pos = start_bar - 1, 0
    for i, t in enumerate(tokens):
        if t == BAR:
            bar, pos = bar + 1, 0
        elif is_pos(t):
            pos = t - POS0
        elif t in (BOS, PAD, EOS):
            continue
        out[i] = melody_feature(bars, bar, pos)
    return out


@dataclass
class EncoderInput:
    """Encoder features of one window, int64 arrays of shape (n_events,)."""

    kind: np.ndarray
    cond: np.ndarray
    bar: np.ndarray
    pos: np.ndarray
    pc: np.ndarray
    octave: np.ndarray
    dur: np.ndarray

    FIELDS = ("kind", "cond", "bar", "pos", "pc", "octave", "dur")

    def __len__(self) -> int:
        return len(self.kind)


def encoder_input(bars: Sequence[BarNotes], cond: Sequence[int], start_bar: int, end_bar: int) -> EncoderInput:
    """Condition events then BAR/NOTE events for bars ``start_bar <= b < end_bar``.

    The bar factor is ``b - start_bar + 1`` (0 is kept for condition events).
    """
    cols = {k: [] for k in EncoderInput.FIELDS}

    def add(kind, cond_id=0, bar=0, pos=0, pc=0, octave=0, dur=0):
        cols["kind"].append(kind)
        cols["cond"].append(cond_id)
        cols["bar"].append(bar)
        cols["pos"].append(pos)
        cols["pc"].append(pc)
        cols["octave"].append(octave)
        cols["dur"].append(dur)

    for c in cond:
        add(EV_COND, cond_id=c)
    for b in range(start_bar, end_bar):
        bi = b - start_bar + 1
        add(EV_BAR, bar=bi)
        if 0 <= b < len(bars):
            bn = bars[b]
            for i in range(len(bn.pos)):
                add(EV_TIED if bn.tied[i] else EV_NOTE, bar=bi, pos=int(bn.pos[i]) + 1,
                    pc=int(bn.pc[i]) + 1, octave=int(bn.octave[i]), dur=int(bn.dur[i]))
    return EncoderInput(**{k: np.asarray(v, dtype=np.int64) for k, v in cols.items()})


# ---- chord events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChordEvent:
    """A chord onset inside a bar: ``pos_ticks`` from the bar line, key-relative tokens."""

    pos_ticks: int
    chord_token: int
    bass_token: int | None = None

    def tokens(self) -> list[int]:
        out = [POS0 + self.pos_ticks, self.chord_token]
        if self.bass_token is not None:
            out.append(self.bass_token)
        return out


def chord_bars(spans, beats_per_bar: int, n_bars: int, tonic_pc: int) -> list[list[ChordEvent]]:
    """Chord onsets per bar (key-relative), snapped to the tick grid; at most
    :data:`MAX_CHORDS_PER_BAR` per bar (the longest kept). Spans are ``(start_beat, end_beat, chord)``."""
    per: list[list[tuple]] = [[] for _ in range(n_bars)]
    bar_ticks = beats_per_bar * TICKS_PER_BEAT
    prev, prev_end = None, None
    for s, e, c in sorted(spans, key=lambda x: x[0]):
        if c.is_no_chord:
            prev = None
            continue
        on = int(round(s * TICKS_PER_BEAT))
        b, p = divmod(on, bar_ticks)
        if not (0 <= b < n_bars):
            continue
        ev = ChordEvent(int(min(p, N_POS - 1)), chord_token(c, tonic_pc),
                        None if c.bass == c.root else BASS0 + (c.bass - tonic_pc) % 12)
        if prev is not None and prev.chord_token == ev.chord_token and prev.bass_token == ev.bass_token \
                and abs(s - prev_end) < 1e-6:
            prev_end = e  # the same chord split in two spans: one onset
            continue
        if per[b] and per[b][-1][1].pos_ticks == ev.pos_ticks:
            per[b][-1] = (e - s, ev)  # two chords snapped onto one tick: the later wins
        else:
            per[b].append((e - s, ev))
        prev, prev_end = ev, e
    out = []
    for evs in per:
        if len(evs) > MAX_CHORDS_PER_BAR:
            keep = sorted(sorted(range(len(evs)), key=lambda i: -evs[i][0])[:MAX_CHORDS_PER_BAR])
            evs = [evs[i] for i in keep]
        out.append([ev for _, ev in evs])
    return out


def sounding_event(chords_per_bar: Sequence[Sequence[ChordEvent]], bar: int) -> ChordEvent | None:
    """The chord event sounding at the start of ``bar`` (the last onset before it)."""
    for b in range(min(bar, len(chords_per_bar)) - 1, -1, -1):
        if chords_per_bar[b]:
            return chords_per_bar[b][-1]
    return None


def decoder_tokens(chords_per_bar: Sequence[Sequence[ChordEvent]], start_bar: int, end_bar: int,
                   with_bos: bool = True) -> tuple[list[int], list[int]]:
    """Decoder tokens for bars ``[start_bar, end_bar)`` and each token's bar factor.

    The first bar restates the sounding chord at position 0 when it has no onset there.
    Returns ``(tokens, bars)``, bars counted from 1 within the window (0 for BOS).
    """
    toks, bars = ([BOS], [0]) if with_bos else ([], [])
    for b in range(start_bar, end_bar):
        bi = b - start_bar + 1
        evs = list(chords_per_bar[b]) if b < len(chords_per_bar) else []
        if b == start_bar and (not evs or evs[0].pos_ticks > 0):
            carried = sounding_event(chords_per_bar, b)
            if carried is not None:
                evs.insert(0, ChordEvent(0, carried.chord_token, carried.bass_token))
        toks.append(BAR)
        bars.append(bi)
        for ev in evs:
            t = ev.tokens()
            toks += t
            bars += [bi] * len(t)
    return toks, bars


def events_from_tokens(tokens: Sequence[int]) -> list[list[ChordEvent]]:
    """Parse decoder tokens (BOS/EOS allowed) back into chord events per bar."""
    bars: list[list[ChordEvent]] = []
    pos, chord = None, None
    for t in list(tokens) + [BAR]:
        if t in (BOS, EOS, PAD):
            continue
        if t == BAR or is_pos(t):
            if chord is not None:
                bars[-1].append(ChordEvent(pos, chord))
                chord = None
            if t == BAR:
                bars.append([])
            else:
                pos = t - POS0
        elif is_chord(t):
            chord = t
        elif is_bass(t) and chord is not None and bars:
            bars[-1].append(ChordEvent(pos, chord, t))
            chord = None
    return bars[:-1]


def events_to_spans(chords_per_bar: Sequence[Sequence[ChordEvent]], beats_per_bar: int,
                    tonic_pc: int, end_beat: float | None = None) -> list[tuple[float, float, ChordSymbol]]:
    """Chord spans ``(start_beat, end_beat, ChordSymbol)`` in absolute pitch; repeats merged."""
    onsets = []
    for b, evs in enumerate(chords_per_bar):
        for ev in evs:
            onsets.append((b * beats_per_bar + ev.pos_ticks / TICKS_PER_BEAT,
                           token_chord(ev.chord_token, tonic_pc, ev.bass_token)))
    end = float(end_beat) if end_beat is not None else len(chords_per_bar) * beats_per_bar
    spans: list[tuple[float, float, ChordSymbol]] = []
    for i, (t, c) in enumerate(onsets):
        t_next = onsets[i + 1][0] if i + 1 < len(onsets) else end
        if t_next <= t:
            continue
        if spans and spans[-1][2] == c and abs(spans[-1][1] - t) < 1e-9:
            spans[-1] = (spans[-1][0], t_next, c)
        else:
            spans.append((t, t_next, c))
    return spans


# ---- songs -----------------------------------------------------------------------------------
@dataclass
class SongTokens:
    """A song ready for the model: per-bar melody and chord events, in key-relative form."""

    bars: list[BarNotes]
    chords: list[list[ChordEvent]]
    cond: list[int]
    tonic_pc: int
    mode: str
    beats_per_bar: int
    meter: tuple
    source: str = ""
    song_id: str = ""

    @property
    def n_bars(self) -> int:
        return len(self.bars)


def key_of_notes(notes) -> Key:
    """Key of beat-grid notes via :func:`hum2band.key.estimate_key` (beats stand in for seconds)."""
    from .key import estimate_key

    return estimate_key([Note(float(n.onset_beat), float(n.offset_beat), float(n.midi), int(n.midi))
                         for n in notes])


def song_tokens(melody, meter, beats_per_bar: int, key: Key | None, tempo_bpm: float,
                style: str | None, chords=None, n_bars: int | None = None,
                source: str = "", song_id: str = "") -> SongTokens:
    """Tokenize a melody (and its chords if given) in the key's frame of reference.

    ``key`` None estimates it from the melody. ``beats_per_bar`` above
    :data:`MAX_BEATS_PER_BAR` is refused by the caller.
    """
    if key is None:
        key = key_of_notes(melody)
    tonic = key.tonic_pitch_class
    if n_bars is None:
        ends = [n.offset_beat for n in melody] + [c[1] for c in (chords or [])] + [beats_per_bar]
        n_bars = int(math.ceil(max(ends) / beats_per_bar - 1e-9))
    bars = melody_bars(melody, beats_per_bar, n_bars, tonic)
    cps = chord_bars(chords, beats_per_bar, n_bars, tonic) if chords else [[] for _ in range(n_bars)]
    return SongTokens(bars, cps, condition_ids(style, meter, key.mode, tempo_bpm), tonic, key.mode,
                      beats_per_bar, tuple(meter), source, song_id)


#: Training style label of each source / OpenEWLD Discogs genre.
SOURCE_STYLE = {"pop909": "pop", "nottingham": "folk", "chord-melody": "swing"}
GENRE_STYLE = {"Pop": "pop", "Jazz": "swing", "Rock": "rock", "Folk, World, & Country": "folk",
               "Latin": "latin", "Funk / Soul": "funk", "Reggae": "reggae", "Blues": "swing"}


def style_of_leadsheet(ls) -> str:
    """The style label a lead sheet trains under ("" when the source says nothing usable)."""
    if ls.source in SOURCE_STYLE:
        return SOURCE_STYLE[ls.source]
    return GENRE_STYLE.get(ls.genre, "")


def leadsheet_tokens(ls, style: str | None = "auto") -> SongTokens:
    """Tokenize a :class:`hum2band.datasets.LeadSheet` (``style="auto"``: its own label)."""
    st = style_of_leadsheet(ls) if style == "auto" else style
    return song_tokens(ls.melody, ls.meter, ls.beats_per_bar, ls.key, ls.tempo_bpm, st,
                       chords=ls.chords, n_bars=ls.n_bars, source=ls.source, song_id=ls.song_id)
