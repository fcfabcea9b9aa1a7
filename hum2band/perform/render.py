"""Render an arrangement to audio: one stem per part with FluidSynth, the take as the lead, a mix.

* :func:`render_part` -- one part through its own FluidSynth instance (so every stem is clean),
  offline (``fluid_synth_write_float``, no audio driver), with its GM program, the percussion
  channel for drums, and a pitch-bend offset that tunes it to the singer.
* :func:`render_parts` -- every part of an :class:`~hum2band.music.arrangement.Arrangement`, all the
  same length, pan applied, each brought to its role's loudness in the style (measured on the
  rendered stem: the catalogue's ``balance_lu``), then its part gain.
* :func:`load_vocal` -- the original take at 44.1 kHz stereo, untouched in pitch and timing.
* :func:`mix` -- the take set :data:`BAND_UNDER_VOICE_LU` over the band (measured, so the band
  sits the same distance under the voice whatever level the take was recorded at;
  ``--vocal-level`` moves it), then sum stems and vocal, one global gain to reach the loudness target
  (pyloudnorm, ITU-R BS.1770) without any sample or 4x-oversampled peak above the ceiling; the
  returned stems carry that same gain, so they sum to the mix.
* :func:`write_stems`, :func:`write_mix` -- float32 WAV files, written into place atomically.

All audio here is float32 of shape (n_samples, 2) at :data:`SAMPLE_RATE_HZ`.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import Hum2BandError
from ..music.arrangement import Arrangement, Part, stem_file_name

SAMPLE_RATE_HZ = 44100

#: Seconds of audio after the last note, so releases and reverb ring out.
TAIL_S = 2.0

#: Default loudness of the mix (integrated, LUFS) and the peak ceiling (dBFS, 4x oversampled).
TARGET_LUFS = -14.0
PEAK_CEILING_DBFS = -1.0

#: Loudness (LUFS) a stem at balance 0 LU is brought to before the mix gain (the mix sets the level).
PART_REFERENCE_LUFS = -24.0
#: How far the band sits under the voice at ``--vocal-level 0`` (LU, integrated loudness).
BAND_UNDER_VOICE_LU = 6.0

#: FluidSynth master gain; its output stays far below full scale, the mix sets the level.
SYNTH_GAIN = 0.4

#: Samples rendered per FluidSynth call between events (bounds the temporary work).
_MAX_BLOCK = 1 << 16


class RenderError(Hum2BandError):
    """Rendering is impossible on this machine (FluidSynth missing, soundfont unreadable)."""


_fluidsynth = None
_write_float = None


def load_fluidsynth():
    """Import pyfluidsynth and bind ``fluid_synth_write_float``.

    Raises
    ------
    RenderError
        libfluidsynth or pyfluidsynth is not installed.
    """
    global _fluidsynth, _write_float
    if _fluidsynth is not None:
        return _fluidsynth
    try:
        import fluidsynth
    except (ImportError, OSError) as error:
        raise RenderError(f"FluidSynth is not available ({error}): install it with "
                          "'sudo apt-get install libfluidsynth3' and 'pip install pyfluidsynth' "
                          "(make setup does both)") from error
    _write_float = fluidsynth.cfunc(
        "fluid_synth_write_float", ctypes.c_int,
        ("synth", ctypes.c_void_p, 1), ("len", ctypes.c_int, 1),
        ("lout", ctypes.c_void_p, 1), ("loff", ctypes.c_int, 1), ("lincr", ctypes.c_int, 1),
        ("rout", ctypes.c_void_p, 1), ("roff", ctypes.c_int, 1), ("rincr", ctypes.c_int, 1))
    _quiet_fluidsynth_log(fluidsynth)
    _fluidsynth = fluidsynth
    return fluidsynth


def _quiet_fluidsynth_log(fluidsynth) -> None:
    """Keep libfluidsynth's own log lines (e.g. SoundFont modulator warnings) off the user's
    terminal: hum2band reports problems itself, in one line. ``HUM2BAND_DEBUG=1`` keeps them."""
    if os.environ.get("HUM2BAND_DEBUG", "") not in ("", "0"):
        return
    try:
        set_log = fluidsynth.cfunc("fluid_set_log_function", ctypes.c_void_p,
                                   ("level", ctypes.c_int, 1), ("fun", ctypes.c_void_p, 1),
                                   ("data", ctypes.c_void_p, 1))
        for level in (1, 2, 3, 4):  # FLUID_ERR, FLUID_WARN, FLUID_INFO, FLUID_DBG
            set_log(level, None, None)
    except (AttributeError, TypeError, OSError):  # an old libfluidsynth: its log stays on
        pass


def fluidsynth_unavailable_reason() -> str | None:
    """None if FluidSynth can render here, else a one-line reason."""
    try:
        load_fluidsynth()
    except RenderError as error:
        return str(error)
    return None


# ---- one part ---------------------------------------------------------------------------------
def _events(part: Part, sample_rate_hz: int, n_samples: int) -> list[tuple[int, int, int, int]]:
    """(sample, order, key, velocity) note events; offs (order 0) before ons at the same sample."""
    ev = []
    for n in part.notes:
        on = int(round(float(n.onset_s) * sample_rate_hz))
        off = max(on + 1, int(round(float(n.offset_s) * sample_rate_hz)))
        if on >= n_samples or off <= 0:
            continue
        on = max(on, 0)  # a note begun before the take starts sounds from its first sample
        key = int(np.clip(n.midi, 0, 127))
        ev.append((on, 1, key, int(np.clip(n.velocity, 1, 127))))
        ev.append((min(off, n_samples - 1), 0, key, 0))
    ev.sort()
    return ev


def render_part(part: Part, soundfont_path: str | os.PathLike, n_samples: int,
                tuning_cents: float = 0.0, sample_rate_hz: int = SAMPLE_RATE_HZ,
                reverb: bool = True) -> np.ndarray:
    """Render one part on its own synth.

    Parameters
    ----------
    part : Part
        Notes in seconds; ``program`` is a GM program, or a GM drum kit (bank 128) if ``is_drum``.
    soundfont_path : str or PathLike
        An SF2/SF3 file.
    n_samples : int
        Length of the result; notes still sounding at the end are cut there.
    tuning_cents : float
        Pitch-bend offset for melodic parts (±200 cents bend range); drums are not bent.
    sample_rate_hz : int
    reverb : bool
        Keep FluidSynth's reverb and chorus (the soundfont's send levels).

    Returns
    -------
    np.ndarray, shape (n_samples, 2), float32
        The part as the soundfont plays it, before pan and part gain.

    Raises
    ------
    RenderError
        FluidSynth is missing or cannot load the soundfont.
    """
    fs = load_fluidsynth()
    synth = fs.Synth(gain=SYNTH_GAIN, samplerate=float(sample_rate_hz), channels=16,
                     **{"synth.reverb.active": int(reverb), "synth.chorus.active": int(reverb)})
    out = np.zeros((int(n_samples), 2), dtype=np.float32)
    try:
        sfid = synth.sfload(str(soundfont_path))
        if sfid < 0:
            raise RenderError(f"FluidSynth cannot load the soundfont {soundfont_path}: "
                              "give another .sf2/.sf3 file with --soundfont")
        ch = 9 if part.is_drum else 0
        bank = 128 if part.is_drum else 0
        if synth.program_select(ch, sfid, bank, int(part.program)) != 0:
            synth.program_select(ch, sfid, bank, 0)  # the soundfont lacks it: its first preset
        if not part.is_drum:
            for ctl, val in ((101, 0), (100, 0), (6, 2), (38, 0), (101, 127), (100, 127)):
                synth.cc(ch, ctl, val)
            bend = int(np.clip(round(float(tuning_cents) / 200.0 * 8192), -8192, 8191))
            synth.pitch_bend(ch, bend)
        pos = 0
        for sample, _, key, vel in _events(part, sample_rate_hz, n_samples) + [(n_samples, 0, -1, 0)]:
            while pos < sample:
                n = min(sample - pos, _MAX_BLOCK)
                ptr = out.ctypes.data + pos * 2 * out.itemsize
                _write_float(synth.synth, n, ptr, 0, 2, ptr, 1, 2)
                pos += n
            if key < 0:
                break
            if vel > 0:
                synth.noteon(ch, key, vel)
            else:
                synth.noteoff(ch, key)
    finally:
        synth.delete()
    return out


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power balance for a stereo stem: (left, right) gains, both 1 at the centre."""
    theta = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * np.pi / 4.0
    return float(np.sqrt(2.0) * np.cos(theta)), float(np.sqrt(2.0) * np.sin(theta))


def rendered_length(arrangement: Arrangement, vocal_samples: int = 0,
                    sample_rate_hz: int = SAMPLE_RATE_HZ, tail_s: float = TAIL_S) -> int:
    """Samples every stem gets: the band plus its tail, or the take if that is longer."""
    band = int(np.ceil((arrangement.duration_s + tail_s) * sample_rate_hz))
    return max(band, int(vocal_samples))


def render_parts(arrangement: Arrangement, soundfont_path: str | os.PathLike,
                 n_samples: int | None = None, sample_rate_hz: int = SAMPLE_RATE_HZ,
                 reverb: bool = True, workers: int = 1) -> dict[str, np.ndarray]:
    """Every part of the arrangement as a stem, balanced, with its pan and part gain.

    Each rendered stem is measured (integrated loudness, BS.1770) and brought to
    :data:`PART_REFERENCE_LUFS` plus its role's balance in the arrangement's style
    (:func:`hum2band.perform.soundfonts.balance_lu`: drums carry a pop groove, pads sit under it),
    then ``part.gain_db`` moves it from there. A silent part is left silent.

    Parameters
    ----------
    workers : int
        Parts rendered at the same time, each on its own synth in a thread (FluidSynth runs
        outside the GIL); the result does not depend on it.

    Returns
    -------
    dict
        Part name -> float32 array of shape (n_samples, 2), in the order of ``arrangement.parts``.
    """
    n = rendered_length(arrangement, 0, sample_rate_hz) if n_samples is None else int(n_samples)
    parts = list(arrangement.parts)

    def one(part: Part) -> np.ndarray:
        return render_part(part, soundfont_path, n, arrangement.tuning_cents, sample_rate_hz, reverb)

    if workers > 1 and len(parts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(int(workers), len(parts))) as pool:
            rendered = list(pool.map(one, parts))
    else:
        rendered = [one(p) for p in parts]
    from .soundfonts import balance_lu

    stems = Stems()
    for part, name, audio in zip(parts, stem_names(parts), rendered):
        gl, gr = pan_gains(part.pan)
        level_db = float(part.gain_db)
        audio[:, 0] *= np.float32(gl)
        audio[:, 1] *= np.float32(gr)
        lufs = integrated_loudness(audio, sample_rate_hz)
        if np.isfinite(lufs):
            target = PART_REFERENCE_LUFS + balance_lu(part.name, arrangement.style or None)
            level_db += target - lufs
            stems.gains_db[name] = level_db
        level = np.float32(10.0 ** (level_db / 20.0))
        audio *= level
        stems[name] = audio
    return stems


class Stems(dict):
    """Stem name -> audio, as :func:`render_parts` returns it, plus ``gains_db``: stem name -> the
    gain (dB) the render applied to that stem relative to the raw FluidSynth render (its balance
    and part gain; the pan, which MIDI carries as CC 10, is not in it). A silent stem, which
    cannot be measured, has no entry. :func:`mix` passes it on as :attr:`Mix.part_gains_db`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gains_db: dict[str, float] = {}


def stem_names(parts) -> list[str]:
    """The stem name of each part, in order: its name, ``NAME_2``, ``NAME_3``... for repeats."""
    names: list[str] = []
    for part in parts:
        name, k = part.name, 2
        while name in names:
            name, k = f"{part.name}_{k}", k + 1
        names.append(name)
    return names


# ---- the take ---------------------------------------------------------------------------------
def load_vocal(path: str | os.PathLike, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The original take as the lead: decoded at ``sample_rate_hz`` (resampled only if its own
    rate differs), mono duplicated to both channels, otherwise untouched.

    Returns
    -------
    np.ndarray, shape (n_samples, 2), float32
    """
    from ..files.audio import decode

    return decode(path, sample_rate_hz=sample_rate_hz, max_duration_s=None, channels=2).samples


# ---- the mix ----------------------------------------------------------------------------------
@dataclass
class Mix:
    """A finished mix and the stems that sum to it.

    Attributes
    ----------
    mix : np.ndarray, shape (n_samples, 2), float32
        Sum of :attr:`stems` (computed in float64, stored in float32).
    stems : dict
        Name -> float32 (n_samples, 2): every part and ``"vocal"`` (if any), after the global gain.
    gain_db : float
        The one gain applied to every stem (the vocal also got ``vocal_level_db`` before it).
    vocal_gain_db : float or None
        Total gain of the vocal stem relative to the decoded take (the balance that sets it
        :data:`BAND_UNDER_VOICE_LU` over the band, plus ``vocal_level_db``, plus ``gain_db``);
        None without a vocal.
    loudness_lufs : float
        Integrated loudness of :attr:`mix`.
    target_lufs : float
    peak_dbfs : float
        4x-oversampled peak of the mix.
    limited_by_peak : bool
        The peak ceiling, not the loudness target, set the gain (the mix is quieter than the target).
    sample_rate_hz : int
    part_gains_db : dict
        Stem name -> gain (dB) :func:`render_parts` applied to that part's stem relative to the
        raw FluidSynth render (before :attr:`gain_db`, which every stem shares; pan not included);
        measured parts only. The MIDI export sets each track's volume from it.
    """

    mix: np.ndarray
    stems: dict
    gain_db: float
    vocal_gain_db: float | None
    loudness_lufs: float
    target_lufs: float
    peak_dbfs: float
    limited_by_peak: bool
    sample_rate_hz: int = SAMPLE_RATE_HZ
    part_gains_db: dict = field(default_factory=dict)


def integrated_loudness(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (``-inf`` for silence or less than one 400 ms
    block), measured by :mod:`hum2band.perform.loudness` (the same computation as pyloudnorm, which the
    tests compare it with, without its import cost)."""
    from .loudness import integrated_loudness as bs1770

    x = np.asarray(audio, dtype=np.float64)
    if x.shape[0] < int(0.4 * sample_rate_hz) or not np.any(x):
        return float("-inf")
    return bs1770(x, float(sample_rate_hz))


def oversampled_peak(audio: np.ndarray, factor: int = 4, block: int = 1 << 18) -> float:
    """Peak magnitude after ``factor``-times band-limited oversampling (an estimate of the true
    peak), linear.

    Each block (with ``margin`` samples of context on both sides, zeros beyond the ends) is
    upsampled by zero-padding its spectrum (numpy FFT; no scipy.signal import on the cold path);
    only the block's own samples are read back, far from the edges where the FFT wraps.
    """
    from .loudness import _fast_size

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    peak = float(np.max(np.abs(x))) if n else 0.0
    if n > 60 * SAMPLE_RATE_HZ:
        # long takes: a polyphase filter is faster, and scipy.signal's import cost is small by then
        from scipy.signal import resample_poly

        for start in range(0, n, block):
            a, b = max(0, start - 256), min(n, start + block + 256)
            up = resample_poly(x[a:b], factor, 1, axis=0)
            lo = (start - a) * factor
            peak = max(peak, float(np.max(np.abs(up[lo:lo + (min(n, start + block) - start) * factor]))))
        return peak
    margin = 512
    for start in range(0, n, block):
        stop = min(n, start + block)
        a, b = max(0, start - margin), min(n, stop + margin)
        seg = np.zeros((margin + (b - a) + margin, x.shape[1]))
        seg[margin:margin + (b - a)] = x[a:b]
        m = _fast_size(seg.shape[0])
        spec = np.fft.rfft(seg, n=m, axis=0)
        up = np.fft.irfft(spec, n=m * factor, axis=0) * factor
        lo = (margin + start - a) * factor
        hi = lo + (stop - start) * factor
        peak = max(peak, float(np.max(np.abs(up[lo:hi]))))
    return peak


def _fit(audio: np.ndarray, n_samples: int) -> np.ndarray:
    """(n, 2) float32 of exactly ``n_samples`` (zero-padded at the end, never cut)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = np.repeat(x[:, None], 2, axis=1)
    if x.shape[0] > n_samples:
        raise ValueError(f"a stem is longer ({x.shape[0]}) than the mix ({n_samples})")
    if x.shape[0] < n_samples:
        x = np.concatenate([x, np.zeros((n_samples - x.shape[0], x.shape[1]), np.float32)])
    return x


def voice_balance_db(stems, vocal: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ,
                     band_under_voice_lu: float = BAND_UNDER_VOICE_LU) -> float:
    """Gain (dB) that puts the take ``band_under_voice_lu`` over the sum of the stems, both
    measured as integrated loudness; 0 when either is silent.

    Parameters
    ----------
    stems : iterable of np.ndarray, each (n, 2)
        The band's stems, all of the take's length ``n``.
    vocal : np.ndarray, shape (n, 2)
    """
    band = None
    for x in stems:
        band = np.asarray(x, dtype=np.float64).copy() if band is None else band + x
    if band is None:
        return 0.0
    band_lufs = integrated_loudness(band, sample_rate_hz)
    voice_lufs = integrated_loudness(vocal, sample_rate_hz)
    if not (np.isfinite(band_lufs) and np.isfinite(voice_lufs)):
        return 0.0
    return float(band_lufs + band_under_voice_lu - voice_lufs)


def mix(stems: Mapping[str, np.ndarray], vocal: np.ndarray | None = None,
        vocal_level_db: float = 0.0, target_lufs: float = TARGET_LUFS,
        peak_ceiling_dbfs: float = PEAK_CEILING_DBFS,
        sample_rate_hz: int = SAMPLE_RATE_HZ) -> Mix:
    """Balance, sum and loudness-normalise.

    Parameters
    ----------
    stems : mapping
        Part name -> (n, 2) float32 (pan and part gain already applied, see :func:`render_parts`).
    vocal : np.ndarray, optional
        The take from :func:`load_vocal`, shape (n, 2) or (n,); None for no vocal.
    vocal_level_db : float
        ``--vocal-level``: dB more (or less) voice than the default balance, where the band sits
        :data:`BAND_UNDER_VOICE_LU` under the take (both measured as integrated loudness).
    target_lufs : float
        Integrated loudness the mix is brought to, unless the peak ceiling stops it first.
    peak_ceiling_dbfs : float
        No 4x-oversampled peak of the mix, and no sample of any stem, goes above this.

    Returns
    -------
    Mix
        All stems (vocal included, as ``"vocal"``) the same length, each scaled by the same gain,
        and their sum. Nothing is ever clipped: the gain is lowered instead.
    """
    if "vocal" in stems and vocal is not None:
        raise ValueError("a part may not be called 'vocal' when a vocal is given")
    items = dict(stems)
    if not items and vocal is None:
        raise ValueError("nothing to mix")
    n = max([x.shape[0] for x in items.values()] + ([np.asarray(vocal).shape[0]] if vocal is not None else []))
    items = {k: _fit(x, n) for k, x in items.items()}
    vocal_db = 0.0
    if vocal is not None:
        v = _fit(np.asarray(vocal, dtype=np.float32), n)
        vocal_db = float(vocal_level_db) + voice_balance_db(items.values(), v, sample_rate_hz)
        items["vocal"] = v * np.float32(10.0 ** (vocal_db / 20.0))
    pre = np.zeros((n, 2), dtype=np.float64)
    for x in items.values():
        pre += x
    loudness = integrated_loudness(pre, sample_rate_hz)
    gain_db = target_lufs - loudness if np.isfinite(loudness) else 0.0
    ceiling = 10.0 ** (peak_ceiling_dbfs / 20.0)
    true_peak = oversampled_peak(pre)
    del pre
    peak = max([true_peak] + [float(np.max(np.abs(x))) for x in items.values()])
    limited = False
    if peak > 0 and peak * 10.0 ** (gain_db / 20.0) > ceiling:
        gain_db = 20.0 * np.log10(ceiling / peak)
        limited = True
    g = np.float32(10.0 ** (gain_db / 20.0))
    out_stems = {k: x * g for k, x in items.items()}
    total = np.zeros((n, 2), dtype=np.float64)
    for x in out_stems.values():
        total += x
    mixed = total.astype(np.float32)
    # Loudness scales exactly with the gain (both gates are relative or far below any music).
    return Mix(mixed, out_stems, float(gain_db),
               float(gain_db + vocal_db) if vocal is not None else None,
               float(loudness + gain_db), float(target_lufs),
               20.0 * np.log10(max(true_peak * float(g), 1e-12)), limited, sample_rate_hz,
               dict(getattr(stems, "gains_db", {})))


def render_arrangement(arrangement: Arrangement, soundfont: str | os.PathLike | None = None,
                       vocal: bool = True, vocal_level_db: float = 0.0,
                       target_lufs: float = TARGET_LUFS, workers: int = 1,
                       reverb: bool = True) -> Mix:
    """Everything an output folder needs: the parts rendered, the take as the lead, the mix.

    Parameters
    ----------
    arrangement : Arrangement
        Its ``vocal_path`` is the lead (ignored when ``vocal`` is False or it is None).
    soundfont : str or PathLike, optional
        ``--soundfont``; default the catalogue's (see :func:`hum2band.perform.soundfonts.find_soundfont`).
    vocal : bool
        False for ``--no-vocal``.
    vocal_level_db : float
        ``--vocal-level``: the take's level relative to the band before normalisation.

    Returns
    -------
    Mix
        Stems named after the parts plus ``"vocal"``, all as long as the longer of the take and
        the band with its :data:`TAIL_S` tail.
    """
    from .soundfonts import find_soundfont

    font = find_soundfont(soundfont)
    take = load_vocal(arrangement.vocal_path) if vocal and arrangement.vocal_path else None
    n = rendered_length(arrangement, 0 if take is None else take.shape[0])
    stems = render_parts(arrangement, font, n, reverb=reverb, workers=workers)
    return mix(stems, take, vocal_level_db, target_lufs)


# ---- files ------------------------------------------------------------------------------------
def write_mix(path: str | os.PathLike, result: Mix) -> None:
    """Write ``mix.wav`` (float32, atomically)."""
    from ..files.audio import write_wav

    write_wav(path, result.mix, result.sample_rate_hz, float32=True)


def write_stems(stems_dir: str | os.PathLike, result: Mix, overwrite: bool = False) -> dict[str, Path]:
    """Write every stem as ``STEMS_DIR/NAME.wav`` (float32, so they sum to the mix to ~1e-7).

    The files are written into a temporary folder beside ``stems_dir`` that is renamed into
    place when all are complete.

    Returns
    -------
    dict
        Stem name -> path of its file.

    Raises
    ------
    OptionError
        ``stems_dir`` exists and ``overwrite`` is False, or the folder cannot be written.
    """
    from ..files.audio import write_wav
    from ..files.staging import staged_folder

    target = Path(stems_dir)
    written: dict[str, Path] = {}
    with staged_folder(target, replace=overwrite) as tmp:
        used: set[str] = set()
        for name, audio in result.stems.items():
            fname = stem_file_name(name)
            stem, k = fname[:-4], 2
            while fname in used:
                fname, k = f"{stem}_{k}.wav", k + 1
            used.add(fname)
            write_wav(tmp / fname, audio, result.sample_rate_hz, float32=True)
            written[name] = target / fname
    return written
