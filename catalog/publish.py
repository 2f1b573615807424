"""Publish a twin directory to any fsspec URL as a dataset (docs/architecture.md "Catalog").

What is copied: every shard the catalog lists (CIR, views, the split table; orphans and temporary files are
not), the current catalog snapshot (``catalog/snapshots/<name>``, ``catalog/catalog.parquet`` and the
``CURRENT`` pointer, written last), ``twin.json``, the build tables (``buildings.parquet``, ``towers.parquet``,
``receivers.parquet``), ``render_plan.json``, ``scene/`` and ``previews/``, so that the copy is itself a twin
directory (``twin catalog verify``, ``twin.open`` and ``twin view build NAME PUB`` work on it). Written beside
them:

- ``README.md``: the dataset card with the HuggingFace YAML header, one ``config`` per view variant (and
  ``cir``) with ``data_files`` per split, so ``datasets.load_dataset(PUB, "cir_taps", split="test")`` works.
  When the build has a split table the per-split files are written under ``data/<config>/<split>-*.parquet``
  (rows of the split's receivers); without one, every shard is in ``train``.
- ``croissant.json``: Croissant 1.0 JSON-LD, one record set per config, each field with its type, shape and
  units, every file with its sha256.
- ``dataset_card.json``: the same facts as JSON.

No absolute path is published: paths in ``twin.json`` and in the ``source_file`` column of ``towers.parquet``
become file names (their sha256 stays beside them), and the published bytes are checked for the build
machine's paths. A symbolic link anywhere in what would be published is refused (exit 2). Licences are per
source, from ``twin.json``: ODbL only when OpenStreetMap data is in the build. Every copied file is read back
from the destination and its sha256 compared with the catalog (shards) or the source (others). A local
destination is assembled in a staging folder and renamed into place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from twin.catalog.core import CATALOG_DIR, POINTER_NAME, SNAPSHOT_DIR, Catalog, check_shard_relpath
from twin.errors import TwinError, TwinInputError
from twin.io import staging_dir
from twin.schema import SPLIT_VIEW

MANIFEST_NAME = "twin.json"
CARD_MD = "README.md"
CARD_JSON = "dataset_card.json"
CROISSANT = "croissant.json"
BUILD_TABLES = ("buildings.parquet", "towers.parquet", "receivers.parquet", "streets.parquet")
BUILD_FILES = ("render_plan.json",)
TREES = ("scene", "previews")
PREVIEW_DIR = "previews"
HF_DATA_DIR = "data"
_CHUNK = 1 << 20

TOWER_LICENCE_UNKNOWN = (
    "not stated in twin.json: check the terms of the tower CSV used (OpenCelliD data is CC BY-SA 4.0; "
    "CellMapper exports are not openly licensed)"
)
#: (pattern in a licence text, SPDX id, HuggingFace licence id)
_SPDX = (
    (re.compile(r"odbl", re.I), "ODbL-1.0", "odbl"),
    (re.compile(r"apache", re.I), "Apache-2.0", "apache-2.0"),
    (re.compile(r"cc0", re.I), "CC0-1.0", "cc0-1.0"),
    (re.compile(r"cc[ -]by[ -]sa", re.I), "CC-BY-SA-4.0", "cc-by-sa-4.0"),
    (re.compile(r"cc[ -]by(?![ -]sa)", re.I), "CC-BY-4.0", "cc-by-4.0"),
)
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


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


def spdx_of(text: str) -> tuple[str, str]:
    """(SPDX id, HuggingFace licence id) named in a licence text; ("other", "other") when none is."""
    for pat, spdx, hf in _SPDX:
        if pat.search(text):
            return spdx, hf
    return "other", "other"


def licences(manifest: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """One entry per source of the build (component, SPDX licence, the build's own note, attribution).

    ODbL appears only where a source is OpenStreetMap data (the build records which)."""
    man = manifest or {}
    table = dict(_licence_table(man))
    table.setdefault("towers", tower_licence(man))
    out = []
    for comp, text in sorted(table.items()):
        spdx, hf = ("other", "other") if "supplied by the user" in text else spdx_of(text)
        if spdx == "other" and "scene" in text.lower() and comp != "scene" and "scene" in table:
            spdx, hf = spdx_of(table["scene"])  # e.g. buildings recovered from the scene's meshes
        entry = {"component": comp, "license": spdx, "hf": hf, "note": text}
        if spdx == "ODbL-1.0":
            entry["attribution"] = OSM_ATTRIBUTION
            entry["url"] = "https://www.openstreetmap.org/copyright"
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------ no absolute paths

_ABS_IN_TEXT = re.compile(r"(?<![\w.:/~+-])(?:/[\w.+@~-]+)+")
_WIN_ABS = re.compile(r"^[A-Za-z]:[\\/]")


def _name_of(path_text: str) -> str:
    return (PureWindowsPath(path_text) if _WIN_ABS.match(path_text) else PurePosixPath(path_text)).name


def strip_paths(obj: Any) -> Any:
    """``obj`` (JSON-like) with every absolute file path replaced by its file name, in values and free text."""
    if isinstance(obj, Mapping):
        return {k: strip_paths(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strip_paths(v) for v in obj]
    if isinstance(obj, str):
        if _WIN_ABS.match(obj) or obj.startswith("/"):
            return _name_of(obj)
        if "/" in obj:
            return _ABS_IN_TEXT.sub(lambda m: _name_of(m.group(0)), obj)
    return obj


def _machine_paths(root: Path, manifest: Mapping[str, Any] | None) -> set[str]:
    """Directories of the build machine that must not appear in the published bytes."""
    found: set[str] = {str(root.resolve())}

    def walk(o: Any) -> None:
        if isinstance(o, Mapping):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        elif isinstance(o, str):
            for m in [o] if o.startswith("/") else _ABS_IN_TEXT.findall(o) if "/" in o else []:
                parent = str(PurePosixPath(m).parent)
                if parent not in ("/", "."):
                    found.add(parent)

    walk(manifest or {})
    return {p for p in found if len(p) > 1}


def _sanitize_towers(data: bytes) -> bytes:
    """towers.parquet with ``source_file`` reduced to file names (schema and metadata kept)."""
    t = pq.read_table(io.BytesIO(data))
    if "source_file" not in t.column_names:
        return data
    col = [None if v is None else _name_of(v) if (v.startswith("/") or _WIN_ABS.match(v)) else v
           for v in t.column("source_file").to_pylist()]
    i = t.column_names.index("source_file")
    t = t.set_column(i, t.schema.field(i), pa.array(col, t.schema.field(i).type))
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="zstd")
    return buf.getvalue()


def _refuse_links(root: Path, rel: str) -> None:
    """Refuse ``root/rel`` when it, or a folder on the way to it, is a symbolic link."""
    p = root
    for part in PurePosixPath(rel).parts:
        p = p / part
        if p.is_symlink():
            raise TwinInputError(
                f"{PurePosixPath(rel).as_posix()} is a symbolic link (to {os.readlink(p)}); a publication holds no links",
                file=p,
                field="publish",
                fix="replace the link with the file it points to, or remove it",
            )


def _tree_files(root: Path, sub: str) -> list[str]:
    """Relative paths of the files under ``root/sub`` (hidden and temporary names left out); links refused."""
    base = root / sub
    if base.is_symlink():
        _refuse_links(root, sub)
    if not base.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                continue
            if p.is_symlink():
                _refuse_links(root, p.relative_to(root).as_posix())
            if name in filenames:
                out.append(p.relative_to(root).as_posix())
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return sorted(out)


# --------------------------------------------------------------------------------------- writing, checked


def _sha256_fs(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while b := f.read(_CHUNK):
            h.update(b)
    return h.hexdigest()


def _join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


@dataclass
class _Out:
    """The destination, and what was written to it (relative path -> sha256, bytes)."""

    fs: Any
    base: str
    machine_paths: set[str]
    written: dict[str, tuple[str, int]] = field(default_factory=dict)

    def _check_text(self, rel: str, data: bytes) -> None:
        for p in self.machine_paths:
            if p.encode() in data:
                raise PublishError(f"publish: {rel} would hold the build machine's path {p}; nothing was published")

    def copy(self, src: Path, rel: str, expected_sha: str | None) -> str:
        """Copy ``src`` to ``rel``, read it back, compare its sha256 with ``expected_sha`` (or the source's)."""
        dst = _join(self.base, rel)
        self.fs.makedirs(dst.rsplit("/", 1)[0], exist_ok=True)
        h = hashlib.sha256()
        n = 0
        with open(src, "rb") as fin, self.fs.open(dst, "wb") as fout:
            while b := fin.read(_CHUNK):
                self._check_text(rel, b)
                h.update(b)
                n += len(b)
                fout.write(b)
        want = expected_sha or h.hexdigest()
        got = _sha256_fs(self.fs, dst)
        if got != want:
            where = "the source differs from the catalog" if h.hexdigest() != want else "the copy differs from the source"
            raise PublishError(f"publish: sha256 mismatch for {rel} ({where}); run `twin catalog verify` on the build")
        self.written[rel] = (got, n)
        return got

    def write(self, rel: str, data: bytes) -> str:
        self._check_text(rel, data)
        dst = _join(self.base, rel)
        self.fs.makedirs(dst.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(dst, "wb") as f:
            f.write(data)
        want = hashlib.sha256(data).hexdigest()
        if _sha256_fs(self.fs, dst) != want:
            raise PublishError(f"publish: sha256 mismatch for {rel} after writing it")
        self.written[rel] = (want, len(data))
        return want


# ------------------------------------------------------------------------------------ HF configs and data


@dataclass
class HFConfig:
    """One HuggingFace config: the CIR, or one variant of a view; ``splits`` = {split: published files}."""

    name: str
    view: str
    variant: str
    shards: list[str]
    rows: int
    schema: pa.Schema
    splits: dict[str, list[str]] = field(default_factory=dict)
    split_rows: dict[str, int] = field(default_factory=dict)
    default_variant: bool = True


def hf_configs(root: Path, table: pa.Table) -> list[HFConfig]:
    """The configs of a build's catalog: ``cir``, and per view one per variant (the view's name alone for its
    only or first variant, ``<view>-<variant>`` for every variant when there are several)."""
    acc: dict[tuple[str, str], list[dict]] = {}
    for r in table.select(["view", "config_hash", "path", "rows"]).to_pylist():
        if r["view"] == SPLIT_VIEW:
            continue
        acc.setdefault((r["view"], r["config_hash"] or ""), []).append(r)
    by_view: dict[str, list[str]] = {}
    for view, variant in sorted(acc):
        by_view.setdefault(view, []).append(variant)
    out = []
    for (view, variant), rows in sorted(acc.items(), key=lambda kv: (kv[0][0] != "cir", kv[0])):
        variants = by_view[view]
        many = len(variants) > 1 and view != "cir"
        paths = sorted(r["path"] for r in rows)
        out.append(HFConfig(
            name=f"{view}-{variant}" if many else view, view=view, variant=variant, shards=paths,
            rows=sum(int(r["rows"]) for r in rows), schema=pq.read_schema(root / paths[0]),
            default_variant=not many or variant == variants[0],
        ))
        if many and variant == variants[0]:  # the bare view name reads its first variant
            out.append(HFConfig(name=view, view=view, variant=variant, shards=paths, rows=out[-1].rows,
                                schema=out[-1].schema))
    return out


def _split_rx(root: Path, table: pa.Table, manifest: Mapping[str, Any] | None) -> dict[str, pa.Array] | None:
    """{split: its receivers' rx_ids}, in the order of the split names the build recorded (empty ones too)."""
    rows = table.filter(pc.equal(table["view"], SPLIT_VIEW)).column("path").to_pylist()
    if not rows:
        return None
    t = pq.read_table(root / check_shard_relpath(rows[0], what="path", file=root))
    names = list(((manifest or {}).get("split") or {}).get("names") or [])
    names += sorted(set(t.column("split").to_pylist()) - set(names))
    return {s: t.filter(pc.equal(t["split"], s)).column("rx_id").combine_chunks() for s in names}


def _write_hf_data(root: Path, out: _Out, configs: list[HFConfig], split_rx: dict[str, pa.Array] | None) -> None:
    """Fill each config's ``splits``: per-split files under ``data/`` when there is a split table (and the rows
    have ``rx_id``); else the config's shards, all in ``train``."""
    written: dict[tuple[str, str], tuple[dict[str, list[str]], dict[str, int]]] = {}
    for c in configs:
        if split_rx is None or "rx_id" not in c.schema.names:
            c.splits, c.split_rows = {"train": list(c.shards)}, {"train": c.rows}
            continue
        key = (c.view, c.variant)
        if key in written:
            c.splits, c.split_rows = written[key]
            continue
        folder = f"{HF_DATA_DIR}/{c.view}-{c.variant}" if c.view != "cir" else f"{HF_DATA_DIR}/cir"
        sinks = {s: pa.BufferOutputStream() for s in split_rx}
        writers = {s: pq.ParquetWriter(sinks[s], c.schema, compression="zstd") for s in split_rx}
        counts = dict.fromkeys(split_rx, 0)
        for rel in c.shards:
            t = pq.read_table(root / rel)
            for s, rx in split_rx.items():
                part = t.filter(pc.is_in(t["rx_id"], value_set=rx))
                if part.num_rows:
                    writers[s].write_table(part.replace_schema_metadata(c.schema.metadata))
                    counts[s] += part.num_rows
        files: dict[str, list[str]] = {}
        for s in split_rx:
            writers[s].close()
            if not counts[s]:  # HF refuses a split without rows: an empty split is left out of the config
                continue
            rel = f"{folder}/{s}-00000.parquet"
            out.write(rel, sinks[s].getvalue().to_pybytes())
            files[s] = [rel]
        c.splits, c.split_rows = files, counts
        written[key] = (files, counts)


# ---------------------------------------------------------------------------------------------- the card


def _field_dict(f: pa.Field) -> dict[str, Any]:
    meta = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in (f.metadata or {}).items()}
    return {"name": f.name, "type": str(f.type), "nullable": f.nullable, "metadata": meta}


def build_card(table: pa.Table, manifest: Mapping[str, Any] | None, configs: list[HFConfig], *, snapshot: str,
               seq: int, name: str) -> dict:
    """The dataset card as a JSON-able dict: provenance (no absolute paths), configs, schemas, licences."""
    man = strip_paths(dict(manifest or {}))
    datasets = sorted({d for d in table["dataset"].to_pylist() if d})
    cities = sorted({c for c in table["city"].to_pylist() if c})
    views: dict[str, Any] = {}
    for view in sorted(set(table["view"].to_pylist())):
        rows = [r for r in table.select(["view", "path", "rows", "bytes", "schema_fingerprint", "config_hash"]).to_pylist()
                if r["view"] == view]
        views[view] = {"shards": len(rows), "rows": sum(r["rows"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
                       "variants": sorted({r["config_hash"] or "" for r in rows}),
                       "schema_fingerprints": sorted({r["schema_fingerprint"] for r in rows})}
    return {
        "name": man.get("name") or (datasets[0] if datasets else name),
        "city": cities[0] if len(cities) == 1 else cities,
        "published_at": _dt.datetime.now(_dt.UTC).isoformat(),
        "catalog": {"snapshot": snapshot, "seq": seq, "shards": table.num_rows, "path": f"{CATALOG_DIR}/catalog.parquet"},
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
            "split": man.get("split"),
            "config_hashes": sorted({h for h in table["config_hash"].to_pylist() if h}),
            "code_versions": sorted({h for h in table["code_version"].to_pylist() if h}),
            "scene_hashes": sorted({h for h in table["scene_hash"].to_pylist() if h}),
        },
        "views": views,
        "configs": {c.name: {"view": c.view, "variant": c.variant, "rows": c.rows, "splits": c.splits,
                             "split_rows": c.split_rows, "columns": [_field_dict(f) for f in c.schema]} for c in configs},
        "licenses": licences(manifest),
        "total": {"shards": table.num_rows, "rows": int(sum(table["rows"].to_pylist())),
                  "bytes": int(sum(table["bytes"].to_pylist()))},
    }


def _yaml_str(s: Any) -> str:
    return json.dumps(str(s))  # a JSON string is a valid YAML scalar


def render_card_markdown(card: Mapping[str, Any]) -> str:
    """README.md: HuggingFace YAML (licences, one config per view variant with data_files per split), then the card."""
    hf_ids = sorted({lic["hf"] for lic in card["licenses"]})
    lines = ["---", "license:"] + [f"- {x}" for x in hf_ids] + [
        f"pretty_name: {_yaml_str('twin ' + str(card['name']))}",
        "tags:", "- wireless", "- ray-tracing", "- sionna", "- localization", "- channel-impulse-response",
        "configs:",
    ]
    for i, (name, c) in enumerate(card["configs"].items()):
        lines.append(f"- config_name: {_yaml_str(name)}")
        if i == 0:
            lines.append("  default: true")
        lines.append("  data_files:")
        for split, files in c["splits"].items():
            lines.append(f"  - split: {_yaml_str(split)}")
            lines.append("    path:")
            lines += [f"    - {_yaml_str(p)}" for p in files]
    lines += ["---", "", f"# twin dataset: {card['name']}", ""]
    city = card["city"] if isinstance(card["city"], str) else ", ".join(card["city"])
    prov = card["provenance"]
    lines += [
        f"Ray-traced cellular channel dataset of **{city or card['name']}**, produced by `twin` "
        f"(code {', '.join(prov['code_versions']) or prov.get('code_version') or 'unknown'}). "
        f"Published {card['published_at']} from catalog snapshot `{card['catalog']['snapshot']}` "
        f"(seq {card['catalog']['seq']}). The folder is itself a twin directory: `twin catalog verify .`, "
        "`twin.open(\".\")` and `twin view build NAME .` work on it (the scene and the trace plan are included).",
        "",
        "## Configs and splits",
        "",
        "| config | view | variant | rows per split |",
        "|---|---|---|---|",
    ]
    for name, c in card["configs"].items():
        per = ", ".join(f"{s}: {n}" for s, n in c["split_rows"].items())
        lines.append(f"| `{name}` | `{c['view']}` | `{c['variant'] or '-'}` | {per} |")
    sp = prov.get("split")
    lines += [""]
    if sp:
        lines += [f"Splits: by **{sp.get('by')}** (fractions {sp.get('fractions')}, tile {sp.get('tile_m')} m, seed "
                  f"{sp.get('seed')}); the table rx_id -> split is `{sp.get('path')}`. Whole groups (tiles, routes or "
                  "serving sites) go to one split. Views without receiver rows are all in `train`.", ""]
    else:
        lines += ["The build has no split table: every config has one split, `train` (`twin split D` writes one).", ""]
    t = card["total"]
    lines += ["## Contents", "", "| catalog view | shards | rows | bytes | variants |", "|---|---:|---:|---:|---|"]
    for view, v in card["views"].items():
        lines.append(f"| `{view}` | {v['shards']} | {v['rows']} | {v['bytes']} | {', '.join(v['variants'])} |")
    lines += [f"| **total** | {t['shards']} | {t['rows']} | {t['bytes']} | |", ""]
    lines += [
        "## Provenance", "",
        ("The build manifest `twin.json` is included (paths reduced to file names, each with its sha256)."
         if prov["manifest"] else "No `twin.json` manifest was present in the build."),
        "", f"- origin (lat, lon): `{json.dumps(prov['origin'])}`",
        f"- producer config hashes: {', '.join('`' + h + '`' for h in prov['config_hashes']) or 'none recorded'}",
        f"- scene hashes: {', '.join('`' + h + '`' for h in prov['scene_hashes']) or 'none recorded'}",
        "", "Sources:", "", "```json", json.dumps(prov["sources"], indent=2, sort_keys=True, default=str), "```", "",
        "Package versions:", "", "```json", json.dumps(prov.get("versions"), indent=2, sort_keys=True, default=str),
        "```", "", "Resolved configuration:", "", "```json",
        json.dumps(prov["config"], indent=2, sort_keys=True, default=str), "```", "",
        "## Schemas", "",
        "Units: metres (local frame x east, y north, z up), seconds, Hz, dBm, dB, radians unless a name ends "
        "in `_deg`. Tensor columns are nested fixed-size lists; their shape, axis names and units are in the field "
        "metadata (complex values as a trailing axis of 2, (re, im)); `twin.open` returns them as shaped numpy "
        "arrays (complex64). `receivers.parquet` is GeoParquet: `geometry` is the point in EPSG:4326, `x`, `y`, `z` "
        "the local frame in metres; `buildings.parquet` holds `geometry` (EPSG:4326) and `geometry_local` "
        "(WKB, local frame, metres).", "",
    ]
    for name, c in card["configs"].items():
        lines += [f"### `{name}`", "", "| column | type | shape | axes | units |", "|---|---|---|---|---|"]
        for col in c["columns"]:
            m = col["metadata"]
            lines.append(f"| `{col['name']}` | `{col['type']}` | {m.get('shape', '')} | {m.get('axes', '')} | "
                         f"{m.get('units', '')} |")
        lines.append("")
    lines += ["## Licences", "", "Per source of this build (from `twin.json`):", ""]
    for lic in card["licenses"]:
        extra = f" Attribution: {lic['attribution']}." if lic.get("attribution") else ""
        url = f" <{lic['url']}>" if lic.get("url") else ""
        lines.append(f"- {lic['component']}: **{lic['license']}** ({lic['note']}).{extra}{url}")
    if any(lic["license"] == "ODbL-1.0" for lic in card["licenses"]):
        lines += ["", "Data derived from OpenStreetMap is made available under the Open Database License (ODbL 1.0); "
                  f'any public use must credit "{OSM_ATTRIBUTION}" and share derived databases alike.']
    first = next(iter(card["configs"]), "cir")
    lines += [
        "", "## How to load", "", "```python", "import twin", 'b = twin.open(".")            # or the URL of this folder',
        f'reader = b.view("{first}") if "{first}" != "cir" else b.cir()', "sample = reader[0]            # numpy arrays",
        "", "from datasets import load_dataset",
        f'ds = load_dataset("<this folder or repo>", "{first}", split="train")', "```", "",
        "DuckDB: `select count(*) from read_parquet('cir/*.parquet')`; or `twin catalog query . \"select count(*) from cir\"`.",
        "", "Integrity: `catalog/catalog.parquet` lists every shard with its sha256; `twin catalog verify .` "
        "recomputes them; `croissant.json` lists every data file with its sha256.", "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- croissant

CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _cr_type(t: pa.DataType) -> tuple[str, bool]:
    """(Croissant dataType, repeated) of an Arrow type; lists are repeated fields of their innermost type."""
    repeated = False
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t, repeated = t.value_type, True
    if pa.types.is_boolean(t):
        return "sc:Boolean", repeated
    if pa.types.is_integer(t):
        return "sc:Integer", repeated
    if pa.types.is_floating(t):
        return "sc:Float", repeated
    return "sc:Text", repeated


def croissant(card: Mapping[str, Any], configs: list[HFConfig], written: Mapping[str, tuple[str, int]]) -> dict:
    """Croissant 1.0 JSON-LD: every published data file a FileObject (relative contentUrl, sha256), one
    FileSet and one RecordSet per config, every field with its type, shape and units."""
    lic = [x["license"] for x in card["licenses"]]
    dist: list[dict[str, Any]] = []
    record_sets = []
    for c in configs:
        files = sorted({p for fs in c.splits.values() for p in fs})
        fs_id = f"files-{c.name}"
        dist.append({"@type": "cr:FileSet", "@id": fs_id, "name": fs_id, "encodingFormat": "application/x-parquet",
                     "includes": files,
                     "description": f"Parquet files of config {c.name} ({', '.join(f'{s}: {len(v)}' for s, v in c.splits.items())})"})
        fields = []
        for f in c.schema:
            dtype, rep = _cr_type(f.type)
            m = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            desc = f"arrow type {f.type}"
            if "shape" in m:
                desc += f"; shape {m['shape']} (axes {m.get('axes', '')})"
            if m.get("units"):
                desc += f"; units: {m['units']}"
            fd: dict[str, Any] = {"@type": "cr:Field", "@id": f"{c.name}/{f.name}", "name": f.name, "description": desc,
                                  "dataType": dtype, "source": {"fileSet": {"@id": fs_id}, "extract": {"column": f.name}}}
            if rep:
                fd["repeated"] = True
            fields.append(fd)
        record_sets.append({"@type": "cr:RecordSet", "@id": c.name, "name": c.name,
                            "description": f"view {c.view}" + (f", variant {c.variant}" if c.variant else "")
                            + f": {c.rows} rows", "field": fields})
    for rel, (sha, size) in sorted(written.items()):
        if rel.endswith(".parquet") and not rel.startswith(f"{CATALOG_DIR}/"):
            dist.append({"@type": "cr:FileObject", "@id": rel, "name": rel, "contentUrl": rel,
                         "encodingFormat": "application/x-parquet", "sha256": sha, "contentSize": f"{size} B"})
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": f"twin-{card['name']}",
        "description": f"Ray-traced cellular channel dataset of {card['city'] or card['name']} (twin); see README.md.",
        "license": lic if len(lic) != 1 else lic[0],
        "url": "https://github.com/twin-rt/twin",
        "version": "1.0.0",
        "citeAs": f"twin dataset {card['name']}, published {card['published_at'][:10]} (catalog snapshot "
                  f"{card['catalog']['snapshot']})",
        "datePublished": card["published_at"][:10],
        "distribution": dist,
        "recordSet": record_sets,
    }


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


def _copy_all(root: Path, cat: Catalog, out: _Out, progress: Callable[[str], None] | None) -> dict:
    table = cat.entries()
    ptr = cat.pointer()
    if ptr is None or table.num_rows == 0:
        raise TwinInputError(
            "the catalog lists no shards; nothing to publish",
            file=root,
            field="catalog",
            fix="run `twin build` first",
        )
    shards = table.select(["path", "sha256"]).to_pylist()
    extras = [r for r in (*BUILD_TABLES, *BUILD_FILES) if (root / r).exists() or (root / r).is_symlink()]
    for sub in TREES:
        extras += _tree_files(root, sub)
    for rel in [*(r["path"] for r in shards), *extras]:  # every link refused before anything is written
        _refuse_links(root, check_shard_relpath(rel, what="path", file=root) if rel.endswith(".parquet") else rel)
    for rec in shards:
        rel = check_shard_relpath(rec["path"], what="path", file=root)
        if not (root / rel).is_file():
            raise PublishError(f"publish: listed shard {rel} is missing; run `twin catalog verify {root}`")
        out.copy(root / rel, rel, rec["sha256"])
        if progress:
            progress(rel)
    manifest = read_manifest(root)
    for rel in extras:
        if rel == "towers.parquet":
            out.write(rel, _sanitize_towers((root / rel).read_bytes()))
        else:
            out.copy(root / rel, rel, None)
    if manifest is not None:
        out.write(MANIFEST_NAME, (json.dumps(strip_paths(manifest), indent=2, sort_keys=True) + "\n").encode())
    configs = hf_configs(root, table)
    _write_hf_data(root, out, configs, _split_rx(root, table, manifest))
    snap = cat.snapshot_dir / ptr["snapshot"]
    snap_sha = out.copy(snap, f"{CATALOG_DIR}/{SNAPSHOT_DIR}/{snap.name}", None)
    out.copy(snap, f"{CATALOG_DIR}/catalog.parquet", snap_sha)
    card = build_card(table, manifest, configs, snapshot=snap.name, seq=int(ptr["seq"]), name=root.resolve().name)
    out.write(CARD_JSON, (json.dumps(card, indent=2, sort_keys=True, default=str) + "\n").encode())
    out.write(CARD_MD, render_card_markdown(card).encode())
    out.write(CROISSANT, (json.dumps(croissant(card, configs, out.written), indent=2) + "\n").encode())
    pointer = {"snapshot": snap.name, "seq": int(ptr["seq"]), "rows": table.num_rows, "format": ptr.get("format", "1")}
    out.write(f"{CATALOG_DIR}/{POINTER_NAME}", (json.dumps(pointer, indent=2, sort_keys=True) + "\n").encode())
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
    machine = _machine_paths(root, read_manifest(root))
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
            _copy_all(root, cat, _Out(fs, tmp.as_posix(), machine | {str(tmp)}), progress)
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
    _copy_all(root, cat, _Out(fs, base, machine), progress)
    return fs.unstrip_protocol(base)
