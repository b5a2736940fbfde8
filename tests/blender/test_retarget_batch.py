"""``tools/vibe_batch.py … --retarget RIG.blend[:ARMATURE]``: the retargeted FBX/glb per person."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from tests.blender import export_rigs as rigs  # noqa: E402
from tests.blender.test_retarget_blender import _target  # noqa: E402
from tests.fixtures import retarget as fx  # noqa: E402
from vibe_blender.core.motion_file import write_motion  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "vibe_batch.py"
TIMEOUT_S = 600


def _batch(*args):
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, env=env)


@pytest.fixture(scope="module")
def rig_blend(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _target("mixamo", obj_name="Hero")
    path = root / "hero.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    write_motion(root / "cmu.motion.npz", fx.cmu_motion())
    return root


def test_batch_writes_the_retargeted_files(rig_blend, tmp_path):
    out = tmp_path / "out"
    done = _batch(rig_blend / "cmu.motion.npz", "--motion", "--out", out, "--formats", "fbx,glb",
                  "--retarget", f"{rig_blend / 'hero.blend'}:Hero", "--no-blend")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (entry,) = json.loads((out / "vibe_batch_report.json").read_text())["inputs"]
    files = entry["people"][0]["files"]
    assert Path(files["retarget_fbx"]).name == "cmu_person1_retarget.fbx"
    assert Path(files["retarget_glb"]).read_bytes()[:4] == b"glTF"
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=files["retarget_fbx"], anim_offset=0)
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    names = [b.name for b in arm.data.bones]
    assert "mixamorig:LeftUpLeg" in names and len(names) == 52
    heads = rigs.head_positions(arm, [1, 60], ["mixamorig:Hips"])
    assert np.linalg.norm(heads[1, 0, :2] - heads[0, 0, :2]) > 0.01  # the root motion came along


@pytest.mark.parametrize("spec, message", [("missing.blend", "existing .blend"), ("hero.blend:Nobody", "no object")])
def test_bad_rig_argument(rig_blend, tmp_path, spec, message):
    done = _batch(rig_blend / "cmu.motion.npz", "--motion", "--out", tmp_path / "o", "--formats", "fbx",
                  "--retarget", rig_blend / spec if "/" not in spec else spec, "--no-blend")
    text = done.stdout + done.stderr
    assert done.returncode in (1, 2) and message in text, text[-2000:]
