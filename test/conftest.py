"""Fixtures shared by every test folder: the DDS domain of a test module.

Domain ids: ``$IVIF_TEST_DOMAIN_BASE`` (0..92) makes this run use ids BASE..BASE+8 only, so
parallel runs with different bases never see each other; without it a random block is used.
Each module gets three consecutive ids (``domain_id``, +1, +2 for extra node processes).
"""
from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator

import pytest

DOMAIN_BLOCK = 3  # ids per test module
DOMAIN_SPAN = 9  # ids per run: three blocks, reused in turn (valid DDS ids: 0..101 and 215..232)


def _domain_base() -> int:
    text = os.environ.get("IVIF_TEST_DOMAIN_BASE")
    if not text:
        return random.randint(0, 101 - DOMAIN_SPAN)
    base = int(text)
    if not 0 <= base <= 101 - DOMAIN_SPAN:
        raise pytest.UsageError(f"IVIF_TEST_DOMAIN_BASE={base}: must lie in 0..{101 - DOMAIN_SPAN}")
    return base


_BASE = _domain_base()
_BLOCKS = itertools.cycle(range(_BASE, _BASE + DOMAIN_SPAN, DOMAIN_BLOCK))


@pytest.fixture(scope="module")
def domain_id() -> Iterator[int]:
    """A DDS domain for this test module (ids ``domain_id`` .. +2 are reserved for it).

    ``ROS_DOMAIN_ID`` and localhost-only discovery are set in this process while the module runs.
    """
    domain = next(_BLOCKS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROS_DOMAIN_ID", str(domain))
        patch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        yield domain
