"""Camera maths against known answers (numpy only)."""
import math

import numpy as np
import pytest

from vibe_engine.world import camera as C

W, H = 1768, 994


def _scene(seed=0, n=4):
    rng = np.random.default_rng(seed)
    cam = np.stack([rng.uniform(0.6, 1.2, n), rng.uniform(-0.2, 0.2, n),
                    rng.uniform(-0.2, 0.2, n)], axis=1)
    side = rng.uniform(150, 500, n)
    bbox = np.stack([rng.uniform(300, 1400, n), rng.uniform(200, 800, n), side, side], axis=1)
    body = rng.uniform(-0.9, 0.9, (n, 49, 3)) * np.array([0.4, 0.9, 0.15])
    return cam, bbox, body


def test_orig_cam_matches_a_hand_computation():
    cam = np.array([[0.9, 0.1, -0.2]])
    bbox = np.array([[1000.0, 400.0, 300.0, 300.0]])
    # sx = 0.9·300/1768, sy = 0.9·300/994; tx' = (1000−884)/884/sx + 0.1; ty' = (400−497)/497/sy − 0.2
    sx, sy = 0.9 * 300 / 1768, 0.9 * 300 / 994
    expected = [sx, sy, (1000 - 884) / 884 / sx + 0.1, (400 - 497) / 497 / sy - 0.2]
    np.testing.assert_allclose(C.orig_cam(cam, bbox, W, H)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [0.152715, 0.271630, 0.959259, -0.918519], atol=1e-6)


def test_official_orig_cam_is_the_unscaled_crop_mapping():
    """orig_cam in NDC equals crop_to_image with scale 1.0 (the slip): both are 1/1.1 too small."""
    cam, bbox, body = _scene(1)
    oc = C.orig_cam(cam, bbox, W, H)
    ndc_x = oc[:, None, 0] * (body[..., 0] + oc[:, None, 2])
    ndc_y = oc[:, None, 1] * (body[..., 1] + oc[:, None, 3])
    px = np.stack([(ndc_x + 1) * W / 2, (ndc_y + 1) * H / 2], axis=-1)
    slip = C.crop_to_image(C.project_weak_crop(body, cam), bbox, scale=1.0)
    np.testing.assert_allclose(px, slip, atol=1e-9)
    correct = C.crop_to_image(C.project_weak_crop(body, cam), bbox)
    centre = bbox[:, None, :2]
    np.testing.assert_allclose(slip - centre, (correct - centre) / 1.1, atol=1e-9)


def test_crop_to_image_inverts_the_official_crop_affine():
    """x_dst = (x − cx)·224/(1.1·h) + 112 (vibe-facts §3 step 5); kp = (x_dst − 112)/112."""
    bbox = np.array([[640.0, 360.0, 200.0, 200.0]])
    pixel = np.array([[[700.0, 300.0]]])
    dst = (pixel - bbox[:, None, :2]) * 224 / (1.1 * 200) + 112
    kp = (dst - 112) / 112
    np.testing.assert_allclose(C.crop_to_image(kp, bbox), pixel, atol=1e-9)


@pytest.mark.parametrize("focal", [None, 800.0, 5000.0])
def test_pinhole_with_root_translation_reproduces_the_crop_projection_for_a_distant_body(focal):
    cam, bbox, body = _scene(2)
    f = C.default_focal(W, H) if focal is None else focal
    cx, cy = W / 2, H / 2
    transl = C.root_translation(cam, bbox, f, cx, cy)
    weak_px = C.crop_to_image(C.project_weak_crop(body, cam), bbox)
    # A body shrunk towards its root (depth extent → 0) must match exactly; the full body nearly.
    flat = body * np.array([1.0, 1.0, 1e-6])
    np.testing.assert_allclose(C.project_pinhole(flat + transl[:, None], f, cx, cy), weak_px, atol=1e-3)
    err = np.abs(C.project_pinhole(body + transl[:, None], f, cx, cy) - weak_px)
    depth_ratio = 0.15 / transl[:, 2].min()
    assert err.max() < 2.5 * depth_ratio * bbox[:, 2].max()


def test_root_translation_depth_matches_box_size_and_focal():
    cam = np.array([[1.0, 0.0, 0.0]])
    bbox = np.array([[884.0, 497.0, 400.0, 400.0]])
    t = C.root_translation(cam, bbox, 1000.0, 884.0, 497.0)
    # A body spanning the crop (2 units = 2 m at s=1) over 440 px at f=1000 is 2·1000/440 m away.
    np.testing.assert_allclose(t[0], [0.0, 0.0, 2000.0 / 440.0], rtol=1e-12)


def test_default_focal_is_a_33mm_equivalent_phone_lens():
    # 35 mm equivalent: f_px = f35 / 43.27 mm (36x24 diagonal) x image diagonal (px)
    assert C.default_focal(1920, 1080) == pytest.approx(33.0 / math.hypot(36, 24) * math.hypot(1920, 1080))
    dfov = 2 * math.degrees(math.atan(math.hypot(1920, 1080) / 2 / C.default_focal(1920, 1080)))
    assert 66.0 < dfov < 66.5  # diagonal field of view of a 33 mm-equivalent lens
    assert C.default_focal(1080, 1920) == C.default_focal(1920, 1080)  # portrait: the same lens
