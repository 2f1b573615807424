"""Publish a twin directory to any fsspec URL with a dataset card (DESIGN §7).

What is copied: every shard the catalog lists (orphans and temporary files are not), the current catalog
snapshot (as ``catalog/snapshots/<name>``, ``catalog/catalog.parquet`` and the ``CURRENT`` pointer, written
last), ``twin.json``, ``previews/*``, the build tables (``buildings.parquet``, ``towers.parquet``,
``receivers.parquet``) when present, and ``DATASET_CARD.md`` + ``dataset_card.json``. Every copied file is
read back from the destination and its sha256 compared with the catalog (shards) or the source (others).
Paths inside the published copy are relative, so it is itself a twin directory that ``twin catalog verify``
accepts. A local destination is assembled in a staging folder and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from twin.catalog.core import CATALOG_DIR, POINTER_NAME, SNAPSHOT_DIR, Catalog, _check_relpath
from twin.errors import TwinError, TwinInputError
from twin.io import staging_dir

MANIFEST_NAME = "twin.json"
CARD_MD = "DATASET_CARD.md"
CARD_JSON = "dataset_card.json"
BUILD_TABLES = ("buildings.parquet", "towers.parquet", "receivers.parquet")
PREVIEW_DIR = "previews"
_CHUNK = 1 << 20

#: Licence notes every card carries (DESIGN §7). The tower-data licence comes from twin.json.
OSM_LICENCE = {
    "component": "building footprints and heights from OpenStreetMap, and data derived from them",
    "license": "ODbL-1.0",
    "attribution": "© OpenStreetMap contributors",
    "url": "https://www.openstreetmap.org/copyright",
}
SIONNA_LICENCE = {
    "component": "scenes bundled with Sionna RT (sionna.rt.scene.*), when the build used one",
    "license": "Apache-2.0",
    "attribution": "NVIDIA Sionna RT",
    "url": "https://github.com/NVlabs/sionna-rt",
}
TOWER_LICENCE_UNKNOWN = (
    "not stated in twin.json: check the terms of the tower CSV used (OpenCelliD data is CC BY-SA 4.0; "
    "CellMapper exports are not openly licensed; the project's bundled Paris towers are synthetic)"
)


class PublishError(TwinError):
    """Publishing failed after it started (e.g. a checksum differs after the copy)."""

    exit_code = 1


# ------------------------------------------------------------------------------------------------ helpers


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """``root/twin.json`` parsed, or None when absent; a malformed file raises TwinInputError."""
    p = Path(root) / MANIFEST_NAME
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise TwinInputError(
            f"cannot read the manifest: {e}", file=p, field="twin.json", fix="rebuild the twin"
        ) from None
    if not isinstance(data, dict):
        raise TwinInputError(
            "the manifest is not a JSON object", file=p, field="twin.json", fix="rebuild the twin"
        )
    return data


def _licence_of(obj: Any) -> str | None:
    if isinstance(obj, Mapping):
        for k in ("license", "licence", "license_name"):
            if isinstance(obj.get(k), str) and obj[k]:
                return obj[k]
    return None


def _licence_table(manifest: Mapping[str, Any]) -> dict[str, str]:
    """``sources.licences`` (or ``licenses``) of twin.json: {component: licence text}."""
    sources = manifest.get("sources")
    if not isinstance(sources, Mapping):
        return {}
    for k in ("licences", "licenses"):
        t = sources.get(k)
        if isinstance(t, Mapping):
            return {str(a): str(b) for a, b in t.items() if b}
    return {}


def tower_licence(manifest: Mapping[str, Any] | None) -> str:
    """The tower data's licence as twin.json records it: ``sources.licences.towers``, a ``license`` key in
    the ``sources.towers`` entry, or a top-level ``towers_license``; else a note saying it is not stated."""
    if not manifest:
        return TOWER_LICENCE_UNKNOWN
    for k in ("tower_license", "towers_license", "tower_licence", "towers_licence"):
        if isinstance(manifest.get(k), str) and manifest[k]:
            return manifest[k]
    for k, v in _licence_table(manifest).items():
        if "tower" in k.lower() or "cell" in k.lower():
            return v
    sources = manifest.get("sources")
    items: list[tuple[str, Any]] = []
    if isinstance(sources, Mapping):
        items = [(str(k), v) for k, v in sources.items()]
    elif isinstance(sources, list):
        fields = ("kind", "type", "name", "role", "path", "file")
        items = [(" ".join(str(v.get(f, "")) for f in fields), v) for v in sources if isinstance(v, Mapping)]
    for key, val in items:
        if "tower" in key.lower() or "cell" in key.lower():
            lic = _licence_of(val)
            if lic:
                return lic
    return TOWER_LICENCE_UNKNOWN


def _sha256_fs(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while b := f.read(_CHUNK):
            h.update(b)
    return h.hexdigest()


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def _copy_verified(src: Path, fs, dst: str, expected_sha: str | None) -> str:
    """Copy ``src`` to ``dst`` on ``fs``, then read ``dst`` back and compare its sha256 with
    ``expected_sha`` (or with the source's own sha256 when None)."""
    parent = dst.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    h = hashlib.sha256()
    with open(src, "rb") as fin, fs.open(dst, "wb") as fout:
        while b := fin.read(_CHUNK):
            h.update(b)
            fout.write(b)
    want = expected_sha or h.hexdigest()
    got = _sha256_fs(fs, dst)
    if got != want:
        where = (
            "the source differs from the catalog"
            if h.hexdigest() != want
            else "the copy differs from the source"
        )
        raise PublishError(
            f"publish: sha256 mismatch for {dst} ({where}); run `twin catalog verify` on the build"
        )
    return got


def _write_verified(fs, dst: str, data: bytes) -> None:
    parent = dst.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    with fs.open(dst, "wb") as f:
        f.write(data)
    if _sha256_fs(fs, dst) != hashlib.sha256(data).hexdigest():
        raise PublishError(f"publish: sha256 mismatch for {dst} after writing it")


# ------------------------------------------------------------------------------------------- dataset card


def _field_dict(f: pa.Field) -> dict[str, Any]:
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (f.metadata or {}).items()}
    return {"name": f.name, "type": str(f.type), "nullable": f.nullable, "metadata": meta}


def build_card(
    root: Path, table: pa.Table, manifest: Mapping[str, Any] | None, *, snapshot: str, seq: int
) -> dict:
    """The dataset card as a JSON-able dict: provenance, per-view sizes and schemas, licences, loading."""
    man = dict(manifest or {})
    views: dict[str, Any] = {}
    for view in sorted(set(table["view"].to_pylist())):
        rows = [r for r in table.to_pylist() if r["view"] == view]
        first = root / rows[0]["path"]
        schema = pq.read_schema(first)
        file_meta = {
            k.decode(errors="replace"): v.decode(errors="replace")
            for k, v in (schema.metadata or {}).items()
            if k.startswith(b"twin.") and k != b"twin.config"
        }
        dirs = sorted({r["path"].rsplit("/", 1)[0] if "/" in r["path"] else "." for r in rows})
        views[view] = {
            "shards": len(rows),
            "rows": sum(r["rows"] for r in rows),
            "bytes": sum(r["bytes"] for r in rows),
            "data_files": [f"{d}/*.parquet" if d != "." else "*.parquet" for d in dirs],
            "schema_fingerprints": sorted({r["schema_fingerprint"] for r in rows}),
            "file_metadata": file_meta,
            "columns": [_field_dict(f) for f in schema],
        }
    datasets = sorted({d for d in table["dataset"].to_pylist() if d})
    cities = sorted({c for c in table["city"].to_pylist() if c})
    return {
        "name": man.get("name") or (datasets[0] if datasets else root.resolve().name),
        "city": cities[0] if len(cities) == 1 else cities,
        "published_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "catalog": {
            "snapshot": snapshot,
            "seq": seq,
            "shards": table.num_rows,
            "path": f"{CATALOG_DIR}/catalog.parquet",
        },
        "provenance": {
            "manifest": MANIFEST_NAME if manifest is not None else None,
            "origin": man.get("origin"),
            "sources": man.get("sources"),
            "config": man.get("config"),
            "code_version": man.get("code_version"),
            "created_at": man.get("created_at"),
            "versions": man.get("versions"),
            "scene": man.get("scene"),
            "area": man.get("area"),
            "config_hashes": sorted({h for h in table["config_hash"].to_pylist() if h}),
            "code_versions": sorted({h for h in table["code_version"].to_pylist() if h}),
            "scene_hashes": sorted({h for h in table["scene_hash"].to_pylist() if h}),
        },
        "views": views,
        "licenses": [
            OSM_LICENCE,
            SIONNA_LICENCE,
            {"component": "cell tower data", "license": tower_licence(manifest)},
            {"component": "twin code that produced the dataset", "license": "Apache-2.0"},
            *(
                {"component": f"{k} (as recorded by the build in twin.json)", "license": v}
                for k, v in sorted(_licence_table(man).items())
            ),
        ],
        "total": {
            "shards": table.num_rows,
            "rows": int(sum(table["rows"].to_pylist())),
            "bytes": int(sum(table["bytes"].to_pylist())),
        },
    }


def _yaml_str(s: Any) -> str:
    return json.dumps(str(s))  # a JSON string is a valid YAML scalar


def render_card_markdown(card: Mapping[str, Any]) -> str:
    """DATASET_CARD.md (HuggingFace-style YAML header with one config per view, then the card)."""
    lines = [
        "---",
        "license: odbl",
        f"pretty_name: {_yaml_str('twin ' + str(card['name']))}",
        "tags:",
        "- wireless",
        "- ray-tracing",
        "- sionna",
        "- localization",
        "- channel-impulse-response",
        "configs:",
    ]
    for view, v in card["views"].items():
        lines.append(f"- config_name: {_yaml_str(view)}")
        lines.append("  data_files:")
        lines.append("  - split: train")
        lines.append("    path:")
        lines += [f"    - {_yaml_str(p)}" for p in v["data_files"]]
    lines += ["---", "", f"# twin dataset: {card['name']}", ""]
    city = card["city"] if isinstance(card["city"], str) else ", ".join(card["city"])
    prov = card["provenance"]
    lines += [
        f"Ray-traced cellular channel dataset of **{city or card['name']}**, produced by `twin` "
        f"(code {', '.join(prov['code_versions']) or prov.get('code_version') or 'unknown'}). "
        f"Published {card['published_at']} from catalog snapshot `{card['catalog']['snapshot']}` "
        f"(seq {card['catalog']['seq']}).",
        "",
        "## Contents",
        "",
        "| view | shards | rows | bytes | files |",
        "|---|---:|---:|---:|---|",
    ]
    for view, v in card["views"].items():
        lines.append(
            f"| `{view}` | {v['shards']} | {v['rows']} | {v['bytes']} | {', '.join('`' + p + '`' for p in v['data_files'])} |"
        )
    t = card["total"]
    lines += [f"| **total** | {t['shards']} | {t['rows']} | {t['bytes']} | |", ""]
    lines += ["## Provenance", ""]
    if prov["manifest"]:
        lines.append("The build manifest `twin.json` is included. Key facts:")
    else:
        lines.append("No `twin.json` manifest was present in the build.")
    lines += [
        "",
        f"- origin (lat, lon): `{json.dumps(prov['origin'])}`",
        f"- producer config hashes: {', '.join('`' + h + '`' for h in prov['config_hashes']) or 'none recorded'}",
        f"- scene hashes: {', '.join('`' + h + '`' for h in prov['scene_hashes']) or 'none recorded'}",
        "",
        "Sources:",
        "",
        "```json",
        json.dumps(prov["sources"], indent=2, sort_keys=True, default=str),
        "```",
        "",
        "Package versions:",
        "",
        "```json",
        json.dumps(prov.get("versions"), indent=2, sort_keys=True, default=str),
        "```",
        "",
        "Resolved configuration:",
        "",
        "```json",
        json.dumps(prov["config"], indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Schemas",
        "",
        "Units: metres (local frame x east, y north, z up), seconds, Hz, dBm, dB, radians unless a name ends "
        "in `_deg`. Tensor columns are nested fixed-size lists; their shape and axis names are in the field "
        "metadata.",
        "",
    ]
    for view, v in card["views"].items():
        lines += [f"### `{view}`", "", "| column | type | field metadata |", "|---|---|---|"]
        for c in v["columns"]:
            meta = ", ".join(f"{k}={val}" for k, val in c["metadata"].items())
            lines.append(f"| `{c['name']}` | `{c['type']}` | {meta} |")
        lines.append("")
    lines += ["## Licences", ""]
    for lic in card["licenses"]:
        extra = f" Attribution: {lic['attribution']}." if lic.get("attribution") else ""
        url = f" <{lic['url']}>" if lic.get("url") else ""
        lines.append(f"- {lic['component']}: **{lic['license']}**.{extra}{url}")
    lines += [
        "",
        "Data derived from OpenStreetMap is made available under the Open Database License (ODbL 1.0); "
        'any public use must credit "© OpenStreetMap contributors" and share derived databases alike.',
        "",
        "## How to load",
        "",
        "pyarrow:",
        "",
        "```python",
        "import pyarrow.dataset as ds, pyarrow.parquet as pq",
        'catalog = pq.read_table("catalog/catalog.parquet")',
        "cir = ds.dataset([p for p, v in zip(catalog['path'].to_pylist(), catalog['view'].to_pylist()) if v == 'cir'],",
        "                 format='parquet').to_table()",
        "```",
        "",
        "DuckDB:",
        "",
        "```sql",
        "select view, count(*) as shards, sum(rows) as rows from 'catalog/catalog.parquet' group by view;",
        "select count(*) from read_parquet('cir/*.parquet', union_by_name = true);",
        "```",
        "",
        'or with the project\'s CLI: `twin catalog query . "select count(*) from cir"`.',
        "",
        "HuggingFace `datasets`:",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("parquet", data_files={{"train": "{next(iter(card["views"].values()))["data_files"][0] if card["views"] else "cir/*.parquet"}"}})',
        '# or, from this folder (or its Hub copy), one config per view: load_dataset("<path or repo>", "cir")',
        "```",
        "",
        "Integrity: `catalog/catalog.parquet` lists every shard with its sha256; `twin catalog verify .` "
        "recomputes them.",
        "",
    ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- publish


def _local_guard(root: Path, dest: Path) -> None:
    r, d = root.resolve(), dest.resolve()
    if d == r or r.is_relative_to(d) or d.is_relative_to(r):
        raise TwinInputError(
            "the destination must lie outside the twin directory (and not contain it)",
            file=dest,
            field="dest",
            fix="publish to a separate folder or URL",
        )


def _copy_all(root: Path, cat: Catalog, fs, base: str, progress: Callable[[str], None] | None) -> dict:
    table = cat.entries()
    ptr = cat.pointer()
    if ptr is None or table.num_rows == 0:
        raise TwinInputError(
            "the catalog lists no shards; nothing to publish",
            file=root,
            field="catalog",
            fix="run `twin build` first",
        )
    for rec in table.select(["path", "sha256"]).to_pylist():
        rel = _check_relpath(rec["path"], what="path", file=root)
        if not (root / rel).is_file():
            raise PublishError(f"publish: listed shard {rel} is missing; run `twin catalog verify {root}`")
        _copy_verified(root / rel, fs, _join(base, rel), rec["sha256"])
        if progress:
            progress(rel)
    extras = [MANIFEST_NAME, *BUILD_TABLES]
    prev = root / PREVIEW_DIR
    if prev.is_dir():
        extras += [
            p.relative_to(root).as_posix()
            for p in sorted(prev.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        ]
    for rel in extras:
        if (root / rel).is_file():
            _copy_verified(root / rel, fs, _join(base, rel), None)
    snap = cat.snapshot_dir / ptr["snapshot"]
    snap_sha = _copy_verified(snap, fs, _join(base, f"{CATALOG_DIR}/{SNAPSHOT_DIR}/{snap.name}"), None)
    _copy_verified(snap, fs, _join(base, f"{CATALOG_DIR}/catalog.parquet"), snap_sha)
    card = build_card(root, table, read_manifest(root), snapshot=snap.name, seq=int(ptr["seq"]))
    _write_verified(
        fs, _join(base, CARD_JSON), (json.dumps(card, indent=2, sort_keys=True, default=str) + "\n").encode()
    )
    _write_verified(fs, _join(base, CARD_MD), render_card_markdown(card).encode())
    pointer = {
        "snapshot": snap.name,
        "seq": int(ptr["seq"]),
        "rows": table.num_rows,
        "format": ptr.get("format", "1"),
    }
    _write_verified(
        fs,
        _join(base, f"{CATALOG_DIR}/{POINTER_NAME}"),
        (json.dumps(pointer, indent=2, sort_keys=True) + "\n").encode(),
    )
    return card


def publish(
    root: str | os.PathLike,
    dest: str,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Copy the build at ``root`` (a twin directory) to ``dest`` (a local folder or any fsspec URL).

    Refuses a non-empty ``dest`` unless ``overwrite``. Returns the destination (an absolute path for a
    local folder, else the URL). ``progress`` is called with each shard's relative path after its copy.
    """
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    root = Path(root)
    cat = Catalog(root, must_exist=True)
    if not isinstance(dest, str | os.PathLike) or not str(dest):
        raise TwinInputError(
            f"bad destination {dest!r}", field="dest", fix="a folder or URL, e.g. s3://bucket/paris"
        )
    try:
        fs, base = fsspec.core.url_to_fs(os.fspath(dest))
    except (ValueError, ImportError) as e:
        raise TwinInputError(
            f"cannot open destination {dest!r}: {e}",
            field="dest",
            fix="install the fsspec backend for that URL scheme",
        ) from None
    if isinstance(fs, LocalFileSystem):
        target = Path(base)
        _local_guard(root, target)
        if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
            raise TwinInputError(
                "destination exists and is not empty", file=target, field="dest", fix="pass --overwrite"
            )
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        with staging_dir(target, overwrite=overwrite) as tmp:
            _copy_all(root, cat, fs, tmp.as_posix(), progress)
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; a published dataset is world-readable
        return str(target.resolve())
    if fs.exists(base):
        if fs.isdir(base) and not fs.ls(base) and not overwrite:
            pass
        elif not overwrite:
            raise TwinInputError(
                "destination exists and is not empty", file=dest, field="dest", fix="pass --overwrite"
            )
        else:
            fs.rm(base, recursive=True)
    _copy_all(root, cat, fs, base, progress)
    return fs.unstrip_protocol(base)
