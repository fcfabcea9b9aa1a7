"""What the subcommands of the command line share: option parsing, output names, progress."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence, TextIO

from ..errors import OptionError
from ..music.meter import SUPPORTED_METERS, OtherTempo, move_words

#: Exit statuses of every command: done, an unexpected error, the user's input or options.
EXIT_OK, EXIT_INTERNAL, EXIT_USER = 0, 1, 2

#: Tempo range accepted by ``--tempo``, in beats per minute.
TEMPO_RANGE_BPM = (30.0, 300.0)

METER_TEXT = ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)


def parse_meter(text: str) -> tuple[int, int]:
    """``"6/8"`` -> ``(6, 8)``; raises :class:`OptionError` for meters the rhythm stage lacks."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    meter = (int(m.group(1)), int(m.group(2))) if m else None
    if meter not in SUPPORTED_METERS:
        raise OptionError(f"meter '{text}' is not one I can follow: use one of {METER_TEXT}")
    return meter


def readings_hint(other_readings: Sequence[dict], meter: Sequence[int]) -> str:
    """One line telling a musician how to move bar 1 to the grid's other readings, or ``""``:
    ``"to move bar 1, keep --meter 4/4 and give: half a beat later --downbeat 1.70; a beat
    earlier --downbeat 0.57; ..."`` (the off-beat reading first, then the other bar lines,
    likeliest first). ``other_readings``: :meth:`hum2band.music.meter.OtherReading.to_json`
    dicts; ``meter``: the meter the take was read in (a bar line moved keeps it)."""
    moves = [f"{move_words(r['beats_later'], meter)} --downbeat {float(r['downbeat_s']):.2f}"
             for r in other_readings if r.get("beats_later")]
    if not moves:
        return ""
    return f"to move bar 1, keep --meter {meter[0]}/{meter[1]} and give: " + "; ".join(moves)


def tempi_hint(other_tempi: Sequence[dict], meter: Sequence[int], tempo_bpm: float,
               plays: Sequence[Sequence[int]] | None = None) -> str:
    """One line telling a musician how to count the take another way, or ``""``: ``"to count it
    another way, give: at half the tempo, 62 bpm --meter 4/4 --tempo 62; in 3/4 at 125 bpm
    --meter 3/4 --tempo 125"`` (likeliest first). ``other_tempi``:
    :meth:`hum2band.music.meter.OtherTempo.to_json` dicts; ``meter``, ``tempo_bpm``: the take
    as read; ``plays``: the meters the style plays (the others are left out), all if None."""
    offered = [OtherTempo.from_json(r) for r in other_tempi]
    if plays is not None:
        playable = {tuple(m) for m in plays}
        offered = [o for o in offered if tuple(o.meter) in playable]
    moves = [f"{o.words(meter, tempo_bpm)} {o.flags()}" for o in offered]
    if not moves:
        return ""
    return "to count it another way, give: " + "; ".join(moves)


def unique_names(inputs: Sequence[Path]) -> list[str]:
    """Output names for ``inputs``: the file stem, with ``-2``, ``-3``, ... on clashes.

    Clashes are found case-insensitively, so outputs stay distinct on macOS/Windows disks too.
    """
    taken: set[str] = set()
    names = []
    for p in inputs:
        base = p.stem or p.name or "take"
        name, i = base, 1
        while name.casefold() in taken:
            i += 1
            name = f"{base}-{i}"
        taken.add(name.casefold())
        names.append(name)
    return names


# ---- progress --------------------------------------------------------------------------------
class Progress:
    """Stage-by-stage progress for one input on stderr.

    On a terminal the line grows as stages finish (``ode.m4a: decoding… pitch… ``) and is erased
    if the take fails, so an error is still a single line. Elsewhere (a pipe, a log file) only
    the finished line is written.
    """

    def __init__(self, label: str, stream: TextIO, enabled: bool):
        self.label = label
        self.stream = stream
        self.enabled = enabled
        self.live = enabled and _isatty(stream)
        self.stages: list[str] = []

    def __call__(self, stage_name: str) -> None:
        self.stages.append(str(stage_name))
        if self.live:
            if len(self.stages) == 1:
                self.stream.write(f"{self.label}: ")
            self.stream.write(f"{stage_name}… ")
            self.stream.flush()

    def done(self, summary: str, elapsed_s: float) -> None:
        self.finish(f"done ({summary}) in {elapsed_s:.1f} s\n")

    def finish(self, tail: str) -> None:
        """End the line with ``tail`` (on a terminal), or write the whole finished line."""
        if not self.enabled:
            return
        if self.live:
            self.stream.write(tail if self.stages else f"{self.label}: {tail}")
        else:
            self.stream.write(f"{self.label}: " + "".join(f"{s}… " for s in self.stages) + tail)
        self.stream.flush()

    def abandon(self) -> None:
        if self.live and self.stages:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def debug_enabled() -> bool:
    return os.environ.get("HUM2BAND_DEBUG", "") not in ("", "0")
