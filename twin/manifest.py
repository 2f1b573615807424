"""``twin.json``: the manifest of a twin directory (docs/architecture.md "Contracts").

name, origin and local frame, sources (with versions and hashes), resolved config, code version, and per-stage
status with counts. Always rewritten atomically.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from twin import __version__
from twin.errors import TwinInputError
from twin.io import write_json_atomic

MANIFEST = "twin.json"
_PACKAGES = ("sionna-rt", "mitsuba", "drjit", "osmnx", "osmium", "geopandas", "shapely", "pyproj", "pyarrow", "dask", "distributed", "numpy", "torch")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "twin": __version__}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read_manifest(root: str | Path) -> dict[str, Any]:
    p = Path(root) / MANIFEST
    if not p.exists():
        raise TwinInputError(
            "not a twin directory (no twin.json)",
            file=Path(root),
            fix="pass the directory a build wrote, e.g. OUT/paris after `twin build --city paris --out OUT`",
        )
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise TwinInputError(f"twin.json is not valid JSON ({e})", file=p, fix="re-run the build with --overwrite") from None


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(root) / MANIFEST, manifest)


def set_stage(root: str | Path, stage: str, **info: Any) -> dict[str, Any]:
    """Record a stage's status (``status``, counts, timings) in the manifest; returns the new manifest."""
    m = read_manifest(root)
    st = m.setdefault("stages", {})
    entry = dict(st.get(stage, {}))
    entry.update(info)
    entry["updated_at"] = now_iso()
    st[stage] = entry
    write_manifest(root, m)
    return m
