import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.models import load_model
from ivif_ros.training.dataset import DatasetConfig, PatchDataset, make_dataset
from ivif_ros.training.train import TrainConfig, config_from_args, evaluate, main, train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small learnable blur-pair set made from synthetic textured photos."""
    rng = np.random.default_rng(0)
    photos = tmp_path_factory.mktemp("photos")
    for i in range(6):
        img = cv2.resize(rng.uniform(30, 220, (8, 8)), (96, 96), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(photos / f"p{i}.png"), np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8))
    out = tmp_path_factory.mktemp("data") / "blur"
    make_dataset(DatasetConfig(src=str(photos), out=str(out), train=512, test=128, test_fraction=0.34), progress=False)
    return out


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = TrainConfig(data=str(data), out=str(out), arch="fast", model_kwargs={"width": 8, "hidden": 8}, epochs=2,
                       batch_size=64, lr=1e-2, threads=1, progress=False, log_every=2)
    return replace(base, **kw)


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def test_training_lowers_the_loss_and_writes_the_run(data, tmp_path):
    cfg = _cfg(data, tmp_path, epochs=3)
    torch.manual_seed(cfg.seed)
    from ivif_ros.models import create_model

    before = evaluate(create_model("fast", **cfg.model_kwargs).eval(), PatchDataset(data, "test"), torch.device("cpu"))
    summary = train(cfg, argv=["--epochs", "3"])
    run = tmp_path / "fast"
    assert summary["finished"] and summary["epochs_done"] == 3 and summary["run"] == str(run)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert float(rows[-1]["val_loss"]) < before["loss"] and float(rows[-1]["val_acc"]) > 0.8
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert any((run / "tb").glob("events.out.tfevents.*"))
    net, info = load_model(run / "model.safetensors")
    assert info.arch == "fast" and net.width == 8
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["command"] == "ivif-train --epochs 3" and len(recipe["data_manifest_sha256"]) == 64
    assert recipe["val_acc"] == pytest.approx(float(rows[-1]["val_acc"]))
    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), "pt") as fh:
        assert json.loads(fh.metadata()["val_acc"]) == recipe["val_acc"]


def test_resume_reproduces_the_uninterrupted_run(data, tmp_path):
    full = train(_cfg(data, tmp_path, name="full"))
    part = train(_cfg(data, tmp_path, name="split", max_steps=3))  # stops mid-epoch 1 (8 steps per epoch)
    assert not part["finished"] and part["global_step"] == 3
    assert not (tmp_path / "split" / "model.safetensors").exists()
    part = train(_cfg(data, tmp_path, name="split", max_steps=11, resume=True))  # stops mid-epoch 2
    assert part["global_step"] == 11 and part["epochs_done"] == 1
    done = train(_cfg(data, tmp_path, name="split", resume=True))
    assert done["finished"] and done["global_step"] == full["global_step"] == 16
    a, b = _tensors(tmp_path / "full" / "model.safetensors"), _tensors(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows_a = list(csv.DictReader((tmp_path / "full" / "metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "split" / "metrics.csv").open()))
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert {k: v for k, v in ra.items() if k != "epoch_s"} == {k: v for k, v in rb.items() if k != "epoch_s"}
    state = torch.load(tmp_path / "split" / "last_state.pt", weights_only=True)
    assert state["progress"]["epoch"] == 2


def test_trains_the_seed_architecture(data, tmp_path):
    summary = train(_cfg(data, tmp_path, arch="seed", model_kwargs={}, epochs=1, batch_size=8, train_limit=16,
                         val_limit=8, lr=1e-3))
    assert summary["finished"]
    net, info = load_model(tmp_path / "seed" / "model.safetensors")
    assert info.arch == "seed"


def test_config_file_and_flags(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 7, "lr": 0.5, "model_kwargs": {"width": 4}}))
    cfg, _ = config_from_args(["--config", str(tmp_path / "c.json"), "--lr", "0.1", "--no-amp", "--arch", "seed"])
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.arch, cfg.model_kwargs) == (7, 0.1, False, "seed", {"width": 4})
    (tmp_path / "bad.json").write_text(json.dumps({"epoch": 1}))
    with pytest.raises(ValueError, match="epoch"):
        config_from_args(["--config", str(tmp_path / "bad.json")])


def test_cli_errors_and_eval(data, tmp_path, capsys):
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 1
    assert "manifest" in capsys.readouterr().err
    assert main(["--data", str(data), "--optimizer", "lion", "--out", str(tmp_path)]) == 2
    from ivif_ros.models import create_model, save_model

    save_model(create_model("fast"), tmp_path / "w.safetensors", "fast")
    assert main(["--data", str(data), "--eval-weights", str(tmp_path / "w.safetensors")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 128 and 0 <= result["acc"] <= 1


def test_torchrun_two_processes(data, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ivif_ros.training.train", "--data", str(data),
           "--out", str(tmp_path), "--epochs", "1", "--batch-size", "32", "--threads", "1", "--no-progress",
           "--model-kwargs", '{"width": 8, "hidden": 8}']
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["finished"] and summary["global_step"] == 512 // 64
    assert json.loads((tmp_path / "fast" / "recipe.json").read_text())["world_size"] == 2
