"""Generate the band's parts for a melody and its chords with the accompaniment model.

:func:`accompany` is the stage between harmonizing and arranging: it takes a melody on its beat
grid (:class:`hum2band.compose.harmony.harmonize.MelodyScore`, counted beats from the first bar line), the chords
(spans in the same beats) and a style, and returns the notes of each part in the same beats.

Decoding, bar by bar (one decoder step per bar):

1. the model gives, for every tick of the bar, an onset probability, a velocity and a duration
   for every drum class and every pitch of every part;
2. onsets are sampled at ``temperature`` with a seeded generator (same seed, same parts);
   temperature 0 keeps the onsets the model rates above one half;
3. the bar is played as a band member would (:mod:`hum2band.compose.parts.playing`,
   :mod:`hum2band.compose.parts.fills`): the drums keep the section's groove (its first two
   bars as the model wrote them come back bar for bar; one bar when the second is the first
   sampled again, :data:`GROOVE_TOLERANCE`) and vary it where a player does (a
   small change in the 2nd bar of four now and then, one in every 4th, the comping anticipated
   or voiced in another inversion there); one hit where the model wrote a flam; no note that
   sounds a minor second or major seventh against the melody wherever it sounds (the model was
   trained on targets without such notes on counted beats); the bass on the root or stated bass
   at each chord change, in E1-G3, each note in the nearest octave; chord instruments under C6
   and at most 4-6 notes a tick; a drum fill into each new section (two beats into a fuller one)
   and into each phrase inside one where the singer leaves room (a one-hit pickup where not), a
   crash on the new section's downbeat; where the singer rests a bar or more the band breaks
   or builds in the style's way (:data:`hum2band.compose.parts.fills.BREAK_KIND`);
4. what was played is fed back to the decoder for the next bar; the sections' energy then shapes
   the notes (:func:`hum2band.compose.form.shape_parts`).

Songs longer than ``WINDOW_BARS`` are written in overlapping windows: each new window starts with
the last ``OVERLAP_BARS`` bars already written, so the parts run on without a seam.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...errors import InputError, OptionError
from ...files.paths import MODELS_DIR
from ...music.chords import ChordSymbol
from ...music.meter import beats_per_bar
from ...music.styles import STYLE_NAMES
from ..form import melody_rest_bars, section_phrase_ends, shape_parts
from . import fills as F
from . import grid as G
from . import playing as P
from .model import N_VARIANTS, PartsModel

DEFAULT_PARTS_MODEL_PATH = MODELS_DIR / "parts.pt"
DEFAULT_TEMPERATURE = 0.6
WINDOW_BARS = 32
OVERLAP_BARS = 8
#: Most notes a chord instrument starts on one tick.
MAX_VOICES = {"bass": 1, "keys": 5, "guitar": 6, "pads": 4}
#: Bars in a phrase: the drums fill in the last beat of each phrase that leads into another
#: (two beats before every second one) and crash on the next downbeat.
PHRASE_BARS = 8
#: Chance of a small drum variation in the 2nd bar of each four of a section (the 4th always
#: varies, when it does not fill).
VARY_CHANCE = 0.5
#: Bars of a section's groove: the drums of its first two bars come back in the bars after.
GROOVE_BARS = 2
#: The second bar of a groove is the first one again (a one-bar groove) when the model's sample
#: of it differs from the first by at most this many hits: sampling, not a two-bar pattern.
GROOVE_TOLERANCE = 3

def load_parts_model(path: str | os.PathLike | None = None) -> tuple[PartsModel, dict]:
    """The accompaniment model and its metadata (loaded once per path)."""
    from ...files.weights import load_once
    from .model import load

    return load_once(path, "HUM2BAND_PARTS_MODEL", DEFAULT_PARTS_MODEL_PATH, load, "accompaniment model",
                     "python -m hum2band.train.parts --out models/")


@dataclass
class PartsScore:
    """The band's parts in counted beats.

    Attributes
    ----------
    parts : dict
        part name -> array (M, 4): onset_beat, duration_beats, midi, velocity (1-127).
    variant : int
        The groove variant the seed picked (1-based: the index in the style's groove list for the meter).
    onsets : np.ndarray, shape (n_bars, MAX_TICKS, ONSET_SIZE)
        The onset grid that was played (what ``keep`` takes back for regenerating bars).
    """

    parts: dict
    variant: int
    onsets: np.ndarray


def accompany(melody_notes: np.ndarray, chords: Sequence[tuple[float, float, ChordSymbol]],
              n_bars: int, meter: Sequence[int], tonic_pc: int, mode: str, tempo_bpm: float,
              style: str, seed: int = 0, temperature: float | None = None, variant: int | None = None,
              keep: PartsScore | None = None, regenerate_bars: tuple[int, int] | None = None,
              model: PartsModel | None = None, phrase_bars: int = PHRASE_BARS,
              sections: Sequence | None = None) -> PartsScore:
    """Write the parts for a melody under its chords.

    Parameters
    ----------
    melody_notes : np.ndarray, shape (N, 3)
        onset_beat, offset_beat, MIDI pitch; counted beats, beat 0 = first bar line.
    chords : sequence of (start_beat, end_beat, ChordSymbol)
    n_bars : int
        Bars to write (the melody's bars plus any intro and ending the caller added).
    meter : (int, int)
    tonic_pc, mode : int, str
        Key of the song (pitch class 0-11, "major"/"minor").
    tempo_bpm : float
        Counted beats per minute.
    style : str
        One of the twelve styles (:mod:`hum2band.music.styles`).
    seed : int
        Same seed, same parts (it also picks the groove variant unless ``variant`` is given).
    temperature : float, optional
        Onset sampling temperature; 0 is deterministic. Default :data:`DEFAULT_TEMPERATURE`.
    keep, regenerate_bars : PartsScore, (first_bar, end_bar), optional
        Regenerate only bars ``first_bar <= b < end_bar`` (0-based) and keep every other bar of
        ``keep`` exactly; the model hears the kept bars before the range.
    phrase_bars : int
        Bars in a phrase (where the drums fill); 0 for no fills.
    sections : sequence of :class:`hum2band.compose.form.Section`, optional
        The song's form: the drums fill into every new section (and every ``phrase_bars`` inside
        one), and the band plays each section at its energy (:func:`hum2band.compose.form.shape_parts`).

    Returns
    -------
    PartsScore
    """
    from ...music.styles import check_meter, get_style

    st = get_style(style)
    meter = (int(meter[0]), int(meter[1]))
    check_meter(st, meter)
    n_var = len(st.grooves[meter])
    bpb = beats_per_bar(meter)
    if bpb > G.MAX_BEATS_PER_BAR:
        raise OptionError(f"{meter[0]}/{meter[1]} has {bpb} beats a bar: the band plays up to "
                          f"{G.MAX_BEATS_PER_BAR}")
    if n_bars < 1:
        raise InputError("nothing to accompany: the melody has no bars")
    temperature = DEFAULT_TEMPERATURE if temperature is None else float(temperature)
    if temperature < 0:
        raise OptionError(f"temperature must be 0 or more, not {temperature}")
    if model is None:
        model, _ = load_parts_model()
    rng = np.random.default_rng(int(seed))
    if variant is None:
        variant = 1 + int(rng.integers(n_var)) if keep is None else keep.variant
    variant = int(np.clip(variant, 1, min(n_var, N_VARIANTS - 1)))

    mel = G.melody_grid(np.asarray(melody_notes, dtype=float).reshape(-1, 3), n_bars, bpb)
    ch = G.chord_grid(chords, n_bars, bpb)
    feats = G.tick_features(mel, ch, tonic_pc % 12, bpb)
    pos = G.bar_positions(n_bars, mel)
    mask = G.tick_mask(n_bars, bpb)
    n_ticks = G.bar_ticks(bpb)
    melody_arr = np.asarray(melody_notes, dtype=float).reshape(-1, 3)
    if sections:
        ends = section_phrase_ends(sections, n_bars, phrase_bars or n_bars)
    else:
        ends = phrase_end_bars(n_bars, phrase_bars).astype(np.int8) * 2
    player = _Player(st.name, st.feel, bpb, n_ticks, mel.pitch[:, :n_ticks].reshape(-1),
                     ch.root_pc[:, :n_ticks].reshape(-1), ch.bass_pc[:, :n_ticks].reshape(-1),
                     ch.starts[:, :n_ticks].reshape(-1), ends,
                     rests=melody_rest_bars(melody_arr, n_bars, bpb),
                     lifts=_lifts(sections, n_bars, phrase_bars),
                     anchors=_groove_anchors(sections, n_bars, phrase_bars or PHRASE_BARS))

    onsets = np.zeros((n_bars, G.MAX_TICKS, G.ONSET_SIZE), dtype=np.float32)
    velocity = np.zeros((n_bars, G.MAX_TICKS, G.ONSET_SIZE), dtype=np.float32)
    log2_dur = np.zeros((n_bars, G.MAX_TICKS, G.ONSET_SIZE), dtype=np.float32)
    fixed = np.zeros(n_bars, dtype=bool)
    if keep is not None and regenerate_bars is not None:
        a, z = regenerate_bars
        if keep.onsets.shape[0] != n_bars:
            raise OptionError(f"the earlier arrangement has {keep.onsets.shape[0]} bars, this one "
                              f"{n_bars}: regenerate bars of the same take")
        fixed[:] = True
        fixed[max(a, 0):min(z, n_bars)] = False
        onsets[fixed] = keep.onsets[fixed]
        # regenerated bars find their own groove: none is copied from a kept bar
        player.anchors = np.where(~fixed & fixed[np.clip(player.anchors, 0, n_bars - 1)] & (player.anchors >= 0),
                                  np.maximum(player.anchors, max(a, 0)), player.anchors)

    cond_ids = dict(style=STYLE_NAMES.index(st.name), variant=variant, meter=G.meter_index(meter),
                    tempo=G.tempo_band(tempo_bpm), mode=int(mode == "minor"))
    starts = list(range(0, max(n_bars - OVERLAP_BARS, 1), WINDOW_BARS - OVERLAP_BARS))
    with torch.no_grad():
        for w0 in starts:
            w1 = min(w0 + WINDOW_BARS, n_bars)
            n = w1 - w0
            t = lambda x, dt=torch.float32: torch.as_tensor(x, dtype=dt).unsqueeze(0)  # noqa: E731
            c = {k: torch.tensor([v]) for k, v in cond_ids.items()}
            cond = model.conditions(c["style"], c["variant"], c["meter"], c["tempo"], c["mode"])
            bar_mask = torch.ones(1, n, dtype=torch.bool)
            mem, tick_proj = model.encode(t(feats[w0:w1]), t(pos[w0:w1], torch.long), cond, bar_mask)
            first_new = w0 if w0 == 0 else w0 + OVERLAP_BARS
            # embeddings of "the bar before" for every bar of the window, filled as bars are written
            y = torch.zeros(1, n, model.cfg.d_model)
            y[0, 0] = model.start if w0 == 0 else model.prev_in(t(onsets[w0 - 1]).reshape(1, -1))[0]
            for b in range(w0 + 1, first_new):
                y[0, b - w0] = model.prev_in(t(onsets[b - 1]).reshape(1, -1))[0]
            for b in range(first_new, w1):
                k = b - w0 + 1
                if b > w0:
                    y[0, k - 1] = model.prev_in(t(onsets[b - 1]).reshape(1, -1))[0]
                if fixed[b]:
                    continue
                out = model.decode_embedded(mem[:, :k], tick_proj[:, :k], y[:, :k],
                                            t(pos[w0:b + 1], torch.long), cond, bar_mask[:, :k],
                                            last_only=True)[0, -1].numpy()
                on, vel, dur = _decide(out, b, mask[b], temperature, rng, player,
                                       onsets[b - 1] if b > 0 else None,
                                       _groove_bar(player, b))
                onsets[b], velocity[b], log2_dur[b] = on, vel, dur
    # bars kept from the earlier arrangement take their notes from it
    parts = _to_notes(onsets, velocity, log2_dur, ch, n_ticks, bpb, fixed, keep)
    if sections:
        parts = shape_parts(parts, sections, bpb, bars=~fixed if keep is not None else None)
    return PartsScore(parts, variant, onsets)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _lifts(sections, n_bars: int, phrase_bars: int) -> np.ndarray:
    """Per bar: the section after it is new material or plays fuller (the fill into it takes two
    beats). Without sections: every second phrase (the old 16-bar rule)."""
    out = np.zeros(n_bars, dtype=bool)
    if not sections:
        if phrase_bars > 0:
            out[2 * phrase_bars - 1::2 * phrase_bars] = True
        return out
    seen = set()
    for prev, nxt in zip(sections, sections[1:]):
        seen.add(prev.label)
        if 0 < nxt.start_bar <= n_bars and (nxt.energy > prev.energy or nxt.label not in seen):
            out[nxt.start_bar - 1] = True
    return out


def _groove_anchors(sections, n_bars: int, phrase_bars: int) -> np.ndarray:
    """Per bar, the first bar of its groove (the section's first full bar; every ``phrase_bars``
    from bar 0 without sections; bar 0 for an intro and a pickup bar before the first section);
    -1 for the bars after the last section (the ending)."""
    out = -np.ones(n_bars, dtype=int)
    if not sections:
        return (np.arange(n_bars) // phrase_bars) * phrase_bars if phrase_bars > 0 else out
    for sec in sections:
        lo, hi = max(sec.material_bar, 0), min(sec.end_bar, n_bars)
        out[lo:hi] = lo
    first = min(max(min(sec.material_bar for sec in sections), 0), n_bars)
    out[:first] = 0
    return out


def _groove_bar(player: "_Player", bar: int):
    """The drum onsets and velocities (MAX_TICKS, N_DRUM) this bar of the groove repeats, or None
    (the groove's own first bars, bars outside a section)."""
    a = int(player.anchors[bar])
    k = bar - a
    if a < 0 or k < GROOVE_BARS:
        return None
    src = a + k % GROOVE_BARS
    return player.grooves.get(src)


def _hits_apart(a: np.ndarray, b: np.ndarray) -> int:
    """Drum hits of one bar with no hit of the same drum within a tick in the other, both ways."""
    near = lambda x: x | np.roll(x, 1, axis=0) | np.roll(x, -1, axis=0)  # noqa: E731
    return int(np.sum(a & ~near(b)) + np.sum(b & ~near(a)))


def phrase_end_bars(n_bars: int, phrase_bars: int = PHRASE_BARS) -> np.ndarray:
    """Bars that end a phrase and lead into another (a fill goes there), shape (n_bars,) bool."""
    ends = np.zeros(n_bars, dtype=bool)
    if phrase_bars > 0:
        ends[phrase_bars - 1:n_bars - 1:phrase_bars] = True
    return ends


@dataclass
class _Player:
    """The song as the player rules see it, and what they carry from bar to bar."""

    style: str
    feel: str
    beats_per_bar: int
    n_ticks: int
    mel_flat: np.ndarray
    root_flat: np.ndarray
    bass_flat: np.ndarray
    change_flat: np.ndarray
    phrase_ends: np.ndarray
    rests: np.ndarray | None = None
    lifts: np.ndarray | None = None
    anchors: np.ndarray | None = None
    last_bass_midi: float | None = None
    bass_bars: int = 0
    grooves: dict | None = None

    def __post_init__(self) -> None:
        n = len(self.phrase_ends)
        self.rests = np.zeros(n, dtype=bool) if self.rests is None else self.rests
        self.lifts = np.zeros(n, dtype=bool) if self.lifts is None else self.lifts
        self.anchors = -np.ones(n, dtype=int) if self.anchors is None else self.anchors
        self.grooves = {} if self.grooves is None else self.grooves

    def room_at_end(self, bar: int) -> bool:
        """Does the singer leave the bar's last counted beat free (nothing sung on its first half)?"""
        t = (bar + 1) * self.n_ticks - G.TICKS_PER_BEAT
        return not np.any(self.mel_flat[t:t + G.TICKS_PER_BEAT // 2] >= 0)

    def context(self, bar: int) -> P.BarContext:
        return P.BarContext(bar, self.n_ticks, self.root_flat, self.bass_flat, self.change_flat,
                            self.mel_flat, self.style)


def _decide(out: np.ndarray, bar: int, tick_mask: np.ndarray, temperature: float,
            rng: np.random.Generator, player: _Player, previous: np.ndarray | None,
            groove: tuple | None = None):
    """Onsets, velocities and durations of one bar from the model's output (48, OUT_SIZE).

    ``previous`` is the onset grid played in the bar before (None for the first bar); ``groove``
    the drum onsets and velocities of the groove bar this one repeats (None: the model's own)."""
    n_ticks = player.n_ticks
    logits = out[:, G.ONSET_COLUMNS]
    if temperature <= 1e-6:
        fire = logits > 0
    else:
        p = _sigmoid(logits / temperature)
        fire = rng.random(p.shape) < p
    fire &= tick_mask[:, None]
    vel = np.clip(out[:, G.VELOCITY_COLUMN[G.ONSET_COLUMNS]], 0.05, 1.0)
    dcols = G.DURATION_COLUMN[G.ONSET_COLUMNS]
    dur = np.where(dcols >= 0, out[:, np.maximum(dcols, 0)], 0.0)
    ctx = player.context(bar)
    k = bar - int(player.anchors[bar]) if player.anchors[bar] >= 0 else -1
    if groove is None and k == 1 and bar - 1 in player.grooves:
        first = player.grooves[bar - 1]
        if _hits_apart(fire[:n_ticks, :G.N_DRUM], first[0][:n_ticks] > 0.5) <= GROOVE_TOLERANCE:
            groove = first          # the model's second bar is the first one, sampled again: a one-bar groove
    if groove is not None:
        fire[:, :G.N_DRUM], vel[:, :G.N_DRUM] = groove[0] > 0.5, groove[1]
    if k >= 0 and k % 4 == 3 and not player.phrase_ends[bar]:
        changes = ctx.change_flat[ctx.song_tick(0):ctx.song_tick(0) + n_ticks].astype(bool).copy()
        changes[0] = True
        for part in ("keys", "guitar"):
            F.displace_comping(fire, vel, dur, n_ticks, P.part_block(part), changes)
    elif k >= 0 and k % 4 == 1:
        F.invert_voicing(fire, vel, dur, n_ticks, P.part_block("keys"))
    P.merge_doubles(fire, logits, n_ticks, previous[n_ticks - 1] > 0.5 if previous is not None else None)
    for part in G.PITCHED_PARTS:
        P.hear_melody(fire, dur, ctx, part)
        if part != "bass":
            P.keep_register(fire, vel, dur, ctx, part)
        block = P.part_block(part)
        limit = MAX_VOICES[part]
        for tick in np.nonzero(fire[:, block].sum(axis=1) > limit)[0]:
            cand = np.nonzero(fire[tick, block])[0]
            cand = cand[np.argsort(-logits[tick, block.start + cand])[:limit]]
            fire[tick, block] = False
            fire[tick, block.start + cand] = True
    plays_bass = bool(fire[:n_ticks, P.part_block("bass")].any())
    active = plays_bass or player.bass_bars > 0
    player.last_bass_midi = P.bass_line(fire, vel, dur, logits, ctx, player.last_bass_midi, active)
    P.hear_melody(fire, dur, ctx, "bass", min_ticks=1)
    player.bass_bars = int(plays_bass)
    drums = fire[:n_ticks, :G.N_DRUM]
    if k >= 0 and k < GROOVE_BARS and drums.any():
        player.grooves[bar] = (fire[:, :G.N_DRUM].astype(np.float32), vel[:, :G.N_DRUM].copy())
    rest = bool(player.rests[bar])
    last_rest = rest and not (bar + 1 < len(player.rests) and player.rests[bar + 1])
    kind = F.BREAK_KIND.get(player.style, "fill")
    if rest and kind == "stop":
        F.stop_time(fire, vel, dur, n_ticks, player.style, player.feel, player.beats_per_bar, rng,
                    lead_back=last_rest)
    elif drums.any():
        after_rest = bar > 0 and player.rests[bar - 1]
        if bar > 0 and (player.phrase_ends[bar - 1] == 2 or after_rest):
            F.crash_downbeat(fire, vel, player.style)
        if last_rest:
            beats = player.beats_per_bar if kind == "build" else min(2, player.beats_per_bar)
            F.write_fill(fire, vel, n_ticks, player.style, player.feel, player.beats_per_bar, rng, beats)
        elif player.phrase_ends[bar] == 2:
            beats = 2 if player.lifts[bar] and player.beats_per_bar >= 4 else 1
            F.write_fill(fire, vel, n_ticks, player.style, player.feel, player.beats_per_bar, rng, beats)
        elif player.phrase_ends[bar] == 1:
            if player.room_at_end(bar):
                F.write_fill(fire, vel, n_ticks, player.style, player.feel, player.beats_per_bar, rng, 1)
            else:
                F.pickup(fire, vel, n_ticks, player.style)
        elif k >= 0 and (k % 4 == 3 or (k % 4 == 1 and rng.random() < VARY_CHANCE)):
            F.vary(fire, vel, n_ticks, player.beats_per_bar, rng, player.style)
    return fire.astype(np.float32), vel.astype(np.float32), dur.astype(np.float32)


def _without_flams(arr: np.ndarray, locked: np.ndarray) -> np.ndarray:
    """Drop a note that starts within one tick of the same pitch or drum (two columns can meet on
    one pitch across a chord change); ``arr`` rows are onset-sorted, and a ``locked`` row (a
    bar kept from an earlier arrangement) is never the one dropped."""
    keep = np.ones(len(arr), dtype=bool)
    for key in np.unique(arr[:, 2]) if len(arr) else ():
        idx = np.nonzero(arr[:, 2] == key)[0]
        prev = -1
        for i in idx:
            if prev >= 0 and arr[i, 0] - arr[prev, 0] < 1.5 / G.TICKS_PER_BEAT:
                if not locked[i]:
                    keep[i] = False
                    continue
                if not locked[prev]:
                    keep[prev] = False
            prev = i
    return arr[keep]


def _to_notes(onsets, velocity, log2_dur, ch: G.ChordGrid, n_ticks: int, bpb: int,
              fixed: np.ndarray, keep: PartsScore | None) -> dict:
    """Note lists (onset_beat, duration_beats, midi, velocity) per part from the played grids."""
    n_bars = onsets.shape[0]
    total = n_bars * n_ticks
    root_flat = ch.root_pc[:, :n_ticks].reshape(-1)
    bass_flat = ch.bass_pc[:, :n_ticks].reshape(-1)
    change = np.nonzero(ch.starts[:, :n_ticks].reshape(-1))[0]
    out: dict[str, list] = {p: [] for p in G.PARTS}
    for b in range(n_bars):
        if fixed[b] and keep is not None:
            lo, hi = b * bpb, (b + 1) * bpb
            for name, notes in keep.parts.items():
                arr = np.asarray(notes, dtype=float).reshape(-1, 4)
                sel = arr[(arr[:, 0] >= lo - 1e-9) & (arr[:, 0] < hi - 1e-9)]
                out.setdefault(name, []).extend(sel.tolist())
            continue
        ticks, cols = np.nonzero(onsets[b, :n_ticks] > 0.5)
        for tick, col in zip(ticks, cols):
            song_tick = b * n_ticks + int(tick)
            beat = song_tick / G.TICKS_PER_BEAT
            v = int(np.clip(round(float(velocity[b, tick, col]) * 127), 1, 127))
            if col < G.N_DRUM:
                out["drums"].append([beat, 0.25, G.DRUM_CLASSES[col][1], v])
                continue
            part = G.PITCHED_PARTS[(col - G.N_DRUM) // G.N_REL]
            rel = (col - G.N_DRUM) % G.N_REL
            root = int(root_flat[song_tick]) if root_flat[song_tick] >= 0 else 0
            midi = root + G.REGISTER_FLOOR[part] + rel
            d_ticks = int(np.clip(round(2.0 ** float(log2_dur[b, tick, col])), 1, 8 * G.TICKS_PER_BEAT))
            nxt = change[change > song_tick]
            if (part == "bass" and len(nxt) and nxt[0] - song_tick <= P.ANTICIPATION_TICKS
                    and midi % 12 == bass_flat[nxt[0]]):
                nxt = nxt[1:]   # an anticipated bass note rings on into its chord
            end = min(song_tick + d_ticks, int(nxt[0]) if len(nxt) else total, total)
            out[part].append([beat, max(end - song_tick, 1) / G.TICKS_PER_BEAT, midi, v])
    parts = {}
    for name, notes in out.items():
        arr = np.asarray(sorted(notes), dtype=float).reshape(-1, 4)
        bar_of = np.clip((arr[:, 0] // bpb).astype(int), 0, n_bars - 1)
        arr = _without_flams(arr, fixed[bar_of] & (keep is not None))
        if name == "bass" and len(arr):
            # one note at a time: a note ends where the next one starts
            ends = np.minimum(arr[:, 0] + arr[:, 1], np.append(arr[1:, 0], np.inf))
            arr[:, 1] = np.maximum(ends - arr[:, 0], 1.0 / G.TICKS_PER_BEAT)
        parts[name] = arr
    return parts
