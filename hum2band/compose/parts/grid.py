"""The band's parts on a bar-by-tick grid: what the accompaniment model reads and writes.

One bar is ``MAX_TICKS`` = 48 ticks: 12 ticks per counted beat, so straight sixteenths (every 3
ticks), triplets and swung eighths (tick 8) are all exact. A 4/4 bar uses 48 ticks, a 3/4 bar 36,
a 6/8 bar (two dotted-quarter beats) 24; the rest of the row is masked.

Inputs per tick (:func:`tick_features`) describe the melody (is a note starting or sounding, its
pitch class relative to the key and to the chord root) and the chord (root relative to the key,
quality, bass). Nothing depends on the absolute key: the melody and the chords are encoded
relative to the tonic, and the pitched parts relative to the sounding chord's root, so every song
counts as being in every key at once (the key-relative encoding that replaces transposition
augmentation).

Outputs per tick (:data:`OUT_SIZE` numbers):

* drums: an onset logit and a velocity for each of :data:`DRUM_CLASSES` (General MIDI keys);
* each pitched part (:data:`PITCHED_PARTS`): an onset logit, a velocity and a log2 duration (in
  ticks) for each of ``N_REL`` = 48 pitches, counted in semitones above the chord root's pitch
  class plus the part's register floor (:data:`REGISTER_FLOOR`): bass relative 20..67, the others
  40..87. Decoding adds the root pitch class back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...music.chords import QUALITIES, ChordSymbol

TICKS_PER_BEAT = 12
MAX_BEATS_PER_BAR = 4
MAX_TICKS = TICKS_PER_BEAT * MAX_BEATS_PER_BAR

#: Parts the model writes, in output order.
PARTS = ("drums", "bass", "keys", "guitar", "pads")
PITCHED_PARTS = PARTS[1:]
N_REL = 48
#: Lowest relative pitch of each pitched part: MIDI pitch = root pitch class + floor + index.
REGISTER_FLOOR = {"bass": 20, "keys": 40, "guitar": 40, "pads": 40}

#: Drum classes: (name, General MIDI key written, GM keys read into this class).
DRUM_CLASSES = (
    ("kick", 36, (35, 36)),
    ("snare", 38, (38, 40)),
    ("side stick", 37, (37,)),
    ("clap", 39, (39,)),
    ("closed hi-hat", 42, (42, 44)),
    ("open hi-hat", 46, (46,)),
    ("ride", 51, (51, 53, 59)),
    ("crash", 49, (49, 52, 55, 57)),
    ("low tom", 45, (41, 43, 45)),
    ("high tom", 48, (47, 48, 50)),
    ("shaker", 70, (54, 69, 70, 82)),
    ("cowbell", 56, (56,)),
    ("claves", 75, (75, 76, 77)),
    ("high conga", 63, (60, 62, 63)),
    ("low conga", 64, (61, 64)),
    ("timbale", 65, (65, 66, 67, 68, 73, 74)),
)
N_DRUM = len(DRUM_CLASSES)
DRUM_CLASS_OF_KEY = {k: i for i, (_, _, keys) in enumerate(DRUM_CLASSES) for k in keys}

QUALITY_NAMES = tuple(QUALITIES)
N_QUALITY = len(QUALITY_NAMES)

# ---- output layout ------------------------------------------------------------------------------
_P0 = 2 * N_DRUM


def part_slices(part: str) -> tuple[slice, slice, slice]:
    """Onset, velocity and log-duration slices of a pitched part in the per-tick output."""
    i = PITCHED_PARTS.index(part)
    base = _P0 + 3 * N_REL * i
    return (slice(base, base + N_REL), slice(base + N_REL, base + 2 * N_REL),
            slice(base + 2 * N_REL, base + 3 * N_REL))


OUT_SIZE = _P0 + 3 * N_REL * len(PITCHED_PARTS)
#: Size of one tick of the onset grid fed back to the decoder (drums + every pitched part).
ONSET_SIZE = N_DRUM + N_REL * len(PITCHED_PARTS)

# ---- input layout -------------------------------------------------------------------------------
#: melody onset, melody sounding, pc rel. key (12), pc rel. chord root (12), register (1),
#: chord root rel. key (12), quality (N_QUALITY), bass rel. root (12), chord starts, no chord,
#: beat starts, bar starts.
TICK_FEATURES = 2 + 12 + 12 + 1 + 12 + N_QUALITY + 12 + 2 + 2

#: Tempo bands (counted beats per minute): < 70, < 90, < 110, < 130, < 160, >= 160.
TEMPO_EDGES_BPM = (70.0, 90.0, 110.0, 130.0, 160.0)
METERS = ((4, 4), (3, 4), (6, 8))


def meter_index(meter: Sequence[int]) -> int:
    """Index into :data:`METERS` (2/4 and other duple meters count as 4/4)."""
    m = (int(meter[0]), int(meter[1]))
    if m in METERS:
        return METERS.index(m)
    if m[0] % 3 == 0 and m[1] == 8:
        return 2
    if m[0] == 3:
        return 1
    return 0


def tempo_band(tempo_bpm: float) -> int:
    return int(np.searchsorted(TEMPO_EDGES_BPM, float(tempo_bpm), side="right"))


def bar_ticks(beats_per_bar: int) -> int:
    return int(beats_per_bar) * TICKS_PER_BEAT


@dataclass
class ChordGrid:
    """The chord sounding at every tick of every bar.

    Attributes
    ----------
    root_pc, bass_pc : np.ndarray, shape (n_bars, MAX_TICKS), int
        Absolute pitch classes, -1 where no chord sounds.
    quality : np.ndarray, shape (n_bars, MAX_TICKS), int
        Index into :data:`QUALITY_NAMES`, -1 where no chord sounds.
    starts : np.ndarray, shape (n_bars, MAX_TICKS), bool
        A chord (different from the one before) starts on this tick.
    """

    root_pc: np.ndarray
    bass_pc: np.ndarray
    quality: np.ndarray
    starts: np.ndarray


def chord_grid(chords: Sequence[tuple[float, float, ChordSymbol]], n_bars: int,
               beats_per_bar: int) -> ChordGrid:
    """Sample chord spans (start_beat, end_beat, ChordSymbol) onto the tick grid.

    A tick without a chord inherits the last chord before it (a chart's chord holds until the
    next one); ticks before the first chord take the first chord.
    """
    n_ticks = bar_ticks(beats_per_bar)
    root = -np.ones((n_bars, MAX_TICKS), dtype=np.int64)
    bass = -np.ones_like(root)
    qual = -np.ones_like(root)
    flat_r = -np.ones(n_bars * n_ticks, dtype=np.int64)
    flat_b, flat_q = flat_r.copy(), flat_r.copy()
    spans = sorted((float(s), float(e), c) for s, e, c in chords if c.root >= 0 and e > s)
    for s, e, c in spans:
        a = max(int(round(s * TICKS_PER_BEAT)), 0)
        b = min(int(round(e * TICKS_PER_BEAT)), len(flat_r))
        if b <= a:
            continue
        flat_r[a:b] = c.root
        flat_b[a:b] = c.bass
        flat_q[a:b] = QUALITY_NAMES.index(c.quality)
    if spans:
        # fill gaps forward (then the lead-in backward) so every tick has a chord
        idx = np.where(flat_r >= 0, np.arange(len(flat_r)), -1)
        idx = np.maximum.accumulate(idx)
        first = int(np.argmax(flat_r >= 0))
        idx[idx < 0] = first
        flat_r, flat_b, flat_q = flat_r[idx], flat_b[idx], flat_q[idx]
    root[:, :n_ticks] = flat_r.reshape(n_bars, n_ticks)
    bass[:, :n_ticks] = flat_b.reshape(n_bars, n_ticks)
    qual[:, :n_ticks] = flat_q.reshape(n_bars, n_ticks)
    key = flat_r * 1000 + flat_q * 20 + flat_b
    st = np.ones(len(key), dtype=bool)
    st[1:] = key[1:] != key[:-1]
    starts = np.zeros((n_bars, MAX_TICKS), dtype=bool)
    starts[:, :n_ticks] = st.reshape(n_bars, n_ticks)
    return ChordGrid(root, bass, qual, starts)


@dataclass
class MelodyGrid:
    """The melody on the tick grid: MIDI pitch sounding (-1 = rest) and onsets."""

    pitch: np.ndarray   # (n_bars, MAX_TICKS) int
    onset: np.ndarray   # (n_bars, MAX_TICKS) bool


def melody_grid(melody: np.ndarray, n_bars: int, beats_per_bar: int) -> MelodyGrid:
    """Sample a monophonic melody, rows (onset_beat, offset_beat, midi), onto the tick grid."""
    n_ticks = bar_ticks(beats_per_bar)
    total = n_bars * n_ticks
    pitch = -np.ones(total, dtype=np.int64)
    onset = np.zeros(total, dtype=bool)
    for on, off, midi in np.asarray(melody, dtype=float).reshape(-1, 3):
        a = int(round(on * TICKS_PER_BEAT))
        b = int(round(off * TICKS_PER_BEAT))
        b = max(b, a + 1)
        if b <= 0 or a >= total:
            continue
        pitch[max(a, 0):min(b, total)] = int(round(midi))
        if a >= 0:
            onset[a] = True
    p = -np.ones((n_bars, MAX_TICKS), dtype=np.int64)
    o = np.zeros((n_bars, MAX_TICKS), dtype=bool)
    p[:, :n_ticks] = pitch.reshape(n_bars, n_ticks)
    o[:, :n_ticks] = onset.reshape(n_bars, n_ticks)
    return MelodyGrid(p, o)


def tick_features(mel: MelodyGrid, ch: ChordGrid, tonic_pc: int, beats_per_bar: int) -> np.ndarray:
    """Per-tick encoder input, shape (n_bars, MAX_TICKS, TICK_FEATURES), float32."""
    n_bars = mel.pitch.shape[0]
    f = np.zeros((n_bars, MAX_TICKS, TICK_FEATURES), dtype=np.float32)
    bars, ticks = np.nonzero(mel.pitch >= 0)
    p = mel.pitch[bars, ticks]
    f[..., 0] = mel.onset
    f[bars, ticks, 1] = 1.0
    f[bars, ticks, 2 + (p - tonic_pc) % 12] = 1.0
    r = ch.root_pc[bars, ticks]
    has = r >= 0
    f[bars[has], ticks[has], 14 + (p[has] - r[has]) % 12] = 1.0
    f[bars, ticks, 26] = (p - 60) / 12.0
    o = 27
    cb, ct = np.nonzero(ch.root_pc >= 0)
    root = ch.root_pc[cb, ct]
    f[cb, ct, o + (root - tonic_pc) % 12] = 1.0
    f[cb, ct, o + 12 + ch.quality[cb, ct]] = 1.0
    f[cb, ct, o + 12 + N_QUALITY + (ch.bass_pc[cb, ct] - root) % 12] = 1.0
    o2 = o + 24 + N_QUALITY
    f[..., o2] = ch.starts
    n_ticks = bar_ticks(beats_per_bar)
    f[:, :n_ticks, o2 + 1] = (ch.root_pc[:, :n_ticks] < 0)
    f[:, 0:n_ticks:TICKS_PER_BEAT, o2 + 2] = 1.0
    f[:, 0, o2 + 3] = 1.0
    return f


def tick_mask(n_bars: int, beats_per_bar: int) -> np.ndarray:
    m = np.zeros((n_bars, MAX_TICKS), dtype=bool)
    m[:, :bar_ticks(beats_per_bar)] = True
    return m


# ---- targets ----------------------------------------------------------------------------------
@dataclass
class PartEvents:
    """The notes of an example's parts as sparse grid entries.

    Attributes
    ----------
    tick : np.ndarray, shape (K,), int
        Song tick of each onset (bar * MAX_TICKS + tick in bar).
    column : np.ndarray, shape (K,), int
        Onset column in the per-tick output (drum class, or a pitched part's relative pitch).
    velocity : np.ndarray, shape (K,), float
        0-1.
    log2_dur : np.ndarray, shape (K,), float
        log2 of the duration in ticks (pitched parts; 0 for drums).
    present : np.ndarray, shape (len(PARTS),), bool
        Parts this example has (the others are not supervised).
    """

    tick: np.ndarray
    column: np.ndarray
    velocity: np.ndarray
    log2_dur: np.ndarray
    present: np.ndarray


def clashes_with_melody(midi: int, on_tick: int, off_tick: int, mel_pitch_flat: np.ndarray) -> bool:
    """Does a note over [on_tick, off_tick) (flat ticks of a bar-major melody row without padding)
    sound a minor second or major seventh against the melody on a counted beat?"""
    a, b = max(on_tick, 0), min(off_tick, len(mel_pitch_flat))
    first = a + (-a) % TICKS_PER_BEAT
    for t in range(first, b, TICKS_PER_BEAT):
        m = mel_pitch_flat[t]
        if m >= 0 and (int(midi) - int(m)) % 12 in (1, 11):
            return True
    return False


def part_events(parts: dict, ch: ChordGrid, n_bars: int, beats_per_bar: int,
                mel: MelodyGrid | None = None, drop_clashes: bool = True) -> PartEvents:
    """Sparse training targets for the parts of one example.

    Parameters
    ----------
    parts : dict
        part name -> array (M, 4): onset_beat, duration_beats, midi, velocity.
    drop_clashes : bool
        Leave out pitched notes that sound a minor second / major seventh against the melody on
        a counted beat: the rule-based arranger the corpus was rendered with cannot hear the
        melody, the model is taught not to clash with it.
    """
    n_ticks = bar_ticks(beats_per_bar)
    total = n_bars * n_ticks
    root_flat = ch.root_pc[:, :n_ticks].reshape(-1)
    mel_flat = mel.pitch[:, :n_ticks].reshape(-1) if mel is not None else None
    present = np.zeros(len(PARTS), dtype=bool)
    seen: dict = {}
    for name, notes in parts.items():
        if name not in PARTS:
            continue
        present[PARTS.index(name)] = True
        for onset_beat, dur_beats, midi, velocity in np.asarray(notes, dtype=float).reshape(-1, 4):
            t = int(round(onset_beat * TICKS_PER_BEAT))
            if t < 0 or t >= total:
                continue
            v = float(np.clip(velocity, 1, 127)) / 127.0
            song_tick = (t // n_ticks) * MAX_TICKS + t % n_ticks
            if name == "drums":
                c = DRUM_CLASS_OF_KEY.get(int(midi))
                if c is None:
                    continue
                col, d = c, 0.0
            else:
                r = int(root_flat[t]) if root_flat[t] >= 0 else 0
                d_ticks = max(1, int(round(dur_beats * TICKS_PER_BEAT)))
                if drop_clashes and mel_flat is not None and clashes_with_melody(
                        int(midi), t, t + d_ticks, mel_flat):
                    continue
                rel = int(midi) - r - REGISTER_FLOOR[name]
                while rel < 0:
                    rel += 12
                while rel >= N_REL:
                    rel -= 12
                col = part_slices(name)[0].start + rel
                d = float(np.log2(min(d_ticks, 8 * TICKS_PER_BEAT)))
            k = (song_tick, col)
            if k not in seen or seen[k][0] < v:
                seen[k] = (v, d)
    keys = sorted(seen)
    return PartEvents(np.array([k[0] for k in keys], dtype=np.int64),
                      np.array([k[1] for k in keys], dtype=np.int64),
                      np.array([seen[k][0] for k in keys], dtype=np.float32),
                      np.array([seen[k][1] for k in keys], dtype=np.float32), present)


#: For each onset column, the column of its velocity and of its duration (-1: none).
def _value_maps() -> tuple[np.ndarray, np.ndarray]:
    vel = -np.ones(OUT_SIZE, dtype=np.int64)
    dur = -np.ones(OUT_SIZE, dtype=np.int64)
    vel[:N_DRUM] = np.arange(N_DRUM, 2 * N_DRUM)
    for p in PITCHED_PARTS:
        s_on, s_vel, s_dur = part_slices(p)
        vel[s_on] = np.arange(s_vel.start, s_vel.stop)
        dur[s_on] = np.arange(s_dur.start, s_dur.stop)
    return vel, dur


VELOCITY_COLUMN, DURATION_COLUMN = _value_maps()


def densify(ev: PartEvents, n_bars: int, first_bar: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense (onset, velocity, log2 duration) grids, each (n_bars, MAX_TICKS, OUT_SIZE) float32,
    for bars [first_bar, first_bar + n_bars) of an example."""
    on = np.zeros((n_bars * MAX_TICKS, OUT_SIZE), dtype=np.float32)
    vel = np.zeros_like(on)
    dur = np.zeros_like(on)
    t = ev.tick - first_bar * MAX_TICKS
    keep = (t >= 0) & (t < n_bars * MAX_TICKS)
    t, c = t[keep], ev.column[keep]
    on[t, c] = 1.0
    vel[t, VELOCITY_COLUMN[c]] = ev.velocity[keep]
    dc = DURATION_COLUMN[c]
    has = dc >= 0
    dur[t[has], dc[has]] = ev.log2_dur[keep][has]
    shape = (n_bars, MAX_TICKS, OUT_SIZE)
    return on.reshape(shape), vel.reshape(shape), dur.reshape(shape)


ONSET_COLUMNS = np.concatenate([np.arange(N_DRUM)] + [
    np.arange(part_slices(p)[0].start, part_slices(p)[0].stop) for p in PITCHED_PARTS])
#: Index into PARTS of every output column (0 = drums).
COLUMN_PART = np.zeros(OUT_SIZE, dtype=np.int64)
for _i, _p in enumerate(PITCHED_PARTS):
    COLUMN_PART[part_slices(_p)[0].start:part_slices(_p)[2].stop] = _i + 1


# ---- bar positions ---------------------------------------------------------------------------
N_BAR_POS = 4 + 8 + 4 + 2   # bar mod 4, bar mod 8, bars left (0, 1, 2, 3+), melody rests next bar


def bar_positions(n_bars: int, mel: MelodyGrid, total_bars: int | None = None,
                  first_bar: int = 0) -> np.ndarray:
    """Per-bar position ids, shape (n_bars, 4): bar mod 4, bar mod 8, bars to the end (capped
    at 3), and whether the melody is resting at the start of the next bar (a phrase ends: the
    place for a fill)."""
    total = total_bars if total_bars is not None else n_bars
    out = np.zeros((n_bars, 4), dtype=np.int64)
    for i in range(n_bars):
        b = first_bar + i
        out[i, 0] = b % 4
        out[i, 1] = 4 + b % 8
        out[i, 2] = 12 + min(max(total - 1 - b, 0), 3)
        nxt = i + 1
        rest_next = nxt >= n_bars or mel.pitch[nxt, 0] < 0
        out[i, 3] = 16 + int(rest_next)
    return out
