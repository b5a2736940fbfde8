"""Minimal BVH reader and forward kinematics (numpy), for driving the synthetic benchmark.

Rotation channels compose in the order listed (``Zrotation Yrotation Xrotation`` → Rz·Ry·Rx),
degrees; each joint's world transform is parent · T(offset) · R(channels). Positions come out in
the file's units and frame (CMU files: y up, facing +z).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Bvh:
    """A parsed BVH: joint names, parents, offsets (J,3), channel layout and motion (F, C)."""

    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    offsets: list[np.ndarray] = field(default_factory=list)
    channels: list[list[str]] = field(default_factory=list)
    frame_time: float = 0.0
    motion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def fps(self) -> float:
        """Frames per second of the motion."""
        return 1.0 / self.frame_time


def read_bvh(path: str | Path) -> Bvh:
    """Parse a BVH file (end sites are skipped). Raises ValueError on a malformed file."""
    tokens = Path(path).read_text().split()
    bvh, stack, i = Bvh(), [], 0
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            bvh.names.append(tokens[i + 1])
            bvh.parents.append(stack[-1] if stack else -1)
            stack.append(len(bvh.names) - 1)
            i += 2
        elif tok == "End":
            depth, i = 0, i + 2
            while True:
                depth += {"{": 1, "}": -1}.get(tokens[i], 0)
                i += 1
                if depth == 0:
                    break
        elif tok == "OFFSET":
            bvh.offsets.append(np.array(tokens[i + 1 : i + 4], float))
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            bvh.channels.append(tokens[i + 2 : i + 2 + n])
            i += 2 + n
        elif tok == "}":
            stack.pop()
            i += 1
        else:
            i += 1
    frames = int(tokens[i + 2])
    bvh.frame_time = float(tokens[i + 5])
    values = np.array(tokens[i + 6 :], float)
    width = sum(len(c) for c in bvh.channels)
    if values.size != frames * width:
        raise ValueError(f"{path}: expected {frames}×{width} motion values, found {values.size}")
    bvh.motion = values.reshape(frames, width)
    return bvh


def _axis_rotation(axis: str, deg: np.ndarray) -> np.ndarray:
    """Rotation matrices (F,3,3) about x/y/z by ``deg`` (F,) degrees."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros(a.shape + (3, 3))
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
    k = 3 - i - j
    m[:, k, k] = 1
    m[:, i, i], m[:, j, j], m[:, i, j], m[:, j, i] = c, c, -s, s
    return m


def forward_kinematics(bvh: Bvh, frames: slice = slice(None)) -> np.ndarray:
    """World joint positions (F,J,3) for the selected frames, in the file's units."""
    motion = bvh.motion[frames]
    f = motion.shape[0]
    rot = np.zeros((len(bvh.names), f, 3, 3))
    pos = np.zeros((len(bvh.names), f, 3))
    col = 0
    for j, chans in enumerate(bvh.channels):
        local_r, local_t = np.tile(np.eye(3), (f, 1, 1)), np.tile(bvh.offsets[j], (f, 1))
        for name in chans:
            if name.endswith("position"):
                local_t[:, "XYZ".index(name[0])] = motion[:, col]
            else:
                local_r = local_r @ _axis_rotation(name[0], motion[:, col])
            col += 1
        p = bvh.parents[j]
        if p < 0:
            rot[j], pos[j] = local_r, local_t
        else:
            rot[j] = rot[p] @ local_r
            pos[j] = pos[p] + np.einsum("fab,fb->fa", rot[p], local_t)
    return pos.transpose(1, 0, 2)
