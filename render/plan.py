"""Deterministic planning of the trace stage: one task = (cells sharing a carrier, a batch of receivers).

Tasks are keyed by a hash of everything that determines their output (scene hash, solver settings, cell
parameters, receiver positions), so a re-run skips finished tasks and Dask keys are stable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from twin.config import TraceConfig
from twin.guards import receiver_batch_size
from twin.keys import task_digest

#: cell columns a trace task depends on
CELL_TRACE_COLUMNS = ("cell_id", "x", "y", "z", "frequency_hz", "azimuth_deg", "tilt_deg", "tx_power_dbm")
#: receiver columns a trace task depends on
RX_TRACE_COLUMNS = ("rx_id", "x", "y", "z", "vx", "vy", "vz")


@dataclass(frozen=True)
class TraceTask:
    key: str  # 20 hex digits
    carrier_hz: float
    cell_ids: tuple[str, ...]
    rx_ids: tuple[int, ...]
    rx_batch: int  # index of the receiver batch (views group CIR shards by it)

    @property
    def n_links(self) -> int:
        return len(self.cell_ids) * len(self.rx_ids)

    @property
    def shard_relpath(self) -> str:
        return f"cir/part-{self.key}.parquet"

    def dask_key(self) -> str:
        return f"trace-{self.key}"


def _rows(df: pd.DataFrame, cols: tuple[str, ...]) -> list:
    out = []
    for rec in df.loc[:, list(cols)].itertuples(index=False):
        out.append([round(v, 6) if isinstance(v, float | np.floating) else (v.item() if hasattr(v, "item") else v) for v in rec])
    return out


def plan_trace_tasks(
    cells: pd.DataFrame,
    receivers: pd.DataFrame,
    config: TraceConfig,
    *,
    scene_hash: str,
    max_links: int = 0,
) -> list[TraceTask]:
    """Plan the trace tasks of a build, in a deterministic order.

    Receivers are split into batches of :func:`receiver_batch_size` (by ``rx_id``); within each batch the
    cells are grouped by carrier and split into chunks of ``config.cells_per_task``. ``max_links`` > 0 keeps
    only the first receivers such that cells x receivers <= max_links.
    """
    missing = [c for c in CELL_TRACE_COLUMNS if c not in cells.columns]
    if missing:
        raise ValueError(f"cells table lacks columns {missing}")
    missing = [c for c in RX_TRACE_COLUMNS if c not in receivers.columns]
    if missing:
        raise ValueError(f"receivers table lacks columns {missing}")
    cells = cells.sort_values(["frequency_hz", "cell_id"]).reset_index(drop=True)
    receivers = receivers.sort_values("rx_id").reset_index(drop=True)
    n_cells = len(cells)
    if n_cells == 0 or len(receivers) == 0:
        return []
    if max_links and max_links > 0:
        keep = max(1, max_links // n_cells)
        receivers = receivers.iloc[:keep]
    settings = asdict(config)
    # settings that do not change a task's output are left out of its key
    for k in ("cells_per_task", "receivers_per_task", "min_tasks"):
        settings.pop(k, None)
    tasks: list[TraceTask] = []
    groups = sum(-(-len(g) // config.cells_per_task) for _, g in cells.groupby("frequency_hz", sort=True))
    rpt = receiver_batch_size(len(receivers), groups, config)
    for b, start in enumerate(range(0, len(receivers), rpt)):
        rx = receivers.iloc[start : start + rpt]
        rx_rows = _rows(rx, RX_TRACE_COLUMNS)
        for carrier, group in cells.groupby("frequency_hz", sort=True):
            for cstart in range(0, len(group), config.cells_per_task):
                cg = group.iloc[cstart : cstart + config.cells_per_task]
                key = task_digest("trace/v1", scene_hash, settings, _rows(cg, CELL_TRACE_COLUMNS), rx_rows)
                tasks.append(
                    TraceTask(
                        key=key,
                        carrier_hz=float(carrier),  # type: ignore[arg-type]  # a groupby key: the float carrier
                        cell_ids=tuple(str(c) for c in cg["cell_id"]),
                        rx_ids=tuple(int(r) for r in rx["rx_id"]),
                        rx_batch=b,
                    )
                )
    return tasks
