"""vibe_engine.people.detect: MediaPipe's anchors/decoding/NMS facts, and both people on the real clip."""
from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures import media
from vibe_engine.people import detect
from vibe_engine.errors import ModelError

# Hand annotation of the demo clip (full-resolution pixels, a point on each visible person's
# torso), read off frames drawn with a 100 px grid. Frame 195: the woman is half out of frame.
ANNOTATED = {
    10: [(650, 260)],                  # man on the roof of the hut, arms out
    50: [(640, 250), (1490, 740)],     # man; woman entering from behind the tree
    80: [(640, 260), (1230, 700)],
    195: [(50, 700), (1110, 790)],     # woman leaving at the left edge; man crouching on the grass
    210: [(1260, 760)],                # man running; the woman has left
}
BOTH_CLEARLY_VISIBLE = range(40, 101)  # by the same inspection: man on the roof, woman walking


@pytest.fixture(scope="module")
def detections() -> dict[int, np.ndarray]:
    return dict(media.demo_detections())


@pytest.fixture(scope="module")
def detector() -> detect.PersonDetector:
    return detect.PersonDetector()


def test_anchors_match_the_ssd_anchor_options():
    anchors = detect.generate_anchors()
    assert anchors.shape == (2254, 2) == (detect.NUM_ANCHORS, 2)
    # stride 8: 28 x 28 cells x 2 anchors, row-major (y, x, anchor)
    np.testing.assert_allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[1], anchors[0])
    np.testing.assert_allclose(anchors[2], [1.5 / 28, 0.5 / 28])
    np.testing.assert_allclose(anchors[2 * 28], [0.5 / 28, 1.5 / 28])
    np.testing.assert_allclose(anchors[1568], [0.5 / 14, 0.5 / 14])  # stride 16 starts
    np.testing.assert_allclose(anchors[1568 + 392], [0.5 / 7, 0.5 / 7])  # the three stride-32 layers
    np.testing.assert_allclose(anchors[1568 + 392: 1568 + 392 + 6], np.tile([[0.5 / 7, 0.5 / 7]], (6, 1)))
    np.testing.assert_allclose(anchors[-1], [6.5 / 7, 6.5 / 7])


def test_decode_offsets_are_input_pixels_added_to_the_anchor():
    anchors = detect.generate_anchors()
    raw = np.zeros((2254, 12), np.float32)
    logits = np.full(2254, -200.0, np.float32)  # clipped to -100 before the sigmoid
    raw[100] = [22.4, -11.2, 44.8, 22.4, 0, 0, 11.2, 22.4, 0, 0, 0, 0]
    logits[100] = 0.0
    boxes, kps, scores = detect.decode(raw, logits, anchors, score_threshold=0.5)
    ax, ay = anchors[100]
    np.testing.assert_allclose(boxes[0], [ax + 0.1 - 0.1, ay - 0.05 - 0.05, ax + 0.1 + 0.1, ay - 0.05 + 0.05],
                               atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [ax, ay], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], [ax + 0.05, ay + 0.1], atol=1e-6)
    assert scores.tolist() == [0.5]


def test_weighted_nms_averages_a_cluster_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.repeat(boxes[:, None, :2], 4, axis=1)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    out_boxes, out_kps, out_scores = detect.weighted_nms(boxes, kps, scores)
    np.testing.assert_allclose(out_boxes[0], [0.4, 0, 10.4, 10], atol=1e-6)  # (0.9*0 + 0.6*1) / 1.5
    np.testing.assert_allclose(out_kps[0, 0], [0.4, 0], atol=1e-6)
    np.testing.assert_allclose(out_boxes[1], boxes[2])
    np.testing.assert_allclose(out_scores, [0.9, 0.7])


def test_letterbox_maps_pixels_as_documented():
    image = np.zeros((50, 100, 3), np.uint8)
    image[20:30, 40:60] = 255
    tensor, scale, pad = detect.letterbox(image)
    assert tensor.shape == (224, 224, 3) and tensor.min() == -1.0
    assert scale == pytest.approx(2.24) and pad == pytest.approx([0.0, 56.0])
    weight = (tensor[..., 0] + 1) / 2
    ys, xs = np.mgrid[:224, :224] + 0.5  # continuous pixel centres
    centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
    np.testing.assert_allclose(centroid, scale * np.array([50.0, 25.0]) + pad, atol=0.05)


def test_tile_grid_covers_wide_tall_and_square_images():
    assert detect.tile_grid(994, 1768) == [(0, 0, 994), (387, 0, 994), (774, 0, 994)]
    assert detect.tile_grid(1920, 1080) == [(0, 0, 1080), (0, 420, 1080), (0, 840, 1080)]
    assert detect.tile_grid(900, 1000) == [(0, 0, 1000)]


def test_body_box_is_the_square_around_the_body_circle():
    kps = np.array([[[100, 200], [100, 120], [0, 0], [0, 0]]], np.float32)  # radius 80
    np.testing.assert_allclose(detect.body_boxes(kps), [[20, 120, 180, 280]])
    np.testing.assert_allclose(detect.body_boxes(kps, 1.25), [[0, 100, 200, 300]])


def test_annotated_people_are_found(detections):
    for frame, people in ANNOTATED.items():
        boxes = detections[frame]
        assert len(boxes) == len(people), frame
        for x, y in people:
            inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
            assert inside.sum() == 1, (frame, x, y)
        assert np.all(boxes[:, 4] >= 0.5) and np.all(np.diff(boxes[:, 4]) <= 0)


def test_both_people_in_most_frames_where_both_are_clearly_visible(detections):
    counts = np.array([len(detections[i]) for i in BOTH_CLEARLY_VISIBLE])
    assert np.mean(counts == 2) >= 0.9


# Frame 80, read off a 50 px grid at full resolution: head top, both feet, both hands.
EXTREMITIES_80 = {
    "man": [(635, 98), (600, 450), (670, 450), (575, 330), (690, 330)],
    "woman": [(1225, 532), (1115, 915), (1310, 920), (1105, 710), (1345, 745)],
}


def test_boxes_are_square_and_enclose_whole_bodies(detections):
    boxes = np.concatenate([detections[i] for i in BOTH_CLEARLY_VISIBLE])
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], rtol=1e-5)
    for points in EXTREMITIES_80.values():
        pts = np.array(points, np.float32)
        inside = [np.all((b[0] <= pts[:, 0]) & (pts[:, 0] <= b[2]) & (b[1] <= pts[:, 1]) & (pts[:, 1] <= b[3]))
                  for b in detections[80]]
        assert sum(inside) == 1


def test_nobody_in_empty_images(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)).shape == (0, 5)
    rng = np.random.default_rng(0)
    assert len(detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))) == 0
    with media.open_demo_frame(0) as image:  # the hut and the grass below the man
        assert len(detector.detect(np.ascontiguousarray(image[400:, :700]))) == 0


def test_bad_model_paths(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        detect.PersonDetector(tmp_path / "missing.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="cannot load person detector"):
        detect.PersonDetector(bad)
