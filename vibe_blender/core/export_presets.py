"""Export presets: fixed, documented option tables for Blender's FBX / BVH / glTF exporters (pure).

Axes follow Blender's exporter convention: ``axis_forward`` is the file axis that Blender's +Y
becomes, ``axis_up`` the one Blender's +Z becomes. SMPL characters face Blender −Y.

=========  ==================  =======================================================================
preset     axes (fwd, up)      scale
=========  ==================  =======================================================================
generic    −Z, Y (FBX default) Blender's defaults: a centimetre file (UnitScaleFactor 1) whose armature
                               node carries a ×100 scale, so lengths read back as metres; all skin
                               influences kept (Blender to Blender)
unity      −Z, Y               "FBX All": objects at scale 1, UnitScaleFactor 100 → Unity shows
                               "1m (File)", no 0.01/100 scale on the root
unreal     Y, Z (Z up, as UE)  centimetres, scale 1: the character is written from temporary copies
                               scaled ×100 with the scene unit at 0.01 m, so lengths are centimetre
                               numbers in a centimetre file (UnitScaleFactor 1) and no node carries a
                               100 scale (Blender's own scaling would put it on the armature node,
                               which becomes a scaled root bone in Unreal)
=========  ==================  =======================================================================

Every FBX preset writes only the selected armature + mesh, no leaf bones, and bakes the active
action at every frame without simplification (``bake_anim_simplify_factor=0``). Unity, Unreal and
glTF keep at most :data:`DEFAULT_MAX_INFLUENCES` skin influences per vertex (pruned, renormalised).

Time (``timing``, all formats alike, see :func:`clip_span`): ``"video"`` maps video time t to export
time t (video frame 0 → 0 s; a person who enters late starts at their first frame's time; BVH, which
has no time stamps, repeats the first pose from 0 s); ``"clip"`` starts every file at the person's
first frame (0 s); ``"hidden"`` keeps video time and starts every file at 0 s: FBX and glTF hold the
first pose from 0 s with the root bones at scale :data:`HIDDEN_SCALE` (invisible: every vertex
collapses onto the root)
until the person's first frame, stepped (FBX constant keys, glTF STEP), then scale 1; BVH has no
scale channel, so it holds the first pose, visible, from 0 s (as ``"video"``).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from .errors import UserInputError

FBX_PRESET_NAMES = ("generic", "unity", "unreal")
EXPORT_FORMATS = ("fbx", "bvh", "glb")
FILE_EXTENSIONS = MappingProxyType({"fbx": ".fbx", "bvh": ".bvh", "glb": ".glb"})

#: Options every FBX preset shares.
_FBX_COMMON: dict[str, Any] = {
    "use_selection": True,
    "object_types": {"ARMATURE", "MESH"},
    "add_leaf_bones": False,
    "use_armature_deform_only": False,
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_all_actions": False,
    "bake_anim_use_nla_strips": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
    "bake_space_transform": False,
    "use_mesh_modifiers": False,
    "mesh_smooth_type": "FACE",
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "path_mode": "AUTO",
    "global_scale": 1.0,
    "apply_unit_scale": True,
}

_FBX_PRESETS: dict[str, dict[str, Any]] = {
    "generic": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_NONE"},
    "unity": {"axis_forward": "-Z", "axis_up": "Y", "apply_scale_options": "FBX_SCALE_ALL"},
    "unreal": {"axis_forward": "Y", "axis_up": "Z", "apply_scale_options": "FBX_SCALE_NONE"},
}

#: Skin influences per vertex kept by each FBX preset (None: all) and by glTF.
DEFAULT_MAX_INFLUENCES = 4
FBX_MAX_INFLUENCES = MappingProxyType({"generic": None, "unity": DEFAULT_MAX_INFLUENCES,
                                       "unreal": DEFAULT_MAX_INFLUENCES})
GLTF_MAX_INFLUENCES = DEFAULT_MAX_INFLUENCES
#: ``max_influences`` value meaning "the preset's default".
PRESET_DEFAULT = "preset"

#: Take name when none is given: files name the take/clip ``<armature>_<take>``.
DEFAULT_TAKE = "take"
#: Export time origins (see the module docstring).
TIMING_MODES = ("video", "clip", "hidden")
#: Root-bone scale before a person's first frame in timing "hidden": a 2 m character shrinks to 20 µm
#: on its root (invisible). Not exactly 0: Blender's exporters derive every bone's local transform
#: from its parent's inverse, so under a zero-scale root the joints get zero scales and meaningless
#: offsets, and the FBX SDK then reads NaN for every joint below the root (measured with FBX2glTF;
#: Assimp and the glTF validator accept exact 0).
HIDDEN_SCALE = 1e-5
SHOWN_SCALE = 1.0
#: BVH channel layouts: "standard" = 6 channels on the root, 3 rotations elsewhere; "positions" =
#: position channels on every joint (the layout of earlier versions).
BVH_LAYOUTS = ("standard", "positions")
#: Scene frames before the first exported frame where the export copy holds the rest pose: the FBX
#: exporter writes the pose of the current frame as the nodes' default transforms.
REST_FRAME_LEAD = 2

#: Presets written from copies scaled to centimetres (see the table above).
FBX_CENTIMETRE_PRESETS = frozenset({"unreal"})
CENTIMETRES_PER_METRE = 100.0

#: 4×4 taking Blender's z-up world to BVH's y-up convention: (x, y, z) → (x, z, −y); the inverse of the
#: BVH importer's default axis conversion (forward −Z, up Y).
BVH_FROM_BLENDER = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))

#: BVH: Euler channels in each bone's native order; position channels on the root only (standard
#: layout; ``root_transform_only`` is set per layout by :func:`bvh_options`).
BVH_OPTIONS = MappingProxyType({"global_scale": 1.0, "rotate_mode": "NATIVE", "root_transform_only": True})

#: glTF binary (.glb), Y up (the glTF spec), skins + the active action only, sampled every frame.
GLTF_OPTIONS = MappingProxyType({
    "export_format": "GLB",
    "use_selection": True,
    "export_yup": True,
    "export_apply": False,
    "export_skins": True,
    "export_all_influences": False,  # the export prunes to max_influences (4) itself, with a measured error
    "export_animations": True,
    "export_animation_mode": "ACTIVE_ACTIONS",
    # True (the exporter's default) adds every armature action in the file when one armature is
    # exported: another person's action would be merged into this person's animation
    "export_anim_single_armature": False,
    "export_force_sampling": True,
    "export_frame_step": 1,
    "export_optimize_animation_size": False,
    "export_anim_slide_to_zero": False,
    "export_def_bones": False,
    "export_leaf_bone": False,
    "export_materials": "NONE",
    "export_cameras": False,
    "export_lights": False,
})


def fbx_options(preset: str = "generic") -> dict[str, Any]:
    """Keyword arguments for ``bpy.ops.export_scene.fbx`` (without ``filepath``) for a preset name.

    Raises UserInputError naming the valid presets for an unknown name.
    """
    key = str(preset).lower()
    if key not in _FBX_PRESETS:
        raise UserInputError(f"unknown FBX preset {preset!r}; use one of {', '.join(FBX_PRESET_NAMES)}")
    options = {k: (set(v) if isinstance(v, set) else v) for k, v in _FBX_COMMON.items()}
    options.update(_FBX_PRESETS[key])
    return options


def bvh_options(layout: str = "standard") -> dict[str, Any]:
    """Keyword arguments for ``bpy.ops.export_anim.bvh`` (without path/frames) for a channel layout."""
    check_choice("BVH layout", layout, BVH_LAYOUTS)
    return merged(BVH_OPTIONS, root_transform_only=layout == "standard")


#: Panel choices (value: (label, tooltip)) of the export options; the values are the API's.
TIMING_CHOICES = {
    "video": ("Video", "Keys at video time (video frame 0 = 0 s); the take spans the person's frames"),
    "clip": ("Clip", "The person's first frame at 0 s"),
    "hidden": ("Hidden", "Video time from 0 s; the character is invisible (root scaled to 1e-5) until "
                         "the person's first frame. BVH cannot hide: it shows the first pose from 0 s"),
}
BVH_LAYOUT_CHOICES = {
    "standard": ("Standard", "Positions on the root only (the ground root merged into the pelvis)"),
    "positions": ("Positions", "Position channels on every joint (earlier versions)"),
}
#: Influences per vertex: the preset's default, a fixed number, every influence, or the custom count.
INFLUENCE_CHOICES = {
    PRESET_DEFAULT: ("Preset", "4 for Unity, Unreal and glTF; all for the generic FBX preset"),
    "4": ("4", "At most 4 skin influences per vertex (pruned, renormalised)"),
    "8": ("8", "At most 8 skin influences per vertex (pruned, renormalised)"),
    "all": ("All", "Keep every skin influence (Blender to Blender)"),
    "custom": ("Custom", "At most the given number of skin influences per vertex"),
}


def influences_choice(choice: str, count: int) -> Any:
    """The ``max_influences`` argument for a panel choice (``count``: the Custom number, ≥ 1)."""
    check_choice("max influences", choice, tuple(INFLUENCE_CHOICES))
    if choice == PRESET_DEFAULT:
        return PRESET_DEFAULT
    if choice == "all":
        return None
    value = int(count) if choice == "custom" else int(choice)
    if value < 1:  # 0 would mean "all" to resolve_max_influences
        raise UserInputError(f"max_influences must be a whole number ≥ 1 for Custom, got {count!r}")
    return resolve_max_influences(value, None)


def export_summary(name: str, path: str, report: dict) -> str:
    """One line for the panel after an export: the file, and what the report says a user should
    know (skin pruning with its measured error, the hidden lead-in, a format's limitation)."""
    parts = [f"Exported {name} to {path}"]
    if report.get("vertices_pruned"):
        parts.append(f"skin pruned to {report['max_influences']} influences: {report['vertices_pruned']} "
                     f"vertices moved up to {1e3 * report['pruning_error_m']:.1f} mm")
    if report.get("hidden_frames"):
        parts.append(f"hidden until {report['hidden_until_s']:.3f} s")
    if report.get("note"):
        parts.append(report["note"])
    return "; ".join(parts)


def clip_span(timing: str, start: int, end: int, video_zero: int) -> tuple[int, int]:
    """(origin, first) scene frames of an export: ``origin`` becomes 0 s, ``first`` is the first frame
    written (frames ``first``…``end``); ``start``/``end``: the person's keyed frames, ``video_zero``:
    the scene frame of video frame 0. Frames ``first``…``start − 1`` are the hidden lead-in (timing
    "hidden" only; none when the person is there from video frame 0 or earlier).
    """
    check_choice("timing", timing, TIMING_MODES)
    if timing == "clip":
        return start, start
    return video_zero, min(start, video_zero) if timing == "hidden" else start


def check_choice(label: str, value: str, choices: tuple) -> str:
    """``value`` if it is one of ``choices``; else UserInputError naming them."""
    if value not in choices:
        raise UserInputError(f"unknown {label} {value!r}; use one of {', '.join(choices)}")
    return value


def resolve_max_influences(value: Any, default: int | None) -> int | None:
    """Influences per vertex to keep: ``default`` for PRESET_DEFAULT, None (or 0) for all, else ≥ 1."""
    if isinstance(value, str) and value == PRESET_DEFAULT:
        return default
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserInputError(f"max_influences must be a whole number ≥ 1 (or None for all), got {value!r}")
    return value


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse a comma-separated format list ("fbx,bvh,glb"; "gltf" means glb) → unique names in order.

    Raises UserInputError for an empty list or an unknown format.
    """
    names: list[str] = []
    for part in str(text).split(","):
        name = part.strip().lower()
        name = "glb" if name == "gltf" else name
        if not name:
            continue
        if name not in EXPORT_FORMATS:
            raise UserInputError(f"unknown export format {part.strip()!r}; "
                                 f"use any of {','.join(EXPORT_FORMATS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise UserInputError(f"no export format given; use any of {','.join(EXPORT_FORMATS)}")
    return tuple(names)


def merged(options: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """A plain dict copy of an option table with ``overrides`` applied."""
    result = dict(options)
    result.update(overrides)
    return result
