"""engine_cache: keys, fingerprints, one-file entries, the lock, and rebuild-on-corruption."""
import threading
import time

import pytest
import torch

from ivif_ros.backends.engine_cache import (
    ENTRY_MAGIC,
    EngineCache,
    EngineKey,
    default_cache_dir,
    model_fingerprint,
    profile_from_resolutions,
)
from ivif_ros.models import create_model

PROFILE = profile_from_resolutions([(256, 320), (1024, 1280)])


def make_key(**changes) -> EngineKey:
    fields = dict(gpu_name="NVIDIA H100 80GB HBM3", trt_version="10.3.0", onnx_sha256="ab" * 32,
                  profile=PROFILE, precision="fp16")
    fields.update(changes)
    return EngineKey(**fields)


class TestProfile:
    def test_min_opt_max(self):
        low, opt, high = profile_from_resolutions([(512, 640), (256, 1280), (1024, 320)])
        assert low == (1, 2, 32, 32)  # one window: any detector_scale that keeps a window fits
        assert opt == (1, 2, 512, 640)
        assert high == (1, 2, 1024, 1280)

    def test_max_batch(self):
        low, opt, high = profile_from_resolutions([(256, 320)], max_batch=8)
        assert low[0] == opt[0] == 1 and high == (8, 2, 256, 320)
        with pytest.raises(ValueError):
            profile_from_resolutions([(256, 320)], max_batch=0)

    @pytest.mark.parametrize("bad", [[], [(16, 640)], [(512, 31)]])
    def test_refuses_bad(self, bad):
        with pytest.raises(ValueError):
            profile_from_resolutions(bad)


class TestEngineKey:
    def test_every_field_changes_the_digest(self):
        base = make_key()
        variants = [
            make_key(gpu_name="NVIDIA H200"),
            make_key(trt_version="10.4.0"),
            make_key(onnx_sha256="cd" * 32),
            make_key(profile=profile_from_resolutions([(256, 320), (512, 640)])),
            make_key(precision="fp32"),
            make_key(compute_capability="9.0"),
            make_key(cuda_major="13"),
            make_key(builder_flags=("strongly_typed", "no_tf32")),
        ]
        digests = {base.digest()} | {v.digest() for v in variants}
        assert len(digests) == 1 + len(variants)
        assert len({base.filename()} | {v.filename() for v in variants}) == 1 + len(variants)

    def test_digest_is_stable_and_filename_is_safe(self):
        assert make_key().digest() == make_key().digest()
        name = make_key(gpu_name="NVIDIA GeForce RTX 4090 / (x)").filename()
        assert "/" not in name and " " not in name and name.endswith(".engine")
        assert "fp16" in name and "trt10.3.0" in name


class TestFingerprint:
    def test_weights_stride_and_kwargs_matter(self):
        torch.manual_seed(0)
        net = create_model("fast")
        same = create_model("fast")
        same.load_state_dict(net.state_dict())
        assert model_fingerprint(net) == model_fingerprint(same)
        with torch.no_grad():
            same.compare[0].bias[0] += 1e-3
        assert model_fingerprint(net) != model_fingerprint(same)
        strided = create_model("fast")
        strided.load_state_dict(net.state_dict())
        strided.stride = 16
        assert model_fingerprint(net) != model_fingerprint(strided)
        assert model_fingerprint(net) != model_fingerprint(create_model("fast", width=16))

    def test_batchnorm_buffers_matter(self):
        net = create_model("fast")
        before = model_fingerprint(net)
        net.encoder[1].running_mean += 0.5
        assert model_fingerprint(net) != before


def test_default_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("IVIF_CACHE_DIR", str(tmp_path))
    assert default_cache_dir("tensorrt") == tmp_path / "tensorrt"
    monkeypatch.delenv("IVIF_CACHE_DIR")
    assert default_cache_dir("onnx").parts[-3:] == (".cache", "ivif_ros", "onnx")


class FakeBuilder:
    """Stands in for TensorRT: an 'engine' is bytes starting with a magic header."""

    MAGIC = b"FAKEENGINE"

    def __init__(self):
        self.builds = 0
        self.deserialized = 0

    def build(self) -> bytes:
        self.builds += 1
        return self.MAGIC + bytes(range(64)) * 4

    def deserialize(self, data: bytes):
        self.deserialized += 1
        if not data.startswith(self.MAGIC):
            raise RuntimeError("Serialization assertion magicTagRead == kMAGIC_TAG failed")
        return {"engine": len(data)}


class TestEngineCache:
    def test_build_then_load(self, tmp_path):
        cache, fake, key = EngineCache(tmp_path / "engines"), FakeBuilder(), make_key()
        engine, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 1 and engine["engine"] > 0
        entries = [p for p in (tmp_path / "engines").iterdir() if not p.name.startswith(".")]
        assert entries == [cache.path_for(key)]  # engine and key in one file, no sidecar
        assert cache.path_for(key).read_bytes().startswith(ENTRY_MAGIC)
        engine2, built2 = cache.load_or_build(key, fake.build, fake.deserialize)
        assert not built2 and fake.builds == 1 and engine2 == engine
        assert not list((tmp_path / "engines").glob(".tmp-*"))

    def test_another_key_is_not_served(self, tmp_path):
        cache, fake = EngineCache(tmp_path), FakeBuilder()
        cache.load_or_build(make_key(), fake.build, fake.deserialize)
        _, built = cache.load_or_build(make_key(trt_version="10.4.0"), fake.build, fake.deserialize)
        assert built and fake.builds == 2

    def test_truncated_engine_is_rebuilt(self, tmp_path, caplog):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.load_or_build(key, fake.build, fake.deserialize)
        path = cache.path_for(key)
        path.write_bytes(path.read_bytes()[:-20])
        with caplog.at_level("WARNING", logger="ivif_ros.backends"):
            assert cache.load(key) is None and not path.exists()  # hash mismatch: discarded
        assert "sha256 mismatch" in caplog.text
        _, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 2 and cache.load(key) is not None

    def test_bare_engine_without_key_is_not_trusted(self, tmp_path, caplog):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.path_for(key).write_bytes(FakeBuilder.MAGIC + b"copied from another machine")
        with caplog.at_level("WARNING", logger="ivif_ros.backends"):
            _, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 1 and "no header" in caplog.text

    def test_entry_planted_under_the_name_of_another_key_is_refused(self, tmp_path, caplog):
        """An engine whose embedded key differs (another GPU) but that sits under this key's name."""
        cache, key = EngineCache(tmp_path), make_key()
        other = make_key(gpu_name="Tesla T4")
        cache.store(other, FakeBuilder.MAGIC + b"for a T4")
        cache.path_for(other).rename(cache.path_for(key))
        with caplog.at_level("WARNING", logger="ivif_ros.backends"):
            assert cache.load(key) is None
        assert "another key" in caplog.text

    def test_consistent_but_undeserialisable_engine_is_rebuilt(self, tmp_path):
        """A file whose key matches but that the runtime rejects (e.g. built by a faulty build)."""
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.store(key, b"garbage that is not an engine")
        engine, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 1 and engine["engine"] > 0
        assert cache.load(key).startswith(FakeBuilder.MAGIC)

    def test_force_rebuild(self, tmp_path):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.load_or_build(key, fake.build, fake.deserialize)
        _, built = cache.load_or_build(key, fake.build, fake.deserialize, force_rebuild=True)
        assert built and fake.builds == 2

    def test_fresh_build_that_does_not_deserialise_raises(self, tmp_path):
        cache = EngineCache(tmp_path)
        with pytest.raises(RuntimeError, match="failed to deserialise"):
            cache.load_or_build(make_key(), lambda: b"x", lambda data: None)
        assert not cache.path_for(make_key()).exists()

    def test_concurrent_starts_build_once(self, tmp_path):
        """Two starters (separate cache objects and lock-file opens, as two processes would have):
        the second waits on the flock and loads what the first built."""
        fake, key = FakeBuilder(), make_key()

        def slow_build():
            time.sleep(0.3)
            return fake.build()

        results = []

        def start():
            results.append(EngineCache(tmp_path).load_or_build(key, slow_build, fake.deserialize)[1])

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == [False, True] and fake.builds == 1
