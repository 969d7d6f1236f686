"""On-disk caches for exported detector graphs (ONNX) and compiled TensorRT engines.

Trust rules (a cached file is code the process will run):

* **Private folders.** ``private_cache_dir`` creates each cache folder with mode 0700 and refuses
  one owned by another user or writable by group/others (logged); the caller then gets a fresh
  private temporary folder (``tempfile.mkdtemp``) for this process instead.
* **One atomic file per entry.** An entry is a header (magic, JSON key, payload sha256) followed by
  the payload, written to a temporary sibling and renamed into place (``write_entry``), so a reader
  never sees an engine without its key or a half-written file.
* **Bound to what it was made from.** ``read_entry`` serves the payload only when the stored key
  equals the expected key and the payload hash matches; otherwise it logs why and the caller
  rebuilds. ONNX exports are keyed by the model's fingerprint and this code's export settings;
  engines by ``EngineKey`` (GPU, compute capability, CUDA major, TensorRT version, ONNX sha256,
  profile, precision, builder flags).
* **One builder.** ``EngineCache.load_or_build`` holds an exclusive ``fcntl.flock`` on a lock file
  in the folder, so two processes asking for the same engine build it once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_ENV",
    "EngineCache",
    "EngineKey",
    "cache_lock",
    "default_cache_dir",
    "model_fingerprint",
    "private_cache_dir",
    "read_entry",
    "sha256_bytes",
    "profile_from_resolutions",
    "write_entry",
]

LOGGER = logging.getLogger("ivif_ros.backends")

#: Environment variable that overrides the cache root (default ``~/.cache/ivif_ros``).
CACHE_ENV = "IVIF_CACHE_DIR"
#: First bytes of every cache entry file (format version 1).
ENTRY_MAGIC = b"IVIFCACHE1\n"
_HEADER_LENGTH = struct.Struct(">Q")
_MAX_HEADER = 1 << 20

Shape = tuple[int, int, int, int]
_FALLBACK_DIRS: dict[str, Path] = {}


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


def _untrusted_reason(folder: Path) -> str | None:
    """Why ``folder`` must not hold cache entries of this user, or None when it may."""
    try:
        info = folder.stat()
    except OSError as error:
        return f"cannot stat ({error})"
    if not stat.S_ISDIR(info.st_mode):
        return "not a folder"
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def private_cache_dir(folder: str | Path, kind: str) -> Path:
    """``folder`` created with mode 0700 and checked, or a fresh private temporary folder.

    Args:
        folder: the wanted cache folder (missing parents are created with mode 0700 too).
        kind: short name for logs and the fallback folder's prefix (``onnx``, ``tensorrt``).

    Returns:
        ``folder`` when it is owned by this user and not group/other-writable; otherwise (logged)
        one ``tempfile.mkdtemp`` folder per ``kind`` for the rest of this process.

    Raises:
        OSError: ``folder`` cannot be created (e.g. a read-only home).
    """
    folder = Path(folder).expanduser()
    missing = [level for level in (folder, *folder.parents) if not level.exists()]
    for level in reversed(missing):  # Path.mkdir(parents=True) would ignore the mode for parents
        level.mkdir(mode=0o700, exist_ok=True)
    reason = _untrusted_reason(folder)
    if reason is None:
        return folder
    fallback = _FALLBACK_DIRS.get(kind)
    if fallback is None or _untrusted_reason(fallback) is not None:
        fallback = Path(tempfile.mkdtemp(prefix=f"ivif_ros-{kind}-"))
        _FALLBACK_DIRS[kind] = fallback
    LOGGER.warning(
        "refusing %s cache %s: %s; using the private folder %s for this process", kind, folder, reason, fallback
    )
    return fallback


def write_entry(path: str | Path, key: dict[str, Any], payload: bytes) -> Path:
    """Write one cache entry (header with ``key`` and the payload hash, then ``payload``) atomically.

    Raises:
        OSError: the folder is not writable.
    """
    path = Path(path)
    header = json.dumps(
        {"key": key, "payload_sha256": sha256_bytes(payload), "bytes": len(payload)}, sort_keys=True
    ).encode()
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(ENTRY_MAGIC + _HEADER_LENGTH.pack(len(header)) + header)
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_entry(path: str | Path, key: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The payload of the entry at ``path`` when it was written for ``key`` and is intact.

    Returns:
        ``(payload, None)``, or ``(None, reason)``: missing, unreadable, not an entry, written for
        another key, or the payload does not match its recorded sha256 (truncated or modified).
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as error:
        return None, f"unreadable ({error})"
    start = len(ENTRY_MAGIC) + _HEADER_LENGTH.size
    if not data.startswith(ENTRY_MAGIC) or len(data) < start:
        return None, "not a cache entry (no header)"
    (length,) = _HEADER_LENGTH.unpack_from(data, len(ENTRY_MAGIC))
    if length > _MAX_HEADER or start + length > len(data):
        return None, "corrupt header"
    try:
        header = json.loads(data[start:start + length])
    except ValueError:
        return None, "corrupt header"
    if not isinstance(header, dict) or header.get("key") != json.loads(json.dumps(key, sort_keys=True)):
        return None, "written for another key (model, export settings, device or versions differ)"
    payload = data[start + length:]
    if not payload or header.get("payload_sha256") != sha256_bytes(payload):
        return None, "sha256 mismatch (truncated or modified)"
    return payload, None


@contextlib.contextmanager
def cache_lock(folder: str | Path, name: str) -> Iterator[None]:
    """Exclusive inter-process lock (``fcntl.flock``) on ``<folder>/.<name>.lock`` while inside."""
    lock_path = Path(folder) / f".{name}.lock"
    handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        os.close(handle)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


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


def profile_from_resolutions(
    resolutions: Sequence[tuple[int, int]], channels: int = 2, max_batch: int = 1, min_side: int = 32
) -> tuple[Shape, Shape, Shape]:
    """A TensorRT optimisation profile (min, opt, max input shapes) covering detector input sizes.

    min is one ``min_side`` × ``min_side`` window at batch 1 (so any detector scale that keeps one
    window fits), opt is the first size given at batch 1 (list the size the robot runs most first),
    max is the element-wise maximum of the sizes at batch ``max_batch``.

    Args:
        resolutions: detector input sizes (height, width), each side >= ``min_side``.
        channels: input channels of the detector (2: visible, infrared).
        max_batch: largest batch the engine accepts (the batched offline path).
        min_side: smallest side accepted (one detector window).

    Returns:
        ``((1, C, min, min), (1, C, hopt, wopt), (max_batch, C, hmax, wmax))``.

    Raises:
        ValueError: empty list, a side smaller than ``min_side`` or ``max_batch`` < 1.
    """
    sizes = [(int(h), int(w)) for h, w in resolutions]
    if not sizes:
        raise ValueError("resolutions must name at least one (height, width)")
    if int(max_batch) < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    for height, width in sizes:
        if height < min_side or width < min_side:
            raise ValueError(f"detector input {height}x{width} is smaller than one {min_side}x{min_side} window")
    high = (max(h for h, _ in sizes), max(w for _, w in sizes))
    return (1, channels, min_side, min_side), (1, channels, *sizes[0]), (int(max_batch), channels, *high)


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialised TensorRT engine depends on.

    Attributes:
        gpu_name: ``torch.cuda.get_device_name`` of the device it was built on.
        trt_version: ``tensorrt.__version__``.
        onnx_sha256: sha256 of the ONNX graph it was built from.
        profile: (min, opt, max) input shapes of the optimisation profile.
        precision: ``"fp16"`` or ``"fp32"``.
        compute_capability: ``"major.minor"`` of the device.
        cuda_major: CUDA major version of the runtime (torch's build).
        builder_flags: how the network was built (e.g. ``strongly_typed``, ``fp16_flag``).
    """

    gpu_name: str
    trt_version: str
    onnx_sha256: str
    profile: tuple[Shape, Shape, Shape]
    precision: str
    compute_capability: str = ""
    cuda_major: str = ""
    builder_flags: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        data = asdict(self)
        data["profile"] = [list(shape) for shape in self.profile]
        data["builder_flags"] = list(self.builder_flags)
        return data

    def digest(self) -> str:
        """sha256 of the canonical JSON of the key."""
        return sha256_bytes(json.dumps(self.as_dict(), sort_keys=True).encode())

    def filename(self) -> str:
        """Readable, unique engine file name: ``<gpu>-trt<ver>-<precision>-<digest16>.engine``."""
        gpu = "".join(ch if ch.isalnum() else "_" for ch in self.gpu_name).strip("_")[:40] or "gpu"
        return f"{gpu}-trt{self.trt_version}-{self.precision}-{self.digest()[:16]}.engine"


class EngineCache:
    """A private folder of engine entries; see the module docstring for the trust rules.

    Args:
        directory: cache folder (created with mode 0700; an untrusted one is replaced by a private
            temporary folder, logged).
    """

    def __init__(self, directory: str | Path) -> None:
        self.requested = Path(directory).expanduser()
        self.directory = private_cache_dir(self.requested, "tensorrt")

    def path_for(self, key: EngineKey) -> Path:
        """Entry file path for ``key`` (engine and key in one file)."""
        return self.directory / key.filename()

    def invalidate(self, key: EngineKey) -> None:
        """Delete the entry of ``key`` when present."""
        self.path_for(key).unlink(missing_ok=True)

    def load(self, key: EngineKey) -> bytes | None:
        """The cached engine bytes for ``key``, or None when absent or untrustworthy (then deleted)."""
        data, reason = read_entry(self.path_for(key), key.as_dict())
        if data is None and reason != "missing":
            LOGGER.warning("discarding cached engine %s: %s; it will be rebuilt", self.path_for(key), reason)
            self.invalidate(key)
        return data

    def store(self, key: EngineKey, data: bytes) -> Path:
        """Write ``data`` with its key as one atomic file.

        Raises:
            OSError: the folder is not writable.
        """
        return write_entry(self.path_for(key), key.as_dict(), data)

    def load_or_build(
        self,
        key: EngineKey,
        build: Callable[[], bytes],
        deserialize: Callable[[bytes], Any],
        force_rebuild: bool = False,
    ) -> tuple[Any, bool]:
        """Deserialise the cached engine, or build, store and deserialise a new one.

        Runs under an exclusive lock for ``key``: a second process waits and then loads the engine
        the first one built. A cached engine that passes the checks but fails to deserialise
        (``deserialize`` raises or returns None) is deleted and rebuilt once.

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
        with cache_lock(self.directory, key.digest()[:16]):
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
