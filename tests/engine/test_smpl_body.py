"""SMPL body model sources: embedded in the checkpoint, .npz, official-style .pkl (restricted)."""
import collections
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from tests.fixtures.synthetic import official_files, write_smpl_npz, write_smpl_pkl
from vibe_engine.errors import ModelError
from vibe_engine.models import load_generator
from vibe_engine.models.body_io import read_body_file
from vibe_engine.models.safe_pickle import load_pickle_arrays


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    return official_files(tmp_path_factory.getbasetemp() / "vibe_synthetic")


def test_chumpy_and_sparse_pickle_reads_back_exactly(files):
    data = load_pickle_arrays(files["pkl"])
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"):
        assert isinstance(data[k], np.ndarray), k
        np.testing.assert_array_equal(data[k], files["smpl"][k], err_msg=k)
    assert data["bs_style"] == "lbs"


def test_pickle_really_uses_chumpy_and_scipy_classes(files):
    raw = files["pkl"].read_bytes()
    assert b"chumpy.ch\nCh" in raw and b"scipy.sparse.csc\ncsc_matrix" in raw
    assert "chumpy" not in sys.modules


@pytest.mark.parametrize("protocol, old_name", [(0, True), (1, False), (4, False)])
def test_other_pickle_protocols_and_scipy_names(files, tmp_path, protocol, old_name):
    path = write_smpl_pkl(tmp_path / "p.pkl", files["smpl"], protocol=protocol, old_scipy_name=old_name)
    if protocol < 2:
        assert b"copy_reg\n_reconstructor" in path.read_bytes()
    data = load_pickle_arrays(path)
    for k in ("v_template", "J_regressor", "weights"):
        np.testing.assert_array_equal(data[k], files["smpl"][k], err_msg=k)


def test_plain_pickle_with_dense_arrays(files, tmp_path):
    path = write_smpl_pkl(tmp_path / "plain.pkl", files["smpl"], sparse_J=False, chumpy_like=False)
    np.testing.assert_array_equal(load_pickle_arrays(path)["J_regressor"], files["smpl"]["J_regressor"])


@pytest.fixture(scope="module")
def models(files):
    return {
        "checkpoint": load_generator(files["vibe"]),
        "npz": load_generator(files["vibe"], body_model=files["npz"]),
        "pkl": load_generator(files["vibe"], body_model=files["pkl"]),
    }


def test_body_from_checkpoint_npz_and_pkl_give_identical_meshes(models):
    y = torch.randn(2, 3, 2048, generator=torch.Generator().manual_seed(11))
    with torch.inference_mode():
        outs = {k: m.regress(y) for k, m in models.items()}
    for src in ("npz", "pkl"):
        for k in ("verts", "kp_3d", "kp_2d", "theta"):
            torch.testing.assert_close(outs[src][k], outs["checkpoint"][k], atol=1e-6, rtol=0)


def test_model_body_exposes_float32_int32_arrays(models, files):
    body = models["checkpoint"].body
    smpl = files["smpl"]
    assert body.v_template.shape == (6890, 3) and body.v_template.dtype == np.float32
    assert body.shapedirs.shape == (6890, 3, 10) and body.posedirs.shape == (207, 20670)
    assert body.J_regressor.shape == (24, 6890) and body.weights.shape == (6890, 24)
    assert body.parents.dtype == np.int32 and body.faces.dtype == np.int32
    assert body.parents.tolist() == [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    np.testing.assert_array_equal(body.faces, smpl["f"])
    np.testing.assert_allclose(body.posedirs, smpl["posedirs"].reshape(-1, 207).T, atol=1e-7)
    for src in ("npz", "pkl"):
        other = models[src].body
        for name in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "parents", "faces",
                     "J_regressor_extra"):
            np.testing.assert_array_equal(getattr(other, name), getattr(body, name), err_msg=f"{src} {name}")


class _Marker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickle_with_foreign_callable_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Marker(marker)}, protocol=2))
    with pytest.raises(ModelError, match=r"refers to \w+\.system, which is not allowed"):
        read_body_file(path)
    assert not marker.exists()


def test_pickle_with_unknown_ordereddict_subclass_is_refused(tmp_path):
    mod = types.ModuleType("evilsmpl")
    mod.Model = type("Model", (collections.OrderedDict,), {"__module__": "evilsmpl"})
    sys.modules["evilsmpl"] = mod
    try:
        payload = pickle.dumps(mod.Model(v_template=np.zeros(3)), protocol=2)
    finally:
        del sys.modules["evilsmpl"]
    path = tmp_path / "odict.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelError, match=r"evilsmpl\.Model"):
        read_body_file(path)


def test_npz_with_missing_key_names_it(files, tmp_path):
    arrays = {k: v for k, v in files["smpl"].items() if k != "weights"}
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match="lacks weights"):
        read_body_file(path)


def test_300_shape_components_are_sliced_to_10(files, tmp_path):
    smpl = dict(files["smpl"])
    extra = np.random.default_rng(0).standard_normal((6890, 3, 290))
    smpl["shapedirs"] = np.concatenate([smpl["shapedirs"], extra], axis=2)
    body = read_body_file(write_smpl_npz(tmp_path / "smpl_v110.npz", smpl))
    np.testing.assert_array_equal(body.shapedirs, files["smpl"]["shapedirs"].astype(np.float32))


def test_extra_regressor_lookup_order(files, tmp_path):
    path = write_smpl_npz(tmp_path / "no_extra.npz", files["smpl"], with_extra=False)
    with pytest.raises(ModelError, match=r"no J_regressor_extra .*J_regressor_extra\.npy"):
        read_body_file(path)
    fallback = np.ones((9, 6890), dtype=np.float32) / 6890
    np.testing.assert_array_equal(read_body_file(path, fallback_extra=fallback).J_regressor_extra, fallback)
    np.save(tmp_path / "J_regressor_extra.npy", files["smpl"]["J_regressor_extra"])
    np.testing.assert_allclose(read_body_file(path).J_regressor_extra, files["smpl"]["J_regressor_extra"],
                               atol=1e-7)


def test_wrong_vertex_count_and_format(files, tmp_path):
    smpl = dict(files["smpl"])
    smpl["weights"] = smpl["weights"][:100]
    with pytest.raises(ModelError, match=r"weights has shape \(100, 24\), expected \(6890, 24\)"):
        read_body_file(write_smpl_npz(tmp_path / "bad.npz", smpl))
    other = tmp_path / "model.obj"
    other.write_text("v 0 0 0\n")
    with pytest.raises(ModelError, match=r"must be a \.npz or \.pkl"):
        read_body_file(other)
