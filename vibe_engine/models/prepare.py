"""``vibe_engine prepare``: build (or check) the compiled backbone artefact once, ahead of runs.

Used by "Set Up Engine"-style flows so the first run does not pay the compilation. Prints one
JSON object on stdout: ``{"state": "loaded"|"built"|"eager", "artefact": path, "seconds": s,
"reason": text}``; exit 0 when a valid artefact is in the cache afterwards, 1 when the build
failed (the run then stays eager), 4 for unusable model files (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TextIO

from vibe_engine.config import resolve_models
from vibe_engine.errors import EXIT_INTERNAL, EXIT_OK, BadInputError, EngineError

log = logging.getLogger(__name__)


def prepare_main(args: argparse.Namespace, out: TextIO) -> int:
    """Load the generator from the model arguments and load/build its backbone artefact."""
    from vibe_engine.models import load_generator

    try:
        models = resolve_models(args.vibe_data, args.vibe_checkpoint, args.spin_checkpoint, args.body_model)
        if models is None:
            raise BadInputError("prepare needs the VIBE model files: pass --vibe-data DIR or "
                                "--vibe-checkpoint F")
        model = load_generator(models.vibe_checkpoint, models.spin_checkpoint, body_model=models.body_model,
                               device=args.device, precision=args.precision)
    except EngineError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    def building(why: str) -> None:
        log.info("building the compiled backbone (%s); this takes minutes", why)

    prepared = model.prepare_compiled_backbone(args.batch_size, on_build=building)
    out.write(json.dumps({"state": prepared.state, "artefact": str(prepared.path),
                          "seconds": round(prepared.seconds, 2), "reason": prepared.reason}) + "\n")
    if prepared.runner is None:
        sys.stderr.write(f"the compiled backbone is unavailable ({prepared.reason}); runs stay eager\n")
        return EXIT_INTERNAL
    return EXIT_OK
