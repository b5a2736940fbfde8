"""glTF round trips in a child process: ``python gltf_worker.py MODE OUT_DIR`` → OUT_DIR/result.json.

Why a child process: once Blender's glTF exporter modules are imported, the bpy 4.2 wheel crashes
with SIGSEGV when the interpreter shuts down (Blender's bug: importing
``io_scene_gltf2.blender.exp.gltf2_blender_gather`` and exiting is enough). That would turn a
passing pytest run into exit code 139, so the glTF checks run here and end with ``os._exit``
after the result is written. MODE is "rig" (random 24-bone rig + skinned mesh, off-origin) or
"character" (the add-on's own character baked from a synthetic motion file).
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from tests.blender import export_rigs as rigs  # noqa: E402

FPS = 25
NUM_FRAMES = 30
CHECK_FRAMES = (1, 9, 17, 30)
VIDEO_ZERO_FRAME = 1  # both scenes start at frame 1 (the rig's scene start, the bake's frame_start)


def _scene(fps: int) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.frame_start, scene.frame_end = 1, 250
    return scene


def _rig_character():
    """Random rig + skinned mesh, off the origin, user selection/active set to something else."""
    scene = _scene(FPS)
    arm = rigs.build_armature()
    mesh = rigs.add_skinned_mesh(arm, seed=2)
    rigs.animate(arm, NUM_FRAMES, seed=2)
    arm.location = (0.4, 2.0, 0.1)
    arm.rotation_euler = (0.0, 0.0, math.radians(35))
    other = bpy.data.objects.new("Other", None)
    scene.collection.objects.link(other)
    bpy.context.view_layer.update()
    for o in (arm, mesh):
        o.select_set(False)
    other.select_set(True)
    bpy.context.view_layer.objects.active = mesh
    scene.frame_set(7)
    return arm, mesh, list(rigs.SMPL_JOINT_NAMES), list(CHECK_FRAMES)


def _baked_character():
    from tests.fixtures.motion import make_motion
    from vibe_blender.bl.bake import bake_track
    from vibe_blender.bl.character import build_character
    _scene(30)
    motion = make_motion(num_tracks=1, num_frames=20, seed=3)
    arm = build_character(motion, 1)
    bake_track(arm, motion, 1, fps=30)
    mesh = next(c for c in arm.children if c.type == "MESH")
    return arm, mesh, [b.name for b in arm.data.bones], list(range(1, 21))


def _user_state(scene) -> dict:
    return {"selected": sorted(o.name for o in bpy.context.view_layer.objects if o.select_get()),
            "active": getattr(bpy.context.view_layer.objects.active, "name", None),
            "frames": [scene.frame_start, scene.frame_end, scene.frame_current]}


def _widen_shape_key_ranges(mesh: bpy.types.Object) -> None:
    """Blender's glTF importer sets each shape key's slider_min to 0 here, clamping the negative
    weights of pose correctives that the file holds; open the range as the exporter's side had it."""
    for kb in (mesh.data.shape_keys.key_blocks if mesh.data.shape_keys else ()):
        kb.slider_min, kb.slider_max = -10.0, 10.0


def run(mode: str, out_dir: Path) -> dict:
    """Export, re-import into a fresh scene and measure; returns the result dict."""
    from vibe_blender.bl import api_export
    arm, mesh, names, frames = _rig_character() if mode == "rig" else _baked_character()
    scene = bpy.context.scene
    fps = scene.render.fps
    before = _user_state(scene)
    heads = rigs.head_positions(arm, frames, names)
    verts = rigs.evaluated_vertices(mesh, frames[len(frames) // 2])
    scene.frame_set(before["frames"][2])
    path = api_export.export_gltf(arm, out_dir / "char.glb", max_influences=None)  # exact skin
    result = {"state_kept": _user_state(scene) == before, "files": sorted(os.listdir(out_dir))}
    _scene(fps)  # glTF stores seconds (video frame 0 at 0 s); the importer keys t at frame t · fps
    bpy.ops.import_scene.gltf(filepath=path)
    arm2 = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    mesh2 = next(o for o in bpy.data.objects if o.type == "MESH" and o.find_armature() == arm2)
    _widen_shape_key_ranges(mesh2)
    imported = [f - VIDEO_ZERO_FRAME for f in frames]
    got = rigs.evaluated_vertices(mesh2, imported[len(frames) // 2])
    # glTF may reorder vertices and split them at flat-shaded edges: match nearest in both directions.
    dist = np.linalg.norm(verts[:, None] - got[None], axis=-1)
    result.update(
        bones_equal=sorted(b.name for b in arm2.data.bones) == sorted(names),
        frame_range=[round(f) for f in arm2.animation_data.action.frame_range],
        expected_range=[imported[0], imported[-1]],
        head_error_m=float(np.abs(rigs.head_positions(arm2, imported, names) - heads).max()),
        vertex_error_m=float(max(dist.min(0).max(), dist.min(1).max())))
    return result


def main(argv: list[str]) -> None:
    mode, out_dir = argv[0], Path(argv[1])
    export_dir = out_dir / "export"
    export_dir.mkdir(parents=True, exist_ok=True)
    result = run(mode, export_dir)
    (out_dir / "result.json").write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter shutdown: see the module docstring


if __name__ == "__main__":
    main(sys.argv[1:])
