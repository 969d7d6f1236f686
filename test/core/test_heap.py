"""Freed frame-sized memory stays in the process (glibc), measured as page faults in a fresh process."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from ivif_ros.core import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Frames of temporaries as a fused 640×512 frame makes them: 30 live float32 arrays, then all freed.
_FRAME_LOOP = """
import json, resource, sys
import numpy as np
from ivif_ros.core import heap
applied = heap.retain_freed_memory() if sys.argv[1] == "retain" else None
def frame():
    temporaries = [np.ones((512, 640), np.float32) * k for k in range(30)]
    return float(sum(t[0, 0] for t in temporaries))
frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    frame()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults_per_frame": faults / 20}))
"""


def _faults_per_frame(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _FRAME_LOOP, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="malloc thresholds are set on glibc only")
def test_retained_memory_removes_the_page_faults_of_frame_temporaries():
    default = _faults_per_frame("default")
    retained = _faults_per_frame("retain")
    assert retained["applied"] is True
    # 30 arrays of 1.25 MiB are ~9,600 pages: with glibc's defaults most are faulted in again each frame.
    assert default["faults_per_frame"] > 3000
    assert retained["faults_per_frame"] < default["faults_per_frame"] / 10


@pytest.mark.skipif(GLIBC, reason="this machine has glibc")
def test_other_c_libraries_are_left_alone():
    assert heap.retain_freed_memory() is False


def test_the_pipeline_reports_it():
    from ivif_ros.backends.choice import create_pipeline

    pipeline = create_pipeline()
    assert pipeline.heap_reuse is GLIBC
    assert pipeline.describe()["heap_reuse"] is GLIBC
