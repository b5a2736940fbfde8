"""core.settings: the frozen option dataclasses the operator and the API build."""
from __future__ import annotations

import dataclasses

import pytest

from vibe_blender.core.errors import UserInputError
from vibe_blender.core.settings import EngineOptions, ImportOptions, parse_track_ids


@pytest.mark.parametrize("text, ids", [("", None), ("  ", None), ("3", (3,)), ("1, 3 4", (1, 3, 4)),
                                       ("2,2,1", (2, 1))])
def test_parse_track_ids(text, ids):
    assert parse_track_ids(text) == ids


@pytest.mark.parametrize("text", ["one", "1.5", "-2"])
def test_parse_track_ids_rejects(text):
    with pytest.raises(UserInputError, match="track ids|Track ids"):
        parse_track_ids(text)


def test_import_options_defaults_and_fps_mapping():
    opts = ImportOptions()
    assert (opts.tracks, opts.root_motion, opts.smoothing, opts.foot_lock, opts.bake_fps) == (
        None, "world", True, True, "video")
    assert ImportOptions(fps_mode="scene").bake_fps is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.root_motion = "off"


@pytest.mark.parametrize("kwargs, words", [
    ({"root_motion": "fly"}, "Unknown root motion 'fly': use one of world, in_place, off"),
    ({"fps_mode": "60"}, "Unknown frame rate mode"),
    ({"tracks": ()}, "No people chosen"),
])
def test_import_options_reject(kwargs, words):
    with pytest.raises(UserInputError, match=words):
        ImportOptions(**kwargs)


def test_chosen_tracks():
    assert ImportOptions().chosen([1, 2]) == [1, 2]
    assert ImportOptions(tracks=(2,)).chosen([1, 2]) == [2]
    with pytest.raises(UserInputError, match=r"No track 5 in the motion file \(it has 1, 2\)"):
        ImportOptions(tracks=(5, 1)).chosen([1, 2])


def test_engine_options_reject_unknown_device():
    with pytest.raises(UserInputError, match="Unknown device 'tpu'"):
        EngineOptions(device="tpu")
    assert EngineOptions(device="cuda", precision="bf16").precision == "bf16"


def test_root_motion_modes_match_the_bake_plan():
    from vibe_blender.core import bake_plan, settings

    assert settings.ROOT_MOTION_MODES == bake_plan.ROOT_MOTION_MODES
