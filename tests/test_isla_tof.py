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


class _Rows:
    """A Reader stand-in over a view table: ``schema``, ``len`` and samples with complex arrays."""

    def __init__(self, table):
        from twin.schema import tensor_to_numpy

        self.schema = table.schema
        cols = {}
        for name in table.column_names:
            f = table.schema.field(name)
            if f.metadata and b"shape" in f.metadata and name in ("h_recovered", "h_narrowband", "h_full", "capture"):
                v = tensor_to_numpy(table.column(name), f)
                cols[name] = v[..., 0] + 1j * v[..., 1]
            else:
                cols[name] = table.column(name).to_pylist()
        self.rows = [{k: (np.asarray(v[i]) if isinstance(v[i], list) and k != "anchor_tx_ids" else v[i])
                      for k, v in cols.items()} for i in range(table.num_rows)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def _geometric_view(n_rx=3, n_cells=6, seed=0):
    import pyarrow as pa

    from twin.datasets.ofdm import make_cir_table, make_towers_table
    from twin.datasets.registry import ViewInputs, get_view
    from twin.datasets.spike_train import SpikeTrainConfig

    rng = np.random.default_rng(seed)
    cells = np.column_stack([rng.uniform(-300, 300, (n_cells, 2)), rng.uniform(20, 35, n_cells)])
    links, lid = [], 0
    for r in range(n_rx):
        p = np.array([*rng.uniform(-100, 100, 2), 1.5])
        for k in range(n_cells):
            d = float(np.linalg.norm(cells[k] - p))
            tau = np.array([d, d + 15.0, d + 40.0]) / C
            a = np.array([1.0, 0.5 * np.exp(1j), 0.3j]) * 1e-5 * (100 / d)
            links.append(dict(link_id=lid, tx_id=f"c{k}", rx_id=r, tau_s=tau, a=a, tx=tuple(cells[k]), rx=tuple(p),
                              los=True, los_distance_m=d))
            lid += 1
    towers = make_towers_table([dict(cell_id=f"c{k}", tx_power_dbm=40.0) for k in range(n_cells)])
    inputs = ViewInputs(cir=make_cir_table(links), towers=towers, receivers=pa.table({"rx_id": pa.array([], pa.int64())}),
                        scene_path="", seed=1, manifest={})
    return get_view("spike_train")(inputs, SpikeTrainConfig(include_full_band=True))


@pytest.mark.slow
def test_registered_isla_methods_locate_los_receivers():
    from twin.baselines import BASELINES

    rows = _Rows(_geometric_view(n_rx=3, n_cells=5))
    res = {}
    for name in ("isla", "narrowband", "full_band", "music"):
        m = BASELINES.get(name)(BASELINES.get(name).Config(anchors=5))
        df = m.predict(rows)
        assert list(df.rx_id) == [0, 1, 2] and {"pred_x", "pred_y", "true_x", "error"} <= set(df.columns)
        extra = m.extra_metrics(df)
        res[name] = (float(df.error.median()), extra["rel_tof_error_m"]["median"])
    # LOS links, a 15 m echo: the full band and ISLA resolve it; every method finds a fix
    assert res["full_band"][0] < 1.0 and res["isla"][0] < 2.0
    assert res["full_band"][1] < 0.5 and res["isla"][1] < 1.0
    assert all(np.isfinite(v[0]) for v in res.values())
