"""Bar-line fixes a musician gives (a time at which a bar starts, beats before bar 1): checked
before any estimate, so a fix that cannot be right is a one-line error."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import OptionError
from ..music.meter import beats_per_bar


def check_bar_fix(downbeat_s: float | None, pickup_beats: float | None,
                  duration_s: float | None = None, meter: Sequence[int] | None = None) -> None:
    """Refuse a bar-line fix that cannot be right, with a one-line :class:`OptionError`.

    Parameters
    ----------
    downbeat_s : float or None
        A time at which a bar starts, s; must lie in the take (0 to ``duration_s`` when known).
    pickup_beats : float or None
        Beats before the first bar line; 0 up to less than a bar (of ``meter``, else of 4 beats).
    """
    if downbeat_s is not None:
        t = float(downbeat_s)
        end = np.inf if duration_s is None else float(duration_s)
        if not (np.isfinite(t) and 0.0 <= t <= end):
            where = "" if duration_s is None else f" (0 to {duration_s:.1f} s)"
            raise OptionError(f"downbeat {downbeat_s} s is outside the take{where}: give the time "
                              "in seconds from the start of the take at which a bar starts")
    if pickup_beats is not None:
        p = float(pickup_beats)
        bpb = beats_per_bar(meter) if meter is not None else 4
        if not (np.isfinite(p) and 0.0 <= p < bpb):
            raise OptionError(f"a pickup of {pickup_beats} beats is not possible: give the beats "
                              f"sung before the first bar line, 0 up to less than a bar ({bpb} "
                              "beats), e.g. 1 or 0.5")
