"""vibe_engine.blazepose.backend on the real demo clip: per-track streaming API → motion-file arrays."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.engine.test_blazepose import MAN, read_frame
from tests.engine.test_fit import synthetic_body
from vibe_blender.core import motion_file as mf
from vibe_engine.world import camera
from vibe_engine.blazepose import backend as B
from vibe_engine.blazepose.topology import LM, MIRROR
from vibe_engine.errors import BadInputError, ModelError

#: Frames 60-71: a jumping jack facing the camera; BlazePose reads frames 68-72 back to front
#: (confident, swapped left/right, nose behind the hips), which the backend relabels.
FIRST, COUNT = 60, 12
WIDTH, HEIGHT = 1768, 994


@pytest.fixture(scope="module")
def result() -> dict:
    be = B.BlazePoseBackend(model="full", body=synthetic_body(), image_size=(WIDTH, HEIGHT))
    be.start_track(1, MAN)
    for index in range(FIRST, FIRST + COUNT):
        lm = be.add_frame(1, index, read_frame(index), MAN)
        assert lm.present
    out = be.finish_track(1)
    out["focal"] = be.focal
    return out


def test_arrays_fit_the_motion_file(result) -> None:
    body = synthetic_body()
    body["faces"] = np.array([[0, 1, 2]], np.int32)
    arrays = {k: v for k, v in result.items() if k not in ("extra", "focal")}
    track = mf.Track(id=1, times=arrays["frames"] / 30.0, extra=result["extra"], **arrays)
    video = {"fps": 30.0, "frames": int(arrays["frames"][-1]) + 1}
    motion = mf.Motion(meta=mf.new_meta(video=video, joints={"set": "blazepose33"}), body=mf.BodyModel(**{
        k: body[k] for k in ("v_template", "shapedirs", "J_regressor", "weights", "parents", "faces")}),
        tracks=[track])
    mf.validate(motion)
    assert result["pose"].shape == (COUNT, 24, 3) and result["joints3d"].shape == (COUNT, 33, 3)
    np.testing.assert_array_equal(result["frames"], np.arange(FIRST, FIRST + COUNT))
    assert result["detected"].all() and (result["confidence"] > 0.9).all()


def test_back_to_front_frames_are_relabelled(result) -> None:
    np.testing.assert_array_equal(np.flatnonzero(result["extra"]["mirrored"]) + FIRST, [68, 69, 70, 71])


def test_fitted_body_reprojects_onto_the_landmarks(result) -> None:
    limbs = [LM[n] for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                             "right_wrist", "left_knee", "right_knee", "left_ankle", "right_ankle")]
    seen = result["extra"]["landmarks_image"][..., :2].copy()
    mirrored = result["extra"]["mirrored"]
    seen[mirrored] = seen[mirrored][:, list(MIRROR)]  # compare with the relabelled reading
    err = np.linalg.norm(result["joints2d"][:, limbs] - seen[:, limbs], axis=-1)
    assert err.mean() < 0.04 * MAN[3], f"mean reprojection error {err.mean():.1f} px"


def test_depth_and_facing_are_plausible(result) -> None:
    """The man (≈ 1.75 m, ≈ 400 px tall with a 2028 px focal) stands ≈ 8-9 m away, facing us."""
    assert (result["transl"][:, 2] > 6.0).all() and (result["transl"][:, 2] < 12.0).all()
    forward = Rotation.from_rotvec(result["pose"][:, 0]).apply([0.0, 0.0, 1.0])
    assert (forward[:, 2] < -0.7).all()  # the body's front points back at the camera
    up = Rotation.from_rotvec(result["pose"][:, 0]).apply([0.0, 1.0, 0.0])
    assert (up[:, 1] < -0.8).all()  # SMPL's up is the image's up (camera −y)


def test_crop_camera_inverts_root_translation(result) -> None:
    box = B._square(result["bbox"])
    back = camera.root_translation(result["cam_crop"], box, result["focal"], WIDTH / 2.0, HEIGHT / 2.0)
    np.testing.assert_allclose(back, result["transl"], rtol=1e-4, atol=1e-4)


def test_backend_needs_a_body_and_a_started_track() -> None:
    with pytest.raises(BadInputError, match="needs a body model"):
        B.BlazePoseBackend(body=None)
    bad = synthetic_body()
    bad["parents"] = np.arange(-1, 23, dtype=np.int32)
    with pytest.raises(ModelError, match="SMPL kinematic tree"):
        B.BlazePoseBackend(body=bad)
    be = B.BlazePoseBackend(model="lite", body=synthetic_body(), image_size=(WIDTH, HEIGHT))
    with pytest.raises(KeyError, match="not started"):
        be.add_frame(7, 0, np.zeros((HEIGHT, WIDTH, 3), np.uint8), MAN)
