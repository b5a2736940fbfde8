"""Export presets: fixed, documented option tables for Blender's FBX / BVH / glTF exporters (pure).

Axes follow Blender's exporter convention: ``axis_forward`` is the file axis that Blender's +Y
becomes, ``axis_up`` the one Blender's +Z becomes. SMPL characters face Blender −Y.

=========  ==================  =======================================================================
preset     axes (fwd, up)      scale
=========  ==================  =======================================================================
generic    −Z, Y (FBX default) metres in the file's unit (Blender's defaults; any FBX importer that
                               honours UnitScaleFactor reads metres)
unity      −Z, Y               "FBX All": objects at scale 1, UnitScaleFactor 100 → Unity shows
                               "1m (File)", no 0.01/100 scale on the root
unreal     Y, Z (Z up, as UE)  centimetres, scale 1: the character is written from temporary copies
                               scaled ×100 with the scene unit at 0.01 m, so lengths are centimetre
                               numbers in a centimetre file (UnitScaleFactor 1) and no node carries a
                               100 scale (Blender's own scaling would put it on the armature node,
                               which becomes a scaled root bone in Unreal)
=========  ==================  =======================================================================

Every FBX preset writes only the selected armature + mesh, no leaf bones, and bakes the active
action at every frame without simplification (``bake_anim_simplify_factor=0``).
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

#: Presets written from copies scaled to centimetres (see the table above).
FBX_CENTIMETRE_PRESETS = frozenset({"unreal"})
CENTIMETRES_PER_METRE = 100.0

#: 4×4 taking Blender's z-up world to BVH's y-up convention: (x, y, z) → (x, z, −y); the inverse of the
#: BVH importer's default axis conversion (forward −Z, up Y).
BVH_FROM_BLENDER = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))

#: BVH: Euler channels in each bone's native order; every joint also has 3 position channels, because
#: the character's pelvis moves relative to its ground root bone (root-only channels would drop that).
BVH_OPTIONS = MappingProxyType({"global_scale": 1.0, "rotate_mode": "NATIVE", "root_transform_only": False})

#: glTF binary (.glb), Y up (the glTF spec), skins + the active action only, sampled every frame.
GLTF_OPTIONS = MappingProxyType({
    "export_format": "GLB",
    "use_selection": True,
    "export_yup": True,
    "export_apply": False,
    "export_skins": True,
    "export_all_influences": True,  # SMPL skin weights use more than 4 joints per vertex
    "export_animations": True,
    "export_animation_mode": "ACTIVE_ACTIONS",
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
