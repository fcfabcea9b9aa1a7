"""The twelve styles hum2band plays: what each sounds like, its parts and the meters it can play.

A :class:`Style` is what ``hum2band styles`` lists and what ``--style`` picks. The meters a style
plays are the meters the accompaniment model was trained on for it (the grooves of
:data:`hum2band.music.styles.STYLE_GROOVES`); asking for another meter is a clear error, never a guess.
The parts are the instruments the style's grooves use; their General MIDI programs per style are
in ``soundfonts/catalogue.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import OptionError

#: The twelve styles, in the one order everything keys on: the accompaniment model's style
#: embedding (index = position here), the harmony model's style vocabulary (after "" = unknown),
#: ``soundfonts/catalogue.json`` and ``hum2band styles``. Trained weights depend on this order:
#: append a new style at the end, never reorder (tests check the models against it).
STYLE_NAMES = ("pop", "rock", "ballad", "folk", "country", "swing", "jazz-ballad", "bossa nova",
               "latin", "funk", "reggae", "waltz")

#: Other spellings a user may type for a style (after lower-casing and folding "_" to " ").
STYLE_ALIASES = {"bossa": "bossa nova", "bossanova": "bossa nova", "bossa-nova": "bossa nova",
                 "jazz ballad": "jazz-ballad"}

#: Style -> meter -> the Debian mma stdlib grooves whose renderings of real charts the accompaniment
#: model learned the style from (every name checked against ``DefGroove`` in /usr/share/mma/lib/stdlib,
#: see tests). A style missing a meter cannot play it.
STYLE_GROOVES: dict[str, dict[tuple[int, int], list[str]]] = {
    "pop": {(4, 4): ["8Beat", "8Beat1", "SoftRock", "SoftRock1"], (3, 4): ["RockWaltz1"]},
    "rock": {(4, 4): ["60sRock", "60sRock1", "50sRock", "BasicRock"], (3, 4): ["RockWaltz"]},
    "ballad": {(4, 4): ["Ballad", "Ballad1", "PopBallad", "RockBallad"],
               (3, 4): ["Waltz1Sus", "CountryWaltz1"], (6, 8): ["Ballad68"]},
    "folk": {(4, 4): ["Folk", "FolkWalk", "FolkBallad"], (3, 4): ["CountryWaltz", "Waltz"],
             (6, 8): ["68March", "68Swing"]},
    "country": {(4, 4): ["CountrySwing", "SlowCountry", "CountryBlues"],
                (3, 4): ["CountryWaltz", "CountryWaltz1"]},
    "swing": {(4, 4): ["Swing", "Swing1", "SwingWalk"], (3, 4): ["JazzWaltz", "JazzWaltz1"]},
    "jazz-ballad": {(4, 4): ["SlowJazz", "SlowJazz1", "SlowJazzWalk"],
                    (3, 4): ["ModernJazzWaltz", "JazzWaltz"]},
    "bossa nova": {(4, 4): ["BossaNova", "BossaNova1Sus"], (3, 4): ["LatinWaltz"]},
    "latin": {(4, 4): ["Rhumba", "Salsa", "ChaCha", "Samba"], (3, 4): ["LatinWaltz"]},
    "funk": {(4, 4): ["BVFunk", "DSoul", "R&B"]},
    "reggae": {(4, 4): ["Ska", "Ska1", "Calypso"]},
    "waltz": {(3, 4): ["Waltz", "Waltz1", "WaltzWalk", "VieneseWaltz"]},
}


def check_style_order(saved, what: str) -> None:
    """Raise ValueError when weights trained on another style order than :data:`STYLE_NAMES`.

    ``saved`` is the order a checkpoint recorded (None for weights saved before it was recorded,
    which were all trained on today's order).
    """
    if saved is not None and tuple(saved) != STYLE_NAMES:
        raise ValueError(f"{what} was trained on the styles {', '.join(saved)}, not on "
                         f"{', '.join(STYLE_NAMES)}: retrain it with 'hum2band train'")


def canonical_style(style: str) -> str:
    """``"Bossa-Nova"`` -> ``"bossa nova"``.

    Raises
    ------
    OptionError
        Unknown style (the message lists the known ones).
    """
    s = " ".join(style.strip().lower().replace("_", " ").split())
    s = STYLE_ALIASES.get(s, s)
    if s not in STYLE_NAMES:
        s2 = s.replace(" ", "-")
        if s2 in STYLE_NAMES:
            return s2
        raise OptionError(f"style '{style}' is not one I know: choose one of " + ", ".join(STYLE_NAMES))
    return s


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
