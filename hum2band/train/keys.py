"""Fit the weights of the key finder (:mod:`hum2band.music.keyfinding`) on the train split.

``python -m hum2band.train.keys --data ../shared/data`` renders every train-split lead sheet of
:func:`hum2band.train.datasets.load_all` a few times as a transcribed sung take would look (see
:func:`sung_rendition`), computes :func:`hum2band.music.keyfinding.key_features` of each, fits
the weights by conditional logistic regression over the 24 keys and prints them, ready to paste
into ``keyfinding.py`` (``SCALAR_WEIGHTS`` and ``DEGREE_WEIGHTS``). It also reports the accuracy
on renditions of the validation split (never the test split). Seeded; a few minutes on one core.

**What the truth is.** POP909 (``key_audio.txt``) and Nottingham (ABC ``K:``) name the mode.
OpenEWLD and chord-melody take their key from the MusicXML key signature, whose mode is nearly
always "major", minor songs included: for those only the pair {major key, its relative minor} is
known from the key signature. The song's last chord usually settles it: a last chord on the major
key's tonic with a major third makes the target the major key, a minor chord on the relative
minor's tonic makes it the minor key. Otherwise the target is the SET of the two relatives, and
the likelihood maximized is that of the set: log(p(major) + p(relative minor)), so such songs
teach where the tonic of the pair lies but nothing about the mode.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..music import keyfinding as K
from ..music.melody import Note
from .synth import SUNG_TEMPO_RANGE_BPM

#: Sources whose key comes from a key signature (the mode is not reliable).
SIGNATURE_SOURCES = ("openewld", "chord-melody")
#: Chord qualities with a major / minor third (for reading the mode off the last chord).
MAJOR_QUALITIES = ("maj", "7", "maj7", "maj6", "9", "maj9", "aug")
MINOR_QUALITIES = ("min", "min7", "minmaj7", "min6", "min9")
#: Share of renditions that are excerpts (the rest: the whole song); the length of an excerpt (s).
EXCERPT_SHARE = 0.8
EXCERPT_S = (20.0, 40.0)


def key_targets(ls) -> tuple[np.ndarray, str]:
    """Which of the 24 keys (rows of :func:`key_features`) count as right, and why.

    Returns (bool mask of shape (24,), "mode" | "last chord" | "pair")."""
    ok = np.zeros(24, dtype=bool)
    t, minor = ls.key.tonic_pitch_class, ls.key.mode == "minor"
    major_tonic = (t + 3) % 12 if minor else t
    if ls.source not in SIGNATURE_SOURCES:
        ok[t + (12 if minor else 0)] = True
        return ok, "mode"
    last = next((c.chord for c in reversed(ls.chords) if c.chord.quality != "N"), None)
    if last is not None and last.root == major_tonic and last.quality in MAJOR_QUALITIES:
        ok[major_tonic] = True
        return ok, "last chord"
    if last is not None and last.root == (major_tonic + 9) % 12 and last.quality in MINOR_QUALITIES:
        ok[12 + (major_tonic + 9) % 12] = True
        return ok, "last chord"
    ok[major_tonic] = ok[12 + (major_tonic + 9) % 12] = True
    return ok, "pair"


def _excerpt(on: np.ndarray, off: np.ndarray, beats_per_bar: int, beat_s: float,
             rng: np.random.Generator) -> np.ndarray | None:
    """Mask of the notes of a 20-40 s excerpt: whole bars (mostly 4-bar phrases from the first
    sung bar) from a bar line, with the pickup in the beat before it, ending at a bar line."""
    bar = float(beats_per_bar)
    first_bar = np.floor(on.min() / bar + 1e-6)
    n_song_bars = int(np.ceil(off.max() / bar - 1e-6) - first_bar)
    n_bars = max(4, 4 * int(round(rng.uniform(*EXCERPT_S) / (bar * beat_s) / 4)))
    if n_song_bars <= n_bars:
        return None
    step = 4 if rng.random() < 0.7 else 1
    starts = np.arange(0, n_song_bars - n_bars + 1, step)
    start = (first_bar + int(rng.choice(starts))) * bar
    stop = start + n_bars * bar
    keep = (on >= start - 1e-6) & (on < stop - 1e-6)
    before = np.flatnonzero((on >= start - 1.0 - 1e-6) & (on < start - 1e-6))
    if len(before) and (before[0] == 0 or on[before[0]] - off[before[0] - 1] > 0.2):
        keep[before] = True
    return keep if keep.sum() >= 12 else None


def sung_rendition(ls, rng: np.random.Generator, excerpt: bool) -> tuple[list[Note], int] | None:
    """A lead sheet as the listen stage might transcribe a sung take of it, and the transposition.

    At a plausible tempo (POP909's own, the others drawn per meter), in a random singable key,
    an excerpt or the whole song; then what singing and transcribing do to notes: onset jitter
    (20 ms), notes released before the next one, about 5 % of notes lost, 4 % merged with the
    next, 4 % split in two, 3 % a semitone off, 2 % an octave off, 2 % with a short scoop note
    (a semitone or tone below) before them.
    """
    if len(ls.melody) < 12 or ls.key is None:
        return None
    on = np.array([n.onset_beat for n in ls.melody], dtype=float)
    off = np.array([n.offset_beat for n in ls.melody], dtype=float)
    midi = np.array([n.midi for n in ls.melody], dtype=int)
    lo, hi = SUNG_TEMPO_RANGE_BPM.get(tuple(ls.meter), (70, 130))
    bpm = ls.tempo_bpm if ls.source == "pop909" and 60 <= ls.tempo_bpm <= 140 else rng.uniform(lo, hi)
    beat_s = 60.0 / (bpm * rng.uniform(0.92, 1.08))
    if excerpt:
        keep = _excerpt(on, off, ls.beats_per_bar, beat_s, rng)
        if keep is None:
            return None
        on, off, midi = on[keep], off[keep], midi[keep]
    semis = int(rng.integers(-6, 6))
    transpose = semis + int(12 * np.round((62 - (np.median(midi) + semis)) / 12))
    on_s, off_s = (on - on.min()) * beat_s, (off - on.min()) * beat_s
    out: list[tuple[float, float, int]] = []
    i = 0
    while i < len(on_s):
        a, b, p = on_s[i], off_s[i], int(midi[i]) + transpose
        r = rng.random()
        if r < 0.05:                                   # lost
            i += 1
            continue
        if r < 0.09 and i + 1 < len(on_s):             # merged with the next
            b = off_s[i + 1]
            if off_s[i + 1] - on_s[i + 1] > off_s[i] - on_s[i]:
                p = int(midi[i + 1]) + transpose
            i += 1
        a += rng.normal(0.0, 0.02)
        nxt = on_s[i + 1] if i + 1 < len(on_s) else b
        b = min(b, nxt) - rng.uniform(0.0, 0.12)
        b = max(b, a + 0.06)
        r = rng.random()
        if r < 0.03:
            p += int(rng.choice([-1, 1]))
        elif r < 0.05:
            p += int(rng.choice([-12, 12]))
        elif r < 0.07 and b - a > 0.3:               # a scoop transcribed as a note of its own
            s = a + rng.uniform(0.06, 0.12)
            out.append((a, s, p - int(rng.choice([1, 2]))))
            a = s
        if rng.random() < 0.04 and b - a > 0.3:      # split in two
            m = a + (b - a) * rng.uniform(0.3, 0.7)
            out.append((a, m, p))
            a = m
        out.append((a, b, p))
        i += 1
    if len(out) < 8:
        return None
    tune_cents = rng.normal(0.0, 0.1, len(out))
    notes = [Note(a, b, p + c, p, 80) for (a, b, p), c in zip(out, tune_cents)]
    return notes, transpose


def rendition_set(sheets, reps: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``reps`` renditions per lead sheet: (features (24, F), right keys (24,), source). Sheets
    whose annotated key changes (``key_changes``: about one POP909 song in six) are left out: the
    targets are the song's one key."""
    rng = np.random.default_rng(seed)
    data = []
    for ls in sheets:
        if ls.key is None or ls.key_changes:
            continue
        ok, _ = key_targets(ls)
        for _ in range(reps):
            got = sung_rendition(ls, rng, excerpt=rng.random() < EXCERPT_SHARE)
            if got is None:
                got = sung_rendition(ls, rng, excerpt=False)
            if got is None:
                continue
            notes, transpose = got
            rolled = np.concatenate([np.roll(ok[:12], transpose), np.roll(ok[12:], transpose)])
            data.append((K.key_features(notes), rolled, ls.source))
    return data


def set_loss(w: np.ndarray, X: np.ndarray, ok: np.ndarray, lam: float, scale: np.ndarray):
    """Mean negative log-likelihood of the right SET of keys, plus ``lam * |w / scale|^2``,
    and its gradient. X: (N, 24, F), ok: (N, 24) bool."""
    z = X @ w
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p_all = p.sum(axis=1)
    p_ok = (p * ok).sum(axis=1)
    loss = -np.mean(np.log(p_ok / p_all + 1e-300))
    # d/dw [log sum_ok e^z - log sum e^z] = E_{p|ok}[x] - E_p[x]
    q = p * ok / p_ok[:, None] - p / p_all[:, None]
    grad = -np.einsum("nk,nkf->f", q, X) / len(X)
    reg = w / scale
    return loss + lam * reg @ reg, grad + 2 * lam * reg / scale


def fit(X: np.ndarray, ok: np.ndarray, lam: float, w0: np.ndarray | None = None) -> np.ndarray:
    """Weights minimizing :func:`set_loss` (L-BFGS). The penalty is on the weights scaled by each
    cue's spread over the training keys, so cues on small numbers (shares) are not penalized more."""
    from scipy.optimize import minimize

    scale = 1.0 / (X.reshape(-1, X.shape[2]).std(axis=0) + 1e-3)
    w0 = np.zeros(X.shape[2]) if w0 is None else w0
    res = minimize(set_loss, w0, args=(X, ok, lam, scale), jac=True, method="L-BFGS-B",
                   options={"maxiter": 3000})
    return res.x


def accuracy(w: np.ndarray, data) -> dict[str, tuple[float, int]]:
    """Per source: share of renditions whose best key is one of the right ones."""
    out: dict[str, list[bool]] = {}
    for X, ok, src in data:
        out.setdefault(src, []).append(bool(ok[int(np.argmax(X @ w))]))
    return {s: (float(np.mean(v)), len(v)) for s, v in sorted(out.items())}


def format_weights(w: np.ndarray) -> str:
    """The weights as the two constants of ``keyfinding.py``."""
    n = len(K.SCALAR_FEATURES)
    lines = ["SCALAR_WEIGHTS = {"]
    items = [f'"{name}": {v:.3f}' for name, v in zip(K.SCALAR_FEATURES, w[:n])]
    for i in range(0, len(items), 3):
        lines.append("    " + ", ".join(items[i:i + 3]) + ",")
    lines.append("}")
    lines.append("DEGREE_WEIGHTS = {")
    col = n
    for b in K.DEGREE_BLOCKS:
        for m in ("maj", "min"):
            vals = ", ".join(f"{v:.2f}" for v in w[col:col + 12])
            lines.append(f'    ("{b}", "{m}"): np.array([{vals}]),')
            col += 12
    lines.append("}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from .datasets import load_all

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the data folder (default: the project's)")
    ap.add_argument("--reps", type=int, default=6, help="renditions per train-split song")
    ap.add_argument("--lam", type=float, default=1e-3, help="L2 penalty on the scaled weights")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.time()
    sheets = load_all(args.data)
    train = [ls for v in sheets.values() for ls in v if ls.split == "train"]
    val = [ls for v in sheets.values() for ls in v if ls.split == "validation"]
    kinds: dict[str, int] = {}
    for ls in train:
        if ls.key is not None:
            kind = f"{ls.source}: {key_targets(ls)[1]}"
            kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{len(train)} train-split songs, {len(val)} validation-split; targets "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), flush=True)
    changes = sum(bool(ls.key_changes) for ls in train + val)
    print(f"{changes} songs change key: left out of training and validation", flush=True)
    data = rendition_set(train, args.reps, args.seed)
    vdata = rendition_set(val, 3, args.seed + 1)
    X = np.stack([d[0] for d in data])
    ok = np.stack([d[1] for d in data])
    print(f"{len(data)} train renditions, {len(vdata)} validation ({time.time() - t0:.0f} s)", flush=True)
    w = fit(X, ok, args.lam)
    for name, weights in (("before", K.KEY_WEIGHTS), ("after", w)):
        acc = accuracy(weights, vdata)
        print(f"validation renditions, right key (or pair) {name}: "
              + ", ".join(f"{s} {a:.3f} (n={n})" for s, (a, n) in acc.items()))
    print(f"fitted in {time.time() - t0:.0f} s\n")
    print(format_weights(w))
    return 0


if __name__ == "__main__":
    sys.exit(main())
