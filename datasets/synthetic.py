"""Hand-made input tables (CIR rows, towers) for tests and benches, in the schemas a build writes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twin.constants import SPEED_OF_LIGHT


def make_cir_table(links: list[dict]) -> pa.Table:
    """CIR rows (``twin.schema.CIR_SCHEMA``) from dicts, for tests, examples and benches.

    Each dict needs ``link_id, tx_id, rx_id, tau_s, a`` (complex sequence); optional: positions ``tx``/``rx``
    (3-tuples, metres), ``frequency_hz``, ``theta_r``, ``phi_r``, ``theta_t``, ``phi_t`` (radians, per path),
    ``los`` and ``los_distance_m`` (default: LOS at the first path's delay).
    """
    from twin.schema import CIR_SCHEMA

    cols: dict[str, list] = {name: [] for name in CIR_SCHEMA.names}
    for d in links:
        tau = [float(t) for t in d["tau_s"]]
        a = np.asarray(d["a"], dtype=np.complex64).reshape(-1)
        n = len(tau)
        tx = d.get("tx", (0.0, 0.0, 25.0))
        rx = d.get("rx", (100.0, 0.0, 1.5))
        cols["link_id"].append(int(d["link_id"]))
        cols["tx_id"].append(str(d["tx_id"]))
        cols["rx_id"].append(int(d["rx_id"]))
        for k, v in zip(("tx_x", "tx_y", "tx_z"), tx, strict=True):
            cols[k].append(float(v))
        for k, v in zip(("rx_x", "rx_y", "rx_z"), rx, strict=True):
            cols[k].append(float(v))
        cols["frequency_hz"].append(float(d.get("frequency_hz", 3.5e9)))
        cols["num_paths"].append(n)
        cols["tau_s"].append(tau)
        cols["a_re"].append(a.real.tolist())
        cols["a_im"].append(a.imag.tolist())
        for k in ("theta_t", "phi_t", "theta_r", "phi_r"):
            cols[k].append([float(v) for v in d.get(k, [np.pi / 2] * n)])
        cols["doppler_hz"].append([0.0] * n)
        cols["interactions"].append([[0]] * n)
        cols["los"].append(bool(d.get("los", True)))
        cols["los_distance_m"].append(float(d.get("los_distance_m", (min(tau) if tau else 0.0) * SPEED_OF_LIGHT)))
        cols["path_gain_db"].append(float(10 * np.log10(max(float(np.sum(np.abs(a) ** 2)), 1e-300))))
    return pa.table({k: pa.array(v, type=CIR_SCHEMA.field(k).type) for k, v in cols.items()}, schema=CIR_SCHEMA)


def make_towers_table(cells: list[dict]) -> pa.Table:
    """A towers table (the view columns of ``twin.schema.TOWER_COLUMNS``) from dicts with ``cell_id`` and
    optional ``pci`` (-1), ``frequency_hz`` (2.1 GHz), ``bandwidth_hz`` (10 MHz), ``tx_power_dbm`` (46), x, y, z."""
    keys = {"pci": -1, "frequency_hz": 2.1e9, "bandwidth_hz": 10e6, "tx_power_dbm": 46.0, "x": 0.0, "y": 0.0, "z": 25.0}
    out = {"cell_id": pa.array([str(c["cell_id"]) for c in cells], pa.string())}
    for k, dv in keys.items():
        vals = [c.get(k, dv) for c in cells]
        out[k] = pa.array(vals, pa.int32() if k == "pci" else pa.float64())
    return pa.table(out)


__all__ = ["make_cir_table", "make_towers_table"]
