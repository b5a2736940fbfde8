"""Motion file v1: round trip, atomic writing, and one clear error per kind of bad file."""
import json
import os
import zipfile

import numpy as np
import pytest

from tests.fixtures.motion import make_motion
from vibe_blender.core import motion_file as mf
from vibe_blender.core.errors import MotionFileError


@pytest.fixture()
def motion():
    return make_motion(num_tracks=2, num_frames=15, seed=3)


def test_round_trip_is_exact(tmp_path, motion):
    path = tmp_path / "a.motion.npz"
    motion.tracks[0].extra["contacts"] = np.zeros((15, 4), bool)
    mf.write_motion(path, motion)
    back = mf.read_motion(path)
    assert [t.id for t in back.tracks] == [1, 2]
    for a, b in zip(motion.tracks, back.tracks):
        for name, (_, dtype) in mf.TRACK_ARRAYS.items():
            got = getattr(b, name)
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, np.asarray(getattr(a, name), dtype=dtype))
    assert back.tracks[0].extra["contacts"].shape == (15, 4)
    np.testing.assert_array_equal(back.body.posedirs, motion.body.posedirs)
    assert back.meta["tracks"][1] == mf.track_summary(back.tracks[1])
    assert back.meta["video"]["fps"] == 30.0


def test_archive_has_no_pickles(tmp_path, motion):
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, motion)
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_summary_matches_tracks(tmp_path, motion):
    s = mf.summary(motion)
    assert s["video"]["width"] == 1280
    assert [(t["id"], t["frames"], t["first"], t["last"]) for t in s["tracks"]] == [(1, 15, 0, 14), (2, 15, 3, 17)]


def test_failed_write_leaves_nothing(tmp_path, motion):
    motion.tracks[0].pose[3, 5, 1] = np.nan
    path = tmp_path / "bad.motion.npz"
    with pytest.raises(MotionFileError, match="track 1 pose contains NaN"):
        mf.write_motion(path, motion)
    assert os.listdir(tmp_path) == []


def test_interrupted_write_removes_temp(tmp_path, motion, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        mf.write_motion(tmp_path / "x.motion.npz", motion)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.meta.update(format="other"), "not a vibe-mocap motion file"),
    (lambda m: m.meta.update(version=2), "version 2 is not supported"),
    (lambda m: setattr(m.tracks[0], "frames", m.tracks[0].frames[::-1].copy()), "not strictly increasing"),
    (lambda m: setattr(m.tracks[1], "pose", m.tracks[1].pose[:, :23]), "track 2 pose has shape"),
    (lambda m: setattr(m.tracks[1], "betas_track", np.zeros(3)), "betas_track has shape"),
    (lambda m: setattr(m.body, "parents", np.arange(-1, 23)[::-1].copy()), "kinematic tree"),
    (lambda m: setattr(m.tracks[1], "id", 1), "unique positive"),
])
def test_validate_names_the_problem(motion, mutate, message):
    mutate(motion)
    with pytest.raises(MotionFileError, match=message):
        mf.validate(motion)


def test_missing_file(tmp_path):
    with pytest.raises(MotionFileError, match="not found"):
        mf.read_motion(tmp_path / "nope.npz")


def test_truncated_file(tmp_path, motion):
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, motion)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MotionFileError, match="truncated or not a motion file"):
        mf.read_motion(path)


def test_foreign_npz_and_missing_member(tmp_path, motion):
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(MotionFileError, match="no 'meta' header"):
        mf.read_motion(tmp_path / "foreign.npz")
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, motion)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "cut.npz", "w") as dst:
        for item in src.infolist():
            if item.filename != "track/2/transl.npy":
                dst.writestr(item, src.read(item))
    with pytest.raises(MotionFileError, match="lacks 'track/2/transl'"):
        mf.read_motion(tmp_path / "cut.npz")


class _Boom:
    """Unpickling this would create ``marker`` (it must never happen)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_members_are_never_unpickled(tmp_path, motion):
    marker = tmp_path / "pwned"
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, motion)
    with zipfile.ZipFile(path, "a") as z, z.open("evil.npy", "w") as fh:  # unknown member: never read
        np.lib.format.write_array(fh, np.array([_Boom(marker)], dtype=object), allow_pickle=True)
    assert mf.read_motion(path).tracks[0].id == 1
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "b.npz", "w") as dst:
        for item in src.infolist():  # a known member replaced by a pickle: refused
            if item.filename != "track/1/pose.npy":
                dst.writestr(item, src.read(item))
        with dst.open("track/1/pose.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array([_Boom(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(MotionFileError, match="holds Python objects"):
        mf.read_motion(tmp_path / "b.npz")
    assert not marker.exists()


def test_cli_prints_summary(tmp_path, motion, capsys):
    path = tmp_path / "a.motion.npz"
    mf.write_motion(path, motion)
    assert mf.main([str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tracks"][0]["frames"] == 15
    assert mf.main([str(tmp_path / "missing.npz")]) == 4
