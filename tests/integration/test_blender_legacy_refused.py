"""Below Blender 4.2 the add-on refuses to register with a one-line message (Debian's `blender -b`,
Blender 3.4, installed by `make apt`): enabling the checkout's package as a legacy add-on leaves it
disabled, registers none of its classes and adds nothing to the scene (3.4 used to crash on import).
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLENDER = shutil.which("blender")
TIMEOUT_S = 300

SCRIPT = r'''
import json, sys, bpy, addon_utils
out = sys.argv[sys.argv.index("--") + 1]
before = sorted(o.name for o in bpy.data.objects)
mod = addon_utils.enable("vibe_blender", default_set=True)
res = {"version": list(bpy.app.version), "returned_module": mod is not None,
       "enabled": "vibe_blender" in bpy.context.preferences.addons,
       "operator": hasattr(bpy.types, "VIBE_OT_import_video"), "scene_prop": hasattr(bpy.types.Scene, "vibe"),
       "objects_unchanged": sorted(o.name for o in bpy.data.objects) == before}
json.dump(res, open(out, "w"))
'''


@pytest.mark.skipif(BLENDER is None, reason="Debian's blender is not installed: run `make apt`")
def test_register_is_refused_below_4_2(tmp_path):
    scripts = tmp_path / "scripts"
    shutil.copytree(ROOT / "vibe_blender", scripts / "addons" / "vibe_blender",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script, out = tmp_path / "enable.py", tmp_path / "res.json"
    script.write_text(SCRIPT)
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(scripts), "BLENDER_USER_CONFIG": str(tmp_path / "config")}
    env.pop("PYTHONPATH", None)  # the add-on comes from the scripts folder only
    proc = subprocess.run([BLENDER, "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script),
                           "--", str(out)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    if tuple(res["version"]) >= (4, 2, 0):
        pytest.skip(f"this blender is {res['version']}: nothing to refuse")
    assert res == {**res, "returned_module": False, "enabled": False, "operator": False, "scene_prop": False,
                   "objects_unchanged": True}
    have = ".".join(map(str, res["version"]))
    message = f"VIBE Mocap needs Blender 4.2 or newer (this is Blender {have}): install Blender 4.2 LTS"
    assert message in proc.stdout
    assert "Traceback" not in proc.stdout.split(message)[0]  # the refusal is the first thing said
