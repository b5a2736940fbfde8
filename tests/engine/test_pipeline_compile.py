"""``--compile``: the torch.compile'd (Inductor, frozen) backbone gives the eager features, also
for a last batch smaller than the compiled one (zero-padded, no recompilation)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures import synthetic
from vibe_engine.backend import RunContext
from vibe_engine.cancel import CancelToken
from vibe_engine.config import AUTO_COMPILE_MIN_CROPS, EngineConfig
from vibe_engine.models import load_generator
from vibe_engine.models.streaming import compile_backbone
from vibe_engine.protocol import ProtocolWriter

#: fp32 eager vs compiled: only the summation order differs.
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = synthetic.make_vibe_data(tmp_path_factory.mktemp("compile_vibe_data"), 3)
    return data / "vibe_model_wo_3dpw.pth.tar"


def test_compiled_backbone_equals_eager_and_pads_small_batches(checkpoint):
    from torch._dynamo.utils import counters

    eager = load_generator(checkpoint, precision="fp32")
    compiled = load_generator(checkpoint, precision="fp32", compile=True)  # the API option
    torch.manual_seed(0)
    crops = torch.randn(3, 3, 224, 224)
    counters.clear()
    assert compiled.warm_up(3) > 0
    with torch.inference_mode():
        want = eager.extract_features(crops)
        full = compiled.extract_features(crops)
        part = compiled.extract_features(crops[:2])  # smaller last batch: padded to 3
    assert counters["stats"]["unique_graphs"] == 1  # compiled once, reused for every call
    scale = float(want.abs().max())
    assert full.shape == (3, 2048) and part.shape == (2, 2048)
    assert float((full - want).abs().max()) <= FP32_TOLERANCE * scale
    assert float((part - want[:2]).abs().max()) <= FP32_TOLERANCE * scale


@pytest.mark.parametrize("mode, device, crops, expected", [
    ("auto", "cpu", AUTO_COMPILE_MIN_CROPS, True), ("auto", "cpu", AUTO_COMPILE_MIN_CROPS - 1, False),
    ("auto", "cuda", 10 * AUTO_COMPILE_MIN_CROPS, False), ("on", "cpu", 1, True), ("off", "cpu", 10**6, False)])
def test_compile_decision(mode, device, crops, expected):
    cfg = EngineConfig(video=Path("v.mp4"), out=Path("o.motion.npz"), compile=mode, device=device)
    assert cfg.compiles(crops) is expected


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(checkpoint, monkeypatch):
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    torch._dynamo.reset()
    model = load_generator(checkpoint, precision="fp32")
    stream = io.StringIO()
    run = RunContext(EngineConfig(video=Path("v.mp4"), out=Path("o.motion.npz")), ProtocolWriter(stream),
                  CancelToken())
    compile_backbone(run, model, 2)
    (warning,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert warning["type"] == "warning" and warning["code"] == "COMPILE_FAILED"
    assert "compile" in run.timings.seconds
    crops = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        np.testing.assert_array_equal(model.extract_features(crops).numpy(),
                                      model.backbone(crops.contiguous(memory_format=torch.channels_last)).numpy())
