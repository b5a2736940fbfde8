"""core.body (numpy SMPL) against smplx, and its rest shape against the definition."""
import numpy as np
import pytest

from tests.fixtures.motion import make_body, make_track
from vibe_blender.core import body as smpl
from vibe_blender.core.frames import SMPL_TO_BLENDER, smpl_to_blender, blender_to_smpl
from vibe_blender.core.skeleton import build_skeleton


def test_shaped_rest_matches_definition():
    body = make_body(seed=1)
    betas = np.linspace(-2, 2, 10)
    verts, joints = smpl.shaped_rest(body, betas)
    ref = body.v_template + np.einsum("vcb,b->vc", body.shapedirs.astype(float), betas)
    np.testing.assert_allclose(verts, ref, atol=1e-6)
    np.testing.assert_allclose(joints, body.J_regressor.astype(float) @ ref, atol=1e-6)
    short, _ = smpl.shaped_rest(body, betas[:3])  # fewer betas: the rest count as zero
    np.testing.assert_allclose(short, smpl.shaped_rest(body, np.r_[betas[:3], np.zeros(7)])[0])


def test_zero_pose_is_rest_plus_transl():
    body = make_body(seed=2)
    betas = np.full(10, 0.5)
    verts = smpl.lbs(body, betas, np.zeros((1, 24, 3)), np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(verts[0], smpl.shaped_rest(body, betas)[0] + [1, 2, 3], atol=1e-12)


@pytest.mark.parametrize("posedirs", [True, False])
def test_lbs_matches_smplx(posedirs):
    """Same vertices and joints as smplx's own ``lbs`` (float64), with and without correctives."""
    torch = pytest.importorskip("torch")
    smplx_lbs = pytest.importorskip("smplx.lbs")
    body = make_body(seed=5, posedirs=True)
    track = make_track(1, 6, 10, seed=6)
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
    posedirs_t = t(body.posedirs) if posedirs else torch.zeros(body.posedirs.shape, dtype=torch.float64)
    with torch.no_grad():
        verts, joints = smplx_lbs.lbs(t(np.tile(track.betas_track, (6, 1))), t(track.pose.reshape(6, 72)),
                                      t(body.v_template), t(body.shapedirs), posedirs_t, t(body.J_regressor),
                                      torch.as_tensor(body.parents.astype(np.int64)), t(body.weights))
    ours_v, ours_j = smpl.lbs_with_joints(body, track.betas_track, track.pose, track.transl,
                                          use_posedirs=posedirs)
    # smplx adds 1e-8 to the rotation vector before taking its norm: ~5e-9 m differences
    np.testing.assert_allclose(ours_v, verts.numpy() + track.transl[:, None], atol=1e-7)
    np.testing.assert_allclose(ours_j, joints.numpy() + track.transl[:, None], atol=1e-7)


def test_frame_conversions_round_trip_and_axes():
    pts = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(blender_to_smpl(smpl_to_blender(pts)), pts, atol=1e-15)
    np.testing.assert_allclose(smpl_to_blender([0, 1, 0]), [0, 0, 1])  # SMPL up → Blender up
    np.testing.assert_allclose(smpl_to_blender([0, 0, 1]), [0, -1, 0])  # faces +z → faces −Y
    assert np.linalg.det(SMPL_TO_BLENDER) == pytest.approx(1.0)


def test_skeleton_rest_is_grounded_and_orthonormal():
    body = make_body(seed=7)
    verts, joints = smpl.shaped_rest(body, np.zeros(10))
    skel = build_skeleton(joints, verts)
    arm = skel.to_armature(verts)
    assert arm[:, 2].min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(skel.heads[0, :2], 0.0, atol=1e-12)  # pelvis above the origin
    np.testing.assert_allclose(skel.heads[:24], skel.to_armature(joints), atol=1e-12)
    r = skel.rest_rot
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    y = (skel.tails - skel.heads) / np.linalg.norm(skel.tails - skel.heads, axis=1, keepdims=True)
    np.testing.assert_allclose(r[:, :, 1], y, atol=1e-12)  # bone y axis points head → tail
