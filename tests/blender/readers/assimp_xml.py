"""Assimp's XML dump (``assimp dump file out.assxml``) → node tree, animation keys, bone weights.

Matrices in the dump are row-major with the translation in the last column; animation key times
are in ticks (``tick_cnt`` ticks per second); rotation keys are quaternions written x y z w
(checked by the tests against the node matrices). Positions are in the file's own space: Assimp
applies neither the FBX unit scale nor an axis conversion.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np

from .gltf import quat_matrix


def _numbers(text: str) -> np.ndarray:
    return np.array(text.split(), np.float64)


@dataclass
class Scene:
    local: dict  # node name → (4, 4) default local matrix
    parent: dict  # node name → parent name (None for the root)
    animations: list = field(default_factory=list)  # [(name, ticks per s, {node: channels})]
    bones: dict = field(default_factory=dict)  # bone name → {vertex: weight} (all meshes)


def _nodes(elem, parent, scene: Scene) -> None:
    name = elem.get("name")
    scene.local[name] = _numbers(elem.find("Matrix4").text).reshape(4, 4)
    scene.parent[name] = parent
    for child in elem.findall("./NodeList/Node"):
        _nodes(child, name, scene)


def _keys(channel, tag: str) -> tuple[np.ndarray, np.ndarray]:
    keys = channel.findall(f"./{tag}KeyList/{tag}Key")
    return (np.array([float(k.get("time")) for k in keys]), np.array([_numbers(k.text) for k in keys]))


def load(path) -> Scene:
    root = ET.parse(path).getroot()
    scene = Scene({}, {})
    _nodes(root.find("./Scene/Node") if root.find("./Scene/Node") is not None else root.find(".//Node"), None,
           scene)
    for anim in root.findall(".//AnimationList/Animation"):
        channels = {}
        for ch in anim.findall("./NodeAnimList/NodeAnim"):
            channels[ch.get("node")] = {t: _keys(ch, t) for t in ("Position", "Rotation", "Scaling")}
        scene.animations.append((anim.get("name"), float(anim.get("tick_cnt")), channels))
    for bone in root.findall(".//MeshList/Mesh/BoneList/Bone"):
        weights = scene.bones.setdefault(bone.get("name"), {})
        for w in bone.findall("./WeightList/Weight"):
            weights[int(w.get("index"))] = float(w.text)
    return scene


def key_times_s(scene: Scene, animation: int = 0) -> np.ndarray:
    """Sorted unique key times (s) over all channels of an animation."""
    _, tps, channels = scene.animations[animation]
    times = np.concatenate([keys[0] for ch in channels.values() for keys in ch.values() if len(keys[0])])
    return np.unique(times) / tps


def _local_at(scene: Scene, name: str, channels: dict, key: int) -> np.ndarray:
    ch = channels.get(name)
    if ch is None:
        return scene.local[name]
    m = np.eye(4)
    rot = ch["Rotation"][1][min(key, len(ch["Rotation"][1]) - 1)]
    scale = ch["Scaling"][1][min(key, len(ch["Scaling"][1]) - 1)] if len(ch["Scaling"][1]) else np.ones(3)
    m[:3, :3] = quat_matrix(rot) * scale[None, :]
    m[:3, 3] = ch["Position"][1][min(key, len(ch["Position"][1]) - 1)]
    return m


def world_positions(scene: Scene, names: list, animation: int | None = 0) -> np.ndarray:
    """(T, J, 3) node positions at each key index of an animation, or (1, J, 3) at the defaults."""
    channels = scene.animations[animation][2] if animation is not None else {}
    count = 1 if animation is None else len(key_times_s(scene, animation))
    out = np.zeros((count, len(names), 3))
    for k in range(count):
        world: dict = {}

        def get(n):
            if n not in world:
                m = _local_at(scene, n, channels, k)
                p = scene.parent[n]
                world[n] = m if p is None else get(p) @ m
            return world[n]

        out[k] = [get(n)[:3, 3] for n in names]
    return out


def max_influences(scene: Scene) -> int:
    """Largest number of bones weighting one vertex (non-zero weights, all meshes merged)."""
    counts: dict = {}
    for weights in scene.bones.values():
        for v, w in weights.items():
            if w > 0:
                counts[v] = counts.get(v, 0) + 1
    return max(counts.values(), default=0)
