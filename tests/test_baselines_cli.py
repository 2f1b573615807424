"""twin train / eval / baselines on tiny Paris builds: every run-directory file, eval on a second build with
other receivers, exit 2 when the second build lacks the run's view variant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.baselines import rundir as rd
from twin.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()

SMALL = """
[trace]
max_depth = 2
samples_per_src = 10000
max_num_paths_per_src = 10000
diffraction = false

[views.folded_lte]
num_frames = 4
window_placement = "truth_jitter"
"""


def _build(base: Path, name: str, receivers: int) -> Path:
    cfg = base / "small.toml"
    cfg.write_text(SMALL)
    r = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(base / name), "--receivers",
                            str(receivers), "--config", str(cfg), "--views", "folded_lte"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    root = base / name / "paris"
    assert runner.invoke(app, ["split", str(root), "--by", "random", "--fractions", "0.6,0.2,0.2"]).exit_code == 0
    return root


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    base = tmp_path_factory.mktemp("bl")
    return _build(base, "a", 12), _build(base, "b", 8), base


@pytest.mark.parametrize("name,extra", [("matched_filter", []), ("rssi_trilateration", []),
                                        ("deepsync", ["--config", "DS"])])
def test_train_writes_a_run_directory_and_eval_runs_elsewhere(builds, name, extra):
    a, b, base = builds
    ds = base / "ds.toml"
    ds.write_text("[baselines.deepsync]\nchannels = [4, 4, 4]\nhidden = [8]\nheads = 2\nmax_steps = 6\nframes = 4\n")
    extra = [str(ds) if x == "DS" else x for x in extra]
    run = base / "runs" / name
    r = runner.invoke(app, ["train", name, "--data", str(a), "--out", str(run), *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for f in rd.RUN_FILES:
        assert (run / f).exists(), f
    m = json.loads((run / rd.METRICS).read_text())
    assert m["baseline"] == name and m["n"] > 0 and set(m["metrics"]) == {"median", "p90", "mean", "rmse", "mae"}
    r = runner.invoke(app, ["eval", str(run), "--data", str(b), "--split", "all", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["n"] > 0
    if name != "rssi_trilateration":  # reads the CIR, which every build has
        c = base / "c" / name
        shutil.copytree(b, c)
        variant = json.loads((run / rd.METRICS).read_text())["variant"]
        assert runner.invoke(app, ["view", "drop", str(c), "folded_lte", "--variant", variant]).exit_code == 0
        r = runner.invoke(app, ["eval", str(run), "--data", str(c)])
        assert r.exit_code == 2 and "folded_lte" in r.output and "Traceback" not in r.output


def test_baselines_lists_the_views():
    r = runner.invoke(app, ["baselines", "--json"])
    assert r.exit_code == 0
    names = {d["name"]: d["view"] for d in json.loads(r.output)}
    assert names["deepsync"] == "folded_lte" and names["wknn"] and names["rssi_trilateration"] == "cir"
