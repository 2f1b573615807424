"""Column names, types and units of every table the stages exchange (docs/architecture.md "Contracts"). One place, one contract.

Units: metres (local frame: x east, y north, z up), seconds, Hz, dBm for power, dB for gains, radians for
angles (theta from zenith, phi from +x, as Sionna) unless a name ends in ``_deg``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pyarrow as pa

SCHEMA_VERSION = "1"

# Parquet key-value metadata keys carried by every file the project writes.
META_SCHEMA_VERSION = "twin.schema_version"
META_CONFIG_HASH = "twin.config_hash"
META_CONFIG = "twin.config"
META_SCENE_HASH = "twin.scene_hash"
META_CODE_VERSION = "twin.code_version"
META_VIEW = "twin.view"
META_TASK_KEY = "twin.task_key"

# --------------------------------------------------------------------------------------------- buildings
BUILDING_COLUMNS = {
    "building_id": "int64 — dense id within the build",
    "osm_id": "string — e.g. 'way/123' or 'relation/45'; scene object name for a bundled scene",
    "height_m": "float64 — height above ground, metres",
    "height_source": "string — tag | levels | default | scene",
    "material": "string — ITU radio material name (Sionna itu_* without prefix), e.g. 'concrete'",
    "material_source": "string — tag | default | scene",
    "area_m2": "float64 — footprint area, local frame",
    "num_holes": "int32 — inner rings (courtyards)",
    "geometry": "WKB Polygon/MultiPolygon, EPSG:4326 (GeoParquet primary column)",
    "geometry_local": "WKB Polygon/MultiPolygon in the local frame, metres",
}
HEIGHT_SOURCES = ("tag", "levels", "default", "scene")

# ------------------------------------------------------------------------------------------------ towers
TOWER_COLUMNS = {
    "cell_id": "string — unique cell id, '<mcc>-<mnc>-<tac>-<cid>'",
    "site_id": "string — one mast; cells of one site share it",
    "radio": "string — LTE | NR | UMTS | GSM",
    "mcc": "int32", "mnc": "int32", "tac": "int64", "cid": "int64",
    "pci": "int32 — physical cell id (LTE 0..503, NR 0..1007), -1 when unknown",
    "earfcn": "int64 — EARFCN (LTE) or NR-ARFCN (NR), -1 when unknown",
    "band": "int32 — 3GPP operating band",
    "frequency_hz": "float64 — downlink carrier",
    "bandwidth_hz": "float64 — channel bandwidth",
    "tx_power_dbm": "float64 — per-cell transmit power",
    "azimuth_deg": "float64 — sector boresight, degrees clockwise from north",
    "tilt_deg": "float64 — downtilt, degrees, positive down",
    "height_m": "float64 — antenna height above ground",
    "height_source": "string — csv | roof | default",
    "azimuth_source": "string — csv | default_sectors",
    "lat": "float64", "lon": "float64",
    "x": "float64 — local frame, metres", "y": "float64", "z": "float64 — antenna height above local ground",
    "source_file": "string", "source_row": "int64 — 1-based line number in the source CSV",
    "quality_flags": "string — comma-separated notes on repairs",
    "geometry": "WKB Point, EPSG:4326",
}

# --------------------------------------------------------------------------------------------- receivers
RECEIVER_SCHEMA = pa.schema(
    [
        pa.field("rx_id", pa.int64()),
        pa.field("x", pa.float64()),
        pa.field("y", pa.float64()),
        pa.field("z", pa.float64()),
        pa.field("kind", pa.string()),  # grid | route | random
        pa.field("route_id", pa.int64()),  # -1 when not on a route
        pa.field("t_s", pa.float64()),  # time stamp along the route, seconds; 0 otherwise
        pa.field("vx", pa.float64()),  # velocity, m/s, local frame
        pa.field("vy", pa.float64()),
        pa.field("vz", pa.float64()),
    ]
)
RECEIVER_KINDS = ("grid", "route", "random")
#: receivers.parquet is GeoParquet (``twin.geo``): the columns of RECEIVER_SCHEMA plus ``geometry``
RECEIVER_COLUMNS = {
    "rx_id": "int64 — dense id within the build",
    "x": "float64 — local frame, metres east of the origin", "y": "float64 — metres north",
    "z": "float64 — antenna height above local ground, metres",
    "kind": "string — grid | route | random",
    "route_id": "int64 — -1 when not on a route", "t_s": "float64 — time along the route, seconds",
    "vx": "float64 — velocity, m/s, local frame", "vy": "float64", "vz": "float64",
    "geometry": "WKB Point, EPSG:4326 (GeoParquet primary column), computed from x, y",
}

# ------------------------------------------------------------------------------------------------- splits
#: the split table of a build (rx_id -> split), registered in the catalog under the view name SPLIT_VIEW
SPLIT_VIEW = "split"
SPLIT_PATH = "splits/split.parquet"
SPLIT_SCHEMA = pa.schema(
    [
        pa.field("rx_id", pa.int64()),
        pa.field("split", pa.string()),  # e.g. train | validation | test
        pa.field("group", pa.string()),  # what was kept whole: "ix,iy" tile, "route:N", "site:ID", "rx:N"
    ]
)

# --------------------------------------------------------------------------------------------------- CIR
CIR_SCHEMA = pa.schema(
    [
        pa.field("link_id", pa.uint64()),
        pa.field("tx_id", pa.string()),
        pa.field("rx_id", pa.int64()),
        pa.field("tx_x", pa.float64()),
        pa.field("tx_y", pa.float64()),
        pa.field("tx_z", pa.float64()),
        pa.field("rx_x", pa.float64()),
        pa.field("rx_y", pa.float64()),
        pa.field("rx_z", pa.float64()),
        pa.field("frequency_hz", pa.float64()),
        pa.field("num_paths", pa.int32()),
        pa.field("tau_s", pa.list_(pa.float64())),
        pa.field("a_re", pa.list_(pa.float32())),
        pa.field("a_im", pa.list_(pa.float32())),
        pa.field("theta_t", pa.list_(pa.float32())),
        pa.field("phi_t", pa.list_(pa.float32())),
        pa.field("theta_r", pa.list_(pa.float32())),
        pa.field("phi_r", pa.list_(pa.float32())),
        pa.field("doppler_hz", pa.list_(pa.float32())),
        pa.field("interactions", pa.list_(pa.list_(pa.uint8()))),
        pa.field("los", pa.bool_()),
        pa.field("los_distance_m", pa.float64()),
        pa.field("path_gain_db", pa.float32()),
    ]
)
CIR_COLUMNS = tuple(CIR_SCHEMA.names)

# Sionna RT 2.x interaction codes (sionna.rt.constants.InteractionType)
INTERACTION_NONE = 0
INTERACTION_SPECULAR = 1
INTERACTION_DIFFUSE = 2
INTERACTION_REFRACTION = 4
INTERACTION_DIFFRACTION = 8

# ------------------------------------------------------------------------------------------ view tensors


def tensor_type(shape: Sequence[int], value_type: pa.DataType = pa.float32()) -> pa.DataType:
    """Nested ``fixed_size_list`` type for a tensor of ``shape`` (docs/architecture.md "Contracts").

    Complex tensors are stored with a trailing axis of 2 (re, im); include it in ``shape``.
    """
    t = value_type
    for n in reversed(list(shape)):
        t = pa.list_(t, int(n))
    return t


def tensor_field(
    name: str,
    shape: Sequence[int],
    axes: Sequence[str],
    value_type: pa.DataType = pa.float32(),
    *,
    units: str = "",
    extra: Mapping[str, object] | None = None,
) -> pa.Field:
    """A tensor column with its shape, axis names and units in the field metadata."""
    if len(shape) != len(axes):
        raise ValueError(f"tensor_field {name!r}: shape {tuple(shape)} and axes {tuple(axes)} differ in rank")
    meta = {"shape": json.dumps([int(s) for s in shape]), "axes": json.dumps(list(axes)), "units": units}
    for k, v in (extra or {}).items():
        meta[k] = json.dumps(v) if not isinstance(v, str) else v
    return pa.field(name, tensor_type(shape, value_type), metadata=meta)


def tensor_array(values, field: pa.Field) -> pa.Array:
    """Build a nested fixed_size_list array for ``field`` from a numpy array of shape (rows, *shape)."""
    import numpy as np

    arr = np.ascontiguousarray(values)
    shape = json.loads(field.metadata[b"shape"])
    if tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"tensor column {field.name!r}: expected (rows, {shape}), got {arr.shape}")
    # innermost value type
    t = field.type
    while pa.types.is_fixed_size_list(t):
        t = t.value_type
    flat = pa.array(arr.reshape(-1).astype(t.to_pandas_dtype(), copy=False), type=t)
    out: pa.Array = flat
    for n in reversed(shape):
        out = pa.FixedSizeListArray.from_arrays(out, int(n))
    return out


def tensor_to_numpy(column: pa.ChunkedArray | pa.Array, field: pa.Field):
    """Inverse of :func:`tensor_array`: a numpy array of shape (rows, *shape)."""
    import numpy as np

    shape = json.loads(field.metadata[b"shape"])
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column
    for _ in shape:
        flat = flat.flatten()
    return np.asarray(flat.to_numpy(zero_copy_only=False)).reshape((len(column), *shape))


def file_metadata(
    *,
    config_hash: str,
    scene_hash: str = "",
    view: str = "cir",
    config: Mapping[str, object] | None = None,
    task_key: str = "",
) -> dict[str, str]:
    """Key-value metadata every Parquet file carries (docs/architecture.md "Contracts")."""
    from twin import __version__

    meta = {
        META_SCHEMA_VERSION: SCHEMA_VERSION,
        META_CONFIG_HASH: config_hash,
        META_SCENE_HASH: scene_hash,
        META_CODE_VERSION: __version__,
        META_VIEW: view,
    }
    if config is not None:
        meta[META_CONFIG] = json.dumps(config, sort_keys=True, default=str)
    if task_key:
        meta[META_TASK_KEY] = task_key
    return meta
