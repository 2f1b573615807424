"""View variants (docs/architecture.md "Data access and baselines"): a view built with other settings is another variant, keyed by its config hash.

A variant's shards live in ``views/<view>/<variant>/part-*.parquet`` (older builds: ``views/<view>/``) and carry
the variant in the catalog's ``config_hash`` column and the file metadata (``twin.config_hash``); the settings
are in the file metadata (``twin.config``). Readers read one variant at a time.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from twin.errors import TwinInputError
from twin.schema import SPLIT_VIEW

NOT_VIEWS = ("cir", SPLIT_VIEW)


def variant_dir(view: str, variant: str) -> str:
    """The folder (relative to the build) of one variant's shards."""
    return f"views/{view}/{variant}"


def variant_rows(root: str | Path) -> list[dict[str, Any]]:
    """One dict per (view, variant): ``view``, ``variant``, ``shards``, ``rows``, ``bytes``, ``settings``
    (the view config that differs from the view's defaults, as JSON)."""
    import dataclasses

    from twin.catalog import Catalog
    from twin.datasets.registry import get_view

    root = Path(root)
    cat = Catalog(root, must_exist=True).entries()
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r in cat.select(["view", "config_hash", "path", "rows", "bytes"]).to_pylist():
        if r["view"] in NOT_VIEWS:
            continue
        d = acc.setdefault((r["view"], r["config_hash"] or ""), {"view": r["view"], "variant": r["config_hash"] or "",
                                                                   "shards": 0, "rows": 0, "bytes": 0, "path": r["path"]})
        d["shards"] += 1
        d["rows"] += int(r["rows"])
        d["bytes"] += int(r["bytes"])
    out = []
    for (view, _), d in sorted(acc.items()):
        settings: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            md = pq.read_schema(root / d["path"]).metadata or {}
            cfg = json.loads(md.get(b"twin.config", b"{}"))
            try:
                cls = get_view(view).config_cls
                defaults = {f.name: json.loads(json.dumps(f.default, default=str)) for f in dataclasses.fields(cls)}
            except KeyError:
                defaults = {}
            settings = {k: v for k, v in cfg.items() if k not in defaults or defaults[k] != v}
        d.pop("path")
        d["settings"] = json.dumps(settings, sort_keys=True) if settings else "defaults"
        out.append(d)
    return out


def drop_variant(root: str | Path, view: str, variant: str) -> int:
    """Remove one variant of ``view``: its catalog rows in one atomic commit, then its files; returns the
    number of shards removed. ``variant`` is a config hash or a unique prefix of one."""
    import shutil

    from twin.catalog import Catalog

    root = Path(root)
    cat = Catalog(root, must_exist=True)
    rows = [r for r in cat.entries(view=view).select(["path", "config_hash"]).to_pylist()]
    variants = sorted({r["config_hash"] or "" for r in rows})
    if not variants:
        raise TwinInputError(f"no view {view!r} in this build", file=root, field="view", fix="see `twin view ls`")
    hits = [v for v in variants if v == variant] or [v for v in variants if v.startswith(variant)]
    if len(hits) != 1:
        raise TwinInputError(
            f"view {view!r} has no variant {variant!r}" if not hits else f"variant {variant!r} is ambiguous",
            file=root, field="--variant", fix=f"variants of {view}: {', '.join(variants)}")
    v = hits[0]
    paths = [r["path"] for r in rows if (r["config_hash"] or "") == v]
    n = cat.unregister(paths)
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            (root / p).unlink()
    vdir = root / variant_dir(view, v)
    if vdir.is_dir():
        shutil.rmtree(vdir)
    with contextlib.suppress(OSError):
        (root / "views" / view).rmdir()  # only when empty
    from twin.manifest import read_manifest, write_manifest

    m = read_manifest(root)
    stage = m.get("stages", {}).get(f"view:{view}")
    if stage is not None and not cat.entries(view=view).num_rows:
        m["stages"].pop(f"view:{view}")
        write_manifest(root, m)
    return n
