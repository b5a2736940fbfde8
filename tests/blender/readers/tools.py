"""Run the external readers (FBX SDK via FBX2glTF, Khronos glTF validator, Assimp).

They are installed by ``make readers`` (part of ``make test``): npm packages into build/readers,
Assimp from Debian. A reader that is missing makes the calling test fail with the command to run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
READERS = Path(os.environ.get("VIBE_READERS_DIR", REPO / "build" / "readers"))
FBX2GLTF = READERS / "node_modules" / "fbx2gltf" / "bin" / "Linux" / "FBX2glTF"
VALIDATOR = READERS / "node_modules" / "gltf-validator"
VALIDATE_JS = Path(__file__).with_name("validate_gltf.js")
TIMEOUT_S = 300
#: FBX2glTF resamples animation at one of these rates (its --anim-framerate choices).
FBX2GLTF_RATES = {24: "bake24", 30: "bake30", 60: "bake60"}


def _need(path_or_cmd, what: str) -> str:
    found = shutil.which(str(path_or_cmd)) if not os.path.isabs(str(path_or_cmd)) else (
        str(path_or_cmd) if os.path.exists(path_or_cmd) else None)
    if not found:
        pytest.fail(f"{what} is not installed ({path_or_cmd} missing); run `make readers`", pytrace=False)
    return found


def _run(cmd: list, what: str) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=TIMEOUT_S,
                          errors="replace")
    assert done.returncode == 0, f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}"
    return done.stdout


def fbx_sdk_to_gltf(fbx: Path, out_dir: Path, fps: int) -> tuple[Path, dict]:
    """Convert an FBX with FBX2glTF (Autodesk FBX SDK 2019) → (.glb path, facts printed by it).

    The glTF it writes is the FBX SDK's reading of the file converted to glTF's Y-up metres:
    node defaults = the FBX default transforms, samples = the take evaluated at ``fps``.
    Facts: ``take`` (name), ``take_frames`` [first, last] (the take's time span at ``fps``).
    """
    exe = _need(FBX2GLTF, "FBX2glTF (npm fbx2gltf)")
    if not os.access(exe, os.X_OK):
        pytest.fail(f"{exe} is not executable; run `make readers`", pytrace=False)
    stem = out_dir / f"{fbx.stem}_fbxsdk"
    text = _run([exe, "-b", "-v", "--anim-framerate", FBX2GLTF_RATES[fps], "-i", fbx, "-o", stem], "FBX2glTF")
    takes = re.findall(r"^Animation (.+?): \[(-?\d+) - (-?\d+)\]$", text, flags=re.M)
    facts = {"takes": [(n, int(a), int(b)) for n, a, b in takes]}
    return stem.with_suffix(".glb"), facts


def validate_gltf(path: Path) -> dict:
    """The Khronos glTF validator's report (dict) for a .glb file."""
    node = _need("node", "Node.js (Debian nodejs)")
    _need(VALIDATOR, "the Khronos glTF validator (npm gltf-validator)")
    return json.loads(_run([node, VALIDATE_JS, VALIDATOR, path], "gltf-validator"))


def assimp_dump(path: Path, out_dir: Path) -> Path:
    """Assimp's XML dump of a file (``assimp dump``, Debian assimp-utils) → the .assxml path."""
    exe = _need("assimp", "Assimp (Debian assimp-utils)")
    out = out_dir / f"{path.stem}_{path.suffix[1:]}.assxml"
    _run([exe, "dump", path, out], "assimp dump")
    return out
