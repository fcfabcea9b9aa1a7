"""The bar model's beat tokens (hum2band.listen.bars) and how the rhythm stage reads the model."""

import numpy as np
import pytest

from hum2band.listen import bars as G
from hum2band.listen import rhythm as R
from hum2band.music.melody import Note

COL = {name: i for i, name in enumerate(G.GRID_FEATURE_NAMES)}


def _grid(n_beats, period_s=0.5, start_s=1.0):
    return start_s + period_s * np.arange(n_beats)


def test_tokens_place_onsets_in_the_beat_and_read_pitch_classes_from_the_tonic():
    beats = _grid(8)
    # a C on beat 1, an E on the "and" of beat 1, a G held from beat 2 to beat 4, in C major
    on = [1.5, 1.75, 2.0]
    off = [1.75, 2.0, 3.0]
    pitch = [60.0, 64.0, 67.0]
    tok = G.grid_features(on, off, pitch, beats, tonic_pc=0, minor=False, meter=(4, 4))
    f = tok.features
    assert tok.first_beat == 1
    assert f.shape == (3, len(G.GRID_FEATURE_NAMES))
    assert f[0, COL["onset_0"]] == 1 and f[0, COL["onset_6"]] == 1 and f[0].sum() > 0
    assert f[0, COL["pc_at_beat_0"]] == 1 and f[0, COL["has_onset_on_beat"]] == 1
    assert f[0, COL["pc_held_0"]] == pytest.approx(0.5) and f[0, COL["pc_held_4"]] == pytest.approx(0.5)
    assert f[1, COL["pc_at_beat_7"]] == 1 and f[2, COL["pc_at_beat_7"]] == 1
    assert f[2, COL["has_onset_on_beat"]] == 0 and f[2, COL["onset_0"]] == 0
    assert f[0, COL["first_beat"]] == 1 and f[-1, COL["last_beat"]] == 1
    assert np.all(f[:, COL["meter_4_4"]] == 1) and np.all(f[:, COL["meter_6_8"]] == 0)
    # the same tune in D, read in D: the same tokens
    tok_d = G.grid_features(on, off, [p + 2 for p in pitch], beats, tonic_pc=2, minor=False,
                            meter=(4, 4))
    np.testing.assert_array_equal(tok_d.features, f)


def test_tokens_follow_the_grid_not_the_clock():
    """A singer who slows down: the same notes on a stretched grid give the same tokens."""
    steady = _grid(10)
    on_b = np.array([0.0, 1.0, 1.5, 2.0, 3.0, 4.5, 5.0, 6.0])
    dur_b = np.array([1.0, 0.5, 0.5, 1.0, 1.5, 0.5, 1.0, 2.0])
    pitch = [60, 62, 64, 65, 67, 65, 64, 60]
    warp = lambda u: 1.0 + 0.5 * u + 0.02 * u ** 2  # noqa: E731 -- beats stretch as she slows
    tok_a = G.grid_features(1.0 + 0.5 * on_b, 1.0 + 0.5 * (on_b + dur_b), pitch, steady, 0, False, (4, 4))
    stretched = warp(np.arange(10.0))
    tok_b = G.grid_features(warp(on_b), warp(on_b + dur_b), pitch, stretched, 0, False, (4, 4))
    np.testing.assert_allclose(tok_a.features, tok_b.features, atol=0.05)


def test_downbeat_scores_label_token_k_as_the_bar_line():
    lp = np.log(np.full((8, 4), 0.01))
    for t in range(8):
        lp[t, (t - 1) % 4] = np.log(0.97)  # token 1 is a bar line
    sc = G.downbeat_scores(lp)
    assert int(np.argmax(sc)) == 1


def test_refuses_an_empty_grid():
    with pytest.raises(ValueError):
        G.grid_features([1.0], [1.5], [60.0], [1.0], 0, False, (4, 4))


def _bar_tune(bars=8):
    """A plain 4/4 tune: on every bar a long tonic-triad note on beat 1, two quarter notes on
    beats 3 and 4 leading to the next bar."""
    notes, t, beat_s = [], 0.8, 0.55
    for b in range(bars):
        root = (60, 65, 67, 60)[b % 4]
        notes.append(Note(t, t + 2 * beat_s - 0.05, float(root)))
        notes.append(Note(t + 2 * beat_s, t + 3 * beat_s - 0.05, float(root + 2)))
        notes.append(Note(t + 3 * beat_s, t + 4 * beat_s - 0.05, float(root + 4)))
        t += 4 * beat_s
    return notes, beat_s


def test_shipped_model_hears_the_bar_line_of_a_plain_tune():
    notes, beat_s = _bar_tune()
    beats = notes[0].onset_s + beat_s * np.arange(-2, 34)
    model = G.load_bar_model()
    sc, first = G.grid_downbeat_scores(model, [n.onset_s for n in notes], [n.offset_s for n in notes],
                                       [n.midi_pitch for n in notes], beats, 0, False, (4, 4))
    assert first == 2  # the first note sits on grid beat 2
    assert int(np.argmax(sc)) == 0  # ... and starts a bar
    lp = G.token_log_probs(model, G.grid_features([n.onset_s for n in notes],
                                                  [n.offset_s for n in notes],
                                                  [n.midi_pitch for n in notes], beats, 0, False,
                                                  (4, 4)))
    off_beat = (beats[:-1] + beats[1:]) / 2
    lp_off = G.token_log_probs(model, G.grid_features([n.onset_s for n in notes],
                                                      [n.offset_s for n in notes],
                                                      [n.midi_pitch for n in notes], off_beat, 0,
                                                      False, (4, 4)))
    assert G.grid_fit(lp) > G.grid_fit(lp_off)  # the beats are on the notes, not between them


def test_rhythm_stage_puts_the_bar_line_on_the_long_notes():
    notes, beat_s = _bar_tune()
    rh = R.estimate_rhythm(notes, notes[-1].offset_s + 1.0)
    assert rh.meter == (4, 4)
    assert abs(rh.tempo_bpm - 60 / beat_s) / (60 / beat_s) < 0.04
    bar_starts = np.array([n.onset_s for n in notes[::3]])
    hits = [np.min(np.abs(rh.downbeats_s - t)) < 0.07 for t in bar_starts]
    assert np.mean(hits) >= 0.9


def test_trainer_labels_each_beat_with_its_place_in_the_bar_or_a_wrong_grid():
    from hum2band.listen.beats import BAR_CLASSES, METERS
    from hum2band.music.leadsheet import BeatNote, LeadSheet
    from hum2band.train import bars as T
    from hum2band.train.beats import songs_from_sheets

    notes = []
    for bar in range(24):  # 3/4: a dotted half on beat 1 of every bar
        notes.append(BeatNote(3.0 * bar, 3.0 * bar + 2.9, 67 + bar % 3))
    sheet = LeadSheet("t", "nottingham", notes, [], (3, 4), None, 3, 120.0)
    song = songs_from_sheets([sheet])[0]
    rng = np.random.default_rng(1)
    right = wrong = 0
    heads = []
    while right < 4 or wrong < 3:
        ex = T.make_example(song, rng)
        if ex is None:
            continue
        if ex.bar[0] == G.WRONG_GRID:
            assert np.all(ex.bar == G.WRONG_GRID)
            wrong += 1
            continue
        right += 1
        assert ex.meter == (3, 4)
        beat_of_bar = np.array([BAR_CLASSES[c][1] for c in ex.bar])
        assert all(METERS[BAR_CLASSES[c][0]] == (3, 4) for c in ex.bar)
        assert np.array_equal(np.diff(beat_of_bar) % 3, np.ones(len(ex.bar) - 1))
        # every note starts a bar, so every token with an onset on its beat is beat 0
        on_beat = ex.features[:, COL["has_onset_on_beat"]] > 0
        heads += list(beat_of_bar[on_beat] == 0)
    assert np.mean(heads) > 0.75  # (a few scraps of the transcriber's errors fall elsewhere)


def test_trainer_runs_and_resumes(tmp_path):
    import torch

    from hum2band.train import bars as T

    args = ["--limit", "6", "--minutes", "0.05", "--eval-every", "5", "--batch", "4",
            "--hidden", "8", "--layers", "1", "--out", str(tmp_path / "m"),
            "--checkpoints", str(tmp_path / "ck")]
    assert T.main(args) == 0
    first = torch.load(tmp_path / "ck" / "bars.ckpt", weights_only=False)
    assert T.main(args[:3] + ["0.1"] + args[4:] + ["--resume"]) == 0
    second = torch.load(tmp_path / "ck" / "bars.ckpt", weights_only=False)
    assert second["step"] > first["step"] and second["elapsed_s"] > first["elapsed_s"]
    model = G.load_bar_model(tmp_path / "m" / "bars.pt")
    assert model.weights["bar.bias"].shape == (G.WRONG_GRID + 1,)


def test_pop909_bar_lines_move_to_where_the_chords_change():
    from hum2band.train.datasets import pop909_bar_shift

    beats = 0.5 * np.arange(64)
    # annotated downbeats on beats 0, 4, 8, ...; the chords change on beats 1 and 3 of those bars
    odd = beats[[i for i in range(64) if i % 4 in (1, 3)]]
    assert pop909_bar_shift(beats, 0, 4, odd[::1]) in (1, 3)
    assert pop909_bar_shift(beats, 0, 4, beats[[i for i in range(64) if i % 4 == 1]]) == 1
    # on the annotated downbeat and half bar: left alone
    assert pop909_bar_shift(beats, 0, 4, beats[::2]) == 0
    # on beat 3 only: moved by two beats
    assert pop909_bar_shift(beats, 0, 4, beats[2::4]) == 2
    # too few changes to say
    assert pop909_bar_shift(beats, 0, 4, beats[1:12:4]) == 0
    # 3/4 with the changes on beat 2
    assert pop909_bar_shift(beats, 0, 3, beats[1::3]) == 1
