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

from .atomic import atomic_write
from .errors import MotionFileError
from .motion_header import FORMAT, VERSION, Header, check_track_frames, parse_header, validate_meta
from .npz_safe import ArchiveError, read_members
from .smpl import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS  # noqa: F401 - re-exported

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
    # VIBE backend with the checkpoint's motion discriminator: per-frame motion realism (see below)
    "realism": ((), np.float32),
}
#: ``realism`` under this marks a frame's motion as implausible (discriminator trained real → 1, fake → 0)
REALISM_IMPLAUSIBLE_BELOW = 0.5
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
    """A whole motion file: header, body model and tracks (ordered by id).

    ``meta`` is the header as JSON data (what the engine builds and writes); readers use
    ``header``, its typed form. ``read_motion`` parses it when it reads the file, so a bad header
    fails there; ``header`` is derived from ``meta`` on each access (microseconds), so it can
    never disagree with a ``meta`` that a caller edited or replaced.
    """

    meta: dict[str, Any]
    body: BodyModel
    tracks: list[Track]
    camera: dict[str, np.ndarray] = field(default_factory=dict)  # CAMERA_ARRAYS, per video frame

    @property
    def header(self) -> Header:
        """The typed header (motion_header.Header) of ``meta``."""
        return parse_header(self.meta)

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
    h = motion.header
    return {
        "format": FORMAT,
        "version": motion.meta["version"],
        "video": {k: getattr(h.video, k) for k in ("frames", "fps", "width", "height", "duration", "rotation", "vfr")},
        "backend": h.manifest.backend,
        "body": h.body.get("kind"),
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
    for name in BODY_ARRAYS:
        arr = getattr(body, name)
        if arr.dtype.kind not in "fiub":
            raise MotionFileError(f"body/{name} has dtype {arr.dtype}, expected numbers")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise MotionFileError(f"body/{name} contains NaN or infinite values")
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
        if arr is not None and np.asarray(arr).dtype.kind not in "fiub":
            raise MotionFileError(f"track {track.id} {name} has dtype {np.asarray(arr).dtype}, expected numbers")
        if arr is not None:
            _check_array(f"track {track.id} {name}", np.asarray(arr), trailing, dims, n, name in NAN_ALLOWED)
    if np.any(np.diff(track.frames) <= 0):
        raise MotionFileError(f"track {track.id} frames are not strictly increasing")
    if np.any(np.diff(track.times) < 0):
        raise MotionFileError(f"track {track.id} times go backwards")
    if track.betas_track.shape != (num_betas,):
        raise MotionFileError(f"track {track.id} betas_track has shape {track.betas_track.shape}, expected ({num_betas},)")
    if not np.all(np.isfinite(track.betas_track)):
        raise MotionFileError(f"track {track.id} betas_track contains NaN or infinite values")


def validate(motion: Motion) -> None:
    """Raise MotionFileError (one line: what is wrong) if ``motion`` breaks the v1 format."""
    validate_meta(motion.meta)
    _validate_body(motion.body)
    ids = [t.id for t in motion.tracks]
    if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
        raise MotionFileError(f"track ids must be unique positive integers, got {ids}")
    for track in motion.tracks:
        _validate_track(track, motion.body.num_betas)
        check_track_frames(motion.meta, int(track.frames[-1]))
    _validate_camera(motion)


def _validate_camera(motion: Motion) -> None:
    """Camera members: known names, one row per video frame, finite; rigid per-frame matrices."""
    n = motion.header.video.frames
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
    """Validate ``motion`` and write it to ``path`` atomically (core.atomic: temp name, fsync,
    rename; stale temporary files of dead processes removed).

    A failure at any point leaves ``path`` as it was and removes the temporary file; a full disk
    raises ``atomic.DiskFullError`` naming the free space.
    """
    validate(motion)
    members = {"meta": _header(motion), **_body_members(motion.body)}
    for track in motion.tracks:
        members.update(_track_members(track))
    members.update({f"camera/{k}": np.ascontiguousarray(v, CAMERA_ARRAYS[k][1]) for k, v in motion.camera.items()})
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with atomic_write(path) as fh, zipfile.ZipFile(fh, "w", compression, allowZip64=True) as zf:
        for name, array in members.items():  # the layout np.savez writes, closed even on a full disk
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


# --------------------------------------------------------------------------- reading


def _known_member(name: str) -> bool:
    """Members this reader uses: ``meta``, ``body/<known>``, ``camera/<known>`` and
    ``track/<id>/<known>``; any other
    member is never decompressed (a large unknown member costs nothing)."""
    parts = name.split("/")
    if parts == ["meta"]:
        return True
    if len(parts) == 2 and parts[0] == "body":
        return parts[1] in BODY_ARRAYS or parts[1] in OPTIONAL_BODY_ARRAYS
    if len(parts) == 2 and parts[0] == "camera":
        return parts[1] in CAMERA_ARRAYS
    known = {*TRACK_ARRAYS, *OPTIONAL_TRACK_ARRAYS, "betas_track"}
    return len(parts) == 3 and parts[0] == "track" and parts[2] in known


def _load_archive(path: str) -> dict[str, np.ndarray]:
    """The known members of the archive as arrays, read within npz_safe's bounds;
    MotionFileError for unreadable files."""
    if os.path.isdir(path):
        raise MotionFileError(f"{path} is a folder, not a motion file; pass a *.motion.npz file")
    if not os.path.isfile(path):
        raise MotionFileError(f"motion file not found: {path}; check the path")
    try:
        return read_members(path, _known_member)
    except ArchiveError as exc:
        raise MotionFileError(f"{path}: {exc}; the file is damaged or not written by the engine: "
                              "run the engine again") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise MotionFileError(
            f"cannot read motion file {path} ({exc.__class__.__name__}: {exc}); "
            "it is truncated or not a motion file: run the engine again"
        ) from None


def _parse_meta(members: dict[str, np.ndarray], path: str) -> dict[str, Any]:
    """Decode the JSON header."""
    raw = members.get("meta")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise MotionFileError(f"{path} is not a vibe-mocap motion file (no 'meta' header)")
    try:
        return json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
    try:
        validate_meta(meta)
    except MotionFileError as exc:
        raise MotionFileError(f"{path}: {exc}") from None
    motion = Motion(
        meta=meta,
        body=_read_body(members, path),
        tracks=[_read_track(members, i, path) for i in _track_ids(members, path)],
        camera={k: members[f"camera/{k}"] for k in CAMERA_ARRAYS if f"camera/{k}" in members},
    )
    try:
        validate(motion)
        motion.header  # noqa: B018 - parsed here, so a bad header fails at read time
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
