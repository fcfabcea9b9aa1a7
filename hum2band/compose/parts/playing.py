"""What a player does with the notes the parts model samples, one bar at a time.

The model writes a bar as an onset grid (ticks x columns, :mod:`hum2band.compose.parts.grid`);
these rules turn that into what a band member would play before the bar is fed back to the
decoder, so the model hears the cleaned bar as its memory:

* :func:`merge_doubles` -- one hit where the model wrote two on neighbouring ticks of the same
  drum or pitch (the corpus's timing jitter learned as extra notes: they sound as flams);
* :func:`hear_melody` -- a pitched note that would sound a minor second or major seventh against
  the melody where the melody sounds (any tick, not only counted beats) is not started, or is
  released before the clash;
* :func:`bass_line` -- the bass plays the chord's root, or its stated bass, on every chord
  change (the note nearest the change, an anticipation included; one is added where the bass
  plays but left the change empty), stays in a bass player's register (E1-G3) and takes each
  note in the octave nearest the note before, so it leaps an octave only as a style's idiom;
* :func:`keep_register` -- chord instruments no higher than :data:`TOP_MIDI`.

Every function edits the bar's arrays in place. Shapes: ``fire``, ``dur`` are (MAX_TICKS,
ONSET_SIZE) for one bar, ``dur`` in log2 ticks; ``flat`` arrays are one value per song tick
(bar-major, no padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import grid as G

#: Lowest and highest bass note a bass player plays (E1, G3).
BASS_LOW_MIDI, BASS_HIGH_MIDI = 28, 55
#: Highest note of keys, guitar and pads (C6): above it a part is folded down an octave.
TOP_MIDI = 84
#: Styles whose bass lines jump an octave on the same pitch as an idiom.
OCTAVE_STYLES = ("funk",)
#: Ticks before a chord change that still count as the change (an anticipation: half a beat).
ANTICIPATION_TICKS = G.TICKS_PER_BEAT // 2
#: Ticks after a chord change within which a bass note counts as on the change.
LATE_TICKS = 2


def part_block(part: str) -> slice:
    """Onset columns of a pitched part in one tick of the onset grid."""
    lo = G.N_DRUM + G.N_REL * G.PITCHED_PARTS.index(part)
    return slice(lo, lo + G.N_REL)


@dataclass
class BarContext:
    """What the rules need to know about the bar being played.

    Attributes
    ----------
    bar : int
        0-based bar index in the song.
    n_ticks : int
        Ticks in this meter's bar (48, 36 or 24).
    root_flat, bass_flat : np.ndarray, shape (n_song_ticks,), int
        Chord root and stated bass pitch class on every song tick (-1: no chord).
    change_flat : np.ndarray, shape (n_song_ticks,), bool
        A new chord starts on this tick.
    mel_flat : np.ndarray, shape (n_song_ticks,), int
        Sounding melody MIDI pitch on every song tick (-1: rest).
    style : str
    """

    bar: int
    n_ticks: int
    root_flat: np.ndarray
    bass_flat: np.ndarray
    change_flat: np.ndarray
    mel_flat: np.ndarray
    style: str

    def song_tick(self, tick: int) -> int:
        return self.bar * self.n_ticks + int(tick)

    def root_at(self, tick: int) -> int:
        """Root pitch class at a tick of this bar (a negative tick is in the bar before)."""
        t = min(max(self.song_tick(tick), 0), len(self.root_flat) - 1)
        r = int(self.root_flat[t])
        return r if r >= 0 else 0


def midi_of(part: str, rel: int, root_pc: int) -> int:
    """MIDI pitch of a relative pitch column index of a part over a root."""
    return int(root_pc) + G.REGISTER_FLOOR[part] + int(rel)


def rel_of(part: str, midi: int, root_pc: int) -> int:
    """Relative pitch column index of a MIDI pitch over a root (may fall outside 0..N_REL-1)."""
    return int(midi) - int(root_pc) - G.REGISTER_FLOOR[part]


# ---- doubled hits -------------------------------------------------------------------------------
def merge_doubles(fire: np.ndarray, logits: np.ndarray, n_ticks: int,
                  previous_last: np.ndarray | None = None) -> int:
    """Keep one onset where a column fires on two neighbouring ticks (within 0.1 beat).

    Parameters
    ----------
    fire : np.ndarray, shape (MAX_TICKS, ONSET_SIZE), bool
        This bar's onsets (edited in place).
    logits : np.ndarray, shape (MAX_TICKS, ONSET_SIZE)
        The model's onset logits: of two neighbours the likelier one stays.
    n_ticks : int
    previous_last : np.ndarray, shape (ONSET_SIZE,), bool, optional
        Onsets on the last tick of the bar before: a hit on tick 0 right after one of them goes.

    Returns
    -------
    int
        Onsets removed.
    """
    removed = 0
    if previous_last is not None:
        dup = fire[0] & previous_last
        removed += int(dup.sum())
        fire[0] &= ~dup
    for t in range(1, n_ticks):
        both = fire[t] & fire[t - 1]
        if not both.any():
            continue
        cols = np.nonzero(both)[0]
        later_wins = logits[t, cols] > logits[t - 1, cols]
        fire[t - 1, cols[later_wins]] = False
        fire[t, cols[~later_wins]] = False
        removed += len(cols)
    return removed


# ---- the melody ---------------------------------------------------------------------------------
def first_clash_tick(midi: int, on_tick: int, off_tick: int, mel_flat: np.ndarray) -> int:
    """First song tick in [on_tick, off_tick) where a note of ``midi`` sounds a minor second or a
    major seventh (any octave) against the sounding melody; -1 if none."""
    a, b = max(int(on_tick), 0), min(int(off_tick), len(mel_flat))
    if b <= a:
        return -1
    seg = mel_flat[a:b]
    iv = (int(midi) - seg) % 12
    bad = (seg >= 0) & ((iv == 1) | (iv == 11))
    return a + int(np.argmax(bad)) if bad.any() else -1


def hear_melody(fire: np.ndarray, dur: np.ndarray, ctx: BarContext, part: str,
                min_ticks: int = G.TICKS_PER_BEAT // 2) -> None:
    """Leave out or shorten a part's notes that clash with the melody wherever it sounds.

    A note that clashes within its first ``min_ticks`` is not played; one that clashes later is
    released a tick before the clash (a player lifts the note when the singer moves onto it).
    """
    block = part_block(part)
    for tick in np.nonzero(fire[:ctx.n_ticks, block].any(axis=1))[0]:
        root = ctx.root_at(tick)
        st = ctx.song_tick(tick)
        for rel in np.nonzero(fire[tick, block])[0]:
            col = block.start + int(rel)
            d = max(1, int(round(2.0 ** float(dur[tick, col]))))
            c = first_clash_tick(midi_of(part, rel, root), st, st + d, ctx.mel_flat)
            if c < 0:
                continue
            if c - st < min_ticks:
                fire[tick, col] = False
            else:
                dur[tick, col] = np.log2(max(c - st - 1, 1))


# ---- the bass -----------------------------------------------------------------------------------
def nearest_octave(pc: int, near_midi: float, low: int = BASS_LOW_MIDI, high: int = BASS_HIGH_MIDI) -> int:
    """The MIDI note of pitch class ``pc`` in [low, high] nearest ``near_midi``."""
    cands = np.arange(low, high + 1)
    cands = cands[cands % 12 == int(pc) % 12]
    return int(cands[np.argmin(np.abs(cands - float(near_midi)))])


def bass_line(fire: np.ndarray, vel: np.ndarray, dur: np.ndarray, logits: np.ndarray,
              ctx: BarContext, previous_midi: float | None, active: bool) -> float | None:
    """Make the bar's bass line a bass player's (edits ``fire``, ``vel``, ``dur`` in place).

    Parameters
    ----------
    fire, vel, dur, logits : np.ndarray, shape (MAX_TICKS, ONSET_SIZE)
        The bar's onsets, velocities, log2 durations and the model's onset logits.
    ctx : BarContext
    previous_midi : float or None
        The last bass note played before this bar (None at the start of the song).
    active : bool
        The bass has been playing (this bar or the one before): a chord change it left empty
        gets the root; a bass that rests (a break, a style without bass) stays silent.

    Returns
    -------
    float or None
        The last bass note of the bar (or ``previous_midi`` if it played none).
    """
    block = part_block("bass")
    n = ctx.n_ticks
    bass = fire[:n, block]
    # one note at a time: the likeliest pitch on each tick
    for tick in np.nonzero(bass.sum(axis=1) > 1)[0]:
        cols = np.nonzero(bass[tick])[0]
        keep = cols[np.argmax(logits[tick, block.start + cols])]
        bass[tick] = False
        bass[tick, keep] = True
    onsets = {int(t): int(np.argmax(bass[t])) for t in np.nonzero(bass.any(axis=1))[0]}
    wanted_pc: dict[int, int] = {}
    changes = [t for t in range(n) if ctx.change_flat[ctx.song_tick(t)]]
    mean_vel = float(vel[:n, block][bass].mean()) if bass.any() else 0.7
    for c in changes:
        pc = int(ctx.bass_flat[ctx.song_tick(c)])
        if pc < 0:
            continue
        near = [t for t in onsets if c - ANTICIPATION_TICKS <= t <= c + LATE_TICKS]
        if near:
            t = min(near, key=lambda x: (abs(x - c), x < c))
        elif active and (onsets or previous_midi is not None):
            t = c
            onsets[t] = -1   # placed below
            vel[t, block] = mean_vel
            dur[t, block] = np.log2(G.TICKS_PER_BEAT)
        else:
            continue
        wanted_pc[t] = pc
    last = previous_midi
    bass[:] = False
    for t in sorted(onsets):
        root = ctx.root_at(t)
        rel = onsets[t]
        model_midi = midi_of("bass", rel, root) if rel >= 0 else None
        pc = wanted_pc.get(t, model_midi % 12 if model_midi is not None else root)
        low = max(BASS_LOW_MIDI, root + G.REGISTER_FLOOR["bass"])
        high = min(BASS_HIGH_MIDI, root + G.REGISTER_FLOOR["bass"] + G.N_REL - 1)
        if last is None:
            target = nearest_octave(pc, model_midi if model_midi is not None else 40, low, high)
        elif (ctx.style in OCTAVE_STYLES and model_midi is not None and pc == int(last) % 12
              and abs(model_midi - last) == 12 and low <= model_midi <= high):
            target = model_midi
        else:
            target = nearest_octave(pc, last, low, high)
        new_rel = rel_of("bass", target, root)
        if rel >= 0 and new_rel != rel:
            vel[t, block.start + new_rel] = vel[t, block.start + rel]
            dur[t, block.start + new_rel] = dur[t, block.start + rel]
        elif rel < 0:
            vel[t, block.start + new_rel] = mean_vel
            dur[t, block.start + new_rel] = np.log2(G.TICKS_PER_BEAT)
        bass[t, new_rel] = True
        last = float(target)
    fire[:n, block] = bass
    return last


# ---- chord instruments --------------------------------------------------------------------------
def keep_register(fire: np.ndarray, vel: np.ndarray, dur: np.ndarray, ctx: BarContext, part: str,
                  top_midi: int = TOP_MIDI) -> None:
    """Fold a chord instrument's notes above ``top_midi`` down an octave (dropped if the octave
    below is already played)."""
    block = part_block(part)
    for tick in np.nonzero(fire[:ctx.n_ticks, block].any(axis=1))[0]:
        root = ctx.root_at(tick)
        for rel in np.nonzero(fire[tick, block])[0][::-1]:
            if midi_of(part, rel, root) <= top_midi:
                continue
            col, low = block.start + int(rel), block.start + int(rel) - 12
            fire[tick, col] = False
            while midi_of(part, low - block.start, root) > top_midi:
                low -= 12
            if low >= block.start and not fire[tick, low]:
                fire[tick, low] = True
                vel[tick, low], dur[tick, low] = vel[tick, col], dur[tick, col]
