"""Where tasks run: one after another in this process, or as Ray tasks (local or remote cluster).

Both executors take TaskSpecs and yield ``(spec, result dict)`` as tasks finish; ``cancel()``
(after Ctrl-C) stops scheduling, cancels what is running and yields what those tasks report.
Ray does the distribution and the retries: a task whose worker process dies, or whose engine is
killed by a signal (``EngineCrashed``), is retried up to ``max_retries`` times.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from vibe_engine.batch.task import EngineCrashed, TaskSpec, run_task

log = logging.getLogger(__name__)

#: Seconds between polls of the running Ray tasks (the progress bar's refresh).
POLL_S = 0.5
#: Seconds cancelled Ray tasks get to report before they are force-killed.
RAY_CANCEL_WAIT_S = 30.0
#: Ray's switch for a single-machine cluster on loopback only (every server binds 127.0.0.1);
#: read when ray is imported, inherited by the raylet and the workers.
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Seconds to wait for a TCP connection when checking a cluster address.
CONNECT_CHECK_S = 2.0
#: Written by `ray start` on this machine: the address `ray.init(address="auto")` joins.
RAY_CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")

#: (spec, result dict) of a finished task; RayExecutor.run also yields None between results.
Outcome = tuple[TaskSpec, dict[str, Any]]


def _crash_result(spec: TaskSpec, code: str, message: str) -> dict[str, Any]:
    return {"key": spec.key, "status": "failed", "seconds": 0.0, "frames": None, "people": [],
            "error": {"code": code, "message": message, "exit_code": None}, "exports": [],
            "output_sha256": None, "attempt_pid": 0}


class SequentialExecutor:
    """Runs each task in this process, in order (no Ray needed); retries engine crashes."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries
        self.running: list[TaskSpec] = []

    def run(self, specs: Iterable[TaskSpec]) -> Iterator[Outcome]:
        for spec in specs:
            self.running = [spec]
            for attempt in range(self.max_retries + 1):
                try:
                    result = run_task(spec)
                    break
                except EngineCrashed as exc:
                    log.warning("%s: %s (attempt %d)", spec.name, exc, attempt + 1)
                    result = _crash_result(spec, "ENGINE_CRASHED", str(exc))
            self.running = []
            yield spec, result

    def cancel(self) -> Iterator[Outcome]:
        """The running task was interrupted by the same KeyboardInterrupt: report it cancelled."""
        for spec in self.running:
            yield spec, _crash_result(spec, "CANCELLED", "cancelled by the user") | {"status": "cancelled"}
        self.running = []


def _listening(address: str) -> bool:
    """Whether something accepts TCP connections at ``HOST:PORT`` (within CONNECT_CHECK_S)."""
    try:
        host, port = address.split("://")[-1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=CONNECT_CHECK_S):
            return True
    except (OSError, ValueError):
        return False


def _local_cluster_running() -> bool:
    """Whether the cluster named in RAY_CURRENT_CLUSTER (``ray start`` here) accepts connections."""
    try:
        return _listening(RAY_CURRENT_CLUSTER.read_text().strip())
    except OSError:
        return False


def init_ray(address: str, workers: int, gpus: float) -> Any:
    """Import and start/connect Ray: ``local`` starts a loopback-only cluster of ``workers`` CPUs
    (no dashboard); ``auto`` connects to a running cluster or starts a local one; anything else
    is a cluster address (``HOST:PORT`` or ``ray://HOST:PORT``)."""
    if address == "auto" and not os.environ.get("RAY_ADDRESS") and not _local_cluster_running():
        address = "local"  # no running cluster to join: start one, loopback-only
    host = address.split("://")[-1].rsplit(":", 1)[0]
    if address == "local" or host in ("127.0.0.1", "localhost"):
        os.environ.setdefault(RAY_LOOPBACK_ENV, "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address == "local":
        kwargs.update(address="local", num_cpus=workers, num_gpus=0 if not gpus else None,
                      _node_ip_address="127.0.0.1")
    else:  # join a running cluster: its own settings apply
        if address != "auto" and not _listening(address):  # ray.init would retry for minutes
            raise ConnectionError(f"nothing accepts connections at {address}")
        kwargs = {"address": address, "log_to_driver": False}
    ray.init(**kwargs)
    return ray


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Within the block, Ctrl-C (SIGINT) only sets a flag; yields the function that reads it.

    The Ray driver raises KeyboardInterrupt itself at a safe point, so a Ctrl-C can never land
    between a task's submission and its entry in ``inflight`` (a task that ``cancel()`` would miss,
    leaving its ``start`` without an end event). Outside the main thread, where signal handlers
    cannot be set, the default behaviour stays and the flag is never set.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    came = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: came.set())
    try:
        yield came.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


class RayExecutor:
    """One Ray task per clip, at most ``workers`` in flight (1 CPU and ``gpus`` GPUs each)."""

    def __init__(self, ray: Any, workers: int, gpus: float, max_retries: int) -> None:
        self.ray, self.workers = ray, workers
        self.remote = ray.remote(run_task).options(num_cpus=1, num_gpus=gpus, max_retries=max_retries,
                                                   retry_exceptions=[EngineCrashed])
        self.inflight: dict[Any, TaskSpec] = {}

    def _outcome(self, ref: Any) -> Outcome:
        spec = self.inflight.pop(ref)
        exc_types = self.ray.exceptions
        try:
            return spec, self.ray.get(ref)
        except exc_types.TaskCancelledError:
            return spec, _crash_result(spec, "CANCELLED", "cancelled by the user") | {"status": "cancelled"}
        except exc_types.WorkerCrashedError as exc:
            return spec, _crash_result(spec, "WORKER_DIED", f"worker died on every attempt: {str(exc)[:200]}")
        except exc_types.RayTaskError as exc:
            cause = exc.cause if getattr(exc, "cause", None) else exc
            if isinstance(cause, KeyboardInterrupt):
                return spec, _crash_result(spec, "CANCELLED", "cancelled by the user") | {"status": "cancelled"}
            return spec, _crash_result(spec, "TASK_FAILED", f"{type(cause).__name__}: {str(cause)[:300]}")
        except exc_types.RayError as exc:
            return spec, _crash_result(spec, "RAY_ERROR", f"{type(exc).__name__}: {str(exc)[:300]}")

    def run(self, specs: Iterable[TaskSpec]) -> Iterator[Outcome]:
        """Yields each finished task's outcome (None between them); raises KeyboardInterrupt at
        the top of the loop after a Ctrl-C, with every submitted task in ``inflight``."""
        with deferred_interrupt() as interrupted:
            yield from self._run(iter(specs), interrupted)

    def _run(self, pending: Iterator[TaskSpec], interrupted: Callable[[], bool]) -> Iterator[Outcome]:
        exhausted = False
        while True:
            if interrupted():
                raise KeyboardInterrupt
            while not exhausted and len(self.inflight) < self.workers:
                spec = next(pending, None)
                if spec is None:
                    exhausted = True
                    break
                self.inflight[self.remote.remote(spec)] = spec
            if not self.inflight:
                return
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=POLL_S)
            if not ready:
                yield None  # a heartbeat: the progress bar shows the running count
            for ref in ready:
                yield self._outcome(ref)

    def cancel(self) -> Iterator[Outcome]:
        """Cancel every running task (KeyboardInterrupt inside it: the engine is stopped), wait for
        their reports, force-kill what does not answer in RAY_CANCEL_WAIT_S."""
        refs = list(self.inflight)
        for ref in refs:
            self.ray.cancel(ref, force=False)
        ready, late = self.ray.wait(refs, num_returns=len(refs), timeout=RAY_CANCEL_WAIT_S)
        for ref in late:
            self.ray.cancel(ref, force=True)
        for ref in refs:
            yield self._outcome(ref)

    def shutdown(self) -> None:
        self.ray.shutdown()
