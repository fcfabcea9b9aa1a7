"""What the two training scripts share: the optimizer, the learning-rate schedule and the
resumable checkpoint (``harmony_train`` and ``parts_train`` keep only their own data, loss and
validation).

A checkpoint holds the model's config and weights, the optimizer state, the step, the training
time spent so far (the time budget counts across resumptions), the best validation figure and
the history; it is written to a ``.tmp`` file and renamed, so an interrupted write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
