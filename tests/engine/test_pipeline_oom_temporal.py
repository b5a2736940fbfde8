"""Out of memory in the VIBE temporal step (GRU + regressor): halved sub-chunks with the hidden state
carried give the result of one pass; one frame at a time still failing is OUT_OF_MEMORY.

The OOM is injected with the VIBE_ENGINE_FAULT_OOM_TEMPORAL_ABOVE test hook (docs/engine-protocol.md
"Test hooks"): in-process on a random-init generator over several 90-frame chunks, and through the
real CLI in a subprocess with random-weight official-layout checkpoints on a 10-frame clip.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.engine.test_cli import leftovers, run_engine
from tests.fixtures import media, synthetic
from vibe_blender.core import motion_file as mf
from vibe_engine import config as C
from vibe_engine.backend import RunContext
from vibe_engine.models.streaming import Stream, Temporal, oom_fix
from vibe_engine.cancel import CancelToken
from vibe_engine.errors import EXIT_INTERNAL, OutOfMemoryError
from vibe_engine.protocol import ProtocolWriter

#: The CLI clip: frames, size (pixels), and the one person's box (x1, y1, x2, y2) in every frame.
CLIP_FRAMES = 10
CLIP_SIZE = (160, 120)
BOX = (40, 10, 120, 110)
#: Frames above which the injected temporal OOM fires in the CLI run: 10 → 5 fails, 2 runs.
CLI_LIMIT = 3
#: In-process: features (frames, 2048) over three chunks; injected limit 20: 90 → 45 → 22 → 11.
FEATURE_FRAMES = 200
INPROCESS_LIMIT = 20
#: In-process tolerances of split against unbroken calls (float rounding, see the test).
ROUNDING_ATOL = 2e-4
ROUNDING_MEDIAN = 1e-6


# ------------------------------------------------------------------------------- in-process


def _run(tmp_path: Path, oom_above: int | None, **cfg) -> tuple[RunContext, io.StringIO]:
    stream = io.StringIO()
    config = C.EngineConfig(video=tmp_path / "v.mp4", out=tmp_path / "o.npz", oom_temporal_above=oom_above, **cfg)
    return RunContext(config, ProtocolWriter(stream), CancelToken()), stream


def _stream_all(temporal: Temporal, feats: np.ndarray) -> dict[str, np.ndarray]:
    """Feed features one by one, running full chunks as they fill, then the last partial one."""
    stream = Stream(SimpleNamespace(id=1))
    for f in feats:
        stream.buffer.append(f)
        temporal.run_chunks(stream, final=False)
    temporal.run_chunks(stream, final=True)
    assert stream.buffer == [] and stream.done == len(feats)
    return {k: np.concatenate(v) for k, v in stream.outputs.items()}


def _without_carry(model, feats: np.ndarray, size: int) -> np.ndarray:
    """theta (T,85) when every ``size``-frame call restarts the GRU at zero (what must not happen)."""
    with torch.inference_mode():
        parts = [model.regress(model.encode(torch.from_numpy(feats[i:i + size])[None])[0],
                               with_verts=False)["theta"][0].numpy() for i in range(0, len(feats), size)]
    return np.concatenate(parts)


def _warnings(text: io.StringIO) -> list[dict]:
    return [m for m in map(json.loads, text.getvalue().splitlines()) if m["type"] == "warning"]


@pytest.mark.parametrize("official", [False, True])
def test_sub_chunks_after_oom_give_the_unbroken_result(generator, tmp_path, official):
    feats = np.random.default_rng(3).normal(0, 1, (FEATURE_FRAMES, 2048)).astype(np.float32)
    ref = _stream_all(Temporal(_run(tmp_path, None, official_chunks=official)[0], generator), feats)
    run, text = _run(tmp_path, INPROCESS_LIMIT, official_chunks=official)
    temporal = Temporal(run, generator)
    got = _stream_all(temporal, feats)
    # Float rounding only: GEMMs of other sizes differ by ~2e-7, which the random regressor's
    # three iterations amplify on a few elements (theta 9e-5 at most, median 2e-7). A hidden
    # state lost at a sub-chunk start changes theta by more than 1 (checked below).
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=ROUNDING_ATOL, err_msg=k)
        assert np.median(np.abs(got[k] - ref[k])) <= ROUNDING_MEDIAN
    assert np.abs(_without_carry(generator, feats, 11) - ref["theta"]).max() > 1.0
    # One warning for the first chunk; the smaller size stays for the later chunks.
    assert [(w["code"], w["message"]) for w in _warnings(text)] == [
        ("OOM_RETRY", ("out of memory in the temporal step with 90 frames per call; running 11 frames "
                       "at a time from now on"))]
    assert temporal.size == 11


def test_oom_at_one_frame_raises_and_keeps_the_buffer(generator, tmp_path):
    run, text = _run(tmp_path, 0)
    stream = Stream(SimpleNamespace(id=1))
    stream.buffer = list(np.zeros((5, 2048), np.float32))
    with pytest.raises(OutOfMemoryError, match="even one frame at a time; close other programs"):
        Temporal(run, generator).run_chunks(stream, final=True)
    assert len(stream.buffer) == 5 and stream.done == 0 and stream.hidden is None
    assert all(v == [] for v in stream.outputs.values()) and _warnings(text) == []


def test_the_fix_names_the_cpu_device_on_a_gpu():
    assert oom_fix("cuda") == "free GPU memory or use --device cpu"


# ------------------------------------------------------------------------------- real CLI


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory) -> dict[str, Path]:
    """Random-weight VIBE data folder, a 10-frame clip and a boxes file with one track id."""
    root = tmp_path_factory.mktemp("oom_temporal")
    data = synthetic.make_vibe_data(root / "vibe_data", 2)
    clip = media.write_cv2_clip(root / "clip.mp4", [media.pattern_frame(i, *CLIP_SIZE) for i in range(CLIP_FRAMES)])
    boxes = root / "boxes.csv"
    boxes.write_text("frame,x1,y1,x2,y2,score,track_id\n" +
                     "".join(f"{i},{','.join(map(str, BOX))},1.0,1\n" for i in range(CLIP_FRAMES)))
    return {"data": data, "clip": clip, "boxes": boxes}


def _cli(inputs: dict[str, Path], out: Path, oom_above: int | None):
    env = {} if oom_above is None else {C.OOM_TEMPORAL_ENV: str(oom_above)}
    return run_engine(["run", str(inputs["clip"]), "--out", str(out), "--vibe-data", str(inputs["data"]),
                       "--boxes", str(inputs["boxes"]), "--min-frames", "5", "--batch-size", "8"], env=env)


@pytest.fixture(scope="module")
def reference(cli_inputs, tmp_path_factory) -> mf.Track:
    out = tmp_path_factory.mktemp("oom_ref") / "ref.motion.npz"
    engine = _cli(cli_inputs, out, None)
    assert engine.rc == 0, engine.stderr[-3000:]
    assert [w for w in engine.of("warning") if w["code"] == "OOM_RETRY"] == []
    (track,) = mf.read_motion(out).tracks
    assert track.num_frames == CLIP_FRAMES
    return track


def test_cli_temporal_oom_retries_and_writes_the_same_motion(cli_inputs, reference, tmp_path):
    out = tmp_path / "o.motion.npz"
    engine = _cli(cli_inputs, out, CLI_LIMIT)
    assert engine.rc == 0 and engine.status == "ok", engine.stderr[-3000:]
    retries = [w["message"] for w in engine.of("warning") if w["code"] == "OOM_RETRY"]
    assert retries == [("out of memory in the temporal step with 10 frames per call; running 2 frames "
                        "at a time from now on")]
    (got,) = mf.read_motion(out).tracks
    np.testing.assert_array_equal(got.frames, reference.frames)
    for name in ("pose", "betas", "betas_track", "cam_crop", "cam_orig"):
        np.testing.assert_allclose(getattr(got, name), getattr(reference, name), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(got.extra["pose_raw"], reference.extra["pose_raw"], atol=1e-5)
    np.testing.assert_allclose(got.transl, reference.transl, rtol=1e-4)


def test_cli_temporal_oom_at_one_frame_is_a_clear_error_and_leaves_nothing(cli_inputs, tmp_path):
    engine = _cli(cli_inputs, tmp_path / "o.motion.npz", 0)
    assert engine.rc == EXIT_INTERNAL == OutOfMemoryError.exit_code
    assert engine.status == "error" and engine.error["code"] == "OUT_OF_MEMORY"
    message = engine.error["message"]
    assert "\n" not in message and "temporal step" in message and "even one frame at a time" in message
    assert engine.stages[-1] == "regress" and leftovers(tmp_path) == []
