"""ISLA ToF estimator (OMP + Newton, off-grid) and the pseudo-range (TDoA) fix with outlier rejection."""

from __future__ import annotations

import numpy as np
import pytest

from twin.baselines.tof import Capture, LocalizeConfig, TofConfig, estimate_tof, localize_pseudoranges
from twin.datasets.spike_train import passband_subcarriers

C = 299_792_458.0
N, DF = 4096, 100e6 / 4096


def _channel(idx, taus, amps, rng=None, snr_db=None):
    f = np.asarray(idx) * DF
    h = np.exp(-2j * np.pi * np.outer(f, taus)) @ amps
    if snr_db is not None:
        s = np.sqrt(np.mean(np.abs(h) ** 2) / 10 ** (snr_db / 10) / 2)
        h = h + s * (rng.standard_normal(len(h)) + 1j * rng.standard_normal(len(h)))
    return h


def test_off_grid_delays_recovered_from_the_full_band():
    rng = np.random.default_rng(0)
    taus = np.array([1.2345e-6, 1.301e-6, 1.87e-6])  # off any grid; 2nd path 20 m behind the first
    amps = np.array([1.0, 0.7 * np.exp(1j), 0.5j])
    idx = np.arange(-N // 2, N // 2)
    r = estimate_tof([Capture(_channel(idx, taus, amps, rng, 30.0), idx, DF)])
    assert abs(r.first_path_s - taus[0]) * C < 0.3
    for t in taus:
        assert np.min(np.abs(r.delays_s - t)) * C < 0.5


def test_spike_train_with_narrowband_resolves_what_narrowband_cannot():
    """Two paths 12 m apart: 6.25 MHz alone merges them (resolution 48 m); the spike-train samples span 100 MHz."""
    rng = np.random.default_rng(1)
    taus = np.array([0.8e-6, 0.8e-6 + 12 / C])
    amps = np.array([0.6, 1.0 * np.exp(2.0j)])  # the later path is the stronger
    spike = passband_subcarriers(N, 16)
    nb = np.arange(-128, 128)
    errs = {"spike": [], "nb": []}
    for _ in range(10):
        hs, hn = _channel(spike, taus, amps, rng, 15.0), _channel(nb, taus, amps, rng, 15.0)
        cs = Capture(np.concatenate([hs, hn]), np.concatenate([spike, nb]), DF)  # one coherent capture
        cn = Capture(hn, nb, DF)
        errs["spike"].append(abs(estimate_tof([cs]).first_path_s - taus[0]) * C)
        errs["nb"].append(abs(estimate_tof([cn]).first_path_s - taus[0]) * C)
    assert np.median(errs["spike"]) < 1.5
    assert np.median(errs["nb"]) > 3 * np.median(errs["spike"])


def test_weights_and_config_validation():
    idx = np.arange(-64, 64)
    h = _channel(idx, np.array([0.5e-6]), np.array([1.0]))
    r = estimate_tof([Capture(h, idx, DF, weight=np.linspace(0.1, 1, 128))], TofConfig(max_paths=2))
    assert abs(r.first_path_s - 0.5e-6) * C < 0.05
    assert np.isnan(estimate_tof([Capture(np.zeros(8), np.arange(8), DF)]).first_path_s)


def test_pseudorange_fix_is_exact_and_rejects_an_outlier():
    rng = np.random.default_rng(3)
    anchors = np.column_stack([rng.uniform(-300, 300, (8, 2)), rng.uniform(20, 40, 8)])
    p = np.array([35.0, -60.0, 1.5])
    d = np.linalg.norm(anchors - p, axis=1)
    bias = 123.4  # the unknown clock offset, metres
    fix = localize_pseudoranges(anchors, d + bias, 1.5)
    np.testing.assert_allclose(fix.xy, p[:2], atol=1e-3)
    assert fix.bias_m == pytest.approx(bias, abs=1e-3) and fix.used.all()
    noisy = d + bias + rng.normal(0, 1.0, 8)
    noisy[2] += 150.0  # a missed first path / NLOS anchor
    fix = localize_pseudoranges(anchors, noisy, 1.5)
    assert not fix.used[2] and fix.used.sum() == 7
    assert np.linalg.norm(fix.xy - p[:2]) < 5.0
    no_rej = localize_pseudoranges(anchors, noisy, 1.5, LocalizeConfig(reject_m=1e9, nlos_weight=1.0))
    assert np.linalg.norm(no_rej.xy - p[:2]) > np.linalg.norm(fix.xy - p[:2])
    with pytest.raises(ValueError, match="3 anchors"):
        localize_pseudoranges(anchors[:2], d[:2], 1.5)
