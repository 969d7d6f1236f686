"""The batched offline path: B pairs per call give exactly the results of B single calls (CPU),
per-frame reductions, size checks, double-buffered batches in order, uint8 weights, no per-frame
tensor constructions, and the grouping helper used by the CLIs."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ivif_ros.backends.choice import DetectorChoice, create_pipeline
from ivif_ros.core.batching import fuse_in_batches
from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.pipeline import FusionConfig
from ivif_ros.core.synthetic import synthetic_pair

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from _constructions import CountConstructions  # noqa: E402

TORCH_CPU = DetectorChoice(backend="torch", device="cpu")


@pytest.fixture(scope="module")
def torch_pipe():
    torch.manual_seed(0)
    return create_pipeline(FusionConfig(), TORCH_CPU, use_torch=True)


def varied_pairs(count: int, height: int = 72, width: int = 96, colour: bool = True, bits: int = 8):
    """Pairs that differ in brightness and contrast, so per-frame reductions matter."""
    pairs = []
    for index in range(count):
        ir, vis = synthetic_pair(height, width, seed=index, color=colour)
        if bits == 16:
            ir = (ir.astype(np.uint16) * (40 + 60 * index)).astype(np.uint16)
        else:
            ir = np.clip(ir.astype(np.float32) * (0.3 + 0.35 * index), 0, 255).astype(np.uint8)
        vis = np.clip(vis.astype(np.float32) * (0.5 + 0.25 * index), 0, 255).astype(np.uint8)
        pairs.append((ir, vis))
    return pairs


@pytest.mark.parametrize("colour,bits", [(True, 8), (False, 16)])
def test_batch_equals_single_calls(torch_pipe, colour, bits):
    pairs = varied_pairs(3, colour=colour, bits=bits)
    singles = [torch_pipe(ir, vis) for ir, vis in pairs]
    batched = torch_pipe.fuse_batch(pairs)
    assert len(batched) == 3
    for single, result in zip(singles, batched, strict=True):
        np.testing.assert_array_equal(result.fused, single.fused)
        # float32 rounding of torch's vectorised log/sigmoid depends on the tensor's batch size
        np.testing.assert_allclose(result.weights, single.weights, atol=1e-6)
        assert result.fused.shape == single.fused.shape and set(result.timings) == set(single.timings)
    assert not np.array_equal(batched[0].fused, batched[2].fused)  # not vacuous: the frames differ


def test_reductions_are_per_frame(torch_pipe):
    """A very dark and a very bright frame in one batch are stretched each on its own."""
    (ir, vis), = varied_pairs(1)
    dark = (ir // 8, vis // 8)
    batched = torch_pipe.fuse_batch([dark, (ir, vis)])
    np.testing.assert_array_equal(batched[0].fused, torch_pipe(*dark).fused)
    np.testing.assert_array_equal(batched[1].fused, torch_pipe(ir, vis).fused)


def test_batches_of_mixed_sizes_are_refused(torch_pipe):
    small, = varied_pairs(1, 64, 64)
    large, = varied_pairs(1, 72, 96)
    with pytest.raises(FusionInputError, match="one size and type"):
        torch_pipe.fuse_batch([small, large])


def test_double_buffered_batches_come_back_in_order(torch_pipe):
    pairs = varied_pairs(5)
    batches = [pairs[0:2], pairs[2:4], pairs[4:5]]
    results = [r for batch in torch_pipe.fuse_batches(batches) for r in batch]
    for (ir, vis), result in zip(pairs, results, strict=True):
        np.testing.assert_array_equal(result.fused, torch_pipe(ir, vis).fused)


def test_a_bad_batch_does_not_lose_the_one_in_flight(torch_pipe):
    good = varied_pairs(2)
    mixed = [varied_pairs(1, 64, 64)[0], varied_pairs(1)[0]]
    batches = torch_pipe.fuse_batches([good, mixed])
    first = next(batches)
    assert len(first) == 2
    np.testing.assert_array_equal(first[1].fused, torch_pipe(*good[1]).fused)
    with pytest.raises(FusionInputError, match="one size and type"):
        next(batches)


def test_numpy_path_batch_is_single_calls():
    pipe = create_pipeline(FusionConfig(), TORCH_CPU, use_torch=False)
    pairs = varied_pairs(2)
    for (ir, vis), result in zip(pairs, pipe.fuse_batch(pairs), strict=True):
        np.testing.assert_array_equal(result.fused, pipe(ir, vis).fused)


def test_uint8_weights():
    torch.manual_seed(0)
    floats = create_pipeline(FusionConfig(), TORCH_CPU, use_torch=True)
    bytes_ = create_pipeline(FusionConfig(), TORCH_CPU, use_torch=True, uint8_weights=True)
    bytes_._detectors = floats._detectors  # same detector weights
    pair = varied_pairs(1)[0]
    expected = floats(*pair)
    result = bytes_(*pair)
    assert result.weights.dtype == np.uint8
    np.testing.assert_array_equal(result.weights, expected.weights_u8())
    np.testing.assert_array_equal(result.weights_u8(), expected.weights_u8())
    assert bytes_.fuse_batch([pair, pair])[1].weights.dtype == np.uint8


@pytest.mark.parametrize("bits", [8, 16])
def test_warm_frame_builds_no_tensor_from_python_data(torch_pipe, bits):
    """Percentile levels and other constants are cached: a warmed frame copies no Python data to the device."""
    ir, vis = varied_pairs(1, bits=bits)[0]
    torch_pipe(ir, vis)
    with CountConstructions() as counter:
        torch_pipe(ir, vis)
    assert [call for call in counter.calls if call != "from_numpy"] == []


def test_pinned_buffer_cache_is_bounded():
    from ivif_ros.core.primitives.torch_ops import TorchOps

    ops = TorchOps("cpu")
    for size in range(40):
        ops._buffer("fused", (size + 1, 4), torch.uint8)
    assert len(ops._host) == TorchOps.MAX_HOST_BUFFERS


def test_detector_chunks_to_the_backend_max_batch():
    from ivif_ros.core.primitives.torch_ops import TorchOps

    class CountingBackend:
        max_batch = 2
        calls = []

        def forward_tensor(self, pair):
            self.calls.append(pair.shape[0])
            return pair[:, :1, ::8, ::8].float()

    backend = CountingBackend()
    images = torch.rand(5, 1, 32, 32) * 255
    ops = TorchOps("cpu")
    ops.detect(backend, images, images)
    assert backend.calls == [1, 1, 1, 1, 1]  # CPU: frame by frame (exactly single calls)
    backend.calls.clear()
    ops._pinned = True  # the CUDA rule, checked on CPU tensors: whole batches up to max_batch
    scores = ops.detect(backend, images, images)
    assert backend.calls == [2, 2, 1] and scores.shape == (5, 1, 4, 4)


def test_grouping_keeps_order_and_isolates_bad_pairs(torch_pipe):
    good = varied_pairs(4)
    small = varied_pairs(1, 64, 64)[0]
    items = ["a", "b", "missing", "c", "small", "d", "nan"]
    table = {"a": good[0], "b": good[1], "c": good[2], "d": good[3], "small": small,
             "nan": (np.full((72, 96), np.nan, np.float32), good[0][1])}

    def load(name):
        if name == "missing":
            raise FileNotFoundError(name)
        return table[name]

    outcomes = list(fuse_in_batches(torch_pipe, items, load, batch=2))
    assert [item for item, _ in outcomes] == items
    kinds = {item: type(outcome).__name__ for item, outcome in outcomes}
    assert kinds["missing"] == "FileNotFoundError" and kinds["nan"] == "FusionInputError"
    for name in ("a", "b", "c", "d", "small"):
        np.testing.assert_array_equal(dict(outcomes)[name].fused, torch_pipe(*table[name]).fused)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available: batched CUDA path and sync-debug frame not run"
)
def test_cuda_batch_and_warm_frame_without_syncs():
    from ivif_ros.backends.torch_backend import TorchBackend
    from ivif_ros.core.pipeline import FusionPipeline
    from ivif_ros.models import load_model

    net, _ = load_model(None)
    pipe = FusionPipeline(FusionConfig(), TorchBackend(net, device="cuda", fp16=False))
    pairs = varied_pairs(3)
    singles = [pipe(ir, vis) for ir, vis in pairs]
    for single, result in zip(singles, pipe.fuse_batch(pairs), strict=True):
        diff = np.abs(single.fused.astype(np.int16) - result.fused.astype(np.int16))
        assert diff.max() <= 1
    ops = pipe._ops("default")
    assert ops.stream is not None and ops.stream != torch.cuda.default_stream()
    with ops.frame_context():
        torch.cuda.set_sync_debug_mode("error")
        try:  # a warmed frame's device work, short of the one final synchronisation
            thermal = ops.upload(pairs[0][0], "ir")
            visible, colour = ops.luma(ops.upload(pairs[0][1], "vis"))
            from ivif_ros.core.default_mode import fuse_default

            def detect(v, t, scale):
                return pipe._detect(ops, "default", v, t, scale)

            class NoClock:
                def lap(self, stage):
                    pass

            fuse_default(ops, thermal, visible, pipe.config, detect, NoClock())
        finally:
            torch.cuda.set_sync_debug_mode("default")
