"""Scene bundles: deterministic packing, hash-checked unpacking into a cache, safe extraction."""

from __future__ import annotations

import io
import tarfile

import pytest

from twin.io import tree_sha256
from twin.render.bundle import SceneBundle, local_scene, materialize, pack_scene


def _scene(tmp_path):
    d = tmp_path / "scene"
    (d / "meshes").mkdir(parents=True)
    (d / "scene.xml").write_text("<scene version='2.1.0'/>")
    (d / "meshes" / "a.ply").write_bytes(b"ply\x00\x01" * 10)
    return d / "scene.xml"


def test_pack_is_deterministic_and_hash_is_the_tree_hash(tmp_path):
    xml = _scene(tmp_path)
    a, b = pack_scene(xml), pack_scene(xml)
    assert a.data == b.data and a.content_hash == tree_sha256(xml.parent) and a.xml == "scene.xml"


def test_materialize_unpacks_once_and_matches(tmp_path):
    xml = _scene(tmp_path)
    b = pack_scene(xml)
    out = materialize(b, cache=tmp_path / "cache")
    assert out.read_text() == xml.read_text() and tree_sha256(out.parent) == b.content_hash
    mtime = out.stat().st_mtime_ns
    assert materialize(b, cache=tmp_path / "cache") == out and out.stat().st_mtime_ns == mtime  # reused, not rewritten


def test_materialize_rejects_a_tampered_bundle(tmp_path):
    b = pack_scene(_scene(tmp_path))
    bad = SceneBundle(content_hash="0" * 64, xml=b.xml, data=b.data)
    with pytest.raises(ValueError, match="hash mismatch"):
        materialize(bad, cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / ("0" * 64)).exists()


def test_materialize_refuses_path_traversal(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(tarfile.TarError):
        materialize(SceneBundle("1" * 64, "scene.xml", buf.getvalue()), cache=tmp_path / "cache")
    assert not (tmp_path / "evil.txt").exists()


def test_local_scene_prefers_the_visible_file_then_the_bundle(tmp_path, monkeypatch):
    xml = _scene(tmp_path)
    b = pack_scene(xml)
    monkeypatch.setenv("TWIN_SCENE_CACHE", str(tmp_path / "cache"))
    assert local_scene(str(xml), b.content_hash, b) == str(xml)
    gone = tmp_path / "elsewhere" / "scene.xml"  # the client's path does not exist on this "worker"
    got = local_scene(str(gone), b.content_hash, b)
    assert got.startswith(str(tmp_path / "cache")) and open(got).read() == xml.read_text()
    with pytest.raises(FileNotFoundError):
        local_scene(str(gone), b.content_hash, None)
