"""A key: tonic and mode, and the spellings of pitch classes a musician reads."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


#: Spellings accepted for a tonic, mapped to pitch class (0 = C).
TONIC_PITCH_CLASS = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "E#": 5,
    "F": 5, "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11,
    "CB": 11,
}


@dataclass
class Key:
    """A key: ``tonic`` like ``"A"`` or ``"Eb"``, ``mode`` ``"major"`` or ``"minor"``."""

    tonic: str
    mode: str
    confidence: float = 1.0

    @property
    def tonic_pitch_class(self) -> int:
        return TONIC_PITCH_CLASS[self.tonic.upper()]

    @classmethod
    def parse(cls, text: str) -> "Key":
        """Parse ``"A minor"``, ``"Am"``, ``"F#"``, ``"Bb major"``, ``"c:min"``."""
        t = text.strip().replace(":", " ")
        parts = t.split()
        if not parts:
            raise OptionError(f"key '{text}' is empty: write it like 'A minor', 'Am' or 'Eb'")
        tonic, mode = parts[0], (parts[1].lower() if len(parts) > 1 else "")
        if len(parts) == 1 and len(tonic) > 1 and tonic[-1] == "m" and tonic[:-1].upper() in TONIC_PITCH_CLASS:
            tonic, mode = tonic[:-1], "minor"
        mode = {"": "major", "maj": "major", "major": "major", "min": "minor", "minor": "minor",
                "m": "minor"}.get(mode)
        norm = tonic[:1].upper() + tonic[1:].lower()
        if mode is None or norm.upper() not in TONIC_PITCH_CLASS:
            raise OptionError(f"key '{text}' is not a key I know: write it like 'A minor', 'Am' or 'Eb'")
        return cls(norm, mode, 1.0)

    def to_json(self) -> dict:
        return {"tonic": self.tonic, "mode": self.mode, "confidence": round(float(self.confidence), 3)}


def key_of_pitch_class(pc: int, mode: str) -> Key:
    """The key on pitch class ``pc`` (0 = C) in ``mode`` ("major" or "minor"), confidence 1."""
    return Key(PITCH_CLASS_NAMES[pc % 12], mode, 1.0)
