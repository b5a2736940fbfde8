"""Pipeline pieces in-process: streaming GRU chunking, official chunks, track selection, checks,
model-file discovery, the protocol writer and the cancel token."""
from __future__ import annotations

import copy
import io
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vibe_blender.core import protocol as P
from vibe_engine import config as C
from vibe_engine import pipeline as PL
from vibe_engine.backend import RunContext
from vibe_engine.models import vibe_backend as VB
from vibe_engine.models.streaming import Stream, Temporal
from vibe_engine.cancel import CancelToken, watch_stdin
from vibe_engine.errors import BadInputError, CancelledError, ModelError, NoPersonError, OutputError
from vibe_engine.protocol import ProtocolWriter


class FakeClock:
    """A settable clock for the writer (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(tmp_path: Path, **cfg) -> tuple[RunContext, io.StringIO]:
    stream = io.StringIO()
    config = C.EngineConfig(video=tmp_path / "v.mp4", out=tmp_path / "o.npz", **cfg)
    return RunContext(config, ProtocolWriter(stream), CancelToken()), stream


def _stream_all(run, model, feats: np.ndarray, final_every: int | None = None) -> dict[str, np.ndarray]:
    stream, temporal = Stream(SimpleNamespace(id=1)), Temporal(run, model)
    for i, f in enumerate(feats):
        stream.buffer.append(f)
        if final_every and (i + 1) % final_every == 0:
            temporal.run_chunks(stream, final=False)
    temporal.run_chunks(stream, final=True)
    return {k: np.concatenate(v) for k, v in stream.outputs.items()}


def _one_pass(model, feats: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        y, _ = model.encode(torch.from_numpy(feats)[None])
        out = model.regress(y, with_verts=False)
    return {k: out[k][0].numpy() for k in ("theta", "kp_3d", "kp_2d")}


@pytest.fixture(scope="module")
def generator64(generator):
    """The random generator in float64. The chunking tests ask "is streaming the same computation as
    one pass?"; in float32 the answer depends on how the CPU's GEMM/GRU kernels block a sequence of
    a given length (up to 8e-5 apart on AVX-512 + AMX against 1e-6 on AVX2), so they compare in
    float64, where any blocking agrees to ~1e-13 relative."""
    model = copy.deepcopy(generator).double()
    model.compute_dtype = torch.float64
    return model


def _assert_same_computation(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    """The streamed outputs were cast to float32 by the pipeline (one rounding: at most half an
    ulp, eps/2 relative); the float64 reference is not. Tolerance: one float32 eps of each array's
    scale, which any float64 blocking difference (~1e-13) stays far below."""
    for k in ref:
        scale = float(np.abs(ref[k]).max())
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=np.finfo(np.float32).eps * scale, err_msg=k)


def test_streaming_chunks_equal_one_sequence(generator64, tmp_path):
    feats = np.random.default_rng(0).normal(0, 1, (200, 2048))
    run, _ = _run(tmp_path)
    assert run.cfg.chunk_frames < 200
    got = _stream_all(run, generator64, feats, final_every=7)
    _assert_same_computation(got, _one_pass(generator64, feats))


def test_official_chunks_restart_the_gru_every_450_frames(generator64, tmp_path):
    feats = np.random.default_rng(1).normal(0, 1, (470, 2048))
    run, _ = _run(tmp_path, official_chunks=True)
    got = _stream_all(run, generator64, feats, final_every=13)
    ref = {k: np.concatenate([a, b]) for (k, a), b in zip(
        _one_pass(generator64, feats[:450]).items(), _one_pass(generator64, feats[450:]).values())}
    _assert_same_computation(got, ref)
    exact = _one_pass(generator64, feats)
    assert np.abs(got["theta"][450:] - exact["theta"][450:]).max() > 1e-4  # the reset matters


def _tracks(*lengths: int):
    return [SimpleNamespace(id=i + 1, frames=np.arange(n)) for i, n in enumerate(lengths)]


def test_select_tracks_drops_short_ones_with_warnings_and_applies_options(tmp_path):
    run, stream = _run(tmp_path, min_frames=10)
    assert [t.id for t in PL.select_tracks(run, _tracks(30, 5, 12))] == [1, 3]
    warnings = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [w["code"] for w in warnings] == ["SHORT_TRACK_DROPPED"] and "track 2 (5 frames)" in warnings[0]["message"]
    run, _ = _run(tmp_path, min_frames=1, max_people=2)
    assert [t.id for t in PL.select_tracks(run, _tracks(3, 9, 7))] == [2, 3]
    run, _ = _run(tmp_path, min_frames=1, tracks=(3, 1))
    assert [t.id for t in PL.select_tracks(run, _tracks(3, 9, 7))] == [1, 3]
    run, _ = _run(tmp_path, min_frames=1, tracks=(8,))
    with pytest.raises(BadInputError, match=r"--tracks 8 matches no track \(tracks: 1, 2\)"):
        PL.select_tracks(run, _tracks(3, 9))


def test_select_tracks_no_person_messages(tmp_path):
    run, _ = _run(tmp_path, min_frames=25)
    with pytest.raises(NoPersonError, match="no person was detected"):
        PL.select_tracks(run, [])
    with pytest.raises(NoPersonError, match=r"longest track: 7 frames\); lower --min-frames"):
        PL.select_tracks(run, _tracks(7, 3))


def test_robust_betas_is_the_median_over_confident_detected_frames():
    betas = np.arange(50, dtype=np.float64).reshape(5, 10)
    conf = np.array([0.9, 0.1, 0.8, 0.0, 0.7])
    detected = np.array([True, True, True, False, False])
    np.testing.assert_array_equal(VB.robust_betas(betas, conf, detected), np.median(betas[[0, 2]], 0))
    np.testing.assert_array_equal(VB.robust_betas(betas, conf * 0, detected), np.median(betas, 0))


def test_output_path_checks(tmp_path):
    PL.check_output_path(tmp_path / "ok.npz")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="is a folder"):
        PL.check_output_path(tmp_path)
    with pytest.raises(OutputError, match="does not exist"):
        PL.check_output_path(tmp_path / "no" / "x.npz")


def test_resolve_models_from_a_data_folder_and_explicit_paths(tmp_path):
    assert C.resolve_models(None, None, None, None) is None
    for name in ("vibe_model_w_3dpw.pth.tar", "spin_model_checkpoint.pth.tar", "J_regressor_extra.npy"):
        (tmp_path / name).write_bytes(b"x")
    m = C.resolve_models(str(tmp_path), None, None, None)
    assert m.vibe_checkpoint.name == "vibe_model_w_3dpw.pth.tar" and m.body_model is None
    assert set(m.named()) == {"vibe_model_w_3dpw.pth.tar", "spin_model_checkpoint.pth.tar",
                              "J_regressor_extra.npy"}
    (tmp_path / "vibe_model_wo_3dpw.pth.tar").write_bytes(b"x")
    assert C.resolve_models(str(tmp_path), None, None, None).vibe_checkpoint.name == "vibe_model_wo_3dpw.pth.tar"
    with pytest.raises(ModelError, match="VIBE checkpoint not found"):
        C.resolve_models(str(tmp_path), str(tmp_path / "nope.tar"), None, None)
    os.remove(tmp_path / "spin_model_checkpoint.pth.tar")
    with pytest.raises(ModelError, match=r"lacks spin_model_checkpoint.pth.tar;"):
        C.resolve_models(str(tmp_path), None, None, None)


def test_writer_throttles_progress_to_10_hz_and_computes_rate_and_eta():
    clock, out = FakeClock(), io.StringIO()
    w = ProtocolWriter(out, clock=clock)
    w.hello("cpu", False, "2.13.0")
    w.stage("features")
    sent = []
    for i in range(1, 101):
        clock.now += 0.01
        sent.append(w.progress("features", i, 100))
    assert sum(sent) == 10
    clock.now += 0.1
    w.progress("features", 50, 100)
    w.done("ok")
    w.warning("LATE", "after done: never written")
    msgs = [P.decode_line(line) for line in out.getvalue().splitlines()]
    last = [m for m in msgs if m.type == "progress"][-1]
    assert last["fps"] == pytest.approx(50 / 1.1, rel=1e-3) and last["eta_s"] == pytest.approx(1.1, rel=1e-3)
    assert msgs[-1].type == "done" and [m.type for m in msgs].count("warning") == 0
    P.check_transcript(msgs, require_result=False)


def test_writer_matches_the_golden_ok_transcript_structure(tmp_path):
    golden = [P.decode_line(line) for line in
              (Path(P.__file__).resolve().parents[2] / "assets/protocol/ok.jsonl").read_text().splitlines()]
    clock, out = FakeClock(), io.StringIO()
    w = ProtocolWriter(out, clock=clock)
    for m in golden:
        clock.now = 100.0 + m.t
        if m.type == "stage":
            w.stage(m["name"])
        else:
            w.send(m.type, **m.fields)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [m.to_dict() for m in golden]


def test_cancel_token_check_and_test_pause():
    token = CancelToken()
    token.check("detect")
    token.cancel("because")
    with pytest.raises(CancelledError, match="cancelled during detect"):
        token.check("detect")
    announced = []
    paused = CancelToken(pause_at="track", announce=announced.append)
    threading.Timer(0.05, paused.cancel).start()
    paused.check("detect")
    with pytest.raises(CancelledError):
        paused.check("track")
    assert announced == ["track"]


@pytest.mark.parametrize("payload,reason", [(b'{"v":1,"type":"cancel"}\n', "cancel line on stdin"),
                                            (b'noise\n{"type": "cancel"}', "cancel line on stdin"),
                                            (b"noise\n", "stdin closed")])
def test_stdin_watcher_cancels_on_the_cancel_line_or_eof(payload, reason):
    r, w = os.pipe()
    token = CancelToken()
    thread = watch_stdin(token, r)
    os.write(w, payload)
    assert not token.wait(0.05) or reason == "cancel line on stdin"
    os.close(w)
    thread.join(5)
    os.close(r)
    assert token.cancelled and token.reason == reason


def test_start_hashes_hashes_off_the_main_thread_and_raises_where_read(tmp_path: Path) -> None:
    """The video's and the model files' sha256 come from a background thread (hashlib's own
    digests); a file gone before it is read raises there, when the result is asked for."""
    import hashlib

    video, model = tmp_path / "clip.mp4", tmp_path / "m.tflite"
    video.write_bytes(os.urandom(3 << 20))
    model.write_bytes(b"model")
    seen = []
    real = PL.sha256_file
    PL.sha256_file = lambda p: (seen.append(threading.current_thread().name), real(p))[1]
    try:
        digest, files = PL.start_hashes(video, {"m.tflite": model}).result(timeout=30)
        missing = PL.start_hashes(tmp_path / "gone.mp4", {})
        with pytest.raises(FileNotFoundError):
            missing.result(timeout=30)
    finally:
        PL.sha256_file = real
    assert digest == hashlib.sha256(video.read_bytes()).hexdigest()
    assert files == {"m.tflite": hashlib.sha256(b"model").hexdigest()}
    assert seen and all(name.startswith("vibe-hash") for name in seen)
