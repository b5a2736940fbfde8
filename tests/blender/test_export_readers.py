"""Every export read by the readers that game engines and DCCs use, against the motion file.

Readers (installed by ``make readers``, part of ``make test``; a missing one fails, never skips):
the Autodesk FBX SDK (via FBX2glTF, npm ``fbx2gltf``), Assimp (Debian ``assimp-utils``), the Khronos
glTF validator (npm ``gltf-validator``), bvhio (PyPI) and a root-positions-only BVH reader.
Reference: joint heads computed from the motion file by the core (numpy), not by Blender.
Checked per file: first key at 0 s (or the person's first video frame), last at (T−1)/fps, frame
count and fps, take name, bone names, joint positions (≤ 0.1 mm, float32 files), influences per
vertex, default transforms = rest pose (FBX SDK), BVH channel layout.
"""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from tests.blender.fbx_reader import read_fbx  # noqa: E402
from tests.blender.readers import assimp_xml, bvh, gltf, tools  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 600
#: Files store float32 (FBX/glTF) or 6 decimals (BVH); joints are ≤ 2 m from the origin:
#: float32 rounding (2 m · 2⁻²³ ≈ 0.24 µm per step) stays far below this bound.
MAX_JOINT_ERROR_M = 1e-4
TIME_TOLERANCE_S = 1e-6
KTIME = 46186158000
#: Blender world (Z up, −Y forward) → a Y-up file: (x, y, z) → (x, z, −y).
Y_UP = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
IDENTITY = np.eye(3)
#: What each reader sees of each FBX preset: (axis map from Blender world, scale from metres).
#: The FBX SDK (FBX2glTF) converts every file to Y-up metres; Assimp keeps the file's own numbers.
FBX_SDK_SPACE = {"generic": (Y_UP, 1.0), "unity": (Y_UP, 1.0), "unreal": (Y_UP, 1.0)}
ASSIMP_SPACE = {"generic": (Y_UP, 100.0), "unity": (Y_UP, 1.0), "unreal": (IDENTITY, 100.0)}
FBX_FILES = ["p1_generic.fbx", "p1_unity.fbx", "p1_unreal.fbx", "p2_unity.fbx", "p2_clip_unity.fbx"]
GLB_FILES = ["p1.glb", "p2.glb", "p2_clip.glb"]
BVH_FILES = ["p1.bvh", "p2.bvh", "p2_clip.bvh", "p1_positions.bvh"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Run readers/export_worker.py once: {file: entry}, reference arrays, result."""
    out = tmp_path_factory.mktemp("readers")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(REPO)}
    worker = REPO / "tests" / "blender" / "readers" / "export_worker.py"
    done = subprocess.run([sys.executable, str(worker), str(out)], capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    with np.load(out / "reference.npz") as npz:
        ref = {k: npz[k] for k in npz.files}
    return result, ref, out


def _entry(exported, name):
    result, ref, out = exported
    e = result["exports"][name]
    track = result["tracks"][str(e["track"])]
    return e, track, ref[f"heads{e['track']}"], ref[f"rest{e['track']}"], out, result["fps"]


def _expected_frames(e, track, fps):
    """Reference row per file key: the person's rows, from their first video frame (or 0 for clip)."""
    first = round(e["report"]["first_key_s"] * fps)
    return first, first + e["report"]["frames"] - 1


def _map(points, space):
    axes, scale = space
    return scale * points @ axes.T


def _best_space(got, ref):
    """The signed axis permutation and scale (1, 100 or 0.01) that best maps ref onto got."""
    best = None
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            axes = np.zeros((3, 3))
            axes[range(3), perm] = signs
            for scale in (1.0, 100.0, 0.01):
                err = np.abs(got - _map(ref, (axes, scale))).max() / scale
                if best is None or err < best[0]:
                    best = (err, axes, scale)
    return best


def _cluster_influences(path):
    """Max skin clusters weighting one vertex in an FBX file (our binary reader)."""
    counts = {}
    for d in read_fbx(path).find("Objects").find_all("Deformer"):
        if d.props[2] != "Cluster" or d.find("Indexes") is None:
            continue
        idx, w = d.find("Indexes").props[0], d.find("Weights").props[0]
        for i in idx[w > 0]:
            counts[int(i)] = counts.get(int(i), 0) + 1
    return max(counts.values(), default=0)


def _check_influences(e, got):
    limit = e["report"]["max_influences"]
    if limit is None:  # all kept (Assimp drops the tiniest weights of the synthetic body: ≤)
        assert 4 < got <= e["report"]["max_influences_before"]
    else:
        assert got <= limit
    return got


@pytest.mark.parametrize("name", FBX_FILES)
def test_fbx_read_by_fbx_sdk(exported, name):
    e, track, heads, rest, out, fps = _entry(exported, name)
    rep, preset = e["report"], e["kwargs"]["preset"]
    glb_path, facts = tools.fbx_sdk_to_gltf(Path(e["path"]), out, fps)
    first, last = _expected_frames(e, track, fps)
    assert facts["takes"] == [(rep["take"], first, last)]  # the FBX SDK's take time span, in frames
    doc = gltf.load(glb_path)
    times = gltf.animation_times(doc) + first / fps  # FBX2glTF writes times from the take's start
    assert len(times) == rep["frames"]
    np.testing.assert_allclose([times[0], times[-1]], [rep["first_key_s"], rep["last_key_s"]],
                               atol=TIME_TOLERANCE_S)
    names = track["names"]
    assert sorted(n["name"] for n in doc.doc["nodes"] if n.get("name") in names) == sorted(names)
    rows = np.rint(times * fps).astype(int) - first
    ref = heads[rows][:, :24]
    got = gltf.world_positions(doc, names[:24])
    err, axes, scale = _best_space(got, ref)
    assert (axes.tolist(), scale) == (FBX_SDK_SPACE[preset][0].tolist(), FBX_SDK_SPACE[preset][1])
    joint_err = np.abs(got - _map(ref, FBX_SDK_SPACE[preset])).max()
    assert joint_err <= MAX_JOINT_ERROR_M
    defaults = gltf.world_positions(doc, names, animation=None)[0]
    default_err = np.abs(defaults - _map(rest, FBX_SDK_SPACE[preset])).max()
    assert default_err <= MAX_JOINT_ERROR_M  # FBX default transforms = the rest pose
    settings = {k: v[0] for k, v in read_fbx(e["path"]).find("GlobalSettings").properties70().items()}
    assert (settings["TimeSpanStart"], settings["TimeSpanStop"]) == (
        round(rep["first_key_s"] * KTIME), round(rep["last_key_s"] * KTIME))
    key_times = np.concatenate([c.find("KeyTime").props[0] for c in
                                read_fbx(e["path"]).find("Objects").find_all("AnimationCurve")])
    np.testing.assert_allclose([key_times.min(), key_times.max()],  # KTime in the file, ±1 tick rounding
                               [rep["first_key_s"] * KTIME, rep["last_key_s"] * KTIME], rtol=0, atol=1)
    influences = _check_influences(e, _cluster_influences(e["path"]))
    print(f"\nFBX SDK {name}: take {facts['takes'][0]}, first {times[0]:.3f} s, last {times[-1]:.3f} s, "
          f"{len(times)} keys, joint error {joint_err * 1e3:.4f} mm, default-vs-rest {default_err * 1e3:.4f} mm, "
          f"influences {influences} (limit {rep['max_influences']}, pruning error {rep['pruning_error_m'] * 1e3:.2f} mm); "
          f"file UnitScaleFactor {settings['UnitScaleFactor']} UpAxis {settings['UpAxis']} FrontAxis "
          f"{settings['FrontAxis']}; FBX SDK reads Blender (x,y,z) as {axes.astype(int).tolist()} × {scale} (m)")


@pytest.mark.parametrize("name", FBX_FILES)
def test_fbx_read_by_assimp(exported, name):
    e, track, heads, rest, out, fps = _entry(exported, name)
    rep, preset = e["report"], e["kwargs"]["preset"]
    scene = assimp_xml.load(tools.assimp_dump(Path(e["path"]), out))
    assert [a[0] for a in scene.animations] == [rep["take"]] and scene.animations[0][1] == fps
    first, _ = _expected_frames(e, track, fps)
    times = assimp_xml.key_times_s(scene) + first / fps  # Assimp keys count from the take's start
    assert len(times) == rep["frames"]
    np.testing.assert_allclose([times[0], times[-1]], [rep["first_key_s"], rep["last_key_s"]],
                               atol=TIME_TOLERANCE_S)
    names = track["names"]
    assert set(names) <= set(scene.local)
    ref = heads[np.rint(times * fps).astype(int) - first][:, :24]
    got = assimp_xml.world_positions(scene, names[:24])
    err, axes, scale = _best_space(got, ref)
    assert (axes.tolist(), scale) == (ASSIMP_SPACE[preset][0].tolist(), ASSIMP_SPACE[preset][1])
    joint_err = np.abs(got - _map(ref, ASSIMP_SPACE[preset])).max() / scale
    assert joint_err <= MAX_JOINT_ERROR_M
    influences = _check_influences(e, assimp_xml.max_influences(scene))
    print(f"\nAssimp {name}: first {times[0]:.3f} s, last {times[-1]:.3f} s, {len(times)} keys, joint error "
          f"{joint_err * 1e3:.4f} mm, influences {influences}; Assimp reads Blender (x,y,z) as "
          f"{axes.astype(int).tolist()} × {scale}")


@pytest.mark.parametrize("name", GLB_FILES)
def test_gltf_read_by_validator_and_parser(exported, name):
    e, track, heads, rest, out, fps = _entry(exported, name)
    rep = e["report"]
    report = tools.validate_gltf(Path(e["path"]))
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    assert report["info"]["maxInfluences"] <= rep["max_influences"]
    doc = gltf.load(e["path"])
    assert [a["name"] for a in doc.doc["animations"]] == [rep["take"]]
    times = gltf.animation_times(doc)
    assert len(times) == rep["frames"]
    np.testing.assert_allclose([times[0], times[-1]], [rep["first_key_s"], rep["last_key_s"]],
                               atol=TIME_TOLERANCE_S)
    names = track["names"]
    first, _ = _expected_frames(e, track, fps)
    got = gltf.world_positions(doc, names[:24])
    joint_err = np.abs(got - _map(heads[np.rint(times * fps).astype(int) - first][:, :24], (Y_UP, 1.0))).max()
    assert joint_err <= MAX_JOINT_ERROR_M
    influences = gltf.max_influences(doc)
    assert influences <= rep["max_influences"]
    defaults = gltf.world_positions(doc, names, animation=None)[0]
    default_err = np.abs(defaults - _map(rest, (Y_UP, 1.0))).max()
    assert default_err <= MAX_JOINT_ERROR_M
    print(f"\nglTF {name}: validator {report['issues']['numErrors']} errors / {report['issues']['numWarnings']} "
          f"warnings, first {times[0]:.3f} s, last {times[-1]:.3f} s, {len(times)} keys, joint error "
          f"{joint_err * 1e3:.4f} mm, influences {influences} (pruning error {rep['pruning_error_m'] * 1e3:.2f} mm), "
          f"default-vs-rest {default_err * 1e3:.4f} mm")


@pytest.mark.parametrize("name", BVH_FILES)
def test_bvh_read_by_bvhio_and_root_only_reader(exported, name):
    e, track, heads, rest, out, fps = _entry(exported, name)
    rep = e["report"]
    parsed = bvh.read(e["path"])
    assert len(parsed.motion) == rep["frames_written"]
    assert parsed.frame_time == pytest.approx(1 / fps, abs=5e-7)  # written with 6 decimals
    standard = rep["layout"] == "standard"
    assert len(parsed.channels[0]) == 6
    assert all(len(c) == (3 if standard else 6) for c in parsed.channels[1:])
    merged = parsed.names[0] == "pelvis"
    assert sorted(parsed.names) == sorted(track["names"][:24] if merged else track["names"])
    # file frame k ↔ reference row: video timing pads a late person's lead-in with the first pose
    start = round(rep["first_key_s"] * fps)
    lead = rep["frames_written"] - rep["frames"]
    rows = np.clip(np.arange(len(parsed.motion)) - lead, 0, None)
    ref = _map(heads[rows], (Y_UP, 1.0))
    joints = track["names"][:24]
    index = [track["names"].index(n) for n in joints]
    got = bvh.bvhio_positions(e["path"], joints)
    joint_err = np.abs(got - ref[:, index]).max()
    assert joint_err <= MAX_JOINT_ERROR_M
    root_only = bvh.root_only_positions(parsed)[:, [parsed.names.index(n) for n in joints]]
    pelvis_gap = np.abs(root_only[:, 0] - got[:, 0]).max()
    if standard:
        assert pelvis_gap <= MAX_JOINT_ERROR_M  # both readers give the same pelvis path
        assert np.abs(root_only - got).max() <= MAX_JOINT_ERROR_M
    print(f"\nBVH {name}: {len(parsed.motion)} frames (lead-in {lead}, person from video frame "
          f"{start - (0 if lead else 0)}), first frame at 0.000 s = video {'frame 0' if e['kwargs'].get('timing') != 'clip' else 'clip start'}, "
          f"last at {(len(parsed.motion) - 1) / fps:.3f} s, root {parsed.names[0]}, bvhio joint error "
          f"{joint_err * 1e3:.4f} mm, root-only vs bvhio pelvis {pelvis_gap * 1e3:.4f} mm")


def test_pruning_error_matches_core_skinning(exported):
    """The export's measured pruning error equals linear-blend skinning by the core on the motion."""
    result, _, _ = exported
    for name, e in result["exports"].items():
        if e["report"].get("max_influences") == 4:
            core = result["tracks"][str(e["track"])]["pruning_error_core_m"]
            assert e["report"]["pruning_error_m"] == pytest.approx(core, abs=1e-5), name


def test_takes_are_unique_per_person(exported):
    result, _, _ = exported
    takes = {e["track"]: e["report"]["take"] for e in result["exports"].values() if "take" in e["report"]
             and e["report"]["format"] != "bvh"}
    assert takes == {1: "VIBE_1_walk", 2: "VIBE_2_walk"}
