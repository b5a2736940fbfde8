"""Root depth fusion (vibe_engine.postprocess.depth_fusion): known answers of the weighted solve."""
import numpy as np

from tests.fixtures.motion import make_motion
from vibe_blender.core.body import forward_kinematics, shaped_rest
from vibe_blender.core.frames import into_cameras
from vibe_blender.core.rotations import aa_to_matrix
from vibe_engine.postprocess import depth_fusion as fusion

# Camera (OpenCV: x right, y down, z forward) 1.5 m above a z-up world's floor: x → x, z → y, −y → z.
WORLD_FROM_CAMERA = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 1.5], [0, 0, 0, 1]])
TRUE_ROOT = np.array([0.1, 0.3, 5.0])  # m, camera frame: the person stands still here
STANCE_ERROR = np.log(1.06)  # the fit's second stance 6 % too far


def _pan(n: int, degrees: float) -> np.ndarray:
    """ref_from_camera (n,4,4): a camera turning about its own vertical axis from 0 to ``degrees``."""
    ref = np.repeat(np.eye(4)[None], n, 0)
    a = np.radians(np.linspace(0.0, degrees, n))
    ref[:, 0, 0], ref[:, 0, 2], ref[:, 2, 0], ref[:, 2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return ref


def _scene(fps: float, seconds: float = 70 / 30, ref: np.ndarray | None = None):
    """A body standing still at TRUE_ROOT (rest pose, its four contact points planted) except for a
    gap of 1/3 s in the contacts; the fit's root is the truth in the first stance, pushed along its ray
    to 6 % too far over the gap and kept there in the second stance. The BlazePose image landmarks
    (shoulders, hips) are the true body's projections, into each frame's own camera when ``ref``
    (ref_from_camera per frame) moves it. Returns (motion, track, log error of the fit (T,))."""
    n = int(round(seconds * fps))
    motion = make_motion(num_tracks=1, num_frames=n, seed=7)
    track = motion.tracks[0]
    track.times = np.arange(n) / fps
    t = np.asarray(track.times, np.float64)
    track.pose = np.zeros((n, 24, 3), np.float32)
    _, rest = shaped_rest(motion.body, track.betas_track)
    gap = (t >= 1.0) & (t < 4 / 3)
    error = STANCE_ERROR * np.clip((t - 1.0) * 3, 0.0, 1.0)
    track.transl = (TRUE_ROOT[None] * np.exp(error)[:, None] - rest[0]).astype(np.float32)
    joints = forward_kinematics(aa_to_matrix(np.zeros((n, 24, 3))), rest, np.asarray(motion.body.parents))
    joints = joints[:, :, :3, 3] + (TRUE_ROOT - rest[0])[None, None]
    if ref is not None:
        joints = into_cameras(joints, ref)
    cam = motion.meta["camera"]
    landmarks = np.full((n, 33, 2), np.nan)
    for smpl, blaze in ((16, 11), (17, 12), (1, 23), (2, 24)):
        landmarks[:, blaze] = joints[:, smpl, :2] / joints[:, smpl, 2:] * cam["focal_px"] + [cam["cx"], cam["cy"]]
    track.extra["landmarks_image"] = landmarks
    track.extra["contacts"] = np.repeat(~gap[:, None], 4, axis=1)
    return motion, track, error


def _fused_log_error(fps: float, pan_degrees: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = int(round(70 / 30 * fps))
    ref = None if pan_degrees is None else _pan(n, pan_degrees)
    motion, track, error = _scene(fps, ref=ref)
    focal = np.full(track.num_frames, float(motion.meta["camera"]["focal_px"]))
    q = fusion.fuse_depth(motion.body, track, WORLD_FROM_CAMERA, focal, floor_check=False, ground=False, ref=ref)
    return np.asarray(track.times, np.float64), error + np.log(q), error


def test_the_size_cue_sets_a_stance_depth_the_stance_itself_cannot():
    """Within each stance the planted points fix the depth relative to itself only; the body's size
    says the second stance is 6 % farther than the first. The stances' relative depth then follows
    the size cue by its share against the anchor, w = ANCHOR_SD² / (ANCHOR_SD² + SIZE_SD²) (two
    rigid groups of frames; the frames of the gap and the smoothness rows add a little: the error left
    is between (1 − w) and 10 % of the stance error, against all of it before), and each stance moves
    nearly rigidly: its planted points slide by less than one frame's STANCE_STEP_SD in all."""
    t, fused, error = _fused_log_error(30.0)
    first, second = t < 0.8, t > 1.6  # stance interiors, past the size cue's smoothing of the gap
    w = fusion.ANCHOR_SD ** 2 / (fusion.ANCHOR_SD ** 2 + fusion.SIZE_SD ** 2)
    relative = fused[second].mean() - fused[first].mean()
    assert (1 - w) * STANCE_ERROR < relative < 0.1 * STANCE_ERROR
    distance = np.linalg.norm(TRUE_ROOT)
    assert np.ptp(fused[first]) * distance < fusion.STANCE_STEP_SD
    assert np.ptp(fused[second]) * distance < fusion.STANCE_STEP_SD
    assert abs(np.mean(fused - error)) < 0.1 * STANCE_ERROR  # the clip's overall depth: the lock's (anchor)


def test_the_solution_does_not_depend_on_the_frame_rate():
    """The same scene sampled at 30 and at 60 frames/s: rows per second, steps ∝ dt and second
    differences ∝ dt² are scaled, so the fused depth at the shared instants agrees to well within
    the cue's effect (under 1 % of the 5.8 % stance error) inside the stances, 0.1 s from the gap,
    whose edges each rate samples at its own instants."""
    t30, fused30, _ = _fused_log_error(30.0)
    t60, fused60, _ = _fused_log_error(60.0)
    inside = (t30 < 0.9) | (t30 > 4 / 3 + 0.1)
    np.testing.assert_allclose(np.interp(t30, t60, fused60)[inside], fused30[inside], atol=0.01 * STANCE_ERROR)


def test_a_turning_camera_gives_the_static_answer():
    """The same scene filmed by a camera panning 10° (its landmarks in each frame's own camera, the
    track in the frame-0 camera): the size cue is read in each frame's camera, so the fused depth
    agrees with the static camera's to 1 % of the stance error (perspective across the image plane
    changes the pixel lengths a little); read in the frame-0 camera instead it is off by the pan's
    whole shift of the landmarks."""
    _, static, _ = _fused_log_error(30.0)
    _, panned, _ = _fused_log_error(30.0, pan_degrees=10.0)
    np.testing.assert_allclose(panned, static, atol=0.01 * STANCE_ERROR)


def test_no_size_cue_no_fusion():
    """Without image landmarks (a VIBE track) there is nothing to weigh the lock against: None."""
    motion, track, _ = _scene(30.0)
    del track.extra["landmarks_image"]
    focal = np.full(track.num_frames, float(motion.meta["camera"]["focal_px"]))
    assert fusion.fuse_depth(motion.body, track, WORLD_FROM_CAMERA, focal, floor_check=False, ground=False) is None


def test_repeated_timestamps_leave_the_depth_alone():
    """Times that do not increase (a broken container's duplicate stamps) give no frame interval to
    scale the rows with: None, never a division by zero."""
    motion, track, _ = _scene(30.0)
    times = np.asarray(track.times, np.float64)
    times[5] = times[4]
    track.times = times
    focal = np.full(track.num_frames, float(motion.meta["camera"]["focal_px"]))
    assert fusion.fuse_depth(motion.body, track, WORLD_FROM_CAMERA, focal, floor_check=False, ground=False) is None
