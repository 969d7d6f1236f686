"""Cache folders are private and entries are bound to what they were made from (issue 14, item 7)."""
import logging
import os
import stat
import tempfile

import pytest

from ivif_ros.backends import engine_cache
from ivif_ros.backends.engine_cache import EngineCache, private_cache_dir, read_entry, write_entry
from ivif_ros.backends.onnx_backend import cached_onnx, export_key, has_onnxruntime

OTHER_UID = 65534  # "nobody"


@pytest.fixture(autouse=True)
def _fresh_fallbacks(monkeypatch, tmp_path):
    monkeypatch.setattr(engine_cache, "_FALLBACK_DIRS", {})
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))  # mkdtemp and the /tmp fallback land here


def owned_by_someone_else(folder, monkeypatch):
    """Make ``folder`` belong to another user: chown as root, else pretend this process is another uid."""
    if os.getuid() == 0:
        os.chown(folder, OTHER_UID, OTHER_UID)
    else:
        real = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real + 1)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_folders_are_created_private(tmp_path):
    folder = private_cache_dir(tmp_path / "home" / ".cache" / "onnx", "onnx")
    assert folder == tmp_path / "home" / ".cache" / "onnx"
    for level in (folder, folder.parent, folder.parent.parent):
        assert mode_of(level) == 0o700


def test_group_or_other_writable_folder_is_refused(tmp_path, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="ivif_ros.backends"):
        folder = private_cache_dir(shared, "onnx")
    assert folder != shared and mode_of(folder) == 0o700 and os.stat(folder).st_uid == os.getuid()
    assert "writable by group or others (mode 777)" in caplog.text
    assert private_cache_dir(shared, "onnx") == folder  # one fallback per process, not one per call


def test_folder_owned_by_another_user_is_refused(tmp_path, monkeypatch, caplog):
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    owned_by_someone_else(foreign, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="ivif_ros.backends"):
        folder = private_cache_dir(foreign, "tensorrt")
    assert folder != foreign and "owned by uid" in caplog.text


def test_engine_cache_in_a_writable_folder_uses_a_private_one(tmp_path):
    shared = tmp_path / "engines"
    shared.mkdir()
    shared.chmod(0o775)
    cache = EngineCache(shared)
    assert cache.requested == shared and cache.directory != shared and mode_of(cache.directory) == 0o700


def test_entry_bound_to_its_key(tmp_path):
    path = tmp_path / "x.entry"
    write_entry(path, {"model_sha256": "a" * 64, "opset": 17}, b"payload")
    assert mode_of(path) == 0o600
    assert read_entry(path, {"model_sha256": "a" * 64, "opset": 17}) == (b"payload", None)
    data, reason = read_entry(path, {"model_sha256": "b" * 64, "opset": 17})
    assert data is None and "another key" in reason
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert read_entry(path, {"model_sha256": "a" * 64, "opset": 17})[1].startswith("sha256 mismatch")


needs_export = pytest.mark.skipif(
    not has_onnxruntime(), reason="onnxruntime is not installed (export checked through it)"
)


@needs_export
def test_planted_onnx_in_the_predictable_tmp_fallback_is_not_loaded(fast_net, tmp_path, monkeypatch, caplog):
    """Home cache unwritable → /tmp/ivif_ros-onnx-<uid>; another user created that folder first and
    planted an entry with the right name and key. It must not be used."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("IVIF_CACHE_DIR", str(blocker / "cache"))  # mkdir fails: NotADirectoryError
    planted_dir = tmp_path / "tmp" / f"ivif_ros-onnx-{os.getuid()}"
    planted_dir.mkdir(mode=0o777)
    planted_dir.chmod(0o777)
    honest = cached_onnx(fast_net, tmp_path / "honest")
    write_entry(planted_dir / honest.path.name, export_key(fast_net, 17, "fp32"), b"\x08\x07 planted graph")
    with caplog.at_level(logging.WARNING, logger="ivif_ros.backends"):
        graph = cached_onnx(fast_net)
    assert graph.path.parent != planted_dir and b"planted" not in graph.data and graph.data == honest.data
    assert "not writable" in caplog.text and "refusing onnx cache" in caplog.text


@needs_export
@pytest.mark.parametrize(
    "field,value", [("model_sha256", "0" * 64), ("precision", "fp16"), ("recipe", -1), ("torch", "0.0.1")]
)
def test_onnx_entry_made_from_something_else_is_exported_again(fast_net, tmp_path, caplog, field, value):
    graph = cached_onnx(fast_net, tmp_path)
    key = dict(export_key(fast_net, 17, "fp32"), **{field: value})
    write_entry(graph.path, key, b"stale graph")
    with caplog.at_level(logging.WARNING, logger="ivif_ros.backends"):
        again = cached_onnx(fast_net, tmp_path)
    assert again.path == graph.path and again.data == graph.data
    assert "written for another key" in caplog.text
