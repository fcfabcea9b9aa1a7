"""Drum fills into a new phrase, the crash that marks its first downbeat, variations, and the
band's break where the singer rests.

The corpus's mma grooves were rendered without their fill variants, so the parts model rarely
writes a fill where a drummer would. The decoder asks this module for one in the last counted
beat (or two) of a bar that ends a phrase, and for a crash on the next bar's downbeat: the fill
replaces what the model wrote there (kick on the beat kept), in the style's feel, at a
crescendo. Between fills, :func:`vary` lets a drummer's small changes in (an extra kick, a
ghost snare, an open hi-hat), away from the last beat so a variation is never mistaken for a
fill; :func:`pickup` is the one-hit lead-in of a phrase the singer runs into.

Where the singer leaves a bar or more empty, the band answers in the style's way
(:data:`BREAK_KIND`): a **stop** (:func:`stop_time`: every part hits the downbeat together and
lets the bar ring, the drums lead back in), a **build** (a fill over the whole last empty bar),
or a longer **fill** (its last two beats) for the quiet styles.

The comping varies as a player's does (:func:`displace_comping`: one chord hit an eighth
earlier; :func:`invert_voicing`: the lowest note of each chord up an octave).

Shapes: ``fire`` and ``vel`` are one bar of the onset grid, (MAX_TICKS, ONSET_SIZE); velocities
0-1. Ticks: 12 per counted beat.
"""

from __future__ import annotations

import numpy as np

from . import grid as G

_CLASS = {name: i for i, (name, _, _) in enumerate(G.DRUM_CLASSES)}
KICK, SNARE, SIDE_STICK = _CLASS["kick"], _CLASS["snare"], _CLASS["side stick"]
CLOSED_HAT, OPEN_HAT, RIDE, CRASH = _CLASS["closed hi-hat"], _CLASS["open hi-hat"], _CLASS["ride"], _CLASS["crash"]
LOW_TOM, HIGH_TOM = _CLASS["low tom"], _CLASS["high tom"]
SHAKER, HIGH_CONGA, LOW_CONGA, TIMBALE = _CLASS["shaker"], _CLASS["high conga"], _CLASS["low conga"], _CLASS["timbale"]

#: Per style: the voices a fill moves through, high to low, and its subdivision in ticks
#: (3 = 16ths, 4 = triplets, 6 = eighths). Folk grooves are a tambourine or nothing: a folk fill
#: is shaken, not played on the kit.
FILL_VOICES = {
    "pop": ((SNARE, HIGH_TOM, LOW_TOM), 3), "rock": ((SNARE, HIGH_TOM, LOW_TOM), 3),
    "funk": ((SNARE, HIGH_TOM, LOW_TOM), 3), "country": ((SNARE, SNARE, LOW_TOM), 6),
    "reggae": ((SNARE, HIGH_TOM, LOW_TOM), 3), "ballad": ((SNARE, HIGH_TOM, LOW_TOM), 6),
    "folk": ((SHAKER, SHAKER), 6), "swing": ((SNARE, SNARE, LOW_TOM), 4),
    "jazz-ballad": ((SNARE, SNARE), 4), "bossa nova": ((SIDE_STICK, LOW_TOM), 6),
    "latin": ((TIMBALE, HIGH_CONGA, LOW_CONGA), 3), "waltz": ((SNARE, LOW_TOM), 6),
}
#: Fills sit in the groove's own time feel: a swung or triplet style fills in triplets.
TRIPLET_FEELS = ("swing", "shuffle", "triplet")
#: Hits a fill replaces in the beats it takes over (timekeeping, backbeat, toms).
_REPLACED = np.array([SNARE, SIDE_STICK, CLOSED_HAT, OPEN_HAT, RIDE, LOW_TOM, HIGH_TOM, TIMBALE,
                      HIGH_CONGA, LOW_CONGA, _CLASS["clap"]])


def _step_ticks(style: str, feel: str, beats_per_bar: int) -> int:
    if beats_per_bar == 2:           # 6/8: the eighths of a dotted-quarter beat
        return 4
    _, step = FILL_VOICES.get(style, ((SNARE,), 3))
    return 4 if feel in TRIPLET_FEELS and step == 3 else step


def write_fill(fire: np.ndarray, vel: np.ndarray, n_ticks: int, style: str, feel: str,
               beats_per_bar: int, rng: np.random.Generator, beats: int = 1) -> None:
    """A fill in the last ``beats`` counted beats of the bar (edits ``fire`` and ``vel``).

    The hits run through the style's voices from high to low (:data:`FILL_VOICES`) on its
    subdivision (an eighth-note fill speeds up to 16ths in its last beat), getting louder; the
    kick stays on the first beat of the fill. The rng picks
    one of a few rhythms (all hits, a rest on the second, the last doubled) so fills vary.
    """
    voices, _ = FILL_VOICES.get(style, ((SNARE, LOW_TOM), 6))
    step = _step_ticks(style, feel, beats_per_bar)
    beats = max(1, min(int(beats), beats_per_bar))
    start = n_ticks - beats * G.TICKS_PER_BEAT
    ticks = np.arange(start, n_ticks, step)
    if step >= 6:       # an eighth-note fill speeds up to 16ths in its last beat (never two hits there)
        last = n_ticks - G.TICKS_PER_BEAT
        ticks = np.union1d(ticks[ticks < last], np.arange(last, n_ticks, step // 2))
    kind = int(rng.integers(3))
    if kind == 1 and len(ticks) > 2 and ticks[1] < n_ticks - G.TICKS_PER_BEAT:
        ticks = np.delete(ticks, 1)                 # a rest inside the fill, never in its last beat
    elif kind == 2 and step >= 6:
        ticks = np.union1d(ticks, [n_ticks - step // 2])
    kick_on_beat = fire[start, KICK]
    fire[start:n_ticks, _REPLACED] = False
    groups = np.array_split(np.arange(len(ticks)), len(voices))
    loud = float(np.clip(vel[:n_ticks, :G.N_DRUM][fire[:n_ticks, :G.N_DRUM]].mean(), 0.5, 0.9)) \
        if fire[:n_ticks, :G.N_DRUM].any() else 0.75
    for voice, idx in zip(voices, groups):
        for i in idx:
            t = int(ticks[i])
            fire[t, voice] = True
            vel[t, voice] = np.clip(loud * (0.75 + 0.35 * (i + 1) / len(ticks)), 0.3, 1.0)
    if kick_on_beat:
        fire[start, KICK] = True


def crash_downbeat(fire: np.ndarray, vel: np.ndarray, style: str) -> None:
    """Mark a new phrase: a crash (a ride bell in jazz styles) with the kick on its first tick."""
    if style == "folk":          # no cymbals in a folk groove
        return
    accent = RIDE if style in ("swing", "jazz-ballad", "bossa nova") else CRASH
    loud = float(np.clip(vel[0, :G.N_DRUM].max(), 0.7, 1.0)) if fire[0, :G.N_DRUM].any() else 0.85
    fire[0, accent] = True
    vel[0, accent] = loud
    if style not in ("jazz-ballad", "bossa nova"):
        fire[0, KICK] = True
        vel[0, KICK] = max(float(vel[0, KICK]), loud)


def vary(fire: np.ndarray, vel: np.ndarray, n_ticks: int, beats_per_bar: int,
         rng: np.random.Generator, style: str = "") -> None:
    """One small change a drummer makes inside a phrase, before the bar's last beat: a kick on an
    off-beat eighth, a ghost snare, or the hi-hat opened on an off-beat eighth; in folk (a
    tambourine, no kit) a shaken 16th after an off-beat eighth."""
    last = n_ticks - G.TICKS_PER_BEAT
    offbeats = (np.array([4, 8]) if beats_per_bar == 2
                else np.arange(G.TICKS_PER_BEAT // 2, last, G.TICKS_PER_BEAT))
    if not len(offbeats):
        return
    t = int(rng.choice(offbeats))
    kind = int(rng.integers(3))
    if style == "folk":
        u = t + (2 if beats_per_bar == 2 else 3)
        fire[u - 1:u + 2, SHAKER] = False
        fire[u, SHAKER], vel[u, SHAKER] = True, 0.45
        return
    if kind == 0:
        fire[t, KICK], vel[t, KICK] = True, 0.7
    elif kind == 1:
        fire[t, SNARE], vel[t, SNARE] = True, 0.35
    elif fire[t, CLOSED_HAT]:
        fire[t, CLOSED_HAT] = False
        fire[t, OPEN_HAT], vel[t, OPEN_HAT] = True, max(float(vel[t, CLOSED_HAT]), 0.6)
    else:
        fire[t, KICK], vel[t, KICK] = True, 0.7


def pickup(fire: np.ndarray, vel: np.ndarray, n_ticks: int, style: str) -> None:
    """A lead-in on the bar's last eighth and the 16th after it (the style's first fill voice: a
    snare, a shaker in folk), for a phrase end the singer sings through (no room for a fill)."""
    voices, _ = FILL_VOICES.get(style, ((SNARE,), 3))
    t = n_ticks - G.TICKS_PER_BEAT // 2
    fire[t - 1:n_ticks, voices[0]] = False        # never a flam with a hit the model put beside it
    fire[t, voices[0]], vel[t, voices[0]] = True, 0.5
    fire[t + 3, voices[0]], vel[t + 3, voices[0]] = True, 0.6


#: How the band answers a bar the singer leaves empty, per style: "stop" (stop-time hits),
#: "build" (a fill over the whole last empty bar), "fill" (a two-beat fill in it).
BREAK_KIND = {
    "pop": "build", "rock": "build", "country": "build", "funk": "stop", "swing": "stop",
    "latin": "stop", "reggae": "stop", "ballad": "fill", "jazz-ballad": "fill", "bossa nova": "fill",
    "waltz": "fill", "folk": "fill",
}


def stop_time(fire: np.ndarray, vel: np.ndarray, dur: np.ndarray, n_ticks: int, style: str, feel: str,
              beats_per_bar: int, rng: np.random.Generator, lead_back: bool) -> None:
    """A stop: the whole band on the downbeat (the drums with a crash and the kick), short, then
    silence; with ``lead_back`` the drums fill the last beat back into the song. Edits the bar's
    ``fire``, ``vel`` and ``dur`` (log2 ticks) in place."""
    fire[1:n_ticks] = False
    held = fire[0, G.N_DRUM:]
    dur[0, G.N_DRUM:][held] = np.minimum(dur[0, G.N_DRUM:][held], np.log2(G.TICKS_PER_BEAT // 2))
    crash_downbeat(fire, vel, style)
    if style == "folk" or not fire[0, :G.N_DRUM].any():
        fire[0, KICK], vel[0, KICK] = True, 0.85
    if lead_back:
        write_fill(fire, vel, n_ticks, style, feel, beats_per_bar, rng, 1)


def displace_comping(fire: np.ndarray, vel: np.ndarray, dur: np.ndarray, n_ticks: int, block: slice,
                     keep_ticks: np.ndarray) -> bool:
    """Move the bar's last chord hit of a part (its columns ``block``) an eighth earlier, an
    anticipation, unless a hit is there already or the hit is on a tick in ``keep_ticks`` (the
    downbeat, a chord change). Returns whether a hit moved."""
    eighth = G.TICKS_PER_BEAT // 2
    ticks = [int(t) for t in np.nonzero(fire[:n_ticks, block].any(axis=1))[0]
             if t >= eighth and not keep_ticks[t]]
    for t in ticks[::-1]:
        to = t - eighth
        if fire[to, block].any() or keep_ticks[to]:
            continue
        cols = np.nonzero(fire[t, block])[0] + block.start
        fire[to, cols], vel[to, cols] = True, vel[t, cols]
        dur[to, cols] = np.log2(2.0 ** dur[t, cols] + eighth)
        fire[t, cols] = False
        return True
    return False


def invert_voicing(fire: np.ndarray, vel: np.ndarray, dur: np.ndarray, n_ticks: int, block: slice) -> None:
    """Another inversion: on every tick a chord part plays three notes or more, its lowest note
    goes up an octave (when that stays in the part's columns and is not played already)."""
    for t in np.nonzero(fire[:n_ticks, block].sum(axis=1) >= 3)[0]:
        cols = np.nonzero(fire[t, block])[0]
        low, up = block.start + int(cols[0]), block.start + int(cols[0]) + 12
        if up < block.stop and not fire[t, up]:
            fire[t, up], vel[t, up], dur[t, up] = True, vel[t, low], dur[t, low]
            fire[t, low] = False
