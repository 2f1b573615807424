"""Inputs checked when a command starts, before any stage reads, traces, writes or removes anything.

The config is checked by :func:`twin.config.load_build_config`; this module adds the command-line paths:
the output directory and the input files. Each problem is a :class:`~twin.errors.TwinInputError` (exit 2)
naming the option, the path and the fix.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from twin.config import BuildConfig, IngestConfig
from twin.errors import TwinInputError


def check_out_dir(out: str | os.PathLike, *, option: str = "--out") -> Path:
    """``out`` is a directory or can become one: no file in its place or on the way to it, writable."""
    p = Path(out)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise TwinInputError(
                    "is a file, not a directory" if q == p else f"{q} is a file, so {p} cannot be a directory",
                    file=p, field=option, fix=f"pass a directory to {option} (the twin is written to {option}/<name>/)",
                )
            if not os.access(q, os.W_OK | os.X_OK):
                raise TwinInputError(
                    f"{q} is not writable", file=p, field=option,
                    fix=f"pass a writable directory to {option}, or fix its permissions",
                )
            break
    return p


def check_input_files(
    *,
    towers: str | os.PathLike | None = None,
    osm_file: str | os.PathLike | None = None,
    ingest: IngestConfig | None = None,
    strict: bool = False,
) -> None:
    """The input files exist and are readable; the tower file shows an accepted layout (first lines), and a
    small one (under the streaming size) has a usable row, read with ``ingest`` and ``strict`` as the ingest
    will (rows outside the area are judged later, once the area is known)."""
    if osm_file is not None:
        p = Path(osm_file)
        if not p.exists():
            raise TwinInputError("file not found", file=p, field="--osm-file", fix="check the path of the OSM extract")
        if not p.is_file():
            raise TwinInputError("is not a file", file=p, field="--osm-file", fix="pass a .osm, .osm.pbf, .geojson or GeoParquet file")
        if not os.access(p, os.R_OK):
            raise TwinInputError("is not readable", file=p, field="--osm-file", fix="fix its permissions")
    if towers is not None:
        from twin.ingest import tower_stream
        from twin.ingest.towers import check_tower_file, read_towers

        check_tower_file(towers)
        if Path(towers).stat().st_size < tower_stream.STREAM_MIN_BYTES:
            read_towers(towers, None, ingest or IngestConfig(), strict=strict)


def with_large_area(config: BuildConfig, large_area: bool) -> BuildConfig:
    """``config`` with the area cap lifted when ``--large-area`` was given."""
    if not large_area:
        return config
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, max_area_km2=0.0))


def check_source(src: Any, config: BuildConfig) -> None:
    """What can be judged of the building source before any download: the area of a ``--bbox``."""
    from twin.guards import check_area

    if getattr(src, "bbox", None) is not None:
        check_area(src.bbox, config.limits, what=f"--bbox {src.value}", field="--bbox")


def check_scheduler(config: BuildConfig) -> None:
    """An existing Dask scheduler ([dask] scheduler_address or DASK_SCHEDULER_ADDRESS) answers on its TCP port."""
    from urllib.parse import urlparse

    from twin.net import reachable

    address = config.dask.scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        return
    u = urlparse(address if "://" in address else f"tcp://{address}")
    if u.scheme in ("tcp", "tls") and u.hostname and u.port and not reachable(f"http://{u.hostname}:{u.port}", 5.0):
        raise TwinInputError(
            f"no Dask scheduler answers at {address}",
            field="scheduler_address",
            fix="start it (`dask scheduler`), correct [dask] scheduler_address / --scheduler-address / "
            "DASK_SCHEDULER_ADDRESS, or leave it unset for a local cluster",
        )
