"""Physics oracles for twin.render.trace in tiny hand-built scenes (PLY quads + ITU materials).

Oracles written out here, independent of Sionna: free-space delay d/c and Friis gain (lambda/4 pi d)^2;
image-method delay of a ground reflection and the ITU-R P.2040-4 single-slab Fresnel coefficient
(eqs. 37, 43, 44; Table 3 material parameters); the 3GPP TR 38.901 Table 7.3-1 element pattern with the
§7.1 rotation (bearing, downtilt) for the sector-orientation test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.config import TraceConfig
from twin.constants import SPEED_OF_LIGHT
from twin.render.trace import trace_links

C = 299_792_458.0
F_HZ = 3.5e9
LAM = C / F_HZ
EPS0 = 8.8541878128e-12

# ITU-R P.2040-4 Table 3: eps_r = a f^b, sigma = c f^d (f in GHz), valid 1-100 GHz for concrete
ITU_P2040 = {"concrete": (5.24, 0.0, 0.0462, 0.7822), "medium_dry_ground": (15.0, -0.1, 0.035, 1.63)}


# ------------------------------------------------------------------------------------------ scene helpers


def _write_ply(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    hdr = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(verts)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()
    with open(path, "wb") as fh:
        fh.write(hdr)
        fh.write(np.asarray(verts, dtype="<f4").tobytes())
        for f in faces:
            fh.write(np.uint8(3).tobytes())
            fh.write(np.asarray(f, dtype="<i4").tobytes())


def quad(corners) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(corners, dtype=float), np.array([[0, 1, 2], [0, 2, 3]])


def build_scene(tmp: Path, shapes: dict[str, tuple[tuple[np.ndarray, np.ndarray], str, float]]) -> str:
    """Mitsuba XML + PLY meshes: ``shapes`` maps a name to ((verts, faces), ITU material, thickness_m)."""
    (tmp / "meshes").mkdir(parents=True, exist_ok=True)
    parts = ['<scene version="2.1.0">']
    for name, ((v, f), mat, thick) in shapes.items():
        _write_ply(tmp / "meshes" / f"{name}.ply", v, f)
        parts.append(
            f'<bsdf type="itu-radio-material" id="itu-{name}"><string name="type" value="{mat}"/>'
            f'<float name="thickness" value="{thick}"/></bsdf>'
            f'<shape type="ply" id="{name}"><string name="filename" value="meshes/{name}.ply"/>'
            f'<ref id="itu-{name}" name="bsdf"/></shape>'
        )
    parts.append("</scene>")
    xml = tmp / "scene.xml"
    xml.write_text("\n".join(parts))
    return str(xml)


def ground(half: float = 2000.0) -> tuple[np.ndarray, np.ndarray]:
    return quad([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]])


def cells_df(rows) -> pd.DataFrame:
    """rows: (cell_id, x, y, z, azimuth_deg, tilt_deg)."""
    return pd.DataFrame(
        [dict(cell_id=r[0], x=r[1], y=r[2], z=r[3], frequency_hz=F_HZ, azimuth_deg=r[4], tilt_deg=r[5], tx_power_dbm=46.0)
         for r in rows]
    )


def rx_df(points) -> pd.DataFrame:
    p = np.asarray(points, dtype=float)
    return pd.DataFrame(dict(rx_id=np.arange(len(p)), x=p[:, 0], y=p[:, 1], z=p[:, 2], vx=0.0, vy=0.0, vz=0.0))


def cfg(**kw) -> TraceConfig:
    base = dict(samples_per_src=10_000, max_num_paths_per_src=10_000, antenna_pattern="iso", polarization="V")
    base.update(kw)
    return TraceConfig(**base)


@pytest.fixture(scope="module")
def ground_xml(tmp_path_factory) -> str:
    return build_scene(tmp_path_factory.mktemp("ground"), {"ground": (ground(), "concrete", 0.2)})


# ---------------------------------------------------------------------------------------------- (a) Friis


def test_free_space_delay_and_friis_gain(ground_xml):
    tx = (0.0, 0.0, 20.0)
    pts = [(30.0, 0.0, 1.5), (0.0, 150.0, 5.0), (-400.0, 250.0, 1.5), (3.0, -2.0, 30.0)]
    tab = trace_links(ground_xml, cells_df([("c", *tx, 0.0, 0.0)]), rx_df(pts), cfg(max_depth=0)).to_pandas()
    assert len(tab) == len(pts)
    for _, r in tab.iterrows():
        assert r.num_paths == 1 and list(r.interactions[0]) == []
        d = math.dist(tx, (r.rx_x, r.rx_y, r.rx_z))
        assert abs(r.tau_s[0] - d / C) < 1e-12
        friis_db = 20 * math.log10(LAM / (4 * math.pi * d))
        assert abs(r.path_gain_db - friis_db) < 0.1
        assert abs(10 * math.log10(r.a_re[0] ** 2 + r.a_im[0] ** 2) - friis_db) < 0.1
        # baseband coefficient: |a| = lambda / (4 pi d) and phase = -2 pi f tau (carrier phase included)
        a0 = complex(r.a_re[0], r.a_im[0])
        expected = LAM / (4 * math.pi * d) * np.exp(-2j * math.pi * F_HZ * d / C)
        assert abs(a0 - expected) < 1e-3 * abs(expected)
        # angles: departure toward rx, arrival from tx (theta from zenith, phi from +x)
        u = np.subtract((r.rx_x, r.rx_y, r.rx_z), tx) / d
        assert abs(r.theta_t[0] - math.acos(u[2])) < 1e-3
        assert abs(r.theta_r[0] - math.acos(-u[2])) < 1e-3
        assert r.los


# ---------------------------------------------------------------------------------- (b) ground reflection


def p2040_slab(cos_t: np.ndarray, material: str, f_hz: float, thickness_m: float):
    """ITU-R P.2040-4 single-layer slab reflection coefficients (R_TE, R_TM), eqs. (37), (43a), (44)."""
    a, b, c, d = ITU_P2040[material]
    f_ghz = f_hz / 1e9
    eps_r = a * f_ghz**b
    sigma = c * f_ghz**d
    eta = eps_r - 1j * sigma / (2 * math.pi * f_hz * EPS0)
    sin2 = 1 - cos_t**2
    root = np.sqrt(eta - sin2 + 0j)
    r_te = (cos_t - root) / (cos_t + root)
    r_tm = (eta * cos_t - root) / (eta * cos_t + root)
    q = 2 * math.pi * thickness_m / (C / f_hz) * root
    e2 = np.exp(-2j * q)
    return r_te * (1 - e2) / (1 - r_te**2 * e2), r_tm * (1 - e2) / (1 - r_tm**2 * e2)


def test_ground_reflection_image_delay_and_fresnel_tm(ground_xml):
    ht, hr = 25.0, 1.5
    dxs = np.array([15.0, 40.0, 90.0, 250.0])
    tab = trace_links(ground_xml, cells_df([("c", 0, 0, ht, 0, 0)]), rx_df([(x, 0, hr) for x in dxs]),
                      cfg(max_depth=1)).to_pandas()
    assert len(tab) == len(dxs)
    for k, r in enumerate(tab.itertuples()):
        inter = [list(i) for i in r.interactions]
        assert sorted(inter) == [[], [1]], inter  # LOS + one specular ground bounce
        i_los, i_ref = inter.index([]), inter.index([1])
        d = math.hypot(dxs[k], ht - hr)
        d_img = math.hypot(dxs[k], ht + hr)  # image method: mirror the tx below the ground
        assert abs(r.tau_s[i_los] - d / C) < 1e-12
        assert abs(r.tau_s[i_ref] - d_img / C) < 1e-12
        cos_inc = (ht + hr) / d_img  # angle of incidence from the ground normal
        _, r_tm = p2040_slab(np.array([cos_inc]), "concrete", F_HZ, 0.2)
        a = np.asarray(r.a_re) + 1j * np.asarray(r.a_im)
        ratio = a[i_ref] / a[i_los]
        expected = abs(r_tm[0]) * d / d_img  # V polarisation in the plane of incidence: TM (parallel)
        assert abs(20 * math.log10(abs(ratio)) - 20 * math.log10(expected)) < 0.2
        # complex value too: a carries the carrier phase exp(-j 2 pi f tau), so the ratio is
        # R_TM (d / d') exp(-j 2 pi f (tau_ref - tau_los))
        carrier = np.exp(2j * math.pi * F_HZ * (r.tau_s[i_ref] - r.tau_s[i_los]))
        assert abs(ratio * carrier * d_img / d - r_tm[0]) < 2e-3
        # reflection point: departure elevation of the image path
        assert abs(r.theta_t[i_ref] - (math.pi / 2 + math.atan2(ht + hr, dxs[k]))) < 1e-3


# ---------------------------------------------------------------------------------------- (c) wall -> NLOS


def test_wall_blocks_geometric_los(tmp_path):
    wall = quad([[50, -20, 0], [50, 20, 0], [50, 20, 40], [50, -20, 40]])
    xml = build_scene(tmp_path, {"ground": (ground(), "concrete", 0.2), "wall": (wall, "metal", 0.1)})
    pts = [(100.0, 0.0, 1.5), (0.0, 100.0, 1.5), (100.0, 5.0, 1.5)]
    tab = trace_links(xml, cells_df([("c", 0, 0, 10, 90, 0)]), rx_df(pts), cfg(max_depth=2)).to_pandas()
    los = dict(zip(tab.rx_id, tab.los, strict=True))
    assert los.get(1) is True or los.get(1) == True  # noqa: E712 - numpy bool
    for rid in (0, 2):
        if rid in los:  # metal wall: only paths around it (ground/none) may remain
            assert not los[rid]
            row = tab[tab.rx_id == rid].iloc[0]
            assert all(len(i) > 0 for i in row.interactions)  # no direct path through the wall
    # the LOS link's first path arrives at d/c
    r = tab[tab.rx_id == 1].iloc[0]
    assert abs(min(r.tau_s) - r.los_distance_m / C) < 1e-10


# --------------------------------------------------------------------------------- (d) sector orientation


def tr38901_gain_db(theta: float, phi: float) -> float:
    """3GPP TR 38.901 Table 7.3-1 element gain (dBi) at local zenith/azimuth angles (radians)."""
    th, ph = math.degrees(theta), math.degrees(phi)
    a_v = -min(12 * ((th - 90) / 65) ** 2, 30)
    a_h = -min(12 * (ph / 65) ** 2, 30)
    return 8.0 - min(-(a_v + a_h), 30)


def theta_hat(theta: float, phi: float) -> np.ndarray:
    return np.array([math.cos(theta) * math.cos(phi), math.cos(theta) * math.sin(phi), -math.sin(theta)])


def sector_gain_db(direction: np.ndarray, azimuth_deg: float, tilt_deg: float) -> float:
    """Gain (dB) toward ``direction`` of a V-polarised TR 38.901 element seen by a vertical (theta) receiver.

    TR 38.901 §7.1: bearing alpha = 90 deg - azimuth (counter-clockwise from +x), downtilt beta (positive
    turns the boresight below the horizon: R = Rz(alpha) Ry(beta), Ry rotating x toward -z); local angles
    from R^T d (eq. 7.1-7), element gain from Table 7.3-1, and the field direction R theta_hat'(local)
    projected on the receiver's theta_hat (polarisation mismatch of the tilted element, eq. 7.1-11).
    """
    al, be = math.radians(90 - azimuth_deg), math.radians(tilt_deg)
    rz = np.array([[math.cos(al), -math.sin(al), 0], [math.sin(al), math.cos(al), 0], [0, 0, 1]])
    ry = np.array([[math.cos(be), 0, math.sin(be)], [0, 1, 0], [-math.sin(be), 0, math.cos(be)]])
    rot = rz @ ry
    u = direction / np.linalg.norm(direction)
    v = rot.T @ u
    th_l, ph_l = math.acos(np.clip(v[2], -1, 1)), math.atan2(v[1], v[0])
    th_g, ph_g = math.acos(np.clip(u[2], -1, 1)), math.atan2(u[1], u[0])
    pol = abs(float(theta_hat(th_g, ph_g) @ (rot @ theta_hat(th_l, ph_l))))
    return tr38901_gain_db(th_l, ph_l) + 20 * math.log10(pol)


def test_sector_orientation_azimuth_and_tilt(ground_xml):
    tx = np.array([0.0, 0.0, 30.0])
    pts = [(120.0, 0.0, 1.5), (0.0, 120.0, 1.5), (25.0, 0.0, 1.5)]  # east, north, steeply below to the east
    sectors = [("east", 90, 0), ("west", 270, 0), ("north", 0, 0), ("east_down", 90, 30), ("east_up", 90, -30)]
    c = cfg(max_depth=0, antenna_pattern="tr38901")
    tab = trace_links(ground_xml, cells_df([(n, *tx, az, t) for n, az, t in sectors]), rx_df(pts), c).to_pandas()
    g = {(r.tx_id, r.rx_id): float(r.path_gain_db) for r in tab.itertuples()}
    # pointed at vs away from the receiver
    assert g[("east", 0)] > g[("west", 0)] + 20
    assert g[("north", 1)] > g[("east", 1)] + 5
    assert g[("east", 1)] < g[("north", 1)]
    # a tilted-down sector has more gain below the horizon than one tilted up
    assert g[("east_down", 2)] > g[("east", 2)] > g[("east_up", 2)]
    # and every LOS gain equals Friis + the TR 38.901 element pattern at the local angles
    for (cell, rid), gain in g.items():
        _, az, tilt = next(s for s in sectors if s[0] == cell)
        d = np.asarray(pts[rid]) - tx
        friis = 20 * math.log10(LAM / (4 * math.pi * np.linalg.norm(d)))
        assert abs(gain - (friis + sector_gain_db(d, az, tilt))) < 0.1, (cell, rid)


def test_speed_of_light_constant():
    assert SPEED_OF_LIGHT == C
