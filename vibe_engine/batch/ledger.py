"""The run manifest ``DIR/batch.jsonl``: one JSON event per line, appended under a file lock.

Each clip is keyed by ``<video sha256>:<settings hash>``. Events: ``start`` (written by the task
when it begins an attempt, with its host and pid), then ``done`` (written by the task before it
releases the clip's lock) or ``failed`` / ``cancelled`` (written by the batch driver, which also
learns of dead workers). The last event of a key is its state: a ``start``
without an end event is a partial take (the driver died), which ``--resume`` runs again, like
``failed`` and ``cancelled`` ones. ``done`` carries the output's sha256, so a motion file that was
deleted or changed since is run again too.

Several batch runs (and their tasks) may append to one ledger at once: each append takes an
exclusive ``flock`` on the file and writes one whole line with ``O_APPEND``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

from vibe_blender.core.vibe_data import sha256_file

LEDGER_NAME = "batch.jsonl"
#: Events that end an attempt.
END_EVENTS = ("done", "failed", "cancelled")
#: Hex digits of the settings hash kept in keys.
SETTINGS_HASH_DIGITS = 16


def settings_hash(settings: dict[str, Any]) -> str:
    """Short hex hash of a JSON-ready settings dict (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SETTINGS_HASH_DIGITS]


@contextlib.contextmanager
def locked(path: str | os.PathLike, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on ``path`` (created if needed); yields False if ``blocking`` is
    False and another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


class Ledger:
    """Append/read access to one ``batch.jsonl``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, event: str, key: str, **fields: Any) -> dict[str, Any]:
        """Append one event line (with time, host and pid) under the lock; returns the record."""
        record = {"event": event, "key": key, "time": round(time.time(), 3), "host": socket.gethostname(),
                  "pid": os.getpid(), **fields}
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every complete record in file order (a torn last line from a crash is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "key" in record:
                out.append(record)
        return out

    def last(self) -> dict[str, dict[str, Any]]:
        """The last record of every key."""
        return {r["key"]: r for r in self.records()}

    def finished(self, key: str, output: Path, last: dict[str, dict[str, Any]] | None = None) -> bool:
        """True when ``key``'s last event is ``done`` and ``output`` still has the recorded sha256."""
        record = (self.last() if last is None else last).get(key)
        if record is None or record["event"] != "done" or not output.is_file():
            return False
        return record.get("output_sha256") == sha256_file(output)
