"""engine_cache: keys, fingerprints, the sidecar trust rules and rebuild-on-corruption."""
import json

import pytest
import torch

from ivif_ros.backends.engine_cache import (
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
        assert low == (1, 2, 256, 320)
        assert opt == (1, 2, 512, 640)
        assert high == (1, 2, 1024, 1280)

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
        assert cache.path_for(key).is_file() and cache.path_for(key).with_suffix(".json").is_file()
        engine2, built2 = cache.load_or_build(key, fake.build, fake.deserialize)
        assert not built2 and fake.builds == 1 and engine2 == engine
        assert not list((tmp_path / "engines").glob(".tmp-*"))

    def test_another_key_is_not_served(self, tmp_path):
        cache, fake = EngineCache(tmp_path), FakeBuilder()
        cache.load_or_build(make_key(), fake.build, fake.deserialize)
        _, built = cache.load_or_build(make_key(trt_version="10.4.0"), fake.build, fake.deserialize)
        assert built and fake.builds == 2

    def test_truncated_engine_is_rebuilt(self, tmp_path):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.load_or_build(key, fake.build, fake.deserialize)
        path = cache.path_for(key)
        path.write_bytes(path.read_bytes()[:20])
        assert cache.load(key) is None and not path.exists()  # hash mismatch: discarded
        _, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 2 and cache.load(key) is not None

    def test_engine_without_sidecar_is_not_trusted(self, tmp_path):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        tmp_path.mkdir(exist_ok=True)
        cache.path_for(key).write_bytes(FakeBuilder.MAGIC + b"copied from another machine")
        _, built = cache.load_or_build(key, fake.build, fake.deserialize)
        assert built and fake.builds == 1

    def test_sidecar_for_another_key_is_refused(self, tmp_path):
        cache, fake, key = EngineCache(tmp_path), FakeBuilder(), make_key()
        cache.load_or_build(key, fake.build, fake.deserialize)
        meta_path = cache.path_for(key).with_suffix(".json")
        meta = json.loads(meta_path.read_text())
        meta["key"]["gpu_name"] = "Tesla T4"
        meta_path.write_text(json.dumps(meta))
        assert cache.load(key) is None

    def test_consistent_but_undeserialisable_engine_is_rebuilt(self, tmp_path):
        """A file whose sidecar matches but that the runtime rejects (e.g. built by a faulty build)."""
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
