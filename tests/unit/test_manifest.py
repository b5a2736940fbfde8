"""The extension manifest, the versions and the staged package (tools/build_extension.py)."""
from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

import vibe_blender

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("build_extension", REPO / "tools" / "build_extension.py")
build_extension = importlib.util.module_from_spec(_spec)
sys.modules["build_extension"] = build_extension
_spec.loader.exec_module(build_extension)


@pytest.fixture(scope="module")
def manifest() -> dict:
    with open(REPO / "blender_manifest.toml", "rb") as fh:
        return tomllib.load(fh)


def test_required_keys(manifest):
    for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type",
                "blender_version_min", "license"):
        assert key in manifest, key
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "vibe_mocap" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert 0 < len(manifest["permissions"]["files"]) <= 64  # Blender's limit
    assert "wheels" not in manifest  # the add-on needs only stdlib + Blender's numpy


def test_versions_agree(manifest):
    version = manifest["version"]
    assert version == vibe_blender.__version__
    assert version == ".".join(map(str, vibe_blender.bl_info["version"]))
    assert vibe_blender.bl_info["blender"] == (4, 2, 0)
    assert build_extension.check_versions() == version


def test_version_mismatch_is_refused(tmp_path):
    (tmp_path / "vibe_blender").mkdir()
    (tmp_path / "vibe_blender" / "__init__.py").write_text(
        '__version__ = "0.2.0"\nbl_info = {"version": (0, 2, 0)}\n')
    (tmp_path / "blender_manifest.toml").write_text('version = "0.1.0"\n')
    with pytest.raises(build_extension.BuildError, match="versions differ: blender_manifest.toml 0.1.0"):
        build_extension.check_versions(tmp_path)


def test_staged_package_is_self_contained(tmp_path):
    staged = build_extension.stage(tmp_path / "vibe_mocap")
    assert (staged / "blender_manifest.toml").is_file() and (staged / "__init__.py").is_file()
    assert (staged / "runner" / "job.py").is_file() and (staged / "bl" / "operators.py").is_file()
    assert not list(staged.rglob("__pycache__"))
    assert build_extension.absolute_imports(staged) == []


def test_absolute_imports_are_found_but_docstrings_ignored(tmp_path):
    (tmp_path / "a.py").write_text('"""from vibe_blender import x"""\nimport os\nfrom vibe_blender.core import y\n')
    (tmp_path / "b.py").write_text("import vibe_blender.runner as r\nfrom . import vibe_blender_like\n")
    assert build_extension.absolute_imports(tmp_path) == ["a.py:3", "b.py:1"]
