"""``hum2band train``: reproduce the shipped models from the data sets.

The only command that reaches :mod:`hum2band.train`; the trainers are imported when it runs, so
nothing on the arrange path loads them.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from .common import EXIT_OK


def add_train_parser(sub) -> None:
    t = sub.add_parser(
        "train", help="train the shipped models from the data sets (resumable)",
        description="Reproduce models/parts.pt (the accompaniment model: builds the mma corpus first) "
                    "and/or models/harmony.pt (the chord model) and/or models/beats.pt (the rhythm stage's "
                    "note model) and/or models/bars.pt (its bar model) from the data folder. Progress and loss "
                    "are printed; --resume continues from the last checkpoint.")
    t.add_argument("--model", choices=("parts", "harmony", "beats", "beats-offset", "bars", "all"), default="all")
    t.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    t.add_argument("--out", default="models", help="where the weights go (default: %(default)s)")
    t.add_argument("--checkpoints", default="checkpoints", help="where checkpoints go (default: %(default)s)")
    t.add_argument("--parts-minutes", type=float, default=None, help="training budget of the parts model")
    t.add_argument("--harmony-minutes", type=float, default=None, help="training budget of the chord model")
    t.add_argument("--beats-minutes", type=float, default=None,
                   help="training budget of the beat model (default: 50)")
    t.add_argument("--beats-offset-minutes", type=float, default=None,
                   help="training budget of the beat-offset model (default: 55)")
    t.add_argument("--bars-minutes", type=float, default=None,
                   help="training budget of the bar model (default: 55)")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoints")


def run_train(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """``hum2band train``: the training scripts with the shipped settings."""
    common = ["--out", args.out, "--checkpoints", args.checkpoints] + (["--data", args.data] if args.data else [])
    common += ["--resume"] if args.resume else []
    status = EXIT_OK
    if args.model in ("parts", "all"):
        from ..train import parts as parts_train

        extra = ["--minutes", str(args.parts_minutes)] if args.parts_minutes else []
        status = parts_train.main(common + extra) or status
    if args.model in ("harmony", "all"):
        from ..train import harmony as harmony_train

        extra = ["--minutes", str(args.harmony_minutes)] if args.harmony_minutes else []
        status = harmony_train.main(common + extra) or status
    if args.model in ("beats", "all"):
        from ..train import beats as beats_train

        extra = ["--minutes", str(args.beats_minutes)] if args.beats_minutes else []
        status = beats_train.main(common + extra) or status
    if args.model in ("beats-offset", "all"):
        from ..train import beats as beats_train

        extra = ["--minutes", str(args.beats_offset_minutes)] if args.beats_offset_minutes else []
        status = beats_train.main(common + list(beats_train.OFFSET_RECIPE) + extra) or status
    if args.model in ("bars", "all"):
        from ..train import bars as bars_train

        extra = ["--minutes", str(args.bars_minutes)] if args.bars_minutes else []
        status = bars_train.main(common + extra) or status
    return status
