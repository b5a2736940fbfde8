"""Make one synthetic benchmark clip with exact ground truth (format: docs/benchmark-format.md).

    python benchmarks/synthetic/make_clip.py --bvh 01_01.bvh --start 2.0 --seconds 5 \
        --betas 0,0,0 --camera front --seed 0 --out DIR/NAME

BVH (CMU, y up) → SMPL-layout pose on the CC0 stand-in body (bone-direction retarget) → posed
mesh by linear blend skinning → Workbench render with the bpy wheel from a static camera →
H.264 video (ffmpeg) + ``NAME.gt.npz``. Deterministic for the same arguments.

``--camera-motion`` moves the camera over the clip (static by default): ``pan`` and ``tilt``
(rotation about the camera centre), ``shake`` (handheld: small smoothed random rotation and
translation), ``dolly`` (the camera travels along with the walker, keeping its distance) and
``zoom`` (the focal length changes). The per-frame camera is in the ground truth
(``camera_world_from_camera`` (T,4,4), ``focal_px`` (T,)).

``--platform H,T0,T1`` puts the person on a box H m high at the start; between clip times T0 and
T1 (s, a jump's take-off and landing) the body comes down to the floor (a smooth step added to its
height), and the box's front edge lies halfway between the take-off and the landing feet. The
floor stays the world's ground (z = 0); the ground truth gets ``support_height`` (T,) m (the level
the person stands on) and ``platform`` (8,3) (the box's corners, world), and its contacts are
measured from the level below the feet.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.synthetic.bvh import forward_kinematics, read_bvh  # noqa: E402
from benchmarks.synthetic.retarget import CMU_MAP, retarget  # noqa: E402
from vibe_blender.core.body import lbs_with_joints, shaped_rest  # noqa: E402

BVH_DIR = Path("/usr/share/assimp/models/BVH")  # Debian package assimp-testmodels
SMPL_TO_ZUP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # (x, y, z)_smpl → (x, −z, y)
CONTACT_HEIGHT = 0.05  # m above the joint's lowest height
CONTACT_SPEED = 0.25  # m/s
FOOT_JOINTS = (7, 10, 8, 11)
# camera presets: (azimuth of the camera around the path centre in degrees, distance m, height m)
CAMERAS = {"front": (0.0, 6.0, 1.4), "side": (90.0, 6.0, 1.3), "diagonal": (40.0, 6.5, 1.8),
           "high": (-30.0, 7.0, 3.0), "down": (20.0, 4.5, 4.2), "low": (-15.0, 5.5, 0.35)}
CAMERA_MOTIONS = ("none", "pan", "tilt", "shake", "dolly", "zoom")
PAN_DEG, TILT_DEG = 12.0, 6.0  # amplitude of the pan / tilt sweeps
SHAKE_DEG, SHAKE_M = 0.8, 0.01  # handheld shake: rotation (deg) and translation (m) standard deviations
SHAKE_SMOOTH_S = 0.15  # time constant of the shake (s)
ZOOM_RANGE = 1.3  # zoom: the focal grows by this factor over the clip
PLATFORM_DEPTH, PLATFORM_HALF_WIDTH = 2.0, 0.8  # m: the box behind its edge, and to each side of the feet


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """world_from_camera (4,4) of an upright OpenCV camera at ``centre`` looking at ``target`` (z-up world)."""
    z = (target - centre) / np.linalg.norm(target - centre)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, :3] = np.stack([x, y, z], 1)
    m[:3, 3] = centre
    return m


def _rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(T,3,3) rotations by ``angle`` (T,) radians about the unit ``axis`` (3,) (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.asarray(angle, np.float64)[:, None, None]
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def _smoothed_noise(rng: np.random.Generator, shape: tuple, fps: float) -> np.ndarray:
    """Unit-variance Gaussian noise (T,...) smoothed over SHAKE_SMOOTH_S (exponential, both ways)."""
    x = rng.normal(0, 1, shape)
    a = np.exp(-1.0 / (SHAKE_SMOOTH_S * fps))
    for order in (slice(None), slice(None, None, -1)):
        y = x[order].copy()
        for t in range(1, len(y)):
            y[t] = a * y[t - 1] + (1 - a) * y[t]
        x = y[order]
    return x / x.std(axis=0, keepdims=True)


def camera_path(base: np.ndarray, kind: str, focal: float, root: np.ndarray, fps: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame world_from_camera (T,4,4) and focal (T,) px of a camera ``kind`` around ``base``
    (4,4, OpenCV camera → z-up world); ``root`` (T,3) is the walker's pelvis (dolly follows it)."""
    n = len(root)
    phase = np.linspace(0.0, 1.0, n)
    m = np.repeat(base[None], n, axis=0)
    rot = np.repeat(np.eye(3)[None], n, axis=0)  # rotation in the camera's own frame (right-multiplied)
    if kind == "pan":
        rot = _rotation(np.array([0.0, 1.0, 0.0]), np.radians(PAN_DEG) * np.sin(2 * np.pi * phase))
    elif kind == "tilt":
        rot = _rotation(np.array([1.0, 0.0, 0.0]), np.radians(TILT_DEG) * np.sin(2 * np.pi * phase))
    elif kind == "shake":
        angles = np.radians(SHAKE_DEG) * _smoothed_noise(rng, (n, 3), fps)
        for i in range(3):
            rot = rot @ _rotation(np.eye(3)[i], angles[:, i])
        m[:, :3, 3] += SHAKE_M * _smoothed_noise(rng, (n, 3), fps)
    elif kind == "dolly":
        m[:, :2, 3] += root[:, :2] - root[0, :2]
    m[:, :3, :3] = m[:, :3, :3] @ rot
    focals = np.full(n, focal) * (np.geomspace(1.0, ZOOM_RANGE, n) if kind == "zoom" else 1.0)
    return m, focals


def _motion(bvh_path: Path, start_s: float, seconds: float, fps: float, rest: np.ndarray, parents):
    """Pose (T,24,3), transl (T,3) in the SMPL frame, resampled to ``fps``, scaled to the body."""
    bvh = read_bvh(bvh_path)
    src = np.round((start_s + np.arange(int(round(seconds * fps))) / fps) * bvh.fps).astype(int)
    if src[-1] >= bvh.motion.shape[0]:
        raise SystemExit(f"{bvh_path.name} is only {bvh.motion.shape[0] / bvh.fps:.1f} s long")
    pos = forward_kinematics(bvh, slice(None))[src][:, [bvh.names.index(n) for n in CMU_MAP]]
    leg = lambda p: np.linalg.norm(p[..., 1, :] - p[..., 4, :], axis=-1) + np.linalg.norm(p[..., 4, :] - p[..., 7, :], axis=-1)
    pos = pos * (leg(rest) / np.median(leg(pos)))
    pos[..., [0, 2]] -= pos[0, 0, [0, 2]]  # start above the origin
    return retarget(pos, rest, parents)


def _contacts(joints_world: np.ndarray, fps: float, support: np.ndarray | None = None) -> np.ndarray:
    """Ground-truth foot contacts (T,4) for FOOT_JOINTS from height (above the ``support`` level (T,)
    m, the floor when None) and speed."""
    feet = joints_world[:, list(FOOT_JOINTS)].copy()
    speed = np.linalg.norm(np.gradient(feet, 1.0 / fps, axis=0), axis=-1)
    if support is not None:
        feet[..., 2] -= support[:, None]
    low = feet[..., 2] <= feet[..., 2].min(0) + CONTACT_HEIGHT
    return low & (speed <= CONTACT_SPEED)


def platform_support(times: np.ndarray, height: float, t0: float, t1: float) -> np.ndarray:
    """Support level (T,) m at ``times`` (T,) s: ``height`` until t0, smoothstep down to 0 at t1."""
    u = np.clip((np.asarray(times, np.float64) - t0) / max(t1 - t0, 1e-6), 0.0, 1.0)
    return height * (1.0 - u * u * (3.0 - 2.0 * u))


def platform_box(joints_world: np.ndarray, height: float, takeoff: int, landing: int) -> np.ndarray:
    """Corners (8,3) of the box (world, z up) the person leaves at frame ``takeoff`` to land at
    ``landing``: its front edge halfway between the feet at those frames (along the jump), the box
    PLATFORM_DEPTH behind it and PLATFORM_HALF_WIDTH to each side of the take-off feet."""
    a = joints_world[takeoff, list(FOOT_JOINTS), :2]
    b = joints_world[landing, list(FOOT_JOINTS), :2]
    d = b.mean(0) - a.mean(0)
    d /= np.linalg.norm(d)
    side = np.array([-d[1], d[0]])
    edge = 0.5 * ((a @ d).max() + (b @ d).min())
    centre = a.mean(0) @ side
    corners = [s * d + w * side for s in (edge - PLATFORM_DEPTH, edge)
               for w in (centre - PLATFORM_HALF_WIDTH, centre + PLATFORM_HALF_WIDTH)]
    return np.array([[*c, z] for z in (0.0, height) for c in corners])


def _project(points_world: np.ndarray, world_from_camera: np.ndarray, focal: np.ndarray, centre: np.ndarray):
    """Camera-frame points (T,N,3) and pixels (T,N,2) of world points (T,N,3) for per-frame
    cameras (T,4,4) and focals (T,) px; ``centre`` (2,) the principal point."""
    cam = np.linalg.inv(world_from_camera)
    pc = np.einsum("tij,tnj->tni", cam[:, :3, :3], points_world) + cam[:, None, :3, 3]
    px = pc[..., :2] / pc[..., 2:3] * np.asarray(focal)[:, None, None] + centre
    return pc, px


def build(args: argparse.Namespace) -> dict:
    """Compute the ground truth and the posed meshes for ``args``; returns arrays and metadata."""
    from vibe_engine.blazepose.standin_body import load_standin_body

    body = SimpleNamespace(**load_standin_body())
    betas = np.zeros(10)
    betas[: len(args.betas)] = args.betas
    _, rest = shaped_rest(body, betas)
    pose, transl = _motion(BVH_DIR / args.bvh if not Path(args.bvh).exists() else Path(args.bvh),
                           args.start, args.seconds, args.fps, rest, body.parents)
    verts, joints = lbs_with_joints(body, betas, pose, transl, use_posedirs=False)
    verts, joints = verts @ SMPL_TO_ZUP.T, joints @ SMPL_TO_ZUP.T
    floor = verts[..., 2].min()
    verts[..., 2] -= floor
    joints[..., 2] -= floor
    times = np.arange(len(pose)) / args.fps
    support, box = np.zeros(len(pose)), None
    if args.platform:
        h, t0, t1 = args.platform
        support = platform_support(times, h, t0, t1)
        verts[..., 2] += support[:, None]
        joints[..., 2] += support[:, None]
        box = platform_box(joints, h, int(round(t0 * args.fps)), int(round(t1 * args.fps)))
    az, dist, height = CAMERAS[args.camera]
    rng = np.random.default_rng(args.seed)
    centre = joints[:, 0].mean(0) * np.array([1, 1, 0]) + np.array([0, 0, 0.9])
    az = np.radians(az + rng.uniform(-5, 5))
    eye = centre + np.array([np.sin(az) * dist, -np.cos(az) * dist, height - 0.9])
    f = args.width * args.focal_mm / 36.0
    k = np.array([[f, 0, args.width / 2], [0, f, args.height / 2], [0, 0, 1]])
    path, focals = camera_path(_look_at(eye, centre), args.camera_motion, f, joints[:, 0], args.fps, rng)
    joints_cam, joints_px = _project(joints, path, focals, k[:2, 2])
    _, verts_px = _project(verts, path, focals, k[:2, 2])
    m = path[0]
    lo, hi = verts_px.min(1), verts_px.max(1)
    visible = (lo[:, 0] >= 0) & (lo[:, 1] >= 0) & (hi[:, 0] < args.width) & (hi[:, 1] < args.height)
    extra = {} if box is None else {"platform": box, "support_height": support}
    return dict(
        verts=verts, faces=np.asarray(body.faces), weights=np.asarray(body.weights), box=box,
        gt=dict(
            **extra, times=times, joints_world=joints, joints_cam=joints_cam,
            joints_2d=joints_px, root_world=joints[:, 0], contacts=_contacts(joints, args.fps, support),
            pose=pose, transl=transl, betas=betas, K=k, world_from_camera=m,
            camera_world_from_camera=path, focal_px=focals,
            bbox=np.concatenate([lo, hi], 1), visible=visible,
        ),
    )


def encode(png_dir: Path, fps: float, out: Path) -> None:
    """PNG frames → H.264 mp4 (ffmpeg from Debian)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found: run `make apt` (installs Debian's ffmpeg)")
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"{fps}", "-i", str(png_dir / "%05d.png"),
           "-c:v", "libx264", "-preset", "slow", "-crf", "20", "-pix_fmt", "yuv420p", str(out)]
    subprocess.run(cmd, check=True)


def _platform(text: str) -> tuple[float, float, float]:
    """``H,T0,T1`` → (height m, take-off s, landing s); argparse error unless 0 < H ≤ 2, 0 ≤ T0 < T1."""
    try:
        h, t0, t1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--platform wants H,T0,T1 (three numbers), got {text!r}") from None
    if not (0.0 < h <= 2.0 and 0.0 <= t0 < t1):
        raise argparse.ArgumentTypeError(f"--platform {text}: need 0 < H <= 2 m and 0 <= T0 < T1 s")
    return h, t0, t1


def main(argv: list[str] | None = None) -> int:
    """CLI entry: build, render, encode, write ground truth and a JSON sidecar."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bvh", default="01_01.bvh")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the BVH")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--betas", type=lambda s: [float(v) for v in s.split(",") if v], default=[])
    p.add_argument("--camera", choices=sorted(CAMERAS), default="front")
    p.add_argument("--camera-motion", choices=CAMERA_MOTIONS, default="none")
    p.add_argument("--focal-mm", type=float, default=35.0, help="on a 36 mm wide sensor")
    p.add_argument("--width", type=int, default=960)
    p.add_argument("--height", type=int, default=540)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--render-aa", choices=("8", "FXAA"), default="8", help="Workbench anti-aliasing")
    p.add_argument("--platform", type=_platform, default=None, metavar="H,T0,T1",
                   help="start on a box H m high, come down to the floor between T0 and T1 s")
    p.add_argument("--out", required=True, help="output path without extension")
    args = p.parse_args(argv)
    from benchmarks.synthetic.render import render_frames, vertex_colours

    data = build(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        gt = data["gt"]
        render_frames(data["verts"], data["faces"], vertex_colours(data["weights"]), Path(tmp),
                      gt["camera_world_from_camera"], gt["focal_px"], args.width, args.height, args.render_aa,
                      box=data["box"])
        encode(Path(tmp), args.fps, out.with_suffix(".mp4"))
    settings = {k: v for k, v in vars(args).items()}
    np.savez_compressed(out.with_suffix(".gt.npz"), **data["gt"],
                        meta_json=np.frombuffer(json.dumps(settings).encode(), np.uint8))
    print(json.dumps({"video": str(out.with_suffix(".mp4")), "frames": int(len(data["gt"]["times"])),
                      "visible": float(data["gt"]["visible"].mean())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
