"""The robustness table: one ``Case`` per bad input (issue 14), each run in a subprocess.

A case names its id, what it checks (one line), how to build its inputs and call (``build(ctx) ->
Call``), and the expected exit code, error code and message words. ``exit`` None means an API call
that must raise (the Blender children report no exit code); ``code`` None means no error line
(success or a cancelled run); tuples accept any of their values. For API calls ``code`` may also be
an exception class name anywhere in the raised exception's MRO (e.g. ``VibeError``).

Groups: usage, video (incl. NO_PERSON), model (incl. doctor, OOM), output, boxes, cancel (signals, stale
temporary files), stdin, runner (the add-on's Job), motion (inspect),
blender (import_motion / import_video in a bpy child), batch (tools/vibe_batch.py).
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tests.robustness import inputs as I
from tests.robustness.runner import BLENDER_AS, INSPECT_AS, REPO, Call, Ctx, Outcome, python
from vibe_blender.core import motion_file as mf
from vibe_blender.core import protocol as P

HERE = Path(__file__).resolve().parent
COMMON = ("--min-frames", "5", "--max-people", "1")
OUT_NAME = "o.motion.npz"
#: Seconds the test pause holds a stage (VIBE_ENGINE_PAUSE_S): long enough for a signal or a
#: cancel to arrive, short enough that a run that ignores it still ends.
HOLD_S = "30"
#: The stdin line without a newline (bytes).
LONG_LINE_BYTES = 50 * 10**6
#: Seconds the run is held in `features` while the line is read (a linear reader needs < 1 s).
LONG_LINE_HOLD_S = "8"
MAX_USAGE_WALL_S = 10.0


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    what: str
    build: Callable[[Ctx], Call]
    exit: Any
    code: Any
    words: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ call builders


def engine(*args: str) -> list[str]:
    return [python(), "-m", "vibe_engine", *args]


def run(ctx: Ctx, video: Path, *extra: str, out: Path | None = None, **call_kw: Any) -> Call:
    """``vibe_engine run VIDEO --out OUT COMMON... EXTRA...`` (OUT defaults to the case folder)."""
    out = ctx.dir / OUT_NAME if out is None else out
    return Call(engine("run", str(video), "--out", str(out), *COMMON, *extra), **call_kw)


def inspect(path: Path, **call_kw: Any) -> Call:
    return Call(engine("inspect", str(path), "--json"), kind="inspect", rlimit_as=INSPECT_AS, timeout_s=60,
                **call_kw)


def bpy_call(ctx: Ctx, call: str, path: Path, **kwargs: Any) -> Call:
    spec, result = ctx.scratch / "spec.json", ctx.scratch / "result.json"
    spec.write_text(json.dumps({"call": call, "path": str(path), "kwargs": kwargs}))
    return Call([python(), str(HERE / "bpy_child.py"), str(spec), str(result)], kind="child",
                env={"BLENDER_USER_RESOURCES": str(ctx.scratch / "user")}, rlimit_as=BLENDER_AS,
                result_file=result, timeout_s=180)


def job_call(ctx: Ctx, video: Path, out: Path, *args: str, env: dict | None = None,
             kill_at_pause: bool = False) -> Call:
    spec, result = ctx.scratch / "spec.json", ctx.scratch / "result.json"
    spec.write_text(json.dumps({"video": str(video), "out": str(out), "args": list(args), "env": env or {},
                                "kill_at_pause": kill_at_pause}))
    return Call([python(), str(HERE / "job_child.py"), str(spec), str(result)], kind="child",
                result_file=result)


def batch_call(ctx: Ctx, path: Path, *args: str) -> Call:
    out = ctx.dir / "out"
    return Call([python(), str(REPO / "tools" / "vibe_batch.py"), str(path), "--out", str(out), "--no-blend",
                 "--formats", "bvh", *args], kind="batch", rlimit_as=BLENDER_AS,
                result_file=out / "vibe_batch_report.json", expect_new=("out", "out/vibe_batch_report.json"),
                env={"BLENDER_USER_RESOURCES": str(ctx.scratch / "user")}, timeout_s=180)


# ------------------------------------------------------------------------------ extra checks


def all_of(*checks: Callable[[Outcome, Ctx], list[str]]) -> Callable[[Outcome, Ctx], list[str]]:
    return lambda out, ctx: [p for c in checks for p in c(out, ctx)]


def no_work(out: Outcome, ctx: Ctx) -> list[str]:
    """Refused before any work: no stage line at all (and well under MAX_USAGE_WALL_S)."""
    bad = [f"started stages {out.stages} before refusing"] if out.stages else []
    if out.wall_s > MAX_USAGE_WALL_S:
        bad.append(f"took {out.wall_s:.1f} s to refuse a bad option")
    return bad


def stopped_in_decode(out: Outcome, ctx: Ctx) -> list[str]:
    return [] if set(out.stages) <= {"decode"} else [f"ran stages {out.stages} before refusing"]


def status(expected: str) -> Callable[[Outcome, Ctx], list[str]]:
    return lambda out, ctx: ([] if out.status == expected else
                             [f"done status {out.status}, expected {expected}"])


def motion_written(name: str = OUT_NAME) -> Callable[[Outcome, Ctx], list[str]]:
    def check(out: Outcome, ctx: Ctx) -> list[str]:
        try:
            mf.read_motion(ctx.dir / name)
        except Exception as exc:  # noqa: BLE001
            return [f"no valid motion file at {name}: {exc}"]
        return []

    return check


def absent(name: str) -> Callable[[Outcome, Ctx], list[str]]:
    return lambda out, ctx: ([f"{name} exists (code ran or a file was left)"] if (ctx.dir / name).exists()
                             else [])


def no_code_ran(out: Outcome, ctx: Ctx) -> list[str]:
    return absent("MARKER")(out, ctx)


def doctor_not_ready(bad_name: str) -> Callable[[Outcome, Ctx], list[str]]:
    def check(out: Outcome, ctx: Ctx) -> list[str]:
        bad = []
        for report in out.of("report"):
            if report["data"].get("vibe_ready"):
                bad.append("doctor report says vibe_ready with a garbage checkpoint")
        if "VIBE backend: ready" in out.stderr:
            bad.append("doctor summary says 'VIBE backend: ready'")
        if bad_name not in out.stdout + out.stderr:
            bad.append(f"doctor does not name {bad_name}")
        return bad

    return check


# ------------------------------------------------------------------------------ interaction hooks


def at_pause(action: Callable[[Any, Ctx], None]) -> Callable[[str, Any, Ctx], None]:
    """An ``on_line`` hook running ``action(proc, ctx)`` once, when the TEST_PAUSE warning arrives."""

    def hook(line: str, proc: Any, ctx: Ctx) -> None:
        if '"TEST_PAUSE"' in line and not ctx.state.get("paused"):
            ctx.state["paused"] = True
            action(proc, ctx)

    return hook


def send_cancel(proc: Any, ctx: Ctx) -> None:
    proc.stdin.write(P.cancel_line() + "\n")
    proc.stdin.flush()


def send_signal(sig: int) -> Callable[[Any, Ctx], None]:
    return lambda proc, ctx: proc.send_signal(sig)


def pause_env(stage: str, hold_s: str = HOLD_S) -> dict[str, str]:
    return {"VIBE_ENGINE_PAUSE_AT": stage, "VIBE_ENGINE_PAUSE_S": hold_s}


def long_line(proc: Any, ctx: Ctx) -> None:
    """Write LONG_LINE_BYTES without a newline from a thread (stdin stays open); records when the
    engine had read it all (a pipe holds 64 KiB, so the last write returns only then)."""

    def feed() -> None:
        block = b"x" * (1 << 20)
        try:
            raw = proc.stdin.buffer
            for _ in range(LONG_LINE_BYTES // len(block)):
                raw.write(block)
            raw.flush()
            ctx.state["fed_at"] = time.monotonic()
        except (BrokenPipeError, OSError, ValueError):
            pass

    threading.Thread(target=feed, daemon=True).start()


def note_done(line: str, proc: Any, ctx: Ctx) -> None:
    if '"type":"done"' in line.replace(" ", ""):
        ctx.state.setdefault("done_at", time.monotonic())


def read_before_done(out: Outcome, ctx: Ctx) -> list[str]:
    """The engine read the whole line while it ran (the run is held LONG_LINE_HOLD_S in features)."""
    fed, done = ctx.state.get("fed_at"), ctx.state.get("done_at")
    if fed is None or done is None or fed > done:
        return ["the engine had not read the 50 MB line when the run ended (its stdin watcher is too slow)"]
    return []


# ------------------------------------------------------------------------------ builders per group


def usage(case_id: str, args: tuple[str, ...], words: tuple[str, ...]) -> Case:
    return Case(case_id, "usage", f"run {' '.join(args)} → refused before any work",
                lambda ctx: run(ctx, ctx.assets.person_clip, *args, check=no_work, timeout_s=60),
                2, "USAGE", words)


USAGE = [
    usage("focal-inf", ("--focal", "inf"), ("--focal",)),
    usage("focal-1e300", ("--focal", "1e300"), ("--focal",)),
    usage("focal-1e-300", ("--focal", "1e-300"), ("--focal",)),
    usage("focal-nan", ("--focal", "nan"), ("--focal",)),
    usage("focal-negative", ("--focal", "-5"), ("--focal",)),
    usage("batch-size-0", ("--batch-size", "0"), ("--batch-size",)),
    usage("batch-size-100000", ("--batch-size", "100000"), ("--batch-size",)),
    usage("min-frames-0", ("--min-frames", "0"), ("--min-frames",)),
    usage("detect-every-0", ("--detect-every", "0"), ("--detect-every",)),
    usage("max-people-0", ("--max-people", "0"), ("--max-people",)),
    usage("tracks-not-ids", ("--tracks", "a,b"), ("--tracks",)),
    usage("device-tpu", ("--device", "tpu"), ("--device",)),
]


def video_case(case_id: str, what: str, make: Callable[[Ctx], Path], words: tuple[str, ...],
               code: str = "VIDEO_UNREADABLE", extra: tuple[str, ...] = (), check=stopped_in_decode) -> Case:
    return Case(case_id, "video", what, lambda ctx: run(ctx, make(ctx), *extra, check=check), 4, code, words)


def _zero_frames(ctx: Ctx) -> Path:
    import subprocess

    from tests.fixtures import media

    path = ctx.dir / "zero.mp4"
    subprocess.run([media.ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=gray:s=64x48:r=30",
                    "-frames:v", "0", "-c:v", "libx264", str(path)], check=True, capture_output=True,
                   timeout=60)
    return path


def _folder(ctx: Ctx) -> Path:
    path = ctx.dir / "holiday.mp4"
    path.mkdir()
    return path


def _replaced_video(ctx: Ctx) -> Call:
    video = I.copy(ctx.assets.person_clip, ctx.dir / "clip.mp4")
    other = I.copy(ctx.assets.plain_clip, ctx.scratch / "other.mp4")
    return run(ctx, video, env=pause_env("features", "3"), mutable=("clip.mp4",),
               on_line=at_pause(lambda proc, c: os.replace(other, video)))


VIDEO = [
    video_case("video-missing", "video path that does not exist", lambda c: c.dir / "nowhere.mp4",
               ("not found",)),
    video_case("video-empty", "zero-byte .mp4", lambda c: I.write(c.dir / "empty.mp4", b""), ("empty",)),
    video_case("video-text", "text file named .mp4",
               lambda c: I.write(c.dir / "notes.mp4", "not a video\n" * 50), ("notes.mp4",)),
    video_case("video-random-bytes", "64 KB of random bytes named .mp4",
               lambda c: I.write(c.dir / "junk.mp4", np.random.default_rng(0).bytes(65536)), ("junk.mp4",)),
    video_case("video-truncated", "MP4 cut to a third (index at the end lost)",
               lambda c: I.write(c.dir / "truncated.mp4", c.assets.person_clip.read_bytes()[
                   : c.assets.person_clip.stat().st_size // 3]), ("truncated.mp4",)),
    video_case("video-zero-frames", "MP4 whose video stream has no frames", _zero_frames, ("zero.mp4",)),
    video_case("video-unknown-codec", "MP4 whose codec fourcc is unknown (zzzz)",
               lambda c: I.patched_codec(c.assets.plain_clip, c.dir / "codec.mp4"), ("codec.mp4",)),
    video_case("video-is-folder", "a folder passed as the video", _folder, ("is a folder",)),
    video_case("video-one-frame", "a 1-frame video",
               lambda c: I.copy(c.assets.one_frame_clip, c.dir / "one.mp4"), ("1 frame", "3"), check=None),
    video_case("video-png-renamed", "a PNG renamed .mp4", lambda c: I.copy(c.assets.png, c.dir / "still.mp4"),
               ("still image",)),
    video_case("video-png", "a PNG passed as the video", lambda c: I.copy(c.assets.png, c.dir / "still.png"),
               ("still image",)),
    Case("video-changed", "video", "video replaced by another between the two passes", _replaced_video, 4,
         "VIDEO_UNREADABLE", ("changed during the run",)),
    video_case("no-person", "a clip with nobody in it",
               lambda c: I.copy(c.assets.plain_clip, c.dir / "plain.mp4"), ("no person",), code="NO_PERSON",
               check=None),
    video_case("person-too-short", "the person is in fewer frames than --min-frames",
               lambda c: I.copy(c.assets.person_clip, c.dir / "person.mp4"), ("--min-frames",),
               code="NO_PERSON",
               extra=("--min-frames", str(I.PERSON_FRAMES + 1)), check=None),
]


def model_case(case_id: str, what: str, make: Callable[[Ctx], tuple[str, ...]], code: Any,
               words: tuple[str, ...], absent_words: tuple[str, ...] = (), extra_check=None) -> Case:
    def build(ctx: Ctx) -> Call:
        check = stopped_in_decode if extra_check is None else all_of(stopped_in_decode, extra_check)
        return run(ctx, ctx.assets.plain_clip, *make(ctx), check=check)

    return Case(case_id, "model", what, build, 4, code, words, absent_words)


def _spin(ctx: Ctx) -> str:
    return str(ctx.assets.vibe_data / "spin_model_checkpoint.pth.tar")


def _foreign(ctx: Ctx) -> tuple[str, ...]:
    import torch

    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, ctx.dir / "foreign.pth.tar")
    return ("--vibe-checkpoint", str(ctx.dir / "foreign.pth.tar"), "--spin-checkpoint", _spin(ctx))


def _partial(ctx: Ctx) -> tuple[str, ...]:
    data = ctx.dir / "data"
    data.mkdir()
    (data / "vibe_model_wo_3dpw.pth.tar").symlink_to(ctx.assets.vibe_data / "vibe_model_wo_3dpw.pth.tar")
    return ("--vibe-data", str(data))


def _evil_checkpoint(ctx: Ctx) -> tuple[str, ...]:
    evil = I.evil_checkpoint(ctx.dir / "evil.pth.tar", ctx.dir / "MARKER")
    return ("--vibe-checkpoint", str(evil), "--spin-checkpoint", _spin(ctx))


def _jreg(ctx: Ctx) -> tuple[str, ...]:
    data = I.link_vibe_data(ctx.assets.vibe_data, ctx.dir / "data", J_regressor_extra__npy=I.object_npy)
    return ("--vibe-data", str(data))


MODEL = [
    model_case("body-model-without-vibe", "--body-model without VIBE files",
               lambda c: ("--body-model", str(I.copy(c.assets.plain_clip, c.dir / "body.pkl"))),
               "MODEL_INVALID", ("--vibe-data",)),
    model_case("data-folder-missing-files", "VIBE data folder without the SPIN checkpoint", _partial,
               "MODEL_MISSING", ("spin_model_checkpoint.pth.tar",)),
    model_case("checkpoint-foreign", "a torch checkpoint of another network", _foreign, "MODEL_INVALID",
               ("foreign.pth.tar",)),
    model_case("checkpoint-garbage", "4 KB of random bytes as the VIBE checkpoint",
               lambda c: ("--vibe-checkpoint", str(I.write(c.dir / "garbage.pth.tar", os.urandom(4096))),
                          "--spin-checkpoint", _spin(c)), "MODEL_INVALID", ("garbage.pth.tar",)),
    model_case("checkpoint-pickle-exploit", "checkpoint whose pickle calls open() (weights_only refuses)",
               _evil_checkpoint, "MODEL_INVALID", ("evil.pth.tar",),
               extra_check=no_code_ran),
    model_case("body-model-pickle-exploit", "SMPL .pkl whose __reduce__ calls open() (restricted unpickler)",
               lambda c: ("--vibe-data", str(c.assets.vibe_data),
                          "--body-model", str(I.evil_pickle(c.dir / "evil.pkl", c.dir / "MARKER"))),
               "MODEL_INVALID", ("evil.pkl",), extra_check=no_code_ran),
    model_case("j-regressor-object-array", "object-array J_regressor_extra.npy in the data folder", _jreg,
               "MODEL_INVALID", ("J_regressor_extra.npy",), ("vibe_model_wo_3dpw",)),
    Case("oom-at-batch-one", "model", "out of memory even at one crop per batch (fault hook)",
         lambda ctx: run(ctx, ctx.assets.person_clip, "--vibe-data", str(ctx.assets.vibe_data),
                         "--batch-size", "4", env={"VIBE_ENGINE_FAULT_OOM_ABOVE": "0"}),
         1, "OUT_OF_MEMORY", ("one crop",)),
    model_case("device-cuda-without-gpu", "--device cuda on a machine without CUDA",
               lambda c: ("--device", "cuda"), "BAD_INPUT", ("CUDA",)),
]


def _doctor_garbage(ctx: Ctx) -> Call:
    def garbage(path: Path) -> Path:
        return I.write(path, b"PK\x03\x04 this is not a checkpoint" * 64)

    data = I.link_vibe_data(ctx.assets.vibe_data, ctx.dir / "data", vibe_model_wo_3dpw__pth__tar=garbage)
    return Call(engine("doctor", "--vibe-data", str(data)), require_result=False,
                check=doctor_not_ready("vibe_model_wo_3dpw.pth.tar"))


DOCTOR = [
    Case("doctor-garbage-checkpoint", "model", "doctor with a garbage checkpoint of the right name",
         _doctor_garbage, (0, 4), (None, "MODEL_INVALID")),
    Case("doctor-empty-folder", "model", "doctor --vibe-data on an empty folder",
         lambda ctx: Call(engine("doctor", "--vibe-data", str(ctx.dir)), require_result=False), 4,
         "MODEL_MISSING", ("spin_model_checkpoint.pth.tar",)),
]


def out_case(case_id: str, what: str, make_out: Callable[[Ctx], Path], words: tuple[str, ...],
             video: Callable[[Ctx], Path] | None = None, code: str = "OUTPUT_UNWRITABLE") -> Case:
    def build(ctx: Ctx) -> Call:
        clip = video(ctx) if video else ctx.assets.person_clip
        return run(ctx, clip, out=make_out(ctx), check=stopped_in_decode)

    return Case(case_id, "output", what, build, 4, code, words)


def _full_disk(ctx: Ctx) -> Call:
    """OUT on a 256 KiB tmpfs (the motion file is ~5 MB); the fault hook when mounting fails."""
    import subprocess

    disk = ctx.dir / "disk"
    disk.mkdir()
    env: dict[str, str] = {}
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    if mounted:
        ctx.finalizers.append(lambda: subprocess.run(["umount", "-l", str(disk)], capture_output=True))
    else:
        env["VIBE_ENGINE_FAULT_ENOSPC"] = "1"
    ctx.state["tmpfs"] = mounted
    return run(ctx, I.copy(ctx.assets.person_clip, ctx.dir / "clip.mp4"), out=disk / OUT_NAME, env=env)


OUTPUT = [
    out_case("out-folder-missing", "--out in a folder that does not exist",
             lambda c: c.dir / "no" / "such" / OUT_NAME, ("--out",)),
    out_case("out-is-folder", "--out is a folder", lambda c: c.dir, ("--out",)),
    out_case("out-not-writable", "--out where nothing can be created (/proc)",
             lambda c: Path("/proc/vibe-test.motion.npz"), ("--out",)),
    out_case("out-is-the-video", "run X.mp4 --out X.mp4", lambda c: c.dir / "clip.mp4", ("--out",),
             video=lambda c: I.copy(c.assets.person_clip, c.dir / "clip.mp4")),
    out_case("out-existing-text", "--out is an existing .txt (not a motion file)",
             lambda c: I.write(c.dir / "notes.txt", "my notes\n"), ("not a motion file",)),
    out_case("out-existing-blend", "--out is an existing .blend",
             lambda c: I.write(c.dir / "scene.blend", b"BLENDER-v402" + bytes(512)), ("not a motion file",)),
    out_case("out-existing-motion-bad-video", "a failed run keeps the motion file already at --out",
             lambda c: I.copy(c.assets.motion, c.dir / "take.motion.npz"), ("notes.mp4",),
             video=lambda c: I.write(c.dir / "notes.mp4", "not a video\n" * 50), code="VIDEO_UNREADABLE"),
    Case("out-disk-full", "output", "the disk fills up while the motion file is written", _full_disk, 4,
         "OUTPUT_UNWRITABLE", ("free",)),
]


def boxes_case(case_id: str, what: str, name: str, content: str | None) -> Case:
    def build(ctx: Ctx) -> Call:
        path = ctx.dir / name
        if content is not None:
            path.write_text(content)
        return run(ctx, ctx.assets.person_clip, "--boxes", str(path), check=stopped_in_decode)

    return Case(case_id, "boxes", what, build, 4, "BAD_INPUT", (name,))


BOXES = [
    boxes_case("boxes-csv-not-a-number", "boxes CSV with 'oops' as a coordinate", "boxes.csv",
               "frame,x1,y1,x2,y2,score\n0,1,2,30,40,0.5\n1,1,2,oops,40,0.5\n"),
    boxes_case("boxes-not-json", "boxes .json that is not JSON", "boxes.json", "{frames: [1, 2"),
    boxes_case("boxes-nan", "boxes JSON with a NaN coordinate", "boxes.json",
               json.dumps([{"frame": 0, "box": [1, 2, math.nan, 40]}])),
    boxes_case("boxes-negative-frame", "boxes JSON with frame -1", "boxes.json",
               json.dumps([{"frame": -1, "box": [1, 2, 30, 40]}])),
    boxes_case("boxes-empty-file", "zero-byte boxes file", "boxes.json", ""),
    boxes_case("boxes-missing", "boxes file that does not exist", "nowhere.json", None),
]


def _existing_out(ctx: Ctx) -> Path:
    return I.copy(ctx.assets.motion, ctx.dir / OUT_NAME)


def cancel_case(case_id: str, what: str, stage: str, action, existing: bool = False) -> Case:
    def build(ctx: Ctx) -> Call:
        if existing:
            _existing_out(ctx)
        return run(ctx, ctx.assets.person_clip, env=pause_env(stage), on_line=at_pause(action),
                   check=status("cancelled"))

    return Case(case_id, "cancel", what, build, 3, None)


def _stale(live: bool) -> Callable[[Ctx], Call]:
    def build(ctx: Ctx) -> Call:
        pid = os.getpid() if live else I.dead_pid()
        name = f"{OUT_NAME}.tmp-{pid}"
        I.write(ctx.dir / name, b"partial write of an earlier run")
        checks = [status("ok"), motion_written()]
        if not live:
            checks.append(absent(name))
        return run(ctx, ctx.assets.person_clip, expect_new=(OUT_NAME,), mutable=() if live else (name,),
                   check=all_of(*checks))

    return build


def _stdin_case(case_id: str, what: str, mode: Any, exit_code: int) -> Case:
    def build(ctx: Ctx) -> Call:
        stdin = mode
        if mode == "file":
            stdin = I.write(ctx.scratch / "stdin.txt", "hello\n")
        ok = exit_code == 0
        return run(ctx, ctx.assets.person_clip, stdin=stdin,
                   expect_new=(OUT_NAME,) if ok else (),
                   check=all_of(status("ok"), motion_written()) if ok else status("cancelled"))

    return Case(case_id, "stdin", what, build, exit_code, None)


CANCEL = [
    cancel_case("cancel-keeps-existing-out",
                "cancel line during features with a motion file already at --out",
                "features", send_cancel, existing=True),
    cancel_case("cancel-in-write-keeps-existing-out", "cancel line at the write stage, motion file at --out",
                "write", send_cancel, existing=True),
    cancel_case("sigterm", "SIGTERM during a run", "features", send_signal(signal.SIGTERM)),
    cancel_case("sigint", "SIGINT (Ctrl-C) during a run", "features", send_signal(signal.SIGINT)),
    Case("stale-tmp-of-dead-pid", "cancel",
         "OUT.tmp-<dead pid> from a crashed run is removed by the next run",
         _stale(live=False), 0, None),
    Case("tmp-of-live-pid", "cancel", "OUT.tmp-<live pid> of another process is left alone",
         _stale(live=True), 0,
         None),
    _stdin_case("stdin-devnull", "stdin is /dev/null", "devnull", 0),
    _stdin_case("stdin-regular-file", "stdin is a regular file", "file", 0),
    _stdin_case("stdin-closed-at-once", "stdin a pipe closed at once (the parent died)", "closed", 3),
    Case("stdin-50mb-line", "stdin", "a 50 MB stdin line without a newline, read while the run is held",
         lambda ctx: run(ctx, ctx.assets.person_clip, on_start=long_line, on_line=note_done, timeout_s=90,
                         env=pause_env("features", LONG_LINE_HOLD_S), expect_new=(OUT_NAME,),
                         check=all_of(status("ok"), motion_written(), read_before_done)), 0, None),
]


def _api_video(ctx: Ctx) -> Call:
    existing = _existing_out(ctx)
    video = I.write(ctx.dir / "notes.mp4", "not a video\n" * 50)
    return bpy_call(ctx, "import_video", video, out_motion=str(existing))


def _job_bad_video(ctx: Ctx) -> Call:
    existing = _existing_out(ctx)
    return job_call(ctx, I.write(ctx.dir / "notes.mp4", "not a video\n" * 50), existing)


def _job_killed(ctx: Ctx) -> Call:
    return job_call(ctx, ctx.assets.person_clip, ctx.dir / OUT_NAME, "--min-frames", "5",
                    env=pause_env("features"), kill_at_pause=True)


RUNNER = [
    Case("api-import-video-keeps-existing-out", "blender",
         "api.import_video(bad video, out_motion=existing file) in bpy", _api_video, None, "VIDEO_UNREADABLE",
         ("notes.mp4",)),
    Case("job-failure-keeps-existing-out", "runner",
         "runner Job: engine fails on a bad video, result_path exists",
         _job_bad_video, 4, "VIDEO_UNREADABLE", ("notes.mp4",)),
    Case("job-engine-sigkilled", "runner", "runner Job: the engine is killed with SIGKILL mid-run",
         _job_killed,
         -signal.SIGKILL, ("CRASHED", "KILLED"), ("killed", "SIGKILL"), (" INFO ",)),
]


# ------------------------------------------------------------------------------ motion files


def _fps(value: Any) -> Callable[[dict], None]:
    return lambda meta: I.set_path(meta, ("video", "fps"), value)


def _nan_betas(src: Path, dst: Path) -> Path:
    arr = I.member_array(src, "track/1/betas_track.npy").copy()
    arr[0] = np.nan
    return I.with_array(src, dst, "track/1/betas_track.npy", arr)


def _wrong_shape(src: Path, dst: Path) -> Path:
    arr = I.member_array(src, "track/1/pose.npy")
    return I.with_array(src, dst, "track/1/pose.npy", arr[:, :23].copy())


def _pickle_member(src: Path, dst: Path, marker: Path) -> Path:
    return I.with_array(src, dst, "track/1/pose.npy", np.array([I.Evil(marker)], dtype=object),
                        allow_pickle=True)


def _corrupt_header(src: Path, dst: Path) -> Path:
    return I.tampered(src, dst, lambda m: m.__setitem__("meta.npy", I.npy_bytes(
        np.frombuffer(b'{"format": "vibe-mocap-motion", \xff\xfe', np.uint8))))


#: (id, what, make(src, dst, ctx), inspect exit (None: no inspect row), words, bpy row too)
MOTION_ROWS: list[tuple[str, str, Callable[[Path, Path, Ctx], Path], int, tuple[str, ...], bool]] = [
    ("fps-1e9", "header fps = 1e9", lambda s, d, c: I.with_meta(s, d, _fps(1e9)), 4, ("fps", "1000"), True),
    ("fps-0", "header fps = 0", lambda s, d, c: I.with_meta(s, d, _fps(0)), 4, ("fps", "1000"), True),
    ("fps-negative", "header fps = -30", lambda s, d, c: I.with_meta(s, d, _fps(-30.0)), 4, ("fps", "1000"),
     True),
    ("fps-nan-string", "header fps = \"NaN\" (a string)", lambda s, d, c: I.with_meta(s, d, _fps("NaN")), 4,
     ("fps", "1000"), True),
    ("frames-1e12", "header frames = 10**12",
     lambda s, d, c: I.with_meta(s, d, lambda m: I.set_path(m, ("video", "frames"),
                                                            10**12)), 4, ("frames",), True),
    ("version-string", "header version is the string \"1\"",
     lambda s, d, c: I.with_meta(s, d, lambda m: m.__setitem__("version", "1")), 4, ("'1'",), True),
    ("video-not-an-object", "header \"video\": \"abc\"",
     lambda s, d, c: I.with_meta(s, d, lambda m: m.__setitem__("video", "abc")), 4, ("video",), False),
    ("video-fps-text", "header \"video\": {\"fps\": \"x\"}",
     lambda s, d, c: I.with_meta(s, d, lambda m: m.__setitem__("video", {"fps": "x"})), 4, ("fps",), False),
    ("format-foreign", "header format is another program's",
     lambda s, d, c: I.with_meta(s, d, lambda m: m.__setitem__("format", "other-tool")), 4,
     ("not a vibe-mocap motion file",), False),
    ("huge-declared-array", "pose member header claims shape (10**9, 72), data absent",
     lambda s, d, c: I.with_huge_header(s, d, "track/1/pose.npy", (10**9, 72)), 4, ("pose",), False),
    ("zip-bomb-member", "unknown member that decompresses to 2 GiB (2 MB file)",
     lambda s, d, c: I.copy(c.assets.bomb, d), 0, (), False),
    ("nan-betas", "betas_track holds NaN", lambda s, d, c: _nan_betas(s, d), 4, ("betas_track",), True),
    ("pose-wrong-shape", "pose member of shape (T, 23, 3)", lambda s, d, c: _wrong_shape(s, d), 4, ("pose",),
     False),
    ("member-missing", "pose member removed",
     lambda s, d, c: I.without_member(s, d, "track/1/pose.npy"), 4, ("pose",), False),
    ("pickle-member", "pose member is an object array whose pickle calls open()",
     lambda s, d, c: _pickle_member(s, d, c.dir / "MARKER"), 4, ("take.motion.npz",), False),
    ("header-corrupt", "header is not UTF-8 JSON", lambda s, d, c: _corrupt_header(s, d), 4, ("header",),
     False),
    ("motion-truncated", "motion file cut in half",
     lambda s, d, c: I.write(d, s.read_bytes()[: s.stat().st_size // 2]), 4, ("truncated",), False),
    ("motion-zero-bytes", "zero-byte motion file", lambda s, d, c: I.write(d, b""), 4, ("take.motion.npz",),
     False),
    ("motion-junk", "4 bytes of junk as a motion file", lambda s, d, c: I.write(d, b"junk"), 4,
     ("take.motion.npz",), False),
    ("no-tracks", "a motion file with no tracks", lambda s, d, c: I.without_tracks(s, d), None,
     ("0 tracks",), True),
]
MOTION_NAME = "take.motion.npz"


def _motion_input(make: Callable[[Path, Path, Ctx], Path]) -> Callable[[Ctx], Path]:
    return lambda ctx: make(ctx.assets.motion, ctx.dir / MOTION_NAME, ctx)


def inspect_case(case_id: str, what: str, make, exit_code: int, words: tuple[str, ...]) -> Case:
    def build(ctx: Ctx) -> Call:
        return inspect(_motion_input(make)(ctx), check=no_code_ran)

    return Case("inspect-" + case_id, "motion", f"inspect: {what}", build, exit_code, None, words)


def blender_case(case_id: str, what: str, make, words: tuple[str, ...]) -> Case:
    code = "VibeError" if case_id == "no-tracks" else "MotionFileError"
    return Case("bpy-" + case_id, "blender", f"api.import_motion: {what}",
                lambda ctx: bpy_call(ctx, "import_motion", _motion_input(make)(ctx)), None, code, words)


MOTION = [inspect_case(i, w, m, e, words) for i, w, m, e, words, _ in MOTION_ROWS if e is not None]
BLENDER = [blender_case(i, w, m, words) for i, w, m, e, words, bpy in MOTION_ROWS if bpy]

BATCH = [
    Case("batch-no-tracks", "batch", "vibe_batch --motion on a file with no tracks",
         lambda ctx: batch_call(ctx, I.without_tracks(ctx.assets.motion, ctx.dir / MOTION_NAME),
                                "--motion"), 1,
         ("MotionFileError", "UserInputError", "VibeImportError"), ("0 tracks",)),
    Case("batch-fps-1e9", "batch", "vibe_batch --motion on a file whose fps is 1e9",
         lambda ctx: batch_call(ctx, I.with_meta(ctx.assets.motion, ctx.dir / MOTION_NAME, _fps(1e9)),
                                "--motion"),
         1, "MotionFileError", ("fps",)),
    Case("batch-bad-video", "batch", "vibe_batch on a text file named .mp4 (real engine)",
         lambda ctx: batch_call(ctx, I.write(ctx.dir / "notes.mp4", "not a video\n" * 50), "--engine-python",
                                python()), 1, ("EngineRunError", "EngineCrashedError"), ("notes.mp4",)),
]

CASES: list[Case] = (USAGE + VIDEO + MODEL + DOCTOR + OUTPUT + BOXES + CANCEL + RUNNER + MOTION + BLENDER
                     + BATCH)
assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"
