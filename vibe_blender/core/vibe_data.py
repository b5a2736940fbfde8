"""Check a VIBE data folder (the official ``data/vibe_data``) without the engine. Pure stdlib.

The add-on never downloads these files (licence: non-commercial, no redistribution); the user
points the preferences at the folder once. ``check_folder`` says which files are present and
their sizes; sha256 digests are computed only on demand (``with_hashes=True``: hundreds of MB)
and cached by (path, size, mtime) in a ``HashCache`` that serialises to JSON for the preferences.

File names match ``vibe_engine/config.py`` (the engine resolves the same names).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

#: Generator checkpoints, in order of preference; one of them is required.
VIBE_CHECKPOINT_NAMES = ("vibe_model_wo_3dpw.pth.tar", "vibe_model_w_3dpw.pth.tar")
#: Required next to the VIBE checkpoint.
SPIN_CHECKPOINT_NAME = "spin_model_checkpoint.pth.tar"
#: Optional: the engine falls back to the data embedded in the checkpoint.
OPTIONAL_DATA_NAMES = ("SMPL_NEUTRAL.pkl", "J_regressor_extra.npy", "smpl_mean_params.npz")
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One expected file. ``size`` in bytes (None if absent); ``sha256`` hex or None (not computed)."""

    name: str
    role: str
    required: bool
    present: bool
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class DataReport:
    """What ``check_folder`` found. ``ok``: the engine can run the VIBE backend from this folder."""

    folder: str
    exists: bool
    files: tuple[DataFile, ...]

    @property
    def missing_required(self) -> list[str]:
        """Names (or alternatives joined by " or ") of required files that are missing."""
        ckpt = [f for f in self.files if f.role == "vibe_checkpoint"]
        missing = [] if any(f.present for f in ckpt) else [" or ".join(f.name for f in ckpt)]
        return missing + [f.name for f in self.files if f.role == "spin_checkpoint" and not f.present]

    @property
    def ok(self) -> bool:
        return self.exists and not self.missing_required

    def message(self) -> str:
        """One line for the UI: ready, or what is missing and how to fix it."""
        if not self.exists:
            return f"VIBE data folder not found: {self.folder}; choose the folder holding the VIBE files"
        if self.missing_required:
            return (f"VIBE data folder lacks {', '.join(self.missing_required)}: copy the official "
                    "data/vibe_data files there")
        present = sum(f.present for f in self.files)
        return f"VIBE data folder ready ({present} of {len(self.files)} known files present)"


class HashCache:
    """sha256 digests keyed by (absolute path, size, mtime_ns): a changed file is hashed again."""

    def __init__(self, entries: dict[str, str] | None = None) -> None:
        self._entries: dict[str, str] = dict(entries or {})

    @staticmethod
    def _key(path: Path) -> str:
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def get(self, path: Path) -> str | None:
        return self._entries.get(self._key(path))

    def digest(self, path: Path) -> str:
        """The cached digest, or hash the file now and remember it."""
        key = self._key(path)
        if key not in self._entries:
            self._entries[key] = sha256_file(path)
        return self._entries[key]

    def to_json(self) -> str:
        return json.dumps(self._entries, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "HashCache":
        """Rebuild from ``to_json`` output; anything unreadable gives an empty cache."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls({str(k): str(v) for k, v in data.items()})


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def _expected() -> list[tuple[str, str, bool]]:
    files = [(n, "vibe_checkpoint", True) for n in VIBE_CHECKPOINT_NAMES]
    files.append((SPIN_CHECKPOINT_NAME, "spin_checkpoint", True))
    return files + [(n, "optional", False) for n in OPTIONAL_DATA_NAMES]


def check_folder(folder: str | os.PathLike, *, with_hashes: bool = False,
                 cache: HashCache | None = None) -> DataReport:
    """Look for the known VIBE files in ``folder``.

    with_hashes: compute missing sha256 digests (slow: reads every file); otherwise only digests
    already in ``cache`` are reported. The checkpoint "required" flag means "one of the two".
    """
    root = Path(folder).expanduser()
    cache = cache if cache is not None else HashCache()
    files = []
    for name, role, required in _expected():
        path = root / name
        if not path.is_file():
            files.append(DataFile(name, role, required, False))
            continue
        digest = cache.digest(path) if with_hashes else cache.get(path)
        files.append(DataFile(name, role, required, True, path.stat().st_size, digest))
    return DataReport(str(root), root.is_dir(), tuple(files))
