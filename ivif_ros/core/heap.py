"""Keep freed frame-sized memory in the process for reuse (glibc malloc).

A fused frame allocates and frees some thirty float32 temporaries of the frame's size. With glibc's
defaults, blocks of a megabyte are mapped from the kernel per allocation and handed back on free, so
the temporaries are faulted in again every frame: at 640×512 about 2,800 page faults, 6–8 ms of a
~25 ms frame (≈ 580 faults with the settings here). Raising malloc's mmap and trim thresholds makes
the freed blocks stay on the heap and serve the next frame's allocations instead. A thread other
than the main one (the node's worker) allocates from its own arena, made of 64 MiB heaps that glibc
unmaps as soon as they fall empty, whatever the trim threshold; a 64 MiB top pad keeps them (at
1280×1024, ≈ 2,800 faults per frame in a thread without it, a handful with it). The peak memory is
unchanged (the same blocks are live at the peak); only the return of free memory to the kernel
between frames stops.

Other C libraries (musl, macOS, Windows) are left as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD", "retain_freed_memory"]

#: Blocks up to this size come from the heap (glibc's largest allowed mmap threshold on 64-bit).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap returned to the kernel only beyond this size.
TRIM_THRESHOLD = 512 * 1024 * 1024
#: Slack kept when a heap grows or is trimmed: a thread arena's heap (64 MiB at most) is then never
#: unmapped when it falls empty. Address space only: untouched pages take no memory.
TOP_PAD = 64 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's malloc.h
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD`` and ``M_TOP_PAD`` for this process (once).

    Returns:
        True when the settings took effect (glibc), False elsewhere or when malloc refused them.
    """
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def _set_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])
