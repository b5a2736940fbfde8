"""The BlazePose fit's model: joint groups and limits, settings, observations, results and the
rest skeleton with its forward kinematics (numpy). Shared by the fit (:mod:`.fit`) and its
objective (:mod:`.objective`), neither of which the other needs to import for these.

Frames: SMPL canonical rest frame for the skeleton; fitted rotations put joint 0 in the OpenCV
camera frame (x right, y down, z forward, metres).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vibe_blender.core.body import chain_rotations, depth_levels
from vibe_engine.blazepose import topology as topo

DEG = math.pi / 180.0
#: joint → (rotation axis index, min flexion, max flexion, sign): angle = sign · flexion, radians.
HINGES = {topo.SJ["left_knee"]: (0, 0.0, 150 * DEG, 1.0), topo.SJ["right_knee"]: (0, 0.0, 150 * DEG, 1.0),
          topo.SJ["left_elbow"]: (1, 0.0, 150 * DEG, -1.0),
          topo.SJ["right_elbow"]: (1, 0.0, 150 * DEG, 1.0)}
HINGE_JOINTS = tuple(HINGES)
FIXED_JOINTS = (topo.SJ["left_foot"], topo.SJ["right_foot"], topo.SJ["left_hand"], topo.SJ["right_hand"])
FREE_JOINTS = tuple(j for j in range(24) if j not in HINGES and j not in FIXED_JOINTS)
SPINE = (topo.SJ["spine1"], topo.SJ["spine2"], topo.SJ["spine3"])
#: Gentle pull to the rest pose (weight per joint, on ‖R − I‖²).
REST_PRIOR = {topo.SJ["left_collar"]: 1.0, topo.SJ["right_collar"]: 1.0, topo.SJ["neck"]: 0.3,
              topo.SJ["left_wrist"]: 0.05, topo.SJ["right_wrist"]: 0.05,
              topo.SJ["left_ankle"]: 0.05, topo.SJ["right_ankle"]: 0.05,
              SPINE[0]: 0.05, SPINE[1]: 0.05, SPINE[2]: 0.05}
MIN_LEVER_M = 0.05
#: The optimiser works in cm² (float32 L-BFGS is better conditioned there).
LOSS_SCALE = 1e4


@dataclass
class FitConfig:
    """Weights (metres² per marker and frame) and L-BFGS iterations of the optimisation."""

    iterations: int = 100
    window: int = 600
    overlap: int = 30
    w3d: float = 1.0
    #: The image term weighs 3× the world-landmark term: BlazePose's image landmarks are sharper than
    #: its metric 3-D ones. Swept on the synthetic suite (benchmarks/accuracy.py --suite all, 8 static
    #: and 5 moving clips; 1 → 2.5 / 3 / 3.5 / 4): static ground up-axis error 3.09° → 2.53 / 2.41 /
    #: 2.53 / 2.60°, camera height 18.2 → 14.2-15.3 %, PA-MPJPE 54.7 → 54.2-54.4 mm, 2D joint error
    #: 6.2 → 5.6-6.0 px on every value of the plateau; root trajectory 7.9 → 8.0-8.2 % (moving
    #: 8.3 → 8.4-8.6 %). From 5 on a refused ground turns into a confident wrong one (14°).
    w2d: float = 3.0
    w_smooth: float = 3.0
    w_limit: float = 10.0
    w_spine: float = 1.0
    w_prior: float = 0.002


@dataclass
class Observations:
    """One track's landmarks. T frames, 33 landmarks.

    world: (T,33,3) metres, hip-centred, camera-oriented (x right, y down, z forward).
    image: (T,33,2) displayed pixels. weight: (T,33) in [0,1] (visibility·presence; 0 for frames
    without landmarks, whose world/image values are ignored). focal_px, cx, cy: pinhole camera.
    """

    world: np.ndarray
    image: np.ndarray
    weight: np.ndarray
    focal_px: float
    cx: float
    cy: float


@dataclass
class FitResult:
    """pose (T,24,3) axis-angle radians (joint 0 in the camera frame); transl (T,3) metres;
    joints (T,24,3) and markers (T,33,3): posed, camera frame, without transl; world_scale: the
    fitted scale of the world landmarks (body size / BlazePose's size)."""

    pose: np.ndarray
    transl: np.ndarray
    joints: np.ndarray
    markers: np.ndarray
    world_scale: float


class Skeleton:
    """Rest skeleton of a body: rest_joints (24,3) float32 metres (SMPL canonical frame),
    parents (24,) int, marker offsets (33,3) in the parent joint frames."""

    def __init__(self, rest_joints: np.ndarray, parents: np.ndarray | None = None) -> None:
        self.rest_joints = np.asarray(rest_joints, dtype=np.float32)
        self.parents = np.asarray(topo.SMPL_PARENTS if parents is None else parents, dtype=np.int64)
        if tuple(self.parents.tolist()) != topo.SMPL_PARENTS:
            raise ValueError("the body must have the 24-joint SMPL kinematic tree")
        self.offsets = topo.marker_rest_offsets(self.rest_joints)
        #: (24,3) float32: joint offsets from the parent joint (the root's: its rest position).
        self.bones = self.rest_joints.copy()
        self.bones[1:] = self.rest_joints[1:] - self.rest_joints[self.parents[1:]]
        #: Joints grouped by tree depth (root excluded): [(joint indices, their parents)], root first.
        self.levels = depth_levels(self.parents)

    @classmethod
    def from_body(cls, body: Mapping[str, np.ndarray], betas: np.ndarray | None = None) -> "Skeleton":
        """From SMPL-format arrays (v_template (V,3), shapedirs (V,3,B), J_regressor (24,V), parents)."""
        v = np.asarray(body["v_template"], dtype=np.float64)
        if betas is not None and np.any(betas):
            sd = np.asarray(body["shapedirs"], dtype=np.float64)
            b = np.asarray(betas, dtype=np.float64)[: sd.shape[2]]
            v = v + sd[:, :, : b.shape[0]] @ b
        jreg = np.asarray(body["J_regressor"], dtype=np.float64)
        return cls(jreg @ v, body.get("parents"))

    def forward(self, rotmats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posed joints (T,24,3) and markers (T,33,3), float32 metres, without translation, from
        local rotations (T,24,3,3)."""
        _, joints, markers = chain_kinematics(np.asarray(rotmats, dtype=np.float32), self.bones, self.offsets,
                                              self.levels)
        return joints, markers

    def levers(self) -> np.ndarray:
        """(24,) metres: RMS distance from each joint of the markers it moves (rest pose), ≥ 5 cm."""
        _, m = self.forward(np.broadcast_to(np.eye(3), (1, 24, 3, 3)))
        owner = topo.MARKER_PARENT
        out = np.full(24, MIN_LEVER_M, dtype=np.float32)
        for j in range(24):
            moved = [k for k in range(topo.NUM_LANDMARKS) if _is_ancestor(j, int(owner[k]), self.parents)]
            if moved:
                d2 = ((m[0, moved] - self.rest_joints[j]) ** 2).sum(-1)
                out[j] = max(MIN_LEVER_M, float(np.sqrt(d2.mean())))
        return out



def chain_kinematics(rot: np.ndarray, bones: np.ndarray, offsets: np.ndarray, levels: list
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMPL chain, batched by tree depth: local rotations (T,24,3,3), bone offsets (24,3), marker
    offsets (33,3) in their parent joint frames, ``Skeleton.levels`` → global rotations
    (T,24,3,3), joints (T,24,3) and markers (T,33,3), metres, without translation, in rot's dtype."""
    g, t = chain_rotations(rot, bones, levels)
    mp = topo.MARKER_PARENT
    return g, t, t[:, mp] + (g[:, mp] @ offsets[..., None])[..., 0]


def _is_ancestor(a: int, b: int, parents: np.ndarray) -> bool:
    """True if joint a is b or one of b's ancestors."""
    while b >= 0:
        if a == b:
            return True
        b = int(parents[b])
    return False
