"""Train the accompaniment (parts) model: ``python -m hum2band.train.parts --data ../shared/data``.

Data: :func:`hum2band.train.corpus.build_corpus` -- real charts and melodies rendered in style-labelled
grooves with Debian's ``mma`` (generated, cached, never committed), real Groove MIDI drumming
(drums only) and real POP909 piano accompaniments (keys only). Each example supervises only the
parts it has. Train split by song; the validation split picks the checkpoint.

Every example is turned once into small integer grids (:class:`Prepared`); batches of windows of
up to ``window_bars`` bars are densified on the fly. Teacher forcing: the decoder sees the true
onsets of the bar before. The loss is :func:`hum2band.compose.parts.model.parts_loss`.

Resumable: a checkpoint (model, optimizer, step, elapsed time, RNG state) is written every
``--checkpoint-minutes`` to ``CHECKPOINTS/parts-checkpoint.pt`` and ``--resume`` continues from
it; the time budget (``--minutes``) counts time across resumptions. The best weights (by
validation loss) go to ``OUT/parts.pt`` (fp16) with a training history ``OUT/parts-train.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..compose.parts import grid as G
from ..compose.parts.model import (
    N_VARIANTS,
    PartsModel,
    PartsModelConfig,
    parts_loss,
    save,
)
from ..music.styles import STYLE_NAMES
from . import loop as TR

#: Part index (into PARTS) of each column of ONSET_COLUMNS.
ONSET_COLUMN_PART = G.COLUMN_PART[G.ONSET_COLUMNS]


@dataclass
class Prepared:
    """One corpus example on the grid (small integer arrays; dense tensors are made per batch)."""

    example_id: str
    origin: str
    split: str
    style: int
    variant: int
    meter: int
    tempo: int
    mode: int
    beats_per_bar: int
    n_bars: int
    tonic_pc: int
    mel: G.MelodyGrid
    chords: G.ChordGrid
    events: G.PartEvents


def variant_index(example) -> int:
    """Groove variant id: 1 + the groove's index in the style's groove list for that meter
    (0 = no rule-based groove: human drums, POP909 piano)."""
    if example.origin != "mma":
        return 0
    try:
        from ..music.styles import STYLE_GROOVES
        grooves = STYLE_GROOVES[example.style][tuple(example.meter)]
        return 1 + grooves.index(example.groove) % (N_VARIANTS - 1)
    except (KeyError, ValueError, ImportError):
        return 0


def prepare(example) -> Prepared | None:
    """A :class:`hum2band.train.corpus.PartsExample` on the grid; None if it cannot be used."""
    bpb = int(example.beats_per_bar)
    if bpb < 1 or bpb > G.MAX_BEATS_PER_BAR or example.n_bars < 1 or example.style not in STYLE_NAMES:
        return None
    n = int(example.n_bars)
    mel = G.melody_grid(np.asarray(example.melody, dtype=float).reshape(-1, 3), n, bpb)
    ch = G.chord_grid(example.chords, n, bpb)
    ev = G.part_events(example.parts, ch, n, bpb, mel)
    if len(ev.tick) == 0:
        return None
    return Prepared(example.example_id, example.origin, example.split, STYLE_NAMES.index(example.style),
                    variant_index(example), G.meter_index(example.meter), G.tempo_band(example.tempo_bpm),
                    int(example.mode == "minor"), bpb, n, int(example.tonic_pc) % 12, mel, ch, ev)


def window(p: Prepared, start: int, n: int) -> dict:
    """Dense numpy arrays for bars [start, start + n) of one example."""
    sl = slice(start, start + n)
    mel = G.MelodyGrid(p.mel.pitch[sl], p.mel.onset[sl])
    ch = G.ChordGrid(p.chords.root_pc[sl], p.chords.bass_pc[sl], p.chords.quality[sl], p.chords.starts[sl])
    ticks = G.tick_features(mel, ch, p.tonic_pc, p.beats_per_bar)
    pos = G.bar_positions(p.n_bars, p.mel)[sl]
    on, vel, dur = G.densify(p.events, n, start)
    prev = np.zeros((n, G.MAX_TICKS, G.ONSET_SIZE), dtype=np.float32)
    if start > 0:
        prev_on, _, _ = G.densify(p.events, 1, start - 1)
        prev[0] = prev_on[0][:, G.ONSET_COLUMNS]
    prev[1:] = on[:-1][..., G.ONSET_COLUMNS]
    return {"ticks": ticks, "pos": pos, "on": on, "vel": vel, "dur": dur, "prev": prev,
            "tick_mask": G.tick_mask(n, p.beats_per_bar)}


def collate(items: list[tuple[Prepared, dict]]) -> dict:
    n = max(w["ticks"].shape[0] for _, w in items)
    b = len(items)

    def pad(key, dtype=np.float32):
        first = items[0][1][key]
        out = np.zeros((b, n) + first.shape[1:], dtype=first.dtype if dtype is None else dtype)
        for i, (_, w) in enumerate(items):
            out[i, :w[key].shape[0]] = w[key]
        return torch.from_numpy(out)

    bar_mask = torch.zeros(b, n, dtype=torch.bool)
    for i, (_, w) in enumerate(items):
        bar_mask[i, :w["ticks"].shape[0]] = True
    ids = lambda attr: torch.tensor([getattr(p, attr) for p, _ in items], dtype=torch.long)  # noqa: E731
    return {
        "ticks": pad("ticks"), "bar_pos": pad("pos", np.int64), "prev_onsets": pad("prev"),
        "on": pad("on"), "vel": pad("vel"), "dur": pad("dur"),
        "tick_mask": pad("tick_mask", bool) & bar_mask.unsqueeze(-1),
        "bar_mask": bar_mask, "style": ids("style"), "variant": ids("variant"), "meter": ids("meter"),
        "tempo": ids("tempo"), "mode": ids("mode"),
        "part_mask": torch.from_numpy(np.stack([p.events.present for p, _ in items])),
    }


def batch_loss(model: PartsModel, batch: dict):
    out = model(batch["ticks"], batch["bar_pos"], batch["style"], batch["variant"], batch["meter"],
                batch["tempo"], batch["mode"], batch["prev_onsets"], batch["bar_mask"])
    return parts_loss(out.float(), batch["on"], batch["vel"], batch["dur"], batch["tick_mask"],
                      batch["part_mask"])


class Sampler:
    """Random windows, examples drawn in proportion to min(n_bars, window) (short tunes count)."""

    def __init__(self, examples: list[Prepared], window_bars: int, seed: int):
        self.examples = examples
        self.window_bars = window_bars
        w = np.array([min(p.n_bars, window_bars) for p in examples], dtype=float)
        self.p = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int):
        idx = self.rng.choice(len(self.examples), size=size, p=self.p)
        items = []
        for i in idx:
            p = self.examples[i]
            n = min(p.n_bars, self.window_bars)
            start = int(self.rng.integers(0, p.n_bars - n + 1))
            items.append((p, window(p, start, n)))
        return collate(items)


def validation_batches(examples: list[Prepared], window_bars: int, batch_size: int, limit: int = 192):
    rng = random.Random(1)
    chosen = sorted(examples, key=lambda p: p.example_id)
    rng.shuffle(chosen)
    chosen = chosen[:limit]
    items = [(p, window(p, 0, min(p.n_bars, window_bars))) for p in chosen]
    return [collate(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]


@torch.no_grad()
def evaluate(model: PartsModel, batches) -> dict:
    model.eval()
    tot, parts = 0.0, {"onset": 0.0, "velocity": 0.0, "duration": 0.0}
    tp = fp = fn = 0.0
    for b in batches:
        loss, d = batch_loss(model, b)
        tot += float(loss)
        for k in parts:
            parts[k] += d[k]
        out = model(b["ticks"], b["bar_pos"], b["style"], b["variant"], b["meter"], b["tempo"],
                    b["mode"], b["prev_onsets"], b["bar_mask"])
        cols = torch.as_tensor(G.ONSET_COLUMNS)
        col_part = torch.as_tensor(ONSET_COLUMN_PART)
        valid = b["tick_mask"].unsqueeze(-1) & b["part_mask"][:, col_part][:, None, None, :]
        pred = (out[..., cols] > 0) & valid
        true = (b["on"][..., cols] > 0.5) & valid
        tp += float((pred & true).sum())
        fp += float((pred & ~true).sum())
        fn += float((~pred & true).sum())
    model.train()
    n = max(len(batches), 1)
    f1 = 2 * tp / max(2 * tp + fp + fn, 1.0)
    return {"loss": tot / n, **{k: v / n for k, v in parts.items()}, "onset_f1": f1}


def train(train_ex: list[Prepared], val_ex: list[Prepared], out_dir: Path, minutes: float,
          checkpoints: Path, resume: bool = False, config: PartsModelConfig | None = None,
          batch_size: int = 12, window_bars: int = 16, lr: float = 1e-3, warmup: int = 100,
          eval_every: int = 150, checkpoint_minutes: float = 3.0, seed: int = 0,
          max_steps: int | None = None, log=print, meta: dict | None = None, bf16: bool = True) -> dict:
    """The training loop; returns the history dict also written to OUT/parts-train.json."""
    torch.manual_seed(seed)
    model = PartsModel(config or PartsModelConfig())
    opt = TR.adamw(model, lr)
    sampler = Sampler(train_ex, window_bars, seed)
    val = validation_batches(val_ex, window_bars, 24) if val_ex else []
    step, elapsed, best, history = 0, 0.0, float("inf"), []
    ck_path = checkpoints / "parts-checkpoint.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    best_path = out_dir / "parts.pt"
    if resume and ck_path.exists():
        model, opt, done = TR.resume(ck_path, lambda c: PartsModel(PartsModelConfig(**c)), lr)
        step, elapsed, best, history = done.step, done.elapsed_s, done.best, done.history
        sampler.rng = np.random.default_rng(seed + step)
        torch.manual_seed(seed + step)
        log(f"resumed from {ck_path} at step {step} ({elapsed / 60:.1f} min done)")
    elif resume:
        log(f"no checkpoint at {ck_path}: starting from scratch")
    budget_s = minutes * 60.0
    t0 = time.time() - elapsed
    last_ck = time.time()
    run_loss = None
    meta = dict(meta or {})

    def checkpoint():
        TR.save_checkpoint(ck_path, asdict(model.cfg), model, opt,
                           TR.Progress(step, time.time() - t0, best, history))

    model.train()
    while time.time() - t0 < budget_s and (max_steps is None or step < max_steps):
        progress = (time.time() - t0) / budget_s
        for g in opt.param_groups:
            g["lr"] = TR.lr_at(progress, step, lr, warmup)
        batch = sampler.batch(batch_size)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, parts = batch_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = float(loss.detach())
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        if step % 25 == 0:
            log(f"step {step:5d}  {(time.time() - t0) / 60:5.1f}/{minutes:g} min  loss {run_loss:.4f} "
                f"(onset {parts['onset']:.3f} vel {parts['velocity']:.4f} dur {parts['duration']:.3f})")
        if val and (step % eval_every == 0):
            ev = evaluate(model, val)
            history.append({"step": step, "minutes": round((time.time() - t0) / 60, 2),
                            "train_loss": round(run_loss, 4), **{f"val_{k}": round(v, 4) for k, v in ev.items()}})
            mark = ""
            if ev["loss"] < best:
                best = ev["loss"]
                save(model, best_path, {**meta, "step": step, "val": ev})
                mark = "  (best: saved)"
            log(f"validation at step {step}: loss {ev['loss']:.4f} onset F1 {ev['onset_f1']:.3f}{mark}")
        if time.time() - last_ck > checkpoint_minutes * 60:
            checkpoint()
            last_ck = time.time()
    if val:
        ev = evaluate(model, val)
        history.append({"step": step, "minutes": round((time.time() - t0) / 60, 2),
                        "train_loss": round(run_loss or 0.0, 4), **{f"val_{k}": round(v, 4) for k, v in ev.items()}})
        if ev["loss"] < best or not best_path.exists():
            best = min(best, ev["loss"])
            save(model, best_path, {**meta, "step": step, "val": ev})
        log(f"final validation at step {step}: loss {ev['loss']:.4f} onset F1 {ev['onset_f1']:.3f}")
    else:
        save(model, best_path, {**meta, "step": step})
    checkpoint()
    result = {"steps": step, "minutes": round((time.time() - t0) / 60, 2), "best_val_loss": best,
              "config": asdict(model.cfg), "batch_size": batch_size, "window_bars": window_bars,
              "lr": lr, "seed": seed, "bf16": bf16, "history": history, **meta}
    (out_dir / "parts-train.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the hum2band accompaniment (parts) model.")
    ap.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    ap.add_argument("--cache", default=None, help="corpus cache folder (default ~/.cache/hum2band)")
    ap.add_argument("--out", default="models", help="where parts.pt goes")
    ap.add_argument("--checkpoints", default="checkpoints", help="where the resumable checkpoint goes")
    ap.add_argument("--minutes", type=float, default=45.0, help="training time budget (across resumptions)")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--window-bars", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for building the corpus")
    ap.add_argument("--sources", default=None,
                    help="comma-separated corpus sources (default: all of hum2band.train.corpus.SOURCES)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="use at most N corpus examples (smoke runs)")
    ap.add_argument("--resume", action="store_true", help="continue from CHECKPOINTS/parts-checkpoint.pt")
    ap.add_argument("--fp32", action="store_true", help="no bfloat16 autocast (slower on this CPU)")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    from .corpus import build_corpus
    t = time.time()
    kw = {"sources": tuple(x for x in a.sources.split(",") if x)} if a.sources else {}
    corpus = build_corpus(data_dir=a.data, cache_dir=a.cache, jobs=a.jobs, **kw)
    if a.limit:
        corpus = corpus[:a.limit]
    prepared = [p for p in (prepare(e) for e in corpus) if p is not None]
    tr = [p for p in prepared if p.split == "train"]
    va = [p for p in prepared if p.split in ("valid", "validation")]
    counts = {}
    for p in tr:
        counts[p.origin] = counts.get(p.origin, 0) + 1
    print(f"corpus: {len(corpus)} examples ({time.time() - t:.0f} s); train {len(tr)} {counts}, "
          f"validation {len(va)}", flush=True)
    meta = {"train_examples": len(tr), "valid_examples": len(va), "train_by_origin": counts,
            "train_bars": int(sum(p.n_bars for p in tr))}
    train(tr, va, Path(a.out), a.minutes, Path(a.checkpoints), resume=a.resume, batch_size=a.batch_size,
          window_bars=a.window_bars, lr=a.lr, seed=a.seed, max_steps=a.max_steps,
          log=lambda s: print(s, flush=True), meta=meta, bf16=not a.fp32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
