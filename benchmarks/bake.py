"""Benchmark: build characters and bake 300 / 3000 frames × 1 / 3 people with the add-on's one-pass
writer (keyframe_points.add + foreach_set), against a per-frame keyframe_insert baseline measured in
the same run (baseline at 300 frames only: it grows superlinearly).

Run with any bpy venv: ``.venv/bin/python benchmarks/bake.py`` (or PYTHONPATH=. .venv-bpy42/bin/python …).
Prints a table; nothing is written to disk.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bpy  # noqa: E402

from tests.fixtures.motion import make_body, make_motion, make_track  # noqa: E402
from vibe_blender.bl import bake, character  # noqa: E402
from vibe_blender.core.bake_plan import plan_track  # noqa: E402
from vibe_blender.core.frames import world_from_camera  # noqa: E402
from vibe_blender.core.skeleton import BONE_NAMES  # noqa: E402

NUM_VERTS = 6890  # SMPL's vertex count
WEIGHTS_PER_VERTEX = 4  # SMPL skins each vertex with at most ~4 bones


def smpl_like_motion(num_people: int, num_frames: int, posedirs: bool = False):
    """A motion with an SMPL-sized synthetic body (sparse weights) and ``num_people`` tracks."""
    body = make_body(num_verts=NUM_VERTS, seed=0, posedirs=posedirs)
    w = body.weights.copy()
    w[w < np.sort(w, axis=1)[:, -WEIGHTS_PER_VERTEX][:, None]] = 0.0
    body = replace(body, weights=(w / w.sum(1, keepdims=True)).astype(np.float32))
    m = make_motion(num_tracks=1, num_frames=2, seed=0)
    m.body = body
    m.tracks = [make_track(i + 1, num_frames, body.num_betas, seed=i) for i in range(num_people)]
    return m


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bake_baseline(arm, motion, track_id):
    """The slow way: set every pose bone per frame and keyframe_insert it."""
    track = motion.track(track_id)
    plan = plan_track(character.skeleton_of(arm), track.pose, track.transl, track.times,
                      world_from_camera(motion.meta), fps=30)
    bones = [arm.pose.bones[n] for n in BONE_NAMES[:24]]
    root = arm.pose.bones["root"]
    for i, frame in enumerate(plan.frames.tolist()):
        for j, pb in enumerate(bones):
            pb.rotation_quaternion = plan.quats[i, j]
            pb.keyframe_insert("rotation_quaternion", frame=frame)
        bones[0].location = plan.pelvis_loc[i]
        bones[0].keyframe_insert("location", frame=frame)
        root.location = plan.root_loc[i]
        root.keyframe_insert("location", frame=frame)


def run_case(num_frames: int, num_people: int, baseline: bool, correctives: bool = False) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    motion = smpl_like_motion(num_people, num_frames, posedirs=correctives)
    ids = [t.id for t in motion.tracks]
    t_build, arms = timed(lambda: [character.build_character(motion, i) for i in ids])
    t_bake, _ = timed(lambda: [bake.bake_track(a, motion, i, fps=30) for a, i in zip(arms, ids)])
    row = {"frames": num_frames, "people": num_people, "build": t_build, "bake": t_bake, "baseline": None,
           "correctives": correctives}
    if baseline:
        for a in arms:
            a.animation_data_clear()
        row["baseline"], _ = timed(lambda: [bake_baseline(a, motion, i) for a, i in zip(arms, ids)])
    return row


def main() -> int:
    rows = [run_case(f, p, baseline=(f == 300)) for f in (300, 3000) for p in (1, 3)]
    rows += [run_case(f, 1, baseline=False, correctives=True) for f in (300, 3000)]
    print(f"Blender {bpy.app.version_string}, {NUM_VERTS} vertices; per person 104 armature F-curves "
          "(+207 shape-key curves with correctives); baseline keys the 102 pose channels")
    print(f"{'frames':>6} {'people':>6} {'correct.':>8} {'build s':>8} {'bake s':>8} "
          f"{'keyframe_insert s':>18} {'ratio':>7}")
    for r in rows:
        base = f"{r['baseline']:18.3f}" if r["baseline"] else f"{'-':>18}"
        ratio = f"{r['baseline'] / r['bake']:6.0f}x" if r["baseline"] else f"{'-':>7}"
        print(f"{r['frames']:>6} {r['people']:>6} {str(r['correctives']):>8} {r['build']:8.3f} "
              f"{r['bake']:8.3f} {base} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
