"""Detector stride (``--detect-every``) on the real demo clip: same people, same identities and
nearly the same boxes as running the detector on every frame, with far fewer detector runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.engine.test_track import MAN, MAN_VISIBLE, WOMAN, WOMAN_VISIBLE
from tests.fixtures import media
from vibe_engine.config import EngineConfig
from vibe_engine.people.detect import iou_matrix
from vibe_engine.pipeline import PersonSource, Timings
from vibe_engine.people.track import cxcywh_to_xyxy

#: Box agreement with the every-frame tracks: mean IoU over the common frames.
MIN_MEAN_IOU = 0.9


class RecordedSource(PersonSource):
    """The real PersonSource fed with the real detector's recorded output for the demo clip
    (media.demo_detections), so several strides cost no extra detector runs."""

    def __init__(self, every: int) -> None:
        super().__init__(EngineConfig(video=Path("demo.mp4"), out=Path("out.motion.npz")))
        self.every = every
        self.recorded = dict(media.demo_detections())
        self.runs: list[int] = []

    def detect(self, index: int, image: np.ndarray) -> np.ndarray:
        self.runs.append(index)
        return self.recorded[index]


def _tracks(every: int) -> tuple[list, list[int]]:
    source = RecordedSource(every)
    timings = Timings()
    for index in sorted(source.recorded):
        source.step(index, np.zeros((1, 1, 3), np.uint8), timings)
    source.flush(timings)
    return source.tracker.finish(25), source.runs


@pytest.fixture(scope="module")
def every_frame():
    return _tracks(1)


def _mean_iou(a, b) -> tuple[float, float]:
    """Mean IoU of two tracks' boxes over their common frames, and that share of a's frames."""
    common = np.intersect1d(a.frames, b.frames)
    ia, ib = np.searchsorted(a.frames, common), np.searchsorted(b.frames, common)
    iou = np.diag(iou_matrix(cxcywh_to_xyxy(a.bbox[ia].astype(float)), cxcywh_to_xyxy(b.bbox[ib].astype(float))))
    return float(iou.mean()), len(common) / len(a.frames)


@pytest.mark.parametrize("every", [5, 10, 15])  # the VIBE default, the old and the new BlazePose default
def test_stride_keeps_people_identities_and_boxes(every_frame, every):
    base, base_runs = every_frame
    tracks, runs = _tracks(every)
    # the man is missed in a quarter of the frames (the detector then runs on every frame)
    assert len(base_runs) == 230 and len(runs) < 0.65 * len(base_runs)
    assert runs[0] == 0 and runs[-1] == 229  # first and last frames always detected
    assert [t.id for t in tracks] == [t.id for t in base] == [1, 2]
    for track, ref, points, visible in zip(tracks, base, (MAN, WOMAN), (MAN_VISIBLE, WOMAN_VISIBLE)):
        for frame, (x, y) in points.items():
            i = np.searchsorted(track.frames, frame)
            cx, cy, w, h = track.bbox[i]
            assert abs(x - cx) <= w / 2 and abs(y - cy) <= h / 2, (track.id, frame)
        assert np.isin(np.asarray(visible), track.frames).mean() >= 0.9
        mean_iou, common = _mean_iou(ref, track)
        assert mean_iou >= MIN_MEAN_IOU, (track.id, mean_iou)
        assert np.array_equal(track.frames, ref.frames)  # held frames are detected at events
        # skipped frames between two detections count as detected: about as many as every frame
        assert track.detected.mean() >= ref.detected.mean() - 0.05


def test_stride_one_runs_the_detector_on_every_frame_like_before(every_frame):
    from vibe_engine.people.track import Tracker

    base, _ = every_frame
    tracker = Tracker()
    for index, dets in media.demo_detections():
        tracker.update(index, dets)
    for a, b in zip(tracker.finish(25), base, strict=True):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.bbox, b.bbox)
        assert np.array_equal(a.detected, b.detected)
