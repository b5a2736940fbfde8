"""Code-structure rules (issue 17): every shared constant is written once, there are no import
cycles (lazy imports inside functions included), and no add-on or engine module is over 500 lines.

Text and AST checks over the source tree; nothing is imported or run.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Where the product's code lives (tests state known answers and may repeat them).
CODE_DIRS = ("vibe_engine", "vibe_blender", "tools", "benchmarks")
PACKAGES = ("vibe_engine", "vibe_blender")
MAX_MODULE_LINES = 500


def _sources(dirs: tuple[str, ...] = CODE_DIRS) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for d in dirs for p in sorted((REPO / d).rglob("*.py"))}


def _files_matching(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [str(p.relative_to(REPO)) for p, text in _sources().items() if rx.search(text)]


# Each literal below is the one definition of a constant; the regexes also catch it written with
# other spacing or brackets. (pattern, the one file allowed to contain it)
SINGLE_SOURCE = [
    # SMPL parents table
    (r"-1,\s*0,\s*0,\s*0,\s*1,\s*2,\s*3,\s*4,\s*5,\s*6,\s*7,\s*8,\s*9,\s*9,\s*9,\s*12", "vibe_blender/core/smpl.py"),
    # SMPL joint names
    (r"\"pelvis\",\s*\"left_hip\",\s*\"right_hip\"", "vibe_blender/core/smpl.py"),
    # option choices: root motion, frame-rate mode, device, precision (value → label tables)
    (r"\"in_place\"\s*[,:]", "vibe_blender/core/settings.py"),
    (r"[\(\[]\s*\"world\",\s*\"in_place\"", None),
    (r"[\(\[]\s*\"(fp32|bf16)\",\s*\"(fp32|bf16)\"", None),
    (r"[\(\[]\s*\"(cpu|cuda)\",\s*\"(cpu|cuda)\"", None),
    (r"[\(\[]\s*\"(scene|video)\",\s*\"(scene|video)\"", None),
    (r"\"bf16\":\s*\(", "vibe_blender/core/settings.py"),
    # the IoU formula (intersection over union) and the joint chain of the forward kinematics
    (r"inter\s*/\s*np\.", "vibe_engine/people/detect.py"),
    (r"g\[:, idx\] = gp @ rot\[:, idx\]", "vibe_blender/core/body.py"),
]


@pytest.mark.parametrize("pattern, home", SINGLE_SOURCE)
def test_each_constant_is_defined_once(pattern, home):
    assert _files_matching(pattern) == ([home] if home else [])


def test_option_choices_come_from_core_settings():
    from vibe_blender.core import bake_plan, settings
    from vibe_blender.runner import engine_cmd

    assert settings.ROOT_MOTION_MODES == ("world", "in_place", "off") == bake_plan.ROOT_MOTION_MODES
    assert settings.PRECISIONS == ("fp32", "bf16") == engine_cmd.PRECISIONS
    assert settings.DEVICES == ("cpu", "cuda") == engine_cmd.DEVICES
    assert [item[:2] for item in settings.enum_items(settings.FPS_CHOICES)] == [
        ("scene", "Keep Scene"), ("video", "Video Rate")]


def test_the_smpl_tables_are_shared():
    from vibe_blender.core import motion_file, skeleton, smpl

    assert motion_file.SMPL_PARENTS is smpl.SMPL_PARENTS and motion_file.SMPL_JOINT_NAMES is smpl.SMPL_JOINT_NAMES
    assert skeleton.BONE_NAMES[:24] == smpl.SMPL_JOINT_NAMES
    assert all(p < j for j, p in enumerate(smpl.SMPL_PARENTS))


# ----------------------------------------------------------------------------- import graph


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules imported anywhere in ``path`` (module level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = {f"{base}.{a.name}" for a in node.names}
            # ``from package import module`` needs the module, not the package's other modules
            found.update(names & modules or {base})
    return {m for m in found if m in modules and m != name}


def _import_graph() -> dict[str, set[str]]:
    paths = [p for d in PACKAGES for p in (REPO / d).rglob("*.py")]
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_even_through_lazy_imports():
    graph = _import_graph()
    assert "vibe_engine.pipeline" in graph and "vibe_engine.backend" in graph["vibe_engine.pipeline"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_engine_self_imports_are_absolute():
    relative = [str(p.relative_to(REPO)) for p, text in _sources(("vibe_engine",)).items()
                if re.search(r"^\s*from \.", text, re.M)]
    assert relative == []


def test_no_module_over_500_lines():
    long = {str(p.relative_to(REPO)): text.count("\n") for p, text in _sources(PACKAGES).items()
            if text.count("\n") > MAX_MODULE_LINES}
    assert long == {}
