"""The VIn-Loc Sionna scenarios (seeds/003, Section 4 "Ray-traced channels using Sionna", Table 3) built with twin.

Scene: the Paris preset shipped with sionna-rt (``--city paris --offline``, the Place de l'Étoile). VIn-Loc
rendered "a city block in Paris", 280 m x 280 m; the bundled scene is about 750 m x 575 m.

* Scenario 1: "the TRPs were restricted to being deployed on buildings that line the main street, and the UE was
  placed at street level"; N_TRP = 12 "at random locations on top of the buildings, with their coordinates drawn
  from a uniform distribution". The main street here: the longest straight open corridor radiating from the
  Arc de Triomphe (found by casting rays over the building footprints; on this scene the Avenue des
  Champs-Élysées), its first ``AVENUE_LENGTH_M`` = 280 m (the paper's block size). Its half-width is the
  largest buffer of the axis free of buildings; UEs are uniform in it;
  the lining buildings are those within ``LINING_M`` of the street's edge; TRPs are uniform over their roofs.
* Scenario 2: "TRPs distributed uniformly above the city block and the UE located on the street", N_TRP = 64,
  an 8-element receive array (AoA-ToF input).
* Both: 40 GHz, B = 100 MHz (taps at 2B), single-antenna TRPs (isotropic), global synchronisation (absolute
  delays; the cir_taps view).

TRPs reach twin as a CellMapper-layout tower CSV (one NR cell per TRP at NR-ARFCN of 40 GHz, TS 38.104 §5.4.2.1)
written into the run directory; twin's ingest puts a TRP on a roof at roof height + mast.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

log = logging.getLogger("twin.baselines")

#: Arc de Triomphe (WGS84 lon, lat), the centre the avenues of the Étoile radiate from
ARC_DE_TRIOMPHE_LONLAT = (2.29504, 48.87378)
#: the plaza around the Arc (m): the avenue's axis starts this far from the centre
PLAZA_RADIUS_M = 120.0
#: scenario 1 uses this much of the avenue (m): VIn-Loc's Paris block is 280 m x 280 m; with rooftop TRPs along
#: it every TRP-UE distance stays inside the D = 256 taps (384 m) window (checked per build)
AVENUE_LENGTH_M = 280.0
#: buildings whose footprint lies within this distance of the street's edge line the street (m)
LINING_M = 40.0
#: VIn-Loc Table 3
CARRIER_HZ = 40e9
BANDWIDTH_HZ = 100e6
#: TRP transmit power (dBm): the paper gives none; perfect CIRs make it irrelevant to the noiseless view
TRP_POWER_DBM = 30.0


@dataclass(frozen=True)
class Street:
    """A street segment: axis end points (local m), half-width (m), the free corridor polygon."""

    start: tuple[float, float]
    end: tuple[float, float]
    half_width_m: float
    bearing_deg: float

    @property
    def axis(self):
        return shapely.LineString([self.start, self.end])

    def polygon(self, margin_m: float = 0.0):
        return self.axis.buffer(self.half_width_m + margin_m, cap_style="flat")


def main_avenue(footprints, bounds, centre_xy, *, start_m: float = PLAZA_RADIUS_M, probe_m: float = 10.0,
                step_deg: float = 1.0, step_m: float = 5.0, max_length_m: float | None = None) -> Street:
    """The longest straight corridor (at least ``2 probe_m`` wide) from ``centre_xy`` inside ``bounds``.

    For each bearing the axis grows from ``start_m`` until its ``probe_m`` buffer touches a building or leaves
    the area; the longest wins (then cut to ``max_length_m``); its half-width is the widest free buffer
    (bisection to 0.5 m).
    """
    union = shapely.union_all(list(footprints))
    box = shapely.box(*bounds)
    cx, cy = centre_xy
    best = (0.0, 0.0)
    for b in np.arange(0.0, 360.0, step_deg):
        dx, dy = np.sin(np.deg2rad(b)), np.cos(np.deg2rad(b))
        p0 = (cx + start_m * dx, cy + start_m * dy)
        length = 0.0
        L = start_m + step_m
        while True:
            p1 = (cx + L * dx, cy + L * dy)
            if not box.contains(shapely.Point(p1)):
                break
            if shapely.LineString([p0, p1]).buffer(probe_m).intersects(union):
                break
            length = L
            L += step_m
        if length - start_m > best[0]:
            best = (length - start_m, float(b))
    if best[0] <= 0:
        raise ValueError("no open corridor from the centre: is the centre inside a building?")
    b = best[1]
    if max_length_m is not None:
        best = (min(best[0], float(max_length_m)), b)
    dx, dy = np.sin(np.deg2rad(b)), np.cos(np.deg2rad(b))
    p0 = (cx + start_m * dx, cy + start_m * dy)
    p1 = (cx + (start_m + best[0]) * dx, cy + (start_m + best[0]) * dy)
    axis = shapely.LineString([p0, p1])
    lo, hi = probe_m, 200.0
    while hi - lo > 0.5:
        mid = 0.5 * (lo + hi)
        if axis.buffer(mid, cap_style="flat").intersects(union):
            hi = mid
        else:
            lo = mid
    return Street(start=p0, end=p1, half_width_m=lo, bearing_deg=b)


def uniform_in_polygons(polys, n: int, rng: np.random.Generator, *, min_sep_m: float = 6.0, max_tries: int = 100_000):
    """``n`` points uniform over the union of ``polys`` (rejection sampling), at least ``min_sep_m`` apart."""
    union = shapely.union_all(list(polys))
    x0, y0, x1, y1 = union.bounds
    pts: list[tuple[float, float]] = []
    tries = 0
    while len(pts) < n:
        tries += 1
        if tries > max_tries:
            raise ValueError(f"could not place {n} points {min_sep_m} m apart in the given polygons")
        p = (rng.uniform(x0, x1), rng.uniform(y0, y1))
        if not union.contains(shapely.Point(p)):
            continue
        if any(np.hypot(p[0] - q[0], p[1] - q[1]) < min_sep_m for q in pts):
            continue
        pts.append(p)
    return np.asarray(pts)


def lining_buildings(footprints, street: Street, lining_m: float = LINING_M) -> list:
    zone = street.polygon(lining_m)
    return [f for f in footprints if f.intersects(zone)]


def carrier_arfcn(carrier_hz: float) -> int:
    """The NR-ARFCN of a tabulated downlink band nearest ``carrier_hz`` (40 GHz: 2279165, the top of n260 at
    39.99996 GHz; n259, 39.5-43.5 GHz, is not in twin's TS 38.104 tables)."""
    from twin.ingest.arfcn import frequency_hz_to_nr_arfcn, nr_arfcn_to_carrier

    n0 = frequency_hz_to_nr_arfcn(carrier_hz)
    for k in range(0, 5000):
        for n in (n0 - k, n0 + k):
            try:
                nr_arfcn_to_carrier(n)
            except ValueError:
                continue
            return n
    raise ValueError(f"no tabulated NR band near {carrier_hz / 1e9:g} GHz")


def write_tower_csv(path: Path, xy_local: np.ndarray, frame, *, carrier_hz: float = CARRIER_HZ,
                    bandwidth_hz: float = BANDWIDTH_HZ, power_dbm: float = TRP_POWER_DBM) -> Path:
    """One NR cell per TRP in CellMapper layout (lat/lon from the build's local frame), omnidirectional TRPs."""
    arfcn = carrier_arfcn(carrier_hz)
    lon, lat = frame.to_wgs84(xy_local[:, 0], xy_local[:, 1])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["latitude", "longitude", "altitude", "MCC", "MNC", "TAC", "CID", "signal", "type", "subtype",
                    "ARFCN", "PCI", "power", "bandwidth_mhz"])
        for i, (la, lo) in enumerate(zip(np.atleast_1d(lat), np.atleast_1d(lon), strict=True)):
            w.writerow([f"{la:.8f}", f"{lo:.8f}", 0, 999, 99, 1, 1000 + i, "", "NR", "NR", arfcn, i % 1008,
                        power_dbm, bandwidth_hz / 1e6])
    return path


def street_receivers(footprints, bounds, region, n: int, *, seed: int, clearance_m: float = 1.0):
    """``n`` street-level receivers (twin's random placer: outside buildings, with clearance) inside ``region``."""
    import pyarrow as pa

    from twin.config import ReceiverConfig
    from twin.render.receivers import make_receivers

    rb = region.bounds
    box = (max(bounds[0], rb[0]), max(bounds[1], rb[1]), min(bounds[2], rb[2]), min(bounds[3], rb[3]))
    frac = max(region.area / max((box[2] - box[0]) * (box[3] - box[1]), 1.0), 0.05)
    count = int(np.ceil(n / frac * 1.6)) + 16
    for _ in range(6):
        t = make_receivers(footprints, box, ReceiverConfig(mode="random", count=count, seed=seed,
                                                            clearance_m=clearance_m)).to_pandas()
        inside = shapely.contains_xy(region, t["x"].to_numpy(), t["y"].to_numpy())
        t = t[inside]
        if len(t) >= n:
            break
        count *= 2
    t = t.iloc[:n].reset_index(drop=True)
    t["rx_id"] = np.arange(len(t), dtype=np.int64)
    return pa.Table.from_pandas(t, preserve_index=False)


def write_receivers(root: Path, table, config) -> None:
    """Install ``table`` as the build's receivers.parquet under the build config's receiver hash, so the trace
    stage uses it (twin's ensure_receivers reuses a receivers file whose hash matches its config)."""
    import pyarrow.parquet as pq

    from twin.config import config_hash, to_dict
    from twin.manifest import read_manifest, set_stage
    from twin.schema import RECEIVER_SCHEMA, file_metadata

    m = read_manifest(root)
    meta = file_metadata(config_hash=config_hash(config.receivers), scene_hash=m["scene"]["hash"],
                         view="receivers", config=to_dict(config.receivers))
    meta["twin.receivers_source"] = "twin.baselines.vinloc_scenarios (street region)"
    pq.write_table(table.select(RECEIVER_SCHEMA.names).cast(RECEIVER_SCHEMA).replace_schema_metadata(meta),
                   root / "receivers.parquet")
    set_stage(root, "receivers", status="done", count=table.num_rows, mode="region",
              config=to_dict(config.receivers))


def scene_geometry(root: Path):
    """(footprints (local m), heights, bounds, frame) of an ingested twin directory."""
    import pyarrow.parquet as pq

    from twin.frame import LocalFrame

    m = json.loads((root / "twin.json").read_text())
    t = pq.read_table(root / "buildings.parquet", columns=["geometry_local", "height_m"])
    fps = list(shapely.from_wkb(t.column("geometry_local").to_pylist()))
    return fps, t.column("height_m").to_numpy(), tuple(m["area"]["bounds_local"]), LocalFrame.from_dict(m["frame"])


@dataclass(frozen=True)
class ScenarioSpec:
    """What one VIn-Loc scenario build needs (sizes per ``--scale``)."""

    name: str  # "s1" | "s2"
    num_trps: int  # 12 | 64
    num_receivers: int
    rx_array: bool = False  # scenario 2: 8-element ULA, AoA-ToF
    samples_per_src: int = 20_000
    max_depth: int = 3
    seed: int = 0


def build_config(spec: ScenarioSpec, *, workers: int = 1):
    import dataclasses

    from twin.config import load_build_config

    views = {"cir_taps": {"num_taps": 256, "bandwidth_hz": BANDWIDTH_HZ, "max_cells": spec.num_trps,
                          "rx_array": spec.rx_array, "num_rx_antennas": 8, "aoa_bins": 8,
                          # scenario 2 spans the whole 750 m scene: D grows until the window covers it
                          "window": "cover_scene" if spec.name == "s2" else "fixed", "out_of_window": "drop"}}
    cfg = load_build_config(None, overrides={
        "ingest": {"site_merge_m": 0.0, "default_bandwidth_hz": BANDWIDTH_HZ},
        "receivers": {"mode": "random", "count": spec.num_receivers, "seed": spec.seed + 7},
        "trace": {"antenna_pattern": "iso", "samples_per_src": spec.samples_per_src, "max_depth": spec.max_depth,
                  "seed": spec.seed + 42, "cells_per_task": min(spec.num_trps, 16)},
        "dask": {"workers": workers},
    })
    return dataclasses.replace(cfg, views=views)


def build_scenario(out: Path, spec: ScenarioSpec, *, workers: int = 1) -> dict:
    """Ingest the Paris preset, place the TRPs and UEs of ``spec``, trace (40 GHz), build cir_taps, split.

    Returns a summary (street, TRP count, receivers, largest TRP-UE distance vs the tap window, paths)."""
    import pyarrow.parquet as pq

    from twin.datasets.splits import SplitConfig, write_split
    from twin.datasets.stage import run_views
    from twin.ingest.source import BuildingSource
    from twin.ingest.stage import run_ingest
    from twin.pipeline import trace_build

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = BuildingSource.from_options(city="paris", offline=True)
    cfg = build_config(spec, workers=workers)
    probe = out / "probe"
    if not (probe / "buildings.parquet").exists():
        run_ingest(src, out, name="probe", config=cfg, overwrite=True)
    fps, _, bounds, frame = scene_geometry(probe)
    rng = np.random.default_rng([spec.seed, spec.num_trps])
    cx, cy = frame.to_local(*ARC_DE_TRIOMPHE_LONLAT)
    street = main_avenue(fps, bounds, (float(cx), float(cy)), max_length_m=AVENUE_LENGTH_M)
    if spec.name == "s1":
        trp_xy = uniform_in_polygons(lining_buildings(fps, street), spec.num_trps, rng)
        region = street.polygon()
    else:
        inner = shapely.box(*bounds).buffer(-20.0)
        trp_xy = uniform_in_polygons([inner], spec.num_trps, rng, min_sep_m=20.0)
        region = inner
    towers_csv = write_tower_csv(out / f"{spec.name}_towers.csv", trp_xy, frame)
    root = out / spec.name
    run_ingest(src, out, towers=towers_csv, name=spec.name, config=cfg, overwrite=True)
    rx = street_receivers(fps, bounds, region, spec.num_receivers, seed=spec.seed + 7)
    write_receivers(root, rx, cfg)
    trace_build(root, cfg, resume=True)
    run_views(root, ["cir_taps"], cfg)
    write_split(root, SplitConfig(by="random", seed=spec.seed), force=True)
    towers = pq.read_table(root / "towers.parquet", columns=["x", "y", "z"]).to_pandas().to_numpy()
    rxy = np.c_[rx.column("x").to_numpy(), rx.column("y").to_numpy(), rx.column("z").to_numpy()]
    dmax = float(np.linalg.norm(rxy[:, None] - towers[None], axis=-1).max()) if len(rxy) else 0.0
    # bound over the whole UE region (the farthest point of a polygon from a point is a vertex; UEs at 1.5 m)
    verts = np.asarray(shapely.convex_hull(region).exterior.coords)
    dregion = float(np.sqrt(((verts[None, :, :2] - towers[:, None, :2]) ** 2).sum(-1)
                            + (towers[:, None, 2] - 1.5) ** 2).max())
    import twin

    v = twin.open(root).view("cir_taps", columns=["num_cells", "num_cells_reaching", "num_cells_out_of_window"])
    vt = v.to_pandas()
    meta = twin.open(root).view("cir_taps").schema.field("cir").metadata
    window_m = float(meta[b"window_m"])
    return {"scenario": spec.name, "street": {"start": street.start, "end": street.end,
                                               "half_width_m": street.half_width_m, "bearing_deg": street.bearing_deg},
            "trps": int(len(towers)), "receivers": int(rx.num_rows), "max_trp_ue_distance_m": dmax,
            "max_trp_region_distance_m": dregion,
            "window_m": window_m, "root": str(root),
            "cells_per_receiver": {k: float(vt[k].mean()) for k in ("num_cells", "num_cells_reaching",
                                                                     "num_cells_out_of_window")},
            "receivers_without_cells": int((vt["num_cells"] == 0).sum())}
