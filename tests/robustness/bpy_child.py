"""Child script (bpy, add-on enabled): call one public API function on a bad input and record the
outcome and the scene before/after. ``python bpy_child.py SPEC.json RESULT.json``.

SPEC: {"call": "import_motion" | "import_video", "path": str, "kwargs": {...}}. The scene starts
from the factory file plus a user marker, so "unchanged" covers existing objects too. RESULT:
rc (None: the call raised), code (the exception's ``.code`` or class name), codes (every class
name in its MRO, and the code), message (first line), scene_before, scene_after, engine_stderr.
"""
import json
import os
import sys
import traceback

import bpy  # noqa: I001 - bpy first: it puts addon_utils on the path
import addon_utils

COLLECTIONS = ("objects", "actions", "meshes", "armatures", "cameras", "materials", "movieclips", "images")


def scene_state() -> dict:
    scene = bpy.context.scene
    state = {name: sorted(b.name for b in getattr(bpy.data, name)) for name in COLLECTIONS}
    state["markers"] = sorted((m.name, m.frame) for m in scene.timeline_markers)
    state["timing"] = [scene.render.fps, scene.render.fps_base, scene.frame_start, scene.frame_end]
    return json.loads(json.dumps(state))


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    result: dict = {"rc": 0, "code": None, "codes": [], "message": ""}
    try:
        addon_utils.enable("vibe_blender", default_set=True)
        from vibe_blender.bl import api

        bpy.context.scene.timeline_markers.new("user_marker", frame=7)
        result["scene_before"] = scene_state()
        kwargs = dict(spec.get("kwargs") or {})
        if spec["call"] == "import_video":
            kwargs.setdefault("engine_python", sys.executable)
        try:
            getattr(api, spec["call"])(spec["path"], **kwargs)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            names = [c.__name__ for c in type(exc).__mro__]
            code = getattr(exc, "code", None) or type(exc).__name__
            result.update(rc=None, code=code, codes=names + [code], message=str(exc),
                          engine_stderr=str(getattr(exc, "detail", "") or ""))
        result["scene_after"] = scene_state()
        addon_utils.disable("vibe_blender", default_set=True)
    except BaseException:  # noqa: BLE001 - report harness failures, never a silent exit
        result["child_error"] = traceback.format_exc()
    with open(sys.argv[2], "w") as fh:
        json.dump(result, fh)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


main()
