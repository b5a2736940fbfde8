"""SMPL body model as VIBE uses it: smplx SMPL (rotation-matrix input) + 9 extra regressed joints.

Joint sets (all in metres, SMPL/camera frame: x right, y down, z away from the camera):
  * 24 SMPL joints + 21 smplx vertex-picked joints (nose, eyes, ears, feet, fingertips) = 45;
  * + 9 joints regressed from the posed vertices with ``J_regressor_extra`` = 54;
  * the 49-joint "SPIN" set is ``joints54[:, SPIN_JOINT_MAP]`` (OpenPose BODY_25 + 24 extra).
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vibe_blender.core.smpl import NUM_JOINTS, NUM_POSE_BASIS  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

NUM_VERTS = 6890
NUM_BETAS = 10
NUM_FACES = 13776
NUM_EXTRA_REGRESSED = 9
#: smplx's SMPL-H vertex ids appended after the 24 joints, in smplx's append order.
SMPLX_EXTRA_VERTEX_IDS = (332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
                          2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133)
#: Indices into the 54 joints that give VIBE's 49 output joints (kp_3d / kp_2d order).
SPIN_JOINT_MAP = (24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32,
                  33, 34, 8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24,
                  26, 25, 28, 27)
NUM_OUTPUT_JOINTS = len(SPIN_JOINT_MAP)


@dataclass(frozen=True)
class BodyArrays:
    """Everything the SMPL layer needs, as plain numpy arrays (the motion-file body layout).

    v_template (V,3) f32 metres; shapedirs (V,3,10) f32; posedirs (207, 3V) f32 in smplx layout
    (rows: 23 joints × 9 entries of R−I row-major; columns vertex-major x,y,z); J_regressor
    (24,V) f32 dense; weights (V,24) f32; parents (24,) int32 with −1 at the root; faces (F,3)
    int32; J_regressor_extra (9,V) f32; extra_vertex_ids (21,) int32.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    J_regressor_extra: np.ndarray
    extra_vertex_ids: np.ndarray = field(
        default_factory=lambda: np.asarray(SMPLX_EXTRA_VERTEX_IDS, dtype=np.int32))


class _Struct:
    """The attribute bag smplx.SMPL reads its arrays from (``data_struct``)."""

    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def _smplx_struct(body: BodyArrays) -> _Struct:
    num_verts = body.v_template.shape[0]
    kintree = np.zeros((2, NUM_JOINTS), dtype=np.int64)
    kintree[0] = body.parents
    kintree[1] = np.arange(NUM_JOINTS)
    return _Struct(
        v_template=body.v_template, shapedirs=body.shapedirs, J_regressor=body.J_regressor,
        posedirs=body.posedirs.T.reshape(num_verts, 3, NUM_POSE_BASIS), weights=body.weights,
        kintree_table=kintree, f=body.faces.astype(np.int64))


class SMPLJoints(nn.Module):
    """SMPL forward with rotation matrices in, VIBE's vertices and 49 joints out."""

    def __init__(self, body: BodyArrays) -> None:
        super().__init__()
        import smplx  # heavy; imported only when a model is built

        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):  # smplx prints warnings on stdout (our protocol)
            self.smpl = smplx.SMPL(
                model_path=None, data_struct=_smplx_struct(body), num_betas=NUM_BETAS,
                create_betas=False, create_global_orient=False, create_body_pose=False,
                create_transl=False)
        if captured.getvalue().strip():
            log.debug("smplx: %s", captured.getvalue().strip())
        ids = torch.as_tensor(np.asarray(body.extra_vertex_ids, dtype=np.int64))
        self.smpl.vertex_joint_selector.extra_joints_idxs = ids
        self.register_buffer("J_regressor_extra", torch.as_tensor(body.J_regressor_extra, dtype=torch.float32))
        self.register_buffer("joint_map", torch.as_tensor(SPIN_JOINT_MAP, dtype=torch.long))

    def forward(self, rotmat: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rotmat (B,24,3,3), betas (B,10) float32 → vertices (B,V,3), joints (B,49,3), metres."""
        out = self.smpl(betas=betas, body_pose=rotmat[:, 1:], global_orient=rotmat[:, :1],
                        pose2rot=False)
        extra = torch.einsum("jv,bvc->bjc", self.J_regressor_extra, out.vertices)
        joints54 = torch.cat([out.joints, extra], dim=1)
        return out.vertices, joints54[:, self.joint_map]
