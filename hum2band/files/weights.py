"""Shipped model weights: found (argument, environment variable, ``models/``), loaded once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import InputError

#: Resolved path -> what its loader returned.
_LOADED: dict[str, object] = {}


def load_once(path: str | os.PathLike | None, env_var: str, default_path: Path,
              loader: Callable[[Path], object], what: str, train_command: str):
    """Load the weights at ``path`` (else ``$env_var``, else ``default_path``) with ``loader``,
    once per file; a missing file is a one-line :class:`InputError` that says how to get it."""
    p = Path(path or os.environ.get(env_var) or default_path)
    key = str(p.resolve())
    if key not in _LOADED:
        if not p.is_file():
            raise InputError(f"the {what} {p} is missing: train it with '{train_command}' "
                             "or reinstall hum2band")
        _LOADED[key] = loader(p)
    return _LOADED[key]
