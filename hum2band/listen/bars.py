"""Bar lines on a beat grid: the bar model of the rhythm stage (``models/bars.pt``).

Once the beats are known, where does the bar start? Onset timing alone cannot say: in 4/4 pop a
melody may start as many notes on beat 3 as on beat 1. A listener hears the bar from the music
laid on the beats: which beats carry long notes and chord tones, where phrases start and stop,
where the same figure comes back. This model reads exactly that, one token per counted beat:

``grid_features``  -> per beat of a candidate grid: which twelfths of the beat have onsets, the
                      pitch class (relative to the key's tonic) sounding at the beat and held
                      through it, the length of the note on the beat, rests, register, the
                      meter and the mode (:data:`GRID_FEATURE_NAMES`).
``bar_log_probs``  -> a bidirectional GRU's log-probabilities of each beat's place in the bar,
                      shape (n_beats, beats per bar), given the meter.
``downbeat_scores``-> for each way to lay the bar lines on the grid (bar starts on beat
                      0, 1, ...), the mean log-probability of that labelling.

The net runs in numpy (the same recurrence as :mod:`hum2band.listen.beats`). Trained by
:mod:`hum2band.train.bars` on the melodies with real bar lines in the data folder, sung with
human timing and degraded like the transcriber's notes (see ``DATA.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..files.paths import PROJECT_ROOT
from .beats import BAR_CLASSES, METERS, _log_softmax, encode, gru_encoder

#: Onset places resolved in a beat (twelfths: sixteenths and triplets both fall on them).
SLOTS_PER_BEAT = 12
#: The net's last class: the token's grid is not the melody's (its beats fall between the true
#: beats, or it counts twice or half as many).
WRONG_GRID = len(BAR_CLASSES)
#: Longest grid read at once, beats (a longer take is read in overlapping windows).
MAX_BEATS = 256
#: Windows of a longer take overlap by this many beats.
WINDOW_OVERLAP = 32

GRID_FEATURE_NAMES = (
    tuple(f"onset_{k}" for k in range(SLOTS_PER_BEAT))
    + tuple(f"pc_at_beat_{k}" for k in range(12))
    + ("rest_at_beat",)
    + tuple(f"pc_held_{k}" for k in range(12))
    + ("log2_len_on_beat", "has_onset_on_beat", "log2_longest_start", "rest_share",
       "height_at_beat", "minor", "first_beat", "last_beat")
    + tuple(f"meter_{m[0]}_{m[1]}" for m in METERS)
)


def grid_positions(t_s: np.ndarray, beats_s: np.ndarray) -> np.ndarray:
    """Times (s) as counted-beat positions on the grid ``beats_s`` (beat k at position k),
    continued beyond the grid's ends at the end beats' period."""
    k = np.arange(len(beats_s), dtype=float)
    u = np.interp(t_s, beats_s, k)
    lo_p = beats_s[1] - beats_s[0]
    hi_p = beats_s[-1] - beats_s[-2]
    u = np.where(t_s < beats_s[0], (t_s - beats_s[0]) / lo_p, u)
    return np.where(t_s > beats_s[-1], k[-1] + (t_s - beats_s[-1]) / hi_p, u)


@dataclass
class GridTokens:
    """A melody laid on a beat grid, one token per counted beat.

    Attributes
    ----------
    features : np.ndarray, shape (n_beats, len(GRID_FEATURE_NAMES)), float32
    first_beat : int
        Index in the grid of the first token (the beat holding the first onset).
    """

    features: np.ndarray
    first_beat: int


def grid_features(onset_s: Sequence[float], offset_s: Sequence[float], pitch: Sequence[float],
                  beats_s: Sequence[float], tonic_pc: int, minor: bool, meter) -> GridTokens:
    """The melody's notes read on a beat grid, one feature row per beat it spans.

    Parameters
    ----------
    onset_s, offset_s, pitch : sequence of float, shape (n_notes,)
        The notes (s, s, fractional MIDI).
    beats_s : sequence of float, shape (n_beats >= 2,)
        The grid's counted beats (s), increasing.
    tonic_pc : int
        The key's tonic pitch class (pitch classes are read relative to it).
    minor : bool
    meter : tuple
        One of :data:`hum2band.listen.beats.METERS`.

    Returns
    -------
    GridTokens
    """
    beats = np.asarray(beats_s, dtype=float)
    on = np.asarray(onset_s, dtype=float)
    off = np.maximum(np.asarray(offset_s, dtype=float), on + 1e-3)
    p = np.asarray(pitch, dtype=float)
    if len(beats) < 2 or len(on) == 0:
        raise ValueError("grid_features needs at least 2 beats and 1 note")
    order = np.argsort(on, kind="stable")
    on, off, p = on[order], off[order], p[order]
    u_on, u_off = grid_positions(on, beats), grid_positions(off, beats)
    half = 0.5 / SLOTS_PER_BEAT
    j0 = int(np.floor(u_on[0] + half))
    j1 = max(int(np.ceil(u_off[-1] - half)), j0 + 1)
    n = j1 - j0
    pcs = (np.round(p).astype(int) - int(tonic_pc)) % 12
    median = float(np.median(p))
    f = np.zeros((n, len(GRID_FEATURE_NAMES)), dtype=np.float32)
    col = {name: i for i, name in enumerate(GRID_FEATURE_NAMES)}
    c_onset, c_pc, c_held = col["onset_0"], col["pc_at_beat_0"], col["pc_held_0"]
    # onsets: the beat they fall in and their twelfth (a note a hair early counts on the beat)
    tok = np.floor(u_on + half).astype(int) - j0
    slot = np.clip(np.round((u_on - (tok + j0)) * SLOTS_PER_BEAT).astype(int), 0, SLOTS_PER_BEAT - 1)
    keep = (tok >= 0) & (tok < n)
    f[tok[keep], c_onset + slot[keep]] = 1.0
    length_b = np.maximum(u_off - u_on, 1e-3)
    # the longest note starting in each beat; the note starting on the beat itself
    for i in np.flatnonzero(keep):
        t = tok[i]
        f[t, col["log2_longest_start"]] = max(f[t, col["log2_longest_start"]],
                                             np.clip(np.log2(length_b[i]) + 4.0, 0.0, 7.0))
        if slot[i] == 0:
            f[t, col["has_onset_on_beat"]] = 1.0
            f[t, col["log2_len_on_beat"]] = np.clip(np.log2(length_b[i]) + 4.0, 0.0, 7.0)
    # what sounds at each beat, and what is held through it (overlap-weighted pitch classes)
    for t in range(n):
        a = t + j0 + 0.0
        at = np.flatnonzero((u_on <= a + half) & (u_off > a + half))
        if len(at):
            i = at[-1]
            f[t, c_pc + pcs[i]] = 1.0
            f[t, col["height_at_beat"]] = (p[i] - median) / 12.0
        else:
            f[t, col["rest_at_beat"]] = 1.0
        ov = np.clip(np.minimum(u_off, a + 1.0) - np.maximum(u_on, a), 0.0, None)
        m = ov > 0
        if np.any(m):
            np.add.at(f[t], c_held + pcs[m], ov[m])
        f[t, col["rest_share"]] = max(0.0, 1.0 - float(min(ov.sum(), 1.0)))
    f[:, col["minor"]] = float(bool(minor))
    f[0, col["first_beat"]] = 1.0
    f[-1, col["last_beat"]] = 1.0
    f[:, col[f"meter_{meter[0]}_{meter[1]}"]] = 1.0
    return GridTokens(f, j0)


# ------------------------------------------------------------------------------------------------
# The net
# ------------------------------------------------------------------------------------------------
def make_bar_net(config: dict):
    """:class:`BarNet` from its config (``n_features``, ``hidden``, ``layers``, ``dropout``)."""
    import torch

    class BarNet(torch.nn.Module):
        """Beat tokens (batch, n, n_features) -> logits (batch, n, len(BAR_CLASSES) + 1): the
        (meter, beat of the bar) classes, then "the grid is wrong" (:data:`WRONG_GRID`)."""

        def __init__(self, n_features: int, hidden: int, layers: int, dropout: float):
            super().__init__()
            self.inp, self.rnn = gru_encoder(n_features, hidden, layers, dropout)
            self.bar = torch.nn.Linear(2 * hidden, len(BAR_CLASSES) + 1)

        def forward(self, x):
            h, _ = self.rnn(self.inp(x))
            return self.bar(h)

    return BarNet(int(config["n_features"]), int(config["hidden"]), int(config["layers"]),
                  float(config.get("dropout", 0.0)))


#: Where the shipped bar model lives, and the variable that points elsewhere.
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "bars.pt"
MODEL_ENV = "HUM2BAND_BARS_MODEL"


@dataclass
class BarModel:
    """The loaded bar model: :func:`make_bar_net`'s state dict as float32 numpy arrays."""

    weights: dict
    layers: int


def bar_model_from_state(config: dict, state: dict) -> BarModel:
    w = {k: np.asarray(v.float().numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
         for k, v in state.items()}
    return BarModel(w, int(config["layers"]))


def load_bar_model(path=None) -> BarModel:
    """The bar model at ``path`` (else ``$HUM2BAND_BARS_MODEL``, else ``models/bars.pt``), loaded
    once; a missing file is a one-line error that says how to train it."""
    from ..files.weights import load_once

    def load(p: Path) -> BarModel:
        import torch

        ck = torch.load(p, map_location="cpu", weights_only=False)
        return bar_model_from_state(ck["config"], ck["model"])

    return load_once(path, MODEL_ENV, DEFAULT_MODEL_PATH, load, "bar model",
                     "hum2band train --model bars")


def _net_logits(model: BarModel, x: np.ndarray) -> np.ndarray:
    w = model.weights
    return encode(w, model.layers, x) @ w["bar.weight"].T + w["bar.bias"]


def token_log_probs(model: BarModel, tokens: GridTokens) -> np.ndarray:
    """The net's log-probabilities for every beat token, shape (n_beats, len(BAR_CLASSES) + 1)
    (last column :data:`WRONG_GRID`). Grids longer than :data:`MAX_BEATS` are read in
    overlapping windows."""
    x = tokens.features.astype(np.float32)
    n = len(x)
    if n <= MAX_BEATS:
        return _log_softmax(_net_logits(model, x))
    logits = np.zeros((n, WRONG_GRID + 1), dtype=np.float32)
    step = MAX_BEATS - WINDOW_OVERLAP
    for a in range(0, n, step):
        b = min(a + MAX_BEATS, n)
        part = _net_logits(model, x[a:b])
        keep_from = 0 if a == 0 else WINDOW_OVERLAP // 2
        logits[a + keep_from:b] = part[keep_from:]
        if b == n:
            break
    return _log_softmax(logits)


def bar_log_probs(log_probs: np.ndarray, meter) -> np.ndarray:
    """Each beat's place in the bar given the meter, shape (n_beats, beats per bar): the
    (meter, beat) columns of :func:`token_log_probs` renormalised within ``meter``."""
    cols = [i for i, (mi, _) in enumerate(BAR_CLASSES) if METERS[mi] == tuple(meter)]
    return _log_softmax(log_probs[:, cols])


def grid_fit(log_probs: np.ndarray) -> float:
    """How well the grid fits the melody: the mean over beat tokens of the log-odds that the
    grid is right (its beats are the melody's beats) rather than :data:`WRONG_GRID`."""
    right = np.logaddexp.reduce(log_probs[:, :WRONG_GRID], axis=1)
    return float(np.mean(right - log_probs[:, WRONG_GRID]))


def downbeat_scores(log_probs: np.ndarray) -> np.ndarray:
    """Mean log-probability of each bar phase, shape (beats per bar,): entry k labels token t
    as beat ``(t - k) mod beats_per_bar`` of its bar (token k a bar line)."""
    n, bpb = log_probs.shape
    t = np.arange(n)
    return np.array([log_probs[t, (t - k) % bpb].mean() for k in range(bpb)])


def grid_downbeat_scores(model: BarModel, onset_s, offset_s, pitch, beats_s, tonic_pc: int,
                         minor: bool, meter) -> tuple[np.ndarray, int]:
    """Bar-phase scores for a melody on a grid: ``(scores, first_beat)``, where ``scores[k]``
    (see :func:`downbeat_scores`) says how well bar lines at grid beats ``first_beat + k +
    bpb * i`` fit the melody."""
    tokens = grid_features(onset_s, offset_s, pitch, beats_s, tonic_pc, minor, meter)
    lp = token_log_probs(model, tokens)
    return downbeat_scores(bar_log_probs(lp, meter)), tokens.first_beat


__all__ = ["GRID_FEATURE_NAMES", "GridTokens", "BarModel", "grid_features", "make_bar_net",
           "load_bar_model", "token_log_probs", "bar_log_probs", "grid_fit", "WRONG_GRID", "downbeat_scores", "grid_downbeat_scores"]
