"""The compiled generator's parts (models/head.py, backbone.fold_batchnorm): the exportable head
(regressor + SMPL) equals the eager regressor in float64; the folded backbone equals the
unfolded one in float64; the head's AOTInductor artefact (one real build, slow) equals eager in
float32, pads a short last call exactly, and is detected stale (other torch, other weights) or
corrupt, then bypassed or rebuilt."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.fixtures import synthetic
from vibe_engine.models import compiled as C
from vibe_engine.models import load_generator
from vibe_engine.models.backbone import fold_batchnorm
from vibe_engine.models.head import HEAD_OUTPUTS, Head, example_input

#: float64: the two forms differ in summation order only; outputs are O(1) metres/radians.
FLOAT64_TOLERANCE = 1e-10
#: float32 compiled vs eager: summation order over fan-ins of ≤ 2205 (a few hundred ulps of 1.0).
FLOAT32_TOLERANCE = 1e-4
HEAD_FRAMES = 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = synthetic.make_vibe_data(tmp_path_factory.mktemp("head_vibe_data"), 5)
    return data / "vibe_model_wo_3dpw.pth.tar"


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_generator(checkpoint, precision="fp32")


def _features(n: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, 2048, generator=torch.Generator().manual_seed(3), dtype=dtype)


def test_head_equals_the_regressor_in_float64(model):
    reg = copy.deepcopy(model.regressor).double()
    y = _features(6, torch.float64)
    with torch.inference_mode():
        want = reg(y)
        got = dict(zip(HEAD_OUTPUTS, Head(reg)(y)))
    for key in HEAD_OUTPUTS:
        assert got[key].dtype == torch.float64
        assert float((got[key] - want[key]).abs().max()) <= FLOAT64_TOLERANCE, key


def test_folded_backbone_equals_the_unfolded_one_in_float64(model):
    plain = copy.deepcopy(model.backbone).double().eval()
    folded = fold_batchnorm(copy.deepcopy(plain)).double().eval()
    assert not any(".bn" in k or k.startswith("bn") for k in folded.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.inference_mode():
        want, got = plain(x), folded(x)
    assert float((got - want).abs().max()) <= FLOAT64_TOLERANCE * float(want.abs().max())


def test_bf16_backbone_is_folded_pools_in_float32_and_keeps_wide_stages(checkpoint):
    m = load_generator(checkpoint, precision="bf16", wide_stages=("layer4",))
    assert m.backbone.conv1.bias is not None and m.backbone.conv1.weight.dtype == torch.bfloat16
    assert m.backbone.layer3[0].conv1.weight.dtype == torch.bfloat16
    assert m.backbone.layer4[0].conv1.weight.dtype == torch.float32
    with torch.inference_mode():
        assert m.backbone(torch.zeros(1, 3, 224, 224, dtype=torch.bfloat16)).dtype == torch.float32


KEY = C.ArtefactKey("vibe-head", "cpu", str(torch.float32), False, HEAD_FRAMES)


@pytest.fixture(scope="module")
def built(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("head_cache")
    prepared = model.prepare_compiled_head(HEAD_FRAMES, cache_dir=folder)
    yield folder, prepared
    model.uncompile_backbone()


@pytest.mark.slow  # one real AOTInductor build of the regressor + SMPL (about a minute on 2 loaded cores)
def test_compiled_head_equals_eager_and_pads_the_last_call(model, built):
    folder, prepared = built
    assert prepared.state == "built" and prepared.path == folder / f"{KEY.name}.pt2"
    y = _features(HEAD_FRAMES + 2)[None]  # one full call + one padded call of 2 frames
    with torch.inference_mode():
        got = model.regress(y)
        runner, model._head = model._head, None
        want = model.regress(y)
        model._head = runner
        assert set(model.regress(y, with_verts=False)) == set(HEAD_OUTPUTS) - {"verts"}
    for key in HEAD_OUTPUTS:
        assert got[key].shape == want[key].shape
        assert float((got[key] - want[key]).abs().max()) <= FLOAT32_TOLERANCE, key


def _copy_artefact(folder, target, **record_changes):
    target.mkdir()
    (target / f"{KEY.name}.pt2").write_bytes((folder / f"{KEY.name}.pt2").read_bytes())
    record = {**json.loads((folder / f"{KEY.name}.json").read_text()), **record_changes}
    (target / f"{KEY.name}.json").write_text(json.dumps(record))
    return target


@pytest.mark.slow
def test_head_artefact_of_another_torch_is_bypassed(checkpoint, built, tmp_path):
    folder = _copy_artefact(built[0], tmp_path / "old", torch="2.0.0")
    fresh = load_generator(checkpoint, precision="fp32")
    prepared = fresh.prepare_compiled_head(HEAD_FRAMES, cache_dir=folder, build=False)
    assert prepared.runner is None and fresh._head is None
    assert prepared.reason == f"stale: built for torch='2.0.0', this run needs {torch.__version__!r}"


@pytest.mark.slow
def test_head_artefact_of_other_weights_is_stale_and_rebuilt(checkpoint, built, tmp_path):
    other = load_generator(checkpoint, precision="fp32")
    with torch.no_grad():
        other.regressor.fc1.bias.add_(0.01)
    folder = _copy_artefact(built[0], tmp_path / "other")
    bypassed = other.prepare_compiled_head(HEAD_FRAMES, cache_dir=folder, build=False)
    assert bypassed.runner is None and bypassed.reason.startswith("stale: built for weights_sha256=")
    rebuilt = other.prepare_compiled_head(HEAD_FRAMES, cache_dir=folder)
    assert rebuilt.state == "built" and rebuilt.reason == bypassed.reason
    y = _features(HEAD_FRAMES)[None]
    with torch.inference_mode():
        got = other.regress(y)["kp_3d"]
        other.uncompile_backbone()
        want = other.regress(y)["kp_3d"]
    assert float((got - want).abs().max()) <= FLOAT32_TOLERANCE


@pytest.mark.slow
def test_corrupt_head_package_is_bypassed(checkpoint, built, tmp_path):
    folder = _copy_artefact(built[0], tmp_path / "corrupt")
    pt2 = folder / f"{KEY.name}.pt2"
    data = bytearray(pt2.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pt2.write_bytes(bytes(data))
    fresh = load_generator(checkpoint, precision="fp32")
    prepared = fresh.prepare_compiled_head(HEAD_FRAMES, cache_dir=folder, build=False)
    assert prepared.runner is None
    assert prepared.reason == "corrupt: the package does not match its recorded SHA-256"


def test_example_input_shape():
    assert tuple(example_input(3, torch.device("cpu")).shape) == (3, 2048)
