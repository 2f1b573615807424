"""VIn-Loc (seeds/003) and the RF-fingerprinting ResNet it is compared with, as plain torch modules.

VIn-Loc (Section 3, Table 1): per TRP, a UNet over the CIR's three feature channels (Re h, Im h, |h|; D taps;
1 x 3 kernels for one receive antenna, 3 x 3 over antenna x tap otherwise; 4 poolings; 6 output channels),
flattened and mapped by an MLP to 256; the TRP position through a frequency encoding (NeRF, Mildenhall et al.
2021) and a 2-layer ReLU MLP whose output is concatenated with the input coordinates (the paper's skip
connection) to 256; both concatenated into a 512-wide token per TRP; a learnable [LOC] token prepended; a
transformer encoder (4 blocks, 4 heads, MLP 1024, LayerNorm); the [LOC] output through a 4-layer ReLU MLP
(hidden 256) to (x, y, z). Padded TRP slots are excluded by the attention key-padding mask and never enter
the UNet (no batch statistics from padding), so a padded set gives the same output as the bare set.

Ablation "no TRP positions": the position half of every token is one learned vector (VIn-Loc Table 2, right
column).

Fingerprinting (VIn-Loc Section 4, "3GPP channel models", the ResNet of 3GPP R1-2303450): the per-TRP inputs
stacked in a fixed slot order as image channels, a residual CNN, global average pooling, an MLP to (x, y, z).
The 3GPP contribution's exact layer list is not public; ours is a ResNet-18-style stack of 4 stages of two
basic residual blocks (3 x 3 kernels over antenna x tap, stride 2 along taps per stage).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def cir_features(cir: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(…, N_u, D) complex -> (…, 3, N_u, D) float32: Re, Im, |h| (VIn-Loc Section 3, Part 1)."""
    c = torch.as_tensor(np.array(cir, copy=True)) if isinstance(cir, np.ndarray) else torch.as_tensor(cir)
    if not torch.is_complex(c):
        raise ValueError("cir_features expects complex taps")
    return torch.stack([c.real, c.imag, c.abs()], dim=-3).float()


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kh: int) -> None:
        super().__init__()
        pad = (kh // 2, 1)
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, (kh, 3), padding=pad), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, (kh, 3), padding=pad), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class UNetEmbed(nn.Module):
    """UNet (Ronneberger et al. 2015) over (C, N_u, D) -> ``out_channels`` maps -> flatten -> MLP -> ``dim``.

    Pooling halves the tap axis only (N_u = 8 antennas would vanish after 4 poolings); D must be a multiple of
    2**levels. Kernels: 1 x 3 for N_u = 1, 3 x 3 otherwise (VIn-Loc Table 1, "Kernel size = 3(1) x 3").
    """

    def __init__(self, in_channels: int, height: int, num_taps: int, *, base: int = 16, levels: int = 4,
                 out_channels: int = 6, dim: int = 256) -> None:
        super().__init__()
        if num_taps % (2**levels):
            raise ValueError(f"num_taps ({num_taps}) must be a multiple of 2**levels = {2**levels}")
        kh = 3 if height > 1 else 1
        widths = [base * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([_ConvBlock(in_channels, widths[0], kh)] +
                                  [_ConvBlock(widths[i], widths[i + 1], kh) for i in range(levels)])
        self.pool = nn.MaxPool2d((1, 2))
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], (1, 2), stride=(1, 2))
                                 for i in reversed(range(levels))])
        self.dec = nn.ModuleList([_ConvBlock(2 * widths[i], widths[i], kh) for i in reversed(range(levels))])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        flat = out_channels * height * num_taps
        self.mlp = nn.Sequential(nn.Linear(flat, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, D) -> (N, dim)
        skips = []
        for i, blk in enumerate(self.down):
            x = blk(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.mlp(self.head(x).flatten(1))


class FrequencyEncoding(nn.Module):
    """γ(p) = (p, sin(2^k π p), cos(2^k π p)) for k < ``num_freqs`` (NeRF, Mildenhall et al. 2021, eq. 4);
    p in normalised coordinates (about [-1, 1])."""

    def __init__(self, num_freqs: int = 8) -> None:
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(num_freqs)) * math.pi, persistent=False)

    @property
    def out_dim_per_coord(self) -> int:
        return 1 + 2 * len(self.freqs)

    def forward(self, p: torch.Tensor) -> torch.Tensor:  # (..., 3) -> (..., 3 * (1 + 2F))
        xf = p[..., None] * self.freqs
        return torch.cat([p[..., None], torch.sin(xf), torch.cos(xf)], dim=-1).flatten(-2)


class TRPEmbed(nn.Module):
    """TRP position -> frequency encoding -> 2-layer ReLU MLP (dim − 3) -> concat with the coordinates -> dim."""

    def __init__(self, dim: int = 256, num_freqs: int = 8) -> None:
        super().__init__()
        self.enc = FrequencyEncoding(num_freqs)
        self.mlp = nn.Sequential(nn.Linear(3 * self.enc.out_dim_per_coord, dim), nn.ReLU(inplace=True),
                                 nn.Linear(dim, dim - 3))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mlp(self.enc(p)), p], dim=-1)


def mlp_head(din: int, hidden: int, layers: int, dout: int = 3) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = din
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


class VinLocNet(nn.Module):
    """Inputs: ``x`` (B, M, C, N_u, D) features, ``pos`` (B, M, 3) normalised TRP positions, ``mask`` (B, M)
    bool (True: a real TRP). Output (B, 3) normalised UE position."""

    def __init__(self, in_channels: int, height: int, num_taps: int, *, dim: int = 256, blocks: int = 4,
                 heads: int = 4, mlp_dim: int = 1024, head_layers: int = 4, head_hidden: int = 256,
                 unet_base: int = 16, num_freqs: int = 8, use_positions: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.cir_embed = UNetEmbed(in_channels, height, num_taps, base=unet_base, dim=dim)
        self.use_positions = use_positions
        if use_positions:
            self.pos_embed: nn.Module = TRPEmbed(dim, num_freqs)
        else:
            self.no_pos = nn.Parameter(torch.zeros(dim))
        width = 2 * dim
        self.loc = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, mlp_dim, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, blocks, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.head = mlp_head(width, head_hidden, head_layers)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, M = mask.shape
        emb = x.new_zeros(B, M, self.dim)
        if mask.any():
            emb[mask] = self.cir_embed(x[mask])  # real TRPs only
        if self.use_positions:
            pe = self.pos_embed(pos) * mask[..., None]
        else:
            pe = self.no_pos.expand(B, M, self.dim)
        tokens = torch.cat([emb, pe], dim=-1)
        seq = torch.cat([self.loc.expand(B, 1, -1), tokens], dim=1)
        pad = torch.cat([mask.new_zeros(B, 1), ~mask], dim=1)
        out = self.encoder(seq, src_key_padding_mask=pad)
        return self.head(out[:, 0])


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, kh: int) -> None:
        super().__init__()
        pad = (kh // 2, 1)
        self.c1 = nn.Conv2d(cin, cout, (kh, 3), stride=(1, stride), padding=pad, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, (kh, 3), padding=pad, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(1, stride), bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(y)) + self.short(x))


class FingerprintResNet(nn.Module):
    """RF fingerprinting: the M TRP slots' features stacked as channels, (B, M·C, N_u, D) -> (B, 3).

    Slot k is always the same input position: with fixed TRPs it is TRP k (a look-up table of the environment),
    with variable subsets it is whatever TRP fills it (the layout carries no TRP identity)."""

    def __init__(self, num_slots: int, in_channels: int, height: int, *, width: int = 32,
                 head_hidden: int = 256) -> None:
        super().__init__()
        kh = 3 if height > 1 else 1
        self.stem = nn.Sequential(nn.Conv2d(num_slots * in_channels, width, (kh, 7), padding=(kh // 2, 3),
                                            bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        c = width
        for i in range(4):
            cout = width * 2**i
            stages += [_BasicBlock(c, cout, 1 if i == 0 else 2, kh), _BasicBlock(cout, cout, 1, kh)]
            c = cout
        self.body = nn.Sequential(*stages)
        self.head = mlp_head(c, head_hidden, 3)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        B, M, C, H, D = x.shape
        if mask is not None:
            x = x * mask[:, :, None, None, None]
        y = self.body(self.stem(x.reshape(B, M * C, H, D)))
        return self.head(y.mean(dim=(2, 3)))


def l2_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Mean Euclidean norm of the error (VIn-Loc Section 3, "ℓ2-norm loss")."""
    return torch.sqrt(((pred - target) ** 2).sum(-1) + eps).mean()


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, beta1: float, gamma: float):
    """AdamW (lr, weight decay, β1 = "momentum") and an exponential learning-rate decay per epoch."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(beta1, 0.999))
    return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)


def random_subsets(mask: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random S-of-M subset of each row's real TRPs (``mask`` (N, M) bool); rows with <= S keep all."""
    out = np.zeros_like(mask)
    for i in range(mask.shape[0]):
        real = np.flatnonzero(mask[i])
        out[i, rng.permutation(real)[:size] if len(real) > size else real] = True
    return out


def compact(x: np.ndarray, pos: np.ndarray, mask: np.ndarray, slots: int):
    """Move each row's selected TRPs (``mask``) to the first slots, in their original slot order, keep ``slots``."""
    order = np.argsort(~mask, axis=1, kind="stable")[:, :slots]
    take = np.take_along_axis
    xs = take(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)
    ps = take(pos, order[..., None], axis=1)
    ms = take(mask, order, axis=1)
    xs = xs * ms.reshape(ms.shape + (1,) * (x.ndim - 2))
    return xs, ps * ms[..., None], ms


def train_loop(model: nn.Module, x: np.ndarray, pos: np.ndarray, mask: np.ndarray, y: np.ndarray, *, epochs: int,
               batch_size: int, lr: float, weight_decay: float, beta1: float, gamma: float, seed: int,
               subset: int = 0, slots: int | None = None, device: str = "cpu", start_epoch: int = 0,
               optimizer_state: dict | None = None, on_epoch=None) -> list[float]:
    """Minibatch training with :func:`l2_loss`; ``x`` (N, M, C, H, D) float32, ``pos`` (N, M, 3), ``mask``
    (N, M), ``y`` (N, 3), all normalised. ``subset`` > 0 draws a fresh random S-of-M TRP subset of every
    sample each epoch (VIn-Loc "variable TRP configuration"); ``slots`` compacts the subset into the first
    slots (the fingerprinting layout). ``on_epoch(epoch, mean_loss, optimizer, scheduler)`` after each epoch.
    Returns the mean training loss of each epoch run."""
    model.to(device).train()
    opt, sched = make_optimizer(model, lr=lr, weight_decay=weight_decay, beta1=beta1, gamma=gamma)
    if optimizer_state:
        opt.load_state_dict(optimizer_state["opt"])
        sched.load_state_dict(optimizer_state["sched"])
    n = len(y)
    history = []
    yt = torch.as_tensor(y, dtype=torch.float32)
    for ep in range(start_epoch, epochs):
        rng = np.random.default_rng([seed, ep])
        m_ep = random_subsets(mask, subset, rng) if subset else mask
        xe, pe, me = (compact(x, pos, m_ep, slots) if slots else (x, pos, m_ep))
        perm = rng.permutation(n)
        tot, cnt = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            if len(idx) < 2 and n >= 2:  # BatchNorm needs two samples
                continue
            xb = torch.as_tensor(xe[idx], device=device)
            pb = torch.as_tensor(pe[idx], dtype=torch.float32, device=device)
            mb = torch.as_tensor(me[idx], device=device)
            loss = l2_loss(model(xb, pb, mb), yt[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            cnt += len(idx)
        sched.step()
        history.append(tot / max(cnt, 1))
        if on_epoch is not None:
            on_epoch(ep, history[-1], opt, sched)
    return history


@torch.no_grad()
def predict_batches(model: nn.Module, x: np.ndarray, pos: np.ndarray, mask: np.ndarray, *, batch_size: int = 64,
                    device: str = "cpu") -> np.ndarray:
    model.to(device).eval()
    out = []
    for s in range(0, len(x), batch_size):
        out.append(model(torch.as_tensor(x[s:s + batch_size], device=device),
                         torch.as_tensor(pos[s:s + batch_size], dtype=torch.float32, device=device),
                         torch.as_tensor(mask[s:s + batch_size], device=device)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)
