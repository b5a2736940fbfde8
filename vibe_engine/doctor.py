"""``python -m vibe_engine doctor [--vibe-data DIR]``: versions, device and model files.

Protocol lines on stdout: ``hello``, one ``report`` (``kind: "doctor"``, ``data``: versions,
devices, which backends are ready (``vibe_ready``, ``blazepose_ready``), files with size and
sha256), then ``done``. A VIBE data folder missing files
gives an ``error`` (MODEL_MISSING, exit 4). A readable summary goes to stderr.
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vibe_blender.core.vibe_data import sha256_file
from vibe_engine import __version__
from vibe_engine.config import OPTIONAL_DATA_NAMES, ModelFiles, resolve_models
from vibe_engine.errors import EXIT_OK
from vibe_engine.model_files import model_file_problem
from vibe_engine.protocol import ProtocolWriter, guarded

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shipped files of the default BlazePose backend (role → path).
DEFAULT_ASSETS = {
    "person_detector": REPO_ROOT / "assets" / "models" / "pose_detection.tflite",
    "pose_landmarks": REPO_ROOT / "assets" / "models" / "pose_landmark_full.tflite",
    "standin_body": REPO_ROOT / "assets" / "body" / "standin_smpl.npz",
}


def _file_entry(role: str, path: Path) -> dict[str, Any]:
    """role, name, path, bytes, sha256 and ``problem`` (None, or what makes the file unusable)."""
    return {"role": role, "name": path.name, "path": str(path), "bytes": path.stat().st_size,
            "sha256": sha256_file(path), "problem": model_file_problem(path)}


def model_entries(models: ModelFiles | None) -> list[dict[str, Any]]:
    """One entry per model file found (role, name, path, bytes, sha256)."""
    entries = [_file_entry(role, p) for role, p in DEFAULT_ASSETS.items() if p.is_file()]
    if models is not None:
        roles = {"vibe_checkpoint": models.vibe_checkpoint, "spin_checkpoint": models.spin_checkpoint,
                 "body_model": models.body_model, **models.extra}
        entries += [_file_entry(role, p) for role, p in roles.items() if p is not None]
    return entries


def device_report() -> dict[str, Any]:
    """torch version, CUDA availability and GPU names, CPU threads."""
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": cuda, "cuda_version": torch.version.cuda,
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "cpu_threads": torch.get_num_threads(), "bf16_cpu": True}


def _vibe_state(data: dict[str, Any]) -> str:
    """'ready', or why not (broken files named, or no files given)."""
    if data["vibe_ready"]:
        return "ready"
    broken = [f"{f['name']} {f['problem']}" for f in data["files"] if f["problem"]]
    return "not ready: " + "; ".join(broken) if broken else "no model files (pass --vibe-data DIR)"


def _summary_text(data: dict[str, Any]) -> str:
    dev = data["device"]
    lines = [f"vibe_engine {data['engine_version']} · Python {data['python']} · torch {dev['torch']} · "
             f"numpy {data['numpy']}",
             f"CUDA: {'yes ' + ', '.join(dev['gpus']) if dev['cuda'] else 'no'}; CPU threads {dev['cpu_threads']}",
             f"default BlazePose backend: {'ready' if data['blazepose_ready'] else 'shipped files missing'}",
             f"VIBE backend: {_vibe_state(data)}"]
    lines += [f"  {f['role']:<22} {f['name']:<32} {f['bytes'] / 1e6:9.1f} MB  sha256 {f['sha256'][:16]}…"
              for f in data["files"]]
    lines += [f"  missing optional file: {name}" for name in data["missing_optional"]]
    return "\n".join(lines)


def doctor_main(args: argparse.Namespace, out: TextIO) -> int:
    """Emit the doctor transcript; returns the exit code."""
    dev = device_report()
    writer = ProtocolWriter(out)
    writer.hello("cuda" if dev["cuda"] else "cpu", dev["cuda"], dev["torch"])

    def body() -> int:
        models = resolve_models(args.vibe_data, args.vibe_checkpoint, args.spin_checkpoint, args.body_model)
        missing = [n for n in OPTIONAL_DATA_NAMES
                   if args.vibe_data and not (Path(args.vibe_data) / n).is_file()]
        files = model_entries(models)
        broken = [f for f in files if f["problem"]]
        data = {"engine_version": __version__, "python": platform.python_version(), "numpy": np.__version__,
                "device": dev, "vibe_ready": models is not None and not broken,
                "blazepose_ready": all(p.is_file() for p in DEFAULT_ASSETS.values()),
                "files": files,
                "missing_optional": missing}
        writer.send("report", kind="doctor", data=data)
        for f in broken:
            writer.warning("MODEL_FILE_BROKEN", f"{f['name']} {f['problem']}; replace it with the official file")
        for name in missing:
            writer.warning("OPTIONAL_FILE_MISSING", f"{name} is not in the VIBE data folder; "
                           "the checkpoint's embedded data is used instead")
        sys.stderr.write(_summary_text(data) + "\n")
        writer.done("ok")
        return EXIT_OK

    return guarded(writer, body)
