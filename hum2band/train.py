"""Train the harmony transformer: ``python -m hum2band.train --data ../shared/data --out models/``.

Reads the train split of POP909, Nottingham, chord-melody and OpenEWLD
(:func:`hum2band.datasets.load_all`, cached), tokenizes every song key-relative
(:mod:`hum2band.tokens`), and trains on random windows of ``window_bars`` bars with teacher forcing
(cross-entropy on every decoder token). Songs are drawn with probability proportional to
``min(n_bars, 48)``, so the long POP909 songs do not drown the short folk tunes, and the style
condition is blanked for 15 % of windows so the model also runs without a style.

The learning rate follows a linear warm-up then a cosine decay over the time budget
(``--minutes``); validation loss on fixed windows of the validation split (by song) is printed
every ``--eval-every`` steps; a checkpoint (model, optimizer, step, elapsed time, RNG states) is
written every ``--checkpoint-minutes`` to ``checkpoints/harmony-checkpoint.pt`` (``--checkpoints``)
and ``--resume`` continues from it. At the end the weights with the best validation loss are written in fp16 to
``OUT/harmony.pt`` with their settings and scores.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import tokens as T
from .model import HarmonyTransformer, ModelConfig, collate_decoder, collate_encoder, save_model

STYLE_DROPOUT = 0.15


def prepare_songs(lead_sheets) -> list[T.SongTokens]:
    """Tokenize lead sheets; songs in meters with more than 6 beats a bar are left out."""
    out = []
    for ls in lead_sheets:
        if ls.beats_per_bar > T.MAX_BEATS_PER_BAR or ls.n_bars < 1:
            continue
        out.append(T.leadsheet_tokens(ls))
    return out


def make_example(song: T.SongTokens, start_bar: int, window_bars: int, drop_style: bool = False):
    """Encoder input and decoder (tokens, bars) for bars ``[start_bar, start_bar + window_bars)``."""
    end = min(song.n_bars, start_bar + window_bars)
    cond = list(song.cond)
    if drop_style:
        cond[0] = T.condition_ids(None, song.meter, song.mode, 120.0)[0]
    enc = T.encoder_input(song.bars, cond, start_bar, end)
    toks, bars = T.decoder_tokens(song.chords, start_bar, end)
    return enc, (toks, bars, T.decoder_features(song.bars, start_bar, toks))


def batch_tensors(examples):
    enc = collate_encoder([e for e, _ in examples])
    tok, bars, mel = collate_decoder([d for _, d in examples])
    return enc, tok[:, :-1], bars[:, :-1], mel[:, :-1], tok[:, 1:]


def loss_of(model, examples) -> tuple[torch.Tensor, int, int]:
    """Mean token cross-entropy, number of target tokens, number predicted right."""
    enc, inp, bars, mel, tgt = batch_tensors(examples)
    logits = model(enc, inp, bars, mel)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=T.PAD)
    mask = tgt != T.PAD
    right = int(((logits.argmax(-1) == tgt) & mask).sum())
    return loss, int(mask.sum()), right


def validation_examples(songs, window_bars: int, max_windows: int = 400):
    """Fixed windows of the validation songs: non-overlapping, from bar 0, at most ``max_windows``."""
    ex = []
    for s in songs:
        for start in range(0, s.n_bars, window_bars):
            ex.append(make_example(s, start, window_bars))
    rng = random.Random(0)
    rng.shuffle(ex)
    return ex[:max_windows]


@torch.no_grad()
def evaluate_loss(model, examples, batch_size: int = 32) -> tuple[float, float]:
    """(mean token cross-entropy, token accuracy) over ``examples``."""
    model.eval()
    tot_loss, tot_n, tot_right = 0.0, 0, 0
    for i in range(0, len(examples), batch_size):
        loss, n, right = loss_of(model, examples[i:i + batch_size])
        tot_loss += float(loss) * n
        tot_n += n
        tot_right += right
    model.train()
    return tot_loss / max(tot_n, 1), tot_right / max(tot_n, 1)


class WindowSampler:
    """Random training windows: song ~ min(n_bars, 48), start bar uniform."""

    def __init__(self, songs, window_bars: int, seed: int):
        self.songs = songs
        self.window_bars = window_bars
        w = np.array([min(s.n_bars, 48) for s in songs], float)
        self.p = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int):
        idx = self.rng.choice(len(self.songs), size=size, p=self.p)
        out = []
        for i in idx:
            s = self.songs[i]
            start = int(self.rng.integers(0, max(1, s.n_bars - self.window_bars // 2)))
            out.append(make_example(s, start, self.window_bars, self.rng.random() < STYLE_DROPOUT))
        return out


def lr_at(progress: float, step: int, peak: float, warmup_steps: int) -> float:
    warm = min(1.0, (step + 1) / warmup_steps)
    return peak * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def train(train_songs, val_songs, out_dir: Path, minutes: float, config: ModelConfig | None = None,
          batch_size: int = 24, lr: float = 1.5e-3, warmup_steps: int = 100, seed: int = 0,
          resume: bool = False, eval_every: int = 200, checkpoint_minutes: float = 4.0,
          max_steps: int | None = None, bf16: bool = False, checkpoint_dir: Path | str | None = None,
          log=print) -> dict:
    """Train and write ``out_dir/harmony.pt``; returns the summary written to the model card.

    The checkpoint goes to ``checkpoint_dir/harmony-checkpoint.pt`` (default ``out_dir``).
    Stops when ``minutes`` of training time (summed over resumed runs) or ``max_steps`` are spent.
    ``bf16`` runs forward and backward matrix products in bfloat16 autocast (weights and optimizer
    stay fp32; about 1.5x faster on CPUs with AVX512-BF16).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else out_dir
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / "harmony-checkpoint.pt"
    config = config or ModelConfig()
    torch.manual_seed(seed)
    model = HarmonyTransformer(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sampler = WindowSampler(train_songs, config.window_bars, seed)
    step, elapsed, best, history = 0, 0.0, (float("inf"), 0.0, 0), []
    best_state = None
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model = HarmonyTransformer(ModelConfig(**ck["config"]))
        model.load_state_dict(ck["model"])
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
        opt.load_state_dict(ck["optimizer"])
        step, elapsed, history = ck["step"], ck["elapsed_s"], ck["history"]
        best = tuple(ck["best"])
        best_state = ck.get("best_state")
        sampler.rng = np.random.default_rng(seed + step)
        torch.set_rng_state(ck["torch_rng"])
        config = model.config
        log(f"resumed from {ckpt_path} at step {step}, {elapsed / 60:.1f} min trained")
    val = validation_examples(val_songs, config.window_bars)
    budget_s = minutes * 60.0
    log(f"model {model.n_parameters() / 1e6:.2f} M parameters; {len(train_songs)} train songs "
        f"({sum(s.n_bars for s in train_songs)} bars), {len(val)} validation windows "
        f"from {len(val_songs)} songs; budget {minutes:g} min")

    def checkpoint():
        torch.save({"config": asdict(config), "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "elapsed_s": elapsed, "history": history, "best": list(best),
                    "best_state": best_state, "torch_rng": torch.get_rng_state()}, ckpt_path)

    model.train()
    t_last = time.perf_counter()
    t_ckpt = t_last
    run_loss, run_n = 0.0, 0
    while elapsed < budget_s and (max_steps is None or step < max_steps):
        cur_lr = lr_at(elapsed / budget_s, step, lr, warmup_steps)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _, _ = loss_of(model, sampler.batch(batch_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += float(loss.detach())
        run_n += 1
        now = time.perf_counter()
        elapsed += now - t_last
        t_last = now
        last = elapsed >= budget_s or (max_steps is not None and step >= max_steps)
        if step % eval_every == 0 or last:
            vl, va = evaluate_loss(model, val)
            history.append({"step": step, "minutes": round(elapsed / 60, 2), "train_loss": run_loss / run_n,
                            "val_loss": vl, "val_token_acc": va})
            if vl < best[0]:
                best = (vl, va, step)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log(f"step {step:6d}  {elapsed / 60:5.1f}/{minutes:g} min  lr {cur_lr:.2e}  "
                f"train loss {run_loss / run_n:.3f}  val loss {vl:.3f}  val token acc {va:.3f}")
            run_loss, run_n = 0.0, 0
            t_last = time.perf_counter()  # evaluation time is not training time
        if now - t_ckpt > checkpoint_minutes * 60 or last:
            checkpoint()
            t_ckpt = time.perf_counter()
            t_last = t_ckpt
    if best_state is not None:
        model.load_state_dict(best_state)
    summary = {"steps": step, "minutes": round(elapsed / 60, 1), "best_val_loss": round(best[0], 4),
               "best_val_token_acc": round(best[1], 4), "best_step": best[2], "batch_size": batch_size,
               "lr": lr, "warmup_steps": warmup_steps, "seed": seed, "bf16": bf16, "config": asdict(config),
               "parameters": model.n_parameters(), "history": history}
    save_model(model, out_dir / "harmony.pt", half=True, meta={k: v for k, v in summary.items() if k != "history"})
    (out_dir / "harmony-train.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"wrote {out_dir / 'harmony.pt'} ({(out_dir / 'harmony.pt').stat().st_size / 1e6:.1f} MB), "
        f"best val loss {best[0]:.3f} at step {best[2]}")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Train the hum2band harmony transformer.")
    ap.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    ap.add_argument("--cache", default=None, help="lead-sheet cache folder (default ~/.cache/hum2band/leadsheets)")
    ap.add_argument("--sources", default="pop909,nottingham,chord-melody,openewld",
                    help="comma-separated lead-sheet sources (hum2band.datasets.SOURCES)")
    ap.add_argument("--out", default="models", help="where harmony.pt and the checkpoint go")
    ap.add_argument("--minutes", type=float, default=35.0, help="training time budget")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--fp32", action="store_true", help="no bfloat16 autocast")
    ap.add_argument("--d-model", type=int, default=ModelConfig.d_model)
    ap.add_argument("--layers", type=int, default=ModelConfig.n_encoder_layers, help="encoder = decoder layers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--checkpoint-minutes", type=float, default=4.0)
    ap.add_argument("--checkpoints", default="checkpoints",
                    help="folder of harmony-checkpoint.pt (kept out of git)")
    ap.add_argument("--resume", action="store_true", help="continue from CHECKPOINTS/harmony-checkpoint.pt")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from .datasets import load_all

    t0 = time.perf_counter()
    data = load_all(a.data, tuple(x for x in a.sources.split(",") if x), cache_dir=a.cache)
    sheets = [ls for v in data.values() for ls in v]
    train_songs = prepare_songs([ls for ls in sheets if ls.split == "train"])
    val_songs = prepare_songs([ls for ls in sheets if ls.split == "validation"])
    print(f"data: {', '.join(f'{s} {len(v)}' for s, v in data.items())} songs; "
          f"tokenized in {time.perf_counter() - t0:.1f} s", flush=True)
    heads = max(1, a.d_model // 32)
    cfg = ModelConfig(d_model=a.d_model, n_heads=heads, n_encoder_layers=a.layers, n_decoder_layers=a.layers,
                      d_ff=4 * a.d_model)
    train(train_songs, val_songs, Path(a.out), a.minutes, cfg, batch_size=a.batch_size, lr=a.lr, seed=a.seed,
          warmup_steps=a.warmup_steps, bf16=not a.fp32, resume=a.resume, eval_every=a.eval_every,
          checkpoint_minutes=a.checkpoint_minutes, max_steps=a.max_steps, checkpoint_dir=a.checkpoints,
          log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
