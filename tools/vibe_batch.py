"""Headless batch: videos (or motion files) → .blend + FBX/BVH/glTF per person + a JSON report.

Inside Blender::

    blender -b --python-exit-code 1 -P tools/vibe_batch.py -- INPUT [options]

or with the bpy wheel as plain Python::

    python tools/vibe_batch.py INPUT [options]

INPUT is a video, a motion file (with ``--motion``) or a folder of them. Per input, the outputs go
to ``OUT/<input stem>/``: ``<stem>.blend`` and ``<stem>_person<id>.<fbx|bvh|glb>``. The report
``OUT/vibe_batch_report.json`` lists every input with its people, files and errors.
Exit codes: 0 all inputs ok · 1 at least one input failed · 2 usage error (nothing processed).
See docs/batch.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "tools")):  # run from a checkout: `blender -P tools/vibe_batch.py`
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tool_cli import EXIT_USAGE, Parser, UsageError, exit_process, print_error  # noqa: E402
from vibe_blender.core.export_presets import TIMING_MODES  # noqa: E402
from vibe_blender.core.settings import DEVICES, FPS_MODES, ROOT_MOTION_MODES, VIDEO_SUFFIXES  # noqa: E402

EXIT_OK, EXIT_FAILED = 0, 1
REPORT_NAME = "vibe_batch_report.json"
REPORT_VERSION = 1
MOTION_SUFFIXES = (".npz",)
DEFAULT_FORMATS = "fbx,bvh"

log = logging.getLogger("vibe_batch")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (also used by docs/batch.md)."""
    p = Parser(prog="vibe_batch.py", description="VIBE mocap batch: videos → animated characters + exports")
    p.add_argument("input", help="a video, a motion file (--motion) or a folder of them")
    p.add_argument("--out", default=None, help="output folder (default: ./vibe_out)")
    p.add_argument("--vibe-data", default=None, help="VIBE data folder for the engine (videos only)")
    p.add_argument("--formats", default=DEFAULT_FORMATS, help="comma list of fbx,bvh,glb (default fbx,bvh)")
    p.add_argument("--preset", default="generic", help="FBX preset: generic, unity, unreal")
    p.add_argument("--timing", default="video", choices=TIMING_MODES,
                   help="export time: video (keys at video time), clip (person's first frame at 0 s), "
                        "hidden (from 0 s, invisible until the person's first frame; BVH shows the "
                        "first pose)")
    p.add_argument("--motion", action="store_true", help="INPUT is motion file(s): bake without the engine")
    p.add_argument("--tracks", default=None, help="comma list of track ids to import (default: all)")
    p.add_argument("--root-motion", default="world", choices=ROOT_MOTION_MODES)
    p.add_argument("--fps-mode", default="video", choices=FPS_MODES,
                   help="video: set the scene to the video's frame rate (default); scene: keep 24 fps")
    p.add_argument("--no-blend", action="store_true", help="do not save a .blend per input")
    p.add_argument("--engine-python", default=None, help="engine interpreter (default: add-on preference)")
    p.add_argument("--device", default="cpu", choices=DEVICES, help="engine device (videos only)")
    p.add_argument("--engine-command", default=None,
                   help="argv prefix replacing '<engine python> -m vibe_engine' (shell quoting)")
    p.add_argument("--retarget", default=None, metavar="RIG.blend[:ARMATURE]",
                   help="also retarget each person onto this armature (default: the file's first) and "
                        "write <stem>_person<id>_retarget.<fbx|glb> (docs/retarget.md)")
    return p


def script_argv(argv: list[str]) -> list[str]:
    """Arguments meant for this script: everything after ``--`` when present, else argv[1:]."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def parse_args(args: list[str]) -> argparse.Namespace:
    """Parse and check the options; raise UsageError with a one-line message."""
    from vibe_blender.core.errors import UserInputError
    from vibe_blender.core.export_presets import fbx_options, parse_formats
    ns = build_parser().parse_args(args)
    try:
        ns.formats = parse_formats(ns.formats)
        fbx_options(ns.preset)
    except UserInputError as exc:
        raise UsageError(str(exc)) from None
    if ns.engine_command is not None:
        from vibe_blender.runner.engine_cmd import parse_launcher
        try:
            ns.engine_command = list(parse_launcher(ns.engine_command))
        except UserInputError as exc:
            raise UsageError(str(exc)) from None
    if ns.tracks is not None:
        try:
            ns.tracks = [int(t) for t in ns.tracks.split(",") if t.strip()]
        except ValueError:
            raise UsageError(f"--tracks must be comma-separated ids such as 1,3, got {ns.tracks!r}") from None
    ns.out = os.path.abspath(ns.out or "vibe_out")
    if ns.retarget is not None:
        ns.retarget = _retarget_source(ns.retarget)
    return ns


def _retarget_source(spec: str) -> tuple[str, str | None]:
    """(absolute .blend path, armature name or None) of ``--retarget RIG.blend[:ARMATURE]``."""
    path, _, name = spec.partition(".blend:")
    path = path + ".blend" if _ else spec
    if not path.lower().endswith(".blend") or not os.path.isfile(path):
        raise UsageError(f"--retarget needs an existing .blend file (RIG.blend[:ARMATURE]), got {spec!r}")
    return os.path.abspath(path), name or None


def load_rig(spec: tuple[str, str | None]):
    """Append the target armature (and its child meshes) from the rig .blend; return the armature."""
    import bpy
    path, name = spec
    with bpy.data.libraries.load(path, link=False) as (src, dst):
        if name is not None and name not in src.objects:
            raise ValueError(f"{path} has no object {name!r}; use RIG.blend:ARMATURE with one of its armatures")
        dst.objects = list(src.objects)
    arms = [o for o in dst.objects if o is not None and o.type == "ARMATURE"
            and (name is None or o.name.split(".")[0] == name or o.name == name)]
    if not arms:
        for o in dst.objects:
            if o is not None:
                bpy.data.objects.remove(o)
        raise ValueError(f"{path} has no armature{' ' + repr(name) if name else ''}; pick a .blend with your rig")
    keep = {arms[0]} | {o for o in dst.objects if o is not None and o.parent == arms[0]}
    for o in dst.objects:
        if o is not None and o not in keep:
            bpy.data.objects.remove(o)
    for o in keep:
        bpy.context.scene.collection.objects.link(o)
    return arms[0]


def retarget_person(arm, folder: str, stem: str, ns: argparse.Namespace) -> dict[str, str]:
    """Retarget one baked person onto a fresh copy of the --retarget rig and export it (fbx/glb)."""
    from vibe_blender.bl import api, api_export
    target = load_rig(ns.retarget)
    api.retarget(arm, target)
    base = os.path.join(folder, f"{stem}_person{arm.get('vibe_track_id', arm.name)}_retarget")
    writers = {"fbx": lambda p: api_export.export_fbx(target, p, preset=ns.preset),
               "glb": lambda p: api_export.export_gltf(target, p)}
    return {fmt: writers[fmt](f"{base}.{fmt}") for fmt in ns.formats if fmt in writers}


def find_inputs(path: str, motion: bool) -> list[str]:
    """The input files: ``path`` itself, or the matching files in folder ``path`` (sorted)."""
    suffixes = MOTION_SUFFIXES if motion else VIDEO_SUFFIXES
    kind = "motion files (*.npz)" if motion else f"videos ({', '.join(VIDEO_SUFFIXES)})"
    if os.path.isdir(path):
        found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(suffixes))
        if not found:
            raise UsageError(f"no {kind} in folder {path}; pass a file or a folder that has some")
        return found
    if not os.path.isfile(path):
        raise UsageError(f"input not found: {path}; pass an existing file or folder")
    return [os.path.abspath(path)]


def input_stem(path: str) -> str:
    """Output name of an input: the file name without ``.motion.npz`` / the extension."""
    name = os.path.basename(path)
    for suffix in (".motion.npz",):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def reset_scene() -> None:
    """Start each input from an empty scene (factory settings)."""
    import bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _progress_printer():
    """A progress callback for ``api.import_video`` printing one line per engine stage."""
    seen: set = set()

    def report(job) -> None:
        stage = getattr(job, "stage", None)
        if stage and stage not in seen:
            seen.add(stage)
            print(f"[vibe_batch]   engine: {stage}", flush=True)
    return report


def import_input(path: str, folder: str, stem: str, ns: argparse.Namespace,
                 warnings: list[str]) -> tuple[list, str]:
    """Bake every chosen person of one input and its matched camera; return (armatures, motion
    file path). The api's warnings (engine, camera background) are appended to ``warnings``.

    Videos go through the engine (``api.import_video``) and keep their motion file in ``folder``;
    motion files are baked directly (``api.import_motion``).
    """
    from vibe_blender.bl import api
    common = {"tracks": ns.tracks, "root_motion": ns.root_motion, "fps_mode": ns.fps_mode,
              "report": warnings.append}
    if ns.motion:
        return api.import_motion(path, **common), path
    motion_path = os.path.join(folder, f"{stem}.motion.npz")
    armatures = api.import_video(path, out_motion=motion_path, vibe_data=ns.vibe_data, device=ns.device,
                                 engine_python=ns.engine_python, engine_command=ns.engine_command,
                                 progress=_progress_printer(), **common)
    return armatures, motion_path


def export_person(arm, folder: str, stem: str, ns: argparse.Namespace) -> dict[str, Any]:
    """Export one armature in every requested format; return its report entry."""
    from vibe_blender.bl import api_export
    from vibe_blender.bl.export import action_frame_range
    track_id = arm.get("vibe_track_id", arm.name)
    base = os.path.join(folder, f"{stem}_person{track_id}")
    reports: dict[str, dict] = {fmt: {} for fmt in ns.formats}
    timing = getattr(ns, "timing", "video")
    writers = {"fbx": lambda p: api_export.export_fbx(arm, p, preset=ns.preset, take=stem, timing=timing,
                                                      report=reports["fbx"]),
               "bvh": lambda p: api_export.export_bvh(arm, p, timing=timing, report=reports["bvh"]),
               "glb": lambda p: api_export.export_gltf(arm, p, take=stem, timing=timing,
                                                       report=reports["glb"])}
    files = {fmt: writers[fmt](f"{base}.{fmt}") for fmt in ns.formats}
    start, end = action_frame_range(arm)
    if ns.retarget is not None:
        files.update({f"retarget_{fmt}": p for fmt, p in retarget_person(arm, folder, stem, ns).items()})
    return {"id": track_id, "armature": arm.name, "frame_range": [start, end],
            "frames": end - start + 1, "files": files, "exports": reports}


def save_blend(path: str) -> str:
    """Save the current file as a copy to ``path`` atomically (temp name + rename)."""
    import bpy

    from vibe_blender.core.atomic import atomic_path
    with atomic_path(path) as tmp:
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp), copy=True)
    return path


def process_input(path: str, ns: argparse.Namespace) -> dict[str, Any]:
    """Import, export and save one input; errors are recorded in the returned entry, not raised."""
    t0 = time.monotonic()
    entry: dict[str, Any] = {"input": path, "kind": "motion" if ns.motion else "video", "status": "ok",
                             "people": [], "files": [], "warnings": [], "error": None}
    stem = input_stem(path)
    folder = os.path.join(ns.out, stem)
    try:
        reset_scene()
        os.makedirs(folder, exist_ok=True)
        armatures, motion_path = import_input(path, folder, stem, ns, entry["warnings"])
        entry["motion_file"] = motion_path
        entry["camera"] = _scene_camera()
        entry["people"] = [export_person(arm, folder, stem, ns) for arm in armatures]
        entry["files"] = [f for person in entry["people"] for f in person["files"].values()]
        if not ns.no_blend:
            entry["blend"] = save_blend(os.path.join(folder, f"{stem}.blend"))
            entry["files"].append(entry["blend"])
    except Exception as exc:  # one bad input must not stop the batch; the report says why
        entry.update(status="error", error={"type": type(exc).__name__, "message": _one_line(exc)})
        log.debug("input %s failed", path, exc_info=True)
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only when empty: no output folder for an input that made nothing
    entry["seconds"] = round(time.monotonic() - t0, 3)
    return entry


def _scene_camera() -> str | None:
    """Name of the scene camera (the import's matched camera)."""
    import bpy
    camera = bpy.context.scene.camera
    return None if camera is None else camera.name


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write the JSON report atomically."""
    from vibe_blender.core.atomic import atomic_write
    with atomic_write(path) as fh:
        fh.write((json.dumps(report, indent=2) + "\n").encode("utf-8"))


def _blender_version() -> str:
    import bpy
    return bpy.app.version_string


def run(ns: argparse.Namespace, inputs: list[str]) -> dict[str, Any]:
    """Process every input and return the report dict."""
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    entries = []
    for i, path in enumerate(inputs, 1):
        print(f"[vibe_batch] {i}/{len(inputs)} {path}", flush=True)
        entry = process_input(path, ns)
        print(f"[vibe_batch] {entry['status']}: {len(entry['people'])} people, {entry['seconds']} s"
              + (f" ({entry['error']['message']})" if entry["error"] else ""), flush=True)
        entries.append(entry)
    failed = sum(e["status"] != "ok" for e in entries)
    return {"report_version": REPORT_VERSION, "tool": "vibe_batch", "blender": _blender_version(),
            "started": started, "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(ns).items()},
            "inputs": entries, "ok": len(entries) - failed, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 some input failed, 2 usage)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        ns = parse_args(script_argv(sys.argv if argv is None else argv))
        inputs = find_inputs(ns.input, ns.motion)
        os.makedirs(ns.out, exist_ok=True)
    except (UsageError, OSError) as exc:
        print_error("vibe_batch", str(exc))
        print(build_parser().format_usage().strip(), file=sys.stderr)
        return EXIT_USAGE
    report = run(ns, inputs)
    report_path = os.path.join(ns.out, REPORT_NAME)
    write_report(report_path, report)
    print(f"[vibe_batch] report: {report_path} ({report['ok']} ok, {report['failed']} failed)", flush=True)
    return EXIT_OK if report["failed"] == 0 else EXIT_FAILED


if __name__ == "__main__":
    exit_process(main())
