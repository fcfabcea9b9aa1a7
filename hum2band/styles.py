"""The twelve styles hum2band plays: what each sounds like, its parts and the meters it can play.

A :class:`Style` is what ``hum2band styles`` lists and what ``--style`` picks. The meters a style
plays are the meters the accompaniment model was trained on for it (the grooves of
:data:`hum2band.corpus.STYLE_GROOVES`); asking for another meter is a clear error, never a guess.
The parts are the instruments the style's grooves use; their General MIDI programs per style are
in ``soundfonts/catalogue.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import OptionError


@dataclass(frozen=True)
class Style:
    """One style of backing band.

    Attributes
    ----------
    name : str
        Canonical name (``"bossa nova"``).
    description : str
        One line for ``hum2band styles``.
    parts : tuple of str
        The parts the band plays, in mix order.
    chords_per_bar : float
        Harmonic rhythm the style asks of the harmonizer: 1 (a chord a bar) or 2.
    feel : str
        "straight", "swing", "shuffle" or "triplet" (6/8 and 12/8 feels).
    grooves : dict
        (numerator, denominator) -> the rule-based grooves (Debian mma) whose renderings of real
        charts the model learned this style from.
    """

    name: str
    description: str
    parts: tuple
    chords_per_bar: float
    feel: str
    grooves: dict = field(default_factory=dict)

    @property
    def meters(self) -> list[tuple[int, int]]:
        return sorted(self.grooves, key=lambda m: (m != (4, 4), m))


_DESCRIPTIONS = {
    "pop": ("straight eighths, backbeat, piano and strummed acoustic guitar, a pad underneath",
            ("drums", "bass", "keys", "guitar", "pads"), 1, "straight"),
    "rock": ("driving eighths on the hi-hat, loud backbeat, overdriven guitar chords, root-note bass",
             ("drums", "bass", "keys", "guitar"), 1, "straight"),
    "ballad": ("slow and sparse: soft kit, sustained piano and strings, long bass notes",
               ("drums", "bass", "keys", "guitar", "pads"), 1, "straight"),
    "folk": ("acoustic: boom-chick guitar and bass, light percussion, no pads",
             ("drums", "bass", "keys", "guitar"), 1, "straight"),
    "country": ("train beat or two-step, alternating bass, picked guitar, steel-like pads",
                ("drums", "bass", "keys", "guitar", "pads"), 1, "shuffle"),
    "swing": ("ride cymbal in swung eighths, walking bass, comping piano and guitar",
              ("drums", "bass", "keys", "guitar"), 2, "swing"),
    "jazz-ballad": ("brushes, two-feel bass, lush piano voicings at a slow tempo",
                    ("drums", "bass", "keys", "guitar", "pads"), 2, "swing"),
    "bossa nova": ("cross-stick clave, root-fifth bass, nylon guitar comping that anticipates",
                   ("drums", "bass", "keys", "guitar", "pads"), 2, "straight"),
    "latin": ("clave-based percussion (congas, timbales, cowbell), tumbao bass, piano montuno",
              ("drums", "bass", "keys", "guitar", "pads"), 2, "straight"),
    "funk": ("tight sixteenth hi-hats, syncopated bass, clipped guitar and keys stabs",
             ("drums", "bass", "keys", "guitar", "pads"), 1, "straight"),
    "reggae": ("offbeat skank on guitar and organ, one-drop-style kit, deep bass (from ska and "
               "calypso grooves)", ("drums", "bass", "keys", "guitar", "pads"), 1, "straight"),
    "waltz": ("oom-pah-pah in three: bass on one, chords on two and three",
              ("drums", "bass", "keys", "guitar", "pads"), 1, "straight"),
}


def _build() -> dict[str, Style]:
    from .corpus import STYLE_GROOVES

    out = {}
    for name, (desc, parts, cpb, feel) in _DESCRIPTIONS.items():
        grooves = {tuple(m): tuple(g) for m, g in STYLE_GROOVES.get(name, {}).items()}
        out[name] = Style(name, desc, parts, float(cpb), feel, grooves)
    return out


_STYLES: dict[str, Style] | None = None


def all_styles() -> list[Style]:
    """Every style, in the order ``hum2band styles`` lists them."""
    global _STYLES
    if _STYLES is None:
        _STYLES = _build()
    return list(_STYLES.values())


def style_names() -> list[str]:
    return [s.name for s in all_styles()]


def get_style(name: str) -> Style:
    """The style called ``name`` (aliases like "bossa", "Jazz Ballad" accepted).

    Raises
    ------
    OptionError
        Unknown style; the message lists the known ones.
    """
    from .soundfonts import canonical_style

    canon = canonical_style(str(name))
    for s in all_styles():
        if s.name == canon:
            return s
    raise OptionError(f"unknown style '{name}': choose one of {', '.join(style_names())}")


def check_meter(style: Style, meter) -> None:
    """Raise a clear error if ``style`` cannot play ``meter``."""
    m = (int(meter[0]), int(meter[1]))
    if m not in style.grooves:
        can = ", ".join(f"{n}/{d}" for n, d in style.meters)
        others = [s.name for s in all_styles() if m in s.grooves]
        raise OptionError(f"{style.name} cannot be played in {m[0]}/{m[1]} (it plays {can}); "
                          f"styles for {m[0]}/{m[1]}: {', '.join(others) or 'none'}")
