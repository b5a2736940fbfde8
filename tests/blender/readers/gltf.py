"""Minimal binary glTF (.glb) reader for tests: accessors, node defaults, animation samples, FK.

All maths in float64; quaternions are glTF's (x, y, z, w). Positions are in the file's space
(glTF: Y up, metres).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

_COMPONENTS = {5120: "<i1", 5121: "<u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass
class Glb:
    doc: dict
    blob: bytes

    def accessor(self, index: int) -> np.ndarray:
        """Accessor ``index`` as float64 (count, size) (scalars: (count,))."""
        acc = self.doc["accessors"][index]
        view = self.doc["bufferViews"][acc["bufferView"]]
        dtype = np.dtype(_COMPONENTS[acc["componentType"]])
        size = _SIZES[acc["type"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        stride = view.get("byteStride", dtype.itemsize * size)
        raw = np.frombuffer(self.blob, np.uint8, count=stride * (acc["count"] - 1) + dtype.itemsize * size,
                            offset=start)
        rows = np.lib.stride_tricks.as_strided(raw, (acc["count"], dtype.itemsize * size), (stride, 1))
        out = np.ascontiguousarray(rows).view(dtype).reshape(acc["count"], size).astype(np.float64)
        return out[:, 0] if size == 1 else out

    def node_index(self) -> dict:
        return {n.get("name"): i for i, n in enumerate(self.doc["nodes"])}


def load(path) -> Glb:
    """Parse a .glb file (JSON chunk + BIN chunk)."""
    data = open(path, "rb").read()
    magic, _, _ = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67, f"{path} is not binary glTF"
    n, _ = struct.unpack_from("<II", data, 12)
    doc = json.loads(data[20:20 + n])
    blob = b""
    if 20 + n < len(data):
        m, _ = struct.unpack_from("<II", data, 20 + n)
        blob = data[28 + n:28 + n + m]
    return Glb(doc, blob)


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) glTF quaternions (x, y, z, w) → (..., 3, 3) rotation matrices."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def trs_matrix(t, r, s) -> np.ndarray:
    """(..., 4, 4) from translation (..., 3), quaternion (..., 4) and scale (..., 3)."""
    t, r, s = (np.asarray(a, np.float64) for a in (t, r, s))
    m = np.zeros(np.broadcast_shapes(t.shape[:-1], r.shape[:-1], s.shape[:-1]) + (4, 4))
    m[..., :3, :3] = quat_matrix(r) * s[..., None, :]
    m[..., :3, 3] = t
    m[..., 3, 3] = 1.0
    return m


def _defaults(node: dict) -> tuple:
    if "matrix" in node:
        m = np.array(node["matrix"], np.float64).reshape(4, 4).T
        return m, None
    return None, (np.array(node.get("translation", [0, 0, 0]), np.float64),
                  np.array(node.get("rotation", [0, 0, 0, 1]), np.float64),
                  np.array(node.get("scale", [1, 1, 1]), np.float64))


def _parents(doc: dict) -> dict:
    return {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}


def animation_times(glb: Glb, index: int = 0) -> np.ndarray:
    """The key times (s) of animation ``index`` (checked equal for all its samplers)."""
    anim = glb.doc["animations"][index]
    inputs = {s["input"] for s in anim["samplers"]}
    times = [glb.accessor(i) for i in sorted(inputs)]
    for t in times[1:]:
        np.testing.assert_allclose(t, times[0], atol=1e-6, err_msg="samplers with different key times")
    return times[0]


def world_positions(glb: Glb, names: list, animation: int | None = 0) -> np.ndarray:
    """World positions of the named nodes: (T, J, 3) at the animation's keys, or (1, J, 3) for the
    node defaults (``animation`` None)."""
    doc = glb.doc
    parents = _parents(doc)
    count = 1 if animation is None else len(animation_times(glb, animation))
    local = []
    tracks: dict = {}
    if animation is not None:
        anim = doc["animations"][animation]
        for ch in anim["channels"]:
            sampler = anim["samplers"][ch["sampler"]]
            if ch["target"]["path"] in ("translation", "rotation", "scale"):
                tracks[(ch["target"]["node"], ch["target"]["path"])] = glb.accessor(sampler["output"])
    for i, node in enumerate(doc["nodes"]):
        mat, trs = _defaults(node)
        if mat is not None:
            local.append(np.broadcast_to(mat, (count, 4, 4)))
            continue
        t, r, s = (np.broadcast_to(tracks.get((i, p), v), (count, len(v))) for p, v in
                   zip(("translation", "rotation", "scale"), trs))
        local.append(trs_matrix(t, r, s))
    world: dict = {}

    def get(i: int) -> np.ndarray:
        if i not in world:
            world[i] = local[i] if i not in parents else get(parents[i]) @ local[i]
        return world[i]

    index = glb.node_index()
    return np.stack([get(index[n])[:, :3, 3] for n in names], axis=1)


def max_influences(glb: Glb) -> int:
    """Largest number of non-zero skin weights of any vertex of any primitive."""
    worst = 0
    for mesh in glb.doc.get("meshes", []):
        for prim in mesh["primitives"]:
            sets = [k for k in prim["attributes"] if k.startswith("WEIGHTS_")]
            if sets:
                w = np.concatenate([glb.accessor(prim["attributes"][k]) for k in sorted(sets)], axis=1)
                worst = max(worst, int(np.count_nonzero(w > 0, axis=1).max()))
    return worst
