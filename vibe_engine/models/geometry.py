"""Rotation maths used by the VIBE regressor (torch, batched, differentiable where it matters).

Conventions: rotation matrices act on column vectors (``x' = R @ x``); axis-angle vectors are
``angle * unit_axis`` with the angle in radians in [0, π]; quaternions are (w, x, y, z).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: eps of the two normalisations in the official 6D → rotation-matrix conversion.
ROT6D_EPS = 1e-6
#: Below this rotation angle (radians) the axis-angle map uses its first-order series.
SMALL_ANGLE = 1e-6


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """Convert VIBE's 6D rotation representation to rotation matrices.

    Args:
        x: (..., 6) float. Each 6-vector is a 3×2 matrix in row-major order
           [r00, r01, r10, r11, r20, r21]; its two columns are Gram-Schmidt orthonormalised.
    Returns:
        (..., 3, 3) rotation matrices with columns [b1, b2, b1 × b2].
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1, eps=ROT6D_EPS)
    dot = (b1 * a2).sum(dim=-1, keepdim=True)
    b2 = F.normalize(a2 - dot * b1, dim=-1, eps=ROT6D_EPS)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_quaternion(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) → unit quaternions (..., 4) as (w, x, y, z), w ≥ 0.

    Shepperd's method: of the four candidate formulas the one with the largest pivot
    (trace or a diagonal element) is used, so the result is well conditioned everywhere,
    including rotations by angles near π.
    """
    r00, r11, r22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    pivots = torch.stack([r00 + r11 + r22, r00 - r11 - r22, r11 - r00 - r22, r22 - r00 - r11], -1)
    s = torch.sqrt(torch.clamp(1.0 + pivots, min=0.0)) * 2.0  # 4·|component| per candidate
    s = torch.clamp(s, min=1e-12)
    d_zy, d_xz, d_yx = r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]
    s_xy, s_xz, s_yz = r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1]
    cands = torch.stack([
        torch.stack([s[..., 0] / 4, d_zy / s[..., 0], d_xz / s[..., 0], d_yx / s[..., 0]], -1),
        torch.stack([d_zy / s[..., 1], s[..., 1] / 4, s_xy / s[..., 1], s_xz / s[..., 1]], -1),
        torch.stack([d_xz / s[..., 2], s_xy / s[..., 2], s[..., 2] / 4, s_yz / s[..., 2]], -1),
        torch.stack([d_yx / s[..., 3], s_xz / s[..., 3], s_yz / s[..., 3], s[..., 3] / 4], -1),
    ], dim=-2)
    best = pivots.argmax(dim=-1)
    q = torch.take_along_dim(cands, best[..., None, None].expand(*best.shape, 1, 4), dim=-2)[..., 0, :]
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) as (w, x, y, z) → axis-angle (..., 3), angle in [0, π].

    Uses ``angle = 2·atan2(|v|, |w|)`` (no arccos, no division by a vanishing sine) and the
    series ``2·v/w`` for tiny angles, so it never produces NaN.
    """
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    sin_half = torch.linalg.vector_norm(v, dim=-1)
    angle = 2.0 * torch.atan2(sin_half, w)
    small = sin_half < SMALL_ANGLE
    scale = torch.where(small, 2.0 / torch.clamp(w, min=1e-12), angle / torch.clamp(sin_half, min=1e-30))
    return v * scale[..., None]


def rotmat_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) → axis-angle (..., 3), angle in [0, π], via quaternions.

    Matches VIBE's ``rotation_matrix_to_angle_axis`` (also a quaternion route) on valid
    rotations; computed in float32 or wider, never NaN.
    """
    work = r if r.dtype in (torch.float32, torch.float64) else r.float()
    return quaternion_to_axis_angle(rotmat_to_quaternion(work))


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle (..., 3) in radians → rotation matrices (..., 3, 3)."""
    angle = torch.linalg.vector_norm(aa, dim=-1, keepdim=True)
    axis = aa / torch.clamp(angle, min=1e-30)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + s * k + (1.0 - c) * (k @ k)
