"""Frame-rate defaults, the scene range and the visibility expression (pure core, issue 12)."""
import numpy as np

from vibe_blender.core import bake_plan as bp
from vibe_blender.core.motion_header import VideoInfo
from vibe_blender.core.settings import DEFAULT_FPS_MODE, ImportOptions


def test_default_sets_the_scene_to_the_video_rate():
    assert DEFAULT_FPS_MODE == "video" and ImportOptions().fps_mode == "video"
    assert ImportOptions().bake_fps == "video"  # bake_track sets the scene's fps/fps_base to the video's


def test_keys_land_on_whole_frames_when_rates_match():
    times = np.arange(230) / 30.0
    frames = bp.times_to_frames(times, 30.0, 1)
    np.testing.assert_array_equal(frames, np.arange(1, 231))


def test_scene_range_covers_the_clip_and_every_key():
    video = VideoInfo(fps=30.0, frames=230)
    assert bp.scene_range(1, 30.0, 5.0, video) == (1, 230)  # the clip outlasts the last key (t = 5 s)
    assert bp.scene_range(1, 24.0, 229 / 30, video) == (1, 185)  # 7.633 s at 24 fps: frame 184.2
    assert bp.scene_range(10, 30.0, 9.0, video) == (10, 280)  # a key after the clip's end
    assert bp.scene_range(1, 30.0, 2.0, None) == (1, 61)  # no video header: the keys decide


def test_visibility_expression_hides_outside_the_track():
    expr = bp.visibility_expression(np.array([4.0, 5.0, 9.0]), 1)

    def hidden(frame):  # the expression is also valid Python with the same meaning
        return bool(eval(expr, {}, {"frame": frame}))

    assert [f for f in range(0, 13) if hidden(f)] == [1, 2, 3, 10, 11, 12]  # frame 0: before the scene
