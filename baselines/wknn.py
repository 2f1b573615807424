"""Weighted k-nearest-neighbour fingerprinting, generic over a view's feature column and a position label.

A fingerprint is one vector per receiver: the rows of a receiver (one per cell in per-link views, one in
per-receiver views) ordered by ``tx_id`` over the cells seen in training, each row's ``feature`` column flattened
(complex values as magnitude, or real and imaginary parts) and concatenated; a cell missing at a receiver is
zeros. Features are standardised with the training set's mean and standard deviation. The position is the
mean of the k nearest training positions weighted by 1 / (distance + eps). The label is the receiver position
from the build's receivers table (or the view's ``rx_x``/``rx_y``/``rx_z`` columns when it has them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from twin.baselines import BASELINES
from twin.baselines.core import Baseline, read_columns, receiver_positions
from twin.errors import TwinInputError


@dataclass(frozen=True)
class WknnConfig:
    """``[baselines.wknn]``: the view and its feature column, k neighbours, complex handling, weights."""

    view: str = "cir_taps"
    feature: str = "taps"
    k: int = 5
    complex_as: Literal["abs", "reim"] = "abs"
    weighting: Literal["inverse_distance", "uniform"] = "inverse_distance"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.k <= 0:
            raise ValueError(f"k must be > 0, got {self.k}")
        if self.complex_as not in ("abs", "reim"):
            raise ValueError(f"complex_as must be 'abs' or 'reim', got {self.complex_as!r}")
        if self.weighting not in ("inverse_distance", "uniform"):
            raise ValueError(f"weighting must be 'inverse_distance' or 'uniform', got {self.weighting!r}")


def _flat(v: np.ndarray, complex_as: str) -> np.ndarray:
    v = np.asarray(v)
    if np.iscomplexobj(v):
        v = np.abs(v) if complex_as == "abs" else np.stack([v.real, v.imag], axis=-1)
    return v.reshape(len(v), -1).astype(np.float64)


def fingerprints(cols: dict, feature: str, cells: list[str] | None, complex_as: str = "abs"
                 ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(rx_ids (R,), fingerprints (R, F), the cell order). ``cells`` None: the cells of these rows (training)."""
    if feature not in cols:
        raise TwinInputError(f"the view has no column {feature!r}", field="feature",
                             fix=f"set [baselines.wknn] feature to one of: {', '.join(sorted(cols))}")
    x = _flat(cols[feature], complex_as)
    rx = np.asarray(cols["rx_id"], dtype=np.int64)
    tx = [str(t) for t in cols["tx_id"]] if "tx_id" in cols else [""] * len(rx)
    if cells is None:
        cells = sorted(set(tx))
    pos = {c: i for i, c in enumerate(cells)}
    rx_u = np.unique(rx)
    ri = {int(r): i for i, r in enumerate(rx_u)}
    F = x.shape[1]
    out = np.zeros((len(rx_u), len(cells) * F))
    for j in range(len(rx)):
        c = pos.get(tx[j])
        if c is not None:
            out[ri[int(rx[j])], c * F : (c + 1) * F] = x[j]
    return rx_u, out, cells


def labels(reader, cols: dict, rx_u: np.ndarray) -> np.ndarray:
    """(R, 3) receiver positions (m): the view's rx_x/rx_y/rx_z when present, else the receivers table."""
    if all(k in cols for k in ("rx_x", "rx_y", "rx_z")):
        rx = np.asarray(cols["rx_id"], dtype=np.int64)
        first = {int(r): i for i, r in reversed(list(enumerate(rx.tolist())))}
        return np.array([[cols[k][first[int(r)]] for k in ("rx_x", "rx_y", "rx_z")] for r in rx_u], dtype=np.float64)
    return receiver_positions(reader.build, rx_u)


def position_frame(rx_u: np.ndarray, pred: np.ndarray, truth: np.ndarray):
    """The prediction DataFrame of a position method: rx_id, pred_x/y(/z), true_x/y/z, error = horizontal
    distance (m) when pred is 2-D, 3-D distance otherwise."""
    import pandas as pd

    pred = np.asarray(pred, dtype=np.float64).reshape(len(rx_u), -1)
    dim = pred.shape[1]
    df = pd.DataFrame({"rx_id": np.asarray(rx_u, dtype=np.int64)})
    for i, a in enumerate("xyz"[:dim]):
        df[f"pred_{a}"] = pred[:, i]
    for i, a in enumerate("xyz"):
        df[f"true_{a}"] = truth[:, i]
    df["error"] = np.linalg.norm(pred - truth[:, :dim], axis=1)
    return df


@BASELINES.register("wknn")
class Wknn(Baseline):
    """Weighted k-NN fingerprinting over a view's feature column (position, m)."""

    view = "cir_taps"
    task = "position"
    unit = "m"
    Config = WknnConfig

    def __init__(self, config=None, *, device: str = "cpu", seed: int = 0) -> None:
        super().__init__(config, device=device, seed=seed)
        self._cells: list[str] = []
        self._x = np.zeros((0, 0))
        self._y = np.zeros((0, 3))
        self._mu = np.zeros(0)
        self._sd = np.ones(0)

    def fit(self, train, val, *, run) -> None:
        cols = read_columns(train)
        rx_u, x, self._cells = fingerprints(cols, self.config.feature, None, self.config.complex_as)
        self._y = labels(train, cols, rx_u)
        self._mu = x.mean(axis=0)
        sd = x.std(axis=0)
        self._sd = np.where(sd > 0, sd, 1.0)
        self._x = (x - self._mu) / self._sd

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """(R, 3) positions for standardised-space queries x (R, F) (raw features, standardised here)."""
        q = (x - self._mu) / self._sd
        d = np.sqrt(np.maximum(np.sum(q * q, 1)[:, None] + np.sum(self._x**2, 1)[None, :] - 2 * q @ self._x.T, 0))
        k = min(self.config.k, len(self._x))
        nn = np.argsort(d, axis=1, kind="stable")[:, :k]
        dn = np.take_along_axis(d, nn, axis=1)
        w = 1.0 / (dn + self.config.eps) if self.config.weighting == "inverse_distance" else np.ones_like(dn)
        return np.einsum("rk,rkc->rc", w, self._y[nn]) / w.sum(axis=1, keepdims=True)

    def predict(self, test):
        cols = read_columns(test)
        rx_u, x, _ = fingerprints(cols, self.config.feature, self._cells, self.config.complex_as)
        truth = labels(test, cols, rx_u)
        if len(rx_u) == 0:
            return position_frame(rx_u, np.zeros((0, 3)), truth.reshape(0, 3))
        return position_frame(rx_u, self.predict_features(x), truth)

    def state_dict(self) -> dict:
        return {"cells": self._cells, "x": self._x, "y": self._y, "mu": self._mu, "sd": self._sd}

    def load_state_dict(self, d: dict) -> None:
        self._cells, self._x, self._y, self._mu, self._sd = (list(d["cells"]), d["x"], d["y"], d["mu"], d["sd"])


__all__ = ["Wknn", "WknnConfig", "fingerprints", "labels", "position_frame"]
