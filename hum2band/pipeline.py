"""``arrange``: from a take (or a written melody) to a band that follows the singer.

The stages, in order (each one's wall time lands in ``arrangement.json``):

1. ``transcribe`` -- decode the take and turn it into a :class:`~hum2band.music.melody.Melody`
   (or read a MIDI/MusicXML melody on its own tempo map);
2. ``chords`` -- the harmony model writes the chords (or the user's ``--chords`` are locked);
3. ``parts`` -- the accompaniment model writes drums, bass, keys, guitar and pads in the style;
4. ``arrange`` -- the parts go onto the singer's beat grid (seconds of the recording), with the
   style's programs, pans and levels, an optional intro, and an ending that resolves;
5. ``render`` -- FluidSynth renders every part; the take is the lead; the mix is normalised;
6. ``export`` -- ``arrangement.mid``, ``leadsheet.musicxml``, ``pianoroll.png``, ``arrangement.json``.

The take itself is never stretched or re-pitched: the tempo map follows the sung beats and the
band is tuned to the singer (``tuning_cents``). An intro shifts the whole time line by the intro's
length (the vocal stem then starts with that much silence; nothing else about it changes).

:func:`arrange` is the Python API (returns an :class:`ArrangedSong` that can write, render and
export); :func:`arrange_to_folder` is what ``hum2band arrange``, ``hum2band record`` and the web
app run: it writes every output into a temporary folder and moves it into place when complete.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError, OptionError
from .music.arrangement import Arrangement, Part, PartNote, SectionSpan
from .music.arrangement import ChordSpan as TimedChord
from .music.chords import ChordSymbol, parse_chord_line
from .music.key import Key
from .music.melody import Melody, Note
from .music.meter import SUPPORTED_METERS, Rhythm, beats_per_bar

#: Stage names reported to ``progress`` (and keys of ``timings_s``).
STAGES = ("transcribe", "chords", "parts", "arrange", "render", "export")
MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".xml", ".musicxml", ".mxl")
MAX_INTRO_BARS = 8
ENDING_BARS = 1
#: Name of the part that doubles the melody when ``melody_instrument`` is given.
LEAD_PART = "lead"

Progress = Callable[[str, float], None]


@dataclass
class ArrangeOptions:
    """What ``hum2band arrange`` accepts (see ``hum2band arrange --help``).

    Attributes
    ----------
    style : str
        One of :func:`hum2band.music.styles.style_names`.
    tempo_bpm, meter, key : optional
        Overrides of the estimated tempo (counted beats per minute), meter ((4, 4), (3, 4), (6, 8))
        and key ("A minor").
    chords : str, optional
        Locked chords, one bar per ``|``: ``"C | Am | F G | C"`` (common symbols or Harte); the
        model then writes the parts only. Bars after the last given bar are harmonized.
    seed : int
        Same seed, same chords and parts.
    temperature : float, optional
        Sampling temperature of the parts (0 = the model's most likely parts).
    bars : (int, int), optional
        ``(first, last)``, 1-based inclusive: regenerate only these bars of the arrangement in
        ``from_dir`` and keep the rest.
    from_dir : path, optional
        An earlier output folder (with ``arrangement.json``), for ``bars`` or ``section``.
    form : str, optional
        The song's sections named by the user, e.g. ``"A A B A"`` (equal lengths); default: found
        from the melody (:func:`hum2band.compose.form.find_sections`).
    section : int, optional
        1-based: regenerate only this section of the arrangement in ``from_dir`` (its bars).
    intro_bars : int
        Bars the band plays before the singer comes in (0-8).
    soundfont : path, optional
        Any SF2/SF3 file; default: FluidR3_GM, else pretty_midi's TimGM6mb.
    vocal_level_db : float
        dB more (or less) voice than the default balance, where the band sits
        ``hum2band.perform.render.BAND_UNDER_VOICE_LU`` (6 LU) under the take, measured.
    no_vocal : bool
        Leave the take out: the mix and the stems are the band alone.
    melody_instrument : str or int, optional
        A General MIDI instrument (name such as "flute" or program 0-127) that doubles the melody.
    pitch_backend : str
        Pitch tracker for audio takes.
    first_downbeat_s : float, optional
        Known time of bar 1's downbeat in the take (``hum2band record`` with a count-in); with
        ``tempo_bpm`` it replaces beat tracking by a steady grid.
    downbeat_s : float, optional
        A time in the take (s) at which a bar starts: the bar lines are laid through it (audio
        takes only).
    pickup_beats : float, optional
        Counted beats the singer sings before the first bar line (0: the first note is on it;
        0.5: an eighth pickup in 4/4; audio takes only).
    max_minutes : float
        Longer takes are refused.
    """

    style: str = "pop"
    tempo_bpm: float | None = None
    meter: tuple | None = None
    key: str | None = None
    chords: str | None = None
    seed: int = 0
    temperature: float | None = None
    bars: tuple | None = None
    from_dir: str | None = None
    form: str | None = None
    section: int | None = None
    intro_bars: int = 0
    soundfont: str | None = None
    vocal_level_db: float = 0.0
    no_vocal: bool = False
    melody_instrument: str | int | None = None
    pitch_backend: str = "default"
    first_downbeat_s: float | None = None
    max_minutes: float = 15.0
    downbeat_s: float | None = None
    pickup_beats: float | None = None

    def checked(self) -> "ArrangeOptions":
        """A copy with canonical values; raises :class:`OptionError` (one line) on a bad one."""
        from .music.styles import check_meter, get_style
        from .perform.soundfonts import find_soundfont

        st = get_style(self.style)
        meter = None
        if self.meter is not None:
            meter = (int(self.meter[0]), int(self.meter[1]))
            if meter not in SUPPORTED_METERS:
                raise OptionError(f"meter {meter[0]}/{meter[1]} is not supported: use "
                                  + ", ".join(f"{n}/{d}" for n, d in SUPPORTED_METERS))
            check_meter(st, meter)
        if self.tempo_bpm is not None and not 30.0 <= float(self.tempo_bpm) <= 300.0:
            raise OptionError(f"tempo {self.tempo_bpm} is outside 30-300 beats per minute")
        if self.key is not None:
            Key.parse(str(self.key))
        from .listen.bar_fix import check_bar_fix

        check_bar_fix(self.downbeat_s, self.pickup_beats, meter=meter)
        if self.chords is not None:
            if not str(self.chords).strip():
                raise OptionError("--chords is empty: give chords like \"C | Am | F G | C\"")
            parse_chord_line(str(self.chords))
        if self.temperature is not None and not 0.0 <= float(self.temperature) <= 2.0:
            raise OptionError(f"temperature must be between 0 and 2, not {self.temperature}")
        if not 0 <= int(self.intro_bars) <= MAX_INTRO_BARS:
            raise OptionError(f"--intro takes 0 to {MAX_INTRO_BARS} bars, not {self.intro_bars}")
        if not -40.0 <= float(self.vocal_level_db) <= 20.0:
            raise OptionError(f"--vocal-level must be between -40 and +20 dB, not {self.vocal_level_db}")
        if self.form is not None and not str(self.form).split():
            raise OptionError('--form is empty: name the sections, e.g. --form "A A B A"')
        if self.section is not None:
            if self.bars is not None:
                raise OptionError("give --section or --bars, not both")
            if not self.from_dir:
                raise OptionError("--section needs --from DIR: the earlier arrangement whose other sections to keep")
            self = replace(self, bars=_section_bars(self.from_dir, int(self.section)), section=None)
        if self.bars is not None:
            a, z = int(self.bars[0]), int(self.bars[1])
            if a < 1 or z < a:
                raise OptionError(f"--bars {a}-{z} is not a range of bars: give e.g. 9-16 (first bar is 1)")
            if not self.from_dir:
                raise OptionError("--bars needs --from DIR: the earlier arrangement whose other bars to keep")
        if self.from_dir and not (Path(self.from_dir) / "arrangement.json").is_file():
            raise OptionError(f"{self.from_dir} has no arrangement.json: give an output folder of "
                              "an earlier 'hum2band arrange'")
        if self.from_dir and self.bars is None:
            raise OptionError("--from needs --bars: which bars to regenerate (e.g. --bars 9-16)")
        program = None
        if self.melody_instrument is not None:
            program = melody_program_of(self.melody_instrument)
        if self.soundfont is not None:
            find_soundfont(self.soundfont)
        if self.max_minutes <= 0:
            raise OptionError("--max-minutes must be positive")
        return replace(self, style=st.name, meter=meter,
                       melody_instrument=program if program is not None else None)


def melody_program_of(name: str | int) -> int:
    """General MIDI program for ``--melody-instrument``: a number 0-127 or an instrument name
    ("flute", "Alto Sax", "violin")."""
    import pretty_midi

    text = str(name).strip()
    if text.isdigit():
        p = int(text)
        if 0 <= p <= 127:
            return p
        raise OptionError(f"--melody-instrument {p}: a General MIDI program is 0-127")
    want = " ".join(text.lower().replace("-", " ").replace("_", " ").split())
    names = [pretty_midi.program_to_instrument_name(p) for p in range(128)]
    for p, n in enumerate(names):
        if n.lower() == want:
            return p
    for p, n in enumerate(names):
        if want and want in n.lower():
            return p
    raise OptionError(f"--melody-instrument '{name}' is not a General MIDI instrument: try flute, "
                      "violin, trumpet, alto sax, clarinet, vibraphone or a program number 0-127")


# ---- the song on its beat grid --------------------------------------------------------------
@dataclass
class SongGrid:
    """The melody on counted beats (beat 0 = a bar line) and the map back to seconds.

    Attributes
    ----------
    notes : np.ndarray, shape (N, 3)
        onset_beat, offset_beat, MIDI pitch (snapped).
    meter : (int, int)
    beats_per_bar : int
    first_bar : int
        Bar index (in this grid) where the melody's first bar is; bars before are the intro.
    n_bars : int
        Bars of the whole arrangement: intro + melody + ending.
    beat_times_s : np.ndarray
        Seconds of beats 0, 1, 2, ... on the take's time line (extrapolated outside the sung beats).
    tonic_pc : int
    mode : str
    tempo_bpm : float
    """

    notes: np.ndarray
    meter: tuple
    beats_per_bar: int
    first_bar: int
    n_bars: int
    beat_times_s: np.ndarray
    tonic_pc: int
    mode: str
    tempo_bpm: float

    def seconds(self, beats) -> np.ndarray:
        b = np.asarray(beats, dtype=float)
        bt = self.beat_times_s
        idx = np.arange(len(bt), dtype=float)
        ibi0, ibi1 = bt[1] - bt[0], bt[-1] - bt[-2]
        out = np.interp(b, idx, bt)
        out = np.where(b < 0, bt[0] + b * ibi0, out)
        return np.where(b > idx[-1], bt[-1] + (b - idx[-1]) * ibi1, out)

    @property
    def melody_bars(self) -> int:
        return self.n_bars - self.first_bar - ENDING_BARS


def song_grid(melody: Melody, intro_bars: int = 0) -> SongGrid:
    """Counted beats for a transcribed take: beat 0 is the bar line ``intro_bars`` bars before the
    first sung bar (the pickup bar counts as a bar)."""
    from .compose.harmony.harmonize import melody_score_of

    score = melody_score_of(melody)
    bpb = score.beats_per_bar
    shift = intro_bars * bpb
    notes = np.array([[n.onset_beat + shift, n.offset_beat + shift, n.midi] for n in score.notes],
                     dtype=float).reshape(-1, 3)
    end_beat = float(notes[:, 1].max()) if len(notes) else float(bpb)
    mel_bars = max(1, int(math.ceil((end_beat - shift) / bpb - 1e-6)))
    n_bars = intro_bars + mel_bars + ENDING_BARS
    # seconds of every counted beat of the arrangement (shifted score grid, extrapolated)
    idx = np.arange(n_bars * bpb + 1, dtype=float) - shift
    times = np.array([score.beat_to_seconds(float(b)) for b in idx])
    return SongGrid(notes, tuple(score.meter), bpb, intro_bars, n_bars, times,
                    melody.key.tonic_pitch_class, melody.key.mode, float(score.tempo_bpm))


# ---- reading the input ----------------------------------------------------------------------
def is_written_melody(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in MIDI_SUFFIXES + MUSICXML_SUFFIXES


def melody_from_file(path: str | os.PathLike, options: ArrangeOptions) -> Melody:
    """A MIDI/MusicXML melody as a :class:`Melody` on the file's own tempo map (no estimation)."""
    from .compose.harmony.harmonize import read_melody

    score = read_melody(path)
    if not score.notes:
        raise InputError(f"{Path(path).name} has no melody notes: give a file with a melody track")
    if options.downbeat_s is not None or options.pickup_beats is not None:
        raise OptionError(f"{Path(path).name} has its own bar lines: --downbeat and --pickup only "
                          "apply to audio takes")
    if options.meter is not None and tuple(options.meter) != tuple(score.meter):
        raise OptionError(f"{Path(path).name} is written in {score.meter[0]}/{score.meter[1]}: "
                          "--meter only applies to audio takes")
    bpb = score.beats_per_bar
    n_beats = int(math.ceil(score.end_beat)) + bpb + 1
    beats_s = np.array([score.beat_to_seconds(float(b)) for b in range(n_beats)])
    downs = beats_s[::bpb]
    notes = [Note(score.beat_to_seconds(n.onset_beat), score.beat_to_seconds(n.offset_beat),
                  float(n.midi), int(n.midi), int(n.velocity)) for n in score.notes]
    from .compose.harmony.grid import key_of_notes

    key = Key.parse(options.key) if options.key else (score.key or key_of_notes(score.notes))
    rhythm = Rhythm(beats_s, downs, tuple(score.meter), float(score.tempo_bpm))
    return Melody(notes, 0.0, rhythm, key, float(max(n.offset_s for n in notes)), str(path), "")


def steady_rhythm(melody: Melody, tempo_bpm: float, first_downbeat_s: float, meter) -> Rhythm:
    """A steady beat grid from a known tempo and first downbeat (a take recorded to a click)."""
    bpb = beats_per_bar(meter)
    ibi = 60.0 / float(tempo_bpm)
    k0 = -int(math.floor(first_downbeat_s / ibi))
    k1 = int(math.ceil((melody.duration_s - first_downbeat_s) / ibi)) + 1
    beats = first_downbeat_s + ibi * np.arange(k0, k1)
    beats = beats[beats >= 0]
    downs = first_downbeat_s + ibi * bpb * np.arange(int(math.ceil(k0 / bpb)), k1 // bpb + 1)
    downs = downs[(downs >= 0) & (downs <= beats[-1] + 1e-9)]
    return Rhythm(beats, downs, tuple(meter), float(tempo_bpm))


# ---- the result -----------------------------------------------------------------------------
@dataclass
class ArrangedSong:
    """What :func:`arrange` returns: the arrangement plus what is needed to render and export it.

    Attributes
    ----------
    arrangement : Arrangement
        Melody, parts, chords (seconds of the take, shifted by ``offset_s`` when there is an intro).
    options : ArrangeOptions
    grid : SongGrid
    parts_score : hum2band.compose.parts.accompany.PartsScore
        The parts on the beat grid (what ``--bars`` regenerates from).
    offset_s : float
        Silence put before the take to make room for the intro.
    pitch_track : PitchTrack or None
    mix : hum2band.perform.render.Mix or None
        Set by :meth:`render`.
    sections : list of hum2band.compose.form.Section
        The form the parts were played to, with each section's pickup bars and inner phrase
        starts (``arrangement.json`` keeps them, so ``--section``/``--bars`` play to the same form).
    """

    arrangement: Arrangement
    options: ArrangeOptions
    grid: SongGrid
    parts_score: object
    offset_s: float = 0.0
    pitch_track: object = None
    mix: object = None
    sections: list = field(default_factory=list)

    @property
    def chords(self) -> list[TimedChord]:
        return self.arrangement.chords

    @property
    def parts(self) -> list[Part]:
        return self.arrangement.parts

    def render(self, soundfont: str | None = None, progress: Progress | None = None):
        """Render every part and mix them with the take; returns :class:`hum2band.perform.render.Mix`.

        The take goes in untouched (after ``offset_s`` of silence when there is an intro); with
        ``no_vocal`` it is left out of the mix and of the stems.
        """
        from .perform.render import (
            SAMPLE_RATE_HZ,
            load_vocal,
            mix,
            render_parts,
            rendered_length,
        )
        from .perform.soundfonts import find_soundfont

        t = time.perf_counter()
        _say(progress, "render", 0.0)
        a = self.arrangement
        take = None
        if a.vocal_path and not self.options.no_vocal:
            take = load_vocal(a.vocal_path)
            pad = int(round(self.offset_s * SAMPLE_RATE_HZ))
            if pad:
                take = np.concatenate([np.zeros((pad, take.shape[1]), np.float32), take])
        n = rendered_length(a, 0 if take is None else take.shape[0])
        font = find_soundfont(soundfont or self.options.soundfont)
        stems = render_parts(a, font, n, workers=2)
        self.mix = mix(stems, take, self.options.vocal_level_db)
        a.timings_s["render"] = time.perf_counter() - t
        _say(progress, "render", 1.0)
        return self.mix

    def export(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write the score files only (no audio): ``arrangement.mid``, ``leadsheet.musicxml`` and
        ``pianoroll.png`` into ``out_dir`` (created if needed; existing files are replaced).

        The MIDI tracks' volumes (CC 7) carry the mix's balance: from the gains the render gave
        each stem when :meth:`render` has run, else from the style's balance per role (see
        :func:`hum2band.perform.export.midi_volumes`).

        Returns
        -------
        dict
            File kind -> path written.
        """
        from .perform.export import write_arrangement_midi, write_leadsheet_musicxml, write_pianoroll_png

        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        a = self.arrangement
        paths = {"midi": d / "arrangement.mid", "leadsheet": d / "leadsheet.musicxml",
                 "pianoroll": d / "pianoroll.png"}
        write_arrangement_midi(paths["midi"], a, None if self.mix is None else self.mix.part_gains_db)
        write_leadsheet_musicxml(paths["leadsheet"], a.melody, a.chords, a.melody.key, a.melody.rhythm.meter,
                                 title=Path(a.input_path).stem)
        write_pianoroll_png(paths["pianoroll"], a.melody, self.pitch_track, a.chords, a.parts)
        return paths

    def write(self, out_dir: str | os.PathLike, force: bool = False, progress: Progress | None = None) -> Path:
        """Render (if not yet) and write every output into ``out_dir`` (atomically)."""
        return write_outputs(self, Path(out_dir), force=force, progress=progress)

    def summary(self) -> dict:
        a = self.arrangement
        m = a.melody
        return {
            "input": a.input_path, "style": a.style, "seed": a.seed,
            "key": f"{m.key.tonic} {m.key.mode}", "tempo_bpm": round(float(m.rhythm.tempo_bpm), 1),
            "meter": f"{m.rhythm.meter[0]}/{m.rhythm.meter[1]}", "bars": self.grid.n_bars,
            "tuning_cents": round(float(a.tuning_cents), 1),
            "chords": " | ".join(c.chord.label for c in a.chords),
            "parts": [p.name for p in a.parts], "duration_s": round(float(a.duration_s), 2),
            "timings_s": {k: round(float(v), 3) for k, v in a.timings_s.items()},
            "other_readings": [r.to_json() for r in m.rhythm.other_readings],
            "other_tempi": [r.to_json() for r in m.rhythm.other_tempi],
        }


def _say(progress: Progress | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


# ---- the pipeline ---------------------------------------------------------------------------
def arrange(path: str | os.PathLike, style: str = "pop", progress: Progress | None = None,
            melody: Melody | None = None, **options) -> ArrangedSong:
    """Arrange a take (any audio format) or a MIDI/MusicXML melody for a band.

    Parameters
    ----------
    path : path-like
        The input.
    style : str
        One of the twelve styles (``hum2band styles``).
    progress : callable, optional
        ``progress(stage, fraction)`` as stages start and end.
    melody : Melody, optional
        An already transcribed take of ``path`` (skips transcription).
    **options
        Any field of :class:`ArrangeOptions` (tempo_bpm, meter, key, chords, seed, ...).

    Returns
    -------
    ArrangedSong
        Call ``.write(out_dir)`` to render and write everything, ``.render()`` for the audio only.
    """
    opts = ArrangeOptions(style=style, **options).checked()
    return _arrange(Path(path), opts, progress, melody)


def _arrange(path: Path, opts: ArrangeOptions, progress: Progress | None, melody: Melody | None = None
             ) -> ArrangedSong:
    from .compose.parts.accompany import accompany, load_parts_model
    from .music.styles import check_meter, get_style
    from .perform.soundfonts import part_defaults

    timings: dict[str, float] = {}
    written = is_written_melody(path)
    style = get_style(opts.style)
    # a style that plays one meter only (waltz) tells the rhythm stage what to look for
    meter_hint = opts.meter or (style.meters[0] if len(style.meters) == 1 else None)
    t = time.perf_counter()
    _say(progress, "transcribe", 0.0)
    pitch_track = None
    if melody is None:
        if written:
            melody = melody_from_file(path, opts)
        else:
            from .listen.transcription import transcribe

            melody = transcribe(path, pitch_backend=opts.pitch_backend, tempo_bpm=opts.tempo_bpm,
                                meter=meter_hint, key=opts.key,
                                max_duration_s=opts.max_minutes * 60.0,
                                downbeat_s=opts.downbeat_s, pickup_beats=opts.pickup_beats)
            pitch_track = getattr(melody, "pitch_track", None)
            if opts.first_downbeat_s is not None and opts.tempo_bpm is not None:
                melody.rhythm = steady_rhythm(melody, opts.tempo_bpm, opts.first_downbeat_s,
                                              meter_hint or melody.rhythm.meter)
    timings["transcribe"] = time.perf_counter() - t
    _say(progress, "transcribe", 1.0)

    meter = tuple(melody.rhythm.meter)
    check_meter(style, meter)
    earlier = _load_earlier(opts)

    # -- chords --
    t = time.perf_counter()
    _say(progress, "chords", 0.0)
    grid = song_grid(melody, opts.intro_bars)
    chords = _chords(melody, grid, opts, style, earlier)
    sections = _sections(grid, opts, earlier)
    if earlier is None and not opts.chords:
        from .compose.form import repeat_harmony
        from .compose.harmony.harmonize import merge_repeats

        chords = merge_repeats(repeat_harmony(chords, grid.notes, sections, grid.beats_per_bar))
    timings["chords"] = time.perf_counter() - t
    _say(progress, "chords", 1.0)

    # -- parts --
    t = time.perf_counter()
    _say(progress, "parts", 0.0)
    model, meta = load_parts_model()
    keep, regen = None, None
    if earlier is not None:
        keep, regen = earlier["parts_score"], (opts.bars[0] - 1, opts.bars[1])
        if keep.onsets.shape[0] != grid.n_bars:
            raise OptionError(f"{opts.from_dir} was arranged with {keep.onsets.shape[0]} bars and this "
                              f"take has {grid.n_bars}: --bars regenerates bars of the same take and options")
    ps = accompany(grid.notes, chords, grid.n_bars, meter, grid.tonic_pc, grid.mode, grid.tempo_bpm,
                   style.name, seed=opts.seed, temperature=opts.temperature, keep=keep,
                   regenerate_bars=regen, model=model, sections=sections)
    timings["parts"] = time.perf_counter() - t
    _say(progress, "parts", 1.0)

    # -- onto the take's time line --
    t = time.perf_counter()
    _say(progress, "arrange", 0.0)
    ps = _with_ending(ps, grid, chords)
    # the band may start before the take does (an intro, or a pickup bar sung from t = 0): then
    # the whole time line moves by offset_s and the take gets that much silence in front
    offset_s = max(0.0, -float(grid.seconds(0.0)))
    if offset_s > 0:
        offset_s = math.ceil(offset_s * 44100.0) / 44100.0   # a whole number of samples
        grid.beat_times_s = grid.beat_times_s + offset_s
        if pitch_track is not None:
            pitch_track = replace(pitch_track, times_s=np.asarray(pitch_track.times_s) + offset_s)
    melody = _shifted_melody(melody, offset_s, grid)
    parts: list[Part] = []
    for name in style.parts:
        notes = ps.parts.get(name)
        if notes is None or len(notes) == 0:
            continue
        d = part_defaults(name, style.name)
        on_s = grid.seconds(notes[:, 0])
        off_s = grid.seconds(notes[:, 0] + notes[:, 1])
        pn = [PartNote(float(a), float(max(b, a + 0.03)), int(m), int(v))
              for a, b, m, v in zip(on_s, off_s, notes[:, 2], notes[:, 3])]
        parts.append(Part(name, d.program, d.is_drum, pn, d.pan, d.gain_db))
    melody_program = part_defaults("melody", style.name).program
    if opts.melody_instrument is not None:
        melody_program = int(opts.melody_instrument)
        d = part_defaults("melody", style.name)
        parts.append(Part(LEAD_PART, melody_program, False,
                          [PartNote(n.onset_s, n.offset_s, n.midi, n.velocity) for n in melody.notes],
                          d.pan, d.gain_db))
    timed = [TimedChord(float(grid.seconds(s)), float(grid.seconds(e)), float(s), float(e), c)
             for s, e, c in chords]
    vocal_path = None if written else str(path)
    arrangement = Arrangement(melody=melody, parts=parts, chords=timed, style=style.name,
                              seed=int(opts.seed), model_version=_model_version(meta),
                              tuning_cents=float(melody.tuning_cents), vocal_path=vocal_path,
                              input_path=str(path), melody_program=melody_program, timings_s=timings,
                              sections=[SectionSpan(x.label, float(grid.seconds(x.start_bar * grid.beats_per_bar)),
                                                    float(grid.seconds(x.end_bar * grid.beats_per_bar)),
                                                    x.start_bar, x.end_bar, x.energy, x.pickup_bars,
                                                    tuple(x.phrase_starts)) for x in sections])
    timings["arrange"] = time.perf_counter() - t
    _say(progress, "arrange", 1.0)
    return ArrangedSong(arrangement, opts, grid, ps, offset_s, pitch_track, sections=list(sections))


def _model_version(meta: dict) -> str:
    from . import __version__

    step = meta.get("step")
    return f"hum2band {__version__}: harmony v1 + parts v1" + (f" (step {step})" if step else "")


def _load_earlier(opts: ArrangeOptions) -> dict | None:
    """The arrangement of ``--from DIR`` for ``--bars``."""
    if not opts.from_dir:
        return None
    import json

    from .compose.parts.accompany import PartsScore

    d = Path(opts.from_dir)
    try:
        data = json.loads((d / "arrangement.json").read_text())
        grid = data["grid"]
        parts = {k: np.asarray(v, dtype=float).reshape(-1, 4) for k, v in grid["parts_beats"].items()}
        onsets = np.load(d / ".hum2band" / "onsets.npz")["onsets"]
    except (OSError, KeyError, ValueError) as error:
        raise OptionError(f"cannot read the earlier arrangement in {d} ({error}); "
                          "arrange the take again without --bars") from None
    if data.get("style") and data["style"] != opts.style:
        raise OptionError(f"{d} was arranged as {data['style']}, not {opts.style}: regenerate bars in "
                          "the same style")
    chords = [(float(c["start_beat"]), float(c["end_beat"]), ChordSymbol.parse(c["chord"]))
              for c in data["chords"]]
    n_bars = int(grid["n_bars"])
    if opts.bars[0] > n_bars:
        raise OptionError(f"--bars {opts.bars[0]}-{opts.bars[1]}: the arrangement in {d} has {n_bars} bars")
    return {"parts_score": PartsScore(parts, int(grid["variant"]), onsets), "chords": chords,
            "n_bars": n_bars, "sections": data.get("sections", [])}


def _section_bars(from_dir: str, number: int) -> tuple[int, int]:
    """The 1-based bar range of section ``number`` of the arrangement in ``from_dir``."""
    import json

    try:
        sections = json.loads((Path(from_dir) / "arrangement.json").read_text()).get("sections", [])
    except (OSError, ValueError):
        raise OptionError(f"{from_dir} has no readable arrangement.json: give an output folder of "
                          "an earlier 'hum2band arrange'") from None
    if not 1 <= number <= len(sections):
        raise OptionError(f"--section {number}: the arrangement in {from_dir} has {len(sections)} sections "
                          f"(see 'sections' in its arrangement.json)")
    s = sections[number - 1]
    return int(s["start_bar"]) + 1, int(s["end_bar"])


def _sections(grid: SongGrid, opts: ArrangeOptions, earlier) -> list:
    """The song's form: the earlier arrangement's (``--from``), the user's (``--form``), or found
    from the melody.

    An earlier arrangement's sections come back with their inner phrase starts (so fills inside a
    regenerated section go where its phrases end, as the first time); an ``arrangement.json``
    written before it kept them gets them from the melody: the phrase boundaries
    :func:`~hum2band.compose.form.find_sections` finds that fall inside each section.
    """
    from .compose.form import Section, find_sections, sections_from_form

    end = grid.n_bars - ENDING_BARS
    if earlier is not None and earlier.get("sections"):
        found = None
        out = []
        for x in earlier["sections"]:
            a, z = int(x["start_bar"]), int(x["end_bar"])
            starts, pickup = x.get("phrase_starts"), x.get("pickup_bars")
            if starts is None or pickup is None:
                if found is None:
                    found = find_sections(grid.notes, grid.first_bar, end, grid.beats_per_bar)
                if starts is None:
                    bounds = {b for f in found for b in (f.start_bar, *f.phrase_starts)}
                    starts = sorted(b for b in bounds if a < b < z)
                if pickup is None:
                    pickup = next((f.pickup_bars for f in found if f.start_bar == a), 0)
            out.append(Section(a, z, str(x["label"]), int(x.get("energy", 1)), int(pickup),
                               tuple(int(b) for b in starts)))
        return out
    if opts.form:
        return sections_from_form(opts.form, grid.first_bar, end)
    return find_sections(grid.notes, grid.first_bar, end, grid.beats_per_bar)


def intro_chords(spans: list, first_beat: float, last_beat: float) -> list:
    """Chords of an intro of ``first_beat`` beats from the song's own material: its last
    ``first_beat`` beats of chords (before ``last_beat``), moved to the start; a song shorter than
    the intro, or without chords there, gets its first chord held.

    Parameters
    ----------
    spans : list of (start_beat, end_beat, ChordSymbol)
        The song's chords (the intro's beats come first: the song starts at ``first_beat``).
    first_beat, last_beat : float
        Where the sung bars start and end.
    """
    a = last_beat - first_beat
    if a < first_beat - 1e-9:
        return [(0.0, first_beat, spans[0][2])]
    out = [(max(s, a) - a, min(e, last_beat) - a, c) for s, e, c in spans
           if e > a + 1e-9 and s < last_beat - 1e-9]
    if not out or out[0][0] > 1e-9:
        return [(0.0, first_beat, spans[0][2])]
    return out


def _chords(melody: Melody, grid: SongGrid, opts: ArrangeOptions, style, earlier) -> list:
    """Chord spans (start_beat, end_beat, ChordSymbol) over every bar of the arrangement."""
    from .compose.harmony.harmonize import harmonize, locked_spans, merge_repeats

    bpb = grid.beats_per_bar
    shift = grid.first_bar * bpb
    if earlier is not None:
        return list(earlier["chords"])
    locked = None
    if opts.chords:
        locked = locked_spans(str(opts.chords), bpb)
        mel_bars = grid.melody_bars
        given_bars = int(math.ceil(locked[-1][1] / bpb - 1e-9))
        if given_bars > mel_bars + ENDING_BARS:
            raise OptionError(f"--chords gives {given_bars} bars but the melody has {mel_bars}: "
                              "give at most one chord bar per sung bar")
    key = melody.key
    spans = harmonize(melody, style=style.name, seed=opts.seed, locked_chords=locked, key=key)
    spans = [(float(s) + shift, float(e) + shift, c) for s, e, c in spans if not c.is_no_chord]
    if not spans:
        raise InputError("no chords could be found for this melody")
    if not opts.chords:
        spans = harmonic_rhythm(spans, bpb, style.chords_per_bar)
    tonic = ChordSymbol.make(key.tonic_pitch_class, "min" if key.mode == "minor" else "maj")
    first, last = grid.first_bar * bpb, (grid.n_bars - ENDING_BARS) * bpb
    # intro: the song's own last bars (an intro that ends like the song leads into its first bar);
    # ending: the tonic
    out = intro_chords(spans, float(first), float(last)) if grid.first_bar > 0 else []
    for s, e, c in spans:
        s, e = max(s, first), min(e, last)
        if e > s:
            out.append((s, e, c))
    if out and out[-1][1] < last:
        s, e, c = out[-1]
        out[-1] = (s, float(last), c)
    if locked and locked[-1][1] + shift >= last - 1e-9:
        end_chord = locked[-1][2]
    else:
        end_chord = tonic
    out.append((float(last), float(grid.n_bars * bpb), end_chord))
    return merge_repeats(out)


def harmonic_rhythm(spans: list, beats_per_bar_: int, chords_per_bar: float) -> list:
    """Fit the chords to the style's harmonic rhythm: at most ``chords_per_bar`` chords a bar.

    The bar is cut into that many equal slots (one slot a bar when the beats do not divide);
    each slot keeps the chord that sounds longest in it (the earlier one on a tie), then
    repeated chords are merged. Slots where the model wrote no chord stay empty.
    """
    from .compose.harmony.harmonize import merge_repeats

    cpb = max(1, int(round(chords_per_bar)))
    slot = beats_per_bar_ / cpb if beats_per_bar_ % cpb == 0 else float(beats_per_bar_)
    if not spans:
        return []
    first = min(s for s, _, _ in spans)
    end = max(e for _, e, _ in spans)
    out: list = []
    t = float(math.floor(first / beats_per_bar_) * beats_per_bar_)
    while t < end - 1e-9:
        u = t + slot
        best, best_len = None, 0.0
        for s, e, c in spans:
            overlap = min(e, u) - max(s, t)
            if overlap > best_len + 1e-9:
                best, best_len = c, overlap
        if best is not None:
            out.append((max(t, first), min(u, end), best))
        t = u
    return merge_repeats(out)


def landing_beat(grid: SongGrid) -> float:
    """Where the band lands at the end: on the singer's last note when it starts on a counted beat
    of the last sung bar and is held a beat or more (a final note the band plays with), else on
    the first beat of the ending bar."""
    bpb = grid.beats_per_bar
    ending = float((grid.n_bars - ENDING_BARS) * bpb)
    if not len(grid.notes):
        return ending
    on, off, _ = grid.notes[np.argmax(grid.notes[:, 0])]
    if (ending - bpb - 1e-6 <= on < ending and abs(on - round(on)) < 1e-6 and off - on >= 1.0 - 1e-6):
        return float(round(on))
    return ending


def _with_ending(ps, grid: SongGrid, chords):
    """The band resolves: from :func:`landing_beat` on, only what it plays on that beat, held to
    the end of the ending bar."""
    bpb = grid.beats_per_bar
    a = landing_beat(grid)
    end = grid.n_bars * bpb
    parts = {}
    for name, notes in ps.parts.items():
        arr = np.asarray(notes, dtype=float).reshape(-1, 4)
        before = arr[arr[:, 0] < a - 1e-9]
        if len(before):
            before = before.copy()
            before[:, 1] = np.minimum(before[:, 1], a - before[:, 0])
        last = arr[(arr[:, 0] >= a - 1e-9) & (arr[:, 0] < a + 0.5)].copy()
        if len(last):
            last[:, 0] = a
            last[:, 1] = (end - a) if name != "drums" else 0.5
        parts[name] = np.concatenate([before, last]) if len(last) else before
    from .compose.parts.accompany import PartsScore

    return PartsScore(parts, ps.variant, ps.onsets)


def _shifted_melody(melody: Melody, offset_s: float, grid: SongGrid) -> Melody:
    """The melody on the arrangement's time line: times + ``offset_s``, and the beat grid extended
    back over the bars the band plays before the first sung beat (intro, pickup bar), so that the
    MIDI tempo map has those bars too."""
    notes = [replace(n, onset_s=n.onset_s + offset_s, offset_s=n.offset_s + offset_s) for n in melody.notes]
    r = melody.rhythm
    bpb = grid.beats_per_bar
    sung = np.asarray(r.beats_s, dtype=float) + offset_s
    first = sung[0] if len(sung) else np.inf
    before = grid.beat_times_s[grid.beat_times_s < first - 1e-3]
    beats = np.concatenate([before[before >= 0], sung])
    sung_downs = np.asarray(r.downbeats_s, dtype=float) + offset_s
    first_down = sung_downs[0] if len(sung_downs) else np.inf
    grid_downs = grid.beat_times_s[::bpb]
    downs = np.concatenate([grid_downs[(grid_downs < first_down - 1e-3) & (grid_downs >= 0)], sung_downs])
    rhythm = Rhythm(beats, downs, r.meter, r.tempo_bpm, r.meter_confidence, r.tempo_confidence,
                    r.other_readings, r.other_tempi)  # bar lines in the take's own seconds
    return Melody(notes, melody.tuning_cents, rhythm, melody.key, melody.duration_s + offset_s,
                  melody.source, melody.pitch_backend, dict(melody.timings_s))


# ---- writing ----------------------------------------------------------------------------------
def write_outputs(song: ArrangedSong, out_dir: Path, force: bool = False,
                  progress: Progress | None = None) -> Path:
    """Render (if needed) and write everything into ``out_dir``, atomically.

    Everything goes into a hidden temporary folder beside ``out_dir``; when all files are
    complete it is renamed to ``out_dir`` (an existing ``out_dir`` is replaced only with
    ``force``, and only then; see :func:`hum2band.files.staging.staged_folder`).
    """
    import json

    from .files.staging import staged_folder
    from .perform.render import write_mix, write_stems

    out_dir = Path(out_dir)
    with staged_folder(out_dir, replace=force) as tmp:
        a = song.arrangement
        if song.mix is None:
            song.render(progress=progress)
        t = time.perf_counter()
        _say(progress, "export", 0.0)
        mix = song.mix
        write_mix(tmp / "mix.wav", mix)
        stems = write_stems(tmp / "stems", mix)
        song.export(tmp)
        (tmp / ".hum2band").mkdir()
        np.savez_compressed(tmp / ".hum2band" / "onsets.npz", onsets=song.parts_score.onsets.astype(np.uint8))
        a.timings_s["export"] = time.perf_counter() - t
        rel = {name: f"stems/{p.name}" for name, p in stems.items()}
        d = a.to_json(rel)
        d["offset_s"] = round(float(song.offset_s), 6)
        d["offset_samples"] = int(round(song.offset_s * mix.sample_rate_hz))
        d["mix"] = {"file": "mix.wav", "sample_rate_hz": mix.sample_rate_hz,
                    "loudness_lufs": round(float(mix.loudness_lufs), 2),
                    "true_peak_dbfs": round(float(mix.peak_dbfs), 2), "gain_db": round(float(mix.gain_db), 2),
                    "vocal_in_mix": "vocal" in mix.stems}
        d["grid"] = {"n_bars": song.grid.n_bars, "first_bar": song.grid.first_bar,
                     "beats_per_bar": song.grid.beats_per_bar, "variant": int(song.parts_score.variant),
                     "beat_times_s": [round(float(x), 4) for x in song.grid.beat_times_s],
                     "parts_beats": {k: np.round(np.asarray(v, dtype=float), 4).tolist()
                                     for k, v in song.parts_score.parts.items()}}
        (tmp / "arrangement.json").write_text(json.dumps(d, indent=1) + "\n")
        _say(progress, "export", 1.0)
    return out_dir


def arrange_to_folder(input_path: str | os.PathLike, out_dir: str | os.PathLike,
                      options: ArrangeOptions | None = None, force: bool = False,
                      progress: Progress | None = None) -> dict:
    """Arrange one input and write every output into ``out_dir``; returns the summary dict.

    This is what ``hum2band arrange``, ``hum2band record`` and the web app call. Options are
    checked first; nothing is written unless the whole run succeeds.
    """
    opts = (options or ArrangeOptions()).checked()
    out = Path(out_dir)
    if out.exists() and not force:
        raise OptionError(f"{out} already exists: choose another output folder or use --force")
    song = _arrange(Path(input_path), opts, progress)
    write_outputs(song, out, force=force, progress=progress)
    s = song.summary()
    s["out"] = str(out)
    return s
