"""Typed, frozen configuration of every stage, with documented defaults, loaded from TOML.

A build's resolved configuration is recorded in ``twin.json`` and (hashed) in every Parquet file.
Stage configs are dataclasses; :func:`from_mapping` turns a TOML table into one, naming the offending key
and the expected type in its error. Views define their own config dataclasses and use the same helpers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from twin.errors import TwinConfigError

T = TypeVar("T")

#: how ``[split] by`` groups receivers (``twin.datasets.splits``)
SPLIT_KINDS = ("tile", "route", "cell", "random")
#: where ``[receivers] area`` lets receivers stand (``twin.render.receivers``)
RECEIVER_AREAS = ("streets", "built", "bbox")


def config_hash(obj: Any) -> str:
    """Stable 16-hex-digit hash of a config (dataclass or mapping)."""
    d = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def _check_type(value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("a number")
        if not math.isfinite(value):
            raise TypeError("a finite number (not nan or inf)")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise TypeError("an integer")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError("true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise TypeError("a string")
        return value
    if origin in (tuple,):
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise TypeError("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(v, args[0]) for v in value)
        if len(args) != len(value):
            raise TypeError(f"a list of {len(args)} values")
        return tuple(_check_type(v, a) for v, a in zip(value, args, strict=True))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errs = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a)
            except TypeError as e:
                errs.append(str(e))
        raise TypeError(" or ".join(errs))
    if origin is typing.Literal:
        args = typing.get_args(tp)
        if value not in args:
            raise TypeError("one of " + ", ".join(repr(a) for a in args))
        return value
    return value


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "config") -> T:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and wrong types raise TwinConfigError."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise TwinConfigError(
            f"unknown key(s) {', '.join(unknown)}",
            file=where,
            field=unknown[0],
            fix=f"valid keys: {', '.join(sorted(names))}",
        )
    kwargs = {}
    for k, v in data.items():
        try:
            kwargs[k] = _check_type(v, hints[k])
        except TypeError as e:
            raise TwinConfigError(f"got {v!r}, expected {e}", file=where, field=k, fix=f"set {k} to {e}") from None
    try:
        return cls(**kwargs)
    except ValueError as e:
        msg = str(e)
        key = next((n for n in sorted(names, key=len, reverse=True) if msg.startswith(n + " ")), None)
        raise TwinConfigError(
            msg, file=where, field=key,
            fix=f"change {key} as stated (ranges and defaults: README, Configuration)" if key
            else "see the documented defaults in the README",
        ) from None


def positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


# --------------------------------------------------------------------------------------------- stage configs


@dataclass(frozen=True)
class IngestConfig:
    """Ingest (docs/architecture.md "Ingest"). Heights in metres, frequencies in Hz."""

    level_height_m: float = 3.0  # building:levels x this
    roof_height_m: float = 1.0  # added to levels-derived heights (roof slab / parapet)
    default_height_m: float = 12.0  # untagged buildings (documented deterministic default)
    min_area_m2: float = 4.0  # smaller footprints are dropped as noise
    default_material: str = "concrete"
    ground_material: str = "concrete"
    ground_margin_m: float = 50.0  # ground plane extends this far beyond the buildings and towers
    default_tower_height_m: float = 25.0  # above ground when no building is under the site
    roof_mast_m: float = 3.0  # mast above the roof of the building under the site
    default_tx_power_dbm: float = 46.0  # per cell, 20 W (typical macro LTE)
    default_bandwidth_hz: float = 10e6
    default_tilt_deg: float = 6.0
    site_merge_m: float = 5.0  # cells closer than this with the same operator form one site
    max_tower_outside_m: float = 150.0  # towers up to this far outside the area are kept (flag outside_scene)
    default_earfcn: int = -1  # EARFCN for LTE rows without one (plain OpenCelliD dumps); -1: skip such rows

    def __post_init__(self) -> None:
        for n in ("level_height_m", "default_height_m", "default_tower_height_m", "default_bandwidth_hz"):
            positive(n, getattr(self, n))
        for n in ("roof_height_m", "min_area_m2", "ground_margin_m", "roof_mast_m", "site_merge_m", "max_tower_outside_m"):
            positive(n, getattr(self, n), allow_zero=True)


@dataclass(frozen=True)
class ReceiverConfig:
    """Receivers (docs/architecture.md "Render"): street-level points outside buildings."""

    mode: typing.Literal["random", "grid", "route"] = "random"
    count: int = 200  # random: number of points; route: number of points over all routes
    spacing_m: float = 20.0  # grid spacing
    height_m: float = 1.5  # above ground
    clearance_m: float = 1.0  # minimum distance to any building footprint
    num_routes: int = 4
    speed_mps: float = 1.39  # 5 km/h pedestrian, route mode
    sample_interval_s: float = 1.0  # time between route samples
    seed: int = 7
    # where receivers stand (twin.render.receivers): "streets" = within street_buffer_m of the area's street ways
    # (streets.parquet; without one: the open space of a bundled scene, else "built"), "built" = within
    # built_distance_m of a building, "bbox" = anywhere in the area's bounds outside buildings
    area: typing.Literal["streets", "built", "bbox"] = "streets"
    street_buffer_m: float = 3.0  # half-width of the corridor around a street's centre line, metres
    built_distance_m: float = 30.0  # "built": at most this far from a building footprint, metres

    def __post_init__(self) -> None:
        if self.area not in RECEIVER_AREAS:
            raise ValueError(f"area must be one of {', '.join(RECEIVER_AREAS)}, got {self.area!r}")
        positive("street_buffer_m", self.street_buffer_m)
        positive("built_distance_m", self.built_distance_m)
        positive("count", self.count)
        positive("spacing_m", self.spacing_m)
        positive("height_m", self.height_m, allow_zero=True)
        positive("clearance_m", self.clearance_m, allow_zero=True)
        positive("num_routes", self.num_routes)
        positive("speed_mps", self.speed_mps, allow_zero=True)
        positive("sample_interval_s", self.sample_interval_s)


#: Sionna RT's antenna patterns and polarizations (``sionna.rt.antenna_pattern`` registries; a test checks them)
ANTENNA_PATTERNS = ("tr38901", "iso", "dipole", "hw_dipole")
POLARIZATIONS = ("V", "H", "VH", "cross")


@dataclass(frozen=True)
class SolverSettings:
    """The keyword arguments of Sionna RT's ``PathSolver.__call__``, one field each, with Sionna's defaults.

    The one settings object of every ``PathSolver`` call: the trace stage (:meth:`TraceConfig.solver_settings`),
    ``twin bench trace`` and the bistatic-echo view. ``max_depth``: interactions per path;
    ``max_num_paths_per_src``: path buffer per source; ``samples_per_src``: rays shot per source;
    ``synthetic_array``: one element per side, arrays applied synthetically; the interaction switches as
    Sionna names them; ``diffraction_lit_region``: keep diffracted paths in the lit region; ``seed``: the
    solver's random seed.
    """

    max_depth: int = 3
    max_num_paths_per_src: int = 1_000_000
    samples_per_src: int = 1_000_000
    synthetic_array: bool = True
    los: bool = True
    specular_reflection: bool = True
    diffuse_reflection: bool = False
    refraction: bool = True
    diffraction: bool = False
    edge_diffraction: bool = False
    diffraction_lit_region: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        positive("max_depth", self.max_depth, allow_zero=True)
        positive("max_num_paths_per_src", self.max_num_paths_per_src)
        positive("samples_per_src", self.samples_per_src)
        positive("seed", self.seed, allow_zero=True)

    def kwargs(self) -> dict[str, Any]:
        """``PathSolver()(scene, **settings.kwargs())``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TraceConfig:
    """The trace stage: Sionna RT ``PathSolver`` settings, task sizes, antennas. Defaults measured on a 2-core
    CPU, etoile scene."""

    max_depth: int = 3
    samples_per_src: int = 100_000  # ~94% of the paths of 1e7 at a tenth of the cost of 1e6
    max_num_paths_per_src: int = 100_000  # buffer per source; 1e6 costs ~130 MB each
    max_path_buffer: int = 3_200_000  # a single receiver's full buffer is retried 4x larger up to this (NVlabs/sionna#1172)
    los: bool = True
    specular_reflection: bool = True
    diffuse_reflection: bool = False
    refraction: bool = True
    diffraction: bool = True  # etoile, 10 receivers: links with paths 27% -> 56% of pairs, at ~2x the cost
    edge_diffraction: bool = False
    diffraction_lit_region: bool = True  # diffracted paths in the lit region too (Sionna's default)
    seed: int = 42
    cells_per_task: int = 8  # cells that share a carrier, traced in one PathSolver call
    receivers_per_task: int = 256  # the most receivers in one task
    # the most receivers in one PathSolver call. Sionna's candidate de-duplication (a fixed 1e6-slot hash table
    # per source) discards distinct paths as the receivers of one call grow (NVlabs/sionna-rt#76). Measured with
    # `twin bench calls --build B --receivers 256` (3 cells x 256 receivers of a 4,000-receiver Paris build, one
    # Dr.Jit thread), against single-receiver calls: 256 per call found 95.8% of the paths (4.3% of links off by
    # > 1 dB), 64 per call 99.3% (1.1%) at 1.26x the time of 256, 32 per call 99.6% (1.1%) at 1.36x
    receivers_per_call: int = 64
    min_tasks: int = 8  # small builds: receiver batches shrink (to >= 16 receivers) until the plan has this many tasks
    min_path_gain_db: float = -250.0  # links whose total gain is below this are dropped
    antenna_pattern: str = "tr38901"  # tower element pattern: tr38901 | iso | dipole
    polarization: str = "V"
    rx_pattern: str = "iso"

    def __post_init__(self) -> None:
        if not 0 <= self.max_depth <= 10:
            raise ValueError(f"max_depth must be in 0..10, got {self.max_depth}")
        for n in ("samples_per_src", "max_num_paths_per_src", "max_path_buffer", "cells_per_task", "receivers_per_task",
                  "receivers_per_call", "min_tasks"):
            positive(n, getattr(self, n))
        positive("seed", self.seed, allow_zero=True)
        for n, allowed in (("antenna_pattern", ANTENNA_PATTERNS), ("rx_pattern", ANTENNA_PATTERNS),
                           ("polarization", POLARIZATIONS)):
            if getattr(self, n) not in allowed:
                raise ValueError(f"{n} must be one of {', '.join(allowed)}, got {getattr(self, n)!r}")

    def solver_settings(self) -> SolverSettings:
        """The ``PathSolver`` arguments of this config (synthetic arrays: one element per side)."""
        return SolverSettings(
            max_depth=self.max_depth,
            max_num_paths_per_src=self.max_num_paths_per_src,
            samples_per_src=self.samples_per_src,
            synthetic_array=True,
            los=self.los,
            specular_reflection=self.specular_reflection,
            diffuse_reflection=self.diffuse_reflection,
            refraction=self.refraction,
            diffraction=self.diffraction,
            edge_diffraction=self.edge_diffraction,
            diffraction_lit_region=self.diffraction_lit_region,
            seed=self.seed,
        )


_ADDRESS_RE = re.compile(r"^(tcp|tls|ws|wss|ucx|inproc)://[^\s/]+(:\d{1,5})?/?$")


def _check_memory_limit(value: str) -> None:
    """Dask's ``memory_limit``: "auto", a fraction of RAM ("0.5"), or bytes ("4GB", "512 MiB")."""
    v = value.strip().lower()
    if v in ("auto", "0", "none"):
        return
    try:
        f = float(v)
    except ValueError:
        f = None
    if f is not None:
        if math.isfinite(f) and f > 0:
            return
    elif re.match(r"^\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|k|m|g|t)$", v):
        return
    raise ValueError(
        f"memory_limit must be 'auto', a fraction of RAM such as '0.5', or bytes such as '4GB', got {value!r}"
    )


@dataclass(frozen=True)
class DaskConfig:
    """Distribution. One Dask thread per worker process; Dr.Jit's own pool has ``drjit_threads`` threads.

    The default layout is deterministic: one single-threaded Dr.Jit per worker and one worker per core (one
    in all on a GPU machine), so the same inputs give byte-identical CIR shards (multithreaded diffraction
    in Sionna RT is not reproducible; README, Guarantees). Layout: docs/architecture.md "Render".
    """

    scheduler_address: str | None = None  # existing cluster; also DASK_SCHEDULER_ADDRESS
    workers: int = 0  # local worker processes; 0: one per core on a CPU machine, one on a GPU machine
    threads_per_worker: int = 1
    drjit_threads: int = 1  # Dr.Jit threads per worker; 0: cores / workers (faster, not reproducible)
    blas_threads: int = 1  # BLAS/OpenMP threads per worker (threadpoolctl); 0: the libraries' own default (all cores)
    retries: int = 3  # task retries when a worker dies
    memory_limit: str = "auto"

    def __post_init__(self) -> None:
        positive("workers", self.workers, allow_zero=True)
        positive("retries", self.retries, allow_zero=True)
        positive("drjit_threads", self.drjit_threads, allow_zero=True)
        positive("blas_threads", self.blas_threads, allow_zero=True)
        _check_memory_limit(self.memory_limit)
        if self.scheduler_address is not None and not _ADDRESS_RE.match(self.scheduler_address):
            raise ValueError(
                f"scheduler_address must look like tcp://HOST:PORT (or tls://, ws://, inproc://), got {self.scheduler_address!r}"
            )
        if self.threads_per_worker != 1:
            raise ValueError("threads_per_worker must be 1 (Mitsuba objects must not be shared across threads)")


@dataclass(frozen=True)
class LimitsConfig:
    """Size guards checked before the work they protect (not hashed: they never change the data).

    ``max_area_km2``: a larger area needs ``--large-area`` (0: no cap). ``max_receivers``: more receivers
    than this are refused by a build (a dry run still answers, with the estimate); 0: no cap.
    """

    max_area_km2: float = 4.0
    max_receivers: int = 1_000_000

    def __post_init__(self) -> None:
        positive("max_area_km2", self.max_area_km2, allow_zero=True)
        positive("max_receivers", self.max_receivers, allow_zero=True)


@dataclass(frozen=True)
class SplitConfig:
    """``[split]``: the split table a build writes (rx_id -> split; ``twin.datasets.splits``). Defaults: spatially
    disjoint tiles of 50 m, 80/10/10 into train/validation/test, seed 0; ``enabled = false`` writes none.
    ``twin split D`` writes another one later with the same settings as flags."""

    by: typing.Literal["tile", "route", "cell", "random"] = "tile"
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1)
    names: tuple[str, ...] = ("train", "validation", "test")
    tile_m: float = 50.0  # tile edge, metres (local frame)
    seed: int = 0
    enabled: bool = True  # false: the build writes no split table

    def __post_init__(self) -> None:
        if self.by not in SPLIT_KINDS:
            raise ValueError(f"by must be one of {', '.join(SPLIT_KINDS)}, got {self.by!r}")
        f = [float(x) for x in self.fractions]
        if len(f) != len(self.names):
            raise ValueError(f"fractions ({len(f)} values) and names ({len(self.names)}) differ in length")
        if any(not math.isfinite(x) or x < 0 for x in f) or abs(sum(f) - 1.0) > 1e-6:
            raise ValueError(f"fractions must be >= 0 and add up to 1, got {tuple(f)}")
        if len(set(self.names)) != len(self.names) or not all(isinstance(n, str) and n for n in self.names):
            raise ValueError(f"names must be distinct non-empty strings, got {self.names}")
        if not (math.isfinite(self.tile_m) and self.tile_m > 0):
            raise ValueError(f"tile_m must be > 0 metres, got {self.tile_m}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build needs, as one TOML file with sections [ingest] [receivers] [trace] [dask] [limits]
    [split] [views.*]."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    receivers: ReceiverConfig = field(default_factory=ReceiverConfig)
    trace: TraceConfig = field(default_factory=TraceConfig)
    dask: DaskConfig = field(default_factory=DaskConfig)
    views: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per-view overrides, validated by the view
    max_links: int = 0  # 0: no cap
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    split: SplitConfig = field(default_factory=SplitConfig)


_SECTIONS = {"ingest": IngestConfig, "receivers": ReceiverConfig, "trace": TraceConfig, "dask": DaskConfig,
             "limits": LimitsConfig, "split": SplitConfig}


def load_build_config(path: str | Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> BuildConfig:
    """Read a TOML build config (all sections optional) and apply CLI overrides on top."""
    raw: dict[str, Any] = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.exists():
            raise TwinConfigError("file not found", file=p, fix="pass an existing TOML file to --config")
        if not p.is_file():
            raise TwinConfigError("is not a file", file=p, fix="pass a TOML file to --config, not a directory")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise TwinConfigError(f"not valid TOML ({e})", file=p, fix="check the TOML syntax") from None
        except OSError as e:
            raise TwinConfigError(f"cannot read the file ({e.strerror})", file=p, fix="check the path and permissions") from None
    unknown = sorted(set(raw) - set(_SECTIONS) - {"views", "max_links"})
    if unknown:
        raise TwinConfigError(
            f"unknown section(s) {', '.join(unknown)}",
            file=where,
            field=unknown[0],
            fix="sections: " + ", ".join([*_SECTIONS, "views"]) + "; top-level key: max_links",
        )
    kw: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = dict(raw.get(name, {}))
        section.update((overrides or {}).get(name, {}))
        kw[name] = from_mapping(cls, section, where=f"{where} [{name}]")
    views = raw.get("views", {})
    if not isinstance(views, dict):
        raise TwinConfigError("[views] must be a table of per-view tables", file=where, field="views")
    kw["views"] = validate_views(views, where=where)
    ml = raw.get("max_links", 0)
    kw["max_links"] = _check_int(ml, where, "max_links")
    return BuildConfig(**kw)


def _check_int(v: Any, where: str, name: str) -> int:
    try:
        out = _check_type(v, int)
    except TypeError as e:
        raise TwinConfigError(f"got {v!r}, expected {e}", file=where, field=name, fix=f"set {name} to {e}") from None
    if out < 0:
        raise TwinConfigError(f"must be >= 0, got {out}", file=where, field=name, fix=f"set {name} to 0 (no cap) or more")
    return out


def validate_views(views: Mapping[str, Any], *, where: str = "config") -> dict[str, dict[str, Any]]:
    """Check every ``[views.NAME]`` table against the registered view's config dataclass, before any work.

    An unknown view name, a table that is not a table, an unknown key, a wrong type or an out-of-range value
    raises :class:`TwinConfigError` (exit 2) naming the file, ``[views.NAME]``, the key and the valid keys.
    Returns the tables as plain dicts (the resolved view configs are built by the view stage).
    """
    from twin.datasets.registry import available_views, get_view

    out: dict[str, dict[str, Any]] = {}
    for name, table in views.items():
        section = f"{where} [views.{name}]"
        try:
            view = get_view(name)
        except KeyError:
            raise TwinConfigError(
                f"unknown view section [views.{name}]",
                file=where,
                field=f"views.{name}",
                fix=f"known views: {', '.join(available_views())}",
            ) from None
        if not isinstance(table, Mapping):
            raise TwinConfigError(
                f"views.{name} = {table!r} is not a table",
                file=where,
                field=f"views.{name}",
                fix=f"write [views.{name}] as a section of keys; top-level keys such as max_links go before any section",
            )
        from_mapping(view.config_cls, table, where=section)
        out[name] = dict(table)
    return out


def check_view_names(names: list[str], *, field: str = "--views") -> list[str]:
    """Every name in ``names`` is a registered view; TwinConfigError (exit 2) listing the known ones otherwise."""
    from twin.datasets.registry import available_views

    known = available_views()
    bad = [n for n in names if n not in known]
    if bad:
        raise TwinConfigError(
            f"unknown view(s) {', '.join(bad)}", field=field, fix=f"known views: {', '.join(known)} (`twin view list`)"
        )
    return names
