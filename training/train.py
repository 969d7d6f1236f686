"""Stage 2 of SEED-ALGORITHM.md: train a blur detector on a dataset from ``ivif-make-dataset``.

One code path for one CPU, one GPU and ``torchrun --nproc_per_node=N`` (DistributedDataParallel:
gloo on CPU, nccl on CUDA). Only rank 0 logs and saves. A run folder holds::

    config.json                 the resolved configuration
    metrics.csv                 one row per epoch (train/val loss and accuracy, lr, time)
    tb/                         TensorBoard events
    last.safetensors            weights at the last checkpoint (+ last_state.pt: optimizer,
                                scheduler, RNG, progress; read back with weights_only=True)
    model.safetensors           final weights with the recipe in the metadata

``--resume`` continues from ``last.*`` and reproduces the uninterrupted run exactly (data order is
a pure function of seed and epoch; the RNG states are restored).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ivif_ros.models import create_model, load_model, save_model

from .dataset import DatasetError, PatchDataset, manifest_hash

__all__ = ["TrainConfig", "evaluate", "train", "main"]


@dataclass
class TrainConfig:
    """Training configuration; every field is an ``ivif-train --field-name`` override."""

    data: str = "data_cache/blur"
    out: str = "runs"
    name: str = ""
    arch: str = "fast"
    model_kwargs: dict = field(default_factory=dict)
    init: str = ""
    epochs: int = 4
    batch_size: int = 256
    optimizer: str = "adamw"
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup: float = 0.03
    min_lr_ratio: float = 0.01
    train_limit: int = 0
    val_limit: int = 0
    seed: int = 0
    threads: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_bf16: bool = False
    channels_last: bool = False
    log_every: int = 50
    ckpt_every: int = 0
    max_steps: int = 0
    resume: bool = False
    progress: bool = True

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / (self.name or self.arch)


_HELP = {
    "data": "dataset folder (ivif-make-dataset --out)",
    "out": "parent folder of run folders",
    "name": "run folder name (default: the architecture)",
    "arch": "architecture: fast (product default) or seed (the paper's network)",
    "model_kwargs": "JSON object of architecture arguments, e.g. '{\"width\": 32}'",
    "init": "start from these weights (.safetensors or weights-only .pt)",
    "epochs": "epochs over the train split",
    "batch_size": "samples per step and per process",
    "optimizer": "adamw or sgd (with --momentum, nesterov)",
    "lr": "peak learning rate (linear warm-up, cosine decay per step)",
    "momentum": "SGD momentum",
    "weight_decay": "decoupled weight decay",
    "warmup": "share of all steps spent warming up",
    "min_lr_ratio": "final learning rate / peak learning rate",
    "train_limit": "use a fixed random subset of this many train samples (0 = all)",
    "val_limit": "use a fixed random subset of this many test samples (0 = all)",
    "seed": "seed of weights init and data order",
    "threads": "torch CPU threads per process (0 = torch default)",
    "device": "auto, cpu, cuda or cuda:N (torchrun: the local rank's GPU)",
    "amp": "mixed precision on CUDA (ignored on CPU)",
    "cpu_bf16": "bfloat16 autocast on CPU (weights stay float32; ~2x faster where the CPU has AVX512-BF16/AMX)",
    "channels_last": "NHWC memory layout (with --cpu-bf16: the seed network's 1x1 convolutions run ~4x faster)",
    "log_every": "steps between TensorBoard loss points",
    "ckpt_every": "also checkpoint every N steps inside an epoch (0 = at epoch ends only)",
    "max_steps": "stop (with a checkpoint) once this many steps are done in total; 0 = no cap",
    "resume": "continue from the run folder's last checkpoint",
    "progress": "tqdm progress bars",
}


class _PatchClassifier(nn.Module):
    """Routes ``forward`` to ``forward_patches`` so DistributedDataParallel's hooks apply."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_patches(x)


class _Dist:
    """Process-group facts read from the torchrun environment."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_main = self.rank == 0

    def init(self, device: torch.device) -> None:
        if self.world > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _device(cfg: TrainConfig, ddp: _Dist) -> torch.device:
    if cfg.device == "auto":
        return torch.device(f"cuda:{ddp.local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(cfg.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device(f"cuda:{ddp.local_rank}")
    return device


def _lr_lambda(total: int, warmup: int, min_ratio: float):
    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return fn


def _batches(n: int, cfg: TrainConfig, epoch: int, ddp: _Dist) -> list[np.ndarray]:
    """This rank's batches of one epoch: a pure function of (seed, epoch, rank); drops the remainder."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)).numpy()
    mine = perm[: n - n % ddp.world][ddp.rank::ddp.world]
    steps = len(mine) // cfg.batch_size
    return [mine[i * cfg.batch_size:(i + 1) * cfg.batch_size] for i in range(steps)]


def _to_input(x: np.ndarray, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    t = torch.from_numpy(x).to(device, non_blocking=True).float().div_(255.0)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


@torch.no_grad()
def evaluate(net: nn.Module, data: PatchDataset, device: torch.device, batch_size: int = 1024,
             ddp: _Dist | None = None, cpu_bf16: bool = False, channels_last: bool = False) -> dict[str, float]:
    """Loss and accuracy of ``net.forward_patches`` on a split (sharded over ranks under torchrun).

    Args:
        cpu_bf16: run under bfloat16 autocast on CPU (as training with ``--cpu-bf16`` does).
        channels_last: feed NHWC batches.

    Returns:
        ``{"loss", "acc", "count"}``.
    """
    ddp = ddp or _Dist()
    was_training = net.training
    net.eval()
    positions = np.arange(len(data))[ddp.rank::ddp.world]
    loss = correct = 0.0
    for start in range(0, len(positions), batch_size):
        x, y, _ = data.get_batch(positions[start:start + batch_size])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16 and device.type == "cpu"):
            logits = net.forward_patches(_to_input(x, device, channels_last)).float()
        target = torch.from_numpy(y).to(device)
        loss += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    net.train(was_training)
    loss, correct, count = ddp.sum([loss, correct, float(len(positions))], device)
    return {"loss": loss / max(count, 1), "acc": correct / max(count, 1), "count": count}


def _save_checkpoint(run: Path, net: nn.Module, cfg: TrainConfig, state: dict) -> None:
    save_model(net, run / "last.tmp.safetensors", cfg.arch, {"checkpoint": "last"})
    torch.save(state, run / "last_state.tmp.pt")
    os.replace(run / "last.tmp.safetensors", run / "last.safetensors")
    os.replace(run / "last_state.tmp.pt", run / "last_state.pt")


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def train(cfg: TrainConfig, argv: list[str] | None = None) -> dict:
    """Run (or resume) one training run.

    Args:
        cfg: the configuration.
        argv: the command line, recorded in the recipe.

    Returns:
        Summary: run folder, final and best validation accuracy, epochs done, wall time, and
        ``finished`` (False when ``max_steps`` stopped the run early).

    Raises:
        DatasetError: unreadable dataset. ModelError: bad architecture or ``init`` weights.
        ValueError: bad configuration values.
    """
    if cfg.optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer={cfg.optimizer!r}: use adamw or sgd")
    ddp = _Dist()
    device = _device(cfg, ddp)
    ddp.init(device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    run = cfg.run_dir
    if ddp.is_main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=1))

    train_set = PatchDataset(cfg.data, "train", cfg.train_limit or None, subset_seed=cfg.seed)
    val_set = PatchDataset(cfg.data, "test", cfg.val_limit or None, subset_seed=cfg.seed + 1)
    if len(train_set) < cfg.batch_size * ddp.world:
        raise DatasetError(
            f"{cfg.data}: {len(train_set)} train samples cannot fill one step of {cfg.batch_size} x {ddp.world}"
        )

    torch.manual_seed(cfg.seed)
    if cfg.init:
        net, _ = load_model(cfg.init)
        if type(net) is not type(create_model(cfg.arch, **cfg.model_kwargs)):
            raise ValueError(f"init={cfg.init}: weights are not a {cfg.arch!r} network")
    else:
        net = create_model(cfg.arch, **cfg.model_kwargs)
    net.to(device).train()
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    model: nn.Module = _PatchClassifier(net)
    if ddp.world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                              weight_decay=cfg.weight_decay)
    steps_per_epoch = len(_batches(len(train_set), cfg, 0, ddp))
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, int(cfg.warmup * total), cfg.min_lr_ratio))
    cpu_amp = cfg.cpu_bf16 and device.type == "cpu"
    use_amp = cfg.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if cpu_amp or (use_amp and torch.cuda.is_bf16_supported()) else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    progress = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "correct": 0.0,
                "count": 0.0, "elapsed_s": 0.0, "best_acc": -1.0, "history": []}
    if cfg.resume and (run / "last_state.pt").exists():
        ddp.barrier()
        state = torch.load(run / "last_state.pt", map_location="cpu", weights_only=True)
        last, _ = load_model(run / "last.safetensors")
        net.load_state_dict(last.state_dict())
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        progress = state["progress"]

    def checkpoint() -> None:
        if ddp.is_main:
            _save_checkpoint(run, net, cfg, {
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                "progress": progress,
            })
        ddp.barrier()

    writer = None
    if ddp.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run / "tb"))
        except ImportError:
            print("ivif-train: tensorboard not installed; no TensorBoard logs", file=sys.stderr)
    from tqdm import tqdm

    stopped = False
    t_start = time.perf_counter() - progress["elapsed_s"]
    while progress["epoch"] < cfg.epochs and not stopped:
        epoch = progress["epoch"]
        batches = _batches(len(train_set), cfg, epoch, ddp)
        t_epoch = time.perf_counter()
        bar = tqdm(total=len(batches), initial=progress["step_in_epoch"], desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and ddp.is_main), dynamic_ncols=True)
        model.train()
        for idx in batches[progress["step_in_epoch"]:]:
            x, y, _ = train_set.get_batch(idx)
            x, target = _to_input(x, device, cfg.channels_last), torch.from_numpy(y).to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp or cpu_amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            progress["loss_sum"] += loss.item() * len(idx)
            progress["correct"] += (logits.argmax(1) == target).sum().item()
            progress["count"] += len(idx)
            progress["step_in_epoch"] += 1
            progress["global_step"] += 1
            step = progress["global_step"]
            bar.update(1)
            if step % cfg.log_every == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
                if writer:
                    writer.add_scalar("train/loss_step", loss.item(), step)
                    writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
            if cfg.max_steps and step >= cfg.max_steps and progress["step_in_epoch"] < len(batches):
                stopped = True
                break
            if cfg.ckpt_every and step % cfg.ckpt_every == 0 and progress["step_in_epoch"] < len(batches):
                progress["elapsed_s"] = time.perf_counter() - t_start
                checkpoint()
        bar.close()
        if stopped:
            break
        loss_sum, correct, count = ddp.sum([progress["loss_sum"], progress["correct"], progress["count"]], device)
        val = evaluate(net, val_set, device, ddp=ddp, cpu_bf16=cpu_amp, channels_last=cfg.channels_last)
        row = {"epoch": epoch + 1, "step": progress["global_step"], "train_loss": loss_sum / count,
               "train_acc": correct / count, "val_loss": val["loss"], "val_acc": val["acc"],
               "lr": sched.get_last_lr()[0], "epoch_s": round(time.perf_counter() - t_epoch, 2)}
        progress.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0, correct=0.0, count=0.0,
                        elapsed_s=time.perf_counter() - t_start)
        progress["history"].append(row)
        if ddp.is_main:
            print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                  f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f} | {row['epoch_s']:.0f} s", flush=True)
            _write_csv(run / "metrics.csv", progress["history"])
            if writer:
                for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                    writer.add_scalar(f"epoch/{key}", row[key], row["epoch"])
            if val["acc"] > progress["best_acc"]:
                progress["best_acc"] = val["acc"]
                save_model(net, run / "best.safetensors", cfg.arch, {"val_acc": val["acc"], "epoch": row["epoch"]})
        if cfg.max_steps and progress["global_step"] >= cfg.max_steps and progress["epoch"] < cfg.epochs:
            stopped = True
        checkpoint()
    if stopped:
        progress["elapsed_s"] = time.perf_counter() - t_start
        checkpoint()
    if writer:
        writer.close()

    history = progress["history"]
    summary = {"run": str(run), "finished": not stopped, "epochs_done": progress["epoch"],
               "global_step": progress["global_step"], "train_wall_s": round(progress["elapsed_s"], 1),
               "val_acc": history[-1]["val_acc"] if history else None, "best_val_acc": max(progress["best_acc"], 0.0)}
    if not stopped and ddp.is_main:
        recipe = {
            "command": shlex.join(["ivif-train", *(argv if argv is not None else sys.argv[1:])]),
            "config": asdict(cfg), "data_manifest_sha256": manifest_hash(cfg.data),
            "train_samples": len(train_set), "val_samples": len(val_set), "val_acc": summary["val_acc"],
            "val_loss": history[-1]["val_loss"], "train_wall_s": summary["train_wall_s"], "world_size": ddp.world,
            "device": str(device), "torch": torch.__version__,
        }
        save_model(net, run / "model.safetensors", cfg.arch, recipe)
        (run / "recipe.json").write_text(json.dumps(recipe, indent=1))
    if ddp.world > 1:
        dist.destroy_process_group()
    return summary


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivif-train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="JSON or YAML file of field values (command-line flags override it)")
    p.add_argument("--eval-weights", metavar="WEIGHTS",
                   help="only evaluate these weights on --data's test split and print JSON")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag, value = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP[f.name])
        elif isinstance(value, dict):
            p.add_argument(flag, type=json.loads, default=None, help=_HELP[f.name])
        else:
            p.add_argument(flag, type=type(value), default=None, help=f"{_HELP[f.name]} (default: {value!r})")
    return p


def config_from_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """Resolve defaults < ``--config`` file < command-line flags.

    Raises:
        ValueError: unreadable config file or unknown keys in it.
    """
    args = _parser().parse_args(argv)
    values: dict = {}
    if args.config:
        text = Path(args.config).read_text()
        if args.config.endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        unknown = set(values) - {f.name for f in fields(TrainConfig)}
        if unknown:
            raise ValueError(f"{args.config}: unknown keys {sorted(unknown)}")
    for f in fields(TrainConfig):
        if getattr(args, f.name) is not None:
            values[f.name] = getattr(args, f.name)
    return TrainConfig(**values), args


def main(argv: list[str] | None = None) -> int:
    """``ivif-train``: train, resume or evaluate a detector. Returns the exit status."""
    from ivif_ros.models import ModelError

    try:
        cfg, args = config_from_args(argv)
        if args.eval_weights:
            if cfg.threads > 0:
                torch.set_num_threads(cfg.threads)
            net, info = load_model(args.eval_weights)
            if cfg.channels_last:
                net.to(memory_format=torch.channels_last)
            data = PatchDataset(cfg.data, "test", cfg.val_limit or None, subset_seed=cfg.seed + 1)
            scores = evaluate(net, data, torch.device("cpu"), cpu_bf16=cfg.cpu_bf16, channels_last=cfg.channels_last)
            print(json.dumps({"weights": info.path, "data": cfg.data, **scores}))
            return 0
        summary = train(cfg, argv)
    except (DatasetError, ModelError, OSError) as exc:
        print(f"ivif-train: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a bad option or configuration value
        print(f"ivif-train: error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
