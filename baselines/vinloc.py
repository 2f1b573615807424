"""Baselines ``vinloc`` (VIn-Loc, seeds/003) and ``fingerprint_resnet`` (its RF-fingerprinting comparison) on the
cir_taps view.

Inputs per receiver: its TRP set from the view (``cell_mask``, ``tx_ids``, ``cell_position``) with the CIR of
each TRP, placed in a slot per TRP of the training set's TRP list (sorted ids), so that "TRP k" means the same
transmitter in every sample. Features: (Re h, Im h, |h|) of the D taps (``input = "cir"``, one or N_u antennas)
or the AoA-ToF image (``input = "aoa_tof"``, VIn-Loc scenario 2, one channel). Each TRP's CIR is scaled by its
own peak magnitude (``input_norm = "per_cell"``, default: the delays carry the position, the path loss of a
40 GHz link spans 40 dB) or by one training-set RMS (``"global"``). Positions (TRPs and the label) are mapped
to about [-1, 1] by the training set's centre and half-extent; errors are reported in metres (3-D distance).

Fixed vs variable TRPs (VIn-Loc Section 4, Table 2): ``subset_size`` S > 0 draws a random S-of-M subset of each
sample's TRPs, afresh every training epoch and once per test sample (seeded by ``rx_id``, so every method sees
the same test subsets). VIn-Loc gets the subset as a masked set; the fingerprinting ResNet gets it as its image
input, the chosen TRPs packed into the first S slots in TRP order (fixed TRPs: slot k is TRP k; variable: the
slot no longer names the TRP, the look-up table breaks - the paper's point).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from dataclasses import dataclass

import numpy as np

from twin.baselines import BASELINES
from twin.baselines.core import Baseline
from twin.errors import TwinInputError

log = logging.getLogger("twin.baselines")

#: VIn-Loc's figures (seeds/003). Table 2 (3GPP factory, 18 TRPs; variable = 15 of 18), Table 4 (Sionna Paris).
PAPER_TABLE2 = {
    ("fixed", "fingerprint_resnet"): {"rmse": 0.81, "mae": 0.76, "p90": 1.99},
    ("fixed", "vinloc"): {"rmse": 0.99, "mae": 0.72, "p90": 1.71},
    ("fixed", "vinloc_nopos"): {"rmse": 0.98, "mae": 0.73, "p90": 1.62},
    ("variable", "fingerprint_resnet"): {"rmse": 26.76, "mae": 23.4, "p90": 66.84},
    ("variable", "vinloc"): {"rmse": 0.95, "mae": 0.82, "p90": 1.68},
    ("variable", "vinloc_nopos"): {"rmse": 1.45, "mae": 1.13, "p90": 2.11},
}
PAPER_TABLE4 = {"scenario1": {"rmse": 0.93, "mae": 0.9, "p90": 1.5}, "scenario2": {"rmse": 7.3, "mae": 6.1, "p90": 11.0}}


@dataclass(frozen=True)
class VinLocConfig:
    """``[baselines.vinloc]`` (defaults: VIn-Loc Section 3, Table 1 and "Network architecture and training")."""

    input: typing.Literal["cir", "aoa_tof"] = "cir"
    input_norm: typing.Literal["per_cell", "global"] = "per_cell"
    use_positions: bool = True  # False: the "no TRP positions" ablation
    subset_size: int = 0  # S of M TRPs per sample (0: every TRP, the fixed configuration)
    test_subset_seed: int = 20250101
    epochs: int = 600
    batch_size: int = 16
    lr: float = 4e-4
    weight_decay: float = 0.1
    beta1: float = 0.99  # the paper's "momentum of 0.99"
    lr_decay: float = 0.993  # per epoch
    dim: int = 256  # N_d: CIR and position embeddings; tokens are 2 N_d
    blocks: int = 4
    heads: int = 4
    mlp_dim: int = 1024
    head_layers: int = 4
    head_hidden: int = 256
    unet_base: int = 16  # channels of the UNet's first level (the paper gives only the 6 output channels)
    num_freqs: int = 8  # NeRF frequency bands of the TRP position encoding
    resnet_width: int = 32  # fingerprint_resnet only
    threads: int = 0  # torch intra-op threads (0: torch's default)

    def __post_init__(self) -> None:
        for n in ("epochs", "batch_size", "dim", "blocks", "heads", "mlp_dim", "head_layers", "unet_base"):
            if getattr(self, n) <= 0:
                raise ValueError(f"{n} must be > 0, got {getattr(self, n)}")
        if self.subset_size < 0:
            raise ValueError(f"subset_size must be >= 0, got {self.subset_size}")
        if self.input not in ("cir", "aoa_tof"):
            raise ValueError(f"input must be 'cir' or 'aoa_tof', got {self.input!r}")
        if self.input_norm not in ("per_cell", "global"):
            raise ValueError(f"input_norm must be 'per_cell' or 'global', got {self.input_norm!r}")


@dataclass
class SetData:
    """Receivers as TRP-slot arrays: x (N, M, C, H, D) float32, pos (N, M, 3) m, mask (N, M), y (N, 3) m."""

    rx_id: np.ndarray
    x: np.ndarray
    pos: np.ndarray
    mask: np.ndarray
    y: np.ndarray


def set_data(cols: dict, trps: list[str], input_kind: str) -> SetData:
    """Place each receiver's cells of the cir_taps view in the slot of its TRP (``trps``; unknown TRPs dropped)."""
    from twin.baselines.vinloc_model import cir_features

    need = ["rx_id", "tx_ids", "cell_mask", "cell_position", "rx_x", "rx_y", "rx_z"]
    need.append("cir" if input_kind == "cir" else "aoa_tof")
    missing = [c for c in need if c not in cols]
    if missing:
        raise TwinInputError(f"the cir_taps view lacks {', '.join(missing)}", field="view",
                             fix="rebuild cir_taps (rx_array = true for the aoa_tof input)")
    if input_kind == "cir":
        feats = cir_features(np.asarray(cols["cir"])).numpy()  # (R, Mv, 3, nu, D)
    else:
        feats = np.asarray(cols["aoa_tof"], dtype=np.float32)[:, :, None]  # (R, Mv, 1, bins, D)
    R = len(cols["rx_id"])
    M = len(trps)
    slot = {t: i for i, t in enumerate(trps)}
    x = np.zeros((R, M) + feats.shape[2:], np.float32)
    pos = np.zeros((R, M, 3), np.float32)
    mask = np.zeros((R, M), bool)
    cm = np.asarray(cols["cell_mask"])
    cp = np.asarray(cols["cell_position"])
    for r in range(R):
        for k, t in enumerate(cols["tx_ids"][r]):
            j = slot.get(str(t))
            if j is None or not cm[r, k]:
                continue
            x[r, j], pos[r, j], mask[r, j] = feats[r, k], cp[r, k], True
    y = np.stack([np.asarray(cols[c], np.float64) for c in ("rx_x", "rx_y", "rx_z")], 1)
    return SetData(np.asarray(cols["rx_id"], np.int64), x, pos, mask, y)


def test_subsets(rx_id: np.ndarray, mask: np.ndarray, size: int, seed: int) -> np.ndarray:
    """One random S-of-M subset per receiver, seeded by (seed, rx_id): the same for every method and run."""
    out = np.zeros_like(mask)
    for i, r in enumerate(rx_id.tolist()):
        real = np.flatnonzero(mask[i])
        rng = np.random.default_rng([seed, int(r)])
        out[i, rng.permutation(real)[:size] if len(real) > size else real] = True
    return out


class _SetRegressor(Baseline):
    view = "cir_taps"
    task = "position"
    unit = "m"
    Config = VinLocConfig
    #: compact the subset into the first S slots (fingerprinting's image layout)
    compact_subsets = False

    def __init__(self, config=None, *, device: str = "cpu", seed: int = 0) -> None:
        super().__init__(config, device=device, seed=seed)
        self.trps: list[str] = []
        self.centre = np.zeros(3)
        self.scale = 1.0
        self.in_scale = 1.0
        self.model = None
        self._shape: tuple[int, ...] = ()

    # -- normalisation
    def _norm_x(self, d: SetData) -> np.ndarray:
        x = d.x
        if self.config.input_norm == "per_cell":
            peak = np.abs(x).reshape(x.shape[0], x.shape[1], -1).max(-1)
            x = x / np.where(peak > 0, peak, 1.0)[..., None, None, None]
        else:
            x = x / self.in_scale
        return x.astype(np.float32)

    def _norm_pos(self, p: np.ndarray) -> np.ndarray:
        return ((p - self.centre) / self.scale).astype(np.float32)

    def _build_model(self, num_slots: int, in_channels: int, height: int, num_taps: int):
        raise NotImplementedError

    def _prepare(self, reader, *, fit: bool) -> SetData:
        from twin.datasets.access import table_columns

        cols = table_columns(reader.to_table())  # tx_ids stay lists of lists
        if fit:
            self.trps = sorted({str(t) for row in cols["tx_ids"] for t in row})
            if not self.trps:
                raise TwinInputError("no TRP reaches any training receiver", file=reader.build.url, field="cir_taps")
        d = set_data(cols, self.trps, self.config.input)
        if fit:
            pts = np.concatenate([d.y, d.pos[d.mask]]) if d.mask.any() else d.y
            lo, hi = pts.min(0), pts.max(0)
            self.centre = (lo + hi) / 2
            self.scale = float(max((hi - lo).max() / 2, 1.0))
            real = d.x[d.mask]
            self.in_scale = float(np.sqrt(np.mean(real**2))) if real.size and np.any(real) else 1.0
        return d

    def _inputs(self, d: SetData, mask: np.ndarray):
        from twin.baselines.vinloc_model import compact

        x, pos = self._norm_x(d), self._norm_pos(d.pos) * mask[..., None]
        if self.compact_subsets and self.config.subset_size:
            return compact(x, pos, mask, self.config.subset_size)
        return x, pos, mask

    def fit(self, train, val, *, run) -> None:
        import torch

        from twin.baselines.vinloc_model import train_loop

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        d = self._prepare(train, fit=True)
        if len(d.y) < 2:
            raise TwinInputError(f"{len(d.y)} training receivers: need at least 2", file=train.build.url)
        _, M, C, H, D = d.x.shape
        self._shape = (M, C, H, D)
        torch.manual_seed(self.seed)
        slots = cfg.subset_size if (self.compact_subsets and cfg.subset_size) else M
        self.model = self._build_model(slots, C, H, D)
        x, pos, y = self._norm_x(d), self._norm_pos(d.pos) * d.mask[..., None], self._norm_pos(d.y)
        start, opt_state = 0, None
        ck = run.load_checkpoint()
        if ck is not None:
            self.model.load_state_dict(ck["model"])
            start, opt_state = int(ck["epoch"]) + 1, ck["optim"]
        vd = self._prepare(val, fit=False) if val is not None and len(val) else None

        def on_epoch(ep, loss, opt, sched):
            run.log_loss(ep + 1, loss * self.scale, split="train", x="epoch", unit="m")  # metres (mean 3-D distance)
            if vd is not None and (ep + 1) % max(1, cfg.epochs // 20) == 0:
                run.log_loss(ep + 1, float(np.mean(self._errors(vd))), split="val", x="epoch", unit="m")
                self.model.train()
            run.progress(ep + 1, cfg.epochs, loss=loss * self.scale)
            if run.checkpoint_due(ep + 1) or ep + 1 == cfg.epochs:
                run.save_checkpoint({"model": self.model.state_dict(), "epoch": ep,
                                     "optim": {"opt": opt.state_dict(), "sched": sched.state_dict()}})

        train_loop(self.model, x, pos, d.mask, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                   weight_decay=cfg.weight_decay, beta1=cfg.beta1, gamma=cfg.lr_decay, seed=self.seed,
                   subset=cfg.subset_size, slots=slots if self.compact_subsets and cfg.subset_size else None,
                   device=self.device, start_epoch=start, optimizer_state=opt_state, on_epoch=on_epoch)

    def _predict_positions(self, d: SetData) -> tuple[np.ndarray, np.ndarray]:
        from twin.baselines.vinloc_model import predict_batches

        m = test_subsets(d.rx_id, d.mask, self.config.subset_size, self.config.test_subset_seed) \
            if self.config.subset_size else d.mask
        x, pos, mask = self._inputs(d, m)
        pred = predict_batches(self.model, x, pos, mask, device=self.device) * self.scale + self.centre
        return pred, m

    def _errors(self, d: SetData) -> np.ndarray:
        pred, _ = self._predict_positions(d)
        return np.linalg.norm(pred - d.y, axis=1)

    def predict(self, test):
        import pandas as pd

        if self.model is None:
            raise RuntimeError(f"{self.NAME}: fit or load a state first")
        d = self._prepare(test, fit=False)
        pred, m = self._predict_positions(d)
        df = pd.DataFrame({"rx_id": d.rx_id})
        for i, a in enumerate("xyz"):
            df[f"pred_{a}"] = pred[:, i]
        for i, a in enumerate("xyz"):
            df[f"true_{a}"] = d.y[:, i]
        df["num_trps"] = m.sum(1).astype(np.int32)
        df["error"] = np.linalg.norm(pred - d.y, axis=1)
        return df

    def state_dict(self) -> dict:
        return {"model": None if self.model is None else self.model.state_dict(), "trps": list(self.trps),
                "centre": self.centre.tolist(), "scale": self.scale, "in_scale": self.in_scale,
                "shape": list(self._shape), "config": dataclasses.asdict(self.config)}

    def load_state_dict(self, d: dict) -> None:
        self.trps = list(d["trps"])
        self.centre = np.asarray(d["centre"], float)
        self.scale, self.in_scale = float(d["scale"]), float(d["in_scale"])
        self._shape = tuple(d["shape"])
        M, C, H, D = self._shape
        slots = self.config.subset_size if (self.compact_subsets and self.config.subset_size) else M
        self.model = self._build_model(slots, C, H, D)
        self.model.load_state_dict(d["model"])


@BASELINES.register("vinloc")
class VinLoc(_SetRegressor):
    """VIn-Loc: UNet CIR + NeRF-encoded TRP position tokens, [LOC] transformer, MLP head (position, m)."""

    paper = {"headline": PAPER_TABLE4["scenario1"]["rmse"], "scenario1_rmse_m": 0.93, "scenario1_mae_m": 0.9,
             "scenario2_rmse_m": 7.3, "scenario2_mae_m": 6.1, "scenario2_p90_m": 11.0,
             "table2_fixed_rmse_m": 0.99, "table2_variable_rmse_m": 0.95}

    def _build_model(self, num_slots, in_channels, height, num_taps):
        from twin.baselines.vinloc_model import VinLocNet

        c = self.config
        return VinLocNet(in_channels, height, num_taps, dim=c.dim, blocks=c.blocks, heads=c.heads,
                         mlp_dim=c.mlp_dim, head_layers=c.head_layers, head_hidden=c.head_hidden,
                         unet_base=c.unet_base, num_freqs=c.num_freqs, use_positions=c.use_positions)


@BASELINES.register("fingerprint_resnet")
class FingerprintResNetBaseline(_SetRegressor):
    """RF fingerprinting: a ResNet over the TRP-slot image of the same inputs (position, m)."""

    compact_subsets = True
    paper = {"headline": PAPER_TABLE2[("fixed", "fingerprint_resnet")]["rmse"], "table2_fixed_rmse_m": 0.81,
             "table2_variable_rmse_m": 26.76}

    def _build_model(self, num_slots, in_channels, height, num_taps):
        from twin.baselines.vinloc_model import FingerprintResNet

        return FingerprintResNet(num_slots, in_channels, height, width=self.config.resnet_width,
                                 head_hidden=self.config.head_hidden)


__all__ = ["PAPER_TABLE2", "PAPER_TABLE4", "FingerprintResNetBaseline", "SetData", "VinLoc", "VinLocConfig",
           "set_data", "test_subsets"]
