"""Bistatic-echo view on a hand-built scene: two sites, one target, one wall (Mitsuba XML + PLY in tmp_path).

Oracles: type I delay = site distance / c, type II delay = (|A-T| + |T-B|) / c with T the TR 38.901 scattering
point (human: 1.5 m above the ground for 1.75 m, Table 7.9.6.1-2), the wall's specular echo = image-method
path length / c, and the observed tap = true delay in samples + (STO_rx - STO_tx).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twin.config import from_mapping
from twin.datasets.bistatic_echo import (
    NUMEROLOGIES,
    SPEED_OF_LIGHT,
    BistaticEchoConfig,
    Site,
    check_window,
    classify,
    delay_taps,
    draw_noise,
    draw_sto,
    line_of_sight,
    on_grid_taps,
    path_window_flags,
    rooftop_sites,
    tap_dictionary,
    tap_kernel,
)
from twin.datasets.registry import ViewInputs, get_view
from twin.errors import TwinInputError
from twin.schema import tensor_to_numpy

C = SPEED_OF_LIGHT


def _ply(path, verts, faces):
    with open(path, "w") as f:
        f.write("ply\nformat ascii 1.0\n")
        f.write(f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n")
        f.write(f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
        for v in verts:
            f.write(f"{v[0]:f} {v[1]:f} {v[2]:f}\n")
        for fc in faces:
            f.write(f"3 {fc[0]} {fc[1]} {fc[2]}\n")


def _scene(tmp_path, wall, name="scene.xml", wall_material="metal"):
    """A concrete ground square (z = 0, 400 m) and one wall (metal or concrete) given by its 4 corners."""
    (tmp_path / "meshes").mkdir(exist_ok=True)
    _ply(tmp_path / "meshes" / "ground.ply", [(-150, -150, 0), (250, -150, 0), (250, 250, 0), (-150, 250, 0)],
         [(0, 1, 2), (0, 2, 3)])
    _ply(tmp_path / "meshes" / f"wall-{name}.ply", wall, [(0, 1, 2), (0, 2, 3)])
    xml = f"""<scene version="2.1.0">
<bsdf type="itu-radio-material" id="concrete"><string name="type" value="concrete"/>
<float name="thickness" value="0.2"/></bsdf>
<bsdf type="itu-radio-material" id="metal"><string name="type" value="metal"/>
<float name="thickness" value="0.01"/></bsdf>
<shape type="ply" id="mesh-ground"><string name="filename" value="meshes/ground.ply"/>
<boolean name="face_normals" value="true"/><ref id="concrete" name="bsdf"/></shape>
<shape type="ply" id="mesh-wall"><string name="filename" value="meshes/wall-{name}.ply"/>
<boolean name="face_normals" value="true"/><ref id="{wall_material}" name="bsdf"/></shape>
</scene>"""
    p = tmp_path / name
    p.write_text(xml)
    return str(p)


def _towers(sites):
    return pa.Table.from_pylist([dict(cell_id=f"c{i}", site_id=s, x=p[0], y=p[1], z=p[2], azimuth_deg=0.0,
                                      tilt_deg=0.0, frequency_hz=3.5e9, tx_power_dbm=46.0)
                                 for i, (s, p) in enumerate(sites)])


A, B = (0.0, 0.0, 20.0), (100.0, 0.0, 20.0)


def _run(scene_path, target_xy, seed=3, **cfg):
    """The view with its single human target pinned at ``target_xy`` (box on the ground at z = 0)."""
    from twin.datasets.bistatic_echo import BistaticEchoView, sites_from_towers

    config = BistaticEchoConfig(num_targets=1, num_snapshots=1, target_kinds=("human",), samples_per_src=20_000,
                                samples_per_sp=20_000, **cfg)
    view = BistaticEchoView()
    sites = sites_from_towers(_towers([("A", A), ("B", B)]))
    placement = [(np.array([[target_xy[0], target_xy[1], 1.75 / 2]]), np.array([0.0]))]
    return view.to_table(view.trace(scene_path, sites, config, seed, placements=placement), config), config


def _row(table, tx, rx):
    rows = [r for r in table.to_pylist() if r["tx_site"] == tx and r["rx_site"] == rx]
    assert len(rows) == 1
    return rows[0]


def test_types_delays_and_taps(tmp_path):
    # wall parallel to the baseline at y = -30 (its normal faces +y): A -> wall -> B is a specular echo
    wall = [(20, -30, 0), (80, -30, 0), (80, -30, 40), (20, -30, 40)]
    table, cfg = _run(_scene(tmp_path, wall), (50.0, 30.0))
    fs = NUMEROLOGIES[cfg.numerology].sampling_rate_hz
    assert table.num_rows == 4  # (A, B) x (A, B)
    T = np.array([50.0, 30.0, 1.5])  # human scattering point
    ab = _row(table, "A", "B")
    types = ab["path_type"]
    tau = np.array(ab["path_tau_s"])
    # type I: distance / c
    (i1,) = [i for i, t in enumerate(types) if t == 1]
    assert abs(tau[i1] - 100.0 / C) < 0.1e-9
    # type II: the two legs / c, target 0
    i2 = [i for i, t in enumerate(types) if t == 2]
    assert len(i2) == 1 and ab["path_target"][i2[0]] == 0
    legs = np.linalg.norm(T - A) + np.linalg.norm(T - B)
    assert abs(tau[i2[0]] - legs / C) < 0.1e-9
    # the wall echo: image of B in y = -30 -> type III, no target
    b_img = np.array([100.0, -60.0, 20.0])
    i3 = [i for i, t in enumerate(types) if t == 3 and ab["path_target"][i] == -1
          and abs(tau[i] - np.linalg.norm(b_img - A) / C) < 0.1e-9]
    assert len(i3) == 1 and ab["path_interactions"][i3[0]] == [1]
    # monostatic echo A -> T -> A is type II too
    aa = _row(table, "A", "A")
    i2a = [i for i, t in enumerate(aa["path_type"]) if t == 2]
    assert len(i2a) == 1 and abs(aa["path_tau_s"][i2a[0]] - 2 * np.linalg.norm(T - A) / C) < 0.1e-9
    assert 1 not in aa["path_type"]
    # observed taps: true delay in samples + STO difference, for every path
    diff = ab["sto_rx_samples"] - ab["sto_tx_samples"]
    assert ab["sto_diff_samples"] == diff
    assert np.allclose(ab["path_observed_samples"], tau * fs + diff, rtol=0, atol=1e-6)
    h = tensor_to_numpy(table.column("h_clean"), table.schema.field("h_clean"))
    idx = [r["tx_site"] + r["rx_site"] for r in table.to_pylist()].index("AB")
    hc = h[idx, :, 0] + 1j * h[idx, :, 1]
    assert int(np.argmax(np.abs(hc))) == round(tau[i1] * fs + diff)  # the LOS path dominates
    # the noisy channel differs from the clean one by the link-budget noise level
    hn = tensor_to_numpy(table.column("h"), table.schema.field("h"))[idx]
    resid = (hn[:, 0] - h[idx, :, 0]) ** 2 + (hn[:, 1] - h[idx, :, 1]) ** 2
    assert resid.mean() == pytest.approx(ab["noise_var"], rel=0.25)
    kT = 1.380649e-23 * 290
    assert ab["noise_var"] == pytest.approx(kT * 10 ** 0.5 * 30e3 / 10 ** (46 / 10 - 3))
    # ground truth for the target: position and scattering point
    assert ab["target_sp_z"] == [pytest.approx(1.5)] and ab["target_x"] == [50.0]


def test_hidden_target_echo_is_type_iii(tmp_path):
    # a wall between the target and B only: B -> T crosses it (x = 90, 3 < y < 15), A-B and A-T do not
    wall = [(90, 3, 0), (90, 15, 0), (90, 15, 30), (90, 3, 30)]
    path = _scene(tmp_path, wall, "hidden.xml", wall_material="concrete")
    table, _ = _run(path, (50.0, 30.0))
    T = np.array([50.0, 30.0, 1.5])
    import mitsuba as mi  # noqa: F401 - variant set by the view
    from sionna.rt import load_scene

    mi_scene = load_scene(path).mi_scene
    assert line_of_sight(mi_scene, [A], [T])[0] and not line_of_sight(mi_scene, [B], [T])[0]
    assert line_of_sight(mi_scene, [A], [B])[0]
    aa = _row(table, "A", "A")
    assert 2 in aa["path_type"]  # A sees the target
    for tx, rx in (("A", "B"), ("B", "A"), ("B", "B")):
        r = _row(table, tx, rx)
        echoes = [(t, i) for t, g, i in zip(r["path_type"], r["path_target"], r["path_interactions"], strict=True)
                  if g == 0]
        assert 2 not in [t for t, _ in echoes]  # a blocked leg is never type II
        if tx != rx:  # A -> T -> (through the wall) -> B: one refraction (code 4) on B's leg, type III
            assert (3, [16, 4] if tx == "A" else [4, 16]) in echoes
    ab = _row(table, "A", "B")
    assert 1 in ab["path_type"]
    # labels: the sites that see the target (B's leg crosses the wall), site-to-site line of sight
    assert all(r["target_los_sites"] == [["A"]] and r["site_los"] for r in table.to_pylist())
    assert all(all(r["path_in_window"]) and not any(r["path_aliased"]) for r in table.to_pylist())
    # deterministic for the seed (targets, STOs, noise, traced paths)
    again, _ = _run(path, (50.0, 30.0))
    assert again.to_pylist() == table.to_pylist()
    other, _ = _run(path, (50.0, 30.0), seed=4)
    assert other.column("h").to_pylist() != table.column("h").to_pylist()


def test_random_placement_through_the_registry(tmp_path):
    """``twin build`` path: the registered view draws targets on the ground, clear of the wall."""
    from sionna.rt import load_scene
    from sionna.rt.rcs.tr38901.parameters import get_target_parameters

    from twin.datasets.bistatic_echo import _clear_around

    wall = [(20, -30, 0), (80, -30, 0), (80, -30, 40), (20, -30, 40)]
    path = _scene(tmp_path, wall, "rand.xml")
    cfg = BistaticEchoConfig(num_targets=2, num_snapshots=2, samples_per_src=10_000, samples_per_sp=10_000,
                             store_clean=False)
    inputs = ViewInputs(cir=pa.table({}), towers=_towers([("A", A), ("B", B)]), receivers=pa.table({}),
                        scene_path=path, seed=9, manifest={})
    table = get_view("bistatic_echo")(inputs, cfg)
    assert table.num_rows == 2 * 4 and "h_clean" not in table.column_names
    mi_scene = load_scene(path).mi_scene
    for snap in (0, 1):
        r = [x for x in table.to_pylist() if x["snapshot"] == snap][0]
        assert r["target_kind"] == ["human", "vehicle"]
        c = np.column_stack([r["target_x"], r["target_y"], np.zeros(2)])
        assert np.all((c[:, 0] >= -100) & (c[:, 0] <= 200) & (c[:, 1] >= -100) & (c[:, 1] <= 100))
        assert _clear_around(mi_scene, c, 1.0).all()
        car_h = get_target_parameters("vehicle-single-sp", 2).dimensions[2]  # TR 38.901 Table 7.9.1-1
        assert r["target_z"] == [pytest.approx(1.75 / 2), pytest.approx(car_h / 2)]
    with pytest.raises(TwinInputError, match="scene"):
        get_view("bistatic_echo")(ViewInputs(cir=pa.table({}), towers=inputs.towers, receivers=pa.table({}),
                                             scene_path=str(tmp_path / "missing.xml"), seed=0, manifest={}), cfg)


def test_delay_taps_and_classify_units():
    o = NUMEROLOGIES["nr_fr1_100mhz"]
    h = delay_taps(np.array([0.5 - 0.5j]), np.array([37.0]), o, 64)
    assert np.argmax(np.abs(h)) == 37 and h[37] == pytest.approx(0.5 - 0.5j)
    # against the explicit double sum over paths and active subcarriers, fractional and negative delays
    rng = np.random.default_rng(0)
    a, d = rng.standard_normal(7) + 1j * rng.standard_normal(7), np.array([0.0, 3.3, 12.5, -4.2, 80.0, 4095.6, 7.0])
    for na in (o.num_subcarriers, 1001):
        oo = type(o)(o.carrier_frequency_hz, o.subcarrier_spacing_hz, o.fft_size, na, o.cp_length)
        k = np.arange(-(na // 2), na - na // 2)
        ref = np.exp(2j * np.pi * np.outer(np.arange(100), k) / o.fft_size) @ (
            np.exp(-2j * np.pi * np.outer(k, d) / o.fft_size) @ a) / na
        assert np.allclose(delay_taps(a, d, oo, 100), ref, rtol=0, atol=1e-9)
    assert classify([0, 0], [0, 0], same_site=False) == (1, -1)
    assert classify([16, 0], [2, 99], same_site=False) == (2, 2)
    assert classify([1, 16], [5, 0], same_site=True) == (3, 0)
    assert classify([1, 0], [5, 0], same_site=False) == (3, -1)


def test_config_errors():
    with pytest.raises(TwinInputError, match="numerology"):
        from_mapping(BistaticEchoConfig, {"numerology": "lte"})
    with pytest.raises(TwinInputError, match="target_kinds"):
        from_mapping(BistaticEchoConfig, {"target_kinds": ["horse"]})
    assert from_mapping(BistaticEchoConfig, {"numerology": "nr_fr2_400mhz"}).ofdm.sampling_rate_hz == 491.52e6
    with pytest.raises(TwinInputError, match="CP"):  # L + max STO must fit in the CP (288 samples)
        from_mapping(BistaticEchoConfig, {"num_taps": 280})
    with pytest.raises(TwinInputError, match="channel_model"):
        from_mapping(BistaticEchoConfig, {"channel_model": "sparse"})
    assert Site("a", (0, 0, 0), 46.0).tx_power_dbm == 46.0


def check_echo_geometry(table, mi_scene, tol_s=0.1e-9):
    """Acceptance: type I/II delays equal the geometry / c within tol_s; both legs of a type II path pass an
    independent LOS ray test (on the bare scene) and agree with the ``target_los_sites`` label; a pair has a
    type I path exactly when its sites see each other (ray test) and ``site_los`` says so."""
    n1 = n2 = 0
    for r in table.to_pylist():
        a = np.array([r["tx_x"], r["tx_y"], r["tx_z"]])
        b = np.array([r["rx_x"], r["rx_y"], r["rx_z"]])
        sp = np.column_stack([r["target_sp_x"], r["target_sp_y"], r["target_sp_z"]])
        if r["tx_site"] != r["rx_site"]:
            los = bool(line_of_sight(mi_scene, [a], [b])[0])
            assert r["site_los"] == los and (1 in r["path_type"]) == los
        for ty, tg, tau in zip(r["path_type"], r["path_target"], r["path_tau_s"], strict=True):
            if ty == 1:
                assert abs(tau - np.linalg.norm(b - a) / C) < tol_s
                n1 += 1
            elif ty == 2:
                t = sp[tg]
                assert abs(tau - (np.linalg.norm(t - a) + np.linalg.norm(b - t)) / C) < tol_s
                assert line_of_sight(mi_scene, [a, b], [t, t]).all()
                assert {r["tx_site"], r["rx_site"]} <= set(r["target_los_sites"][tg])
                n2 += 1
    return n1, n2


@pytest.mark.slow
def test_paris_acceptance():
    import time

    from twin.llvm import setup_mitsuba

    setup_mitsuba()
    import sionna.rt
    from sionna.rt import load_scene

    path = sionna.rt.scene.etoile
    mi_scene = load_scene(path).mi_scene
    sites = [(s.site_id, s.position) for s in rooftop_sites(mi_scene, 4)]
    inputs = ViewInputs(cir=pa.table({}), towers=_towers(sites), receivers=pa.table({}), scene_path=path, seed=1,
                        manifest={})
    t0 = time.perf_counter()
    cfg = BistaticEchoConfig(num_snapshots=2, num_targets=4, samples_per_src=30_000, samples_per_sp=30_000)
    table = get_view("bistatic_echo")(inputs, cfg)
    elapsed = time.perf_counter() - t0
    n1, n2 = check_echo_geometry(table, mi_scene)
    types = [t for r in table.to_pylist() for t in r["path_type"]]
    print(f"paris: {len(sites)} sites, {table.num_rows} rows, type I {n1}, II {n2}, III {types.count(3)}, "
          f"{elapsed:.1f} s")
    assert n2 > 0 and table.num_rows == len(sites) ** 2 * 2


def test_window_sized_from_cp_and_sites():
    cfg = BistaticEchoConfig()
    assert cfg.taps == 288 - 10 and cfg.taps + cfg.max_sto_samples <= cfg.ofdm.cp_length
    assert cfg.window_m == pytest.approx(278 / 122.88e6 * C)
    near = [Site("a", (0, 0, 20), 46.0), Site("b", (300, 0, 20), 46.0)]
    assert check_window(near, cfg) == pytest.approx(300.0)
    fr2 = BistaticEchoConfig(numerology="nr_fr2_400mhz")
    with pytest.raises(TwinInputError) as e:  # 300 m = 492 samples at FR2: outside 278 taps (170 m)
        check_window(near, fr2)
    assert "300 m" in e.value.args[0] and "170 m" in e.value.args[0] and "a and b" in e.value.args[0]


def test_on_grid_taps_flags_and_dictionary():
    o = NUMEROLOGIES["nr_fr1_100mhz"]
    cfg = BistaticEchoConfig(channel_model="on_grid")
    L = cfg.taps
    d = np.array([3.4, 3.6, 100.0, L + 5.0, o.fft_size + 7.2, -2.0])
    a = np.array([1, 2j, 3, 4, 5, 6], complex)
    h = on_grid_taps(a, d, o, L)
    assert h[3] == 1 and h[4] == 2j and h[100] == 3 and h[7] == 5  # nearest tap; N_fft + 7 wraps onto tap 7
    assert np.count_nonzero(h) == 4  # L + 5 and -2 (-> N_fft - 2) lie outside the window
    tap, inw, ali = path_window_flags(d, cfg)
    assert list(inw) == [True, True, True, False, False, False] and list(ali) == [False] * 4 + [True, False]
    assert list(tap) == [3, 4, 100, -1, -1, -1]
    # the band-limited dictionary: G @ x (x on whole taps) is the closed-form Dirichlet sum of delay_taps
    g = tap_kernel(o, L)
    assert g[L - 1] == pytest.approx(1.0) and abs(g[L]) == pytest.approx(10 ** (-12.6 / 20), rel=0.02)
    G = tap_dictionary(g)
    x = np.zeros(L, complex)
    x[[5, 40, 41]] = [1, 0.5j, -0.3]
    assert np.allclose(G @ x, delay_taps(x[[5, 40, 41]], np.array([5.0, 40, 41]), o, L), atol=1e-12)
    assert np.array_equal(tap_dictionary(tap_kernel(o, L, "on_grid")), np.eye(L))


def test_noise_models_and_sto_bound():
    rng = np.random.default_rng(1)
    bl, og = BistaticEchoConfig(), BistaticEchoConfig(channel_model="on_grid")
    g = tap_kernel(bl.ofdm, bl.taps)
    for cfg, rho in ((bl, g[bl.taps]), (og, 0.0)):  # adjacent-tap correlation: the kernel's first lag / none
        w = draw_noise(rng, 2.0, cfg, size=4000)
        assert w.shape == (4000, cfg.taps)
        assert np.mean(np.abs(w) ** 2) == pytest.approx(2.0, rel=0.03)
        c = np.mean(w[:, 1:] * np.conj(w[:, :-1])) / 2.0
        assert abs(c - rho) < 0.02
    assert abs(g[bl.taps]) > 0.2  # the band-limited taps are correlated
    o = np.array([draw_sto(rng, 6, 10) for _ in range(2000)])
    diff = o[:, :, None] - o[:, None, :]
    assert np.abs(diff).max() == 10 and o.min() >= -10 and o.max() <= 10


@pytest.mark.slow
def test_paris_build_path_typing_and_los_rule(tmp_path):
    """On a `twin build --city paris` (real towers, 4 mutually visible sites chosen by ray tests) with the
    placement rule "LOS to >= 3 sites": every target's scattering point is seen by >= 3 sites by an independent
    ray test that agrees with ``target_los_sites``; type I/II path typing agrees with the geometry
    (:func:`check_echo_geometry`: delays, both legs' LOS); every pair whose two sites both see a target has
    that target's type II path, and no type II path exists for a target one of the two sites cannot see.
    `twin train twophase` on that build writes a full run directory."""
    import json

    import pyarrow.parquet as pq
    from sionna.rt import load_scene
    from typer.testing import CliRunner

    from twin.cli import app
    from twin.llvm import setup_mitsuba
    from twin.reproductions.twophase import choose_sites

    cfg_path = tmp_path / "small.toml"
    cfg_path.write_text("[trace]\nmax_depth = 1\nsamples_per_src = 5000\nmax_num_paths_per_src = 5000\n"
                        "diffraction = false\n")
    r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--receivers", "2", "--out",
                                 str(tmp_path / "b"), "--config", str(cfg_path)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    root = tmp_path / "b" / "paris"
    scene_xml = str(root / json.loads((root / "twin.json").read_text())["scene"]["xml"])
    towers = pq.read_table(root / "towers.parquet")
    towers = towers.select([c for c in towers.column_names if c != "geometry"])
    sites = choose_sites(towers, scene_xml, BistaticEchoConfig().window_m)
    vcfg = tmp_path / "views.toml"
    vcfg.write_text(f"[views.bistatic_echo]\nsites = {json.dumps(sites)}\nnum_snapshots = 2\nnum_targets = 3\n"
                    "samples_per_src = 20000\nsamples_per_sp = 20000\ntarget_margin_m = 20.0\nmin_los_sites = 3\n")
    r = CliRunner().invoke(app, ["view", "build", "bistatic_echo", str(root), "--config", str(vcfg)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    import twin

    table = twin.open(root).view("bistatic_echo").to_table()
    # `twin train twophase` on it writes a full run directory (snapshot split: snapshot 1 is the test one)
    from twin.baselines.rundir import RUN_FILES
    from twin.baselines.runner import train

    res = train("twophase", root, tmp_path / "run", overrides={"test_every": 2}, show_progress=False)
    assert all((tmp_path / "run" / f).exists() for f in RUN_FILES if f != "checkpoint.pt")
    assert res.metrics["twophase"]["snapshots"] == 1 and res.metrics["twophase"]["sto_error_links"] == 0
    setup_mitsuba()
    mi_scene = load_scene(scene_xml).mi_scene
    n1, n2 = check_echo_geometry(table, mi_scene)
    rows = table.to_pylist()
    pos = {r["tx_site"]: np.array([r["tx_x"], r["tx_y"], r["tx_z"]]) for r in rows}
    assert sorted(pos) == sorted(sites) and len(sites) >= 4
    missing = 0
    for snap in {r["snapshot"] for r in rows}:
        rs = [r for r in rows if r["snapshot"] == snap]
        sp = np.column_stack([rs[0]["target_sp_x"], rs[0]["target_sp_y"], rs[0]["target_sp_z"]])
        see = {}
        for k in range(len(sp)):  # independent ray tests, sites -> scattering point
            see[k] = {s for s in sites if line_of_sight(mi_scene, [pos[s]], [sp[k]])[0]}
            assert see[k] == set(rs[0]["target_los_sites"][k]) and len(see[k]) >= 3, (k, see[k])
        for r in rs:
            t2 = {g for t, g in zip(r["path_type"], r["path_target"], strict=True) if t == 2}
            both = {k for k in see if r["tx_site"] in see[k] and r["rx_site"] in see[k]}
            assert t2 <= both  # no type II path over a blocked leg
            missing += len(both - t2)
    print(f"paris build: sites {sites}, {table.num_rows} rows, type I {n1}, type II {n2}, "
          f"LOS pairs without a type II path {missing}")
    assert n1 > 0 and n2 > 0 and missing == 0
