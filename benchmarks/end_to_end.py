"""Benchmark: ``hum2band arrange`` end to end, cold start included, with the output checks.

Inputs: the four shipped examples, plus a 30-second and a 3-minute take sung by
:mod:`hum2band.train.synth` from the shipped public-domain tunes repeated verse after verse (made here in
a temporary folder with ``examples/make_examples.py``'s code, encoded as m4a like a phone memo).

Each input is arranged by a fresh ``python -m hum2band arrange`` process (so imports, model loading
and FluidSynth start-up count), and we print per input:

* wall time of each stage (from ``arrangement.json``) and of the whole process;
* the real-time factor: process wall time / take duration (target <= 0.15 for all outputs);
* the process's peak memory (max RSS, target <= 2 GB);
* checks: the stems sum to the mix (residual below -40 dB), the vocal stem equals the input take
  (one gain, residual below -40 dB), and every downbeat of the MIDI tempo map lies within 30 ms of
  a detected downbeat;
* the balance: each stem's integrated loudness against the voice's (LU) and the band's (all
  stems but the voice, summed) against the voice.

``--balance pop,rock,...`` instead arranges the shipped takes in each listed style (the takes in a
meter the style plays) and prints, per style, each stem's loudness against the voice (median over
the takes) and the band's against the voice (lowest and highest over the takes). Targets (issue
13): every written part within 10 LU of the band's loudest (drums within 6 LU in pop, rock, funk
and reggae), the band 3-9 LU under the voice on every take.

Run: ``.venv/bin/python benchmarks/end_to_end.py [--style pop] [--skip-long] [--balance STYLES]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

STYLE_FOR_METER = {(4, 4): "pop", (3, 4): "waltz", (6, 8): "folk"}


def long_take(seconds: float, tune_name: str, out: Path) -> Path:
    """A take of exactly ``seconds`` s: the tune sung verse after verse, cut, encoded as m4a."""
    import make_examples as mx

    tune = next(t for t in mx.TUNES if t.name == tune_name)
    notes, _, _ = mx.score(tune)
    verse_s = max(n.offset_s for n in notes)
    k = int(np.ceil(seconds / verse_s)) + 1
    long = replace(tune, name=f"{tune_name}_{int(seconds)}s", melody=list(tune.melody) * k, audio_format="m4a")
    take = mx.build_take(long)
    n = int(seconds * take.sample_rate_hz)
    path = out / f"{long.name}.m4a"
    mx.encode(path, take.samples[:n], take.sample_rate_hz, "m4a")
    return path


def db(x: float) -> float:
    return 20.0 * np.log10(max(x, 1e-12))


def check_outputs(src: Path, d: Path) -> dict:
    import soundfile as sf

    from hum2band.files.audio import decode
    from hum2band.music.tempo_map import midi_downbeats_s

    data = json.loads((d / "arrangement.json").read_text())
    mix, sr = sf.read(str(d / "mix.wav"), dtype="float64", always_2d=True)
    total = np.zeros_like(mix)
    for p in (d / "stems").glob("*.wav"):
        x, _ = sf.read(str(p), dtype="float64", always_2d=True)
        total += x
    sum_db = db(np.sqrt(np.mean((total - mix) ** 2)) / np.sqrt(np.mean(mix ** 2)))
    take = decode(src, sample_rate_hz=sr, max_duration_s=None, channels=2).samples.astype(np.float64)
    vocal, _ = sf.read(str(d / "stems" / "vocal.wav"), dtype="float64", always_2d=True)
    lead = int(data["offset_samples"])
    seg = vocal[lead:lead + take.shape[0]]
    g = float(np.sum(seg * take) / np.sum(take * take))
    vocal_db = db(np.sqrt(np.mean((seg - g * take) ** 2)) / np.sqrt(np.mean((g * take) ** 2)))
    downs = np.asarray(data["downbeats"], dtype=float)
    midi_downs = np.asarray(midi_downbeats_s(d / "arrangement.mid"))
    inside = midi_downs[(midi_downs >= downs[0] - 1e-3) & (midi_downs <= downs[-1] + 1e-3)]
    worst_ms = 1000 * max((np.min(np.abs(downs - t)) for t in inside), default=0.0)
    return {"sum_db": sum_db, "vocal_db": vocal_db, "downbeat_ms": worst_ms,
            "timings": data["timings_s"], "bars": data["grid"]["n_bars"], "parts": len(data["parts"])}


def stem_balance(d: Path) -> dict:
    """Each stem's and the band's integrated loudness against the vocal stem's (LU)."""
    import soundfile as sf

    from hum2band.perform.loudness import integrated_loudness

    stems = {p.stem: sf.read(str(p), dtype="float64", always_2d=True) for p in (d / "stems").glob("*.wav")}
    voice = integrated_loudness(stems["vocal"][0], stems["vocal"][1])
    out = {name: integrated_loudness(x, sr) - voice for name, (x, sr) in stems.items() if name != "vocal"}
    band = sum(x for name, (x, _) in stems.items() if name != "vocal")
    out["band"] = integrated_loudness(band, stems["vocal"][1]) - voice
    return out


BALANCE_PARTS = ("drums", "bass", "keys", "guitar", "pads")


def balance_table(styles: list, inputs: list, tmp: Path) -> int:
    """Arrange every take in a meter each style plays; print the stems against the voice."""
    from hum2band.music.styles import get_style

    print(f"{'style':<12} " + " ".join(f"{p:>7}" for p in BALANCE_PARTS)
          + f" {'spread':>7} {'band min':>9} {'band max':>9} takes")
    failed = 0
    for name in styles:
        st = get_style(name)
        rows = []
        for src, meter in inputs:
            if meter not in st.meters:
                continue
            out = tmp / f"{src.stem}-{name.replace(' ', '_')}"
            cmd = [sys.executable, "-m", "hum2band", "arrange", str(src), "--out", str(out), "--style", name,
                   "--quiet", "--force", "--meter", f"{meter[0]}/{meter[1]}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:<12} {src.name} FAILED: {proc.stderr.strip()}")
                failed += 1
                continue
            rows.append(stem_balance(out))
        if not rows:
            continue
        med = {p: float(np.median([r[p] for r in rows if p in r])) if any(p in r for r in rows) else None
               for p in BALANCE_PARTS}
        levels = [v for v in med.values() if v is not None]
        band = [r["band"] for r in rows]
        print(f"{name:<12} " + " ".join(f"{v:>7.1f}" if v is not None else f"{'-':>7}" for v in med.values())
              + f" {max(levels) - min(levels):>7.1f} {min(band):>9.1f} {max(band):>9.1f} {len(rows)}")
    print("LU against the voice (median over the takes); spread: loudest part - quietest part; "
          "targets: spread <= 10 LU (drums within 6 LU of the loudest in pop, rock, funk, reggae), "
          "band between -9 and -3 LU on every take")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--style", default=None, help="one style for all (default: pop / waltz / folk by meter)")
    ap.add_argument("--skip-long", action="store_true", help="leave out the 3-minute take")
    ap.add_argument("--balance", default="", help="comma-separated styles: print the stems' balance only")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="h2b-e2e-"))
    inputs = [(ROOT / "examples" / f, m) for f, m in (("twinkle.wav", (4, 4)), ("ode_to_joy.m4a", (4, 4)),
                                                     ("amazing_grace.opus", (3, 4)),
                                                     ("row_your_boat.mp3", (6, 8)))]
    if a.balance:
        return balance_table([x.strip() for x in a.balance.split(",") if x.strip()], inputs, tmp)
    t = time.time()
    inputs.append((long_take(30.0, "ode_to_joy", tmp), (4, 4)))
    if not a.skip_long:
        inputs.append((long_take(180.0, "twinkle", tmp), (4, 4)))
    print(f"made the long takes in {time.time() - t:.1f} s")
    stages = ("transcribe", "chords", "parts", "arrange", "render", "export")
    head = f"{'input':<22} {'dur s':>6} " + " ".join(f"{s[:9]:>9}" for s in stages)
    head += f" {'total s':>8} {'RTF':>6} {'peak MB*':>8} {'sum dB':>7} {'vocal dB':>8} {'downbeat':>9}"
    print(head)
    rows = []
    from hum2band.files.audio import probe_duration_s

    for src, meter in inputs:
        style = a.style or STYLE_FOR_METER[meter]
        out = tmp / (src.stem + "-out")
        cmd = [sys.executable, "-m", "hum2band", "arrange", str(src), "--out", str(out), "--style", style,
               "--quiet", "--force"]
        if style == "folk":
            cmd += ["--meter", "6/8"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        if proc.returncode != 0:
            print(f"{src.name:<22} FAILED: {proc.stderr.strip()}")
            rows.append(None)
            continue
        dur = probe_duration_s(src)
        c = check_outputs(src, out)
        tim = c["timings"]
        rtf = wall / dur
        rows.append((dur, wall, rtf, peak_mb, c))
        print(f"{src.name:<22} {dur:>6.1f} " + " ".join(f"{tim.get(s, 0.0):>9.2f}" for s in stages)
              + f" {wall:>8.2f} {rtf:>6.3f} {peak_mb:>8.0f} {c['sum_db']:>7.1f} {c['vocal_db']:>8.1f} "
              f"{c['downbeat_ms']:>7.1f}ms")
        bal = stem_balance(out)
        print(f"{'':<22} balance (LU against the voice): "
              + ", ".join(f"{k} {v:+.1f}" for k, v in bal.items()))
        del before
    ok = [r for r in rows if r]
    if ok:
        tot_dur = sum(r[0] for r in ok)
        tot_wall = sum(r[1] for r in ok)
        print(f"{'all':<22} {tot_dur:>6.1f} {'':>59} {tot_wall:>8.2f} {tot_wall / tot_dur:>6.3f} "
              f"{max(r[3] for r in ok):>8.0f} {max(r[4]['sum_db'] for r in ok):>7.1f} "
              f"{max(r[4]['vocal_db'] for r in ok):>8.1f} {max(r[4]['downbeat_ms'] for r in ok):>7.1f}ms")
    print("targets: RTF <= 0.15 (cold start, all outputs), peak memory <= 2048 MB, stems sum to the mix "
          "below -40 dB, vocal stem = input, MIDI downbeats within 30 ms")
    print("* peak MB: the largest max-RSS of any arrange process so far (children of this script)")
    print(f"machine: {os.cpu_count()} cores; failed runs: {sum(r is None for r in rows)}")
    return 0 if all(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
