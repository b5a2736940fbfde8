"""Blender tier: runs under every bpy wheel (.venv bpy 5.0, .venv-bpy42, .venv-bpy52).

bpy is imported by the test modules (``pytest.importorskip("bpy")``); this file only keeps Blender
away from the real user configuration and provides the smplx reference runner. Tests reset the
scene with ``bpy.ops.wm.read_factory_settings(use_empty=True)`` and register no timers (bpy 4.2
segfaults at exit if one is left registered).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="vibe-blender-user-"))
#: Interpreter with torch + smplx (the engine venv); override with VIBE_ENGINE_PYTHON.
ENGINE_PYTHON = os.environ.get("VIBE_ENGINE_PYTHON", str(REPO / ".venv" / "bin" / "python"))
SMPLX_TIMEOUT_S = 300


def run_smplx_reference(tmp_dir: Path, body, betas, pose, transl) -> np.ndarray:
    """Vertices (T,V,3) float64, camera frame, from smplx in the engine venv (subprocess)."""
    arrays = {k: np.asarray(getattr(body, k)) for k in
              ("v_template", "shapedirs", "J_regressor", "weights", "parents", "faces")}
    if body.posedirs is not None:
        arrays["posedirs"] = np.asarray(body.posedirs)
    src, dst = tmp_dir / "smplx_in.npz", tmp_dir / "smplx_out.npz"
    np.savez(src, betas=betas, pose=pose, transl=transl, **arrays)
    script = Path(__file__).with_name("smplx_reference.py")
    env = {**os.environ, "PYTHONPATH": "", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([ENGINE_PYTHON, str(script), str(src), str(dst)], capture_output=True,
                          text=True, timeout=SMPLX_TIMEOUT_S, env=env)
    assert done.returncode == 0, f"smplx reference failed ({ENGINE_PYTHON}): {done.stderr[-2000:]}"
    with np.load(dst) as npz:
        return npz["vertices"]


@pytest.fixture(scope="session")
def smplx_reference():
    """The :func:`run_smplx_reference` function (session-wide, no state)."""
    return run_smplx_reference


def pytest_report_header(config):
    return f"blender tier: python {sys.version.split()[0]}, smplx reference via {ENGINE_PYTHON}"
