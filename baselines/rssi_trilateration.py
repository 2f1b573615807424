"""RSSI trilateration: a log-distance path-loss model fitted on the training receivers, ranges from each cell's
received power, trilateration from the towers' positions.

Received power per link (dBm): the cell's ``tx_power_dbm`` plus the link's ``path_gain_db`` (CIR rows; the
sum of |a|² over the paths). Model: P_rx = P_tx − PL0 − 10·n·log10(d / 1 m), fitted by least squares on the
training links (d the true 3-D tower-receiver distance); inverted per test link, d̂ = 10^((P_tx − P_rx − PL0) /
(10 n)). Cells of one site (same position) are combined by the mean of their log-ranges. The receiver height
is fixed at the training receivers' median; ranges are weighted 1/d̂² (log-normal shadowing: the relative
error is constant, so near towers give the tightest circles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.baselines import BASELINES
from twin.baselines.core import Baseline, read_columns
from twin.baselines.localize import trilaterate
from twin.baselines.wknn import position_frame


@dataclass(frozen=True)
class RssiConfig:
    """``[baselines.rssi_trilateration]``: the sensitivity floor (dBm; links below are not heard; None: all)."""

    min_rx_power_dbm: float | None = None
    min_distance_m: float = 1.0

    def __post_init__(self) -> None:
        if self.min_distance_m <= 0:
            raise ValueError(f"min_distance_m must be > 0, got {self.min_distance_m}")


def link_table(reader, min_rx_power_dbm: float | None) -> dict[str, np.ndarray]:
    """Per CIR link: rx_id, tx position, rx position, tx power, received power (dBm), heard links only."""
    cols = read_columns(reader, ["rx_id", "tx_id", "tx_x", "tx_y", "tx_z", "rx_x", "rx_y", "rx_z", "path_gain_db"])
    towers = reader.build.towers
    ptx = dict(zip(towers["cell_id"].astype(str), towers["tx_power_dbm"].astype(float), strict=True))
    tx = [str(t) for t in cols["tx_id"]]
    out = {
        "rx_id": np.asarray(cols["rx_id"], dtype=np.int64),
        "tx": np.stack([np.asarray(cols[k], dtype=np.float64) for k in ("tx_x", "tx_y", "tx_z")], 1),
        "rx": np.stack([np.asarray(cols[k], dtype=np.float64) for k in ("rx_x", "rx_y", "rx_z")], 1),
        "ptx": np.array([ptx.get(t, np.nan) for t in tx], dtype=np.float64),
    }
    out["prx"] = out["ptx"] + np.asarray(cols["path_gain_db"], dtype=np.float64)
    keep = np.isfinite(out["prx"])
    if min_rx_power_dbm is not None:
        keep &= out["prx"] >= float(min_rx_power_dbm)
    return {k: v[keep] for k, v in out.items()}


@BASELINES.register("rssi_trilateration")
class RssiTrilateration(Baseline):
    """Log-distance path-loss fit on train + weighted trilateration from tower positions (position, m)."""

    view = "cir"
    task = "position"
    unit = "m"
    Config = RssiConfig

    def __init__(self, config=None, *, device: str = "cpu", seed: int = 0) -> None:
        super().__init__(config, device=device, seed=seed)
        self.pl0_db = float("nan")
        self.exponent = float("nan")
        self.rx_height_m = 1.5

    def fit(self, train, val, *, run) -> None:
        t = link_table(train, self.config.min_rx_power_dbm)
        d = np.maximum(np.linalg.norm(t["tx"] - t["rx"], axis=1), self.config.min_distance_m)
        A = np.stack([np.ones_like(d), 10 * np.log10(d)], 1)
        (pl0, n), *_ = np.linalg.lstsq(A, t["ptx"] - t["prx"], rcond=None)
        self.pl0_db, self.exponent = float(pl0), float(max(n, 0.5))
        self.rx_height_m = float(np.median(t["rx"][:, 2])) if len(t["rx"]) else 1.5
        resid = t["ptx"] - t["prx"] - A @ np.array([pl0, n])
        self.shadowing_db = float(np.std(resid)) if resid.size else float("nan")

    def ranges(self, ptx: np.ndarray, prx: np.ndarray) -> np.ndarray:
        return 10 ** ((ptx - prx - self.pl0_db) / (10 * self.exponent))

    def predict(self, test):
        t = link_table(test, self.config.min_rx_power_dbm)
        cols = read_columns(test, ["rx_id", "rx_x", "rx_y", "rx_z"])
        rx_all = np.unique(np.asarray(cols["rx_id"], dtype=np.int64))
        first = {}
        for i, r in enumerate(np.asarray(cols["rx_id"], dtype=np.int64).tolist()):
            first.setdefault(r, i)
        truth = np.array([[cols[k][first[int(r)]] for k in ("rx_x", "rx_y", "rx_z")] for r in rx_all]).reshape(-1, 3)
        pred = np.full((len(rx_all), 2), np.nan)
        logr = np.log(np.maximum(self.ranges(t["ptx"], t["prx"]), self.config.min_distance_m))
        for j, r in enumerate(rx_all):
            sel = np.flatnonzero(t["rx_id"] == r)
            if sel.size == 0:
                continue
            sites, inv = np.unique(np.round(t["tx"][sel], 1), axis=0, return_inverse=True)
            lr = np.array([logr[sel][inv.ravel() == s].mean() for s in range(len(sites))])
            rng = np.exp(lr)
            pred[j] = trilaterate(sites, rng, dim=2, fixed=(self.rx_height_m,), weights=1.0 / rng**2)
        return position_frame(rx_all, pred, truth)

    def extra_metrics(self, df) -> dict:
        return {"pl0_db": self.pl0_db, "exponent": self.exponent, "shadowing_db": getattr(self, "shadowing_db", None),
                "located": int(np.isfinite(df["error"]).sum())}

    def state_dict(self) -> dict:
        return {"pl0_db": self.pl0_db, "exponent": self.exponent, "rx_height_m": self.rx_height_m}

    def load_state_dict(self, d: dict) -> None:
        self.pl0_db, self.exponent, self.rx_height_m = float(d["pl0_db"]), float(d["exponent"]), float(d["rx_height_m"])


__all__ = ["RssiConfig", "RssiTrilateration", "link_table"]
