"""The AOTInductor artefact cache (vibe_engine/models/compiled.py) on a tiny conv net: built once,
loaded in later calls with the eager result, and a stale (other torch, other weights) or corrupt
artefact detected, then bypassed (eager, with the reason) or rebuilt; a failing build leaves
nothing behind; the conv weights re-packed at load reproduce the package bitwise. Three real
compilations of 2-layer models (seconds each), no ResNet-50."""
from __future__ import annotations

import json

import pytest
import torch
import torch._inductor
from torch import nn

from vibe_engine.models import compiled as C

pytestmark = pytest.mark.slow  # two real AOTInductor builds of a tiny net (35-60 s each on the loaded 2 cores)

#: fp32 compiled vs eager on outputs of order 1: summation order only (a few float32 ulps × fan-in 27).
FP32_TOLERANCE = 1e-5


class Tiny(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


class Folded(nn.Module):
    """Convs with their own biases (BatchNorm already folded, as backbone.fold_batchnorm does)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x))
        return torch.relu(self.b(y) + y).mean(dim=(2, 3))


KEY = C.ArtefactKey("tiny", "cpu", "torch.float32", False, 2)
FOLDED_KEY = C.ArtefactKey("folded", "cpu", "torch.float32", False, 2)


@pytest.fixture(scope="module")
def example():
    return torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def built(tmp_path_factory, example):
    folder = tmp_path_factory.mktemp("compiled_cache")
    model = Tiny().eval()
    reasons = []
    prepared = C.load_or_build(model, example, KEY, cache_dir=folder, on_build=reasons.append)
    return folder, model, prepared, reasons


def _close(runner, model, x):
    with torch.inference_mode():
        return float((runner(x) - model(x)).abs().max()) <= FP32_TOLERANCE


def test_first_call_builds_then_later_calls_load(built, example):
    folder, model, prepared, reasons = built
    assert prepared.state == "built" and prepared.reason == "" and reasons == ["missing"]
    assert _close(prepared.runner, model, example)
    record = json.loads((folder / f"{KEY.name}.json").read_text())
    assert record["torch"] == torch.__version__ and record["weights_sha256"] == C.weights_sha256(model)
    again = C.load_or_build(model, example, KEY, cache_dir=folder, build=False)
    assert again.state == "loaded" and again.reason == ""
    assert _close(again.runner, model, example)


def test_inductor_folded_batchnorm_gets_no_repack_plan(built):
    """Tiny's conv weight is folded with its BatchNorm by Inductor: no parameter of the module
    holds the packed weight, so the package runs as built."""
    folder, _, prepared, _ = built
    assert json.loads((folder / f"{KEY.name}.json").read_text())["repack"] == []
    assert prepared.runner._packed == {}


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="oneDNN convolutions only")
def test_conv_weights_are_repacked_at_load_and_reproduce_the_package(example, tmp_path):
    model = Folded().eval()
    assert C.load_or_build(model, example, FOLDED_KEY, cache_dir=tmp_path).state == "built"
    pt2 = tmp_path / f"{FOLDED_KEY.name}.pt2"
    plan = json.loads((tmp_path / f"{FOLDED_KEY.name}.json").read_text())["repack"]
    assert sorted(e["weight"] for e in plan) == ["a.weight", "b.weight"]
    assert all(e["input_size"][0] == 2 and e["padding"] == [1, 1] for e in plan)
    loaded = C.load_or_build(model, example, FOLDED_KEY, cache_dir=tmp_path, build=False)
    assert loaded.state == "loaded" and sorted(loaded.runner._packed) == sorted(e["constant"] for e in plan)
    with torch.inference_mode():
        assert torch.equal(loaded.runner(example), C.PackageRunner(pt2)(example))
    assert _close(loaded.runner, model, example)
    # a plan that does not reproduce the package (other weights) is dropped at build time
    assert C._checked_plan(Folded(seed=1).eval(), (example,), pt2) == []


def test_stale_torch_version_is_detected_and_bypassed(built, example, tmp_path):
    folder, model, _, _ = built
    copy = tmp_path / "cache"
    copy.mkdir()
    (copy / f"{KEY.name}.pt2").write_bytes((folder / f"{KEY.name}.pt2").read_bytes())
    record = json.loads((folder / f"{KEY.name}.json").read_text())
    record["torch"] = "2.0.0"
    (copy / f"{KEY.name}.json").write_text(json.dumps(record))
    prepared = C.load_or_build(model, example, KEY, cache_dir=copy, build=False)
    assert prepared.runner is None and prepared.state == "eager"
    assert prepared.reason == f"stale: built for torch='2.0.0', this run needs {torch.__version__!r}"


def test_other_weights_are_stale(built, example):
    folder, _, _, _ = built
    other = Tiny(seed=1).eval()
    prepared = C.load_or_build(other, example, KEY, cache_dir=folder, build=False)
    assert prepared.runner is None and prepared.reason.startswith("stale: built for weights_sha256=")


def test_unloadable_package_with_a_valid_record_is_corrupt(built, example, tmp_path):
    folder, model, _, _ = built
    pt2 = tmp_path / f"{KEY.name}.pt2"
    pt2.write_bytes(b"not a zip")
    record = {**KEY.expected(C.weights_sha256(model)), "package_sha256": C.file_sha256(pt2)}
    (tmp_path / f"{KEY.name}.json").write_text(json.dumps(record))
    prepared = C.load_or_build(model, example, KEY, cache_dir=tmp_path, build=False)
    assert prepared.runner is None and prepared.reason.startswith("corrupt: cannot load the package")


def test_corrupt_package_is_bypassed_then_rebuilt(built, example, tmp_path):
    folder, model, _, _ = built
    (tmp_path / f"{KEY.name}.json").write_text((folder / f"{KEY.name}.json").read_text())
    data = bytearray((folder / f"{KEY.name}.pt2").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / f"{KEY.name}.pt2").write_bytes(bytes(data))
    bypassed = C.load_or_build(model, example, KEY, cache_dir=tmp_path, build=False)
    assert bypassed.runner is None
    assert bypassed.reason == "corrupt: the package does not match its recorded SHA-256"
    rebuilt = C.load_or_build(model, example, KEY, cache_dir=tmp_path)
    assert rebuilt.state == "built" and rebuilt.reason == bypassed.reason
    assert _close(rebuilt.runner, model, example)
    assert C.load_or_build(model, example, KEY, cache_dir=tmp_path, build=False).state == "loaded"


def test_a_failing_build_runs_eager_and_leaves_nothing(example, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", broken)
    prepared = C.load_or_build(Tiny().eval(), example, KEY, cache_dir=tmp_path)
    assert prepared.runner is None and prepared.state == "eager"
    assert prepared.reason == "missing; build failed (RuntimeError: no C++ compiler)"
    assert list(tmp_path.iterdir()) == []


def test_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "c"))
    assert C.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(C.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert C.default_cache_dir() == tmp_path / "vibe-mocap" / "compiled"
