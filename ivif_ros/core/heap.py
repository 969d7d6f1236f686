"""Keep freed frame-sized memory in the process for reuse (glibc malloc).

A fused frame allocates and frees some thirty float32 temporaries of the frame's size. With glibc's
defaults, blocks of a megabyte are mapped from the kernel per allocation and handed back on free, so
every temporary costs thousands of page faults: at 640×512 about 2,200 faults and 6–8 ms of a ~25 ms
frame. Raising malloc's mmap and trim thresholds makes the freed blocks stay on the heap and serve
the next frame's allocations instead. The peak memory is unchanged (the same blocks are live at the
peak); only the return of free memory to the kernel between frames stops.

Other C libraries (musl, macOS, Windows) are left as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "retain_freed_memory"]

#: Blocks up to this size come from the heap (glibc's largest allowed mmap threshold on 64-bit).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap returned to the kernel only beyond this size.
TRIM_THRESHOLD = 512 * 1024 * 1024

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` for this process (once).

    Returns:
        True when both settings took effect (glibc), False elsewhere or when malloc refused them.
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
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
