"""The same song, however it was recorded: transcription of real sung takes under the conditions a
phone, a browser or a room puts them through.

Every condition is built here from the SSVD development takes (read from ``--data``, default
``../shared/data``, or ``HUM2BAND_DATA``; never copied into the project), each take transcribed as
recorded and as degraded:

========================  ============================================================================
``clean``                 the take as recorded (44.1 kHz FLAC)
``silence``               2.8 s of digital silence before (a browser count-in), 2.0 s after
``gain -24 dB``           the take 24 dB quieter
``aac 64k m4a``           AAC-LC 64 kb/s in MP4, 44.1 kHz (a phone voice memo)
``opus 24k webm``         Opus 24 kb/s in WebM, 48 kHz (a browser's MediaRecorder)
``mp3 64k``               MP3 64 kb/s, 44.1 kHz
``amr-nb 12.2k``          AMR-NB 12.2 kb/s, 8 kHz (an old phone's 3GP memo), where PyAV's FFmpeg
                          encodes it (libopencore_amrnb); skipped otherwise
``pink 20 dB`` / ``10``   pink (1/f) noise at 20 / 10 dB SNR
``babble 20 dB`` / ``10`` babble-like noise at 20 / 10 dB SNR: six other SSVD takes, time-reversed
                          (voices without their melodies), at random offsets, mixed at equal level
``room 0.4 s`` / ``0.8``  convolved with a synthetic room impulse response of RT60 0.4 / 0.8 s:
                          the direct sound, then exponentially decaying Gaussian noise from 3 ms on
                          (seeded per take), reverberant-to-direct energy 0 dB at 0.4 s and +3 dB
                          at 0.8 s (the diffuse energy grows with the reverberation time)
``room-early 0.4 s`` /    a second kind of room, unlike the one above (the dereverberation was
``0.8``                   tuned on that one): ten early reflections 2-30 ms after the direct sound
                          (walls, table, floor; together about as strong as the direct sound), and a
                          late decay from 15 ms on that falls faster in the treble (RT60 x1.25 under
                          500 Hz, x0.6 over 2 kHz), as strong as the direct sound: direct-to-
                          reverberant about -3 dB, a phone a metre or two away in a kitchen
``telephone``             8 kHz, 300-3400 Hz band (4th-order Butterworth band-pass), G.711 mu-law
========================  ============================================================================

SNR is measured against the take's active level: the mean power of its loudest half of 40 ms
frames (roughly the sung part; a take's pauses would otherwise flatter the noise).

Printed per condition: mean COn, COnP and COnPOff (mir_eval: 50 ms onsets, 50 cents, offsets 20 %
with 50 ms minimum) against the annotation (shifted by any silence put in front), the change
against the clean take, and on how many takes the key (sounding tonic or mode), the meter, the
tempo (more than 4 %) or the tuning (more than 10 cents, on the circle of 100 cents) changed
against the clean take (see :func:`changed`); the real-time factor of transcription (processing /
audio seconds, decoding included); and on how many takes the tuning wrapped from near +50 to near
-50 cents (notes named a semitone apart, the band tuned to match). Every condition, the clean take
included, is written to a file (float WAV for the signal conditions) and goes through
:func:`hum2band.listen.transcription.transcribe`, so all are decoded and resampled alike. COnPOff is
also printed on the even- and odd-numbered takes separately (position in the sorted list of SSVD
takes, as in ``benchmarks/transcription.py``): settings are tuned on the even ones only.

The four ``man1_*``/``man2_*`` takes are left out: their annotations sit about 1.1 semitones above
the sung pitch (see ``benchmarks/transcription.py``), so their COnP says nothing. From the other
63, ``--takes`` (default 24) are taken evenly spread over the sorted list.

    python benchmarks/robustness.py [--takes 24] [--conditions clean,silence,room-0.4] [--jobs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Change thresholds against the clean take.
TEMPO_CHANGE = 0.04
TUNING_CHANGE_CENTS = 10.0
#: Targets of issue 12, printed with the table.
TARGETS = ("targets: silence, gain, AAC, Opus, MP3, telephone: COnP and COnPOff within 0.01 of "
           "clean, key/meter/tempo unchanged on >= 23 of 24; noise 20 dB and room 0.4 s: COnP "
           "within 0.03, COnPOff within 0.05 of clean; RTF <= 0.10")


# ---- the conditions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Degraded:
    """A take as one condition delivers it: samples (or a file to decode) and the silence in front.

    Attributes
    ----------
    samples : np.ndarray or None, shape (n_samples,)
        Mono float32 at ``sample_rate_hz``; None when ``path`` holds the take.
    sample_rate_hz : int
    path : str or None
        An encoded file, decoded by :func:`hum2band.listen.transcription.transcribe`.
    shift_s : float
        Silence put in front, s: the annotation is shifted by it.
    """

    samples: np.ndarray | None
    sample_rate_hz: int
    path: str | None = None
    shift_s: float = 0.0


def active_power(x: np.ndarray, sample_rate_hz: int) -> float:
    """Mean power of the loudest half of 40 ms frames of ``x`` (shape (n,)), linear."""
    n = int(0.04 * sample_rate_hz)
    frames = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
    power = np.sort(np.mean(frames ** 2, axis=1))
    return float(np.mean(power[len(power) // 2:]))


def at_snr(x: np.ndarray, noise: np.ndarray, sample_rate_hz: int, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` (same shape) scaled to ``snr_db`` below the take's active level."""
    noise = noise / np.sqrt(np.mean(noise.astype(np.float64) ** 2) + 1e-20)
    gain = np.sqrt(active_power(x, sample_rate_hz) / 10.0 ** (snr_db / 10.0))
    return (x + gain * noise).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) Gaussian noise, shape (n,), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=float)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0.0
    y = np.fft.irfft(spec, n)
    return y / np.sqrt(np.mean(y ** 2))


def babble_noise(n: int, others: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Six other takes, time-reversed, each from a random offset (looped), equal RMS, summed;
    shape (n,), unit RMS."""
    out = np.zeros(n)
    picks = rng.choice(len(others), size=min(6, len(others)), replace=False)
    for k in picks:
        v = np.asarray(others[k][::-1], dtype=np.float64)
        v = np.resize(np.roll(v, int(rng.integers(len(v)))), n)
        out += v / np.sqrt(np.mean(v ** 2) + 1e-20)
    return out / np.sqrt(np.mean(out ** 2) + 1e-20)


def room_impulse_response(rt60_s: float, sample_rate_hz: int, rng: np.random.Generator,
                          reverb_to_direct_db: float) -> np.ndarray:
    """Synthetic room impulse response, shape (n_taps,): a unit direct path, then Gaussian noise
    from 3 ms on decaying by 60 dB in ``rt60_s``, scaled to ``reverb_to_direct_db``."""
    n = int(1.2 * rt60_s * sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-3.0 * np.log(10.0) * t_s / rt60_s)
    tail[t_s < 0.003] = 0.0
    tail *= np.sqrt(10.0 ** (reverb_to_direct_db / 10.0) / np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def early_room_impulse_response(rt60_s: float, sample_rate_hz: int,
                                rng: np.random.Generator) -> np.ndarray:
    """A room with early reflections and a treble that dies first, shape (n_taps,): a unit direct
    path; ten reflections 2-30 ms later, amplitude 0.7 sqrt(2 ms / delay), random sign; then
    Gaussian noise from 15 ms on (20 ms fade-in) in three bands decaying by 60 dB in 1.25, 1 and
    0.6 times ``rt60_s`` (under 500 Hz, 500-2000 Hz, over 2 kHz), with the direct path's energy."""
    from scipy.signal import butter, sosfilt

    n = int(1.2 * rt60_s * sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    ir = np.zeros(n)
    for delay_ms in np.sort(rng.uniform(2.0, 30.0, 10)):
        ir[int(delay_ms * sample_rate_hz / 1000.0)] += rng.choice([-1.0, 1.0]) * 0.7 * np.sqrt(2.0 / delay_ms)
    tail = np.zeros(n)
    for band, kind, scale in (((500.0,), "lowpass", 1.25), ((500.0, 2000.0), "bandpass", 1.0),
                              ((2000.0,), "highpass", 0.6)):
        sos = butter(4, band if len(band) > 1 else band[0], kind, fs=sample_rate_hz, output="sos")
        tail += sosfilt(sos, rng.standard_normal(n)) * np.exp(-3.0 * np.log(10.0) * t_s / (rt60_s * scale))
    tail *= np.clip((t_s - 0.015) / 0.02, 0.0, 1.0)
    ir += tail / np.sqrt(np.sum(tail ** 2))
    ir[0] = 1.0
    return ir


def in_room(x: np.ndarray, sample_rate_hz: int, rt60_s: float, rng: np.random.Generator,
            early: bool = False) -> np.ndarray:
    """``x`` as heard in a room (see :func:`room_impulse_response`, or with ``early``
    :func:`early_room_impulse_response`), same length, same peak."""
    from scipy.signal import fftconvolve

    if early:
        rir = early_room_impulse_response(rt60_s, sample_rate_hz, rng)
    else:
        rir = room_impulse_response(rt60_s, sample_rate_hz, rng, 10.0 * np.log10(rt60_s / 0.4))
    y = fftconvolve(x.astype(np.float64), rir)[: len(x)]
    return (y * (np.max(np.abs(x)) / max(np.max(np.abs(y)), 1e-9))).astype(np.float32)


def telephone(x: np.ndarray, sample_rate_hz: int) -> tuple[np.ndarray, int]:
    """Narrow-band telephone: 8 kHz, 300-3400 Hz band-pass, G.711 mu-law; returns (samples, 8000)."""
    import soxr
    from scipy.signal import butter, sosfilt

    y = soxr.resample(x.astype(np.float64), sample_rate_hz, 8000)
    y = sosfilt(butter(4, [300.0, 3400.0], btype="band", fs=8000, output="sos"), y)
    y = np.clip(y / max(np.max(np.abs(y)), 1e-9) * 0.7, -1.0, 1.0)
    mu = 255.0
    law = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    law = np.round(law * 127.0) / 127.0  # 8 bits
    return (np.sign(law) * np.expm1(np.abs(law) * np.log1p(mu)) / mu).astype(np.float32), 8000


def encode(x: np.ndarray, sample_rate_hz: int, path: str, codec: str, rate_hz: int,
           bit_rate: int) -> str:
    """Encode mono ``x`` with PyAV's FFmpeg (container from ``path``'s suffix); returns ``path``."""
    import av
    import soxr

    y = x if rate_hz == sample_rate_hz else soxr.resample(x, sample_rate_hz, rate_hz)
    y = np.clip(np.asarray(y, np.float32), -1.0, 1.0)
    with av.open(path, "w") as out:
        stream = out.add_stream(codec, rate=rate_hz, layout="mono")
        stream.bit_rate = bit_rate
        step = 4096  # PyAV converts the format and re-blocks to the codec's frame size
        for i in range(0, len(y), step):
            frame = av.AudioFrame.from_ndarray(y[None, i:i + step], format="flt", layout="mono")
            frame.rate = rate_hz
            frame.pts = i  # timestamps let the muxer record the encoder delay (MP4 edit list)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def amr_available() -> bool:
    import av

    try:
        av.codec.Codec("libopencore_amrnb", "w")
        return True
    except Exception:
        return False


Maker = Callable[[np.ndarray, int, np.random.Generator, list, str], Degraded]


def _codec(suffix: str, codec: str, rate_hz: int, bit_rate: int) -> Maker:
    def make(x, sr, rng, others, tmp):
        return Degraded(None, sr, encode(x, sr, os.path.join(tmp, f"take.{suffix}"), codec, rate_hz, bit_rate))
    return make


def _silence(x, sr, rng, others, tmp):
    before, after = int(2.8 * sr), int(2.0 * sr)
    return Degraded(np.concatenate([np.zeros(before, np.float32), x, np.zeros(after, np.float32)]),
                    sr, shift_s=before / sr)


def _noise(kind: str, snr_db: float) -> Maker:
    def make(x, sr, rng, others, tmp):
        n = pink_noise(len(x), rng) if kind == "pink" else babble_noise(len(x), others, rng)
        return Degraded(at_snr(x, n, sr, snr_db), sr)
    return make


def _room(rt60_s: float, early: bool = False) -> Maker:
    def make(x, sr, rng, others, tmp):
        return Degraded(in_room(x, sr, rt60_s, rng, early), sr)
    return make


def _telephone(x, sr, rng, others, tmp):
    y, rate = telephone(x, sr)
    return Degraded(y, rate)


CONDITIONS: dict[str, Maker] = {
    "clean": lambda x, sr, rng, others, tmp: Degraded(x, sr),
    "silence": _silence,
    "gain-24": lambda x, sr, rng, others, tmp: Degraded((x * 10 ** (-24 / 20)).astype(np.float32), sr),
    "aac": _codec("m4a", "aac", 44100, 64000),
    "opus": _codec("webm", "libopus", 48000, 24000),
    "mp3": _codec("mp3", "libmp3lame", 44100, 64000),
    "amr-nb": _codec("amr", "libopencore_amrnb", 8000, 12200),
    "pink-20": _noise("pink", 20.0),
    "pink-10": _noise("pink", 10.0),
    "babble-20": _noise("babble", 20.0),
    "babble-10": _noise("babble", 10.0),
    "room-0.4": _room(0.4),
    "room-0.8": _room(0.8),
    "room-early-0.4": _room(0.4, early=True),
    "room-early-0.8": _room(0.8, early=True),
    "telephone": _telephone,
}


# ---- measuring -----------------------------------------------------------------------------------

@dataclass
class Result:
    """One take under one condition."""

    scores: tuple[float, float, float]  # COn, COnP, COnPOff
    key: tuple[str, str]
    meter: tuple[int, int]
    tempo_bpm: float
    tuning_cents: float
    proc_s: float
    audio_s: float
    n_notes: int
    even: bool = False
    notes: list = field(default_factory=list)


def scores(ref_iv, ref_midi, est_iv, est_midi) -> tuple[float, float, float]:
    """COn, COnP, COnPOff (mir_eval, as benchmarks/transcription.py)."""
    from transcription import scores as transcription_scores

    return transcription_scores(ref_iv, ref_midi, est_iv, est_midi)


def run_take(args) -> dict[str, Result]:
    """Transcribe one take under every condition asked for."""
    flac, txt, even, names, other_paths, seed = args
    warnings.filterwarnings("ignore")
    from hum2band.files.audio import decode, write_wav
    from hum2band.listen.transcription import transcribe

    audio = decode(flac, sample_rate_hz=None)
    x, sr = audio.samples, audio.sample_rate_hz
    others = [decode(p, sample_rate_hz=16000).samples for p in other_paths] \
        if any(n.startswith("babble") for n in names) else []
    ref = np.loadtxt(txt, ndmin=2)
    out = {}
    for name in names:
        rng = np.random.default_rng([seed, sum(map(ord, name))])
        with tempfile.TemporaryDirectory() as tmp:
            d = CONDITIONS[name](x, sr, rng, others, tmp)
            # Every condition arrives as a file and is decoded (and resampled) the same way.
            path = d.path or os.path.join(tmp, "take.wav")
            if d.path is None:
                write_wav(path, d.samples, d.sample_rate_hz, float32=True)
            t = time.perf_counter()
            m = transcribe(path)
            proc_s = time.perf_counter() - t
        est_iv = np.array([[n.onset_s, n.offset_s] for n in m.notes]).reshape(-1, 2) - d.shift_s
        est_midi = np.array([n.midi_pitch for n in m.notes])
        out[name] = Result(scores(ref[:, :2], ref[:, 2], est_iv, est_midi), (m.key.tonic, m.key.mode),
                           tuple(m.rhythm.meter), float(m.rhythm.tempo_bpm), float(m.tuning_cents),
                           proc_s, m.duration_s, len(m.notes), even,
                           [(a, b, p) for (a, b), p in zip(est_iv, est_midi)])
    return out


def select_takes(folder: Path, n_takes: int) -> list[tuple[Path, Path, bool]]:
    """(flac, txt, even position) of ``n_takes`` takes spread evenly over the sorted SSVD list,
    the ``man*`` takes left out."""
    every = sorted(f for f in folder.glob("*.flac") if f.with_suffix(".txt").exists())
    position = {f: i for i, f in enumerate(every)}
    usable = [f for f in every if not f.name.startswith("man")]
    idx = np.unique(np.round(np.linspace(0, len(usable) - 1, min(n_takes, len(usable)))).astype(int))
    return [(usable[i], usable[i].with_suffix(".txt"), position[usable[i]] % 2 == 0) for i in idx]


def _wrap_cents(c: float, period: float = 100.0) -> float:
    return (c + period / 2) % period - period / 2


def changed(clean: Result, other: Result) -> np.ndarray:
    """[key, meter, tempo, tuning, tuning wrapped] changed against the clean take (0/1).

    A singer near half a semitone off A440 can be read +49 or -49 cents: the same pitches, named
    a semitone apart, with the band tuned to match. So the tuning is compared on the circle of 100
    cents, and the key by its sounding tonic (tonic plus tuning, on the circle of 1200 cents) and
    its mode; how often the tuning wrapped is counted on its own.
    """
    from hum2band.music.key import TONIC_PITCH_CLASS

    def sounding(r: Result) -> float:
        return 100.0 * TONIC_PITCH_CLASS[r.key[0].upper()] + r.tuning_cents

    key = clean.key[1] != other.key[1] or abs(_wrap_cents(sounding(other) - sounding(clean), 1200.0)) > 50.0
    return np.array([key, clean.meter != other.meter,
                     abs(other.tempo_bpm / clean.tempo_bpm - 1.0) > TEMPO_CHANGE,
                     abs(_wrap_cents(other.tuning_cents - clean.tuning_cents)) > TUNING_CHANGE_CENTS,
                     abs(other.tuning_cents - clean.tuning_cents) > 50.0], dtype=int)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("HUM2BAND_DATA", str(ROOT / ".." / "shared" / "data")))
    ap.add_argument("--takes", type=int, default=24, help="how many takes (default 24)")
    ap.add_argument("--parity", choices=("all", "even", "odd"), default="all",
                    help="only the even- or odd-numbered of the selected takes")
    ap.add_argument("--conditions", default="all", help="comma-separated names (clean is always run)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="one line per take and condition that changed")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    folder = Path(args.data) / "ssvd-dev"
    # each take keeps its place in the whole selection: its noise, room and babble draws are
    # seeded by it, so a --parity run draws what the all-takes run draws for the same take
    takes = list(enumerate(select_takes(folder, args.takes)))
    if args.parity != "all":
        takes = [(i, t) for i, t in takes if t[2] == (args.parity == "even")]
    if not takes:
        print(f"no SSVD takes under {folder}: pass --data or set HUM2BAND_DATA", file=sys.stderr)
        return 2
    names = list(CONDITIONS) if args.conditions == "all" else \
        ["clean"] + [c for c in args.conditions.split(",") if c and c != "clean"]
    unknown = [c for c in names if c not in CONDITIONS]
    if unknown:
        print(f"unknown condition {unknown[0]}: choose from {', '.join(CONDITIONS)}", file=sys.stderr)
        return 2
    if "amr-nb" in names and not amr_available():
        print("amr-nb: skipped, this FFmpeg does not encode AMR-NB")
        names.remove("amr-nb")
    every = sorted(f for f in folder.glob("*.flac") if not f.name.startswith("man"))
    jobs = []
    for i, (flac, txt, even) in takes:
        rng = np.random.default_rng([args.seed, i])
        pool = [f for f in every if f != flac]
        other = [pool[k] for k in rng.choice(len(pool), size=6, replace=False)]
        jobs.append((str(flac), str(txt), even, names, [str(p) for p in other], args.seed + i))
    if args.jobs > 1:
        from multiprocessing import Pool

        with Pool(args.jobs) as p:
            results = p.map(run_take, jobs, chunksize=1)
    else:
        results = [run_take(j) for j in jobs]

    n = len(results)
    print(f"SSVD takes: {n} ({sum(t[2] for _, t in takes)} even, {sum(not t[2] for _, t in takes)} odd) "
          f"from {folder}; man1_*/man2_* left out (annotation ~1.1 semitones above the sung pitch)")
    head = (f"{'condition':12s} {'COn':>6s} {'COnP':>6s} {'COnPOff':>8s} {'dCOnP':>7s} {'dOff':>7s} "
            f"{'Off even':>8s} {'Off odd':>8s} {'key':>5s} {'meter':>5s} {'tempo':>5s} {'tuning':>6s} {'RTF':>6s} {'wrapped':>7s}")
    print(head)
    clean = np.array([r["clean"].scores for r in results]).mean(axis=0)
    even = np.array([r["clean"].even for r in results])
    for name in names:
        rows = np.array([r[name].scores for r in results])
        c = rows.mean(axis=0)
        ch = np.sum([changed(r["clean"], r[name]) for r in results], axis=0)
        rtf = sum(r[name].proc_s for r in results) / sum(r[name].audio_s for r in results)
        off_even = rows[even, 2].mean() if even.any() else float("nan")
        off_odd = rows[~even, 2].mean() if (~even).any() else float("nan")
        print(f"{name:12s} {c[0]:6.3f} {c[1]:6.3f} {c[2]:8.3f} {c[1] - clean[1]:+7.3f} {c[2] - clean[2]:+7.3f} "
              f"{off_even:8.3f} {off_odd:8.3f} {ch[0]:>2d}/{n:<2d} {ch[1]:>2d}/{n:<2d} {ch[2]:>2d}/{n:<2d} "
              f"{ch[3]:>3d}/{n:<2d} {rtf:6.3f} {ch[4]:>4d}/{n:<2d}")
    print(TARGETS)
    if args.verbose:
        for (_, (flac, _, _)), r in zip(takes, results):
            for name in names:
                ch = changed(r["clean"], r[name])
                if name != "clean" and (ch.any() or r["clean"].scores[1] - r[name].scores[1] > 0.05):
                    c, o = r["clean"], r[name]
                    print(f"  {flac.stem:6s} {name:10s} COnP {c.scores[1]:.2f}->{o.scores[1]:.2f} "
                          f"Off {c.scores[2]:.2f}->{o.scores[2]:.2f} notes {c.n_notes}->{o.n_notes} "
                          f"key {' '.join(c.key)}->{' '.join(o.key)} meter {c.meter}->{o.meter} "
                          f"tempo {c.tempo_bpm:.0f}->{o.tempo_bpm:.0f} tuning {c.tuning_cents:+.0f}->{o.tuning_cents:+.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
