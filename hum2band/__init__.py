"""hum2band: sing or hum a melody, get a backing band that follows you.

>>> import hum2band
>>> song = hum2band.arrange("memo.m4a", style="bossa nova", seed=1)   # doctest: +SKIP
>>> [c.chord.label for c in song.chords][:4]                            # doctest: +SKIP
>>> song.write("memo-band/")     # mix.wav, stems/, arrangement.mid, ...  # doctest: +SKIP
>>> melody = hum2band.transcribe("memo.m4a")        # doctest: +SKIP
>>> melody.notes[0].midi, melody.rhythm.tempo_bpm    # doctest: +SKIP

Importing the package is light (no torch, no audio libraries): the names below are loaded on
first use.

* :func:`arrange` -- a take or a MIDI/MusicXML melody to an arranged song
  (:class:`hum2band.pipeline.ArrangedSong`: ``.write(dir)``, ``.render()``, ``.chords``,
  ``.parts``) with the options of :class:`ArrangeOptions` (from :mod:`hum2band.pipeline`).
* :func:`transcribe` -- a take (any audio file) to a :class:`Melody`
  (from :mod:`hum2band.listen.transcription`).
* :class:`Melody`, :class:`Note`, :class:`Rhythm`, :class:`Key` -- the shared object model
  (:mod:`hum2band.music.melody`); :class:`TempoMap` (:mod:`hum2band.music.tempo_map`).
* :class:`Hum2BandError` and its subclasses -- errors whose message is one line for the user
  (:mod:`hum2band.errors`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Public name -> (module, attribute), imported on first access.
_EXPORTS = {
    "transcribe": ("hum2band.listen.transcription", "transcribe"),
    "arrange": ("hum2band.pipeline", "arrange"),
    "ArrangeOptions": ("hum2band.pipeline", "ArrangeOptions"),
    "Arrangement": ("hum2band.music.arrangement", "Arrangement"),
    "Melody": ("hum2band.music.melody", "Melody"),
    "Note": ("hum2band.music.melody", "Note"),
    "Rhythm": ("hum2band.music.meter", "Rhythm"),
    "Key": ("hum2band.music.key", "Key"),
    "TempoMap": ("hum2band.music.tempo_map", "TempoMap"),
    "Hum2BandError": ("hum2band.errors", "Hum2BandError"),
    "InputError": ("hum2band.errors", "InputError"),
    "NoSingingError": ("hum2band.errors", "NoSingingError"),
    "TakeLengthError": ("hum2band.errors", "TakeLengthError"),
    "OptionError": ("hum2band.errors", "OptionError"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    try:
        module_name, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'hum2band' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
