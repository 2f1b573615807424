"""DeepSync (seeds/000, §6): sub-sample timing of a cell's sync code in the folded-LTE windows, and TDoA from it.

Model (§6.2, Fig. 1): a signal encoder f_signal — stacked 1-D convolutions with kernels 14, 7, 5, each followed
by batch normalisation and ReLU — applied to every frame's window (time-distributed), the frames' feature maps
averaged (eq. 3); a second encoder of the same architecture for the target sync code (eq. 4); multi-head
cross-attention with the signal as query and the template as key and value (eq. 5); flatten and three dense
layers (ReLU, dropout) to the offset (eq. 6). Inputs standardised with training-set statistics (eq. 1); Huber
loss, δ = 1 sample (eq. 7); Adam, learning rate 1e-4.

Deviations, each a config option: the encoders keep the sequence (the text's GAP would leave nothing for the
attention to align: Z is 158×128 in eq. 2); ``row_scale`` divides each row by its own mean detected power
before the training-set standardisation (our rows span tens of dB of received power); the target is centred on
the training mean. Ablations (§8.2, §8.4): ``frames`` (1 vs 10) and ``fusion`` (concat / add / correlation vs
cross_attention); the coarse bound (6 / 10 / 40) is the view's ``jitter_max_samples``.

TDoA (§2): a cell's arrival, in frame samples at 1.92 MS/s, is ``window_start + offset``; the cells are
frame-synchronous, so arrival differences times c / 1.92 MHz are range differences, solved by
:func:`twin.baselines.localize.tdoa_gauss_newton` from the sites' positions (cells of one site averaged).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin.baselines import BASELINES
from twin.baselines.core import Baseline, read_columns, tower_positions
from twin.baselines.localize import tdoa_gauss_newton
from twin.baselines.matched_filter import crop_windows, offset_breakdown, offset_frame, test_crops
from twin.baselines.wknn import position_frame
from twin.constants import SPEED_OF_LIGHT

log = logging.getLogger("twin.baselines")

FS_HZ = 1.92e6

#: DeepSync §8.2 / Fig. 4: median sub-sample offset error, 10 frames, coarse bound 10 (samples)
PAPER_MEDIAN_OFFSET = 0.239
#: §8.2 / Fig. 5(b): one frame: median error "exceeding 3 samples"
PAPER_ONE_FRAME = 3.0
#: §8.2 / Fig. 5(a): coarse bound 40: "approximately 0.8 samples"
PAPER_BOUND_40 = 0.8
#: §8.1 / Fig. 2: median localization in simulation (m); the compressed-spectrum RSSI baseline 20 m
PAPER_LOC_MEDIAN_M = 4.0
PAPER_RSSI_LOC_MEDIAN_M = 20.0

FUSIONS = ("cross_attention", "concat", "add", "correlation")


@dataclass(frozen=True)
class DeepSyncConfig:
    """``[baselines.deepsync]`` (defaults: DeepSync §6; sizes of the dense head are not given there)."""

    variant: str = ""  # folded_lte variant (config hash or prefix) to read; "" the only one
    frames: int = 10  # frames of each row used (§8.2 ablation: 1 vs 10)
    fusion: Literal["cross_attention", "concat", "add", "correlation"] = "cross_attention"
    channels: tuple[int, ...] = (32, 64, 128)
    kernels: tuple[int, ...] = (14, 7, 5)
    heads: int = 4
    hidden: tuple[int, ...] = (256, 64)  # two hidden dense layers + the output layer: 3 dense layers
    dropout: float = 0.1
    lr: float = 1e-4
    huber_delta: float = 1.0
    batch_size: int = 32
    epochs: int = 30
    max_steps: int = 0  # > 0: stop after this many optimiser steps
    # early stopping: > 0 stops after this many epochs without a lower validation loss (the best state is kept
    # either way); 0 trains every epoch
    patience: int = 0
    row_scale: bool = True
    rx_height_m: float = 1.5  # receivers' height for TDoA (street level)
    # > 0: the view stores wide windows (truth_jitter, error 0, margin >= crop_margin + crop_bound); every epoch
    # cuts each training row again with a fresh coarse error in ±crop_bound (§8.2's protocol, as augmentation);
    # test rows get one fixed cut per row (the matched filter's test_crops with the same settings)
    crop_margin: int = 0
    crop_bound: int = 10

    def __post_init__(self) -> None:
        if self.frames <= 0:
            raise ValueError(f"frames must be > 0, got {self.frames}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if len(self.channels) != len(self.kernels) or not self.channels:
            raise ValueError("channels and kernels must have the same, non-zero length")
        if self.channels[-1] % self.heads:
            raise ValueError(f"the last channel count {self.channels[-1]} must be divisible by heads={self.heads}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        for n in ("lr", "huber_delta", "batch_size", "epochs"):
            if getattr(self, n) <= 0:
                raise ValueError(f"{n} must be > 0, got {getattr(self, n)}")


def _net(cfg: DeepSyncConfig, window_len: int, template_len: int):
    import torch
    from torch import nn

    def encoder() -> nn.Sequential:
        layers: list[nn.Module] = []
        c_in = 1
        for c, k in zip(cfg.channels, cfg.kernels, strict=True):
            layers += [nn.Conv1d(c_in, c, k), nn.BatchNorm1d(c), nn.ReLU()]
            c_in = c
        return nn.Sequential(*layers)

    shrink = sum(k - 1 for k in cfg.kernels)
    L, Lt, C = window_len - shrink, template_len - shrink, cfg.channels[-1]
    if Lt < 1:
        raise ValueError(f"the template ({template_len} samples) is shorter than the encoders' receptive field")

    class DeepSyncNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f_signal = encoder()
            self.f_sync = encoder()
            if cfg.fusion == "cross_attention":
                self.attn = nn.MultiheadAttention(C, cfg.heads, batch_first=True)
                n_in = L * C
            elif cfg.fusion == "concat":
                n_in = (L + Lt) * C
            elif cfg.fusion == "add":
                n_in = L * C
            else:  # correlation over the lags where the template fits in the window
                n_in = L - Lt + 1
            dims = [n_in, *cfg.hidden]
            head: list[nn.Module] = []
            for a, b in zip(dims[:-1], dims[1:], strict=True):
                head += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(cfg.dropout)]
            head.append(nn.Linear(dims[-1], 1))
            self.head = nn.Sequential(*head)

        def forward(self, windows: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
            B, F, W = windows.shape
            z = self.f_signal(windows.reshape(B * F, 1, W)).reshape(B, F, C, -1).mean(dim=1)  # (B, C, L)
            h = self.f_sync(template[:, None, :])  # (B, C, Lt)
            if cfg.fusion == "cross_attention":
                q, kv = z.transpose(1, 2), h.transpose(1, 2)
                at, _ = self.attn(q, kv, kv, need_weights=False)
                x = at.flatten(1)
            elif cfg.fusion == "concat":
                x = torch.cat([z, h], dim=2).flatten(1)
            elif cfg.fusion == "add":
                x = (z + nn.functional.pad(h, (0, z.shape[2] - h.shape[2]))).flatten(1)
            else:
                zu = z.unfold(2, h.shape[2], 1)  # (B, C, lags, Lt)
                x = (zu * h[:, :, None, :]).sum(dim=(1, 3)) / math.sqrt(C * h.shape[2])
            return self.head(x).squeeze(1)

    return DeepSyncNet()


@BASELINES.register("deepsync")
class DeepSync(Baseline):
    """DeepSync: CNN encoders over frames + template, cross-attention, dense head (offset, samples)."""

    view = "folded_lte"
    task = "offset"
    unit = "samples"
    Config = DeepSyncConfig
    paper = {"median_offset": PAPER_MEDIAN_OFFSET, "median_one_frame_exceeds": PAPER_ONE_FRAME,
             "median_bound_40": PAPER_BOUND_40, "median_localization_m": PAPER_LOC_MEDIAN_M}

    def __init__(self, config=None, *, device: str = "cpu", seed: int = 0) -> None:
        super().__init__(config, device=device, seed=seed)
        self.net = None
        self.stats: dict[str, float] = {}
        self.shape: tuple[int, int] = (0, 0)

    # -- data
    def _inputs(self, cols: dict) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(cols["windows"], dtype=np.float64)[:, : self.config.frames]
        t = np.asarray(cols["template"], dtype=np.float64)
        if self.config.row_scale:
            w = w / np.maximum(np.abs(w.mean(axis=(1, 2), keepdims=True)), 1e-300)
            t = t / np.maximum(np.abs(t.mean(axis=1, keepdims=True)), 1e-300)
        return w, t

    def _norm(self, w: np.ndarray, t: np.ndarray):
        import torch

        s = self.stats
        return (torch.as_tensor(((w - s["mu_s"]) / s["sd_s"]).astype(np.float32)),
                torch.as_tensor(((t - s["mu_p"]) / s["sd_p"]).astype(np.float32)))

    def _build(self, W: int, T: int) -> None:
        self.shape = (W, T)
        self.net = _net(self.config, W, T).to(self.device)

    # -- training
    def fit(self, train, val, *, run) -> None:
        import torch

        cfg = self.config
        cols = read_columns(train)
        crop_rng = np.random.default_rng([self.seed, 5])
        if cfg.crop_margin:
            cols0 = cols
            cols = crop_windows(cols0, cfg.crop_margin, cfg.crop_bound, crop_rng)
        w, t = self._inputs(cols)
        y = np.asarray(cols["true_offset_samples"], dtype=np.float64)
        if len(y) == 0:
            raise ValueError("the train split has no folded_lte rows")
        self.stats = {"mu_s": float(w.mean()), "sd_s": float(w.std() or 1.0), "mu_p": float(t.mean()),
                      "sd_p": float(t.std() or 1.0), "mu_y": float(y.mean())}
        self._build(w.shape[2], t.shape[1])
        assert self.net is not None
        X, P = self._norm(w, t)
        Y = torch.as_tensor((y - self.stats["mu_y"]).astype(np.float32))
        vX = vP = vY = None
        if val is not None and len(val):
            vc = test_crops(read_columns(val), cfg.crop_margin, cfg.crop_bound)
            vw, vt = self._inputs(vc)
            vX, vP = self._norm(vw, vt)
            vY = torch.as_tensor((np.asarray(vc["true_offset_samples"]) - self.stats["mu_y"]).astype(np.float32))
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        loss_fn = torch.nn.HuberLoss(delta=cfg.huber_delta)
        n = len(Y)
        per_epoch = max(1, math.ceil(n / cfg.batch_size))
        total = cfg.max_steps or cfg.epochs * per_epoch
        step, best, best_state, since = 0, math.inf, None, 0
        ck = run.load_checkpoint()
        if ck is not None:
            self.net.load_state_dict(ck["net"])
            opt.load_state_dict(ck["opt"])
            step, best, best_state = ck["step"], ck["best"], ck["best_state"]
            since = ck.get("since", 0)
        self.history: list[dict] = []
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(step):  # the same batch order as an uninterrupted run
            if _ % per_epoch == 0:
                perm = torch.randperm(n, generator=gen)
        while step < total:
            if step % per_epoch == 0:
                perm = torch.randperm(n, generator=gen)
                if cfg.crop_margin and step:  # a fresh coarse error per row and epoch
                    cc = crop_windows(cols0, cfg.crop_margin, cfg.crop_bound, crop_rng)
                    X, _ = self._norm(*self._inputs(cc))
                    Y = torch.as_tensor((np.asarray(cc["true_offset_samples"]) - self.stats["mu_y"]).astype(np.float32))
            b = step % per_epoch
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            self.net.train()
            opt.zero_grad()
            loss = loss_fn(self.net(X[idx].to(self.device), P[idx].to(self.device)), Y[idx].to(self.device))
            loss.backward()
            opt.step()
            step += 1
            run.log_loss(step, float(loss.detach()))
            stop = False
            if step % per_epoch == 0 or step == total:
                vl = float(loss.detach())
                ep = {"step": step, "epoch": step / per_epoch, "train_loss": vl}
                if vX is not None:
                    vpred = self._forward(vX, vP)
                    vl = float(loss_fn(torch.as_tensor(vpred), vY))
                    ep.update(val_loss=vl, val_median=float(np.median(np.abs(vpred - vY.numpy()))))
                    run.log_loss(step, vl, split="val")
                self.history.append(ep)
                log.info("deepsync epoch %.0f: %s", ep["epoch"], ep)
                if vl < best:
                    best, since = vl, 0
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                else:
                    since += 1
                    stop = cfg.patience > 0 and since >= cfg.patience
            run.progress(step, total, loss=float(loss.detach()))
            if run.checkpoint_due(step):
                run.save_checkpoint({"net": self.net.state_dict(), "opt": opt.state_dict(), "step": step,
                                     "best": best, "best_state": best_state, "since": since})
            if stop:
                log.info("deepsync: early stop at step %d (%d epochs without a lower validation loss)", step, since)
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)

    def _forward(self, X, P) -> np.ndarray:
        import torch

        assert self.net is not None
        self.net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), 256):
                out.append(self.net(X[i : i + 256].to(self.device), P[i : i + 256].to(self.device)).cpu())
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    def predict(self, test):
        cols = test_crops(read_columns(test), self.config.crop_margin, self.config.crop_bound)
        if len(cols["rx_id"]) == 0:
            return offset_frame(test, np.zeros(0), cols)
        w, t = self._inputs(cols)
        X, P = self._norm(w, t)
        pred = self._forward(X, P).astype(np.float64) + self.stats["mu_y"]
        return offset_frame(test, pred, cols)

    def extra_metrics(self, df) -> dict:
        out = offset_breakdown(df, self.config.crop_margin)
        hist = getattr(self, "history", None)
        if hist:
            out["history"] = hist
            if any("val_loss" in h for h in hist):
                out["best_epoch"] = min(hist, key=lambda h: h.get("val_loss", math.inf))["epoch"]
        return out

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict() if self.net is not None else {}, "stats": self.stats,
                "shape": list(self.shape)}

    def load_state_dict(self, d: dict) -> None:
        self.stats = dict(d["stats"])
        self._build(*[int(x) for x in d["shape"]])
        assert self.net is not None
        self.net.load_state_dict(d["net"])


def tdoa_localize(pred, build, *, rx_height_m: float = 1.5, min_sites: int = 3, box_margin_m: float = 200.0):
    """Receiver positions from per-cell offset predictions (a predict() DataFrame with ``window_start``-style
    columns: rx_id, tx_id, coarse_index, pred_offset_samples) by TDoA, one fix per receiver and capture (the
    view's ``capture`` column; one capture when absent); fixes with fewer than ``min_sites`` sites get NaN. Range
    differences that no point matches (errors of a few samples are ~0.5 km at 1.92 MS/s, as large as a city
    block's site spacing) send the least-squares solution out along the hyperbolas' asymptotes, so each fix is
    clipped to the sites' bounding box grown by ``box_margin_m`` (the served area; the same for every method). Returns :func:`~twin.baselines.wknn.position_frame` (error: horizontal distance, m)."""
    from twin.baselines.core import receiver_positions

    towers = tower_positions(build)
    allpos = np.array(list(towers.values()))[:, :2]
    lo, hi = allpos.min(axis=0) - box_margin_m, allpos.max(axis=0) + box_margin_m
    cap = pred["capture"].to_numpy(np.int64) if "capture" in pred else np.zeros(len(pred), np.int64)
    keys = np.unique(np.c_[pred["rx_id"].to_numpy(np.int64), cap], axis=0).reshape(-1, 2)
    rx_u = keys[:, 0]
    out = np.full((len(rx_u), 2), np.nan)
    for j, (r, k) in enumerate(keys):
        d = pred[(pred["rx_id"].to_numpy() == r) & (cap == k)]
        arr = (d["window_start"].to_numpy(float) + d["pred_offset_samples"].to_numpy(float))
        pos = np.array([towers[str(t)] for t in d["tx_id"]])
        sites, inv = np.unique(np.round(pos, 1), axis=0, return_inverse=True)
        if len(sites) < min_sites:
            continue
        a = np.array([arr[inv.ravel() == s].mean() for s in range(len(sites))])
        rng_m = (a - a[0]) * SPEED_OF_LIGHT / FS_HZ
        out[j] = np.clip(tdoa_gauss_newton(sites, rng_m[1:], dim=2, fixed=(rx_height_m,)), lo, hi)
    df = position_frame(rx_u, out, receiver_positions(build, rx_u))
    df.insert(1, "capture", keys[:, 1])
    return df


__all__ = ["DeepSync", "DeepSyncConfig", "tdoa_localize"]
