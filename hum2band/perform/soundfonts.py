"""The soundfont catalogue: which SF2/SF3 file renders the band and which GM program each part
plays in each style (``soundfonts/catalogue.json`` at the top of the project; see its README).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import OptionError
from ..files.paths import PROJECT_ROOT
from ..music.styles import canonical_style

#: The catalogue shipped with the project.
CATALOGUE_PATH = PROJECT_ROOT / "soundfonts" / "catalogue.json"

#: Environment variable naming a soundfont to use when ``--soundfont`` is not given.
SOUNDFONT_ENV = "HUM2BAND_SOUNDFONT"


@dataclass(frozen=True)
class PartDefaults:
    """How a part sounds unless the arrangement says otherwise.

    Attributes
    ----------
    program : int
        General MIDI program 0-127 (for drums: the GM kit, bank 128).
    is_drum : bool
    pan : float
        -1 (left) ... 1 (right).
    gain_db : float
        Level relative to the other parts.
    """

    program: int
    is_drum: bool
    pan: float
    gain_db: float


@lru_cache(maxsize=4)
def load_catalogue(path: str | None = None) -> dict:
    """The catalogue as a dict (cached).

    Raises
    ------
    OptionError
        The catalogue is missing or not valid JSON (a broken install).
    """
    p = Path(path) if path else CATALOGUE_PATH
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as error:
        raise OptionError(f"cannot read the soundfont catalogue {p} ({error}); "
                          "reinstall hum2band from its source folder") from error


def styles(catalogue: dict | None = None) -> list[str]:
    """Style names the catalogue knows."""
    return list((catalogue or load_catalogue())["styles"])


def canonical_part(name: str, catalogue: dict | None = None) -> str:
    """``"Piano"`` -> ``"keys"``; unknown names come back lower-cased."""
    cat = catalogue or load_catalogue()
    n = " ".join(name.strip().lower().replace("_", " ").split())
    return cat.get("aliases", {}).get(n, n)


def part_defaults(part_name: str, style: str | None = None,
                  catalogue: dict | None = None) -> PartDefaults:
    """Program, drum flag, pan and gain of a part, with the style's program if it names one.

    Raises
    ------
    OptionError
        The part is not in the catalogue, or the style is unknown.
    """
    cat = catalogue or load_catalogue()
    name = canonical_part(part_name, cat)
    base = cat["parts"].get(name)
    if base is None:
        raise OptionError(f"part '{part_name}' has no sound in the soundfont catalogue: use one of "
                          + ", ".join(cat["parts"]))
    program = int(base["program"])
    if style:
        program = int(cat["styles"][canonical_style(style)].get(name, program))
    return PartDefaults(program, bool(base.get("is_drum", False)), float(base.get("pan", 0.0)),
                        float(base.get("gain_db", 0.0)))


def balance_lu(part_name: str, style: str | None = None, catalogue: dict | None = None) -> float:
    """Where a part's rendered stem sits against the band's reference level, in LU (0 = the
    reference, negative = under it): the catalogue's ``balance_lu`` for the style, else its
    default, else 0 for a part it does not name."""
    cat = catalogue or load_catalogue()
    table = cat.get("balance_lu", {})
    name = canonical_part(part_name, cat)
    value = table.get("default", {}).get(name, 0.0)
    if style:
        try:
            value = table.get(canonical_style(style), {}).get(name, value)
        except OptionError:
            pass
    return float(value)


def program_for(part_name: str, style: str | None = None) -> int:
    """General MIDI program of a part in a style (see :func:`part_defaults`)."""
    return part_defaults(part_name, style).program


def candidate_soundfonts(catalogue: dict | None = None) -> list[Path]:
    """Where the catalogue looks for a soundfont, best first."""
    cat = catalogue or load_catalogue()
    out: list[Path] = []
    for entry in cat["soundfonts"]:
        for p in entry.get("paths", []):
            out.append(Path(p))
        pkg = entry.get("python_package")
        if pkg:
            try:
                mod = __import__(pkg)
            except ImportError:
                continue
            out.append(Path(mod.__file__).resolve().parent / entry["file"])
    return out


def find_soundfont(path: str | os.PathLike | None = None) -> Path:
    """The soundfont to render with.

    Parameters
    ----------
    path : str or PathLike, optional
        ``--soundfont PATH``: any SF2 or SF3 file. Without it, ``$HUM2BAND_SOUNDFONT``, then the
        catalogue's files in order (FluidR3_GM, then pretty_midi's TimGM6mb).

    Raises
    ------
    OptionError
        The given file does not exist or is not a soundfont, or no catalogue soundfont is installed.
    """
    given = path if path is not None else os.environ.get(SOUNDFONT_ENV) or None
    if given is not None:
        p = Path(given).expanduser()
        if not p.is_file():
            raise OptionError(f"soundfont {given} does not exist: give the path of an .sf2 or .sf3 file")
        if not _looks_like_soundfont(p):
            raise OptionError(f"{given} is not a SoundFont (.sf2/.sf3): give the path of an .sf2 or .sf3 file")
        return p
    for p in candidate_soundfonts():
        if p.is_file():
            return p
    raise OptionError("no soundfont found: install one with 'sudo apt-get install fluid-soundfont-gm' "
                      "(or 'make setup'), or give any .sf2/.sf3 file with --soundfont PATH")


def _looks_like_soundfont(path: Path) -> bool:
    """RIFF container of form ``sfbk`` (SF2 and SF3 both)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"sfbk"
