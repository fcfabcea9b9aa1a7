"""Transcription: a sung or hummed take in, a :class:`~hum2band.music.melody.Melody` out.

The stages, in order (each its own module):

``decode``  -> mono 16 kHz samples (any phone or browser format, via PyAV)
``dereverb`` -> the room's late reverberation taken out (WPE, :mod:`.dereverb`)
``pitch``   -> frame-wise f0 contour (:class:`~hum2band.listen.pitch.PitchTrack`)
``notes``   -> sung notes (onset, offset, fractional pitch)
``tuning``  -> the singer's reference pitch; notes snapped to semitones
``rhythm``  -> tempo, beats, downbeats and meter that follow the singer
``key``     -> tonic and mode
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

import numpy as np

from ..errors import NoSingingError, OptionError, TakeLengthError
from ..files import audio as decode_stage
from ..music.key import Key
from ..music.keyfinding import estimate_key
from ..music.melody import Melody, Note
from ..music.meter import SUPPORTED_METERS
from ..music.tuning import estimate_tuning_cents, snap_notes
from .notes import SegmenterSettings, segment_notes, settled_notes, voicing
from .dereverb import dereverberate_measured
from .pitch import TRACKER_SAMPLE_RATE_HZ, PitchTrack, resolve_backend, to_tracker_rate, track_pitch
from .bar_fix import check_bar_fix
from .rhythm import estimate_rhythm

#: Takes with less sung time than this are refused, s.
MIN_VOICED_S = 1.0
#: Default longest take, s (overridable with ``max_duration_s`` / ``--max-minutes``).
MAX_DURATION_S = 15 * 60.0

Progress = Callable[[str], None]


def transcribe(path: str | os.PathLike, pitch_backend: str = "default",
               tempo_bpm: float | None = None, meter: Sequence[int] | None = None,
               key: str | Key | None = None, max_duration_s: float | None = MAX_DURATION_S,
               progress: Progress | None = None, downbeat_s: float | None = None,
               pickup_beats: float | None = None, dereverb: bool = True) -> Melody:
    """Transcribe an audio file into a melody.

    Parameters
    ----------
    path : path-like
        Any audio file FFmpeg reads (wav, flac, mp3, m4a, ogg/opus, webm, amr, 3gp, caf, ...).
    pitch_backend : str
        ``"default"``, ``"crepe-tiny"``, ``"crepe-full"``, ``"pyin"``, ``"basic-pitch"`` or several
        joined with ``+``.
    tempo_bpm, meter, key : optional
        Overrides: the rhythm stage then follows the given tempo/meter, and the key is taken as is.
    downbeat_s : float, optional
        A time in the take (s) at which a bar starts: the bar lines go through it.
    pickup_beats : float, optional
        Counted beats sung before the first bar line (0: the first note is on it).
    max_duration_s : float or None
        Longer takes are refused (None: no limit).
    progress : callable, optional
        Called with each stage's name as it starts.
    dereverb : bool
        Take the room's late reverberation out before the pitch is read (:mod:`.dereverb`);
        False reads the take as it is.

    Returns
    -------
    Melody

    Raises
    ------
    hum2band.errors.Hum2BandError
        With a one-line message for the user (missing/corrupt file, no singing, too short/long).
    """
    _check_options(pitch_backend, tempo_bpm, meter, key, downbeat_s, pickup_beats)
    timings: dict[str, float] = {}
    say = progress or (lambda stage: None)
    t = time.perf_counter()
    say("decoding")
    audio = decode_stage.decode(path, sample_rate_hz=TRACKER_SAMPLE_RATE_HZ,
                                max_duration_s=max_duration_s)
    timings["decode"] = time.perf_counter() - t
    return _run_stages(audio.samples, audio.sample_rate_hz, pitch_backend, tempo_bpm, meter, key,
                       str(path), progress, timings, None, downbeat_s, pickup_beats, dereverb)


def transcribe_audio(samples: np.ndarray, sample_rate_hz: int, pitch_backend: str = "default",
                     tempo_bpm: float | None = None, meter: Sequence[int] | None = None,
                     key: str | Key | None = None, source: str = "take",
                     progress: Progress | None = None,
                     timings: dict[str, float] | None = None,
                     settings: SegmenterSettings | None = None, downbeat_s: float | None = None,
                     pickup_beats: float | None = None, dereverb: bool = True) -> Melody:
    """Transcribe mono samples (shape (n_samples,)) at ``sample_rate_hz``; see :func:`transcribe`."""
    _check_options(pitch_backend, tempo_bpm, meter, key, downbeat_s, pickup_beats)
    return _run_stages(samples, sample_rate_hz, pitch_backend, tempo_bpm, meter, key, source,
                       progress, dict(timings or {}), settings, downbeat_s, pickup_beats, dereverb)


def _run_stages(samples, sample_rate_hz, pitch_backend, tempo_bpm, meter, key, source, progress,
                timings: dict[str, float], settings: SegmenterSettings | None,
                downbeat_s: float | None = None, pickup_beats: float | None = None,
                dereverb: bool = True) -> Melody:
    """dereverb -> pitch -> notes -> tuning -> key -> rhythm, on options already checked."""
    say = progress or (lambda stage: None)
    name = os.path.basename(source) or source
    x = np.asarray(samples, dtype=np.float32)
    duration_s = len(x) / float(sample_rate_hz)
    check_bar_fix(downbeat_s, pickup_beats, duration_s, tuple(meter) if meter else None)

    t = time.perf_counter()
    say("dereverb")
    x = to_tracker_rate(x, sample_rate_hz)
    reverberance = 0.0
    if dereverb:
        x, reverberance = dereverberate_measured(x, TRACKER_SAMPLE_RATE_HZ)
    timings["dereverb"] = time.perf_counter() - t

    t = time.perf_counter()
    say("pitch")
    track = track_pitch(x, TRACKER_SAMPLE_RATE_HZ, pitch_backend)
    # the segmenter reads a room's echo in the loudness (see SegmenterSettings.dip_band_reverberance)
    track.reverberance = reverberance
    timings["pitch"] = time.perf_counter() - t

    t = time.perf_counter()
    say("notes")
    s = settings or SegmenterSettings()
    _check_singing(track, s, name, duration_s)
    notes = segment_notes(track, s)
    voiced_s = sum(n.duration_s for n in notes)
    if voiced_s < MIN_VOICED_S:
        raise TakeLengthError(
            f"{name} is too short: only {voiced_s:.1f} s of singing found, at least "
            f"{MIN_VOICED_S:.0f} s is needed: sing or hum a longer phrase")
    timings["notes"] = time.perf_counter() - t

    t = time.perf_counter()
    say("tuning")
    # the tuning from the pitch each note settles on (past a scoop into it); the notes keep
    # their own pitch
    tuning_cents = estimate_tuning_cents(settled_notes(notes, track))
    notes = snap_notes(notes, tuning_cents)
    say("key")
    # the key's vote names its copies' notes on the grid the notes were snapped to
    the_key = Key.parse(key) if isinstance(key, str) else \
        (key or estimate_key(notes, tuning_cents=tuning_cents))
    say("rhythm")
    rhythm = estimate_rhythm(notes, duration_s, tempo_bpm=tempo_bpm,
                             meter=tuple(meter) if meter else None, downbeat_s=downbeat_s,
                             pickup_beats=pickup_beats)
    timings["rhythm_key"] = time.perf_counter() - t
    return Melody(notes=notes, tuning_cents=tuning_cents, rhythm=rhythm, key=the_key,
                  duration_s=duration_s, source=source, pitch_backend=track.backend,
                  timings_s=timings, pitch_track=track)


def _check_options(pitch_backend, tempo_bpm, meter, key, downbeat_s=None, pickup_beats=None) -> None:
    resolve_backend(pitch_backend)
    check_bar_fix(downbeat_s, pickup_beats, meter=tuple(meter) if meter else None)
    if tempo_bpm is not None and not (30.0 <= float(tempo_bpm) <= 300.0):
        raise OptionError(f"tempo {tempo_bpm} bpm is out of range: give a tempo from 30 to 300 bpm")
    if meter is not None and tuple(int(v) for v in meter) not in SUPPORTED_METERS:
        known = ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS)
        raise OptionError(f"meter {meter[0]}/{meter[1]} is not supported: choose one of {known}")
    if isinstance(key, str):
        Key.parse(key)


def _check_singing(track: PitchTrack, s: SegmenterSettings, name: str, duration_s: float) -> None:
    """Refuse silence and noise with a message that says where the take went quiet."""
    loud = track.rms_db > -60.0
    if not loud.any():
        raise NoSingingError(f"no singing found in {name}: the recording is silent "
                             f"({duration_s:.1f} s of silence); check the microphone")
    voiced = voicing(track, s)
    if voiced.sum() * track.hop_s < 0.25:
        last = float(track.times_s[np.flatnonzero(loud)[-1]])
        first = float(track.times_s[np.flatnonzero(loud)[0]])
        if np.percentile(track.rms_db[loud], 50) > -60 and last - first > 0.5:
            raise NoSingingError(f"no singing found in {name}: it holds sound from {first:.1f} s "
                                 f"to {last:.1f} s but no sung pitch (noise only?)")
        raise NoSingingError(f"no singing found in {name}: the recording is silent after "
                             f"{first:.1f} s; check the microphone")


__all__ = ["transcribe", "transcribe_audio", "Melody", "Note"]
