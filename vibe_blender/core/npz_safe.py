"""Bounded reading of ``.npz`` archives (the motion file's container).

``np.load(...)[name]`` trusts the archive: a member's ``.npy`` header may declare (10⁹, 72)
floats and numpy allocates them before reading, and a few-MB member of zeros may inflate to
gigabytes. Here only the members a caller asks for are read; each one's ``.npy`` header is
parsed first and its declared size checked against the zip directory's uncompressed size and
against a per-member and a total budget before a byte of data is inflated. Unknown members are
never decompressed. Standard library + numpy.
"""
from __future__ import annotations

import zipfile
from typing import Callable, Iterable

import numpy as np

#: Largest single member read (bytes, uncompressed).
MAX_MEMBER_BYTES = 512 * 2**20
#: Largest sum of the members read from one archive (bytes, uncompressed).
MAX_TOTAL_BYTES = 2 * 2**30
#: Longest ``.npy`` header accepted (numpy writes 128 bytes or a multiple of 64).
MAX_HEADER_BYTES = 65_536


class ArchiveError(ValueError):
    """The archive or one of its members cannot be read within the bounds (one-line message)."""


def _read_header(fh) -> tuple[tuple[int, ...], np.dtype, bool]:
    """Parse a ``.npy`` header from an open member; (shape, dtype, fortran_order)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_HEADER_BYTES)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_HEADER_BYTES)
    else:
        raise ArchiveError(f"unsupported .npy version {version}")
    return shape, dtype, fortran


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> np.ndarray:
    """One member as an array after its header passed the size checks; ``budget`` = [bytes left]."""
    name = info.filename[:-4]
    with zf.open(info) as fh:
        shape, dtype, fortran = _read_header(fh)
        if dtype.hasobject:
            raise ArchiveError(f"member {name!r} holds Python objects (pickles are never loaded)")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise ArchiveError(f"member {name!r} declares shape {shape} ({nbytes} bytes) but holds "
                               f"only {info.file_size} bytes")
        if nbytes > MAX_MEMBER_BYTES or nbytes > budget[0]:
            raise ArchiveError(f"member {name!r} declares shape {shape} ({nbytes / 2**20:.0f} MiB), "
                               f"over the reader's limit of {min(MAX_MEMBER_BYTES, budget[0]) / 2**20:.0f} MiB")
        budget[0] -= nbytes
        data = fh.read(nbytes)
    if len(data) != nbytes:
        raise ArchiveError(f"member {name!r} is truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    order = "F" if fortran else "C"
    return array.reshape(shape, order=order).copy() if shape else array.reshape(()).copy()


def read_members(path: str, wanted: Callable[[str], bool]) -> dict[str, np.ndarray]:
    """Read the members whose name (without ``.npy``) satisfies ``wanted``.

    Raises ArchiveError (bounds, object arrays, truncation), zipfile.BadZipFile or OSError.
    """
    budget = [MAX_TOTAL_BYTES]
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy") or not wanted(info.filename[:-4]):
                continue
            out[info.filename[:-4]] = _read_member(zf, info, budget)
    return out


def member_names(path: str) -> Iterable[str]:
    """Names of the ``.npy`` members (without the suffix), read from the zip directory only."""
    with zipfile.ZipFile(path) as zf:
        return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
