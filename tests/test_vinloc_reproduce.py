"""twin reproduce vinloc: rows and acceptance note (fast); the whole pipeline at a tiny size (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_metric_rows_and_acceptance_note():
    from twin.baselines.vinloc import PAPER_TABLE2
    from twin.baselines.vinloc_reproduce import _metric_rows, acceptance_note

    err = np.array([1.0, 2.0, 3.0, 4.0])
    rows = _metric_rows("s1 fixed", "vinloc", err, PAPER_TABLE2[("fixed", "vinloc")], "runs/x")
    got = {r.metric: (r.ours, r.paper) for r in rows}
    assert got["rmse"] == (pytest.approx(np.sqrt(7.5)), 0.99) and got["mae"] == (pytest.approx(2.5), 0.72)
    assert got["p90"][1] == 1.71 and got["p90"][0] == pytest.approx(np.percentile(err, 90))
    assert all(r.paper is None for r in _metric_rows("s1", "wknn", err, None, ""))
    ok = acceptance_note({("fixed", "vinloc"): 2.0, ("variable", "vinloc"): 2.5,
                          ("fixed", "fingerprint_resnet"): 1.0, ("variable", "fingerprint_resnet"): 9.0})
    assert "1.25 (<= 1.5)" in ok and "9.00 (degrades)" in ok
    bad = acceptance_note({("fixed", "vinloc"): 2.0, ("variable", "vinloc"): 4.0,
                           ("fixed", "fingerprint_resnet"): 1.0, ("variable", "fingerprint_resnet"): 0.9})
    assert "(> 1.5)" in bad and "does not degrade" in bad
    from twin.baselines.reproduce import REPRODUCTIONS

    assert "vinloc" in REPRODUCTIONS.names()


@pytest.mark.slow
def test_reproduce_vinloc_tiny(tmp_path, monkeypatch):
    """Both scenarios built with twin (Paris preset, offline), every method trained for a step or two (~5 min)."""
    import twin.baselines.vinloc_reproduce as vr

    monkeypatch.setitem(vr.SIZES, "tiny", vr.Sizes(s1_receivers=40, s2_receivers=12, epochs=2, s2_epochs=1,
                                                   unet_base=4, samples_per_src=5000, threads=1))
    rows = vr.reproduce_vinloc("tiny", tmp_path)
    methods = {(r.experiment, r.method) for r in rows}
    for exp in ("s1 fixed TRPs (12/12)", "s1 variable TRPs (10/12)"):
        for m in ("vinloc", "vinloc_nopos", "fingerprint_resnet", "wknn"):
            assert (exp, m) in methods
    assert ("scenario 2 (Table 4)", "vinloc") in methods
    for r in rows:
        if r.run:
            for f in ("config.toml", "metrics.json", "errors.parquet", "cdf.png"):
                assert (tmp_path / r.run / f).exists(), (r.run, f)
        assert r.ours is None or np.isfinite(r.ours)
    s = json.loads((tmp_path / "vinloc_summary.json").read_text())
    assert s["scenario1"]["trps"] == 12 and s["scenario2"]["trps"] == 64
    s1 = s["scenario1"]
    assert s1["max_trp_ue_distance_m"] <= s1["max_trp_region_distance_m"] < s1["window_m"]  # D = 256 covers it
    assert s["scenario2"]["window_m"] > s["scenario2"]["max_trp_ue_distance_m"]  # cover_scene
    towers = (tmp_path / "builds" / "s1_towers.csv").read_text().splitlines()
    assert len(towers) == 13 and ",NR,NR," in towers[1]
