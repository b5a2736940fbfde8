"""Add-on preferences: where the engine is, the VIBE data folder, device and precision.

Why the engine Python is not ``sys.executable`` by default: inside Blender, ``sys.executable`` is
Blender's bundled interpreter (or, with Debian's Blender, whatever python3 is first on PATH; in the
bpy module, the host venv). It has no torch, and installing torch into it is the "pip into
Blender" trap (admin rights, broken Blender updates). The engine therefore runs in its own
interpreter: "Set up engine" creates ``<user dir>/vibe_engine_venv`` and installs the engine there,
or the user points ``engine_python`` at an existing one.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..core.errors import UserInputError
from ..core.settings import DEVICE_CHOICES, INSTALL_SOURCE_CHOICES, PRECISION_CHOICES, EngineOptions, enum_items
from ..core.vibe_data import HashCache, check_folder
from ..runner import engine_cmd
from . import ui_compat

#: ``bl_idname`` of the preferences = the add-on's module name (``vibe_blender`` when enabled as
#: a legacy add-on from a checkout, ``bl_ext.<repo>.vibe_mocap`` as an extension).
ADDON_ID = __package__.rpartition(".")[0]
#: The add-on's own folder (the extension's: it holds ``engine/`` with the bundled engine wheel).
ADDON_ROOT = Path(__file__).resolve().parents[1]
DEVICE_ITEMS = enum_items(DEVICE_CHOICES)
PRECISION_ITEMS = enum_items(PRECISION_CHOICES)
SOURCE_ITEMS = enum_items(INSTALL_SOURCE_CHOICES)
BYTES_PER_MB = 1e6
SHOWN_SHA_CHARS = 16


@dataclass
class PrefsRuntime:
    """State shown in the preferences that is not saved: the engine check answer, setup job."""

    doctor_lines: list[str] = field(default_factory=list)
    doctor_ok: bool | None = None
    setup_job: object | None = None
    setup_message: str = ""


RUNTIME = PrefsRuntime()


def get_prefs(context: bpy.types.Context | None = None) -> "VibePreferences | None":
    """The add-on's preferences, or None when it was registered without being enabled as an add-on."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return None if addon is None else addon.preferences


def engine_options(context: bpy.types.Context | None = None) -> EngineOptions:
    """EngineOptions from the preferences (defaults when there are none)."""
    prefs = get_prefs(context)
    if prefs is None:
        return EngineOptions()
    return EngineOptions(
        python=bpy.path.abspath(prefs.engine_python) if prefs.engine_python else "",
        launcher=engine_cmd.parse_launcher(prefs.engine_command) if prefs.engine_command.strip() else (),
        vibe_data=bpy.path.abspath(prefs.vibe_data) if prefs.vibe_data else "",
        device=prefs.device, precision=prefs.precision)


def engine_venv_dir() -> str:
    """Where "Set up engine" creates the engine venv."""
    return os.fspath(ui_compat.user_dir(ADDON_ID) / engine_cmd.VENV_DIR_NAME)


def setup_log_path() -> Path:
    """The log of the last "Set Up Engine" (every pip line), next to the engine venv."""
    return ui_compat.user_dir(ADDON_ID) / engine_cmd.SETUP_LOG_NAME


def blender_python() -> str:
    """Blender's own interpreter when it is a Python (a Blender program's bundled one, or the bpy
    module's host); "" when ``sys.executable`` is the Blender binary (it must not be probed)."""
    name = os.path.basename(sys.executable or "").lower()
    return sys.executable if name.startswith("python") else ""


def setup_steps(p: "VibePreferences") -> list[tuple[str, list[str]]]:
    """The "Set Up Engine" steps for the preferences ``p``; raises UserInputError."""
    base = engine_cmd.find_base_python(bpy.path.abspath(p.base_python) if p.base_python else "",
                                       blender_python())
    bundled = engine_cmd.bundled_engine(ADDON_ROOT)
    if bundled is None:  # a checkout enabled as a legacy add-on: the packages named in the preferences
        return engine_cmd.setup_steps(base, engine_venv_dir(), tuple(p.engine_packages.split()),
                                      p.torch_index_url.strip() or None)
    custom = p.torch_index_url.strip()
    torch_index = "" if p.install_source == "index" else (custom if custom != engine_cmd.TORCH_CPU_INDEX else None)
    wheelhouse = bpy.path.abspath(p.wheelhouse) if p.install_source == "offline" else None
    if p.install_source == "offline" and not p.wheelhouse:
        raise UserInputError("Choose the wheelhouse folder for the offline set-up first")
    return engine_cmd.engine_setup_steps(base, engine_venv_dir(), bundled, device=p.device,
                                         torch_index=torch_index, wheelhouse=wheelhouse)


class VibePreferences(bpy.types.AddonPreferences):
    """Engine location, model data, device; buttons to check and set up the engine."""

    bl_idname = ADDON_ID

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="Interpreter of the engine environment (has torch). Not Blender's own Python: "
                    "use 'Set Up Engine' to create one")
    vibe_data: StringProperty(
        name="VIBE Data Folder", subtype="DIR_PATH",
        description="Folder with the official VIBE files (vibe_model_wo_3dpw.pth.tar, "
                    "spin_model_checkpoint.pth.tar, ...). Empty: the engine's default backend")
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="cpu")
    precision: EnumProperty(name="Precision", items=PRECISION_ITEMS, default="fp32")
    show_advanced: BoolProperty(name="Advanced", default=False)
    base_python: StringProperty(
        name="Base Python", subtype="FILE_PATH",
        description="Python used only to create the engine venv. Empty: the Python Blender runs "
                    "on (nothing is installed into it)")
    engine_packages: StringProperty(
        name="Engine Packages", default=" ".join(engine_cmd.DEFAULT_ENGINE_PACKAGES),
        description="What 'Set Up Engine' installs with pip (names, wheel files or folders)")
    install_source: EnumProperty(name="Install From", items=SOURCE_ITEMS, default="online")
    wheelhouse: StringProperty(
        name="Wheelhouse", subtype="DIR_PATH",
        description="Folder with every wheel the engine needs (pip download -r engine/requirements.txt), "
                    "for a set-up without network")
    torch_index_url: StringProperty(
        name="Torch Index", default=engine_cmd.TORCH_CPU_INDEX,
        description="Extra pip index for torch. Left at the CPU index, Set Up Engine picks PyTorch's "
                    "index for the Device (CPU or CUDA); another URL is used as given")
    engine_command: StringProperty(
        name="Engine Command Override",
        description="Replaces '<engine python> -m vibe_engine' (developers, tests); split like a "
                    "shell command but never run by a shell")
    vibe_data_hashes: StringProperty(name="Checksum Cache", options={"HIDDEN"},
                                     description="sha256 of the VIBE data files, as JSON")

    def draw(self, context: bpy.types.Context) -> None:
        self._draw_engine(self.layout.box())
        self._draw_data(self.layout.box())
        self._draw_advanced(self.layout.box())

    def _draw_engine(self, box: bpy.types.UILayout) -> None:
        box.label(text="Engine", icon="SCRIPT")
        box.prop(self, "engine_python")
        if not self.engine_python and not self.engine_command:
            box.label(text="Not set up: the engine runs in its own Python with torch, never in Blender's.",
                      icon="INFO")
        row = box.row()
        row.prop(self, "device")
        row.prop(self, "precision")
        row = box.row()
        row.prop(self, "install_source")
        if self.install_source == "offline":
            box.prop(self, "wheelhouse")
        row = box.row()
        row.operator("vibe.check_engine", icon="VIEWZOOM")
        row.operator("vibe.setup_engine", icon="IMPORT")
        _draw_setup_status(box)
        for line in RUNTIME.doctor_lines:
            box.label(text=line, icon="CHECKMARK" if RUNTIME.doctor_ok else "ERROR")

    def _draw_data(self, box: bpy.types.UILayout) -> None:
        box.label(text="VIBE Data", icon="FILE_FOLDER")
        box.prop(self, "vibe_data")
        if not self.vibe_data:
            return
        report = check_folder(bpy.path.abspath(self.vibe_data), cache=HashCache.from_json(self.vibe_data_hashes))
        box.label(text=report.message(), icon="CHECKMARK" if report.ok else "ERROR")
        col = box.column(align=True)
        for f in report.files:
            size = f"{f.size / BYTES_PER_MB:.1f} MB" if f.present else "missing"
            sha = f"  sha256 {f.sha256[:SHOWN_SHA_CHARS]}…" if f.sha256 else ""
            col.label(text=f"{f.name}: {size}{sha}", icon="CHECKBOX_HLT" if f.present else "CHECKBOX_DEHLT")
        box.operator("vibe.hash_vibe_data", icon="LOCKED")

    def _draw_advanced(self, box: bpy.types.UILayout) -> None:
        box.prop(self, "show_advanced", icon="TRIA_DOWN" if self.show_advanced else "TRIA_RIGHT")
        if self.show_advanced:
            box.prop(self, "base_python")
            box.prop(self, "engine_packages")
            box.prop(self, "torch_index_url")
            box.prop(self, "engine_command")


def _draw_setup_status(box: bpy.types.UILayout) -> None:
    """The running set-up (step, progress, pip's latest line, Cancel) or its outcome, and the log."""
    job = RUNTIME.setup_job
    if job is not None and not job.finished:
        ui_compat.draw_progress(box, job.fraction, f"{job.step_name} ({job.step_index + 1}/{len(job.steps)})")
        if job.last_line:
            box.label(text=job.last_line[:120])
        box.operator("vibe.cancel", icon="CANCEL")
    elif RUNTIME.setup_message:
        box.label(text=RUNTIME.setup_message)
    if job is not None and job.log_path is not None:
        box.label(text=f"Log: {job.log_path}", icon="TEXT")
