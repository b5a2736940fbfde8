"""Export option tables (pure): presets, format parsing, errors."""
import pytest

from vibe_blender.core import export_presets as ep
from vibe_blender.core.errors import UserInputError


def test_every_fbx_preset_bakes_the_active_action_without_leaf_bones():
    for name in ep.FBX_PRESET_NAMES:
        o = ep.fbx_options(name)
        assert o["add_leaf_bones"] is False and o["bake_anim"] is True
        assert o["bake_anim_use_all_actions"] is False and o["bake_anim_use_nla_strips"] is False
        assert o["bake_anim_simplify_factor"] == 0.0 and o["use_selection"] is True
        assert o["object_types"] == {"ARMATURE", "MESH"}


def test_preset_axes():
    assert (ep.fbx_options("unity")["axis_forward"], ep.fbx_options("unity")["axis_up"]) == ("-Z", "Y")
    assert (ep.fbx_options("Unreal")["axis_forward"], ep.fbx_options("Unreal")["axis_up"]) == ("Y", "Z")
    assert ep.fbx_options("unity")["apply_scale_options"] == "FBX_SCALE_ALL"


def test_options_are_fresh_copies():
    ep.fbx_options("generic")["object_types"].add("CAMERA")
    assert ep.fbx_options("generic")["object_types"] == {"ARMATURE", "MESH"}


def test_unknown_preset():
    with pytest.raises(UserInputError, match="unknown FBX preset 'godot'; use one of generic, unity, unreal"):
        ep.fbx_options("godot")


@pytest.mark.parametrize("text, expected", [("fbx,bvh", ("fbx", "bvh")), (" GLTF , fbx,fbx", ("glb", "fbx")),
                                            ("glb", ("glb",))])
def test_parse_formats(text, expected):
    assert ep.parse_formats(text) == expected


@pytest.mark.parametrize("text", ["", " , ", "fbx,obj"])
def test_parse_formats_rejects(text):
    with pytest.raises(UserInputError, match="format"):
        ep.parse_formats(text)
