"""Operators: import a video (engine) or a motion file, cancel, check and set up the engine.

Two paths for every long operator:
- UI (``invoke``): start the job, ``wm.event_timer_add(TIMER_S)``, return RUNNING_MODAL; ``modal``
  polls the job on each TIMER event (never blocks) and redraws the sidebar; ESC or
  ``vibe.cancel`` cancels.
- Background / scripts (``execute``; in ``blender -b`` Blender calls ``execute`` even for
  INVOKE_DEFAULT): run the same job to the end, printing one progress line per stage change or
  ``PRINT_STEP`` of progress.
Failures report the one-line message and return CANCELLED with the scene unchanged.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..core import ui_text
from ..core.errors import UserInputError, VibeError
from ..core.settings import ImportOptions
from ..core.vibe_data import HashCache, check_folder
from ..runner import engine_cmd
from ..runner.engine_process import decode_line
from ..runner.job import CommandJob, Job, JobState
from . import api, compat, prefs, props, ui_compat

log = logging.getLogger(__name__)

TIMER_S = 0.1
PRINT_STEP = 0.1  # print a background progress line every 10 % (and at each stage change)
TAKES_DIR_NAME = "takes"


class ActiveRun:
    """The one engine run the panel shows (runs are one at a time), and the last finished take."""

    job: Job | None = None
    message: str = ""
    level: str = "INFO"
    #: (video as typed, motion file) of the last engine run that finished: what redo re-bakes.
    last_take: tuple[str, str] | None = None


def interactive() -> bool:
    """True in a Blender window, where an ``execute`` call is a redo/repeat, never a script."""
    return not bpy.app.background


def active_job() -> Job | None:
    """The running import job, if any."""
    job = ActiveRun.job
    return job if job is not None and not job.finished else None


def shutdown() -> None:
    """Kill a running engine (unregister, quit): no orphan process is left behind."""
    for job in (ActiveRun.job, prefs.RUNTIME.setup_job):
        if job is not None and not job.finished:
            job.close()
    ActiveRun.job = None


def _set_status(message: str, level: str = "INFO") -> None:
    ActiveRun.message, ActiveRun.level = ui_text.without_flags(message), level


class _PrintProgress:
    """Background progress printer (the operator's console output in ``blender -b``)."""

    def __init__(self, label: str) -> None:
        self.label, self._stage, self._shown = label, None, -1.0

    def __call__(self, job: Job | CommandJob) -> None:
        frac = job.fraction
        stage = job.step_name if isinstance(job, CommandJob) else job.stage
        if stage != self._stage or frac - self._shown >= PRINT_STEP or job.finished:
            self._stage, self._shown = stage, frac
            eta = getattr(job, "overall_eta_s", None)
            eta = f", {ui_text.duration_words(eta)} left" if eta else ""
            words = ui_text.stage_words(stage) if isinstance(job, Job) else (stage or "Starting")
            print(f"{self.label}: {words} {frac * 100.0:5.1f}%{eta}", flush=True)


class _ModalJob:
    """Mixin: the shared invoke/execute skeleton of the long operators, and the modal timer.

    ``_prepare`` builds ``self._job`` (not started) or raises VibeError; ``_refuse`` answers
    such a failure (report, CANCELLED; nothing was started or changed); ``_on_start`` runs just
    before the job starts; ``_finish`` answers the finished job. ``invoke`` (UI) starts the job
    and polls it from a window-manager timer (``modal``); ``execute`` (and ``invoke`` in
    background mode) runs it to the end, printing progress lines when ``progress_label`` is set.
    """

    _timer = None
    _job = None
    #: Label of the background progress lines (None: no lines).
    progress_label: str | None = None

    def _prepare(self, context: bpy.types.Context) -> None:
        raise NotImplementedError

    def _refuse(self, message: str) -> set[str]:
        """The job could not be prepared: report the one-line message, nothing started."""
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def _on_start(self, context: bpy.types.Context) -> None:
        """Just before the job starts (both paths): show that it runs."""

    def _finish(self, context: bpy.types.Context) -> set[str]:
        raise NotImplementedError

    def _prepared(self, context: bpy.types.Context) -> str | None:
        """Prepare and announce the job; the one-line message when it cannot start, else None."""
        try:
            self._prepare(context)
        except VibeError as exc:
            return str(exc)
        self._on_start(context)
        return None

    def execute(self, context: bpy.types.Context) -> set[str]:
        failure = self._prepared(context)
        if failure is not None:
            return self._refuse(failure)
        try:
            self._job.run_blocking(_PrintProgress(self.progress_label) if self.progress_label else None)
        finally:
            self._job.close()  # a no-op once finished; never leaves a process behind on an error
        return self._finish(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        failure = self._prepared(context)
        if failure is not None:
            return self._refuse(failure)
        self._job.start()
        return self._start_modal(context)

    def _start_modal(self, context: bpy.types.Context) -> set[str]:
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            self._job.request_cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._job.update():
            ui_compat.redraw_areas(context)
        if not self._job.finished:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        self._timer = None
        return self._finish(context)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender cancels the modal (file load, quit): stop the process and the timer."""
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if self._job is not None:
            self._job.close()


class VIBE_OT_import_video(_ModalJob, bpy.types.Operator):
    """Run the engine on the video and bake one animated character per person"""

    bl_idname = "vibe.import_video"
    bl_label = "Import Video"
    bl_options = {"REGISTER", "UNDO"}
    progress_label = "VIBE"

    filepath: StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"},
                             description="Video to capture (default: the panel's video)")
    motion_path: StringProperty(name="Motion File", subtype="FILE_PATH", options={"SKIP_SAVE"},
                                description="Where to write the motion file (default: a new take file)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_job() is None and context.scene is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Scripts and ``blender -b`` run the engine to the end; in a window ``execute`` is a redo
        (F9, the redo panel) or a repeat (Shift+R): never a blocking engine run."""
        if not interactive():
            return super().execute(context)
        return redo_take(self, context)

    def _prepare(self, context: bpy.types.Context) -> None:
        settings = context.scene.vibe
        self._video = self.filepath or settings.video_path
        if not self._video.strip():
            raise UserInputError("Choose a video first: the Video field is empty")
        self._options = props.import_options(settings, frame_start=context.scene.frame_start)
        self._out = Path(bpy.path.abspath(self.motion_path)) if self.motion_path else _new_take_path(self._video)
        self._job = api.start_job(self._video, self._out, prefs.engine_options(context), self._options)

    def _refuse(self, message: str) -> set[str]:
        return self._fail(message)

    def _on_start(self, context: bpy.types.Context) -> None:
        ActiveRun.job = self._job
        _set_status("Starting the engine…")

    def _finish(self, context: bpy.types.Context) -> set[str]:
        job = self._job
        for warning in job.warnings:
            self.report({"WARNING"}, ui_text.without_flags(warning))
        if job.state is JobState.CANCELLED:  # the user's choice, not an error
            _set_status("Cancelled: nothing was imported")
            self.report({"INFO"}, ActiveRun.message)
            return {"CANCELLED"}
        if job.state is not JobState.DONE:
            if job.error_detail:
                log.error("engine run failed (%s):\n%s", job.error_code, job.error_detail)
            return self._fail(job.error)
        context.scene.vibe.motion_path = os.fspath(self._out)
        ActiveRun.last_take = (self._video, os.fspath(self._out))
        return _bake(self, self._out, self._options)

    def _fail(self, message: str) -> set[str]:
        _set_status(message, "ERROR")
        self.report({"ERROR"}, ActiveRun.message)
        return {"CANCELLED"}


def redo_take(op: bpy.types.Operator, context: bpy.types.Context) -> set[str]:
    """Redo/repeat of "Import Video": re-bake the last take of the same video with the options now
    set (the redo panel may change them); without such a take, refuse instead of running the engine."""
    video = op.filepath or context.scene.vibe.video_path
    take = ActiveRun.last_take
    if take is None or take[0] != video or not Path(take[1]).is_file():
        _set_status("Redo does not run the engine again: press Capture in the VIBE panel")
        op.report({"INFO"}, ActiveRun.message)
        return {"CANCELLED"}
    try:
        options = props.import_options(context.scene.vibe, frame_start=context.scene.frame_start)
    except VibeError as exc:
        op.report({"ERROR"}, str(exc))
        return {"CANCELLED"}
    return _bake(op, take[1], options)


class VIBE_OT_import_motion(bpy.types.Operator):
    """Bake an existing motion file (no engine run)"""

    bl_idname = "vibe.import_motion"
    bl_label = "Import Motion File"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Motion File", subtype="FILE_PATH", options={"SKIP_SAVE"},
                             description="Motion file (default: the panel's motion file)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = bpy.path.abspath(self.filepath or context.scene.vibe.motion_path)
        try:
            options = props.import_options(context.scene.vibe, frame_start=context.scene.frame_start)
        except VibeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return _bake(self, path, options)


def _bake(op: bpy.types.Operator, path: str | os.PathLike, options: ImportOptions) -> set[str]:
    """Shared end of both imports: bake, report, FINISHED; or report the error, CANCELLED."""
    try:
        armatures = api.bake_motion(path, options,
                                    report=lambda text: op.report({"WARNING"}, ui_text.without_flags(text)))
    except VibeError as exc:
        _set_status(str(exc), "ERROR")
        op.report({"ERROR"}, ActiveRun.message)
        return {"CANCELLED"}
    for arm in armatures:
        replace_older(arm)
    names = ", ".join(a.name for a in armatures)
    _set_status(f"Imported {len(armatures)} character(s): {names}")
    op.report({"INFO"}, ActiveRun.message)
    return {"FINISHED"}


def replace_older(arm: bpy.types.Object) -> None:
    """Re-import: an earlier character of the same track (ours: it has the rest-joint property) is
    removed and the new one takes its names (``VIBE_1`` again, never ``VIBE_1.001``)."""
    from . import bake, character

    action = compat.active_action(arm)
    if action is None or "vibe_track_id" not in action:
        return
    track_id = int(action["vibe_track_id"])
    name = character.armature_name(track_id)
    old = bpy.data.objects.get(name)
    if old is None or old == arm or old.type != "ARMATURE" or character.PROP_REST_JOINTS not in old:
        return
    _remove_character(old)
    body = character.body_of(arm)
    arm.name = arm.data.name = name
    if body is not None:
        body.name = body.data.name = f"{name}_body"
        key = character.corrective_key(body)
        if key is not None and key.animation_data and key.animation_data.action:
            key.animation_data.action.name = bake.correctives_action_name(track_id)
    action.name = bake.action_name(track_id)


def _remove_character(arm: bpy.types.Object) -> None:
    """Remove a character made by this add-on: its objects, then their data and actions left unused."""
    from . import character

    body = character.body_of(arm)
    key = character.corrective_key(body) if body is not None else None
    owners = [o for o in (arm, key) if o is not None and o.animation_data is not None]
    actions = [o.animation_data.action for o in owners if o.animation_data.action is not None]
    data = [(bpy.data.armatures, arm.data)] + ([(bpy.data.meshes, body.data)] if body is not None else [])
    for obj in [o for o in (body, arm) if o is not None]:
        bpy.data.objects.remove(obj)
    for coll, block in data:
        if block.users == 0:
            coll.remove(block)
    for action in actions:
        if action.users == 0:
            bpy.data.actions.remove(action)


def _new_take_path(video: str) -> Path:
    """``<user dir>/takes/<video stem>-<UTC time>.motion.npz`` (kept for re-baking)."""
    stem = Path(bpy.path.abspath(video)).stem or "take"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return ui_compat.user_dir(prefs.ADDON_ID) / TAKES_DIR_NAME / f"{stem}-{stamp}.motion.npz"


class VIBE_OT_cancel(bpy.types.Operator):
    """Cancel the running engine (it stops at the next batch; a stuck engine is killed)"""

    bl_idname = "vibe.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_job() is not None or (prefs.RUNTIME.setup_job is not None
                                             and not prefs.RUNTIME.setup_job.finished)

    def execute(self, context: bpy.types.Context) -> set[str]:
        for job in (active_job(), prefs.RUNTIME.setup_job):
            if job is not None and not job.finished:
                job.request_cancel()
        _set_status("Cancelling…")
        self.report({"INFO"}, "Cancelling: the engine stops after its current step")
        return {"FINISHED"}


class VIBE_OT_check_engine(_ModalJob, bpy.types.Operator):
    """Run the engine's 'doctor': versions, device and model files"""

    bl_idname = "vibe.check_engine"
    bl_label = "Check Engine"

    def _prepare(self, context: bpy.types.Context) -> None:
        engine = prefs.engine_options(context)
        spec = engine_cmd.EngineSpec(python=engine.python, launcher=engine.launcher)
        engine_cmd.check_engine_python(spec)
        self._job = Job(engine_cmd.doctor_argv(spec, vibe_data=engine.vibe_data or None))

    def _refuse(self, message: str) -> set[str]:
        return _doctor_answer(self, [message], False)

    def _on_start(self, context: bpy.types.Context) -> None:
        prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok = ["Checking the engine…"], None

    def _finish(self, context: bpy.types.Context) -> set[str]:
        job = self._job
        if job.state is not JobState.DONE:
            return _doctor_answer(self, [job.error], False)
        return _doctor_answer(self, doctor_lines(job), True)


def doctor_lines(job: Job) -> list[str]:
    """Readable lines from a finished doctor job (hello + the ``doctor`` report)."""
    hello, data = job.hello, job.reports.get("doctor", {})
    lines = [f"Engine {hello.get('engine_version', '?')}, Python {hello.get('python', '?')}, "
             f"torch {hello.get('torch') or 'missing'}, device {hello.get('device', '?')}"
             + (" (CUDA available)" if hello.get("cuda") else "")]
    if data:
        lines.append("VIBE backend ready" if data.get("vibe_ready") else
                     "VIBE backend: no VIBE data folder (default backend only)")
    return lines + [f"Warning: {w}" for w in job.warnings]


def _doctor_answer(op: bpy.types.Operator, lines: list[str], ok: bool) -> set[str]:
    prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok = lines, ok
    op.report({"INFO"} if ok else {"ERROR"}, lines[0])
    return {"FINISHED"} if ok else {"CANCELLED"}


class VIBE_OT_setup_engine(_ModalJob, bpy.types.Operator):
    """Create the engine's own Python environment and install the engine into it (pip, no admin rights)"""

    bl_idname = "vibe.setup_engine"
    bl_label = "Set Up Engine"
    progress_label = "VIBE engine setup"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        job = prefs.RUNTIME.setup_job
        return job is None or job.finished

    def _prepare(self, context: bpy.types.Context) -> None:
        p = prefs.get_prefs(context)
        if p is None:
            raise VibeError("Enable the add-on first: the engine path is stored in its preferences")
        self._venv = prefs.engine_venv_dir()
        log_path = prefs.setup_log_path()
        log_path.unlink(missing_ok=True)  # our own log of the previous set-up
        vibe_data = bpy.path.abspath(p.vibe_data) if p.vibe_data else ""
        steps = engine_cmd.with_prepare_step(prefs.setup_steps(p), engine_cmd.venv_python(self._venv),
                                             vibe_data, device=p.device, precision=p.precision)
        self._job = CommandJob(steps, log_path=log_path, optional=(engine_cmd.PREPARE_STEP,))
        prefs.RUNTIME.setup_job = self._job

    def _on_start(self, context: bpy.types.Context) -> None:
        prefs.RUNTIME.setup_message = ""

    def _finish(self, context: bpy.types.Context) -> set[str]:
        job = self._job
        in_prepare = job.step_name == engine_cmd.PREPARE_STEP
        if job.state is JobState.CANCELLED and not in_prepare:
            prefs.RUNTIME.setup_message = "Engine set-up cancelled"
            self.report({"INFO"}, prefs.RUNTIME.setup_message)
            return {"CANCELLED"}
        if job.state not in (JobState.DONE, JobState.CANCELLED):
            prefs.RUNTIME.setup_message = f"{job.error} (log: {job.log_path})"
            self.report({"ERROR"}, prefs.RUNTIME.setup_message)
            return {"CANCELLED"}
        prefs.get_prefs(context).engine_python = engine_cmd.venv_python(self._venv)
        if ActiveRun.level == "ERROR":  # e.g. "No engine Python is set": no longer true
            _set_status("")
        doctor = next((i for i, (_, argv) in enumerate(job.steps) if argv[-1:] == ["doctor"]), None)
        ran = doctor is not None and doctor < len(job.outputs)
        checked = _doctor_from_lines(job.outputs[doctor]) if ran else []
        prefs.RUNTIME.doctor_lines, prefs.RUNTIME.doctor_ok = (checked, True) if checked else ([], None)
        prefs.RUNTIME.setup_message = f"Engine ready in {self._venv}" if checked else \
            f"Engine installed in {self._venv}"
        self.report({"INFO"}, prefs.RUNTIME.setup_message)
        return self._report_prepare(job)

    def _report_prepare(self, job: CommandJob) -> set[str]:
        """The optional compile step's outcome: a warning when it failed or was cancelled (runs then
        compile on demand or stay eager), never a failed set-up."""
        if job.state is JobState.CANCELLED:
            note = "preparing the compiled VIBE model was cancelled; runs compile it on demand or stay eager"
        elif job.warnings:
            note = f"the compiled VIBE model was not prepared ({job.warnings[-1]}); runs stay eager"
        else:
            return {"FINISHED"}
        prefs.RUNTIME.setup_message += f"; {note} (log: {job.log_path})"
        self.report({"WARNING"}, note)
        return {"FINISHED"}


def _doctor_from_lines(lines: list[str]) -> list[str]:
    """``doctor_lines`` of the set-up's last step (the engine's doctor, run as a plain command)."""
    job = Job(["doctor"])  # never started: only its message handling is used
    for text in lines:
        job.apply(decode_line(text))
    return doctor_lines(job) if job.hello else []


class VIBE_OT_hash_vibe_data(bpy.types.Operator):
    """Compute the sha256 of every VIBE data file (reads each file once; cached afterwards)"""

    bl_idname = "vibe.hash_vibe_data"
    bl_label = "Compute Checksums"

    def execute(self, context: bpy.types.Context) -> set[str]:
        p = prefs.get_prefs(context)
        if p is None or not p.vibe_data:
            self.report({"ERROR"}, "Choose the VIBE data folder in the preferences first")
            return {"CANCELLED"}
        cache = HashCache.from_json(p.vibe_data_hashes)
        try:
            report = check_folder(bpy.path.abspath(p.vibe_data), with_hashes=True, cache=cache)
        except OSError as exc:
            self.report({"ERROR"}, f"Cannot read the VIBE data folder ({exc}): check its permissions")
            return {"CANCELLED"}
        p.vibe_data_hashes = cache.to_json()
        self.report({"INFO"}, report.message())
        return {"FINISHED"}
