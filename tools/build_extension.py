"""Build the Blender extension zip: stage ``vibe_blender/`` + ``blender_manifest.toml`` (+ LICENSE)
into ``build/ext/vibe_mocap/``, then run Blender's own ``blender_ext.py build`` into ``dist/``.

``blender_ext.py`` is the stand-alone tool inside the bpy wheel
(``<bpy dir>/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py``, stdlib only); it is found
next to the ``bpy`` importable by this interpreter, or given with ``--blender-ext``.

Checks before building: the manifest version equals ``vibe_blender.__version__`` and ``bl_info``;
no module of the staged package imports ``vibe_blender`` absolutely (under Blender 4.2+ the package
is imported as ``bl_ext.<repo>.vibe_mocap``). The zip is validated after building.

    python tools/build_extension.py [--out-dir dist] [--build-dir build/ext] [--blender-ext PATH]
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "vibe_blender"
MANIFEST = "blender_manifest.toml"
EXTRA_FILES = ("LICENSE",)
TOOL_TIMEOUT_S = 300


class BuildError(Exception):
    """A check or the build tool failed (one-line message)."""


def find_blender_ext() -> Path:
    """``blender_ext.py`` of the newest Blender inside the importable bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise BuildError("bpy is not importable here: pass --blender-ext PATH/TO/blender_ext.py")
    candidates = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not candidates:
        raise BuildError(f"no blender_ext.py inside {Path(spec.origin).parent}: pass --blender-ext")
    return candidates[-1]


def read_manifest(repo: Path = REPO) -> dict:
    with open(repo / MANIFEST, "rb") as fh:
        return tomllib.load(fh)


def package_versions(repo: Path = REPO) -> tuple[str, str]:
    """(``__version__``, ``bl_info["version"]`` joined with dots), read without importing."""
    tree = ast.parse((repo / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = node.value
    version = ast.literal_eval(values["__version__"])
    bl_info = ast.literal_eval(values["bl_info"])
    return version, ".".join(str(v) for v in bl_info["version"])


def check_versions(repo: Path = REPO) -> str:
    """The common version; BuildError when manifest, __version__ and bl_info disagree."""
    manifest = read_manifest(repo)["version"]
    version, bl_version = package_versions(repo)
    if not manifest == version == bl_version:
        raise BuildError(f"versions differ: {MANIFEST} {manifest}, __version__ {version}, "
                         f"bl_info {bl_version}; make them equal")
    return version


def absolute_imports(root: Path) -> list[str]:
    """``file:line`` of every absolute ``vibe_blender`` import statement under ``root``."""
    hits = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(n == PACKAGE or n.startswith(PACKAGE + ".") for n in names):
                hits.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return hits


def stage(dest: Path, repo: Path = REPO) -> Path:
    """Copy the package, the manifest and LICENSE into ``dest`` (emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(repo / PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(repo / MANIFEST, dest / MANIFEST)
    for name in EXTRA_FILES:
        if (repo / name).is_file():
            shutil.copy2(repo / name, dest / name)
    hits = absolute_imports(dest)
    if hits:
        raise BuildError(f"absolute '{PACKAGE}' imports break the extension: {', '.join(hits)}; "
                         "use relative imports")
    return dest


def run_tool(blender_ext: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``blender_ext.py`` with this interpreter (it needs only the standard library)."""
    return subprocess.run([sys.executable, str(blender_ext), *args], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_S)


def build(out_dir: Path, build_dir: Path, blender_ext: Path | None = None) -> Path:
    """Stage, build and validate; returns the zip path."""
    version = check_versions()
    manifest = read_manifest()
    blender_ext = blender_ext or find_blender_ext()
    staged = stage(build_dir / manifest["id"])
    out_dir.mkdir(parents=True, exist_ok=True)  # blender_ext.py needs it to exist
    zip_path = out_dir / f"{manifest['id']}-{version}.zip"
    zip_path.unlink(missing_ok=True)
    done = run_tool(blender_ext, "build", "--source-dir", str(staged), "--output-dir", str(out_dir))
    if done.returncode != 0 or not zip_path.is_file():
        raise BuildError(f"blender_ext.py build failed (rc {done.returncode}): {(done.stdout + done.stderr).strip()}")
    checked = run_tool(blender_ext, "validate", str(zip_path))
    if checked.returncode != 0:
        raise BuildError(f"the built zip does not validate: {(checked.stdout + checked.stderr).strip()}")
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "dist")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "ext")
    parser.add_argument("--blender-ext", type=Path)
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.out_dir, args.build_dir, args.blender_ext)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
