"""Engine settings: one frozen dataclass built by the CLI, plus model-file discovery.

Model files are never downloaded: they come from ``--vibe-data DIR`` (the official
``data/vibe_data`` folder) or from explicit ``--vibe-checkpoint``/``--spin-checkpoint`` paths.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibe_engine.errors import BadInputError, ModelError

#: VIBE generator checkpoints, in order of preference, inside a VIBE data folder.
VIBE_CHECKPOINT_NAMES = ("vibe_model_wo_3dpw.pth.tar", "vibe_model_w_3dpw.pth.tar")
#: SPIN checkpoint (backbone/regressor init and mean parameters), required with --vibe-data.
SPIN_CHECKPOINT_NAME = "spin_model_checkpoint.pth.tar"
#: Optional data files in a VIBE data folder.
OPTIONAL_DATA_NAMES = ("SMPL_NEUTRAL.pkl", "J_regressor_extra.npy", "smpl_mean_params.npz")

#: Official demo: tracks shorter than this many frames are dropped (MIN_NUM_FRAMES).
DEFAULT_MIN_FRAMES = 25
#: Crops per backbone batch (all tracks together).
DEFAULT_BATCH_SIZE = 32
#: Frames per GRU/regressor chunk; the hidden state is carried across chunks (exact).
GRU_CHUNK_FRAMES = 90
#: The official demo restarts the GRU hidden state every 450 frames (its DataLoader batch size).
OFFICIAL_CHUNK_FRAMES = 450
#: Frames between person-detector runs while every track is followed (``--detect-every``), per
#: backend; chosen by measurement (benchmarks/engine.py; docs/engine-protocol.md "Speed").
DEFAULT_DETECT_EVERY = {"vibe": 5, "blazepose": 15}
#: ``--compile auto`` compiles the VIBE backbone on the CPU when the kept tracks have at least this
#: many crops: a cold Inductor compilation costs 10-40 s on 2 shared cores and saves ~10 ms per
#: crop with bf16 (benchmarks/engine.py), so it pays off only for minutes of tracked video.
AUTO_COMPILE_MIN_CROPS = 3000
#: ``--camera`` choices: decide from the background, a tripod (no estimation), always moving
#: (vibe_engine.world.camera_motion).
CAMERA_MODES = ("auto", "static", "moving")
#: Environment hook for tests: the feature step raises an out-of-memory error for batches larger
#: than this many crops (docs/engine-protocol.md "Test hooks").
OOM_ENV = "VIBE_ENGINE_FAULT_OOM_ABOVE"
#: Environment hook for tests: the temporal step (GRU + regressor) raises an out-of-memory error
#: for calls of more than this many frames (docs/engine-protocol.md "Test hooks").
OOM_TEMPORAL_ENV = "VIBE_ENGINE_FAULT_OOM_TEMPORAL_ABOVE"


@dataclass(frozen=True)
class ModelFiles:
    """Resolved model files (absolute paths); optional ones may be None."""

    vibe_checkpoint: Path
    spin_checkpoint: Path | None = None
    body_model: Path | None = None
    extra: dict[str, Path] = field(default_factory=dict)

    def named(self) -> dict[str, Path]:
        """Every file present, by file name (for the manifest and `doctor`)."""
        files = {"vibe_checkpoint": self.vibe_checkpoint, "spin_checkpoint": self.spin_checkpoint,
                 "body_model": self.body_model, **self.extra}
        return {p.name: p for p in files.values() if p is not None}


@dataclass(frozen=True)
class EngineConfig:
    """Every setting of one `run` (units in the names; all recorded in the manifest)."""

    video: Path
    out: Path
    models: ModelFiles | None = None
    boxes: Path | None = None
    device: str = "cpu"
    precision: str = "fp32"
    focal_px: float | None = None
    min_frames: int = DEFAULT_MIN_FRAMES
    batch_size: int = DEFAULT_BATCH_SIZE
    tracks: tuple[int, ...] | None = None
    max_people: int | None = None
    official_chunks: bool = False
    smooth: bool = True
    ground: bool = True
    foot_lock: bool = True
    oom_above: int | None = None
    oom_temporal_above: int | None = None
    detect_every: int | None = None
    compile: str = "auto"
    landmark_model: str = "full"
    camera: str = "auto"  # camera motion: auto | static | moving (vibe_engine.world.camera_motion)

    def compiles(self, crops: int) -> bool:
        """Whether the VIBE backbone is compiled for a run with ``crops`` crops (``--compile``)."""
        if self.compile == "auto":
            return self.device == "cpu" and crops >= AUTO_COMPILE_MIN_CROPS
        return self.compile == "on"

    def detector_stride(self, backend: str) -> int:
        """Frames between detector runs: ``detect_every``, else the backend's default."""
        return self.detect_every if self.detect_every is not None else DEFAULT_DETECT_EVERY[backend]

    @property
    def chunk_frames(self) -> int:
        """GRU chunk length: must divide OFFICIAL_CHUNK_FRAMES so resets land on chunk starts."""
        return GRU_CHUNK_FRAMES

    def settings(self) -> dict[str, Any]:
        """JSON-ready dict of every setting (for the manifest)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ModelFiles):
                value = {k: str(v) for k, v in value.named().items()}
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def _existing(path: str | os.PathLike | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ModelError(f"{what} not found: {p}; check the path", code="MODEL_MISSING")
    return p


def _from_data_dir(data_dir: Path) -> dict[str, Path | None]:
    """Find the official file names in a VIBE data folder; ModelError naming what is missing."""
    if not data_dir.is_dir():
        raise ModelError(f"VIBE data folder not found: {data_dir}; pass the folder that holds "
                         f"{VIBE_CHECKPOINT_NAMES[0]} and {SPIN_CHECKPOINT_NAME}", code="MODEL_MISSING")
    vibe = next((data_dir / n for n in VIBE_CHECKPOINT_NAMES if (data_dir / n).is_file()), None)
    spin = data_dir / SPIN_CHECKPOINT_NAME
    missing = ([] if vibe else [" or ".join(VIBE_CHECKPOINT_NAMES)]) + ([] if spin.is_file() else
                                                                        [SPIN_CHECKPOINT_NAME])
    if missing:
        raise ModelError(f"VIBE data folder {data_dir} lacks {', '.join(missing)}; copy the official "
                         "data/vibe_data files there or pass --vibe-checkpoint/--spin-checkpoint",
                         code="MODEL_MISSING")
    found = {n: data_dir / n for n in OPTIONAL_DATA_NAMES if (data_dir / n).is_file()}
    return {"vibe": vibe, "spin": spin, **found}


def resolve_models(vibe_data: str | None, vibe_checkpoint: str | None, spin_checkpoint: str | None,
                   body_model: str | None) -> ModelFiles | None:
    """Resolve the VIBE model files, or None when no VIBE option was given (default backend).

    Explicit paths override files found in ``vibe_data``. Raises ModelError (exit 4) naming
    every missing file.
    """
    if not (vibe_data or vibe_checkpoint or spin_checkpoint):
        return None
    found: dict[str, Path | None] = {}
    if vibe_data:
        found = _from_data_dir(Path(vibe_data).expanduser().resolve())
    vibe = _existing(vibe_checkpoint, "VIBE checkpoint") or found.get("vibe")
    if vibe is None:
        raise BadInputError("--spin-checkpoint needs --vibe-checkpoint (or --vibe-data DIR)")
    spin = _existing(spin_checkpoint, "SPIN checkpoint") or found.get("spin")
    body = _existing(body_model, "body model") or found.get("SMPL_NEUTRAL.pkl")
    extra = {k: v for k, v in found.items()
             if k in OPTIONAL_DATA_NAMES and k != "SMPL_NEUTRAL.pkl" and v is not None}
    return ModelFiles(vibe_checkpoint=vibe, spin_checkpoint=spin, body_model=body, extra=extra)


#: Environment switch: ``0`` runs everything in the main thread, between the model calls (decoding,
#: the moving-camera tracker, BlazePose's landmarks of several people): the sequential reference
#: that tests/engine/test_pipeline_overlap.py and benchmarks/engine.py compare with (same results).
#: Unset or anything else: decoding runs ahead in a thread, landmarks of several people on two.
OVERLAP_ENV = "VIBE_ENGINE_OVERLAP"


def overlap_enabled() -> bool:
    """Whether the run overlaps decoding with the models (and people with each other): ``OVERLAP_ENV``."""
    return os.environ.get(OVERLAP_ENV, "1").strip() != "0"
