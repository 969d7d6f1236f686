"""Freed frame-sized memory stays in the process (glibc), measured as page faults in a fresh process."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from ivif_ros.core import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Frames of temporaries as a fused frame makes them: 30 live float32 arrays of the frame's size, then
# all freed; in the main thread or, like the node's worker, in a thread of its own (its own arena).
_FRAME_LOOP = """
import json, resource, sys, threading
import numpy as np
from ivif_ros.core import heap
mode, where, height, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
applied = heap.retain_freed_memory() if mode == "retain" else None
def frame():
    temporaries = [np.ones((height, width), np.float32) * k for k in range(30)]
    return float(sum(t[0, 0] for t in temporaries))
def frames(result):
    frame()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        frame()
    result.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
result = []
if where == "thread":
    worker = threading.Thread(target=frames, args=(result,))
    worker.start()
    worker.join()
else:
    frames(result)
print(json.dumps({"applied": applied, "faults_per_frame": result[0]}))
"""


def _faults_per_frame(mode: str, where: str, height: int, width: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _FRAME_LOOP, mode, where, str(height), str(width)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="malloc thresholds are set on glibc only")
@pytest.mark.parametrize("where,height,width", [("main", 512, 640), ("thread", 512, 640), ("thread", 1024, 1280)])
def test_retained_memory_removes_the_page_faults_of_frame_temporaries(where, height, width):
    default = _faults_per_frame("default", where, height, width)
    retained = _faults_per_frame("retain", where, height, width)
    assert retained["applied"] is True
    # With glibc's defaults thousands of pages are faulted in again every frame (in a thread at
    # 1280×1024 because whole 64 MiB heaps of its arena are unmapped when they fall empty).
    assert default["faults_per_frame"] > 1000
    assert retained["faults_per_frame"] < default["faults_per_frame"] / 10


@pytest.mark.skipif(GLIBC, reason="this machine has glibc")
def test_other_c_libraries_are_left_alone():
    assert heap.retain_freed_memory() is False


def test_the_pipeline_reports_it():
    from ivif_ros.backends.choice import create_pipeline

    pipeline = create_pipeline()
    assert pipeline.heap_reuse is GLIBC
    assert pipeline.describe()["heap_reuse"] is GLIBC
