"""The extension zip: builds and validates with Blender's blender_ext.py, installs with
``extensions.package_install_files`` and works from its ``bl_ext.user_default.vibe_mocap`` namespace;
the same staged folder also enables as a legacy add-on (``bl_info``).

Installing changes Blender's user configuration, so each install runs in a fresh interpreter
(this one's python: the same bpy) with its own BLENDER_USER_RESOURCES set before bpy is imported.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy")

from tests.fixtures.motion import make_motion  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "fakes" / "fake_engine.py"
TIMEOUT_S = 240

CHILD = r'''
import json, os, shutil, sys
import bpy, addon_utils
mode, target, motion, video, out = sys.argv[1:6]
fake = sys.argv[6]
res = {}

def registered(name):
    return bpy.types.Operator.bl_rna_get_subclass_py(name) is not None

if mode == "extension":
    module = "bl_ext.user_default.vibe_mocap"
    res["install"] = sorted(bpy.ops.extensions.package_install_files(
        filepath=target, repo="user_default", enable_on_install=True))
else:
    module = "vibe_mocap"
    addons = bpy.utils.user_resource("SCRIPTS", path="addons", create=True)
    shutil.copytree(target, os.path.join(addons, "vibe_mocap"))
    bpy.utils.refresh_script_paths()  # the addons folder was created after start-up: add it to sys.path
    addon_utils.modules_refresh()
    addon_utils.enable(module, default_set=True)

res["enabled"] = module in bpy.context.preferences.addons
res["operators"] = all(registered(n) for n in ("VIBE_OT_import_video", "VIBE_OT_import_motion", "VIBE_OT_cancel"))
prefs = bpy.context.preferences.addons[module].preferences
res["prefs_idname"] = type(prefs).bl_idname  # (reading it on the instance gives garbage)
res["module_file"] = sys.modules[module + ".bl.operators"].__file__
res["absolute_import_loaded"] = "vibe_blender" in sys.modules
bpy.ops.wm.read_homefile(use_empty=True)
res["import_motion"] = sorted(bpy.ops.vibe.import_motion(filepath=motion))
res["objects_after_motion"] = sorted(o.name for o in bpy.data.objects)
bpy.ops.wm.read_homefile(use_empty=True)
prefs = bpy.context.preferences.addons[module].preferences
prefs.engine_command = f"'{sys.executable}' '{fake}' --scenario ok --result-from '{motion}'"
res["import_video"] = sorted(bpy.ops.vibe.import_video(filepath=video, motion_path=out))
res["actions"] = sorted(a.name for a in bpy.data.actions)

if mode == "extension":
    repos = [r.module for r in bpy.context.preferences.extensions.repos]
    res["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(
        repo_index=repos.index("user_default"), pkg_id="vibe_mocap"))
else:
    addon_utils.disable(module, default_set=True)
res["still_registered"] = registered("VIBE_OT_import_video")
res["scene_prop_left"] = "vibe" in bpy.types.Scene.bl_rna.properties.keys()
print("RESULT " + json.dumps(res))
'''


def _blender_ext() -> Path:
    from tools import build_extension  # noqa: PLC0415

    return build_extension.find_blender_ext()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The zip and the staged folder, built by tools/build_extension.py with this interpreter."""
    tmp = tmp_path_factory.mktemp("ext")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "build_extension.py"), "--out-dir", str(tmp / "dist"),
                           "--build-dir", str(tmp / "build")], capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    zip_path = Path(done.stdout.strip().splitlines()[-1])
    motion = tmp / "two.motion.npz"
    mf.write_motion(motion, make_motion(num_tracks=2, num_frames=8, posedirs=False))
    video = tmp / "clip.mp4"
    video.write_bytes(b"stand-in: the fake engine only checks that it exists")
    return {"zip": zip_path, "staged": tmp / "build" / "vibe_mocap", "motion": motion, "video": video, "tmp": tmp}


def _run_child(built, mode: str, target: Path) -> dict:
    user = built["tmp"] / f"user-{mode}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(BLENDER_USER_RESOURCES=str(user), OMP_WAIT_POLICY="PASSIVE")
    out = built["tmp"] / f"{mode}.motion.npz"
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(target), str(built["motion"]), str(built["video"]),
                           str(out), str(FAKE)], capture_output=True, text=True, timeout=TIMEOUT_S,
                          cwd=built["tmp"], env=env)
    assert done.returncode == 0, f"child exited {done.returncode}:\n{done.stderr[-4000:]}"
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line[len("RESULT "):])
    res["user"] = str(user)
    return res


def test_zip_validates_and_holds_the_package(built):
    import zipfile

    done = subprocess.run([sys.executable, str(_blender_ext()), "validate", str(built["zip"])],
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout + done.stderr
    names = set(zipfile.ZipFile(built["zip"]).namelist())
    assert {"blender_manifest.toml", "__init__.py", "bl/operators.py", "runner/job.py", "core/settings.py"} <= names
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)


def test_installs_as_an_extension_and_works(built):
    res = _run_child(built, "extension", built["zip"])
    assert res["install"] == ["FINISHED"] and res["enabled"] and res["operators"]
    assert res["prefs_idname"] == "bl_ext.user_default.vibe_mocap"
    assert res["module_file"].startswith(res["user"])  # the installed copy, not the checkout
    assert res["absolute_import_loaded"] is False  # relative imports only
    assert res["import_motion"] == ["FINISHED"]
    assert res["objects_after_motion"] == ["VIBE Camera", "VIBE_1", "VIBE_1_body", "VIBE_2", "VIBE_2_body"]
    assert res["import_video"] == ["FINISHED"] and res["actions"] == ["VIBE_1_action", "VIBE_2_action"]
    assert res["uninstall"] == ["FINISHED"]
    assert res["still_registered"] is False and res["scene_prop_left"] is False


def test_enables_as_a_legacy_addon(built):
    res = _run_child(built, "legacy", built["staged"])
    assert res["enabled"] and res["operators"] and res["prefs_idname"] == "vibe_mocap"
    assert res["absolute_import_loaded"] is False
    assert res["import_motion"] == ["FINISHED"] and res["import_video"] == ["FINISHED"]
    assert res["still_registered"] is False and res["scene_prop_left"] is False
