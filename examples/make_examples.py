"""Make the shipped example takes: public-domain melodies sung by :mod:`hum2band.train.synth`.

Every example is deterministic (fixed seeds): the melody is written out below by hand as
(pitch, length in quarter notes) pairs, laid on a score grid at its tempo, performed with a
drifting tempo, phrase rubato and per-note jitter (:func:`hum2band.train.synth.humanize_timing`), sung
with a hand-picked :class:`~hum2band.train.synth.SingerStyle` and encoded with PyAV like a phone
would record it. Beside each audio file go

* ``NAME.notes.txt``: one sung note per line, ``onset_s<TAB>offset_s<TAB>midi_pitch`` (the median
  sung pitch as fractional MIDI, tuning offset included, like the SSVD annotations);
* ``NAME.truth.json``: tempo_bpm, meter, key (tonic, mode), tuning_cents, beats and downbeats in
  seconds of the audio, the score pitches of the notes and the singer style.

Run from the project root::

    .venv/bin/python examples/make_examples.py              # rewrite examples/
    .venv/bin/python examples/make_examples.py --out DIR    # somewhere else
    .venv/bin/python examples/make_examples.py --no-audio   # only the .notes.txt / .truth.json

The melodies (all traditional or long out of copyright, hence public domain):

* *Twinkle, Twinkle, Little Star* ("Ah ! vous dirai-je, maman", French, 1761), 4/4, whole tune;
* *Ode to Joy* (Beethoven, Symphony No. 9, 1824), 4/4, the first eight bars;
* *Amazing Grace* (hymn tune "New Britain", 1829), 3/4, its first phrase and closing phrase;
* *Row, Row, Row Your Boat* (E. O. Lyte, 1852), 6/8, the round's melody once.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hum2band.music.melody import Note  # noqa: E402
from hum2band.music.meter import beats_per_bar, quarter_notes_per_beat  # noqa: E402
from hum2band.train import synth  # noqa: E402

HERE = Path(__file__).resolve().parent

_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_number(name: str) -> int:
    """MIDI number of a pitch name like ``"F#4"``, ``"Bb3"``, ``"Eb4"`` (C4 = 60)."""
    step, rest = name[0].upper(), name[1:]
    alter = 0
    while rest and rest[0] in "#b":
        alter += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    return 12 * (int(rest) + 1) + _STEPS[step] + alter


@dataclass
class Tune:
    """A melody as written: pitch names with lengths in quarter notes.

    Attributes
    ----------
    name : str
        File stem of the example.
    title : str
    audio_format : str
        ``"wav"``, ``"m4a"``, ``"opus"`` or ``"mp3"``.
    meter : tuple of int
    tempo_bpm : float
        Nominal tempo in counted beats per minute (dotted quarters in 6/8).
    key_tonic, key_mode : str
    pickup_beats : int
        Counted beats before the first bar line.
    melody : list of (str, float)
        (pitch name, quarter notes); ``"r"`` is a rest.
    style : SingerStyle
    seed : int
    tempo_drift : float
        Peak slow tempo deviation (log ratio) for :func:`hum2band.train.synth.humanize_timing`.
    tempo_trend : float
        Tempo change from start to end as a fraction.
    onset_jitter_s : float
    """

    name: str
    title: str
    audio_format: str
    meter: tuple
    tempo_bpm: float
    key_tonic: str
    key_mode: str
    pickup_beats: int
    melody: list
    style: synth.SingerStyle
    seed: int
    tempo_drift: float = 0.03
    tempo_trend: float = 0.0
    onset_jitter_s: float = 0.015
    phrase_rubato: float = 0.15
    ritardando: float = 0.12
    lead_in_s: float = 0.8
    tail_s: float = 1.0
    extra: dict = field(default_factory=dict)


def _m(text: str) -> list:
    """Parse ``"D4:1 A4:0.5 r:1"`` into [(name, quarter notes), ...]."""
    out = []
    for tok in text.split():
        name, q = tok.split(":")
        out.append((name, float(Fraction(q))))
    return out


TUNES = [
    Tune(
        name="twinkle", title="Twinkle, Twinkle, Little Star", audio_format="wav",
        meter=(4, 4), tempo_bpm=132.0, key_tonic="D", key_mode="major", pickup_beats=0,
        melody=_m(
            "D4:1 D4:1 A4:1 A4:1 B4:1 B4:1 A4:2 G4:1 G4:1 F#4:1 F#4:1 E4:1 E4:1 D4:2 "
            "A4:1 A4:1 G4:1 G4:1 F#4:1 F#4:1 E4:2 A4:1 A4:1 G4:1 G4:1 F#4:1 F#4:1 E4:2 "
            "D4:1 D4:1 A4:1 A4:1 B4:1 B4:1 A4:2 G4:1 G4:1 F#4:1 F#4:1 E4:1 E4:1 D4:2"),
        style=synth.SingerStyle(
            vowel="a", consonant="l", tuning_cents=-25.0, tuning_drift_cents=-8.0,
            note_error_cents=8.0, vibrato_rate_hz=5.6, vibrato_depth_cents=22.0,
            vibrato_delay_s=0.2, scoop_cents=-40.0, scoop_s=0.1, portamento=0.08,
            pitch_jitter_cents=13.0, breathiness=0.06, legato=0.82, attack_s=0.03,
            release_s=0.05, formant_scale=1.15, brightness_hz=2600.0, breath_probability=0.8,
            reverb_s=0.3, reverb_mix=0.08, highpass_hz=100.0, peak_dbfs=-4.0, noise_db=-50.0),
        seed=101, tempo_drift=0.03, tempo_trend=0.03),
    Tune(
        name="ode_to_joy", title="Ode to Joy (Beethoven)", audio_format="m4a",
        meter=(4, 4), tempo_bpm=108.0, key_tonic="D", key_mode="major", pickup_beats=0,
        melody=_m(
            "F#3:1 F#3:1 G3:1 A3:1 A3:1 G3:1 F#3:1 E3:1 D3:1 D3:1 E3:1 F#3:1 F#3:3/2 E3:1/2 E3:2 "
            "F#3:1 F#3:1 G3:1 A3:1 A3:1 G3:1 F#3:1 E3:1 D3:1 D3:1 E3:1 F#3:1 E3:3/2 D3:1/2 D3:2"),
        style=synth.SingerStyle(
            vowel="m", consonant="", tuning_cents=18.0, tuning_drift_cents=6.0,
            note_error_cents=10.0, vibrato_rate_hz=5.0, vibrato_depth_cents=8.0,
            vibrato_delay_s=0.25, scoop_cents=-30.0, scoop_s=0.12, portamento=0.1,
            pitch_jitter_cents=14.0, breathiness=0.12, legato=0.8, attack_s=0.04,
            release_s=0.06, formant_scale=1.0, brightness_hz=1000.0, breath_probability=0.6,
            reverb_s=0.25, reverb_mix=0.06, highpass_hz=80.0, peak_dbfs=-3.0, noise_db=-46.0),
        seed=202, tempo_drift=0.04, tempo_trend=-0.03),
    Tune(
        name="amazing_grace", title="Amazing Grace (New Britain)", audio_format="opus",
        meter=(3, 4), tempo_bpm=80.0, key_tonic="G", key_mode="major", pickup_beats=1,
        melody=_m(
            "D4:1 G4:2 B4:1/2 G4:1/2 B4:2 A4:1 G4:2 E4:1 D4:2 "
            "D4:1 G4:2 B4:1/2 G4:1/2 B4:2 A4:1 G4:3"),
        style=synth.SingerStyle(
            vowel="o", consonant="n", tuning_cents=-35.0, tuning_drift_cents=-10.0,
            note_error_cents=10.0, vibrato_rate_hz=5.2, vibrato_depth_cents=35.0,
            vibrato_delay_s=0.22, scoop_cents=-50.0, scoop_s=0.14, portamento=0.12,
            pitch_jitter_cents=12.0, breathiness=0.08, legato=0.9, attack_s=0.05,
            release_s=0.07, formant_scale=1.12, brightness_hz=2000.0, breath_probability=0.9,
            reverb_s=0.45, reverb_mix=0.12, highpass_hz=120.0, peak_dbfs=-5.0, noise_db=-52.0),
        seed=303, tempo_drift=0.05, tempo_trend=-0.02, phrase_rubato=0.3, ritardando=0.25,
        onset_jitter_s=0.02),
    Tune(
        name="row_your_boat", title="Row, Row, Row Your Boat", audio_format="mp3",
        meter=(6, 8), tempo_bpm=66.0, key_tonic="Eb", key_mode="major", pickup_beats=0,
        melody=_m(
            "Eb3:3/2 Eb3:3/2 Eb3:1 F3:1/2 G3:3/2 G3:1 F3:1/2 G3:1 Ab3:1/2 Bb3:3 "
            "Eb4:1/2 Eb4:1/2 Eb4:1/2 Bb3:1/2 Bb3:1/2 Bb3:1/2 G3:1/2 G3:1/2 G3:1/2 "
            "Eb3:1/2 Eb3:1/2 Eb3:1/2 Bb3:1 Ab3:1/2 G3:1 F3:1/2 Eb3:3"),
        style=synth.SingerStyle(
            vowel="u", consonant="d", tuning_cents=12.0, tuning_drift_cents=10.0,
            note_error_cents=12.0, vibrato_rate_hz=5.8, vibrato_depth_cents=12.0,
            vibrato_delay_s=0.2, scoop_cents=-30.0, scoop_s=0.08, portamento=0.05,
            pitch_jitter_cents=12.0, breathiness=0.05, legato=0.75, attack_s=0.02,
            release_s=0.04, formant_scale=1.0, brightness_hz=2200.0, breath_probability=0.5,
            reverb_s=0.2, reverb_mix=0.05, highpass_hz=90.0, peak_dbfs=-2.0, noise_db=-44.0),
        seed=404, tempo_drift=0.03, tempo_trend=0.04),
]

#: (container format, codec, sample rate, bit rate) per audio format.
ENCODINGS = {
    "wav": ("wav", "pcm_s16le", 22050, None),
    "m4a": ("mp4", "aac", 44100, 48_000),
    "opus": ("ogg", "libopus", 48000, 24_000),
    "mp3": ("mp3", "libmp3lame", 44100, 48_000),
}


@dataclass
class ExampleTake:
    """A rendered example: audio plus ground truth.

    Attributes
    ----------
    samples : np.ndarray, shape (n,), float32
    sample_rate_hz : int
    notes : list of Note
        As sung (onset, sounded offset, median sung pitch); ``midi`` = score pitch.
    beats_s, downbeats_s : np.ndarray
    tempo_bpm : float
        Median performed tempo in counted beats per minute.
    """

    samples: np.ndarray
    sample_rate_hz: int
    notes: list
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    tempo_bpm: float


def score(tune: Tune) -> tuple[list[Note], np.ndarray, np.ndarray]:
    """The tune at its nominal tempo: notes, beats and downbeats in score seconds.

    The first counted beat (the pickup, if any) falls at ``tune.lead_in_s``; beats run to the
    end of the last bar. Velocity: 90 on downbeats, 80 on other beats, 72 off the beat.
    """
    qpb = quarter_notes_per_beat(tune.meter)
    beat_s = 60.0 / tune.tempo_bpm
    quarter_s = beat_s / qpb
    bpb = beats_per_bar(tune.meter)
    notes = []
    pos_q = 0.0
    for name, q in tune.melody:
        if name != "r":
            beat_pos = pos_q / qpb
            on_beat = abs(beat_pos - round(beat_pos)) < 1e-6
            downbeat = on_beat and (int(round(beat_pos)) - tune.pickup_beats) % bpb == 0
            vel = 90 if downbeat else (80 if on_beat else 72)
            p = float(note_number(name))
            notes.append(Note(tune.lead_in_s + pos_q * quarter_s,
                              tune.lead_in_s + (pos_q + q) * quarter_s, p, int(p), vel))
        pos_q += q
    total_beats = pos_q / qpb
    n_bars = int(np.ceil((total_beats - tune.pickup_beats) / bpb - 1e-9))
    n_beats = tune.pickup_beats + n_bars * bpb
    beats = tune.lead_in_s + np.arange(n_beats) * beat_s
    downbeats = beats[tune.pickup_beats::bpb]
    return notes, beats, downbeats


def build_take(tune: Tune) -> ExampleTake:
    """Perform and sing ``tune`` at the sample rate of its audio format."""
    notes, beats, downbeats = score(tune)
    perf = synth.humanize_timing(notes, beats, tempo_drift=tune.tempo_drift,
                                 tempo_trend=tune.tempo_trend, onset_jitter_s=tune.onset_jitter_s,
                                 phrase_rubato=tune.phrase_rubato, ritardando=tune.ritardando,
                                 seed=tune.seed)
    w_beats = perf.beats_s
    w_down = perf.warp(downbeats)
    duration_s = max(n.offset_s for n in perf.notes) + tune.tail_s
    sr = ENCODINGS[tune.audio_format][2]
    take = synth.render(perf.notes, sr, tune.style, tune.seed, duration_s=duration_s)
    tempo = 60.0 / float(np.median(np.diff(w_beats)))
    return ExampleTake(take.samples, sr, take.notes, w_beats, w_down, tempo)


def notes_text(notes) -> str:
    """``onset_s<TAB>offset_s<TAB>midi_pitch`` lines, SSVD style."""
    return "".join(f"{n.onset_s:.4f}\t{n.offset_s:.4f}\t{n.midi_pitch:.3f}\n" for n in notes)


def truth_json(tune: Tune, take: ExampleTake) -> dict:
    return {
        "title": tune.title,
        "audio": f"{tune.name}.{tune.audio_format}",
        "sample_rate_hz": take.sample_rate_hz,
        "duration_s": round(len(take.samples) / take.sample_rate_hz, 4),
        "tempo_bpm": round(take.tempo_bpm, 2),
        "meter": [int(tune.meter[0]), int(tune.meter[1])],
        "key": {"tonic": tune.key_tonic, "mode": tune.key_mode},
        "tuning_cents": round(float(tune.style.tuning_cents), 2),
        "beats": [round(float(b), 4) for b in take.beats_s],
        "downbeats": [round(float(b), 4) for b in take.downbeats_s],
        "notes_midi": [int(n.midi) for n in take.notes],
        "synth_seed": tune.seed,
        "style": {k: (round(v, 4) if isinstance(v, float) else v)
                  for k, v in asdict(tune.style).items()},
        "license": "MIT (hum2band); melody public domain",
    }


def encode(path: Path, samples: np.ndarray, sample_rate_hz: int, audio_format: str) -> None:
    """Write mono float samples with PyAV in the container and codec of ``audio_format``."""
    import av

    container_format, codec, sr, bit_rate = ENCODINGS[audio_format]
    if sr != sample_rate_hz:
        raise ValueError(f"{audio_format} wants {sr} Hz, got {sample_rate_hz} Hz")
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        step = 4096
        for start in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + step], format="s16",
                                               layout="mono")
            frame.sample_rate = sr
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(path)


def write_example(tune: Tune, out_dir: Path, audio: bool = True) -> ExampleTake:
    """Render ``tune`` and write its audio (optional), notes and truth into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    take = build_take(tune)
    (out_dir / f"{tune.name}.notes.txt").write_text(notes_text(take.notes))
    (out_dir / f"{tune.name}.truth.json").write_text(json.dumps(truth_json(tune, take), indent=1) + "\n")
    if audio:
        encode(out_dir / f"{tune.name}.{tune.audio_format}", take.samples, take.sample_rate_hz,
               tune.audio_format)
    return take


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: examples/)")
    ap.add_argument("--no-audio", action="store_true", help="write only notes and truth files")
    args = ap.parse_args(argv)
    for tune in TUNES:
        take = write_example(tune, args.out, audio=not args.no_audio)
        print(f"{tune.name}: {len(take.samples) / take.sample_rate_hz:.1f} s, "
              f"{len(take.notes)} notes, {take.tempo_bpm:.1f} bpm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
