"""Per-process cache of loaded Sionna RT scenes (a worker loads each scene once and reuses it).

A scene is keyed by (absolute path, file modification time in ns), so an edited scene file is reloaded.
The cached :class:`sionna.rt.Scene` is shared by every task of the process: callers must remove the
transmitters and receivers they add (``twin.render.trace`` does) and set ``scene.frequency`` per call.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from twin.errors import TwinInputError

log = logging.getLogger(__name__)

THREADS_ENV = "TWIN_DRJIT_THREADS"

_CACHE: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()
_THREADS_SET: int | None = None


def _apply_thread_count() -> None:
    """Apply ``TWIN_DRJIT_THREADS`` (when set and > 0) to Dr.Jit's thread pool; invalid values are ignored."""
    global _THREADS_SET
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return
    try:
        n = int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; ignored", THREADS_ENV, raw)
        return
    if n <= 0 or n == _THREADS_SET:
        return
    import drjit as dr

    dr.set_thread_count(n)
    _THREADS_SET = n


def setup_backend() -> str:
    """Select the Mitsuba variant (``twin.llvm.setup_mitsuba``) and apply the Dr.Jit thread count. Returns the variant."""
    from twin.llvm import setup_mitsuba

    variant = setup_mitsuba()
    _apply_thread_count()
    return variant


def _scene_file(xml_path: str, frequency_hz: float) -> Path:
    if not isinstance(frequency_hz, int | float) or not frequency_hz > 0:
        raise ValueError(f"frequency_hz must be a positive number of Hz, got {frequency_hz!r}")
    p = Path(xml_path)
    if not p.is_file():
        raise TwinInputError(
            "scene file not found", file=p, field="scene_xml", fix="run `twin build` ingest first or pass an existing Mitsuba XML"
        )
    return p


def _load(p: Path):
    """A new Sionna scene from ``p`` with twin's loading options and the extrapolating ITU materials."""
    import sionna.rt as rt

    try:
        scene = rt.load_scene(str(p), merge_shapes=True)
    except Exception as e:  # noqa: BLE001 - Mitsuba raises plain RuntimeError on bad XML
        raise TwinInputError(
            f"Sionna RT cannot load the scene ({e})",
            file=p,
            field="scene_xml",
            fix="re-run the ingest stage to regenerate the scene",
        ) from None
    from twin.render.itu import extend_itu_materials

    extend_itu_materials(scene)  # carriers outside ITU-R P.2040's ranges (e.g. 800 MHz) extrapolate
    return scene


def _set_frequency(scene, frequency_hz: float):
    if float(scene.frequency[0]) != float(frequency_hz):  # setting it re-evaluates the ITU materials
        scene.frequency = float(frequency_hz)
    return scene


def load_scene(xml_path: str, frequency_hz: float):
    """Load (or reuse) the Mitsuba/Sionna scene at ``xml_path`` and set its carrier to ``frequency_hz`` (Hz).

    Raises :class:`TwinInputError` when the file is missing or Sionna cannot parse it.
    """
    p = _scene_file(xml_path, frequency_hz)
    key = (str(p.resolve()), p.stat().st_mtime_ns)
    setup_backend()
    with _LOCK:
        scene = _CACHE.get(key)
        if scene is None:
            scene = _load(p)
            # drop stale versions of the same file
            for k in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[k]
            _CACHE[key] = scene
            log.debug("loaded scene %s", p)
    return _set_frequency(scene, frequency_hz)


def load_scene_copy(xml_path: str, frequency_hz: float):
    """A private copy of the scene at ``xml_path`` (not cached), loaded as :func:`load_scene` loads it.

    For callers that edit the scene's objects (e.g. sensing targets, which rebuild the Mitsuba scene): the same
    file, loading options and ITU materials as the trace stage, without touching the shared cached scene.
    """
    p = _scene_file(xml_path, frequency_hz)
    setup_backend()
    return _set_frequency(_load(p), frequency_hz)


def clear_cache() -> None:
    """Forget every cached scene (tests; long-lived workers after a rebuild)."""
    with _LOCK:
        _CACHE.clear()
