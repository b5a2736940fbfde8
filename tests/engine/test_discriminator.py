"""The motion discriminator against an independent float64 numpy implementation of the official
forward (MotionDiscriminator with attention pooling, configs/config.yaml), on the random weights of
a synthetic official-layout checkpoint; strict loading; the sliding-window per-frame score."""
import numpy as np
import pytest
import torch

from tests.fixtures import synthetic
from vibe_engine.errors import ModelError
from vibe_engine.models import load_generator
from vibe_engine.models.checkpoints import load_checkpoint
from vibe_engine.models.discriminator import (DISC_KEY, WINDOW, body_pose, build_discriminator, frame_realism,
                                              window_starts)

#: float64 against float64: only the summation order differs (≈1e-15 relative); the bound asked for.
FP64_TOLERANCE = 1e-5
#: float32 module against the float64 reference: a GRU of 2×16 steps with 1024-wide dot products
#: accumulates a few hundred float32 roundings (eps 6e-8) of values of order 1 → ≲1e-4.
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic.make_vibe_data(tmp_path_factory.mktemp("disc_vibe_data"), 5)


@pytest.fixture(scope="module")
def state(data):
    return load_checkpoint(data / "vibe_model_wo_3dpw.pth.tar", "VIBE checkpoint")[DISC_KEY]


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_gru(x, sd, layers=2, hidden=1024):
    """x (T, in) one sequence; PyTorch gate order (reset, update, new) → outputs (T, hidden)."""
    for layer in range(layers):
        wi, wh = (sd[f"gru.weight_{k}_l{layer}"].double().numpy() for k in ("ih", "hh"))
        bi, bh = (sd[f"gru.bias_{k}_l{layer}"].double().numpy() for k in ("ih", "hh"))
        h, out = np.zeros(hidden), []
        for xt in x:
            gi, gh = wi @ xt + bi, wh @ h + bh
            r = _sigmoid(gi[:hidden] + gh[:hidden])
            z = _sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
            n = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
            h = (1 - z) * n + z * h
            out.append(h)
        x = np.stack(out)
    return x


def np_discriminator(seq, sd):
    """seq (T, 69) → the official logit: GRU, tanh attention MLP (3 layers) → softmax over T →
    weighted sum of the GRU outputs → fc."""
    h = np_gru(seq, sd)
    a = h
    for i in (0, 3, 6):
        a = np.tanh(a @ sd[f"attention.attention.{i}.weight"].double().numpy().T
                    + sd[f"attention.attention.{i}.bias"].double().numpy())
    score = np.exp(a[:, 0] - a[:, 0].max())
    pooled = (score / score.sum()) @ h
    return float(pooled @ sd["fc.weight"].double().numpy()[0] + sd["fc.bias"].double().numpy()[0])


def _motion(batch, frames, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.4, (batch, frames, 69))


def test_forward_equals_the_official_forward_in_float64(state):
    model = build_discriminator({DISC_KEY: state}).double()
    seqs = _motion(3, WINDOW)
    want = np.array([np_discriminator(s, state) for s in seqs])
    with torch.inference_mode():
        got = model(torch.from_numpy(seqs)).numpy()
    assert got.shape == (3,)
    assert np.abs(got - want).max() <= FP64_TOLERANCE
    # the score depends on the motion, not only on the biases
    assert np.ptp(want) > 100 * FP64_TOLERANCE


def test_float32_forward_within_the_rounding_bound(state):
    model = build_discriminator({DISC_KEY: state})
    seqs = _motion(2, WINDOW, seed=1)
    want = np.array([np_discriminator(s, state) for s in seqs])
    with torch.inference_mode():
        got = model(torch.from_numpy(seqs).float()).double().numpy()
    assert np.abs(got - want).max() <= FP32_TOLERANCE * max(1.0, np.abs(want).max())


def test_the_generator_loader_attaches_it_and_a_missing_section_turns_it_off(data, tmp_path, state):
    model = load_generator(data / "vibe_model_wo_3dpw.pth.tar")
    assert model.motion_discriminator is not None
    assert set(model.motion_discriminator.state_dict()) == set(state)
    assert build_discriminator({"gen_state_dict": {}}) is None  # feature off, no error


def test_malformed_section_is_a_model_error(state):
    bad = dict(state)
    bad["fc.weight"] = torch.zeros(2, 1024)
    with pytest.raises(ModelError, match="mis-shaped keys fc.weight"):
        build_discriminator({DISC_KEY: bad})
    with pytest.raises(ModelError, match="missing keys attention.attention.6.bias"):
        build_discriminator({DISC_KEY: {k: v for k, v in state.items() if k != "attention.attention.6.bias"}})


def test_windows_cover_every_frame_and_end_on_the_last():
    assert window_starts(10).tolist() == [0]
    starts = window_starts(43)
    assert starts[0] == 0 and starts[-1] == 43 - WINDOW and np.all(np.diff(starts) > 0)


def test_frame_realism_is_the_mean_of_the_covering_windows(state):
    model = build_discriminator({DISC_KEY: state}).double()
    pose = np.random.default_rng(2).normal(0.0, 0.3, (22, 24, 3))
    x = body_pose(pose)
    assert x.shape == (22, 69) and np.array_equal(x[:, :3], pose[:, 1])  # global rotation dropped
    got = frame_realism(model, pose, window=WINDOW, stride=4)
    windows = {s: np_discriminator(x[s:s + WINDOW], state) for s in window_starts(22, WINDOW, 4)}  # 0, 4, 6
    assert sorted(windows) == [0, 4, 6]
    assert got.shape == (22,) and got.dtype == np.float32
    assert abs(got[0] - windows[0]) <= FP64_TOLERANCE  # frame 0: only window 0
    assert abs(got[5] - (windows[0] + windows[4]) / 2) <= FP64_TOLERANCE
    assert abs(got[10] - sum(windows.values()) / 3) <= FP64_TOLERANCE
    assert abs(got[21] - windows[6]) <= FP64_TOLERANCE
    short = frame_realism(model, pose[:5])  # shorter than a window: one window of its length
    assert np.allclose(short, np_discriminator(x[:5], state), atol=FP64_TOLERANCE)


def test_add_realism_scores_every_track_and_survives_the_motion_file(state, tmp_path):
    from tests.fixtures.motion import make_motion
    from vibe_blender.core import motion_file as mf
    from vibe_engine.models.discriminator import add_realism

    model = build_discriminator({DISC_KEY: state}).double()
    motion = make_motion(num_tracks=2, num_frames=20)
    add_realism(motion, model)
    for t in motion.tracks:
        np.testing.assert_array_equal(t.extra["realism"], frame_realism(model, t.pose))
    realism = motion.meta["manifest"]["realism"]
    assert realism["enabled"] and realism["window_frames"] == WINDOW
    assert realism["implausible_frames"] == {
        str(t.id): int((t.extra["realism"] < mf.REALISM_IMPLAUSIBLE_BELOW).sum()) for t in motion.tracks}
    mf.write_motion(tmp_path / "m.motion.npz", motion)
    back = mf.read_motion(tmp_path / "m.motion.npz")
    for a, b in zip(motion.tracks, back.tracks):
        np.testing.assert_array_equal(b.extra["realism"], a.extra["realism"])
    off = make_motion(num_tracks=1, num_frames=5)
    add_realism(off, None)
    assert off.meta["manifest"]["realism"] == {"enabled": False, "note": f"the checkpoint has no {DISC_KEY}"}
    assert "realism" not in off.tracks[0].extra
