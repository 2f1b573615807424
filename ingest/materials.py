"""OSM material tags -> ITU-R P.2040 radio materials of Sionna RT, checked against the carrier frequency.

Sionna RT's ``ITURadioMaterial`` evaluates ITU-R P.2040-3 Table 3 (permittivity a·f^b, conductivity c·f^d, f in
GHz) only inside each material's listed frequency ranges and raises ``ValueError`` outside them (e.g. concrete is
defined for 1-100 GHz and 110-330 GHz, so an 800 MHz LTE carrier cannot use it). The ranges are read from
Sionna's own table (``sionna/rt/radio_materials/itu.py``) without importing Mitsuba.

Material names here are Sionna's ITU types without the ``itu_`` prefix (``'concrete'``), as the buildings table
stores them; the scene writer adds ``itu_`` for ids.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from twin.errors import TwinInputError

# OSM building:material / building:facade:material values -> ITU type (a registry, extend by assignment).
OSM_TO_ITU: dict[str, str] = {
    "concrete": "concrete",
    "reinforced_concrete": "concrete",
    "cement_block": "concrete",
    "cement": "concrete",
    "concrete_block": "concrete",
    "plaster": "plasterboard",
    "plasterboard": "plasterboard",
    "stucco": "plasterboard",
    "render": "plasterboard",
    "brick": "brick",
    "bricks": "brick",
    "clay": "brick",
    "adobe": "brick",
    "glass": "glass",
    "mirror": "glass",
    "metal": "metal",
    "steel": "metal",
    "aluminium": "metal",
    "aluminum": "metal",
    "copper": "metal",
    "metal_plates": "metal",
    "wood": "wood",
    "timber_framing": "wood",
    "timber": "wood",
    "log": "wood",
    "bamboo": "wood",
    "plywood": "plywood",
    "stone": "marble",  # closest ITU entry to dense natural stone
    "sandstone": "marble",
    "limestone": "marble",
    "granite": "marble",
    "marble": "marble",
    "tiles": "marble",
}


@lru_cache(maxsize=1)
def itu_frequency_ranges() -> dict[str, tuple[tuple[float, float], ...]]:
    """Sionna's ITU table as {type: ((f_min_hz, f_max_hz), ...)}, parsed from its source file (no Mitsuba)."""
    spec = importlib.util.find_spec("sionna")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("sionna-rt is not installed; install it with `pip install sionna-rt`")
    src = Path(next(iter(spec.submodule_search_locations))) / "rt" / "radio_materials" / "itu.py"
    tree = ast.parse(src.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ITU_MATERIALS_PROPERTIES" for t in node.targets
        ):
            table = ast.literal_eval(node.value)
            return {
                name: tuple((float(lo) * 1e9, float(hi) * 1e9) for (lo, hi) in ranges)
                for name, ranges in table.items()
            }
    raise RuntimeError(f"ITU_MATERIALS_PROPERTIES not found in {src}")


def is_valid_at(itu_type: str, frequencies_hz: Iterable[float]) -> bool:
    """Whether Sionna can evaluate ``itu_type`` at every frequency (Hz), ITU-R P.2040 Table 3 ranges."""
    ranges = itu_frequency_ranges().get(itu_type)
    if ranges is None:
        return False
    return all(any(lo <= f <= hi for lo, hi in ranges) for f in frequencies_hz)


def valid_materials(frequencies_hz: Iterable[float]) -> list[str]:
    """ITU types defined at every frequency (Hz)."""
    fs = list(frequencies_hz)
    return sorted(n for n in itu_frequency_ranges() if n != "vacuum" and is_valid_at(n, fs))


def _freqs(frequency_hz) -> tuple[float, ...]:
    if frequency_hz is None:
        return ()
    if isinstance(frequency_hz, int | float):
        return (float(frequency_hz),)
    return tuple(float(f) for f in frequency_hz)


def check_material(name: str, frequency_hz=None, *, field: str = "default_material") -> str:
    """Validate a configured ITU type (with or without ``itu_`` prefix) at the carrier(s); returns the bare name."""
    bare = name[4:] if name.startswith("itu_") else name
    fs = _freqs(frequency_hz)
    if bare not in itu_frequency_ranges():
        raise TwinInputError(
            f"unknown ITU material {name!r}",
            field=field,
            fix=f"use one of: {', '.join(valid_materials(fs) if fs else sorted(itu_frequency_ranges()))}",
        )
    if fs and not is_valid_at(bare, fs):
        ghz = ", ".join(f"{f / 1e9:g}" for f in fs)
        raise TwinInputError(
            f"ITU material {bare!r} is not defined at {ghz} GHz (ITU-R P.2040 Table 3 ranges in Sionna RT)",
            field=field,
            fix=f"use one defined there: {', '.join(valid_materials(fs)) or 'none'}; or trace another carrier",
        )
    return bare


@dataclass(frozen=True)
class MaterialChoice:
    material: str  # bare ITU type
    source: str  # tag | default
    note: str = ""  # why a tag was not used


def material_for_tags(tags: dict, *, default: str = "concrete", frequency_hz=None) -> MaterialChoice:
    """Material of a building from ``building:material``, then ``building:facade:material`` / ``facade:material``.

    Unknown values or ones not defined at the carrier fall back to ``default`` (which must be valid; see
    :func:`check_material`), with ``source='default'`` and a note.
    """
    fs = _freqs(frequency_hz)
    note = ""
    for key in ("building:material", "building:facade:material", "facade:material"):
        raw = tags.get(key)
        if raw is None or str(raw).strip() == "" or str(raw) == "nan":
            continue
        value = str(raw).strip().lower().split(";")[0].strip().replace(" ", "_")
        itu = OSM_TO_ITU.get(value)
        if itu is None:
            note = f"{key}={raw!r} has no ITU mapping"
            continue
        if fs and not is_valid_at(itu, fs):
            note = f"{key}={raw!r} -> {itu} is not defined at the carrier"
            continue
        return MaterialChoice(itu, "tag")
    return MaterialChoice(default, "default", note)


__all__ = [
    "OSM_TO_ITU",
    "MaterialChoice",
    "check_material",
    "is_valid_at",
    "itu_frequency_ranges",
    "material_for_tags",
    "valid_materials",
]
