"""The band's balance on rendered audio: every part at its role's level in the style, and the band a
steady distance under the voice whatever level the take was recorded at. Loudness is measured here
with pyloudnorm (ITU-R BS.1770), not with the renderer's own meter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from hum2band.music.arrangement import Arrangement, Part, PartNote
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import Rhythm
from hum2band.perform import render, soundfonts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SR = render.SAMPLE_RATE_HZ
needs_fluidsynth = pytest.mark.skipif(render.fluidsynth_unavailable_reason() is not None,
                                      reason="libfluidsynth cannot be loaded")


def _lufs(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(np.asarray(x, dtype=np.float64)))


def _band(style: str, drum_velocity: int = 40) -> Arrangement:
    """Ode to Joy's beats with four parts at very different MIDI velocities (quiet drums)."""
    truth = json.loads((EXAMPLES / "ode_to_joy.truth.json").read_text())
    rhythm = Rhythm(np.array(truth["beats"]), np.array(truth["downbeats"]), tuple(truth["meter"]),
                    float(truth["tempo_bpm"]))
    melody = Melody([Note(0.5, 1.0, 62.0, 62, 90)], 0.0, rhythm, Key("D", "major"),
                    float(truth["duration_s"]), source=str(EXAMPLES / "ode_to_joy.m4a"))
    beats = rhythm.beats_s
    span = [(beats[i], beats[i + 1]) for i in range(len(beats) - 1)]
    parts = [
        Part("drums", 0, True, [PartNote(a, a + 0.1, 36 if i % 2 == 0 else 38, drum_velocity)
                                for i, (a, _) in enumerate(span)]),
        Part("bass", 33, False, [PartNote(a, b - 0.05, 38, 120) for a, b in span]),
        Part("keys", 0, False, [PartNote(a, b - 0.05, m, 110) for a, b in span[::2] for m in (62, 66, 69)]),
        Part("pads", 48, False, [PartNote(span[0][0], span[-1][1], m, 30) for m in (62, 66, 69)]),
    ]
    return Arrangement(melody, parts, [], style=style, seed=0, model_version="test",
                       vocal_path=str(EXAMPLES / "ode_to_joy.m4a"))


@needs_fluidsynth
@pytest.mark.parametrize("style", ["pop", "ballad"])
def test_every_part_sits_at_its_role_whatever_its_velocities(style):
    arr = _band(style)
    stems = render.render_parts(arr, soundfonts.find_soundfont(), reverb=False)
    level = {name: _lufs(x) for name, x in stems.items()}
    loudest = max(level.values())
    for name, lufs in level.items():
        assert loudest - lufs <= 10.0, (name, level)
        want = soundfonts.balance_lu(name, style) - soundfonts.balance_lu("drums", style)
        assert lufs - level["drums"] == pytest.approx(want, abs=0.7), (name, level)
    if style == "pop":
        assert loudest - level["drums"] <= 6.0   # a pop drummer carries the groove


@needs_fluidsynth
def test_the_band_sits_the_same_distance_under_the_voice_at_any_recording_level():
    arr = _band("pop")
    take = render.load_vocal(arr.vocal_path)
    n = render.rendered_length(arr, take.shape[0])
    stems = render.render_parts(arr, soundfonts.find_soundfont(), n, reverb=False)
    gaps = []
    for recorded_db, vocal_level_db in ((0.0, 0.0), (-20.0, 0.0), (-20.0, 3.0)):
        take_at = take * np.float32(10 ** (recorded_db / 20))
        result = render.mix(stems, take_at, vocal_level_db=vocal_level_db)
        band = sum(x.astype(np.float64) for k, x in result.stems.items() if k != "vocal")
        gaps.append(_lufs(result.stems["vocal"]) - _lufs(band))
    assert gaps[0] == pytest.approx(render.BAND_UNDER_VOICE_LU, abs=0.3)
    assert 3.0 <= gaps[0] <= 9.0
    assert gaps[1] == pytest.approx(gaps[0], abs=0.3)            # a quiet take: the same balance
    assert gaps[2] == pytest.approx(gaps[0] + 3.0, abs=0.3)      # --vocal-level moves it


@needs_fluidsynth
def test_the_render_reports_the_gain_it_gave_each_stem_and_the_midi_carries_it(tmp_path):
    """``gains_db`` is each stem's level over the raw FluidSynth render (pan aside), measured
    here with pyloudnorm on a second render; the exported MIDI's CC 7 follows it on GM's curve."""
    import mido

    from hum2band.perform import export

    arr = _band("pop")
    font = soundfonts.find_soundfont()
    stems = render.render_parts(arr, font, reverb=False)
    n = next(iter(stems.values())).shape[0]
    assert set(stems.gains_db) == set(stems)
    for part in arr.parts:
        raw = render.render_part(part, font, n, arr.tuning_cents, reverb=False).astype(np.float64)
        gl, gr = render.pan_gains(part.pan)
        raw[:, 0] *= gl
        raw[:, 1] *= gr
        assert _lufs(stems[part.name]) - _lufs(raw) == pytest.approx(stems.gains_db[part.name], abs=0.2)
    result = render.mix(stems)
    assert result.part_gains_db == stems.gains_db
    path = tmp_path / "a.mid"
    export.write_arrangement_midi(path, arr, result.part_gains_db)
    cc7 = {}
    for track in mido.MidiFile(str(path)).tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        values = [m.value for m in track if m.type == "control_change" and m.control == 7]
        if values:
            cc7[name] = values[0]
    top = max(stems.gains_db.values())
    for name, g in stems.gains_db.items():
        assert cc7[name] == round(100 * 10 ** ((g - top) / 40)), (name, cc7, stems.gains_db)
    # the drums were played at velocity 40: the loudest correction, so they come in at 100
    assert cc7["drums"] == 100 and min(cc7.values()) < 100
