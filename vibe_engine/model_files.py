"""Cheap structural checks of the VIBE model files, before anything loads them.

``doctor`` reports a file as usable only when it passes, and a run refuses a broken file with
a message naming it (not the checkpoint next to it). Each check reads at most a few kilobytes:
a torch checkpoint is a zip with a ``data.pkl`` member, or a legacy pickle/tar stream; a
``.npy`` has a valid header of a plain (non-object) numeric dtype; an ``.npz`` is a zip of such
members; an SMPL ``.pkl`` starts with a pickle protocol marker. Nothing is unpickled here.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

#: First bytes of a pickle stream with protocol 2 or higher.
PICKLE_MARK = b"\x80"
#: Offset and magic of a POSIX tar header.
TAR_MAGIC = (257, b"ustar")


def _head(path: Path, size: int = 512) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _check_checkpoint(path: Path) -> str | None:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if not any(n.endswith("data.pkl") for n in zf.namelist()):
                return "is a zip archive but not a PyTorch checkpoint (no data.pkl)"
        return None
    head = _head(path)
    at, magic = TAR_MAGIC
    if head.startswith(PICKLE_MARK) or head[at:at + len(magic)] == magic:
        return None
    return "is not a PyTorch checkpoint (neither the zip nor the legacy format)"


def _check_npy_stream(fh) -> str | None:
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = read(fh)
    except (ValueError, OSError, EOFError) as exc:
        return f"is not a valid .npy array ({str(exc)[:80]})"
    if dtype.hasobject or dtype.kind not in "fiub":
        return f"holds {dtype} values, not plain numbers"
    return None


def _check_npy(path: Path) -> str | None:
    with open(path, "rb") as fh:
        return _check_npy_stream(fh)


def _check_npz(path: Path) -> str | None:
    if not zipfile.is_zipfile(path):
        return "is not an .npz archive"
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            with zf.open(name) as fh:
                problem = _check_npy_stream(fh)
            if problem:
                return f"member {name} {problem}"
    return None


def _check_pkl(path: Path) -> str | None:
    return None if _head(path, 1) == PICKLE_MARK else "is not a pickle file (SMPL .pkl expected)"


def model_file_problem(path: Path) -> str | None:
    """What is wrong with the model file ``path`` (one phrase after its name), or None if it
    looks usable. Chooses the check by suffix (.pth/.tar: checkpoint, .npy, .npz, .pkl)."""
    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
        suffix = path.suffix.lower()
        if suffix in (".tar", ".pth", ".pt"):
            return _check_checkpoint(path)
        checks = {".npy": _check_npy, ".npz": _check_npz, ".pkl": _check_pkl}
        return checks[suffix](path) if suffix in checks else None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
