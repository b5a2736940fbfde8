"""Import options as frozen dataclasses, built from operator properties or API arguments. Pure.

Validation raises ``UserInputError`` with a one-line message naming the bad value and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UserInputError

# Every option choice of the add-on, the engine CLI and the batch tool, defined once here as
# value → (label, description); the value tuples feed validation and argparse ``choices=``, and
# :func:`enum_items` Blender's EnumProperty items (bl/props.py, bl/prefs.py).

#: Where the body goes (see ``core.bake_plan``): travel in the world, stay in place, or no root keys.
ROOT_MOTION_CHOICES = {
    "world": ("World", "The body travels through the scene as in the video (static camera)"),
    "in_place": ("In Place", "Horizontal travel removed: the body stays over the origin"),
    "off": ("Off", "No root translation keys (pose only)"),
}
#: "scene": keep the scene frame rate (motion resampled to it); "video": set the scene to the video's.
FPS_CHOICES = {  # order kept: .blend files store the item index
    "scene": ("Keep Scene", "Keep the scene frame rate (motion resampled to it). The camera's footage "
                            "background still plays one video frame per scene frame, so it drifts "
                            "from the characters when the rates differ"),
    "video": ("Video Rate", "Set the scene frame rate to the video's: the footage background and the "
                            "characters stay together, keys land on whole frames"),
}
#: The default: the camera's footage background plays one video frame per scene frame, so only a scene
#: at the video's rate keeps the characters on the people (a 24 fps scene with 30 fps footage drifts).
DEFAULT_FPS_MODE = "video"
#: The engine's torch device.
DEVICE_CHOICES = {
    "cpu": ("CPU", "Run on the processor (always available)"),
    "cuda": ("CUDA", "Run on an NVIDIA GPU (the engine venv needs a CUDA torch)"),
}
#: The VIBE backend's compute precision (``vibe_engine.models.load_generator``).
PRECISION_CHOICES = {
    "fp32": ("FP32", "Full precision"),
    "bf16": ("BF16", "bfloat16 backbone: faster on GPUs and CPUs with AMX or AVX512-BF16, slower on other "
                     "CPUs (the engine warns); joints within about 2 mm of FP32"),
}
#: Where "Set Up Engine" installs from (``bl.prefs.setup_steps``).
INSTALL_SOURCE_CHOICES = {
    "online": ("Online", "The package index, torch from PyTorch's index for the device (CPU or CUDA)"),
    "index": ("Package Index Only", "Everything from pip's configured index (a mirror); no PyTorch index"),
    "offline": ("Offline Wheelhouse", "Everything from a folder of wheel files; no network"),
}
ROOT_MOTION_MODES = tuple(ROOT_MOTION_CHOICES)
FPS_MODES = tuple(FPS_CHOICES)
DEVICES = tuple(DEVICE_CHOICES)
PRECISIONS = tuple(PRECISION_CHOICES)
#: Focal lengths (35 mm-equivalent, mm) a user may give (the add-on's Focal field, the engine's
#: ``--focal-35mm``) and that container metadata may state; outside is refused or ignored as corrupt.
#: 0 in the add-on's field means automatic (the engine's own focal path).
FOCAL_35MM_RANGE = (8.0, 400.0)
#: File suffixes taken as videos when a folder is expanded (the batch tools; lower case).
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")


def enum_items(choices: dict[str, tuple[str, str]]) -> tuple[tuple[str, str, str], ...]:
    """Blender EnumProperty items (value, label, description) of one of the choice tables above."""
    return tuple((value, label, text) for value, (label, text) in choices.items())


def parse_track_ids(text: str) -> tuple[int, ...] | None:
    """"1, 3 4" → (1, 3, 4); empty text → None (every person). Raises UserInputError."""
    words = text.replace(",", " ").split()
    if not words:
        return None
    try:
        ids = tuple(int(w) for w in words)
    except ValueError:
        raise UserInputError(f"People must be track ids such as '1, 3', got {text!r}") from None
    if any(i < 0 for i in ids):
        raise UserInputError(f"Track ids are not negative, got {text!r}")
    return tuple(dict.fromkeys(ids))


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserInputError(f"Unknown {what} {value!r}: use one of {', '.join(choices)}")


@dataclass(frozen=True)
class ImportOptions:
    """How a motion becomes characters in the scene.

    tracks: track ids to import, None = all. frame_start: scene frame of video time 0.
    smoothing / foot_lock: the engine's post-processing steps (raw output stays in the file).
    focal_35mm: the camera's focal as a 35 mm equivalent (mm) for the engine, 0 = automatic
    (container metadata, else the default lens, refined from the footage).
    """

    tracks: tuple[int, ...] | None = None
    root_motion: str = "world"
    smoothing: bool = True
    foot_lock: bool = True
    fps_mode: str = DEFAULT_FPS_MODE
    frame_start: int = 1
    focal_35mm: float = 0.0

    def __post_init__(self) -> None:
        _check_choice("root motion", self.root_motion, ROOT_MOTION_MODES)
        low, high = FOCAL_35MM_RANGE
        if self.focal_35mm != 0.0 and not low <= self.focal_35mm <= high:  # NaN fails both
            raise UserInputError(f"Focal {self.focal_35mm:g} mm is not a lens: give a 35 mm-equivalent focal "
                                 f"from {low:g} to {high:g} mm, or 0 for automatic")
        _check_choice("frame rate mode", self.fps_mode, FPS_MODES)
        if self.tracks is not None and not self.tracks:
            raise UserInputError("No people chosen: give track ids such as '1, 3' or choose all people")

    @property
    def bake_fps(self) -> str | None:
        """The ``fps`` argument of ``bl.bake.bake_track``: None keeps the scene's, "video" sets it."""
        return "video" if self.fps_mode == "video" else None

    def chosen(self, available: list[int]) -> list[int]:
        """The track ids to import out of ``available``; UserInputError names missing ones, or
        says the file has no person at all."""
        if not available:
            raise UserInputError("The motion file has no tracked person (0 tracks): run the engine "
                                 "again on a video where a person is visible")
        if self.tracks is None:
            return list(available)
        missing = [t for t in self.tracks if t not in available]
        if missing:
            raise UserInputError(f"No track {', '.join(map(str, missing))} in the motion file "
                                 f"(it has {', '.join(map(str, available)) or 'none'}): choose existing ids")
        return list(self.tracks)


@dataclass(frozen=True)
class EngineOptions:
    """Where the engine is and how it runs.

    python: the engine's interpreter ("" = not set up). launcher: argv replacing
    ``python -m vibe_engine`` (tests, developers; see ``runner.engine_cmd.EngineSpec``).
    vibe_data: the VIBE data folder ("" = the engine's default backend).
    """

    python: str = ""
    launcher: tuple[str, ...] = ()
    vibe_data: str = ""
    device: str = "cpu"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check_choice("device", self.device, DEVICES)
        _check_choice("precision", self.precision, PRECISIONS)
