"""Issue 8 item 3 / issue 9: the whole config is checked when a command starts (exit 2, nothing written)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.config import ANTENNA_PATTERNS, POLARIZATIONS, BuildConfig, load_build_config

README = Path(__file__).resolve().parents[1] / "README.md"


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, flags=re.S)


def test_every_readme_toml_block_parses_and_validates(tmp_path):
    blocks = toml_blocks(README.read_text())
    assert blocks, "the README has a ```toml config example"
    for i, b in enumerate(blocks):
        f = tmp_path / f"block{i}.toml"
        f.write_text(b)
        cfg = load_build_config(f)
        assert isinstance(cfg, BuildConfig)


def test_enumerations_match_sionna_registries():
    from sionna.rt.antenna_pattern import antenna_pattern_registry, polarization_registry

    assert set(ANTENNA_PATTERNS) == set(antenna_pattern_registry.list())
    assert set(POLARIZATIONS) == set(polarization_registry.list())


@pytest.mark.parametrize(
    "body, section, key, valid",
    [
        ("[views.folded_lte]\nnum_framez = 3\n", "[views.folded_lte]", "num_framez", "num_frames"),
        ("[views.cir_tap]\nnum_taps = 3\n", "views.cir_tap", "views.cir_tap", "cir_taps"),
        ("[views.spike_train]\nmax_links = 0\n", "[views.spike_train]", "max_links", "num_subcarriers"),
        ("[views.cir_taps]\nnum_taps = 'many'\n", "[views.cir_taps]", "num_taps", "an integer"),
        ("[views.tb_fingerprint]\nsnr_db = nan\n", "[views.tb_fingerprint]", "snr_db", "finite"),
    ],
)
def test_bad_view_tables_exit_2_before_anything_is_traced(tmp_path, body, section, key, valid):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--out", str(out), "--receivers", "5",
                                 "--config", str(cfg)])
    assert r.exit_code == 2, r.output
    msg = r.stderr
    assert str(cfg) in msg and section in msg and key in msg and valid in msg and "Traceback" not in r.output
    assert not out.exists() and not list(tmp_path.rglob("cir"))


def test_unknown_view_name_exits_2_before_anything_is_traced(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--out", str(out), "--receivers", "5",
                                 "--views", "folded_lte,folded-lte"])
    assert r.exit_code == 2 and "unknown view(s) folded-lte" in r.stderr and "folded_lte" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "body, key, valid",
    [
        ("[split]\nfractions = [0.5, 0.1]\n", "fractions", "differ in length"),
        ("[split]\nby = 'tiles'\n", "by", "'tile'"),
        ("[split]\ntile_m = 0\n", "tile_m", "> 0"),
        ("[split]\ntile = 50\n", "tile", "tile_m"),
    ],
)
def test_bad_split_section_exits_2_before_anything_is_traced(tmp_path, body, key, valid):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["build", "--city", "paris", "--offline", "--out", str(out), "--receivers", "5",
                                 "--config", str(cfg)])
    assert r.exit_code == 2, r.output
    msg = r.stderr
    assert str(cfg) in msg and "[split]" in msg and key in msg and valid in msg and "Traceback" not in r.output
    assert not out.exists()


def test_split_section_defaults():
    from twin.config import SplitConfig

    cfg = load_build_config(None)
    assert cfg.split == SplitConfig() and cfg.split.by == "tile" and cfg.split.tile_m == 50.0
    assert cfg.split.fractions == (0.8, 0.1, 0.1) and cfg.split.enabled
