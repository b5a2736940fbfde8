"""BlazePose landmark topology and its mapping onto the 24 SMPL joints.

Facts (MediaPipe ``pose_landmark_by_roi_cpu.pbtxt``): the landmark model outputs 39 landmarks;
the first 33 are the pose landmarks named in :data:`LANDMARK_NAMES`, landmarks 33 and 34 are
auxiliary points used only for the next frame's region of interest (33: hip centre, 34: the point
that sets the size and rotation of the full-body circle).

Mapping (the fit's *virtual markers*): every BlazePose landmark k is modelled as a point rigidly
attached to one SMPL joint frame ``MARKER_PARENT[k]`` at a rest-pose offset from that joint::

    marker_k = G_j.t + G_j.R @ (rest_offset_k)        (j = MARKER_PARENT[k])

where ``rest_offset_k`` is built by :func:`marker_rest_offsets` from the body's own rest joints
(SMPL canonical frame: x = the body's left, y up, z = the direction the body faces; metres). This is
the forward direction the fit uses (SMPL pose → predicted landmarks); it is never inverted.

Joint-definition offsets (BlazePose landmarks are not SMPL joints), all documented constants:

* shoulders/elbows/wrists/knees/ankles: at the SMPL joint (offset 0).
* hips (23, 24): attached to the *pelvis* frame at the SMPL hip joint plus ``HIP_LATERAL_M``
  outwards and ``HIP_UP_M`` upwards (BlazePose's hip points sit on the greater trochanter line,
  wider and slightly higher than SMPL's hip joint centres).
* the SMPL pelvis itself is not observed directly; the landmarks' hip midpoint is 1-to-1 with the
  midpoint of the two hip markers, i.e. pelvis + ``HIP_UP_M`` along the pelvis' up axis.
* face (0-10): attached to the SMPL ``head`` joint at offsets in ``FACE_OFFSETS_M`` (for a
  1.70 m body; scaled by the body's height / 1.70).
* heels (29, 30) and foot index (31, 32): attached to the ankle frame; the heel at
  ``HEEL_OFFSET_M``, the foot index at the SMPL ``foot`` joint + ``TOE_EXTRA_M``.
* pinky/index/thumb (17-22): attached to the wrist frame along the rest wrist→hand direction
  (``HAND_OFFSETS``: fraction of the wrist→hand bone along it, plus a palm-normal offset).

SMPL joints not observed by any marker (spine1-3, neck, collars, feet, hands) are driven by the
fit's priors (see :mod:`vibe_engine.blazepose.fit`).
"""
from __future__ import annotations

import numpy as np

from vibe_blender.core.smpl import SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: F401 - re-exported

NUM_LANDMARKS = 33
NUM_MODEL_LANDMARKS = 39
NUM_AUX = 2

LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)
LM = {name: i for i, name in enumerate(LANDMARK_NAMES)}

SJ = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

#: Landmark index → its mirror (left ↔ right), for flips and symmetry checks.
MIRROR = tuple(LM[n.replace("left", "#").replace("right", "left").replace("#", "right")]
               for n in LANDMARK_NAMES)

#: SMPL joint frame each landmark is attached to.
MARKER_PARENT = np.array([
    SJ["head"]] * 11 + [
    SJ["left_shoulder"], SJ["right_shoulder"], SJ["left_elbow"], SJ["right_elbow"],
    SJ["left_wrist"], SJ["right_wrist"],
    SJ["left_wrist"], SJ["right_wrist"], SJ["left_wrist"], SJ["right_wrist"],
    SJ["left_wrist"], SJ["right_wrist"],
    SJ["pelvis"], SJ["pelvis"], SJ["left_knee"], SJ["right_knee"], SJ["left_ankle"], SJ["right_ankle"],
    SJ["left_ankle"], SJ["right_ankle"], SJ["left_ankle"], SJ["right_ankle"]], dtype=np.int64)

#: The SMPL joint whose rest position is the base of each landmark's offset.
MARKER_BASE = MARKER_PARENT.copy()
MARKER_BASE[LM["left_hip"]] = SJ["left_hip"]
MARKER_BASE[LM["right_hip"]] = SJ["right_hip"]
MARKER_BASE[LM["left_foot_index"]] = SJ["left_foot"]
MARKER_BASE[LM["right_foot_index"]] = SJ["right_foot"]

REFERENCE_HEIGHT_M = 1.70
HIP_LATERAL_M = 0.02
HIP_UP_M = 0.02
#: Face landmark offsets from the SMPL head joint (x left, y up, z forward), 1.70 m body, metres.
FACE_OFFSETS_M = {
    "nose": (0.0, 0.02, 0.11),
    "left_eye_inner": (0.015, 0.055, 0.095), "left_eye": (0.032, 0.056, 0.09),
    "left_eye_outer": (0.047, 0.055, 0.08),
    "right_eye_inner": (-0.015, 0.055, 0.095), "right_eye": (-0.032, 0.056, 0.09),
    "right_eye_outer": (-0.047, 0.055, 0.08),
    "left_ear": (0.075, 0.03, 0.0), "right_ear": (-0.075, 0.03, 0.0),
    "mouth_left": (0.024, -0.015, 0.095), "mouth_right": (-0.024, -0.015, 0.095),
}
HEEL_OFFSET_M = (0.0, -0.06, -0.05)
TOE_EXTRA_M = (0.0, -0.02, 0.05)
#: Hand landmarks: (fraction of the rest wrist→hand vector, offset along the palm's forward axis
#: (+z in the T-pose, where the palm faces down and the thumb points forward), metres).
HAND_OFFSETS = {"pinky": (0.9, -0.03), "index": (1.0, 0.025), "thumb": (0.45, 0.045)}

#: Landmarks used by the fit, with weights (face points share one unit of weight).
FIT_WEIGHTS = np.ones(NUM_LANDMARKS, dtype=np.float32)
FIT_WEIGHTS[:11] = 1.0 / 11.0 * 3.0
FIT_WEIGHTS[17:23] = 0.3


def marker_rest_offsets(rest_joints: np.ndarray) -> np.ndarray:
    """Rest-pose offsets of the 33 virtual markers from their parent joints.

    rest_joints: (24,3) float, the body's rest joints (SMPL canonical frame, metres).
    Returns (33,3) float32 offsets in the parent joint's rest frame (= canonical axes, since rest
    rotations are identity): ``marker = G_parent.t + G_parent.R @ offset``.
    """
    j = np.asarray(rest_joints, dtype=np.float64)
    height = float(j[:, 1].max() - j[:, 1].min()) / 0.80  # head joint→ankle ≈ 0.80 of height
    scale = height / REFERENCE_HEIGHT_M
    off = j[MARKER_BASE] - j[MARKER_PARENT]
    for name, xyz in FACE_OFFSETS_M.items():
        off[LM[name]] += scale * np.asarray(xyz)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        off[LM[f"{side}_hip"]] += (sign * HIP_LATERAL_M, HIP_UP_M, 0.0)
        off[LM[f"{side}_heel"]] += scale * np.asarray(HEEL_OFFSET_M)
        off[LM[f"{side}_foot_index"]] += scale * np.asarray(TOE_EXTRA_M)
        hand = j[SJ[f"{side}_hand"]] - j[SJ[f"{side}_wrist"]]
        for part, (frac, fwd) in HAND_OFFSETS.items():
            off[LM[f"{side}_{part}"]] = frac * hand + (0.0, 0.0, fwd * scale)
    return off.astype(np.float32)
