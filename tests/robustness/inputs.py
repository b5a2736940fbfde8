"""Builders of bad inputs: tiny clips, tampered motion files, zip bombs, pickles that run code.

``Assets`` makes the shared, read-only inputs once per session (lazily, in one folder); every
case copies what it changes into its own folder. Motion-file tampering rewrites archive members
directly (``rewrite_members``), so the files are exactly what a broken writer or an attacker would
leave, not what ``write_motion`` (which validates) accepts.
"""
from __future__ import annotations

import functools
import io
import json
import os
import pickle
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.fixtures import media
from tests.fixtures.motion import make_motion
from vibe_blender.core import motion_file as mf

#: The person clip: the demo's first frames at a quarter of its size (442x248), long enough for
#: --min-frames 5 and quick for BlazePose (~3 s a run on 2 cores).
PERSON_FRAMES = 12
PERSON_SCALE = 4
#: Frames and size of the plain (no person) clip.
PLAIN_FRAMES = 20
PLAIN_SIZE = (160, 90)
#: Bytes the zip-bomb member claims and decompresses to.
BOMB_BYTES = 1 << 31
BOMB_CHUNK = 1 << 24


class Evil:
    """Pickles to "create MARKER" (``open(MARKER, 'w')``): a loader that runs it executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Assets:
    """Shared inputs under ``root``, each built on first use (cached per instance)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @functools.cached_property
    def person_clip(self) -> Path:
        frames = media.demo_frames(PERSON_FRAMES, PERSON_SCALE, area=True)
        return media.write_cv2_clip(self.root / "person.mp4", frames)

    @functools.cached_property
    def plain_clip(self) -> Path:
        """H.264 testsrc, 160x90, PLAIN_FRAMES frames: decodes fine, nobody in it."""
        return media.make_testsrc_clip(self.root / "plain.mp4", PLAIN_FRAMES, *PLAIN_SIZE)

    @functools.cached_property
    def one_frame_clip(self) -> Path:
        return media.make_testsrc_clip(self.root / "one_frame.mp4", 1, *PLAIN_SIZE)

    @functools.cached_property
    def png(self) -> Path:
        import cv2

        path = self.root / "still.png"
        cv2.imwrite(str(path), media.pattern_frame(0, *PLAIN_SIZE))
        return path

    @functools.cached_property
    def vibe_data(self) -> Path:
        from tests.fixtures import synthetic

        return synthetic.make_vibe_data(self.root / "vibe_data", 0)

    @functools.cached_property
    def motion(self) -> Path:
        """A valid one-track, 12-frame motion file (synthetic body, no pose correctives)."""
        path = self.root / "good.motion.npz"
        mf.write_motion(path, make_motion(num_tracks=1, num_frames=12, posedirs=False))
        return path

    @functools.cached_property
    def bomb(self) -> Path:
        """``motion`` plus an unknown deflated member that decompresses to BOMB_BYTES (~2 MB file)."""
        path = self.root / "bomb.motion.npz"
        shutil.copyfile(self.motion, path)
        add_zero_bomb(path, "extra/padding.npy", BOMB_BYTES)
        return path


class _RepeatingDeflate:
    """A zlib compressor for ``zipfile``'s member writer that deflates the first write (the .npy
    header) for real and then returns one precomputed full-flush block per zero chunk: a valid
    raw deflate stream of any length, built without compressing gigabytes."""

    def __init__(self, chunk: int) -> None:
        self._head = zlib.compressobj(9, zlib.DEFLATED, -15)
        zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
        self._block = zeros.compress(bytes(chunk)) + zeros.flush(zlib.Z_FULL_FLUSH)
        self._chunk, self._started = chunk, False

    def compress(self, data: bytes) -> bytes:
        if not self._started:
            self._started = True
            return self._head.compress(data) + self._head.flush(zlib.Z_FULL_FLUSH)
        assert len(data) == self._chunk and not any(data[:64]), "only whole zero chunks after the header"
        return self._block

    def flush(self) -> bytes:
        return self._head.flush()


def add_zero_bomb(path: Path, member: str, size: int) -> None:
    """Append ``member``: a uint8 .npy of ``size`` zero bytes, deflated (about size / 1000 bytes)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": (size,)})
    assert size % BOMB_CHUNK == 0
    zeros = bytes(BOMB_CHUNK)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(member, "w", force_zip64=True) as out:
            out._compressor = _RepeatingDeflate(BOMB_CHUNK)  # zipfile's writer hook (CPython 3.11-3.13)
            out.write(head.getvalue())
            for _ in range(size // BOMB_CHUNK):
                out.write(zeros)


# ------------------------------------------------------------------------------ motion files


def read_members(path: Path) -> dict[str, bytes]:
    """Raw bytes of every archive member (``name.npy`` → bytes), in archive order."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(path: Path, members: dict[str, bytes]) -> Path:
    """Write raw members as an uncompressed zip (the layout ``np.savez`` writes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def meta_of(members: dict[str, bytes]) -> dict[str, Any]:
    arr = np.load(io.BytesIO(members["meta.npy"]), allow_pickle=False)
    return json.loads(arr.tobytes().decode("utf-8"))


def meta_bytes(meta: dict[str, Any]) -> bytes:
    return npy_bytes(np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))


def tampered(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """Copy the motion file ``src`` to ``dst`` with its raw members changed by ``edit``."""
    members = read_members(src)
    edit(members)
    return write_members(dst, members)


def with_meta(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Copy with the JSON header changed by ``edit(meta)``."""

    def apply(members: dict[str, bytes]) -> None:
        meta = meta_of(members)
        edit(meta)
        members["meta.npy"] = meta_bytes(meta)

    return tampered(src, dst, apply)


def set_path(meta: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = meta
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value


def with_array(src: Path, dst: Path, member: str, arr: np.ndarray, allow_pickle: bool = False) -> Path:
    def apply(members: dict[str, bytes]) -> None:
        members[member] = npy_bytes(arr, allow_pickle)

    return tampered(src, dst, apply)


def with_huge_header(src: Path, dst: Path, member: str, shape: tuple[int, ...]) -> Path:
    """The member's .npy header claims ``shape`` (float32); the data stays the original few KB."""

    def apply(members: dict[str, bytes]) -> None:
        old = members[member]
        buf = io.BytesIO(old)
        version = np.lib.format.read_magic(buf)
        np.lib.format._read_array_header(buf, version)  # skip the old header
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": shape})
        members[member] = head.getvalue() + old[buf.tell():]

    return tampered(src, dst, apply)


def without_tracks(src: Path, dst: Path) -> Path:
    """No ``track/*`` members and an empty ``tracks`` summary: a file with nobody in it."""

    def apply(members: dict[str, bytes]) -> None:
        for name in [n for n in members if n.startswith("track/")]:
            del members[name]
        meta = meta_of(members)
        meta["tracks"] = []
        members["meta.npy"] = meta_bytes(meta)

    return tampered(src, dst, apply)


def without_member(src: Path, dst: Path, member: str) -> Path:
    def apply(members: dict[str, bytes]) -> None:
        del members[member]

    return tampered(src, dst, apply)


def member_array(path: Path, member: str) -> np.ndarray:
    return np.load(io.BytesIO(read_members(path)[member]), allow_pickle=False)


# ------------------------------------------------------------------------------ videos and models


def patched_codec(src: Path, dst: Path, old: bytes = b"avc1", new: bytes = b"zzzz") -> Path:
    """Copy an MP4 with its sample-entry fourcc replaced: a codec no decoder knows."""
    data = src.read_bytes()
    assert old in data, f"{src} has no {old!r} sample entry"
    dst.write_bytes(data.replace(old, new))
    return dst


def evil_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"v_template": Evil(marker)}, protocol=2))
    return path


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A torch zip checkpoint whose data.pkl calls open(marker, 'w') when fully unpickled."""
    import torch

    torch.save({"state_dict": Evil(marker), "epoch": 1}, path)
    return path


def object_npy(path: Path) -> Path:
    """An object-dtype .npy (its payload is a pickle)."""
    np.save(path, np.array([[0.0] * 3, "x"], dtype=object), allow_pickle=True)
    return path


def link_vibe_data(vibe_data: Path, dst: Path, **replace: Callable[[Path], Path]) -> Path:
    """A data folder ``dst`` linking every file of ``vibe_data``; names in ``replace`` (with '.' as
    '__') are built by the callables instead of linked."""
    dst.mkdir()
    for src in vibe_data.iterdir():
        if src.name.replace(".", "__") not in replace:
            (dst / src.name).symlink_to(src)
    for key, make in replace.items():
        make(dst / key.replace("__", "."))
    return dst


def dead_pid() -> int:
    """The pid of a process that has already exited (and been reaped)."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def write(dst: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode()
    dst.write_bytes(data)
    return dst


def make_dirs(*paths: Path) -> None:
    for p in paths:
        os.makedirs(p, exist_ok=True)
