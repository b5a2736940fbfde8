"""The engine's stdin watcher: pipes only, long lines in linear time (vibe_engine.cancel)."""
from __future__ import annotations

import os

from vibe_engine import cancel


def test_only_a_pipe_is_watched(tmp_path):
    r, w = os.pipe()
    assert cancel.stdin_is_a_pipe(r)
    os.close(r), os.close(w)
    with open(os.devnull, "rb") as null, open(tmp_path / "f", "wb+") as regular:
        assert not cancel.stdin_is_a_pipe(null.fileno())
        assert not cancel.stdin_is_a_pipe(regular.fileno())


def _lines_of(payload: bytes) -> list[bytes]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer: a child, so a large payload cannot block this process
        os.close(r)
        os.write(w, payload) if len(payload) < 65536 else [os.write(w, payload[i:i + 65536])
                                                          for i in range(0, len(payload), 65536)]
        os._exit(0)
    os.close(w)
    out = list(cancel._lines(r))
    os.close(r)
    os.waitpid(pid, 0)
    return out


def test_lines_split_across_chunks_and_a_huge_line_is_dropped():
    huge = b"x" * (cancel.MAX_LINE_BYTES * 8)
    got = _lines_of(b"a\nb" + b"c" * 70000 + b"\n" + huge + b"\n{\"type\": \"cancel\"}\ntail")
    assert got == [b"a", b'{"type": "cancel"}', b"tail"]  # b + 70000 c's is over the limit too
    assert _lines_of(b"one\ntwo\n") == [b"one", b"two"]
