"""Minimal FBX binary reader for tests: the node tree with scalar/string/array properties.

Enough to check what an exporter wrote (GlobalSettings axes and unit, model transforms) without
going through an importer that would undo it. Format: "Kaydara FBX Binary" header, then node
records (end offset, property count, property bytes, name, properties, children); 64-bit
offsets from version 7500.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

_MAGIC = b"Kaydara FBX Binary  \x00"
_SCALARS = {b"Y": "<h", b"C": "<?", b"I": "<i", b"F": "<f", b"D": "<d", b"L": "<q"}
_ARRAYS = {b"f": "<f4", b"d": "<f8", b"l": "<i8", b"i": "<i4", b"b": "<?"}


@dataclass
class Node:
    name: str
    props: list
    children: list = field(default_factory=list)

    def find(self, name: str) -> "Node | None":
        return next((c for c in self.children if c.name == name), None)

    def find_all(self, name: str) -> list:
        return [c for c in self.children if c.name == name]

    def properties70(self) -> dict:
        """{name: values} of this node's Properties70 'P' records."""
        p70 = self.find("Properties70")
        return {p.props[0]: p.props[4:] for p in (p70.children if p70 else [])}


def _prop(data: bytes, pos: int):
    code = data[pos:pos + 1]
    pos += 1
    if code in _SCALARS:
        fmt = _SCALARS[code]
        return struct.unpack_from(fmt, data, pos)[0], pos + struct.calcsize(fmt)
    if code in _ARRAYS:
        n, enc, size = struct.unpack_from("<III", data, pos)
        raw = data[pos + 12:pos + 12 + size]
        raw = zlib.decompress(raw) if enc else raw
        return np.frombuffer(raw, _ARRAYS[code], n), pos + 12 + size
    if code in (b"S", b"R"):
        (n,) = struct.unpack_from("<I", data, pos)
        raw = data[pos + 4:pos + 4 + n]
        return (raw.decode("utf-8", "replace") if code == b"S" else raw), pos + 4 + n
    raise ValueError(f"unknown FBX property type {code!r} at {pos - 1}")


def _node(data: bytes, pos: int, wide: bool):
    fmt = "<QQQ" if wide else "<III"
    end, count, _ = struct.unpack_from(fmt, data, pos)
    pos += struct.calcsize(fmt)
    if end == 0:
        return None, pos
    name_len = data[pos]
    name = data[pos + 1:pos + 1 + name_len].decode("ascii")
    pos += 1 + name_len
    props = []
    for _ in range(count):
        value, pos = _prop(data, pos)
        props.append(value)
    node = Node(name, props)
    while pos < end:
        child, pos = _node(data, pos, wide)
        if child is None:
            break
        node.children.append(child)
    return node, end


def read_fbx(path) -> Node:
    """Parse a binary FBX file → a root Node whose children are the top-level records."""
    data = open(path, "rb").read()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path} is not a binary FBX file")
    (version,) = struct.unpack_from("<I", data, 23)
    wide = version >= 7500
    root, pos = Node("", []), 27
    while pos < len(data):
        node, pos = _node(data, pos, wide)
        if node is None:
            break
        root.children.append(node)
    return root


def models(root: Node) -> dict:
    """{model name: (model type, Properties70 dict)} of the file's Objects/Model records."""
    out = {}
    for m in root.find("Objects").find_all("Model"):
        out[m.props[1].split("\x00")[0]] = (m.props[2], m.properties70())
    return out
