"""VIBE's motion discriminator (``disc_motion_state_dict``) used at inference time as a
per-frame motion-realism score.

Layout (official train.py with configs/config.yaml, see vibe-facts §2.1):
``gru`` = GRU(69 → 1024, 2 layers, unidirectional, time-major); ``attention.attention`` =
Linear(1024,1024)·Tanh·Dropout · Linear(1024,1024)·Tanh·Dropout · Linear(1024,1)·Tanh·Dropout
(keys ``attention.attention.{0,3,6}``); ``fc`` = Linear(1024 → 1). Input (B, T, 69) = the 23 body
joints' axis-angle rotations (SMPL order, the global rotation left out) in radians. The softmax of
the attention scores over T pools the GRU outputs; ``fc`` gives one logit per sequence, trained as a
least-squares GAN (real motion → 1, generated → 0), with no sigmoid.

At inference the score of a window of :data:`WINDOW` frames is that logit; a frame's realism is the
mean of the windows that cover it (:func:`frame_realism`).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from vibe_blender.core.motion_file import REALISM_IMPLAUSIBLE_BELOW
from vibe_engine.errors import ModelError
from vibe_engine.models.checkpoints import check_keys

log = logging.getLogger(__name__)

#: Checkpoint section holding the discriminator.
DISC_KEY = "disc_motion_state_dict"
#: 23 body joints × 3 axis-angle values (SMPL pose without the global rotation).
INPUT_DIM = 69
HIDDEN_DIM = 1024
NUM_LAYERS = 2
ATTENTION_LAYERS = 3
#: Sequence length the discriminator was trained on (VIBE's seqlen).
WINDOW = 16
#: Window start spacing in frames for :func:`frame_realism`.
STRIDE = 4

_GATES = 3 * HIDDEN_DIM
_ATT_INDICES = tuple(3 * i for i in range(ATTENTION_LAYERS))  # 0, 3, 6: Linear, Tanh, Dropout per layer

DISC_SHAPES: dict[str, tuple[int, ...]] = {
    **{f"gru.{kind}_l{layer}": shape for layer, in_f in ((0, INPUT_DIM), (1, HIDDEN_DIM))
       for kind, shape in (("weight_ih", (_GATES, in_f)), ("weight_hh", (_GATES, HIDDEN_DIM)),
                           ("bias_ih", (_GATES,)), ("bias_hh", (_GATES,)))},
    **{f"attention.attention.{i}.{p}": ((1 if i == _ATT_INDICES[-1] else HIDDEN_DIM, HIDDEN_DIM)
                                        if p == "weight" else (1 if i == _ATT_INDICES[-1] else HIDDEN_DIM,))
       for i in _ATT_INDICES for p in ("weight", "bias")},
    "fc.weight": (1, HIDDEN_DIM),
    "fc.bias": (1,),
}


class _AttentionPool(nn.Module):
    """Score each time step (tanh MLP → 1), softmax over time, weighted sum of the inputs."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(ATTENTION_LAYERS):
            out_f = 1 if i == ATTENTION_LAYERS - 1 else HIDDEN_DIM
            layers += [nn.Linear(HIDDEN_DIM, out_f), nn.Tanh(), nn.Dropout()]
        self.attention = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, 1024) → pooled (B, 1024)."""
        weights = torch.softmax(self.attention(h)[..., 0], dim=1)
        return (h * weights[..., None]).sum(dim=1)


class MotionDiscriminator(nn.Module):
    """GRU + attention pooling + linear: pose windows (B, T, 69) → realism logits (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(INPUT_DIM, HIDDEN_DIM, num_layers=NUM_LAYERS)
        self.attention = _AttentionPool()
        self.fc = nn.Linear(HIDDEN_DIM, 1)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        """motion (B, T, 69) body axis-angle (radians) → (B,) logits (≈1 real, ≈0 generated)."""
        out, _ = self.gru(motion.transpose(0, 1))
        return self.fc(self.attention(out.transpose(0, 1)))[:, 0]


def build_discriminator(ckpt: Mapping[str, Any], what: str = "VIBE checkpoint") -> MotionDiscriminator | None:
    """The discriminator from a loaded checkpoint dict, strictly; None (with a log note) when the
    checkpoint has no ``disc_motion_state_dict``. ModelError when the section is malformed."""
    state = ckpt.get(DISC_KEY)
    if state is None:
        log.info("%s has no %s: the motion-realism score is off", what, DISC_KEY)
        return None
    if not isinstance(state, Mapping):
        raise ModelError(f"{what}: {DISC_KEY} is a {type(state).__name__}, not a state dict; "
                         "use the official checkpoint")
    check_keys(state, DISC_SHAPES, f"{what} {DISC_KEY}")
    model = MotionDiscriminator()
    model.load_state_dict(dict(state), strict=True)
    return model.eval().requires_grad_(False)


def body_pose(pose: np.ndarray) -> np.ndarray:
    """SMPL pose (T, 24, 3) or (T, 72) axis-angle → the discriminator input (T, 69)."""
    pose = np.asarray(pose)
    return pose.reshape(pose.shape[0], -1)[:, 3:]


def window_starts(num_frames: int, window: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """Start frames of the windows covering 0..num_frames-1; the last one ends on the last frame.
    A sequence shorter than ``window`` is one window of its own length."""
    if num_frames <= window:
        return np.zeros(1, np.int64)
    starts = np.arange(0, num_frames - window + 1, stride)
    return np.unique(np.append(starts, num_frames - window))


def frame_realism(model: MotionDiscriminator, pose: np.ndarray, window: int = WINDOW,
                  stride: int = STRIDE) -> np.ndarray:
    """Per-frame realism (T,) float32 of one track's pose sequence (T, 24, 3) (consecutive frames).

    Every window of ``window`` frames (starts from :func:`window_starts`) gets the discriminator's
    logit; each frame gets the mean logit of the windows that contain it.
    """
    x = body_pose(pose)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.float32)
    starts = window_starts(n, window, stride)
    length = min(window, n)
    param = next(model.parameters())
    seqs = torch.from_numpy(np.stack([x[s:s + length] for s in starts])).to(param.device, param.dtype)
    with torch.inference_mode():
        logits = model(seqs).double().cpu().numpy()
    total, count = np.zeros(n), np.zeros(n)
    for s, value in zip(starts, logits):
        total[s:s + length] += value
        count[s:s + length] += 1
    return (total / count).astype(np.float32)


def add_realism(motion: Any, model: MotionDiscriminator | None, note: str = "") -> None:
    """Store ``realism`` (T,) in every track of ``motion`` (a vibe_blender Motion, after
    post-processing: the final poses) and describe it in ``meta["manifest"]["realism"]``; with no
    model the manifest says the feature is off and why (``note``)."""
    manifest = motion.meta.setdefault("manifest", {})
    if model is None:
        manifest["realism"] = {"enabled": False, "note": note or f"the checkpoint has no {DISC_KEY}"}
        return
    for track in motion.tracks:
        track.extra["realism"] = frame_realism(model, track.pose)
    low = {str(t.id): int((t.extra["realism"] < REALISM_IMPLAUSIBLE_BELOW).sum()) for t in motion.tracks}
    manifest["realism"] = {"enabled": True, "window_frames": WINDOW, "stride_frames": STRIDE,
                           "implausible_below": REALISM_IMPLAUSIBLE_BELOW, "implausible_frames": low}
