"""Baseline machinery without a build: localization on synthetic geometry with known answers, metrics, the run
directory files, the registries, checkpoints and resume, the matched filter's sub-sample peak."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from twin.baselines import BASELINES
from twin.baselines import rundir as rd
from twin.baselines.core import RunContext, error_metrics, seed_everything
from twin.baselines.localize import chan_init, tdoa_gauss_newton, trilaterate
from twin.baselines.matched_filter import correlate_windows, parabolic_peak
from twin.baselines.reproduce import REPRODUCTIONS, Row, write_results
from twin.registry import UnknownNameError

RNG = np.random.default_rng(7)


def _geometry(m=6, dim=3):
    anchors = RNG.uniform(-500, 500, (m, 3))
    anchors[:, 2] = RNG.uniform(10, 40, m)
    p = np.array([RNG.uniform(-200, 200), RNG.uniform(-200, 200), 1.5])
    return anchors, p


def _tdoa(anchors, p):
    d = np.linalg.norm(anchors - p, axis=1)
    return d[1:] - d[0]


@pytest.mark.parametrize("m", [4, 6, 10])
def test_chan_and_gauss_newton_recover_an_exact_position(m):
    for _ in range(5):
        a, p = _geometry(m)
        r = _tdoa(a, p)
        np.testing.assert_allclose(chan_init(a, r, dim=2, fixed=(1.5,)), p[:2], atol=1e-6)
        np.testing.assert_allclose(tdoa_gauss_newton(a, r, dim=2, fixed=(1.5,)), p[:2], atol=1e-6)
        # the full 3-D problem with enough anchors
        if m >= 5:
            np.testing.assert_allclose(chan_init(a, r, dim=3), p, atol=1e-4)


def test_chan_exactly_determined_case_uses_the_quadratic():
    """3 anchors in 2-D: two range differences for two unknowns (plus d0): Chan's quadratic in d0."""
    hits = 0
    for _ in range(20):
        a = RNG.uniform(-300, 300, (3, 2))
        p = RNG.uniform(-100, 100, 2)
        r = _tdoa(a, p)
        est = chan_init(a, r, dim=2)
        assert np.all(np.isfinite(est))
        # a hyperbola pair may cross twice: the estimate always fits the data exactly ...
        d = np.linalg.norm(a - est, axis=1)
        np.testing.assert_allclose(d[1:] - d[0], r, atol=1e-6)
        hits += np.allclose(est, p, atol=1e-6)
    assert hits >= 10  # ... and is the true point in most geometries


def test_gauss_newton_beats_the_unweighted_closed_form_under_noise():
    err_chan, err_gn = [], []
    for _ in range(200):
        a, p = _geometry(8)
        r = _tdoa(a, p) + RNG.normal(0, 5.0, 7)
        err_chan.append(np.linalg.norm(chan_init(a, r, dim=2, fixed=(1.5,)) - p[:2]))
        err_gn.append(np.linalg.norm(tdoa_gauss_newton(a, r, dim=2, fixed=(1.5,)) - p[:2]))
    assert np.median(err_gn) < np.median(err_chan)
    assert np.median(err_gn) < 15.0  # ~ sigma times the geometric dilution of a well spread layout


def test_tdoa_under_determined_is_nan():
    a = np.array([[0.0, 0.0], [100.0, 0.0]])
    assert np.all(np.isnan(tdoa_gauss_newton(a, np.array([10.0]), dim=2)))


def test_trilateration_exact_and_noisy():
    for _ in range(5):
        a, p = _geometry(5)
        d = np.linalg.norm(a - p, axis=1)
        np.testing.assert_allclose(trilaterate(a, d, dim=2, fixed=(1.5,)), p[:2], atol=1e-6)
    a = np.array([[0, 0, 20], [400, 0, 20], [0, 400, 20], [400, 400, 20.0]])
    p = np.array([120.0, 250.0, 1.5])
    d = np.linalg.norm(a - p, axis=1) * 1.02  # a 2 % range bias moves the fix by a few metres only
    assert np.linalg.norm(trilaterate(a, d, dim=2, fixed=(1.5,)) - p[:2]) < 15


def test_error_metrics():
    m = error_metrics(np.array([-3.0, 1.0, 2.0, np.nan, 4.0]))
    assert m["n"] == 4 and m["median"] == pytest.approx(2.5) and m["mae"] == pytest.approx(2.5)
    assert m["rmse"] == pytest.approx(np.sqrt((9 + 1 + 4 + 16) / 4))
    assert m["p90"] == pytest.approx(np.percentile([1, 2, 3, 4], 90))


def test_parabolic_peak_is_exact_on_a_parabola():
    x = np.arange(21.0)
    for x0 in (5.3, 10.0, 13.77):
        r = -(x - x0) ** 2
        assert parabolic_peak(r[None])[0] == pytest.approx(x0, abs=1e-9)


def test_matched_filter_finds_a_shifted_template():
    t = RNG.random(50)
    for k in (0, 3, 10):
        w = np.zeros((3, 60))
        w[:, k : k + 50] = t
        r = correlate_windows(w[None], t[None])
        assert int(np.argmax(r[0])) == k


def test_run_directory_files(tmp_path):
    errs = np.abs(RNG.normal(size=50))
    rec = rd.metrics_record(baseline="x", data="D", split="test", errors=errs, unit="m", paper={"median": 1.0},
                            extra_key=3)
    rd.write_metrics(tmp_path, rec)
    m = json.loads((tmp_path / rd.METRICS).read_text())
    assert set(m) >= {"baseline", "data", "split", "n", "metrics", "unit", "paper", "extra_key"}
    assert set(m["metrics"]) == {"median", "p90", "mean", "rmse", "mae"} and m["n"] == 50
    rd.write_config(tmp_path, {"baseline": "x", "seed": 1, "baselines": {"x": {"a": 1.5, "b": [1, 2], "c": "s"}}})
    doc = tomllib.loads((tmp_path / rd.CONFIG).read_text())
    assert doc["baselines"]["x"] == {"a": 1.5, "b": [1, 2], "c": "s"} and doc["seed"] == 1
    rd.plot_cdf(tmp_path / rd.CDF, {"a": errs, "b": 2 * errs}, unit="m", paper={"median": 1.0})
    rd.plot_loss(tmp_path / rd.LOSS, [{"step": i, "loss": 1 / (i + 1), "split": "train"} for i in range(5)])
    assert (tmp_path / rd.CDF).stat().st_size > 1000 and (tmp_path / rd.LOSS).stat().st_size > 1000


def test_run_context_checkpoint_and_resume(tmp_path):
    ctx = RunContext(tmp_path, checkpoint_every=2, show_progress=False)
    assert [s for s in range(7) if ctx.checkpoint_due(s)] == [2, 4, 6]
    for s in range(3):
        ctx.log_loss(s, 1.0 / (s + 1))
    ctx.save_checkpoint({"step": 3, "w": np.arange(3)})
    again = RunContext(tmp_path, resume=True, show_progress=False)
    assert again.load_checkpoint()["step"] == 3 and len(again.losses) == 3
    fresh = RunContext(tmp_path, show_progress=False)  # not resuming: no checkpoint, a new loss log
    assert fresh.load_checkpoint() is None
    assert fresh.losses == [] and not (tmp_path / RunContext.LOSS_LOG).exists()


def test_seed_everything_is_deterministic():
    import torch

    seed_everything(3)
    a = torch.randn(4), np.random.rand(2)
    seed_everything(3)
    b = torch.randn(4), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_registries():
    assert "matched_filter" in BASELINES
    cls = BASELINES.get("matched_filter")
    assert cls.NAME == "matched_filter" and cls.view == "folded_lte" and cls.unit == "samples"
    with pytest.raises(UnknownNameError, match="matched_filter"):
        BASELINES.get("nope")
    with pytest.raises(UnknownNameError, match="deepsync"):
        REPRODUCTIONS.get("no_such_paper")


def test_results_writer(tmp_path):
    rows = [Row("offset", "m", "median", "samples", 0.5, 0.239, "runs/m"), Row("loc", "t", "median", "m", None)]
    pj, pm = write_results(tmp_path, "p", "small", rows, seconds=3.0)
    doc = json.loads(pj.read_text())
    assert doc["paper"] == "p" and doc["scale"] == "small" and len(doc["rows"]) == 2
    assert set(doc["rows"][0]) >= {"experiment", "method", "metric", "unit", "ours", "paper", "run"}
    assert doc["rows"][1]["paper"] is None and "| offset | m | median | 0.5 | 0.239 |" in pm.read_text()
