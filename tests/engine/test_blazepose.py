"""vibe_engine.blazepose.landmarks: MediaPipe's ROI/decoding rules, and the real model on the demo clip."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from tests.fixtures import media
from vibe_engine.blazepose import landmarks as L
from vibe_engine.blazepose.topology import LM, MIRROR, NUM_LANDMARKS
from vibe_engine.errors import ModelError

FRAME = 60
#: Hand-drawn boxes (cx, cy, w, h) px around both people in frame 60 of the demo clip (read off the
#: frame): the man doing a jumping jack on the hut roof (facing the camera), the woman walking.
MAN = np.array([620.0, 250.0, 200.0, 420.0])
WOMAN = np.array([1390.0, 745.0, 240.0, 410.0])
LIMBS = [LM[n] for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip",
                         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]


def read_frame(index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(media.DEMO_CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def model() -> L.LandmarkModel:
    return L.LandmarkModel("full")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return read_frame(FRAME)


@pytest.fixture(scope="module")
def people(model, frame) -> dict[str, L.PoseLandmarks]:
    return {name: L.RoiTracker(model).step(frame, box) for name, box in (("man", MAN), ("woman", WOMAN))}


@pytest.mark.parametrize("name,box,visible", [("man", MAN, len(LIMBS)), ("woman", WOMAN, len(LIMBS) - 1)])
def test_landmarks_lie_on_the_person(people, name, box, visible) -> None:
    """Visible limbs: all for the man facing the camera; the woman, seen from her left side while
    walking, hides her right elbow behind her body."""
    lm = people[name]
    assert lm.present and lm.score > 0.9
    cx, cy, w, h = box
    margin = 0.1 * h
    xy = lm.image[:, :2]
    assert (np.abs(xy[:, 0] - cx) <= w / 2 + margin).all() and (np.abs(xy[:, 1] - cy) <= h / 2 + margin).all()
    assert (lm.visibility[LIMBS] > 0.8).sum() >= visible
    y = xy[:, 1]
    assert y[[LM["left_shoulder"], LM["right_shoulder"]]].max() < y[[LM["left_hip"], LM["right_hip"]]].min()
    assert y[[LM["left_hip"], LM["right_hip"]]].max() < y[[LM["left_ankle"], LM["right_ankle"]]].min()
    assert y[LM["nose"]] < y[[LM["left_shoulder"], LM["right_shoulder"]]].min()


def test_world_landmarks_are_hip_centred_metres_y_down(people) -> None:
    for lm in people.values():
        w = lm.world
        np.testing.assert_allclose(0.5 * (w[LM["left_hip"]] + w[LM["right_hip"]]), 0.0, atol=0.02)
        assert w[LM["nose"]][1] < -0.4 and min(w[LM["left_ankle"]][1], w[LM["right_ankle"]][1]) > 0.5
        shoulder_width = np.linalg.norm(w[LM["left_shoulder"]] - w[LM["right_shoulder"]])
        assert 0.2 < shoulder_width < 0.5


def test_left_right_for_a_person_facing_the_camera(people) -> None:
    """The man faces the camera, so his left side is on the image's right; the woman's hidden
    elbow is her right one (she shows her left side)."""
    assert people["woman"].visibility[LM["right_elbow"]] < 0.5 < people["woman"].visibility[LM["left_elbow"]]
    lm = people["man"]
    for part in ("shoulder", "hip", "elbow", "knee", "ankle"):
        assert lm.image[LM[f"left_{part}"], 0] > lm.image[LM[f"right_{part}"], 0]
        assert lm.world[LM[f"left_{part}"], 0] > lm.world[LM[f"right_{part}"], 0]
    assert MIRROR[LM["left_shoulder"]] == LM["right_shoulder"] and MIRROR[LM["nose"]] == LM["nose"]


def test_rotated_roi_on_a_rotated_image_gives_the_same_pose(model, frame, people) -> None:
    """Rotate the frame 90° clockwise and the ROI with it: image landmarks map through the same
    rotation (sub-pixel), world landmarks come out rotated too (they are image-aligned)."""
    roi = people["man"].roi
    h = frame.shape[0]
    rotated = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)  # (x, y) → (h−1−y, x)
    upright = model(frame, roi)
    turned = model(rotated, L.Roi(h - 1 - roi.cy, roi.cx, roi.size, roi.rotation + math.pi / 2))
    expected = np.column_stack([h - 1 - upright.image[:, 1], upright.image[:, 0]])
    assert np.abs(turned.image[:, :2] - expected).max() < 0.5
    np.testing.assert_allclose(turned.image[:, 2], upright.image[:, 2], atol=2.0)
    w = upright.world
    np.testing.assert_allclose(turned.world, np.column_stack([-w[:, 1], w[:, 0], w[:, 2]]), atol=0.003)
    assert L.roi_from_landmarks(turned).rotation == pytest.approx(math.pi / 2, abs=0.15)


def test_detector_keypoints_seed_a_rotated_roi(model, frame, people) -> None:
    """On the frame turned 90° clockwise, an upright box seed cannot find the man lying sideways,
    but his hip centre + body-circle point (the detector's keypoints 0, 1) start a rotated ROI."""
    h = frame.shape[0]

    def turn(p: np.ndarray) -> np.ndarray:
        return np.column_stack([h - 1 - p[:, 1], p[:, 0]])

    rotated = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
    upright = people["man"]
    lm = L.RoiTracker(model).step(rotated, np.array([h - 1 - MAN[1], MAN[0], MAN[3], MAN[2]]),
                                  alignment=turn(upright.aux))
    assert lm.present and lm.roi.rotation == pytest.approx(math.pi / 2, abs=0.2)
    err = np.linalg.norm(lm.image[LIMBS, :2] - turn(upright.image[LIMBS, :2]), axis=1)
    assert err.mean() < 0.03 * MAN[3]


def test_roi_tracking_follows_the_person(model) -> None:
    tracker = L.RoiTracker(model)
    for index in range(FRAME, FRAME + 4):
        lm = tracker.step(read_frame(index), MAN)
        assert lm.present
        hip = 0.5 * (lm.image[LM["left_hip"], :2] + lm.image[LM["right_hip"], :2])
        assert np.linalg.norm(hip - (lm.roi.cx, lm.roi.cy)) < 0.1 * lm.roi.size
    assert tracker.last is not None and abs(tracker.last.roi.rotation) < 0.3


def test_lite_model_agrees_with_full(frame, people) -> None:
    lite = L.LandmarkModel("lite")
    full = people["man"]
    lm = lite(frame, full.roi)
    assert lm.present
    assert np.linalg.norm(lm.image[LIMBS, :2] - full.image[LIMBS, :2], axis=1).mean() < 0.05 * MAN[3]


def test_roi_from_alignment_points_follows_the_pbtxt_rules() -> None:
    """Centre = hip point; side = 2·|scale point − centre|·1.25; rotation = 90° − atan2(−dy, dx)."""
    center = np.array([500.0, 400.0])
    tilt = math.radians(30)  # the body leans 30° to the image's right
    scale_point = center + 100.0 * np.array([math.sin(tilt), -math.cos(tilt)])
    roi = L.roi_from_alignment(center, scale_point)
    assert (roi.cx, roi.cy) == pytest.approx((500.0, 400.0))
    assert roi.size == pytest.approx(250.0)
    assert roi.rotation == pytest.approx(tilt)
    aff = roi.tensor_to_image()
    top_mid = aff @ np.array([L.INPUT_SIZE / 2, 0.0, 1.0])  # the crop's top edge lies along the body
    np.testing.assert_allclose(top_mid, center + 1.25 * (scale_point - center), atol=1e-9)
    upside_down = L.roi_from_alignment(center, center + (0.0, 100.0))
    assert abs(upside_down.rotation) == pytest.approx(math.pi)
    assert L.normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)


def test_decode_projects_through_a_rotated_roi() -> None:
    """Synthetic model outputs: a landmark at tensor (128, 64) lands a quarter ROI 'above' the
    centre along the rotated ROI axis; z scales with the ROI; world x,y rotate; sigmoids apply."""
    roi = L.Roi(300.0, 200.0, 512.0, math.pi / 2)
    lms = np.zeros((39, 5), np.float32)
    lms[:, :2] = (128.0, 64.0)
    lms[:, 2] = 25.6
    world = np.tile(np.array([0.0, -1.0, 0.5], np.float32), 39)
    heatmap = np.full((64, 64, 39), -20.0, np.float32)  # no confident heatmap: no refinement
    raw = [lms.reshape(-1), np.array([0.97], np.float32), None, heatmap, world]
    out = L.decode(raw, roi)
    np.testing.assert_allclose(out.image[0], (300.0 + 128.0, 200.0, 51.2), atol=1e-3)
    np.testing.assert_allclose(out.world[0], (1.0, 0.0, 0.5), atol=1e-6)
    np.testing.assert_allclose(out.visibility, 0.5)
    assert out.score == pytest.approx(0.97) and out.image.shape == (NUM_LANDMARKS, 3)


def test_heatmap_refinement_moves_to_the_weighted_peak() -> None:
    heat = np.full((64, 64, 2), -20.0, np.float32)
    heat[30, 40, 0] = 20.0  # a confident peak for landmark 0 near (40.2, 30.1)/64
    out = L.refine_from_heatmap(np.array([[41.0 / 64, 31.0 / 64], [0.2, 0.2]]), heat)
    np.testing.assert_allclose(out[0], (40.0 / 64, 30.0 / 64), atol=1e-6)
    np.testing.assert_allclose(out[1], (0.2, 0.2))  # not confident: unchanged


def _refine_loop(xy_norm: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmapCalculator one landmark at a time (the reference)."""
    hm_h, hm_w, _ = heatmap.shape
    out, half = xy_norm.copy(), (L.HEATMAP_KERNEL - 1) // 2
    for k, (x, y) in enumerate(xy_norm):
        col, row = int(x * hm_w), int(y * hm_h)
        if not (0 <= col < hm_w and 0 <= row < hm_h):
            continue
        r0, r1, c0, c1 = max(0, row - half), min(hm_h, row + half + 1), max(0, col - half), min(hm_w, col + half + 1)
        conf = L.sigmoid(heatmap[r0:r1, c0:c1, k])
        total = float(conf.sum())
        if conf.max() >= L.HEATMAP_MIN_CONFIDENCE and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[k] = ((cols * conf).sum() / hm_w / total, (rows * conf).sum() / hm_h / total)
    return out


def test_batched_heatmap_refinement_is_bit_identical_to_the_per_landmark_loop() -> None:
    # bit-identical, not just close: the ROI of the next frame follows these landmarks, so a
    # one-ulp change grows over a clip
    rng = np.random.default_rng(5)
    for _ in range(20):
        heat = rng.normal(0.0, 3.0, (64, 64, 39)).astype(np.float32)
        xy = rng.uniform(-0.1, 1.1, (39, 2)).astype(np.float32)  # inside, at the border, outside
        xy[:4] = [[0.0, 0.0], [0.999, 0.999], [-0.01, 0.5], [0.05, 0.5]]
        heat[:, :, 5] = -20.0  # never confident
        got = L.refine_from_heatmap(xy, heat)
        np.testing.assert_array_equal(got, _refine_loop(xy, heat))
        assert got.dtype == np.float32 and not np.array_equal(got, xy)


def test_missing_model_names_the_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(L, "ASSET_MODELS_DIR", tmp_path)
    monkeypatch.delenv(L.MODELS_DIR_ENV, raising=False)
    with pytest.raises(ModelError, match="pose_landmark_heavy.tflite not found.*npm package"):
        L.resolve_model_path("heavy")
    with pytest.raises(ModelError, match="choose one of lite, full, heavy"):
        L.resolve_model_path("medium")
    bogus = tmp_path / "x.tflite"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        L.LandmarkModel(str(bogus))
