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


# ---- arrangement.mid carries the mix's balance (CC 7) -------------------------------------------
def _band_arrangement(style: str = "pop"):
    from hum2band.music.arrangement import Arrangement

    melody, chords = ode_melody()
    beats = melody.rhythm.beats_s
    parts = [Part("drums", 0, True, [PartNote(b, b + 0.1, 36, 90) for b in beats], 0.0, 0.0),
             Part("bass", 33, False, [PartNote(b, b + 0.4, 38, 90) for b in beats], 0.0, 0.0),
             Part("pads", 48, False, [PartNote(beats[0], beats[-1], 62, 60)], -0.15, 0.0)]
    return Arrangement(melody, parts, chords, style=style, seed=0, model_version="test")


def test_midi_volumes_follow_the_stem_gains_on_the_gm_curve():
    from hum2band.perform.soundfonts import balance_lu

    parts = _band_arrangement().parts
    # stems that got 0 dB and -12 dB: the louder at 100, the other 12 dB under it on
    # gain = 40 log10(cc/127), i.e. cc = 100 * 10**(-12/40) = 50.1
    vols = export.midi_volumes(parts[:2], "pop", {"drums": 0.0, "bass": -12.0})
    assert vols == [100, 50]
    # only relative dB matter: the same balance 30 dB higher gives the same volumes
    assert export.midi_volumes(parts[:2], "pop", {"drums": 30.0, "bass": 18.0}) == [100, 50]
    # no render at all: the style's balance per role (pop: drums 0, bass -1.5, pads -7 LU)
    assert [balance_lu(n, "pop") for n in ("drums", "bass", "pads")] == [0.0, -1.5, -7.0]
    assert export.midi_volumes(parts, "pop") == [100, round(100 * 10 ** (-1.5 / 40)), round(100 * 10 ** (-7 / 40))]
    assert export.midi_volumes(parts, "pop", {}) == [100, 92, 67]
    # pads not measured (silent stem): its role's balance, put on the measured parts' scale by
    # the median offset of the measured ones from their own balance (drums 0 - 0, bass -12 + 1.5)
    shift = float(np.median([0.0 - 0.0, -12.0 - (-1.5)]))
    pads_db = -7.0 + shift
    assert export.midi_volumes(parts, "pop", {"drums": 0.0, "bass": -12.0}) == [
        100, 50, round(100 * 10 ** (pads_db / 40))]
    # a part's gain_db moves it in the fallback; far under the loudest part clamps at 1
    quiet = [parts[0], Part("bass", 33, False, parts[1].notes, 0.0, -100.0)]
    assert export.midi_volumes(quiet, "pop") == [100, 1]


def test_arrangement_midi_opens_with_each_volume_at_time_zero_on_its_channel(tmp_path):
    import mido
    import pretty_midi

    arr = _band_arrangement("ballad")
    path = tmp_path / "arrangement.mid"
    vols = export.write_arrangement_midi(path, arr, {"drums": -3.0, "bass": -15.0})
    assert vols[:2] == [100, 50] and 1 <= vols[2] <= 100
    assert [p.gain_db for p in arr.parts] == [0.0, 0.0, 0.0]          # the arrangement is unchanged
    mid = mido.MidiFile(str(path))
    want = {"Melody": 100, "drums": vols[0], "bass": vols[1], "pads": vols[2]}
    seen = {}
    for track in mid.tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        tick, first_cc7, note_channels = 0, None, set()
        for m in track:
            tick += m.time
            if m.type == "control_change" and m.control == 7 and first_cc7 is None:
                first_cc7 = (tick, m.channel, m.value)
            if m.type == "note_on":
                note_channels.add(m.channel)
        if name in want:
            assert first_cc7 is not None, name
            assert first_cc7[0] == 0 and {first_cc7[1]} == note_channels, (name, first_cc7, note_channels)
            seen[name] = first_cc7[2]
    assert seen == want
    pm = pretty_midi.PrettyMIDI(str(path))
    by_name = {i.name: i for i in pm.instruments}
    for name, value in want.items():
        cc7 = [c for c in by_name[name].control_changes if c.number == 7]
        assert cc7 and cc7[0].time == 0.0 and cc7[0].value == value, name
    assert by_name["drums"].is_drum


def test_reading_the_balanced_midi_back_gives_each_part_its_own_gain_not_the_balance(tmp_path):
    """``hum2band render arrangement.mid`` levels every stem again: the volumes written for a DAW
    must not come back as gains on top of that (the balance twice), while a volume moved in the
    DAW moves the part by the dB it means on the GM curve."""
    import mido

    from hum2band.music.arrangement import Arrangement

    arr = _band_arrangement("pop")
    arr.parts[1] = Part("bass", 33, False, arr.parts[1].notes, 0.0, -2.5)   # a user's -2.5 dB
    path = tmp_path / "arrangement.mid"
    vols = export.write_arrangement_midi(path, arr, {"drums": 0.0, "bass": -12.0, "pads": -20.0})
    assert vols[:2] == [100, 50]
    back = Arrangement.from_midi(path)
    assert {p.name: round(p.gain_db, 2) for p in back.parts} == {"drums": 0.0, "bass": -2.5, "pads": 0.0}
    # the bass's volume moved in a DAW from 50 to 25: 40 log10(25/50) = -12.04 dB more
    mid = mido.MidiFile(str(path))
    for track in mid.tracks:
        if any(m.type == "track_name" and m.name == "bass" for m in track):
            for m in track:
                if m.type == "control_change" and m.control == 7:
                    m.value = 25
                    break
    edited = tmp_path / "edited.mid"
    mid.save(str(edited))
    back = Arrangement.from_midi(edited)
    bass = next(p for p in back.parts if p.name == "bass")
    assert bass.gain_db == pytest.approx(-2.5 + 40 * np.log10(25 / 50), abs=0.01)
    # a file from elsewhere (no hum2band level text): the volume is the gain, as before, to a
    # volume step (-2.5 dB is 86.6, written 87: 40 log10(0.87) = -2.42 dB)
    plain = tmp_path / "plain.mid"
    arr.write_midi(plain)
    gains = {p.name: p.gain_db for p in Arrangement.from_midi(plain).parts}
    assert gains == pytest.approx({"drums": 0.0, "bass": 40 * np.log10(0.87), "pads": 0.0}, abs=1e-6)
