"""The world of a static-camera clip: ground plane, camera height and (when observable) the focal.

Called by the post-processing (:mod:`vibe_engine.postprocess.run`) on the smoothed motion:

1. Ground from the feet of **every** person over the whole clip (:func:`ground.estimate_ground_tracks`);
   its normal from the background's lines instead where their vanishing points pin it
   (:mod:`vibe_engine.world.vanishing`, ``meta["world"]["up_source"]``).
2. Self-calibration of the focal when the run uses the default focal: from perpendicular vanishing
   points (:func:`lines_focal_scale`), else from the people's level axes
   (:mod:`vibe_engine.world.selfcal`); root translations are rescaled along the optical axis and
   ``meta["camera"]`` is updated (``source: "self_calibrated"``, the default kept as
   ``focal_px_default``), then the ground is fitted again.
3. Upright (``UPRIGHT``): every person turned upright on average against the found ground and
   moved to the depth of its image size (:mod:`vibe_engine.postprocess.upright`), then the ground
   is fitted again (``meta["world"]["upright"]``).
4. Plausibility: a ground is refused (``world_from_camera: null`` plus a warning naming the
   reason, in ``meta["world"]["warnings"]``) when too few feet touch it, when the camera would be
   below it, or when it disagrees with the people's mean vertical by more than MAX_BODY_TILT_DEG
   (a floor from the background's lines: by more than the fit's possible lean bias,
   upright.bias_limit, since the lines do not depend on the fit). A refused ground is never
   replaced by a guess.
5. Foot locking frame: the ground when found. When the ground is refused only because the feet's
   plane disagrees with the people's vertical (a camera grazing the floor: monocular depth noise
   tilts the feet's plane), the feet are still locked in a frame whose up is the people's mean
   vertical (:func:`body_up_lock_frame`): that removes the foot skate and the depth drift of the
   root without claiming a ground (``world_from_camera`` stays null; the warning says so). Not when
   the lines show the floor and the people lean against it (a climb: their feet are on rungs or
   holds, not on a floor, and locking them made the held-out climb_b's root 21 → 70 %).

``meta["world"]`` also gets ``camera_height_m`` and ``up_in_camera`` (the ground normal, OpenCV
camera frame) for a found ground. A floor from the feet seen from near its own height keeps a
``CAMERA_HEIGHT_UNCERTAIN`` warning (:func:`height_uncertainty`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vibe_blender.core import motion_file as mf
from vibe_blender.core.body import forward_kinematics, shaped_rest
from vibe_blender.core.rotations import aa_to_matrix

from vibe_engine.postprocess import upright
from vibe_engine.world import selfcal, vanishing
from vibe_engine.postprocess.ground import (MAX_BODY_TILT_DEG, GroundPlane, estimate_ground_tracks,
                                            fit_subset, lines_agree, plane_below, pooled_stance,
                                            tilt_sd_toward_camera, world_from_camera)

PELVIS, NECK = upright.PELVIS, upright.NECK  # SMPL joints of the trunk axis
FOOT_JOINTS = (7, 10, 8, 11)  # left ankle, left foot, right ankle, right foot (SMPL)
MIN_GROUND_FRAMES = 10
#: Fewer stance points than this (all people, all frames) and the ground is not trusted.
MIN_STANCE_POINTS = 20
#: Camera heights (m above the ground) accepted: from a camera on the floor to a tall building.
CAMERA_HEIGHT_RANGE = (0.02, 60.0)
#: A floor from the feet whose camera height is uncertain by more than this share (a camera near the
#: floor's height: :func:`height_uncertainty`) is kept with a CAMERA_HEIGHT_UNCERTAIN warning.
CAMERA_HEIGHT_MAX_REL = 0.25
#: Camera sources whose focal the self-calibration may refine.
CALIBRATABLE_SOURCES = ("default",)
#: Turn each person upright on average against the found ground and re-derive the depth from the
#: image size (:mod:`vibe_engine.postprocess.upright`), then fit the ground again.
UPRIGHT = True


@dataclass
class WorldResult:
    """world_from_camera (4,4) or None, the plane, warnings (code, message) and the focal estimate."""

    matrix: np.ndarray | None
    plane: GroundPlane | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    focal: selfcal.FocalEstimate | None = None
    #: The frame the feet are locked in (4,4): ``matrix``, or the body-vertical frame when the ground was
    #: refused for its tilt (see the module docstring), or None (no foot locking).
    lock_matrix: np.ndarray | None = None
    #: Where the ground's normal came from: "lines" (the background's vanishing points) or "feet".
    up_source: str | None = None


def camera_joints(body: mf.BodyModel, track: mf.Track) -> np.ndarray:
    """SMPL joints (T,24,3) of a track in the camera frame (with transl), metres."""
    _, rest = shaped_rest(body, track.betas_track)
    g = forward_kinematics(aa_to_matrix(np.asarray(track.pose, np.float64)), rest, np.asarray(body.parents))
    return g[:, :, :3, 3] + np.asarray(track.transl, np.float64)[:, None]


def _inputs(body: mf.BodyModel, tracks: list[mf.Track]):
    """(feet per track, body ups per track, joints per track) for tracks of ≥ 3 frames."""
    feet, ups, joints = [], [], []
    for track in tracks:
        if track.num_frames < 3:
            continue
        j = camera_joints(body, track)
        feet.append((j[:, list(FOOT_JOINTS)], np.asarray(track.times, np.float64)))
        ups.append(j[:, NECK] - j[:, PELVIS])
        joints.append(j)
    return feet, ups, joints


def _mean_up(ups: list[np.ndarray]) -> np.ndarray:
    v = np.concatenate(ups)
    v = np.median(v / np.linalg.norm(v, axis=-1, keepdims=True), axis=0)
    return v / np.linalg.norm(v)


def check_ground(plane: GroundPlane, feet, ups, max_tilt: float = MAX_BODY_TILT_DEG) -> tuple[str | None, bool]:
    """(why this ground is not credible, or None when it is; whether its only fault is its tilt off
    the people's vertical, more than ``max_tilt`` deg). feet: per person (feet (T,K,3), times (T,));
    ups: per person (T,3)."""
    stance = pooled_stance(feet, plane.normal)
    if len(stance) < MIN_STANCE_POINTS:
        return f"only {len(stance)} foot points touch the floor", False
    if not CAMERA_HEIGHT_RANGE[0] <= plane.offset <= CAMERA_HEIGHT_RANGE[1]:
        return f"the camera would be {plane.offset:.2f} m above the floor", False
    tilt = float(np.degrees(np.arccos(np.clip(plane.normal @ _mean_up(ups), -1.0, 1.0))))
    if tilt > max_tilt:
        return f"the floor is {tilt:.0f}° off the people's vertical", True
    return None, False


def body_up_lock_frame(feet, ups) -> np.ndarray | None:
    """A z-up frame (4,4) for foot locking only: up = the people's mean vertical, the floor through
    the typical lowest foot; None when that floor is not plausible either (camera height out of
    CAMERA_HEIGHT_RANGE, or fewer than MIN_STANCE_POINTS stance points on it)."""
    up = _mean_up(ups)
    plane = plane_below(np.concatenate([f for f, _ in feet]), up)
    if len(pooled_stance(feet, up)) < MIN_STANCE_POINTS or \
            not CAMERA_HEIGHT_RANGE[0] <= plane.offset <= CAMERA_HEIGHT_RANGE[1]:
        return None
    return world_from_camera(plane)


def rescale_focal(motion: mf.Motion, k: float) -> None:
    """Apply a focal correction ``k`` in place: header focal × k, every root depth × k."""
    cam = motion.meta["camera"]
    cam.setdefault("focal_px_default", cam["focal_px"])
    cam["focal_px"] = float(cam["focal_px"]) * k
    cam["source"] = "self_calibrated"
    for track in motion.tracks:
        for name in ("transl", "transl_raw"):
            arr = track.transl if name == "transl" else track.extra.get(name)
            if arr is None:
                continue
            arr = np.array(arr, np.float32)
            arr[:, 2] *= k
            if name == "transl":
                track.transl = arr
            else:
                track.extra[name] = arr


def lines_up(motion: mf.Motion, ups: list[np.ndarray], ref: np.ndarray | None = None,
             feet: list | None = None) -> np.ndarray | None:
    """The floor's normal (3,) in the (frame-0) camera from the background's vanishing points
    (``meta["world"]["vanishing"]``, :mod:`vibe_engine.world.vanishing`) with the motion's current
    focal (per frame when it zooms), or None (no lines stored, or they do not pin it). ``ref``
    (N,4,4): a moving camera's ref_from_camera, or None.

    The families are told horizontal or vertical against the people's mean vertical, within
    vanishing.CLASS_DEG; when that finds no floor, within vanishing.LOOSE_CLASS_DEG, and such a
    floor counts only when it puts the people's ``feet`` (per person (feet (T,K,3), times), camera
    frame) below the camera by at least the lowest camera height (:func:`_feet_below`)."""
    found = motion.meta.get("world", {}).get("vanishing")
    if not found or not ups:
        return None
    cam = motion.meta["camera"]
    focal = motion.camera.get("focal_px")
    focal = float(cam["focal_px"]) if focal is None else np.asarray(focal, np.float64)
    rotations = None if ref is None else np.asarray(ref, np.float64)[:, :3, :3]
    people_up = _mean_up(ups)
    tiers = [vanishing.directions(vanishing.tier_points(found, tier), focal, (float(cam["cx"]), float(cam["cy"])),
                                  rotations) for tier in vanishing.TIERS]  # long segments' points first
    for class_deg in (vanishing.CLASS_DEG, vanishing.LOOSE_CLASS_DEG):
        for d, w in tiers:  # the short segments' points only when the long ones fail
            normal = vanishing.floor_normal(d, w, people_up, class_deg) if len(d) else None
            if normal is not None and (class_deg == vanishing.CLASS_DEG or _feet_below(normal, feet)):
                return normal
    return None


def _feet_below(normal: np.ndarray, feet: list | None) -> bool:
    """Whether the median foot point of ``feet`` (per person (feet (T,K,3), times), camera frame)
    lies at least CAMERA_HEIGHT_RANGE[0] below the camera along ``normal`` (3,, up)."""
    if not feet:
        return False
    points = np.concatenate([np.asarray(f, np.float64).reshape(-1, 3) for f, _ in feet])
    return float(np.median(points @ normal)) <= -CAMERA_HEIGHT_RANGE[0]


def lines_focal_scale(motion: mf.Motion) -> float | None:
    """The focal correction k (new focal / current) from perpendicular vanishing points of the long
    segments (:func:`vanishing.focal_from_orthogonal`), recorded in ``meta["world"]["focal_vanishing"]``;
    None when they do not give one."""
    world = motion.meta.setdefault("world", {})
    cam = motion.meta["camera"]
    f, pairs = vanishing.focal_from_orthogonal(vanishing.tier_points(world.get("vanishing"), vanishing.TIERS[0]),
                                               (float(cam["cx"]), float(cam["cy"])), float(cam["focal_px"]))
    world["focal_vanishing"] = {"focal_px": None if f is None else round(f, 3), "pairs": pairs, "used": f is not None}
    return None if f is None else f / float(cam["focal_px"])


def _ground(motion: mf.Motion, feet, ups, ref: np.ndarray | None) -> tuple[GroundPlane, str]:
    """The ground plane and the source of its normal ("lines": the background's vanishing points;
    "feet": the people's stance and vertical, :func:`ground.estimate_ground_tracks`).

    Lines within MAX_BODY_TILT_DEG of the people's vertical give the normal (the feet the offset);
    lines farther off do too: they do not depend on the fit's lean, which a camera high above can
    get 30° wrong (:func:`check_ground` then refuses a floor more than :func:`_max_tilt` off the
    people: a climb, or lines that are not the floor's)."""
    up = lines_up(motion, ups, ref, feet)
    if up is not None and not lines_agree(up, _mean_up(ups)):
        return plane_below(np.concatenate([f for f, _ in feet]), up), "lines"
    plane = estimate_ground_tracks(feet, ups, up)  # takes the lines' normal when it agrees with the people
    taken = up is not None and float(plane.normal @ up) >= 1.0 - 1e-12
    return plane, "lines" if taken else "feet"


def estimate_world(motion: mf.Motion, calibrate: bool = True, ref: np.ndarray | None = None) -> WorldResult:
    """Ground, camera height and (when observable and allowed) the focal for a static camera
    (a moving one: its tracks already in the frame-0 camera, ``ref`` (N,4,4) ref_from_camera).

    Updates ``motion`` in place when the focal is self-calibrated (see :func:`rescale_focal`).
    """
    feet, ups, joints = _inputs(motion.body, motion.tracks)
    if sum(len(t) for _, t in feet) < MIN_GROUND_FRAMES:
        return WorldResult(None, warnings=[("NO_GROUND", "too few frames to estimate the ground; no world "
                                                          "frame, no foot locking")])
    plane, source = _ground(motion, feet, ups, ref)
    focal = None
    if calibrate and motion.meta.get("camera", {}).get("source") in CALIBRATABLE_SOURCES:
        k = lines_focal_scale(motion)
        if k is None:
            focal = selfcal.estimate_focal_scale(plane.normal, np.concatenate([selfcal.level_axes(j) for j in joints]))
            k = focal.k if focal.used else None
        if k is not None and abs(k - 1.0) > 1e-3:
            rescale_focal(motion, k)
            feet, ups, joints = _inputs(motion.body, motion.tracks)
            plane, source = _ground(motion, feet, ups, ref)
    reason, tilt_only = check_ground(plane, feet, ups, _max_tilt(source, plane, joints))
    if reason is None and UPRIGHT and _straighten_all(motion, plane.normal, ref):
        feet, ups, joints = _inputs(motion.body, motion.tracks)
        plane, source = _ground(motion, feet, ups, ref)
        reason, tilt_only = check_ground(plane, feet, ups, _max_tilt(source, plane, joints))
    if reason is None:
        m = world_from_camera(plane)
        return WorldResult(m, plane, _height_warnings(plane, feet, source), focal, m, source)
    lines_conflict = tilt_only and source == "lines"  # the people lean against a floor the lines show: a climb
    if lines_conflict:
        reason += " by the background's lines: a climb, a slope or a fit far off"
    lock = body_up_lock_frame(feet, ups) if tilt_only and not lines_conflict else None
    then = "feet locked on the people's vertical instead" if lock is not None else "no foot locking"
    return WorldResult(None, plane, [("NO_GROUND", f"the ground cannot be determined ({reason}); no world "
                                                   f"frame, {then}")], focal, lock)


def height_uncertainty(plane: GroundPlane, feet) -> tuple[float, float] | None:
    """(relative uncertainty of the camera height, depression (deg) of the camera's rays to the
    stance points) for a floor from the people's feet (per person (feet (T,K,3), times), camera
    frame), or None with fewer than MIN_STANCE_POINTS stance points (no floor then).

    The floor passes through the feet; tilted toward the camera by its standard deviation σ
    (:func:`ground.tilt_sd_toward_camera`) about them, it takes the camera's height from d·sin δ
    to d·sin(δ + σ): a camera near the floor's height (small δ) has a height as uncertain as that
    tilt, however well the feet are seen."""
    stance = pooled_stance(feet, plane.normal)
    if len(stance) < MIN_STANCE_POINTS:
        return None
    stance = fit_subset(stance)
    sd = tilt_sd_toward_camera(stance, plane.normal, feet)
    depression = upright.ray_depression_deg(stance, plane.normal)
    if depression <= 0.0:
        return None  # the camera below the feet: check_ground refuses such a floor
    rel = np.sin(np.radians(min(depression + sd, 90.0))) / np.sin(np.radians(depression)) - 1.0
    return float(rel), depression


def _height_warnings(plane: GroundPlane, feet, source: str) -> list[tuple[str, str]]:
    """A CAMERA_HEIGHT_UNCERTAIN warning for a floor whose normal came from the feet (no lines)
    when its camera height is uncertain by more than CAMERA_HEIGHT_MAX_REL (:func:`height_uncertainty`);
    the floor itself is kept (it passes through the feet, which locking and root motion need)."""
    found = height_uncertainty(plane, feet) if source == "feet" else None
    if found is None or found[0] <= CAMERA_HEIGHT_MAX_REL:
        return []
    rel, depression = found
    return [("CAMERA_HEIGHT_UNCERTAIN",
             f"the camera height ({plane.offset:.2f} m) and the floor's tilt toward the camera are "
             f"uncertain (height about ±{100 * rel:.0f} %): the camera sees the floor under the people "
             f"only {depression:.1f}° below its level and no floor lines fix the tilt; film from higher "
             "up or with the floor's edges in view")]


def _max_tilt(source: str, plane: GroundPlane, joints: list[np.ndarray]) -> float:
    """The largest angle (deg) between a ground's normal and the people's mean vertical that
    :func:`check_ground` accepts: a floor from the lines may differ by the fit's lean bias, which
    the upright step then takes out (upright.bias_limit of the rays' depression to the people's
    pelvises, joints (T,24,3) per person, camera frame; a moving camera's rays taken from its
    frame-0 centre); one from the feet by MAX_BODY_TILT_DEG."""
    if source != "lines" or not joints:
        return MAX_BODY_TILT_DEG
    pelvis = np.concatenate([j[:, PELVIS] for j in joints])
    return upright.bias_limit(upright.ray_depression_deg(pelvis, plane.normal))  # ≥ MAX_BIAS_DEG > MAX_BODY_TILT_DEG


def _straighten_all(motion: mf.Motion, up: np.ndarray, ref: np.ndarray | None) -> bool:
    """Every track of >= 3 frames turned upright on average against the ground's normal ``up``
    (camera frame) and moved to its image size's depth (:func:`upright.straighten`), recorded per
    track in ``meta["world"]["upright"]``; whether any track changed."""
    done = []
    for i, track in enumerate(motion.tracks):
        if track.num_frames >= 3:
            out = upright.straighten(motion.body, track, camera_joints(motion.body, track), up, ref)
            if out is not None:
                done.append({"track": i, "pitch_removed_deg": round(out[0], 3),
                             "depth_factor": round(out[1], 5)})
    motion.meta.setdefault("world", {})["upright"] = done
    return bool(done)


def world_meta(result: WorldResult) -> dict:
    """``meta["world"]`` for a result (``world_from_camera`` null when no ground)."""
    out: dict = {"world_from_camera": None if result.matrix is None else result.matrix.tolist()}
    if result.plane is not None and result.matrix is not None:
        out["camera_height_m"] = float(result.plane.offset)
        out["up_in_camera"] = [float(v) for v in result.plane.normal]
        out["up_source"] = result.up_source
    if result.warnings:
        out["warnings"] = [{"code": c, "message": m} for c, m in result.warnings]
    if result.focal is not None:
        out["focal_self_calibration"] = result.focal.as_dict()
    return out
