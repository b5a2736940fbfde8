"""Camera match maths (pure numpy): Blender view-plane model vs the OpenCV pinhole."""
import numpy as np
import pytest

from vibe_blender.core import camera_match as cm
from vibe_blender.core.errors import MotionFileError


def default_world_from_camera() -> np.ndarray:
    """Default world of the motion-file doc: camera at the origin, Blender (x, y, z) = (x_cv, z_cv, −y_cv)."""
    m = np.eye(4)
    m[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    return m


def _blender_view_plane_pixels(s: cm.BlenderCameraSettings, pts_blcam: np.ndarray) -> np.ndarray:
    """Blender's view-plane projection written from its documented definition (camera looks −Z).

    At unit depth the frame spans ``sensor / lens`` along the fitted side, centred on the shift
    (in units of the fitted side); the other side scales by the image aspect.
    """
    w, h = s.resolution_x, s.resolution_y
    side = w if s.sensor_fit == "HORIZONTAL" else h
    extent = s.sensor_size / s.lens  # frame size of the fitted side at unit depth
    half_x, half_y = 0.5 * extent * w / side, 0.5 * extent * h / side
    x = pts_blcam[:, 0] / -pts_blcam[:, 2] - s.shift_x * extent
    y = pts_blcam[:, 1] / -pts_blcam[:, 2] - s.shift_y * extent
    nx, ny = (x + half_x) / (2 * half_x), (y + half_y) / (2 * half_y)
    return cm.normalized_to_pixels(np.stack([nx, ny], 1), w, h)


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (640, 640)])
def test_settings_reproduce_pinhole(size):
    w, h = size
    cam = cm.PinholeCamera(focal_px=950.0, cx=0.43 * w, cy=0.58 * h, width=w, height=h)
    s = cm.blender_camera_settings(cam)
    rng = np.random.default_rng(1)
    pts_cv = np.column_stack([rng.uniform(-1, 1, (50, 2)), rng.uniform(2, 8, 50)])
    pts_bl = pts_cv * np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(_blender_view_plane_pixels(s, pts_bl), cam.project(pts_cv), atol=1e-9)


def test_known_numbers_landscape_and_portrait():
    s = cm.blender_camera_settings(cm.PinholeCamera(1000.0, 640.0, 360.0, 1280, 720))
    assert (s.sensor_fit, s.resolution_x, s.resolution_y) == ("HORIZONTAL", 1280, 720)
    assert s.lens == pytest.approx(1000 * 36 / 1280) and s.shift_x == 0 and s.shift_y == 0
    s = cm.blender_camera_settings(cm.PinholeCamera(1000.0, 300.0, 700.0, 720, 1280))
    assert s.sensor_fit == "VERTICAL" and s.lens == pytest.approx(1000 * 36 / 1280)
    assert s.shift_x == pytest.approx(60 / 1280) and s.shift_y == pytest.approx(60 / 1280)


def test_camera_matrix_default_world_looks_along_plus_y():
    m = cm.camera_object_matrix(default_world_from_camera())
    np.testing.assert_allclose(m[:3, :3] @ [0, 0, -1], [0, 1, 0])  # Blender camera forward
    np.testing.assert_allclose(m[:3, :3] @ [0, 1, 0], [0, 0, 1])   # Blender camera up
    np.testing.assert_allclose(np.linalg.det(m[:3, :3]), 1.0)


def test_camera_matrix_follows_world_from_camera():
    wfc = default_world_from_camera()
    wfc[:3, 3] = [0.5, -2.0, 1.6]
    m = cm.camera_object_matrix(wfc)
    np.testing.assert_allclose(m[:3, 3], [0.5, -2.0, 1.6])
    # A point on the optical axis 3 m ahead lies 3 m along the Blender camera's −Z.
    ahead_world = wfc[:3, :3] @ [0, 0, 3.0] + wfc[:3, 3]
    np.testing.assert_allclose(m[:3, :3].T @ (ahead_world - m[:3, 3]), [0, 0, -3.0], atol=1e-12)


@pytest.mark.parametrize("camera", [None, {"focal_px": 1000, "cx": 1, "cy": 1, "width": 10},
                                    {"focal_px": -1, "cx": 1, "cy": 1, "width": 10, "height": 10},
                                    {"focal_px": "x", "cx": 1, "cy": 1, "width": 10, "height": 10}])
def test_from_meta_rejects_bad_camera(camera):
    with pytest.raises(MotionFileError, match="meta.camera"):
        cm.PinholeCamera.from_meta({"camera": camera})


def test_from_meta_reads_motion_file_camera():
    cam = cm.PinholeCamera.from_meta({"camera": {"model": "pinhole", "focal_px": 1000.0, "cx": 640.0,
                                                 "cy": 360.0, "width": 1280, "height": 720}})
    assert cam == cm.PinholeCamera(1000.0, 640.0, 360.0, 1280, 720)
    np.testing.assert_allclose(cam.project(np.array([0.1, -0.2, 2.0])), [690.0, 260.0])
