"""The motion file (``vibe-mocap-motion`` v1): pure-numpy reader, writer and validator.

Shared by the engine (which writes it) and the add-on (which bakes it). Standard library and
numpy only, so it runs in Blender's Python 3.11/3.13, in the engine venv and in plain pytest.
The format is specified in ``docs/motion-file.md``; this module is its reference implementation.

Container: an ``.npz`` archive, loaded with ``allow_pickle=False``. Members: ``meta`` (uint8
UTF-8 JSON), ``body/<array>`` (SMPL-layout body model) and ``track/<id>/<array>`` per person.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from .errors import MotionFileError

FORMAT = "vibe-mocap-motion"
VERSION = 1
NUM_JOINTS = 24
SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Track members: name -> (trailing shape with symbolic dims, dtype). T frames, B betas, J joints.
TRACK_ARRAYS: dict[str, tuple[tuple[int | str, ...], type]] = {
    "frames": ((), np.int64),
    "times": ((), np.float64),
    "pose": ((NUM_JOINTS, 3), np.float32),
    "betas": (("B",), np.float32),
    "transl": ((3,), np.float32),
    "cam_crop": ((3,), np.float32),
    "cam_orig": ((4,), np.float32),
    "bbox": ((4,), np.float32),
    "joints3d": (("J", 3), np.float32),
    "joints2d": (("J", 2), np.float32),
    "confidence": ((), np.float32),
    "detected": ((), np.bool_),
}
OPTIONAL_TRACK_ARRAYS: dict[str, tuple[tuple[int | str, ...], type]] = {
    "pose_raw": ((NUM_JOINTS, 3), np.float32),
    "transl_raw": ((3,), np.float32),
    "contacts": ((4,), np.bool_),
    "joints3d_raw": (("J", 3), np.float32),  # joints3d/joints2d of the raw fit (the main ones are final)
    "joints2d_raw": (("J", 2), np.float32),
    # BlazePose backend: the raw landmarks the fit used (NaN rows where no pose was found)
    "landmarks_image": ((33, 3), np.float32),
    "landmarks_world": ((33, 3), np.float32),
    "visibility": ((33,), np.float32),
    "presence": ((33,), np.float32),
}
NAN_ALLOWED = {"landmarks_image", "landmarks_world", "visibility", "presence"}
# Optional per-video-frame camera members (``camera/<name>``; N = meta.video.frames): a moving
# camera's path (docs/motion-file.md "Moving camera"). Absent for a static camera.
CAMERA_ARRAYS: dict[str, tuple[tuple[int, ...], type]] = {
    "world_from_camera": ((4, 4), np.float64),
    "focal_px": ((), np.float64),
}
BODY_ARRAYS: dict[str, type] = {
    "v_template": np.float32, "shapedirs": np.float32, "J_regressor": np.float32,
    "weights": np.float32, "parents": np.int32, "faces": np.int32,
}
OPTIONAL_BODY_ARRAYS: dict[str, type] = {"posedirs": np.float32}


@dataclass
class BodyModel:
    """SMPL-layout body model. V vertices, B shape components; SMPL canonical frame (y up), metres.

    v_template (V,3); shapedirs (V,3,B); posedirs (207,3V) or None; J_regressor (24,V);
    weights (V,24); parents (24,) int32 with -1 at the root; faces (F,3) int32.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    posedirs: np.ndarray | None = None

    @property
    def num_betas(self) -> int:
        """Number of shape components B."""
        return int(self.shapedirs.shape[2])


@dataclass
class Track:
    """One tracked person over T frames (member meanings: docs/motion-file.md)."""

    id: int
    frames: np.ndarray
    times: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    betas_track: np.ndarray
    transl: np.ndarray
    cam_crop: np.ndarray
    cam_orig: np.ndarray
    bbox: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Number of frames T the track covers."""
        return int(self.frames.shape[0])


@dataclass
class Motion:
    """A whole motion file: header, body model and tracks (ordered by id)."""

    meta: dict[str, Any]
    body: BodyModel
    tracks: list[Track]
    camera: dict[str, np.ndarray] = field(default_factory=dict)  # CAMERA_ARRAYS, per video frame

    def track(self, track_id: int) -> Track:
        """Return the track with this id; MotionFileError naming the ids present otherwise."""
        for t in self.tracks:
            if t.id == int(track_id):
                return t
        ids = ", ".join(str(t.id) for t in self.tracks) or "none"
        raise MotionFileError(f"track {track_id} is not in the motion file (tracks: {ids})")


def track_summary(track: Track) -> dict[str, Any]:
    """Summary of one track: id, frame count, first/last frame, mean confidence, detected share."""
    n = track.num_frames
    return {
        "id": track.id,
        "frames": n,
        "first": int(track.frames[0]) if n else None,
        "last": int(track.frames[-1]) if n else None,
        "mean_confidence": float(np.mean(np.asarray(track.confidence, np.float32))) if n else 0.0,
        "detected_fraction": float(np.mean(track.detected)) if n else 0.0,
    }


def summary(motion: Motion) -> dict[str, Any]:
    """Machine-readable summary: ``video`` {frames, fps, width, height, ...} and ``tracks``."""
    video = motion.meta.get("video", {})
    return {
        "format": motion.meta.get("format"),
        "version": motion.meta.get("version"),
        "video": {k: video.get(k) for k in ("frames", "fps", "width", "height", "duration", "rotation", "vfr")},
        "backend": motion.meta.get("manifest", {}).get("backend"),
        "body": motion.meta.get("body", {}).get("kind"),
        "tracks": [track_summary(t) for t in motion.tracks],
    }


# --------------------------------------------------------------------------- validation


def _check_array(where: str, arr: np.ndarray, trailing: tuple, dims: dict[str, int], n: int,
                 allow_nan: bool = False) -> None:
    """Check ``arr`` has shape (n, *trailing), binding symbolic dims in ``dims``; finite unless ``allow_nan``."""
    shape = arr.shape
    if len(shape) != 1 + len(trailing) or shape[0] != n:
        raise MotionFileError(f"{where} has shape {shape}, expected ({n}, {', '.join(map(str, trailing))})")
    for size, want in zip(shape[1:], trailing):
        if isinstance(want, str):
            want = dims.setdefault(want, size)
        if size != want:
            raise MotionFileError(f"{where} has shape {shape}; dimension should be {want}")
    if arr.dtype.kind == "f" and not allow_nan and not np.all(np.isfinite(arr)):
        raise MotionFileError(f"{where} contains NaN or infinite values")


def _validate_body(body: BodyModel) -> None:
    """Check the body model's shapes against each other."""
    V = body.v_template.shape[0]
    expect = {
        "v_template": (V, 3), "J_regressor": (NUM_JOINTS, V), "weights": (V, NUM_JOINTS),
        "parents": (NUM_JOINTS,),
    }
    for name, shape in expect.items():
        got = getattr(body, name).shape
        if got != shape:
            raise MotionFileError(f"body/{name} has shape {got}, expected {shape}")
    if body.shapedirs.ndim != 3 or body.shapedirs.shape[:2] != (V, 3):
        raise MotionFileError(f"body/shapedirs has shape {body.shapedirs.shape}, expected ({V}, 3, B)")
    if body.faces.ndim != 2 or body.faces.shape[1] != 3 or body.faces.size == 0:
        raise MotionFileError(f"body/faces has shape {body.faces.shape}, expected (F, 3)")
    if body.faces.min() < 0 or body.faces.max() >= V:
        raise MotionFileError("body/faces refers to vertices outside the mesh")
    if body.posedirs is not None and body.posedirs.shape != (9 * (NUM_JOINTS - 1), 3 * V):
        raise MotionFileError(f"body/posedirs has shape {body.posedirs.shape}, expected (207, {3 * V})")
    parents = body.parents
    if parents[0] != -1 or any(not 0 <= parents[j] < j for j in range(1, NUM_JOINTS)):
        raise MotionFileError("body/parents is not a kinematic tree with the root first")


def _validate_track(track: Track, num_betas: int) -> None:
    """Check one track's arrays for shapes, order and finiteness."""
    n = track.num_frames
    if n == 0:
        raise MotionFileError(f"track {track.id} has no frames")
    dims: dict[str, int] = {"B": num_betas}
    for name, (trailing, _) in {**TRACK_ARRAYS, **OPTIONAL_TRACK_ARRAYS}.items():
        arr = track.extra.get(name) if name in OPTIONAL_TRACK_ARRAYS else getattr(track, name)
        if arr is not None:
            _check_array(f"track {track.id} {name}", np.asarray(arr), trailing, dims, n, name in NAN_ALLOWED)
    if np.any(np.diff(track.frames) <= 0):
        raise MotionFileError(f"track {track.id} frames are not strictly increasing")
    if np.any(np.diff(track.times) < 0):
        raise MotionFileError(f"track {track.id} times go backwards")
    if track.betas_track.shape != (num_betas,):
        raise MotionFileError(f"track {track.id} betas_track has shape {track.betas_track.shape}, expected ({num_betas},)")


def validate(motion: Motion) -> None:
    """Raise MotionFileError (one line: what is wrong) if ``motion`` breaks the v1 format."""
    if motion.meta.get("format") != FORMAT:
        raise MotionFileError(f"not a vibe-mocap motion file (format {motion.meta.get('format')!r})")
    version = motion.meta.get("version")
    if not isinstance(version, int) or version < 1 or version > VERSION:
        raise MotionFileError(
            f"motion file version {version} is not supported by this reader (supports {VERSION}); "
            "update the add-on/engine so both use the same version"
        )
    _validate_body(motion.body)
    ids = [t.id for t in motion.tracks]
    if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
        raise MotionFileError(f"track ids must be unique positive integers, got {ids}")
    for track in motion.tracks:
        _validate_track(track, motion.body.num_betas)
    _validate_camera(motion)


def _validate_camera(motion: Motion) -> None:
    """Camera members: known names, one row per video frame, finite; rigid per-frame matrices."""
    n = int(motion.meta.get("video", {}).get("frames") or 0)
    for name, arr in motion.camera.items():
        if name not in CAMERA_ARRAYS:
            raise MotionFileError(f"unknown camera member camera/{name}")
        _check_array(f"camera/{name}", np.asarray(arr), CAMERA_ARRAYS[name][0], {}, n)
    m = motion.camera.get("world_from_camera")
    if m is not None:
        r = np.asarray(m, np.float64)[:, :3, :3]
        if np.abs(r @ np.swapaxes(r, 1, 2) - np.eye(3)).max() > 1e-4 or np.any(np.linalg.det(r) <= 0):
            raise MotionFileError("camera/world_from_camera is not a rotation plus translation per frame")
    f = motion.camera.get("focal_px")
    if f is not None and np.any(np.asarray(f) <= 0):
        raise MotionFileError("camera/focal_px must be positive")


# --------------------------------------------------------------------------- writing


def _body_members(body: BodyModel) -> dict[str, np.ndarray]:
    """Body arrays as archive members with their canonical dtypes."""
    out = {f"body/{k}": np.ascontiguousarray(getattr(body, k), dtype=dt) for k, dt in BODY_ARRAYS.items()}
    if body.posedirs is not None:
        out["body/posedirs"] = np.ascontiguousarray(body.posedirs, dtype=np.float32)
    return out


def _track_members(track: Track) -> dict[str, np.ndarray]:
    """Track arrays as archive members with their canonical dtypes."""
    prefix = f"track/{track.id}/"
    out = {prefix + k: np.ascontiguousarray(getattr(track, k), dtype=dt) for k, (_, dt) in TRACK_ARRAYS.items()}
    out[prefix + "betas_track"] = np.ascontiguousarray(track.betas_track, dtype=np.float32)
    for name, arr in track.extra.items():
        dtype = OPTIONAL_TRACK_ARRAYS.get(name, (None, None))[1]
        out[prefix + name] = np.ascontiguousarray(arr, dtype=dtype)
    return out


def _header(motion: Motion) -> np.ndarray:
    """The ``meta`` member: UTF-8 JSON bytes, with the track summaries refreshed."""
    meta = dict(motion.meta)
    meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta["tracks"] = [track_summary(t) for t in motion.tracks]
    return np.frombuffer(json.dumps(meta, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def write_motion(path: str | os.PathLike, motion: Motion, *, compress: bool = False) -> None:
    """Validate ``motion`` and write it to ``path`` atomically (temp name, fsync, rename).

    A failure at any point leaves no file under ``path`` and removes the temporary file.
    """
    validate(motion)
    path = os.fspath(path)
    members = {"meta": _header(motion), **_body_members(motion.body)}
    for track in motion.tracks:
        members.update(_track_members(track))
    members.update({f"camera/{k}": np.ascontiguousarray(v, CAMERA_ARRAYS[k][1]) for k, v in motion.camera.items()})
    tmp = f"{path}.tmp-{os.getpid()}"
    saver = np.savez_compressed if compress else np.savez
    try:
        with open(tmp, "wb") as fh:
            saver(fh, **members)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------- reading


def _load_archive(path: str) -> dict[str, np.ndarray]:
    """Every member of the archive as an array; MotionFileError for unreadable files."""
    if not os.path.isfile(path):
        raise MotionFileError(f"motion file not found: {path}; check the path")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise MotionFileError(
            f"cannot read motion file {path} ({exc.__class__.__name__}: {exc}); "
            "it is truncated or not a motion file: run the engine again"
        ) from None


def _parse_meta(members: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    """Decode the JSON header."""
    raw = members.get("meta")
    if raw is None or raw.dtype != np.uint8:
        raise MotionFileError(f"{path} is not a vibe-mocap motion file (no 'meta' header)")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MotionFileError(f"{path} has a corrupt header ({exc}); run the engine again") from None


def _take(members: dict[str, np.ndarray], name: str, path: str) -> np.ndarray:
    """Fetch a required member or fail naming it."""
    if name not in members:
        raise MotionFileError(f"{path} lacks '{name}'; the file is incomplete: run the engine again")
    return members[name]


def _read_body(members: dict[str, np.ndarray], path: str) -> BodyModel:
    """Build the BodyModel from ``body/*`` members."""
    arrays = {k: _take(members, f"body/{k}", path) for k in BODY_ARRAYS}
    return BodyModel(**arrays, posedirs=members.get("body/posedirs"))


def _track_ids(members: dict[str, np.ndarray], path: str) -> list[int]:
    """Sorted ids of the tracks present in the archive."""
    ids = set()
    for name in members:
        parts = name.split("/")
        if parts[0] == "track" and len(parts) == 3:
            if not parts[1].isdigit():
                raise MotionFileError(f"{path} has a track member with a non-numeric id: {name}")
            ids.add(int(parts[1]))
    return sorted(ids)


def _read_track(members: dict[str, np.ndarray], track_id: int, path: str) -> Track:
    """Build one Track from ``track/<id>/*`` members."""
    prefix = f"track/{track_id}/"
    arrays = {k: _take(members, prefix + k, path) for k in TRACK_ARRAYS}
    arrays["betas_track"] = _take(members, prefix + "betas_track", path)
    extra = {k: members[prefix + k] for k in OPTIONAL_TRACK_ARRAYS if prefix + k in members}
    return Track(id=track_id, extra=extra, **arrays)


def read_motion(path: str | os.PathLike) -> Motion:
    """Read and validate a motion file; MotionFileError (one line, with the fix) on any problem."""
    path = os.fspath(path)
    members = _load_archive(path)
    meta = _parse_meta(members, path)
    if meta.get("format") != FORMAT:
        raise MotionFileError(f"{path} is not a vibe-mocap motion file (format {meta.get('format')!r})")
    motion = Motion(
        meta=meta,
        body=_read_body(members, path),
        tracks=[_read_track(members, i, path) for i in _track_ids(members, path)],
        camera={k: members[f"camera/{k}"] for k in CAMERA_ARRAYS if f"camera/{k}" in members},
    )
    try:
        validate(motion)
    except MotionFileError as exc:
        raise MotionFileError(f"{path}: {exc}") from None
    return motion


def new_meta(**sections: Any) -> dict[str, Any]:
    """A header with ``format``/``version`` set; keyword arguments become top-level sections."""
    return {"format": FORMAT, "version": VERSION, **sections}


def main(argv: list[str] | None = None) -> int:
    """Debug CLI: ``python -m vibe_blender.core.motion_file FILE`` prints the summary as JSON."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m vibe_blender.core.motion_file FILE\n")
        return 2
    try:
        sys.stdout.write(json.dumps(summary(read_motion(args[0])), indent=2) + "\n")
    except MotionFileError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 4
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
