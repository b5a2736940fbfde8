"""Which pose backend a run uses (``vibe_engine.backend.Backend``): the one place that names them.

VIBE when model files were given (``cfg.models``: ``--vibe-data`` / ``--vibe-checkpoint``), else
the default BlazePose backend with the shipped models and the CC0 stand-in body.
"""
from __future__ import annotations

from typing import Any

from vibe_engine.backend import Backend, RunContext


def load_backend(ctx: RunContext, info: Any) -> Backend:
    """Load the configured backend for a video of ``info``'s size (``width``, ``height`` px);
    ModelError / BadInputError (exit 4) for unusable model files or options."""
    if ctx.cfg.models is not None:
        from vibe_engine.models.vibe_backend import VibeBackend

        return VibeBackend.load(ctx, info)
    from vibe_engine.blazepose.engine_backend import BlazePoseEngineBackend

    return BlazePoseEngineBackend.load(ctx, info)
