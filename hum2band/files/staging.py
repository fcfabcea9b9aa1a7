"""Output folders that appear complete or not at all.

Every command that writes a folder (``arrange``, ``render``, the stems) writes into a hidden
temporary folder beside the destination and renames it into place only when everything in it is
written; on any error the temporary folder is deleted and the destination is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import OptionError


@contextmanager
def staged_folder(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``target`` when the ``with`` block succeeds.

    Parameters
    ----------
    target : path-like
        The folder to create.
    replace : bool
        Replace an existing ``target`` (``--force``); without it an existing one is an error,
        raised before anything is written. The old folder is moved aside and deleted only after
        the new one is in place.

    Raises
    ------
    OptionError
        ``target`` exists and ``replace`` is False, or its parent folder cannot be written.
    """
    target = Path(target)
    if target.exists() and not replace:
        raise OptionError(f"{target} already exists: choose another output folder or use --force")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as error:
        raise OptionError(f"cannot write into {parent} ({error.strerror}); choose another output folder") from error
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
