import json

import numpy as np
import onnx
import pytest
import torch

from ivif_ros.models import create_model, load_model, save_model
from ivif_ros.training.export import export_onnx, main, onnx_parity


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = create_model("fast", width=8, hidden=8)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return save_model(net, tmp_path_factory.mktemp("w") / "model.safetensors", "fast", {"val_acc": 0.9})


def test_onnx_matches_torch_at_two_sizes(weights, tmp_path):
    net, _ = load_model(weights)
    path = export_onnx(net, tmp_path / "fast.onnx", "fast")
    assert onnx_parity(net, path, sizes=((256, 320), (97, 131))) < 1e-4
    model = onnx.load(str(path))
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    assert {p.key: p.value for p in model.metadata_props} == {"arch": "fast", "stride": "8", "window": "32"}
    assert model.opset_import[0].version >= 17


def test_onnx_batch_and_stride(weights, tmp_path):
    import onnxruntime as ort

    net, _ = load_model(weights, stride=4)
    path = export_onnx(net, tmp_path / "s4.onnx", "fast")
    pair = np.random.default_rng(1).random((3, 2, 70, 90), dtype=np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pair": pair})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(pair)).numpy()
    assert got.shape == ref.shape == (3, 1, 10, 15)
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_low_opset_refused(weights, tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(load_model(weights)[0], tmp_path / "x.onnx", "fast", opset=13)


def test_cli_writes_safetensors_and_checked_onnx(weights, tmp_path, capsys):
    assert main([str(weights), "--out", str(tmp_path), "--name", "det", "--half", "--check"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["onnx_max_abs_diff"] < 1e-3
    net, info = load_model(tmp_path / "det.safetensors")
    assert info.arch == "fast" and net.width == 8
    from safetensors import safe_open

    with safe_open(str(tmp_path / "det.safetensors"), "pt") as fh:
        meta = fh.metadata()
        assert fh.get_tensor("encoder.0.weight").dtype == torch.float16
    assert json.loads(meta["val_acc"]) == 0.9 and meta["source_file"] == "model.safetensors"
    assert (tmp_path / "det.onnx").is_file()


def test_cli_bad_weights(tmp_path, capsys):
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    assert main([str(tmp_path / "bad.safetensors"), "--out", str(tmp_path), "--no-onnx"]) == 1
    assert "bad.safetensors" in capsys.readouterr().err
