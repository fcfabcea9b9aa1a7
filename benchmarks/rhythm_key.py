"""Benchmark: tuning, tempo, beats/downbeats, meter and key of sung takes with known answers.

Builds melodies whose tempo, meter, key and bar lines are known, sings them like a person would,
and measures what ``hum2band.music.tuning``, ``hum2band.listen.rhythm`` and ``hum2band.music.keyfinding`` recover.

Sources (read from ``--data``, default ``../shared/data`` relative to the project root, or the
``HUM2BAND_DATA`` environment variable):

* Nottingham folk tunes (MIDI melody track; meter from the MIDI time signature, key from the ABC
  ``K:`` field; only tunes with one meter and one key): 4/4 reels, hornpipes and others, 3/4
  waltzes, 6/8 jigs. Each is sung at a random tempo typical of singing (4/4: 70-130, 3/4: 84-150
  quarter notes per minute; 6/8: 48-90 dotted quarters per minute).
* POP909 songs annotated 4/4 with one key (MELODY track, ``beat_midi.txt`` beats and downbeats,
  ``key_audio.txt`` key), at their own tempo +-8 %; songs whose annotated beat runs slower than
  60 or faster than 140 per minute are left out (there the MIDI quarter note is not the beat a
  singer counts).

Each take is an excerpt of whole 4-bar phrases (20-40 s) from the first sung bar, ending like a
sung phrase, transposed to a random key in a singable range. It is performed with
:func:`hum2band.train.synth.humanize_timing` (tempo drift of 5-8 %, a trend of up to 4 %, rubato of
10-30 % at every 4-bar phrase end, a final ritardando, 20 ms onset jitter) by a
:func:`hum2band.train.synth.random_style` singer whose tuning offset is drawn in +-40 cents (the style's
slow tuning drift and intonation errors stay). Takes are split by song id parity into a development
half (even ids, the only one any parameter was fitted on) and a held-out half (odd ids).

Two paths:

* ``--from-notes``: the notes as sung (:func:`hum2band.train.synth.sung_notes`) are degraded the way a
  pitch tracker and note segmenter degrade them (onsets 20-50 ms off, repeated notes merged,
  long notes split, octave errors, dropped short notes, glide fragments) and fed to the estimators.
* default: the take is rendered with :func:`hum2band.train.synth.sing` and transcribed from audio by
  :func:`hum2band.listen.transcription.transcribe_audio` (the whole pipeline).

Prints a table per meter and overall: tempo within 4 % of the reference (median beat rate over the
sung part) and the share at double / half / triple / a third / 3:2 or 2:3 of it, meter accuracy,
key accuracy (tonic and mode), tuning within 10 cents, beat and downbeat F-measure (mir_eval, 70 ms
window, over the sung part) and the run time of tuning + key + rhythm estimation per take.

The fitted parameters of the estimators come from here, on dev-half songs only:
``--fit-templates`` (onset templates of ``hum2band.listen.rhythm``), ``--fit-rhythm`` (its phase and
hypothesis weights, on fresh renditions), ``--fit-key`` (weights of ``hum2band.music.keyfinding``).

Run: ``.venv/bin/python benchmarks/rhythm_key.py --from-notes`` (about 20 s) or without
``--from-notes`` for the audio path (about a minute).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hum2band.music.melody import Note  # noqa: E402
from hum2band.music.key import TONIC_PITCH_CLASS  # noqa: E402
from hum2band.music.meter import beats_per_bar  # noqa: E402
from hum2band.music.tuning import estimate_tuning_cents, snap_notes  # noqa: E402
from hum2band.music.keyfinding import estimate_key  # noqa: E402
from hum2band.listen.rhythm import estimate_rhythm  # noqa: E402

METERS = ((4, 4), (3, 4), (6, 8))


# ------------------------------------------------------------------------------------------------
# Data: tunes with known answers
# ------------------------------------------------------------------------------------------------
@dataclass
class Tune:
    """A melody in score time (seconds at its nominal tempo) with its known grid and key."""

    name: str
    song_id: int
    meter: tuple
    key_pc: int
    key_mode: str
    onset_s: np.ndarray
    offset_s: np.ndarray
    midi: np.ndarray
    beats_s: np.ndarray
    downbeats_s: np.ndarray


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


def _parse_abc_index(abc_dir: Path) -> dict:
    """(file stem, X number) -> list of K: values found in that tune."""
    out = {}
    for abc in sorted(abc_dir.glob("*.abc")):
        x = None
        for line in abc.read_text(errors="replace").splitlines():
            m = re.match(r"^X:\s*(\d+)", line)
            if m:
                x = int(m.group(1))
                out[(abc.stem, x)] = []
            elif x is not None and line.startswith("K:"):
                out[(abc.stem, x)].append(line[2:].strip())
    return out


def _key_from_abc(k: str):
    m = re.match(r"^([A-G])([#b]?)(m?)$", k.strip())
    if not m:
        return None
    tonic = (m.group(1) + m.group(2)).upper()
    return TONIC_PITCH_CLASS[tonic], ("minor" if m.group(3) else "major")


def load_nottingham(data_dir: Path) -> list[tuple]:
    """Candidate Nottingham tunes: (path, stem, x, meter, key_pc, mode) with one meter and key."""
    import pretty_midi

    abc = _parse_abc_index(data_dir / "nottingham" / "ABC_cleaned")
    out = []
    for path in sorted((data_dir / "nottingham" / "MIDI").glob("*.mid")):
        m = re.match(r"^([a-z-]+?)(\d+)$", path.stem)
        if not m:
            continue
        stem, x = m.group(1), int(m.group(2))
        keys = abc.get((stem, x))
        if not keys or len(set(keys)) != 1:
            continue
        key = _key_from_abc(keys[0])
        if key is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(path))
        ts = {(t.numerator, t.denominator) for t in pm.time_signature_changes}
        if len(ts) != 1 or len(pm.get_tempo_changes()[1]) != 1:
            continue
        meter = ts.pop()
        if meter not in METERS:
            continue
        out.append((path, stem, x, meter, key[0], key[1], pm))
    return out


def nottingham_tune(entry) -> Tune | None:
    path, stem, x, meter, key_pc, mode, pm = entry
    mel = pm.instruments[0].notes
    if len(mel) < 20:
        return None
    qn_s = 60.0 / float(pm.get_tempo_changes()[1][0])  # one tempo per file (120 qpm)
    beat_s = qn_s * (1.5 if meter == (6, 8) else 1.0)
    end_s = max(n.end for n in mel)
    n_beats = int(np.ceil(end_s / beat_s)) + 1
    beats = np.arange(n_beats) * beat_s
    bpb = beats_per_bar(meter)
    downbeats = beats[::bpb]
    return Tune(f"{stem}{x}", x, meter, key_pc, mode,
                np.array([n.start for n in mel]), np.array([n.end for n in mel]),
                np.array([n.pitch for n in mel]), beats, downbeats)


def load_pop909(data_dir: Path, max_songs: int, rng: np.random.Generator) -> list[Tune]:
    """POP909 songs annotated as 4/4 with one key; beats and downbeats from beat_midi.txt."""
    import zipfile
    import pretty_midi

    root = data_dir / "pop909"
    sheet = zipfile.ZipFile(root / "index.xlsx").read("xl/worksheets/sheet1.xml").decode()
    four = []
    for _, body in re.findall(r'<row r="(\d+)">(.*?)</row>', sheet)[1:]:
        vals = re.findall(r"<t>(.*?)</t>", body)
        if len(vals) >= 6 and vals[4] == "2" and vals[5] == "2":
            four.append(vals[0])
    four = [s for s in four if (root / s / f"{s}.mid").exists()]
    rng.shuffle(four)
    tunes = []
    for sid in four:
        if len(tunes) >= max_songs:
            break
        keys = [ln.split("\t") for ln in (root / sid / "key_audio.txt").read_text().splitlines() if ln.strip()]
        labels = {k[2].strip() for k in keys}
        if len(labels) != 1:
            continue
        tonic, mode = labels.pop().split(":")
        if mode not in ("maj", "min") or tonic.upper() not in TONIC_PITCH_CLASS:
            continue
        beat = np.loadtxt(root / sid / "beat_midi.txt")
        if beat.ndim != 2 or beat.shape[1] < 3:
            continue
        down_idx = np.flatnonzero(beat[:, 2] == 1)
        if len(down_idx) < 10 or np.any(np.diff(down_idx) != 4):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(root / sid / f"{sid}.mid"))
        mel = [i for i in pm.instruments if i.name.upper() == "MELODY"]
        if not mel or len(mel[0].notes) < 40:
            continue
        notes = sorted(mel[0].notes, key=lambda n: n.start)
        tunes.append(Tune(f"pop{sid}", int(sid), (4, 4), TONIC_PITCH_CLASS[tonic.upper()],
                          "major" if mode == "maj" else "minor",
                          np.array([n.start for n in notes]), np.array([n.end for n in notes]),
                          np.array([n.pitch for n in notes]), beat[:, 0], beat[down_idx, 0]))
    return tunes


# ------------------------------------------------------------------------------------------------
# Performance: tempo, excerpt, drift, rubato, jitter, tuning
# ------------------------------------------------------------------------------------------------
def _excerpt(tune: Tune, scale: float, target_s: float) -> Tune | None:
    """Cut whole 4-bar phrases from the first sung bar, about ``target_s`` seconds after scaling.

    The take ends like a sung phrase: with a pickup, on the note at the phrase's last downbeat
    (held for a beat); without one, at the bar line.
    """
    first = tune.onset_s.min()
    downs = tune.downbeats_s
    i0 = int(np.flatnonzero(downs <= first + 1e-6).max()) if np.any(downs <= first + 1e-6) else 0
    start = downs[i0]
    bar_len = float(np.median(np.diff(downs)))
    beat_len = float(np.median(np.diff(tune.beats_s)))
    pickup = first > start + 0.25 * beat_len
    n_bars = 4 * max(1, int(round(target_s / scale / bar_len / 4)))
    while i0 + n_bars >= len(downs) or downs[i0 + n_bars] > tune.offset_s.max() + 1e-6:
        n_bars -= 4
        if n_bars < 4:
            return None
    stop = downs[i0 + n_bars] + (beat_len if pickup else 0.0)
    keep = (tune.onset_s >= start - 1e-6) & (tune.onset_s < stop - 1e-6)
    if keep.sum() < 12:
        return None
    bk = (tune.beats_s >= start - 1e-6) & (tune.beats_s <= stop + 1e-6)
    dk = (tune.downbeats_s >= start - 1e-6) & (tune.downbeats_s <= stop + 1e-6)
    return Tune(tune.name, tune.song_id, tune.meter, tune.key_pc, tune.key_mode,
                (tune.onset_s[keep] - start) * scale,
                (np.minimum(tune.offset_s[keep], stop) - start) * scale,
                tune.midi[keep], (tune.beats_s[bk] - start) * scale,
                (tune.downbeats_s[dk] - start) * scale)


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
    t2 = Tune(tune.name, tune.song_id, tune.meter, (tune.key_pc + transpose) % 12, tune.key_mode,
              tune.onset_s, tune.offset_s, tune.midi + transpose, tune.beats_s, tune.downbeats_s)
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


def build_takes(data_dir: Path, n_per_meter: int, seed: int) -> list[Take]:
    rng = np.random.default_rng(seed)
    cands = load_nottingham(data_dir)
    takes: list[Take] = []
    ranges = {(4, 4): (70, 130), (3, 4): (84, 150), (6, 8): (48, 90)}
    for meter in METERS:
        pool = [c for c in cands if c[3] == meter]
        idx = rng.permutation(len(pool))
        n_want = n_per_meter // 2 if meter == (4, 4) else n_per_meter
        got = 0
        for i in idx:
            if got >= n_want:
                break
            tune = nottingham_tune(pool[i])
            if tune is None:
                continue
            bpm = rng.uniform(*ranges[meter])
            beat_s = 60.0 / bpm
            scale = beat_s / float(np.median(np.diff(tune.beats_s)))
            ex = _excerpt(tune, scale, rng.uniform(20, 40))
            if ex is None:
                continue
            s = int(rng.integers(1 << 30))
            takes.append(perform(ex, np.random.default_rng(s), s))
            got += 1
    for tune in load_pop909(data_dir, 3 * (n_per_meter - n_per_meter // 2), rng):
        if sum(t.tune.name.startswith("pop") for t in takes) >= n_per_meter - n_per_meter // 2:
            break
        scale = rng.uniform(0.92, 1.08)
        # POP909 beats are the MIDI file's quarter notes; where those run slower than 60 or faster
        # than 140 per minute they are not the beat a singer counts, so the song is left out
        bpm = 60.0 / float(np.median(np.diff(tune.beats_s))) / scale
        if not 60.0 <= bpm <= 140.0:
            continue
        ex = _excerpt(tune, scale, rng.uniform(20, 40))
        if ex is None:
            continue
        s = int(rng.integers(1 << 30))
        takes.append(perform(ex, np.random.default_rng(s), s))
    return takes


# ------------------------------------------------------------------------------------------------
# Estimation and scoring
# ------------------------------------------------------------------------------------------------
@dataclass
class Result:
    take: Take
    tempo_bpm: float
    meter: tuple
    key_pc: int
    key_mode: str
    tuning_cents: float
    downbeat_f: float
    beat_f: float
    time_s: float


def run_from_notes(take: Take, rng: np.random.Generator):
    notes = degrade_notes(take.sung, rng)
    t0 = time.perf_counter()
    tuning = estimate_tuning_cents(notes)
    snapped = snap_notes(notes, tuning)
    key = estimate_key(snapped)
    rhythm = estimate_rhythm(snapped, take.duration_s)
    return notes, tuning, key, rhythm, time.perf_counter() - t0


def run_from_audio(take: Take, sr: int = 22050):
    from hum2band.train import synth
    from hum2band.listen.transcription import transcribe_audio

    samples = synth.sing(take.notes, sr, take.style, take.seed, take.duration_s)
    t0 = time.perf_counter()
    mel = transcribe_audio(samples, sr)
    t_all = time.perf_counter() - t0
    # time only our stages: estimate again from the transcribed notes
    t0 = time.perf_counter()
    tuning = estimate_tuning_cents(mel.notes)
    snapped = snap_notes(mel.notes, tuning)
    estimate_key(snapped)
    estimate_rhythm(snapped, take.duration_s)
    t_est = time.perf_counter() - t0
    take.transcribe_s = t_all  # reported separately
    return mel.notes, mel.tuning_cents, mel.key, mel.rhythm, t_est


def score(take: Take, notes, tuning, key, rhythm, elapsed) -> Result:
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
    return Result(take, float(rhythm.tempo_bpm), tuple(rhythm.meter), key.tonic_pitch_class,
                  key.mode, float(tuning), float(df), float(bf), float(elapsed))


def _ratio_class(est: float, ref: float) -> str:
    r = est / ref
    for name, target in (("ok", 1.0), ("x2", 2.0), ("x1/2", 0.5), ("x3", 3.0), ("x1/3", 1 / 3),
                         ("x3/2", 1.5), ("x2/3", 2 / 3)):
        if abs(r / target - 1.0) <= 0.04:
            return name
    return "other"


def summarize(results: list[Result], label: str) -> list[str]:
    lines = []
    hdr = (f"{'set':<10}{'meter':<7}{'n':>4}{'tempo':>7}{'x2':>6}{'x1/2':>6}{'x3':>6}{'x1/3':>6}"
           f"{'3:2':>6}{'meter':>7}{'key':>6}{'tune':>6}{'beatF':>7}{'downF':>7}{'ms':>7}")
    lines.append(hdr)
    groups = [(f"{m[0]}/{m[1]}", [r for r in results if r.take.tune.meter == m]) for m in METERS]
    groups.append(("all", results))
    for name, rs in groups:
        if not rs:
            continue
        cls = [_ratio_class(r.tempo_bpm, r.take.tempo_bpm) for r in rs]

        def frac(c):
            return np.mean([x == c for x in cls])

        meter_ok = np.mean([r.meter == r.take.tune.meter for r in rs])
        key_ok = np.mean([(r.key_pc == r.take.tune.key_pc) and (r.key_mode == r.take.tune.key_mode)
                          for r in rs])
        tune_ok = np.mean([abs((r.tuning_cents - r.take.tuning_cents + 50) % 100 - 50) <= 10 for r in rs])
        lines.append(
            f"{label:<10}{name:<7}{len(rs):>4}{frac('ok'):>7.2f}{frac('x2'):>6.2f}{frac('x1/2'):>6.2f}"
            f"{frac('x3'):>6.2f}{frac('x1/3'):>6.2f}{frac('x3/2') + frac('x2/3'):>6.2f}{meter_ok:>7.2f}"
            f"{key_ok:>6.2f}{tune_ok:>6.2f}{np.mean([r.beat_f for r in rs]):>7.2f}"
            f"{np.mean([r.downbeat_f for r in rs]):>7.2f}{1000 * np.mean([r.time_s for r in rs]):>7.1f}")
    return lines


def fit_templates(takes: list[Take]) -> None:
    """Print ONSET_PROB and HOLD_PROFILE fitted on the dev half (known grid).

    Onset probabilities: folk tunes of each meter are split into a denser and a sparser style by
    2-means on each take's onset rate per bar position; POP909 songs are a 4/4 style of their own.
    """
    from hum2band.listen.rhythm import grid_statistics

    def fmt(x):
        return "np.array([" + ", ".join(f"{v:.2f}" for v in x) + "])"

    for meter in METERS:
        stats = {"folk": [], "pop": []}
        for take in takes:
            if take.tune.meter != meter or take.tune.song_id % 2:
                continue
            notes = degrade_notes(take.sung, np.random.default_rng(take.seed + 1))
            st = grid_statistics(notes, take.beats_s, take.downbeats_s, meter)
            stats["pop" if take.tune.name.startswith("pop") else "folk"].append(st)
        allst = stats["folk"] + stats["pop"]
        hold = sum(st.hold_sum for st in allst) / np.maximum(sum(st.filled for st in allst), 1)
        print(f"{meter} ({len(allst)} takes)")
        print("  hold profile", fmt(hold))
        folk = stats["folk"]
        rates = np.array([st.filled / np.maximum(st.total, 1) for st in folk])
        dense = rates.mean(axis=1) >= np.median(rates.mean(axis=1))
        for _ in range(20):  # 2-means
            c1, c0 = rates[dense].mean(axis=0), rates[~dense].mean(axis=0)
            new = ((rates - c1) ** 2).sum(axis=1) < ((rates - c0) ** 2).sum(axis=1)
            if (new == dense).all() or new.all() or not new.any():
                break
            dense = new
        for name, sel in (("folk dense", dense), ("folk sparse", ~dense)):
            group = [st for st, k in zip(folk, sel) if k]
            prob = sum(st.filled for st in group) / np.maximum(sum(st.total for st in group), 1)
            print(f"  onset prob {name} ({len(group)})", fmt(prob))
        if stats["pop"]:
            prob = sum(st.filled for st in stats["pop"]) / np.maximum(sum(st.total for st in stats["pop"]), 1)
            print(f"  onset prob pop ({len(stats['pop'])})", fmt(prob))


def _conditional_logit(data, w0, lam=1e-3):
    """Fit w maximising sum over groups of log P(correct set) with P = softmax(X @ w)."""
    from scipy.optimize import minimize

    def loss(w):
        total, grad = 0.0, np.zeros(len(w))
        for X, ok in data:
            z = X @ w
            p = np.exp(z - z.max())
            p_ok = np.where(ok, p, 0.0)
            total -= np.log(p_ok.sum()) - np.log(p.sum())
            grad -= X.T @ (p_ok / p_ok.sum()) - X.T @ (p / p.sum())
        return total / len(data) + lam * w @ w, grad / len(data) + 2 * lam * w

    res = minimize(loss, w0, jac=True, method="L-BFGS-B")
    acc0 = np.mean([ok[np.argmax(X @ w0)] for X, ok in data])
    acc = np.mean([ok[np.argmax(X @ res.x)] for X, ok in data])
    print(f"{len(data)} groups, accuracy {acc0:.3f} -> {acc:.3f} (loss {res.fun:.4f})")
    return res.x


def fit_key(data_dir: Path, args) -> None:
    """Fit KEY_WEIGHTS of hum2band.music.keyfinding on renditions of dev-half songs (even ids)."""
    from hum2band.music import keyfinding as K

    data = []
    for rep in range(3):
        for take in build_takes(data_dir, 2 * args.n_per_meter, 2000 + rep):
            if take.tune.song_id % 2:
                continue
            notes = degrade_notes(take.sung, np.random.default_rng(take.seed + 1))
            X = K.key_features(snap_notes(notes, estimate_tuning_cents(notes)))
            ok = np.zeros(24, dtype=bool)
            ok[take.tune.key_pc + (12 if take.tune.key_mode == "minor" else 0)] = True
            data.append((X, ok))
    w = _conditional_logit(data, K.KEY_WEIGHTS.copy(), lam=1e-3)
    for name, v in zip(K.FEATURE_NAMES, w):
        print(f"  {name:<24}{v:9.3f}")
    print("KEY_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")


def fit_rhythm(data_dir: Path, args) -> None:
    """Fit PHASE_WEIGHTS and FEATURE_WEIGHTS of hum2band.listen.rhythm (conditional logistic regression).

    Training takes are fresh renditions (other seeds) of dev-half songs only (even ids). Phase:
    among the shifts of a correct hypothesis, the ones whose beats and downbeats match the
    reference best. Hypotheses: the correct ones have the take's meter and a tempo within 4 %.
    """
    import mir_eval
    from hum2band.listen import rhythm as R

    takes_h = []
    for rep in range(3):
        takes = [t for t in build_takes(data_dir, 2 * args.n_per_meter, 1000 + rep)
                 if t.tune.song_id % 2 == 0]
        for take in takes:
            notes = degrade_notes(take.sung, np.random.default_rng(take.seed + 1))
            snapped = snap_notes(notes, estimate_tuning_cents(notes))
            _, hyps = R.rhythm_hypotheses(snapped, take.duration_s)
            if hyps:
                takes_h.append((take, hyps))
    # phase, per meter
    phase_data = {k: [] for k in R.PHASE_WEIGHTS}
    for take, hyps in takes_h:
        on = np.array([n.onset_s for n in take.sung])
        lo, hi = on.min() - 0.1, max(n.offset_s for n in take.sung) + 0.1
        ref_d = take.downbeats_s[(take.downbeats_s >= lo) & (take.downbeats_s <= hi)]
        ref_b = take.beats_s[(take.beats_s >= lo) & (take.beats_s <= hi)]
        for h in hyps:
            if not (h.meter == take.tune.meter and abs(h.tempo_bpm / take.tempo_bpm - 1) < 0.04):
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
    wps = {}
    for k in R.PHASE_WEIGHTS:
        print(f"phase {k}:")
        wps[k] = _conditional_logit(phase_data[k], R.PHASE_WEIGHTS[k].copy(), lam=3e-3)
    print(f"  {'':<24}" + "".join(f"{k:>10}" for k in wps))
    for i, name in enumerate(R.PHASE_FEATURE_NAMES):
        print(f"  {name:<24}" + "".join(f"{wps[k][i]:10.3f}" for k in wps))
    # hypotheses, with features at the shift the new phase weights choose
    data = []
    for take, hyps in takes_h:
        for h in hyps:
            h.shift = int(np.argmax(h.phase_features @ wps[h.phase_model]))
            h.features[0] = h.phase_features[h.shift, 0]
            h.features[-2:] = h.phase_features[h.shift, 1:3]
        X = np.array([h.features for h in hyps])
        ok = np.array([h.meter == take.tune.meter and abs(h.tempo_bpm / take.tempo_bpm - 1) < 0.04
                       for h in hyps])
        if ok.any() and not ok.all():
            data.append((X, ok))
    print("hypotheses:")
    w = _conditional_logit(data, R.FEATURE_WEIGHTS.copy())
    for name, v in zip(R.FEATURE_NAMES, w):
        print(f"  {name:<24}{v:9.3f}")
    print("PHASE_WEIGHTS = {")
    for k in wps:
        print(f'    "{k}": np.array([' + ", ".join(f"{v:.3f}" for v in wps[k]) + "]),")
    print("}")
    print("FEATURE_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("HUM2BAND_DATA", str(ROOT / ".." / "shared" / "data")))
    ap.add_argument("--n-per-meter", type=int, default=40, help="takes per meter (4/4 half POP909)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--from-notes", action="store_true", help="skip audio: degrade the notes directly")
    ap.add_argument("--split", choices=("dev", "holdout", "both"), default="both")
    ap.add_argument("--limit", type=int, default=0, help="at most this many takes (0: all)")
    ap.add_argument("--verbose", action="store_true", help="one line per take")
    ap.add_argument("--fit-rhythm", action="store_true",
                    help="fit the rhythm hypothesis weights on renditions of dev-half songs")
    ap.add_argument("--fit-key", action="store_true",
                    help="fit the key cue weights on renditions of dev-half songs")
    ap.add_argument("--fit-templates", action="store_true",
                    help="print the rhythm onset templates fitted on the dev half (known grid)")
    args = ap.parse_args(argv)

    data_dir = Path(args.data)
    if not (data_dir / "nottingham").exists():
        print(f"data not found under {data_dir}: pass --data or set HUM2BAND_DATA", file=sys.stderr)
        return 2
    from_notes = args.from_notes
    if not from_notes and not (ROOT / "hum2band" / "transcription.py").exists():
        print("hum2band/listen/transcription.py missing: using --from-notes", file=sys.stderr)
        from_notes = True

    if args.fit_rhythm:
        fit_rhythm(data_dir, args)
        return 0
    if args.fit_key:
        fit_key(data_dir, args)
        return 0
    t_build = time.perf_counter()
    takes = build_takes(data_dir, args.n_per_meter, args.seed)
    if args.split != "both":
        want = 0 if args.split == "dev" else 1
        takes = [t for t in takes if t.tune.song_id % 2 == want]
    if args.limit:
        takes = takes[: args.limit]
    print(f"{len(takes)} takes built in {time.perf_counter() - t_build:.1f} s "
          f"({'notes path' if from_notes else 'audio path'})")

    if args.fit_templates:
        fit_templates(takes)
        return 0

    results = []
    for i, take in enumerate(takes):
        if from_notes:
            out = run_from_notes(take, np.random.default_rng(take.seed + 1))
        else:
            out = run_from_audio(take)
        r = score(take, *out)
        results.append(r)
        if args.verbose:
            t = take.tune
            print(f"{t.name:<14}{t.meter[0]}/{t.meter[1]} ref {take.tempo_bpm:6.1f} est {r.tempo_bpm:6.1f} "
                  f"[{_ratio_class(r.tempo_bpm, take.tempo_bpm):>5}] meter {r.meter[0]}/{r.meter[1]} "
                  f"key {t.key_pc}{t.key_mode[:3]}->{r.key_pc}{r.key_mode[:3]} "
                  f"tune {take.tuning_cents:+5.1f}->{r.tuning_cents:+5.1f} beatF {r.beat_f:.2f} "
                  f"downF {r.downbeat_f:.2f}")
    dev = [r for r in results if r.take.tune.song_id % 2 == 0]
    hold = [r for r in results if r.take.tune.song_id % 2 == 1]
    lines = []
    for label, rs in (("dev", dev), ("holdout", hold), ("all", results)):
        if rs:
            lines += summarize(rs, label)[(0 if not lines else 1):]
    print("\n".join(lines))
    if not from_notes:
        tr = [getattr(r.take, "transcribe_s", 0.0) for r in results]
        print(f"whole pipeline (transcribe_audio) {np.mean(tr):.2f} s per take on average; "
              f"ms column: tuning + key + rhythm on its notes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
