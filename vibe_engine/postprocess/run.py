"""Apply the post-processing steps to every track of a Motion (each step switchable).

Order: smoothing (rotations on quaternions, root translation) → ground plane and world frame (from
every track's feet: one static camera, one ground; each person's lean toward the camera taken out
against it, with its depth: :mod:`vibe_engine.postprocess.upright`) → foot contacts → foot locking (its
root correction from the contacts whose floor point stays put: FLOOR_CHECK; the stances' depths
relative to each other from the ground: GROUND_DEPTH) →
the root depth fused from the body's size, the stances, the ground and the lock's depth
(:mod:`vibe_engine.postprocess.depth_fusion`; BlazePose tracks; DEPTH_FUSION; off: the body-size
prior alone, :mod:`vibe_engine.postprocess.depth_prior`, SIZE_DEPTH)
→ a light final smoothing of the rotations (the leg IK pins the feet exactly and passes the hips'
remaining jitter on to the knees; the final pass takes that out) → foot locking again with the same
contacts (re-pins the feet that the final smoothing moved by a millimetre or two; after the fusion
only with the legs, the root keeping its fused depth) → each flight (a
jump's frames without contact) moved along the camera rays so the body crosses the ground in a
straight line (:mod:`vibe_engine.postprocess.flight`; FLIGHT). The raw network
output stays in the file as ``pose_raw``/``transl_raw``; ``contacts`` and ``meta["world"]``
(``world_from_camera``, camera height, warnings: :mod:`vibe_engine.world.grounding`) are added; with
the default focal the world step may self-calibrate it (``meta["camera"]``).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import shaped_rest
from vibe_blender.core.frames import into_cameras

from vibe_engine.world import camera_path

from vibe_engine.postprocess import depth_fusion, depth_prior, final_joints, flight
from vibe_engine.postprocess.contacts import detect_contacts
from vibe_engine.postprocess.footlock import CONTACT_JOINTS, lock_feet
from vibe_engine.postprocess.ground import stands_on_levels
from vibe_engine.postprocess.smoothing import LocalFitParams, smooth_rotations, smooth_translation
from vibe_engine.world.grounding import (NECK, PELVIS, WorldResult, camera_joints, estimate_world,
                                        world_meta)

log = logging.getLogger(__name__)
CAMERA_FORWARD = np.array([0.0, 0.0, 1.0])  # OpenCV camera: z looks forward
# Stances' depths relative to each other from the ground (footlock._ground_depth_shift): each stance
# moved along its camera ray toward where the rays through its planted feet meet the ground, less the
# clip's median such move, weighted by the camera's height above the floor; only with a found ground,
# a static camera, a certain camera height and no raised support (_ground_fixes_depth, _on_levels).
# `benchmarks/accuracy.py --motions DIR --reuse`, off → on, static root trajectory error (% of path):
# suite 8.00 → 7.91, holdout 14.52 → 11.28, holdout2 12.30 → 10.24; figures in docs/motion-file.md.
GROUND_DEPTH = True
# The body-size depth prior (postprocess/depth_prior.py) after the foot lock, where DEPTH_FUSION is off (the
# fusion has the same cue among its four and runs on the same tracks). It moves the root along
# the camera ray without refitting the limbs, so the body's image matches the footage a little less well:
# against the detector's landmarks (the image evidence) +0.8 px on the demo clip's people (14.9 → 15.7
# and 15.8 → 16.7 px mean), against the truth on the synthetic suite +0.35 px (5.9 → 6.2 px); the world
# root trajectory error falls from 10.2 to 7.9 % of path (8 static clips) and from 12.0 to 8.3 %
# (5 moving), PA-MPJPE unchanged. (An earlier note measured the demo's cost against the raw fit's own
# 2D joints, 4.2 → 6.4 px: that counts any departure from the raw fit as an error.) A refit of the
# limbs at the new depth was tried: it brings the synthetic 2D error back (5.9 px) but raises
# PA-MPJPE (54.7 → 55.2 mm), does not help on the demo clip and costs a second optimisation.
SIZE_DEPTH = True
# Flights straightened (postprocess/flight.py) after the final re-pin: on. Synthetic suite
# (benchmarks/accuracy.py --suite all --motions DIR --reuse, the same engine outputs without and with
# it): world root trajectory error 8.03 → 7.93 % of path (8 static clips) and 8.49 → 8.05 % (5 moving),
# foot skate in contact 3.12 → 3.19 and 2.15 → 2.20 mm/frame, PA-MPJPE unchanged.
FLIGHT = True
FINAL_SMOOTHING = LocalFitParams(sigma=0.06, order=2)  # after foot locking (see the module docstring)
# The root's depth correction follows only the contacts whose floor point (where the foot's camera
# ray meets its floor) stays put (footlock._floor_slow): a step along the view, which the contacts
# let pass for a stance, no longer pulls the body back toward its start. Off for a translating
# camera (each frame's floor point would carry that frame's centre error; the rays are taken from
# the frame-0 centre). Figures: docs/motion-file.md ("Root contacts: the floor check").
FLOOR_CHECK = True
# A track with image landmarks (BlazePose), static or moving camera: after the first foot lock, the root's
# depth from the body's size, the stances, the ground (static camera, GROUND_DEPTH's gate) and the lock's
# own depth weighed together in one least-squares solve (postprocess/depth_fusion.py), in place of the
# size prior (SIZE_DEPTH) and of the second lock's root correction (which chained every stride's error
# back in). World root trajectory error (% of path), off → on: suite 7.91 → 7.43 static, 7.02 → 7.98
# moving; the fourth held-out set 30.85 → 27.57 and 30.31 → 17.97. Figures: docs/motion-file.md
# ("Root depth fusion").
DEPTH_FUSION = True


@dataclass(frozen=True)
class PostSettings:
    """Which steps run (all on by default)."""

    smooth: bool = True
    ground: bool = True
    foot_lock: bool = True

    def as_dict(self) -> dict:
        """Settings for the manifest."""
        return asdict(self)


def _smooth_track(track: mf.Track) -> None:
    """Smooth pose and translation in place (times from the track's timestamps)."""
    track.pose = smooth_rotations(track.pose, track.times).astype(np.float32)
    track.transl = smooth_translation(track.transl, track.times).astype(np.float32)


def _on_levels(body: mf.BodyModel, track: mf.Track) -> bool:
    """Whether the person's own stance shows several levels (a box, steps): ground.stands_on_levels."""
    joints = camera_joints(body, track)
    return stands_on_levels(joints[:, list(CONTACT_JOINTS)], track.times, joints[:, NECK] - joints[:, PELVIS])


def _ground_fixes_depth(found: WorldResult, ref: np.ndarray | None) -> bool:
    """Whether the ground may set the stances' relative depths (GROUND_DEPTH): a ground that was
    found (not the people's vertical in its place), seen from a static camera (``ref`` None), with a
    camera height that is not uncertain (no CAMERA_HEIGHT_UNCERTAIN)."""
    uncertain = any(code == "CAMERA_HEIGHT_UNCERTAIN" for code, _ in found.warnings)
    return found.matrix is not None and ref is None and not uncertain


def _lock_track(body: mf.BodyModel, track: mf.Track, m: np.ndarray, contacts: np.ndarray | None = None,
                floor_check: bool = False, levels: bool = False, ground_depth: bool = False,
                slide: bool = True) -> None:
    """Lock the feet of one track in place (contacts (T,4) detected first when not given; on a
    raised support too with ``levels``, the person's stance on several levels: :func:`_on_levels`);
    ``floor_check``: the root's correction from the contacts whose floor point stays put
    (FLOOR_CHECK); ``ground_depth``: stances moved toward the ground's depth (GROUND_DEPTH);
    ``slide`` False: the root's depth is kept (DEPTH_FUSION set it), only the legs pin the feet."""
    if contacts is None:
        feet = camera_joints(body, track)[:, list(CONTACT_JOINTS)]
        world = feet @ m[:3, :3].T + m[:3, 3]
        contacts = detect_contacts(world, track.times, view_dir=m[:3, :3] @ CAMERA_FORWARD, camera=m[:3, 3],
                                   raised_supports=levels)
        track.extra["contacts"] = contacts
    pose, transl = lock_feet(body, track.betas_track, track.pose, track.transl, m, contacts, along_ray=True,
                             ground_depth=ground_depth, times=np.asarray(track.times, np.float64),
                             floor_check=floor_check, slide=slide)
    track.pose, track.transl = pose.astype(np.float32), transl.astype(np.float32)


def _size_depth(motion: mf.Motion, track: mf.Track, ref: np.ndarray | None) -> None:
    """Move the track's root along each frame's camera ray by the body-size depth factors (in place);
    nothing without the detector's image landmarks (``landmarks_image``: BlazePose) or with < 3 frames.
    ``ref`` (N,4,4): a moving camera's ref_from_camera (the track is in the frame-0 camera), or None."""
    landmarks = track.extra.get("landmarks_image")
    if landmarks is None or track.num_frames < 3:
        return
    frames = np.asarray(track.frames)
    joints = camera_joints(motion.body, track)
    centres = None
    if ref is not None:  # joints into each frame's own camera; rays from its centre
        centres = ref[frames, :3, 3]
        joints = into_cameras(joints, ref[frames])
    q = depth_prior.depth_factors(joints, np.asarray(landmarks)[..., :2], _focal(motion, track),
                                  track.extra.get("visibility"), np.asarray(track.times, np.float64))
    _move_along_rays(motion.body, track, q, centres)


def _focal(motion: mf.Motion, track: mf.Track) -> np.ndarray:
    """The focal length (T,) in pixels at each of the track's frames (per-frame when zoom was estimated)."""
    focal = motion.camera.get("focal_px")
    if focal is not None:
        return np.asarray(focal, np.float64)[np.asarray(track.frames)]
    return np.full(track.num_frames, float(motion.meta["camera"]["focal_px"]))


def _fuse_depth(motion: mf.Motion, track: mf.Track, m: np.ndarray, floor_check: bool, ground: bool,
                ref: np.ndarray | None) -> bool:
    """Move the track along its rays to the fused depth (:mod:`depth_fusion`; in place); False when the
    track has no size cue (no image landmarks) and nothing moved. ``ref``: as in :func:`_size_depth`."""
    q = depth_fusion.fuse_depth(motion.body, track, m, _focal(motion, track), floor_check=floor_check,
                                ground=ground, ref=ref)
    if q is None:
        return False
    _move_along_rays(motion.body, track, q, None if ref is None else ref[np.asarray(track.frames), :3, 3])
    return True


def _straighten_flights(body: mf.BodyModel, track: mf.Track, m: np.ndarray, ref: np.ndarray | None) -> None:
    """Move each flight's frames along their camera rays so the body's centre of mass crosses the
    ground in a straight line (:mod:`vibe_engine.postprocess.flight`); in place."""
    contacts = track.extra.get("contacts")
    if contacts is None or track.num_frames < 3:
        return
    world = camera_joints(body, track) @ m[:3, :3].T + m[:3, 3]
    centres = None if ref is None else ref[np.asarray(track.frames), :3, 3]  # None: the camera at the origin
    centres_world = (np.zeros((track.num_frames, 3)) if centres is None else centres) @ m[:3, :3].T + m[:3, 3]
    _move_along_rays(body, track, flight.flight_factors(world, centres_world, contacts, track.times), centres)


def _move_along_rays(body: mf.BodyModel, track: mf.Track, q: np.ndarray, centres: np.ndarray | None) -> None:
    """Each frame's body moved along its root's camera ray to q (T,) times its distance from the
    camera centre ``centres`` (T,3) (None: the origin) (:func:`depth_prior.move_along_rays`); in place."""
    _, rest = shaped_rest(body, track.betas_track)
    track.transl = depth_prior.move_along_rays(track.transl, rest[0], q, centres).astype(np.float32)


def postprocess(motion: mf.Motion, settings: PostSettings = PostSettings()) -> mf.Motion:
    """Run the enabled steps on every track of ``motion`` in place and return it; joints3d/joints2d
    are then those of the final pose and transl (raw kept: :mod:`vibe_engine.postprocess.final_joints`)."""
    ref = _steps(motion, settings)
    if settings.smooth or settings.ground or ref is not None:
        final_joints.refresh(motion, ref)
    return motion


def _steps(motion: mf.Motion, settings: PostSettings) -> np.ndarray | None:
    """The enabled steps in place; returns the moving camera's ref_from_camera (N,4,4) or None."""
    for track in motion.tracks:
        track.extra.setdefault("pose_raw", np.asarray(track.pose, np.float32).copy())
        track.extra.setdefault("transl_raw", np.asarray(track.transl, np.float32).copy())
    ref = camera_path.compensate(motion)  # moving camera: tracks into the frame-0 camera
    for track in motion.tracks:
        if settings.smooth and track.num_frames > 2:
            _smooth_track(track)
    if not settings.ground:
        motion.meta.setdefault("world", {})["world_from_camera"] = None
        camera_path.store_path(motion, ref)
        return ref
    found = estimate_world(motion, calibrate=ref is None, ref=ref)  # ground of all people; focal (vibe_engine.world.grounding)
    found = camera_path.background_floor(motion, found)  # a translating camera: the floor it moved over
    motion.meta["world"] = {**motion.meta.get("world", {}), **world_meta(found)}
    camera_path.store_path(motion, ref)
    m = found.lock_matrix  # the ground's frame, or the people's vertical for a refused ground's tilt
    for _, message in found.warnings:
        log.warning(message)
    if m is None:
        return ref
    if settings.foot_lock:
        translating = motion.meta["world"].get("camera_motion_stats", {}).get("translating", False)
        check = FLOOR_CHECK and not translating
        for track in motion.tracks:
            levels = _on_levels(motion.body, track)
            depth = GROUND_DEPTH and _ground_fixes_depth(found, ref) and not levels
            _lock_track(motion.body, track, m, floor_check=check, levels=levels, ground_depth=depth)
            if settings.smooth and track.num_frames > 2:
                fused = DEPTH_FUSION and _fuse_depth(motion, track, m, check, depth, ref)
                if SIZE_DEPTH and not fused:
                    _size_depth(motion, track, ref)  # moves the planted feet a little: re-pinned below
                track.pose = smooth_rotations(track.pose, track.times, FINAL_SMOOTHING).astype(np.float32)
                _lock_track(motion.body, track, m, track.extra["contacts"], check, ground_depth=depth,
                            slide=not fused)
            if FLIGHT:
                _straighten_flights(motion.body, track, m, ref)
    return ref
