"""Train the bar model of the rhythm stage (``models/bars.pt``, see :mod:`hum2band.listen.bars`).

Data: the same melodies with real bar lines as the note model (:mod:`hum2band.train.beats`:
POP909 on its annotated beats, Nottingham, OpenEWLD, chord-melody; 4/4, 3/4, 6/8), train split
only; the validation split picks the checkpoint; the test split is the benchmark's. Each example
is an excerpt (12-48 s, starting at any note, so pickups and mid-bar starts are seen; with
``--phrase-starts SHARE`` that share are whole 4-bar phrases from a phrase's bar line or its
pickup, as a singer sings them, :func:`hum2band.train.beats.phrase_excerpt`) sung with
human timing (:func:`hum2band.train.synth.humanize_timing`: drift, trend, phrase rubato,
ritardando, onset jitter), degraded the way the transcriber degrades notes
(:func:`hum2band.train.beats.degrade`: late or early onsets, merged repeated notes, split long
notes, dropped short notes, octave errors, glide scraps), then read on the sung beat grid with
each beat moved by a few tens of milliseconds (the rhythm stage's grid is tracked, not known).
The key the tokens are read in is the one the rhythm stage would estimate from the notes.

Label per beat token: its (meter, beat of the bar). Loss: cross-entropy.

Run: ``hum2band train --model bars [--bars-minutes 55] [--resume]`` (resumable: the checkpoint keeps
weights, optimizer, step and the time spent).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..listen import bars as G
from ..listen.beats import BAR_CLASSES, METERS
from ..music.keyfinding import estimate_key
from ..music.melody import Note
from ..music.meter import beats_per_bar
from .beats import (Song, degrade, draw_examples, draw_settings, in_meters, perform_excerpt,
                    run_trainer, training_arguments)
from .loop import Progress

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


def make_example(song: Song, rng: np.random.Generator, phrase_starts: float = 0.0
                 ) -> Example | None:
    """A fresh sung, transcribed excerpt of ``song`` read on its (slightly wrong) beat grid
    (``phrase_starts``: see :func:`hum2band.train.beats.perform_excerpt`)."""
    bpb = beats_per_bar(song.meter)
    performed = perform_excerpt(song, rng, with_beats=True, phrase_starts=phrase_starts)
    if performed is None:
        return None
    sung, beats = performed
    res = degrade(sung, rng)
    if len(res) < 8:
        return None
    arr = np.array([[x[0], x[1], x[2]] for x in res])
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


def batch(songs: list[Song], rng: np.random.Generator, size: int, balance: float = 0.5,
          source_weights: dict | None = None, phrase_starts: float = 0.0):
    """``size`` fresh examples, padded: (x, bar) tensors; padding labelled -100 (songs drawn
    as :func:`hum2band.train.beats.draw_examples` draws them; ``phrase_starts``: the share sung
    as whole phrases, see :func:`hum2band.train.beats.perform_excerpt`)."""
    import torch

    def make(song, r):
        return make_example(song, r, phrase_starts)

    exs = draw_examples(songs, rng, size, balance, make, source_weights)
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

    logits = net(x)
    loss = _loss(logits, bar)
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
        meter = METERS[BAR_CLASSES[lab[0]][0]]
        sc = G.downbeat_scores(G.bar_log_probs(lp_all[i, :k].numpy(), meter))
        truth = (-BAR_CLASSES[lab[0]][1]) % len(sc)
        right.append(int(np.argmax(sc)) == truth)
    return loss, acc, float(np.mean(right)) if right else 0.0, float(np.mean(grid_right))


def _loss(logits, bar):
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), bar.reshape(-1), ignore_index=-100)


def train_loss(net, x, bar):
    """The loss alone (:func:`loss_and_accuracy` without its per-excerpt figures, which cost a
    training step about as much as the step itself)."""
    return _loss(net(x), bar)


def main(argv=None) -> int:
    ap = training_arguments("bars", __doc__.split("\n\n")[0], minutes=55.0, batch=32, hidden=80)
    args = ap.parse_args(argv)
    meters, source_weights = draw_settings(ap, args)

    def make_batch(songs, rng):
        return batch(in_meters(songs, meters), rng, args.batch, source_weights=source_weights,
                     phrase_starts=args.phrase_starts)

    return run_trainer(args, "bars", G.make_bar_net, len(G.GRID_FEATURE_NAMES), make_batch,
                       loss_and_accuracy,
                       ("beat_acc", "bar_phase", "grid"), ("bar_phase", "grid"), _export,
                       train_loss_of=train_loss)


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
