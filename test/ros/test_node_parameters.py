"""fusion_node parameters: derived from the settings schema, all-or-nothing changes, bad values never kill the node."""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from ivif_ros.core.config import FusionConfig
from ivif_ros.ros.fusion_node import FusionNode
from ivif_ros.ros.parameters import check_changes, descriptor, parameter_table, render_yaml

from dds_helpers import Collector
from ros_test_helpers import REPO, run_publisher, start_node, stop_process

CONFIG = REPO / "config" / "fusion.yaml"


def test_committed_parameter_file_matches_the_schema() -> None:
    assert CONFIG.read_text() == render_yaml(), (
        "regenerate: python -m ivif_ros.ros.parameters --write config/fusion.yaml"
    )
    params = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    table = parameter_table()
    assert list(params) == list(table)
    for name, (default, _, _) in table.items():
        assert params[name] == default and type(params[name]) is type(default), name


def test_descriptors_carry_the_schema() -> None:
    for name, (_, meta, _) in parameter_table().items():
        described = descriptor(meta)
        assert described.read_only is (not meta.runtime), name
        assert described.description == meta.help
        bounds = meta.bounds()
        if meta.kind == "float" and bounds is not None:
            (rng,) = described.floating_point_range
            assert (rng.from_value, rng.to_value) == bounds, name
        elif meta.kind == "int" and bounds is not None:
            (rng,) = described.integer_range
            assert (rng.from_value, rng.to_value) == bounds, name
    assert parameter_table()["smoothing_eps"][1].low_open  # the open bound is checked by the node itself
    assert descriptor(parameter_table()["smoothing_eps"][1]).additional_constraints == "(0, 1]"


def test_check_changes_rejects_start_only_and_bad_values() -> None:
    assert check_changes({"slop": 0.1, "use_sim_time": True}) == {"slop": 0.1}
    with pytest.raises(ValueError, match="backend applies at start only"):
        check_changes({"backend": "torch"})
    with pytest.raises(ValueError, match="homography"):
        check_changes({"homography": [0.0] * 9})  # singular
    with pytest.raises(ValueError, match="homography must have 9 elements"):
        check_changes({"homography": [1.0, 0.0]})


def _other_domain(domain_id: int, offset: int) -> int:
    """A DDS domain apart from the module's (its own nodes must not pair with the other tests' ones)."""
    return 1 + (domain_id + offset) % 100


@pytest.fixture(scope="module")
def local_node(domain_id: int) -> Iterator[FusionNode]:
    """A FusionNode in this process (real rclpy), torch on the CPU, seed weights that cannot load."""
    context = Context()
    rclpy.init(context=context, domain_id=_other_domain(domain_id, 37))
    node = FusionNode(
        "param_test_node", context=context,
        parameter_overrides=[Parameter("backend", value="torch"), Parameter("device", value="cpu"),
                             Parameter("seed_model", value="/nonexistent/seed.safetensors")],
    )
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _values(node: FusionNode) -> dict:
    return {name: node.get_parameter(name).value for name in parameter_table()}


@pytest.mark.parametrize(
    "parameters,reason",
    [
        ([Parameter("thermal_percentiles", value=[5.0])], "thermal_percentiles must have 2 elements"),
        ([Parameter("thermal_percentiles", value=[math.nan, 99.0])], "thermal_percentiles must be finite"),
        ([Parameter("thermal_percentiles", value=[99.0, 5.0])], "strictly increasing"),
        ([Parameter("output_stretch", value=50.0)], r"output_stretch must be in [0, 50)"),
        ([Parameter("smoothing_eps", value=0.0)], "smoothing_eps must be in (0, 1]"),
        ([Parameter("visible_enhance", value=math.nan)], ""),
        ([Parameter("homography", value=[0.0] * 9)], "singular"),
        ([Parameter("mode", value="seed")], "seed"),  # the seed weights do not load: refused with the reason
        # one bad value in a batch: nothing of the batch changes
        ([Parameter("visible_enhance", value=0.7), Parameter("slop", value=0.5),
          Parameter("thermal_percentiles", value=[1.0, 2.0, 3.0])], "thermal_percentiles"),
    ],
)
def test_bad_changes_are_refused_whole(local_node: FusionNode, parameters: list, reason: str) -> None:
    before_values, before_config = _values(local_node), local_node._pipeline.config
    before_slop = local_node._sync.slop_ns
    results = local_node.set_parameters_atomically(parameters)
    assert not results.successful and reason in results.reason, results.reason
    assert _values(local_node) == before_values
    assert local_node._pipeline.config == before_config and local_node._sync.slop_ns == before_slop
    assert local_node._pipeline.config.mode == local_node.get_parameter("mode").value == "default"


def test_good_change_after_refusals_is_applied(local_node: FusionNode) -> None:
    results = local_node.set_parameters([Parameter("visible_enhance", value=0.4),
                                         Parameter("thermal_percentiles", value=[1.0, 99.0])])
    assert all(r.successful for r in results), results
    deadline = time.monotonic() + 10.0
    while local_node._pipeline.config.visible_enhance != 0.4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_node._pipeline.config.visible_enhance == 0.4  # the worker is alive and applied it
    assert local_node._pipeline.config.thermal_percentiles == (1.0, 99.0)
    assert local_node.get_parameter("thermal_percentiles").value == [1.0, 99.0]
    assert isinstance(local_node._pipeline.config, FusionConfig)


def test_bad_parameters_over_dds_leave_the_node_fusing(domain_id: int, tmp_path: Path) -> None:
    """The integrator's case: ``ros2 param set`` with a wrong-length array used to kill the node."""
    log_path = tmp_path / "node.log"
    domain = _other_domain(domain_id, 61)
    collector = Collector(domain, ("/fused/image",))
    process = start_node(domain, log_path, ["--params-file", str(CONFIG), "-p", "backend:=torch", "-p", "device:=cpu"])
    try:
        # Ready once both inputs are subscribed (the log says so): local_node's publishers in the same
        # domain would satisfy a publisher count before this process is up.
        assert collector.wait_for(
            lambda: process.poll() is not None or log_path.read_text().count("subscribed /") >= 2, 60)
        assert process.poll() is None, log_path.read_text()
        client = AsyncParameterClient(collector.node, "/fusion_node")
        assert client.wait_for_services(timeout_sec=10.0)
        for bad in ([5.0], [math.inf, 99.0], [50.0, 10.0]):
            future = client.set_parameters([Parameter("thermal_percentiles", value=bad)])
            assert collector.wait_for(future.done, 10)
            (result,) = future.result().results
            assert not result.successful and "thermal_percentiles" in result.reason
        assert process.poll() is None, log_path.read_text()
        before = len(collector.messages["/fused/image"])
        published = run_publisher(domain, "--count", "6", "--rate", "10", "--height", "96", "--width", "128")
        assert published.returncode == 0, published.stderr
        assert collector.wait_for(lambda: len(collector.messages["/fused/image"]) > before, 30), log_path.read_text()
        assert process.poll() is None and "Traceback" not in log_path.read_text()
    finally:
        stop_process(process)
        collector.close()
