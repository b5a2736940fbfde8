"""Synthetic benchmark tooling: BVH forward kinematics, retargeting, and the committed CI clip's truth."""
import json

import numpy as np
import pytest

from benchmarks.synthetic.bvh import forward_kinematics, read_bvh
from benchmarks.synthetic.retarget import retarget
from benchmarks.synthetic.suite import CI_DIR
from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics as smpl_fk
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.blazepose.standin_body import load_standin_body

TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Leg
  {
    OFFSET 0 -2 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 -2 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 0 0 0 0
0 10 0 90 0 0 0 0 90
"""


def test_bvh_forward_kinematics_known_answer(tmp_path):
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY_BVH)
    bvh = read_bvh(path)
    assert bvh.names == ["Hips", "Leg"] and bvh.parents == [-1, 0] and bvh.fps == 2.0
    pos = forward_kinematics(bvh)
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 0, 3]], atol=1e-12)
    # Hips turned 90° about z: the leg offset (0,-2,0) points along +x
    np.testing.assert_allclose(pos[1], [[0, 10, 0], [2, 10, 0]], atol=1e-12)


def test_bvh_with_wrong_value_count_is_refused(tmp_path):
    path = tmp_path / "bad.bvh"
    path.write_text(TINY_BVH.rsplit("\n", 2)[0] + "\n")
    with pytest.raises(ValueError, match="motion values"):
        read_bvh(path)


def test_retarget_reproduces_known_poses_on_the_same_body():
    body = load_standin_body()
    rest = body["J_regressor"].astype(np.float64) @ body["v_template"]
    parents = np.array(mf.SMPL_PARENTS)
    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.35, (8, 24, 3))
    pose[:, [10, 11, 15, 22, 23]] = 0.0  # leaf joints carry no direction: they come back as identity
    transl = rng.normal(0, 1, (8, 3))
    joints = smpl_fk(aa_to_matrix(pose), rest, parents)[:, :, :3, 3] + transl[:, None]
    new_pose, new_transl = retarget(joints, rest, parents)
    again = smpl_fk(aa_to_matrix(new_pose), rest, parents)[:, :, :3, 3] + new_transl[:, None]
    np.testing.assert_allclose(again, joints, atol=1e-9)


@pytest.fixture(scope="module")
def ci_truth():
    with np.load(CI_DIR / "jumps_front.gt.npz", allow_pickle=False) as gt:
        return {k: gt[k] for k in gt.files}


def test_ci_clip_truth_is_consistent(ci_truth):
    gt = ci_truth
    m, k = gt["world_from_camera"], gt["K"]
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    back = gt["joints_cam"] @ m[:3, :3].T + m[:3, 3]
    np.testing.assert_allclose(back, gt["joints_world"], atol=1e-9)
    proj = gt["joints_cam"][..., :2] / gt["joints_cam"][..., 2:] * np.diag(k)[:2] + k[:2, 2]
    np.testing.assert_allclose(proj, gt["joints_2d"], atol=1e-6)
    assert gt["visible"].all() and gt["times"].shape == (120,)
    assert gt["joints_world"][..., 2].min() > -1e-9  # nothing below the ground
    assert 0.2 < gt["contacts"].mean() < 1.0
    assert json.loads(gt["meta_json"].tobytes())["camera"] == "front"


def test_platform_scene_support_and_box():
    """--platform: the support level is the box's height until take-off, 0 from landing (smoothstep in
    between, half way at the middle); the box's front edge lies half way between the feet at take-off
    and at landing, along the jump, and the box is as high as the support."""
    from benchmarks.synthetic.make_clip import FOOT_JOINTS, _contacts, platform_box, platform_support

    times = np.arange(60) / 30.0
    support = platform_support(times, 0.3, 0.5, 1.0)
    assert np.all(support[times <= 0.5] == 0.3) and np.all(support[times >= 1.0] == 0.0)
    assert platform_support(np.array([0.75]), 0.3, 0.5, 1.0)[0] == pytest.approx(0.15, abs=1e-12)
    joints = np.zeros((60, 24, 3))
    feet = np.array([[0.0, 0.1, 0.0], [0.15, 0.1, 0.0], [0.0, -0.1, 0.0], [0.15, -0.1, 0.0]])
    joints[:, list(FOOT_JOINTS)] = feet
    joints[30:, list(FOOT_JOINTS), 0] += 0.9  # jumps 0.9 m along +x
    joints[..., 2] += support[:, None]
    box = platform_box(joints, 0.3, 15, 30)
    assert box[:, 0].max() == pytest.approx((0.15 + 0.9) / 2, abs=1e-12)  # edge between toe and landing heel
    assert sorted(set(np.round(box[:, 2], 12))) == [0.0, 0.3]
    # contacts are measured from the level below the feet: planted on the box and on the floor
    found = _contacts(joints, 30.0, support)
    assert found[:15].all() and found[31:].all()
