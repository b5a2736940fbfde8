"""Rewrite the animation key times of a binary glTF (.glb) file that Blender's exporter wrote (pure).

Blender's glTF exporter (sampling every frame of the action, ``export_force_sampling``) writes the
k-th sample of every channel at the k-th frame of the action's range, but its times are off: it
divides by fps · fps_base (right only for fps_base 1; NTSC 29.97 is fps 30, base 1.001), and with
``export_anim_slide_to_zero`` it slides shape-key channels by a different amount than the bones of
a person who starts after scene frame 1 (checked on Blender 4.2: the values are those of the right
frames, only their times differ). This module sets every animation sampler input to
``start_s + k · fps_base / fps`` (k = 0 … frames−1), so the times equal the FBX and BVH exports'.
Only the JSON chunk changes size (accessor min/max); the binary chunk is rewritten in place.

GLB layout: 12-byte header (magic "glTF", version 2, total length), then chunks (uint32 length,
uint32 type "JSON"/"BIN\\0", data padded to 4 bytes: JSON with spaces, BIN with zeros).
"""
from __future__ import annotations

import json
import struct

import numpy as np

_MAGIC = 0x46546C67
_JSON = 0x4E4F534A
_BIN = 0x004E4942
_FLOAT = 5126


class GlbFormatError(ValueError):
    """The file is not a GLB file this module can rewrite."""


def _chunks(data: bytes) -> tuple[dict, bytearray]:
    magic, version, _ = struct.unpack_from("<III", data, 0)
    if magic != _MAGIC or version != 2:
        raise GlbFormatError("not a binary glTF 2.0 file")
    doc, blob, pos = None, bytearray(), 12
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from("<II", data, pos)
        body = data[pos + 8:pos + 8 + size]
        if kind == _JSON:
            doc = json.loads(body)
        elif kind == _BIN:
            blob = bytearray(body)
        pos += 8 + size
    if doc is None:
        raise GlbFormatError("no JSON chunk")
    return doc, blob


def _pack(doc: dict, blob: bytearray) -> bytes:
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    blob = bytes(blob) + b"\0" * (-len(blob) % 4)
    out = [struct.pack("<II", len(text), _JSON), text]
    if blob:
        out += [struct.pack("<II", len(blob), _BIN), blob]
    body = b"".join(out)
    return struct.pack("<III", _MAGIC, 2, 12 + len(body)) + body


def retime_animations(path: str, start_s: float, frames: int, fps: float, fps_base: float) -> int:
    """Rewrite every animation input of ``path`` to ``start_s + k · fps_base / fps`` (see above).

    ``frames``: the number of frames exported (every input must have that many keys);
    ``fps``/``fps_base``: the scene's ``render.fps`` and ``render.fps_base``. Returns the number of
    accessors rewritten. Raises GlbFormatError for an input that is not ``frames`` packed floats.
    """
    with open(path, "rb") as f:
        doc, blob = _chunks(f.read())
    inputs = sorted({s["input"] for a in doc.get("animations", []) for s in a["samplers"]})
    for index in inputs:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        if acc["componentType"] != _FLOAT or acc["type"] != "SCALAR" or view.get("byteStride", 4) != 4 \
                or acc["count"] != frames:
            raise GlbFormatError(f"animation input {index} is not {frames} packed float times")
        offset = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        new = (start_s + np.arange(frames) * fps_base / fps).astype("<f4")
        blob[offset:offset + 4 * acc["count"]] = new.tobytes()
        acc["min"], acc["max"] = [float(new.min())], [float(new.max())]
    with open(path, "wb") as f:
        f.write(_pack(doc, blob))
    return len(inputs)


def set_step_interpolation(path: str, node_names: list, target_path: str) -> int:
    """Make the samplers of the ``target_path`` ("scale", …) channels of the named nodes STEP (a value
    holds until the next key); returns the number of samplers changed (only the JSON chunk changes).
    """
    with open(path, "rb") as f:
        doc, blob = _chunks(f.read())
    nodes = {i for i, n in enumerate(doc.get("nodes", [])) if n.get("name") in set(node_names)}
    changed = 0
    for anim in doc.get("animations", []):
        for ch in anim["channels"]:
            if ch["target"].get("node") in nodes and ch["target"]["path"] == target_path:
                anim["samplers"][ch["sampler"]]["interpolation"] = "STEP"
                changed += 1
    with open(path, "wb") as f:
        f.write(_pack(doc, blob))
    return changed
