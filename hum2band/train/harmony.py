"""Train the harmony transformer: ``python -m hum2band.train.harmony --data ../shared/data``.

Data: real lead sheets only (:func:`hum2band.train.datasets.load_all`: POP909, Nottingham,
chord-melody, OpenEWLD), split by song (:func:`hum2band.music.leadsheet.split_of`); each song goes once
onto the key-relative beat grid (:func:`hum2band.compose.harmony.grid.leadsheet_grid`, which is the
transposition invariance: every key trains the same weights). Training draws random windows of
``window_bars`` bars, songs in proportion to ``min(n_bars, 48)``, with the style condition blanked
in :data:`STYLE_DROPOUT` of the windows (so "no style" works), teacher forcing on the chords.

Resumable: a checkpoint (model, optimizer, step, elapsed time) is written every
``--checkpoint-minutes`` to ``CHECKPOINTS/harmony-checkpoint.pt`` and ``--resume`` continues from
it; ``--minutes`` counts time across resumptions. The best weights by validation chord accuracy
(previous chords hidden, as in generation) go to ``OUT/harmony.pt`` (fp16) with the history in ``OUT/harmony-train.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..compose.harmony import grid as G
from ..compose.harmony.model import (
    HarmonyConfig,
    HarmonyTransformer,
    collate,
    harmony_loss,
    save_model,
    window_of,
)
from . import loop as TR

STYLE_DROPOUT = 0.15
#: Share of the decoder's previous-chord inputs hidden in training (see harmony_model.collate).
INPUT_DROPOUT = 0.5


def prepare_songs(lead_sheets) -> list[G.SongGrid]:
    """Lead sheets on the grid (songs whose bars are longer than the model reads are left out)."""
    out = []
    for ls in lead_sheets:
        if ls.beats_per_bar > G.MAX_BEATS_PER_BAR or not ls.melody or not ls.chords:
            continue
        g = G.leadsheet_grid(ls)
        if (g.chord >= 0).sum() >= 4:
            out.append(g)
    return out


class WindowSampler:
    """Random training windows: song ~ min(n_bars, 48), start bar uniform."""

    def __init__(self, songs: list[G.SongGrid], window_bars: int, seed: int):
        self.songs = songs
        self.window_bars = window_bars
        w = np.array([min(s.n_bars, 48) for s in songs], float)
        self.p = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> dict:
        idx = self.rng.choice(len(self.songs), size=size, p=self.p)
        wins = []
        for i in idx:
            s = self.songs[i]
            start = int(self.rng.integers(0, max(1, s.n_bars - self.window_bars // 2)))
            wins.append(window_of(s, start, self.window_bars, self.rng.random() < STYLE_DROPOUT))
        return collate(wins, INPUT_DROPOUT, self.rng)


def validation_batches(songs: list[G.SongGrid], window_bars: int, batch_size: int = 32,
                       max_windows: int = 480) -> list[dict]:
    """Fixed validation windows: every ``window_bars`` bars of every song (capped)."""
    wins = []
    for s in sorted(songs, key=lambda s: (s.source, s.song_id)):
        for b in range(0, s.n_bars, window_bars):
            wins.append(window_of(s, b, window_bars))
    rng = np.random.default_rng(1)
    if len(wins) > max_windows:
        wins = [wins[i] for i in sorted(rng.choice(len(wins), max_windows, replace=False))]
    return [collate(wins[i:i + batch_size]) for i in range(0, len(wins), batch_size)]


@torch.no_grad()
def evaluate(model: HarmonyTransformer, batches: list[dict]) -> dict:
    """Validation loss and chord accuracy, teacher-forced and with every previous chord hidden.

    ``chord_acc`` feeds the true previous chords; ``chord_acc_hidden`` hides them all, i.e. reads
    the melody alone, as generation does for beats the model writes itself (the checkpoint is
    chosen by it).
    """
    model.eval()
    loss = chord = 0.0
    n = right = right_hidden = 0
    for b in batches:
        total, st = harmony_loss(model, b)
        loss += float(total)
        chord += st["chord"]
        n += st["n"]
        right += st["right"]
        hidden = dict(b, prev_chord=torch.full_like(b["prev_chord"], G.MASK_INPUT))
        right_hidden += harmony_loss(model, hidden)[1]["right"]
    model.train()
    k = max(len(batches), 1)
    return {"loss": loss / k, "chord_loss": chord / k, "chord_acc": right / max(n, 1),
            "chord_acc_hidden": right_hidden / max(n, 1)}


def train(train_songs, val_songs, out_dir: Path, minutes: float, checkpoints: Path | str = "checkpoints",
          resume: bool = False, config: HarmonyConfig | None = None, batch_size: int = 32, lr: float = 1e-3,
          warmup: int = 150, eval_every: int = 250, checkpoint_minutes: float = 3.0, seed: int = 0,
          max_steps: int | None = None, bf16: bool = True, log=print, meta: dict | None = None) -> dict:
    """The training loop; returns the history also written to ``OUT/harmony-train.json``."""
    torch.manual_seed(seed)
    cfg = config or HarmonyConfig()
    model = HarmonyTransformer(cfg)
    opt = TR.adamw(model, lr)
    sampler = WindowSampler(train_songs, cfg.window_bars, seed)
    val = validation_batches(val_songs, cfg.window_bars) if val_songs else []
    step, elapsed, best, history = 0, 0.0, -1.0, []
    checkpoints = Path(checkpoints)
    ck_path = checkpoints / "harmony-checkpoint.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints.mkdir(parents=True, exist_ok=True)
    best_path = out_dir / "harmony.pt"
    if resume and ck_path.exists():
        model, opt, done = TR.resume(ck_path, lambda c: HarmonyTransformer(HarmonyConfig(**c)), lr)
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
        TR.save_checkpoint(ck_path, asdict(model.config), model, opt,
                           TR.Progress(step, time.time() - t0, best, history))

    def validate():
        nonlocal best
        ev = evaluate(model, val)
        history.append({"step": step, "minutes": round((time.time() - t0) / 60, 2),
                        "train_loss": round(run_loss or 0.0, 4), **{f"val_{k}": round(v, 4) for k, v in ev.items()}})
        mark = ""
        if ev["chord_acc_hidden"] > best:
            best = ev["chord_acc_hidden"]
            save_model(model, best_path, meta={**meta, "step": step, "val": ev})
            mark = "  (best: saved)"
        log(f"validation at step {step}: loss {ev['loss']:.4f} chord acc {ev['chord_acc']:.4f} "
            f"(previous chords hidden: {ev['chord_acc_hidden']:.4f}){mark}")

    model.train()
    while time.time() - t0 < budget_s and (max_steps is None or step < max_steps):
        for g in opt.param_groups:
            g["lr"] = TR.lr_at((time.time() - t0) / budget_s, step, lr, warmup)
        batch = sampler.batch(batch_size)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, st = harmony_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = float(loss.detach())
        run_loss = lv if run_loss is None else 0.95 * run_loss + 0.05 * lv
        if step % 25 == 0:
            log(f"step {step:5d}  {(time.time() - t0) / 60:5.1f}/{minutes:g} min  loss {run_loss:.4f} "
                f"(chord {st['chord']:.3f} bass {st['bass']:.3f} early {st['early']:.3f})")
        if val and step % eval_every == 0:
            validate()
        if time.time() - last_ck > checkpoint_minutes * 60:
            checkpoint()
            last_ck = time.time()
    if val:
        validate()
    else:
        save_model(model, best_path, meta={**meta, "step": step})
    checkpoint()
    result = {"steps": step, "minutes": round((time.time() - t0) / 60, 2), "best_val_chord_acc_hidden": best,
              "config": asdict(model.config), "parameters": model.n_parameters(), "batch_size": batch_size,
              "lr": lr, "warmup_steps": warmup, "seed": seed, "bf16": bf16, "history": history, **meta}
    (out_dir / "harmony-train.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the hum2band harmony transformer.")
    ap.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    ap.add_argument("--cache", default=None, help="lead-sheet cache folder (default ~/.cache/hum2band/leadsheets)")
    ap.add_argument("--sources", default="pop909,nottingham,chord-melody,openewld",
                    help="comma-separated lead-sheet sources (hum2band.train.datasets.SOURCES)")
    ap.add_argument("--out", default="models", help="where harmony.pt goes")
    ap.add_argument("--checkpoints", default="checkpoints", help="where the resumable checkpoint goes")
    ap.add_argument("--minutes", type=float, default=55.0, help="training time budget (across resumptions)")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--d-model", type=int, default=HarmonyConfig.d_model)
    ap.add_argument("--encoder-layers", type=int, default=HarmonyConfig.n_encoder_layers)
    ap.add_argument("--decoder-layers", type=int, default=HarmonyConfig.n_decoder_layers)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--checkpoint-minutes", type=float, default=3.0)
    ap.add_argument("--resume", action="store_true", help="continue from CHECKPOINTS/harmony-checkpoint.pt")
    ap.add_argument("--fp32", action="store_true", help="no bfloat16 autocast (slower on this CPU)")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    from .datasets import load_all

    t = time.time()
    data = load_all(a.data, tuple(x for x in a.sources.split(",") if x), cache_dir=a.cache)
    sheets = [ls for v in data.values() for ls in v]
    tr = prepare_songs([ls for ls in sheets if ls.split == "train"])
    va = prepare_songs([ls for ls in sheets if ls.split == "validation"])
    counts = {s: sum(1 for g in tr if g.source == s) for s in data}
    print(f"data: train {len(tr)} songs {counts}, validation {len(va)} ({time.time() - t:.0f} s)", flush=True)
    d = a.d_model
    cfg = HarmonyConfig(d_model=d, n_heads=max(1, d // 48), n_encoder_layers=a.encoder_layers,
                        n_decoder_layers=a.decoder_layers, d_ff=4 * d)
    meta = {"train_songs": len(tr), "train_songs_by_source": counts, "validation_songs": len(va),
            "train_beats": int(sum(g.n_beats for g in tr))}
    train(tr, va, Path(a.out), a.minutes, a.checkpoints, resume=a.resume, config=cfg, batch_size=a.batch_size,
          lr=a.lr, seed=a.seed, max_steps=a.max_steps, bf16=not a.fp32, eval_every=a.eval_every,
          checkpoint_minutes=a.checkpoint_minutes, log=lambda s: print(s, flush=True), meta=meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
