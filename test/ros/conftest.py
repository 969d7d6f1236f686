"""Fixtures of the ROS tests: an isolated DDS domain per module and a collecting subscriber."""
from __future__ import annotations

import random
from typing import Iterator

import pytest

from ros_test_helpers import Collector


@pytest.fixture(scope="module")
def domain_id() -> int:
    """A random DDS domain for this test module."""
    return random.randint(1, 200)


@pytest.fixture(scope="module")
def collector(domain_id: int) -> Iterator[Collector]:
    """Records /fused/image, /weight_map/image, /weight_map/colored and /diagnostics."""
    result = Collector(domain_id, ("/fused/image", "/weight_map/image", "/weight_map/colored"))
    yield result
    result.close()
