"""The accompaniment model: an encoder-decoder transformer that writes the band's parts bar by bar.

* The **encoder** reads the whole song (or a window of it), one vector per bar: the bar's 48 ticks
  of melody and chord features (:func:`hum2band.compose.parts.grid.tick_features`) flattened and
  projected, plus the conditions (style, groove variant, meter, tempo band, mode) and the bar's
  position (in the 4- and 8-bar phrase, bars left, does a phrase end here). Self-attention over
  bars is bidirectional, so a bar "knows" the phrase it belongs to and its repeats.
* The **decoder** is causal over bars: bar *i* sees the onsets it wrote for bars before *i*
  (memory of what it played) and cross-attends to the encoder.
* The **tick head** turns each decoder bar vector into the 48-tick output grid. It also sees each
  tick's own melody/chord features, so a note can be placed against the chord and the melody
  sounding at that tick.

One decoder step writes one whole bar of every part, so 32 bars take 32 small steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ...music.styles import STYLE_NAMES, check_style_order
from . import grid as G

#: Groove variants per style the model can be asked for (0 = any / not from a rule-based groove).
N_VARIANTS = 8


@dataclass
class PartsModelConfig:
    d_model: int = 192
    n_heads: int = 4
    enc_layers: int = 3
    dec_layers: int = 3
    d_ff: int = 512
    d_tick: int = 64
    dropout: float = 0.1
    max_bars: int = 64


class PartsModel(nn.Module):
    """Melody + chords + style -> drums, bass, keys, guitar and pads on the tick grid."""

    def __init__(self, cfg: PartsModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PartsModelConfig()
        d = cfg.d_model
        self.tick_in = nn.Linear(G.TICK_FEATURES, cfg.d_tick)
        self.tick_pos = nn.Parameter(torch.zeros(G.MAX_TICKS, cfg.d_tick))
        self.bar_in = nn.Linear(G.MAX_TICKS * cfg.d_tick, d)
        self.style = nn.Embedding(len(STYLE_NAMES), d)
        self.variant = nn.Embedding(len(STYLE_NAMES) * N_VARIANTS, d)
        self.meter = nn.Embedding(len(G.METERS), d)
        self.tempo = nn.Embedding(len(G.TEMPO_EDGES_BPM) + 1, d)
        self.mode = nn.Embedding(2, d)
        self.bar_pos = nn.Embedding(G.N_BAR_POS, d)
        self.prev_in = nn.Linear(G.MAX_TICKS * G.ONSET_SIZE, d)
        self.start = nn.Parameter(torch.zeros(d))
        enc_layer = nn.TransformerEncoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True,
                                               norm_first=True)
        dec_layer = nn.TransformerDecoderLayer(d, cfg.n_heads, cfg.d_ff, cfg.dropout, batch_first=True,
                                               norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, cfg.enc_layers, enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, cfg.dec_layers)
        self.norm = nn.LayerNorm(d)
        self.to_ticks = nn.Linear(d, G.MAX_TICKS * cfg.d_tick)
        self.head = nn.Sequential(nn.Linear(2 * cfg.d_tick, 256), nn.GELU(), nn.Linear(256, G.OUT_SIZE))
        nn.init.normal_(self.tick_pos, std=0.02)
        nn.init.normal_(self.start, std=0.02)

    # ---- pieces ---------------------------------------------------------------------------
    def conditions(self, style, variant, meter, tempo, mode):
        """(B,) ids each -> (B, 1, d)."""
        v = style * N_VARIANTS + variant
        return (self.style(style) + self.variant(v) + self.meter(meter) + self.tempo(tempo)
                + self.mode(mode)).unsqueeze(1)

    def encode(self, ticks, bar_pos, cond, bar_mask):
        """ticks (B, N, 48, F), bar_pos (B, N, 4), cond (B, 1, d), bar_mask (B, N) True = real bar.

        Returns memory (B, N, d) and per-tick projections (B, N, 48, d_tick)."""
        b, n = ticks.shape[:2]
        t = self.tick_in(ticks) + self.tick_pos
        x = self.bar_in(t.reshape(b, n, -1)) + cond + self.bar_pos(bar_pos).sum(2)
        x = x + _sinusoid(n, x.shape[-1], x.device)
        mem = self.encoder(x, src_key_padding_mask=_padding(bar_mask))
        return mem, t

    def decode(self, mem, tick_proj, prev_onsets, bar_pos, cond, bar_mask, last_only: bool = False):
        """prev_onsets (B, N, 48, ONSET_SIZE): the onsets of bar i-1 at position i (zeros at 0).

        Returns logits/values (B, N, 48, OUT_SIZE), or (B, 1, 48, OUT_SIZE) for the last bar only
        with ``last_only`` (generation)."""
        b, n = prev_onsets.shape[:2]
        y = self.embed_previous(prev_onsets)
        return self.decode_embedded(mem, tick_proj, y, bar_pos, cond, bar_mask, last_only)

    def embed_previous(self, prev_onsets):
        """(B, N, 48, ONSET_SIZE) -> (B, N, d); position 0 is the start vector."""
        b, n = prev_onsets.shape[:2]
        y = self.prev_in(prev_onsets.reshape(b, n, -1))
        return torch.cat([self.start.expand(b, 1, -1), y[:, 1:]], dim=1) if n > 0 else y

    def decode_embedded(self, mem, tick_proj, y, bar_pos, cond, bar_mask, last_only: bool = False):
        """:meth:`decode` from already embedded previous bars (generation embeds each bar once)."""
        b, n = y.shape[:2]
        y = y + cond + self.bar_pos(bar_pos).sum(2) + _sinusoid(n, y.shape[-1], y.device)
        causal = _causal(n, y.device)
        pad = _padding(bar_mask)
        h = self.decoder(y, mem, tgt_mask=causal, tgt_key_padding_mask=pad, memory_key_padding_mask=pad)
        h = self.norm(h)
        if last_only:
            h, tick_proj = h[:, -1:], tick_proj[:, n - 1:n]
            n = 1
        tk = self.to_ticks(h).reshape(b, n, G.MAX_TICKS, -1)
        return self.head(torch.cat([tk, tick_proj], dim=-1))

    def forward(self, ticks, bar_pos, style, variant, meter, tempo, mode, prev_onsets, bar_mask):
        cond = self.conditions(style, variant, meter, tempo, mode)
        mem, tick_proj = self.encode(ticks, bar_pos, cond, bar_mask)
        return self.decode(mem, tick_proj, prev_onsets, bar_pos, cond, bar_mask)


_SIN: dict = {}


def _padding(bar_mask: torch.Tensor):
    """Key padding mask for attention, or None when every bar is real (generation): torch's mask
    checks would otherwise import its symbolic-shape machinery, a third of a second per run."""
    return None if bool(bar_mask.all()) else ~bar_mask


def _causal(n: int, device) -> torch.Tensor:
    key = ("causal", n, str(device))
    if key not in _SIN:
        _SIN[key] = torch.triu(torch.ones(n, n, dtype=torch.bool, device=device), diagonal=1)
    return _SIN[key]


def _sinusoid(n: int, d: int, device) -> torch.Tensor:
    key = (n, d, str(device))
    if key not in _SIN:
        _SIN[key] = _sinusoid_table(n, d, device)
    return _SIN[key]


def _sinusoid_table(n: int, d: int, device) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(0, d, 2, device=device, dtype=torch.float32)
    ang = pos / torch.pow(10000.0, i / d)
    out = torch.zeros(n, d, device=device)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang)
    return out * 0.1


def parts_loss(out, onset, velocity, log2_dur, tick_mask, part_mask, pos_weight: float = 4.0):
    """Training loss: onset BCE over every tick and output of the supervised parts, plus velocity
    and duration regression where a note starts.

    out, onset, velocity, log2_dur : (B, N, 48, OUT_SIZE); tick_mask (B, N, 48) bool;
    part_mask (B, len(PARTS)) bool: which parts this example supervises.

    Returns (total, dict of parts of the loss as floats).
    """
    cols = _columns(out.device)
    col_part = cols["part"]                                   # (OUT_SIZE,) part index per column
    col_mask = part_mask[:, col_part]                         # (B, OUT_SIZE)
    on_cols = cols["onset"]
    m = tick_mask.unsqueeze(-1) & col_mask[:, None, None, :]
    m_on = m & on_cols
    logits = out
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits, onset, reduction="none",
        pos_weight=torch.tensor(pos_weight, device=out.device))
    n_on = m_on.sum().clamp(min=1)
    l_on = (bce * m_on).sum() / n_on * 50.0
    # velocity / duration: read at the onset column, values live in their own columns
    vel_cols, dur_cols, onset_of_vel, onset_of_dur = cols["vel"], cols["dur"], cols["on_v"], cols["on_d"]
    hit_v = onset[..., onset_of_vel] > 0.5
    mv = hit_v & m[..., vel_cols]
    l_vel = ((out[..., vel_cols] - velocity[..., vel_cols]) ** 2 * mv).sum() / mv.sum().clamp(min=1)
    hit_d = onset[..., onset_of_dur] > 0.5
    md = hit_d & m[..., dur_cols]
    l_dur = ((out[..., dur_cols] - log2_dur[..., dur_cols]) ** 2 * md).sum() / md.sum().clamp(min=1)
    total = l_on + l_vel + 0.25 * l_dur
    return total, {"onset": float(l_on.detach()), "velocity": float(l_vel.detach()), "duration": float(l_dur.detach())}


_CACHE: dict = {}


def _columns(device) -> dict:
    """The grid's column maps (:mod:`hum2band.compose.parts.grid`) as tensors on ``device``, made once.

    ``part``: part index of every output column; ``onset``: mask of the onset columns;
    ``vel``/``on_v``: every velocity column and its onset column; ``dur``/``on_d``: every
    duration column (pitched parts) and its onset column.
    """
    key = str(device)
    if key not in _CACHE:
        on = G.ONSET_COLUMNS
        pitched = on[G.N_DRUM:]
        mask = np.zeros(G.OUT_SIZE, dtype=bool)
        mask[on] = True
        maps = {"part": G.COLUMN_PART, "onset": mask, "vel": G.VELOCITY_COLUMN[on], "on_v": on,
                "dur": G.DURATION_COLUMN[pitched], "on_d": pitched}
        _CACHE[key] = {k: torch.as_tensor(v, device=device) for k, v in maps.items()}
    return _CACHE[key]


def save(model: PartsModel, path, meta: dict) -> None:
    """Weights in float16 (half the size; inference casts back to float32) + config + meta."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"config": asdict(model.cfg), "state": state, "meta": meta, "styles": list(STYLE_NAMES)}, path)


def load(path) -> tuple[PartsModel, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=False)
    check_style_order(blob.get("styles"), f"the accompaniment model {path}")
    model = PartsModel(PartsModelConfig(**blob["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    model.eval()
    return model, blob.get("meta", {})
