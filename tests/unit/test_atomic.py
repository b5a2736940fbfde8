"""core.atomic: the one atomic writer — old file kept on failure, stale temps of dead pids only."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from vibe_blender.core import atomic


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_success_replaces_and_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "take.motion.npz"
    target.write_bytes(b"old")
    with atomic.atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(KeyboardInterrupt), atomic.atomic_write(target) as fh:
        fh.write(b"partial")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_an_empty_result_is_refused_and_nothing_changes(tmp_path):
    target = tmp_path / "a.fbx"
    target.write_bytes(b"keep")
    with pytest.raises(OSError, match="nothing was written"), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"")
    assert target.read_bytes() == b"keep" and len(list(tmp_path.iterdir())) == 1


def test_temp_name_keeps_the_extension_for_exporters(tmp_path):
    assert atomic.temp_path(tmp_path / "p.fbx", pid=12).name == ".p.fbx.tmp-12.fbx"


def test_stale_temps_of_dead_processes_go_live_and_foreign_files_stay(tmp_path):
    target = tmp_path / "x.motion.npz"
    dead, live = _dead_pid(), os.getppid()
    stale = [atomic.temp_path(target, dead), tmp_path / f"x.motion.npz.tmp-{dead}"]  # new and old pattern
    keep = [atomic.temp_path(target, live), tmp_path / "x.motion.npz.tmp-notapid", tmp_path / "y.npz.tmp-1"]
    for p in stale + keep:
        p.write_bytes(b"t")
    assert sorted(atomic.remove_stale_temps(target)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_disk_full_names_the_free_space_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "t.npz"
    target.write_bytes(b"old")
    monkeypatch.setenv(atomic.FAULT_ENOSPC_ENV, "1")
    with pytest.raises(atomic.DiskFullError) as info, atomic.atomic_write(target) as fh:
        fh.write(b"x")
    assert info.value.errno == errno.ENOSPC
    assert "disk is full" in str(info.value) and "MiB free" in str(info.value)
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_discard_pending_removes_the_open_blocks_temporary_files_only(tmp_path) -> None:
    """What a process ending at once from a signal handler calls: the temporary file of the open
    block goes, the final file stays as it was, a finished block's file is not touched."""
    done, target = tmp_path / "done.bin", tmp_path / "artefact.pt2"
    with atomic.atomic_write(done) as fh:
        fh.write(b"finished")
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            atomic.discard_pending()
            assert not tmp.exists()
    assert target.read_bytes() == b"old" and done.read_bytes() == b"finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artefact.pt2", "done.bin"]
    assert atomic._PENDING == set()
