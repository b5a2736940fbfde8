"""Demo step 4: preview frames rendered with Workbench (transparent film, the matched camera) and
alpha-composited over the decoded video frame, the contact sheet and the README image. Images are
(H,W,3|4) uint8 RGB(A); PNG files are read and written with OpenCV."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from demo_base import FRAME_START, DemoError, echo
from demo_scene import set_frame
from vibe_blender.core.atomic import atomic_write
from vibe_blender.core.bake_plan import times_to_frames
from vibe_blender.core.motion_file import Motion

SHEET_NAME = "preview.png"
README_COLOURS = 128  # palette size of --readme-image (few colours keep its PNG small)
ALPHA_OPAQUE = 0.5  # rendered pixels with alpha above this count as character pixels


def preview_frames(first: int, last: int, count: int) -> list[int]:
    """``count`` video frame indices evenly spaced over [first, last] (centres of equal parts)."""
    span = last - first + 1
    return sorted({first + min(span - 1, int((k + 0.5) * span / count)) for k in range(count)})


def composite(video_rgb: np.ndarray, layer_rgba: np.ndarray) -> np.ndarray:
    """Alpha-composite a rendered layer over a video frame.

    video_rgb (H,W,3) uint8; layer_rgba (h,w,4) uint8 with straight (not premultiplied) alpha, as
    Blender writes PNGs. The video is resized to (h,w) when needed. Returns (h,w,3) uint8; where
    alpha is 0 the result is the (resized) video pixel exactly.
    """
    import cv2
    h, w = layer_rgba.shape[:2]
    if video_rgb.shape[:2] != (h, w):
        video_rgb = cv2.resize(video_rgb, (w, h), interpolation=cv2.INTER_AREA)
    alpha = layer_rgba[..., 3:4].astype(np.float32) / 255.0
    out = alpha * layer_rgba[..., :3].astype(np.float32) + (1.0 - alpha) * video_rgb.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def alpha_inside_boxes(layer_rgba: np.ndarray, boxes_cxcywh: np.ndarray, scale: float) -> float | None:
    """Fraction of the layer's character pixels (alpha > ALPHA_OPAQUE) inside any of the boxes
    (video pixels, (N,4) cx, cy, w, h; the layer is ``scale`` × the video size). None without pixels."""
    mask = layer_rgba[..., 3] > ALPHA_OPAQUE * 255
    if not mask.any():
        return None
    inside = np.zeros_like(mask)
    for cx, cy, bw, bh in np.asarray(boxes_cxcywh, np.float64) * scale:
        x0, y0 = max(0, int(round(cx - bw / 2))), max(0, int(round(cy - bh / 2)))
        inside[y0:int(round(cy + bh / 2)), x0:int(round(cx + bw / 2))] = True
    return float((mask & inside).sum() / mask.sum())


def annotate(image: np.ndarray, frame: int, labels: Sequence[tuple[str, float, float]],
             scale: float) -> np.ndarray:
    """A copy with the frame index in the corner and each (text, x, y video px) label drawn."""
    import cv2
    out = image.copy()
    size = max(0.4, 0.9 * scale * 2)
    for text, x, y, in ((f"frame {frame}", 10 / scale, 30 / scale), *labels):
        org = (int(x * scale), int(y * scale))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images of one size in a near-square grid (2×2 for four), row by row, black where empty."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return sheet


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an RGB (H,W,3) or RGBA (H,W,4) uint8 image as PNG, atomically."""
    import cv2
    code = cv2.COLOR_RGBA2BGRA if image.shape[-1] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, code), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DemoError(f"cannot encode {path.name} as PNG")
    with atomic_write(path) as fh:
        fh.write(data.tobytes())
    return path


def read_png(path: Path) -> np.ndarray:
    """An RGBA (H,W,4) uint8 image from a PNG file."""
    import cv2
    bgra = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
        raise DemoError(f"the render {path} is not an RGBA PNG")
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)


def video_frames(video: Path, wanted: Sequence[int]) -> dict[int, np.ndarray]:
    """{index: (H,W,3) uint8 RGB} for the wanted frame indices (displayed orientation), one pass."""
    from vibe_engine.decode.video import open_video
    want, got = set(wanted), {}
    with open_video(video) as reader:
        for frame in reader:
            if frame.index in want:
                got[frame.index] = frame.image
            if len(got) == len(want) or frame.index > max(want):
                break
    missing = sorted(want - set(got))
    if missing:
        raise DemoError(f"could not decode video frames {missing} of {video}")
    return got


def setup_render(scene: Any, scale: float) -> None:
    """Workbench, transparent film, object colours, PNG RGBA at ``scale`` × the video size."""
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.film_transparent = True
    scene.render.resolution_percentage = max(1, int(round(100 * scale)))
    settings = scene.render.image_settings
    settings.file_format, settings.color_mode, settings.color_depth = "PNG", "RGBA", "8"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "OBJECT"
    scene.view_settings.view_transform = "Standard"


def render_layer(scene: Any, frame: float, path: Path) -> np.ndarray:
    """Render the scene camera at ``frame`` to ``path`` and return the RGBA (h,w,4) uint8 layer."""
    import bpy
    set_frame(scene, frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return read_png(path)


def show_present(armatures: list, motion: Motion, index: int) -> None:
    """Render only the characters whose track covers video frame ``index`` (Blender holds the
    first/last key outside a track, which would show a person who is not there)."""
    from vibe_blender.bl.character import body_of
    for arm in armatures:
        hidden = index not in motion.track(int(arm["vibe_track_id"])).frames
        arm.hide_render = hidden
        body_of(arm).hide_render = hidden


def make_previews(scene: Any, armatures: list, motion: Motion, ns: argparse.Namespace,
                  fps: float) -> dict[str, Any]:
    """Render, composite and write the preview frames and the contact sheet; return their summary."""
    covered = np.concatenate([t.frames for t in motion.tracks])
    frames = preview_frames(int(covered.min()), int(covered.max()), ns.previews)
    images = video_frames(ns.video, frames)
    setup_render(scene, ns.render_scale)
    written, composites, inside = [], [], []
    for index in frames:
        layer_path = ns.out / f"layer_{index}.png"
        show_present(armatures, motion, index)
        layer = render_layer(scene, _scene_frame(motion, index, fps), layer_path)
        if not ns.keep_layers:
            layer_path.unlink()
        else:
            written.append(layer_path)
        boxes, labels = _boxes_at(motion, index)
        inside.append(alpha_inside_boxes(layer, boxes, ns.render_scale))
        image = composite(images[index], layer)
        if not ns.no_labels:
            image = annotate(image, index, labels, ns.render_scale)
        written.append(write_png(ns.out / f"preview_{index}.png", image))
        composites.append(image)
        echo(f"preview: frame {index} → {written[-1].name}")
    sheet = write_png(ns.out / SHEET_NAME, contact_sheet(composites))
    fractions = [f for f in inside if f is not None]
    return {"frames": frames, "files": [str(p) for p in written], "contact_sheet": str(sheet),
            "render_scale": ns.render_scale, "render_size": list(composites[0].shape[1::-1]),
            "alpha_inside_boxes": [None if f is None else round(f, 3) for f in inside],
            "alpha_inside_boxes_mean": round(float(np.mean(fractions)), 3) if fractions else None}


def _scene_frame(motion: Motion, index: int, fps: float) -> float:
    """Scene frame showing video frame ``index``: from a track's timestamp when one covers it."""
    for track in motion.tracks:
        hit = np.flatnonzero(track.frames == index)
        if hit.size:
            return float(times_to_frames(track.times[hit], fps, FRAME_START)[0])
    return float(FRAME_START + index)


def _boxes_at(motion: Motion, index: int) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Tracker boxes (N,4) at video frame ``index`` and a label above each."""
    boxes, labels = [], []
    for track in motion.tracks:
        hit = np.flatnonzero(track.frames == index)
        if hit.size:
            cx, cy, w, h = (float(v) for v in track.bbox[hit[0]])
            boxes.append((cx, cy, w, h))
            labels.append((f"person {track.id}", cx - w / 2, cy - h / 2))
    return np.array(boxes, np.float64).reshape(-1, 4), labels


def write_readme_image(sheet: Path, target: Path, width: int, colours: int = README_COLOURS) -> Path:
    """The contact sheet downscaled to ``width`` pixels (INTER_AREA) and reduced to ``colours``
    colours (k-means), so that its PNG stays small."""
    import cv2
    rgb = read_png_rgb(sheet)
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    palette, indices = quantize(small, colours)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_png(target, palette[indices])


def quantize(rgb: np.ndarray, colours: int, sample: int = 60000,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means palette (K,3) uint8 of an (H,W,3) uint8 image and each pixel's index (H,W) uint8."""
    import cv2
    pixels = rgb.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(seed)
    subset = pixels[rng.choice(len(pixels), min(sample, len(pixels)), replace=False)]
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(subset, colours, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    index = np.empty(len(pixels), np.uint8)
    norms = (centres ** 2).sum(1)
    for start in range(0, len(pixels), 1 << 16):
        chunk = pixels[start:start + (1 << 16)]
        index[start:start + len(chunk)] = np.argmin(norms - 2 * chunk @ centres.T, axis=1)
    return np.clip(np.rint(centres), 0, 255).astype(np.uint8), index.reshape(rgb.shape[:2])


def read_png_rgb(path: Path) -> np.ndarray:
    """An RGB (H,W,3) uint8 image from a PNG file."""
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DemoError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
