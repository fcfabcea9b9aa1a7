"""Lead sheet (MusicXML, read back with music21) and piano-roll PNG."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from hum2band.perform import export
from hum2band.music.arrangement import ChordSpan, Part, PartNote
from hum2band.music.chords import QUALITIES, ChordSymbol
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import Rhythm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

from music21 import converter, harmony  # noqa: E402


def ode_melody() -> tuple[Melody, list[ChordSpan]]:
    truth = json.loads((EXAMPLES / "ode_to_joy.truth.json").read_text())
    rows = np.loadtxt(EXAMPLES / "ode_to_joy.notes.txt")
    notes = [Note(a, b, p, int(round(p - 0.18)), 90) for a, b, p in rows]
    rhythm = Rhythm(np.array(truth["beats"]), np.array(truth["downbeats"]), tuple(truth["meter"]),
                    float(truth["tempo_bpm"]))
    melody = Melody(notes, 18.0, rhythm, Key("D", "major"), float(truth["duration_s"]),
                    source="ode_to_joy.m4a")
    bars = list(rhythm.downbeats_s) + [rhythm.beats_s[-1] + 0.6]
    chords = [ChordSpan.from_seconds(rhythm, bars[i], bars[i + 1], "D" if i % 2 == 0 else "A7/C#")
              for i in range(len(bars) - 1)]
    return melody, chords


def _read(path):
    score = converter.parse(str(path))
    notes = [(float(n.getOffsetInHierarchy(score)), n.pitch.midi, float(n.quarterLength))
             for n in score.stripTies().recurse().notes if not isinstance(n, harmony.Harmony)]
    chords = [(float(h.getOffsetInHierarchy(score)), h) for h in score.recurse().getElementsByClass(harmony.Harmony)]
    return score, notes, chords


def _pcs(h) -> tuple[int, ...]:
    if isinstance(h, harmony.NoChord):
        return ()
    return tuple(sorted({p.pitchClass for p in h.pitches}))


def test_ode_lead_sheet_round_trips_through_music21(tmp_path):
    melody, chords = ode_melody()
    path = tmp_path / "leadsheet.musicxml"
    export.write_leadsheet_musicxml(path, melody, chords)
    score, notes, read_chords = _read(path)
    # every sung note, in order, on the beat: Ode to Joy is all quarter-note onsets
    assert [m for _, m, _ in notes] == [n.midi for n in melody.notes]
    onsets = np.array([o for o, _, _ in notes])
    assert np.allclose(onsets, np.round(onsets * 4) / 4)
    assert onsets[0] == 0.0 and onsets[4] == 4.0  # starts on the first bar line, bar 2 on beat 5
    # as Beethoven wrote it: twelve quarters, dotted quarter, eighth, half (short breaths are legato)
    assert [d for _, _, d in notes[:15]] == [1.0] * 12 + [1.5, 0.5, 2.0]
    # chords: one per bar, same symbols (inversion included), on the bar lines
    assert [o for o, _ in read_chords] == [4.0 * i for i in range(len(chords))]
    for (_, h), span in zip(read_chords, chords):
        assert _pcs(h) == span.chord.pitch_classes()
        assert h.bass().pitchClass == span.chord.bass
    ts = score.recurse().getElementsByClass("TimeSignature")[0]
    assert ts.ratioString == "4/4"
    ks = score.recurse().getElementsByClass("KeySignature")[0]
    assert ks.sharps == 2


@dataclass
class _Grid:
    meter: tuple
    bpb: int
    qpb: float


@pytest.mark.parametrize("grid", [_Grid((4, 4), 4, 1.0), _Grid((3, 4), 3, 1.0), _Grid((6, 8), 2, 1.5)],
                         ids=["4/4", "3/4", "6/8"])
def test_pickup_sixteenths_triplets_and_every_chord_quality(tmp_path, grid):
    ibi = 0.5
    beats = 0.3 + np.arange(48) * ibi
    rhythm = Rhythm(beats, beats[1::grid.bpb], grid.meter, 120.0)
    # a pickup beat, sixteenths, (triplets in simple meters), long tied notes, sung a bit loosely
    pos = [0, 1, 1.25, 1.5, 2, 2 + 1 / 3, 2 + 2 / 3, 3, 5, 7.5, 9, 9.5, 10.75, 12]
    if grid.qpb == 1.5:
        pos = [0, 1, 1 + 1 / 6, 1.5, 2, 2 + 1 / 3, 2 + 2 / 3, 3, 5, 7.5, 9, 9.5, 10 + 5 / 6, 12]
    rng = np.random.default_rng(3)
    notes = [Note(0.3 + pos[i] * ibi + rng.uniform(-0.015, 0.015),
                  0.3 + pos[i + 1] * ibi - 0.01, 60.0 + i, 60 + i) for i in range(len(pos) - 1)]
    melody = Melody(notes, 0.0, rhythm, Key("Eb", "major"), 10.0, source="grid")
    qualities = list(QUALITIES)
    chords = [ChordSpan.from_beats(rhythm, 1 + 2 * i, 3 + 2 * i,
                                   ChordSymbol.make(5 * i, q, None if i % 3 else 5 * i + 4))
              for i, q in enumerate(qualities)]
    chords.append(ChordSpan.from_beats(rhythm, 1 + 2 * len(qualities), 3 + 2 * len(qualities),
                                       ChordSymbol.no_chord()))
    path = tmp_path / "grid.musicxml"
    export.write_leadsheet_musicxml(path, melody, chords)
    score, got, read_chords = _read(path)

    sheet, origin = export.quantize_melody(melody)
    assert origin == 1.0 - grid.bpb  # the pickup opens a bar of rests and one beat
    expected_beats = [Fraction(p).limit_denominator(12) + grid.bpb - 1 for p in pos[:-1]]
    assert [n.start_beat for n in sheet] == expected_beats
    assert [(o, m) for o, m, _ in got] == [(float(b * Fraction(grid.qpb)), n.midi)
                                           for b, n in zip(expected_beats, sheet)]
    assert [m for _, m, _ in got] == [n.midi for n in notes]
    assert len(read_chords) == len(chords)
    for (offset, h), span in zip(read_chords, chords):
        assert _pcs(h) == span.chord.pitch_classes(), span.chord.label
        if not span.chord.is_no_chord:
            assert h.bass().pitchClass == span.chord.bass
        assert offset == pytest.approx((span.start_beat - origin) * grid.qpb)
    ts = score.recurse().getElementsByClass("TimeSignature")[0]
    assert (ts.numerator, ts.denominator) == grid.meter
    assert score.recurse().getElementsByClass("KeySignature")[0].sharps == -3


@dataclass
class _Track:
    times_s: np.ndarray
    midi_pitch: np.ndarray


def test_pianoroll_png(tmp_path):
    from PIL import Image

    melody, chords = ode_melody()
    t = np.arange(0, melody.duration_s, 0.01)
    contour = np.full_like(t, np.nan)
    for n in melody.notes:
        contour[(t >= n.onset_s) & (t < n.offset_s)] = n.midi_pitch
    beats = melody.rhythm.beats_s
    parts = [Part("bass", 33, False, [PartNote(b, b + 0.4, 38, 90) for b in beats]),
             Part("drums", 0, True, [PartNote(b, b + 0.1, 36, 90) for b in beats])]
    path = tmp_path / "pianoroll.png"
    export.write_pianoroll_png(path, melody, _Track(t, contour), chords, parts)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (1600, 600)
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5  # something is drawn
    assert [p.name for p in tmp_path.iterdir()] == ["pianoroll.png"]


@pytest.mark.parametrize("name, meter, durations", [
    ("row_your_boat", (6, 8), [1.5, 1.5, 1.0, 0.5, 1.5, 1.0, 0.5, 1.0, 0.5, 3.0]),
    ("amazing_grace", (3, 4), [1.0, 2.0, 0.5, 0.5, 2.0, 1.0, 2.0, 1.0, 2.0]),
])
def test_shipped_examples_read_as_written(tmp_path, name, meter, durations):
    truth = json.loads((EXAMPLES / f"{name}.truth.json").read_text())
    rows = np.loadtxt(EXAMPLES / f"{name}.notes.txt")
    offset = truth["tuning_cents"] / 100.0
    rhythm = Rhythm(np.array(truth["beats"]), np.array(truth["downbeats"]), tuple(truth["meter"]),
                    float(truth["tempo_bpm"]))
    melody = Melody([Note(a, b, p, int(round(p - offset))) for a, b, p in rows], truth["tuning_cents"],
                    rhythm, Key(truth["key"]["tonic"], truth["key"]["mode"]), truth["duration_s"])
    path = tmp_path / f"{name}.musicxml"
    export.write_leadsheet_musicxml(path, melody, [])
    score, notes, _ = _read(path)
    assert [m for _, m, _ in notes] == truth["notes_midi"]
    assert [d for _, _, d in notes[: len(durations)]] == durations
    ts = score.recurse().getElementsByClass("TimeSignature")[0]
    assert (ts.numerator, ts.denominator) == meter
