"""twin.open on a small Paris build: every view's samples against its field metadata, torch loaders, complex
values against the CIR shard, fsspec URLs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import twin
from twin.cli import app
from twin.errors import TwinInputError

runner = CliRunner()

SMALL = """
[trace]
max_depth = 2
samples_per_src = 20000
max_num_paths_per_src = 20000
receivers_per_task = 2
cells_per_task = 12
diffraction = false

[views.bistatic_echo]
num_targets = 2
num_snapshots = 2
samples_per_src = 5000
samples_per_sp = 5000
"""
VIEWS = "folded_lte,spike_train,cir_taps,bistatic_echo,tb_fingerprint"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("access")
    cfg = base / "small.toml"
    cfg.write_text(SMALL)
    r = runner.invoke(app, ["build", "--city", "paris", "--offline", "--out", str(base / "out"), "--receivers", "4",
                            "--config", str(cfg), "--views", VIEWS], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return base / "out" / "paris"


def _expected(field: pa.Field) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype of a tensor sample, read straight from the field metadata (independent of the reader)."""
    md = field.metadata or {}
    if b"shape" not in md:
        return None
    shape = tuple(json.loads(md[b"shape"]))
    axes = json.loads(md[b"axes"])
    t = field.type
    while pa.types.is_fixed_size_list(t):
        t = t.value_type
    if axes[-1] == "complex":
        return shape[:-1], np.dtype(np.complex64)
    return shape, np.dtype(t.to_pandas_dtype())


def test_every_view_matches_its_field_metadata(root: Path):
    b = twin.open(root)
    assert set(b.views()) == set(VIEWS.split(","))
    assert b.manifest["name"] == "paris"
    for name, variants in b.views().items():
        assert len(variants) == 1
        reader = b.view(name)
        assert len(reader) > 0, name
        schema = pq.read_schema(root / reader.paths[0])
        tensors = {f.name: _expected(f) for f in schema if _expected(f) is not None}
        assert tensors, f"{name} has no tensor columns"
        for i in sorted({0, len(reader) // 2, len(reader) - 1}):
            s = reader[i]
            for col, (shape, dtype) in tensors.items():
                assert isinstance(s[col], np.ndarray), (name, col)
                assert s[col].shape == shape and s[col].dtype == dtype, (name, col, s[col].shape, s[col].dtype)
            for f in schema:  # every stored column is in the sample (complex pairs as one key)
                assert f.name in s or f.name[:-3] in s, (name, f.name)
        assert reader.to_table().num_rows == len(reader) == len(reader.to_pandas())


def test_cir_complex_round_trip_against_the_shard(root: Path):
    b = twin.open(root)
    cir = b.cir()
    raw = pa.concat_tables([pq.read_table(root / p) for p in cir.paths])
    assert len(cir) == raw.num_rows > 0
    by_link = {int(r["link_id"]): r for r in raw.select(["link_id", "a_re", "a_im", "tau_s"]).to_pylist()}
    for s in cir:
        r = by_link[int(s["link_id"])]
        assert s["a"].dtype == np.complex64 and s["a"].shape == (s["num_paths"],)
        np.testing.assert_array_equal(s["a"].real, np.float32(r["a_re"]))
        np.testing.assert_array_equal(s["a"].imag, np.float32(r["a_im"]))
        np.testing.assert_array_equal(s["tau_s"], r["tau_s"])
    # a view's complex tensor equals the stored (re, im) pairs
    taps = b.view("cir_taps")
    t = pq.read_table(root / taps.paths[0], columns=["cir"])
    pairs = np.asarray(t.column("cir").combine_chunks().flatten().flatten().flatten().flatten().to_numpy())
    pairs = pairs.reshape((t.num_rows, *json.loads(t.schema.field("cir").metadata[b"shape"])))
    np.testing.assert_array_equal(taps[0]["cir"], pairs[0, ..., 0] + 1j * pairs[0, ..., 1])


def test_torch_iterable_two_workers_every_row_once(root: Path):
    from torch.utils.data import DataLoader

    from twin.datasets import collate

    b = twin.open(root)
    for reader, key in ((b.cir(), "link_id"), (b.view("cir_taps"), "rx_id"), (b.view("folded_lte"), "link_id")):
        want = sorted(int(x) for x in reader.to_table().column(key).to_pylist())
        assert len(reader.units) >= 2  # several (file, row group) units to share
        dl = DataLoader(reader.torch_iterable(shuffle_buffer=4, seed=3), batch_size=3, num_workers=2, collate_fn=collate)
        got = [int(x) for batch in dl for x in np.asarray(batch[key]).tolist()]
        assert sorted(got) == want, reader.name


def test_units_split_over_ranks_and_workers(root: Path):
    reader = twin.open(root).cir()
    ds = reader.torch_iterable(shuffle_buffer=8, seed=1)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        parts = [ds.units_for(c, 4) for c in range(4)]  # 2 ranks x 2 workers
        keys = [(u.path, u.row_group) for p in parts for u in p]
        assert sorted(keys) == sorted((u.path, u.row_group) for u in reader.units)


def test_map_dataset_and_collate_pad_variable_sets(root: Path):
    import torch
    from torch.utils.data import DataLoader

    from twin.datasets import collate

    b = twin.open(root)
    ds = b.cir().torch()
    batch = next(iter(DataLoader(ds, batch_size=len(ds), collate_fn=collate)))
    assert batch["a"].dtype == torch.complex64
    assert torch.equal(batch["a_mask"].sum(1), batch["num_paths"].long())
    assert batch["tau_s"].shape == batch["a"].shape
    taps = next(iter(DataLoader(b.view("cir_taps").torch(), batch_size=2, collate_fn=collate)))
    assert taps["cir"].shape[1:] == (16, 1, 256) and taps["cir"].dtype == torch.complex64
    assert isinstance(taps["tx_ids"], list) and len(taps["tx_ids"]) == 2


def test_geodataframes_and_columns(root: Path):
    b = twin.open(root)
    for g in (b.towers, b.receivers, b.buildings):
        assert g.crs.to_epsg() == 4326 and len(g) > 0
    rx = b.receivers
    assert {"rx_id", "x", "y", "z"} <= set(rx.columns)
    lon, lat = b.frame.to_wgs84(rx["x"].to_numpy(), rx["y"].to_numpy())
    np.testing.assert_allclose(rx.geometry.x, lon, atol=1e-9)
    r = b.view("cir_taps", columns=["rx_id", "cir"])
    assert set(r[0]) == {"rx_id", "cir"}
    with pytest.raises(TwinInputError, match="no column"):
        b.view("cir_taps", columns=["nope"])
    with pytest.raises(TwinInputError, match="built views"):
        b.view("nope")
    with pytest.raises(TwinInputError, match="no variant"):
        b.view("cir_taps", variant="ffff")


def test_open_fsspec_url_and_refuse_paths_outside(root: Path, tmp_path: Path):
    import fsspec

    fs = fsspec.filesystem("memory")
    for p in root.rglob("*"):
        if p.is_file() and not p.is_relative_to(root / "scene"):
            fs.pipe(f"/pub/{p.relative_to(root).as_posix()}", p.read_bytes())
    b = twin.open("memory://pub")
    assert b.views() == twin.open(root).views()
    assert len(b.cir()) == len(twin.open(root).cir())
    assert b.view("cir_taps")[0]["cir"].dtype == np.complex64
    with pytest.raises(TwinInputError):
        b.resolve("../outside.parquet")
    with pytest.raises(TwinInputError):
        twin.open(root).resolve("/etc/passwd")
    with pytest.raises(TwinInputError, match="not a twin directory"):
        twin.open(tmp_path)


# ----------------------------------------------------------------------------------------------------- splits


def _receivers(n: int, seed: int = 0, span: float = 400.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"rx_id": pa.array(np.arange(n), pa.int64()), "x": rng.uniform(-span, span, n),
                     "y": rng.uniform(-span, span, n), "route_id": pa.array(np.arange(n) // 10, pa.int64())})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tile_split_is_spatially_disjoint_and_close_to_fractions(seed):
    from twin.datasets.splits import SplitConfig, split_table

    rx = _receivers(2000, seed)
    t = split_table(rx, SplitConfig(by="tile", tile_m=50.0, seed=seed)).to_pandas()
    x, y = rx.column("x").to_numpy(), rx.column("y").to_numpy()
    t["tile"] = [f"{a},{b}" for a, b in zip(np.floor(x / 50).astype(int), np.floor(y / 50).astype(int), strict=True)]
    assert (t.groupby("tile")["split"].nunique() == 1).all()  # no tile in two splits
    share = t["split"].value_counts(normalize=True)
    assert abs(share["train"] - 0.8) < 0.05 and abs(share["test"] - 0.1) < 0.05 and abs(share["validation"] - 0.1) < 0.05


def test_route_random_and_cell_groups():
    from twin.datasets.splits import SplitConfig, split_table

    rx = _receivers(300)
    t = split_table(rx, SplitConfig(by="route", seed=4)).to_pandas()
    t["route"] = rx.column("route_id").to_numpy()
    assert (t.groupby("route")["split"].nunique() == 1).all()  # whole routes
    t = split_table(rx, SplitConfig(by="cell", seed=4), serving_site={i: f"s{i % 7}" for i in range(300)}).to_pandas()
    assert (t.groupby(np.arange(300) % 7)["split"].nunique() == 1).all()  # towers held out
    a = split_table(rx, SplitConfig(by="random", seed=9)).column("split").to_pylist()
    assert a == split_table(rx, SplitConfig(by="random", seed=9)).column("split").to_pylist()  # seeded
    assert a != split_table(rx, SplitConfig(by="random", seed=10)).column("split").to_pylist()


@pytest.mark.parametrize("kw", [{"fractions": (0.5, 0.4)}, {"fractions": (0.8, 0.3, -0.1)}, {"tile_m": 0.0},
                                {"by": "street"}, {"names": ("a", "a", "b")}])
def test_bad_split_settings(kw):
    from twin.datasets.splits import SplitConfig

    with pytest.raises(ValueError):
        SplitConfig(**kw)


def test_split_cli_readers_and_resume(root: Path):
    r = runner.invoke(app, ["split", str(root), "--by", "tile", "--tile-m", "50", "--seed", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    b = twin.open(root)
    t = b.split_table().to_pandas()
    assert set(t["rx_id"]) == set(b.receivers["rx_id"])
    assert (t.groupby("group")["split"].nunique() == 1).all()
    assert b.manifest["split"]["by"] == "tile" and b.manifest["split"]["sha256"]
    cir = b.cir()
    total = 0
    for s in sorted(set(t["split"])):
        part = b.cir(split=s)
        rx = set(t.loc[t["split"] == s, "rx_id"])
        assert all(int(x["rx_id"]) in rx for x in part)
        total += len(part)
    assert total == len(cir)
    with pytest.raises(TwinInputError, match="unknown split"):
        b.view("cir_taps", split="nope")
    with pytest.raises(TwinInputError, match="no rx_id"):
        len(b.view("bistatic_echo", split="train"))
    assert runner.invoke(app, ["catalog", "verify", str(root)]).exit_code == 0
    bad = runner.invoke(app, ["split", str(root), "--fractions", "0.5,0.1"])
    assert bad.exit_code == 2 and "fractions" in bad.output


# ---------------------------------------------------------------------------------------- report, geo, CLI


def test_report_on_the_small_build(root: Path):
    import re

    r = runner.invoke(app, ["report", str(root)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rep = root / "report"
    html = (rep / "index.html").read_text()
    pngs = re.findall(r"<img src='([^']+)'", html)
    assert pngs and all((rep / p).stat().st_size > 10_000 for p in pngs)
    carriers = sorted({float(f) for f in twin.open(root).towers["frequency_hz"]})
    assert sum(p.startswith("pathgain_") for p in pngs) == len(carriers)
    assert {"cdfs.png", "coverage.png"} <= set(pngs)
    for v, variants in twin.open(root).views().items():
        assert all(f"view_{v}_{h}.png" in pngs for h in variants), v


def test_receivers_file_is_geoparquet(root: Path):
    import geopandas as gpd

    g = gpd.read_parquet(root / "receivers.parquet")
    assert g.crs.to_epsg() == 4326 and g.geometry.geom_type.eq("Point").all()
    lon, lat = twin.open(root).frame.to_wgs84(g["x"].to_numpy(), g["y"].to_numpy())
    np.testing.assert_allclose(g.geometry.x, lon, atol=1e-9)
    np.testing.assert_allclose(g.geometry.y, lat, atol=1e-9)
    assert b"geo" in pq.read_schema(root / "receivers.parquet").metadata


def test_catalog_ls_unknown_view_lists_the_views(root: Path):
    r = runner.invoke(app, ["catalog", "ls", str(root), "--view", "nope"])
    assert r.exit_code == 2 and "cir_taps" in r.output and "folded_lte" in r.output
