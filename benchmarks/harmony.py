"""Benchmark: chords for held-out melodies, per source and overall.

For every test-split song (see :func:`hum2band.music.leadsheet.split_of`) of POP909, Nottingham,
chord-melody and OpenEWLD, each system writes chords for the song's melody and is scored with
:mod:`hum2band.train.harmony_metrics`: beat-weighted mir_eval ``majmin`` and ``root`` accuracy against
the human chords, the six metrics of Yeh et al. 2021 (CHE, CC, CTD, CTnCTR, PCS, MCTD) and distinct
chords per song. Scores are means over songs (overall: over all test songs of all sources).

Systems
-------
* ``human`` -- the data set's own chords (accuracy 1 by definition; the other metrics are the target).
* ``hmm`` -- :class:`hum2band.compose.hmm_harmonizer.HMMHarmonizer` fitted on the train split of all
  sources (parameters saved to ``--hmm``).
* ``model`` -- the harmony transformer (:func:`hum2band.compose.harmony.harmonize.benchmark_harmonizer`: the
  weights of ``--model``, default ``models/harmony.pt``, greedy, each song's own style label and
  key), when the weights exist (``--no-model`` leaves it out); ``model-blind`` is the same model
  told neither key nor style (it estimates the key from the melody, as for a sung take): the like
  for like comparison with the HMM, which knows neither, and the one the HMM margin is judged on;
  ``model-sampled`` is the same model
  with the API's default sampling (the family of each chord as greedy, its quality and bass drawn
  at temperature 1, top-p 0.95, seed 0), which is what ``hum2band harmonize`` and ``arrange`` play.
* any other: ``--system NAME=module:function`` where ``function(lead_sheet) -> [(start_beat,
  end_beat, ChordSymbol), ...]`` (e.g. the trained accompaniment model). Add it to
  :data:`SYSTEMS` in code or on the command line.

The reference figures of issue 3 (a MySong-style HMM and the human chords on comparable held-out
songs) are printed beside.

Run: ``.venv/bin/python benchmarks/harmony.py [--data DIR] [--max-songs N]``
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hum2band.train.datasets import SOURCES, count_twins, load_all  # noqa: E402
from hum2band.music.leadsheet import LeadSheet  # noqa: E402
from hum2band.train.harmony_metrics import METRIC_NAMES, evaluate  # noqa: E402
from hum2band.compose.hmm_harmonizer import HMMHarmonizer  # noqa: E402

Harmonizer = Callable[[LeadSheet], list]

#: Issue 3's reference figures: HMM majmin per source, and PCS / CTnCTR / distinct for HMM and human.
REFERENCE = {
    "hmm": {"pop909": {"majmin": 0.29}, "chord-melody": {"majmin": 0.24},
            "openewld": {"majmin": 0.36}, "nottingham": {"majmin": 0.56},
            "overall": {"majmin": 0.39, "pcs": 0.61, "ctnctr": 0.93, "distinct": 6}},
    "human": {"overall": {"pcs": 0.53, "ctnctr": 0.88, "distinct": 12}},
}

COLUMNS = ("majmin", "root", "che", "cc", "ctd", "ctnctr", "pcs", "mctd", "distinct")


def human(lead_sheet: LeadSheet) -> list:
    return list(lead_sheet.chords)


def fit_hmm(train: list[LeadSheet], validation: list[LeadSheet], path: Path | None) -> HMMHarmonizer:
    """Fit on ``train``; pick the emission weight on ``validation``; save to ``path``."""
    hmm = HMMHarmonizer().fit(train)
    hmm.tune_emission_weight(validation)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        hmm.save(path)
    return hmm


def score_system(harmonize: Harmonizer, songs: list[LeadSheet]) -> tuple[np.ndarray, float]:
    """(n_songs, n_metrics) scores and seconds spent harmonizing."""
    rows, spent = [], 0.0
    for ls in songs:
        t0 = time.perf_counter()
        chords = harmonize(ls)
        spent += time.perf_counter() - t0
        s = evaluate(ls.melody, chords, ls.beats_per_bar, reference=ls.chords)
        rows.append([getattr(s, m) for m in METRIC_NAMES])
    return np.array(rows, dtype=float).reshape(-1, len(METRIC_NAMES)), spent


def fmt_row(label: str, scores: np.ndarray, ref: dict | None) -> str:
    cells = []
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(scores, axis=0) if len(scores) else np.full(len(METRIC_NAMES), np.nan)
    for m in COLUMNS:
        v = means[METRIC_NAMES.index(m)]
        cell = f"{v:6.2f}" if np.isfinite(v) else "     -"
        r = (ref or {}).get(m)
        cell += f" ({r:4.2f})" if r is not None and m != "distinct" else (f" ({r:4d})" if r is not None else "       ")
        cell = f"{cell:>13s}"
        cells.append(cell)
    return f"{label:26s} " + " ".join(cells)


def parse_system(spec: str) -> tuple[str, Harmonizer]:
    name, _, target = spec.partition("=")
    mod, _, fn = target.partition(":")
    if not (name and mod and fn):
        raise SystemExit(f"--system '{spec}': write it as NAME=module:function")
    return name, getattr(importlib.import_module(mod), fn)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="data folder (default $HUM2BAND_DATA or ../shared/data)")
    ap.add_argument("--cache", default=None, help="lead-sheet cache folder (default ~/.cache/hum2band)")
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--max-songs", type=int, default=None, help="at most N test songs per source")
    ap.add_argument("--hmm", default=str(Path.home() / ".cache" / "hum2band" / "hmm_baseline.npz"),
                    help="where to save the fitted HMM (.npz)")
    ap.add_argument("--system", action="append", default=[], help="NAME=module:function, repeatable")
    ap.add_argument("--model", default=str(ROOT / "models" / "harmony.pt"),
                    help="harmony transformer weights for the 'model' system")
    ap.add_argument("--no-model", action="store_true", help="leave the harmony transformer out")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    sources = tuple(s for s in a.sources.split(",") if s)
    data = load_all(a.data, sources, a.cache)
    t_load = time.perf_counter() - t0
    if not data:
        print("no data sources found: pass --data DIR or set HUM2BAND_DATA", file=sys.stderr)
        return 1
    train = [ls for sheets in data.values() for ls in sheets if ls.split == "train"]
    validation = [ls for sheets in data.values() for ls in sheets if ls.split == "validation"]
    test = {s: [ls for ls in sheets if ls.split == "test"][: a.max_songs] for s, sheets in data.items()}
    print(f"twins (one tune in two sources or versions) sharing a split: "
          f"{count_twins([ls for v in data.values() for ls in v])} songs")
    print(f"loaded {sum(len(v) for v in data.values())} lead sheets in {t_load:.1f} s; "
          f"HMM trained on {len(train)} train songs; test songs: "
          + ", ".join(f"{s} {len(v)}" for s, v in test.items()))

    t0 = time.perf_counter()
    hmm = fit_hmm(train, validation, Path(a.hmm) if a.hmm else None)
    print(f"HMM fit {time.perf_counter() - t0:.1f} s, emission weight {hmm.emission_weight:g} "
          f"(chosen on {len(validation)} validation songs)" + (f", saved to {a.hmm}" if a.hmm else ""))

    systems: dict[str, Harmonizer] = {"human": human, "hmm": hmm.harmonize}
    if not a.no_model and Path(a.model).is_file():
        os.environ["HUM2BAND_HARMONY_MODEL"] = str(Path(a.model).resolve())
        from hum2band.compose.harmony.harmonize import (
            benchmark_harmonizer,
            benchmark_harmonizer_blind,
            benchmark_harmonizer_sampled,
            load_harmony_model,
        )

        load_harmony_model()  # load once, before timing
        systems["model"] = benchmark_harmonizer
        systems["model-blind"] = benchmark_harmonizer_blind
        systems["model-sampled"] = benchmark_harmonizer_sampled
    for spec in a.system:
        name, fn = parse_system(spec)
        systems[name] = fn

    results = {name: {} for name in systems}
    for name, fn in systems.items():
        for s, songs in test.items():
            results[name][s] = score_system(fn, songs)

    header = f"{'source / system':26s} " + " ".join(f"{m:>13s}" for m in COLUMNS)
    print("\nmeans over held-out songs; (issue 3 reference figures)")
    print(header)
    for s in list(test) + ["overall"]:
        for name in systems:
            if s == "overall":
                scores = np.concatenate([results[name][x][0] for x in test]) if test else np.zeros((0, 9))
                spent = sum(results[name][x][1] for x in test)
                n = sum(len(v) for v in test.values())
            else:
                scores, spent = results[name][s]
                n = len(test[s])
            ref = REFERENCE.get(name, {}).get(s)
            print(fmt_row(f"{s} / {name} [{n}]", scores, ref) + f"  {spent / max(n, 1) * 1000:6.1f} ms/song")
        print()
    if "model" in results:
        print(target_lines(results, test))
        bars = sum(ls.n_bars for v in test.values() for ls in v)
        print("generation time per 32 bars of chords (model loaded, 1 thread, whole songs): "
              + ", ".join(f"{n} {sum(results[n][s][1] for s in test) / bars * 32:.3f} s"
                          for n in results if n.startswith("model")))
    return 0


def target_lines(results: dict, test: dict) -> str:
    """Issue 3's targets against the measured means (three decimals, so a margin is not rounded)."""
    def mean(name, src, metric="majmin"):
        if src == "overall":
            x = np.concatenate([results[name][s][0] for s in test])
        else:
            x = results[name][src][0]
        return float(np.nanmean(x[:, METRIC_NAMES.index(metric)])) if len(x) else float("nan")

    margins = ", ".join(f"{s} {mean('model-blind', s) - mean('hmm', s):+.3f}" for s in test)
    told = ", ".join(f"{s} {mean('model', s) - mean('hmm', s):+.3f}" for s in test)
    lines = [f"targets: majmin over the HMM, like for like (model-blind: no key, no style, as the HMM; "
             f">= +0.100 on every source): {margins}",
             f"         (model told the annotated key and style: {told})",
             f"targets: majmin overall (aim 0.55): model {mean('model', 'overall'):.3f}, "
             f"hmm {mean('hmm', 'overall'):.3f}"]
    for metric in ("pcs", "ctnctr"):
        lines.append(f"targets: {metric} >= the human chords' {mean('human', 'overall', metric):.3f}: "
                     + ", ".join(f"{n} {mean(n, 'overall', metric):.3f}" for n in results if n.startswith("model")))
    lines.append("targets: distinct chords per song >= 9: "
                 + ", ".join(f"{n} {mean(n, 'overall', 'distinct'):.2f}" for n in results if n.startswith("model")))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
