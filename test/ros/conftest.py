"""Fixtures of the ROS tests: a collecting subscriber in the module's DDS domain (test/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivif_ros.topics import COLORED_TOPIC, FUSED_TOPIC, WEIGHTS_TOPIC

from dds_helpers import Collector


@pytest.fixture(scope="module")
def collector(domain_id: int) -> Iterator[Collector]:
    """Records /fused/image, /weight_map/image, /weight_map/colored and /diagnostics."""
    result = Collector(domain_id, tuple(f"/{topic}" for topic in (FUSED_TOPIC, WEIGHTS_TOPIC, COLORED_TOPIC)))
    yield result
    result.close()
