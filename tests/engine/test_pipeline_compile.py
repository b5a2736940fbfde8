"""``--compile``: the torch.compile'd (Inductor, frozen) backbone gives the eager features, also
for a last batch smaller than the compiled one (zero-padded, no recompilation); the pipeline's
AOTInductor hook (``_compile``) warns and runs eager when the artefact cannot be built or is stale."""
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
from vibe_engine.models.compiled import CACHE_ENV, ArtefactKey, file_sha256, weights_sha256
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


def _run():
    stream = io.StringIO()
    run = RunContext(EngineConfig(video=Path("v.mp4"), out=Path("o.motion.npz")), ProtocolWriter(stream),
                  CancelToken())
    return run, stream


def _warnings(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines() if json.loads(line)["type"] == "warning"]


def _assert_eager(model):
    crops = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        np.testing.assert_array_equal(model.extract_features(crops).numpy(),
                                      model.backbone(crops.contiguous(memory_format=torch.channels_last)).numpy())


def test_a_failing_build_falls_back_to_eager_with_a_warning(checkpoint, monkeypatch, tmp_path):
    """The AOTInductor build fails (as without a C++ compiler): COMPILING, then COMPILE_FAILED, eager."""
    import torch._inductor

    def no_compiler(*args, **kwargs):
        raise RuntimeError("C++ compiler not found")

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_compiler)
    model = load_generator(checkpoint, precision="fp32")
    run, stream = _run()
    compile_backbone(run, model, 2)
    building, failed = _warnings(stream)
    assert building["code"] == "COMPILING" and "(missing)" in building["message"]
    assert failed["code"] == "COMPILE_FAILED" and "C++ compiler not found" in failed["message"]
    assert "compile" in run.timings.seconds
    assert list(tmp_path.iterdir()) == []  # nothing half-built left behind
    _assert_eager(model)


def test_a_stale_artefact_is_bypassed_with_a_warning_when_not_building(checkpoint, monkeypatch, tmp_path):
    """An artefact built by another torch for this key: detected, not loaded, eager, one warning."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model = load_generator(checkpoint, precision="fp32")
    key = ArtefactKey("hmr-backbone", "cpu", str(torch.float32), True, 2)
    pt2 = tmp_path / f"{key.name}.pt2"
    pt2.write_bytes(b"an old package")
    record = {**key.expected(weights_sha256(model.backbone)), "torch": "2.9.0", "package_sha256": file_sha256(pt2)}
    (tmp_path / f"{key.name}.json").write_text(json.dumps(record))
    run, stream = _run()
    compile_backbone(run, model, 2, build=False)
    (warning,) = _warnings(stream)
    assert warning["code"] == "COMPILE_FAILED" and "stale: built for torch='2.9.0'" in warning["message"]
    assert pt2.read_bytes() == b"an old package"  # bypassed, not touched
    _assert_eager(model)


def test_no_artefact_and_no_build_is_silent(checkpoint, monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model = load_generator(checkpoint, precision="fp32")
    run, stream = _run()
    compile_backbone(run, model, 2, build=False)
    assert _warnings(stream) == []
    _assert_eager(model)


def test_prepare_without_model_files_is_one_line_and_exit_4():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vibe_engine", "prepare"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 4 and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == ("prepare needs the VIBE model files: pass --vibe-data DIR "
                                                    "or --vibe-checkpoint F")
