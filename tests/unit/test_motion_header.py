"""The header schema (core.motion_header) and the bounded archive reader (core.npz_safe)."""
from __future__ import annotations

import copy
import io
import json
import zipfile

import numpy as np
import pytest

from tests.fixtures.motion import make_motion
from vibe_blender.core import motion_file as mf
from vibe_blender.core import motion_header as mh
from vibe_blender.core import npz_safe
from vibe_blender.core.errors import MotionFileError


@pytest.fixture(scope="module")
def meta():
    return make_motion(num_tracks=1, num_frames=5).meta


@pytest.mark.parametrize("path,value,words", [
    (("video", "fps"), 1e9, "video.fps is 1000000000.0 (float); it must be a number in (0, 1000]"),
    (("video", "fps"), 0, "video.fps is 0 (int)"),
    (("video", "fps"), -30.0, "video.fps"),
    (("video", "fps"), float("nan"), "video.fps is nan"),
    (("video", "fps"), "30", "video.fps is '30' (str)"),
    (("video", "frames"), 10**12, "video.frames is 1000000000000 (int); it must be an integer in [1, 216000]"),
    (("video", "frames"), 2.5, "video.frames"),
    (("video",), "abc", "meta video is 'abc' (str); it must be an object"),
    (("camera", "focal_px"), float("inf"), "camera.focal_px is inf"),
    (("version",), "1", "meta version is '1' (str), not an integer"),
    (("version",), True, "meta version is True (bool)"),
    (("version",), 2, "version 2 is not supported by this reader (supports 1)"),
    (("manifest",), [1], "meta manifest is [1] (list)"),
])
def test_out_of_range_values_name_key_value_and_range(meta, path, value, words):
    bad = copy.deepcopy(meta)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(MotionFileError) as info:
        mh.validate_meta(bad)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_the_engine_header_passes_and_world_may_be_null(meta):
    mh.validate_meta(meta)
    mh.validate_meta({**meta, "world": None})


def _rewrite(path, name: str, data: bytes, out) -> None:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, data if item.filename == name else src.read(item))


def test_a_tampered_header_is_refused_by_read_motion(tmp_path):
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, make_motion(num_tracks=1, num_frames=5))
    meta = mf.read_motion(path).meta
    meta["video"]["fps"] = 1e9
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(meta).encode(), np.uint8))
    _rewrite(path, "meta.npy", buf.getvalue(), tmp_path / "b.npz")
    with pytest.raises(MotionFileError, match=r"b.npz: meta video.fps is 1000000000.0"):
        mf.read_motion(tmp_path / "b.npz")


def test_a_huge_declared_array_is_refused_before_any_allocation(tmp_path):
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, make_motion(num_tracks=1, num_frames=5))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 24, 3)})
    _rewrite(path, "track/1/pose.npy", buf.getvalue() + b"\0" * 64, tmp_path / "b.npz")
    with pytest.raises(MotionFileError, match=r"declares shape \(1000000000, 24, 3\).*holds only"):
        mf.read_motion(tmp_path / "b.npz")


def test_budget_limits_members_even_when_the_sizes_agree(tmp_path, monkeypatch):
    path = tmp_path / "z.npz"
    np.savez_compressed(path, big=np.zeros(2**20, np.float32))  # 4 MiB inflated, a few KB on disk
    monkeypatch.setattr(npz_safe, "MAX_MEMBER_BYTES", 2**20)
    with pytest.raises(npz_safe.ArchiveError, match="over the reader's limit of 1 MiB"):
        npz_safe.read_members(str(path), lambda name: True)
    assert npz_safe.read_members(str(path), lambda name: False) == {}  # unknown: never inflated


def test_read_motion_parses_the_typed_header_once(tmp_path):
    path = tmp_path / "a.motion.npz"
    motion = make_motion(num_tracks=1, num_frames=5)
    motion.meta["world"] = {"world_from_camera": np.diag([1.0, -1.0, -1.0, 1.0]).tolist()}
    mf.write_motion(path, motion)
    got = mf.read_motion(path)
    h = got.header
    got.meta["video"] = {**got.meta["video"], "fps": 24.0}
    assert got.header.video.fps == 24.0  # always the header of the current meta
    assert (h.video.fps, h.video.frames, h.video.width, h.video.vfr) == (30.0, 8, 1280, False)
    assert (h.camera.focal_px, h.camera.cx, h.camera.height) == (1000.0, 640.0, 720)
    assert h.world.grounded and np.array_equal(h.world.world_from_camera, np.diag([1.0, -1.0, -1.0, 1.0]))
    assert (h.manifest.backend, h.manifest.precision, h.joints_set, len(h.joint_names)) == ("vibe", "fp32", "spin49", 49)
    assert "created" in h.raw and h.manifest.raw["engine_version"] == "test"


def test_an_ungrounded_file_gets_the_default_world(meta):
    from vibe_blender.core.frames import default_world_from_camera

    h = mh.parse_header(meta)
    assert not h.world.grounded and np.array_equal(h.world.world_from_camera, default_world_from_camera())
