"""VIBE's SMPL regressor: iterative error feedback (3 steps) from the mean parameters, then SMPL.

Keys: ``fc1``, ``fc2``, ``decpose``, ``decshape``, ``deccam`` (weight/bias) and the buffers
``init_pose`` (1,144), ``init_shape`` (1,10), ``init_cam`` (1,3) (SPIN's smpl_mean_params).
"""
from __future__ import annotations

import torch
from torch import nn

from vibe_engine.models.body import NUM_BETAS, NUM_JOINTS, BodyArrays, SMPLJoints
from vibe_engine.models.geometry import rot6d_to_rotmat, rotmat_to_axis_angle

FEATURE_DIM = 2048
HIDDEN_DIM = 1024
POSE_6D_DIM = NUM_JOINTS * 6  # 144
CAM_DIM = 3
NUM_ITERATIONS = 3
#: Focal length (px) of the virtual camera for a CROP_SIZE crop, as in VIBE/SPIN.
FOCAL_LENGTH = 5000.0
CROP_SIZE = 224.0
DEPTH_EPS = 1e-9


def project_keypoints(joints: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """VIBE's crop projection: joints (B,J,3) metres, cam (B,3) = (s, tx, ty) → (B,J,2).

    Perspective camera with focal FOCAL_LENGTH px at the crop centre, translation
    t = (tx, ty, 2·f / (CROP_SIZE·s + 1e-9)); the pixel result is divided by CROP_SIZE/2, giving
    normalised crop coordinates in [-1, 1] (x right, y down).
    """
    tz = 2.0 * FOCAL_LENGTH / (CROP_SIZE * cam[:, 0] + DEPTH_EPS)
    t = torch.stack([cam[:, 1], cam[:, 2], tz], dim=-1)
    p = joints + t[:, None, :]
    xy = FOCAL_LENGTH * p[..., :2] / p[..., 2:3]
    return xy / (CROP_SIZE / 2.0)


class Regressor(nn.Module):
    """Per-frame features (B, 2048) → SMPL parameters, vertices and joints."""

    def __init__(self, body: BodyArrays) -> None:
        super().__init__()
        in_dim = FEATURE_DIM + POSE_6D_DIM + NUM_BETAS + CAM_DIM
        self.fc1 = nn.Linear(in_dim, HIDDEN_DIM)
        self.fc2 = nn.Linear(HIDDEN_DIM, HIDDEN_DIM)
        self.drop1 = nn.Dropout(0.5)
        self.drop2 = nn.Dropout(0.5)
        self.decpose = nn.Linear(HIDDEN_DIM, POSE_6D_DIM)
        self.decshape = nn.Linear(HIDDEN_DIM, NUM_BETAS)
        self.deccam = nn.Linear(HIDDEN_DIM, CAM_DIM)
        self.register_buffer("init_pose", torch.zeros(1, POSE_6D_DIM))
        self.register_buffer("init_shape", torch.zeros(1, NUM_BETAS))
        self.register_buffer("init_cam", torch.zeros(1, CAM_DIM))
        self.smpl = SMPLJoints(body)

    def iterate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Error feedback: x (B,2048) → pose6d (B,144), shape (B,10), cam (B,3) after 3 steps."""
        n = x.shape[0]
        pose = self.init_pose.expand(n, -1)
        shape = self.init_shape.expand(n, -1)
        cam = self.init_cam.expand(n, -1)
        for _ in range(NUM_ITERATIONS):
            h = self.drop2(self.fc2(self.drop1(self.fc1(torch.cat([x, pose, shape, cam], dim=1)))))
            pose = pose + self.decpose(h)
            shape = shape + self.decshape(h)
            cam = cam + self.deccam(h)
        return pose, shape, cam

    def forward(self, x: torch.Tensor, with_verts: bool = True) -> dict[str, torch.Tensor]:
        """x (B,2048) → dict of theta (B,85), rotmat (B,24,3,3), kp_3d (B,49,3), kp_2d (B,49,2)
        and, if ``with_verts``, verts (B,6890,3). float32 (float64 for a ``.double()`` regressor);
        metres; crop-normalised 2D."""
        x = x.to(self.fc1.weight.dtype)
        pose6d, shape, cam = self.iterate(x)
        rotmat = rot6d_to_rotmat(pose6d.reshape(-1, NUM_JOINTS, 6))
        verts, kp_3d = self.smpl(rotmat, shape)
        aa = rotmat_to_axis_angle(rotmat).reshape(-1, NUM_JOINTS * 3)
        out = {
            "theta": torch.cat([cam, aa, shape], dim=1),
            "rotmat": rotmat,
            "kp_3d": kp_3d,
            "kp_2d": project_keypoints(kp_3d, cam),
        }
        if with_verts:
            out["verts"] = verts
        return out
