"""Loading the official VIBE/SPIN checkpoint layouts: formats, strict keys, safety, options."""
import collections
import contextlib
import sys
import types
import zipfile

import numpy as np
import pytest
import torch

from tests.fixtures.synthetic import make_crops, make_smpl_arrays, official_files, save_checkpoint, smpl_buffers
from vibe_engine.errors import BadInputError, ModelError
from vibe_engine.models import load_generator
from vibe_engine.models.checkpoints import check_keys, load_checkpoint
from vibe_engine.models.layout import SMPL_SHAPES, VIBE_CORE_SHAPES

VIBE_SHAPES = {**VIBE_CORE_SHAPES, **SMPL_SHAPES}


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    return official_files(tmp_path_factory.getbasetemp() / "vibe_synthetic")


def assert_weights_equal(model, files):
    gen, spin = files["gen"], files["spin_model"]
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, gen[f"encoder.{k}"]), k
    for k, v in model.regressor.state_dict().items():
        if not k.startswith("smpl."):
            assert torch.equal(v, gen[f"regressor.{k}"]), k
    backbone = model.backbone.state_dict()
    assert len(backbone) == 318
    for k, v in backbone.items():
        assert torch.equal(v, spin[k]), k


@pytest.mark.parametrize("vibe, spin, zipped", [("vibe", "spin", True), ("vibe_legacy", "spin_legacy", False)])
def test_zip_and_legacy_files_load_strictly(files, vibe, spin, zipped):
    assert zipfile.is_zipfile(files[vibe]) is zipped and zipfile.is_zipfile(files[spin]) is zipped
    model = load_generator(files[vibe])  # SPIN found next to the VIBE file
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert_weights_equal(model, files)


@pytest.mark.parametrize("name", ["vibe_cuda", "vibe_legacy"])
def test_checkpoint_claiming_cuda_storages_loads_on_cpu(files, name):
    if zipfile.is_zipfile(files[name]):
        with zipfile.ZipFile(files[name]) as zf:
            raw = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    else:
        raw = files[name].read_bytes()
    assert b"cuda:0" in raw
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(files[name], weights_only=True)  # what VIBE's own loader would do here
    assert_weights_equal(load_generator(files[name], files["spin"]), files)


def test_numpy_performance_value_is_allowed(files):
    ckpt = load_checkpoint(files["vibe"], "VIBE checkpoint")
    assert isinstance(ckpt["performance"], np.floating) and float(ckpt["performance"]) == pytest.approx(56.5607)
    assert set(ckpt) == {"epoch", "gen_state_dict", "performance", "gen_optimizer",
                         "disc_motion_state_dict", "disc_motion_optimizer"}


def test_renamed_key_in_file_is_named(files, tmp_path):
    gen = {k: v for k, v in files["gen"].items() if not k.startswith("regressor.smpl.")}
    gen["encoder.rnn.weight_ih_l0"] = gen.pop("encoder.gru.weight_ih_l0")
    bad = save_checkpoint({"gen_state_dict": gen}, tmp_path / "vibe_renamed.pth.tar")
    with pytest.raises(ModelError, match=r"missing keys encoder\.gru\.weight_ih_l0") as err:
        load_generator(bad, files["spin"])
    assert "\n" not in str(err.value)


def _state():
    return {k: torch.zeros(s) for k, s in VIBE_SHAPES.items()}


def test_missing_keys_are_named_with_count():
    state = _state()
    for k in [k for k in state if k.startswith("regressor.smpl.")][:6]:
        del state[k]
    with pytest.raises(ModelError, match=r"missing keys regressor\.smpl\.\w+.* \(6 in all\)"):
        check_keys(state, VIBE_SHAPES, "VIBE")


def test_misshaped_key_is_named_with_shapes():
    state = _state()
    state["regressor.fc1.weight"] = torch.zeros(1024, 2048)
    with pytest.raises(ModelError, match=r"regressor\.fc1\.weight \(1024, 2048\) \(expected \(1024, 2205\)\)"):
        check_keys(state, VIBE_SHAPES, "VIBE")


def test_unexpected_key_is_named():
    state = {**_state(), "regressor.fc3.weight": torch.zeros(3)}
    with pytest.raises(ModelError, match=r"unexpected keys regressor\.fc3\.weight"):
        check_keys(state, VIBE_SHAPES, "VIBE")


def test_module_prefix_is_reported_with_the_fix():
    state = {f"module.{k}": v for k, v in _state().items()}
    with pytest.raises(ModelError, match=r"'module\.' prefix.*strip"):
        check_keys(state, VIBE_SHAPES, "VIBE")


def test_spin_head_keys_ignored_but_other_extras_refused(files, tmp_path):
    model = dict(files["spin_model"])
    assert "fc1.weight" in model and "init_cam" in model  # the official head is present and accepted
    model["smpl.v_template"] = torch.zeros(6890, 3)
    bad = save_checkpoint({"model": model}, tmp_path / "spin_extra.pth.tar")
    with pytest.raises(ModelError, match=r"SPIN checkpoint .*unexpected keys smpl\.v_template"):
        load_generator(files["vibe"], bad)
    del model["smpl.v_template"], model["layer4.2.bn3.running_var"]
    bad = save_checkpoint({"model": model}, tmp_path / "spin_missing.pth.tar")
    with pytest.raises(ModelError, match=r"missing keys layer4\.2\.bn3\.running_var"):
        load_generator(files["vibe"], bad)


def test_missing_spin_sibling_names_file_and_fix(files, tmp_path):
    lonely = tmp_path / "vibe_model_wo_3dpw.pth.tar"
    lonely.symlink_to(files["vibe"])
    with pytest.raises(ModelError, match=r"spin_model_checkpoint\.pth\.tar not found.*spin_checkpoint="):
        load_generator(lonely)


def test_swapped_files_are_explained(files):
    with pytest.raises(ModelError, match="looks like the SPIN checkpoint"):
        load_generator(files["spin"], files["spin"])
    with pytest.raises(ModelError, match="looks like a VIBE checkpoint"):
        load_generator(files["vibe"], files["vibe"])


class _Marker:
    """Unpickling this would create ``path`` (proof that foreign code ran)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@contextlib.contextmanager
def _foreign_module(name):
    mod = types.ModuleType(name)
    mod.Weights = type("Weights", (collections.OrderedDict,), {"__module__": name})
    sys.modules[name] = mod
    try:
        yield mod
    finally:
        del sys.modules[name]


def test_foreign_objects_in_checkpoint_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = save_checkpoint({"gen_state_dict": {}, "performance": _Marker(marker)}, tmp_path / "evil.pth.tar")
    with pytest.raises(ModelError, match=r"contains .*open.*refused"):
        load_generator(path, path)
    assert not marker.exists()
    with _foreign_module("evilpkg") as mod:
        path = save_checkpoint({"gen_state_dict": mod.Weights(a=torch.zeros(1))}, tmp_path / "odict.pth.tar",
                               legacy=True)
    with pytest.raises(ModelError, match=r"evilpkg\.Weights"):
        load_checkpoint(path, "VIBE checkpoint")


def test_corrupt_and_missing_files(files, tmp_path):
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        load_generator(junk, files["spin"])
    with pytest.raises(ModelError, match="not found"):
        load_generator(tmp_path / "nope.pth.tar", files["spin"])


def test_checkpoint_without_smpl_needs_body_model(files, tmp_path):
    gen = {k: v for k, v in files["gen"].items() if not k.startswith("regressor.smpl.")}
    bare = save_checkpoint({"gen_state_dict": gen}, tmp_path / "vibe_bare.pth.tar")
    with pytest.raises(ModelError, match="carries no SMPL arrays; pass body_model="):
        load_generator(bare, files["spin"])
    model = load_generator(bare, files["spin"], body_model=files["npz"])
    np.testing.assert_array_equal(model.body.v_template, files["smpl"]["v_template"].astype(np.float32))


def test_partial_smpl_group_is_refused(files):
    state = {**{k: torch.zeros(s) for k, s in VIBE_CORE_SHAPES.items()},
             **{k: v for k, v in smpl_buffers(make_smpl_arrays(0)).items() if "posedirs" not in k}}
    with pytest.raises(ModelError, match=r"missing keys regressor\.smpl\.posedirs"):
        check_keys(state, VIBE_SHAPES, "VIBE")


def test_bad_options_are_refused(files):
    with pytest.raises(BadInputError, match="precision 'fp16'"):
        load_generator(files["vibe"], precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="CUDA is not available"):
            load_generator(files["vibe"], device="cuda")


def test_bf16_and_memory_formats_agree_with_fp32(files):
    crops = make_crops(1, 2, seed=9)
    ref_model = load_generator(files["vibe"], channels_last=False)
    bf16 = load_generator(files["vibe"], precision="bf16")
    assert bf16.backbone.conv1.weight.dtype == torch.bfloat16
    assert bf16.encoder.gru.weight_ih_l0.dtype == torch.float32  # the GRU stays fp32 (load_generator)
    assert bf16.regressor.fc1.weight.dtype == torch.float32
    assert bf16.regressor.smpl.smpl.v_template.dtype == torch.float32
    with torch.inference_mode():
        ref, nhwc, low = ref_model(crops), load_generator(files["vibe"])(crops), bf16(crops)
    for k in ref:
        torch.testing.assert_close(nhwc[k], ref[k], atol=2e-5, rtol=0)
        assert low[k].dtype == torch.float32
    torch.testing.assert_close(low["kp_2d"], ref["kp_2d"], atol=0.05, rtol=0)
    torch.testing.assert_close(low["theta"][..., :3], ref["theta"][..., :3], atol=0.02, rtol=0)
