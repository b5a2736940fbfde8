"""Motion accuracy on the synthetic suite: raw network output vs post-processed, per clip and overall.

    python benchmarks/accuracy.py --suite ci [--json FILE] [--vibe-data DIR] [--motions DIR [--reuse]]
                                  [--gt-focal] [--clips A,B] [-- EXTRA ENGINE ARGS]

Runs the real engine CLI (`python -m vibe_engine run`) on every clip of the suite the way a user
would: no `--focal`, so the engine's own focal path (container metadata, default, self-calibration)
is measured; `--gt-focal` passes each clip's true focal instead (the old protocol). It reads the motion file and compares the main track's 24 joints with the
ground truth (docs/benchmark-format.md). "raw" uses `pose_raw`/`transl_raw` (the network output
kept in the file), "post" the post-processed `pose`/`transl`. The full suite's clips are made on
demand with benchmarks/synthetic/make_clip.py.

``--motions DIR`` keeps the engine's motion files (``DIR/NAME.motion.npz``); with ``--reuse`` a
file already there is not recomputed: the current post-processing (default settings) is run
again on its raw output instead, to measure post-processing changes without the network.

The camera-motion cost (issue 10's speed row) is measured on the moving720 clip (1280×720) each
time its engine run is not reused: the run end to end with ``--camera auto`` against ``--camera
static``, median of COST_REPEATS each (:func:`camera_cost`).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import metrics as M  # noqa: E402
from benchmarks.synthetic.suite import MOVING_720P, SUITES, clip_dir, clips, is_moving  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402
from vibe_blender.core.body import forward_kinematics, shaped_rest  # noqa: E402
from vibe_blender.core.frames import into_cameras  # noqa: E402
from vibe_blender.core.rotations import aa_to_matrix  # noqa: E402

ROWS = [  # (key, label, unit)
    ("pa_mpjpe", "PA-MPJPE", "mm"), ("mpjpe", "MPJPE root-aligned", "mm"),
    ("mpjpe_bc", "MPJPE root-aligned, bias-corrected", "mm"), ("accel", "acceleration error", "mm/f²"),
    ("swing", "swing amplitude kept", "%"), ("skate", "foot skate in contact", "mm/f"),
    ("penetration", "ground penetration", "cm"), ("root", "root trajectory error", "% dist"),
    ("pck", "2D PCK@0.1 height", "%"), ("px2d", "2D joint error", "px"), ("detected", "detection rate", "%"),
]
WORLD_ROWS = [  # (key, label, unit): the engine's own world (ground, camera, scale) vs the truth
    ("up_error", "ground up-axis error", "deg"), ("height_error", "camera height error", "%"),
    ("depth_error", "depth scale error", "%"), ("focal_error", "focal error", "%"),
]


def ensure_clip(suite: str, name: str, args: list[str]) -> Path:
    """Path of the clip's video, making it first when it does not exist (full suite)."""
    base = clip_dir(suite) / name
    if not base.with_suffix(".mp4").exists():
        cmd = [sys.executable, str(ROOT / "benchmarks/synthetic/make_clip.py"), *args, "--out", str(base)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return base.with_suffix(".mp4")


def run_engine(video: Path, out: Path, focal: float | None, extra: list[str]) -> tuple[float, float]:
    """Run the engine CLI (``--focal`` only when ``focal`` is given); exit with its last error
    message when it fails. Returns the process's (wall s, CPU s: user + system, all its threads)."""
    cmd = [sys.executable, "-m", "vibe_engine", "run", str(video), "--out", str(out), "--ignore-stdin",
           *(["--focal", f"{focal:.6f}"] if focal is not None else []), *extra]
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        errors = [json.loads(line) for line in proc.stdout.splitlines() if '"error"' in line]
        msg = errors[-1].get("message") if errors else proc.stderr.strip()[-500:]
        raise SystemExit(f"engine failed on {video.name} (exit {proc.returncode}): {msg}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


#: Runs per camera mode for the camera-motion cost (MOVING_720P clips; medians).
COST_REPEATS = 5


def camera_cost(video: Path, extra: list[str]) -> dict[str, float]:
    """What the camera-motion stage adds to a run: the engine run end to end (start-up included)
    COST_REPEATS times with ``--camera auto`` and with ``--camera static`` alternately (the only
    difference: no background tracking and no path solve); (median auto − median static) / median
    auto, in % of wall time and of process CPU time. The stage itself runs in the decode thread,
    overlapped with the pose models, so its own timer also counts its waits for the CPU; this
    difference is its cost to the user."""
    extra = [a for i, a in enumerate(extra) if a != "--camera" and (i == 0 or extra[i - 1] != "--camera")]
    runs: dict[str, list[tuple[float, float]]] = {"auto": [], "static": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(COST_REPEATS):
            for mode in runs:
                runs[mode].append(run_engine(video, Path(tmp) / "cost.motion.npz", None, [*extra, "--camera", mode]))
    med = {m: [statistics.median(r[i] for r in runs[m]) for i in (0, 1)] for m in runs}
    return {f"cost_{kind}": 100.0 * (med["auto"][i] - med["static"][i]) / med["auto"][i]
            for i, kind in enumerate(("wall", "cpu"))}


def track_joints(motion: mf.Motion, track: mf.Track, raw: bool) -> np.ndarray:
    """Camera-frame joints (T,24,3) of a track from its (raw or post-processed) pose and transl."""
    pose = track.extra.get("pose_raw", track.pose) if raw else track.pose
    transl = track.extra.get("transl_raw", track.transl) if raw else track.transl
    _, rest = shaped_rest(motion.body, track.betas_track)
    g = forward_kinematics(aa_to_matrix(np.asarray(pose, np.float64)), rest, np.asarray(motion.body.parents))
    return g[:, :, :3, 3] + np.asarray(transl, np.float64)[:, None]


def project(points: np.ndarray, camera: dict) -> np.ndarray:
    """Pixels (T,J,2) of camera-frame points with the motion file's pinhole camera."""
    f, c = camera["focal_px"], np.array([camera["cx"], camera["cy"]])
    return points[..., :2] / points[..., 2:3] * f + c


def true_ref_path(gt: dict) -> np.ndarray:
    """True ref_from_camera (T,4,4): each frame's camera in the frame-0 camera (identity: static)."""
    path = np.asarray(gt.get("camera_world_from_camera", np.asarray(gt["world_from_camera"])[None]), np.float64)
    path = np.broadcast_to(path, (len(gt["times"]), 4, 4))
    return np.linalg.inv(path[0]) @ path


def est_ref_path(motion: mf.Motion) -> np.ndarray | None:
    """The engine's ref_from_camera (N,4,4) for a moving camera, None for a static one."""
    from vibe_engine.world.camera_path import reference_path

    return reference_path(motion)


def camera_joints(motion: mf.Motion, track: mf.Track, raw: bool) -> np.ndarray:
    """Joints (T,24,3) in each frame's own camera: raw output as is; post-processed joints (in the
    frame-0 camera for a moving camera) turned back with the engine's estimated path."""
    joints = track_joints(motion, track, raw)
    ref = est_ref_path(motion)
    if raw or ref is None:
        return joints
    return into_cameras(joints, ref[np.asarray(track.frames)])


def world_joints(motion: mf.Motion, track: mf.Track, raw: bool, gt: dict) -> np.ndarray:
    """World joints (T,24,3) with the TRUE cameras: post-processed joints (frame-0 camera) through
    the frame-0 camera; raw joints (each frame's camera) through each frame's true camera."""
    frames = np.asarray(track.frames)
    path = np.asarray(gt["world_from_camera"], np.float64) @ true_ref_path(gt)[frames]
    if raw:
        j = track_joints(motion, track, True)
        return np.einsum("tij,tnj->tni", path[:, :3, :3], j) + path[:, None, :3, 3]
    return M.to_world(track_joints(motion, track, False), gt["world_from_camera"])


def clip_metrics(motion: mf.Motion, gt: dict, raw: bool) -> dict[str, float]:
    """Every metric of one clip for the main (longest) track."""
    track = max(motion.tracks, key=lambda t: t.num_frames)
    frames = np.asarray(track.frames)
    pred = camera_joints(motion, track, raw)
    truth = gt["joints_cam"][frames]
    pred_w, truth_w = world_joints(motion, track, raw, gt), gt["joints_world"][frames]
    height = gt["bbox"][frames, 3] - gt["bbox"][frames, 1]
    cam = dict(motion.meta["camera"])
    focal = np.asarray(motion.camera.get("focal_px", np.full(len(gt["times"]), cam["focal_px"])))[frames]
    pred_px = project(pred, {**cam, "focal_px": focal[:, None, None]})
    return {
        "pa_mpjpe": M.pa_mpjpe(pred, truth), "mpjpe": M.mpjpe_root_aligned(pred, truth),
        "mpjpe_bc": M.mpjpe_root_aligned(pred, truth, bias_corrected=True),
        "accel": M.accel_error(pred, truth), "swing": M.swing_kept(pred, truth),
        "skate": M.foot_skate(pred_w, gt["contacts"][frames]), "penetration": M.ground_penetration(pred_w, truth_w),
        "root": M.root_trajectory_error(pred_w, truth_w),
        "pck": M.pck_2d(pred_px, gt["joints_2d"][frames], height),
        "px2d": M.joint_error_2d(pred_px, gt["joints_2d"][frames]),
        "detected": M.detection_rate(frames, np.flatnonzero(gt["visible"])),
    }


def camera_metrics(motion: mf.Motion, gt: dict, moving: bool) -> dict[str, float]:
    """Camera path vs the truth over every frame: rotation error (deg, mean), position error (cm,
    mean, relative to frame 0), static/moving decision right (1/0)."""
    from vibe_engine.world.camera_motion import rotation_angle_deg

    truth = true_ref_path(gt)
    est = est_ref_path(motion)
    est = np.repeat(np.eye(4)[None], len(truth), 0) if est is None else est[: len(truth)]
    rot = rotation_angle_deg(np.einsum("tji,tjk->tik", est[:, :3, :3], truth[:, :3, :3]))
    pos = np.linalg.norm(est[:, :3, 3] - truth[:, :3, 3], axis=-1)
    kind = motion.meta.get("world", {}).get("camera_motion", "static")
    timings = motion.meta.get("manifest", {}).get("timings_s", {})
    share = 100.0 * timings.get("camera_motion", 0.0) / max(sum(timings.values()), 1e-9)
    return {"rot_error": float(rot.mean()), "rot_max": float(rot.max()), "pos_error": float(pos.mean() * 100.0),
            "detect_ok": float((kind == "moving") == moving), "time_share": float(share),
            "cost_wall": float("nan"), "cost_cpu": float("nan")}


def world_metrics(motion: mf.Motion, gt: dict) -> dict[str, float]:
    """The engine's world vs the truth for the main track: ground normal (deg), camera height (%),
    depth scale (%: median pelvis depth ratio, post-processed) and focal (%); NaN without a ground."""
    track = max(motion.tracks, key=lambda t: t.num_frames)
    frames = np.asarray(track.frames)
    depth = np.median(camera_joints(motion, track, raw=False)[:, 0, 2] / gt["joints_cam"][frames, 0, 2])
    true_m = np.asarray(gt["world_from_camera"], np.float64)
    out = {"depth_error": abs(depth - 1.0) * 100.0,
           "focal_error": abs(motion.meta["camera"]["focal_px"] / gt["K"][0, 0] - 1.0) * 100.0,
           "up_error": float("nan"), "height_error": float("nan")}
    m = motion.meta.get("world", {}).get("world_from_camera")
    if m is not None:
        m = np.asarray(m, np.float64)
        cos = np.clip(m[2, :3] @ true_m[2, :3], -1.0, 1.0)  # world up in camera coordinates
        out["up_error"] = float(np.degrees(np.arccos(cos)))
        out["height_error"] = abs(m[2, 3] / true_m[2, 3] - 1.0) * 100.0
    return out


def repostprocess(motion: mf.Motion) -> mf.Motion:
    """Run the current post-processing (default settings) again on a motion file's raw output."""
    from vibe_engine.postprocess.run import postprocess

    cam = motion.meta["camera"]
    moving = motion.meta.get("world", {}).get("camera_motion") == "moving"
    if "focal_px_default" in cam and not moving:  # undo a static self-calibration (raw made at the default)
        k = cam["focal_px"] / cam["focal_px_default"]
        for track in motion.tracks:
            track.extra["transl_raw"] = np.array(track.extra["transl_raw"], np.float32) / np.float32([1, 1, k])
        cam.update(focal_px=cam.pop("focal_px_default"), source="default")
    for track in motion.tracks:
        track.pose = np.array(track.extra.get("pose_raw", track.pose), np.float32)
        track.transl = np.array(track.extra.get("transl_raw", track.transl), np.float32)
        track.extra.pop("contacts", None)
    return postprocess(motion)


def reused_motion(keep: Path | None, reuse: bool, name: str) -> Path | None:
    """The kept motion file of clip ``name`` that ``--reuse`` post-processes again, or None (the
    engine runs)."""
    path = None if keep is None else keep / f"{name}.motion.npz"
    return path if reuse and path is not None and path.exists() else None


def clip_motion(video: Path, gt: dict, extra: list[str], keep: Path | None, reuse: bool,
                gt_focal: bool = False) -> mf.Motion:
    """The engine's motion for one clip (kept in / reused from ``keep`` when given)."""
    name = video.with_suffix("").name
    kept = reused_motion(keep, reuse, name)
    if kept is not None:
        return repostprocess(mf.read_motion(kept))
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / f"{name}.motion.npz"
        run_engine(video, out, float(gt["K"][0, 0]) if gt_focal else None, extra)
        return mf.read_motion(out)


# The 12 limb joints both skeletons define: BlazePose landmark index → SMPL joint index.
LIMB_LANDMARKS = {11: 16, 12: 17, 13: 18, 14: 19, 15: 20, 16: 21, 23: 1, 24: 2, 25: 4, 26: 5, 27: 7, 28: 8}
LANDMARK_ROWS = [("pa_mpjpe", "PA-MPJPE", "mm"), ("mpjpe", "MPJPE hip-aligned", "mm"),
                 ("accel", "acceleration error", "mm/f²")]


def _hip_aligned(joints: np.ndarray) -> np.ndarray:
    """12 limb joints (T,12,3) relative to their hip midpoint (entries 6, 7 = left/right hip)."""
    return joints - joints[:, 6:8].mean(1, keepdims=True)


def _limb_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PA-MPJPE, hip-aligned MPJPE and acceleration error (mm, mm/f²) on the 12 limb joints."""
    p, t = _hip_aligned(pred), _hip_aligned(truth)
    acc = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]
    return {"pa_mpjpe": M.pa_mpjpe(pred, truth), "mpjpe": M.mpjpe(p, t),
            "accel": float(np.linalg.norm(acc(p) - acc(t), axis=-1).mean() * M.MM)}


def landmark_metrics(motion: mf.Motion, gt: dict) -> dict[str, dict[str, float]] | None:
    """Raw BlazePose world landmarks vs the fitted SMPL (raw and post) on the 12 limb joints, over the
    frames where a pose was found; None when the file has no landmarks (VIBE backend)."""
    track = max(motion.tracks, key=lambda t: t.num_frames)
    world = track.extra.get("landmarks_world")
    if world is None:
        return None
    found = np.all(np.isfinite(world[:, list(LIMB_LANDMARKS)]), axis=(1, 2))
    frames = np.asarray(track.frames)[found]
    truth = gt["joints_cam"][frames][:, list(LIMB_LANDMARKS.values())]
    out = {"landmarks": _limb_metrics(world[found][:, list(LIMB_LANDMARKS)].astype(np.float64), truth)}
    for kind in ("raw", "post"):
        fitted = track_joints(motion, track, raw=kind == "raw")[found][:, list(LIMB_LANDMARKS.values())]
        out[f"smpl_{kind}"] = _limb_metrics(fitted, truth)
    return out


def print_landmark_table(results: dict) -> None:
    """Raw landmarks vs fitted SMPL (12 limb joints), per clip and overall; skipped without landmarks."""
    rows = {c: r["landmarks"] for c, r in results.items() if r.get("landmarks")}
    if not rows:
        return
    kinds = ("landmarks", "smpl_raw", "smpl_post")
    rows["overall"] = {k: {m: float(np.mean([r[k][m] for r in rows.values()])) for m, _, _ in LANDMARK_ROWS}
                       for k in kinds}
    print("\nBlazePose raw landmarks vs fitted SMPL, 12 limb joints (landmarks / SMPL raw / SMPL post)")
    print(f"{'metric':26s}" + "".join(f"{c[:20]:>24s}" for c in rows))
    for key, label, unit in LANDMARK_ROWS:
        cells = "".join(f"{'/'.join(f'{rows[c][k][key]:.1f}' for k in kinds):>24s}" for c in rows)
        print(f"{label + ' (' + unit + ')':26s}{cells}")


def evaluate(suite: str, extra: list[str], keep: Path | None = None, reuse: bool = False,
             gt_focal: bool = False, only: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{clip: {"raw": metrics, "post": metrics, "world": metrics, "backend": name}} for every clip
    of the suite (or the clips named in ``only``)."""
    results = {}
    for name, args in clips(suite).items():
        if only and name not in only:
            continue
        video = ensure_clip(suite, name, args)
        with np.load(video.with_suffix("").with_suffix(".gt.npz"), allow_pickle=False) as z:
            gt = {k: z[k] for k in z.files}
        ran = reused_motion(keep, reuse, name) is None
        motion = clip_motion(video, gt, extra, keep, reuse, gt_focal)
        cost = camera_cost(video, extra) if ran and name in MOVING_720P else {}
        results[name] = {"raw": clip_metrics(motion, gt, raw=True),
                         "post": clip_metrics(motion, gt, raw=False),
                         "world": world_metrics(motion, gt),
                         "camera": {**camera_metrics(motion, gt, is_moving(name)), **cost},
                         "moving": is_moving(name),
                         "focal_source": motion.meta["camera"].get("source"),
                         "camera_kind": motion.meta.get("world", {}).get("camera_motion", "static"),
                         "up_source": motion.meta.get("world", {}).get("up_source"),
                         "backend": motion.meta.get("manifest", {}).get("backend"),
                         "landmarks": landmark_metrics(motion, gt)}
    return results


def overall(results: dict) -> dict[str, dict[str, float]]:
    """Mean of each metric over the clips, for raw and post (world: over the clips with a ground)."""
    out = {kind: {k: float(np.mean([r[kind][k] for r in results.values()])) for k, _, _ in ROWS}
           for kind in ("raw", "post")}
    out["world"] = {k: _nanmean([r["world"][k] for r in results.values()]) for k, _, _ in WORLD_ROWS}
    return out


def print_world_table(results: dict) -> None:
    """The engine's own world (ground, camera height, depth scale, focal) per clip and overall."""
    cols = list(results) + ["overall"]
    data = {**results, "overall": overall(results)}
    print("\nWorld from the video (post-processed; '-' = no ground found)")
    print(f"{'metric':38s}" + "".join(f"{c[:20]:>22s}" for c in cols))
    for key, label, unit in WORLD_ROWS:
        cells = "".join(f"{data[c]['world'][key]:22.1f}" if np.isfinite(data[c]["world"][key]) else f"{'-':>22s}"
                        for c in cols)
        print(f"{label + ' (' + unit + ')':38s}{cells}")
    print(f"{'focal source':38s}" + "".join(f"{str(results[c].get('focal_source')):>22s}" for c in results))
    print(f"{'ground normal from':38s}" + "".join(f"{str(results[c].get('up_source')):>22s}" for c in results))


def print_table(results: dict) -> None:
    """One table: metric rows, raw/post columns per clip and overall."""
    cols = list(results) + ["overall"]
    data = {**results, "overall": overall(results)}
    head = f"{'metric':38s}" + "".join(f"{c[:18]:>22s}" for c in cols)
    print(head + "\n" + f"{'':38s}" + "".join(f"{'raw':>11s}{'post':>11s}" for _ in cols))
    for key, label, unit in ROWS:
        row = f"{label + ' (' + unit + ')':38s}"
        row += "".join(f"{data[c]['raw'][key]:11.1f}{data[c]['post'][key]:11.1f}" for c in cols)
        print(row)
    backends = {r["backend"] for r in results.values()}
    print(f"backend: {', '.join(sorted(map(str, backends)))}")


CAMERA_ROWS = [("rot_error", "camera rotation error, mean", "deg"), ("rot_max", "camera rotation error, max", "deg"),
               ("pos_error", "camera position error", "cm"), ("detect_ok", "static/moving decision right", "1/0"),
               ("time_share", "camera-motion stage timer / all timers", "%"),
               ("cost_wall", "camera-motion cost, wall (auto vs static)", "%"),
               ("cost_cpu", "camera-motion cost, CPU (auto vs static)", "%")]


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there is none)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def print_camera_table(results: dict) -> None:
    """The camera path vs the truth per clip and overall."""
    cols = list(results) + ["overall"]
    data = {**{c: r["camera"] for c, r in results.items()},
            "overall": {k: _nanmean([r["camera"][k] for r in results.values()]) for k, _, _ in CAMERA_ROWS}}
    print("\nCamera path (engine vs truth, every frame; cost rows: --camera auto vs static end to end, "
          f"median of {COST_REPEATS} runs each, on the {', '.join(MOVING_720P)} clip only)")
    print(f"{'metric':44s}" + "".join(f"{c[:20]:>22s}" for c in cols))
    for key, label, unit in CAMERA_ROWS:
        print(f"{label + ' (' + unit + ')':44s}" + "".join(f"{data[c][key]:22.2f}" if np.isfinite(data[c][key])
                                                            else f"{'-':>22s}" for c in cols))
    print(f"{'decision':44s}" + "".join(f"{str(r.get('camera_kind')):>22s}" for r in results.values()))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=SUITES, default="ci")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--vibe-data", metavar="DIR", help="run the VIBE backend with this data folder")
    p.add_argument("--motions", metavar="DIR", type=Path, help="keep the engine's motion files in DIR")
    p.add_argument("--reuse", action="store_true", help="with --motions: post-process kept files again "
                   "instead of running the engine")
    p.add_argument("--gt-focal", action="store_true", help="pass each clip's true focal (--focal) to the engine")
    p.add_argument("--clips", type=lambda v: [c for c in v.split(",") if c], help="only these clips (comma-separated)")
    a = p.parse_args(own)
    if a.reuse and not a.motions:
        p.error("--reuse needs --motions DIR (the folder of kept motion files)")
    if a.vibe_data:
        extra = ["--vibe-data", a.vibe_data, *extra]
    if a.motions:
        a.motions.mkdir(parents=True, exist_ok=True)
    results = evaluate(a.suite, extra, a.motions, a.reuse, a.gt_focal, a.clips)
    static = {c: r for c, r in results.items() if not r["moving"]}
    moving = {c: r for c, r in results.items() if r["moving"]}
    for title, group in (("Static cameras", static), ("Moving cameras", moving)):
        if group:
            print(f"\n== {title} ==")
            print_table(group)
            print_world_table(group)
            print_camera_table(group)
    print_landmark_table(results)
    if a.json:
        Path(a.json).write_text(json.dumps({"clips": results, "overall": overall(results)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
