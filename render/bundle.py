"""Scene bundles for workers that cannot see the build directory (Dask on Kubernetes, cloud VMs).

The client packs ``scene/`` (the Mitsuba XML and its meshes) into one deterministic tar archive, scatters it to
the cluster once per build, and every trace task receives it beside the client-side path. A worker that sees the
client's scene file with the same content hash uses it as is; any other worker unpacks the archive once into a
local cache keyed by that hash (``$TWIN_SCENE_CACHE``, default ``<tmp>/twin-scenes``) and loads it from there.
Shards never need the shared file system either: trace tasks return their Arrow table and the client writes and
registers it (see the trace stage).

The content hash is :func:`twin.io.tree_sha256` of the scene folder: the same value the ingest stage records as
``scene.hash`` in ``twin.json``.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from twin.io import tree_sha256

log = logging.getLogger(__name__)

#: Environment variable naming the worker-side cache of unpacked scene bundles.
CACHE_ENV = "TWIN_SCENE_CACHE"


@dataclass(frozen=True)
class SceneBundle:
    """A scene folder as bytes: ``data`` is an uncompressed tar of the folder, ``xml`` the scene file inside it."""

    content_hash: str  # tree_sha256 of the folder
    xml: str  # relative path of the scene XML inside the folder, e.g. "scene.xml"
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


def pack_scene(scene_xml: str | Path) -> SceneBundle:
    """Pack the folder holding ``scene_xml`` (and its meshes) into a :class:`SceneBundle`.

    The archive is deterministic (sorted members, zero mtimes, no owners), so the same scene gives the same bytes.
    """
    xml = Path(scene_xml).resolve()
    folder = xml.parent
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(folder.rglob("*")):
            if not p.is_file() or p.is_symlink():
                continue
            info = tarfile.TarInfo(p.relative_to(folder).as_posix())
            info.size = p.stat().st_size
            info.mtime = 0
            info.mode = 0o644
            with p.open("rb") as f:
                tar.addfile(info, f)
    return SceneBundle(content_hash=tree_sha256(folder), xml=xml.name, data=buf.getvalue())


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "twin-scenes")


def materialize(bundle: SceneBundle, cache: Path | None = None) -> Path:
    """The scene XML of ``bundle`` on this machine: unpacked once into ``cache/<hash>/`` (atomic rename), then reused.

    Members are extracted with tarfile's ``data`` filter (no absolute paths, no ``..``, no links, no devices), and
    the unpacked folder's hash must equal ``bundle.content_hash``.
    """
    base = Path(cache) if cache is not None else cache_root()
    dest = base / bundle.content_hash
    xml = dest / bundle.xml
    if xml.is_file():
        return xml
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.content_hash[:12]}.", dir=base))
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:") as tar:
            tar.extractall(tmp, filter="data")
        got = tree_sha256(tmp)
        if got != bundle.content_hash:
            raise ValueError(f"scene bundle hash mismatch: expected {bundle.content_hash[:12]}, unpacked {got[:12]}")
        try:
            os.replace(tmp, dest)  # another task of this machine may have won the race: then use its copy
        except OSError:
            if not xml.is_file():
                raise
        log.info("unpacked scene bundle %s (%d bytes) into %s", bundle.content_hash[:12], bundle.nbytes, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return xml


def local_scene(scene_xml: str, content_hash: str, bundle: SceneBundle | None) -> str:
    """The scene file a task should load: the client's path when this machine sees it, else the unpacked bundle.

    ``content_hash`` is the build's recorded scene hash; the client's file is used only when its folder still has it
    (checked once per process and path).
    """
    p = Path(scene_xml)
    if p.is_file() and _hash_of(p) == content_hash:
        return str(p)
    if bundle is None:
        raise FileNotFoundError(f"scene {scene_xml} is not visible on this worker and no scene bundle was shipped")
    return str(materialize(bundle))


_HASHES: dict[tuple[str, int], str] = {}


def _hash_of(xml: Path) -> str:
    """tree_sha256 of the folder holding ``xml``, cached per (path, modification time of the XML)."""
    key = (str(xml.resolve()), xml.stat().st_mtime_ns)
    h = _HASHES.get(key)
    if h is None:
        h = _HASHES[key] = tree_sha256(xml.parent)
    return h
