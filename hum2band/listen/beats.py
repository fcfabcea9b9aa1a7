"""The singer's beat from the melody itself: a learned note model and a bar-pointer decoder.

Onset timing alone cannot tell the beat from the "and" of a syncopated melody; a listener uses
the music -- long notes and the tonic on strong beats, where phrases start, the pickup before a
phrase. This module reads them in two steps. The rhythm stage
(:func:`hum2band.listen.rhythm.estimate_rhythm`) reads step 1, the note model's beliefs, in its
bar-phase and hypothesis scores (by default, on the arrange path too); step 2, this module's own
decoder (:func:`track_beats`), is an alternative that ``benchmarks/rhythm_key.py --beat-model``
compares with it (numbers in ``models/README.md``).

1. **Note model** (:class:`BeatNet`, weights in ``models/beats.pt``, trained by
   :mod:`hum2band.train.beats`). For every distinct onset of the take it reads timing (inter-onset
   intervals and note lengths relative to the take's own median, rests, the absolute time scale),
   pitch (intervals, the scale degree in the estimated key) and a bidirectional GRU's view of the
   whole take, and gives
   * the onset's **place in the beat**, in twelfths of a beat (0 = on the beat, 6 = the "and",
     3/9 sixteenths, 4/8 the eighths of a 6/8 beat) or "off the grid" (a split note, a glide);
   * the **beat of the bar** jointly with the **meter** (4/4 beats 1-4, 3/4 beats 1-3, 6/8 beats
     1-2).
2. **Bar-pointer decoder** (:func:`decode_bar_pointer`): a hidden Markov model over the onsets
   whose state is (beat period, position in the bar in twelfths of a beat), in the spirit of
   Whiteley et al.'s bar pointer, but stepping from onset to onset. Between two onsets the
   position advances by a whole number of twelfths that fits the time between them at the
   state's beat period (Gaussian timing error); the period may change by one step of 3 % per
   onset at a small cost (tempo continuity); the note model's outputs are the emissions. Viterbi
   per meter; the meter whose path scores best with the note model's meter evidence wins.

The decoded positions give every onset its counted beat; the beat times are a local linear fit of
onset time against counted beat (so they follow the singer's drift) at every whole beat.

User fixes: ``tempo_bpm`` keeps the periods within 6 % of it, ``meter`` decodes only that meter,
``pickup_beats`` puts the first note that many beats before a bar line, ``downbeat_s`` puts a bar
line at that time (an onset there, or a point between two onsets).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import OptionError
from ..files.paths import PROJECT_ROOT
from ..music.key import Key
from ..music.melody import Note
from ..music.meter import Rhythm, beats_per_bar
from .bar_fix import check_bar_fix

#: Onsets closer than this (s) are one event (the first note's pitch counts).
ONSET_MERGE_S = 0.05
#: Positions per counted beat (twelfths: sixteenths, triplet eighths, the eighths of 6/8).
UNITS_PER_BEAT = 12
#: The "off the grid" class of the place-in-beat head.
OFF_GRID = UNITS_PER_BEAT
#: Meters the note model knows, in the order of its bar head.
METERS = ((4, 4), (3, 4), (6, 8))
#: Columns of the bar head: (meter index, beat of the bar).
BAR_CLASSES = tuple((mi, b) for mi, m in enumerate(METERS) for b in range(beats_per_bar(m)))
#: Counted-beat tempo range (bpm) of the decoder, and the ratio of neighbouring periods.
MIN_BPM, MAX_BPM, TEMPO_STEP = 40.0, 200.0, 1.03
#: Tempo prior per meter: centre (bpm) and spread (octaves, 1 sd) of log2 tempo (the ranges the
#: note model is trained on; see hum2band.train.beats).
TEMPO_PRIOR = {(4, 4): (100.0, 0.45), (3, 4): (110.0, 0.45), (6, 8): (66.0, 0.45),
               (2, 4): (100.0, 0.45)}


@dataclass
class DecoderSettings:
    """Weights of the bar-pointer decoder (chosen on the validation split, see
    ``benchmarks/rhythm_key.py --choose-decoder``).

    Attributes
    ----------
    timing_sd_s, timing_sd_rel : float
        Timing error (s, 1 sd) of an inter-onset interval, and its part proportional to it.
    timing_cap : float
        Largest timing cost of one step (a breath or a held fermata is an outlier, not a reason
        to misplace the note).
    tempo_change : float
        Log-cost of a 3 % change of beat period from one onset to the next.
    place_weight, bar_weight, meter_weight, tempo_weight : float
        Weights of the note model's place-in-beat, beat-of-bar and meter log-probabilities and of
        the tempo prior.
    """

    timing_sd_s: float = 0.06
    timing_sd_rel: float = 0.06
    timing_cap: float = 3.0
    tempo_change: float = 2.0
    place_weight: float = 1.0
    bar_weight: float = 3.0
    meter_weight: float = 0.25
    tempo_weight: float = 3.0


# ---- onsets and features -------------------------------------------------------------------------
@dataclass
class NoteEvents:
    """The distinct onsets of a take.

    Attributes
    ----------
    onset_s, offset_s : np.ndarray, shape (n,)
        Onset and (latest) offset of each event, s.
    pitch : np.ndarray, shape (n,)
        Fractional MIDI pitch of the event's first note.
    index : np.ndarray of int, shape (n,)
        Index (in the given note order) of the note that opened the event.
    """

    onset_s: np.ndarray
    offset_s: np.ndarray
    pitch: np.ndarray
    index: np.ndarray


def note_events(onset_s, offset_s, pitch) -> NoteEvents:
    """Merge onsets closer than :data:`ONSET_MERGE_S` into one event.

    Parameters
    ----------
    onset_s, offset_s, pitch : array-like, shape (n,)
        Notes in any order; non-finite ones are dropped.
    """
    on, off, p = (np.asarray(x, dtype=float) for x in (onset_s, offset_s, pitch))
    ok = np.isfinite(on) & np.isfinite(off) & np.isfinite(p)
    idx_all = np.flatnonzero(ok)
    order = idx_all[np.argsort(on[ok], kind="stable")]
    on, off, p = on[order], np.maximum(off[order], on[order]), p[order]
    keep = np.zeros(len(on), dtype=bool)
    last = -np.inf
    for i in range(len(on)):
        if on[i] - last >= ONSET_MERGE_S:
            keep[i] = True
            last = on[i]
    first = np.flatnonzero(keep)
    group_end = np.append(first[1:], len(on))
    off_g = np.array([off[a:b].max() for a, b in zip(first, group_end)]) if len(first) else off[:0]
    return NoteEvents(on[first], off_g, p[first], order[first])


FEATURE_NAMES = (
    "log2 ioi next", "log2 ioi prev", "log2 duration", "log2 rest before", "log2 rest after",
    "log2 median ioi", "log2 ioi ratio", "log2 ioi next 2", "log2 ioi prev 2", "interval prev",
    "interval next", "pitch from median", "first", "last", "place in take", "minor",
    *(f"degree {k}" for k in range(12)), "log2 ioi local", "articulation",
)


def note_features(ev: NoteEvents, tonic_pc: int, minor: bool) -> np.ndarray:
    """The note model's input per event.

    Parameters
    ----------
    ev : NoteEvents
    tonic_pc : int
        Pitch class of the estimated key's tonic.
    minor : bool

    Returns
    -------
    np.ndarray, shape (n, len(FEATURE_NAMES)), float32
        Times are log2 ratios to the take's median inter-onset interval (one absolute column,
        ``log2 median ioi``, against 0.3 s), clipped to +-4; pitches in octaves.
    """
    on, off, p = ev.onset_s, ev.offset_s, ev.pitch
    n = len(on)
    f = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return f
    ioi = np.diff(on)
    r = float(np.median(ioi)) if len(ioi) else 0.5
    r = max(r, 0.05)

    def lg(x):
        return np.clip(np.log2(np.maximum(x, 1e-3) / r), -4.0, 4.0)

    dur = np.maximum(off - on, 0.02)
    nxt = np.append(ioi, max(dur[-1], r)) if n else ioi
    prv = np.insert(ioi, 0, 16 * r)
    run_off = np.maximum.accumulate(off)
    rest_before = np.insert(np.maximum(on[1:] - run_off[:-1], 0.0), 0, 16 * r)
    rest_after = np.append(np.maximum(on[1:] - off[:-1], 0.0), 16 * r)
    nxt2 = np.append(on[2:] - on[:-2], [16 * r] * min(2, n))[:n]
    prv2 = np.insert(on[2:] - on[:-2], 0, [16 * r] * min(2, n))[:n]
    f[:, 0], f[:, 1], f[:, 2] = lg(nxt), lg(prv), lg(dur)
    f[:, 3] = np.clip(np.log2(rest_before / r + 1 / 16), -4, 4)
    f[:, 4] = np.clip(np.log2(rest_after / r + 1 / 16), -4, 4)
    f[:, 5] = np.log2(r / 0.3)
    f[:, 6] = np.clip(np.log2(nxt / np.maximum(prv, 1e-3)), -4, 4)
    f[:, 7], f[:, 8] = lg(nxt2), lg(prv2)
    step = np.diff(p)
    f[:, 9] = np.clip(np.insert(step, 0, 0.0) / 12.0, -1.5, 1.5)
    f[:, 10] = np.clip(np.append(step, 0.0) / 12.0, -1.5, 1.5)
    f[:, 11] = np.clip((p - np.median(p)) / 12.0, -2, 2)
    f[0, 12] = 1.0
    f[-1, 13] = 1.0
    f[:, 14] = np.arange(n) / max(n - 1, 1)
    f[:, 15] = float(minor)
    degree = (np.round(p).astype(int) - int(tonic_pc)) % 12
    f[np.arange(n), 16 + degree] = 1.0
    pad = np.pad(nxt, 4, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(pad, 9), axis=1)
    f[:, 28] = np.clip(np.log2(nxt / np.maximum(local, 1e-3)), -4, 4)
    f[:, 29] = np.clip(np.log2(dur / np.maximum(nxt, 1e-3)), -4, 2)
    return f


# ---- the note model --------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def gru_encoder(n_features: int, hidden: int, layers: int, dropout: float):
    """The layers the note model and the bar model (:mod:`hum2band.listen.bars`) share: an input
    MLP (2 x ``hidden``, GELU) and a bidirectional GRU, as ``(inp, rnn)`` torch modules (their
    state-dict names ``inp.*`` and ``rnn.*`` are what :func:`encode` reads)."""
    nn = _torch().nn
    inp = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
    rnn = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                 dropout=dropout if layers > 1 else 0.0)
    return inp, rnn


def make_beat_net(config: dict):
    """:class:`BeatNet` from its config (``n_features``, ``hidden``, ``layers``, ``dropout``)."""
    nn = _torch().nn

    class BeatNet(nn.Module):
        """Events (batch, n, n_features) -> place-in-beat logits (batch, n, 13) and bar logits
        (batch, n, len(BAR_CLASSES))."""

        def __init__(self, n_features: int, hidden: int, layers: int, dropout: float):
            super().__init__()
            self.inp, self.rnn = gru_encoder(n_features, hidden, layers, dropout)
            self.place = nn.Linear(2 * hidden, UNITS_PER_BEAT + 1)
            self.bar = nn.Linear(2 * hidden, len(BAR_CLASSES))

        def forward(self, x):
            h, _ = self.rnn(self.inp(x))
            return self.place(h), self.bar(h)

    return BeatNet(int(config["n_features"]), int(config["hidden"]), int(config["layers"]),
                   float(config.get("dropout", 0.0)))


#: Where the shipped note model lives, and the variable that points elsewhere.
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "beats.pt"
MODEL_ENV = "HUM2BAND_BEATS_MODEL"


@dataclass
class BeatModel:
    """The loaded note model (its weights as numpy arrays, float32) and the decoder settings
    shipped with it.

    Attributes
    ----------
    weights : dict of str to np.ndarray
        :func:`make_beat_net`'s state dict.
    layers : int
        GRU layers.
    settings : DecoderSettings
    """

    weights: dict
    layers: int
    settings: DecoderSettings


def beat_model_from_state(config: dict, state: dict, decoder: dict | None = None) -> BeatModel:
    """A :class:`BeatModel` from a config and a (torch or numpy) state dict."""
    w = {k: np.asarray(v.float().numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
         for k, v in state.items()}
    return BeatModel(w, int(config["layers"]), DecoderSettings(**(decoder or {})))


def _load_beat_file(p: Path) -> BeatModel:
    torch = _torch()
    ck = torch.load(p, map_location="cpu", weights_only=False)
    return beat_model_from_state(ck["config"], ck["model"], ck.get("decoder"))


def load_beat_model(path: str | os.PathLike | None = None) -> BeatModel:
    """The note model at ``path`` (else ``$HUM2BAND_BEATS_MODEL``, else ``models/beats.pt``),
    loaded once; a missing file is a one-line error that says how to train it."""
    from ..files.weights import load_once

    return load_once(path, MODEL_ENV, DEFAULT_MODEL_PATH, _load_beat_file, "beat model",
                     "hum2band train --model beats")


#: The note model the rhythm stage's 4/4 beat-offset look reads
#: (:data:`hum2band.listen.rhythm.BEAT_OFFSET_WEIGHTS`) and the beat lock, and the variable that
#: points elsewhere: the same net as ``models/beats.pt``, trained on 4/4 and 3/4 songs only with
#: POP909's syncopated melodies drawn more often (``hum2band train --model beats-offset``,
#: :data:`hum2band.train.beats.OFFSET_RECIPE`). Its place in the beat tells a syncopated
#: melody's beat from its "and" better; only that head is read (see ``models/README.md``).
OFFSET_MODEL_PATH = PROJECT_ROOT / "models" / "beats-offset.pt"
OFFSET_MODEL_ENV = "HUM2BAND_BEATS_OFFSET_MODEL"


def load_offset_model(path: str | os.PathLike | None = None) -> BeatModel:
    """The beat-offset note model at ``path`` (else ``$HUM2BAND_BEATS_OFFSET_MODEL``, else
    ``models/beats-offset.pt``; see :data:`OFFSET_MODEL_PATH`), loaded once."""
    from ..files.weights import load_once

    return load_once(path, OFFSET_MODEL_ENV, OFFSET_MODEL_PATH, _load_beat_file,
                     "beat-offset model", "hum2band train --model beats-offset")


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _bigru_layer(x: np.ndarray, w: dict, layer: int) -> np.ndarray:
    """One bidirectional GRU layer (PyTorch's equations, gates r, z, n) over x, shape (n, in) ->
    (n, 2H); both directions step together."""
    names = (f"l{layer}", f"l{layer}_reverse")
    w_ih = np.stack([w["rnn.weight_ih_" + k] for k in names])          # (2, 3H, in)
    w_hh_t = np.stack([w["rnn.weight_hh_" + k].T for k in names])      # (2, H, 3H)
    b_ih = np.stack([w["rnn.bias_ih_" + k] for k in names])            # (2, 3H)
    b_hh = np.stack([w["rnn.bias_hh_" + k] for k in names])
    hidden = w_hh_t.shape[1]
    n = len(x)
    gx = np.einsum("ti,dgi->tdg", x, w_ih) + b_ih                     # (n, 2, 3H)
    gx[:, 1] = gx[::-1, 1]                                             # reverse runs backwards
    out = _gru_steps(np.ascontiguousarray(gx, dtype=np.float32), w_hh_t.astype(np.float32),
                     b_hh.astype(np.float32))
    out[:, 1] = out[::-1, 1]
    return out.reshape(n, 2 * hidden)


def _gru_steps_py(gx, w_hh_t, b_hh):
    """The GRU recurrence: gx (n, D, 3H) input gates, w_hh_t (D, H, 3H), b_hh (D, 3H) ->
    hidden states (n, D, H); compiled with numba when present (no BLAS threads for these tiny
    products)."""
    n, n_dir, g3 = gx.shape
    hidden = g3 // 3
    out = np.empty((n, n_dir, hidden), dtype=np.float32)
    h = np.zeros((n_dir, hidden), dtype=np.float32)
    gh = np.empty(g3, dtype=np.float32)
    for t in range(n):
        for d in range(n_dir):
            for j in range(g3):
                gh[j] = b_hh[d, j]
            for i in range(hidden):
                hi = h[d, i]
                for j in range(g3):
                    gh[j] += hi * w_hh_t[d, i, j]
            for j in range(hidden):
                r = 1.0 / (1.0 + np.exp(-(gx[t, d, j] + gh[j])))
                z = 1.0 / (1.0 + np.exp(-(gx[t, d, hidden + j] + gh[hidden + j])))
                c = np.tanh(gx[t, d, 2 * hidden + j] + r * gh[2 * hidden + j])
                out[t, d, j] = c + z * (h[d, j] - c)
            for j in range(hidden):
                h[d, j] = out[t, d, j]
    return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@dataclass
class NoteBeliefs:
    """The note model's outputs for a take's events.

    Attributes
    ----------
    log_place : np.ndarray, shape (n, 13)
        Log-probabilities of the place in the beat (twelfths; column 12: off the grid).
    log_bar : np.ndarray, shape (n, len(BAR_CLASSES))
        Log-probabilities of (meter, beat of the bar), jointly.
    """

    log_place: np.ndarray
    log_bar: np.ndarray


def encode(weights: dict, layers: int, x: np.ndarray) -> np.ndarray:
    """:func:`gru_encoder`'s layers in numpy: (n, n_features) -> (n, 2 * hidden), float32."""
    h = np.asarray(x, dtype=np.float32)
    h = _gelu(h @ weights["inp.0.weight"].T + weights["inp.0.bias"])
    h = _gelu(h @ weights["inp.2.weight"].T + weights["inp.2.bias"])
    for layer in range(layers):
        h = _bigru_layer(h.astype(np.float32), weights, layer)
    return h


def note_beliefs(model: BeatModel, features: np.ndarray) -> NoteBeliefs:
    """Run the note model on one take's features (shape (n, n_features)), in numpy (the same
    arithmetic as :func:`make_beat_net`'s module in eval mode; a small recurrent net runs
    faster so than through torch's thread pool)."""
    w = model.weights
    x = encode(w, model.layers, features)
    place = x @ w["place.weight"].T + w["place.bias"]
    bar = x @ w["bar.weight"].T + w["bar.bias"]
    return NoteBeliefs(_log_softmax(place).astype(float), _log_softmax(bar).astype(float))


# ---- the bar-pointer decoder ------------------------------------------------------------------------
@dataclass
class Decoded:
    """The best path of one meter.

    Attributes
    ----------
    meter : tuple of int
    units : np.ndarray of int, shape (n_events,)
        Each event's position in twelfths of a beat from the first bar line at or before the
        first event (so ``units % (12 * beats_per_bar) == 0`` is a bar line).
    period_s : np.ndarray, shape (n_events,)
        Beat period of the path at each event, s.
    score : float
        Log score of the path, meter evidence included.
    """

    meter: tuple
    units: np.ndarray
    period_s: np.ndarray
    score: float


def tempo_grid(tempo_bpm: float | None = None, steps: int = 2) -> np.ndarray:
    """Beat periods (s) the decoder considers: 40-200 bpm in 3 % steps, or a given tempo and
    ``steps`` 3 % steps either side of it (by default within 6 %)."""
    if tempo_bpm is not None:
        bpm = float(tempo_bpm) * TEMPO_STEP ** np.arange(-int(steps), int(steps) + 1)
    else:
        n = int(np.floor(np.log(MAX_BPM / MIN_BPM) / np.log(TEMPO_STEP))) + 1
        bpm = MIN_BPM * TEMPO_STEP ** np.arange(n)
    return 60.0 / bpm


def bar_emissions(meter, beliefs: NoteBeliefs, s: DecoderSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per-event emission log scores over bar positions, and the meter log-evidence per event.

    Returns
    -------
    emit : np.ndarray, shape (n_events, 12 * beats_per_bar)
    meter_ll : np.ndarray, shape (n_events,)
        log P(meter) per event from the bar head (a 2/4 bar reads the 4/4 columns).
    """
    m = tuple(meter)
    bpb = beats_per_bar(m)
    mi = METERS.index((4, 4) if m == (2, 4) else m)
    cols = [k for k, (i, _) in enumerate(BAR_CLASSES) if i == mi]
    lb = beliefs.log_bar[:, cols]
    if m == (2, 4):  # beats 1 and 3 of a 4/4 bar are both downbeats of 2/4
        lb = np.logaddexp(lb[:, [0, 1]], lb[:, [2, 3]])
    meter_ll = np.logaddexp.reduce(lb, axis=1)
    lb = lb - meter_ll[:, None]
    pos = np.arange(UNITS_PER_BEAT * bpb)
    # an event off the grid may sit anywhere: mix its probability in uniformly
    place = np.logaddexp(beliefs.log_place[:, :UNITS_PER_BEAT],
                         beliefs.log_place[:, [OFF_GRID]] - np.log(UNITS_PER_BEAT))
    emit = (s.place_weight * place[:, pos % UNITS_PER_BEAT]
            + s.bar_weight * lb[:, pos // UNITS_PER_BEAT])
    return emit, meter_ll


def decode_bar_pointer(onset_s: np.ndarray, emit: np.ndarray, periods_s: np.ndarray, meter,
                       s: DecoderSettings, first_units: int | None = None,
                       log_tempo_prior: np.ndarray | None = None) -> Decoded:
    """Viterbi path through (beat period, bar position) over the events.

    Parameters
    ----------
    onset_s : np.ndarray, shape (n,)
        Event times, increasing, s.
    emit : np.ndarray, shape (n, L)
        Emission log scores per bar position (L = 12 * beats per bar); ``-inf`` forbids.
    periods_s : np.ndarray, shape (K,)
        Beat periods, s, in order (neighbours are one tempo step apart).
    meter : tuple of int
    s : DecoderSettings
    first_units : int, optional
        Force the first event to this bar position (a pickup).
    log_tempo_prior : np.ndarray, shape (K,), optional

    Returns
    -------
    Decoded
        ``score`` without the meter evidence.
    """
    n, L = emit.shape
    K = len(periods_s)
    init = (np.zeros(K) if log_tempo_prior is None else np.asarray(log_tempo_prior, float))
    init = init[:, None] + emit[0][None, :]
    if first_units is not None:
        mask = np.full(L, -np.inf)
        mask[int(first_units) % L] = 0.0
        init = init + mask[None, :]
    units, ks, total = _viterbi(np.asarray(onset_s, float), np.ascontiguousarray(emit, float),
                                np.asarray(periods_s, float), np.ascontiguousarray(init),
                                float(s.timing_sd_s), float(s.timing_sd_rel),
                                float(s.timing_cap), float(s.tempo_change), UNITS_PER_BEAT)
    return Decoded(tuple(meter), units, np.asarray(periods_s)[ks], float(total))


def _viterbi_py(onset_s, emit, periods_s, init, sd0, sd_rel, cap, tempo_cost, upb):
    """The Viterbi recursion of :func:`decode_bar_pointer` (compiled with numba when present).

    A step from event i-1 to i: the period index moves by -1, 0 or +1 (cost ``tempo_cost``),
    then the position advances by m twelfths, m among the 5 whole numbers nearest to
    ``d / period * 12`` (at least 1), with log-likelihood ``-min(0.5 (err / sd)^2, cap)``.
    Returns (units from the first bar line, period index per event, total score).
    """
    n, L = emit.shape
    K = len(periods_s)
    score = init.copy()
    back_m = np.zeros((n, K, L), dtype=np.int32)
    back_k = np.zeros((n, K, L), dtype=np.int8)
    best = np.empty((K, L))
    which = np.zeros((K, L), dtype=np.int8)
    new = np.empty((K, L))
    for i in range(1, n):
        d = onset_s[i] - onset_s[i - 1]
        for k in range(K):
            for p in range(L):
                v = score[k, p]
                w = 0
                if k > 0 and score[k - 1, p] - tempo_cost > v:
                    v = score[k - 1, p] - tempo_cost
                    w = -1
                if k + 1 < K and score[k + 1, p] - tempo_cost > v:
                    v = score[k + 1, p] - tempo_cost
                    w = 1
                best[k, p] = v
                which[k, p] = w
        sd = np.sqrt(sd0 * sd0 + (sd_rel * d) ** 2)
        for k in range(K):
            per = periods_s[k] / upb
            a = d / per
            m0 = int(np.floor(a + 0.5)) - 2
            if m0 < 1:
                m0 = 1
            for p in range(L):
                new[k, p] = -np.inf
            for m in range(m0, m0 + 5):
                err = (d - m * per) / sd
                lik = -min(0.5 * err * err, cap)
                for p in range(L):
                    src = (p - m) % L
                    c = best[k, src] + lik
                    if c > new[k, p]:
                        new[k, p] = c
                        back_m[i, k, p] = m
                        back_k[i, k, p] = which[k, src]
        for k in range(K):
            for p in range(L):
                score[k, p] = new[k, p] + emit[i, p]
    kb, pb, total = 0, 0, -np.inf
    for k in range(K):
        for p in range(L):
            if score[k, p] > total:
                total = score[k, p]
                kb, pb = k, p
    units = np.zeros(n, dtype=np.int64)
    ks = np.zeros(n, dtype=np.int64)
    k, p = kb, pb
    for i in range(n - 1, 0, -1):
        ks[i] = k
        m = back_m[i, k, p]
        w = back_k[i, k, p]
        units[i] = m
        p = (p - m) % L
        k = k + w
    ks[0] = k
    units[0] = p
    for i in range(1, n):
        units[i] += units[i - 1]
    return units, ks, total


try:  # numba comes with librosa; these loops are about 100 times faster compiled
    import numba

    _viterbi = numba.njit(cache=True, nogil=True)(_viterbi_py)
    _gru_steps = numba.njit(cache=True, nogil=True)(_gru_steps_py)
except ImportError:  # pragma: no cover
    _viterbi, _gru_steps = _viterbi_py, _gru_steps_py


def beat_times(onset_s: np.ndarray, units: np.ndarray, end_s: float,
               width_beats: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Beat times from the events' counted positions: a local linear fit of time against beat.

    Parameters
    ----------
    onset_s : np.ndarray, shape (n,)
    units : np.ndarray of int, shape (n,)
        Positions in twelfths of a beat (increasing).
    end_s : float
        Beats run to the first beat at or after this time (the end of the last note).
    width_beats : float
        Gaussian kernel width of the fit, counted beats.

    Returns
    -------
    beats_s : np.ndarray, shape (n_beats,)
    beat_index : np.ndarray of int, shape (n_beats,)
        The counted beat of each (beat 0 is the first bar line at or before the first event).
    """
    b = units / UNITS_PER_BEAT
    first = int(np.floor(b[0] + 1e-9))
    period = (onset_s[-1] - onset_s[0]) / max(b[-1] - b[0], 1e-6) if len(b) > 1 else 0.6
    extra = int(np.ceil(max(end_s - onset_s[-1], 0.0) / max(period, 0.05))) + 1
    idx = np.arange(first, int(np.ceil(b[-1] - 1e-9)) + extra + 1)
    t = np.empty(len(idx))
    for j0 in range(0, len(idx), 512):
        q = idx[j0:j0 + 512].astype(float)
        dist = (q[:, None] - b[None, :]) / width_beats
        w = np.exp(-0.5 * dist * dist) + 1e-9
        # widen where the notes are far away (rests)
        sw = w.sum(axis=1)
        w2 = np.exp(-0.5 * (dist / 3.0) ** 2) + 1e-12
        w = np.where((sw < 1.5)[:, None], w2, w)
        sw = w.sum(axis=1)
        mb = (w * b).sum(1) / sw
        mt = (w * onset_s).sum(1) / sw
        vb = (w * (b - mb[:, None]) ** 2).sum(1) / sw
        cov = (w * (b - mb[:, None]) * (onset_s - mt[:, None])).sum(1) / sw
        slope = np.where(vb > 1e-6, cov / np.maximum(vb, 1e-6), period)
        slope = np.clip(slope, 0.25 * period, 4.0 * period) if period > 0 else slope
        t[j0:j0 + 512] = mt + slope * (q - mb)
    keep = np.concatenate([[True], np.diff(t) > 0.05])
    idx, t = idx[keep], t[keep]
    last = np.searchsorted(t, end_s)
    return t[: last + 1], idx[: last + 1]


def _log_tempo_prior(meter, periods_s: np.ndarray) -> np.ndarray:
    centre, sd = TEMPO_PRIOR[tuple(meter)]
    z = np.log2(60.0 / periods_s / centre) / sd
    return -0.5 * z * z


def take_beliefs(notes: Sequence[Note], model: BeatModel | None = None, key: Key | None = None
                 ) -> tuple[NoteEvents, NoteBeliefs] | None:
    """A take's distinct onsets and the note model's beliefs about them (None: under 3 onsets).
    ``key``: the notes' own key, ``estimate_key(notes, vote=False)`` as the model was trained
    (computed here when not given)."""
    from ..music.keyfinding import estimate_key

    notes = list(notes)
    ev = note_events([n.onset_s for n in notes], [n.offset_s for n in notes],
                     [n.midi_pitch for n in notes])
    if len(ev.onset_s) < 3:
        return None
    key = key or estimate_key(notes, vote=False)
    model = model or load_beat_model()
    return ev, note_beliefs(model, note_features(ev, key.tonic_pitch_class, key.mode == "minor"))


def track_beats(notes: Sequence[Note], duration_s: float, tempo_bpm: float | None = None,
                meter: Sequence[int] | None = None, downbeat_s: float | None = None,
                pickup_beats: float | None = None, model: BeatModel | None = None) -> Rhythm | None:
    """Tempo, beats, downbeats and meter of a sung take from its notes (see the module doc).

    Parameters
    ----------
    notes : sequence of Note
    duration_s : float
        Length of the take, s.
    tempo_bpm : float, optional
        The tempo in counted beats per minute (the beats still follow the singer).
    meter : tuple of int, optional
        (4, 4), (3, 4), (6, 8) or (2, 4).
    downbeat_s : float, optional
        A time (s) at which a bar starts.
    pickup_beats : float, optional
        Counted beats from the first note to the first bar line (0: the first note is on it).
    model : BeatModel, optional
        Default: the shipped one (:func:`load_beat_model`).

    Returns
    -------
    Rhythm or None
        None when the take has fewer than 3 distinct onsets.
    """
    check_bar_fix(downbeat_s, pickup_beats, duration_s, meter)
    model = model or load_beat_model()
    got = take_beliefs(notes, model)
    if got is None:
        return None
    ev, beliefs = got
    return decode_rhythm(ev, beliefs, duration_s, model.settings, tempo_bpm, meter, downbeat_s,
                         pickup_beats)


def decode_rhythm(ev: NoteEvents, beliefs: NoteBeliefs, duration_s: float, s: DecoderSettings,
                  tempo_bpm: float | None = None, meter: Sequence[int] | None = None,
                  downbeat_s: float | None = None, pickup_beats: float | None = None,
                  tempo_steps: int = 2) -> Rhythm:
    """The :class:`Rhythm` of the best bar-pointer path over a take's events (see
    :func:`track_beats` for the parameters; ``tempo_steps``: with a tempo, how many 3 % steps
    either side of it the path may take, see :func:`tempo_grid`)."""
    meters = (tuple(int(x) for x in meter),) if meter is not None else METERS
    times = ev.onset_s
    fix_at, inserted = None, False
    if downbeat_s is not None:
        near = int(np.argmin(np.abs(times - downbeat_s)))
        if abs(times[near] - downbeat_s) < ONSET_MERGE_S:
            fix_at = near
        else:  # a bar line between onsets: a point of its own, on a bar line, with no note
            fix_at, inserted = int(np.searchsorted(times, downbeat_s)), True
            times = np.insert(times, fix_at, float(downbeat_s))
    periods = tempo_grid(tempo_bpm, tempo_steps)
    results = []
    for m in meters:
        bpb = beats_per_bar(m)
        if pickup_beats is not None and float(pickup_beats) >= bpb:
            continue
        emit, meter_ll = bar_emissions(m, beliefs, s)
        if fix_at is not None:
            if inserted:
                emit = np.insert(emit, fix_at, 0.0, axis=0)
            emit[fix_at, 1:] = -np.inf
        first = None
        if pickup_beats is not None:
            first = (-int(round(float(pickup_beats) * UNITS_PER_BEAT))) % (UNITS_PER_BEAT * bpb)
            if inserted and fix_at == 0:
                first = None  # the bar line comes before the first note: it fixes the phase
        prior = s.tempo_weight * _log_tempo_prior(m, periods) if tempo_bpm is None else None
        dec = decode_bar_pointer(times, emit, periods, m, s, first, prior)
        dec.score += s.meter_weight * float(meter_ll.sum())
        results.append(dec)
    if not results:
        raise OptionError(f"a pickup of {pickup_beats} beats is longer than a bar of "
                          f"{beats_per_bar(meters[0])} beats: give a shorter pickup")
    scores = np.array([r.score for r in results])
    best = results[int(np.argmax(scores))]
    post = np.exp(scores - scores.max())
    post /= post.sum()
    end_s = float(ev.offset_s.max())
    beats, index = beat_times(times, best.units, end_s)
    bpb = beats_per_bar(best.meter)
    inside = (beats >= 0.0) & (beats <= duration_s)
    beats, index = beats[inside], index[inside]
    downbeats = beats[index % bpb == 0]
    sung = beats[(beats >= ev.onset_s[0] - 0.1) & (beats <= end_s + 0.1)]
    ibi = np.diff(sung if len(sung) > 2 else beats)
    tempo = 60.0 / float(np.median(ibi)) if len(ibi) else 60.0 / float(np.median(best.period_s))
    # tempo confidence: the share of the take where the path's period is within 8 % of the tempo
    rel = np.abs(np.log(60.0 / best.period_s / tempo))
    tempo_conf = float(np.mean(rel < np.log(1.08)))
    return Rhythm(beats, downbeats, tuple(best.meter), float(tempo), float(post.max()), tempo_conf)
