"""Loading and saving detector weights without pickle (safetensors, or ``weights_only`` state dicts)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .registry import ModelError, create_model, is_model, list_models

__all__ = ["DEFAULT_MODEL", "WEIGHTS_DIR", "ModelInfo", "load_model", "save_model", "shipped_weights"]

#: Architecture the product uses when no model is named.
DEFAULT_MODEL = "fast"
#: Folder of the shipped weights (``<arch>.safetensors``) and their recipes.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded.

    Attributes:
        name: display name (file stem, or the architecture for an untrained net).
        arch: registered architecture name.
        path: weights file, or ``None`` for an untrained net.
        trained: False when no weights were found (callers must warn loudly).
        sha256: hex digest of the weights file, or ``None``.
    """

    name: str
    arch: str
    path: str | None
    trained: bool
    sha256: str | None = None


def shipped_weights(arch: str = DEFAULT_MODEL) -> Path | None:
    """Path of the shipped weights for ``arch``, or ``None`` when the package has none."""
    path = WEIGHTS_DIR / f"{arch}.safetensors"
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(net: nn.Module, path: str | Path, arch: str, metadata: dict | None = None, half: bool = False) -> Path:
    """Write ``net``'s weights as safetensors with ``{"arch": arch, "model_kwargs": ..., **metadata}``.

    Args:
        net: a registered architecture.
        path: output ``.safetensors`` file (folders are created).
        arch: its registered name.
        metadata: extra recipe keys; non-string values are stored as JSON.
        half: store floating-point tensors as float16 (loaded back as float32).

    Returns:
        The written path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, value in net.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous()
    meta = {"arch": arch, "model_kwargs": json.dumps(getattr(net, "model_kwargs", {}))}
    for key, value in (metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    save_file(state, str(path), metadata=meta)
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # safetensors raises several private error types
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from exc
    return state, meta


def _read_pt(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or file damaged
        raise ModelError(f"{path}: not a weights-only torch state dict ({exc})") from exc
    meta: dict[str, str] = {}
    wrappers = ("state_dict", "model")
    wrapper = next((key for key in wrappers if isinstance(obj, dict) and isinstance(obj.get(key), dict)), None)
    if wrapper is not None:
        meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items() if k in ("arch", "model_kwargs")}
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path}: expected a dict of tensors (a state dict)")
    if obj and all(key.startswith("module.") for key in obj):  # saved from (Distributed)DataParallel
        obj = {key[len("module."):]: value for key, value in obj.items()}
    return obj, meta


def _infer_arch(state: dict[str, torch.Tensor], path: Path) -> str:
    keys = set(state)
    for name in list_models():
        if set(create_model(name).state_dict()) == keys:
            return name
    raise ModelError(f"{path}: its tensors match no known architecture ({', '.join(list_models())})")


def _build(path: Path, state: dict[str, torch.Tensor], meta: dict[str, str]) -> tuple[nn.Module, str]:
    arch = meta.get("arch") or _infer_arch(state, path)
    if not is_model(arch):
        raise ModelError(f"{path}: unknown architecture {arch!r} in metadata; available: {', '.join(list_models())}")
    try:
        kwargs = json.loads(meta.get("model_kwargs", "{}"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: bad model_kwargs metadata ({exc})") from exc
    net = create_model(arch, **kwargs)
    expected = net.state_dict()
    for key, value in state.items():
        if key in expected and value.shape != expected[key].shape:
            raise ModelError(
                f"{path}: tensor {key} has shape {tuple(value.shape)}, {arch} expects {tuple(expected[key].shape)}"
            )
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{path}: does not match architecture {arch!r} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})
    return net, arch


def load_model(
    spec: str | Path | None = None, device: str | torch.device = "cpu", **kwargs
) -> tuple[nn.Module, ModelInfo]:
    """Load a detector in eval mode.

    Args:
        spec: ``None`` for the shipped default; an architecture name (``"fast"``, ``"seed"``) for
            its shipped weights; or a path to a ``.safetensors`` file (architecture read from its
            metadata) or a ``.pt``/``.pth`` state dict (read with ``weights_only=True``, never
            unpickled; it may be wrapped under ``"state_dict"`` or ``"model"`` and its keys may carry
            DataParallel's ``module.`` prefix). The authors' ``EResNet_trained_model.pth`` loads
            as ``seed``: :class:`~ivif_ros.models.seed.SeedNet` uses their parameter names.
            A name with no shipped weights gives an untrained net with ``trained=False``.
        device: torch device for the returned net.
        **kwargs: runtime attributes to override, e.g. ``stride=4``.

    Returns:
        ``(net, info)``.

    Raises:
        ModelError: missing, corrupt or mismatched file, or unknown name.
    """
    if spec is None or (isinstance(spec, str) and is_model(spec) and not Path(spec).exists()):
        arch = DEFAULT_MODEL if spec is None else str(spec)
        path = shipped_weights(arch)
        if path is None:
            net = create_model(arch)
            info = ModelInfo(name=arch, arch=arch, path=None, trained=False)
        else:
            net, info = load_model(path)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(f"{path}: weights file not found (known architectures: {', '.join(list_models())})")
        suffix = path.suffix.lower()
        if suffix == ".safetensors":
            state, meta = _read_safetensors(path)
        elif suffix in (".pt", ".pth"):
            state, meta = _read_pt(path)
        else:
            raise ModelError(f"{path}: unsupported weights format {suffix!r} (use .safetensors, .pt or .pth)")
        net, arch = _build(path, state, meta)
        info = ModelInfo(name=path.stem, arch=arch, path=str(path), trained=True, sha256=_sha256(path))
    for key, value in kwargs.items():
        if not hasattr(net, key):
            raise ModelError(f"{info.arch} has no attribute {key!r} to override")
        try:
            setattr(net, key, value)
        except ValueError as exc:
            raise ModelError(f"{info.arch}: bad {key}={value!r}: {exc}") from exc
    return net.to(device).eval(), info
