"""Child script: drive the real engine through the add-on's runner ``Job`` (no bpy needed).

``python job_child.py SPEC.json RESULT.json``. SPEC: {"video", "out", "args": [...], "env": {...},
"kill_at_pause": bool (SIGKILL the engine when its TEST_PAUSE warning arrives)}. RESULT: rc (the
engine's exit code), code (job.error_code), message (job.error), state, engine_stderr.
"""
import json
import os
import signal
import sys
import traceback


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    result: dict = {}
    try:
        from vibe_blender.runner.engine_cmd import EngineSpec, run_argv
        from vibe_blender.runner.job import Job

        argv = run_argv(EngineSpec(python=sys.executable), spec["video"], spec["out"]) + spec.get("args", [])
        job = Job(argv, result_path=spec["out"], env=dict(os.environ, **spec.get("env", {})))
        killed = []

        def on_update(j) -> None:
            if spec.get("kill_at_pause") and not killed and any("paused" in w for w in j.warnings):
                killed.append(j.process.pid)
                os.kill(j.process.pid, signal.SIGKILL)

        state = job.run_blocking(on_update)
        result.update(rc=job.exit_code, code=job.error_code or None, message=job.error, state=state.value,
                      engine_stderr=job.error_detail, killed=bool(killed))
    except BaseException:  # noqa: BLE001
        result["child_error"] = traceback.format_exc()
    with open(sys.argv[2], "w") as fh:
        json.dump(result, fh)


main()
