"""Library versions for the ``hello`` line, ``doctor`` and the manifest, without importing torch
when the run does not need it (importing torch costs ~0.9 s on 2 cores; the BlazePose backend
never uses it)."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

import numpy as np


def torch_version() -> str | None:
    """Installed torch version without importing torch (None when missing)."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Python, torch and numpy versions for the manifest; torch's from the loaded module when the
    run imported it, else from its package metadata."""
    torch = sys.modules.get("torch")
    return {"python": platform.python_version(), "torch": torch.__version__ if torch else torch_version(),
            "numpy": np.__version__}
