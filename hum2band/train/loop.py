"""What the two training scripts share: the optimizer, the learning-rate schedule and the
resumable checkpoint (``harmony_train`` and ``parts_train`` keep only their own data, loss and
validation).

A checkpoint holds the model's config and weights, the optimizer state, the step, the training
time spent so far (the time budget counts across resumptions), the best validation figure and
the history; it is written to a ``.tmp`` file and renamed, so an interrupted write leaves the
previous checkpoint intact.

The note and bar models of the rhythm stage make every training batch fresh (sung, degraded
excerpts); :func:`batches` makes them ahead in a background process, so the time budget buys
about twice the steps on two cores.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn


def adamw(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """The optimizer both models train with (AdamW, betas 0.9/0.98, weight decay 0.01)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)


def lr_at(progress: float, step: int, peak: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 5 % of ``peak`` at ``progress`` 1
    (the share of the time budget spent)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@dataclass
class Progress:
    """Where a training run stands (what a checkpoint carries besides weights and optimizer)."""

    step: int = 0
    elapsed_s: float = 0.0
    best: float = 0.0
    history: list = field(default_factory=list)


def resume(ck_path: Path, make_model: Callable[[dict], nn.Module], lr: float):
    """``(model, optimizer, Progress)`` from the checkpoint at ``ck_path``; ``make_model(config)``
    builds the model from the saved config."""
    ck = torch.load(ck_path, map_location="cpu", weights_only=False)
    model = make_model(ck["config"])
    model.load_state_dict(ck["model"])
    opt = adamw(model, lr)
    opt.load_state_dict(ck["optimizer"])
    return model, opt, Progress(ck["step"], ck["elapsed_s"], ck["best"], ck["history"])


def save_checkpoint(ck_path: Path, config: dict, model: nn.Module, opt: torch.optim.Optimizer,
                    progress: Progress) -> None:
    tmp = ck_path.with_suffix(".tmp")
    torch.save({"config": config, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "step": progress.step, "elapsed_s": progress.elapsed_s, "best": progress.best,
                "history": progress.history}, tmp)
    tmp.replace(ck_path)


def start_or_resume(ck_path: Path, make_model: Callable[[dict], nn.Module], config: dict, lr: float,
                    resume_run: bool):
    """``(model, optimizer, Progress, config)``: from the checkpoint at ``ck_path`` when
    ``resume_run`` and it exists (its own config), else a fresh model built from ``config``."""
    if resume_run and ck_path.exists():
        model, opt, prog = resume(ck_path, make_model, lr)
        config = torch.load(ck_path, map_location="cpu", weights_only=False)["config"]
        print(f"resumed at step {prog.step} ({prog.elapsed_s / 60:.1f} min spent)", flush=True)
        return model, opt, prog, config
    model = make_model(config)
    return model, adamw(model, lr), Progress(), config


def train_for_budget(model: nn.Module, opt: torch.optim.Optimizer, progress: Progress,
                     budget_s: float, peak_lr: float, warmup: int,
                     train_loss: Callable[[], torch.Tensor], eval_every: int,
                     evaluate: Callable[[float], None], checkpoint: Callable[[], None]) -> None:
    """Train until ``budget_s`` of training time (counted across resumptions) is spent.

    Each step sets the learning rate (:func:`lr_at`), takes ``train_loss()`` of a fresh batch,
    clips the gradient norm at 1 and steps the optimizer. Every ``eval_every`` steps the model
    is put in eval mode and ``evaluate(last training loss)`` runs without gradients, then
    ``checkpoint()``; ``checkpoint()`` runs once more at the end."""
    start, spent0 = time.perf_counter(), progress.elapsed_s
    while True:
        progress.elapsed_s = spent0 + time.perf_counter() - start
        if progress.elapsed_s >= budget_s:
            break
        model.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(progress.elapsed_s / budget_s, progress.step, peak_lr, warmup)
        loss = train_loss()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        progress.step += 1
        if progress.step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                evaluate(float(loss.item()))
            checkpoint()
    checkpoint()


def _produce(make_batch: Callable, seed: int, queue) -> None:
    """Worker loop of :func:`batches`: ``make_batch(rng)`` forever into ``queue``."""
    import numpy as np

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    while True:  # as arrays: tensors would travel as shared-memory handles, one per batch
        queue.put(tuple(t.numpy() if isinstance(t, torch.Tensor) else t for t in make_batch(rng)))


def batches(make_batch: Callable, seed: int, workers: int = 1, prefetch: int = 4) -> Iterator:
    """Training batches ``make_batch(rng)`` (tuples of tensors), made ahead in ``workers`` background processes.

    Making a fresh batch (synthesizing, degrading and encoding the examples) takes about as long
    as the training step on it, so on two cores one worker making batches while the main
    process trains nearly doubles the steps a time budget buys. With ``workers`` 0 the batches
    are made in this process, one before each step, from ``numpy.random.default_rng(seed)``;
    with one worker the stream is the same (the same generator, in the worker); with more, worker
    ``k`` draws from ``default_rng(seed + 1000003 * k)`` and the batches interleave as they
    come. The workers are forked (they inherit the songs without pickling them) and are stopped
    when the generator is closed or collected.
    """
    import numpy as np

    if workers <= 0:
        rng = np.random.default_rng(seed)
        while True:
            yield make_batch(rng)
    ctx = mp.get_context("fork")
    queue = ctx.Queue(maxsize=max(prefetch, workers))
    procs = [ctx.Process(target=_produce, args=(make_batch, seed + 1000003 * k, queue), daemon=True)
             for k in range(workers)]
    for p in procs:
        p.start()
    try:
        while True:
            yield tuple(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in queue.get())
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=5)
        queue.close()
