"""Train the bar model of the rhythm stage (``models/bars.pt``, see :mod:`hum2band.listen.bars`).

Data: the same melodies with real bar lines as the note model (:mod:`hum2band.train.beats`:
POP909 on its annotated beats, Nottingham, OpenEWLD, chord-melody; 4/4, 3/4, 6/8), train split
only; the validation split picks the checkpoint; the test split is the benchmark's. Each example
is an excerpt (12-48 s, starting at any note, so pickups and mid-bar starts are seen) sung with
human timing (:func:`hum2band.train.synth.humanize_timing`: drift, trend, phrase rubato,
ritardando, onset jitter), degraded the way the transcriber degrades notes
(:func:`hum2band.train.beats.degrade`: late or early onsets, merged repeated notes, split long
notes, dropped short notes, octave errors, glide scraps), then read on the sung beat grid with
each beat moved by a few tens of milliseconds (the rhythm stage's grid is tracked, not known).
The key the tokens are read in is the one the rhythm stage would estimate from the notes.

Label per beat token: its (meter, beat of the bar). Loss: cross-entropy.

Run: ``hum2band train --model bars [--minutes 40] [--resume]`` (resumable: the checkpoint keeps
weights, optimizer, step and the time spent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..listen import bars as G
from ..listen.beats import BAR_CLASSES, METERS
from ..music.keyfinding import estimate_key
from ..music.melody import Note
from ..music.meter import beats_per_bar
from . import synth
from .beats import TEMPO_RANGE_BPM, Song, degrade, meter_draw, songs_from_sheets
from .loop import Progress, adamw, lr_at, resume, save_checkpoint

#: Standard deviation of the error put on each beat of the grid the tokens are read on, s.
GRID_ERROR_S = 0.025
#: How often an example is read on a wrong grid instead (every token then labelled
#: :data:`hum2band.listen.bars.WRONG_GRID`), by the rhythm stage's own kinds of error: beats
#: half a beat off (the "and" of a syncopated melody), a third of a beat off (the wrong eighth of
#: a jig), twice, half or a third as many beats, the right beats read in the wrong meter.
WRONG_GRIDS = {"half_beat": 0.15, "third_beat": 0.08, "double": 0.10, "half_tempo": 0.10,
               "third_tempo": 0.05, "other_meter": 0.07}


def wrong_grid(beats: np.ndarray, meter: tuple, kind: str, rng: np.random.Generator):
    """``beats`` (the true grid, s) made wrong in one of :data:`WRONG_GRIDS`' ways: (beats, meter
    the grid is read in)."""
    mid = 0.5 * (beats[:-1] + beats[1:])
    if kind == "half_beat":
        return mid, meter
    if kind == "third_beat":
        frac = 1.0 / 3.0 if rng.random() < 0.5 else 2.0 / 3.0
        return beats[:-1] + frac * np.diff(beats), meter
    if kind == "double":
        both = np.empty(2 * len(beats) - 1)
        both[0::2], both[1::2] = beats, mid
        return both, meter
    if kind == "half_tempo":
        return beats[int(rng.integers(2))::2], meter
    if kind == "third_tempo":
        return beats[int(rng.integers(3))::3], (6, 8) if meter == (3, 4) else meter
    others = [m for m in METERS if m != meter]
    return beats, others[int(rng.integers(len(others)))]


@dataclass
class Example:
    """One sung excerpt on its beat grid.

    Attributes
    ----------
    features : np.ndarray, shape (n_beats, n_features), float32
    bar : np.ndarray of int, shape (n_beats,)
        Column of :data:`hum2band.listen.beats.BAR_CLASSES` of each beat token.
    meter : tuple
    """

    features: np.ndarray
    bar: np.ndarray
    meter: tuple


def make_example(song: Song, rng: np.random.Generator) -> Example | None:
    """A fresh sung, transcribed excerpt of ``song`` read on its (slightly wrong) beat grid."""
    bpb = beats_per_bar(song.meter)
    n = len(song.onset_beat)
    if song.tempo_bpm and 55.0 <= song.tempo_bpm <= 150.0:
        bpm = song.tempo_bpm * rng.uniform(0.9, 1.1)
    else:
        bpm = rng.uniform(*TEMPO_RANGE_BPM[song.meter])
    beat_s = 60.0 / bpm
    starts = np.flatnonzero(np.abs(song.onset_beat / bpb - np.round(song.onset_beat / bpb)) < 1e-6)
    if len(starts) and rng.random() < 0.5:
        i0 = int(rng.choice(starts))
    else:
        i0 = int(rng.integers(0, max(n - 12, 1)))
    b0 = song.onset_beat[i0]
    bar0 = np.floor(b0 / bpb + 1e-9) * bpb
    stop = b0 + rng.uniform(12.0, 48.0) / beat_s
    keep = (np.arange(n) >= i0) & (song.onset_beat < stop)
    if keep.sum() < 8:
        return None
    on_b = song.onset_beat[keep] - bar0
    off_b = np.minimum(song.offset_beat[keep], stop) - bar0
    midi = song.midi[keep] + int(rng.integers(-6, 7))
    score = [Note(float(a * beat_s), float(max(b, a + 0.05) * beat_s), float(p), int(p), 80)
             for a, b, p in zip(on_b, off_b, midi)]
    end_beat = float(off_b.max())
    grid_b = np.arange(0.0, np.ceil(end_beat) + 2.0)
    timing = synth.humanize_timing(
        score, grid_b * beat_s, tempo_drift=rng.uniform(0.02, 0.09),
        tempo_trend=rng.uniform(-0.05, 0.05), onset_jitter_s=rng.uniform(0.008, 0.03),
        phrase_ends_s=np.arange(4 * bpb, end_beat, 4 * bpb) * beat_s,
        phrase_rubato=rng.uniform(0.0, 0.3), ritardando=rng.uniform(0.0, 0.15),
        seed=int(rng.integers(1 << 30)))
    legato = rng.uniform(0.55, 1.0)
    sung = []
    for k, nt in enumerate(timing.notes):
        nxt = timing.notes[k + 1].onset_s if k + 1 < len(timing.notes) else np.inf
        length = (nt.offset_s - nt.onset_s) * (legato if nt.offset_s >= nxt - 1e-6 else 1.0)
        sung.append((nt.onset_s, nt.onset_s + max(length, 0.05), nt.midi_pitch
                     + rng.normal(0.0, 0.15), on_b[k], False))
    res = degrade(sung, rng)
    if len(res) < 8:
        return None
    arr = np.array([[x[0], x[1], x[2]] for x in res])
    beats = np.asarray(timing.beats_s, dtype=float)
    beats = beats + rng.normal(0.0, GRID_ERROR_S, len(beats))
    beats = np.maximum.accumulate(beats + 1e-3 * np.arange(len(beats)))
    meter = song.meter
    r, kind = rng.random(), None
    for k, p in WRONG_GRIDS.items():
        r -= p
        if r < 0:
            kind = k
            break
    if kind is not None:
        beats, meter = wrong_grid(beats, meter, kind, rng)
        if len(beats) < 3:
            return None
    notes = [Note(float(a), float(b), float(p)) for a, b, p in arr]
    key = estimate_key(notes, vote=False)
    tok = G.grid_features(arr[:, 0], arr[:, 1], arr[:, 2], beats, key.tonic_pitch_class,
                          key.mode == "minor", meter)
    if len(tok.features) < 4:
        return None
    f = tok.features[: G.MAX_BEATS]
    if kind is not None:
        return Example(f, np.full(len(f), G.WRONG_GRID), meter)
    mi = METERS.index(meter)
    col = {c: k for k, c in enumerate(BAR_CLASSES)}
    bar = np.array([col[(mi, (tok.first_beat + t) % bpb)] for t in range(len(f))])
    return Example(f, bar, meter)


def batch(songs: list[Song], rng: np.random.Generator, size: int, balance: float = 0.5):
    """``size`` fresh examples, padded: (x, bar) tensors; padding labelled -100."""
    import torch

    groups, p = meter_draw(songs, balance)
    exs = []
    while len(exs) < size:
        g = groups[int(rng.choice(len(groups), p=p))]
        ex = make_example(g[int(rng.integers(len(g)))], rng)
        if ex is not None:
            exs.append(ex)
    n = max(len(e.bar) for e in exs)
    x = np.zeros((size, n, len(G.GRID_FEATURE_NAMES)), dtype=np.float32)
    bar = np.full((size, n), -100, dtype=np.int64)
    for i, e in enumerate(exs):
        k = len(e.bar)
        x[i, :k], bar[i, :k] = e.features, e.bar
    return torch.from_numpy(x), torch.from_numpy(bar)


def loss_and_accuracy(net, x, bar):
    """(loss, per-beat accuracy, per-excerpt bar-phase accuracy on the right grids, per-excerpt
    accuracy of telling a right grid from a wrong one) of a batch."""
    import torch
    import torch.nn.functional as F

    logits = net(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), bar.reshape(-1), ignore_index=-100)
    ok = bar >= 0
    acc = (logits.argmax(-1) == bar)[ok].float().mean().item()
    # per excerpt: the bar phase the (meter-restricted) log-probabilities prefer
    right, grid_right = [], []
    lp_all = torch.log_softmax(logits.detach().float(), -1)
    for i in range(len(bar)):
        k = int(ok[i].sum())
        lab = bar[i, :k].numpy()
        wrong = lab[0] == G.WRONG_GRID
        grid_right.append((G.grid_fit(lp_all[i, :k].numpy()) < 0) == wrong)
        if wrong:
            continue
        mi = BAR_CLASSES[lab[0]][0]
        cols = [c for c, (m, _) in enumerate(BAR_CLASSES) if m == mi]
        lp = torch.log_softmax(lp_all[i, :k][:, cols], -1).numpy()
        sc = G.downbeat_scores(lp)
        truth = (-BAR_CLASSES[lab[0]][1]) % len(cols)
        right.append(int(np.argmax(sc)) == truth)
    return loss, acc, float(np.mean(right)) if right else 0.0, float(np.mean(grid_right))


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="hum2band train --model bars", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="models")
    ap.add_argument("--checkpoints", default="checkpoints")
    ap.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=80)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--limit", type=int, default=None, help="songs per source (quick runs)")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from . import datasets as ds

    t0 = time.perf_counter()
    if args.limit:
        sheets = {s: ds.load_source(s, args.data, limit=args.limit) for s in ds.SOURCES}
    else:
        sheets = ds.load_all(args.data)
    train = songs_from_sheets([ls for v in sheets.values() for ls in v if ls.split == "train"])
    val_songs = songs_from_sheets([ls for v in sheets.values() for ls in v if ls.split == "validation"])
    if args.limit:  # quick runs: no split is large enough, use all for both
        train = val_songs = songs_from_sheets([ls for v in sheets.values() for ls in v])
    print(f"{len(train)} training songs, {len(val_songs)} validation songs "
          f"({time.perf_counter() - t0:.0f} s to read)", flush=True)
    vrng = np.random.default_rng(12345)
    val = [batch(val_songs, vrng, args.batch) for _ in range(8)]

    out_dir, ck_dir = Path(args.out), Path(args.checkpoints)
    ck_dir.mkdir(parents=True, exist_ok=True)
    ck_path = ck_dir / "bars.ckpt"
    config = {"n_features": len(G.GRID_FEATURE_NAMES), "hidden": args.hidden,
              "layers": args.layers, "dropout": 0.1}
    if args.resume and ck_path.exists():
        net, opt, prog = resume(ck_path, G.make_bar_net, args.lr)
        config = torch.load(ck_path, map_location="cpu", weights_only=False)["config"]
        print(f"resumed at step {prog.step} ({prog.elapsed_s / 60:.1f} min spent)", flush=True)
    else:
        net = G.make_bar_net(config)
        opt = adamw(net, args.lr)
        prog = Progress()
    rng = np.random.default_rng(args.seed + prog.step)
    budget_s = 60.0 * args.minutes
    start, spent0 = time.perf_counter(), prog.elapsed_s
    while True:
        prog.elapsed_s = spent0 + time.perf_counter() - start
        if prog.elapsed_s >= budget_s:
            break
        net.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(prog.elapsed_s / budget_s, prog.step, args.lr, 200)
        x, bar = batch(train, rng, args.batch)
        loss, *_ = loss_and_accuracy(net, x, bar)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        prog.step += 1
        if prog.step % args.eval_every == 0:
            net.eval()
            with torch.no_grad():
                r = np.array([[v.item() if hasattr(v, "item") else v
                               for v in loss_and_accuracy(net, *vb)] for vb in val])
            vl, vacc, vphase, vgrid = r.mean(axis=0)
            prog.history.append({"step": prog.step, "minutes": round(prog.elapsed_s / 60, 2),
                                 "loss": round(float(vl), 4), "beat_acc": round(float(vacc), 4),
                                 "bar_phase": round(float(vphase), 4),
                                 "grid": round(float(vgrid), 4)})
            print(f"step {prog.step} {prog.elapsed_s / 60:.1f} min train loss {loss.item():.3f} "
                  f"val loss {vl:.3f} beat acc {vacc:.3f} bar phase {vphase:.3f} grid {vgrid:.3f}",
                  flush=True)
            score = float(vphase + vgrid)
            if score > prog.best:
                prog.best = score
                _export(out_dir, config, net, prog)
            save_checkpoint(ck_path, config, net, opt, prog)
    save_checkpoint(ck_path, config, net, opt, prog)
    if not (out_dir / "bars.pt").exists():
        _export(out_dir, config, net, prog)
    print(f"done: {prog.step} steps in {prog.elapsed_s / 60:.1f} min, best bar phase + grid "
          f"{prog.best:.3f}", flush=True)
    return 0


def _export(out_dir: Path, config: dict, net, prog: Progress) -> None:
    """Write the shipped weights (float16) and the training record."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = out_dir / "bars.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"config": config, "model": state, "features": list(G.GRID_FEATURE_NAMES),
                "step": prog.step}, tmp)
    tmp.replace(path)
    (out_dir / "bars-train.json").write_text(json.dumps(
        {"steps": prog.step, "minutes": round(prog.elapsed_s / 60, 1), "history": prog.history},
        indent=1))


if __name__ == "__main__":
    sys.exit(main())
