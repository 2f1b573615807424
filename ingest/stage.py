"""The ingest stage: a building source + a tower file -> OUT/<name>/ (twin.json, scene/, buildings.parquet,
towers.parquet, previews/top.png), written in a staging directory and moved into place at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin import __version__
from twin.config import BuildConfig, config_hash, to_dict
from twin.errors import TwinInputError
from twin.ingest.source import BuildingSource, slug
from twin.io import sha256_file, staging_dir, write_json_atomic
from twin.manifest import now_iso, package_versions


@dataclass
class IngestResult:
    root: Path
    counts: dict[str, Any] = field(default_factory=dict)
    reused: bool = False

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c.get('buildings', 0)} buildings, {c.get('cells', 0)} cells on {c.get('sites', 0)} sites, "
            f"scene {str(c.get('scene_hash', ''))[:12]}"
        )


def towers_path(src: BuildingSource, towers: Path | None) -> Path:
    """The tower CSV of a build: ``--towers``, else the one the city preset ships; TwinInputError otherwise."""
    if towers is not None:
        if not Path(towers).exists():
            raise TwinInputError("file not found", file=towers, field="--towers", fix="pass an existing tower CSV")
        return Path(towers)
    if src.kind == "city":
        from twin.ingest.cities import get_city

        p = get_city(src.value).towers_path()
        if p is not None:
            return p
        raise TwinInputError(
            f"the {src.value} preset ships no tower file",
            field="--towers",
            fix="pass --towers FILE.csv (CellMapper or OpenCelliD layout)",
        )
    raise TwinInputError("a tower file is required for this source", field="--towers", fix="pass --towers FILE.csv (CellMapper or OpenCelliD layout)")


def ingest_inputs_hash(src: BuildingSource, towers_path: Path, config: BuildConfig) -> str:
    """Hash of everything an ingest's output depends on (source, tower file bytes, [ingest], code version)."""
    d = {"source": src.describe(), "towers_sha256": sha256_file(towers_path), "ingest": to_dict(config.ingest), "code": __version__}
    return config_hash(d)


def run_ingest(
    src: BuildingSource,
    out_dir: Path,
    *,
    towers: Path | None = None,
    name: str | None = None,
    config: BuildConfig | None = None,
    strict: bool = False,
    overwrite: bool = False,
) -> IngestResult:
    """Write OUT/<name>/ with twin.json, scene/, buildings.parquet, towers.parquet, previews/top.png."""
    config = config or BuildConfig()
    name = slug(name) if name else src.default_name()
    dest = Path(out_dir) / name
    tpath = towers_path(src, towers)
    if dest.exists() and not overwrite:
        raise TwinInputError(
            "output directory exists",
            file=dest,
            fix="pass --overwrite to replace it, or choose another --out/--name",
        )
    with staging_dir(dest, overwrite=overwrite) as tmp:
        counts = _ingest_into(tmp, name, src, tpath, config, strict)
    return IngestResult(dest, counts)


def _ingest_into(root: Path, name: str, src: BuildingSource, towers_path: Path, config: BuildConfig, strict: bool) -> dict:
    from rich.console import Console

    from twin.ingest import area
    from twin.itu import material_notes

    console = Console(stderr=True, soft_wrap=True, emoji=False)
    t0 = time.perf_counter()
    with console.status(f"ingest {name}: buildings ..."):
        bundle = area.load_area(src, towers_path, config.ingest, strict=strict)
    from twin.guards import check_area

    check_area(bundle.area_bbox_wgs84, config.limits, what=f"{src.kind} {src.value}", field=f"--{src.kind}")
    _report_rows(console, bundle.towers)
    with console.status(f"ingest {name}: scene ..."):
        scene = area.write_bundle(root, bundle, config.ingest)
    counts = {
        "buildings": int(len(bundle.buildings.gdf)),
        "cells": int(len(bundle.towers.cells)),
        "sites": int(bundle.towers.cells["site_id"].nunique()) if len(bundle.towers.cells) else 0,
        "scene_hash": scene.content_hash,
    }
    manifest = {
        "name": name,
        "schema_version": "1",
        "code_version": __version__,
        "created_at": now_iso(),
        "origin": {"lat": bundle.frame.lat0, "lon": bundle.frame.lon0},
        "frame": bundle.frame.to_dict(),
        "area": {"bbox_wgs84": list(bundle.area_bbox_wgs84), "bounds_local": list(bundle.bounds_local)},
        "sources": {
            "buildings": {**src.describe(), "kind_detail": bundle.building_source},
            "towers": {"path": str(towers_path), "sha256": sha256_file(towers_path), "layout": bundle.towers.layout,
                       "note": bundle.towers_note},
            "licences": bundle.licences,
        },
        "versions": package_versions(),
        "config": {"ingest": to_dict(config.ingest)},
        "ingest_inputs_hash": ingest_inputs_hash(src, towers_path, config),
        "scene": {"xml": "scene/scene.xml", "hash": scene.content_hash, "source": bundle.scene_source},
        "streets": ({"path": "streets.parquet", "ways": int(len(bundle.streets)),
                     "source": bundle.streets.attrs.get("source", "")}
                    if bundle.streets is not None and len(bundle.streets) else None),
        "stages": {
            "ingest": {
                "status": "done",
                "seconds": round(time.perf_counter() - t0, 2),
                "building_report": bundle.buildings.report,
                "tower_rows": area.towers_summary(bundle.towers),
                "materials_extrapolated_hz": material_notes(
                    list(bundle.buildings.gdf["material"]) + [config.ingest.ground_material, "marble", "metal", "wood"]
                    if bundle.bundled_xml else list(bundle.buildings.gdf["material"]) + [config.ingest.ground_material],
                    bundle.towers.cells["frequency_hz"].tolist()),
                **counts,
                "updated_at": now_iso(),
            }
        },
    }
    write_json_atomic(root / "twin.json", manifest)
    return counts


def _report_rows(console, towers, limit: int = 10) -> None:
    """Print the tower rows that were skipped or repaired (file, row, field, why, fix); all are in twin.json."""
    from rich.markup import escape

    bad = [r for r in towers.reports if r.status != "kept"]
    if not bad:
        return
    c = towers.counts
    console.print(f"[yellow]{towers.source_file}: {c.get('skipped', 0)} row(s) skipped, {c.get('repaired', 0)} repaired "
                  f"(of {c.get('rows', len(towers.reports))}); --strict makes these errors[/]", highlight=False)
    for r in bad[:limit]:
        fld = f" field '{r.field}'" if r.field else ""
        console.print(escape(f"  row {r.row}{fld}: {r.status}: {r.reason}" + (f" (fix: {r.fix})" if r.fix and r.status == "skipped" else "")),
                      highlight=False)
    if len(bad) > limit:
        console.print(f"  ... {len(bad) - limit} more in twin.json (stages.ingest.tower_rows)", highlight=False)


__all__ = ["IngestResult", "ingest_inputs_hash", "run_ingest", "towers_path"]
