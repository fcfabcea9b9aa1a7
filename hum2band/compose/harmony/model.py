"""The harmony transformer: melody + conditions in, a chord per beat out (``models/harmony.pt``).

An encoder-decoder transformer over the beat grid of :mod:`hum2band.compose.harmony.grid`. The encoder
reads a window of beats of melody features with the song's conditions (style, meter, mode, tempo
band); the decoder is causal over the same beats: at beat ``t`` it sees the chord it wrote at
``t - 1`` (its memory of the harmony so far), the encoder's reading of beat ``t`` and, through
cross-attention, the whole window of melody. It writes the chord (key-relative root x quality),
the bass (relative to the root) and whether the chord arrives half a beat early.

Generation (:func:`generate`) walks a song in windows of ``window_bars`` bars; every window after
the first starts ``context_bars`` before the first unwritten bar and feeds the chords already
written there as a forced prefix. Locked beats (the user's chords, or everything outside a bar
range being regenerated) are forced, never sampled.

Choosing a chord from the model's distribution (:func:`pick_chord`): the (root, major/minor/
other) family with the most probability is taken first -- that is what a listener hears as
"the chord" and what chord accuracy scores -- then the exact quality inside that family
(triad, seventh, sixth, sus...) is the most likely one (``temperature <= 0``) or sampled with
temperature and top-p, seeded so that the same seed gives the same chords. With
``temperature > 0`` the family itself is sampled too when ``sample_family`` is set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ...music.styles import check_style_order
from . import grid as G


@dataclass
class HarmonyConfig:
    """Sizes of the harmony transformer (defaults: the shipped model)."""

    d_model: int = 192
    n_heads: int = 4
    n_encoder_layers: int = 4
    n_decoder_layers: int = 3
    d_ff: int = 768
    dropout: float = 0.1
    window_bars: int = 16
    context_bars: int = 8

    @property
    def max_beats(self) -> int:
        return self.window_bars * G.MAX_BEATS_PER_BAR


class HarmonyTransformer(nn.Module):
    """Encoder-decoder over beats.

    Shapes: ``features`` (batch, beats, N_BEAT_FEATURES) float; ``beat_in_bar``, ``prev_chord``
    (batch, beats) int64; ``conditions`` (batch, 4) int64; ``pad`` (batch, beats) bool (True =
    padding). Outputs: chord logits (batch, beats, N_CHORD_CLASSES), bass logits (..., 12),
    early logits (..., 2).
    """

    def __init__(self, config: HarmonyConfig | None = None):
        super().__init__()
        c = self.config = config or HarmonyConfig()
        d = c.d_model
        self.feat_in = nn.Linear(G.N_BEAT_FEATURES, d)
        self.beat_emb = nn.Embedding(G.MAX_BEATS_PER_BAR, d)
        self.pos_emb = nn.Embedding(c.max_beats, d)
        self.style_emb = nn.Embedding(len(G.STYLES), d)
        self.meter_emb = nn.Embedding(G.N_METERS, d)
        self.mode_emb = nn.Embedding(len(G.MODES), d)
        self.tempo_emb = nn.Embedding(G.N_TEMPO_BANDS, d)
        self.chord_in = nn.Embedding(G.N_CHORD_INPUTS, d)
        self.dec_beat_emb = nn.Embedding(G.MAX_BEATS_PER_BAR, d)
        self.dec_pos_emb = nn.Embedding(c.max_beats, d)
        self.memory_in = nn.Linear(d, d)
        enc_layer = nn.TransformerEncoderLayer(d, c.n_heads, c.d_ff, c.dropout, batch_first=True, norm_first=True)
        dec_layer = nn.TransformerDecoderLayer(d, c.n_heads, c.d_ff, c.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, c.n_encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, c.n_decoder_layers)
        self.enc_norm = nn.LayerNorm(d)
        self.dec_norm = nn.LayerNorm(d)
        self.chord_head = nn.Linear(d, G.N_CHORD_CLASSES)
        self.bass_head = nn.Linear(d, 12)
        self.early_head = nn.Linear(d, 2)

    def _conditions(self, conditions: torch.Tensor) -> torch.Tensor:
        return (self.style_emb(conditions[:, 0]) + self.meter_emb(conditions[:, 1])
                + self.mode_emb(conditions[:, 2]) + self.tempo_emb(conditions[:, 3]))[:, None, :]

    def encode(self, features, beat_in_bar, conditions, pad) -> torch.Tensor:
        n = features.shape[1]
        pos = torch.arange(n, device=features.device)
        x = self.feat_in(features) + self.beat_emb(beat_in_bar) + self.pos_emb(pos)[None] + self._conditions(conditions)
        mask = pad if bool(pad.any()) else None
        return self.enc_norm(self.encoder(x, src_key_padding_mask=mask))

    def decode(self, memory, pad, prev_chord, beat_in_bar) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = prev_chord.shape[1]
        pos = torch.arange(n, device=prev_chord.device)
        y = (self.chord_in(prev_chord) + self.dec_beat_emb(beat_in_bar) + self.dec_pos_emb(pos)[None]
             + self.memory_in(memory[:, :n]))
        causal = torch.triu(torch.full((n, n), float("-inf"), device=y.device), diagonal=1)
        mask = pad if bool(pad.any()) else None
        h = self.dec_norm(self.decoder(y, memory, tgt_mask=causal, tgt_is_causal=True,
                                       memory_key_padding_mask=mask))
        return self.chord_head(h), self.bass_head(h), self.early_head(h)

    def forward(self, features, beat_in_bar, conditions, pad, prev_chord):
        memory = self.encode(features, beat_in_bar, conditions, pad)
        return self.decode(memory, pad, prev_chord, beat_in_bar)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---- batches and loss ------------------------------------------------------------------------
@dataclass
class Window:
    """Beats ``[start, start + n)`` of a song, ready for the model."""

    features: np.ndarray
    beat_in_bar: np.ndarray
    conditions: np.ndarray
    chord: np.ndarray
    bass: np.ndarray
    early: np.ndarray


def window_of(song: G.SongGrid, start_bar: int, window_bars: int, drop_style: bool = False) -> Window:
    a = start_bar * song.beats_per_bar
    z = min(song.n_beats, a + window_bars * song.beats_per_bar)
    cond = song.conditions.as_array()
    if drop_style:
        cond = cond.copy()
        cond[0] = 0
    return Window(song.features[a:z], song.beat_in_bar[a:z], cond, song.chord[a:z], song.bass[a:z],
                  song.early[a:z])


def collate(windows: Sequence[Window], input_dropout: float = 0.0,
            rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """Pad windows to one batch: model inputs plus targets (padding targets are IGNORE).

    ``input_dropout`` hides that share of the decoder's previous-chord inputs (training only), so
    the model cannot lean on "the same chord as before" and must read the melody.
    """
    n = max(len(w.chord) for w in windows)
    B = len(windows)
    feats = np.zeros((B, n, G.N_BEAT_FEATURES), np.float32)
    bib = np.zeros((B, n), np.int64)
    pad = np.ones((B, n), bool)
    prev = np.full((B, n), G.NO_CHORD_INPUT, np.int64)
    tgt = {k: np.full((B, n), G.IGNORE, np.int64) for k in ("chord", "bass", "early")}
    for i, w in enumerate(windows):
        m = len(w.chord)
        feats[i, :m] = w.features
        bib[i, :m] = w.beat_in_bar
        pad[i, :m] = False
        prev[i, :m] = G.decoder_inputs(w.chord)
        if input_dropout > 0 and rng is not None:
            prev[i, :m][rng.random(m) < input_dropout] = G.MASK_INPUT
        tgt["chord"][i, :m] = w.chord
        tgt["bass"][i, :m] = w.bass
        tgt["early"][i, :m] = w.early
    out = {"features": torch.from_numpy(feats), "beat_in_bar": torch.from_numpy(bib),
           "conditions": torch.from_numpy(np.stack([w.conditions for w in windows])),
           "pad": torch.from_numpy(pad), "prev_chord": torch.from_numpy(prev)}
    out.update({k: torch.from_numpy(v) for k, v in tgt.items()})
    return out


#: Weights of the three heads in the training loss.
LOSS_WEIGHTS = {"chord": 1.0, "bass": 0.3, "early": 0.3}


def harmony_loss(model: HarmonyTransformer, batch: dict) -> tuple[torch.Tensor, dict]:
    """Weighted cross-entropy of the three heads; also returns chord accuracy counts."""
    chord, bass, early = model(batch["features"], batch["beat_in_bar"], batch["conditions"], batch["pad"],
                               batch["prev_chord"])
    ce = nn.functional.cross_entropy
    parts = {"chord": ce(chord.flatten(0, 1).float(), batch["chord"].flatten(), ignore_index=G.IGNORE),
             "bass": ce(bass.flatten(0, 1).float(), batch["bass"].flatten(), ignore_index=G.IGNORE),
             "early": ce(early.flatten(0, 1).float(), batch["early"].flatten(), ignore_index=G.IGNORE)}
    total = sum(LOSS_WEIGHTS[k] * torch.nan_to_num(v) for k, v in parts.items())
    valid = batch["chord"] >= 0
    right = (chord.argmax(-1) == batch["chord"]) & valid
    stats = {k: float(v.detach()) for k, v in parts.items()}
    stats.update(n=int(valid.sum()), right=int(right.sum()))
    return total, stats


# ---- save / load -----------------------------------------------------------------------------
def save_model(model: HarmonyTransformer, path: str | Path, half: bool = True, meta: dict | None = None) -> None:
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    torch.save({"format": "hum2band-harmony-v2", "config": asdict(model.config), "state": state,
                "meta": meta or {}, "styles": list(G.STYLES[1:])}, tmp)
    tmp.replace(p)


def load_model(path: str | Path) -> HarmonyTransformer:
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if blob.get("format") != "hum2band-harmony-v2":
        raise ValueError(f"{path} is not a hum2band harmony model (v2)")
    check_style_order(blob.get("styles"), f"the harmony model {path}")
    model = HarmonyTransformer(HarmonyConfig(**blob["config"]))
    model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    model.eval()
    return model


# ---- choosing chords -------------------------------------------------------------------------
#: A chord the model wrote is fed back to the decoder as its memory only when the probability of
#: its (root, family) is at least this (locked chords always are); see docs/model.md.
MEMORY_CONFIDENCE = 0.9

_FAMILY_OF_CLASS = torch.from_numpy((np.arange(G.N_CHORD_CLASSES) // G.N_QUALITIES) * 3
                                    + np.where(G.MAJMIN_FAMILY < 0, 2, 1 - G.MAJMIN_FAMILY))
N_FAMILIES = 36


def _top_p(p: torch.Tensor, top_p: float) -> torch.Tensor:
    if top_p >= 1.0:
        return p
    order = torch.argsort(p, descending=True)
    cum = torch.cumsum(p[order], 0)
    keep = order[(cum - p[order]) < top_p]
    out = torch.zeros_like(p)
    out[keep] = p[keep]
    return out / out.sum()


def pick_chord(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None,
               sample_family: bool = False) -> int:
    """One chord class from ``logits`` (shape (N_CHORD_CLASSES,)), family first (module docstring)."""
    return pick_chord_and_confidence(logits, temperature, top_p, generator, sample_family)[0]


def pick_chord_and_confidence(logits: torch.Tensor, temperature: float, top_p: float,
                              generator: torch.Generator | None, sample_family: bool = False) -> tuple[int, float]:
    """:func:`pick_chord` and the probability of the picked chord's family."""
    p = torch.softmax(logits.float(), -1)
    fam = torch.zeros(N_FAMILIES).index_add_(0, _FAMILY_OF_CLASS, p)
    if temperature > 0 and sample_family:
        w = fam.clamp_min(1e-12) ** (1.0 / temperature)
        pf = _top_p(w / w.sum(), top_p)
        f = int(torch.multinomial(pf, 1, generator=generator))
    else:
        f = int(fam.argmax())
    inside = torch.where(_FAMILY_OF_CLASS == f, p, torch.zeros_like(p))
    if temperature <= 0:
        return int(inside.argmax()), float(fam[f])
    q = inside.clamp_min(0) ** (1.0 / temperature)
    q = _top_p(q / q.sum(), top_p)
    return int(torch.multinomial(q, 1, generator=generator)), float(fam[f])


class IncrementalDecoder:
    """Step-by-step decoding of one window with cached keys and values (batch 1, eval mode).

    Cross-attention keys/values of the memory are projected once; each fed beat adds its
    self-attention key/value per layer, so a step costs one beat's worth of work. Gives the same
    logits as :meth:`HarmonyTransformer.decode` on the whole prefix.
    """

    def __init__(self, model: HarmonyTransformer, memory: torch.Tensor, beat_in_bar: torch.Tensor):
        self.model = model
        self.layers = list(model.decoder.layers)
        self.d = model.config.d_model
        self.h = model.config.n_heads
        self.dh = self.d // self.h
        self.memory = memory[0]
        self.beat_in_bar = beat_in_bar[0]
        self.mem_in = model.memory_in(self.memory)
        self.cross = []
        for layer in self.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k = nn.functional.linear(self.memory, w[self.d:2 * self.d], b[self.d:2 * self.d])
            v = nn.functional.linear(self.memory, w[2 * self.d:], b[2 * self.d:])
            self.cross.append((self._heads(k), self._heads(v)))
        self.keys: list[torch.Tensor | None] = [None] * len(self.layers)
        self.values: list[torch.Tensor | None] = [None] * len(self.layers)
        self.n = 0

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, self.h, self.dh).transpose(0, 1)  # (h, n, dh)

    def _attend(self, q, k, v, mha: nn.MultiheadAttention) -> torch.Tensor:
        a = torch.softmax((self._heads(q) @ k.transpose(1, 2)) / self.dh ** 0.5, dim=-1) @ v  # (h, 1, dh)
        return mha.out_proj(a.transpose(0, 1).reshape(1, self.d))

    def feed(self, prev_chord: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feed the decoder input of the next beat; its (chord, bass, early) logits."""
        m, t = self.model, self.n
        y = (m.chord_in.weight[prev_chord] + m.dec_beat_emb.weight[self.beat_in_bar[t]]
             + m.dec_pos_emb.weight[t] + self.mem_in[t])[None]
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            q, k, v = nn.functional.linear(layer.norm1(y), sa.in_proj_weight, sa.in_proj_bias).split(self.d, dim=-1)
            k, v = self._heads(k), self._heads(v)
            self.keys[i] = k if self.keys[i] is None else torch.cat([self.keys[i], k], 1)
            self.values[i] = v if self.values[i] is None else torch.cat([self.values[i], v], 1)
            y = y + self._attend(q, self.keys[i], self.values[i], sa)
            ca = layer.multihead_attn
            q = nn.functional.linear(layer.norm2(y), ca.in_proj_weight[: self.d], ca.in_proj_bias[: self.d])
            y = y + self._attend(q, self.cross[i][0], self.cross[i][1], ca)
            y = y + layer.linear2(layer.activation(layer.linear1(layer.norm3(y))))
        self.n += 1
        h = m.dec_norm(y)
        return m.chord_head(h)[0], m.bass_head(h)[0], m.early_head(h)[0]


def pick_bass(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """The bass above the root (0 = root position): most likely, or sampled like the quality."""
    if temperature <= 0:
        return int(logits.argmax())
    q = _top_p(torch.softmax(logits.float() / temperature, -1), top_p)
    return int(torch.multinomial(q, 1, generator=generator))


@dataclass
class Harmony:
    """Per-beat output of :func:`generate` (classes key-relative; see :mod:`hum2band.compose.harmony.grid`)."""

    chord: np.ndarray
    bass: np.ndarray
    early: np.ndarray


def generate(model: HarmonyTransformer, song: G.SongGrid, seed: int = 0, temperature: float = 0.0,
             top_p: float = 0.9, locked: Harmony | None = None, sample_family: bool = False,
             memory_confidence: float = MEMORY_CONFIDENCE) -> Harmony:
    """Chords for every beat of ``song``.

    Parameters
    ----------
    model : HarmonyTransformer
    song : SongGrid
        Its own chord targets are ignored.
    seed : int
        Seeds the sampling: the same seed gives the same chords.
    temperature, top_p : float
        Sampling of the quality and bass inside the chosen family (:func:`pick_chord`);
        temperature 0 is greedy.
    locked : Harmony, optional
        Beats whose ``chord`` is >= 0 are forced to that chord (with its bass and early flag).
    sample_family : bool
        Sample the (root, family) too instead of taking the most likely one.
    memory_confidence : float
        Own chords at least this sure are fed back as the decoder's memory (0: all, > 1: none).

    Returns
    -------
    Harmony
    """
    c = model.config
    gen = torch.Generator().manual_seed(int(seed))
    n = song.n_beats
    bpb = song.beats_per_bar
    chord = np.full(n, G.IGNORE, np.int64)
    bass = np.zeros(n, np.int64)
    early = np.zeros(n, np.int64)
    sure = np.zeros(n, bool)  # chords fed back to the decoder as its memory
    written = 0  # beats [0, written) are decided
    start_bar = 0
    with torch.inference_mode():
        while written < n:
            a = start_bar * bpb
            z = min(n, a + c.window_bars * bpb)
            win = window_of(song, start_bar, c.window_bars)
            batch = collate([win])
            memory = model.encode(batch["features"], batch["beat_in_bar"], batch["conditions"], batch["pad"])
            m = z - a
            fed = G.START_INPUT  # as in training: every window starts afresh
            inc = IncrementalDecoder(model, memory, batch["beat_in_bar"])
            for t in range(m):
                b = a + t
                logits = inc.feed(fed)
                if b < written:
                    pass  # the forced prefix: chords already written
                elif locked is not None and locked.chord[b] >= 0:
                    chord[b], bass[b], early[b] = locked.chord[b], locked.bass[b], locked.early[b]
                    sure[b] = True
                else:
                    lc, lb, le = logits
                    chord[b], conf = pick_chord_and_confidence(lc, temperature, top_p, gen, sample_family)
                    bass[b] = pick_bass(lb, temperature, top_p, gen)
                    early[b] = int(le.argmax())
                    sure[b] = conf >= memory_confidence
                fed = int(chord[b]) if sure[b] else G.MASK_INPUT
            written = z
            start_bar = max(0, z // bpb - c.context_bars)
    return Harmony(chord, bass, early)


def regenerate_bars(model: HarmonyTransformer, song: G.SongGrid, previous: Harmony, first_bar: int, end_bar: int,
                    seed: int = 0, temperature: float = 0.0, top_p: float = 0.9) -> Harmony:
    """Write bars ``[first_bar, end_bar)`` again, keeping every other beat of ``previous``."""
    bpb = song.beats_per_bar
    keep = np.ones(song.n_beats, bool)
    keep[first_bar * bpb:end_bar * bpb] = False
    locked = Harmony(np.where(keep, previous.chord, G.IGNORE), previous.bass.copy(), previous.early.copy())
    return generate(model, song, seed=seed, temperature=temperature, top_p=top_p, locked=locked)
