"""register → unregister → register is clean on the running Blender (4.2, 5.0, 5.2)."""
import pytest

bpy = pytest.importorskip("bpy")

import vibe_blender  # noqa: E402
from vibe_blender import bl  # noqa: E402

EXPECTED_OPERATORS = {"import_video", "import_motion", "cancel", "check_engine", "setup_engine",
                      "hash_vibe_data", "export_character"}


def _state() -> dict:
    """Everything registration may touch: our RNA types, the Scene property, operators, panels."""
    bases = (bpy.types.Operator, bpy.types.Panel, bpy.types.PropertyGroup, bpy.types.AddonPreferences)
    registered = {cls.__name__ for cls in bl.CLASSES for base in bases
                  if base.bl_rna_get_subclass_py(cls.__name__) is not None}
    return {
        "types": sorted(registered | {n for n in dir(bpy.types) if n.startswith("VIBE_")}),
        "is_registered": sorted(cls.__name__ for cls in bl.CLASSES if cls.is_registered),
        "scene_prop": "vibe" in bpy.types.Scene.bl_rna.properties.keys(),
        "operators": sorted(op for op in EXPECTED_OPERATORS if hasattr(bpy.types, f"VIBE_OT_{op}")),
        "panel": hasattr(bpy.types, "VIBE_PT_main"),
    }


@pytest.fixture
def clean():
    """Start and end unregistered (another module may have left nothing behind: checked here)."""
    assert not _state()["scene_prop"], "the add-on was left registered by an earlier test"
    yield
    if _state()["scene_prop"]:
        vibe_blender.unregister()


def test_register_unregister_register_is_clean(clean):
    empty = _state()
    assert empty == {"types": [], "is_registered": [], "scene_prop": False, "operators": [], "panel": False}
    vibe_blender.register()
    first = _state()
    assert first["scene_prop"] and first["panel"]
    assert first["operators"] == sorted(EXPECTED_OPERATORS)
    assert first["types"] == first["is_registered"] == sorted(cls.__name__ for cls in bl.CLASSES)
    assert bpy.context.scene.vibe.root_motion == "world"
    assert bpy.context.scene.vibe.fps_mode == "video"  # footage and characters agree by default
    vibe_blender.unregister()
    assert _state() == empty
    vibe_blender.register()
    assert _state() == first
    vibe_blender.unregister()
    assert _state() == empty


def test_classes_follow_the_naming_rules():
    ids = {cls.__name__: getattr(cls, "bl_idname", None) for cls in bl.CLASSES}
    for name, idname in ids.items():
        if "_OT_" in name:
            assert idname == "vibe." + name.split("_OT_")[1]
    assert ids["VibePreferences"] == "vibe_blender"  # the add-on module name (from __package__)
    assert ids["VIBE_PT_main"] == "VIBE_PT_main"
    subpanels = [cls for cls in bl.CLASSES if getattr(cls, "bl_parent_id", "")]
    assert {cls.bl_parent_id for cls in subpanels} == {"VIBE_PT_main"}
    assert all(bl.CLASSES.index(cls) > bl.CLASSES.index(bl.panels.VIBE_PT_main) for cls in subpanels)


def test_settings_build_frozen_options(clean):
    from vibe_blender.bl import props
    from vibe_blender.core.errors import UserInputError

    vibe_blender.register()
    s = bpy.context.scene.vibe
    s.people, s.track_ids, s.root_motion, s.fps_mode, s.smoothing = "chosen", "2, 5", "in_place", "video", False
    opts = props.import_options(s, frame_start=7)
    assert (opts.tracks, opts.root_motion, opts.bake_fps, opts.smoothing, opts.frame_start) == (
        (2, 5), "in_place", "video", False, 7)
    s.track_ids = ""
    with pytest.raises(UserInputError, match="No people chosen"):
        props.import_options(s)
