"""Noise and power units of the views: thermal noise k·T0·B·F, dBm -> W, and per-link random streams."""

from __future__ import annotations

import numpy as np

from twin.constants import BOLTZMANN, T0_K


def link_rng(seed: int, link_id: int, stream: int = 0) -> np.random.Generator:
    """A generator that depends only on (seed, link_id, stream): rows are reproducible in any batch order."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(link_id) & 0xFFFFFFFFFFFFFFFF, int(stream)])


def thermal_noise_w(bandwidth_hz: float, noise_figure_db: float) -> float:
    """Thermal noise power k·T0·B·F in watts (T0 = 290 K)."""
    return BOLTZMANN * T0_K * float(bandwidth_hz) * 10.0 ** (float(noise_figure_db) / 10.0)


def dbm_to_w(p_dbm):
    """dBm -> W."""
    return 10.0 ** ((np.asarray(p_dbm, dtype=np.float64) - 30.0) / 10.0)


__all__ = ["dbm_to_w", "link_rng", "thermal_noise_w"]
