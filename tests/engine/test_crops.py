"""vibe_engine.models.crops: VIBE's crop geometry, an independent bilinear check, normalisation."""
from __future__ import annotations

import numpy as np
import pytest

from vibe_engine.models import crops


def _numpy_bilinear_crop(image: np.ndarray, cx: float, cy: float, side: float, scale: float = 1.1,
                         size: int = 224, subpixel: int | None = None) -> np.ndarray:
    """Reference: sample the image at x = (u - size/2) * scale * side / size + cx (inverse of the
    documented forward map), bilinear, zero outside the image. ``subpixel``: round sample
    positions to 1/subpixel pixel first (OpenCV's warpAffine uses 1/32)."""
    u = np.arange(size, dtype=np.float64)
    step = scale * side / size
    xs = (u - size / 2) * step + cx
    ys = (u - size / 2) * step + cy
    X, Y = np.meshgrid(xs, ys)
    if subpixel:
        X, Y = np.round(X * subpixel) / subpixel, np.round(Y * subpixel) / subpixel
    x0, y0 = np.floor(X).astype(int), np.floor(Y).astype(int)
    fx, fy = (X - x0)[..., None], (Y - y0)[..., None]
    padded = np.pad(image.astype(np.float64), ((1, 2), (1, 2), (0, 0)))

    def at(yy, xx):
        inside_y = np.clip(yy + 1, 0, padded.shape[0] - 1)
        inside_x = np.clip(xx + 1, 0, padded.shape[1] - 1)
        return padded[inside_y, inside_x]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def test_affine_formula_and_inverse():
    A = crops.crop_affine(np.array([400.0, 300.0, 200.0, 200.0]))
    k = 224 / (1.1 * 200)
    np.testing.assert_allclose(A, [[k, 0, 112 - 400 * k], [0, k, 112 - 300 * k]])
    np.testing.assert_allclose(crops.transform_points(A, [[400, 300]]), [[112, 112]], atol=1e-9)
    np.testing.assert_allclose(crops.transform_points(A, [[400 + 55, 300 - 110]]),
                               [[112 + 55 * k, 112 - 110 * k]], atol=1e-9)
    corners = crops.transform_points(crops.invert_affine(A), [[0, 0], [224, 224]])
    np.testing.assert_allclose(corners, [[290, 190], [510, 410]], atol=1e-9)  # 1.1 x 200 = 220 px window
    np.testing.assert_allclose(crops.crop_affine([400, 300, 200]), A)  # [cx, cy, side] form
    with pytest.raises(ValueError, match="positive"):
        crops.crop_affine([0, 0, 0, 10])


def test_crop_equals_an_independent_bilinear_resampler():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    image = np.ascontiguousarray(np.repeat(np.repeat(image[::4, ::4], 4, 0), 4, 1))  # smooth-ish
    for cx, cy, side in [(160.0, 120.0, 150.0), (30.3, 200.7, 260.0), (300.0, 10.0, 90.0)]:  # incl. borders
        got = crops.crop_image(image, [cx, cy, side, side]).astype(np.float64)
        exact = _numpy_bilinear_crop(image, cx, cy, side)
        assert np.abs(got - exact).mean() < 0.6  # positions quantised to 1/32 px by OpenCV ...
        assert np.abs(got - exact).max() <= 255 / 32
        quantised = _numpy_bilinear_crop(image, cx, cy, side, subpixel=32)
        assert np.abs(got - quantised).max() <= 1.0  # ... and otherwise the same bilinear samples


def test_box_centre_lands_on_112_and_markers_where_the_formula_says():
    image = np.zeros((600, 800, 3), np.uint8)
    cx, cy, side = 400, 300, 300
    image[cy - 2:cy + 3, cx - 2:cx + 3] = 255            # marker at the box centre
    image[cy + 80 - 2:cy + 80 + 3, cx - 100 - 2:cx - 100 + 3, 1] = 255  # green marker, offset (-100, +80)
    crop = crops.crop_image(image, [cx, cy, side, side]).astype(np.float64)
    k = 224 / (1.1 * side)
    for channel, (dx, dy) in ((0, (0, 0)), (1, (-100, 80))):
        weight = crop[..., 0] if channel == 0 else crop[..., 1] - crop[..., 0]
        ys, xs = np.mgrid[:224, :224]
        centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
        np.testing.assert_allclose(centroid, [112 + dx * k, 112 + dy * k], atol=0.05)


def test_crop_people_batches_boxes_and_outside_is_black():
    image = np.full((100, 100, 3), 200, np.uint8)
    out = crops.crop_people(image, np.array([[50, 50, 40, 40], [0, 0, 40, 40]]))
    assert out.shape == (2, 224, 224, 3) and out.dtype == np.uint8
    assert np.all(out[0] == 200)
    assert np.all(out[1, :100, :100] == 0) and np.all(out[1, 120:, 120:] == 200)


def test_normalise_matches_to_tensor_and_imagenet_statistics():
    batch = np.zeros((2, 4, 4, 3), np.uint8)
    batch[0, 1, 2] = [255, 0, 128]
    out = crops.normalise(batch)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = (np.array([1.0, 0.0, 128 / 255]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(out[0, :, 1, 2], expected, rtol=1e-6)
    black = -np.array([0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(out[1, :, 0, 0], black, rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        crops.normalise(batch.astype(np.float32))
