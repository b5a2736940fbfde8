"""Pure parts of the exports (no bpy): skin pruning, the FBX time-span patch, glTF retiming, options."""
import json
import struct

import numpy as np
import pytest

from vibe_blender.core import export_presets as ep
from vibe_blender.core import fbx_binary, glb_binary, skinning
from vibe_blender.core.errors import UserInputError


def test_prune_keeps_largest_and_renormalises():
    w = np.array([[0.1, 0.4, 0.2, 0.3, 0.0], [2.0, 0.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0]])
    p = skinning.prune(w, 2)
    np.testing.assert_allclose(p[0], [0, 4 / 7, 0, 3 / 7, 0])
    np.testing.assert_allclose(p[1], [1, 0, 0, 0, 0])  # fewer influences: only normalised
    np.testing.assert_allclose(p[2], [0.5, 0.5, 0, 0, 0])  # ties keep the lower bone index
    assert skinning.influence_counts(p).tolist() == [2, 1, 2]
    np.testing.assert_allclose(skinning.prune(w, 9), skinning.normalised(w))


def test_pruning_error_known_answer():
    """Two bones, bone 1 translated by d: a vertex weighted (0.7, 0.3) pruned to bone 0 moves 0.3·|d|."""
    rest = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    w = np.array([[0.7, 0.3], [1.0, 0.0]])
    pruned = skinning.prune(w, 1)
    mats = np.tile(np.eye(4), (2, 2, 1, 1))
    mats[1, 1, :3, 3] = [0.0, 0.2, 0.0]  # frame 1: bone 1 moves 0.2 along y
    err = skinning.pruning_error(rest, w, pruned, mats)
    np.testing.assert_allclose(err, [0.3 * 0.2, 0.0], atol=1e-15)


def _fbx_file(nodes) -> bytes:
    """A binary FBX 7.4 file (32-bit offsets) of (name, property bytes, count, children) records."""
    out = bytearray(b"Kaydara FBX Binary  \x00\x1a\x00" + struct.pack("<I", 7400))

    def emit(node):
        name, body, count, children = node
        start = len(out)
        out.extend(b"\0" * 12)
        out.extend(bytes([len(name)]) + name + body)
        for c in children:
            emit(c)
        if children:
            out.extend(b"\0" * 13)
        struct.pack_into("<III", out, start, len(out), count, len(body))

    for n in nodes:
        emit(n)
    out.extend(b"\0" * 13)
    return bytes(out)


def _s(text: str) -> bytes:
    return b"S" + struct.pack("<I", len(text)) + text.encode()


def _p_time(name: str, value: int):
    return (b"P", _s(name) + _s("KTime") + _s("Time") + _s("") + b"L" + struct.pack("<q", value), 5, [])


def test_fbx_time_span_is_rewritten_in_place(tmp_path):
    p70 = (b"Properties70", b"", 0, [_p_time("TimeSpanStart", 0), _p_time("TimeSpanStop", 46186158000)])
    data = _fbx_file([(b"GlobalSettings", b"", 0, [p70])])
    path = tmp_path / "a.fbx"
    path.write_bytes(data)
    fbx_binary.set_time_span(str(path), 0.1, 7.5)
    new = path.read_bytes()
    assert len(new) == len(data)
    stop = struct.unpack_from("<q", new, new.index(b"TimeSpanStop") + len("TimeSpanStop") + 25)[0]
    assert stop == round(7.5 * fbx_binary.FBX_KTIME)
    start = struct.unpack_from("<q", new, new.index(b"TimeSpanStart") + len("TimeSpanStart") + 25)[0]
    assert start == round(0.1 * fbx_binary.FBX_KTIME)


def test_fbx_time_span_rejects_other_files(tmp_path):
    (tmp_path / "a.fbx").write_bytes(b"; FBX 7.4.0 project file\n")
    with pytest.raises(fbx_binary.FbxFormatError, match="not a binary FBX"):
        fbx_binary.set_time_span(str(tmp_path / "a.fbx"), 0, 1)
    (tmp_path / "b.fbx").write_bytes(_fbx_file([(b"Objects", b"", 0, [])]))
    with pytest.raises(fbx_binary.FbxFormatError, match="no GlobalSettings time span"):
        fbx_binary.set_time_span(str(tmp_path / "b.fbx"), 0, 1)


def _glb(times: np.ndarray, values: np.ndarray) -> bytes:
    blob = times.astype("<f4").tobytes() + values.astype("<f4").tobytes()
    doc = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": len(blob)}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 4 * len(times)},
                           {"buffer": 0, "byteOffset": 4 * len(times), "byteLength": 4 * len(values)}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(times), "type": "SCALAR",
                          "min": [float(times.min())], "max": [float(times.max())]},
                         {"bufferView": 1, "componentType": 5126, "count": len(values), "type": "SCALAR"}],
           "animations": [{"name": "a", "samplers": [{"input": 0, "output": 1}],
                           "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}]}
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def test_glb_retime_puts_keys_on_video_time(tmp_path):
    """NTSC: fps 30, base 1.001 → key k at start + k · 1.001 / 30 s, values untouched."""
    path = tmp_path / "a.glb"
    values = np.arange(5, dtype=np.float64)
    path.write_bytes(_glb(np.arange(5) / (30 * 1.001), values))  # the exporter's wrong times
    assert glb_binary.retime_animations(str(path), 0.5, 5, 30, 1.001) == 1
    doc, blob = glb_binary._chunks(path.read_bytes())
    times = np.frombuffer(bytes(blob), "<f4", 5, 0)
    np.testing.assert_allclose(times, (0.5 + np.arange(5) * 1.001 / 30).astype("<f4"))
    np.testing.assert_array_equal(np.frombuffer(bytes(blob), "<f4", 5, 20), values)
    assert doc["accessors"][0]["min"] == [float(times[0])] and doc["accessors"][0]["max"] == [float(times[-1])]
    with pytest.raises(glb_binary.GlbFormatError, match="not 6 packed float times"):
        glb_binary.retime_animations(str(path), 0.0, 6, 30, 1.0)


def test_export_option_helpers():
    assert ep.resolve_max_influences(ep.PRESET_DEFAULT, 4) == 4
    assert ep.resolve_max_influences(None, 4) is None and ep.resolve_max_influences(0, 4) is None
    assert ep.resolve_max_influences(8, None) == 8
    for bad in (-1, 2.5, True, "4"):
        with pytest.raises(UserInputError, match="max_influences"):
            ep.resolve_max_influences(bad, 4)
    assert ep.FBX_MAX_INFLUENCES["generic"] is None and ep.FBX_MAX_INFLUENCES["unity"] == 4
    assert ep.bvh_options()["root_transform_only"] is True
    assert ep.bvh_options("positions")["root_transform_only"] is False
    with pytest.raises(UserInputError, match="unknown BVH layout 'x'"):
        ep.bvh_options("x")
    with pytest.raises(UserInputError, match="unknown timing"):
        ep.check_choice("timing", "absolute", ep.TIMING_MODES)
    assert ep.GLTF_OPTIONS["export_anim_single_armature"] is False


def test_clip_span_of_each_timing_mode():
    """Person keyed at scene frames 4..27, video frame 0 at scene frame 1: (origin, first written)."""
    assert ep.clip_span("video", 4, 27, 1) == (1, 4)  # keys at their video time, take = the person's
    assert ep.clip_span("clip", 4, 27, 1) == (4, 4)  # the person's first frame at 0 s
    assert ep.clip_span("hidden", 4, 27, 1) == (1, 1)  # from 0 s, frames 1..3 hidden
    assert ep.clip_span("hidden", 1, 27, 1) == (1, 1)  # there from video frame 0: nothing hidden
    assert ep.clip_span("hidden", 0, 27, 1) == ep.clip_span("video", 0, 27, 1) == (1, 0)
    with pytest.raises(UserInputError, match="unknown timing 'absolute'; use one of video, clip, hidden"):
        ep.clip_span("absolute", 4, 27, 1)
    assert 0 < ep.HIDDEN_SCALE * 2.0 < 1e-4  # a 2 m character shrinks below 0.1 mm
    assert set(ep.TIMING_CHOICES) == set(ep.TIMING_MODES)


def test_influences_choice_of_the_panel():
    assert ep.influences_choice(ep.PRESET_DEFAULT, 7) == ep.PRESET_DEFAULT
    assert (ep.influences_choice("4", 7), ep.influences_choice("8", 7)) == (4, 8)
    assert ep.influences_choice("all", 7) is None
    assert ep.influences_choice("custom", 7) == 7
    with pytest.raises(UserInputError, match="max_influences must be a whole number"):
        ep.influences_choice("custom", 0)
    with pytest.raises(UserInputError, match="unknown max influences '16'"):
        ep.influences_choice("16", 7)


def test_export_summary_lines():
    plain = {"vertices_pruned": 0, "pruning_error_m": 0.0, "hidden_frames": 0, "hidden_until_s": None}
    assert ep.export_summary("VIBE_1", "/t/a.fbx", plain) == "Exported VIBE_1 to /t/a.fbx"
    pruned = {**plain, "max_influences": 4, "vertices_pruned": 607, "pruning_error_m": 0.01412,
              "hidden_frames": 3, "hidden_until_s": 0.1}
    assert ep.export_summary("VIBE_2", "/t/b.glb", pruned) == (
        "Exported VIBE_2 to /t/b.glb; skin pruned to 4 influences: 607 vertices moved up to 14.1 mm; "
        "hidden until 0.100 s")
    assert ep.export_summary("VIBE_2", "/t/c.bvh", {"note": "BVH has no scale"}) == \
        "Exported VIBE_2 to /t/c.bvh; BVH has no scale"


def test_glb_step_interpolation_only_on_the_named_nodes(tmp_path):
    path = tmp_path / "a.glb"
    data = _glb(np.arange(3) / 30.0, np.ones(3))
    doc, blob = glb_binary._chunks(data)
    doc["nodes"] = [{"name": "root"}, {"name": "pelvis"}]
    doc["animations"][0]["samplers"].append({"input": 0, "output": 1})
    doc["animations"][0]["channels"] = [{"sampler": 0, "target": {"node": 0, "path": "scale"}},
                                        {"sampler": 1, "target": {"node": 1, "path": "scale"}}]
    path.write_bytes(glb_binary._pack(doc, blob))
    assert glb_binary.set_step_interpolation(str(path), ["root"], "scale") == 1
    new, new_blob = glb_binary._chunks(path.read_bytes())
    assert [s.get("interpolation") for s in new["animations"][0]["samplers"]] == ["STEP", None]
    assert bytes(new_blob) == bytes(blob)


def _l(value: int) -> bytes:
    return b"L" + struct.pack("<q", value)


def _int_array(values, encoding=0) -> bytes:
    raw = struct.pack(f"<{len(values)}i", *values)
    return b"i" + struct.pack("<III", len(values), encoding, len(raw)) + raw


def _scaled_bones_fbx(encoding=0) -> bytes:
    """Two bones (root 10, pelvis 11), each with an 'S' curve node (20, 21) and one curve (30, 31)."""
    def curve(cid):
        return (b"AnimationCurve", _l(cid) + _s("\x00\x01AnimCurve") + _s(""), 3,
                [(b"KeyAttrFlags", _int_array([0x4104], encoding), 1, [])])
    objects = [(b"Model", _l(10) + _s("root\x00\x01Model") + _s("LimbNode"), 3, []),
               (b"Model", _l(11) + _s("pelvis\x00\x01Model") + _s("LimbNode"), 3, []),
               (b"AnimationCurveNode", _l(20) + _s("S\x00\x01AnimCurveNode") + _s(""), 3, []),
               (b"AnimationCurveNode", _l(21) + _s("S\x00\x01AnimCurveNode") + _s(""), 3, []),
               curve(30), curve(31)]
    links = [(30, 20, "d|X"), (20, 10, "Lcl Scaling"), (31, 21, "d|X"), (21, 11, "Lcl Scaling")]
    connections = [(b"C", _s("OP") + _l(a) + _l(b) + _s(p), 4, []) for a, b, p in links]
    return _fbx_file([(b"Objects", b"", 0, objects), (b"Connections", b"", 0, connections)])


def test_fbx_constant_keys_on_the_named_bones_scale_curves(tmp_path):
    path = tmp_path / "a.fbx"
    data = _scaled_bones_fbx()
    path.write_bytes(data)
    assert fbx_binary.set_constant_keys(str(path), ["root"], fbx_binary.SCALING) == 1
    new = path.read_bytes()
    assert len(new) == len(data)
    flags = [struct.unpack_from("<i", new, i + len(b"KeyAttrFlags") + 13)[0]
             for i in (new.index(b"KeyAttrFlags"), new.rindex(b"KeyAttrFlags"))]
    assert flags == [fbx_binary.KEY_CONSTANT, 0x4104]  # root's curve constant, pelvis's untouched
    path.write_bytes(_scaled_bones_fbx(encoding=1))
    with pytest.raises(fbx_binary.FbxFormatError, match="compressed KeyAttrFlags"):
        fbx_binary.set_constant_keys(str(path), ["root"], fbx_binary.SCALING)
