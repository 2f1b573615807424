"""LOA-Net on a tiny build of its own scenario (one 25 m BS in the middle of a 40 m square of the Paris twin, UEs on
three floors): the protocol split, and `twin train` through the CLI in-process writing full run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from twin.baselines import rundir as rd
from twin.cli import app

pytestmark = pytest.mark.slow  # a tiny scenario build (trace + two views): ~25-80 s on 2 shared cores
runner = CliRunner()

TINY = """
[baselines.de_maskdetr]
epochs = 1
hidden = 16
heads = 2
enc_layers = 1
dec_layers = 1
width = 4
stages = 4
ff = 32
keep_taps = 48

[baselines.fusion_tdc]
epochs = 1
hidden = 16
heads = 2
enc_layers = 1
dec_layers = 1
ff = 32
keep_taps = 48
max_train_rows = 64

[baselines.wknn]
view = "tb_fingerprint"
feature = "tb_power"
k = 3
"""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from twin.reproductions.loanet import LoaSizes, build_scenario

    base = tmp_path_factory.mktemp("loanet")
    sz = LoaSizes(grid_m=20.0, test_per_floor=1, epochs=1, tdc_epochs=1, hidden=16, width=4, stages=4, ff=32,
                  keep_taps=48, tdc_train_rows=64, samples_per_src=5000, max_depth=2)
    summary = build_scenario(base / "builds", sz)
    cfg = base / "tiny.toml"
    cfg.write_text(TINY)
    return summary, cfg, base


def test_scenario_geometry_and_protocol_split(scenario):
    summary, _, _ = scenario
    root = Path(summary["root"])
    rx = pq.read_table(root / "receivers.parquet").to_pandas()
    sp = pq.read_table(root / "splits" / "split.parquet").to_pandas().merge(rx, on="rx_id")
    assert len(rx) == 18 + 3 and sorted(set(rx["z"])) == [1.5, 4.5, 7.5]  # 3 x 2 grid points per floor
    bs = np.asarray(summary["bs_local_m"])
    assert bs[2] == 25.0
    assert np.abs(rx[["x", "y"]].to_numpy() - bs[:2]).max() <= 20.0 + 1e-3  # (WGS84 round trip of the BS) the 40 m x 40 m square around the BS
    assert (rx["y"].to_numpy() - bs[1]).min() >= 1.0 - 1e-3  # every UE in front of the north-facing array
    assert set(sp.loc[sp["kind"] == "grid", "split"]) <= {"train", "validation"}
    assert set(sp.loc[sp["kind"] == "random", "split"]) == {"test"}
    assert (sp["split"] == "validation").sum() == 2  # 10 % of the 18 grid UEs
    assert summary["variants"]["position"] != summary["variants"]["fusion_tdc"]


@pytest.mark.parametrize("name,variant", [("de_maskdetr", "position"), ("fusion_tdc", "fusion_tdc"),
                                          ("wknn", "position")])
def test_twin_train_writes_a_full_run_directory(scenario, name, variant):
    summary, cfg, base = scenario
    run = base / "runs" / name
    r = runner.invoke(app, ["train", name, "--data", summary["root"], "--out", str(run), "--config", str(cfg),
                            "--variant", summary["variants"][variant]], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for f in rd.RUN_FILES:
        assert (run / f).exists(), f
    m = json.loads((run / rd.METRICS).read_text())
    assert m["baseline"] == name and m["split"] == "test"
    if name == "fusion_tdc":  # every orientation of the 3 test UEs
        assert m["n"] == 3 * 16 and 0.0 <= m["accuracy_pct"] <= 100.0
    else:
        assert m["n"] == 3 and np.isfinite(m["metrics"]["mean"])
