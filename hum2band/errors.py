"""Errors a musician can act on.

Every failure the user can cause (a missing file, a silent take, a bad option) is raised as a
:class:`Hum2BandError` whose message is one line that says what went wrong and what to do.
The command line prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class Hum2BandError(Exception):
    """Base class: ``str(error)`` is a one-line message meant for the user."""

    exit_code = 2


class InputError(Hum2BandError):
    """The input file is missing, empty, not audio, or corrupt."""


class NoSingingError(Hum2BandError):
    """The take holds no singing we can follow (silence, noise only)."""


class TakeLengthError(Hum2BandError):
    """The take is too short or too long to transcribe."""


class OptionError(Hum2BandError):
    """A command-line or API option has a value we cannot use."""
