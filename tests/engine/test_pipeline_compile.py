"""``--compile``: the torch.compile'd (Inductor, frozen) backbone gives the eager features, also
for a last batch smaller than the compiled one (zero-padded, no recompilation)."""
from __future__ import annotations

import pytest
import torch

from tests.fixtures import synthetic
from vibe_engine.models import load_generator

#: fp32 eager vs compiled: only the summation order differs.
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = tmp_path_factory.mktemp("compile_vibe_data")
    smpl = synthetic.make_smpl_arrays(3)
    synthetic.make_vibe_checkpoint(data / "vibe_model_wo_3dpw.pth.tar", smpl, 3)
    synthetic.make_spin_checkpoint(data / "spin_model_checkpoint.pth.tar", 3, smpl=smpl)
    return data / "vibe_model_wo_3dpw.pth.tar"


def test_compiled_backbone_equals_eager_and_pads_small_batches(checkpoint):
    from torch._dynamo.utils import counters

    eager = load_generator(checkpoint, precision="fp32")
    compiled = load_generator(checkpoint, precision="fp32", compile=True)
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
