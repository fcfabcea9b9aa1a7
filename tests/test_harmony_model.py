"""The harmony transformer: the beat grid, shapes, seeded sampling, locked chords, training,
checkpoints, file harmonization and the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hum2band.compose.harmony import grid as G
from hum2band.music.chords import ChordSymbol
from hum2band.music.leadsheet import BeatNote, ChordSpan, LeadSheet
from hum2band.compose.harmony.harmonize import DEFAULT_MODEL_PATH, chords_json, harmonize, harmonize_files, read_melody
from hum2band.music.key import Key
from hum2band.compose.harmony.model import Harmony, HarmonyConfig, HarmonyTransformer, collate, generate, harmony_loss, load_model, pick_chord, regenerate_bars, save_model, window_of
from hum2band.train.harmony import evaluate, prepare_songs, train, validation_batches

TINY = HarmonyConfig(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=64, dropout=0.0,
                     window_bars=8, context_bars=4)

# I-vi-IV-V in C, melody on chord tones: a learnable toy corpus.
_PROG = [(0, "maj"), (9, "min"), (5, "maj"), (7, "7")]


def toy_leadsheet(i: int, n_bars: int = 8, tonic: int = 0) -> LeadSheet:
    notes, chords = [], []
    for b in range(n_bars):
        root, q = _PROG[b % 4]
        root = (root + tonic) % 12
        tones = ChordSymbol.make(root, q).pitch_classes()
        for k in range(4):
            notes.append(BeatNote(b * 4 + k, b * 4 + k + 1, 60 + tones[(k + i) % len(tones)]))
        chords.append(ChordSpan(b * 4.0, b * 4.0 + 4.0, ChordSymbol.make(root, q)))
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return LeadSheet(f"toy{i}", "pop909", notes, chords, (4, 4), Key(names[tonic], "major"), 4, 100.0, "pop")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models run fastest on one thread (and do not fight a parallel test run for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return HarmonyTransformer(TINY).eval()


def test_grid_round_trips_chords_and_is_key_relative():
    ls = toy_leadsheet(0, tonic=2)
    song = G.leadsheet_grid(ls)
    assert song.n_beats == 32 and song.features.shape == (32, G.N_BEAT_FEATURES)
    spans = G.grid_to_spans(song.chord, song.bass, song.early, song.tonic_pc)
    assert [(s, e, c.label) for s, e, c in spans] == [(s, e, c.label) for s, e, c in ls.chords]
    # Key-relative: the same tune in another key is the same grid.
    up = LeadSheet("up", "pop909", [BeatNote(n.onset_beat, n.offset_beat, n.midi + 5) for n in ls.melody],
                   [ChordSpan(a, b, ChordSymbol.make(c.root + 5, c.quality)) for a, b, c in ls.chords],
                   (4, 4), Key("G", "major"), 4, 100.0, "pop")
    other = G.leadsheet_grid(up)
    assert np.array_equal(other.chord, song.chord)
    assert np.allclose(other.features[:, :-2], song.features[:, :-2])  # all but the register
    assert G.decoder_inputs(song.chord)[0] == G.START_INPUT
    assert np.array_equal(G.decoder_inputs(song.chord)[1:], song.chord[:-1])


def test_grid_inversions_anticipations_and_gaps():
    spans = [(0.0, 3.5, ChordSymbol.parse("C")), (3.5, 8.0, ChordSymbol.parse("G/B")),
             (10.0, 12.0, ChordSymbol.parse("Am7"))]
    chord, bass, early = G.chord_targets(spans, 12, 0)
    assert chord[3] == G.chord_class(ChordSymbol.parse("C"), 0)
    assert chord[4] == G.chord_class(ChordSymbol.parse("G"), 0) and bass[4] == 4  # B is 4 above G
    assert early.tolist()[:6] == [0, 0, 0, 0, 1, 0]  # G/B arrives half a beat before beat 4
    assert chord[8] == G.IGNORE and chord[9] == G.IGNORE  # a gap is not a target
    back = G.grid_to_spans(chord, bass, early, 0)
    assert [(s, e, c.label) for s, e, c in back] == [(0.0, 3.5, "C"), (3.5, 8.0, "G/B"), (10.0, 12.0, "Am7")]


def test_melody_features_per_beat():
    notes = [BeatNote(0, 1.5, 62), BeatNote(1.5, 4, 67)]  # D for 1.5 beats, then G (key of C)
    f = G.melody_features(notes, 4, 0)
    sub = f[:, :G.SUBS_PER_BEAT * 13].reshape(4, G.SUBS_PER_BEAT, 13)
    assert sub[0, :, 2].all() and sub[1, :2, 2].all() and sub[1, 2:, 7].all() and sub[3, :, 7].all()
    onsets = f[:, G.SUBS_PER_BEAT * 13:G.SUBS_PER_BEAT * 14]
    assert onsets[0].tolist() == [1, 0, 0, 0] and onsets[1].tolist() == [0, 0, 1, 0] and not onsets[2].any()
    dur = f[:, G.SUBS_PER_BEAT * 14:G.SUBS_PER_BEAT * 14 + 12]
    assert dur[1, 2] == pytest.approx(0.5) and dur[1, 7] == pytest.approx(0.5)
    assert f[2, -1] == 1.0 and f[0, -1] == 0.0  # held over from the beat before
    assert G.melody_features([], 2, 0)[:, 12:G.SUBS_PER_BEAT * 13:13].all()  # no notes: all rests


def test_forward_shapes(tiny_model):
    songs = prepare_songs([toy_leadsheet(i) for i in range(3)])
    batch = collate([window_of(s, 0, 8) for s in songs])
    chord, bass, early = tiny_model(batch["features"], batch["beat_in_bar"], batch["conditions"], batch["pad"],
                                    batch["prev_chord"])
    assert chord.shape == (3, 32, G.N_CHORD_CLASSES) and bass.shape == (3, 32, 12) and early.shape == (3, 32, 2)
    assert torch.isfinite(chord).all()
    loss, stats = harmony_loss(tiny_model, batch)
    assert torch.isfinite(loss) and stats["n"] == 96


def test_decoder_is_causal(tiny_model):
    song = prepare_songs([toy_leadsheet(4)])[0]
    batch = collate([window_of(song, 0, 8)])
    args = (batch["features"], batch["beat_in_bar"], batch["conditions"], batch["pad"])
    with torch.inference_mode():
        a = tiny_model(*args, batch["prev_chord"])[0]
        changed = batch["prev_chord"].clone()
        changed[0, 20:] = 5
        b = tiny_model(*args, changed)[0]
    assert torch.allclose(a[0, :20], b[0, :20], atol=1e-5) and not torch.allclose(a[0, 20:], b[0, 20:])


def test_incremental_decoding_matches_full_decoding(tiny_model):
    from hum2band.compose.harmony.model import IncrementalDecoder

    song = prepare_songs([toy_leadsheet(4)])[0]
    batch = collate([window_of(song, 0, 8)])
    with torch.inference_mode():
        memory = tiny_model.encode(batch["features"], batch["beat_in_bar"], batch["conditions"], batch["pad"])
        full = tiny_model.decode(memory, batch["pad"], batch["prev_chord"], batch["beat_in_bar"])
        inc = IncrementalDecoder(tiny_model, memory, batch["beat_in_bar"])
        steps = [inc.feed(int(p)) for p in batch["prev_chord"][0]]
    for k in range(3):
        assert torch.allclose(full[k][0], torch.stack([s[k] for s in steps]), atol=1e-4)


def test_pick_chord_takes_the_most_likely_family():
    logits = torch.full((G.N_CHORD_CLASSES,), -20.0)
    q = G.QUALITY_LIST.index
    logits[0 * G.N_QUALITIES + q("maj")] = 0.0      # C: 0.30
    logits[0 * G.N_QUALITIES + q("maj7")] = -0.2    # Cmaj7: 0.25 -> the C family has 0.55
    logits[9 * G.N_QUALITIES + q("min")] = 0.4      # Am: 0.45, the single most likely class
    z = torch.softmax(logits, -1)
    assert int(z.argmax()) == 9 * G.N_QUALITIES + q("min")
    assert pick_chord(logits, 0.0, 0.9, None) == q("maj")
    gen = torch.Generator().manual_seed(0)
    picks = {pick_chord(logits, 1.0, 1.0, gen) for _ in range(50)}
    assert picks == {q("maj"), q("maj7")}  # the quality varies, the family does not


def test_generation_is_seeded_and_covers_the_song(tiny_model):
    song = G.leadsheet_grid(toy_leadsheet(1, n_bars=20))
    song.chord[:] = G.IGNORE
    a = generate(tiny_model, song, seed=3, temperature=1.0, top_p=1.0, sample_family=True)
    b = generate(tiny_model, song, seed=3, temperature=1.0, top_p=1.0, sample_family=True)
    c = generate(tiny_model, song, seed=4, temperature=1.0, top_p=1.0, sample_family=True)
    assert np.array_equal(a.chord, b.chord) and len(a.chord) == 80
    assert not np.array_equal(a.chord, c.chord)  # an untrained model samples almost uniformly
    assert ((a.chord >= 0) & (a.chord < G.N_CHORD_CLASSES)).all()


def test_locked_chords_are_obeyed(tiny_model):
    ls = toy_leadsheet(2, n_bars=12)
    chart = "D | D | G A | Bm | D | D | G A | Bm | D | D | G A | Bm"
    spans = harmonize(ls, seed=1, temperature=1.0, locked_chords=chart, model=tiny_model)
    got = [(s, e, c.label) for s, e, c in spans]
    want = []
    for b, bar in enumerate(chart.split("|")):
        for i, name in enumerate(bar.split()):
            step = 4 / len(bar.split())
            want.append((b * 4 + i * step, b * 4 + (i + 1) * step, name))
    # merge repeats as the harmonizer does
    merged = []
    for s, e, n in want:
        if merged and merged[-1][2] == n:
            merged[-1] = (merged[-1][0], e, n)
        else:
            merged.append((s, e, n))
    assert got == merged


def test_partly_locked_chords_leave_the_rest_to_the_model(tiny_model):
    ls = toy_leadsheet(2, n_bars=8)
    spans = harmonize(ls, seed=1, temperature=0.0, locked_chords=[(4.0, 6.0, "F#m7"), (6.0, 8.0, "B7")],
                      model=tiny_model)
    assert (4.0, 6.0, "F#m7") in [(s, e, c.label) for s, e, c in spans]
    assert (6.0, 8.0, "B7") in [(s, e, c.label) for s, e, c in spans]
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(32.0)
    assert all(b[0] == pytest.approx(a[1]) for a, b in zip(spans, spans[1:]))  # no holes


def test_regenerate_keeps_other_bars(tiny_model):
    song = G.leadsheet_grid(toy_leadsheet(3, n_bars=12))
    first = generate(tiny_model, song, seed=0, temperature=1.0, sample_family=True)
    again = regenerate_bars(tiny_model, song, first, 4, 8, seed=9, temperature=1.0)
    assert np.array_equal(again.chord[:16], first.chord[:16]) and np.array_equal(again.chord[32:], first.chord[32:])


def test_tiny_model_learns_and_checkpoint_resumes(tmp_path):
    torch.manual_seed(0)
    songs = prepare_songs([toy_leadsheet(i, tonic=i % 12) for i in range(12)])
    val = validation_batches(songs[:3], TINY.window_bars)
    before = evaluate(HarmonyTransformer(TINY), val)
    summary = train(songs, songs[:3], tmp_path, minutes=5, checkpoints=tmp_path, config=TINY, batch_size=8,
                    lr=3e-3, warmup=5, max_steps=60, eval_every=30, checkpoint_minutes=100, log=lambda m: None)
    assert summary["steps"] == 60
    after = summary["history"][-1]
    assert after["val_chord_loss"] < before["chord_loss"] - 1.0  # it learns the toy progression
    assert summary["best_val_chord_acc_hidden"] > 0.3  # from one sung note a beat; chance is 1/216
    ck = torch.load(tmp_path / "harmony-checkpoint.pt", weights_only=False)
    assert ck["step"] == 60
    resumed = train(songs, songs[:3], tmp_path, minutes=5, checkpoints=tmp_path, config=TINY, batch_size=8,
                    lr=3e-3, warmup=5, max_steps=65, eval_every=30, checkpoint_minutes=100, resume=True,
                    log=lambda m: None)
    assert resumed["steps"] == 65 and len(resumed["history"]) == len(summary["history"]) + 1
    model = load_model(tmp_path / "harmony.pt")
    assert model.config == TINY
    assert (tmp_path / "harmony.pt").stat().st_size < 1_000_000


def _write_midi(path: Path, with_key: bool = True) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=90.0)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    if with_key:
        pm.key_signature_changes.append(pretty_midi.KeySignature(pretty_midi.key_name_to_key_number("G major"), 0.0))
    inst = pretty_midi.Instrument(0, name="Melody")
    spb = 60.0 / 90.0
    pitches = [67, 71, 74, 72, 71, 69, 67, 66, 67]
    for i, p in enumerate(pitches):
        inst.notes.append(pretty_midi.Note(90, p, i * spb, (i + 1) * spb))
    pm.instruments.append(inst)
    pm.write(str(path))


def test_read_midi_and_write_json(tmp_path, tiny_model):
    mid = tmp_path / "tune.mid"
    _write_midi(mid)
    score = read_melody(mid)
    assert score.meter == (3, 4) and score.key.tonic == "G" and len(score.notes) == 9
    assert score.notes[1].onset_beat == pytest.approx(1.0, abs=1e-3)
    assert score.beat_to_seconds(3.0) == pytest.approx(2.0, abs=1e-3)
    spans = harmonize(score, style="waltz", seed=0, model=tiny_model)
    assert spans[-1][1] == pytest.approx(9.0)  # three bars of 3/4
    doc = chords_json(score, spans)
    assert doc["meter"] == [3, 4] and doc["key"] == "G major"
    c0 = doc["chords"][0]
    assert c0["start"] == pytest.approx(score.beat_to_seconds(c0["start_beat"]), abs=1e-3)
    assert ChordSymbol.parse(c0["chord"]) == ChordSymbol.parse(c0["label"])


def test_harmonize_files_with_a_saved_model(tmp_path, tiny_model):
    mid = tmp_path / "a.mid"
    _write_midi(mid, with_key=False)
    save_model(tiny_model, tmp_path / "m.pt")
    out = harmonize_files([mid], tmp_path / "out", style="folk", seed=0, model_path=tmp_path / "m.pt")
    doc = json.loads(out[0].read_text())
    assert out[0].name == "a.json" and doc["chords"] and doc["key"]
    from hum2band.errors import InputError, OptionError

    with pytest.raises(OptionError):
        harmonize_files([mid], tmp_path / "out", style="polka", model_path=tmp_path / "m.pt")
    with pytest.raises(InputError):
        harmonize_files([tmp_path / "missing.mid"], tmp_path / "out", model_path=tmp_path / "m.pt")


def test_shipped_weights_generate():
    model = load_model(DEFAULT_MODEL_PATH)
    assert DEFAULT_MODEL_PATH.stat().st_size < 50_000_000
    ls = toy_leadsheet(0, n_bars=32)
    spans = harmonize(ls, style="pop", seed=0, temperature=0.0, model=model)
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(128.0)
    # On this I-vi-IV-V tune a trained model finds mostly the written chords.
    from hum2band.train.harmony_metrics import chord_accuracy

    assert chord_accuracy(ls.chords, spans)[0] > 0.5


_XML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
<part id="P1">
<measure number="0"><attributes><divisions>2</divisions><key><fifths>-1</fifths><mode>major</mode></key>
<time><beats>3</beats><beat-type>4</beat-type></time></attributes>
<direction><sound tempo="60"/></direction>
<note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><voice>1</voice></note></measure>
<measure number="1">
<note><pitch><step>F</step><octave>5</octave></pitch><duration>4</duration><voice>1</voice></note>
<note><pitch><step>A</step><octave>5</octave></pitch><duration>2</duration><voice>1</voice></note></measure>
<measure number="2">
<note><pitch><step>G</step><octave>5</octave></pitch><duration>6</duration><voice>1</voice></note></measure>
</part></score-partwise>"""


def test_read_musicxml_with_pickup(tmp_path, tiny_model):
    p = tmp_path / "waltz.musicxml"
    p.write_text(_XML)
    score = read_melody(p)
    assert score.meter == (3, 4) and score.key.tonic == "F" and score.tempo_bpm == pytest.approx(60.0)
    # The one-beat pickup sits at the end of bar 0; bar 1 starts on beat 3.
    assert [n.onset_beat for n in score.notes] == pytest.approx([2.0, 3.0, 5.0, 6.0])
    assert score.beat_to_seconds(3.0) == pytest.approx(1.0)  # the first full bar at 1 s
    spans = harmonize(score, seed=0, model=tiny_model)
    assert spans[-1][1] == pytest.approx(9.0)
