"""``python -m hum2band.app.describe DIR``: say what an ``arrange`` output folder holds, in a few lines.

Used by ``make demo``; handy after any ``hum2band arrange``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def describe(folder: str | Path) -> str:
    d = Path(folder)
    data = json.loads((d / "arrangement.json").read_text())
    key, meter = data["key"], data["meter"]
    lines = [
        f"{data['input']}: {key['tonic']} {key['mode']}, {data['tempo_bpm']:.0f} bpm {meter[0]}/{meter[1]}, "
        f"tuning {data['tuning_cents']:+.0f} cents, style {data['style']}, seed {data['seed']}",
        "chords: " + " | ".join(c["label"] for c in data["chords"]),
        "parts:  " + ", ".join(f"{p['name']} ({len(p['notes'])} notes)" for p in data["parts"]),
        f"mix:    {data['mix']['loudness_lufs']:.1f} LUFS, peak {data['mix']['true_peak_dbfs']:.1f} dBFS, "
        f"{data['duration_s']:.1f} s",
        f"files in {d}/: " + ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in d.iterdir()
                                             if not p.name.startswith("."))),
        "stems:  " + ", ".join(sorted(p.name for p in (d / "stems").glob("*.wav"))),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hum2band.app.describe OUTPUT_FOLDER", file=sys.stderr)
        return 2
    try:
        print(describe(args[0]))
    except (OSError, KeyError, ValueError) as error:
        print(f"hum2band: error: {args[0]} is not an arrange output folder ({error})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
