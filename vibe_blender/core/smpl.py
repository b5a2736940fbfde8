"""The SMPL skeleton tables, defined once for the add-on, the engine and the tools (pure data).

Joint order is SMPL's (smplx ``JOINT_NAMES[:24]``); ``SMPL_PARENTS[j]`` is the parent of joint
``j`` (−1 for the root, the pelvis); every parent comes before its children.
"""
from __future__ import annotations

NUM_JOINTS = 24
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
#: Pose-corrective blend-shape features: (R_j − I) of joints 1..23, row-major (207).
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)
