"""LOA-Net modules and baselines: shapes, the mask/Doppler preprocessing, a short fit that learns, state round trip."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from twin.baselines.loanet_models import CNN2D, CNN3D, FusionTDC, MaskDETRReg, count_parameters, preprocess


def test_preprocess_eqs_28_to_30():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (2, 2, 4, 6, 3)).astype(np.float32)
    a, m, d = preprocess(p, eta=0.5)
    assert a.shape == (2, 8, 6) and m.shape == (2, 8, 6) and d.shape == (2, 6, 3)
    ref = p.sum(-1).reshape(2, 8, 6)
    np.testing.assert_allclose(a.numpy(), ref / ref.max(axis=(1, 2), keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(m.numpy(), (a.numpy() > 0.5).astype(np.float32))
    dref = p.sum(axis=(1, 2))
    np.testing.assert_allclose(d.numpy(), dref / dref.max(axis=(1, 2), keepdims=True), rtol=1e-6)
    a2, _, _ = preprocess(10 * np.log10(p), db=True, eta=0.5)  # dB storage gives the same image
    np.testing.assert_allclose(a2.numpy(), a.numpy(), rtol=1e-4)


@pytest.mark.slow
def test_paper_architectures_forward():
    torch.manual_seed(0)
    a, m = torch.rand(2, 128, 144), torch.rand(2, 128, 144)
    de = MaskDETRReg("de")
    ec = MaskDETRReg("ec")
    assert de(a, m).shape == (2, 3) and ec(a, m).shape == (2, 3)
    assert len(de.transformer.encoder.layers) == 4 and len(ec.transformer.encoder.layers) == 6
    assert len(de.transformer.decoder.layers) == 2 and de.query.shape == (4, 256)
    assert de.transformer.encoder.layers[0].self_attn.num_heads == 4
    tdc = FusionTDC(9)
    assert tdc(torch.rand(2, 144, 9), torch.rand(2, 3)).shape == (2, 16)
    assert tdc.transformer.encoder.layers[0].self_attn.num_heads == 8
    assert CNN2D()(a).shape == (2, 3) and CNN3D()(torch.rand(2, 128, 144, 9)).shape == (2, 3)
    # DE/EC stay lightweight (LOA-Net Table VIII: 3.4 M / 4.3 M parameters)
    assert 1e6 < count_parameters(de) < 1e7 and count_parameters(ec) > count_parameters(de) * 0.8


class _Reader:
    """A Reader stand-in over a view table (what read_columns needs)."""

    name = "tb_fingerprint"
    build = None

    def __init__(self, table):
        self.table = table
        self.schema = table.schema

    def to_table(self):
        return self.table

    def __len__(self):
        return self.table.num_rows


def _toy_table(n=48, seed=0):
    """Fingerprints whose peak delay encodes x and whose Doppler asymmetry encodes the direction class."""
    from twin.datasets.tb_fingerprint import TBFingerprintConfig, TBFingerprintView

    rng = np.random.default_rng(seed)
    cfg = TBFingerprintConfig(num_rows=2, num_cols=4, num_subcarriers=64, cp_length=16, num_slots=2,
                              symbols_per_slot=7, doppler_bins=5)
    schema = TBFingerprintView().schema(cfg)
    x = rng.uniform(0, 10, n)
    cls = rng.integers(0, 16, n)
    tb = np.full((n, 2, 4, 16, 5), 1e-3, np.float32)
    for i in range(n):
        tb[i, :, :, int(x[i] * 1.5), 2] = 1.0
        tb[i, :, :, 2, (cls[i] % 4) + (cls[i] % 4 > 1)] += 0.5
    base = dict(link_id=np.arange(n, dtype=np.uint64), rx_id=np.arange(n), tx_id=["c"] * n, x=x, y=0.5 * x,
                z=np.full(n, 1.5), direction_class=cls.astype(np.int16), orientation_index=cls.astype(np.int16))
    arrays = []
    from twin.schema import tensor_array

    for f in schema:
        if f.name == "tb_power":
            arrays.append(tensor_array(tb, f))
        elif f.name in base:
            arrays.append(pa.array(base[f.name], type=f.type))
        else:
            arrays.append(pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["de_maskdetr", "cnn2d"])
def test_short_fit_learns_position(tmp_path, name):
    from twin.baselines import BASELINES
    from twin.baselines.core import RunContext

    cls = BASELINES.get(name)
    cfg = cls.Config(epochs=12, batch_size=8, lr=1e-3, hidden=32, heads=4, enc_layers=1, dec_layers=1)
    model = cls(cfg, seed=0)
    train = _Reader(_toy_table(48, 0))
    test = _Reader(_toy_table(16, 1))
    run = RunContext(tmp_path, show_progress=False, checkpoint_every=0)
    model.fit(train, None, run=run)
    run.close()
    df = model.predict(test)
    assert len(df) == 16 and {"pred_x", "true_x", "error"} <= set(df.columns)
    spread = np.std(np.column_stack([df.true_x, df.true_y]), axis=0)
    assert df.error.mean() < 0.8 * math.hypot(*spread)  # better than predicting the mean
    again = cls(cfg, seed=0)
    again.load_state_dict(model.state_dict())
    np.testing.assert_allclose(again.predict(test).pred_x, df.pred_x, rtol=1e-5)


def _skirt_table(n, seed):
    """Doppler information with the real view's difficulty (LOA-Net §V-C at 5 km/h): every row has the same strong
    0 Hz line on taps 0-3 and -20 dB skirts in the other bins; the direction class c (16 of them, balanced) only
    raises one skirt bin, (tap c // 4, bin [0, 1, 3, 4][c % 4]), by 1.76 dB, under ±10 % per-entry jitter."""
    from twin.datasets.tb_fingerprint import TBFingerprintConfig, TBFingerprintView
    from twin.schema import tensor_array

    rng = np.random.default_rng(seed)
    cfg = TBFingerprintConfig(num_rows=1, num_cols=1, num_subcarriers=64, cp_length=8, num_slots=1,
                              symbols_per_slot=5, doppler_bins=5)
    schema = TBFingerprintView().schema(cfg)
    cls = np.arange(n) % 16
    tb = np.full((n, 1, 1, 8, 5), 1e-6, np.float32)
    tb[:, :, :, :4, 2] = 1.0
    tb[:, :, :, :4, [0, 1, 3, 4]] = 1e-2
    tb *= rng.uniform(0.9, 1.1, tb.shape).astype(np.float32)
    for i, c in enumerate(cls):
        tb[i, :, :, c // 4, [0, 1, 3, 4][c % 4]] *= 1.5
    base = dict(link_id=np.arange(n, dtype=np.uint64), rx_id=np.arange(n), tx_id=["c"] * n, x=np.zeros(n),
                y=np.zeros(n), z=np.full(n, 1.5), direction_class=cls.astype(np.int16),
                orientation_index=cls.astype(np.int16))
    arrays = [tensor_array(tb, f) if f.name == "tb_power" else
              pa.array(base[f.name], type=f.type) if f.name in base else pa.nulls(n, type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def test_fusion_tdc_learns_small_doppler_skirts_only_when_standardised(tmp_path):
    """The direction lives in skirts 20 dB under the 0 Hz line. With D standardised per (tap, bin) on the training
    rows (the default) a small Fusion-TDC separates the 16 classes; without it the token embedding sees rows that
    differ by ~0.1 in log10 and training stays at ln 16 (chance, what the reproduction measured before the fix)."""
    from twin.baselines import BASELINES
    from twin.baselines.core import RunContext

    cls = BASELINES.get("fusion_tdc")
    acc = {}
    for std in (True, False):
        cfg = cls.Config(epochs=30, lr=1e-3, hidden=32, heads=4, enc_layers=1, dec_layers=1, queries=1, ff=32,
                         doppler_standardise=std)
        model = cls(cfg, seed=0)
        run = RunContext(tmp_path / str(std), show_progress=False, checkpoint_every=0)
        model.fit(_Reader(_skirt_table(256, 0)), None, run=run)
        run.close()
        df = model.predict(_Reader(_skirt_table(64, 1)))
        assert set(df.columns) >= {"pred_class", "true_class", "error"}
        acc[std] = model.extra_metrics(df)["accuracy_pct"]
        if std:  # the training statistics travel with the weights
            again = cls(cfg, seed=0)
            again.load_state_dict(model.state_dict())
            np.testing.assert_array_equal(again.predict(_Reader(_skirt_table(64, 1))).pred_class, df.pred_class)
    assert acc[True] >= 75.0, acc
    assert acc[False] <= 20.0, acc


def test_fusion_tdc_standardises_with_the_training_rows_statistics():
    """doppler_standardise: fit() sets per-(tap, bin) mean/std from the training rows; later rows (validation,
    test) are standardised with those, not with their own."""
    from twin.baselines import BASELINES

    rng = np.random.default_rng(0)
    train = rng.uniform(0, 1, (32, 1, 1, 6, 5)).astype(np.float32) ** 4
    test = rng.uniform(0, 1, (8, 1, 1, 6, 5)).astype(np.float32) ** 2
    cls = BASELINES.get("fusion_tdc")
    m = cls(cls.Config(), seed=0)
    with pytest.raises(ValueError, match="doppler_standardise"):  # never the test rows' own statistics
        m._inputs(test, False)
    (d_tr,) = m._inputs(train, False, fit=True)
    np.testing.assert_allclose(d_tr.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(d_tr.std(0).numpy(), 1.0, rtol=1e-4)
    (d_te,) = m._inputs(test, False)
    raw = cls(cls.Config(doppler_standardise=False), seed=0)
    (r_tr,), (r_te,) = raw._inputs(train, False), raw._inputs(test, False)
    expect = (r_te - r_tr.mean(0)) / r_tr.std(0)
    np.testing.assert_allclose(d_te.numpy(), expect.numpy(), rtol=1e-4, atol=1e-4)


def test_fit_time_budget_stops_at_the_first_epoch_end(tmp_path):
    """max_fit_s: training stops after the first epoch that ends past the budget (one validation entry of 50)."""
    from twin.baselines import BASELINES
    from twin.baselines.core import RunContext

    cls = BASELINES.get("fusion_tdc")
    cfg = cls.Config(epochs=50, lr=1e-3, hidden=8, heads=2, enc_layers=1, dec_layers=1, queries=1, ff=8,
                     max_fit_s=1e-9)
    model = cls(cfg, seed=0)
    run = RunContext(tmp_path, show_progress=False, checkpoint_every=0)
    model.fit(_Reader(_toy_table(8, 0)), _Reader(_toy_table(4, 1)), run=run)
    run.close()
    rows = [json.loads(ln) for ln in (tmp_path / "loss.jsonl").read_text().splitlines() if ln.strip()]
    assert sum(r.get("split") == "val" for r in rows) == 1
    with pytest.raises(ValueError, match="max_fit_s"):
        cls.Config(max_fit_s=-1.0)
    with pytest.raises(ValueError, match="doppler_scale"):
        cls.Config(doppler_scale="log")


def test_fusion_tdc_reads_doppler_in_db():
    """doppler_scale = "db": D of eq. 30 as 10·log10 (in units of 10 dB), floored at -60 dB; "linear": D itself."""
    from twin.baselines import BASELINES
    from twin.baselines.loanet_models import preprocess

    tb = np.random.default_rng(0).uniform(0, 1, (4, 2, 4, 16, 5)).astype(np.float32) ** 8
    cls = BASELINES.get("fusion_tdc")
    (d_db,) = cls(cls.Config(doppler_standardise=False), seed=0)._inputs(tb, False)
    (d_lin,) = cls(cls.Config(doppler_scale="linear", doppler_standardise=False), seed=0)._inputs(tb, False)
    _, _, d = preprocess(tb)
    np.testing.assert_allclose(d_lin.numpy(), d.numpy())
    np.testing.assert_allclose(d_db.numpy(), np.log10(np.maximum(d.numpy(), 1e-6)), rtol=1e-5, atol=1e-6)
    assert float(d_db.max()) == 0.0 and float(d_db.min()) >= -6.0


def test_loanet_receivers_lie_in_front_of_the_array():
    """The reproduction's UEs (small scale): all north of the north-facing BS array, 3 floors, the 40 m width."""
    from twin.reproductions.loanet import SIZES, receivers

    rx = receivers((100.0, 200.0), SIZES["small"]).to_pandas()
    dy = rx["y"].to_numpy() - 200.0
    assert dy.min() >= 1.0 and dy.max() <= 20.0 + 1e-9
    assert abs(rx["x"].min() - 80.0) < 1.0 and abs(rx["x"].max() - 120.0) < 1.0
    assert sorted(set(rx["z"])) == [1.5, 4.5, 7.5] and set(rx["kind"]) == {"grid", "random"}
    both = receivers((100.0, 200.0), dataclasses.replace(SIZES["small"], half_space="both")).to_pandas()
    assert (both["y"].to_numpy() < 200.0).any()
