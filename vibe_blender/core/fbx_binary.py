"""In-place fixes of a binary FBX file that Blender's exporter writes (pure Python, no bpy).

Blender's FBX exporter hard-codes the GlobalSettings time span to 0–1 s whatever the take's length;
the FBX SDK (Unity, Unreal, Maya) reads it as the scene's timeline. :func:`set_time_span` rewrites
the two KTime values where they are (same size, so no offset in the file moves).
:func:`set_constant_keys` makes the keys of named nodes' curves (e.g. the root bones' "Lcl Scaling"
of an export's hidden lead-in) constant-interpolated, in place (the one-int KeyAttrFlags arrays
Blender writes are never compressed).

Binary layout (FBX 7.x): a 27-byte header ("Kaydara FBX Binary  \\0", 0x1A 0x00, uint32 version),
then node records: end offset, property count, property bytes (uint64 from version 7500, else
uint32), name length (uint8), name, properties (type code + value), children. KTime is an int64
count of 1/46186158000 s.
"""
from __future__ import annotations

import struct

FBX_KTIME = 46186158000  # KTime ticks per second
#: FbxAnimCurveDef: eInterpolationConstant with eConstantStandard (a key's value holds until the next
#: key; no tangent bits: 0x100 would mean eConstantNext for constant keys).
KEY_CONSTANT = 0x00000002
SCALING = "Lcl Scaling"
_ATTR_FLAGS = "KeyAttrFlags"
_MAGIC = b"Kaydara FBX Binary  \x00"
_FIXED = {b"Y": 2, b"C": 1, b"I": 4, b"F": 4, b"D": 8, b"L": 8}
_ARRAY_CODES = b"fdlib"


class FbxFormatError(ValueError):
    """The file is not a binary FBX file this module can patch."""


def _skip_property(data: bytes, pos: int) -> int:
    """Offset after the property starting at ``pos`` (type code included)."""
    code = data[pos:pos + 1]
    if code in _FIXED:
        return pos + 1 + _FIXED[code]
    if code and code in _ARRAY_CODES:
        (size,) = struct.unpack_from("<I", data, pos + 9)
        return pos + 13 + size
    if code in (b"S", b"R"):
        (size,) = struct.unpack_from("<I", data, pos + 1)
        return pos + 5 + size
    raise FbxFormatError(f"unknown FBX property type {code!r} at byte {pos}")


def _nodes(data: bytes, pos: int, stop: int, wide: bool):
    """Yield (name, first property offset, property count, children offset, end) of sibling records."""
    head = "<QQQ" if wide else "<III"
    size = struct.calcsize(head)
    while pos + size <= stop:
        end, count, prop_bytes = struct.unpack_from(head, data, pos)
        if end == 0:
            return
        name_len = data[pos + size]
        props = pos + size + 1 + name_len
        yield data[pos + size + 1:props].decode("ascii", "replace"), props, count, props + prop_bytes, end
        pos = end


def _string(data: bytes, pos: int) -> str:
    (size,) = struct.unpack_from("<I", data, pos + 1)
    return data[pos + 5:pos + 5 + size].decode("utf-8", "replace")


def _timestamp_offsets(data: bytes, wide: bool) -> dict:
    """{property name: offset of its int64 value} of GlobalSettings' timestamp ('KTime') P records."""
    found = {}
    for name, _, _, children, end in _nodes(data, 27, len(data), wide):
        if name != "GlobalSettings":
            continue
        for sub, _, _, sub_children, sub_end in _nodes(data, children, end, wide):
            if sub != "Properties70":
                continue
            for _, p, count, _, _ in _nodes(data, sub_children, sub_end, wide):
                offsets = [p]
                for _ in range(count - 1):
                    offsets.append(_skip_property(data, offsets[-1]))
                if count == 5 and data[p:p + 1] == b"S" and _string(data, offsets[1]) == "KTime" \
                        and data[offsets[4]:offsets[4] + 1] == b"L":
                    found[_string(data, p)] = offsets[4] + 1
    return found


def set_time_span(path: str, start_s: float, stop_s: float) -> None:
    """Rewrite GlobalSettings TimeSpanStart/TimeSpanStop of a binary FBX file (seconds).

    Raises FbxFormatError when the file is not binary FBX or lacks the two records.
    """
    with open(path, "r+b") as f:
        data = f.read()
        if not data.startswith(_MAGIC):
            raise FbxFormatError(f"{path} is not a binary FBX file")
        (version,) = struct.unpack_from("<I", data, 23)
        offsets = _timestamp_offsets(data, version >= 7500)
        if not {"TimeSpanStart", "TimeSpanStop"} <= offsets.keys():
            raise FbxFormatError(f"{path} has no GlobalSettings time span")
        for key, seconds in (("TimeSpanStart", start_s), ("TimeSpanStop", stop_s)):
            f.seek(offsets[key])
            f.write(struct.pack("<q", int(round(seconds * FBX_KTIME))))


def _values(data: bytes, pos: int, count: int) -> list:
    """The ``count`` properties from ``pos``: ints (L/I), strings (S), (offset, length, encoding) of
    the raw data of arrays, None for other types."""
    out = []
    for _ in range(count):
        code = data[pos:pos + 1]
        if code == b"L":
            out.append(struct.unpack_from("<q", data, pos + 1)[0])
        elif code == b"I":
            out.append(struct.unpack_from("<i", data, pos + 1)[0])
        elif code == b"S":
            out.append(_string(data, pos))
        elif code and code in _ARRAY_CODES:
            length, encoding, _ = struct.unpack_from("<III", data, pos + 1)
            out.append((pos + 13, length, encoding))
        else:
            out.append(None)
        pos = _skip_property(data, pos)
    return out


def _top(data: bytes, wide: bool, name: str):
    for node in _nodes(data, 27, len(data), wide):
        if node[0] == name:
            return node
    raise FbxFormatError(f"no {name} section")


def _animation_graph(data: bytes, wide: bool) -> tuple[dict, dict, set]:
    """({model id: name}, {curve id: KeyAttrFlags array (offset, length, encoding)}, curve-node ids)."""
    _, _, _, children, end = _top(data, wide, "Objects")
    models, curves, curve_nodes = {}, {}, set()
    for name, props, count, sub, sub_end in _nodes(data, children, end, wide):
        values = _values(data, props, count)
        if name == "Model":
            models[values[0]] = str(values[1]).split("\x00", 1)[0]
        elif name == "AnimationCurveNode":
            curve_nodes.add(values[0])
        elif name == "AnimationCurve":
            for child, p, n, _, _ in _nodes(data, sub, sub_end, wide):
                if child == _ATTR_FLAGS:
                    curves[values[0]] = _values(data, p, n)[0]
    return models, curves, curve_nodes


def set_constant_keys(path: str, model_names: list, prop: str) -> int:
    """Set every key of the ``prop`` curves ("Lcl Scaling", …) of the named models (bones) to constant
    interpolation (:data:`KEY_CONSTANT`); returns the number of curves changed.

    Raises FbxFormatError when the file is not binary FBX or a flags array is compressed.
    """
    with open(path, "r+b") as f:
        data = f.read()
        if not data.startswith(_MAGIC):
            raise FbxFormatError(f"{path} is not a binary FBX file")
        wide = struct.unpack_from("<I", data, 23)[0] >= 7500
        models, curves, curve_nodes = _animation_graph(data, wide)
        wanted = {i for i, n in models.items() if n in set(model_names)}
        links = []
        _, _, _, children, end = _top(data, wide, "Connections")
        for _, props, count, _, _ in _nodes(data, children, end, wide):
            values = _values(data, props, count)
            if count == 4 and values[0] == "OP":
                links.append(values[1:])
        nodes = {child for child, parent, name in links if parent in wanted and name == prop
                 and child in curve_nodes}
        targets = [curves[c] for c, parent, _ in links if parent in nodes and c in curves]
        for offset, length, encoding in targets:
            if encoding != 0:
                raise FbxFormatError(f"{path}: compressed {_ATTR_FLAGS} array")
            f.seek(offset)
            f.write(struct.pack(f"<{length}i", *([KEY_CONSTANT] * length)))
    return len(targets)
