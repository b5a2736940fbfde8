"""`make demo`: the bundled two-person clip → engine → animated characters in headless Blender.

Run from the repository root with the main venv (torch for the engine, the bpy wheel, OpenCV)::

    .venv/bin/python tools/demo.py [--video V] [--out DIR] [--motion FILE] [--force] [-v]

Steps (each prints its progress on stdout):

1. **engine** (this module): ``python -m vibe_engine run VIDEO --out OUT/demo.motion.npz`` as a
   ``vibe_blender.runner.Job`` (the free BlazePose backend and the CC0 stand-in body when no VIBE
   data is given). Its protocol lines become readable progress lines; its log goes to
   ``OUT/engine.log``. A motion file from an
   earlier run of the same video with the same engine version is reused (``--force`` re-runs it);
   ``--motion FILE`` skips the engine.
2. **blender** (``demo_scene.py``; bpy wheel, in this process): every track as a character, root motion ``world``,
   scene at the video's frame rate, the matched camera with the video as its background →
   ``OUT/demo.blend`` and ``OUT/person_<id>.fbx|bvh|glb``. Blender's own console output goes to
   ``OUT/blender.log``.
3. **measure** (``demo_scene.py``): every tracked frame is evaluated in Blender; the characters' joints and body
   vertices are projected through the Blender camera (video pixels) and compared with the
   engine's own 2D joints and tracker boxes.
4. **preview** (``demo_preview.py``): a few evenly spaced frames rendered with Workbench (transparent film, matched
   camera) and alpha-composited over the decoded video frame → ``OUT/preview_<frame>.png`` and
   the contact sheet ``OUT/preview.png`` (``--readme-image PATH`` also writes it small, as the
   README's image).
5. **summary** (this module): ``OUT/summary.json`` (inputs, engine backend/version/timings, people, quality
   figures, files with sizes) and a short human summary.

See docs/demo.md for the summary's fields. Every file is written under a temporary name and
renamed. Files of an earlier run that this run did not write again (``person_*``, ``preview_*``)
are removed, so the folder always shows one run.
Exit codes: 0 ok · 1 internal error · 2 usage (bad option, missing input) · 3 the engine failed ·
4 the Blender stage failed. On failure one line ``demo: error: …`` goes to stderr.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _p in (str(REPO), str(REPO / "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from demo_base import (EXIT_BLENDER, EXIT_ENGINE, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE,  # noqa: E402,F401
                       DemoError, echo, native_output_to, show)
from demo_preview import SHEET_NAME, make_previews, write_readme_image  # noqa: E402,F401
from demo_scene import IOU_GOOD, build_scene, export_people, measure  # noqa: E402
from tool_cli import Parser, UsageError, exit_process, print_error  # noqa: E402
from vibe_blender.core.atomic import atomic_write  # noqa: E402
from vibe_blender.core.errors import VibeError  # noqa: E402
from vibe_blender.core.motion_file import Motion, read_motion  # noqa: E402
from vibe_blender.core.vibe_data import sha256_file  # noqa: E402

log = logging.getLogger("demo")

DEFAULT_VIDEO = REPO / "assets" / "video" / "demo_two_people.mp4"
DEFAULT_OUT = REPO / "out" / "demo"
MOTION_NAME, BLEND_NAME, SUMMARY_NAME = "demo.motion.npz", "demo.blend", "summary.json"
ENGINE_LOG, BLENDER_LOG = "engine.log", "blender.log"
SUMMARY_VERSION = 1
DEFAULT_FORMATS = "fbx,bvh,glb"
PREVIEW_COUNT = 4
RENDER_SCALE = 0.5  # preview render size / video size
PROGRESS_EVERY_S = 2.0  # at most one engine progress line per stage this often


# -- command line ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = Parser(prog="demo.py",
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
    try:
        ns = build_parser().parse_args(list(argv))
    except UsageError as exc:
        raise DemoError(f"{exc} (see --help)", EXIT_USAGE) from None
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
    """Readable progress lines for a running ``runner.Job`` (its ``run_blocking`` callback): one per
    stage, progress at most every ``every_s`` seconds per stage, and the engine's warnings."""

    def __init__(self, say: Callable[[str], None] = echo, every_s: float = PROGRESS_EVERY_S) -> None:
        self.say, self.every_s = say, every_s
        self._stage: tuple[int, str] | None = None
        self._last_line, self._last_shown = -math.inf, (None, -1)
        self._warned = 0

    def __call__(self, job: Any) -> None:
        """Report what changed in ``job`` since the last call."""
        if job.stage and (job.stage_index, job.stage) != self._stage:
            self._stage, self._last_line = (job.stage_index, job.stage), -math.inf
            self.say(f"engine [{job.stage_index + 1}/{job.stage_count}] {job.stage}")
        for text in job.warnings[self._warned:]:
            self.say(f"engine warning: {text}")
        self._warned = len(job.warnings)
        if job.total:
            self._progress(job)

    def _progress(self, job: Any) -> None:
        now, done, total = time.monotonic(), job.done, job.total
        if (job.stage, done) == self._last_shown or (now - self._last_line < self.every_s and done != total):
            return
        self._last_line, self._last_shown = now, (job.stage, done)
        eta = job.eta_s
        left = f", ~{eta:.0f} s left" if eta is not None and done != total else ""
        self.say(f"engine   {job.stage}: {done}/{total}{left}")


def engine_argv(python: str, video: Path, motion: Path, extra: Sequence[str] = ()) -> list[str]:
    """The engine command line (BlazePose + stand-in body: no VIBE options) plus ``extra`` options."""
    return [python, "-m", "vibe_engine", "run", str(video), "--out", str(motion), "--ignore-stdin", *extra]


def run_engine(python: str, video: Path, motion: Path, log_path: Path,
               extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run the engine to the end (``runner.Job``, stderr to ``log_path``); return {"result",
    "warnings", "wall_s"}; DemoError (3) on failure."""
    from vibe_blender.runner.job import Job, JobState
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    t0 = time.monotonic()
    job = Job(engine_argv(python, video, motion, extra), result_path=motion, env=env, stderr_log=log_path)
    if job.run_blocking(EngineProgress()) is not JobState.DONE:
        why = f"it exited with code {job.exit_code}" if job.error_code == "CRASHED" else job.error
        raise DemoError(f"the engine failed: {why} (log: {log_path})", EXIT_ENGINE)
    return {"result": job.result, "warnings": [f"{code}: {text}" for code, text in job.engine_warnings],
            "wall_s": time.monotonic() - t0}


def reusable(motion_path: Path, video_sha: str, extra: Sequence[str] = ()) -> bool:
    """True when ``motion_path`` is a readable motion file of this video by this engine version,
    made with the same extra engine options (recorded in the demo's last summary)."""
    from vibe_engine import __version__
    if not motion_path.is_file():
        return False
    try:
        header = read_motion(motion_path).header
    except VibeError:
        return False
    try:
        last = json.loads((motion_path.parent / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (header.video.sha256 == video_sha and header.manifest.engine_version == __version__
            and last.get("engine", {}).get("extra_args") == list(extra))


def engine_step(ns: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The motion file to use and what the engine step did (for the summary)."""
    if ns.motion:
        echo(f"engine: skipped, using {ns.motion}")
        return Path(ns.motion).resolve(), {"ran": False, "reused": True, "wall_s": 0.0, "warnings": [],
                                           "extra_args": []}
    motion = ns.out / MOTION_NAME
    if not ns.force and reusable(motion, sha256_file(ns.video), ns.engine_arg):
        echo(f"engine: reusing {show(motion)} (same video, same engine version; --force re-runs it)")
        return motion, {"ran": False, "reused": True, "wall_s": 0.0, "warnings": [],
                        "extra_args": list(ns.engine_arg)}
    echo(f"engine: {show(ns.video)} → {show(motion)} (log: {show(ns.out / ENGINE_LOG)})")
    info = run_engine(ns.engine_python, ns.video, motion, ns.out / ENGINE_LOG, ns.engine_arg)
    people = ", ".join(f"person {p['id']}: frames {p['first']}-{p['last']}" for p in info["result"]["people"])
    echo(f"engine: done in {info['wall_s']:.1f} s ({people})")
    return motion, {"ran": True, "reused": False, "wall_s": info["wall_s"], "warnings": info["warnings"],
                    "extra_args": list(ns.engine_arg)}


# -- step 5: summary ------------------------------------------------------------------------------
def build_summary(motion: Motion, motion_path: Path, video: Path, engine: dict[str, Any],
                  quality: dict[int, dict], exports: dict[int, dict[str, str]], preview: dict[str, Any],
                  files: Sequence[Path], timings: dict[str, float], blender: str) -> dict[str, Any]:
    """The summary.json content (plain JSON types)."""
    header = motion.header
    manifest = header.manifest
    people = []
    for track in motion.tracks:
        people.append({"id": track.id, "frames": track.num_frames, "first": int(track.frames[0]),
                       "last": int(track.frames[-1]),
                       "detected_fraction": round(float(np.mean(track.detected)), 3),
                       "files": exports.get(track.id, {}), **quality.get(track.id, {})})
    return {
        "summary_version": SUMMARY_VERSION, "tool": "tools/demo.py",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {"video": str(video), "video_sha256": header.video.sha256,
                   "video_info": header.raw["video"], "motion_file": str(motion_path)},
        "engine": {"ran": engine["ran"], "reused_motion_file": engine["reused"],
                   "backend": manifest.backend, "version": manifest.engine_version,
                   "device": manifest.device, "body": header.body,
                   "joints": header.joints_set,
                   "timings_s": manifest.raw.get("timings_s"), "wall_s": round(engine["wall_s"], 2),
                   "warnings": engine["warnings"], "extra_args": engine["extra_args"]},
        "blender": blender, "camera": header.raw.get("camera"),
        "world_from_camera": header.world.raw.get("world_from_camera"),
        "people": people, "preview": preview,
        "files": [{"path": str(p), "bytes": os.path.getsize(p)} for p in files],
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically."""
    with atomic_write(path) as fh:
        fh.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))
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
    echo(f"blender: saved {show(blend)}")
    timings["blender_build_export"] = time.monotonic() - t0
    scene, t1 = bpy.context.scene, time.monotonic()
    fps = scene.render.fps / scene.render.fps_base
    quality = measure(scene, camera, armatures, motion, fps)
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
    echo(f"blender: building the characters (Blender's own output: {show(ns.out / BLENDER_LOG)})")
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
        print_error("demo", str(exc))
        return exc.exit_code
    except VibeError as exc:
        print_error("demo", str(exc))
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, traceback with -v
        log.debug("internal error", exc_info=True)
        print_error("demo", f"internal: {type(exc).__name__}: {exc} (re-run with -v for the traceback)")
        return EXIT_INTERNAL
    for line in human_summary(summary):
        echo(line)
    echo(f"wrote {show(ns.out / SUMMARY_NAME)}; preview: {show(Path(summary['preview']['contact_sheet']))}")
    return EXIT_OK


if __name__ == "__main__":
    exit_process(main())
