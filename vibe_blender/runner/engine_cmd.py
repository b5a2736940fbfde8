"""Build the engine's command lines (pure: no processes are started here).

The engine runs in its *own* Python interpreter (the one that has torch), never in Blender's:
``<engine python> -m vibe_engine run VIDEO --out FILE ...``.

``EngineSpec.launcher`` is the documented override used by tests and by developers: when it is
set, it replaces ``<engine python> -m vibe_engine`` and the sub-command and its options are
appended to it unchanged. The test suite points it at ``tests/fakes/fake_engine.py``; a developer
may point it at a checkout (``/path/python -m vibe_engine``) or a wrapper script. The argv is
always a list handed to ``subprocess.Popen`` without a shell.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..core.errors import UserInputError
from ..core.settings import DEVICES, PRECISIONS

ENGINE_MODULE = "vibe_engine"
VENV_DIR_NAME = "vibe_engine_venv"
# What "Set up engine" installs. torch is pinned: a bare "torch" could pull GBs of CUDA wheels.
DEFAULT_ENGINE_PACKAGES = ("vibe-mocap[engine]", "torch==2.13.0")
# PyTorch's CPU-only wheel index: on Linux, PyPI's torch pulls GBs of CUDA libraries.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# PyTorch's CUDA wheel index (the user chose the GPU): torch==2.13.0 built for CUDA 12.8.
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
#: Inside the extension (tools/build_extension.py): the engine wheel and its pinned requirements.
BUNDLED_ENGINE_DIR = "engine"
BUNDLED_REQUIREMENTS = "requirements.txt"
MIN_ENGINE_PYTHON = (3, 11)
#: Interpreters tried on PATH, newest first, when neither the user nor Blender gives one.
PATH_PYTHONS = ("python3.13", "python3.12", "python3.11", "python3")
PROBE_TIMEOUT_S = 20
SETUP_LOG_NAME = "engine_setup.log"
#: The optional last step of "Set Up Engine" when VIBE model files are configured.
PREPARE_STEP = "Preparing the compiled VIBE model (optional; minutes)"


@dataclass(frozen=True)
class EngineSpec:
    """How to start the engine.

    python: path of the engine's interpreter (has torch); not Blender's ``sys.executable``.
    launcher: optional argv prefix replacing ``(python, "-m", "vibe_engine")`` (tests, developers).
    """

    python: str = ""
    launcher: tuple[str, ...] = ()

    def prefix(self) -> list[str]:
        """The argv before the sub-command; raises UserInputError when nothing is configured."""
        if self.launcher:
            return list(self.launcher)
        if not self.python:
            raise UserInputError(
                "No engine Python is set: run 'Set up engine' or choose the engine's python "
                "in the add-on preferences"
            )
        return [self.python, "-m", ENGINE_MODULE]


def parse_launcher(text: str) -> tuple[str, ...]:
    """Split a launcher override typed by the user (POSIX shell quoting, never run by a shell)."""
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise UserInputError(f"Engine command override cannot be parsed ({exc}): fix its quoting") from exc


def check_engine_python(spec: EngineSpec) -> None:
    """Raise UserInputError when the configured interpreter does not exist or cannot run."""
    if spec.launcher:
        return
    path = Path(spec.prefix()[0])
    if not path.is_file():
        raise UserInputError(
            f"Engine Python not found: {path}; run 'Set up engine' or fix the path in the preferences"
        )
    if not os.access(path, os.X_OK):
        raise UserInputError(f"Engine Python is not executable: {path}; fix its permissions")


def run_argv(
    spec: EngineSpec,
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    vibe_data: str | os.PathLike | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    tracks: tuple[int, ...] | None = None,
    smoothing: bool = True,
    foot_lock: bool = True,
    focal_35mm: float = 0.0,
) -> list[str]:
    """argv of ``run``: VIDEO → motion file OUT. ``tracks`` None = every person.

    smoothing / foot_lock False add ``--no-smooth`` / ``--no-foot-lock`` (the engine's
    post-processing steps, on by default); ``focal_35mm`` (mm, 35 mm equivalent) other than 0 adds
    ``--focal-35mm`` (the user's focal; 0 = the engine's own focal path).
    """
    if device not in DEVICES:
        raise UserInputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise UserInputError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    argv = spec.prefix() + ["run", os.fspath(video), "--out", os.fspath(out)]
    if vibe_data:
        argv += ["--vibe-data", os.fspath(vibe_data)]
    argv += ["--device", device, "--precision", precision]
    if tracks:
        argv += ["--tracks", ",".join(str(int(t)) for t in tracks)]
    if focal_35mm:
        argv += ["--focal-35mm", f"{float(focal_35mm):g}"]
    return argv + ([] if smoothing else ["--no-smooth"]) + ([] if foot_lock else ["--no-foot-lock"])


def doctor_argv(spec: EngineSpec, *, vibe_data: str | os.PathLike | None = None) -> list[str]:
    """argv of ``doctor``: the engine reports versions, devices and model files, then exits."""
    argv = spec.prefix() + ["doctor"]
    return argv + ["--vibe-data", os.fspath(vibe_data)] if vibe_data else argv


def venv_python(venv_dir: str | os.PathLike, *, windows: bool | None = None) -> str:
    """Path of the interpreter inside a venv (``bin/python`` or ``Scripts\\python.exe``)."""
    windows = os.name == "nt" if windows is None else windows
    sub = ("Scripts", "python.exe") if windows else ("bin", "python")
    return os.fspath(Path(venv_dir, *sub))


def create_venv_argv(base_python: str, venv_dir: str | os.PathLike) -> list[str]:
    """argv that creates the engine venv with a base interpreter (no admin rights needed)."""
    if not base_python:
        raise UserInputError("No base Python to create the engine venv with: set one in the preferences")
    return [base_python, "-m", "venv", os.fspath(venv_dir)]


def pip_install_argv(python: str, packages: tuple[str, ...] = DEFAULT_ENGINE_PACKAGES,
                     *, find_links: str | None = None, extra_index_url: str | None = None) -> list[str]:
    """argv of ``pip install`` into the engine venv (binary wheels preferred: no compiler needed).

    extra_index_url: a second index (e.g. ``TORCH_CPU_INDEX``, whose ``2.13.0+cpu`` wins over
    PyPI's CUDA build for the pin ``torch==2.13.0``).
    """
    if not packages:
        raise UserInputError("Nothing to install: give the engine package (name, wheel or folder)")
    argv = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--progress-bar", "off", "--prefer-binary"]
    if find_links:
        argv += ["--find-links", find_links]
    if extra_index_url:
        argv += ["--extra-index-url", extra_index_url]
    return argv + list(packages)


def setup_steps(base_python: str, venv_dir: str | os.PathLike,
                packages: tuple[str, ...] = DEFAULT_ENGINE_PACKAGES,
                extra_index_url: str | None = TORCH_CPU_INDEX) -> list[tuple[str, list[str]]]:
    """The named steps of "Set up engine": create the venv, then pip install the engine into it."""
    py = venv_python(venv_dir)
    return [
        ("Creating the engine environment", create_venv_argv(base_python, venv_dir)),
        ("Installing the engine (this downloads torch once)",
         pip_install_argv(py, packages, extra_index_url=extra_index_url)),
    ]


@dataclass(frozen=True)
class BundledEngine:
    """The engine shipped inside the extension: ``wheel`` file and pinned ``requirements`` file."""

    wheel: Path
    requirements: Path


def bundled_engine(addon_root: str | os.PathLike) -> BundledEngine | None:
    """The bundled engine under ``<addon_root>/engine/`` (extension zips from ``make extension``)."""
    folder = Path(addon_root) / BUNDLED_ENGINE_DIR
    wheels = sorted(folder.glob("*.whl"))
    req = folder / BUNDLED_REQUIREMENTS
    return BundledEngine(wheels[-1], req) if wheels and req.is_file() else None


def python_version(python: str, run: Callable = subprocess.run) -> tuple[int, int] | None:
    """(major, minor) of an interpreter that runs and has ``venv``; None when it does not."""
    try:
        done = run([python, "-c", "import sys, venv; print(*sys.version_info[:2])"], capture_output=True,
                   text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    words = done.stdout.split() if done.returncode == 0 else []
    return (int(words[0]), int(words[1])) if len(words) == 2 and all(w.isdigit() for w in words) else None


def find_base_python(picked: str = "", blender_python: str = "", *,
                     which: Callable[[str], str | None] = shutil.which,
                     version: Callable[[str], tuple[int, int] | None] = python_version) -> str:
    """The interpreter that creates the engine venv: the user's pick, else Blender's own Python (a real
    interpreter in a Blender program), else the newest python3.11+ on PATH. Raises UserInputError."""
    need = ".".join(map(str, MIN_ENGINE_PYTHON))
    if picked:
        got = version(picked)
        if got is None or got < MIN_ENGINE_PYTHON:
            raise UserInputError(f"Base Python {picked} is not a Python {need}+ with venv: pick another one")
        return picked
    candidates = [blender_python] if blender_python else []
    candidates += [p for p in (which(n) for n in PATH_PYTHONS) if p]
    for python in dict.fromkeys(candidates):
        got = version(python)
        if got is not None and got >= MIN_ENGINE_PYTHON:
            return python
    raise UserInputError(f"No Python {need} or newer found: install one or pick it as Base Python "
                         "in the add-on preferences")


def engine_setup_steps(base_python: str, venv_dir: str | os.PathLike, engine: BundledEngine, *,
                       device: str = "cpu", torch_index: str | None = None,
                       wheelhouse: str | None = None) -> list[tuple[str, list[str]]]:
    """The steps of "Set Up Engine" with the bundled engine: create the venv, install the pinned
    libraries (torch from the CPU or CUDA index, or everything from ``wheelhouse`` offline), install
    the engine wheel, then run the engine's ``doctor``.

    torch_index: None = the index for ``device``; "" = the package index only (pip's configuration).
    """
    if device not in DEVICES:
        raise UserInputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}")
    py = venv_python(venv_dir)
    if wheelhouse:
        if not Path(wheelhouse).is_dir():
            raise UserInputError(f"Wheelhouse folder not found: {wheelhouse}; choose the folder with the wheels")
        source: Sequence[str] = ("--no-index", "--find-links", os.fspath(wheelhouse))
    else:
        index = (TORCH_CUDA_INDEX if device == "cuda" else TORCH_CPU_INDEX) if torch_index is None else torch_index
        source = ("--extra-index-url", index) if index else ()
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           "--prefer-binary", *source]
    return [
        ("Creating the engine environment", create_venv_argv(base_python, venv_dir)),
        ("Installing torch and the other libraries (one download)", pip + ["-r", os.fspath(engine.requirements)]),
        ("Installing the engine", pip + ["--no-deps", "--force-reinstall", os.fspath(engine.wheel)]),
        ("Checking the engine", [py, "-m", ENGINE_MODULE, "doctor"]),
    ]


def prepare_argv(python: str, vibe_data: str | os.PathLike, *, device: str = "cpu",
                 precision: str = "fp32") -> list[str]:
    """argv of ``prepare``: build the compiled VIBE generator's artefacts once, with a progress line
    per step on stdout (docs/engine-protocol.md "Compiled artefacts")."""
    if device not in DEVICES:
        raise UserInputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}")
    if precision not in PRECISIONS:
        raise UserInputError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    return [python, "-m", ENGINE_MODULE, "prepare", "--vibe-data", os.fspath(vibe_data), "--device", device,
            "--precision", precision, "--progress"]


def with_prepare_step(steps: list[tuple[str, list[str]]], python: str, vibe_data: str | os.PathLike | None,
                      *, device: str = "cpu", precision: str = "fp32") -> list[tuple[str, list[str]]]:
    """``steps`` plus the optional PREPARE_STEP when a VIBE data folder is configured (never for the
    free default backend: it has nothing to compile and must set up without any VIBE file)."""
    if not vibe_data:
        return list(steps)
    return [*steps, (PREPARE_STEP, prepare_argv(python, vibe_data, device=device, precision=precision))]
