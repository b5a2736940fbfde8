"""A root-positions-only BVH reader (the standard semantics: position channels count on the ROOT
only; every other joint sits at its OFFSET) and a bvhio wrapper, both → world joint positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Bvh:
    names: list
    parents: list
    offsets: np.ndarray  # (J, 3)
    channels: list  # per joint: channel names
    frame_time: float
    motion: np.ndarray  # (T, C)


def read(path) -> Bvh:
    """Parse HIERARCHY and MOTION of a BVH file (End Sites are skipped)."""
    tokens = open(path).read().split()
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 0
    end_site = 0
    while tokens[i] != "MOTION":
        tok = tokens[i]
        if tok in ("ROOT", "JOINT"):
            names.append(tokens[i + 1])
            parents.append(stack[-1] if stack else -1)
            i += 2
        elif tok == "End":
            end_site += 1
            i += 2
        elif tok == "{":
            stack.append(len(names) - 1) if not end_site else None
            i += 1
        elif tok == "}":
            if end_site:
                end_site -= 1
            else:
                stack.pop()
            i += 1
        elif tok == "OFFSET":
            if not end_site:
                offsets.append([float(v) for v in tokens[i + 1:i + 4]])
            i += 4
        elif tok == "CHANNELS":
            n = int(tokens[i + 1])
            channels.append(tokens[i + 2:i + 2 + n])
            i += 2 + n
        else:
            i += 1
    frames = int(tokens[i + 2])
    frame_time = float(tokens[i + 5])
    values = np.array(tokens[i + 6:], np.float64)
    return Bvh(names, parents, np.array(offsets), channels, frame_time, values.reshape(frames, -1))


def root_positions(bvh: Bvh) -> np.ndarray:
    """(T, 3) root path read the standard way: the root's position channels, nothing else."""
    cols = [bvh.channels[0].index(c) for c in ("Xposition", "Yposition", "Zposition")]
    return bvh.motion[:, cols]


def bvhio_positions(path, names: list) -> np.ndarray:
    """(T, J, 3) world joint positions from bvhio (PyPI), per frame."""
    import bvhio
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    frames = len(root.Keyframes)
    out = np.zeros((frames, len(names), 3))
    for f in range(frames):
        root.loadPose(f, recursive=True)
        out[f] = [tuple(joints[n].PositionWorld) for n in names]
    return out


def _axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about X/Y/Z by ``degrees`` (T,)."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    rows = {"X": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
            "Y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
            "Z": [[c, -s, zero], [s, c, zero], [zero, zero, one]]}[axis]
    return np.moveaxis(np.array(rows), -1, 0)


def root_only_positions(bvh: Bvh) -> np.ndarray:
    """(T, J, 3) world joint positions read the standard way: position channels count on the root
    only, every other joint sits at its OFFSET; rotations compose in channel order (R = R1·R2·R3)."""
    frames = len(bvh.motion)
    col = 0
    world_r = np.zeros((len(bvh.names), frames, 3, 3))
    world_t = np.zeros((len(bvh.names), frames, 3))
    for j, chans in enumerate(bvh.channels):
        rot = np.tile(np.eye(3), (frames, 1, 1))
        pos = np.tile(bvh.offsets[j], (frames, 1))
        for c in chans:
            values = bvh.motion[:, col]
            col += 1
            if c.endswith("rotation"):
                rot = rot @ _axis_rotation(c[0], values)
            elif j == 0:
                pos[:, "XYZ".index(c[0])] = values
        p = bvh.parents[j]
        if p < 0:
            world_r[j], world_t[j] = rot, pos
        else:
            world_r[j] = world_r[p] @ rot
            world_t[j] = world_t[p] + np.einsum("tab,tb->ta", world_r[p], pos)
    return np.moveaxis(world_t, 0, 1)
