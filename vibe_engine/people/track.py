"""Multi-person tracker: Kalman filter + Hungarian assignment, gap interpolation, square boxes.

Interface (used by the pipeline)::

    tracker = Tracker(iou_threshold=0.3, max_age=30, min_hits=3)
    for frame in reader:
        tracker.update(frame.index, detector.detect(frame.image))   # (K, 5) [x1, y1, x2, y2, score]
    tracks = tracker.finish(min_frames=25)                          # list[Track], ids 1, 2, ...
    tracks = tracks_from_ids(boxes, ids, min_frames=25)             # user-given identities instead

* Each track has a constant-velocity Kalman filter on the box centre and size, state
  (cx, cy, w, h, vcx, vcy, vw, vh) in pixels and pixels per frame; noise scales with box height
  (as in DeepSORT). Frame indices may skip: prediction advances by the index difference.
* Association per frame: Hungarian assignment (``scipy.optimize.linear_sum_assignment``) on the
  cost 1 - IoU + d, where d = centre distance / mean box side, between the predicted boxes and
  the detections. A pair is allowed only if IoU >= iou_threshold or d <= centre_gate.
* Lifecycle: an unmatched detection starts a tentative track; it is confirmed after ``min_hits``
  consecutive matched frames and dropped if it misses before that. A confirmed track survives
  up to ``max_age`` frames without a match (occlusion, missed detections), so identities persist
  through crossings and short occlusions.
* ``finish``: a track spans its first to last *detected* frame. Its box at a detected frame is
  the detection made square (side = max(w, h), same centre: the box VIBE's demo crops); frames
  in between (missed) are linearly interpolated between those squares, with confidence 0 and
  ``detected`` False. Tracks spanning fewer than ``min_frames`` frames are dropped (25, like
  VIBE's demo). Ids are 1, 2, ... in order of first appearance (ties: left to right).
* Detector stride (the pipeline's ``--detect-every K``): frames the detector deliberately did
  not run on are reported with ``skip(frame)``. A frame between two consecutive detections of a
  track where every frame in between was skipped counts as detected, with its box and confidence
  linearly interpolated; a miss at a frame the detector ran on still gives ``detected`` False.
  Frames neither updated nor skipped count as frames with no detection (as before).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from vibe_engine.people.detect import iou_matrix

logger = logging.getLogger(__name__)

STD_POSITION = 1.0 / 20
"""Process/measurement noise of centre and size, as a fraction of the box height (per frame)."""
STD_VELOCITY = 1.0 / 160
"""Process noise of the velocities, as a fraction of the box height (per frame)."""
INFEASIBLE = 1e6
MIN_SIDE = 1.0
"""Smallest box side used in normalisations (pixels)."""


@dataclass(frozen=True)
class Track:
    """One person over time: frames (T,) int64 strictly increasing and contiguous; bbox (T, 4)
    float32 [cx, cy, w, h] square (w == h) in image pixels; confidence (T,) float32 detector
    score (0 where interpolated); detected (T,) bool."""

    id: int
    frames: np.ndarray
    bbox: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray


def track_summary(track: Track) -> dict:
    """Plain-Python summary of a track for logs and progress messages."""
    return {
        "id": int(track.id),
        "frames": int(len(track.frames)),
        "first": int(track.frames[0]),
        "last": int(track.frames[-1]),
        "mean_confidence": float(track.confidence[track.detected].mean()) if track.detected.any() else 0.0,
        "detected_fraction": float(track.detected.mean()),
    }


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) [x1, y1, x2, y2] -> (N, 4) [cx, cy, w, h]."""
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:4]) / 2, boxes[:, 2:4] - boxes[:, :2]], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) [cx, cy, w, h] -> (N, 4) [x1, y1, x2, y2]."""
    return np.concatenate([boxes[:, :2] - boxes[:, 2:4] / 2, boxes[:, :2] + boxes[:, 2:4] / 2], axis=1)


def iou_cxcywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) between boxes a (N, 4) and b (M, 4) given as [cx, cy, w, h]."""
    return iou_matrix(cxcywh_to_xyxy(a), cxcywh_to_xyxy(b))


def make_square(bbox: np.ndarray) -> np.ndarray:
    """(T, 4) [cx, cy, w, h] -> same centre, w = h = max(w, h) (VIBE's demo)."""
    side = np.maximum(bbox[:, 2], bbox[:, 3])
    return np.stack([bbox[:, 0], bbox[:, 1], side, side], axis=1)


class KalmanBox:
    """Constant-velocity Kalman filter on [cx, cy, w, h] (pixels; velocities per frame)."""

    def __init__(self, box: np.ndarray) -> None:
        self.x = np.concatenate([box, np.zeros(4)]).astype(np.float64)
        h = max(box[3], MIN_SIDE)
        std = np.r_[np.full(4, 2 * STD_POSITION * h), np.full(4, 10 * STD_VELOCITY * h)]
        self.P = np.diag(std ** 2)

    def predict(self, steps: int = 1) -> np.ndarray:
        """Advance ``steps`` frames; returns the predicted [cx, cy, w, h]."""
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * steps
        h = max(self.x[3], MIN_SIDE)
        q = np.r_[np.full(4, STD_POSITION * h), np.full(4, STD_VELOCITY * h)] ** 2 * steps
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], MIN_SIDE)
        self.P = F @ self.P @ F.T + np.diag(q)
        return self.x[:4].copy()

    def update(self, box: np.ndarray) -> None:
        """Correct with a measured [cx, cy, w, h]."""
        H = np.eye(4, 8)
        R = np.diag(np.full(4, STD_POSITION * max(box[3], MIN_SIDE)) ** 2)
        S = H @ self.P @ H.T + R
        K = self.P @ H.T @ np.linalg.inv(S)
        self.x = self.x + K @ (box - H @ self.x)
        self.P = (np.eye(8) - K @ H) @ self.P


@dataclass
class _Live:
    """A track being built: its filter and the detections it received."""

    serial: int
    kalman: KalmanBox | None
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    streak: int = 0
    confirmed: bool = False
    last_frame: int = -1
    predicted: np.ndarray | None = None

    def add(self, frame: int, box: np.ndarray, score: float) -> None:
        self.frames.append(frame)
        self.boxes.append(box)
        self.scores.append(score)
        self.last_frame = frame


class Tracker:
    """Online multi-person tracker; see the module docstring for the algorithm."""

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 30, min_hits: int = 3,
                 centre_gate: float = 0.5) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.min_hits = int(min_hits)
        self.centre_gate = float(centre_gate)
        self._live: list[_Live] = []
        self._done: list[_Live] = []
        self._serial = 0
        self._frame = -1
        self._skipped: list[int] = []

    def update(self, frame_index: int, dets: np.ndarray) -> None:
        """Feed the detections (K, 5) [x1, y1, x2, y2, score] of frame ``frame_index`` (pixels).

        Frame indices must increase; frames without a call count as frames with no detection."""
        if frame_index <= self._frame:
            raise ValueError(f"frame indices must increase: {frame_index} after {self._frame}")
        dets = np.asarray(dets, np.float64).reshape(-1, 5)
        boxes = xyxy_to_cxcywh(dets[:, :4])
        steps = frame_index - self._frame if self._frame >= 0 else 1
        self._frame = frame_index
        for live in self._live:
            live.predicted = live.kalman.predict(steps)
        matches, unmatched_tracks, unmatched_dets = self._associate(boxes)
        for t, d in matches:
            live = self._live[t]
            live.kalman.update(boxes[d])
            live.add(frame_index, boxes[d], float(dets[d, 4]))
            live.streak += 1
            live.confirmed = live.confirmed or live.streak >= self.min_hits
        for t in unmatched_tracks:
            self._live[t].streak = 0
        for d in unmatched_dets:
            self._start(frame_index, boxes[d], float(dets[d, 4]))
        self._retire()

    def skip(self, frame_index: int) -> None:
        """Record that the detector did not run on ``frame_index`` (stride; see the module doc)."""
        if frame_index <= self._frame:
            raise ValueError(f"frame indices must increase: {frame_index} after {self._frame}")
        self._skipped.append(int(frame_index))

    @property
    def settled(self) -> bool:
        """True when every live track is confirmed and was matched at the last update: the
        pipeline's detector stride may then skip frames (otherwise it detects every frame)."""
        return all(live.confirmed and live.last_frame == self._frame for live in self._live)

    def would_settle(self, frame_index: int, dets: np.ndarray) -> bool:
        """Whether ``update(frame_index, dets)`` would leave the tracker settled: every live track
        matched and confirmed, no new track. Changes nothing."""
        boxes = xyxy_to_cxcywh(np.asarray(dets, np.float64).reshape(-1, 5)[:, :4])
        steps = frame_index - self._frame if self._frame >= 0 else 1
        saved = [(live.kalman.x.copy(), live.kalman.P.copy(), live.predicted) for live in self._live]
        try:
            for live in self._live:
                live.predicted = live.kalman.predict(steps)
            _, unmatched_tracks, unmatched_dets = self._associate(boxes)
        finally:
            for live, (x, cov, predicted) in zip(self._live, saved):
                live.kalman.x, live.kalman.P, live.predicted = x, cov, predicted
        return not unmatched_tracks and not unmatched_dets and all(
            live.confirmed or live.streak + 1 >= self.min_hits for live in self._live)

    def _start(self, frame: int, box: np.ndarray, score: float) -> None:
        self._serial += 1
        live = _Live(serial=self._serial, kalman=KalmanBox(box), streak=1, confirmed=self.min_hits <= 1)
        live.add(frame, box, score)
        self._live.append(live)

    def _retire(self) -> None:
        """Drop tentative tracks that missed; move confirmed tracks unseen for > max_age frames."""
        keep = []
        for live in self._live:
            missed = self._frame - live.last_frame
            if missed == 0 or (live.confirmed and missed <= self.max_age):
                keep.append(live)
            elif live.confirmed:
                self._done.append(live)
        self._live = keep

    def _associate(self, boxes: np.ndarray) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Hungarian matching of predicted track boxes to detection boxes ([cx, cy, w, h])."""
        n_tracks, n_dets = len(self._live), len(boxes)
        if n_tracks == 0 or n_dets == 0:
            return [], list(range(n_tracks)), list(range(n_dets))
        predicted = np.stack([live.predicted for live in self._live])
        iou = iou_cxcywh(predicted, boxes)
        size = np.maximum(predicted[:, None, 2:4].mean(-1), boxes[None, :, 2:4].mean(-1))
        gap = np.linalg.norm(predicted[:, None, :2] - boxes[None, :, :2], axis=-1)
        dist = gap / np.maximum(size, MIN_SIDE)
        allowed = (iou >= self.iou_threshold) | (dist <= self.centre_gate)
        cost = np.where(allowed, 1.0 - iou + dist, INFEASIBLE)
        if min(n_tracks, n_dets) == 1:  # one row or column: the optimum is its cheapest entry
            k = int(np.argmin(cost.ravel()))  # (one person needs no SciPy import in the first frames)
            rows, cols = ([0], [k]) if n_tracks == 1 else ([k], [0])
        else:
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(cost)
        matches = [(r, c) for r, c in zip(rows, cols) if allowed[r, c]]
        matched_t, matched_d = {r for r, _ in matches}, {c for _, c in matches}
        return (matches, [t for t in range(n_tracks) if t not in matched_t],
                [d for d in range(n_dets) if d not in matched_d])

    def finish(self, min_frames: int = 25) -> list[Track]:
        """End tracking: interpolate gaps, drop tracks spanning < min_frames frames, number ids."""
        finished = self._done + [live for live in self._live if live.confirmed]
        skipped, self._skipped = np.asarray(self._skipped, np.int64), []
        self._live, self._done = [], []
        tracks = _finalise(finished, min_frames, skipped)
        logger.info("tracker: %d tracks of >= %d frames", len(tracks), min_frames)
        return tracks


def tracks_from_ids(boxes: dict[int, np.ndarray], ids: dict[int, np.ndarray],
                    min_frames: int = 25) -> list[Track]:
    """Tracks from user-given identities (``vibe_engine.people.boxes.load_boxes_with_ids``), no tracker.

    boxes: {frame: (K, 5) [x1, y1, x2, y2, score]}, ids: {frame: (K,) int}. Each id becomes one
    track, finished exactly like the tracker's (square boxes, gaps interpolated, < min_frames
    dropped, renumbered 1.. by first appearance)."""
    people: dict[int, _Live] = {}
    for frame in sorted(boxes):
        rows = np.asarray(boxes[frame], np.float64).reshape(-1, 5)
        cxcywh = xyxy_to_cxcywh(rows[:, :4])
        for row, box, tid in zip(rows, cxcywh, np.asarray(ids[frame]).ravel()):
            live = people.setdefault(int(tid), _Live(serial=int(tid), kalman=None))
            live.add(int(frame), box, float(row[4]))
    return _finalise(list(people.values()), min_frames)


def _finalise(lives: list[_Live], min_frames: int, skipped: np.ndarray | None = None) -> list[Track]:
    """Build, filter (>= min_frames) and number (1.., by first frame then x) finished tracks.

    skipped: sorted (S,) int64 frames the detector deliberately did not run on (None: none)."""
    tracks = [t for t in (_to_track(live, skipped) for live in lives) if len(t.frames) >= min_frames]
    tracks.sort(key=lambda t: (int(t.frames[0]), float(t.bbox[0, 0])))
    return [Track(i + 1, t.frames, t.bbox, t.confidence, t.detected) for i, t in enumerate(tracks)]


def _to_track(live: _Live, skipped: np.ndarray | None = None) -> Track:
    """Contiguous frames first..last; detected boxes as measured, gaps linearly interpolated.

    Frames between two consecutive detections with only skipped frames in between (detector
    stride) count as detected, with the linearly interpolated confidence."""
    seen = np.asarray(live.frames, np.int64)
    frames = np.arange(seen[0], seen[-1] + 1, dtype=np.int64)
    boxes = make_square(np.asarray(live.boxes, np.float64))
    bbox = np.stack([np.interp(frames, seen, boxes[:, k]) for k in range(4)], axis=1)
    detected = np.isin(frames, seen)
    scores = np.asarray(live.scores, np.float64)
    confidence = np.zeros(len(frames), np.float32)
    confidence[detected] = scores
    if skipped is not None and len(skipped) and len(seen) > 1:
        filled = ~detected & _only_skipped_between(frames, seen, skipped)
        confidence[filled] = np.interp(frames[filled], seen, scores)
        detected = detected | filled
    return Track(0, frames, bbox.astype(np.float32), confidence, detected)


def _only_skipped_between(frames: np.ndarray, seen: np.ndarray, skipped: np.ndarray) -> np.ndarray:
    """(T,) bool: frames (T,) whose surrounding pair of detections (seen (D,), sorted) has only
    skipped frames (sorted (S,)) strictly between them."""
    first, last = seen[:-1], seen[1:]
    inside = np.searchsorted(skipped, last, "left") - np.searchsorted(skipped, first, "right")
    pair = np.clip(np.searchsorted(seen, frames, "right") - 1, 0, len(first) - 1)
    return inside[pair] == (last - first - 1)[pair]
