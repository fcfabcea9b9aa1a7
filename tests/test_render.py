"""Arrangement object model, MIDI export/import, soundfont catalogue, rendering and the mix."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from hum2band.perform import soundfonts
from hum2band.music.arrangement import Arrangement, ChordSpan, Part, PartNote, beats_to_seconds, cc7_to_gain_db, cc10_to_pan, gain_db_to_cc7, pan_to_cc10, seconds_to_beats
from hum2band.errors import OptionError
from hum2band.music.key import Key
from hum2band.music.melody import Melody, Note
from hum2band.music.meter import Rhythm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SR = 44100


def ode_arrangement(tuning_cents: float = 18.0) -> Arrangement:
    """Ode to Joy as sung (notes.txt, truth beats), a bass and a drum part, chords per bar."""
    truth = json.loads((EXAMPLES / "ode_to_joy.truth.json").read_text())
    rows = np.loadtxt(EXAMPLES / "ode_to_joy.notes.txt")
    notes = [Note(a, b, p, int(round(p - tuning_cents / 100.0)), 90) for a, b, p in rows]
    rhythm = Rhythm(np.array(truth["beats"]), np.array(truth["downbeats"]), tuple(truth["meter"]),
                    float(truth["tempo_bpm"]))
    melody = Melody(notes, tuning_cents, rhythm, Key("D", "major"), float(truth["duration_s"]),
                    source=str(EXAMPLES / "ode_to_joy.m4a"))
    beats = rhythm.beats_s
    bass = Part("bass", 33, False,
                [PartNote(beats[i], beats[i + 1] - 0.05, 38 if (i // 4) % 2 == 0 else 45, 100)
                 for i in range(len(beats) - 1)], pan=-0.2, gain_db=-2.0)
    drums = Part("drums", 0, True,
                 [PartNote(b, b + 0.1, 36 if i % 2 == 0 else 38, 100) for i, b in enumerate(beats)]
                 + [PartNote(b + 0.28, b + 0.33, 42, 70) for b in beats])
    bars = list(rhythm.downbeats_s) + [rhythm.beats_s[-1] + 0.6]
    chords = [ChordSpan.from_seconds(rhythm, bars[i], bars[i + 1], "D" if i % 2 == 0 else "A7")
              for i in range(len(bars) - 1)]
    return Arrangement(melody, [drums, bass], chords, style="pop", seed=7, model_version="test-0",
                       tuning_cents=tuning_cents, vocal_path=str(EXAMPLES / "ode_to_joy.m4a"))


# ---- object model and JSON ----------------------------------------------------------------------
def test_beats_and_seconds_are_inverse():
    rhythm = ode_arrangement().melody.rhythm
    t = np.array([0.1, 0.8212, 2.0, 10.0, 19.5, 25.0])
    b = seconds_to_beats(rhythm, t)
    assert np.allclose(beats_to_seconds(rhythm, b), t, atol=1e-9)
    assert seconds_to_beats(rhythm, rhythm.beats_s[3]) == pytest.approx(3.0)


def test_json_schema_and_round_trip():
    arr = ode_arrangement()
    d = json.loads(json.dumps(arr.to_json()))
    for key in ("input", "style", "seed", "model_version", "key", "tuning_cents", "meter",
                "tempo_bpm", "beats", "downbeats", "melody", "chords", "parts", "timings_s"):
        assert key in d
    assert d["chords"][1] == {"start": round(arr.chords[1].start_s, 4),
                              "end": round(arr.chords[1].end_s, 4),
                              "start_beat": 4.0, "end_beat": 8.0, "chord": "A:7", "label": "A7"}
    assert d["parts"][0]["name"] == "drums" and d["parts"][0]["stem"] == "stems/drums.wav"
    assert len(d["parts"][1]["notes"]) == len(arr.parts[1].notes)
    back = Arrangement.from_json(d)
    assert [c.chord for c in back.chords] == [c.chord for c in arr.chords]
    assert [p.name for p in back.parts] == ["drums", "bass"] and back.parts[0].is_drum
    assert back.parts[1].pan == pytest.approx(-0.2) and back.tuning_cents == 18.0


def test_cc_conversions():
    for pan in (-1.0, -0.3, 0.0, 0.5, 1.0):
        assert cc10_to_pan(pan_to_cc10(pan)) == pytest.approx(pan, abs=0.01)
    for g in (-12.0, -3.0, 0.0, 2.0):
        assert cc7_to_gain_db(gain_db_to_cc7(g)) == pytest.approx(g, abs=0.2)


# ---- MIDI ---------------------------------------------------------------------------------------
def _midi_messages(path):
    mid = mido.MidiFile(str(path))
    out = []
    for i, tr in enumerate(mid.tracks):
        tick = 0
        for msg in tr:
            tick += msg.time
            out.append((i, tick, msg))
    return mid, out


def test_midi_tracks_channels_markers_tempo_map_and_tuning(tmp_path):
    arr = ode_arrangement(tuning_cents=18.0)
    path = tmp_path / "arrangement.mid"
    arr.write_midi(path)
    mid, msgs = _midi_messages(path)
    assert mid.type == 1
    names = [m.name for _, _, m in msgs if m.type == "track_name"]
    assert names == ["Melody", "drums", "bass"]
    # channels: drums on 9 (MIDI channel 10), the others melodic
    by_track = {}
    for i, _, m in msgs:
        if m.type == "note_on":
            by_track.setdefault(i, set()).add(m.channel)
    assert by_track[2] == {9} and 9 not in by_track[1] | by_track[3]
    programs = {i: m.program for i, _, m in msgs if m.type == "program_change"}
    assert programs[3] == 33 and programs[2] == 0
    # markers = chord labels at the chord starts
    pm = pretty_midi.PrettyMIDI(str(path))
    markers = [(pm.tick_to_time(t), m.text) for _, t, m in msgs if m.type == "marker"]
    assert markers[-1][1] == "N.C." and markers[-1][0] == pytest.approx(arr.chords[-1].end_s, abs=0.002)
    markers = markers[:-1]  # the last chord ends before the take does
    assert [text for _, text in markers] == [c.chord.label for c in arr.chords]
    assert np.allclose([t for t, _ in markers], [c.start_s for c in arr.chords], atol=0.002)
    # the tempo map puts the bar lines on the sung downbeats
    db = pm.get_downbeats()
    sung = arr.melody.rhythm.downbeats_s
    nearest = np.array([np.min(np.abs(db - d)) for d in sung])
    assert nearest.max() < 0.030
    # tuning: a pitch bend on every melodic channel, none on drums
    bends = [(m.channel, m.pitch) for _, _, m in msgs if m.type == "pitchwheel"]
    assert {ch for ch, _ in bends} == by_track[1] | by_track[3]
    assert all(p == round(18.0 / 200 * 8192) for _, p in bends)

    flat = ode_arrangement(tuning_cents=0.0)
    flat.write_midi(tmp_path / "flat.mid")
    _, msgs0 = _midi_messages(tmp_path / "flat.mid")
    assert not [m for _, _, m in msgs0 if m.type == "pitchwheel"]


def test_midi_reads_back(tmp_path):
    arr = ode_arrangement()
    path = tmp_path / "arrangement.mid"
    arr.write_midi(path)
    back = Arrangement.from_midi(path, vocal_path=arr.vocal_path)
    assert [p.name for p in back.parts] == ["drums", "bass"]
    assert back.parts[0].is_drum and not back.parts[1].is_drum
    assert back.parts[1].program == 33
    assert back.parts[1].pan == pytest.approx(-0.2, abs=0.02)
    assert back.parts[1].gain_db == pytest.approx(-2.0, abs=0.2)
    assert back.tuning_cents == pytest.approx(18.0, abs=0.1)
    for a, b in zip(arr.parts, back.parts):
        assert len(a.notes) == len(b.notes)
        on_a = np.sort([n.onset_s for n in a.notes])
        on_b = np.sort([n.onset_s for n in b.notes])
        assert np.abs(on_a - on_b).max() < 0.003
    assert [n.midi for n in back.melody.notes] == [n.midi for n in arr.melody.notes]
    assert [c.chord for c in back.chords] == [c.chord for c in arr.chords]
    assert np.allclose([c.start_s for c in back.chords], [c.start_s for c in arr.chords], atol=0.002)
    assert np.allclose([c.end_s for c in back.chords], [c.end_s for c in arr.chords], atol=0.002)
    assert back.melody.rhythm.meter == (4, 4)
    # the file's bar lines are the sung downbeats
    db = back.melody.rhythm.downbeats_s
    assert max(np.min(np.abs(db - d)) for d in arr.melody.rhythm.downbeats_s) < 0.030


def test_chord_gaps_become_no_chord_markers(tmp_path):
    from hum2band.music.arrangement import chord_markers

    arr = ode_arrangement()
    rhythm = arr.melody.rhythm
    spans = [ChordSpan.from_beats(rhythm, 0, 3, "Dm7"), ChordSpan.from_beats(rhythm, 4, 8, "G7"),
             ChordSpan.from_beats(rhythm, 8, 12, "N.C."), ChordSpan.from_beats(rhythm, 12, 16, "C")]
    texts = [t for _, t in chord_markers(spans)]
    assert texts == ["Dm7", "N.C.", "G7", "N.C.", "C", "N.C."]
    arr.chords = spans
    arr.write_midi(tmp_path / "gaps.mid")
    mid = mido.MidiFile(str(tmp_path / "gaps.mid"))  # a DAW adds a section marker
    mid.tracks[0].insert(0, mido.MetaMessage("marker", text="Verse 1", time=0))
    mid.save(str(tmp_path / "gaps.mid"))
    back = Arrangement.from_midi(tmp_path / "gaps.mid")
    assert [c.chord.label for c in back.chords] == ["Dm7", "N.C.", "G7", "N.C.", "C"]
    ends = [c.end_s for c in back.chords]
    assert np.allclose([ends[0], ends[2], ends[4]], [spans[0].end_s, spans[1].end_s, spans[3].end_s],
                       atol=0.002)


def test_midi_read_error_is_one_line(tmp_path):
    from hum2band.errors import InputError

    bad = tmp_path / "x.mid"
    bad.write_bytes(b"not midi at all")
    with pytest.raises(InputError) as info:
        Arrangement.from_midi(bad)
    assert "\n" not in str(info.value)


# ---- soundfont catalogue ------------------------------------------------------------------------
def test_catalogue_styles_and_parts():
    cat = soundfonts.load_catalogue()
    expected = {"pop", "rock", "ballad", "folk", "country", "swing", "jazz-ballad", "bossa nova",
                "latin", "funk", "reggae", "waltz"}
    assert expected <= set(soundfonts.styles())
    for style, programs in cat["styles"].items():
        assert set(programs) == set(cat["parts"]), style
        assert all(0 <= p <= 127 for p in programs.values())
    assert soundfonts.program_for("bass", "jazz-ballad") == 32
    assert soundfonts.program_for("keys", "ballad") == 4
    assert soundfonts.program_for("organ", "reggae") in (16, 17)
    assert soundfonts.part_defaults("Piano", "Bossa-Nova").program == 4
    assert soundfonts.part_defaults("drums").is_drum
    with pytest.raises(OptionError, match="choose one of"):
        soundfonts.canonical_style("polka")
    with pytest.raises(OptionError):
        soundfonts.part_defaults("theremin")


def test_find_soundfont(tmp_path, monkeypatch):
    monkeypatch.delenv(soundfonts.SOUNDFONT_ENV, raising=False)
    found = soundfonts.find_soundfont()
    assert found.is_file() and found.suffix.lower() in (".sf2", ".sf3")
    assert soundfonts.find_soundfont(found) == found
    with pytest.raises(OptionError) as info:
        soundfonts.find_soundfont(tmp_path / "missing.sf2")
    assert "\n" not in str(info.value) and "does not exist" in str(info.value)
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    with pytest.raises(OptionError, match="not a SoundFont"):
        soundfonts.find_soundfont(fake)
    monkeypatch.setattr(soundfonts, "candidate_soundfonts", lambda catalogue=None: [tmp_path / "no.sf2"])
    with pytest.raises(OptionError, match="no soundfont found"):
        soundfonts.find_soundfont()


# ---- rendering ----------------------------------------------------------------------------------
from hum2band.perform import render  # noqa: E402  (a broken renderer must fail, not skip)

_NO_FLUIDSYNTH = render.fluidsynth_unavailable_reason()
needs_fluidsynth = pytest.mark.skipif(_NO_FLUIDSYNTH is not None,
                                      reason=f"libfluidsynth cannot be loaded: {_NO_FLUIDSYNTH}")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    arr = ode_arrangement()
    font = soundfonts.find_soundfont()
    vocal = render.load_vocal(arr.vocal_path)
    n = render.rendered_length(arr, vocal.shape[0])
    stems = render.render_parts(arr, font, n)
    result = render.mix(stems, vocal, vocal_level_db=0.0)
    whole = render.render_arrangement(arr, font, vocal_level_db=0.0, workers=2)
    assert list(whole.stems) == list(result.stems)  # the one-call path gives the same mix
    assert np.array_equal(whole.mix, result.mix)
    out = tmp_path_factory.mktemp("render")
    written = render.write_stems(out / "stems", result)
    render.write_mix(out / "mix.wav", result)
    return arr, vocal, stems, result, written, out


@needs_fluidsynth
def test_stems_are_non_silent_and_equal_length(rendered):
    arr, vocal, stems, result, written, out = rendered
    assert set(result.stems) == {"drums", "bass", "vocal"}
    lengths = {x.shape for x in result.stems.values()}
    assert len(lengths) == 1 and result.mix.shape in lengths
    assert result.mix.shape[0] >= int((arr.duration_s + render.TAIL_S) * SR) - 1
    for name, x in stems.items():
        rms_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20)
        assert rms_db > -50, name
    bass = stems["bass"]
    assert np.sqrt(np.mean(bass[:, 0] ** 2)) > np.sqrt(np.mean(bass[:, 1] ** 2))  # panned left
    files = {p.name for p in (out / "stems").iterdir()}
    assert files == {"drums.wav", "bass.wav", "vocal.wav"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


@needs_fluidsynth
def test_written_stems_sum_to_the_mix(rendered):
    _, _, _, result, written, out = rendered
    mix, rate = sf.read(out / "mix.wav", dtype="float64")
    assert rate == SR and mix.shape == result.mix.shape
    total = sum(sf.read(p, dtype="float64")[0] for p in written.values())
    err_db = 10 * np.log10(np.sum((total - mix) ** 2) / np.sum(mix ** 2))
    assert err_db < -40
    assert err_db < -100  # float32 WAVs: the sum is exact to rounding


@needs_fluidsynth
def test_vocal_stem_is_the_take(rendered):
    arr, vocal, _, result, written, _ = rendered
    from hum2band.files.audio import decode

    take = decode(arr.vocal_path, sample_rate_hz=None, channels=2, max_duration_s=None)
    assert take.sample_rate_hz == SR
    stem, _ = sf.read(written["vocal"], dtype="float64")
    gain = 10 ** (result.vocal_gain_db / 20)
    n = take.samples.shape[0]
    assert np.allclose(stem[:n] / gain, take.samples, atol=2e-7 / min(gain, 1.0))
    assert not np.any(stem[n:])  # padded with silence after the take, never moved


@needs_fluidsynth
def test_mix_loudness_and_no_clipping(rendered):
    import pyloudnorm

    _, _, _, result, _, out = rendered
    mix, _ = sf.read(out / "mix.wav", dtype="float64")
    lufs = pyloudnorm.Meter(SR).integrated_loudness(mix)
    # the voice sits over the band, so its peaks may hold the mix a little under the target
    assert abs(lufs - render.TARGET_LUFS) < 1.0
    assert abs(result.loudness_lufs - lufs) < 0.05
    assert np.max(np.abs(mix)) < 1.0
    assert render.oversampled_peak(mix) <= 10 ** (render.PEAK_CEILING_DBFS / 20) * 1.001


def test_mix_lowers_the_gain_rather_than_clip():
    rng = np.random.default_rng(1)
    quiet = (rng.standard_normal((SR * 3, 2)) * 0.001).astype(np.float32)
    spikes = np.zeros((SR * 3, 2), np.float32)
    spikes[:: SR // 2] = 0.5  # a very peaky stem: the loudness target would need +30 dB
    result = render.mix({"pad": quiet, "clicks": spikes}, None)
    assert result.limited_by_peak
    assert max(np.max(np.abs(x)) for x in result.stems.values()) <= 10 ** (-1 / 20) + 1e-6
    assert np.max(np.abs(result.mix)) <= 10 ** (-1 / 20) + 1e-6
    assert result.loudness_lufs < render.TARGET_LUFS


def _peak_hz(x: np.ndarray) -> float:
    seg = x[SR // 4: SR // 4 + SR, 0].astype(np.float64) * np.hanning(SR)
    spec = np.abs(np.fft.rfft(seg, 8 * SR))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1: k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (8 * SR)


@needs_fluidsynth
def test_pitch_bend_tunes_the_band():
    font = soundfonts.find_soundfont()
    organ = Part("organ", 19, False, [PartNote(0.0, 1.5, 57, 100)])  # A3, church organ
    plain = render.render_part(organ, font, int(1.6 * SR), 0.0, reverb=False)
    flat = render.render_part(organ, font, int(1.6 * SR), -30.0, reverb=False)
    cents = 1200 * np.log2(_peak_hz(flat) / _peak_hz(plain))
    assert cents == pytest.approx(-30.0, abs=3.0)
    drums = Part("drums", 0, True, [PartNote(0.1, 0.2, 38, 110)])
    hit = render.render_part(drums, font, SR // 2, -30.0)
    assert np.max(np.abs(hit)) > 1e-3


@needs_fluidsynth
def test_write_stems_never_overwrites_without_asking(tmp_path, rendered):
    result = rendered[3]
    (tmp_path / "stems").mkdir()
    with pytest.raises(OptionError, match="already exists"):
        render.write_stems(tmp_path / "stems", result)
    assert list((tmp_path / "stems").iterdir()) == []
    render.write_stems(tmp_path / "stems", result, overwrite=True)
    assert len(list((tmp_path / "stems").iterdir())) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["stems"]


def test_vocal_is_resampled_only_when_its_rate_differs():
    take = sf.read(EXAMPLES / "twinkle.wav", dtype="float32")  # 22.05 kHz mono
    assert take[1] == 22050 and take[0].ndim == 1
    vocal = render.load_vocal(EXAMPLES / "twinkle.wav")
    assert vocal.dtype == np.float32 and vocal.shape[1] == 2
    assert np.array_equal(vocal[:, 0], vocal[:, 1])  # mono on both sides
    assert abs(vocal.shape[0] - 2 * take[0].shape[0]) <= 64  # same duration at 44.1 kHz


@needs_fluidsynth
def test_any_soundfont_and_threads_give_the_same_stems():
    import pretty_midi

    tim = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    beats = 0.1 + 0.5 * np.arange(4)
    melody = Melody([], 0.0, Rhythm(beats, beats[::4], (4, 4), 120.0), Key("C", "major"), 2.0)
    parts = [Part("drums", 40, True, [PartNote(b, b + 0.1, 38, 100) for b in beats]),
             Part("keys", 4, False, [PartNote(b, b + 0.4, 60 + 4 * i, 90) for i, b in enumerate(beats)],
                  pan=0.5)]
    arr = Arrangement(melody, parts, [], tuning_cents=-10.0)
    one = render.render_parts(arr, soundfonts.find_soundfont(tim), workers=1)
    two = render.render_parts(arr, tim, workers=2)
    assert list(one) == ["drums", "keys"]
    for name in one:
        assert one[name].shape == two[name].shape == (render.rendered_length(arr), 2)
        assert np.array_equal(one[name], two[name])
        assert np.max(np.abs(one[name])) > 1e-3, name
    keys = one["keys"]
    assert np.sum(keys[:, 1] ** 2) > 2 * np.sum(keys[:, 0] ** 2)  # panned right


def test_type_0_midi_splits_parts_by_channel(tmp_path):
    arr = ode_arrangement()
    arr.write_midi(tmp_path / "a.mid")
    merged = mido.MidiFile(type=0, ticks_per_beat=mido.MidiFile(str(tmp_path / "a.mid")).ticks_per_beat)
    merged.tracks.append(mido.merge_tracks(mido.MidiFile(str(tmp_path / "a.mid")).tracks))
    merged.save(str(tmp_path / "zero.mid"))
    back = Arrangement.from_midi(tmp_path / "zero.mid")
    by_name = {p.name: p for p in back.parts}
    assert by_name["drums"].is_drum
    assert len(by_name["drums"].notes) == len(arr.parts[0].notes)
    bass = [p for p in back.parts if p.program == 33]
    assert len(bass) == 1 and len(bass[0].notes) == len(arr.parts[1].notes)
    assert [c.chord for c in back.chords] == [c.chord for c in arr.chords]
    assert back.tuning_cents == pytest.approx(18.0, abs=0.1)


def test_missing_fluidsynth_is_a_one_line_error(monkeypatch):
    import sys

    monkeypatch.setattr(render, "_fluidsynth", None)
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails as without libfluidsynth
    reason = render.fluidsynth_unavailable_reason()
    assert reason is not None and "\n" not in reason and "libfluidsynth3" in reason
    with pytest.raises(render.RenderError):
        render.render_part(Part("bass", 33, False, []), "x.sf2", 100)


@pytest.mark.parametrize("case", ["noise", "sine48k", "gated_tail", "mono22k", "rendered"])
def test_loudness_meter_agrees_with_pyloudnorm(case):
    import pyloudnorm

    from hum2band.perform.loudness import integrated_loudness

    rng = np.random.default_rng(3)
    if case == "noise":
        x, sr = rng.standard_normal((44100 * 5, 2)) * 0.05, 44100
    elif case == "sine48k":
        x, sr = np.stack([np.sin(2 * np.pi * 997 * np.arange(48000 * 3) / 48000) * 0.3] * 2, 1), 48000
    elif case == "gated_tail":   # a loud part then near-silence: both gates matter
        x, sr = np.concatenate([rng.standard_normal((44100 * 2, 2)) * 0.1,
                                rng.standard_normal((44100 * 3, 2)) * 0.001]), 44100
    elif case == "mono22k":
        x, sr = rng.standard_normal(22050 * 2) * 0.2, 22050
    else:   # a low note and a high note: the K-weighting's shelf and high-pass both count
        t = np.arange(44100 * 3) / 44100
        x, sr = np.stack([0.3 * np.sin(2 * np.pi * 55 * t), 0.1 * np.sin(2 * np.pi * 4000 * t)], 1), 44100
    ours = integrated_loudness(x, sr)
    ref = pyloudnorm.Meter(sr).integrated_loudness(x)
    assert abs(ours - ref) < 0.01, (ours, ref)


def test_loudness_meter_long_input_path_agrees_with_pyloudnorm():
    import pyloudnorm

    from hum2band.perform import loudness

    rng = np.random.default_rng(5)
    t = np.arange(44100 * 70) / 44100
    x = np.stack([0.2 * np.sin(2 * np.pi * 220 * t), 0.05 * rng.standard_normal(len(t))], 1)
    assert len(x) > loudness.LONG_INPUT_S * 44100          # the IIR path
    assert abs(loudness.integrated_loudness(x, 44100) - pyloudnorm.Meter(44100).integrated_loudness(x)) < 0.01
