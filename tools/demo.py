"""`make demo`: the bundled two-person clip → engine → animated characters in headless Blender.

Run from the repository root with the main venv (torch for the engine, the bpy wheel, OpenCV)::

    .venv/bin/python tools/demo.py [--video V] [--out DIR] [--motion FILE] [--force] [-v]

Steps (each prints its progress on stdout):

1. **engine**: ``python -m vibe_engine run VIDEO --out OUT/demo.motion.npz`` in a subprocess
   (the free BlazePose backend and the CC0 stand-in body when no VIBE data is given). Its protocol
   lines become readable progress lines; its log goes to ``OUT/engine.log``. A motion file from an
   earlier run of the same video with the same engine version is reused (``--force`` re-runs it);
   ``--motion FILE`` skips the engine.
2. **blender** (bpy wheel, in this process): every track as a character, root motion ``world``,
   scene at the video's frame rate, the matched camera with the video as its background →
   ``OUT/demo.blend`` and ``OUT/person_<id>.fbx|bvh|glb``. Blender's own console output goes to
   ``OUT/blender.log``.
3. **measure**: every tracked frame is evaluated in Blender; the characters' joints and body
   vertices are projected through the Blender camera (video pixels) and compared with the
   engine's own 2D joints and tracker boxes.
4. **preview**: a few evenly spaced frames rendered with Workbench (transparent film, matched
   camera) and alpha-composited over the decoded video frame → ``OUT/preview_<frame>.png`` and
   the contact sheet ``OUT/preview.png`` (``--readme-image PATH`` also writes it small, as the
   README's image).
5. **summary**: ``OUT/summary.json`` (inputs, engine backend/version/timings, people, quality
   figures, files with sizes) and a short human summary.

See docs/demo.md for the summary's fields. Every file is written under a temporary name and
renamed. Files of an earlier run that this run did not write again (``person_*``, ``preview_*``)
are removed, so the folder always shows one run.
Exit codes: 0 ok · 1 internal error · 2 usage (bad option, missing input) · 3 the engine failed ·
4 the Blender stage failed. On failure one line ``demo: error: …`` goes to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from vibe_blender.core.bake_plan import times_to_frames  # noqa: E402
from vibe_blender.core.errors import VibeError  # noqa: E402
from vibe_blender.core.motion_file import Motion, read_motion  # noqa: E402
from vibe_blender.core.protocol import Message, ProtocolError, decode_line  # noqa: E402
from vibe_blender.core.vibe_data import sha256_file  # noqa: E402

log = logging.getLogger("demo")

DEFAULT_VIDEO = REPO / "assets" / "video" / "demo_two_people.mp4"
DEFAULT_OUT = REPO / "out" / "demo"
MOTION_NAME, BLEND_NAME, SUMMARY_NAME = "demo.motion.npz", "demo.blend", "summary.json"
SHEET_NAME, ENGINE_LOG, BLENDER_LOG = "preview.png", "engine.log", "blender.log"
SUMMARY_VERSION = 1
DEFAULT_FORMATS = "fbx,bvh,glb"
PREVIEW_COUNT = 4
README_COLOURS = 128  # palette size of --readme-image (an indexed PNG keeps it small)
RENDER_SCALE = 0.5  # preview render size / video size
IOU_GOOD = 0.5  # box IoU counted as a good overlap
#: A character "follows its person" when its median 2D joint error is at most this fraction of the
#: median tracker box side and its box centre lies inside the tracker box in this fraction of frames.
FOLLOW_MAX_ERROR_OF_BOX = 0.10
FOLLOW_MIN_CENTRE_INSIDE = 0.90
ALPHA_OPAQUE = 0.5  # rendered pixels with alpha above this count as character pixels
PROGRESS_EVERY_S = 2.0  # at most one engine progress line per stage this often
FRAME_START = 1  # scene frame of video time 0
#: Workbench object colours (linear RGB) per person, in track order; repeats after the last.
PERSON_COLOURS = ((0.95, 0.45, 0.08), (0.10, 0.45, 0.95), (0.20, 0.80, 0.25), (0.85, 0.20, 0.60))
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_ENGINE, EXIT_BLENDER = 0, 1, 2, 3, 4

#: (engine 2D joint index, SMPL joint index) for the joints where both name the same point:
#: shoulders, elbows, wrists, knees, ankles (left then right). BlazePose's markers sit on these
#: SMPL joints (vibe_engine/blazepose/topology.py); VIBE's spin49 OpenPose joints 2-14 are SMPL's.
JOINT_PAIRS = {
    "blazepose33": ((11, 16), (12, 17), (13, 18), (14, 19), (15, 20), (16, 21),
                    (25, 4), (26, 5), (27, 7), (28, 8)),
    "spin49": ((5, 16), (2, 17), (6, 18), (3, 19), (7, 20), (4, 21), (13, 4), (10, 5), (14, 7), (11, 8)),
}


class DemoError(Exception):
    """A failure with a one-line message for the user and the exit code to use."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERNAL) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_console: TextIO | None = None  # the real stdout while native output goes to blender.log


def echo(text: str) -> None:
    """One progress line on stdout, flushed (make shows it at once)."""
    print(f"[demo] {text}", file=_console or sys.stdout, flush=True)


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (Blender's exporter and render chatter) to ``log_path``;
    ``echo`` keeps writing to the real stdout."""
    global _console
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8")
    try:
        with open(log_path, "wb") as log_fh:
            os.dup2(log_fh.fileno(), 1)
            os.dup2(log_fh.fileno(), 2)
            _console = console
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        _console = None
        console.close()


# -- command line ---------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # keep control of the exit code and the one-line message
        raise DemoError(f"{message} (see --help)", EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = _Parser(prog="demo.py",
                description="make demo: video → engine → characters in Blender → out/demo/")
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="input video (default: the bundled clip)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out/demo)")
    p.add_argument("--motion", default=None, help="use this motion file instead of running the engine")
    p.add_argument("--force", action="store_true",
                   help="run the engine even if a matching motion file exists")
    p.add_argument("--formats", default=DEFAULT_FORMATS, help="export formats: fbx,bvh,glb (default all)")
    p.add_argument("--previews", type=int, default=PREVIEW_COUNT, help="number of preview frames (1-16)")
    p.add_argument("--render-scale", type=float, default=RENDER_SCALE,
                   help="preview size / video size (0.1-1)")
    p.add_argument("--keep-layers", action="store_true",
                   help="also keep the rendered RGBA layers (layer_<frame>.png)")
    p.add_argument("--no-labels", action="store_true", help="previews without frame and person labels")
    p.add_argument("--readme-image", default=None, help="also write the contact sheet, downscaled, here")
    p.add_argument("--readme-width", type=int, default=960, help="width of --readme-image in pixels")
    p.add_argument("--engine-python", default=sys.executable,
                   help="the engine's interpreter (default: this one)")
    p.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                   help="extra engine option, repeatable (e.g. --engine-arg=--no-foot-lock)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse and check the options (DemoError with exit code 2 on a bad one)."""
    from vibe_blender.core.export_presets import parse_formats
    ns = build_parser().parse_args(list(argv))
    for name in ("video", "motion"):
        path = getattr(ns, name)
        if path is not None and not os.path.isfile(path):
            raise DemoError(f"--{name} {path}: file not found; pass an existing file", EXIT_USAGE)
    if not 1 <= ns.previews <= 16:
        raise DemoError(f"--previews must be 1..16, got {ns.previews}", EXIT_USAGE)
    if not 0.1 <= ns.render_scale <= 1.0:
        raise DemoError(f"--render-scale must be 0.1..1, got {ns.render_scale}", EXIT_USAGE)
    try:
        ns.formats = parse_formats(ns.formats)
    except VibeError as exc:
        raise DemoError(str(exc), EXIT_USAGE) from None
    ns.video, ns.out = Path(ns.video).resolve(), Path(ns.out).resolve()
    return ns


# -- step 1: the engine ---------------------------------------------------------------------------
class EngineProgress:
    """Turns the engine's protocol messages into readable lines and keeps result/error/warnings."""

    def __init__(self, say: Callable[[str], None] = echo, every_s: float = PROGRESS_EVERY_S) -> None:
        self.say, self.every_s = say, every_s
        self.result: dict | None = None
        self.error: dict | None = None
        self.status: str | None = None
        self.warnings: list[str] = []
        self._last_line = -math.inf

    def feed(self, msg: Message) -> None:
        """Handle one decoded message."""
        if msg.type == "stage":
            self._last_line = -math.inf
            self.say(f"engine [{msg['index'] + 1}/{msg['count']}] {msg['name']}")
        elif msg.type == "progress":
            self._progress(msg)
        elif msg.type == "warning":
            self.warnings.append(f"{msg['code']}: {msg['message']}")
            self.say(f"engine warning: {msg['message']}")
        elif msg.type in ("result", "error"):
            setattr(self, msg.type, dict(msg.fields))
        elif msg.type == "done":
            self.status = msg["status"]

    def _progress(self, msg: Message) -> None:
        now = time.monotonic()
        done, total = msg["done"], msg["total"]
        if now - self._last_line < self.every_s and done != total:
            return
        self._last_line = now
        rate = f", {msg.get('fps'):.1f}/s" if msg.get("fps") else ""
        eta = f", ~{msg.get('eta_s'):.0f} s left" if msg.get("eta_s") is not None and done != total else ""
        self.say(f"engine   {msg['stage']}: {done}/{total}{rate}{eta}")


def engine_argv(python: str, video: Path, motion: Path, extra: Sequence[str] = ()) -> list[str]:
    """The engine command line (BlazePose + stand-in body: no VIBE options) plus ``extra`` options."""
    return [python, "-m", "vibe_engine", "run", str(video), "--out", str(motion), "--ignore-stdin", *extra]


def run_engine(python: str, video: Path, motion: Path, log_path: Path,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run the engine to the end; return {"result", "warnings", "wall_s"}; DemoError (3) on failure."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    progress, t0 = EngineProgress(), time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log_fh:
        proc = subprocess.Popen(engine_argv(python, video, motion, extra), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=log_fh, text=True, cwd=REPO, env=env)
        for line in proc.stdout:
            try:
                progress.feed(decode_line(line))
            except ProtocolError as exc:
                log.debug("engine: ignored line (%s)", exc)
        code = proc.wait()
    if code != 0 or progress.status != "ok" or progress.result is None:
        why = progress.error["message"] if progress.error else f"it exited with code {code}"
        raise DemoError(f"the engine failed: {why} (log: {log_path})", EXIT_ENGINE)
    return {"result": progress.result, "warnings": progress.warnings, "wall_s": time.monotonic() - t0}


def reusable(motion_path: Path, video_sha: str, extra: Sequence[str] = ()) -> bool:
    """True when ``motion_path`` is a readable motion file of this video by this engine version,
    made with the same extra engine options (recorded in the demo's last summary)."""
    from vibe_engine import __version__
    if not motion_path.is_file():
        return False
    try:
        meta = read_motion(motion_path).meta
    except VibeError:
        return False
    try:
        last = json.loads((motion_path.parent / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return ((meta.get("video") or {}).get("sha256") == video_sha
            and (meta.get("manifest") or {}).get("engine_version") == __version__
            and last.get("engine", {}).get("extra_args") == list(extra))


def engine_step(ns: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The motion file to use and what the engine step did (for the summary)."""
    if ns.motion:
        echo(f"engine: skipped, using {ns.motion}")
        return Path(ns.motion).resolve(), {"ran": False, "reused": True, "wall_s": 0.0, "warnings": [],
                                           "extra_args": []}
    motion = ns.out / MOTION_NAME
    if not ns.force and reusable(motion, sha256_file(ns.video), ns.engine_arg):
        echo(f"engine: reusing {_show(motion)} (same video, same engine version; --force re-runs it)")
        return motion, {"ran": False, "reused": True, "wall_s": 0.0, "warnings": [],
                        "extra_args": list(ns.engine_arg)}
    echo(f"engine: {_show(ns.video)} → {_show(motion)} (log: {_show(ns.out / ENGINE_LOG)})")
    info = run_engine(ns.engine_python, ns.video, motion, ns.out / ENGINE_LOG, ns.engine_arg)
    people = ", ".join(f"person {p['id']}: frames {p['first']}-{p['last']}" for p in info["result"]["people"])
    echo(f"engine: done in {info['wall_s']:.1f} s ({people})")
    return motion, {"ran": True, "reused": False, "wall_s": info["wall_s"], "warnings": info["warnings"],
                    "extra_args": list(ns.engine_arg)}


def _show(path: Path) -> str:
    """A path relative to the repository when inside it (for messages)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# -- step 2: Blender ------------------------------------------------------------------------------
def build_scene(motion_path: Path, video: Path) -> tuple[list, Any]:
    """Empty scene → one character per track (root motion world, video fps) and the matched camera
    with ``video`` as its background (made by the import, ``api.bake_motion``)."""
    import bpy
    import vibe_batch
    from vibe_blender.bl import api
    from vibe_blender.bl.camera import DEFAULT_CAMERA_NAME
    from vibe_blender.bl.character import body_of
    from vibe_blender.core.settings import ImportOptions
    vibe_batch.reset_scene()
    options = ImportOptions(root_motion="world", fps_mode="video", frame_start=FRAME_START)
    armatures = api.bake_motion(str(motion_path), options, video=str(video))
    camera = bpy.data.objects[DEFAULT_CAMERA_NAME]
    if not camera.data.background_images:
        echo(f"blender: warning: Blender cannot decode {video}: the camera has no background "
             "(previews are still composited with OpenCV)")
    for i, arm in enumerate(armatures):
        body_of(arm).color = (*PERSON_COLOURS[i % len(PERSON_COLOURS)], 1.0)
    return armatures, camera


def export_people(armatures: list, out: Path, formats: Sequence[str]) -> dict[int, dict[str, str]]:
    """``out/person_<id>.<fmt>`` for every armature and format; {track id: {fmt: path}}."""
    from vibe_blender.bl import api_export
    writers = {"fbx": api_export.export_fbx, "bvh": api_export.export_bvh, "glb": api_export.export_gltf}
    files: dict[int, dict[str, str]] = {}
    for arm in armatures:
        track_id = int(arm["vibe_track_id"])
        files[track_id] = {fmt: writers[fmt](arm, str(out / f"person_{track_id}.{fmt}")) for fmt in formats}
        echo(f"blender: person {track_id} → " + ", ".join(Path(p).name for p in files[track_id].values()))
    return files


# -- step 3: measure (Blender) --------------------------------------------------------------------
@dataclass
class PersonSamples:
    """One character seen through the Blender camera at each of its track's frames.

    joints_px (T,K,2) float64: the K paired SMPL joints (``JOINT_PAIRS``) in video pixels (x right,
    y down); box_px (T,4) float64: (x0, y0, x1, y1) of the projected body vertices in video pixels.
    """

    track_id: int
    joints_px: np.ndarray
    box_px: np.ndarray


def camera_projector(scene: Any, camera: Any, width: int, height: int) -> Callable[[np.ndarray], np.ndarray]:
    """World points (N,3) metres → video pixels (N,2) through Blender's own camera matrices."""
    import bpy
    depsgraph = bpy.context.evaluated_depsgraph_get()
    view = np.array(camera.matrix_world.inverted())
    proj = np.array(camera.calc_matrix_camera(depsgraph, x=width, y=height)) @ view

    def project(points: np.ndarray) -> np.ndarray:
        h = np.c_[np.asarray(points, np.float64), np.ones(len(points))] @ proj.T
        ndc = h[:, :2] / h[:, 3:4]
        return np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], axis=-1)
    return project


def set_frame(scene: Any, frame: float) -> None:
    """Go to a (possibly fractional) scene frame."""
    whole = math.floor(frame)
    scene.frame_set(int(whole), subframe=float(frame - whole))


def _world_joints(arm: Any, bones: Sequence[str]) -> np.ndarray:
    mw = np.array(arm.matrix_world)
    heads = np.array([tuple(arm.pose.bones[b].head) for b in bones])
    return heads @ mw[:3, :3].T + mw[:3, 3]


def _world_vertices(obj: Any) -> np.ndarray:
    import bpy
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    mw = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]


def sample_people(scene: Any, armatures: list, motion: Motion, project: Callable,
                  fps: float) -> list[PersonSamples]:
    """Evaluate every tracked frame once and project each present character (see PersonSamples)."""
    from vibe_blender.bl.character import body_of
    from vibe_blender.core.motion_file import SMPL_JOINT_NAMES
    bones = [SMPL_JOINT_NAMES[s] for _, s in joint_pairs(motion.meta)]
    schedule: dict[float, list[tuple[int, int]]] = {}
    for p, arm in enumerate(armatures):
        track = motion.track(int(arm["vibe_track_id"]))
        for row, frame in enumerate(times_to_frames(track.times, fps, FRAME_START)):
            schedule.setdefault(float(frame), []).append((p, row))
    joints = [np.zeros((motion.track(int(a["vibe_track_id"])).num_frames, len(bones), 2)) for a in armatures]
    boxes = [np.zeros((len(j), 4)) for j in joints]
    for frame in sorted(schedule):
        set_frame(scene, frame)
        for p, row in schedule[frame]:
            joints[p][row] = project(_world_joints(armatures[p], bones))
            verts = project(_world_vertices(body_of(armatures[p])))
            boxes[p][row] = (*verts.min(0), *verts.max(0))
    return [PersonSamples(int(a["vibe_track_id"]), j, b) for a, j, b in zip(armatures, joints, boxes)]


# -- quality figures (pure numpy) ----------------------------------------------------------------
def joint_pairs(meta: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """The (engine joint, SMPL joint) pairs for the file's joint set; DemoError for an unknown set."""
    name = (meta.get("joints") or {}).get("set")
    if name not in JOINT_PAIRS:
        raise DemoError(f"unknown joint set {name!r} in the motion file; "
                        f"expected one of {sorted(JOINT_PAIRS)}")
    return JOINT_PAIRS[name]


def square_boxes(xyxy: np.ndarray) -> np.ndarray:
    """(T,4) corner boxes → (T,4) squares (cx, cy, side, side), side = the longer side (as the tracker)."""
    xyxy = np.asarray(xyxy, np.float64)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    side = np.max(xyxy[:, 2:] - xyxy[:, :2], axis=1)
    return np.c_[centre, side, side]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row IoU (T,) of (T,4) boxes (cx, cy, w, h) (``vibe_engine.detect.box_iou``)."""
    from vibe_engine.detect import box_iou as iou_xyxy
    from vibe_engine.track import cxcywh_to_xyxy
    return iou_xyxy(cxcywh_to_xyxy(np.asarray(a, np.float64)), cxcywh_to_xyxy(np.asarray(b, np.float64)))


def _stats(values: np.ndarray, digits: int = 2) -> dict[str, float]:
    v = np.asarray(values, np.float64).ravel()
    return {"mean": round(float(v.mean()), digits), "median": round(float(np.median(v)), digits),
            "p95": round(float(np.percentile(v, 95)), digits), "max": round(float(v.max()), digits)}


def person_quality(samples: PersonSamples, track: Any, pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Joint error (px) against the engine's 2D joints and box IoU against the tracker boxes."""
    engine_px = np.asarray(track.joints2d, np.float64)[:, [e for e, _ in pairs]]
    error = np.linalg.norm(samples.joints_px - engine_px, axis=-1)  # (T,K)
    square = square_boxes(samples.box_px)
    bbox = np.asarray(track.bbox, np.float64)
    iou = box_iou(square, bbox)
    inside = float(np.mean(np.all(np.abs(square[:, :2] - bbox[:, :2]) <= bbox[:, 2:] / 2, axis=1)))
    allowed = FOLLOW_MAX_ERROR_OF_BOX * float(np.median(bbox[:, 3]))
    follows = bool(np.median(error) <= allowed and inside >= FOLLOW_MIN_CENTRE_INSIDE)
    return {"joint_error_px": {**_stats(error), "joints": len(pairs), "frames": int(error.shape[0])},
            "box_iou": {**_stats(iou, 3), "threshold": IOU_GOOD,
                        "fraction_at_least_threshold": round(float(np.mean(iou >= IOU_GOOD)), 3)},
            "box_centre_inside_fraction": round(inside, 3),
            "follows_person": follows, "follow_max_median_error_px": round(allowed, 1)}


# -- step 4: preview (render + composite) ---------------------------------------------------------
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
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)
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
    from vibe_engine.video import open_video
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
    """The contact sheet downscaled to ``width`` pixels (INTER_AREA) as a small indexed PNG."""
    import cv2
    rgb = read_png_rgb(sheet)
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    palette, indices = quantize(small, colours)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(indexed_png(palette, indices))
    os.replace(tmp, target)
    return target


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


def indexed_png(palette: np.ndarray, indices: np.ndarray) -> bytes:
    """PNG bytes (colour type 3, 8-bit indices) for a palette (K,3) uint8 and indices (H,W) uint8."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    h, w = indices.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), indices.astype(np.uint8)], axis=1)  # filter 0
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + chunk(b"IEND", b""))


def read_png_rgb(path: Path) -> np.ndarray:
    """An RGB (H,W,3) uint8 image from a PNG file."""
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DemoError(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# -- step 5: summary ------------------------------------------------------------------------------
def build_summary(motion: Motion, motion_path: Path, video: Path, engine: dict[str, Any],
                  quality: dict[int, dict], exports: dict[int, dict[str, str]], preview: dict[str, Any],
                  files: Sequence[Path], timings: dict[str, float], blender: str) -> dict[str, Any]:
    """The summary.json content (plain JSON types)."""
    meta = motion.meta
    manifest = meta.get("manifest") or {}
    people = []
    for track in motion.tracks:
        people.append({"id": track.id, "frames": track.num_frames, "first": int(track.frames[0]),
                       "last": int(track.frames[-1]),
                       "detected_fraction": round(float(np.mean(track.detected)), 3),
                       "files": exports.get(track.id, {}), **quality.get(track.id, {})})
    return {
        "summary_version": SUMMARY_VERSION, "tool": "tools/demo.py",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {"video": str(video), "video_sha256": (meta.get("video") or {}).get("sha256"),
                   "video_info": meta.get("video"), "motion_file": str(motion_path)},
        "engine": {"ran": engine["ran"], "reused_motion_file": engine["reused"],
                   "backend": manifest.get("backend"), "version": manifest.get("engine_version"),
                   "device": manifest.get("device"), "body": meta.get("body"),
                   "joints": (meta.get("joints") or {}).get("set"),
                   "timings_s": manifest.get("timings_s"), "wall_s": round(engine["wall_s"], 2),
                   "warnings": engine["warnings"], "extra_args": engine["extra_args"]},
        "blender": blender, "camera": meta.get("camera"),
        "world_from_camera": (meta.get("world") or {}).get("world_from_camera"),
        "people": people, "preview": preview,
        "files": [{"path": str(p), "bytes": os.path.getsize(p)} for p in files],
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def human_summary(summary: dict[str, Any]) -> list[str]:
    """A few readable lines about the run."""
    reused = " (motion file reused)" if summary["engine"]["reused_motion_file"] else ""
    lines = [f"engine: {summary['engine']['backend']} {summary['engine']['version']}{reused}, "
             f"blender {summary['blender']}, total {summary['timings_s'].get('total', 0):.0f} s"]
    for p in summary["people"]:
        err, iou = p.get("joint_error_px", {}), p.get("box_iou", {})
        lines.append(f"person {p['id']}: video frames {p['first']}-{p['last']} ({p['frames']}), "
                     f"2D joint error {err.get('mean', float('nan')):.1f} px mean "
                     f"(p95 {err.get('p95', float('nan')):.1f}), "
                     f"box IoU {iou.get('mean', float('nan')):.2f} mean, "
                     f"{100 * iou.get('fraction_at_least_threshold', 0):.0f} % of frames ≥ {IOU_GOOD}")
        if not p.get("follows_person", True):
            lines.append(f"WARNING: character {p['id']} does not follow its person (median joint error "
                         f"{err['median']:.0f} px > {p['follow_max_median_error_px']:.0f} px, or box centre "
                         f"inside the tracker box in only "
                         f"{100 * p['box_centre_inside_fraction']:.0f} % of frames)")
    lines.append(f"files: {', '.join(Path(f['path']).name for f in summary['files'])}")
    return lines


def remove_stale(out: Path, keep: Sequence[Path]) -> None:
    """Delete this tool's own files from an earlier run that this run did not write again."""
    keep_names = {Path(p).name for p in keep}
    for pattern in ("person_*.fbx", "person_*.bvh", "person_*.glb", "preview_*.png", "layer_*.png"):
        for old in out.glob(pattern):
            if old.name not in keep_names:
                old.unlink()


# -- main -------------------------------------------------------------------------------------------
def blender_steps(ns: argparse.Namespace, motion_path: Path, motion: Motion, timings: dict) -> tuple:
    """Build, export, save, measure and preview; returns (exports, quality, preview, blend, version)."""
    import bpy
    import vibe_batch
    t0 = time.monotonic()
    try:
        armatures, camera = build_scene(motion_path, ns.video)
        exports = export_people(armatures, ns.out, ns.formats)
        blend = Path(vibe_batch.save_blend(str(ns.out / BLEND_NAME)))
    except VibeError as exc:
        raise DemoError(f"the Blender step failed: {exc}", EXIT_BLENDER) from exc
    echo(f"blender: saved {_show(blend)}")
    timings["blender_build_export"] = time.monotonic() - t0
    scene, t1 = bpy.context.scene, time.monotonic()
    fps = scene.render.fps / scene.render.fps_base
    cam = motion.meta["camera"]
    project = camera_projector(scene, camera, int(cam["width"]), int(cam["height"]))
    samples = sample_people(scene, armatures, motion, project, fps)
    pairs = joint_pairs(motion.meta)
    quality = {s.track_id: person_quality(s, motion.track(s.track_id), pairs) for s in samples}
    timings["measure"], t2 = time.monotonic() - t1, time.monotonic()
    preview = make_previews(scene, armatures, motion, ns, fps)
    timings["preview"] = time.monotonic() - t2
    return exports, quality, preview, blend, bpy.app.version_string


def run(ns: argparse.Namespace) -> dict[str, Any]:
    """All steps; returns the summary."""
    t0 = time.monotonic()
    ns.out.mkdir(parents=True, exist_ok=True)
    motion_path, engine = engine_step(ns)
    timings = {"engine": engine["wall_s"]}
    motion = read_motion(motion_path)
    echo(f"blender: building the characters (Blender's own output: {_show(ns.out / BLENDER_LOG)})")
    with native_output_to(ns.out / BLENDER_LOG):
        exports, quality, preview, blend, blender = blender_steps(ns, motion_path, motion, timings)
    files = [Path(p) for person in exports.values() for p in person.values()]
    files += [blend, *map(Path, preview["files"]), Path(preview["contact_sheet"])]
    if engine["ran"] or motion_path.parent == ns.out:
        files.insert(0, motion_path)
    if ns.readme_image:
        files.append(write_readme_image(Path(preview["contact_sheet"]), Path(ns.readme_image).resolve(),
                                        ns.readme_width))
    remove_stale(ns.out, files)
    timings["total"] = time.monotonic() - t0
    summary = build_summary(motion, motion_path, ns.video, engine, quality, exports, preview, files,
                            timings, blender)
    write_json(ns.out / SUMMARY_NAME, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        ns = parse_args(sys.argv[1:] if argv is None else argv)
        logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        summary = run(ns)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except VibeError as exc:
        print(f"demo: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, traceback with -v
        log.debug("internal error", exc_info=True)
        print(f"demo: error: internal: {type(exc).__name__}: {exc} (re-run with -v for the traceback)",
              file=sys.stderr, flush=True)
        return EXIT_INTERNAL
    for line in human_summary(summary):
        echo(line)
    echo(f"wrote {_show(ns.out / SUMMARY_NAME)}; preview: {_show(Path(summary['preview']['contact_sheet']))}")
    return EXIT_OK


def exit_process(code: int) -> None:
    """Flush and exit without interpreter shutdown once bpy is loaded (the bpy 4.2 wheel can crash
    at shutdown after the glTF exporter ran; everything is written before this point)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if "bpy" in sys.modules:
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    exit_process(main())
