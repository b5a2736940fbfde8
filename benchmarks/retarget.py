"""Benchmark: retargeting accuracy and speed (pure numpy, no bpy; ``core.retarget``).

Takes: the synthetic benchmark clip's ground truth (CMU mocap on the stand-in body, true contacts),
a synthetic walk planted by the engine's foot lock, and the engine's motion of the demo clip (both
people; made once into out/cache/demo.motion.npz, or $VIBE_DEMO_MOTION). Targets: the CC0
MakeHuman/MPFB2 rigs of tests/fixtures/rigs (A-pose rest), a T-posed and a 5 %-longer-legged
variant, and the Mixamo rig with meaningless bone names (mapped by structure).
Columns: mean / max over the limb slots of the mean limb-direction error (degrees); foot skate
during contacts (mm per frame) without and with the re-lock; root path error (% of the scaled
path); time. Speed: 3000 frames onto a 65-bone rig (the game-engine rig + 12 twist bones),
against the source's own numpy bake plan of the same frames in the same run.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/retarget.py``. Prints tables; writes nothing
(except the demo motion cache the first time).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fixtures import retarget as fx  # noqa: E402
from vibe_blender.core import retarget as rt  # noqa: E402
from vibe_blender.core import retarget_map as rm  # noqa: E402
from vibe_blender.core import retarget_rig as rr  # noqa: E402
from vibe_blender.core.bake_plan import plan_track  # noqa: E402

TARGETS = [("mixamo", None), ("game_engine", None), ("rigify_human", None), ("mixamo", "anonymous"),
           ("makehuman_default", None), ("mixamo", "tpose"), ("mixamo", "long_legs"), ("game_engine", "long_legs")]
SPEED_FRAMES = 3000
TWISTS = ("upperarm", "lowerarm", "thigh", "calf")  # + _twist_01_{l,r}, 3 per ... (12 bones)
REPEATS = 3


def accuracy_rows():
    takes = {"cmu jumps (gt)": fx.cmu_source(), "synthetic walk": fx.synthetic_source(),
             "demo person 1": fx.demo_source(0), "demo person 2": fx.demo_source(1)}
    print(f"{'take':<16} {'target':<26} {'map':<15} {'err mean°':>9} {'err max°':>8} "
          f"{'skate before mm':>15} {'after mm':>9} {'root %':>7} {'s':>6}")
    for take, src in takes.items():
        for name, variant in TARGETS:
            rig = rr.from_bones(fx.rig_bones(name, variant))
            bmap = rm.detect_mapping(rig)
            before = rt.retarget(src, rig, bmap, lock_feet=False)
            t0 = time.perf_counter()
            plan = rt.retarget(src, rig, bmap)
            dt = time.perf_counter() - t0
            err = rt.limb_direction_errors(src, rig, bmap, plan.world)
            print(f"{take:<16} {name + (' ' + variant if variant else ''):<26} {bmap.convention:<15} "
                  f"{np.mean(list(err.values())):9.3f} {max(err.values()):8.3f} "
                  f"{1e3 * rt.foot_skate(rig, bmap, before.world, src.contacts):15.2f} "
                  f"{1e3 * rt.foot_skate(rig, bmap, plan.world, src.contacts):9.3f} "
                  f"{100 * rt.root_path_error(src, rig, bmap, plan.world, plan.scale):7.3f} {dt:6.3f}")


def rig65() -> rr.RigSkeleton:
    """The game-engine rig plus 12 twist bones (UE-style ``*_twist_0k_*``): 65 bones."""
    bones = fx.rig_bones("game_engine")
    by = {b["name"]: b for b in bones}
    extra = []
    for part in TWISTS:
        for side in "lr":
            parent = by[f"{part}_{side}"]
            h, t = np.array(parent["head"]), np.array(parent["tail"])
            for k, f in enumerate((0.5, 0.75)[: 2 if part in ("upperarm", "thigh") else 1]):
                extra.append({"name": f"{part}_twist_0{k + 1}_{side}", "parent": parent["name"],
                              "head": (h + f * (t - h)).tolist(), "tail": (h + (f + 0.2) * (t - h)).tolist(),
                              "roll": parent["roll"]})
    return rr.from_bones(bones + extra)


def speed_row():
    src = fx.synthetic_source(frames=SPEED_FRAMES)
    rig = rig65()
    bmap = rm.detect_mapping(rig)
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        rt.retarget(src, rig, bmap)
        times.append(time.perf_counter() - t0)
    body = fx.standin_body()
    skel = fx._skeleton(body, np.zeros(body.num_betas))
    pose = np.zeros((SPEED_FRAMES, 24, 3))
    base = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        plan_track(skel, pose, np.zeros((SPEED_FRAMES, 3)), np.arange(SPEED_FRAMES) / 30.0, np.eye(4), fps=30)
        base.append(time.perf_counter() - t0)
    print(f"\nspeed: {SPEED_FRAMES} frames onto {len(rig.names)} bones ({len(bmap.unmapped)} unmapped), "
          f"foot re-lock on, best of {REPEATS}")
    print(f"{'step':<40} {'s':>7} {'ratio':>7}")
    print(f"{'source bake plan (SMPL, numpy)':<40} {min(base):7.3f} {1.0:6.2f}x")
    print(f"{'retarget + re-lock (core.retarget)':<40} {min(times):7.3f} {min(times) / min(base):6.2f}x")


def main() -> int:
    accuracy_rows()
    speed_row()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
