"""Trace (cell, receiver) links with Sionna RT and return per-link CIR rows in ``twin.schema.CIR_SCHEMA``.

One Sionna ``PathSolver`` call traces every cell x receiver pair of a call (docs/architecture.md "Render"). The channel
coefficients are Sionna's ``Paths.a`` for one reference element per side, with the cell's antenna pattern
and orientation applied: ``sum(|a|^2)`` over the paths of a link is the link's path *gain* (linear, antenna
gains included). The transmit power is NOT folded in: received power [dBm] = ``tx_power_dbm + path_gain_db``.
The stored coefficients are baseband: Sionna's ``a`` times the carrier phase ``exp(-j 2 pi f_c tau)``
(docs/architecture.md "Contracts"), i.e. what ``Paths.cir()`` returns; the CIR of a link is h(t) = sum_i a_i delta(t - tau_i).

Orientation of a cell (3GPP TR 38.901 §7.1 rotation as implemented by Sionna: yaw about z, then pitch
about y, then roll about x; a positive pitch turns the boresight below the horizon):
``yaw = pi/2 - azimuth`` (azimuth clockwise from north, yaw counter-clockwise from +x = east),
``pitch = +tilt`` (downtilt positive down), ``roll = 0``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from twin.config import TraceConfig, config_hash, to_dict
from twin.errors import TwinInputError
from twin.render.solver import path_solver
from twin.schema import CIR_SCHEMA, file_metadata

log = logging.getLogger(__name__)

DRJIT_MAX_ENTRIES = 2**32  # Dr.Jit arrays hold at most 2^32 entries
LOS_EPSILON_M = 1e-3  # the LOS ray test stops this short of both ends (no self-intersection)

CELL_COLUMNS = ("cell_id", "x", "y", "z", "frequency_hz", "azimuth_deg", "tilt_deg", "tx_power_dbm")
RECEIVER_COLUMNS = ("rx_id", "x", "y", "z")
VELOCITY_COLUMNS = ("vx", "vy", "vz")  # m/s; optional, 0 when missing

_TX_PREFIX = "twin-tx-"
_RX_PREFIX = "twin-rx-"


# ----------------------------------------------------------------------------------------------- link ids


def link_id_for(cell_id: str, rx_id: int) -> int:
    """Stable uint64 id of the link (cell_id, rx_id): the first 8 bytes (little endian) of blake2b."""
    h = hashlib.blake2b(f"{cell_id}\x1f{int(rx_id)}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def cell_orientation(azimuth_deg: float, tilt_deg: float) -> tuple[float, float, float]:
    """Sionna orientation (yaw, pitch, roll) in radians of a sector with the given azimuth/downtilt in degrees."""
    return (math.pi / 2 - math.radians(azimuth_deg), math.radians(tilt_deg), 0.0)


# ------------------------------------------------------------------------------------------- validation


def check_table(df: pd.DataFrame, name: str, columns: Sequence[str], id_col: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TwinInputError(f"expected a pandas DataFrame, got {type(df).__name__}", file=name)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TwinInputError(
            f"missing column(s) {', '.join(missing)}",
            file=name,
            field=missing[0],
            fix=f"the {name} table needs columns {', '.join(columns)}",
        )
    if df[id_col].duplicated().any():
        dup = df.loc[df[id_col].duplicated(), id_col].iloc[0]
        raise TwinInputError(f"duplicate {id_col} {dup!r}", file=name, row=str(dup), field=id_col, fix="ids must be unique")
    for c in columns:
        if c == id_col or c == "cell_id":
            continue
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TwinInputError(
                f"value {df[c].iloc[i]!r} is not a finite number",
                file=name,
                row=str(df[id_col].iloc[i]),
                field=c,
                fix=f"give every row a finite {c}",
            )


def _int_ids(receivers: pd.DataFrame) -> np.ndarray:
    ids = pd.to_numeric(receivers["rx_id"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(ids) | (ids != np.round(ids))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TwinInputError(f"rx_id {receivers['rx_id'].iloc[i]!r} is not an integer", file="receivers",
                             row=i + 1, field="rx_id", fix="receiver ids are int64 (see twin.schema.RECEIVER_SCHEMA)")
    return receivers["rx_id"].to_numpy().astype(np.int64)


def _velocities(receivers: pd.DataFrame) -> np.ndarray:
    out = np.zeros((len(receivers), 3))
    for k, c in enumerate(VELOCITY_COLUMNS):
        if c in receivers.columns:
            v = pd.to_numeric(receivers[c], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(v)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TwinInputError(
                    f"value {receivers[c].iloc[i]!r} is not a finite number",
                    file="receivers",
                    row=str(receivers["rx_id"].iloc[i]),
                    field=c,
                    fix="velocities are m/s; use 0 for a static receiver",
                )
            out[:, k] = v
    return out


# -------------------------------------------------------------------------------------------- batching


def plan_batches(n_cells: int, n_rx: int, config: TraceConfig, cap: int = DRJIT_MAX_ENTRIES) -> tuple[int, int]:
    """(cells per solver call, receivers per solver call) so that no Dr.Jit array exceeds ``cap`` entries.

    The path buffers hold ``cells x max_num_paths_per_src`` entries and the paths tensors up to
    ``receivers x cells x max_num_paths_per_src``; the ray samples ``cells x samples_per_src``.
    """
    per_src = max(config.max_num_paths_per_src, config.samples_per_src)
    cb = max(1, min(n_cells, (cap - 1) // per_src))
    rb = max(1, min(n_rx, (cap - 1) // (cb * config.max_num_paths_per_src)))
    return cb, rb


# ----------------------------------------------------------------------------------------------- solver


def _los_mask(scene, tx: np.ndarray, rx: np.ndarray) -> np.ndarray:
    """Geometric LOS for each segment tx[i] -> rx[i] (metres): True when no scene surface lies between them."""
    import mitsuba as mi

    d = rx - tx
    dist = np.linalg.norm(d, axis=1)
    u = d / np.maximum(dist, 1e-12)[:, None]
    o = tx + u * LOS_EPSILON_M
    ray = mi.Ray3f(mi.Point3f(*[mi.Float(o[:, k].astype(np.float32)) for k in range(3)]),
                   mi.Vector3f(*[mi.Float(u[:, k].astype(np.float32)) for k in range(3)]))
    ray.maxt = mi.Float(np.maximum(dist - 2 * LOS_EPSILON_M, 0.0).astype(np.float32))  # type: ignore[assignment]
    hit = np.asarray(scene.mi_scene.ray_test(ray).numpy(), dtype=bool).reshape(-1)
    if hit.size == 1 and len(dist) > 1:
        hit = np.repeat(hit, len(dist))
    return ~hit


def _opaque_point(values: Sequence[float]):
    """A Dr.Jit Point3f held in memory, so kernels do not bake the coordinates in (no recompilation)."""
    import drjit as dr
    import mitsuba as mi

    p = mi.Point3f(*[mi.Float([float(v)]) for v in values])
    dr.make_opaque(p)
    return p


def _opaque_vector(values: Sequence[float]):
    import drjit as dr
    import mitsuba as mi

    v = mi.Vector3f(*[mi.Float([float(x)]) for x in values])
    dr.make_opaque(v)
    return v


def _solve_batch(scene, cells: pd.DataFrame, rx_pos: np.ndarray, rx_vel: np.ndarray, config: TraceConfig):
    """One PathSolver call for cells x receivers. Returns numpy arrays indexed [cell, rx, path] (+ per-source counts)."""
    import sionna.rt as rt

    txs, rxs = [], []
    c: Any  # a row of itertuples (pandas-stubs types its fields as any scalar)
    for i, c in enumerate(cells.itertuples(index=False)):
        tx = rt.Transmitter(
            f"{_TX_PREFIX}{i}",
            position=[0.0, 0.0, 0.0],
            orientation=list(cell_orientation(float(c.azimuth_deg), float(c.tilt_deg))),
            power_dbm=float(c.tx_power_dbm),
        )
        tx.position = _opaque_point((c.x, c.y, c.z))
        tx.orientation = _opaque_point(cell_orientation(float(c.azimuth_deg), float(c.tilt_deg)))
        txs.append(tx)
    for j in range(len(rx_pos)):
        rx = rt.Receiver(f"{_RX_PREFIX}{j}", position=[0.0, 0.0, 0.0])
        rx.position = _opaque_point(rx_pos[j])
        rx.velocity = _opaque_vector(rx_vel[j])
        rxs.append(rx)
    try:
        scene.add(txs + rxs)
        solver, counter = path_solver(count_candidates=True)
        paths = solver(scene, **config.solver_settings().kwargs())
        a_re, a_im = (np.asarray(t.numpy()) for t in paths.a)  # [rx, rx_ant, tx, tx_ant, P]
        a = (a_re[:, 0, :, 0, :] + 1j * a_im[:, 0, :, 0, :]).astype(np.complex128)
        tau = np.asarray(paths.tau.numpy(), dtype=np.float64)  # [rx, tx, P]
        # baseband coefficients with the carrier phase (docs/architecture.md "Contracts"), as Sionna's Paths.cir() returns them
        a = a * np.exp(-2j * np.pi * float(cells["frequency_hz"].iloc[0]) * tau)
        out = {
            "a": a,
            "valid": np.asarray(paths.valid.numpy(), dtype=bool),
            "tau": tau,
            "theta_t": np.asarray(paths.theta_t.numpy()),
            "phi_t": np.asarray(paths.phi_t.numpy()),
            "theta_r": np.asarray(paths.theta_r.numpy()),
            "phi_r": np.asarray(paths.phi_r.numpy()),
            "doppler": np.asarray(paths.doppler.numpy()),
            "inter": np.asarray(paths.interactions.numpy()),  # [D, rx, tx, P]
        }
        per_source = counter.per_source if counter is not None else None
    finally:
        scene.remove([t.name for t in txs] + [r.name for r in rxs])
    # to [cell, rx, P] (and [cell, rx, P, D])
    res = {k: np.swapaxes(v, 0, 1) for k, v in out.items() if k != "inter"}
    inter = out["inter"]
    if inter.ndim == 4 and inter.shape[0] > 0:
        res["inter"] = np.transpose(inter, (2, 1, 3, 0))
    else:
        res["inter"] = np.zeros(res["tau"].shape + (0,), dtype=np.uint8)
    if res["valid"].shape != res["tau"].shape:  # non-synthetic layouts never happen here; guard anyway
        raise RuntimeError(f"unexpected Sionna path tensor shapes {res['valid'].shape} vs {res['tau'].shape}")
    return res, per_source


def _list_array(values: np.ndarray, counts: np.ndarray, typ: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, typ))


def _rows(res: dict, cells: pd.DataFrame, rx_ids: np.ndarray, rx_pos: np.ndarray, los: np.ndarray,
          moving: bool, config: TraceConfig, freq: float) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    valid = res["valid"]  # [C, R, P]
    n_c, n_r, _ = valid.shape
    a = np.where(valid, res["a"], 0)
    gain = np.sum(np.abs(a) ** 2, axis=-1)  # [C, R]
    with np.errstate(divide="ignore"):
        gain_db = 10.0 * np.log10(gain)
    counts = valid.sum(-1)
    keep = (counts > 0) & (gain_db >= config.min_path_gain_db)
    ci, ri = np.nonzero(keep)  # cell-major order
    m = valid[ci, ri]  # [L, P]
    cnt = counts[ci, ri].astype(np.int32)

    def sel(name):
        return res[name][ci, ri][m]

    inter = res["inter"][ci, ri][m]  # [Npaths, D]
    depth = (inter != 0).sum(-1)
    inter_vals = inter[inter != 0].astype(np.uint8)  # row-major: in order along each path
    inner = _list_array(inter_vals, depth, pa.uint8())
    offsets = np.zeros(len(cnt) + 1, dtype=np.int32)
    np.cumsum(cnt, out=offsets[1:])
    interactions = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), inner)

    cell_ids = cells["cell_id"].astype(str).to_numpy()
    txp = cells[["x", "y", "z"]].to_numpy(dtype=float)
    av = sel("a")
    dop = sel("doppler") if moving else np.zeros(int(cnt.sum()), dtype=np.float32)
    cols = {
        "link_id": pa.array([link_id_for(cell_ids[c], int(rx_ids[r])) for c, r in zip(ci, ri, strict=True)], pa.uint64()),
        "tx_id": pa.array(cell_ids[ci], pa.string()),
        "rx_id": pa.array(rx_ids[ri].astype(np.int64), pa.int64()),
        "tx_x": pa.array(txp[ci, 0]), "tx_y": pa.array(txp[ci, 1]), "tx_z": pa.array(txp[ci, 2]),
        "rx_x": pa.array(rx_pos[ri, 0]), "rx_y": pa.array(rx_pos[ri, 1]), "rx_z": pa.array(rx_pos[ri, 2]),
        "frequency_hz": pa.array(np.full(len(ci), freq)),
        "num_paths": pa.array(cnt, pa.int32()),
        "tau_s": _list_array(sel("tau"), cnt, pa.float64()),
        "a_re": _list_array(av.real.astype(np.float32), cnt, pa.float32()),
        "a_im": _list_array(av.imag.astype(np.float32), cnt, pa.float32()),
        "theta_t": _list_array(sel("theta_t").astype(np.float32), cnt, pa.float32()),
        "phi_t": _list_array(sel("phi_t").astype(np.float32), cnt, pa.float32()),
        "theta_r": _list_array(sel("theta_r").astype(np.float32), cnt, pa.float32()),
        "phi_r": _list_array(sel("phi_r").astype(np.float32), cnt, pa.float32()),
        "doppler_hz": _list_array(np.asarray(dop, dtype=np.float32), cnt, pa.float32()),
        "interactions": interactions,
        "los": pa.array(los.reshape(n_c, n_r)[ci, ri], pa.bool_()),
        "los_distance_m": pa.array(np.linalg.norm(txp[ci] - rx_pos[ri], axis=1)),
        "path_gain_db": pa.array(gain_db[ci, ri].astype(np.float32), pa.float32()),
    }
    return pa.table([cols[n] for n in CIR_SCHEMA.names], schema=CIR_SCHEMA), ci, ri


def trace_links(
    scene_xml: str,
    cells: pd.DataFrame,
    receivers: pd.DataFrame,
    config: TraceConfig,
    *,
    scene_hash: str = "",
) -> pa.Table:
    """Trace every (cell, receiver) link of ``scene_xml``; CIR rows.

    One Sionna ``PathSolver`` call per ``config.receivers_per_call`` receivers (all cells of the carrier in each):
    Sionna's candidate de-duplication loses paths as the receivers of one call grow (NVlabs/sionna-rt#76).

    ``cells``: cell_id, x, y, z (antenna, local frame metres), frequency_hz (one value per call),
    azimuth_deg (clockwise from north), tilt_deg (downtilt, positive down), tx_power_dbm.
    ``receivers``: rx_id, x, y, z (metres) and optionally vx, vy, vz (m/s).
    Returns a table in ``CIR_SCHEMA`` (cell-major row order) with one row per link that has at least one
    path and ``path_gain_db >= config.min_path_gain_db``; ``path_gain_db = 10 log10 sum |a|^2`` excludes
    the transmit power. ``los`` is a Mitsuba ray test of the segment tx -> rx, independent of the paths.
    The table's schema metadata records the config (solver settings, seed), its hash and ``scene_hash``.
    """
    if not isinstance(config, TraceConfig):
        raise TypeError(f"config must be a twin.config.TraceConfig, got {type(config).__name__}")
    check_table(cells, "cells", CELL_COLUMNS, "cell_id")
    check_table(receivers, "receivers", RECEIVER_COLUMNS, "rx_id")
    meta = file_metadata(config_hash=config_hash(config), scene_hash=scene_hash, view="cir", config=to_dict(config))
    schema = CIR_SCHEMA.with_metadata(meta)
    if len(cells) == 0 or len(receivers) == 0:
        return schema.empty_table()
    freqs = cells["frequency_hz"].astype(float).unique()
    if len(freqs) != 1:
        raise ValueError(f"all cells of one trace_links call must share frequency_hz; got {sorted(freqs.tolist())}")
    freq = float(freqs[0])
    if freq <= 0:
        raise TwinInputError(f"frequency_hz {freq} is not positive", file="cells", field="frequency_hz",
                             fix="give the carrier in Hz")

    from twin.render.scene_cache import load_scene

    scene = load_scene(scene_xml, freq)  # selects the Mitsuba variant first
    import sionna.rt as rt

    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=config.antenna_pattern, polarization=config.polarization)
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=config.rx_pattern, polarization=config.polarization)
    stale = [n for n in list(scene.transmitters) + list(scene.receivers) if n.startswith((_TX_PREFIX, _RX_PREFIX))]
    if stale:
        scene.remove(stale)

    cells = cells.reset_index(drop=True)
    receivers = receivers.reset_index(drop=True)
    rx_ids = _int_ids(receivers)
    rx_pos = receivers[["x", "y", "z"]].to_numpy(dtype=float)
    rx_vel = _velocities(receivers)
    moving = bool(np.any(rx_vel != 0))
    cb, rb = plan_batches(len(cells), len(receivers), config, cap=DRJIT_MAX_ENTRIES)
    if cb < len(cells) or rb < min(len(receivers), config.receivers_per_call):
        log.info("splitting %d cells x %d receivers into batches of %d x %d (Dr.Jit 2^32 cap)",
                 len(cells), len(receivers), cb, rb)

    rb = min(rb, config.receivers_per_call)  # fewer receivers per call: fewer paths lost to de-duplication
    tables: list[pa.Table] = []
    keys: list[tuple[np.ndarray, np.ndarray]] = []
    # (first cell, first receiver, end receiver) of each solver call still to make; a call whose path buffer came
    # back full is made again as two halves of its receivers (see _solve_split_or_grow)
    todo = [(c0, r0, min(r0 + rb, len(receivers))) for c0 in range(0, len(cells), cb)
            for r0 in range(0, len(receivers), rb)]
    while todo:
        c0, r0, r1 = todo.pop(0)
        cpart = cells.iloc[c0:c0 + cb].reset_index(drop=True)
        sl = slice(r0, r1)
        solved = _solve_split_or_grow(scene, cpart, rx_pos[sl], rx_vel[sl], config)
        if solved is None:  # full: the two halves go first, in order
            mid = (r0 + r1) // 2
            todo[:0] = [(c0, r0, mid), (c0, mid, r1)]
            continue
        res, per_source, used = solved
        _warn_if_full(res, per_source, cpart, used)
        txp = cpart[["x", "y", "z"]].to_numpy(dtype=float)
        n_r = r1 - r0
        los = _los_mask(scene, np.repeat(txp, n_r, axis=0), np.tile(rx_pos[sl], (len(cpart), 1)))
        tab, ci, ri = _rows(res, cpart, rx_ids[sl], rx_pos[sl], los, moving, config, freq)
        tables.append(tab)
        keys.append((ci + c0, ri + r0))
    out = pa.concat_tables(tables)
    if len(tables) > 1:  # sub-batches: restore the cell-major order of one call
        order = np.lexsort((np.concatenate([k[1] for k in keys]), np.concatenate([k[0] for k in keys])))
        out = out.take(pa.array(order))
    return out.replace_schema_metadata(meta)


def _buffer_full(per_source, config: TraceConfig) -> bool:
    return per_source is not None and bool(np.any(np.asarray(per_source) >= config.max_num_paths_per_src))


def _solve_split_or_grow(scene, cells: pd.DataFrame, rx_pos: np.ndarray, rx_vel: np.ndarray, config: TraceConfig):
    """Solve one call; None when a source's path buffer came back full and the receivers should be split.

    A full buffer drops candidates, and which ones depends on how receivers are batched (NVlabs/sionna#1172).
    Candidates are stored per (path, receiver), so half the receivers need about half the buffer: a full call
    of several receivers is made again as two halves (the caller splits), which keeps the buffer, and with it
    the worker's memory, at ``max_num_paths_per_src``. Only a single receiver that still fills it is traced again
    with a 4x larger buffer (:func:`_solve_growing`), after which Dr.Jit's cache of the large blocks is released.
    Returns (result, per-source counts, config used) or None.
    """
    res, per_source = _solve_batch(scene, cells, rx_pos, rx_vel, config)
    if not _buffer_full(per_source, config):
        return res, per_source, config
    if len(rx_pos) > 1:
        log.info("path buffer full at %d per source (%d cells x %d receivers): tracing the receivers in two halves",
                 config.max_num_paths_per_src, len(cells), len(rx_pos))
        return None
    out = _solve_growing(scene, cells, rx_pos, rx_vel, config, first=(res, per_source))
    if out[2] is not config:
        _release_cached_memory()
    return out


def _release_cached_memory() -> None:
    """Give Dr.Jit's cached free blocks back to the OS (a grown path buffer would otherwise stay resident)."""
    import drjit as dr

    dr.flush_malloc_cache()


def _solve_growing(scene, cells: pd.DataFrame, rx_pos: np.ndarray, rx_vel: np.ndarray, config: TraceConfig,
                   first: tuple[dict, Any]):
    """While a source's path buffer came back full, solve again with a 4x larger buffer (nothing dropped).

    ``first``: (result, per-source counts) of the solve with ``config`` already made. The growth stops at
    ``config.max_path_buffer`` and at Dr.Jit's 2^32-entry cap. Returns (result, per-source counts, config used).
    """
    import dataclasses

    used = config
    limit = min(config.max_path_buffer, (DRJIT_MAX_ENTRIES - 1) // max(1, len(cells) * len(rx_pos)))
    res, per_source = first
    while True:
        bigger = min(used.max_num_paths_per_src * 4, limit)
        if not _buffer_full(per_source, used) or bigger <= used.max_num_paths_per_src:
            return res, per_source, used
        log.info("path buffer full at %d per source: tracing again with %d", used.max_num_paths_per_src, bigger)
        used = dataclasses.replace(used, max_num_paths_per_src=bigger)
        del res
        res, per_source = _solve_batch(scene, cells, rx_pos, rx_vel, used)


def _warn_if_full(res: dict, per_source, cells: pd.DataFrame, config: TraceConfig) -> None:
    """Warn when a cell's path buffer hit ``max_num_paths_per_src`` (paths were dropped; NVlabs/sionna#1172)."""
    cap = config.max_num_paths_per_src
    if per_source is not None and len(per_source) == len(cells):
        n = np.asarray(per_source)
    else:
        n = res["valid"].sum(axis=(1, 2))
    full = np.flatnonzero(n >= cap)
    if full.size:
        ids = ", ".join(str(cells["cell_id"].iloc[i]) for i in full[:5])
        log.warning(
            "path buffer full (max_num_paths_per_src=%d) for cell(s) %s: paths were dropped and results depend on "
            "how receivers are batched (NVlabs/sionna issue 1172); raise max_num_paths_per_src or trace fewer "
            "receivers per call", cap, ids,
        )
