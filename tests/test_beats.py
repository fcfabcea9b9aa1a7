"""The rhythm stage's note model and bar-pointer decoder (hum2band.listen.beats), the bar-line fixes
(--downbeat, --pickup) and the beat model's trainer, on small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hum2band.errors import OptionError
from hum2band.listen import beats as B
from hum2band.listen.bar_fix import check_bar_fix
from hum2band.listen import rhythm as R
from hum2band.music.meter import beats_per_bar


def performed(place_units, meter=(4, 4), bpm=96.0, drift=0.04, seed=0, start_s=0.6):
    """Onset times of positions given in twelfths of a beat, sung with a drifting tempo."""
    rng = np.random.default_rng(seed)
    u = np.asarray(place_units, dtype=float) / B.UNITS_PER_BEAT
    period = 60.0 / bpm * (1.0 + drift * np.sin(u / 6.0))
    t = start_s + np.concatenate([[0.0], np.cumsum(np.diff(u) * period[1:])])
    return t + rng.normal(0.0, 0.012, len(t)), 60.0 / bpm


def oracle_beliefs(units, meter, sure=0.8):
    """Beliefs that know each event's place and beat of the bar with probability ``sure``."""
    n = len(units)
    place = np.full((n, B.UNITS_PER_BEAT + 1), (1 - sure) / B.UNITS_PER_BEAT)
    place[np.arange(n), np.asarray(units) % B.UNITS_PER_BEAT] = sure
    bar = np.full((n, len(B.BAR_CLASSES)), (1 - sure) / (len(B.BAR_CLASSES) - 1))
    mi = B.METERS.index(meter)
    col = {c: k for k, c in enumerate(B.BAR_CLASSES)}
    beat = (np.asarray(units) // B.UNITS_PER_BEAT) % beats_per_bar(meter)
    bar[np.arange(n), [col[(mi, int(b))] for b in beat]] = sure
    return B.NoteBeliefs(np.log(place), np.log(bar))


def uniform_beliefs(n):
    return B.NoteBeliefs(np.full((n, B.UNITS_PER_BEAT + 1), -np.log(B.UNITS_PER_BEAT + 1)),
                         np.full((n, len(B.BAR_CLASSES)), -np.log(len(B.BAR_CLASSES))))


# a syncopated 4/4 line (twelfths from a bar line): as many notes on the "and" as on the beat
SYNCOPATED = [0, 6, 18, 24, 30, 42, 48, 54, 66, 72, 78, 90, 96, 102, 114, 120, 126, 138,
              144, 150, 162, 168, 174, 186, 192]


def events(onset_s, length_s=0.2):
    onset_s = np.asarray(onset_s, dtype=float)
    return B.NoteEvents(onset_s, onset_s + length_s, np.full(len(onset_s), 60.0),
                        np.arange(len(onset_s)))


def test_decoder_puts_syncopated_notes_on_the_and_when_the_note_model_says_so():
    t, beat_s = performed(SYNCOPATED)
    ev = events(t)
    r = B.decode_rhythm(ev, oracle_beliefs(SYNCOPATED, (4, 4)), t[-1] + 2.0, B.DecoderSettings())
    assert r.meter == (4, 4)
    assert abs(r.tempo_bpm / 96.0 - 1.0) < 0.06
    # every note lies on the decoded grid where the score puts it: on a beat or half-way
    u = np.interp(t, r.beats_s, np.arange(len(r.beats_s)))
    want = np.asarray(SYNCOPATED) / 12.0
    rel = (u - u[0]) - (want - want[0])
    assert np.max(np.abs(rel)) < 0.15
    # the first note is on a bar line
    assert np.min(np.abs(r.downbeats_s - t[0])) < 0.05


def test_decoder_follows_drift_and_keeps_beats_inside_the_take():
    units = np.arange(0, 12 * 64, 12)  # a note on every beat, 16 bars
    t, _ = performed(units, bpm=80.0, drift=0.06)
    r = B.decode_rhythm(events(t), oracle_beliefs(units, (4, 4)), t[-1] + 1.0,
                        B.DecoderSettings())
    assert np.all(np.diff(r.beats_s) > 0)
    assert r.beats_s[0] >= 0.0 and r.beats_s[-1] <= t[-1] + 1.0
    err = np.array([np.min(np.abs(r.beats_s - x)) for x in t])
    assert np.median(err) < 0.03


def test_six_eight_read_as_two_dotted_quarter_beats():
    units = []
    for bar in range(12):  # jig: eighths (4 twelfths of a dotted quarter) in two beats
        units += [24 * bar + k for k in (0, 4, 8, 12, 16, 20)]
    t, _ = performed(units, meter=(6, 8), bpm=60.0)
    r = B.decode_rhythm(events(t), oracle_beliefs(units, (6, 8)), t[-1] + 1.0,
                        B.DecoderSettings())
    assert r.meter == (6, 8)
    assert abs(r.tempo_bpm / 60.0 - 1.0) < 0.06


def test_pickup_fix_puts_the_first_note_before_the_bar_line():
    units = list(range(0, 12 * 32, 12))
    t, beat_s = performed(units)
    # no musical evidence at all: only the fix decides where bar 1 is
    r = B.decode_rhythm(events(t), uniform_beliefs(len(t)), t[-1] + 1.0, B.DecoderSettings(),
                        meter=(4, 4), pickup_beats=1.0)
    first_down = r.downbeats_s[r.downbeats_s > t[0] + 0.05][0]
    assert abs((first_down - t[0]) / beat_s - 1.0) < 0.15


def test_downbeat_fix_puts_a_bar_line_at_that_time_on_a_note_or_between_notes():
    units = list(range(0, 12 * 32, 6))  # eighth notes
    t, beat_s = performed(units)
    for at in (t[13], 0.5 * (t[20] + t[21])):
        r = B.decode_rhythm(events(t), uniform_beliefs(len(t)), t[-1] + 1.0,
                            B.DecoderSettings(), meter=(3, 4), downbeat_s=float(at))
        assert r.meter == (3, 4)
        assert np.min(np.abs(r.downbeats_s - at)) < 0.06


def test_bar_fix_errors_are_one_line_and_say_what_to_do():
    with pytest.raises(OptionError, match="outside the take") as e:
        check_bar_fix(42.0, None, duration_s=30.0)
    assert "\n" not in str(e.value)
    with pytest.raises(OptionError, match="outside the take"):
        check_bar_fix(-1.0, None)
    with pytest.raises(OptionError, match="less than a bar"):
        check_bar_fix(None, 3.0, meter=(3, 4))
    with pytest.raises(OptionError, match="pickup"):
        check_bar_fix(None, -0.5)
    check_bar_fix(1.5, 2.5, duration_s=30.0, meter=(4, 4))  # fine


def test_numpy_forward_is_the_torch_module():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    config = {"n_features": len(B.FEATURE_NAMES), "hidden": 16, "layers": 2, "dropout": 0.0}
    net = B.make_beat_net(config).eval()
    x = np.random.default_rng(1).normal(size=(23, len(B.FEATURE_NAMES))).astype(np.float32)
    with torch.no_grad():
        place, bar = net(torch.from_numpy(x)[None])
    got = B.note_beliefs(B.beat_model_from_state(config, net.state_dict()), x)
    assert np.allclose(got.log_place, torch.log_softmax(place[0], -1).numpy(), atol=1e-4)
    assert np.allclose(got.log_bar, torch.log_softmax(bar[0], -1).numpy(), atol=1e-4)


def test_note_features_are_finite_and_scale_free():
    on = np.cumsum(np.r_[0.5, np.full(20, 0.3)])
    ev = events(on, 0.25)
    f = B.note_features(ev, 0, False)
    assert f.shape == (21, len(B.FEATURE_NAMES)) and np.isfinite(f).all()
    g = B.note_features(events(on * 2.0, 0.5), 0, False)
    moved = [B.FEATURE_NAMES.index("log2 median ioi")]
    keep = [k for k in range(f.shape[1]) if k not in moved]
    assert np.allclose(f[:, keep], g[:, keep], atol=1e-5)  # only the absolute time scale moves
    assert np.isclose(g[0, moved[0]] - f[0, moved[0]], 1.0)


def test_trainer_labels_match_the_score():
    from hum2band.music.leadsheet import BeatNote, LeadSheet
    from hum2band.train import beats as T

    # a 3/4 tune: dotted quarter + eighth + quarter in each bar
    notes = []
    for bar in range(24):
        b0 = 3.0 * bar
        notes += [BeatNote(b0, b0 + 1.5, 67), BeatNote(b0 + 1.5, b0 + 2, 69),
                  BeatNote(b0 + 2, b0 + 3, 71)]
    sheet = LeadSheet("t", "nottingham", notes, [], (3, 4), None, 3, 120.0)
    songs = T.songs_from_sheets([sheet])
    rng = np.random.default_rng(0)
    ex = None
    while ex is None:
        ex = T.make_example(songs[0], rng)
    on_grid = ex.place != B.OFF_GRID
    frac = np.mod(ex.beat[on_grid], 1.0)
    assert set(np.round(frac * 12).astype(int) % 12) <= {0, 6}
    assert np.array_equal(ex.place[on_grid], np.round(frac * 12).astype(int) % 12)
    mi = B.METERS.index((3, 4))
    assert all(B.BAR_CLASSES[c][0] == mi for c in ex.bar)


def _phrased_song():
    """A 4/4 song in 4-bar phrases from its first bar (bar k starts at beat 4 k): each phrase
    ends with a note held to beat 3 of its last bar, a rest and a pickup on beat 4 into the next
    phrase, except the phrase of bars 8-11, which is sung into across its bar line (a note held
    over it, no rest) and starts on beat 2."""
    from hum2band.train import beats as T

    on, off = [], []
    for bar in range(16):
        b0 = 4.0 * bar
        if bar == 7:  # held over the bar line into bar 8: no rest, no pickup
            on += [b0, b0 + 1.0, b0 + 2.0]
            off += [b0 + 1.0, b0 + 2.0, b0 + 5.0]
        elif bar == 8:
            on += [b0 + 1.0, b0 + 2.0, b0 + 3.0]
            off += [b0 + 2.0, b0 + 3.0, b0 + 4.0]
        elif bar % 4 == 3:
            on += [b0, b0 + 3.0]
            off += [b0 + 2.0, b0 + 4.0]
        else:
            on += [b0, b0 + 1.0, b0 + 2.0, b0 + 3.0]
            off += [b0 + 1.0, b0 + 2.0, b0 + 3.0, b0 + 4.0]
    on, off = np.array(on), np.array(off)
    return T.Song("pop909/x", (4, 4), on, off, np.full(len(on), 60.0), None)


def test_phrase_excerpts_start_at_a_phrase_or_its_pickup_and_end_with_a_phrase():
    from hum2band.train import beats as T

    song = _phrased_song()
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        i0, line, stop = T.phrase_excerpt(song, rng, target_beats=float(rng.uniform(10, 40)))
        assert line in (0.0, 16.0, 32.0, 48.0)  # every 4th bar from the first sung bar (bar 0)
        n_bars = (np.floor(stop + 1e-9) - line) / 4.0
        assert n_bars % 4 == 0 and n_bars >= 4 and stop - np.floor(stop) < 1.0
        assert line + 4 * n_bars <= song.offset_beat.max() + 1e-9
        first = song.onset_beat[i0]
        if line == 0.0:  # the song's first note
            assert first == 0.0
        elif line == 32.0:  # sung into across the bar line: the first note after it
            assert first == 33.0
        else:  # the pickup after the rest
            assert first == line - 1.0
        seen.add(line)
    assert seen == {0.0, 16.0, 32.0, 48.0}


def test_phrase_share_sets_how_many_excerpts_are_whole_phrases():
    from hum2band.train import beats as T

    song = _phrased_song()

    def starts(share, n=300):
        rng = np.random.default_rng(2)
        out = []
        while len(out) < n:
            got = T.perform_excerpt(song, rng, with_beats=True, phrase_starts=share)
            if got is None:  # too short: a random start near the end
                continue
            sung, beats = got
            out.append(sung[0][3] % 4.0)
            assert len(beats) and sung[0][3] >= 0.0  # counted from a bar line at or before it
        return np.array(out)

    # whole phrases start on beat 1, on the pickup (beat 4 of the bar before) or, once, on beat 2
    assert set(np.round(starts(1.0), 6)) == {0.0, 3.0, 1.0}
    mixed = starts(0.0)
    assert np.mean(mixed == 0.0) > 0.4 and np.mean(~np.isin(mixed, (0.0, 3.0))) > 0.05
    # a share of 0 draws nothing extra: the excerpts are those of the earlier recipe
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert T.perform_excerpt(song, a)[0] == T.perform_excerpt(song, b, phrase_starts=0.0)[0]


def test_trainer_draws_songs_after_their_source_weight_within_the_meter():
    from hum2band.train import beats as T

    def song(name, meter):
        on = np.arange(16.0)
        return T.Song(name, meter, on, on + 1.0, np.full(16, 60.0), None)

    songs = ([song(f"pop909/{k}", (4, 4)) for k in range(10)]
             + [song(f"nottingham/{k}", (4, 4)) for k in range(10)]
             + [song(f"nottingham/w{k}", (3, 4)) for k in range(10)])
    drawn = []

    def make(s, rng):
        drawn.append(s)
        return s

    T.draw_examples(songs, np.random.default_rng(0), 4000, 0.5, make, {"pop909": 3.0})
    four = [s for s in drawn if s.meter == (4, 4)]
    share = 20 ** 0.5 / (20 ** 0.5 + 10 ** 0.5)  # the meters drawn as before (balance 0.5)
    assert abs(len(four) / len(drawn) - share) < 0.03
    pop = sum(s.name.startswith("pop909") for s in four) / len(four)
    assert abs(pop - 0.75) < 0.03  # 10 x 3 against 10 x 1
    assert T.song_weights(songs[:20], None) is None
    drawn.clear()
    T.draw_examples(songs, np.random.default_rng(0), 4000, 0.5, make)
    four = [s for s in drawn if s.meter == (4, 4)]
    assert abs(sum(s.name.startswith("pop909") for s in four) / len(four) - 0.5) < 0.03


def test_trainer_options_are_checked_with_a_one_line_error(capsys):
    from hum2band.train import beats as T

    for bad in (["--meters", "5/4"], ["--meters", "four"], ["--source-weight", "pop909"],
                ["--source-weight", "pop909=0"], ["--phrase-starts", "1.5"], ["--dropout", "1"],
                ["--best-by", "tempo"]):
        with pytest.raises(SystemExit) as e:
            T.main(["--minutes", "0"] + bad)
        assert e.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_train_command_runs_the_beat_offset_recipe_into_its_own_files(monkeypatch, tmp_path):
    from hum2band.app.cli import main
    from hum2band.train import beats as T

    calls = []
    monkeypatch.setattr(T, "main", lambda argv: calls.append(list(argv)) or 0)
    assert main(["train", "--model", "beats-offset", "--out", str(tmp_path),
                 "--beats-offset-minutes", "3"]) == 0
    (argv,) = calls
    got = T.argument_parser().parse_args(argv)
    assert (got.name, got.minutes, got.meters, got.best_by) == ("beats-offset", 3.0, "4/4,3/4", "place")
    assert got.source_weight == ["pop909=2.2"] and got.out == str(tmp_path)
