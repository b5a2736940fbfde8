"""Public headless API for scripts and ``blender -b``: video or motion file → animated characters.

Every function raises a ``VibeError`` subclass on failure (never returns report strings) and leaves
the scene as it was:
- ``UserInputError``: a bad path or option (the message names the fix);
- ``runner.errors.EngineRunError`` (``EngineCrashedError``, ``EngineCancelledError``, …): the engine
  failed; ``.code`` is the protocol error code, ``.detail`` the traceback / stderr tail;
- ``MotionFileError``: the motion file is unreadable;
- ``VibeImportError``: building or baking a character failed.
The exporters (``export_fbx``, ``export_bvh``, ``export_gltf``) are re-exported from ``api_export``.
Warnings (the engine's, a camera without its video background) go to ``report``, one line each,
when the caller passes one (e.g. ``report=warnings.append``); otherwise they are logged.

Example (``blender -b -P script.py``)::

    from vibe_blender.bl import api   # or bl_ext.user_default.vibe_mocap.bl.api
    arms = api.import_video("walk.mp4", out_motion="walk.motion.npz", engine_python="/opt/eng/bin/python")
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

import bpy

from ..core.errors import UserInputError, VibeError
from ..core.motion_file import read_motion
from ..core.settings import DEFAULT_FPS_MODE, EngineOptions, ImportOptions
from ..runner import engine_cmd
from ..runner.job import Job
from . import prefs
from .api_export import ExportError, export_bvh, export_fbx, export_gltf  # noqa: F401  (public API)

log = logging.getLogger(__name__)

#: Receives one warning line (see the module docstring).
Report = Callable[[str], None]

#: bpy.data collections an import may add to; rolled back on failure.
_GUARDED_COLLECTIONS = ("objects", "meshes", "armatures", "actions", "materials", "cameras", "movieclips",
                        "images")


class VibeImportError(VibeError):
    """Building or baking a character failed; the scene was restored."""


def import_video(path: str | os.PathLike, *, out_motion: str | os.PathLike | None = None,
                 vibe_data: str | None = None, device: str = "cpu", precision: str = "fp32",
                 tracks: Sequence[int] | None = None, root_motion: str = "world",
                 engine_python: str | None = None, progress: Callable[[Job], None] | None = None,
                 smoothing: bool = True, foot_lock: bool = True, fps_mode: str = DEFAULT_FPS_MODE,
                 frame_start: int = 1, engine_command: Sequence[str] | None = None,
                 report: Report | None = None, focal_35mm: float = 0.0) -> list[bpy.types.Object]:
    """Run the engine on a video, then build and bake one character per chosen track.

    focal_35mm: the camera's focal as a 35 mm equivalent (mm); 0 = automatic (the engine's own).

    out_motion: where to keep the motion file (None: a temporary file, deleted afterwards).
    vibe_data / engine_python / engine_command: None = the add-on preferences. engine_command
    replaces ``<engine_python> -m vibe_engine`` (see ``runner.engine_cmd.EngineSpec.launcher``).
    progress: called with the running ``Job`` (``.stage``, ``.fraction``, ``.eta_s``) after
    every engine message. report: gets the engine's and the import's warnings. Returns the
    armature objects, in track order.
    """
    options = ImportOptions(tracks=_tracks(tracks), root_motion=root_motion, smoothing=smoothing,
                            foot_lock=foot_lock, fps_mode=fps_mode, frame_start=frame_start,
                            focal_35mm=focal_35mm)
    engine = _engine_options(vibe_data, device, precision, engine_python, engine_command)
    with _motion_target(out_motion) as out:
        job = run_engine(path, out, engine, options, progress)
        for text in job.warnings:
            _warn(report, f"engine: {text}")
        return bake_motion(out, options, video=path, report=report)


def import_motion(path: str | os.PathLike, *, tracks: Sequence[int] | None = None,
                  root_motion: str = "world", fps_mode: str = DEFAULT_FPS_MODE,
                  frame_start: int = 1, report: Report | None = None) -> list[bpy.types.Object]:
    """Bake an existing motion file (no engine): one armature per chosen track, in track order."""
    options = ImportOptions(tracks=_tracks(tracks), root_motion=root_motion, fps_mode=fps_mode,
                            frame_start=frame_start)
    return bake_motion(path, options, report=report)


def retarget(source: bpy.types.Object, target: bpy.types.Object, mapping: str | os.PathLike | None = None,
             lock_feet: bool = True) -> bpy.types.Action:
    """Retarget a baked character (``source``, from import_video / import_motion) onto your own
    armature ``target`` (Mixamo, Unreal-style, Rigify, any humanoid): a new Action
    ``VIBE_<target>_retarget`` with root motion and re-locked feet (docs/retarget.md).

    mapping: None (detect from bone names or structure) or a bone map JSON preset path.
    Raises ``bl.retarget.RetargetError`` (a VibeError) with the scene unchanged.
    """
    from .retarget import retarget as _retarget

    action, _bmap, _plan = _retarget(source, target, mapping, lock_feet=lock_feet)
    return action


# -- building blocks shared with the operators ---------------------------------------------------
def start_job(video: str | os.PathLike, out: str | os.PathLike, engine: EngineOptions,
              options: ImportOptions) -> Job:
    """A Job (not started) that turns ``video`` into the motion file ``out``; checks the inputs."""
    video = Path(bpy.path.abspath(os.fspath(video)))
    if not video.is_file():
        raise UserInputError(f"Video not found: {video}; choose an existing video file")
    spec = engine_cmd.EngineSpec(python=engine.python, launcher=engine.launcher)
    engine_cmd.check_engine_python(spec)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = engine_cmd.run_argv(spec, video, out, vibe_data=engine.vibe_data or None, device=engine.device,
                               precision=engine.precision, tracks=options.tracks,
                               smoothing=options.smoothing, foot_lock=options.foot_lock,
                               focal_35mm=options.focal_35mm)
    return Job(argv, result_path=out)


def run_engine(video: str | os.PathLike, out: str | os.PathLike, engine: EngineOptions,
               options: ImportOptions, progress: Callable[[Job], None] | None = None) -> Job:
    """Run the engine to the end (blocking); raises the job's error unless it is DONE."""
    job = start_job(video, out, engine, options)
    job.run_blocking(progress)
    job.raise_for_state()
    return job


def bake_motion(path: str | os.PathLike, options: ImportOptions, video: str | os.PathLike | None = None,
                report: Report | None = None) -> list[bpy.types.Object]:
    """Read a motion file, bake the chosen tracks and add the matched camera with ``video`` (default:
    the file's own video, when found) as background; on any failure the scene is restored.
    A missing or undecodable video gives a camera without background and a ``report`` line."""
    from . import bake, character

    motion = read_motion(path)
    chosen = options.chosen([t.id for t in motion.tracks])
    armatures = []
    with scene_guard(bpy.context.scene):
        for track_id in chosen:
            arm = character.build_character(motion, track_id)
            bake.bake_track(arm, motion, track_id, root_motion=options.root_motion,
                            frame_start=options.frame_start, fps=options.bake_fps)
            armatures.append(arm)
        footage = os.fspath(video) if video is not None else _footage_path(motion.header.video.path, Path(path), report)
        _match_camera(motion.meta, footage, options.frame_start, report, motion)
    return armatures


def _warn(report: Report | None, text: str) -> None:
    if report is None:
        log.warning("%s", text)
    else:
        report(text)


def _footage_path(named: str, motion_path: Path, report: Report | None = None) -> str | None:
    """The motion file's video ``named`` (``header.video.path``) if it can be found (as written,
    or next to the motion file)."""
    for candidate in (Path(named), motion_path.parent / Path(named).name):
        if named and candidate.is_file():
            return str(candidate)
    if named:
        where = os.path.join(os.path.dirname(os.path.abspath(motion_path)), named)
        _warn(report, f"video {where} not found: camera without background")
    return None


def _match_camera(meta: dict, video: str | None, frame_start: int, report: Report | None = None,
                  motion: object = None) -> None:
    """Create the camera matching the engine's (replacing an earlier one of ours), video as background.

    A video Blender cannot open gives a camera without background and a warning.
    """
    from .camera import DEFAULT_CAMERA_NAME, create_camera

    temp_name = DEFAULT_CAMERA_NAME + " (new)"
    try:
        cam = create_camera(meta, video_path=video, frame_start=frame_start, name=temp_name, motion=motion)
    except UserInputError as exc:
        _warn(report, f"{exc} (camera without background)")
        cam = create_camera(meta, frame_start=frame_start, name=temp_name, motion=motion)
    old = bpy.data.objects.get(DEFAULT_CAMERA_NAME)
    if old is not None and old.type == "CAMERA":
        bpy.data.objects.remove(old)
    cam.name = cam.data.name = DEFAULT_CAMERA_NAME


@contextlib.contextmanager
def scene_guard(scene: bpy.types.Scene) -> Iterator[None]:
    """On an exception: remove data-blocks added inside the block, restore the frame rate, frame
    range and markers; non-VibeError exceptions are re-raised as VibeImportError."""
    before = {name: set(getattr(bpy.data, name)) for name in _GUARDED_COLLECTIONS}
    timing = (scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end)
    markers = set(scene.timeline_markers)
    try:
        yield
    except BaseException as exc:
        _rollback(scene, before, timing, markers)
        if isinstance(exc, VibeError) or not isinstance(exc, Exception):
            raise
        raise VibeImportError(f"Import failed ({type(exc).__name__}: {exc}); the scene was left "
                              "unchanged, see the console for details") from exc


def _rollback(scene: bpy.types.Scene, before: dict, timing: tuple, markers: set) -> None:
    for marker in [m for m in scene.timeline_markers if m not in markers]:
        scene.timeline_markers.remove(marker)
    for name in _GUARDED_COLLECTIONS:  # objects first, then their data
        coll = getattr(bpy.data, name)
        for block in [b for b in coll if b not in before[name]]:
            coll.remove(block)
    scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end = timing


def _tracks(tracks: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if tracks is None else tuple(int(t) for t in tracks)


def _engine_options(vibe_data: str | None, device: str, precision: str, engine_python: str | None,
                    engine_command: Sequence[str] | None) -> EngineOptions:
    """Explicit arguments win over the preferences."""
    base = prefs.engine_options()
    return EngineOptions(
        python=base.python if engine_python is None else engine_python,
        launcher=base.launcher if engine_command is None else tuple(engine_command),
        vibe_data=base.vibe_data if vibe_data is None else vibe_data,
        device=device, precision=precision)


@contextlib.contextmanager
def _motion_target(out_motion: str | os.PathLike | None) -> Iterator[Path]:
    """The requested motion path, or a temporary one removed afterwards."""
    if out_motion is not None:
        yield Path(bpy.path.abspath(os.fspath(out_motion)))
        return
    tmp = tempfile.mkdtemp(prefix="vibe-motion-")
    try:
        yield Path(tmp, "take.motion.npz")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
