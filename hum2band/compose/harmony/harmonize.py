"""Chords for a melody with the trained harmony transformer (``models/harmony.pt``).

Entry points
------------
* :func:`harmonize` -- a melody (:class:`MelodyScore`, a :class:`hum2band.music.leadsheet.LeadSheet` or a
  transcribed :class:`hum2band.music.melody.Melody`) to chord spans on its beat grid.
* :func:`read_melody` -- a MIDI (``.mid``/``.midi``) or MusicXML (``.xml``/``.musicxml``/``.mxl``)
  melody with the file's own tempo map, time signature and key signature.
* :func:`harmonize_file` / :func:`harmonize_files` -- melody files to one ``DIR/NAME.json`` each::

      {"key": "A minor", "meter": [4, 4],
       "chords": [{"start": 0.0, "end": 2.0, "start_beat": 0.0, "end_beat": 4.0,
                   "chord": "A:min7", "label": "Am7"}, ...]}

  ``start``/``end`` are seconds of the input file, ``*_beat`` counted beats from the first bar
  line (a pickup bar counts as bar 0), ``chord`` is Harte syntax.

Times: beats are counted beats (:func:`hum2band.music.meter.beats_per_bar`); bar ``k`` spans beats
``[k * bpb, (k + 1) * bpb)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError, OptionError
from ...files.paths import MODELS_DIR
from ...music.chords import ChordSymbol, parse_chord_line
from ...music.key import Key
from ...music.leadsheet import BeatNote, ChordSpan, monophonic, seconds_to_beats
from ...music.meter import beats_per_bar, quarter_notes_per_beat
from ...music.musicxml import read_musicxml

#: Default weights; ``HUM2BAND_HARMONY_MODEL`` overrides.
DEFAULT_MODEL_PATH = MODELS_DIR / "harmony.pt"
#: Sampling used when the caller gives none: the root and major/minor family of each chord is the
#: model's most likely one; its exact quality (7th, 6th, sus...) and bass are drawn from the model's
#: own distribution (temperature 1, top-p 0.95), seeded, so chords get their colour without
#: changing the harmony (see models/README.md for what that does to the metrics).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 0.95


@dataclass
class MelodyScore:
    """A melody on a beat grid, with what is needed to go back to seconds.

    Attributes
    ----------
    notes : list of BeatNote
        Monophonic, counted beats from the first bar line.
    meter : tuple of int
    key : Key or None
        From the file's key signature; None lets the harmonizer estimate it.
    tempo_bpm : float
        Counted beats per minute (the first tempo of the file).
    beat_times_s : np.ndarray, shape (n,)
        Seconds of beats 0, 1, ..., n-1 (counted beats); times past the end are extrapolated.
    name : str
    """

    notes: list[BeatNote]
    meter: tuple
    key: Key | None
    tempo_bpm: float
    beat_times_s: np.ndarray
    name: str = ""

    @property
    def beats_per_bar(self) -> int:
        return beats_per_bar(self.meter)

    @property
    def end_beat(self) -> float:
        return max([n.offset_beat for n in self.notes] + [0.0])

    def beat_to_seconds(self, beat: float) -> float:
        bt = self.beat_times_s
        if len(bt) < 2:
            return float(beat) * 60.0 / self.tempo_bpm
        idx = np.arange(len(bt), dtype=float)
        if beat < 0:
            return float(bt[0] + beat * (bt[1] - bt[0]))
        if beat > idx[-1]:
            return float(bt[-1] + (beat - idx[-1]) * (bt[-1] - bt[-2]))
        return float(np.interp(beat, idx, bt))


# ---- readers -------------------------------------------------------------------------------
def _constant_grid(tempo_bpm: float, end_beat: float, offset_s: float = 0.0) -> np.ndarray:
    n = int(math.ceil(end_beat)) + 2
    return offset_s + np.arange(n) * 60.0 / tempo_bpm


def read_midi_melody(path: str | os.PathLike) -> MelodyScore:
    """The melody of a MIDI file on its own tempo map and time signature.

    The melody track is the first non-drum instrument named like melody/vocal/lead/voice, else
    the non-drum instrument with the most notes; it is made monophonic (highest note on shared
    onsets). The meter is the time signature in force longest; its bar lines set beat 0.
    """
    import pretty_midi

    p = Path(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(p))
    except Exception as exc:
        raise InputError(f"{p} is not a MIDI file I can read ({exc}): export the melody as a .mid file") from None
    insts = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not insts:
        raise InputError(f"{p} has no melody notes: it needs one non-drum track with notes")
    named = [i for i in insts if any(w in i.name.lower() for w in ("melody", "vocal", "lead", "voice", "sing"))]
    inst = named[0] if named else max(insts, key=lambda i: len(i.notes))
    end_s = pm.get_end_time()
    # Meter: the time signature in force for the longest time.
    tss = sorted(pm.time_signature_changes, key=lambda t: t.time)
    if tss:
        lens = [((tss[i + 1].time if i + 1 < len(tss) else end_s) - t.time) for i, t in enumerate(tss)]
        main = tss[int(np.argmax(lens))]
        meter, meter_t = (main.numerator, main.denominator), main.time
    else:
        meter, meter_t = (4, 4), 0.0
    qpb = quarter_notes_per_beat(meter)
    bpb = beats_per_bar(meter)
    res = float(pm.resolution)

    def quarters(t_s: np.ndarray) -> np.ndarray:
        return np.array([pm.time_to_tick(float(t)) for t in np.atleast_1d(t_s)]) / res

    bar_q = bpb * qpb
    q0 = float(quarters(np.array([meter_t]))[0])
    origin_q = q0 - math.ceil(q0 / bar_q - 1e-9) * bar_q if q0 > 0 else q0  # a bar line at or before 0
    on_q = quarters(np.array([n.start for n in inst.notes]))
    off_q = quarters(np.array([n.end for n in inst.notes]))
    notes = [BeatNote(float((a - origin_q) / qpb), float((b - origin_q) / qpb), int(n.pitch), int(n.velocity))
             for a, b, n in zip(on_q, off_q, inst.notes)]
    notes = monophonic(notes)
    if not notes:
        raise InputError(f"{p} has no melody notes")
    tempi_t, tempi = pm.get_tempo_changes()
    tempo_q = float(tempi[0]) if len(tempi) else 120.0
    end_beat = max(n.offset_beat for n in notes) + 2 * bpb
    beat_ticks = [(origin_q + k * qpb) * res for k in range(int(math.ceil(end_beat)) + 2)]
    spq0 = 60.0 / tempo_q
    beat_s = np.array([pm.tick_to_time(int(round(t))) if t >= 0 else (t / res) * spq0 for t in beat_ticks])
    key = None
    if pm.key_signature_changes:
        kn = pm.key_signature_changes[0].key_number
        key = Key(("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[kn % 12],
                  "major" if kn < 12 else "minor", 1.0)
    return MelodyScore(notes, meter, key, tempo_q / qpb, beat_s, p.stem)


def read_musicxml_melody(path: str | os.PathLike) -> MelodyScore:
    """The melody of a MusicXML score (first voice of the first part with notes), its first time
    signature, key signature and first tempo (120 quarter notes a minute if it gives none)."""
    p = Path(path)
    try:
        score = read_musicxml(p)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{p} is not a MusicXML score I can read ({exc})") from None
    meter = score.meter
    qpb = quarter_notes_per_beat(meter)
    bpb = beats_per_bar(meter)
    shift = (bpb - score.pickup_q / qpb) if score.pickup_q > 0 else 0.0
    notes = monophonic([BeatNote(n.onset_beat / qpb + shift, n.offset_beat / qpb + shift, n.midi)
                         for n in score.notes])
    if not notes:
        raise InputError(f"{p} has no melody notes")
    tempo = (score.tempo_bpm_quarter or 120.0) / qpb
    grid = _constant_grid(tempo, max(n.offset_beat for n in notes) + 2 * bpb, -shift * 60.0 / tempo)
    return MelodyScore(notes, meter, score.key, tempo, grid, p.stem)


def read_melody(path: str | os.PathLike) -> MelodyScore:
    """Read a MIDI or MusicXML melody (by file extension).

    Raises
    ------
    InputError
        Missing file, unknown extension, unreadable file or no notes.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist: give a MIDI (.mid) or MusicXML (.xml, .musicxml, .mxl) melody")
    ext = p.suffix.lower()
    if ext in (".mid", ".midi", ".smf"):
        return read_midi_melody(p)
    if ext in (".xml", ".musicxml", ".mxl"):
        return read_musicxml_melody(p)
    raise InputError(f"{p}: '{ext}' is not a melody format I read: use a MIDI (.mid) or MusicXML (.xml, .mxl) file")


def melody_score_of(melody) -> MelodyScore:
    """A :class:`MelodyScore` from a MelodyScore, a LeadSheet or a transcribed Melody."""
    if isinstance(melody, MelodyScore):
        return melody
    if hasattr(melody, "melody") and hasattr(melody, "beats_per_bar"):  # LeadSheet
        return MelodyScore(list(melody.melody), tuple(melody.meter), melody.key, float(melody.tempo_bpm),
                           _constant_grid(melody.tempo_bpm, melody.end_beat + 2 * melody.beats_per_bar),
                           getattr(melody, "song_id", ""))
    if hasattr(melody, "rhythm") and hasattr(melody, "notes"):  # hum2band.music.melody.Melody
        r = melody.rhythm
        beats = np.asarray(r.beats_s, float)
        if len(beats) < 2:
            raise InputError("the take has fewer than two beats: sing a few bars to harmonize")
        downs = np.asarray(r.downbeats_s, float)
        bpb = beats_per_bar(r.meter)
        first_down = int(np.argmin(np.abs(beats - downs[0]))) if len(downs) else 0
        # Beat numbers so that the first downbeat is a multiple of bpb and beat 0 is a bar line.
        first_number = float((bpb - first_down % bpb) % bpb)
        on = seconds_to_beats(np.array([n.onset_s for n in melody.notes]), beats, first_number)
        off = seconds_to_beats(np.array([n.offset_s for n in melody.notes]), beats, first_number)
        notes = monophonic([BeatNote(float(a), float(b), int(n.midi), int(n.velocity))
                             for a, b, n in zip(on, off, melody.notes) if b > a and a >= 0])
        grid_idx = np.arange(int(math.ceil(max(off.max(), 1.0))) + 2 * bpb + 2, dtype=float)
        bt = beats
        ibi = float(np.median(np.diff(bt)))
        # Seconds of beat numbers 0..: interpolate inside the sung grid, extend outside it.
        idx = np.arange(len(bt)) + first_number
        grid = np.interp(grid_idx, idx, bt)
        grid[grid_idx < idx[0]] = bt[0] + (grid_idx[grid_idx < idx[0]] - idx[0]) * ibi
        grid[grid_idx > idx[-1]] = bt[-1] + (grid_idx[grid_idx > idx[-1]] - idx[-1]) * ibi
        return MelodyScore(notes, tuple(r.meter), melody.key, float(r.tempo_bpm), grid, getattr(melody, "source", ""))
    raise OptionError("harmonize() takes a MelodyScore, a LeadSheet or a transcribed Melody")


# ---- the model -----------------------------------------------------------------------------
def load_harmony_model(path: str | os.PathLike | None = None):
    """The harmony transformer (loaded once per path and kept)."""
    from ...files.weights import load_once
    from .model import load_model

    return load_once(path, "HUM2BAND_HARMONY_MODEL", DEFAULT_MODEL_PATH, load_model, "harmony model",
                     "python -m hum2band.train.harmony --out models/")


def locked_spans(locked_chords, beats_per_bar_: int) -> list[tuple[float, float, ChordSymbol]]:
    """Locked chords as spans: a chart string (``"C | Am | F G | C"``, from bar 0) or a list of
    ``(start_beat, end_beat, chord)`` with the chord a :class:`ChordSymbol` or a symbol string."""
    if isinstance(locked_chords, str):
        spans = []
        for b, bar in enumerate(parse_chord_line(locked_chords)):
            step = beats_per_bar_ / len(bar)
            for i, c in enumerate(bar):
                spans.append((b * beats_per_bar_ + i * step, b * beats_per_bar_ + (i + 1) * step, c))
        return spans
    out = []
    for s, e, c in locked_chords:
        out.append((float(s), float(e), c if isinstance(c, ChordSymbol) else ChordSymbol.parse(str(c))))
    return out


def _locked_harmony(spans, n_beats: int, tonic_pc: int):
    """Locked spans on the model's beat grid (beats without a locked chord stay free)."""
    from . import grid as G
    from .model import Harmony

    chord, bass, early = G.chord_targets([s for s in spans if not s[2].is_no_chord], n_beats, tonic_pc)
    return Harmony(chord, np.maximum(bass, 0), np.maximum(early, 0))


def overlay(spans, locked) -> list[tuple[float, float, ChordSymbol]]:
    """``spans`` with the ``locked`` spans laid over them exactly (what they cover is replaced)."""
    out = []
    for s, e, c in spans:
        pieces = [(s, e)]
        for ls, le, _ in locked:
            nxt = []
            for a, z in pieces:
                if le <= a or ls >= z:
                    nxt.append((a, z))
                    continue
                if ls > a:
                    nxt.append((a, ls))
                if le < z:
                    nxt.append((le, z))
            pieces = nxt
        out.extend((a, z, c) for a, z in pieces if z - a > 1e-9)
    out.extend((float(s), float(e), c) for s, e, c in locked if not c.is_no_chord)
    return merge_repeats(sorted(out, key=lambda x: x[0]))


def merge_repeats(spans: list) -> list:
    """Join neighbouring ``(start_beat, end_beat, chord)`` spans of the same chord that touch."""
    merged: list = []
    for s, e, c in spans:
        if merged and merged[-1][2] == c and abs(merged[-1][1] - s) < 1e-6:
            merged[-1] = (merged[-1][0], e, c)
        else:
            merged.append((s, e, c))
    return merged


def harmonize(melody, style: str | None = None, seed: int = 0, temperature: float | None = None,
              top_p: float | None = None, locked_chords=None, model=None,
              key: Key | None = None) -> list[ChordSpan]:
    """Chords for a melody.

    Parameters
    ----------
    melody : MelodyScore, LeadSheet or Melody
    style : str, optional
        One of :data:`hum2band.compose.harmony.grid.STYLES` (e.g. "pop", "folk", "swing"); None lets the
        model choose from the melody alone.
    seed : int
        Same seed, same chords.
    temperature, top_p : float, optional
        Sampling of the chord's exact quality (the root and major/minor family are always the
        model's most likely; see :func:`hum2band.compose.harmony.model.pick_chord`); temperature 0 is
        greedy. Defaults: :data:`DEFAULT_TEMPERATURE`, :data:`DEFAULT_TOP_P`.
    locked_chords : str or list of (start_beat, end_beat, chord), optional
        The user's chords: played exactly where given; the model writes the rest around them.
    model : HarmonyTransformer, optional
        Defaults to :func:`load_harmony_model`.
    key : Key, optional
        Overrides the melody's key (else its key signature, else estimated).

    Returns
    -------
    list of ChordSpan
        ``(start_beat, end_beat, ChordSymbol)``, sorted, repeats merged, covering the melody's bars.
    """
    from . import grid as G
    from .model import generate

    score = melody_score_of(melody)
    bpb = score.beats_per_bar
    if bpb > G.MAX_BEATS_PER_BAR:
        raise OptionError(f"meter {score.meter[0]}/{score.meter[1]} has {bpb} beats a bar: "
                          f"the harmonizer plays up to {G.MAX_BEATS_PER_BAR}")
    try:
        G.style_index(style)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    if not score.notes:
        raise InputError("the melody has no notes to harmonize")
    model = model if model is not None else load_harmony_model()
    k = key or score.key or G.key_of_notes(score.notes)
    n_bars = max(1, int(math.ceil(score.end_beat / bpb - 1e-9)))
    song = G.song_grid(score.notes, score.meter, bpb, k, score.tempo_bpm, style, n_beats=n_bars * bpb)
    locked = locked_spans(locked_chords, bpb) if locked_chords else []
    harmony = generate(model, song, seed=seed,
                       temperature=DEFAULT_TEMPERATURE if temperature is None else float(temperature),
                       top_p=DEFAULT_TOP_P if top_p is None else float(top_p),
                       locked=_locked_harmony(locked, song.n_beats, song.tonic_pc) if locked else None)
    spans = G.grid_to_spans(harmony.chord, harmony.bass, harmony.early, song.tonic_pc)
    if locked:
        spans = overlay(spans, locked)
    return [ChordSpan(float(s), float(e), c) for s, e, c in spans]


def chords_json(score: MelodyScore, spans: Sequence[ChordSpan], key: Key | None = None) -> dict:
    """The ``NAME.json`` object for a harmonized melody (see the module docstring)."""
    k = key or score.key
    chords = []
    for s, e, c in spans:
        start_s, end_s = score.beat_to_seconds(s), score.beat_to_seconds(e)
        if end_s <= 0.0:
            continue
        if start_s < 0.0:
            # A pickup bar whose bar line lies before the file starts: the chord sounds from
            # the start of the file (its bar position stays in start_beat).
            start_s = 0.0
        chords.append({"start": round(start_s, 4), "end": round(end_s, 4),
                       "start_beat": round(float(s), 4), "end_beat": round(float(e), 4),
                       "chord": c.harte, "label": c.label})
    return {
        "key": f"{k.tonic} {k.mode}" if k is not None else None,
        "meter": [int(score.meter[0]), int(score.meter[1])],
        "chords": chords,
    }


def harmonize_file(path: str | os.PathLike, out_dir: str | os.PathLike, style: str | None = None,
                   seed: int = 0, temperature: float | None = None, top_p: float | None = None,
                   locked_chords=None, model=None, name: str | None = None) -> Path:
    """Harmonize one melody file into ``out_dir/NAME.json`` (``name`` defaults to the file stem).

    The JSON is written to ``NAME.json.tmp`` and renamed, so an existing output is complete.

    Raises
    ------
    InputError, OptionError
        One-line messages (missing/unreadable file, no notes, unknown style, missing model).
    """
    from . import grid as G

    try:
        G.style_index(style)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    score = read_melody(path)
    model = model if model is not None else load_harmony_model()
    k = score.key or G.key_of_notes(score.notes)
    spans = harmonize(score, style=style, seed=seed, temperature=temperature, top_p=top_p,
                      locked_chords=locked_chords, model=model, key=k)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{name or score.name or 'melody'}.json"
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_text(json.dumps(chords_json(score, spans, k), indent=1) + "\n")
    tmp.replace(dest)
    return dest


def harmonize_files(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, style: str | None = None,
                    seed: int = 0, temperature: float | None = None, top_p: float | None = None,
                    locked_chords=None, model_path: str | os.PathLike | None = None) -> list[Path]:
    """Harmonize melody files into ``out_dir/NAME.json``, the model loaded once.

    Options and every input are checked before any output is written; two inputs with the same
    stem get ``NAME.json`` and ``NAME-2.json``. Returns the written paths in input order.
    (A command line that wants "one bad file, the others still done" calls
    :func:`harmonize_file` per input instead.)

    Raises
    ------
    InputError, OptionError
    """
    from . import grid as G

    try:
        G.style_index(style)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    for p in paths:
        if not Path(p).is_file():
            raise InputError(f"{p} does not exist: give MIDI (.mid) or MusicXML (.xml, .mxl) melodies")
    model = load_harmony_model(model_path)
    written, stems = [], {}
    for p in paths:
        stem = Path(p).stem
        stems[stem] = stems.get(stem, 0) + 1
        name = stem if stems[stem] == 1 else f"{stem}-{stems[stem]}"
        written.append(harmonize_file(p, out_dir, style, seed, temperature, top_p, locked_chords, model, name))
    return written


def benchmark_harmonizer(lead_sheet) -> list[ChordSpan]:
    """For ``benchmarks/harmony.py``: the shipped model, greedy, the song's own style label and key."""
    from .grid import style_of_leadsheet

    return harmonize(lead_sheet, style=style_of_leadsheet(lead_sheet) or None, seed=0, temperature=0.0)


def benchmark_harmonizer_blind(lead_sheet) -> list[ChordSpan]:
    """As :func:`benchmark_harmonizer` told neither the song's key nor its style: the key is
    estimated from the melody, as for a sung take (like for like with the HMM, which knows neither)."""
    return harmonize(dataclasses.replace(lead_sheet, key=None), style=None, seed=0, temperature=0.0)


def benchmark_harmonizer_sampled(lead_sheet) -> list[ChordSpan]:
    """As :func:`benchmark_harmonizer` with the API's default sampling of the chord qualities
    (:data:`DEFAULT_TEMPERATURE`, :data:`DEFAULT_TOP_P`, seed 0)."""
    from .grid import style_of_leadsheet

    return harmonize(lead_sheet, style=style_of_leadsheet(lead_sheet) or None, seed=0,
                     temperature=DEFAULT_TEMPERATURE, top_p=DEFAULT_TOP_P)
