"""Motion-quality metrics against ground truth (numpy). Joints in metres; outputs in the units named.

Conventions: joints are (T,J,3) arrays of the SAME joint set for prediction and ground truth
(SMPL's 24 joints), in one camera frame. World-frame metrics use the ground-truth camera's
world_from_camera (z up, ground at z = 0), so they do not depend on the engine's own ground
estimate. Accelerations are second differences per frame (mm/frame²), as VIBE reports them.
"""
from __future__ import annotations

import numpy as np

PELVIS = 0
FOOT_JOINTS = (7, 10, 8, 11)  # left ankle, left foot, right ankle, right foot
END_EFFECTORS = (7, 8, 20, 21)  # ankles and wrists: their swing shows lost amplitude
MM = 1000.0


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align each frame of ``pred`` (T,J,3) to ``gt`` (T,J,3) (Umeyama); returns (T,J,3)."""
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mu_p, gt - mu_g
    cov = np.einsum("tji,tjk->tik", g, p)  # (T,3,3) = Σ g pᵀ
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones_like(s)
    fix[:, 2] = d
    rot = u @ (fix[:, :, None] * vt)
    scale = (s * fix).sum(1) / np.maximum((p**2).sum((1, 2)), 1e-12)
    return scale[:, None, None] * np.einsum("tik,tjk->tji", rot, p) + mu_g


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-joint position error (mm) of (T,J,3) arrays."""
    return float(np.linalg.norm(pred - gt, axis=-1).mean() * MM)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE (mm) after per-frame similarity Procrustes alignment."""
    return mpjpe(procrustes_align(pred, gt), gt)


def root_aligned(joints: np.ndarray) -> np.ndarray:
    """Joints (T,J,3) relative to the pelvis."""
    return joints - joints[:, PELVIS : PELVIS + 1]


def mpjpe_root_aligned(pred: np.ndarray, gt: np.ndarray, *, bias_corrected: bool = False) -> float:
    """MPJPE (mm) after aligning the pelvis; ``bias_corrected`` also removes each joint's mean offset
    over the clip (joint-definition differences between skeletons, not motion errors)."""
    err = root_aligned(pred) - root_aligned(gt)
    if bias_corrected:
        err = err - err.mean(0, keepdims=True)
    return float(np.linalg.norm(err, axis=-1).mean() * MM)


def accel_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |a_pred − a_gt| (mm/frame²) of root-aligned joints; a = x[t+1] − 2x[t] + x[t−1]."""
    acc = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]
    return float(np.linalg.norm(acc(root_aligned(pred)) - acc(root_aligned(gt)), axis=-1).mean() * MM)


def swing_kept(pred: np.ndarray, gt: np.ndarray, joints=END_EFFECTORS) -> float:
    """Swing amplitude kept (%): range of root-relative end-effector motion, pred over GT, averaged
    over joints and axes whose GT range exceeds 5 cm."""
    p, g = root_aligned(pred)[:, list(joints)], root_aligned(gt)[:, list(joints)]
    rp, rg = np.ptp(p, axis=0), np.ptp(g, axis=0)
    mask = rg > 0.05
    return float(np.mean(rp[mask] / rg[mask]) * 100.0) if mask.any() else 100.0


def to_world(joints_cam: np.ndarray, world_from_camera: np.ndarray) -> np.ndarray:
    """Camera-frame points (...,3) → world (...,3) with a 4×4 transform."""
    m = np.asarray(world_from_camera, np.float64)
    return joints_cam @ m[:3, :3].T + m[:3, 3]


def foot_skate(pred_world: np.ndarray, contacts: np.ndarray) -> float:
    """Mean horizontal foot speed (mm/frame) of FOOT_JOINTS while the GT says they are in contact.

    pred_world: (T,24,3) world joints (z up); contacts: (T,4) GT contact flags for FOOT_JOINTS.
    """
    feet = pred_world[:, list(FOOT_JOINTS), :2]
    step = np.linalg.norm(np.diff(feet, axis=0), axis=-1)  # (T-1,4)
    both = contacts[1:] & contacts[:-1]
    return float(step[both].mean() * MM) if both.any() else 0.0


def ground_penetration(pred_world: np.ndarray, gt_world: np.ndarray) -> float:
    """Mean depth (cm) of the lowest predicted foot joint below that joint's GT ground level
    (its lowest GT height over the clip), per frame, zero when above."""
    level = gt_world[:, list(FOOT_JOINTS), 2].min(0)
    depth = np.maximum(level - pred_world[:, list(FOOT_JOINTS), 2], 0.0).max(1)
    return float(depth.mean() * 100.0)


def root_trajectory_error(pred_world: np.ndarray, gt_world: np.ndarray) -> float:
    """Mean pelvis position error (% of the GT distance travelled) after aligning the first frame only."""
    pr, gr = pred_world[:, PELVIS], gt_world[:, PELVIS]
    pr = pr - pr[0] + gr[0]
    travelled = np.linalg.norm(np.diff(gr[:, :2], axis=0), axis=-1).sum()
    return float(np.linalg.norm(pr - gr, axis=-1).mean() / max(travelled, 1e-6) * 100.0)


def pck_2d(pred_px: np.ndarray, gt_px: np.ndarray, person_height_px: np.ndarray, alpha: float = 0.1) -> float:
    """Share (%) of 2D joints within ``alpha`` × the person's height in pixels (T,) of the GT."""
    err = np.linalg.norm(pred_px - gt_px, axis=-1)
    return float((err <= alpha * person_height_px[:, None]).mean() * 100.0)


def joint_error_2d(pred_px: np.ndarray, gt_px: np.ndarray) -> float:
    """Mean distance (px) between predicted and GT 2D joints (T,J,2): how well the character
    overlays the footage (includes the constant offsets between the two skeletons' joints)."""
    return float(np.linalg.norm(pred_px - gt_px, axis=-1).mean())


def detection_rate(pred_frames: np.ndarray, gt_frames: np.ndarray) -> float:
    """Share (%) of GT frames (where the person is visible) that the predicted track covers."""
    return float(np.isin(gt_frames, pred_frames).mean() * 100.0)
