"""The overlapped default path (decode thread with the camera-motion tracker, two landmark workers
for several people: ``VIBE_ENGINE_LANDMARK_WORKERS=2``) against the sequential reference (``VIBE_ENGINE_OVERLAP=0``): the same motion
file bit for bit, cancel and errors as before. Real engine runs on clips cut from the demo video
(BlazePose backend, shipped models); no timing is asserted."""
from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import media
from vibe_blender.core import motion_file as mf
from vibe_engine import config, pipeline
from vibe_engine.blazepose.engine_backend import LANDMARK_WORKERS_ENV
from vibe_engine.cancel import CancelToken
from vibe_engine.cli import build_parser, make_config
from vibe_engine.errors import CancelledError, VideoError
from vibe_engine.protocol import ProtocolWriter
from vibe_engine.world import camera_motion

#: Demo frames with both people in view (the woman enters at frame 40), at 1/SCALE size.
MULTI_FIRST, MULTI_FRAMES, SCALE = 60, 24, 2
#: Threads the overlapped run starts (``Prefetcher``, ``BlazePoseEngineBackend``).
RUN_THREADS = ("video-prefetch", "vibe-landmarks")


@pytest.fixture(scope="module")
def two_people(tmp_path_factory) -> Path:
    """Demo frames MULTI_FIRST.. at half size: two people walking, a panning background."""
    frames = media.demo_frames(MULTI_FRAMES, SCALE, first=MULTI_FIRST)
    return media.write_cv2_clip(tmp_path_factory.mktemp("overlap") / "two.mp4", frames)


def _run(video: Path, out: Path, overlap: bool, monkeypatch, token: CancelToken | None = None,
         *options: str) -> pipeline.RunResult:
    """One in-process run of the default backend, overlapped or sequential."""
    monkeypatch.setenv(config.OVERLAP_ENV, "1" if overlap else "0")
    monkeypatch.setenv(LANDMARK_WORKERS_ENV, "2")  # ignored when not overlapped
    args = build_parser().parse_args(["run", str(video), "--out", str(out), "--min-frames", "5", *options])
    return pipeline.run_pipeline(make_config(args), ProtocolWriter(io.StringIO()), token or CancelToken())


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of a motion file (tracks, body, the camera/world meta), by name."""
    motion = mf.read_motion(path)
    out = {f"body.{k}": np.asarray(v) for k, v in vars(motion.body).items() if v is not None}
    for t in motion.tracks:
        for k, v in vars(t).items():
            if isinstance(v, dict):
                out.update({f"{t.id}.extra.{kk}": np.asarray(vv) for kk, vv in v.items()})
            elif v is not None:
                out[f"{t.id}.{k}"] = np.asarray(v)
    for section in ("camera", "world", "video"):
        out.update({f"meta.{section}.{k}": np.asarray(v, dtype=object) for k, v in motion.meta[section].items()})
    return out


def _no_run_threads() -> bool:
    return not any(t.name.startswith(RUN_THREADS) and t.is_alive() for t in threading.enumerate())


def test_overlapped_and_sequential_runs_write_the_same_motion_file(two_people, tmp_path, monkeypatch):
    on = _run(two_people, tmp_path / "on.motion.npz", True, monkeypatch)
    off = _run(two_people, tmp_path / "off.motion.npz", False, monkeypatch)
    assert len(on.people) == 2 and on.people == off.people  # two people: the landmark workers ran
    assert "camera_motion" in on.timings  # the camera tracker ran (in the decode thread)
    got, ref = _arrays(on.path), _arrays(off.path)
    assert sorted(got) == sorted(ref)
    for name in ref:
        same = (np.array_equal(got[name], ref[name], equal_nan=True) if ref[name].dtype != object
                else repr(got[name].tolist()) == repr(ref[name].tolist()))
        assert same, name
    assert _no_run_threads()


def test_one_interpreter_thread_or_two_give_the_same_landmarks(two_people):
    """Why the workers' one-thread interpreters may replace the main two-thread one."""
    import cv2

    from vibe_engine.blazepose.landmarks import LandmarkModel, roi_from_bbox

    cap = cv2.VideoCapture(str(two_people))
    ok, bgr = cap.read()
    cap.release()
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    roi = roi_from_bbox(np.array([image.shape[1] / 2, image.shape[0] / 2, 200.0, 400.0]))
    one, two = LandmarkModel("full", num_threads=1), LandmarkModel("full", num_threads=2)
    tensor = one.crop(image, roi)
    for a, b in zip(one.infer(tensor), two.infer(tensor)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("stage", ["detect", "features"])
def test_cancel_while_frames_are_decoded_ahead_leaves_nothing(stage, two_people, tmp_path, monkeypatch):
    """The first check of the stage cancels (the decode thread is frames ahead by then): the run
    raises CancelledError (exit 3 in the CLI), writes no file and leaves no thread running."""
    token = CancelToken(pause_at=stage, announce=lambda _stage: token.cancel("test"), pause_s=0.0)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(CancelledError, match=f"cancelled during {stage}"):
        _run(two_people, out_dir / "c.motion.npz", True, monkeypatch, token)
    assert list(out_dir.iterdir()) == [] and _no_run_threads()
    assert CancelledError.exit_code == 3


def test_an_error_in_the_decode_thread_is_raised_as_before(two_people, tmp_path, monkeypatch):
    """A camera-tracker failure inside the decode thread reaches the caller as the same exception
    as in the sequential run (the CLI maps it to the same code); no file, no thread left."""
    calls = {"n": 0}
    original = camera_motion.CameraTracker.add

    def failing(self, index, image):
        calls["n"] += 1
        if index == 3:
            raise ValueError("camera tracker broke at frame 3")
        return original(self, index, image)

    monkeypatch.setattr(camera_motion.CameraTracker, "add", failing)
    errors = []
    for overlap in (True, False):
        with pytest.raises(ValueError) as info:
            _run(two_people, tmp_path / f"e{overlap}.motion.npz", overlap, monkeypatch)
        errors.append((type(info.value), str(info.value)))
        assert not (tmp_path / f"e{overlap}.motion.npz").exists() and _no_run_threads()
    assert errors[0] == errors[1] == (ValueError, "camera tracker broke at frame 3")
    assert calls["n"] == 2 * 4  # frames 0..3 each time: the thread stopped at the error


def test_a_video_without_frames_fails_with_the_same_error_either_way(tmp_path, monkeypatch):
    """Decoding fails inside the decode thread (header, no frame data): VideoError (exit 4,
    VIDEO_UNREADABLE) with the same one-line message overlapped or not."""
    frames = [media.pattern_frame(i) for i in range(10)]
    clip = media.write_cv2_clip(tmp_path / "ok.mp4", frames)
    fast = media.make_faststart_copy(clip, tmp_path / "fast.mp4")
    cut = media.truncate_copy(fast, tmp_path / "header_only.mp4", media.mp4_data_offset(fast))
    messages = []
    for overlap in (True, False):
        with pytest.raises(VideoError) as info:
            _run(cut, tmp_path / f"v{overlap}.motion.npz", overlap, monkeypatch)
        messages.append(str(info.value))
        assert info.value.code == "VIDEO_UNREADABLE" and info.value.exit_code == 4
    assert messages[0] == messages[1] and _no_run_threads()
