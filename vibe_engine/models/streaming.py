"""VIBE's torch side of pass 2: the batched backbone and the streaming GRU + regressor.

Chunking: each track buffers backbone features; each time ``cfg.chunk_frames`` are buffered, the
GRU runs on them with its hidden state carried over from the previous chunk, then the regressor.
Carrying the hidden state gives exactly the result of one sequence over the whole track. The
official demo instead feeds the GRU 450-frame batches with the hidden state restarted at zero for
each (vibe-facts.md §3 step 6); ``cfg.official_chunks`` reproduces that.

Out of memory: both the backbone batch and the GRU call size go through :class:`Halving`, which
halves the failed call and retries, down to one item, and keeps the smaller size for the run.
The test hooks ``cfg.oom_above`` / ``cfg.oom_temporal_above`` (config.OOM_ENV,
config.OOM_TEMPORAL_ENV) inject the error for larger calls.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from vibe_engine.backend import RunContext
from vibe_engine.config import OFFICIAL_CHUNK_FRAMES
from vibe_engine.errors import OutOfMemoryError

log = logging.getLogger(__name__)


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's out-of-memory error (CUDA's, or the CPU allocator's message)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def oom_fix(device: str) -> str:
    """The fix an OUT_OF_MEMORY message names for ``device``."""
    if device == "cpu":
        return "close other programs to free memory"
    return "free GPU memory or use --device cpu"


def inject_oom(limit: int | None, size: int, what: str) -> None:
    """The out-of-memory test hook: raise for calls of more than ``limit`` items (``what``: the
    call, with ``{}`` where its size goes)."""
    if limit is not None and size > limit:
        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected: {what.format(size)} > {limit})")


class Halving:
    """Work split into calls of at most ``size`` items (None: one call); a call that runs out of
    memory is retried with half its size, down to 1, and the smaller size stays for the run.

    ``floor``: the end of the OutOfMemoryError message when one item already fails.
    ``on_shrink(failed, size)``: called after each halving (e.g. a warning per retry).
    """

    def __init__(self, ctx: RunContext, size: int | None, floor: str,
                 on_shrink: Callable[[int, int], None] | None = None) -> None:
        self.ctx, self.size, self.floor, self.on_shrink = ctx, size, floor, on_shrink

    def run(self, n: int, step: Callable[[int, int], None]) -> int | None:
        """``step(start, count)`` over ``n`` items; returns the first failed call size (None)."""
        failed, i = None, 0
        while i < n:
            m = min(n - i, self.size or n - i)
            try:
                step(i, m)
            except RuntimeError as exc:
                if not is_oom(exc):
                    raise
                failed = failed or m
                self._shrink(m)
                continue
            i += m
        return failed

    def _shrink(self, failed: int) -> None:
        device = self.ctx.cfg.device
        if failed <= 1:
            raise OutOfMemoryError(f"the {device} device ran out of memory {self.floor}; "
                                   f"{oom_fix(device)}") from None
        self.size = max(1, failed // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if self.on_shrink is not None:
            self.on_shrink(failed, self.size)


class Backbone:
    """Backbone on crop batches of at most ``cfg.batch_size`` (halved on out-of-memory)."""

    def __init__(self, ctx: RunContext, model: Any) -> None:
        self.ctx, self.model = ctx, model
        self.halving = Halving(ctx, ctx.cfg.batch_size, "even with one crop per batch", self._warn)

    @property
    def batch(self) -> int:
        """Crops per backbone call now."""
        return self.halving.size

    def __call__(self, crops: torch.Tensor) -> np.ndarray:
        """crops (B,3,224,224) → features (B,2048) float32 numpy."""
        out: list[np.ndarray] = []

        def step(i: int, m: int) -> None:
            inject_oom(self.ctx.cfg.oom_above, m, "batch {}")
            out.append(self.model.extract_features(crops[i:i + m]).float().cpu().numpy())

        self.halving.run(crops.shape[0], step)
        return np.concatenate(out)

    def _warn(self, failed: int, size: int) -> None:
        self.ctx.writer.warning("OOM_RETRY", f"out of memory with {failed} crops per batch; "
                                f"retrying with {size}")


@dataclass
class Stream:
    """Streaming generator state of one track: buffered features (2048,), GRU hidden, outputs
    (per call: theta (m,85), kp_3d (m,49,3), kp_2d (m,49,2))."""

    track: Any
    buffer: list[np.ndarray] = field(default_factory=list)
    hidden: Any = None
    done: int = 0
    outputs: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"theta": [], "kp_3d": [], "kp_2d": []})


class Temporal:
    """GRU + regressor over each stream's buffered features, chunk by chunk, hidden state carried;
    one call per chunk, or calls of at most ``size`` frames after an out-of-memory error."""

    def __init__(self, ctx: RunContext, model: Any) -> None:
        self.ctx, self.model = ctx, model
        self.halving = Halving(ctx, None, "in the temporal step (GRU + regressor) even one frame at a time")

    @property
    def size(self) -> int | None:
        """The most frames per GRU/regressor call (None: a whole chunk per call)."""
        return self.halving.size

    def run_chunks(self, stream: Stream, final: bool) -> None:
        """Every full chunk of the buffer (and, with ``final``, the partial last one)."""
        cfg = self.ctx.cfg
        chunk = cfg.chunk_frames
        while len(stream.buffer) >= chunk or (final and stream.buffer):
            n = min(chunk, len(stream.buffer))
            if cfg.official_chunks:
                n = min(n, OFFICIAL_CHUNK_FRAMES - stream.done % OFFICIAL_CHUNK_FRAMES)
                if stream.done % OFFICIAL_CHUNK_FRAMES == 0:
                    stream.hidden = None
            self._chunk(stream, n)

    def _chunk(self, stream: Stream, n: int) -> None:
        """The first ``n`` buffered features through the GRU + regressor (the same result as one
        call); one ``OOM_RETRY`` warning per chunk that needed smaller calls."""
        failed = self.halving.run(n, lambda _i, m: self._step(stream, m))
        if failed is not None:
            self.ctx.writer.warning("OOM_RETRY", f"out of memory in the temporal step with {failed} "
                                    f"frames per call; running {self.size} frames at a time from now on")

    def _step(self, stream: Stream, m: int) -> None:
        """One call on the first ``m`` buffered features (1,m,2048): moves them to the outputs and
        carries the hidden state; nothing changes when it raises."""
        with self.ctx.timings("generator_temporal"), torch.inference_mode():
            inject_oom(self.ctx.cfg.oom_temporal_above, m, "temporal step of {} frames")
            x = torch.from_numpy(np.stack(stream.buffer[:m]))[None]
            y, hidden = self.model.encode(x, stream.hidden)
            out = self.model.regress(y, with_verts=False)
            arrays = {key: out[key][0].float().cpu().numpy() for key in stream.outputs}
        for key, value in arrays.items():
            stream.outputs[key].append(value)
        stream.hidden = hidden
        del stream.buffer[:m]
        stream.done += m


def compile_backbone(ctx: RunContext, model: Any, batch: int, build: bool = True) -> None:
    """The generator's AOTInductor artefacts (models/compiled.py; timed as ``compile``): the backbone
    for ``batch`` crops, then the head (regressor + SMPL, models/head.py) for ``batch`` frames; each
    loaded from the cache, else built once when ``build`` (``COMPILING`` warning first: minutes).
    A part that cannot be had runs eager: ``COMPILE_FAILED`` for a failed build or a stale/corrupt
    artefact (the reason in the message; the later parts are then not tried), ``COMPILE_REBUILT``
    when a stale one was rebuilt; silent when merely not built yet."""
    parts = (("backbone", model.prepare_compiled_backbone), ("head", model.prepare_compiled_head))
    for what, prepare in parts:
        def building(why: str, what: str = what) -> None:
            ctx.writer.warning("COMPILING", f"building the compiled {what} once for this checkpoint, "
                               f"device and precision ({why}); this takes minutes, later runs load it in "
                               "about a second")

        with ctx.timings("compile"):
            prepared = prepare(batch, build=build, on_build=building)
        if prepared.reason and prepared.reason != "missing":
            log.warning("compiled %s: %s", what, prepared.reason)
            ctx.writer.warning("COMPILE_FAILED" if prepared.runner is None else "COMPILE_REBUILT",
                               f"compiled {what} {prepared.path.name}: {prepared.reason[:200]}; "
                               + ("running without it (--compile off hides this)" if prepared.runner is None
                                  else "rebuilt"))
            if prepared.runner is None:
                return
