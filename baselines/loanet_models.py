"""LOA-Net (seed ``004_*.txt``) and its CNN comparisons, as plain torch modules.

Input: the ``tb_fingerprint`` view's power tensor P (R, C, L, V) (angle rows, angle cols, delay taps, Doppler bins).
Preprocessing (LOA-Net §IV-A): the angle-delay image A = Σ_v P normalised to max 1 (eq. 28), shape (R·C, L);
the mask M = 1[A > η] (eq. 29; near-zero values are kept, the mask only adds a channel, §IV-B); the Doppler
information D = Σ_{r,c} P normalised (eq. 30), shape (L, V).

- :class:`MaskDETRReg` (§IV-B, Fig. 4, Table III): a backbone fusing A and M, either Early-Concat (A and M
  concatenated along the delay axis, one conv stem: "EC") or Dual-Embedding (separate conv embeddings,
  concatenated and compressed by a 1x1 conv: "DE"); the feature map flattened into tokens with 2-D sine positional
  encodings; a DETR encoder (EC 6 layers, DE 4) and decoder (2 layers) with 4 learned object queries, hidden 256,
  4 heads; each query mapped to (x, y, z) by an MLP and the queries averaged.
- :class:`FusionTDC` (§IV-C, Fig. 5): D and the position prior each projected by Linear + LayerNorm + GELU,
  concatenated as tokens, a transformer encoder (4 layers) and decoder (2 layers, one learned query per class
  group), 8 heads, hidden 256, a classifier over 16 direction classes.
- :class:`CNN2D` (on A) and :class:`CNN3D` (on the (R·C, L, V) volume): the comparison CNNs (LOA-Net §V-B after
  its ref. [38]; the exact layer lists are not given there: ours are 4-stage conv stacks with batch norm,
  global pooling and an MLP head).

The paper's backbone layer lists are not given in the text either (Fig. 4 is not in the extraction); ours are
documented in each class.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def preprocess(tb: np.ndarray | torch.Tensor, *, db: bool = False, eta: float = 0.05
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, R, C, L, V) TB power -> angle-delay A (B, R·C, L), mask M (B, R·C, L), Doppler D (B, L, V).

    ``db``: the tensor is stored in dB re the row peak (the view's ``storage = "db"``). LOA-Net eqs. 28-30.
    """
    if torch.is_tensor(tb):
        p = tb.float()
    else:
        x = np.asarray(tb, dtype=np.float32)
        p = torch.from_numpy(x if x.flags.writeable else x.copy())  # Arrow buffers are read-only
    if db:
        p = torch.pow(10.0, p / 10.0)
    b, r, c, n_tap, v = p.shape
    a = p.sum(-1).reshape(b, r * c, n_tap)
    a = a / a.amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
    m = (a > eta).float()
    d = p.sum(dim=(1, 2))
    d = d / d.amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
    return a, m, d


def sine_pos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """(h·w, dim) 2-D sine positional encoding (DETR): half the channels for rows, half for columns."""
    d4 = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(d4, dtype=torch.float32) / d4))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    oy = ys.reshape(-1, 1) * omega
    ox = xs.reshape(-1, 1) * omega
    pe = torch.cat([oy.sin(), oy.cos(), ox.sin(), ox.cos()], dim=1)
    if pe.shape[1] < dim:
        pe = torch.cat([pe, torch.zeros(h * w, dim - pe.shape[1])], dim=1)
    return pe


def _stem(cin: int, width: int, stages: int) -> nn.Sequential:
    """Conv stages (3x3 conv, BN, ReLU, 2x2 max-pool), channels width·2^i."""
    layers: list[nn.Module] = []
    c = cin
    for i in range(stages):
        co = width * 2 ** i
        layers += [nn.Conv2d(c, co, 3, padding=1), nn.BatchNorm2d(co), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2, ceil_mode=True)]
        c = co
    return nn.Sequential(*layers)


class MaskDETRReg(nn.Module):
    """MaskDETR-Reg: backbone (``fusion`` "ec" or "de") + DETR encoder/decoder + per-query xyz, averaged.

    Backbone: 3 conv stages of width 32/64/128 (each halves both axes) on the (R·C) x L image; EC feeds the
    image and its mask concatenated along the delay axis, DE embeds each with its own stem and compresses the
    concatenated features with a 1x1 conv. A 1x1 conv maps to ``hidden``.
    """

    def __init__(self, fusion: str = "de", *, hidden: int = 256, heads: int = 4, enc_layers: int | None = None,
                 dec_layers: int = 2, queries: int = 4, width: int = 32, stages: int = 3, ff: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if fusion not in ("ec", "de"):
            raise ValueError(f"fusion must be 'ec' or 'de', got {fusion!r}")
        self.fusion = fusion
        enc_layers = enc_layers if enc_layers is not None else (6 if fusion == "ec" else 4)
        cout = width * 2 ** (stages - 1)
        if fusion == "ec":
            self.stem = _stem(1, width, stages)
        else:
            self.stem_a = _stem(1, width, stages)
            self.stem_m = _stem(1, width, stages)
            self.compress = nn.Sequential(nn.Conv2d(2 * cout, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.proj = nn.Conv2d(cout, hidden, 1)
        self.transformer = nn.Transformer(d_model=hidden, nhead=heads, num_encoder_layers=enc_layers,
                                          num_decoder_layers=dec_layers, dim_feedforward=ff, dropout=dropout,
                                          batch_first=True)
        self.query = nn.Parameter(torch.randn(queries, hidden) * 0.02)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3))
        self.hidden = hidden

    def forward(self, a: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """(B, H, W) image and mask -> (B, 3) position (in the training label's normalised units)."""
        if self.fusion == "ec":
            f = self.stem(torch.cat([a, m], dim=-1).unsqueeze(1))
        else:
            f = self.compress(torch.cat([self.stem_a(a.unsqueeze(1)), self.stem_m(m.unsqueeze(1))], dim=1))
        f = self.proj(f)
        b, c, h, w = f.shape
        tokens = f.flatten(2).transpose(1, 2) + sine_pos_2d(h, w, c).to(f)
        q = self.query.unsqueeze(0).expand(b, -1, -1)
        out = self.transformer(tokens, q)
        return self.head(out).mean(dim=1)


class FusionTDC(nn.Module):
    """Fusion-TDC: Doppler info (L x V) + position prior (3) -> 16-class motion direction logits.

    Each Doppler row (a delay tap's V-bin spectrum) and the position are projected by Linear + LayerNorm + GELU
    into tokens; encoder (``enc_layers``) over the concatenated tokens, decoder (``dec_layers``) with
    ``queries`` learned queries; the decoded tensor reshaped to one vector and classified.
    """

    def __init__(self, num_bins: int, num_classes: int = 16, *, hidden: int = 256, heads: int = 8,
                 enc_layers: int = 4, dec_layers: int = 2, queries: int = 4, ff: int = 512,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.dop = nn.Sequential(nn.Linear(num_bins, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.pos = nn.Sequential(nn.Linear(3, hidden), nn.LayerNorm(hidden), nn.GELU())
        self.transformer = nn.Transformer(d_model=hidden, nhead=heads, num_encoder_layers=enc_layers,
                                          num_decoder_layers=dec_layers, dim_feedforward=ff, dropout=dropout,
                                          batch_first=True)
        self.query = nn.Parameter(torch.randn(queries, hidden) * 0.02)
        self.classifier = nn.Sequential(nn.Linear(queries * hidden, hidden), nn.GELU(), nn.Linear(hidden, num_classes))
        self.tap_pe = None

    def forward(self, d: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """(B, L, V) Doppler info, (B, 3) position prior (normalised) -> (B, num_classes) logits."""
        b, n_tap, _ = d.shape
        tok = self.dop(d) + sine_pos_2d(n_tap, 1, self.query.shape[1]).to(d)
        tok = torch.cat([self.pos(pos).unsqueeze(1), tok], dim=1)
        out = self.transformer(tok, self.query.unsqueeze(0).expand(b, -1, -1))
        return self.classifier(out.reshape(b, -1))


class CNN2D(nn.Module):
    """2-D CNN on the angle-delay image: 4 conv stages (16/32/64/128), global average pool, MLP to xyz."""

    def __init__(self, width: int = 16, stages: int = 4) -> None:
        super().__init__()
        self.body = _stem(1, width, stages)
        c = width * 2 ** (stages - 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 128), nn.ReLU(inplace=True),
                                  nn.Linear(128, 3))

    def forward(self, a: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(a.unsqueeze(1)))


class CNN3D(nn.Module):
    """3-D CNN on the (R·C, L, V) volume: 3 stages of 3x3x3 conv (8/16/32), pooling over angle and delay only
    (V is small), global average pool, MLP to xyz."""

    def __init__(self, width: int = 8, stages: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 1
        for i in range(stages):
            co = width * 2 ** i
            layers += [nn.Conv3d(c, co, 3, padding=1), nn.BatchNorm3d(co), nn.ReLU(inplace=True),
                       nn.MaxPool3d((2, 2, 1), ceil_mode=True)]
            c = co
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c, 128), nn.ReLU(inplace=True),
                                  nn.Linear(128, 3))

    def forward(self, vol: torch.Tensor) -> torch.Tensor:
        """(B, R·C, L, V) -> (B, 3)."""
        return self.head(self.body(vol.unsqueeze(1)))


def label_smoothing_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1,
                         weight: float = 1.0) -> torch.Tensor:
    """LOA-Net eqs. 32-33: cross-entropy plus ``weight`` x the label-smoothing term (uniform target share
    ``smoothing``)."""
    ce = nn.functional.cross_entropy(logits, target)
    logp = torch.log_softmax(logits, dim=-1)
    smooth = -logp.mean(dim=-1).mean()
    return (1 - smoothing) * ce + weight * smoothing * smooth


def count_parameters(m: nn.Module) -> int:
    return int(sum(p.numel() for p in m.parameters()))


__all__ = ["CNN2D", "CNN3D", "FusionTDC", "MaskDETRReg", "count_parameters", "label_smoothing_loss", "preprocess",
           "sine_pos_2d", "math"]
