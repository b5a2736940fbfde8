"""vibe_engine.blazepose.fit on synthetic data with known answers.

A synthetic SMPL-format body (24 vertices = plausible adult rest joints, J_regressor = identity)
is posed with KNOWN smooth random motions (keyframes slerped; hinge knees/elbows, feet/hands at
rest, as the fit's model), its 33 BlazePose markers are synthesised through the topology mapping
(world landmarks hip-centred, image landmarks through a known pinhole camera at ~4 m), and the fit
must recover the joints, the bone lengths and the root translation.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vibe_engine.blazepose import fit, topology as topo
#: Plausible rest joints of an adult SMPL-like body (canonical frame: x left, y up, z forward; m).
REST_JOINTS = np.array([
    [-0.002, -0.223, 0.028], [0.070, -0.314, 0.024], [-0.068, -0.315, 0.021], [-0.003, -0.109, 0.001],
    [0.103, -0.686, 0.013], [-0.106, -0.683, 0.017], [0.005, 0.025, 0.005], [0.089, -1.081, -0.025],
    [-0.092, -1.087, -0.023], [0.002, 0.074, 0.028], [0.120, -1.142, 0.096], [-0.123, -1.142, 0.098],
    [-0.002, 0.291, -0.009], [0.078, 0.195, -0.004], [-0.082, 0.193, -0.006], [0.005, 0.358, 0.043],
    [0.173, 0.226, -0.019], [-0.176, 0.225, -0.020], [0.433, 0.215, -0.036], [-0.433, 0.213, -0.039],
    [0.685, 0.223, -0.043], [-0.687, 0.222, -0.046], [0.770, 0.212, -0.058], [-0.773, 0.214, -0.056]],
    dtype=np.float32)
FOCAL = 1500.0
CX, CY = 960.0, 540.0
DEPTH_M = 4.0


def synthetic_body() -> dict[str, np.ndarray]:
    """An SMPL-format body whose 24 vertices are the rest joints (J_regressor = identity)."""
    v = REST_JOINTS.copy()
    return {"v_template": v, "shapedirs": np.zeros((24, 3, 10), np.float32),
            "J_regressor": np.eye(24, dtype=np.float32), "weights": np.eye(24, dtype=np.float32),
            "parents": np.array(topo.SMPL_PARENTS, np.int32), "faces": np.zeros((0, 3), np.int32)}


def random_keyposes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n,24,3) axis-angle key poses the fit can represent (hinges pure, feet/hands at rest)."""
    pose = rng.normal(0.0, 0.25, (n, 24, 3))
    yaw = rng.uniform(-np.pi, np.pi, n)
    upright = Rotation.from_rotvec(np.array([np.pi, 0, 0]))
    pose[:, 0] = (upright * Rotation.from_rotvec(np.c_[np.zeros(n), yaw, np.zeros(n)])
                  * Rotation.from_rotvec(rng.normal(0, 0.1, (n, 3)))).as_rotvec()
    for j, (axis, lo, hi, sign) in fit.HINGES.items():
        pose[:, j] = 0.0
        pose[:, j, axis] = sign * rng.uniform(lo, 0.7 * hi, n)
    pose[:, list(fit.FIXED_JOINTS)] = 0.0
    spine = rng.normal(0.0, 0.12, (n, 3))
    pose[:, list(fit.SPINE)] = spine[:, None]
    pose[:, [topo.SJ["left_collar"], topo.SJ["right_collar"]]] *= 0.2
    pose[:, topo.SJ["neck"]] = pose[:, topo.SJ["head"]]
    return pose


def interpolate_poses(keys: np.ndarray, step: int) -> np.ndarray:
    """Smooth sequence: keyframes every ``step`` frames, per-joint slerp between them."""
    out = []
    for a, b in zip(keys[:-1], keys[1:]):
        for s in np.arange(step) / step:
            ra, rb = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
            rel = (ra.inv() * rb).as_rotvec()
            w = 0.5 - 0.5 * np.cos(np.pi * s)
            out.append((ra * Rotation.from_rotvec(rel * w)).as_rotvec())
    return np.asarray(out, dtype=np.float64)


def make_sequence(seed: int = 0, keys: int = 5, step: int = 15, noise_m: float = 0.0):
    """Ground truth and BlazePose-like observations: returns (gt dict, fit.Observations)."""
    rng = np.random.default_rng(seed)
    pose = interpolate_poses(random_keyposes(rng, keys), step)
    t = pose.shape[0]
    sk = fit.Skeleton.from_body(synthetic_body())
    rot = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(t, 24, 3, 3)
    joints, markers = sk.forward(rot)
    path = np.linspace(-0.8, 0.8, t)
    transl = np.c_[path, 0.3 + 0.05 * np.sin(path * 3), DEPTH_M + 0.5 * path].astype(np.float32)
    world = markers + rng.normal(0, noise_m, markers.shape)
    hip = 0.5 * (world[:, topo.LM["left_hip"]] + world[:, topo.LM["right_hip"]])
    cam = markers + transl[:, None] + rng.normal(0, noise_m, markers.shape)
    image = FOCAL * cam[..., :2] / cam[..., 2:] + np.array([CX, CY])
    obs = fit.Observations(world=(world - hip[:, None]).astype(np.float32), image=image.astype(np.float32),
                           weight=np.ones((t, 33), np.float32), focal_px=FOCAL, cx=CX, cy=CY)
    gt = {"pose": pose, "joints": joints, "markers": markers, "transl": transl, "skeleton": sk}
    return gt, obs


#: SMPL joints observed directly by landmarks (hips, knees, ankles, head, shoulders, elbows, wrists).
MAPPED = [1, 2, 4, 5, 7, 8, 15, 16, 17, 18, 19, 20, 21]


def root_relative_errors(joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """(T,24) metres: per-joint distance after aligning the pelvis."""
    return np.linalg.norm((joints - joints[:, :1]) - (gt_joints - gt_joints[:, :1]), axis=-1)


def acceleration(x: np.ndarray) -> np.ndarray:
    """Mean acceleration magnitude (m/frame²) of (T,K,3) positions."""
    return float(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean())


@pytest.fixture(scope="module")
def clean():
    gt, obs = make_sequence(seed=0)
    return gt, obs, fit.fit_track(obs, gt["skeleton"])


@pytest.fixture(scope="module")
def noisy():
    gt, obs = make_sequence(seed=1, noise_m=0.01)
    return gt, obs, fit.fit_track(obs, gt["skeleton"])


def test_noise_free_fit_recovers_mapped_joints(clean) -> None:
    gt, _, res = clean
    err = root_relative_errors(res.joints, gt["joints"])[:, MAPPED]
    assert err.mean() < 0.015, f"MPJPE {err.mean() * 1000:.1f} mm"
    assert np.percentile(err, 95) < 0.035


def test_root_translation_recovered_from_2d(clean) -> None:
    gt, _, res = clean
    pelvis_fit = res.joints[:, 0] + res.transl
    pelvis_gt = gt["joints"][:, 0] + gt["transl"]
    assert np.linalg.norm(pelvis_fit - pelvis_gt, axis=-1).mean() < 0.05
    assert np.abs(pelvis_fit[:, 2] - pelvis_gt[:, 2]).max() < 0.1  # depth at 3.6-4.4 m


def test_bone_lengths_are_the_bodys(clean) -> None:
    gt, _, res = clean
    sk = gt["skeleton"]
    par = np.asarray(topo.SMPL_PARENTS[1:])
    rest = np.linalg.norm(sk.rest_joints[1:] - sk.rest_joints[par], axis=-1)
    posed = np.linalg.norm(res.joints[:, 1:] - res.joints[:, par], axis=-1)
    np.testing.assert_allclose(posed, np.broadcast_to(rest, posed.shape), atol=1e-5)


def test_knees_and_elbows_are_hinges_within_limits(noisy) -> None:
    _, _, res = noisy
    for j, (axis, lo, hi, sign) in fit.HINGES.items():
        rv = res.pose[:, j]
        off_axis = np.delete(rv, axis, axis=1)
        np.testing.assert_allclose(off_axis, 0.0, atol=1e-6)
        flexion = sign * rv[:, axis]
        assert flexion.min() >= lo - 1e-6 and flexion.max() <= hi + 1e-6
    # geometric check, no backward knee: the shank bends towards the back of the thigh
    thigh_rest = np.array([0.0, -1.0, 0.0])
    for knee in (topo.SJ["left_knee"], topo.SJ["right_knee"]):
        shank = Rotation.from_rotvec(res.pose[:, knee]).apply(thigh_rest)
        assert (shank[:, 2] <= 1e-6).all()


def test_noisy_fit_error_and_smoothness(noisy) -> None:
    gt, obs, res = noisy
    err = root_relative_errors(res.joints, gt["joints"])[:, MAPPED]
    assert err.mean() < 0.025, f"MPJPE {err.mean() * 1000:.1f} mm"
    hip = 0.5 * (res.markers[:, topo.LM["left_hip"]] + res.markers[:, topo.LM["right_hip"]])
    fitted_acc = acceleration(res.markers - hip[:, None])
    raw_acc = acceleration(obs.world)
    gt_hip = 0.5 * (gt["markers"][:, topo.LM["left_hip"]] + gt["markers"][:, topo.LM["right_hip"]])
    gt_rel = gt["markers"] - gt_hip[:, None]
    assert fitted_acc < 0.5 * raw_acc
    fitted_acc_err = acceleration((res.markers - hip[:, None]) - gt_rel)
    raw_acc_err = acceleration(obs.world - gt_rel)
    assert fitted_acc_err < 0.3 * raw_acc_err


def test_fit_is_deterministic() -> None:
    gt, obs = make_sequence(seed=2, keys=2, step=10)
    a = fit.fit_track(obs, gt["skeleton"])
    b = fit.fit_track(obs, gt["skeleton"])
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.transl, b.transl)


def test_frames_without_landmarks_are_bridged() -> None:
    gt, obs = make_sequence(seed=3, keys=3, step=15)
    obs.weight[12:18] = 0.0
    obs.world[12:18] = np.nan
    obs.image[12:18] = np.nan
    res = fit.fit_track(obs, gt["skeleton"])
    assert np.isfinite(res.pose).all() and np.isfinite(res.transl).all()
    err = root_relative_errors(res.joints, gt["joints"])[12:18][:, MAPPED]
    assert err.mean() < 0.06
    pelvis_err = np.linalg.norm(res.joints[12:18, 0] + res.transl[12:18]
                                - gt["joints"][12:18, 0] - gt["transl"][12:18], axis=-1)
    assert pelvis_err.max() < 0.1


def test_skeleton_from_body_uses_shape() -> None:
    body = synthetic_body()
    body["shapedirs"][:, 1, 0] = REST_JOINTS[:, 1]  # beta0 scales heights
    sk0 = fit.Skeleton.from_body(body)
    sk1 = fit.Skeleton.from_body(body, betas=np.array([0.1] + [0.0] * 9))
    np.testing.assert_allclose(sk1.rest_joints[:, 1], 1.1 * sk0.rest_joints[:, 1], rtol=1e-5)
    with pytest.raises(ValueError, match="kinematic tree"):
        fit.Skeleton(REST_JOINTS, parents=np.arange(-1, 23))


def test_back_to_front_readings_are_mirrored_back() -> None:
    gt, obs = make_sequence(seed=4, keys=4, step=15)
    clean_flips = fit.resolve_flips(obs)[1]
    assert not clean_flips.any()  # turning (random yaw between keyframes) is not a flip
    bad = slice(20, 25)
    w, im, wt = fit.mirror_landmarks(obs.world[bad], obs.image[bad], obs.weight[bad])
    obs.world[bad], obs.image[bad], obs.weight[bad] = w, im, wt
    fixed, flipped = fit.resolve_flips(obs)
    np.testing.assert_array_equal(np.flatnonzero(flipped), np.arange(20, 25))
    clean = make_sequence(seed=4, keys=4, step=15)[1]
    np.testing.assert_allclose(fixed.world, clean.world, atol=1e-6)
    np.testing.assert_allclose(fixed.image, clean.image, atol=1e-4)


def test_long_tracks_are_fitted_in_blended_windows() -> None:
    gt, obs = make_sequence(seed=6, keys=8, step=15)  # 105 frames
    cfg = fit.FitConfig(window=45, overlap=15)  # windows start at 0, 30, 60
    res = fit.fit_track(obs, gt["skeleton"], cfg)
    err = root_relative_errors(res.joints, gt["joints"])[:, MAPPED]
    assert err.mean() < 0.02
    pelvis = res.joints[:, 0] + res.transl
    seams = [30, 44, 60, 74]  # first and last frames of the cross-fades
    acc = np.linalg.norm(pelvis[2:] - 2 * pelvis[1:-1] + pelvis[:-2], axis=-1)
    gt_pelvis = gt["joints"][:, 0] + gt["transl"]
    gt_acc = np.linalg.norm(gt_pelvis[2:] - 2 * gt_pelvis[1:-1] + gt_pelvis[:-2], axis=-1)
    assert np.abs(acc - gt_acc)[[s - 1 for s in seams]].max() < 0.01  # no jump at the seams (m/frame²)
    bone = np.linalg.norm(res.joints[:, 4] - res.joints[:, 1], axis=-1)
    np.testing.assert_allclose(bone, bone[0], atol=1e-5)
