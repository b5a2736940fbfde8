"""``vibe_engine prepare``: build (or check) the compiled generator's artefacts once, ahead of runs.

The artefacts are those a run loads (models/streaming.compile_backbone): the backbone for
``--batch-size`` crops and the head (regressor + SMPL) for as many frames. Used by the add-on's
"Set Up Engine" (its last, optional step) so the first run does not pay the compilation.

Stdout: with ``--progress``, one plain line per step first ("Loading the VIBE model", "Building the
compiled backbone (1/2) ...": what the set-up panel shows); then always one JSON object
``{"state": "loaded"|"built"|"eager", "seconds": s, "artefacts": {what: {"state", "artefact",
"seconds", "reason"}}}`` ("built": at least one was built; "eager": at least one is unavailable).
Exit 0 when every artefact is valid in the cache afterwards, 1 when a build failed (runs then stay
eager for that part), 4 for unusable model files (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import TextIO

from vibe_engine.config import resolve_models
from vibe_engine.errors import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, BadInputError, EngineError

log = logging.getLogger(__name__)


#: Printed on stderr when ``prepare`` is cancelled.
CANCELLED_MESSAGE = "prepare cancelled; no compiled artefact was left half-written"


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM during ``prepare`` (the set-up's Cancel): the half-written files removed and exit 3
    at once. Unwinding through the compiler instead could wait for its parallel C++ compile jobs
    (a CI run once took more than the set-up's 3 s before SIGKILL)."""
    from vibe_blender.core.atomic import discard_pending

    discard_pending()
    sys.stderr.write(CANCELLED_MESSAGE + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(EXIT_CANCELLED)


def prepare_main(args: argparse.Namespace, out: TextIO) -> int:
    """Load the generator from the model arguments and load/build its artefacts; SIGTERM (Cancel)
    stops it with exit 3 and no half-written artefact (models/compiled.py writes atomically)."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _prepare(args, out)
    except KeyboardInterrupt:
        sys.stderr.write(CANCELLED_MESSAGE + "\n")
        return EXIT_CANCELLED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _prepare(args: argparse.Namespace, out: TextIO) -> int:
    def say(text: str) -> None:
        (out if args.progress else sys.stderr).write(text + "\n")
        (out if args.progress else sys.stderr).flush()

    from vibe_engine.models import load_generator

    try:
        models = resolve_models(args.vibe_data, args.vibe_checkpoint, args.spin_checkpoint, args.body_model)
        if models is None:
            raise BadInputError("prepare needs the VIBE model files: pass --vibe-data DIR or "
                                "--vibe-checkpoint F")
        say("Loading the VIBE model")
        model = load_generator(models.vibe_checkpoint, models.spin_checkpoint, body_model=models.body_model,
                               device=args.device, precision=args.precision)
    except EngineError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    parts = (("backbone", model.prepare_compiled_backbone), ("head", model.prepare_compiled_head))
    report = {}
    for i, (what, prepare) in enumerate(parts, 1):
        say(f"Checking the compiled {what} ({i}/{len(parts)})")
        prepared = prepare(args.batch_size, on_build=lambda why, what=what, i=i: say(
            f"Building the compiled {what} ({i}/{len(parts)}; {why}): this takes minutes"))
        say(f"Compiled {what}: {prepared.state} in {prepared.seconds:.0f} s")
        report[what] = {"state": prepared.state, "artefact": str(prepared.path),
                        "seconds": round(prepared.seconds, 2), "reason": prepared.reason}
    states = {r["state"] for r in report.values()}
    state = "eager" if "eager" in states else "built" if "built" in states else "loaded"
    out.write(json.dumps({"state": state, "seconds": round(sum(r["seconds"] for r in report.values()), 2),
                          "artefacts": report}) + "\n")
    for what, r in report.items():
        if r["state"] == "eager":
            sys.stderr.write(f"the compiled {what} is unavailable ({r['reason']}); runs stay eager\n")
    return EXIT_INTERNAL if state == "eager" else EXIT_OK
