import json
import pickle

import pytest
import torch
from conftest import randomize_batchnorm

from ivif_ros.models import ModelError, create_model, load_model, save_model, shipped_weights
from ivif_ros.models.loading import ModelInfo


@pytest.fixture
def fast_net() -> torch.nn.Module:
    torch.manual_seed(3)
    return randomize_batchnorm(create_model("fast", width=8, hidden=4))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_safetensors_round_trip_with_metadata(tmp_path, fast_net):
    path = save_model(fast_net, tmp_path / "m.safetensors", "fast", {"val_acc": 0.97, "note": "x"})
    net, info = load_model(path)
    assert isinstance(info, ModelInfo) and info.arch == "fast" and info.trained and info.name == "m"
    assert info.path == str(path) and len(info.sha256) == 64
    assert net.width == 8 and not net.training and _same(net, fast_net)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        assert json.loads(fh.metadata()["val_acc"]) == 0.97


def test_half_weights_load_as_float32(tmp_path, fast_net):
    net, _ = load_model(save_model(fast_net, tmp_path / "h.safetensors", "fast", half=True))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    torch.testing.assert_close(net.encoder[0].weight, fast_net.encoder[0].weight, rtol=1e-3, atol=1e-3)


def test_plain_state_dict_pt_infers_architecture(tmp_path):
    ref = create_model("fast")
    torch.save(ref.state_dict(), tmp_path / "w.pt")
    net, info = load_model(tmp_path / "w.pt")
    assert info.arch == "fast" and _same(net, ref)


def test_wrapped_state_dict_pt(tmp_path, fast_net):
    torch.save({"arch": "fast", "model_kwargs": {"width": 8, "hidden": 4}, "state_dict": fast_net.state_dict()},
               tmp_path / "w.pt")
    net, info = load_model(str(tmp_path / "w.pt"))
    assert info.arch == "fast" and _same(net, fast_net)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"x": _Evil()}, fh)
    with pytest.raises(ModelError, match="evil.pt"):
        load_model(path)
    assert "pwned" not in capsys.readouterr().out


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelError, match="nothere.safetensors.*not found"):
        load_model(tmp_path / "nothere.safetensors")


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ModelError, match="bad.safetensors"):
        load_model(path)


def test_mismatched_architecture_is_named(tmp_path, fast_net):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in fast_net.state_dict().items()}, str(tmp_path / "x.safetensors"),
              metadata={"arch": "seed"})
    with pytest.raises(ModelError, match="x.safetensors.*seed"):
        load_model(tmp_path / "x.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "y.safetensors"), metadata={"arch": "unet"})
    with pytest.raises(ModelError, match="unknown architecture 'unet'"):
        load_model(tmp_path / "y.safetensors")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"0")
    with pytest.raises(ModelError, match="unsupported"):
        load_model(tmp_path / "m.onnx")


def test_default_is_fast_and_reports_training_state():
    net, info = load_model(None)
    assert info.arch == "fast" and not net.training
    assert info.trained == (shipped_weights("fast") is not None)
    if info.trained:
        assert info.path.endswith("fast.safetensors") and info.sha256


def test_name_and_runtime_override():
    net, info = load_model("seed", stride=16)
    assert info.arch == "seed" and net.stride == 16
    with pytest.raises(ModelError, match="stride"):
        load_model("fast", stride=5)
