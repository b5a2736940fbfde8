"""Build the Blender extension zip: stage ``vibe_blender/`` + ``blender_manifest.toml`` (+ LICENSE)
into ``build/ext/vibe_mocap/``, then run Blender's own ``blender_ext.py build`` into ``dist/``.

The zip is self-contained for "Set Up Engine": ``engine/`` inside it holds the engine as one wheel
(``vibe_engine`` + the ``vibe_blender.core`` it imports + the free models and stand-in body under
``assets/``, where the engine looks for them next to its package) and ``engine/requirements.txt``
(the pinned engine requirements of ``requirements/engine.txt`` without the test/bpy pins). The wheel
is built by setuptools (``pip wheel --no-deps``, setuptools fetched into pip's isolated build env) from
a staged copy.

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
ENGINE_DIR = "engine"  # inside the extension: the engine wheel + requirements.txt (runner.engine_cmd)
ENGINE_REQUIREMENTS = "requirements/engine.txt"
NOT_ENGINE_PINS = ("pytest", "bpy")  # test / Blender-module pins of requirements/engine.txt
ENGINE_ASSETS = ("assets/models", "assets/body")
ASSET_PATTERNS = ["*.tflite", "*.npz", "*.txt", "*.md"]
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


def engine_requirements(repo: Path = REPO) -> str:
    """requirements/engine.txt without comments and the test/bpy pins (what the engine venv needs)."""
    keep = []
    for line in (repo / ENGINE_REQUIREMENTS).read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        name = text.split("=", 1)[0].split("<", 1)[0].split(">", 1)[0].strip().lower()
        if text and name not in NOT_ENGINE_PINS:
            keep.append(text)
    return "\n".join(keep) + "\n"


def _wheel_pyproject(repo: Path) -> str:
    """pyproject.toml of the engine wheel: the project table of the repo's, assets as package data."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    scripts = "".join(f'{k} = "{v}"\n' for k, v in project.get("scripts", {}).items())
    return (f'[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{project["name"]}"\nversion = "{project["version"]}"\n'
            f'requires-python = "{project["requires-python"]}"\n'
            f'dependencies = [{", ".join(repr(d).replace(chr(39), chr(34)) for d in project["dependencies"])}]\n\n'
            f'[project.scripts]\n{scripts}\n'
            '[tool.setuptools.packages.find]\ninclude = ["vibe_engine*", "vibe_blender*", "assets*"]\n'
            'namespaces = true\n\n[tool.setuptools.package-data]\n'
            f'"*" = [{", ".join(chr(34) + p + chr(34) for p in ASSET_PATTERNS)}]\n')


def build_engine_wheel(dest: Path, work: Path, repo: Path = REPO) -> Path:
    """Build the engine wheel into ``dest`` from a staged copy under ``work``; returns its path."""
    src = work / "engine-src"
    if src.exists():
        shutil.rmtree(src)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("vibe_engine", PACKAGE, *ENGINE_ASSETS):
        shutil.copytree(repo / name, src / name, ignore=ignore)
    (src / "pyproject.toml").write_text(_wheel_pyproject(repo), encoding="utf-8")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--disable-pip-version-check", "-q", "-w", str(dest), str(src)],
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, cwd=work)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise BuildError(f"building the engine wheel failed (rc {done.returncode}): "
                         f"{(done.stdout + done.stderr).strip()[-2000:]}")
    (dest / "requirements.txt").write_text(engine_requirements(repo), encoding="utf-8")
    return wheels[0]


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
    build_engine_wheel(staged / ENGINE_DIR, build_dir)
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
