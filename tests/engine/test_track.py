"""vibe_engine.people.track: identities through crossings and occlusions, exact interpolation, real clip."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures import media
from vibe_engine.people.track import (INFEASIBLE, KalmanBox, Tracker, iou_cxcywh, make_square, track_summary,
                                      tracks_from_ids)

# Manual annotation of the demo clip (see test_detect.py): torso points and visible frame ranges.
MAN = {10: (650, 260), 50: (640, 250), 80: (640, 260), 130: (760, 230), 195: (1110, 790), 210: (1260, 760)}
WOMAN = {50: (1490, 740), 80: (1230, 700), 130: (730, 740), 195: (50, 700)}
MAN_VISIBLE = range(0, 226)     # on the roof, mid-air, then running off to the right
WOMAN_VISIBLE = range(40, 198)  # enters from behind the tree, leaves at the left edge


def _box(cx: float, cy: float, w: float, h: float, score: float = 0.9) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score]


def _crossing(occluded: range) -> list[np.ndarray]:
    """A walks right (+8 px/frame), B walks left (-8 px/frame) 30 px lower; they cross at
    frame 25. During ``occluded`` only B (in front) is detected."""
    frames = []
    for f in range(50):
        a = _box(100 + 8 * f, 300, 90, 200, 0.9)
        b = _box(500 - 8 * f, 330, 100, 220, 0.8)
        frames.append(np.array([b] if f in occluded else [a, b], np.float32))
    return frames


def _run(frames: list[np.ndarray], min_frames: int = 25) -> list:
    tracker = Tracker(max_age=30)
    for i, dets in enumerate(frames):
        tracker.update(i, dets)
    return tracker.finish(min_frames=min_frames)


def test_crossing_with_occlusion_keeps_identities_and_interpolates_exactly():
    occluded = range(23, 28)  # 5 frames, right through the crossing
    tracks = _run(_crossing(occluded))
    assert [t.id for t in tracks] == [1, 2]
    a, b = sorted(tracks, key=lambda t: t.bbox[0, 0])  # A starts on the left
    for track, start, step, side in ((a, 100, 8, 200), (b, 500, -8, 220)):
        np.testing.assert_array_equal(track.frames, np.arange(50))
        np.testing.assert_allclose(track.bbox[:, 0], start + step * np.arange(50), atol=1e-3)
        np.testing.assert_allclose(track.bbox[:, 2:], side)  # square: side = max(w, h)
    # A's occluded frames are interpolated between frames 22 and 28, which is exact here.
    np.testing.assert_array_equal(a.detected, ~np.isin(np.arange(50), list(occluded)))
    assert np.all(a.confidence[list(occluded)] == 0) and np.all(a.confidence[a.detected] == np.float32(0.9))
    assert b.detected.all() and np.all(b.confidence == np.float32(0.8))
    assert track_summary(a) == {"id": a.id, "frames": 50, "first": 0, "last": 49,
                                "mean_confidence": pytest.approx(0.9), "detected_fraction": 0.9}


def test_interpolation_is_linear_between_the_square_boxes():
    frames = [np.zeros((0, 5), np.float32)] * 40
    for f in range(0, 10):
        frames[f] = np.array([_box(100, 100, 50, 80)], np.float32)
    for f in range(16, 40):
        frames[f] = np.array([_box(130, 110, 70, 60)], np.float32)  # moved during the 6-frame gap
    (track,) = _run(frames)
    np.testing.assert_array_equal(track.frames, np.arange(40))
    w = (np.arange(10, 16) - 9) / 7  # weights between frame 9 and frame 16
    expected = (1 - w)[:, None] * [100, 100, 80, 80] + w[:, None] * [130, 110, 70, 70]
    np.testing.assert_allclose(track.bbox[10:16], expected, rtol=1e-6)
    assert not track.detected[10:16].any() and track.detected[:10].all() and track.detected[16:].all()


def test_short_tracks_and_single_false_positives_are_dropped():
    frames = [np.array([_box(300, 300, 100, 200)], np.float32) for _ in range(40)]
    for f in range(5, 15):  # a second person for 10 frames only
        frames[f] = np.concatenate([frames[f], [_box(900, 300, 100, 200)]]).astype(np.float32)
    frames[20] = np.concatenate([frames[20], [_box(600, 600, 50, 50)]]).astype(np.float32)  # 1-frame blip
    assert [len(t.frames) for t in _run(frames)] == [40]
    tracks = _run(frames, min_frames=5)
    assert [(int(t.frames[0]), len(t.frames)) for t in tracks] == [(0, 40), (5, 10)]


def test_ids_follow_first_appearance_and_frames_may_skip():
    tracker = Tracker()
    for f in range(0, 60, 2):  # detector run on every other frame
        dets = [_box(800, 300, 100, 200)] + ([_box(200, 300, 100, 200)] if f >= 10 else [])
        tracker.update(f, np.array(dets, np.float32))
    tracks = tracker.finish(min_frames=25)
    assert [(t.id, int(t.frames[0]), float(t.bbox[0, 0])) for t in tracks] == [(1, 0, 800.0), (2, 10, 200.0)]
    assert np.array_equal(tracks[0].frames, np.arange(0, 59))
    assert tracks[0].detected.sum() == 30 and not tracks[0].detected[1::2].any()


def test_tracks_from_user_ids_keep_the_given_identities():
    boxes, ids = {}, {}
    for f in range(30):  # ids 9 and 4 swap places half-way: the user's identities are kept
        left, right = _box(100 + 10 * f, 200, 80, 160), _box(400 - 10 * f, 200, 80, 160)
        if f in (10, 11, 12):  # person 9 not given on three frames
            boxes[f], ids[f] = np.array([right], np.float32), np.array([4])
        else:
            boxes[f], ids[f] = np.array([left, right], np.float32), np.array([9, 4])
    boxes[40], ids[40] = np.array([_box(50, 50, 10, 10)], np.float32), np.array([5])  # too short
    first, second = tracks_from_ids(boxes, ids, min_frames=25)
    assert (first.id, float(first.bbox[0, 0])) == (1, 100.0)
    assert (second.id, float(second.bbox[0, 0])) == (2, 400.0)
    np.testing.assert_allclose(first.bbox[:, 0], 100 + 10 * np.arange(30))  # gap interpolated
    assert first.detected.sum() == 27 and np.all(first.bbox[:, 2] == 160)


def test_frame_indices_must_increase():
    tracker = Tracker()
    tracker.update(3, np.zeros((0, 5)))
    with pytest.raises(ValueError, match="must increase"):
        tracker.update(3, np.zeros((0, 5)))


def test_kalman_predicts_constant_velocity():
    kf = KalmanBox(np.array([0.0, 0.0, 50.0, 100.0]))
    for f in range(1, 20):
        kf.predict()
        kf.update(np.array([5.0 * f, -2.0 * f, 50.0, 100.0]))
    np.testing.assert_allclose(kf.predict(steps=3), [5.0 * 22, -2.0 * 22, 50, 100], atol=0.5)


def test_make_square_keeps_the_centre():
    np.testing.assert_allclose(make_square(np.array([[10, 20, 30, 60.0]])), [[10, 20, 60, 60]])


def _contains(track, frame: int, point: tuple[int, int]) -> bool:
    i = np.searchsorted(track.frames, frame)
    if i >= len(track.frames) or track.frames[i] != frame:
        return False
    cx, cy, w, h = track.bbox[i]
    return abs(point[0] - cx) <= w / 2 and abs(point[1] - cy) <= h / 2


def test_real_clip_two_people_tracked_with_stable_ids():
    tracker = Tracker()
    for frame, dets in media.demo_detections():
        tracker.update(frame, dets)
    tracks = tracker.finish(min_frames=25)
    assert [t.id for t in tracks] == [1, 2]
    man, woman = tracks  # the man is on screen from frame 0, the woman enters later
    for track, points in ((man, MAN), (woman, WOMAN)):
        for frame, point in points.items():
            assert _contains(track, frame, point), (track.id, frame)
    for track, visible in ((man, MAN_VISIBLE), (woman, WOMAN_VISIBLE)):
        covered = np.isin(np.asarray(visible), track.frames).mean()
        assert covered >= 0.9, (track.id, covered)
        assert np.all(np.diff(track.frames) == 1) and track.bbox.dtype == np.float32


def test_skipped_frames_between_detections_count_as_detected_with_interpolated_confidence():
    tracker = Tracker()
    for f in range(30):
        if f % 5 and f != 29:  # stride 5: the detector ran on 0, 5, ..., 25 and on the last frame
            tracker.skip(f)
        elif f != 15:  # a real miss at frame 15
            tracker.update(f, np.array([_box(100 + 2 * f, 300, 100, 200, 0.5 + f / 100)], np.float32))
        else:
            tracker.update(f, np.zeros((0, 5), np.float32))
    (track,) = tracker.finish(min_frames=25)
    assert np.array_equal(track.frames, np.arange(30))
    # frames 11..19 lie between detections 10 and 20 with an examined miss (15): not detected
    assert np.array_equal(np.flatnonzero(~track.detected), np.arange(11, 20))
    assert track.confidence[7] == pytest.approx(0.57, abs=1e-6)  # interpolated 0.55 -> 0.60
    assert track.bbox[7, 0] == pytest.approx(114.0, abs=1e-4)
    assert np.all(track.confidence[11:20] == 0)


def test_settled_means_every_live_track_confirmed_and_just_matched():
    tracker = Tracker(min_hits=2)
    assert tracker.settled
    tracker.update(0, np.array([_box(100, 100, 50, 100)], np.float32))
    assert not tracker.settled  # tentative
    tracker.update(1, np.array([_box(102, 100, 50, 100)], np.float32))
    assert tracker.settled
    tracker.update(2, np.zeros((0, 5), np.float32))
    assert not tracker.settled  # coasting
    with pytest.raises(ValueError):
        tracker.skip(2)


@pytest.mark.parametrize("tracks, dets", [(1, 1), (1, 4), (3, 1)])
def test_one_row_or_column_assignment_equals_the_hungarian_solve(tracks, dets):
    """``_associate`` skips SciPy for a single track or detection; the matches are the same."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(tracks * 10 + dets)
    tracker = Tracker()
    for k in range(tracks):
        tracker._start(0, np.array([100.0 + 60 * k, 200, 50, 120]), 0.9)
    for live in tracker._live:
        live.predicted = live.kalman.predict()
    for _ in range(20):
        boxes = np.column_stack([rng.uniform(80, 300, dets), rng.uniform(150, 250, dets),
                                 rng.uniform(40, 60, dets), rng.uniform(100, 140, dets)])
        matches, lost, new = tracker._associate(boxes)
        predicted = np.stack([live.predicted for live in tracker._live])
        iou = iou_cxcywh(predicted, boxes)
        size = np.maximum(predicted[:, None, 2:4].mean(-1), boxes[None, :, 2:4].mean(-1))
        dist = np.linalg.norm(predicted[:, None, :2] - boxes[None, :, :2], axis=-1) / size
        allowed = (iou >= tracker.iou_threshold) | (dist <= tracker.centre_gate)
        rows, cols = linear_sum_assignment(np.where(allowed, 1.0 - iou + dist, INFEASIBLE))
        assert matches == [(r, c) for r, c in zip(rows, cols) if allowed[r, c]]
        assert sorted(lost + [r for r, _ in matches]) == list(range(tracks))
        assert sorted(new + [c for _, c in matches]) == list(range(dets))
