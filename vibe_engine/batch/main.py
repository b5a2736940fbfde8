"""The batch command: parse, plan (keys, output names), run on an executor, report.

See the package docstring (vibe_engine/batch/__init__.py) and docs/batch.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shlex
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from vibe_blender.core.atomic import atomic_write
from vibe_blender.core.vibe_data import sha256_file
from vibe_engine import __version__
from vibe_engine.batch.inputs import Clip, InputError, expand_inputs, option_argv
from vibe_engine.batch.ledger import LEDGER_NAME, Ledger, settings_hash
from vibe_engine.batch.task import EXPORT_FORMATS, TaskSpec, end_fields, export_available
from vibe_engine.errors import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE

log = logging.getLogger(__name__)

REPORT_NAME = "batch_report.json"
REPORT_VERSION = 1
EXIT_SOME_FAILED = EXIT_INTERNAL
ENGINE_MODES = ("subprocess", "inprocess")
#: Ray task retries after a worker death or an engine crash.
DEFAULT_MAX_RETRIES = 2
#: run options the batch decides for every clip (never forwarded from the command line).
BATCH_OWNED = {"video", "out", "ignore_stdin"}


class UsageError(Exception):
    """Bad batch command line or inputs (exit 2, nothing run)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive(kind: type):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _formats(text: str) -> tuple[str, ...]:
    names = [n.strip().lower().replace("gltf", "glb") for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ("motion", *EXPORT_FORMATS)]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown format {bad[0] if bad else text!r}; use motion,fbx,bvh,glb")
    return tuple(n for n in EXPORT_FORMATS if n in names)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vibe_engine batch", description="many videos → motion files (and exports), on Ray",
                epilog="options after -- are `run` options for every clip, e.g. -- --min-frames 10 --no-smooth")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders, globs, .csv/.jsonl manifests")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                   help="run on Ray: auto (a running cluster, else a local one), local (a new "
                        "loopback-only cluster), or a cluster address; without: sequential")
    p.add_argument("--workers", type=_positive(int), metavar="N",
                   help="tasks at once (default: the cluster's CPUs; a local cluster gets N CPUs)")
    p.add_argument("--gpus-per-task", type=_non_negative_float, default=0.0, metavar="F",
                   help="GPUs Ray reserves per task, e.g. 0.5 (pass -- --device cuda too)")
    p.add_argument("--formats", type=_formats, default=(), metavar="LIST",
                   help="motion (always written) and any of fbx,bvh,glb: Blender export per clip")
    p.add_argument("--resume", action="store_true", help="skip clips already done with the same settings")
    p.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                   help=f"retries after a worker death or engine crash (default {DEFAULT_MAX_RETRIES})")
    p.add_argument("--engine-mode", choices=ENGINE_MODES, default="subprocess",
                   help="engine as the CLI subprocess (default, isolated) or inside the task's process")
    p.add_argument("--pin", choices=("auto", "on", "off"), default="auto",
                   help="pin each task to one free CPU (auto: with --ray local)")
    p.add_argument("--upload", metavar="CMD", default=None,
                   help="per-clip hook run on the worker after a clip is done (no shell; {motion}, "
                        "{name}, {exports} are replaced), e.g. \"aws s3 cp {motion} s3://bucket/\"")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def _run_parser(cli_parser: Callable[[], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    sub = next(a for a in cli_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]  # the real `run` parser: same options, types and checks


def _flags(run_parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in run_parser._actions if isinstance(a, argparse._StoreTrueAction)}


@dataclass
class Plan:
    """The clips to run, with their keys and outputs."""

    specs: list[TaskSpec]
    clips: dict[str, Clip]
    settings: dict[str, dict[str, Any]]


def _clip_settings(clip: Clip, common: list[str], run_parser, flags, formats) -> tuple[list[str], dict]:
    """(run argv options, settings dict for the key) for one clip; UsageError on bad options."""
    argv = common + option_argv(clip.options, flags)
    try:
        ns = run_parser.parse_args([str(clip.video), "--out", "x.motion.npz", *argv])
    except Exception as exc:  # the run parser raises the CLI's UsageError
        raise UsageError(f"{clip.video.name}: bad run option: {exc}") from None
    settings = {k: v for k, v in vars(ns).items() if k not in BATCH_OWNED}
    for key in ("vibe_data", "vibe_checkpoint", "spin_checkpoint", "body_model", "boxes"):
        if settings.get(key):
            settings[key] = str(Path(settings[key]).expanduser().resolve())
    settings.update(engine_version=__version__, formats=list(formats))
    return argv, settings


def _names(clips: list[Clip], keys: list[str]) -> list[str]:
    """Output stems: the video's stem, plus a short key when two clips would share it."""
    stems = [c.video.name.rsplit(".", 1)[0] for c in clips]
    counts = Counter(stems)
    return [s if counts[s] == 1 else f"{s}-{k.split(':')[0][:8]}-{k.split(':')[1][:6]}"
            for s, k in zip(stems, keys)]


def _upload_argv(text: str | None) -> tuple[str, ...]:
    """The upload hook's argv (shell-style quoting, never run by a shell); UsageError if malformed."""
    if not text:
        return ()
    try:
        argv = tuple(shlex.split(text))
        for arg in argv:
            arg.format(motion="", name="", exports="")
    except (ValueError, KeyError, IndexError) as exc:
        raise UsageError(f"--upload {text!r}: {exc}; use {{motion}}, {{name}}, {{exports}} placeholders") from None
    if not argv:
        raise UsageError("--upload is empty; give a command such as \"cp {motion} /backup/\"")
    return argv


def make_plan(ns: argparse.Namespace, common: list[str], out: Path, run_id: str, pin: bool,
              cli: tuple[Callable, Callable]) -> Plan:
    """Expand the inputs, hash videos and settings, name outputs (UsageError: nothing runs).

    ``cli`` = (build_parser, make_config) of vibe_engine.cli: the `run` parser checks every
    clip's options; the in-process engine mode builds its config with them.
    """
    try:
        clips = expand_inputs(ns.inputs)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    run_parser = _run_parser(cli[0])
    flags = _flags(run_parser)
    bad = [a for a in common if a.split("=")[0] in ("--out", "--ignore-stdin")]
    if bad:
        raise UsageError(f"{bad[0]} is set by the batch; remove it after --")
    try:
        prepared = [_clip_settings(c, common, run_parser, flags, ns.formats) for c in clips]
    except InputError as exc:
        raise UsageError(str(exc)) from None
    keys = [f"{sha256_file(c.video)}:{settings_hash(s)}" for c, (_, s) in zip(clips, prepared)]
    seen: set[str] = set()
    specs, by_key, settings = [], {}, {}
    for clip, (argv, s), key, name in zip(clips, prepared, keys, _names(clips, keys)):
        if key in seen:
            continue
        seen.add(key)
        specs.append(TaskSpec(
            key=key, name=name, video=str(clip.video), out=str(out / f"{name}.motion.npz"),
            run_argv=tuple(argv), ledger=str(out / LEDGER_NAME), lock=str(out / ".locks" / f"{name}.lock"),
            run_id=run_id, mode=ns.engine_mode, formats=ns.formats,
            export_dir=str(out / "exports" / name) if ns.formats else None,
            log=str(out / "logs" / f"{name}.engine.log"), pin=pin, upload=_upload_argv(ns.upload),
            resume=ns.resume, cli=cli if ns.engine_mode == "inprocess" else None))
        by_key[key], settings[key] = clip, s
    return Plan(specs, by_key, settings)


class Progress:
    """A tqdm bar on stderr: clips done/failed/running, rate and ETA (nothing with ``enabled`` False)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.counts = Counter()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="clip", file=sys.stderr, dynamic_ncols=True, smoothing=0)

    def update(self, status: str | None, running: int) -> None:
        if status:
            self.counts[status] += 1
        if self.bar is not None:
            self.bar.set_postfix(done=self.counts["done"], failed=self.counts["failed"], running=running,
                                 refresh=False)
            if status:
                self.bar.update(1)
            else:
                self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _executor(ns: argparse.Namespace):
    """(executor, description, workers)."""
    from vibe_engine.batch.executors import RayExecutor, SequentialExecutor, init_ray

    if ns.ray is None:
        return SequentialExecutor(ns.max_retries), "sequential", 1
    try:
        ray = init_ray(ns.ray, ns.workers or os.cpu_count() or 1, ns.gpus_per_task)
    except ImportError:
        if ns.ray != "auto":
            raise UsageError("Ray is not installed: pip install 'vibe-mocap[ray]' (or run without --ray)")
        log.warning("Ray is not installed: running the clips one after another in this process")
        return SequentialExecutor(ns.max_retries), "sequential (ray not installed)", 1
    except ConnectionError as exc:
        raise UsageError(f"cannot reach the Ray cluster {ns.ray}: {str(exc)[:200]}; check the address "
                         "(`ray status` on the head) and RAY_AUTH_MODE/RAY_AUTH_TOKEN_PATH") from None
    workers = ns.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    return RayExecutor(ray, workers, ns.gpus_per_task, ns.max_retries), f"ray {ns.ray}", workers


def _atomic_write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as fh:
        fh.write((json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


def _clip_entry(spec: TaskSpec, result: dict[str, Any]) -> dict[str, Any]:
    return {"video": spec.video, "name": spec.name, "key": spec.key, "status": result["status"],
            "motion_file": spec.out if result["status"] in ("done", "skipped") else None,
            "seconds": result.get("seconds"), "frames": result.get("frames"), "people": result.get("people", []),
            "error": result.get("error"), "exports": result.get("exports", [])}


def _finished_anyway(ledger: Ledger, spec: TaskSpec, result: dict[str, Any]) -> dict[str, Any]:
    """``result``, or ``done`` from the ledger when the task recorded its own ``done`` in this run
    (same run id, the output still has the recorded sha256) and was then interrupted before it
    returned (Ctrl-C or ``ray.cancel`` in that moment): the clip did finish, and the report and the
    ledger must agree (no ``cancelled`` after its ``done``, so ``--resume`` skips it)."""
    if result["status"] not in ("cancelled", "failed"):
        return result
    last = ledger.last()
    if not ledger.finished(spec.key, Path(spec.out), last) or last[spec.key].get("run_id") != spec.run_id:
        return result
    record = last[spec.key]
    fields = ("seconds", "frames", "people", "exports", "output_sha256")
    return {**result, **{k: record.get(k) for k in fields}, "status": "done", "error": None}


def _end_event(ledger: Ledger, spec: TaskSpec, result: dict[str, Any]) -> None:
    """Record a task's end that the task could not record itself (it writes ``done``)."""
    if result["status"] in ("failed", "cancelled"):
        ledger.append(result["status"], spec.key, **end_fields(spec, result))


def execute(ns: argparse.Namespace, plan: Plan, out: Path, run_id: str, chosen: tuple) -> dict[str, Any]:
    """Run the plan on ``chosen`` = ``_executor(ns)``; returns the report (also written to
    DIR/batch_report.json)."""
    ledger = Ledger(out / LEDGER_NAME)
    last = ledger.last()
    entries: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in plan.specs:
        if ns.resume and ledger.finished(spec.key, Path(spec.out), last):
            done = last[spec.key]
            entries[spec.key] = _clip_entry(spec, {**done, "status": "skipped"})
        else:
            todo.append(spec)
    executor, how, workers = chosen
    progress = Progress(len(todo), not ns.no_progress)
    started, cancelled = time.perf_counter(), False

    def record(spec: TaskSpec, result: dict[str, Any]) -> None:
        result = _finished_anyway(ledger, spec, result)
        _end_event(ledger, spec, result)
        entries[spec.key] = _clip_entry(spec, result)
        progress.update(result["status"], len(getattr(executor, "inflight", getattr(executor, "running", []))))

    try:
        try:
            for outcome in executor.run(todo):
                if outcome is None:
                    progress.update(None, len(executor.inflight))
                else:
                    record(*outcome)
        except KeyboardInterrupt:
            cancelled = True
            log.warning("interrupted: no new clips; cancelling the running ones")
            for spec, result in executor.cancel():
                record(spec, result)
    finally:
        progress.close()
        if hasattr(executor, "shutdown"):
            executor.shutdown()
    wall = time.perf_counter() - started
    return _report(ns, plan, entries, how, workers, wall, cancelled, out)


def _report(ns, plan: Plan, entries, how: str, workers: int, wall: float, cancelled: bool,
            out: Path) -> dict[str, Any]:
    clips = [entries.get(s.key) or _clip_entry(s, {"status": "not_run"}) for s in plan.specs]
    counts = Counter(c["status"] for c in clips)
    ran = counts["done"]
    report = {
        "report_version": REPORT_VERSION, "tool": "vibe_engine batch", "engine_version": __version__,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "executor": how, "workers": workers, "engine_mode": ns.engine_mode, "out": str(out),
        "cancelled": cancelled, "counts": dict(counts), "wall_seconds": round(wall, 3),
        "clips_per_second": round(ran / wall, 4) if wall > 0 and ran else 0.0,
        "frames_per_second": round(sum(c["frames"] or 0 for c in clips if c["status"] == "done") / wall, 2)
        if wall > 0 else 0.0,
        "clips": clips,
    }
    _atomic_write_json(out / REPORT_NAME, report)
    return report


def _exit_code(report: dict[str, Any]) -> int:
    if report["cancelled"]:
        return EXIT_CANCELLED
    bad = set(report["counts"]) - {"done", "skipped"}
    return EXIT_SOME_FAILED if bad else EXIT_OK


def batch_main(argv: Sequence[str], build_parser_fn: Callable[[], argparse.ArgumentParser],
               make_config: Callable[[argparse.Namespace], Any]) -> int:
    """Entry point of ``vibe_engine batch`` (called by vibe_engine.cli with its ``build_parser``
    and ``make_config``, so that this package never imports the CLI); returns the exit code.

    Only the JSON report goes to stdout: while the batch runs, fd 1 points at stderr, so Ray's
    and the workers' messages cannot corrupt it.
    """
    own = argv[:list(argv).index("--")] if "--" in argv else list(argv)
    if "-h" in own or "--help" in own:
        build_parser().print_help()
        return EXIT_OK
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)
    saved, sys.stdout = sys.stdout, sys.stderr
    try:
        code, report = _batch(list(argv), (build_parser_fn, make_config))
    finally:
        sys.stdout.flush()
        os.dup2(report_fd, 1)
        os.close(report_fd)
        sys.stdout = saved
    if report is not None:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        sys.stdout.flush()
    return code


def _batch(argv: list[str], cli: tuple[Callable, Callable]) -> tuple[int, dict[str, Any] | None]:
    """(exit code, report or None)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    common = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    try:
        ns = build_parser().parse_args(own)
        if ns.max_retries < 0:
            raise UsageError("--max-retries must be >= 0")
        if ns.formats and ns.ray in (None, "local") and export_available():
            raise UsageError(f"--formats {','.join(ns.formats)}: {export_available()}")
        out = Path(ns.out).expanduser().resolve()
        run_id = uuid.uuid4().hex[:12]
        pin = ns.pin == "on" or (ns.pin == "auto" and ns.ray == "local")
        plan = make_plan(ns, common, out, run_id, pin, cli)
        chosen = _executor(ns)
        for sub in (".locks", "logs"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        report = execute(ns, plan, out, run_id, chosen)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE, None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; batch.jsonl records every clip that finished\n")
        return EXIT_CANCELLED, None
    return _exit_code(report), report
