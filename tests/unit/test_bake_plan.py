"""Bake plan: the planned pose-bone keys, posed with Blender's rule, reproduce SMPL (numpy LBS)."""
import numpy as np
import pytest

from tests.fixtures.motion import make_body, make_track
from vibe_blender.core import bake_plan as bp
from vibe_blender.core import body as smpl
from vibe_blender.core.frames import default_world_from_camera, transform_points
from vibe_blender.core.rotations import quat_to_matrix
from vibe_blender.core.skeleton import build_skeleton

FK_TOL_M = 1e-5


def _rigid(seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = q, rng.normal(size=3)
    return m


@pytest.fixture(scope="module")
def setup():
    body = make_body(seed=3, posedirs=False)
    track = make_track(1, 12, body.num_betas, seed=4)
    verts, joints = smpl.shaped_rest(body, track.betas_track)
    return body, track, build_skeleton(joints, verts), verts


@pytest.mark.parametrize("world", ["default", "given"])
def test_fk_of_plan_reproduces_smpl_joints_and_vertices(setup, world):
    body, track, skel, rest_verts = setup
    w = default_world_from_camera() if world == "default" else _rigid(7)
    plan = bp.plan_track(skel, track.pose, track.transl, track.times, w, fps=30)
    ref_v, ref_j = smpl.lbs_with_joints(body, track.betas_track, track.pose, track.transl)
    heads = bp.posed_bone_matrices(skel, plan)[:, :24, :3, 3]
    assert np.abs(heads - transform_points(w, ref_j)).max() < FK_TOL_M
    skinned = bp.skin(skel, plan, skel.to_armature(rest_verts), body.weights)
    assert np.abs(skinned - transform_points(w, ref_v)).max() < FK_TOL_M


def test_root_motion_modes(setup):
    body, track, skel, _ = setup
    w = default_world_from_camera()
    plans = {m: bp.plan_track(skel, track.pose, track.transl, track.times, w, fps=30, root_motion=m)
             for m in bp.ROOT_MOTION_MODES}
    world_heads = bp.posed_bone_matrices(skel, plans["world"])[:, 0, :3, 3]
    in_place = bp.posed_bone_matrices(skel, plans["in_place"])[:, 0, :3, 3]
    off = bp.posed_bone_matrices(skel, plans["off"])[:, 0, :3, 3]
    ref = bp.pelvis_world(skel, track.transl, w)
    np.testing.assert_allclose(world_heads, ref, atol=1e-9)
    np.testing.assert_allclose(in_place[:, :2], 0.0, atol=1e-9)  # no horizontal travel
    np.testing.assert_allclose(in_place[:, 2], ref[:, 2], atol=1e-9)  # height kept
    np.testing.assert_allclose(off, np.tile(skel.heads[0], (len(off), 1)), atol=1e-9)
    np.testing.assert_allclose(plans["world"].root_loc[:, 2], 0.0)  # root stays on the ground
    for m in ("in_place", "off"):  # poses identical in every mode
        np.testing.assert_allclose(plans[m].quats, plans["world"].quats)
    with pytest.raises(ValueError, match="root_motion"):
        bp.root_locations(skel, ref, "sideways")


def test_quats_are_unit_and_continuous(setup):
    _, track, skel, _ = setup
    plan = bp.plan_track(skel, track.pose, track.transl, track.times, default_world_from_camera(), fps=30)
    np.testing.assert_allclose(np.linalg.norm(plan.quats, axis=-1), 1.0, atol=1e-12)
    assert (np.sum(plan.quats[1:] * plan.quats[:-1], axis=-1) >= 0).all()


def test_rest_pose_plan_is_identity(setup):
    """An upright person facing the default camera (which looks along +Y) is the rest pose: the rest
    character faces −Y, so every local quaternion is the identity."""
    _, _, skel, _ = setup
    pose = np.zeros((1, 24, 3))
    pose[0, 0] = [np.pi, 0, 0]  # SMPL upright in the OpenCV camera (y down) faces the camera
    plan = bp.plan_track(skel, pose, np.array([[0, 0, 3.0]]), np.zeros(1), default_world_from_camera(), fps=24)
    np.testing.assert_allclose(plan.quats[0], np.tile([1.0, 0, 0, 0], (24, 1)), atol=1e-12)
    pose[0, 0] = [0, 0, np.pi]  # = Ry(π)·Rx(π) in the camera: upright, facing away from the camera
    plan = bp.plan_track(skel, pose, np.array([[0, 0, 3.0]]), np.zeros(1), default_world_from_camera(), fps=24)
    m = skel.rest_rot[0] @ quat_to_matrix(plan.quats[0, 0]) @ skel.rest_rot[0].T
    np.testing.assert_allclose(m, np.diag([-1.0, -1.0, 1.0]), atol=1e-12)


def test_irregular_timestamps_map_to_frames():
    times = np.array([0.0, 0.0333, 0.0667, 0.1, 0.2, 0.2337])  # variable frame rate, a dropped frame
    frames = bp.times_to_frames(times, fps=30, frame_start=1)
    np.testing.assert_allclose(frames, [1, 1.999, 3.001, 4, 7, 1 + 0.2337 * 30], atol=1e-12)
    np.testing.assert_array_equal(bp.times_to_frames([0, 1 / 30, 2 / 30], 30, 10), [10, 11, 12])
    np.testing.assert_allclose(bp.times_to_frames([0.5], 24, 1), [13.0])


@pytest.mark.parametrize("fps,expected", [(30, (30, 1.0)), (29.97002997, (30, 1.001)),
                                          (23.976, (24, 24 / 23.976)), (12.5, (13, 13 / 12.5))])
def test_scene_fps(fps, expected):
    fps_int, base = bp.scene_fps(fps)
    assert fps_int == expected[0]
    assert base == pytest.approx(expected[1], rel=1e-6)
    assert fps_int / base == pytest.approx(fps, rel=1e-9)


def test_scene_fps_rejects_nonsense():
    with pytest.raises(ValueError, match="positive"):
        bp.scene_fps(0.0)


def test_flagged_runs():
    plan = bp.BakePlan(frames=np.arange(1.0, 9.0), quats=np.zeros((8, 24, 4)), pelvis_loc=np.zeros((8, 3)),
                       root_loc=np.zeros((8, 3)), pose_features=np.zeros((8, 207)),
                       flagged=np.array([1, 1, 0, 0, 1, 0, 1, 1], bool), confidence=np.ones(8))
    assert bp.flagged_runs(plan) == [(1.0, 2.0), (5.0, 5.0), (7.0, 8.0)]


def test_world_from_camera_default_given_and_rejected():
    from vibe_blender.core.errors import MotionFileError
    from vibe_blender.core.frames import invert_rigid, world_from_camera

    d = world_from_camera({"world": {"world_from_camera": None}})
    np.testing.assert_allclose(transform_points(d, [[1.0, 2.0, 3.0]]), [[1.0, 3.0, -2.0]])  # (x, z, −y)
    np.testing.assert_allclose(world_from_camera({}), d)
    given = _rigid(3)
    np.testing.assert_allclose(world_from_camera({"world": {"world_from_camera": given.tolist()}}), given)
    np.testing.assert_allclose(invert_rigid(given) @ given, np.eye(4), atol=1e-12)
    scaled = given.copy()
    scaled[:3, :3] *= 2.0
    for bad in (scaled, given[:3], np.full((4, 4), np.nan)):
        with pytest.raises(MotionFileError, match="world_from_camera"):
            world_from_camera({"world": {"world_from_camera": bad.tolist()}})
