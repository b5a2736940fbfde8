"""The add-on's core and runner must import without bpy (they run in plain Python and the engine)."""
import subprocess
import sys


def test_core_imports_without_bpy():
    code = (
        "import sys; sys.modules['bpy'] = None; sys.modules['mathutils'] = None\n"
        "import importlib, pkgutil, vibe_blender, vibe_blender.core, vibe_blender.runner\n"
        "for pkg in (vibe_blender.core, vibe_blender.runner):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "assert 'torch' not in sys.modules, 'core must not import torch'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
