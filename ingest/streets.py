"""The OpenStreetMap street network of an area (online, osmnx): the street graph route receivers follow.

The trace stage never goes online; ``twin build`` downloads the graph here (when the source is not offline and
the receivers are on routes) and hands it to :func:`twin.render.receivers.make_receivers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.frame import LocalFrame, project_street_graph


def street_graph_from_osm(
    bbox_lonlat: Sequence[float],
    frame: LocalFrame,
    *,
    network_type: str = "walk",
    cache_dir: str | Path | None = None,
) -> Any:
    """Download the OSM street network of ``bbox_lonlat`` = (west, south, east, north) degrees with osmnx.

    HTTP responses are cached in ``cache_dir`` (default ``$TWIN_CACHE_DIR/osmnx`` or ``~/.cache/twin/osmnx``).
    Returns the graph projected to ``frame`` (:func:`project_street_graph`). Network failures raise
    :class:`TwinInputError` suggesting ``--offline``.
    """
    fix_bbox = "pass (west, south, east, north) in degrees with west < east and south < north"
    try:
        w, s, e, n = (float(v) for v in bbox_lonlat)
    except (TypeError, ValueError):
        raise TwinInputError(
            f"bbox must be 4 numbers, got {bbox_lonlat!r}", field="bbox_lonlat", fix=fix_bbox
        ) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise TwinInputError(f"invalid bbox {bbox_lonlat!r}", field="bbox_lonlat", fix=fix_bbox)
    if not isinstance(frame, LocalFrame):
        raise TwinInputError(
            "frame must be a twin.frame.LocalFrame", field="frame", fix="pass the build's LocalFrame"
        )

    import osmnx as ox
    import requests

    from twin.net import osmnx_session

    errors: list[type[BaseException]] = [requests.exceptions.RequestException, OSError]
    for name in ("InsufficientResponseError", "ResponseStatusCodeError"):
        cls = getattr(getattr(ox, "_errors", None), name, None)
        if cls is not None:
            errors.append(cls)
    try:
        with osmnx_session(cache_dir):
            G = ox.graph_from_bbox((w, s, e, n), network_type=network_type)
    except tuple(errors) as exc:
        raise TwinInputError(
            f"could not download the OSM street network for bbox {(w, s, e, n)}: {type(exc).__name__}: {exc}",
            field="street_graph",
            fix="check the network connection, or run with --offline to build routes over the open space",
        ) from None
    return project_street_graph(G, frame)


__all__ = ["street_graph_from_osm"]
