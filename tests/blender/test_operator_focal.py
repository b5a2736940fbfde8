"""The Options panel's Focal field reaches the engine (issue 10): 0 = automatic (no flag, the engine's own
focal path); a 35 mm-equivalent focal becomes ``--focal-35mm`` on the engine's command line, and the
real engine then records it as the user's focal (``meta.camera.source == "user"``, the focal in pixels
for the clip's size). A value that is no lens is refused with a one-line message before any work."""
import math
import shutil
import subprocess
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")

import vibe_blender  # noqa: E402
from tests.blender.conftest import ENGINE_PYTHON  # noqa: E402
from vibe_blender.bl import api, props  # noqa: E402
from vibe_blender.core.errors import UserInputError  # noqa: E402
from vibe_blender.core.motion_file import read_motion  # noqa: E402
from vibe_blender.core.settings import EngineOptions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "benchmarks" / "synthetic" / "ci" / "jumps_front.mp4"
WIDTH, HEIGHT = 480, 270
ENGINE_TIMEOUT_S = 900


@pytest.fixture
def addon():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    vibe_blender.register()
    yield bpy.context.scene.vibe
    vibe_blender.unregister()
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def clip(tmp_path):
    """The first second of the CI clip at WIDTH × HEIGHT."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is not installed: run `make apt`"
    out = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(SOURCE), "-t", "1", "-vf", f"scale={WIDTH}:{HEIGHT}",
                    "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True, timeout=ENGINE_TIMEOUT_S)
    return out


def test_focal_field_goes_to_the_engine_and_into_the_manifest(addon, clip, tmp_path):
    engine = EngineOptions(python=ENGINE_PYTHON)
    assert addon.focal_35mm == 0.0  # automatic by default
    auto = api.start_job(clip, tmp_path / "auto.motion.npz", engine, props.import_options(addon))
    assert "--focal-35mm" not in auto.process.argv
    addon.focal_35mm = 28.0
    out = tmp_path / "user.motion.npz"
    job = api.start_job(clip, out, engine, props.import_options(addon))
    argv = job.process.argv
    assert argv[argv.index("--focal-35mm") + 1] == "28"
    job.run_blocking()
    job.raise_for_state()
    cam = read_motion(out).meta["camera"]
    assert cam["source"] == "user"
    expected = 28.0 / math.hypot(36.0, 24.0) * math.hypot(WIDTH, HEIGHT)
    assert cam["focal_px"] == pytest.approx(expected, rel=1e-9)
    assert cam["focal_35mm"] == pytest.approx(28.0, abs=1e-3)


def test_a_focal_that_is_no_lens_is_refused_before_the_engine(addon):
    addon.focal_35mm = 3.0
    with pytest.raises(UserInputError, match="Focal 3 mm is not a lens"):
        props.import_options(addon)
