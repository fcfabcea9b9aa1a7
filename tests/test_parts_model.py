"""The accompaniment model: grid encoding, shapes, training, decoding rules, every style and meter."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from hum2band.compose.parts import grid as G
from hum2band.train import parts as PT
from hum2band.music.chords import ChordSymbol
from hum2band.compose.parts.model import PartsModel, PartsModelConfig, parts_loss

TINY = PartsModelConfig(d_model=32, n_heads=2, enc_layers=1, dec_layers=1, d_ff=64, d_tick=16)


def _example(i: int, n_bars: int = 4, split: str = "train"):
    """A small pop example: root-position chords, eighth-note hats, bass on 1 and 3."""
    rng = np.random.default_rng(i)
    roots = rng.choice([0, 5, 7, 9], size=n_bars)
    chords = [(b * 4.0, b * 4 + 4.0, ChordSymbol.make(int(r), "min" if r == 9 else "maj"))
              for b, r in enumerate(roots)]
    mel = np.array([[k * 1.0, k + 0.9, 60 + int(rng.integers(0, 12))] for k in range(n_bars * 4)])
    drums = [[k * 0.5, 0.1, 42, 80] for k in range(n_bars * 8)]
    drums += [[k * 1.0, 0.1, 36 if k % 2 == 0 else 38, 100] for k in range(n_bars * 4)]
    bass = [[b * 4.0 + j, 1.9, 36 + c.root, 90] for b, (_, _, c) in enumerate(chords) for j in (0, 2)]
    return SimpleNamespace(example_id=f"t{i}", origin="mma", split=split, style="pop", groove="8Beat",
                           meter=(4, 4), beats_per_bar=4, tempo_bpm=110.0, tonic_pc=0, mode="major",
                           n_bars=n_bars, melody=mel, chords=chords,
                           parts={"drums": np.array(drums), "bass": np.array(bass)})


def test_grid_round_trip_of_chord_relative_pitches():
    ex = _example(0)
    ex.melody = np.zeros((0, 3))
    p = PT.prepare(ex)
    on, vel, dur = G.densify(p.events, p.n_bars)
    # every bass note is the chord root, two octaves + floor: relative index 36 - 20 = 16
    s_on = G.part_slices("bass")[0]
    bars, ticks, rel = np.nonzero(on[..., s_on])
    assert len(rel) == 2 * ex.n_bars
    assert set(rel.tolist()) == {16}
    assert set(ticks.tolist()) == {0, 24}
    assert np.allclose(vel[bars, ticks, G.part_slices("bass")[1].start + 16], 90 / 127, atol=1e-6)
    # drums: kick/snare on every beat, hats on every eighth
    hats = on[..., G.DRUM_CLASS_OF_KEY[42]]
    assert hats.sum() == 8 * ex.n_bars
    assert p.events.present.tolist() == [True, True, False, False, False]


def test_training_targets_drop_notes_that_clash_with_the_melody():
    ex = _example(1, n_bars=1)
    ex.melody = np.array([[0.0, 4.0, 61.0]])          # C#4 held over the bar
    ex.parts = {"keys": np.array([[0.0, 1.0, 60, 80], [0.0, 1.0, 64, 80]])}  # C (clash) and E
    ex.chords = [(0.0, 4.0, ChordSymbol.make(0, "maj"))]
    p = PT.prepare(ex)
    cols = p.events.column - G.part_slices("keys")[0].start
    assert sorted((cols + G.REGISTER_FLOOR["keys"]).tolist()) == [64]


def test_model_output_shapes_and_loss_masks_absent_parts():
    torch.manual_seed(0)
    model = PartsModel(TINY)
    items = [(PT.prepare(_example(i)), None) for i in range(3)]
    batch = PT.collate([(p, PT.window(p, 0, p.n_bars)) for p, _ in items])
    out = model(batch["ticks"], batch["bar_pos"], batch["style"], batch["variant"], batch["meter"],
                batch["tempo"], batch["mode"], batch["prev_onsets"], batch["bar_mask"])
    assert out.shape == (3, 4, G.MAX_TICKS, G.OUT_SIZE)
    loss, parts = parts_loss(out, batch["on"], batch["vel"], batch["dur"], batch["tick_mask"], batch["part_mask"])
    # changing the output of an unsupervised part (guitar) does not change the loss
    out2 = out.clone()
    out2[..., G.part_slices("guitar")[0]] += 5.0
    loss2, _ = parts_loss(out2, batch["on"], batch["vel"], batch["dur"], batch["tick_mask"], batch["part_mask"])
    assert torch.isclose(loss, loss2)
    out3 = out.clone()
    out3[..., G.part_slices("bass")[0]] += 5.0
    loss3, _ = parts_loss(out3, batch["on"], batch["vel"], batch["dur"], batch["tick_mask"], batch["part_mask"])
    assert not torch.isclose(loss, loss3)


def test_a_tiny_model_trains_and_its_loss_falls(tmp_path):
    train = [PT.prepare(_example(i)) for i in range(12)]
    val = [PT.prepare(_example(100 + i, split="valid")) for i in range(4)]
    result = PT.train(train, val, tmp_path / "out", minutes=2.0, checkpoints=tmp_path / "ck", config=TINY,
                      batch_size=4, window_bars=4, lr=3e-3, warmup=5, eval_every=20, max_steps=60,
                      log=lambda s: None)
    hist = result["history"]
    assert hist[0]["val_loss"] > hist[-1]["val_loss"]
    assert hist[-1]["val_onset_f1"] > 0.5
    assert (tmp_path / "out" / "parts.pt").is_file()
    # resuming continues from the checkpoint's step
    more = PT.train(train, val, tmp_path / "out", minutes=2.0, checkpoints=tmp_path / "ck", config=TINY,
                    resume=True, batch_size=4, window_bars=4, lr=3e-3, warmup=5, eval_every=20,
                    max_steps=70, log=lambda s: None)
    assert more["steps"] == 70
