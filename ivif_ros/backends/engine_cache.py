"""On-disk caches for exported detector graphs (ONNX) and compiled TensorRT engines.

Everything a cached artefact depends on is part of its key, so a stale file is never picked up:

* ``model_fingerprint(model)`` — sha256 over the architecture, its runtime attributes (window,
  stride, constructor kwargs) and every tensor of the state dict; the ONNX export is keyed by it.
* ``EngineKey`` — GPU name, TensorRT version, ONNX sha256, optimisation-profile shapes and
  precision; a TensorRT engine is keyed by its digest.

``EngineCache`` stores each engine next to a JSON sidecar holding the key and the engine's own
sha256. ``load`` refuses (and deletes) an engine whose sidecar is missing, unreadable, written for
another key, or whose bytes do not match the recorded hash; ``load_or_build`` then rebuilds it.
Writes are atomic (temporary file + ``os.replace``), so a crash never leaves a half-written engine
under the final name.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = [
    "CACHE_ENV",
    "EngineCache",
    "EngineKey",
    "default_cache_dir",
    "model_fingerprint",
    "sha256_bytes",
    "sha256_file",
    "profile_from_resolutions",
]

LOGGER = logging.getLogger("ivif_ros.backends")

#: Environment variable that overrides the cache root (default ``~/.cache/ivif_ros``).
CACHE_ENV = "IVIF_CACHE_DIR"

Shape = tuple[int, int, int, int]


def default_cache_dir(kind: str) -> Path:
    """Cache folder for ``kind`` (``"onnx"`` or ``"tensorrt"``) under ``$IVIF_CACHE_DIR`` or ``~/.cache/ivif_ros``.

    Args:
        kind: sub-folder name.

    Returns:
        The folder path (not created).
    """
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "ivif_ros"
    return base / kind


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model: Any) -> str:
    """sha256 identifying a detector's exported graph: architecture, window, stride, kwargs, weights.

    Args:
        model: an ``nn.Module`` following the detector contract.

    Returns:
        64-character hex digest. Two nets with equal class, runtime attributes and tensors (weights
        and buffers, e.g. BatchNorm statistics) get the same digest.
    """
    import torch

    digest = hashlib.sha256()
    header = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "window": int(getattr(model, "window", 0)),
        "stride": int(getattr(model, "stride", 0)),
        "kwargs": getattr(model, "model_kwargs", {}),
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16
            value = value.float()
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def profile_from_resolutions(resolutions: Sequence[tuple[int, int]], channels: int = 2) -> tuple[Shape, Shape, Shape]:
    """A TensorRT optimisation profile (min, opt, max input shapes) covering detector input sizes.

    min / max are the element-wise minimum / maximum of the given (height, width) sizes; opt is the
    first size given (list the size the robot runs most first).

    Args:
        resolutions: detector input sizes (height, width), each side >= 32 (one window).
        channels: input channels of the detector (2: visible, infrared).

    Returns:
        ``((1, C, hmin, wmin), (1, C, hopt, wopt), (1, C, hmax, wmax))``.

    Raises:
        ValueError: empty list or a side smaller than 32.
    """
    sizes = [(int(h), int(w)) for h, w in resolutions]
    if not sizes:
        raise ValueError("resolutions must name at least one (height, width)")
    for height, width in sizes:
        if height < 32 or width < 32:
            raise ValueError(f"detector input {height}x{width} is smaller than one 32x32 window")
    low = (min(h for h, _ in sizes), min(w for _, w in sizes))
    high = (max(h for h, _ in sizes), max(w for _, w in sizes))
    return (1, channels, *low), (1, channels, *sizes[0]), (1, channels, *high)


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialised TensorRT engine depends on.

    Attributes:
        gpu_name: ``torch.cuda.get_device_name`` of the device it was built on.
        trt_version: ``tensorrt.__version__``.
        onnx_sha256: sha256 of the ONNX file it was built from.
        profile: (min, opt, max) input shapes of the optimisation profile.
        precision: ``"fp16"`` or ``"fp32"``.
    """

    gpu_name: str
    trt_version: str
    onnx_sha256: str
    profile: tuple[Shape, Shape, Shape]
    precision: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        data = asdict(self)
        data["profile"] = [list(shape) for shape in self.profile]
        return data

    def digest(self) -> str:
        """sha256 of the canonical JSON of the key."""
        return sha256_bytes(json.dumps(self.as_dict(), sort_keys=True).encode())

    def filename(self) -> str:
        """Readable, unique engine file name: ``<gpu>-trt<ver>-<precision>-<digest16>.engine``."""
        gpu = "".join(ch if ch.isalnum() else "_" for ch in self.gpu_name).strip("_")[:40] or "gpu"
        return f"{gpu}-trt{self.trt_version}-{self.precision}-{self.digest()[:16]}.engine"


class EngineCache:
    """A folder of engines with JSON sidecars; see the module docstring for the trust rules.

    Args:
        directory: cache folder (created on first store).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()

    def path_for(self, key: EngineKey) -> Path:
        """Engine file path for ``key``."""
        return self.directory / key.filename()

    def _meta_path(self, key: EngineKey) -> Path:
        return self.path_for(key).with_suffix(".json")

    def invalidate(self, key: EngineKey) -> None:
        """Delete the engine and sidecar of ``key`` when present."""
        for path in (self.path_for(key), self._meta_path(key)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def load(self, key: EngineKey) -> bytes | None:
        """The cached engine bytes for ``key``, or None when absent or untrustworthy (then deleted).

        Returns:
            Serialised engine, or None (missing, sidecar missing/corrupt/mismatched, hash mismatch).
        """
        engine_path, meta_path = self.path_for(key), self._meta_path(key)
        if not engine_path.is_file():
            return None
        problem = None
        try:
            meta = json.loads(meta_path.read_text())
            data = engine_path.read_bytes()
        except (OSError, ValueError) as error:
            problem, data, meta = f"unreadable ({error})", b"", {}
        if problem is None and meta.get("key") != key.as_dict():
            problem = "written for another key"
        if problem is None and meta.get("engine_sha256") != sha256_bytes(data):
            problem = "sha256 mismatch (truncated or modified)"
        if problem is None and not data:
            problem = "empty engine file"
        if problem is not None:
            LOGGER.warning("discarding cached engine %s: %s", engine_path, problem)
            self.invalidate(key)
            return None
        return data

    def store(self, key: EngineKey, data: bytes) -> Path:
        """Write ``data`` atomically with its sidecar.

        Returns:
            The engine path.

        Raises:
            OSError: the folder is not writable.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        engine_path = self.path_for(key)
        meta = {"key": key.as_dict(), "engine_sha256": sha256_bytes(data), "bytes": len(data)}
        for target, payload in ((engine_path, data), (self._meta_path(key), json.dumps(meta, indent=1).encode())):
            handle, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=target.suffix)
            try:
                with os.fdopen(handle, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return engine_path

    def load_or_build(
        self,
        key: EngineKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], Any],
        force_rebuild: bool = False,
    ) -> tuple[Any, bool]:
        """Deserialise the cached engine, or build, store and deserialise a new one.

        A cached engine that passes the sidecar checks but fails to deserialise (``deserialize``
        raises or returns None) is deleted and rebuilt once.

        Args:
            key: the engine key.
            build: returns serialised engine bytes (the expensive step).
            deserialize: bytes -> engine object; raise or return None on failure.
            force_rebuild: ignore (and replace) any cached engine.

        Returns:
            ``(engine, built)`` with ``built`` True when the engine was (re)built now.

        Raises:
            RuntimeError: a freshly built engine does not deserialise.
        """
        if force_rebuild:
            self.invalidate(key)
        data = self.load(key)
        if data is not None:
            try:
                engine = deserialize(data)
            except Exception as error:  # TensorRT raises various types on corrupt input
                LOGGER.warning("cached engine %s does not deserialise (%s); rebuilding", self.path_for(key), error)
                engine = None
            if engine is not None:
                LOGGER.info("loaded cached engine %s", self.path_for(key))
                return engine, False
            self.invalidate(key)
        data = build()
        engine = deserialize(data)
        if engine is None:
            raise RuntimeError("a freshly built engine failed to deserialise")
        path = self.store(key, data)
        LOGGER.info("built and cached engine %s", path)
        return engine, True
