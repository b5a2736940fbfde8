"""Engine side of the JSON-lines protocol: a thread-safe writer of messages to stdout.

Message definitions live in ``vibe_blender.core.protocol`` (shared with the add-on). Every line
is flushed at once. Progress lines are throttled to at most one per ``MIN_PROGRESS_INTERVAL_S``
(≤ 10 Hz); ``hello`` is sent on construction and ``done`` exactly once, last.
"""
from __future__ import annotations

import logging
import platform
import sys
import threading
import time
import traceback
from typing import Any, Callable, TextIO

from vibe_blender.core import protocol as P
from vibe_engine import __version__
from vibe_engine.errors import EXIT_CANCELLED, EXIT_INTERNAL, CancelledError, EngineError

log = logging.getLogger(__name__)

#: Minimum time between two progress lines (seconds): ≤ 10 Hz.
MIN_PROGRESS_INTERVAL_S = 0.1


class ProtocolWriter:
    """Writes protocol messages as JSON lines; ``t`` counts seconds since the writer was made."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._clock = clock
        self._t0 = clock()
        self._lock = threading.Lock()
        self._last_progress = -1e9
        self._stage_start: dict[str, float] = {}
        self._stage_index = -1
        self.finished = False

    def now(self) -> float:
        """Seconds since the writer was created."""
        return self._clock() - self._t0

    def send(self, msg_type: str, **fields: Any) -> None:
        """Validate and write one message. Nothing is written after ``done``."""
        with self._lock:
            if self.finished:
                return
            line = P.encode(msg_type, self.now(), **fields)
            self._stream.write(line + "\n")
            self._stream.flush()
            if msg_type == P.DONE:
                self.finished = True

    def hello(self, device: str, cuda: bool, torch_version: str | None) -> None:
        """The first message: versions and the device the run will use."""
        self.send(P.HELLO, engine_version=__version__, python=platform.python_version(),
                  torch=torch_version, device=device, cuda=cuda)

    def stage(self, name: str) -> None:
        """Announce the start of a stage (one of ``vibe_blender.core.protocol.STAGES``)."""
        index = P.STAGES.index(name)
        self._stage_index = index
        self._stage_start[name] = self._clock()
        self.send(P.STAGE, name=name, index=index, count=len(P.STAGES))

    def progress(self, stage: str, done: int, total: int | None) -> bool:
        """Progress of a stage, with its rate (items/s) and ETA (s); throttled to ≤ 10 Hz.

        Returns True when a line was written.
        """
        now = self._clock()
        if now - self._last_progress < MIN_PROGRESS_INTERVAL_S:
            return False
        self._last_progress = now
        elapsed = now - self._stage_start.get(stage, now)
        fps = done / elapsed if elapsed > 0 and done > 0 else None
        eta = (total - done) / fps if fps and total is not None else None
        self.send(P.PROGRESS, stage=stage, done=int(done), total=None if total is None else int(total),
                  fps=None if fps is None else round(fps, 2), eta_s=None if eta is None else round(eta, 2))
        return True

    def warning(self, code: str, message: str) -> None:
        """A non-fatal problem the user should see."""
        self.send(P.WARNING, code=code, message=message)

    def error(self, code: str, message: str, detail: str | None = None) -> None:
        """The fatal error of this run (one line for the user; ``detail`` for the logs)."""
        self.send(P.ERROR, code=code, message=message, detail=detail)

    def result(self, path: str, schema: str, people: list[dict], fps: float, frames: int,
               **extra: Any) -> None:
        """The motion file is complete at ``path``; ``extra`` adds optional fields (e.g. timings_s)."""
        self.send(P.RESULT, path=path, schema=schema, people=people, fps=float(fps), frames=int(frames),
                  **extra)

    def done(self, status: str) -> None:
        """The last message: ``ok``, ``cancelled`` or ``error``."""
        self.send(P.DONE, status=status)


def guarded(writer: ProtocolWriter, body: Callable[[], int]) -> int:
    """Run ``body``; map exceptions to protocol error/done lines and exit codes."""
    try:
        return body()
    except (CancelledError, KeyboardInterrupt) as exc:
        log.info("cancelled: %s", exc)
        writer.done("cancelled")
        return EXIT_CANCELLED
    except EngineError as exc:
        log.error("%s", exc)
        writer.error(exc.code, str(exc), None)
        writer.done("error")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report, never a bare crash
        detail = traceback.format_exc()
        log.error("internal error\n%s", detail)
        writer.error("INTERNAL", f"internal error: {type(exc).__name__}: {str(exc)[:200]} "
                     "(please report this with the log)", detail)
        writer.done("error")
        return EXIT_INTERNAL
