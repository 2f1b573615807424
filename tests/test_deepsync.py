"""DeepSync on synthetic folded-LTE rows (no build): shapes of every fusion, a few training steps make the loss
fall and beat the mean predictor, checkpoint + resume, TDoA from exact offsets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.baselines.core import RunContext, resolve_device, seed_everything
from twin.baselines.deepsync import DeepSync, DeepSyncConfig, _net
from twin.datasets import folded_lte as fl
from twin.datasets.registry import ViewInputs, get_view
from twin.datasets.synthetic import make_cir_table, make_towers_table


class _Reader:
    """The part of a twin Reader the baselines use: to_table(), name, build."""

    name = "folded_lte"
    build = None

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def to_table(self) -> pa.Table:
        return self.table

    def __len__(self) -> int:
        return self.table.num_rows


@pytest.fixture(scope="module")
def rows() -> pa.Table:
    cells = [dict(cell_id=f"c{j}", pci=10 + 7 * j, bandwidth_hz=1.4e6, frequency_hz=1.8e9 + 0.1e9 * j) for j in range(4)]
    links = []
    rng = np.random.default_rng(0)
    for r in range(10):
        for j in range(4):
            d = rng.uniform(0.2e-6, 3e-6)
            links.append(dict(link_id=100 * r + j, tx_id=f"c{j}", rx_id=r, tau_s=[d, d + 4e-7], a=[3e-5, 1e-5j],
                              los=True, los_distance_m=d * 299_792_458.0))
    vin = ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                     receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=1, manifest={})
    cfg = fl.FoldedLteConfig(num_frames=4, window_placement="truth_jitter", jitter_max_samples=6)
    return get_view("folded_lte")(vin, cfg)


@pytest.mark.parametrize("fusion", ["cross_attention", "concat", "add", "correlation"])
def test_every_fusion_maps_windows_to_one_offset(fusion):
    import torch

    net = _net(DeepSyncConfig(fusion=fusion, channels=(4, 8, 8), hidden=(8,), heads=2), 286, 276)
    y = net(torch.randn(3, 2, 286), torch.randn(3, 276))
    assert y.shape == (3,) and torch.all(torch.isfinite(y))


@pytest.mark.slow
def test_training_lowers_the_loss_and_beats_the_mean(rows, tmp_path):
    seed_everything(0)
    cfg = DeepSyncConfig(channels=(8, 16, 16), hidden=(32,), heads=2, lr=3e-3, batch_size=8, epochs=40, dropout=0.0)
    m = DeepSync(cfg, seed=0)
    run = RunContext(tmp_path, checkpoint_every=0, show_progress=False)
    m.fit(_Reader(rows), None, run=run)
    tr = [r["loss"] for r in run.losses if r["split"] == "train"]
    assert np.mean(tr[-5:]) < 0.5 * np.mean(tr[:5])
    df = m.predict(_Reader(rows))
    truth = df["true_offset_samples"].to_numpy()
    assert np.median(df["error"]) < np.median(np.abs(truth - truth.mean()))
    # the state round-trips
    m2 = DeepSync(cfg)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_allclose(m2.predict(_Reader(rows))["pred_offset_samples"], df["pred_offset_samples"], atol=1e-5)


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(rows, tmp_path):
    cfg = DeepSyncConfig(channels=(4, 4, 4), hidden=(8,), heads=2, batch_size=8, max_steps=10, dropout=0.0)
    seed_everything(1)
    full = DeepSync(cfg, seed=1)
    full.fit(_Reader(rows), None, run=RunContext(tmp_path / "a", checkpoint_every=0, show_progress=False))
    seed_everything(1)
    half = DeepSync(DeepSyncConfig(**{**cfg.__dict__, "max_steps": 5}), seed=1)
    half.fit(_Reader(rows), None, run=RunContext(tmp_path / "b", checkpoint_every=5, show_progress=False))
    seed_everything(1)
    rest = DeepSync(cfg, seed=1)
    ctx = RunContext(tmp_path / "b", checkpoint_every=5, resume=True, show_progress=False)
    rest.fit(_Reader(rows), None, run=ctx)
    assert [r["step"] for r in ctx.losses if r["split"] == "train"] == list(range(1, 11))


def test_cuts_of_wide_windows_move_the_label_with_the_window():
    from twin.baselines.matched_filter import crop_windows, test_crops
    from twin.datasets.access import table_columns

    cells = [dict(cell_id="c0", pci=10, bandwidth_hz=1.4e6, frequency_hz=1.8e9)]
    links = [dict(link_id=r, tx_id="c0", rx_id=r, tau_s=[1e-6 * r], a=[3e-5], los=True, los_distance_m=300.0 * r)
             for r in range(1, 6)]
    vin = ViewInputs(cir=make_cir_table(links), towers=make_towers_table(cells),
                     receivers=pa.table({"rx_id": pa.array([], pa.int64())}), scene_path="", seed=1, manifest={})
    cfg = fl.FoldedLteConfig(num_frames=2, window_placement="truth_jitter", jitter_max_samples=0, window_margin=20,
                             template_len=276)
    cols = table_columns(get_view("folded_lte")(vin, cfg))
    cut = crop_windows(cols, 5, 10, np.random.default_rng(0))
    assert cut["windows"].shape == (5, 2, 286)
    for i in range(5):
        c = int(cut["window_start"][i] - cols["window_start"][i])
        np.testing.assert_array_equal(cut["windows"][i], cols["windows"][i][:, c : c + 286])
        assert cut["true_offset_samples"][i] == pytest.approx(cols["true_offset_samples"][i] - c)
        assert abs(cut["coarse_error_samples"][i]) <= 10
        # the label is still the true start inside the cut window
        assert cut["window_start"][i] + cut["true_offset_samples"][i] == pytest.approx(cols["true_start_samples"][i])
    a, b = test_crops(cols, 5, 10), test_crops(cols, 5, 10)
    np.testing.assert_array_equal(a["window_start"], b["window_start"])
    with pytest.raises(ValueError, match="wider window_margin"):
        crop_windows(cols, 5, 40, np.random.default_rng(0))


def test_early_stopping_keeps_the_best_validation_epoch(rows, tmp_path):
    """lr so large that the validation loss cannot keep falling: training stops `patience` epochs after the best
    one, records a per-epoch history and keeps the best state."""
    cfg = DeepSyncConfig(channels=(4, 4, 4), hidden=(8,), heads=2, batch_size=32, epochs=8, patience=1, lr=0.5, frames=2,
                         dropout=0.0)
    seed_everything(0)
    m = DeepSync(cfg, device=resolve_device("cpu"), seed=0)  # one intra-op thread
    m.fit(_Reader(rows), _Reader(rows), run=RunContext(tmp_path, checkpoint_every=0, show_progress=False))
    h = m.history
    assert 2 <= len(h) < 8 and all("val_loss" in e and "val_median" in e for e in h)
    # stopped right after the first epoch that did not improve on the best before it
    assert h[-1]["val_loss"] >= min(e["val_loss"] for e in h[:-1])
    extra = m.extra_metrics(m.predict(_Reader(rows)))
    assert extra["best_epoch"] == min(h, key=lambda e: e["val_loss"])["epoch"]
    with pytest.raises(ValueError, match="patience"):
        DeepSyncConfig(patience=-1)


def test_tdoa_from_exact_offsets_finds_each_capture_and_bad_ones_stay_in_the_served_area():
    import types

    import pandas as pd

    from twin.baselines.deepsync import FS_HZ, tdoa_localize
    from twin.constants import SPEED_OF_LIGHT

    sites = np.array([[0.0, 0.0, 30.0], [400.0, 0.0, 25.0], [0.0, 300.0, 20.0], [350.0, 320.0, 28.0]])
    towers = pd.DataFrame({"cell_id": [f"c{i}" for i in range(4)], "x": sites[:, 0], "y": sites[:, 1],
                           "z": sites[:, 2]})
    rx = np.array([[120.0, 80.0, 1.5], [260.0, 210.0, 1.5]])
    build = types.SimpleNamespace(towers=towers, receivers=pd.DataFrame({"rx_id": [5, 9], "x": rx[:, 0],
                                                                         "y": rx[:, 1], "z": rx[:, 2]}))
    rows = []
    for r, p in zip((5, 9), rx, strict=True):
        for cap in (0, 1):
            for i, s in enumerate(sites):
                arr = 1000.0 + np.linalg.norm(p - s) / SPEED_OF_LIGHT * FS_HZ  # frame samples at 1.92 MS/s
                start = 990 + 3 * i + cap
                bad = r == 9 and cap == 1
                rows.append(dict(rx_id=r, tx_id=f"c{i}", capture=cap, window_start=start,
                                 pred_offset_samples=(arr - start) + (40.0 * (-1) ** i if bad else 0.0)))
    loc = tdoa_localize(pd.DataFrame(rows), build, rx_height_m=1.5)
    assert list(zip(loc["rx_id"], loc["capture"], strict=True)) == [(5, 0), (5, 1), (9, 0), (9, 1)]
    np.testing.assert_allclose(loc["error"].to_numpy()[:3], 0.0, atol=1e-3)
    # offsets 40 samples (6 km) off: the fix is clipped to the sites' box grown by 200 m
    bad = loc.iloc[3]
    assert -200 <= bad["pred_x"] <= 600 and -200 <= bad["pred_y"] <= 520
