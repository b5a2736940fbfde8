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
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserInputError
from ..core.settings import DEVICES, PRECISIONS

ENGINE_MODULE = "vibe_engine"
VENV_DIR_NAME = "vibe_engine_venv"
# What "Set up engine" installs. torch is pinned: a bare "torch" could pull GBs of CUDA wheels.
DEFAULT_ENGINE_PACKAGES = ("vibe-mocap[engine]", "torch==2.13.0")
# PyTorch's CPU-only wheel index: on Linux, PyPI's torch pulls GBs of CUDA libraries.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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
) -> list[str]:
    """argv of ``run``: VIDEO → motion file OUT. ``tracks`` None = every person.

    smoothing / foot_lock False add ``--no-smooth`` / ``--no-foot-lock`` (the engine's
    post-processing steps, on by default).
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
