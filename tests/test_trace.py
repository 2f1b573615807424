"""twin.render.trace contracts: CIR_SCHEMA rows, link ids, LOS/delay invariant, batching, errors, cache, bare."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.config import TraceConfig
from twin.errors import TwinInputError
from twin.render import trace as trace_mod
from twin.render.scene_cache import load_scene
from twin.render.trace import link_id_for, plan_batches, trace_links
from twin.schema import CIR_SCHEMA, META_CONFIG_HASH, META_SCENE_HASH

C = 299_792_458.0
F_HZ = 3.5e9


def _write_ply(path: Path, verts, faces) -> None:
    verts = np.asarray(verts, dtype="<f4")
    hdr = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()
    with open(path, "wb") as fh:
        fh.write(hdr)
        fh.write(verts.tobytes())
        for f in faces:
            fh.write(np.uint8(3).tobytes())
            fh.write(np.asarray(f, dtype="<i4").tobytes())


def _box(x0, y0, x1, y1, h):
    """Closed axis-aligned box (a building), outward faces."""
    v = [[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0], [x0, y0, h], [x1, y0, h], [x1, y1, h], [x0, y1, h]]
    f = [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
         [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]
    return v, f


def city_xml(tmp: Path) -> str:
    """Ground plane + three concrete blocks (a small street canyon) + a thin glass wall at x = -90 m."""
    (tmp / "meshes").mkdir(parents=True, exist_ok=True)
    h = 1000.0
    _write_ply(tmp / "meshes" / "ground.ply", [[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], [[0, 1, 2], [0, 2, 3]])
    verts, faces = [], []
    for b in [(20, -30, 40, 30, 25), (-60, 20, -20, 50, 15), (-40, -80, 10, -50, 30)]:
        v, f = _box(*b)
        faces += [[i + len(verts) for i in t] for t in f]
        verts += v
    _write_ply(tmp / "meshes" / "blocks.ply", verts, faces)
    # a free-standing thin wall (one quad, as Sionna models walls): receivers west of x = -90 are NLOS
    _write_ply(tmp / "meshes" / "fence.ply", [[-90, -200, 0], [-90, 200, 0], [-90, 200, 40], [-90, -200, 40]],
               [[0, 1, 2], [0, 2, 3]])
    xml = tmp / "scene.xml"
    xml.write_text(
        '<scene version="2.1.0">'
        '<bsdf type="itu-radio-material" id="itu-ground"><string name="type" value="medium_dry_ground"/>'
        '<float name="thickness" value="0.5"/></bsdf>'
        '<bsdf type="itu-radio-material" id="itu-concrete"><string name="type" value="concrete"/>'
        '<float name="thickness" value="0.3"/></bsdf>'
        '<shape type="ply" id="ground"><string name="filename" value="meshes/ground.ply"/><ref id="itu-ground" name="bsdf"/></shape>'
        '<shape type="ply" id="blocks"><string name="filename" value="meshes/blocks.ply"/><ref id="itu-concrete" name="bsdf"/></shape>'
        '<bsdf type="itu-radio-material" id="itu-glass"><string name="type" value="glass"/>'
        '<float name="thickness" value="0.02"/></bsdf>'
        '<shape type="ply" id="fence"><string name="filename" value="meshes/fence.ply"/><ref id="itu-glass" name="bsdf"/></shape>'
        "</scene>"
    )
    return str(xml)


@pytest.fixture(scope="module")
def xml(tmp_path_factory) -> str:
    return city_xml(tmp_path_factory.mktemp("city"))


def cells_df(n: int = 3) -> pd.DataFrame:
    rows = [("208-1-100-11", 0.0, 0.0, 30.0, 0.0), ("208-1-100-12", 0.0, 0.0, 30.0, 120.0),
            ("208-1-100-13", 0.0, 0.0, 30.0, 240.0)][:n]
    return pd.DataFrame([dict(cell_id=c, x=x, y=y, z=z, frequency_hz=F_HZ, azimuth_deg=az, tilt_deg=6.0,
                              tx_power_dbm=46.0) for c, x, y, z, az in rows])


def rx_df(n: int = 12, seed: int = 3, speed: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:  # street points outside the blocks
        x, y = rng.uniform(-150, 150, 2)
        if not (15 < x < 45 and -35 < y < 35) and not (-65 < x < -15 and 15 < y < 55) and not (-45 < x < 15 and -85 < y < -45):
            pts.append((x, y))
    p = np.array(pts)
    return pd.DataFrame(dict(rx_id=np.arange(100, 100 + n), x=p[:, 0], y=p[:, 1], z=1.5,
                             vx=speed, vy=0.5 * speed, vz=0.0))


CFG = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=2)


@pytest.fixture(scope="module")
def table(xml):
    return trace_links(xml, cells_df(), rx_df(), CFG, scene_hash="abc123")


def test_rows_in_cir_schema_with_metadata(table):
    assert table.schema.equals(CIR_SCHEMA, check_metadata=False)
    meta = table.schema.metadata
    assert meta[META_SCENE_HASH.encode()] == b"abc123"
    assert meta[META_CONFIG_HASH.encode()]
    assert b'"seed": 42' in meta[b"twin.config"] and b'"samples_per_src": 10000' in meta[b"twin.config"]
    df = table.to_pandas()
    assert len(df) >= 0.6 * 3 * 12  # a few NLOS receivers get no path at depth 2 with 1e4 samples
    for r in df.itertuples():
        n = r.num_paths
        assert n >= 1
        for col in ("tau_s", "a_re", "a_im", "theta_t", "phi_t", "theta_r", "phi_r", "doppler_hz", "interactions"):
            assert len(getattr(r, col)) == n, col
        gain = 10 * math.log10(np.sum(np.square(r.a_re, dtype=float) + np.square(r.a_im, dtype=float)))
        assert abs(gain - r.path_gain_db) < 1e-3
        assert np.all(np.asarray(r.doppler_hz) == 0)  # static receivers
        for inter in r.interactions:  # Sionna codes, no NONE padding
            assert all(int(i) in (1, 2, 4, 8) for i in inter)
            assert len(inter) <= CFG.max_depth
        assert r.frequency_hz == F_HZ
        assert abs(r.los_distance_m - math.dist((r.tx_x, r.tx_y, r.tx_z), (r.rx_x, r.rx_y, r.rx_z))) < 1e-9


def test_link_ids_stable_and_distinct(table):
    df = table.to_pandas()
    assert df.link_id.is_unique
    for r in df.itertuples():
        assert r.link_id == link_id_for(r.tx_id, r.rx_id)
    assert link_id_for("208-1-100-11", 100) == link_id_for("208-1-100-11", 100)
    ids = {link_id_for(f"cell{c}", r) for c in range(50) for r in range(200)}
    assert len(ids) == 50 * 200
    assert link_id_for("a", 1) != link_id_for("a1", 0) and 0 <= link_id_for("x", 7) < 2**64


def test_los_links_first_path_at_distance_over_c(table):
    df = table.to_pandas()
    assert df.los.any() and (~df.los).any()  # the blocks shadow some receivers
    for r in df[df.los].itertuples():
        assert abs(min(r.tau_s) - r.los_distance_m / C) < 1e-10
        assert any(len(i) == 0 for i in r.interactions)  # Sionna found the direct path too
    for r in df[~df.los].itertuples():
        assert all(len(i) > 0 for i in r.interactions)  # no direct path through a building
        assert min(r.tau_s) > r.los_distance_m / C - 1e-10


def test_devices_removed_and_results_repeatable(xml, table):
    scene = load_scene(xml, F_HZ)
    assert len(scene.transmitters) == 0 and len(scene.receivers) == 0
    again = trace_links(xml, cells_df(), rx_df(), CFG).to_pandas()
    first = table.to_pandas()
    assert list(again.link_id) == list(first.link_id)
    np.testing.assert_allclose(again.path_gain_db, first.path_gain_db, atol=0.05)


def test_sub_batches_match_one_call(xml, monkeypatch):
    cells, rxs = cells_df(2), rx_df(6)
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=1000, max_depth=1)
    whole = trace_links(xml, cells, rxs, cfg).to_pandas()
    # a (pretend) Dr.Jit cap that allows only 1 cell x 2 receivers per solver call
    monkeypatch.setattr(trace_mod, "DRJIT_MAX_ENTRIES", 2500)
    assert plan_batches(2, 6, cfg, cap=2500) == (1, 2)
    split = trace_links(xml, cells, rxs, cfg).to_pandas()
    assert list(split.link_id) == list(whole.link_id)
    assert list(split.num_paths) == list(whole.num_paths)
    np.testing.assert_allclose(split.path_gain_db, whole.path_gain_db, atol=1e-3)
    # 2 cells x 3 receivers per call: rows still come back cell-major, as from one call
    monkeypatch.setattr(trace_mod, "plan_batches", lambda nc, nr, c, cap=0: (2, 3))
    mixed = trace_links(xml, cells, rxs, cfg).to_pandas()
    assert list(mixed.link_id) == list(whole.link_id)


def test_plan_batches_respects_cap():
    cfg = TraceConfig(samples_per_src=1_000_000, max_num_paths_per_src=1_000_000)
    cb, rb = plan_batches(8, 10_000, cfg)
    assert cb == 8 and cb * rb * 1_000_000 < 2**32
    assert plan_batches(8, 3, TraceConfig(samples_per_src=10, max_num_paths_per_src=10)) == (8, 3)
    cb, rb = plan_batches(8000, 5, cfg)
    assert cb * 1_000_000 < 2**32 and rb >= 1


def test_doppler_of_moving_receivers(xml):
    rxs = rx_df(12, speed=10.0)
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=1)
    df = trace_links(xml, cells_df(1), rxs, cfg).to_pandas()
    lam = C / F_HZ
    checked = 0
    for r in df[df.los].itertuples():
        i = [len(x) for x in r.interactions].index(0)
        v = rxs.set_index("rx_id").loc[r.rx_id, ["vx", "vy", "vz"]].to_numpy(float)
        u = np.subtract((r.tx_x, r.tx_y, r.tx_z), (r.rx_x, r.rx_y, r.rx_z)) / r.los_distance_m
        assert abs(r.doppler_hz[i] - v @ u / lam) < 1e-2  # moving toward the tx raises the frequency
        checked += 1
    assert checked > 0


def test_min_path_gain_drops_links(xml, table):
    gains = table.column("path_gain_db").to_numpy()
    thr = float(np.median(gains))
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=2, min_path_gain_db=thr)
    df = trace_links(xml, cells_df(), rx_df(), cfg).to_pandas()
    assert len(df) < len(gains) and (df.path_gain_db >= thr).all()


def test_full_buffer_warns(xml, caplog):
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=2, max_path_buffer=2, max_depth=1)
    with caplog.at_level(logging.WARNING, logger="twin.render.trace"):
        df = trace_links(xml, cells_df(1), rx_df(5), cfg).to_pandas()
    assert "path buffer full" in caplog.text and "1172" in caplog.text
    assert (df.num_paths <= 2).all()  # a full call is split down to single receivers, each capped at 2


def test_full_buffer_grows_until_nothing_is_dropped(xml, caplog, monkeypatch):
    """A full buffer is traced again, first with the receivers split in halves (same buffer), then, for a single
    receiver, larger: the result equals a trace with a buffer that never fills, and no call of several receivers
    ever gets a buffer larger than the configured one (the worker's memory stays bounded)."""
    calls: list[tuple[int, int]] = []
    solve = trace_mod._solve_batch

    def recording(scene, cells, rx_pos, rx_vel, config):
        calls.append((len(rx_pos), config.max_num_paths_per_src))
        return solve(scene, cells, rx_pos, rx_vel, config)

    monkeypatch.setattr(trace_mod, "_solve_batch", recording)
    small = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=2, max_path_buffer=100_000, max_depth=1)
    big = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=100_000, max_depth=1)
    with caplog.at_level(logging.INFO, logger="twin.render.trace"):
        a = trace_links(xml, cells_df(1), rx_df(5), small).to_pandas()
    assert "path buffer full (max" not in caplog.text  # the warning: nothing was dropped
    assert "two halves" in caplog.text and "tracing again with" in caplog.text
    assert calls[0] == (5, 2) and any(n == 1 for n, _ in calls)
    assert all(n == 1 for n, cap in calls if cap > 2), calls
    b = trace_links(xml, cells_df(1), rx_df(5), big).to_pandas()
    assert a.num_paths.tolist() == b.num_paths.tolist() and a.num_paths.sum() > 2
    for x, y in zip(a.tau_s, b.tau_s, strict=True):
        assert np.allclose(sorted(x), sorted(y))


def test_receivers_per_call_splits_the_solver_calls(xml, monkeypatch):
    """At most ``receivers_per_call`` receivers go into one PathSolver call; the rows come back in the order of one
    call (cell-major) with the same links."""
    calls: list[int] = []
    solve = trace_mod._solve_batch

    def recording(scene, cells, rx_pos, rx_vel, config):
        calls.append(len(rx_pos))
        return solve(scene, cells, rx_pos, rx_vel, config)

    monkeypatch.setattr(trace_mod, "_solve_batch", recording)
    one = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=1, receivers_per_call=5)
    two = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=1, receivers_per_call=2)
    a = trace_links(xml, cells_df(2), rx_df(5), one).to_pandas()
    assert calls == [5]
    calls.clear()
    b = trace_links(xml, cells_df(2), rx_df(5), two).to_pandas()
    assert calls == [2, 2, 1]
    assert a.link_id.tolist() == b.link_id.tolist() and a.link_id.is_unique
    assert np.allclose(a.path_gain_db, b.path_gain_db, atol=0.01)  # a tiny scene: nothing competes for the table
    with pytest.raises(ValueError, match="receivers_per_call"):
        TraceConfig(receivers_per_call=0)


def test_bad_input_errors(xml):
    cells = cells_df(2)
    bad = cells.copy()
    bad.loc[1, "frequency_hz"] = 2.6e9
    with pytest.raises(ValueError, match="frequency_hz"):
        trace_links(xml, bad, rx_df(2), CFG)
    with pytest.raises(TwinInputError) as e:
        trace_links(xml, cells.drop(columns=["tilt_deg"]), rx_df(2), CFG)
    assert e.value.field == "tilt_deg" and e.value.file == "cells"
    rx = rx_df(3)
    rx.loc[1, "y"] = np.nan
    with pytest.raises(TwinInputError) as e:
        trace_links(xml, cells, rx, CFG)
    assert e.value.field == "y" and e.value.row == "101"
    with pytest.raises(TwinInputError) as e:
        trace_links(xml + ".missing", cells, rx_df(2), CFG)
    assert e.value.field == "scene_xml"
    rx = rx_df(2).astype({"rx_id": object})
    rx.loc[0, "rx_id"] = "r-1"
    with pytest.raises(TwinInputError) as e:
        trace_links(xml, cells, rx, CFG)
    assert e.value.field == "rx_id"
    assert trace_links(xml, cells, rx_df(2).iloc[:0], CFG).num_rows == 0


def test_scene_cache(tmp_path):
    p = city_xml(tmp_path)
    s1 = load_scene(p, 3.5e9)
    s2 = load_scene(p, 2.6e9)
    assert s1 is s2 and abs(float(s2.frequency[0]) - 2.6e9) < 1
    os.utime(p, ns=(1, os.stat(p).st_mtime_ns + 10**9))
    assert load_scene(p, 2.6e9) is not s1
    import drjit as dr

    assert dr.thread_count() == int(os.environ["TWIN_DRJIT_THREADS"])


def test_bare_and_naive_count_the_same_links(xml):
    from twin.render.bare import bare_sionna_links, naive_loop_links

    cells, rxs = cells_df(2), rx_df(4)
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=1)
    n_twin = trace_links(xml, cells, rxs, cfg).num_rows
    n_bare, t_bare = bare_sionna_links(xml, cells, rxs, cfg)
    n_naive, t_naive = naive_loop_links(xml, cells, rxs, cfg, max_receivers=3)
    assert n_bare == n_twin and t_bare > 0
    assert n_naive == trace_links(xml, cells, rxs.iloc[:3], cfg).num_rows and t_naive > 0
    with pytest.raises(ValueError, match="max_receivers"):
        naive_loop_links(xml, cells, rxs, cfg, max_receivers=0)


def test_etoile_street_links():
    """Sionna's Paris scene: 3 sectors x 20 street receivers; LOS delay invariant; same links as bare Sionna."""
    import mitsuba as mi
    import sionna.rt as rt

    from twin.render.bare import bare_sionna_links

    xml = rt.scene.etoile
    scene = load_scene(xml, F_HZ)
    rng = np.random.default_rng(0)
    cand = rng.uniform([-350, -280], [350, 280], size=(400, 2))
    o = mi.Point3f(mi.Float(cand[:, 0]), mi.Float(cand[:, 1]), mi.Float(np.full(len(cand), 300.0)))
    si = scene.mi_scene.ray_intersect(mi.Ray3f(o, mi.Vector3f(0, 0, -1)))
    z = np.asarray(si.p.z.numpy())
    street = np.flatnonzero(np.asarray(si.is_valid().numpy()) & (z < 1.0))[:20]  # the ray reaches the ground
    rxs = pd.DataFrame(dict(rx_id=np.arange(len(street)), x=cand[street, 0], y=cand[street, 1], z=z[street] + 1.5))
    cells = cells_df(3).assign(x=60.0, y=-40.0, z=45.0)
    cfg = TraceConfig(samples_per_src=10_000, max_num_paths_per_src=10_000, max_depth=3)
    df = trace_links(xml, cells, rxs, cfg).to_pandas()
    assert len(df) > 0 and df.los.any()
    for r in df[df.los].itertuples():
        assert abs(min(r.tau_s) - r.los_distance_m / C) < 1e-10
    n_bare, _ = bare_sionna_links(xml, cells, rxs, cfg)
    assert abs(n_bare - len(df)) <= 0.1 * len(df)  # same settings; SBR sampling is not deterministic
