"""Frame helpers of the add-on's core with known answers."""
import numpy as np
from scipy.spatial.transform import Rotation

from vibe_blender.core.frames import into_cameras


def test_into_cameras_undoes_each_frames_camera_to_reference_transform():
    rng = np.random.default_rng(3)
    ref = np.tile(np.eye(4), (5, 1, 1))
    ref[:, :3, :3] = Rotation.random(5, random_state=4).as_matrix()
    ref[:, :3, 3] = rng.normal(0, 2, (5, 3))
    in_camera = rng.normal(0, 1, (5, 7, 3)) + [0, 0, 5]
    in_ref = np.einsum("tij,tnj->tni", ref[:, :3, :3], in_camera) + ref[:, None, :3, 3]
    np.testing.assert_allclose(into_cameras(in_ref, ref), in_camera, atol=1e-12)
