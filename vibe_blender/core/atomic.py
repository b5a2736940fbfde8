"""Atomic file writing: every writer of the engine and the add-on goes through here.

A file is written under a temporary name in its own folder, ``fsync``-ed, then renamed onto
the final name with ``os.replace``. So a failure, a cancel or a kill at any point leaves either
the old file (untouched) or the complete new one, never a partial file under the final name.

Temporary names are ``.<name>.tmp-<pid><suffix>`` (``<suffix>`` is the final name's extension,
so exporters that look at it still work). A process killed with SIGKILL cannot remove its
temporary file; the next write to the same path removes the temporary files of processes that
no longer exist (``remove_stale_temps``). Files of live processes and any file not named by this
pattern are never touched.

Standard library only (runs in Blender's Python and in the engine).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

#: errno values meaning "the disk (or the user's quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Fault-injection hook for the robustness tests: when set, ``atomic_write`` raises ENOSPC after
#: the temporary file was created (as a full disk would).
FAULT_ENOSPC_ENV = "VIBE_ENGINE_FAULT_ENOSPC"
_TEMP_RE = r"^(?:\.{name}\.tmp-(\d+){suffix}|{name}\.tmp-(\d+))$"
#: Temporary files of this process's open ``atomic_path`` blocks (``discard_pending``).
_PENDING: set[Path] = set()


class DiskFullError(OSError):
    """The disk is full while writing ``path``; the message names the free space and the fix."""

    def __str__(self) -> str:
        return str(self.strerror)


def temp_path(path: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary name for ``path`` used by process ``pid`` (default: this process)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{os.getpid() if pid is None else pid}{p.suffix}")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (or exists but belongs to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temps(path: str | os.PathLike) -> list[Path]:
    """Temporary files of ``path`` left by processes that no longer run (this pattern only:
    ``.<name>.tmp-<pid><suffix>``, and the older ``<name>.tmp-<pid>``)."""
    p = Path(path)
    if not p.parent.is_dir():
        return []
    pattern = re.compile(_TEMP_RE.format(name=re.escape(p.name), suffix=re.escape(p.suffix)))
    found = []
    for entry in os.scandir(p.parent):
        match = pattern.match(entry.name)
        if match and entry.is_file(follow_symlinks=False):
            pid = int(match.group(1) or match.group(2))
            if pid != os.getpid() and not pid_alive(pid):
                found.append(Path(entry.path))
    return found


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove :func:`stale_temps` of ``path``; returns what was removed (errors are ignored)."""
    removed = []
    for stale in stale_temps(path):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


def disk_full_message(path: str | os.PathLike) -> str:
    """One line: the disk is full at ``path``, the free space there, and the fix."""
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
        space = f"{free / 2**20:.1f} MiB free"
    except OSError:
        space = "free space unknown"
    return f"the disk is full while writing {path} ({space} in {folder}); free some space or choose another folder"


def _raise_disk_full(path: str | os.PathLike, exc: OSError) -> None:
    if exc.errno in DISK_FULL_ERRNOS:
        raise DiskFullError(exc.errno, disk_full_message(path)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends normally, the file written
    there is fsync-ed and renamed onto ``path``. On any exception (including KeyboardInterrupt)
    the temporary file is removed and ``path`` is left as it was. A full disk raises
    :class:`DiskFullError` with the free space named.

    The block must create the file (exporters write by path); an empty or missing file raises
    OSError and ``path`` is left as it was.
    """
    remove_stale_temps(path)
    tmp = temp_path(path)
    _PENDING.add(tmp)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise OSError(errno.EIO, f"nothing was written for {path}")
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        _raise_disk_full(path, exc)
        raise
    except BaseException:
        _discard(tmp)
        raise
    finally:
        _PENDING.discard(tmp)


def discard_pending() -> None:
    """Remove the temporary files of every ``atomic_path`` block still open in this process: for a
    process about to end at once (``os._exit`` from a signal handler) without unwinding them."""
    for tmp in list(_PENDING):
        _discard(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file object; its content replaces ``path`` atomically when the block ends
    normally (see :func:`atomic_path` for failures)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            if os.environ.get(FAULT_ENOSPC_ENV):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
            yield fh


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()
