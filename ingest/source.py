"""The building source of an ingest: exactly one of a city preset, a place name, a bbox or a file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError
from twin.io import sha256_file


@dataclass(frozen=True)
class BuildingSource:
    """Exactly one building source: a city preset, a place name, a bbox (W,S,E,N degrees) or a file."""

    kind: str  # city | place | bbox | file
    value: str
    offline: bool = False
    bbox: tuple[float, float, float, float] | None = None

    @classmethod
    def from_options(cls, *, city=None, place=None, bbox=None, osm_file=None, offline=False) -> BuildingSource:
        given = [(k, v) for k, v in (("--city", city), ("--place", place), ("--bbox", bbox), ("--osm-file", osm_file)) if v]
        if len(given) != 1:
            raise TwinInputError(
                "give exactly one building source" + (f" (got {', '.join(k for k, _ in given)})" if given else ""),
                field="--city/--place/--bbox/--osm-file",
                fix="e.g. --city paris, --place 'Monaco, Monaco', --bbox 7.41,43.72,7.44,43.75 or --osm-file area.osm.pbf",
            )
        opt, val = given[0]
        if opt == "--city":
            from twin.ingest.cities import get_city

            return cls("city", get_city(str(val)).name, offline)
        if opt == "--place":
            if offline:
                raise TwinInputError("--place needs the network", field="--place", fix="drop --offline, or use --osm-file with a downloaded extract")
            return cls("place", str(val), offline)
        if opt == "--bbox":
            box = parse_bbox(str(val))
            if offline:
                raise TwinInputError("--bbox downloads the buildings from OpenStreetMap: it needs the network",
                                     field="--bbox", fix="drop --offline, or use --osm-file with a downloaded extract")
            return cls("bbox", str(val), offline, box)
        p = Path(val)
        if not p.exists():
            raise TwinInputError("file not found", file=p, field="--osm-file", fix="pass an existing .osm, .osm.pbf, .geojson or GeoParquet file")
        return cls("file", str(p), offline)

    def default_name(self) -> str:
        if self.kind == "city":
            return self.value
        if self.kind == "file":
            stem = Path(self.value).name.split(".")[0]
            return slug(stem)
        if self.kind == "place":
            return slug(self.value.split(",")[0])
        return "bbox-" + hashlib.sha256(self.value.encode()).hexdigest()[:8]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "value": self.value, "offline": self.offline}
        if self.kind == "file":
            d["sha256"] = sha256_file(self.value)
        return d


def slug(s: str) -> str:
    """A directory name from free text: lower case, runs of other characters -> ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", s.strip().lower()).strip("_") or "twin"


def parse_bbox(s: str) -> tuple[float, float, float, float]:
    """``"W,S,E,N"`` in degrees -> a tuple; TwinInputError naming ``--bbox`` otherwise."""
    parts = [p.strip() for p in s.split(",")]
    fix = "write --bbox W,S,E,N in degrees, e.g. 2.289,48.870,2.301,48.877"
    if len(parts) != 4:
        raise TwinInputError(f"expected 4 numbers, got {len(parts)}", field="--bbox", fix=fix)
    try:
        w, s_, e, n = (float(p) for p in parts)
    except ValueError:
        raise TwinInputError(f"not numbers: {s!r}", field="--bbox", fix=fix) from None
    if not (-180 <= w < e <= 180 and -90 <= s_ < n <= 90):
        raise TwinInputError(f"not a valid W,S,E,N box: {s!r}", field="--bbox", fix=fix)
    return (w, s_, e, n)


__all__ = ["BuildingSource", "parse_bbox", "slug"]
