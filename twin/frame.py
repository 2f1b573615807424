"""The local Cartesian frame of a twin: metres, x east, y north, z up, origin at (lat0, lon0).

A transverse Mercator projection centred on the origin (scale 1): within a few km the distortion is below
1e-6, so local distances equal ground distances for ray tracing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from pyproj import CRS, Transformer


@dataclass(frozen=True)
class LocalFrame:
    """Local frame anchored at ``lat0``/``lon0`` (degrees, WGS84)."""

    lat0: float
    lon0: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lat0", float(self.lat0))
        object.__setattr__(self, "lon0", float(self.lon0))
        if not (-90.0 <= self.lat0 <= 90.0) or not (-180.0 <= self.lon0 <= 180.0):
            raise ValueError(f"LocalFrame origin out of range: lat0={self.lat0}, lon0={self.lon0}")

    @property
    def proj4(self) -> str:
        return (
            f"+proj=tmerc +lat_0={self.lat0!r} +lon_0={self.lon0!r} +k=1 +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs"
        )

    @cached_property
    def crs(self) -> CRS:
        return CRS.from_proj4(self.proj4)

    @cached_property
    def _fwd(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)

    @cached_property
    def _inv(self) -> Transformer:
        return Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    def to_local(self, lon, lat):
        """(lon, lat) degrees -> (x, y) metres."""
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return x, y

    def to_wgs84(self, x, y):
        """(x, y) metres -> (lon, lat) degrees."""
        lon, lat = self._inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return lon, lat

    def to_dict(self) -> dict:
        return {"lat0": self.lat0, "lon0": self.lon0, "proj4": self.proj4, "axes": "x east, y north, z up; metres"}

    @classmethod
    def from_dict(cls, d: dict) -> LocalFrame:
        return cls(float(d["lat0"]), float(d["lon0"]))
