"""Reference ways of tracing the same links with plain Sionna RT, for ``twin bench trace`` (docs/architecture.md "Benches").

* :func:`bare_sionna_links`: the way the Sionna RT documentation and tutorials do it: ``load_scene``, add a
  ``Transmitter`` per cell and a ``Receiver`` per point, one ``PathSolver()(scene, ...)`` call, then
  ``paths.cir()`` for ``a, tau``.
* :func:`naive_loop_links`: the way many dataset scripts do it: one receiver, moved between solver calls
  (``rx.position = ...``), one ``PathSolver`` call per position.

Both use the same settings as :func:`twin.render.trace.trace_links` (``TraceConfig``, synthetic arrays, the
cells' orientation) and count links with at least one path. ``seconds`` is the wall-clock time of the
tracing (devices, solver, CIR extraction), not of loading the scene, which every method does once.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from twin.config import TraceConfig
from twin.render.trace import CELL_COLUMNS, RECEIVER_COLUMNS, cell_orientation, check_table


def _prepare(scene_xml: str, cells: pd.DataFrame, receivers: pd.DataFrame, config: TraceConfig):
    if not isinstance(config, TraceConfig):
        raise TypeError(f"config must be a twin.config.TraceConfig, got {type(config).__name__}")
    check_table(cells, "cells", CELL_COLUMNS, "cell_id")
    check_table(receivers, "receivers", RECEIVER_COLUMNS, "rx_id")
    freqs = cells["frequency_hz"].astype(float).unique()
    if len(freqs) != 1:
        raise ValueError(f"all cells must share frequency_hz; got {sorted(freqs.tolist())}")
    from twin.render.scene_cache import setup_backend

    setup_backend()
    import sionna.rt as rt

    scene = rt.load_scene(scene_xml)  # a fresh scene, as the tutorials do (no twin cache)
    scene.frequency = float(freqs[0])
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=config.antenna_pattern, polarization=config.polarization)
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=config.rx_pattern, polarization=config.polarization)
    c: Any  # a row of itertuples
    for i, c in enumerate(cells.itertuples(index=False)):
        scene.add(rt.Transmitter(f"tx{i}", position=[float(c.x), float(c.y), float(c.z)],
                                 orientation=list(cell_orientation(float(c.azimuth_deg), float(c.tilt_deg)))))
    return scene


def _bare_solver():
    """A plain ``sionna.rt.PathSolver``, as the Sionna RT tutorials make it."""
    import sionna.rt as rt

    return rt.PathSolver()


def _solve(scene, config: TraceConfig, solver=None):
    return (solver or _bare_solver())(scene, **config.solver_settings().kwargs())


def _links_with_paths(paths) -> int:
    a, tau = paths.cir(normalize_delays=False, out_type="numpy")  # a: [rx, rx_ant, tx, tx_ant, P, T]
    if a.shape[-2] == 0:
        return 0
    power = np.sum(np.abs(a[:, 0, :, 0, :, 0]) ** 2, axis=-1)  # [rx, tx]
    return int(np.count_nonzero(power > 0))


def bare_sionna_links(scene_xml: str, cells: pd.DataFrame, receivers: pd.DataFrame,
                      config: TraceConfig) -> tuple[int, float]:
    """(links with >= 1 path, seconds) tracing all cells x receivers in one plain Sionna RT call."""
    scene = _prepare(scene_xml, cells, receivers, config)
    import sionna.rt as rt

    t0 = time.perf_counter()
    r: Any  # a row of itertuples
    for j, r in enumerate(receivers.itertuples(index=False)):
        v = [float(getattr(r, k, 0.0)) for k in ("vx", "vy", "vz")]
        scene.add(rt.Receiver(f"rx{j}", position=[float(r.x), float(r.y), float(r.z)], velocity=v))
    n = _links_with_paths(_solve(scene, config))
    return n, time.perf_counter() - t0


def naive_loop_links(scene_xml: str, cells: pd.DataFrame, receivers: pd.DataFrame, config: TraceConfig,
                     *, max_receivers: int = 20) -> tuple[int, float]:
    """(links with >= 1 path, seconds) over the first ``max_receivers`` receivers, one solver call each."""
    if isinstance(max_receivers, bool) or not isinstance(max_receivers, int) or max_receivers < 1:
        raise ValueError(f"max_receivers must be a positive integer, got {max_receivers!r}")
    scene = _prepare(scene_xml, cells, receivers, config)
    import sionna.rt as rt

    sub = receivers.iloc[:max_receivers]
    t0 = time.perf_counter()
    rx = None
    n = 0
    solver = _bare_solver()
    r: Any
    for r in sub.itertuples(index=False):
        pos = [float(r.x), float(r.y), float(r.z)]
        if rx is None:
            rx = rt.Receiver("rx", position=pos)
            scene.add(rx)
        else:
            rx.position = pos
        rx.velocity = [float(getattr(r, k, 0.0)) for k in ("vx", "vy", "vz")]
        n += _links_with_paths(_solve(scene, config, solver))
    return n, time.perf_counter() - t0
