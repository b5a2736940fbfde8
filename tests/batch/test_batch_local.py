"""`vibe_engine batch` without Ray: sequential runs, inputs and manifests, the run manifest,
concurrent batches on one folder, the in-process engine mode, the Blender export, usage errors."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.batch import helpers as h
from vibe_engine.batch.inputs import InputError, expand_inputs
from vibe_engine.batch.ledger import Ledger
from vibe_engine.batch.main import batch_main

SEQ = ["--no-progress"]


def _manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sequential_batch_matches_single_runs_and_resume_skips(clips, references, tmp_path):
    out = tmp_path / "out"
    rc, report, err = h.finish_batch(h.batch([*clips[:2], "--out", out, *SEQ, "--", *h.RUN_OPTIONS]))
    assert rc == 0, err[-3000:]
    assert report["executor"] == "sequential" and report["counts"] == {"done": 2}
    for clip in clips[:2]:
        h.assert_same_motion(out / f"{clip.stem}.motion.npz", references[clip.stem])
    saved = (out / "batch_report.json").read_text()
    assert json.loads(saved)["counts"] == {"done": 2}
    # resume: a done clip is skipped; one whose motion file changed since is run again (the engine
    # replaces a motion file, never another kind of file)
    shutil.copyfile(references[clips[0].stem], out / f"{clips[1].stem}.motion.npz")
    rc, report, err = h.finish_batch(h.batch([*clips[:2], "--out", out, *SEQ, "--resume", "--",
                                              *h.RUN_OPTIONS]))
    assert rc == 0, err[-3000:]
    assert {c["name"]: c["status"] for c in report["clips"]} == {clips[0].stem: "skipped", clips[1].stem: "done"}
    h.assert_same_motion(out / f"{clips[1].stem}.motion.npz", references[clips[1].stem])


def test_two_batches_on_one_folder_at_once_both_complete(clips, references, tmp_path):
    out = tmp_path / "out"
    args = [*clips[2:4], "--out", out, *SEQ, "--", *h.RUN_OPTIONS]
    first, second = h.batch(args), h.batch(["--out", out, *clips[2:4], *SEQ, "--", *h.RUN_OPTIONS])  # options first
    for proc in (first, second):
        rc, report, err = h.finish_batch(proc)
        assert rc == 0 and report["counts"] == {"done": 2}, err[-3000:]
    records = h.ledger(out)  # every line whole and parseable
    assert sorted(r["event"] for r in records) == ["done"] * 4 + ["start"] * 4
    for clip in clips[2:4]:
        h.assert_same_motion(out / f"{clip.stem}.motion.npz", references[clip.stem])
    assert not list(out.glob("*.tmp*"))


def test_two_resuming_batches_on_one_folder_run_each_clip_once(clips, references, tmp_path):
    out = tmp_path / "out"
    args = [*clips[2:4], "--out", out, *SEQ, "--resume", "--", *h.RUN_OPTIONS]
    procs = [h.batch(args), h.batch(args)]
    status = Counter()
    for proc in procs:
        rc, report, err = h.finish_batch(proc)
        assert rc == 0, err[-3000:]
        status.update((c["name"], c["status"]) for c in report["clips"])
    assert status == {(c.stem, s): 1 for c in clips[2:4] for s in ("done", "skipped")}
    assert sorted(r["event"] for r in h.ledger(out)) == ["done"] * 2 + ["start"] * 2
    for clip in clips[2:4]:
        h.assert_same_motion(out / f"{clip.stem}.motion.npz", references[clip.stem])


def test_inprocess_engine_mode_matches_single_run(clips, references, tmp_path):
    out = tmp_path / "out"
    rc, report, err = h.finish_batch(h.batch([clips[4], "--out", out, *SEQ, "--engine-mode", "inprocess",
                                              "--", *h.RUN_OPTIONS]))
    assert rc == 0, err[-3000:]
    h.assert_same_motion(out / f"{clips[4].stem}.motion.npz", references[clips[4].stem])


def test_upload_hook_runs_per_clip_and_without_ray_auto_falls_back(clips, references, tmp_path):
    shim = tmp_path / "no_ray"  # a `ray` that cannot be imported, ahead of site-packages
    (shim / "ray").mkdir(parents=True)
    (shim / "ray" / "__init__.py").write_text("raise ImportError('No module named ray (test shim)')\n")
    out, backup = tmp_path / "out", tmp_path / "backup"
    backup.mkdir()
    hook = f"{sys.executable} -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' {{motion}} {backup}/{{name}}.npz"
    proc = subprocess.Popen([sys.executable, "-m", "vibe_engine", "batch", str(clips[0]), "--out", str(out), *SEQ,
                             "--ray", "auto", "--upload", hook, "--", *h.RUN_OPTIONS], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=h.env(PYTHONPATH=f"{shim}:{h.media.REPO}"))
    rc, report, err = h.finish_batch(proc)
    assert rc == 0, err[-3000:]
    assert report["executor"] == "sequential (ray not installed)" and "Ray is not installed" in err
    h.assert_same_motion(backup / f"{clips[0].stem}.npz", references[clips[0].stem])


def test_export_formats_run_the_blender_batch_per_clip(clips, tmp_path):
    pytest.importorskip("bpy")
    out = tmp_path / "out"
    rc, report, err = h.finish_batch(h.batch([clips[5], "--out", out, *SEQ, "--formats", "motion,bvh",
                                              "--", *h.RUN_OPTIONS]))
    assert rc == 0, err[-3000:]
    (clip,) = report["clips"]
    bvh = [Path(p) for p in clip["exports"] if p.endswith(".bvh")]
    assert len(bvh) == 1 and bvh[0].is_file() and bvh[0].parent.is_relative_to(out / "exports" / clips[5].stem)
    text = bvh[0].read_text()
    assert text.startswith("HIERARCHY") and f"Frames: {h.CLIP_FRAMES}" in text


def test_manifest_options_change_the_key(clips, tmp_path):
    manifest = _manifest(tmp_path / "list.jsonl", [{"video": str(clips[0])},
                                                   {"video": str(clips[0]), "no_smooth": True}])
    found = expand_inputs([str(manifest), str(clips[0].parent / "clip00*.mp4")])
    assert [c.options for c in found] == [{}, {"no_smooth": True}]  # the glob's clip000 is a duplicate
    from vibe_engine.batch.main import build_parser, make_plan
    from vibe_engine.cli import build_parser as build_parser_cli
    from vibe_engine.cli import make_config

    ns = build_parser().parse_args([str(manifest), "--out", str(tmp_path / "o")])
    plan = make_plan(ns, h.RUN_OPTIONS, tmp_path / "o", "test", False, (build_parser_cli, make_config))
    assert len(plan.specs) == 2 and plan.specs[0].key.split(":")[0] == plan.specs[1].key.split(":")[0]
    assert plan.specs[0].key != plan.specs[1].key and "--no-smooth" in plan.specs[1].run_argv
    assert len({s.out for s in plan.specs}) == 2  # same stem: names made unique


@pytest.mark.parametrize("args, words", [
    (["missing.mp4"], "input not found"),
    (["{clip}", "--formats", "obj"], "unknown format"),
    (["{clip}", "--", "--min-frames", "0"], "bad run option"),
    (["{clip}", "--", "--out", "x.npz"], "set by the batch"),
    (["{bad_manifest}"], "expected true or false"),
])
def test_usage_errors_exit_2_and_write_nothing(clips, tmp_path, capsys, args, words):
    bad = _manifest(tmp_path / "bad.jsonl", [{"video": str(clips[0]), "no_smooth": "maybe"}])
    args = [a.format(clip=clips[0], bad_manifest=bad) for a in args]
    out = tmp_path / "out"
    from vibe_engine.cli import build_parser, make_config

    assert batch_main([args[0], "--out", str(out), *args[1:]], build_parser, make_config) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_ledger_finished_needs_done_and_the_recorded_output(tmp_path):
    ledger, out = Ledger(tmp_path / "batch.jsonl"), tmp_path / "a.motion.npz"
    out.write_bytes(b"motion")
    import hashlib

    digest = hashlib.sha256(b"motion").hexdigest()
    ledger.append("start", "k")
    assert not ledger.finished("k", out)  # partial
    ledger.append("done", "k", output_sha256=digest)
    assert ledger.finished("k", out)
    with open(ledger.path, "a") as fh:
        fh.write('{"event": "start", "key": "k"')  # a torn line from a crash is ignored
    assert ledger.finished("k", out)
    out.write_bytes(b"changed")
    assert not ledger.finished("k", out)


def test_a_task_interrupted_after_its_done_record_is_reported_done(tmp_path):
    """Ctrl-C (or ray.cancel) between the task's own ``done`` record and its return: the clip is done
    in the report too; only this run's record of the same output counts."""
    import hashlib

    from vibe_engine.batch.main import _finished_anyway
    from vibe_engine.batch.task import TaskSpec

    ledger, out = Ledger(tmp_path / "batch.jsonl"), tmp_path / "a.motion.npz"
    out.write_bytes(b"motion")
    spec = TaskSpec(key="k", name="a", video="a.mp4", out=str(out), run_argv=(), ledger=str(ledger.path),
                    lock=str(tmp_path / "k.lock"), run_id="run1")
    cancelled = {"key": "k", "status": "cancelled", "seconds": 0.0, "frames": None, "people": [],
                 "error": {"code": "CANCELLED"}, "exports": [], "output_sha256": None}
    assert _finished_anyway(ledger, spec, cancelled) is cancelled  # nothing recorded: still cancelled
    ledger.append("done", "k", run_id="run2", output_sha256=hashlib.sha256(b"motion").hexdigest(), frames=7)
    assert _finished_anyway(ledger, spec, cancelled)["status"] == "cancelled"  # another run's record
    ledger.append("done", "k", run_id="run1", output_sha256=hashlib.sha256(b"motion").hexdigest(), frames=9,
                  seconds=1.5, people=[0], exports=[])
    done = _finished_anyway(ledger, spec, cancelled)
    assert (done["status"], done["frames"], done["seconds"], done["error"]) == ("done", 9, 1.5, None)
    out.write_bytes(b"changed")  # the output is no longer the one recorded
    assert _finished_anyway(ledger, spec, cancelled)["status"] == "cancelled"


def test_missing_manifest_video_is_named(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("video\nnot_here.mp4\n")
    with pytest.raises(InputError, match="not_here.mp4"):
        expand_inputs([str(manifest)])


def test_ctrl_c_inside_deferred_interrupt_only_sets_the_flag():
    """A real SIGINT to this process inside the block raises nothing there and is read by the flag;
    the previous handler (Python's default, KeyboardInterrupt) is back after it."""
    import signal

    from vibe_engine.batch.executors import deferred_interrupt

    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt() as interrupted:
        assert not interrupted()
        signal.raise_signal(signal.SIGINT)  # delivered in this thread, now
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
