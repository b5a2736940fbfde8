"""The generator's head (regressor → SMPL) as one exportable module, for an AOTInductor artefact.

``VibeGenerator.regress`` runs the regressor and smplx eagerly: a few hundred small ops per call.
:class:`Head` computes the same function from the same weights in a form that ``torch.export`` /
AOTInductor compiles into one artefact (models/compiled.py) for a fixed number of frames (smaller
calls are zero-padded: every frame is independent, so padding is exact). SMPL is written with the
kinematic tree as Python ints (smplx indexes a tensor buffer with itself, which ``torch.export``
cannot trace): v = Σ_k w_k G_k (v_template + S·β + P·(R−I)); joints = the 24 posed joints, the 21
vertex-picked joints, the 9 joints of ``J_regressor_extra`` on the posed vertices, then VIBE's
49-joint map — the formulas smplx's ``lbs`` implements.

The temporal encoder (GRU) is not part of it: compiled, its frame-by-frame matrix–vector products
ran no faster than nn.GRU's (both are bound by reading the 2×3072×1024 recurrent weights every
frame; benchmarks/generator.py, docs/engine-protocol.md "Compiled artefacts").

Equal to ``regress`` up to float rounding (tests/engine/test_head.py compares them in float64).
"""
from __future__ import annotations

import torch
from torch import nn

from vibe_engine.models.body import NUM_JOINTS
from vibe_engine.models.geometry import rot6d_to_rotmat, rotmat_to_axis_angle
from vibe_engine.models.regressor import FEATURE_DIM, Regressor, project_keypoints

#: Output names of :class:`Head`, in its output order.
HEAD_OUTPUTS = ("theta", "rotmat", "kp_3d", "kp_2d", "verts")


class Head(nn.Module):
    """Regressor + SMPL of a VibeGenerator (shared weights).

    ``forward(y (B,2048))`` → (theta (B,85), rotmat (B,24,3,3), kp_3d (B,49,3), kp_2d (B,49,2),
    verts (B,6890,3)) in the regressor's dtype, metres, the layouts of ``VibeGenerator.regress``.
    """

    def __init__(self, regressor: Regressor) -> None:
        super().__init__()
        self.regressor = regressor
        smpl = regressor.smpl.smpl
        self.parents = tuple(int(p) for p in smpl.parents)
        self.extra_ids = tuple(int(i) for i in smpl.vertex_joint_selector.extra_joints_idxs)
        self.joint_map = tuple(int(i) for i in regressor.smpl.joint_map)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        reg = self.regressor
        pose6d, shape, cam = reg.iterate(y.to(reg.fc1.weight.dtype))
        rotmat = rot6d_to_rotmat(pose6d.reshape(-1, NUM_JOINTS, 6))
        verts, kp_3d = self.smpl(rotmat, shape)
        aa = rotmat_to_axis_angle(rotmat).reshape(-1, NUM_JOINTS * 3)
        theta = torch.cat([cam, aa, shape], dim=1)
        return theta, rotmat, kp_3d, project_keypoints(kp_3d, cam), verts

    def smpl(self, rotmat: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rotmat (B,24,3,3), betas (B,10) → vertices (B,V,3), VIBE's 49 joints (B,49,3), metres."""
        s = self.regressor.smpl.smpl
        b = rotmat.shape[0]
        v_shaped = s.v_template + torch.einsum("bl,vcl->bvc", betas, s.shapedirs)
        rest = torch.einsum("jv,bvc->bjc", s.J_regressor, v_shaped)
        eye = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
        v_posed = v_shaped + ((rotmat[:, 1:] - eye).reshape(b, -1) @ s.posedirs).reshape(b, -1, 3)
        world = self._chain(rotmat, rest)  # (B,24,3,4): rotation | posed joint
        rot, posed = world[..., :3], world[..., 3]
        offset = posed - torch.einsum("bjcd,bjd->bjc", rot, rest)  # G_k applied to the rest pose
        skin = torch.cat([rot.reshape(b, NUM_JOINTS, 9), offset], dim=-1)  # (B,24,12)
        m = torch.einsum("vj,bjk->bvk", s.lbs_weights, skin)  # (B,V,12)
        verts = torch.einsum("bvcd,bvd->bvc", m[..., :9].reshape(b, -1, 3, 3), v_posed) + m[..., 9:]
        extra = torch.einsum("jv,bvc->bjc", self.regressor.smpl.J_regressor_extra, verts)
        joints = torch.cat([posed, verts[:, list(self.extra_ids)], extra], dim=1)
        return verts, joints[:, list(self.joint_map)]

    def _chain(self, rotmat: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        """World transforms (B,24,3,4) of the kinematic tree: rotation and posed joint position."""
        rots, pos = [rotmat[:, 0]], [rest[:, 0]]
        for i in range(1, NUM_JOINTS):
            p = self.parents[i]
            rots.append(rots[p] @ rotmat[:, i])
            pos.append(pos[p] + (rots[p] @ (rest[:, i] - rest[:, p])[..., None])[..., 0])
        return torch.cat([torch.stack(rots, 1), torch.stack(pos, 1)[..., None]], dim=-1)


def example_input(frames: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The input of a ``frames``-frame Head artefact (zeros)."""
    return torch.zeros(frames, FEATURE_DIM, device=device, dtype=dtype)
