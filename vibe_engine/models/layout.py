"""Expected key names and shapes of VIBE's ``gen_state_dict`` (35 tensors, see vibe-facts §2.1)."""
from __future__ import annotations

from vibe_engine.models.body import (NUM_BETAS, NUM_EXTRA_REGRESSED, NUM_FACES, NUM_JOINTS,
                                     NUM_POSE_BASIS, NUM_VERTS, SMPLX_EXTRA_VERTEX_IDS)
from vibe_engine.models.regressor import CAM_DIM, FEATURE_DIM, HIDDEN_DIM, POSE_6D_DIM
from vibe_engine.models.temporal import HIDDEN_DIM as GRU_HIDDEN

_GATES = 3 * GRU_HIDDEN
#: Batch size of the unused betas/global_orient/body_pose parameters of VIBE's SMPL layer.
SMPL_PARAM_BATCH = 64
_REG_IN = FEATURE_DIM + POSE_6D_DIM + NUM_BETAS + CAM_DIM

VIBE_CORE_SHAPES: dict[str, tuple[int, ...]] = {
    "encoder.gru.weight_ih_l0": (_GATES, FEATURE_DIM),
    "encoder.gru.weight_hh_l0": (_GATES, GRU_HIDDEN),
    "encoder.gru.bias_ih_l0": (_GATES,),
    "encoder.gru.bias_hh_l0": (_GATES,),
    "encoder.gru.weight_ih_l1": (_GATES, GRU_HIDDEN),
    "encoder.gru.weight_hh_l1": (_GATES, GRU_HIDDEN),
    "encoder.gru.bias_ih_l1": (_GATES,),
    "encoder.gru.bias_hh_l1": (_GATES,),
    "encoder.linear.weight": (FEATURE_DIM, GRU_HIDDEN),
    "encoder.linear.bias": (FEATURE_DIM,),
    "regressor.init_pose": (1, POSE_6D_DIM),
    "regressor.init_shape": (1, NUM_BETAS),
    "regressor.init_cam": (1, CAM_DIM),
    "regressor.fc1.weight": (HIDDEN_DIM, _REG_IN),
    "regressor.fc1.bias": (HIDDEN_DIM,),
    "regressor.fc2.weight": (HIDDEN_DIM, HIDDEN_DIM),
    "regressor.fc2.bias": (HIDDEN_DIM,),
    "regressor.decpose.weight": (POSE_6D_DIM, HIDDEN_DIM),
    "regressor.decpose.bias": (POSE_6D_DIM,),
    "regressor.decshape.weight": (NUM_BETAS, HIDDEN_DIM),
    "regressor.decshape.bias": (NUM_BETAS,),
    "regressor.deccam.weight": (CAM_DIM, HIDDEN_DIM),
    "regressor.deccam.bias": (CAM_DIM,),
}

#: The SMPL layer VIBE embeds under ``regressor.smpl.`` (all present or all absent).
SMPL_SHAPES: dict[str, tuple[int, ...]] = {
    f"regressor.smpl.{k}": v for k, v in {
        "betas": (SMPL_PARAM_BATCH, NUM_BETAS),
        "global_orient": (SMPL_PARAM_BATCH, 3),
        "body_pose": (SMPL_PARAM_BATCH, 3 * (NUM_JOINTS - 1)),
        "shapedirs": (NUM_VERTS, 3, NUM_BETAS),
        "faces_tensor": (NUM_FACES, 3),
        "v_template": (NUM_VERTS, 3),
        "J_regressor": (NUM_JOINTS, NUM_VERTS),
        "posedirs": (NUM_POSE_BASIS, 3 * NUM_VERTS),
        "parents": (NUM_JOINTS,),
        "lbs_weights": (NUM_VERTS, NUM_JOINTS),
        "J_regressor_extra": (NUM_EXTRA_REGRESSED, NUM_VERTS),
        "vertex_joint_selector.extra_joints_idxs": (len(SMPLX_EXTRA_VERTEX_IDS),),
    }.items()
}
