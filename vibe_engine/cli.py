"""Command line: ``python -m vibe_engine run|doctor|inspect`` (docs/engine-protocol.md).

``run`` and ``doctor`` speak the JSON-lines protocol on stdout (the original stdout is kept for
the protocol; ``sys.stdout`` is pointed at stderr so no stray print can corrupt it). Logs go to
stderr. ``inspect`` prints a table, or one JSON object with ``--json``.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 cancelled, 4 bad input.
"""
from __future__ import annotations

import os

# Before torch (or anything using OpenMP) starts: with the default active spin-wait, 2 threads
# on a shared 2-core machine are slower than 1 (reference/environment.md §5).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's OpenBLAS only sees tiny matrices here (4x4 Kalman inverses, 3x3 rotations); its threads
# cost more than they give (np.linalg.inv 4x4: 1.4 ms with 2 threads on a busy machine, 30 us
# with 1). torch keeps its own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO  # noqa: E402

from vibe_blender.core.motion_header import MAX_FRAMES  # noqa: E402
from vibe_blender.core.settings import DEVICES, PRECISIONS  # noqa: E402
from vibe_engine import __version__  # noqa: E402
from vibe_engine.config import (CAMERA_MODES, DEFAULT_BATCH_SIZE, DEFAULT_MIN_FRAMES, OOM_ENV,  # noqa: E402
                                OOM_TEMPORAL_ENV, EngineConfig, resolve_models)
from vibe_engine.errors import EXIT_OK, EXIT_USAGE, CancelledError, ModelError  # noqa: E402
from vibe_engine.world.intrinsics import PLAUSIBLE_35MM, user_focal_px  # noqa: E402
from vibe_engine.versions import torch_version  # noqa: E402

if TYPE_CHECKING:
    from vibe_engine.cancel import CancelToken

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A command-line usage error (argparse), exit 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises UsageError instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


#: Argument ranges (inclusive): values outside are refused before any work (exit 2).
FOCAL_RANGE_PX = (10.0, 100_000.0)
BATCH_RANGE = (1, 1024)
MIN_FRAMES_RANGE = (1, MAX_FRAMES)
DETECT_EVERY_RANGE = (1, 1000)
MAX_PEOPLE_RANGE = (1, 1000)


def _number_in(cast: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    """argparse type: ``cast(text)`` (int or float) finite and in [low, high] (nan, inf, 1e300
    and 1e-300 are refused for a range that excludes them)."""
    what = "a whole number" if cast is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be {what} between {low:g} and {high:g}, got {text}")
        return value

    return parse


def _id_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated track ids such as 1,3, got {text}") from None


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vibe-data", metavar="DIR", help="folder with the official VIBE data files")
    p.add_argument("--vibe-checkpoint", metavar="F", help="vibe_model_wo_3dpw.pth.tar (overrides --vibe-data)")
    p.add_argument("--spin-checkpoint", metavar="F", help="spin_model_checkpoint.pth.tar")
    p.add_argument("--body-model", metavar="F", help="SMPL body model (.pkl or .npz)")


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="video → motion file")
    p.add_argument("video", help="input video file")
    p.add_argument("--out", required=True, metavar="FILE", help="motion file to write (*.motion.npz)")
    _add_model_args(p)
    p.add_argument("--boxes", metavar="FILE", help="per-frame person boxes (JSON/CSV) instead of the detector")
    p.add_argument("--device", choices=DEVICES, default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    focal = p.add_mutually_exclusive_group()
    focal.add_argument("--focal", type=_number_in(float, *FOCAL_RANGE_PX), metavar="PX",
                       help="focal length in pixels, %g to %g (default: the video's 35 mm-equivalent metadata, "
                            "else a 33 mm-equivalent phone lens, refined from the footage when it allows)"
                            % FOCAL_RANGE_PX)
    focal.add_argument("--focal-35mm", type=_number_in(float, *PLAUSIBLE_35MM), metavar="MM",
                       help="focal length as a 35 mm-equivalent in mm, %g to %g (the add-on's Focal field); "
                            "like --focal for this video's size" % PLAUSIBLE_35MM)
    p.add_argument("--camera", choices=CAMERA_MODES, default="auto",
                   help="camera motion: auto (decide from the background, default), static (tripod: "
                        "no estimation), moving (always use the estimated per-frame camera rotation)")
    p.add_argument("--min-frames", type=_number_in(int, *MIN_FRAMES_RANGE), default=DEFAULT_MIN_FRAMES, metavar="N",
                   help=f"drop tracks shorter than N frames (default {DEFAULT_MIN_FRAMES})")
    p.add_argument("--batch-size", type=_number_in(int, *BATCH_RANGE), default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"crops per backbone batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--tracks", type=_id_list, metavar="IDS", help="keep only these track ids, e.g. 1,3")
    p.add_argument("--max-people", type=_number_in(int, *MAX_PEOPLE_RANGE), metavar="N", help="keep the N longest tracks")
    p.add_argument("--official-chunks", action="store_true",
                   help="restart the GRU every 450 frames like the official demo")
    p.add_argument("--no-smooth", action="store_true", help="keep the raw per-frame network output")
    p.add_argument("--no-ground", action="store_true",
                   help="do not estimate the ground plane (no world frame, no foot locking)")
    p.add_argument("--no-foot-lock", action="store_true", help="do not pin feet in contact with the ground")
    p.add_argument("--detect-every", type=_number_in(int, *DETECT_EVERY_RANGE), metavar="N",
                   help="run the person detector every N frames while all tracks are followed "
                        "(every frame when a track is lost or new; default 5 with VIBE, 15 with BlazePose)")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="VIBE: run the backbone compiled by AOTInductor (built once per checkpoint, device, "
                        "precision and batch size, minutes; later runs load it in about a second, see "
                        "`prepare`); auto: use it when built, build it on the CPU from 3000 crops; "
                        "on: build it if missing (default auto)")
    p.add_argument("--landmark-model", choices=("lite", "full", "heavy"), default="full",
                   help="BlazePose backend: landmark model size (lite is faster, full the default)")
    p.add_argument("--ignore-stdin", action="store_true",
                   help="never watch stdin for a cancel line (stdin that is not a pipe is never watched)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every sub-command."""
    parser = _Parser(prog="vibe_engine", description="VIBE motion-capture engine")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    doctor = sub.add_parser("doctor", help="report versions, device and model files")
    _add_model_args(doctor)
    prepare = sub.add_parser("prepare", help="build the compiled VIBE generator once (AOTInductor; minutes)")
    _add_model_args(prepare)
    prepare.add_argument("--device", choices=DEVICES, default="cpu")
    prepare.add_argument("--precision", choices=PRECISIONS, default="fp32")
    prepare.add_argument("--batch-size", type=_number_in(int, *BATCH_RANGE), default=DEFAULT_BATCH_SIZE, metavar="N",
                         help=f"crops per backbone batch, as in `run` (default {DEFAULT_BATCH_SIZE})")
    prepare.add_argument("--progress", action="store_true",
                         help="one plain line per step on stdout before the JSON result (Set Up Engine)")
    inspect = sub.add_parser("inspect", help="summarise a motion file")
    inspect.add_argument("file")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    batch = sub.add_parser("batch", add_help=False, help="many videos → motion files, resumable, on Ray "
                           "(docs/batch.md; `batch --help`)")
    batch.add_argument("batch_args", nargs=argparse.REMAINDER)
    return parser


def _oom_hook(name: str) -> int | None:
    """An out-of-memory test hook's limit from the environment variable ``name`` (None: unset)."""
    value = os.environ.get(name)
    return int(value) if value else None


def _user_focal(args: argparse.Namespace) -> float | None:
    """The user's focal in pixels: ``--focal``, or ``--focal-35mm`` for the video's displayed size."""
    if getattr(args, "focal_35mm", None) is None:
        return args.focal
    return user_focal_px(args.video, args.focal_35mm)


def make_config(args: argparse.Namespace) -> EngineConfig:
    """EngineConfig from parsed `run` arguments (resolves model files; ModelError if missing).

    No VIBE option → ``models`` None → the default BlazePose backend with the stand-in body.
    """
    models = resolve_models(args.vibe_data, args.vibe_checkpoint, args.spin_checkpoint, args.body_model)
    if models is None and args.body_model:
        raise ModelError("--body-model needs the VIBE backend: also pass --vibe-data DIR or "
                         "--vibe-checkpoint F (the default BlazePose backend uses the stand-in body)")
    return EngineConfig(
        video=Path(args.video).expanduser().resolve(), out=Path(args.out).expanduser().resolve(),
        models=models, boxes=Path(args.boxes).expanduser().resolve() if args.boxes else None,
        device=args.device, precision=args.precision, focal_px=_user_focal(args), min_frames=args.min_frames,
        batch_size=args.batch_size, tracks=args.tracks, max_people=args.max_people,
        official_chunks=args.official_chunks, smooth=not args.no_smooth, ground=not args.no_ground,
        foot_lock=not args.no_foot_lock, oom_above=_oom_hook(OOM_ENV), oom_temporal_above=_oom_hook(OOM_TEMPORAL_ENV), detect_every=args.detect_every,
        compile=args.compile, landmark_model=args.landmark_model, camera=args.camera)


def _cuda_hello(device: str) -> tuple[bool, str | None]:
    """(cuda available, torch version) for the ``hello`` line.

    A CPU run does not probe CUDA: importing torch costs ~0.9 s on 2 cores, and the BlazePose
    backend never needs it (docs/engine-protocol.md).
    """
    if device == "cpu":
        return False, torch_version()
    import torch

    return torch.cuda.is_available(), torch.__version__


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from vibe_engine.cancel import CancelToken, stdin_is_a_pipe, watch_stdin
    from vibe_engine.pipeline import SCHEMA, run_pipeline
    from vibe_engine.protocol import ProtocolWriter, guarded

    writer = ProtocolWriter(out)
    token = CancelToken.from_env(lambda stage: writer.warning("TEST_PAUSE", f"paused in stage {stage}"))
    writer.hello(args.device, *_cuda_hello(args.device))
    if not args.ignore_stdin and stdin_is_a_pipe():
        watch_stdin(token)
    _cancel_on_sigterm(token)

    def body() -> int:
        result = run_pipeline(make_config(args), writer, token)
        timings = {k: round(v, 4) for k, v in result.timings.items()}
        writer.result(str(result.path), SCHEMA, result.people, result.fps, result.frames, timings_s=timings)
        writer.done("ok")
        return EXIT_OK

    return guarded(writer, body)


def _cancel_on_sigterm(token: "CancelToken") -> None:
    """SIGTERM (the add-on's cancel ladder, ``kill``, a service manager) ends the run like a
    cancel: CancelledError is raised in the main thread, so temporary files are removed and the
    run exits 3 with ``done cancelled``. Only the first SIGTERM raises; later ones are ignored
    while the run unwinds."""

    def handler(signum: int, frame: object) -> None:
        if token.cancelled:
            return
        token.cancel("terminated (SIGTERM)")
        raise CancelledError("terminated (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)


def _usage_failure(argv: Sequence[str], message: str, out: TextIO) -> int:
    """Exit 2 with one line on stderr; `run` also gets hello/error/done on stdout."""
    sys.stderr.write(message + "\n")
    if next((a for a in argv if not a.startswith("-")), None) == "run":
        from vibe_engine.protocol import ProtocolWriter

        writer = ProtocolWriter(out)
        writer.hello("cpu", False, torch_version())
        writer.error("USAGE", message, None)
        writer.done("error")
    return EXIT_USAGE


def _protocol_stream() -> tuple[TextIO, Callable[[], None]]:
    """A private stream on the real stdout for protocol lines; fd 1 and ``sys.stdout`` then point
    at stderr, so stray prints from Python or native libraries cannot corrupt the protocol.

    Returns the stream and a function that undoes the redirection.
    """
    sys.stdout.flush()
    saved_fd, saved_stdout = os.dup(1), sys.stdout
    stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def restore() -> None:
        stream.flush()
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        sys.stdout = saved_stdout
        stream.close()

    return stream, restore


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["batch"]:  # its own parser (argparse's REMAINDER would not take a leading option)
        from vibe_engine.batch import batch_main

        return batch_main(argv[1:], build_parser, make_config)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _usage_failure(argv, str(exc), sys.stdout)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "batch":
        from vibe_engine.batch import batch_main

        return batch_main(args.batch_args, build_parser, make_config)
    if args.command == "inspect":
        from vibe_engine.inspect_cmd import inspect_main

        return inspect_main(args.file, args.json, sys.stdout)
    out, restore = _protocol_stream()
    try:
        if args.command == "prepare":
            from vibe_engine.models.prepare import prepare_main

            return prepare_main(args, out)
        if args.command == "doctor":
            from vibe_engine.doctor import doctor_main

            return doctor_main(args, out)
        return _run(args, out)
    finally:
        restore()
