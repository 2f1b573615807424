"""``twin reproduce isla``: ISLA's spectrum comparison (Fig. 10(a-c)) and anchor count (Fig. 10(d)) on the Paris twin.

Scene: the Paris preset (Place Charles-de-Gaulle, the Sionna RT ``etoile`` scene shipped with sionna-rt, offline).
Anchors: the 12 sites of twin's bundled ``paris_towers.csv`` plus 13 synthesised sites (3 sectors at 0/120/240°,
positions drawn uniformly in the scene's extent with seed 2026, EARFCN 1300, no height given: a mast on the roof
below or 25 m on the ground), written to ``OUT/towers_isla.csv``: 25 masts, the most ISLA uses (Fig. 10(d)).
Each receiver's anchors are its K strongest masts (K = 5 / 15 / 25; a receiver hears fewer than 25 masts in this
scene, see ``mean_anchors_used``). View: ``spike_train`` with its defaults (ISLA's numerology: 100 MHz of 4096
subcarriers at 24.4 kHz, P = 16, 256 recovered subcarriers, ideal filter, noise after the filter folded 16-fold).
Receivers: random street-level points; split by receiver, 20 % train (only RSSI fits its path-loss model) and
80 % test. Methods: isla, isla_spike_only, narrowband, full_band, music (ToF + TDoA), rssi_trilateration.

Scales: "small" 60 receivers, ``samples_per_src`` 10 000, max depth 3 (about 10 min on 2 CPU cores); "paper"
400 receivers, 100 000 samples per source (not run here: about 1 h of tracing on 2 cores).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from twin.baselines.isla import PAPER_ANCHORS_MEDIAN_M, PAPER_ANCHORS_P90_M, PAPER_MEDIAN_M
from twin.baselines.reproduce import REPRODUCTIONS, Row

SCALES = {
    "small": {"receivers": 60, "samples_per_src": 10_000, "max_depth": 3},
    "paper": {"receivers": 400, "samples_per_src": 100_000, "max_depth": 3},
}
SYNTH_SITES = 13
SYNTH_SEED = 2026
PARKING = 1  # index of ISLA's parking-lot testbed in PAPER_MEDIAN_M


def tower_csv(out: Path) -> Path:
    """The bundled Paris sites + synthesised ones up to 25 masts (CellMapper layout)."""
    from twin.ingest.cities import get_city

    paris = get_city("paris")
    src = paris.towers_path().read_text().splitlines()
    rows = list(csv.DictReader(src))
    w, s, e, n = paris.bbox
    rng = np.random.default_rng(SYNTH_SEED)
    cid = 990_000_000
    for i in range(SYNTH_SITES):
        lat, lon = rng.uniform(s + 0.0005, n - 0.0005), rng.uniform(w + 0.0007, e - 0.0007)
        for k, az in enumerate((0, 120, 240)):
            cid += 1
            rows.append(dict(latitude=f"{lat:.6f}", longitude=f"{lon:.6f}", altitude="0", MCC="208", MNC="01",
                             TAC="751", CID=str(cid), signal="-90", type="LTE", subtype="LTE", ARFCN="1300",
                             PCI=str((3 * i + k + 300) % 504), azimuth=str(az), height=""))
    path = out / "towers_isla.csv"
    with path.open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    return path


def _twin(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "twin", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"twin {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def build(out: Path, scale: str) -> Path:
    """Build the Paris twin with the spike_train view and split it (resumes an earlier build in ``out``)."""
    p = SCALES[scale]
    cfg = out / "isla_build.toml"
    cfg.write_text(f"""[ingest]
max_tower_outside_m = 150.0

[receivers]
mode = "random"
count = {p['receivers']}
seed = 5

[trace]
max_depth = {p['max_depth']}
samples_per_src = {p['samples_per_src']}
max_num_paths_per_src = {2 * p['samples_per_src']}

[views.spike_train]
""")
    root = out / "build" / "paris_isla"
    import twin

    have = (root / "twin.json").exists() and "spike_train" in twin.open(root).views()
    if not have:  # (re)build; a build resumes its finished trace tasks
        _twin("build", "--city", "paris", "--offline", "--towers", str(tower_csv(out)), "--config", str(cfg),
              "--out", str(out / "build"), "--name", "paris_isla", "--views", "spike_train", "--workers", "1")
    _twin("split", str(root), "--by", "random", "--fractions", "0.2,0.0,0.8", "--names", "train,val,test")
    return root


@REPRODUCTIONS.register("isla")
def reproduce_isla(scale: str, out: Path, *, device: str = "cpu") -> list[Row]:
    from twin.baselines.runner import train

    out = Path(out)
    root = build(out, scale)
    rows: list[Row] = []
    med = {}
    for name in ("full_band", "isla", "isla_spike_only", "narrowband", "music", "rssi_trilateration"):
        res = train(name, root, out / "runs" / f"{name}_k5", overrides={"anchors": 5} if name != "rssi_trilateration"
                    else None, show_progress=False, device=device)
        m = res.metrics["metrics"]
        med[name] = m["median"]
        paper = PAPER_MEDIAN_M.get(name, (None, None, None))[PARKING]
        if name == "rssi_trilateration":
            paper = 120.7  # ISLA §10.2 A, parking lot
        note = f"n={res.metrics['n']} receivers"
        rows.append(Row("localization, 5 BS (Fig. 8/10 parking lot)", name, "median", "m", m["median"], paper,
                        f"runs/{name}_k5", note))
        rel = res.metrics.get("rel_tof_error_m")
        if isinstance(rel, dict) and rel:
            rows.append(Row("relative ToF, 5 BS", name, "median", "m", rel.get("median"), None, f"runs/{name}_k5",
                            f"{rel.get('n')} anchor pairs"))
    if med.get("isla") and med.get("full_band"):
        rows.append(Row("spectrum ratio", "isla / full_band", "median ratio", "x", med["isla"] / med["full_band"],
                        PAPER_MEDIAN_M["isla"][PARKING] / PAPER_MEDIAN_M["full_band"][PARKING]))
    if med.get("isla") and med.get("narrowband"):
        rows.append(Row("spectrum ratio", "narrowband / isla", "median ratio", "x", med["narrowband"] / med["isla"],
                        PAPER_MEDIAN_M["narrowband"][PARKING] / PAPER_MEDIAN_M["isla"][PARKING]))
    for k in (5, 15, 25):
        run = f"runs/isla_k{k}"
        res = train("isla", root, out / run, overrides={"anchors": k}, show_progress=False, device=device)
        m = res.metrics["metrics"]
        used = res.metrics.get("mean_anchors_used")
        note = f"mean anchors heard {np.mean(res.predictions['anchors']):.1f}, used {used:.1f}" if used else ""
        rows.append(Row(f"anchors (Fig. 10(d)), K={k}", "isla", "median", "m", m["median"],
                        PAPER_ANCHORS_MEDIAN_M[k], run, note))
        rows.append(Row(f"anchors (Fig. 10(d)), K={k}", "isla", "p90", "m", m["p90"], PAPER_ANCHORS_P90_M.get(k), run))
    return rows
