"""Train the note model of the rhythm stage (``models/beats.pt``, see :mod:`hum2band.listen.beats`).

Data: every melody with real bar lines in the data folder (:func:`hum2band.train.datasets.load_all`:
POP909 with its annotated ``beat_midi.txt`` grid, Nottingham, OpenEWLD, chord-melody) in 4/4, 3/4
and 6/8, train split only (validation split for the best checkpoint; the test split is the
benchmark's). Each example is an excerpt (12-48 s, starting anywhere, so pickups and takes that
start mid-bar are seen; ``--phrase-starts SHARE``: that share whole 4-bar phrases from a phrase's
bar line or its pickup, :func:`phrase_excerpt`) sung the way :mod:`hum2band.train.synth`
humanizes timing -- a tempo typical of singing, slow drift of 2-9 %, a trend, rubato at phrase
ends, a ritardando, onset jitter, legato or detached articulation -- and then degraded the way
the transcriber degrades it: onsets off by 20-50 ms, repeated notes merged, long notes split (the
second half labelled "off the grid"), short notes dropped, octave errors and glide fragments (off
the grid). Examples are made fresh for every batch, so no two batches are alike.

Labels per distinct onset: its place in the beat in twelfths (or off the grid) and its
(meter, beat of the bar). Loss: cross-entropy of both heads.

Run: ``hum2band train --model beats [--beats-minutes 50] [--resume]`` (resumable: the checkpoint
keeps weights, optimizer, step and the time spent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..listen import beats as B
from ..music.keyfinding import estimate_key
from ..music.leadsheet import LeadSheet
from ..music.melody import Note
from ..music.meter import beats_per_bar
from . import synth
from .loop import Progress, batches, save_checkpoint, start_or_resume, train_for_budget

#: Sung tempo ranges (counted beats per minute) per meter; POP909 keeps its own tempo +-10 %
#: where that lies in 55-150.
TEMPO_RANGE_BPM = {(4, 4): (65.0, 140.0), (3, 4): (75.0, 160.0), (6, 8): (44.0, 96.0)}
#: Longest example, events.
MAX_EVENTS = 160
#: Meters are drawn with probability proportional to (songs in that meter) ** this, then a song
#: of that meter uniformly: 0 draws every meter equally often, 1 draws songs uniformly. The
#: training songs are 80 % 4/4, so uniform draws teach the bar head that nearly everything is
#: 4/4; 0.5 gives 4/4 about 59 %, 6/8 24 %, 3/4 16 %.
METER_BALANCE = 0.5


@dataclass
class Song:
    """A melody on counted beats (beat 0 a bar line)."""

    name: str
    meter: tuple
    onset_beat: np.ndarray
    offset_beat: np.ndarray
    midi: np.ndarray
    tempo_bpm: float | None  # the song's own sung tempo, where the source has one (POP909)


def songs_from_sheets(sheets: list[LeadSheet]) -> list[Song]:
    """The lead sheets in a meter the note model knows, with at least 16 notes."""
    out = []
    for ls in sheets:
        m = tuple(int(x) for x in ls.meter)
        if m not in B.METERS or len(ls.melody) < 16:
            continue
        on = np.array([n.onset_beat for n in ls.melody], dtype=float)
        off = np.array([n.offset_beat for n in ls.melody], dtype=float)
        tempo = float(ls.tempo_bpm) if ls.source == "pop909" else None
        out.append(Song(f"{ls.source}/{ls.song_id}", m, on, np.maximum(off, on + 1e-3),
                        np.array([n.midi for n in ls.melody], dtype=float), tempo))
    return out


@dataclass
class Example:
    """One sung and transcribed excerpt with its labels.

    Attributes
    ----------
    features : np.ndarray, shape (n, n_features), float32
    place : np.ndarray of int, shape (n,)
        Place in the beat in twelfths, or :data:`hum2band.listen.beats.OFF_GRID`.
    bar : np.ndarray of int, shape (n,)
        Column of :data:`hum2band.listen.beats.BAR_CLASSES`.
    onset_s : np.ndarray, shape (n,)
        Event times (for the decoder).
    beat : np.ndarray, shape (n,)
        True counted beat of each event (from the excerpt's first bar line).
    meter : tuple
    """

    features: np.ndarray
    place: np.ndarray
    bar: np.ndarray
    onset_s: np.ndarray
    beat: np.ndarray
    meter: tuple


def sing_excerpt(song: Song, rng: np.random.Generator, phrase_starts: float = 0.0):
    """An excerpt of ``song`` sung and transcribed: (notes, true beat of each note, off-grid flag).

    Returns None when the excerpt is too short. ``phrase_starts``: see :func:`perform_excerpt`.
    """
    res = perform_excerpt(song, rng, phrase_starts=phrase_starts)
    return None if res is None else degrade(res[0], rng)


def phrase_excerpt(song: Song, rng: np.random.Generator, target_beats: float
                   ) -> tuple[int, float, float] | None:
    """Where a singer would start and stop: whole 4-bar phrases of ``song`` (about
    ``target_beats`` long, at least 4 bars) from a bar line 4k bars after its first sung bar,
    with the pickup sung into that bar line (the notes after the last rest in the half bar before
    it), ending at a bar line, or up to a beat after it (the next phrase's pickup) half the time.

    Returns
    -------
    (first note index, the phrase's first bar line, stop) in beats of the song, or None when
    the song has no whole 4-bar phrase.
    """
    bpb = beats_per_bar(song.meter)
    on, off = song.onset_beat, song.offset_beat
    first_bar = np.floor(on[0] / bpb + 1e-9) * bpb
    last = float(off.max())
    lines = first_bar + 4 * bpb * np.arange(int((last - first_bar) // (4 * bpb)) + 1)
    lines = lines[lines + 4 * bpb <= last + 1e-6]
    if not len(lines):
        return None
    line = float(rng.choice(lines))
    n_bars = 4 * max(1, int(round(target_beats / bpb / 4)))
    while n_bars > 4 and line + n_bars * bpb > last + 1e-6:
        n_bars -= 4
    after = np.flatnonzero(on >= line - 1e-6)
    if not len(after):
        return None
    i0 = int(after[0])
    before = np.flatnonzero((on >= line - bpb / 2 - 1e-6) & (on < line - 1e-6))
    rested = [j for j in before if j == 0 or on[j] - off[j - 1] > 0.25]
    if rested:
        i0 = int(rested[-1])
    stop = line + n_bars * bpb + (rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 0.0)
    return i0, line, stop


def perform_excerpt(song: Song, rng: np.random.Generator, with_beats: bool = False,
                    phrase_starts: float = 0.0):
    """An excerpt of ``song`` as sung (before the transcriber's errors): ``(sung, beats_s)``, where
    ``sung`` is ``[(onset_s, offset_s, pitch, beat, False)]`` and ``beats_s`` the sung times of
    the excerpt's counted beats from its first bar line (None unless ``with_beats``). None when
    the excerpt is too short.

    A share ``phrase_starts`` of the excerpts are whole phrases, as a singer sings them
    (:func:`phrase_excerpt`: from a phrase's bar line or the pickup into it, to a phrase end);
    the rest start at any bar line half the time, at any note (mid-bar) otherwise, and stop
    after 12-48 s.
    """
    bpb = beats_per_bar(song.meter)
    n = len(song.onset_beat)
    target_s = rng.uniform(12.0, 48.0)
    if song.tempo_bpm and 55.0 <= song.tempo_bpm <= 150.0:
        bpm = song.tempo_bpm * rng.uniform(0.9, 1.1)
    else:
        bpm = rng.uniform(*TEMPO_RANGE_BPM[song.meter])
    beat_s = 60.0 / bpm
    phrase = (phrase_excerpt(song, rng, target_s / beat_s)
              if phrase_starts and rng.random() < phrase_starts else None)
    if phrase is not None:
        i0, line, stop = phrase
    else:
        # start at a random note: on a bar line half the time, elsewhere (pickups, mid-bar)
        starts = np.flatnonzero(np.abs(song.onset_beat / bpb - np.round(song.onset_beat / bpb))
                                < 1e-6)
        if len(starts) and rng.random() < 0.5:
            i0 = int(rng.choice(starts))
        else:
            i0 = int(rng.integers(0, max(n - 12, 1)))
        line, stop = None, song.onset_beat[i0] + target_s / beat_s
    b0 = song.onset_beat[i0]
    bar0 = np.floor(b0 / bpb + 1e-9) * bpb
    keep = (np.arange(n) >= i0) & (song.onset_beat < stop)
    if keep.sum() < 8:
        return None
    on_b = song.onset_beat[keep] - bar0
    off_b = np.minimum(song.offset_beat[keep], stop) - bar0
    midi = song.midi[keep] + int(rng.integers(-6, 7))
    score = [Note(float(a * beat_s), float(max(b, a + 0.05) * beat_s), float(p), int(p), 80)
             for a, b, p in zip(on_b, off_b, midi)]
    end_beat = float(off_b.max())
    first_phrase = 0.0 if line is None else line - bar0
    phrase_ends = np.arange(first_phrase + 4 * bpb, end_beat, 4 * bpb) * beat_s
    grid_s = np.arange(0.0, np.ceil(end_beat) + 2.0) * beat_s if with_beats else ()
    timing = synth.humanize_timing(
        score, grid_s, tempo_drift=rng.uniform(0.02, 0.09), tempo_trend=rng.uniform(-0.05, 0.05),
        onset_jitter_s=rng.uniform(0.008, 0.03), phrase_ends_s=phrase_ends,
        phrase_rubato=rng.uniform(0.0, 0.3), ritardando=rng.uniform(0.0, 0.15),
        seed=int(rng.integers(1 << 30)))
    legato = rng.uniform(0.55, 1.0)
    sung = []
    for k, nt in enumerate(timing.notes):
        nxt = timing.notes[k + 1].onset_s if k + 1 < len(timing.notes) else np.inf
        length = (nt.offset_s - nt.onset_s) * (legato if nt.offset_s >= nxt - 1e-6 else 1.0)
        sung.append((nt.onset_s, nt.onset_s + max(length, 0.05), nt.midi_pitch
                     + rng.normal(0.0, 0.15), on_b[k], False))
    return sung, (np.asarray(timing.beats_s, dtype=float) if with_beats else None)


def degrade(sung, rng: np.random.Generator):
    """What a pitch tracker and note segmenter make of sung notes (as the benchmark's
    ``degrade_notes``, with labels carried): ``[(onset_s, offset_s, pitch, beat, off_grid)]``."""
    out = []
    for on, off, p, b, og in sung:
        on2 = on + (rng.normal(0.0, 0.02) if rng.random() < 0.7 else rng.normal(0.03, 0.03))
        out.append([on2, max(off, on2 + 0.04), p, b, og])
    out.sort(key=lambda x: x[0])
    merged = []
    p_merge_same, p_merge_other = rng.uniform(0.2, 0.6), rng.uniform(0.0, 0.06)
    for x in out:
        if merged:
            prev = merged[-1]
            same = abs(prev[2] - x[2]) < 0.6
            if x[0] - prev[1] < 0.08 and rng.random() < (p_merge_same if same else p_merge_other):
                prev[1] = x[1]
                continue
        merged.append(x)
    res = []
    p_drop, p_split = rng.uniform(0.0, 0.4), rng.uniform(0.0, 0.1)
    for x in merged:
        d = x[1] - x[0]
        if d < 0.1 and rng.random() < p_drop:
            continue
        if d > 0.35 and rng.random() < p_split:
            cut = x[0] + d * rng.uniform(0.3, 0.7)
            res.append([x[0], cut - 0.01, x[2], x[3], x[4]])
            res.append([cut, x[1], x[2] + rng.normal(0, 0.1), x[3], True])
            continue
        if rng.random() < 0.02:
            x[2] += 12 * rng.choice([-1, 1])
        res.append(x)
    for _ in range(int(rng.binomial(len(res), rng.uniform(0.0, 0.04)))):
        base = res[int(rng.integers(0, len(res)))]
        t = base[0] - rng.uniform(0.06, 0.12)
        res.append([t, t + rng.uniform(0.05, 0.09), base[2] + rng.uniform(-2, 2), base[3], True])
    res.sort(key=lambda x: x[0])
    return res


def make_example(song: Song, rng: np.random.Generator, phrase_starts: float = 0.0
                 ) -> Example | None:
    """A fresh sung, transcribed and labelled excerpt of ``song`` (None if too short;
    ``phrase_starts``: see :func:`perform_excerpt`)."""
    res = sing_excerpt(song, rng, phrase_starts)
    if res is None or len(res) < 8:
        return None
    arr = np.array([[x[0], x[1], x[2], x[3], float(x[4])] for x in res])
    ev = B.note_events(arr[:, 0], arr[:, 1], arr[:, 2])
    if len(ev.onset_s) < 8:
        return None
    if len(ev.onset_s) > B_MAX:
        ev = B.NoteEvents(ev.onset_s[:B_MAX], ev.offset_s[:B_MAX], ev.pitch[:B_MAX],
                          ev.index[:B_MAX])
    notes = [Note(float(a), float(b), float(p)) for a, b, p in zip(ev.onset_s, ev.offset_s, ev.pitch)]
    key = estimate_key(notes, vote=False)  # what the rhythm stage gives the model
    feats = B.note_features(ev, key.tonic_pitch_class, key.mode == "minor")
    beat = arr[ev.index, 3]
    off_grid = arr[ev.index, 4] > 0
    twelfths = beat * B.UNITS_PER_BEAT
    near = np.abs(twelfths - np.round(twelfths)) < 0.05
    place = np.where(near & ~off_grid, np.round(twelfths).astype(int) % B.UNITS_PER_BEAT, B.OFF_GRID)
    bpb = beats_per_bar(song.meter)
    mi = B.METERS.index(song.meter)
    col = {c: k for k, c in enumerate(B.BAR_CLASSES)}
    bar = np.array([col[(mi, int(np.floor(b + 1e-6)) % bpb)] for b in beat])
    return Example(feats, place, bar, ev.onset_s, beat, song.meter)


B_MAX = MAX_EVENTS

#: How ``models/beats-offset.pt`` is trained (``hum2band train --model beats-offset``): the same
#: net and data, on the meters whose beats it places (4/4 and 3/4), POP909's syncopated songs
#: drawn 2.2 times as often within their meter (59 % of the 4/4 examples against 40 %), the
#: checkpoint chosen by the place head alone (the only head the rhythm stage reads from it).
OFFSET_RECIPE = ("--name", "beats-offset", "--minutes", "55", "--meters", "4/4,3/4",
                 "--source-weight", "pop909=2.2", "--best-by", "place")


def meter_draw(songs: list[Song], balance: float = METER_BALANCE) -> tuple[list, np.ndarray]:
    """The songs grouped by meter and the probability of drawing each group.

    Returns
    -------
    groups : list of list of Song
        One list per meter present, in :data:`hum2band.listen.beats.METERS` order.
    p : np.ndarray, shape (len(groups),)
        ``len(group) ** balance``, normalised.
    """
    groups = [[s for s in songs if s.meter == m] for m in B.METERS]
    groups = [g for g in groups if g]
    w = np.array([len(g) ** balance for g in groups], dtype=float)
    return groups, w / w.sum()


def song_weights(group: list[Song], source_weights: dict | None) -> np.ndarray | None:
    """Probability of drawing each song of a meter group: in proportion to its source's weight
    (``{"pop909": 2.0}``; sources not named weigh 1); None (uniform) without weights."""
    if not source_weights:
        return None
    w = np.array([float(source_weights.get(s.name.split("/", 1)[0], 1.0)) for s in group])
    return w / w.sum()


def draw_examples(songs: list[Song], rng: np.random.Generator, size: int, balance: float,
                  make, source_weights: dict | None = None) -> list:
    """``size`` examples ``make(song, rng)`` (None: drawn again), each song drawn after its meter
    (:func:`meter_draw`), then within the meter after its source (:func:`song_weights`)."""
    groups, p = meter_draw(songs, balance)
    within = [song_weights(g, source_weights) for g in groups]
    exs = []
    while len(exs) < size:
        k = int(rng.choice(len(groups), p=p))
        g = groups[k]
        pick = rng.integers(len(g)) if within[k] is None else rng.choice(len(g), p=within[k])
        ex = make(g[int(pick)], rng)
        if ex is not None:
            exs.append(ex)
    return exs


def batch(songs: list[Song], rng: np.random.Generator, size: int,
          balance: float = METER_BALANCE, source_weights: dict | None = None,
          phrase_starts: float = 0.0):
    """``size`` fresh examples, padded: (x, place, bar) tensors; padding labelled -100.

    Each example's meter is drawn first (:func:`meter_draw`), then a song of that meter, in
    proportion to its source's weight in ``source_weights`` (:func:`song_weights`);
    ``phrase_starts``: the share sung as whole phrases (:func:`perform_excerpt`)."""
    import torch

    def make(song, r):
        return make_example(song, r, phrase_starts)

    exs = draw_examples(songs, rng, size, balance, make, source_weights)
    n = max(len(e.place) for e in exs)
    x = np.zeros((size, n, len(B.FEATURE_NAMES)), dtype=np.float32)
    place = np.full((size, n), -100, dtype=np.int64)
    bar = np.full((size, n), -100, dtype=np.int64)
    for i, e in enumerate(exs):
        k = len(e.place)
        x[i, :k], place[i, :k], bar[i, :k] = e.features, e.place, e.bar
    return torch.from_numpy(x), torch.from_numpy(place), torch.from_numpy(bar)


def loss_and_accuracy(net, x, place, bar):
    import torch.nn.functional as F

    lp, lb = net(x)
    loss = (F.cross_entropy(lp.reshape(-1, lp.shape[-1]), place.reshape(-1), ignore_index=-100)
            + F.cross_entropy(lb.reshape(-1, lb.shape[-1]), bar.reshape(-1), ignore_index=-100))
    ok = place >= 0
    acc_p = (lp.argmax(-1) == place)[ok].float().mean().item()
    acc_b = (lb.argmax(-1) == bar)[ok].float().mean().item()
    return loss, acc_p, acc_b


def argument_parser() -> argparse.ArgumentParser:
    """The options of ``hum2band train --model beats`` (and ``beats-offset``)."""
    ap = training_arguments("beats", __doc__.split("\n\n")[0], minutes=50.0, batch=24, hidden=96)
    ap.add_argument("--meter-balance", type=float, default=METER_BALANCE,
                    help="draw meters in proportion to their song counts to this power "
                         "(0: equally often, 1: as the corpus has them)")
    ap.add_argument("--best-by", default="place,bar",
                    help="validation metrics whose sum picks the shipped checkpoint")
    ap.add_argument("--name", default="beats",
                    help="the run's name: OUT/NAME.pt, OUT/NAME-train.json, CHECKPOINTS/NAME.ckpt "
                         "(beats-offset for models/beats-offset.pt, see OFFSET_RECIPE)")
    return ap


def main(argv=None) -> int:
    ap = argument_parser()
    args = ap.parse_args(argv)
    meters, source_weights = draw_settings(ap, args)
    best_by = tuple(args.best_by.split(","))
    if not set(best_by) <= {"place", "bar"}:
        ap.error(f"--best-by: place and/or bar, not {args.best_by!r}")

    def make_batch(songs, rng):
        return batch(in_meters(songs, meters), rng, args.batch, args.meter_balance, source_weights,
                     args.phrase_starts)

    def export(out_dir, config, net, prog):
        _export(out_dir, config, net, prog, name=args.name)

    return run_trainer(args, args.name, B.make_beat_net, len(B.FEATURE_NAMES), make_batch,
                       loss_and_accuracy, ("place", "bar"), best_by, export)


def draw_settings(ap: argparse.ArgumentParser, args) -> tuple[list | None, dict]:
    """``--meters`` and ``--source-weight`` read and checked, ``--phrase-starts`` and ``--dropout``
    checked (a one-line usage error otherwise):
    (the meters to train on or None for all, {source: weight})."""
    meters = None
    if args.meters:
        try:
            meters = [tuple(int(x) for x in m.split("/")) for m in args.meters.split(",")]
        except ValueError:
            ap.error(f"--meters wants meters like 4/4,3/4, not {args.meters!r}")
        unknown = [m for m in meters if m not in B.METERS]
        if unknown:
            ap.error(f"--meters: the models know {', '.join('%d/%d' % m for m in B.METERS)}, "
                     f"not {', '.join('%d/%d' % m for m in unknown)}")
    source_weights = {}
    for sw in args.source_weight:
        src, _, text = sw.partition("=")
        try:
            weight = float(text)
        except ValueError:
            weight = float("nan")
        if not weight > 0:
            ap.error(f"--source-weight wants SOURCE=W with W > 0, e.g. pop909=2, not {sw!r}")
        source_weights[src] = weight
    if not 0.0 <= args.phrase_starts <= 1.0:
        ap.error(f"--phrase-starts is a share between 0 and 1, not {args.phrase_starts}")
    if not 0.0 <= args.dropout < 1.0:
        ap.error(f"--dropout is a probability from 0 up to (not including) 1, not {args.dropout}")
    return meters, source_weights


def in_meters(songs: list[Song], meters: list | None) -> list[Song]:
    """The songs in ``meters`` (all of them when None)."""
    return songs if meters is None else [s for s in songs if s.meter in meters]


def run_trainer(args, name: str, make_net, n_features: int, make_batch, loss_and_metrics,
                metric_names: tuple, best_by: tuple, export, train_loss_of=None) -> int:
    """The run the note and bar model trainers share (options: :func:`training_arguments`).

    Reads the songs, draws 8 fixed validation batches, starts or resumes the run
    (``checkpoints/NAME.ckpt``) and trains it for ``args.minutes``. Every ``args.eval_every``
    steps it prints and records the validation loss and ``metric_names``; when the sum of the
    ``best_by`` metrics is the best so far, ``export(out_dir, config, net, progress)`` writes
    the shipped weights. ``make_batch(songs, rng)`` gives a batch's tensors,
    ``loss_and_metrics(net, *batch)`` its loss and metrics; ``train_loss_of(net, *batch)``
    (default: the loss of ``loss_and_metrics``) the loss a training step minimizes, where the
    metrics cost time a step need not spend. The training batches are made ahead in
    ``args.workers`` background processes (:func:`hum2band.train.loop.batches`).
    """
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, val_songs = training_songs(args.data, args.limit)
    vrng = np.random.default_rng(12345)
    val = [make_batch(val_songs, vrng) for _ in range(8)]
    out_dir, ck_dir = Path(args.out), Path(args.checkpoints)
    ck_dir.mkdir(parents=True, exist_ok=True)
    ck_path = ck_dir / f"{name}.ckpt"
    config = {"n_features": n_features, "hidden": args.hidden, "layers": args.layers,
              "dropout": args.dropout}
    net, opt, prog, config = start_or_resume(ck_path, make_net, config, args.lr, args.resume)
    stream = batches(lambda rng: make_batch(train, rng), args.seed + prog.step, args.workers)
    if train_loss_of is None:
        def train_loss_of(net, *b):
            return loss_and_metrics(net, *b)[0]

    def train_loss():
        return train_loss_of(net, *next(stream))

    def evaluate(last_loss: float) -> None:
        r = np.array([[float(v.item()) if hasattr(v, "item") else float(v)
                       for v in loss_and_metrics(net, *vb)] for vb in val]).mean(axis=0)
        got = dict(zip(("loss",) + tuple(metric_names), r))
        prog.history.append({"step": prog.step, "minutes": round(prog.elapsed_s / 60, 2),
                             **{k: round(float(v), 4) for k, v in got.items()}})
        print(f"step {prog.step} {prog.elapsed_s / 60:.1f} min train loss {last_loss:.3f} val "
              + " ".join(f"{k} {v:.3f}" for k, v in got.items()), flush=True)
        score = float(sum(got[k] for k in best_by))
        if score > prog.best:
            prog.best = score
            export(out_dir, config, net, prog)

    try:
        train_for_budget(net, opt, prog, 60.0 * args.minutes, args.lr, 200, train_loss,
                         args.eval_every, evaluate,
                         lambda: save_checkpoint(ck_path, config, net, opt, prog))
    finally:
        stream.close()
    if not (out_dir / f"{name}.pt").exists():
        export(out_dir, config, net, prog)
    print(f"done: {prog.step} steps in {prog.elapsed_s / 60:.1f} min, best {' + '.join(best_by)} "
          f"{prog.best:.3f}", flush=True)
    return 0


def training_arguments(model: str, description: str, minutes: float, batch: int,
                       hidden: int) -> argparse.ArgumentParser:
    """The options the note and bar model trainers share, with their defaults."""
    ap = argparse.ArgumentParser(prog=f"hum2band train --model {model}", description=description)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="models")
    ap.add_argument("--checkpoints", default="checkpoints")
    ap.add_argument("--minutes", type=float, default=minutes, help="training time budget")
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--hidden", type=int, default=hidden)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--dropout", type=float, default=0.1,
                    help="dropout between the recurrent layers while training (default 0.1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training step")
    ap.add_argument("--workers", type=int, default=1,
                    help="background processes making the training batches (0: made in turn with "
                         "the steps; default 1: on two cores, about twice the steps per minute)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--limit", type=int, default=None, help="songs per source (quick runs)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--meters", default=None,
                    help="train on these meters only, e.g. 4/4,3/4 (default: every meter the model "
                         "knows)")
    ap.add_argument("--source-weight", action="append", default=[], metavar="SOURCE=W",
                    help="within its meter, draw a song of SOURCE W times as often (repeatable)")
    ap.add_argument("--phrase-starts", type=float, default=0.0, metavar="SHARE",
                    help="share of the excerpts sung as whole phrases, from a phrase's bar line or "
                         "its pickup to a phrase end, as a singer sings them (default 0: every "
                         "excerpt starts at any bar line or note and stops after 12-48 s)")
    return ap


def training_songs(data: str | None, limit: int | None) -> tuple[list[Song], list[Song]]:
    """The train-split and validation-split songs with real bar lines (with ``limit``: that many
    per source, all of them used for both, for quick runs)."""
    from . import datasets as ds

    t0 = time.perf_counter()
    if limit:
        sheets = {s: ds.load_source(s, data, limit=limit) for s in ds.SOURCES}
    else:
        sheets = ds.load_all(data)
    train = songs_from_sheets([ls for v in sheets.values() for ls in v if ls.split == "train"])
    val_songs = songs_from_sheets([ls for v in sheets.values() for ls in v if ls.split == "validation"])
    if limit:  # quick runs: no split is large enough, use all for both
        train = val_songs = songs_from_sheets([ls for v in sheets.values() for ls in v])
    print(f"{len(train)} training songs, {len(val_songs)} validation songs "
          f"({time.perf_counter() - t0:.0f} s to read)", flush=True)
    return train, val_songs


def _export(out_dir: Path, config: dict, net, prog: Progress, decoder: dict | None = None,
            name: str = "beats") -> None:
    """Write the shipped weights (float16 halves the file) and the training record:
    ``NAME.pt``, ``NAME-train.json``."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    path = out_dir / f"{name}.pt"
    if decoder is None and path.exists():
        decoder = torch.load(path, map_location="cpu", weights_only=False).get("decoder", {})
    tmp = path.with_suffix(".tmp")
    torch.save({"config": config, "model": state, "decoder": decoder or {},
                "features": list(B.FEATURE_NAMES), "step": prog.step}, tmp)
    tmp.replace(path)
    (out_dir / f"{name}-train.json").write_text(json.dumps(
        {"steps": prog.step, "minutes": round(prog.elapsed_s / 60, 1), "history": prog.history},
        indent=1))


if __name__ == "__main__":
    sys.exit(main())
