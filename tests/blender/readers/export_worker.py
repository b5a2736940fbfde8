"""Export the add-on's characters in every format for the reader tests (a child process).

``python export_worker.py OUT_DIR`` → OUT_DIR/export/*.{fbx,glb,bvh}, OUT_DIR/result.json (the export
reports) and OUT_DIR/reference.npz (joint positions computed from the motion file by the core,
not by Blender). A child process because the bpy 4.2 wheel crashes at interpreter shutdown once
the glTF exporter ran (see tests/blender/gltf_worker.py); it ends with ``os._exit``.

Scene: a synthetic motion file with two people at 30 fps, baked at frame_start 1 (video frame 0 at
scene frame 1): person 1 is in frames 0..T−1, person 2 enters at video frame 3 (a late person).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

FPS = 30
NUM_FRAMES = 24
SEED = 5
#: (file stem, format, track, keyword arguments of the export call)
EXPORTS = [
    ("p1_generic", "fbx", 1, {"preset": "generic"}),
    ("p1_unity", "fbx", 1, {"preset": "unity"}),
    ("p1_unreal", "fbx", 1, {"preset": "unreal"}),
    ("p1", "glb", 1, {}),
    ("p1", "bvh", 1, {}),
    ("p1_positions", "bvh", 1, {"layout": "positions"}),
    ("p2_unity", "fbx", 2, {"preset": "unity"}),
    ("p2", "glb", 2, {}),
    ("p2", "bvh", 2, {}),
    ("p2_clip_unity", "fbx", 2, {"preset": "unity", "timing": "clip"}),
    ("p2_clip", "glb", 2, {"timing": "clip"}),
    ("p2_clip", "bvh", 2, {"timing": "clip"}),
    ("p2_hidden_unity", "fbx", 2, {"preset": "unity", "timing": "hidden"}),
    ("p2_hidden_unreal", "fbx", 2, {"preset": "unreal", "timing": "hidden"}),
    ("p2_hidden", "glb", 2, {"timing": "hidden"}),
    ("p2_hidden", "bvh", 2, {"timing": "hidden"}),
    ("p1_hidden", "glb", 1, {"timing": "hidden"}),
]


def _reference(arm, motion, track_id: int) -> dict:
    """World joint heads (T, 25, 3) and rest heads (25, 3) of a track, from the core (numpy only)."""
    from vibe_blender.bl.character import skeleton_of
    from vibe_blender.core.bake_plan import plan_track, posed_bone_matrices
    from vibe_blender.core.frames import world_from_camera
    skeleton = skeleton_of(arm)
    track = motion.track(track_id)
    plan = plan_track(skeleton, track.pose, track.transl, track.times, world_from_camera(motion.meta),
                      fps=FPS, frame_start=1, root_motion="world")
    mw = np.array(arm.matrix_world)
    heads = posed_bone_matrices(skeleton, plan)[..., :3, 3] @ mw[:3, :3].T + mw[:3, 3]
    rest = skeleton.rest_matrices()[:, :3, 3] @ mw[:3, :3].T + mw[:3, 3]
    return {"heads": heads, "rest": rest, "names": list(skeleton.names), "first_frame": int(track.frames[0])}


def _pruning_reference(arm, motion, track_id: int) -> float:
    """Max vertex displacement (m) of 4-influence pruning, by core skinning on the body's own weights."""
    from vibe_blender.bl.character import body_of, skeleton_of
    from vibe_blender.core import skinning
    from vibe_blender.core.bake_plan import plan_track, skin
    from vibe_blender.core.frames import world_from_camera
    body = body_of(arm)
    names = [g.name for g in body.vertex_groups]
    weights = np.zeros((len(body.data.vertices), len(names)))
    for v in body.data.vertices:
        for g in v.groups:
            weights[v.index, g.group] = g.weight
    skeleton = skeleton_of(arm)
    order = [names.index(n) for n in skeleton.names[:weights.shape[1]] if n in names]
    weights = weights[:, order]
    co = np.zeros(3 * len(body.data.vertices))
    body.data.vertices.foreach_get("co", co)
    track = motion.track(track_id)
    plan = plan_track(skeleton, track.pose, track.transl, track.times, world_from_camera(motion.meta),
                      fps=FPS, frame_start=1, root_motion="world")
    full = skin(skeleton, plan, co.reshape(-1, 3), skinning.normalised(weights))
    pruned = skin(skeleton, plan, co.reshape(-1, 3), skinning.prune(weights, 4))
    return float(np.linalg.norm(full - pruned, axis=-1).max())


def run(out: Path) -> None:
    from tests.fixtures.motion import make_motion
    from vibe_blender.bl import api_export
    from vibe_blender.bl.bake import bake_track
    from vibe_blender.bl.character import build_character
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    motion = make_motion(num_tracks=2, num_frames=NUM_FRAMES, seed=SEED)
    # person 1 bobs up and down, person 2 keeps its height: both pelvis bones leave their rest
    # location, so the standard BVH merges the ground root into the pelvis (the BVH root)
    motion.track(1).transl[:, 1] += 0.15 * np.sin(np.linspace(0, 2 * np.pi, NUM_FRAMES))
    arms = {}
    for tid in (1, 2):
        arms[tid] = build_character(motion, tid)
        bake_track(arms[tid], motion, tid, fps=FPS)
    refs = {tid: _reference(arms[tid], motion, tid) for tid in arms}
    writers = {"fbx": api_export.export_fbx, "glb": api_export.export_gltf, "bvh": api_export.export_bvh}
    export_dir = out / "export"
    export_dir.mkdir(parents=True, exist_ok=True)
    result = {"fps": FPS, "num_frames": NUM_FRAMES, "exports": {}, "tracks": {}}
    for stem, fmt, tid, kwargs in EXPORTS:
        report: dict = {}
        extra = {"take": "walk"} if fmt != "bvh" else {}
        path = writers[fmt](arms[tid], export_dir / f"{stem}.{fmt}", report=report, **kwargs, **extra)
        result["exports"][f"{stem}.{fmt}"] = {"path": path, "track": tid, "kwargs": kwargs, "report": report}
    for tid, arm in arms.items():
        result["tracks"][str(tid)] = {"armature": arm.name, "names": refs[tid]["names"],
                                      "first_frame": refs[tid]["first_frame"],
                                      "pruning_error_core_m": _pruning_reference(arm, motion, tid)}
    np.savez(out / "reference.npz", **{f"heads{t}": r["heads"] for t, r in refs.items()},
             **{f"rest{t}": r["rest"] for t, r in refs.items()})
    (out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    run(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter shutdown (bpy 4.2 + glTF exporter crash)
