"""The pipeline's one pass-2 loop and regress stage over the Backend protocol (vibe_engine/backend.py).

A recording backend on a generated frame stream: every track gets exactly its own frames in order,
progress counts observations, a track whose backend finds no pose is dropped with a warning, and a
stream that ends early is a VideoError. Both real backends implement every protocol member.
"""
from __future__ import annotations

import inspect
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vibe_engine import pipeline as PL
from vibe_engine.backend import Backend, RunContext
from vibe_engine.blazepose.engine_backend import BlazePoseEngineBackend
from vibe_engine.cancel import CancelToken
from vibe_engine.config import EngineConfig
from vibe_engine.errors import NoPersonError, VideoError
from vibe_engine.models.vibe_backend import VibeBackend
from vibe_engine.protocol import ProtocolWriter
from vibe_engine.decode.video import Frame

PROTOCOL_METHODS = ("start", "add_frame", "end_frame", "end_pass", "finish_track", "score_motion")
PROTOCOL_FIELDS = ("name", "body", "body_meta", "joints", "files")


class Recorder:
    """A backend that records its calls; ``finish_track`` drops the tracks in ``no_pose``."""

    name = "recorder"
    body = body_meta = joints = files = None

    def __init__(self, no_pose=()) -> None:
        self.seen: dict[int, list[tuple[int, int]]] = {}
        self.no_pose, self.done = set(no_pose), 0

    def start(self, tracks):
        self.seen = {t.id: [] for t in tracks}

    def add_frame(self, track, row, image):
        self.seen[track.id].append((row, int(image[0, 0, 0])))
        self.done += 1

    def end_frame(self):
        return self.done

    def end_pass(self):
        return self.done

    def finish_track(self, track, times):
        if track.id in self.no_pose:
            raise NoPersonError(f"track {track.id}: no pose")
        return SimpleNamespace(id=track.id, times=times[track.frames])

    def score_motion(self, motion):
        pass


def _frames(count: int):
    """Frames whose top-left pixel is their index (uint8)."""
    return [Frame(i, i / 30.0, np.full((4, 4, 3), i, np.uint8)) for i in range(count)]


def _ctx(tmp_path: Path) -> tuple[RunContext, io.StringIO]:
    text = io.StringIO()
    cfg = EngineConfig(video=tmp_path / "v.mp4", out=tmp_path / "o.motion.npz")
    return RunContext(cfg, ProtocolWriter(text), CancelToken()), text


def _tracks():
    return [SimpleNamespace(id=1, frames=np.arange(0, 6)), SimpleNamespace(id=2, frames=np.array([2, 3, 5, 7]))]


def test_every_track_gets_its_own_frames_in_order(tmp_path):
    ctx, _ = _ctx(tmp_path)
    backend = Recorder()
    PL.pose_pass(ctx, _frames(10), backend, _tracks())
    assert backend.seen == {1: [(r, r) for r in range(6)], 2: [(0, 2), (1, 3), (2, 5), (3, 7)]}
    assert "decode" in ctx.timings.seconds


def test_regress_drops_a_track_without_pose_with_a_warning(tmp_path):
    ctx, text = _ctx(tmp_path)
    backend = Recorder(no_pose={2})
    times = np.arange(10) / 30.0
    out = PL.regress(ctx, backend, _tracks(), times)
    assert [t.id for t in out] == [1] and np.allclose(out[0].times, np.arange(6) / 30.0)
    warnings = [json.loads(line) for line in text.getvalue().splitlines()]
    assert [(w["code"], w["message"]) for w in warnings if w["type"] == "warning"] == [
        ("NO_POSE_TRACK_DROPPED", "track 2: no pose")]
    with pytest.raises(NoPersonError, match="found no body pose in any tracked person"):
        PL.regress(ctx, Recorder(no_pose={1, 2}), _tracks(), times)


def test_a_second_pass_that_ends_early_is_a_video_error(tmp_path):
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(VideoError, match=r"ended early \(track 1: 4 of 6 frames\)"):
        PL.pose_pass(ctx, _frames(4), Recorder(), _tracks())


@pytest.mark.parametrize("cls", [VibeBackend, BlazePoseEngineBackend])
def test_both_backends_implement_the_protocol(cls):
    for name in PROTOCOL_METHODS:
        ours = list(inspect.signature(getattr(cls, name)).parameters)
        assert ours == list(inspect.signature(getattr(Backend, name)).parameters), name
    assert isinstance(cls.name, str) and callable(cls.load)
    assert set(PROTOCOL_FIELDS) <= set(Backend.__annotations__)
