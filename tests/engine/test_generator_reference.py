"""The generator against an independent float64 numpy implementation written from the facts.

Covers: ResNet-50 backbone, GRU temporal encoder (PyTorch gate order), 3-step error feedback,
6D → rotation, SMPL LBS + 21 vertex joints + 9 regressed joints → 49-joint selection,
the crop projection, and the whole forward on a tiny input (N=1, T=2).
"""
import numpy as np
import pytest
import torch

from tests.fixtures.synthetic import make_crops, official_files
from vibe_engine.models import load_generator

SPIN_MAP = [24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
            8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27]
VERTEX_JOINTS = [332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787,
                 2746, 2319, 2445, 2556, 2673, 6191, 5782, 5905, 6016, 6133]


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    return official_files(tmp_path_factory.getbasetemp() / "vibe_synthetic")


@pytest.fixture(scope="session")
def model(files):
    return load_generator(files["vibe"])


def w(state, key):
    return state[key].double().numpy()


# ---------------------------------------------------------------- numpy reference pieces
def np_conv(x, weight, stride=1, pad=0):
    """x (C,H,W), weight (O,C,k,k) → (O,H',W') by im2col."""
    o, c, k, _ = weight.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    cols = win.transpose(1, 2, 0, 3, 4).reshape(win.shape[1] * win.shape[2], c * k * k)
    return (cols @ weight.reshape(o, -1).T).T.reshape(o, win.shape[1], win.shape[2])


def np_bn(x, sd, p):
    scale = w(sd, f"{p}.weight") / np.sqrt(w(sd, f"{p}.running_var") + 1e-5)
    return (x - w(sd, f"{p}.running_mean")[:, None, None]) * scale[:, None, None] + w(sd, f"{p}.bias")[:, None, None]


def np_maxpool(x):
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    return np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(3, 4))


def np_backbone(img, sd):
    """img (3,224,224) → (2048,) following §1.2 of the facts."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    x = np_maxpool(relu(np_bn(np_conv(img, w(sd, "conv1.weight"), 2, 3), sd, "bn1")))
    for layer, blocks in zip(range(1, 5), (3, 4, 6, 3)):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            stride = 2 if (b == 0 and layer > 1) else 1
            y = relu(np_bn(np_conv(x, w(sd, f"{p}.conv1.weight")), sd, f"{p}.bn1"))
            y = relu(np_bn(np_conv(y, w(sd, f"{p}.conv2.weight"), stride, 1), sd, f"{p}.bn2"))
            y = np_bn(np_conv(y, w(sd, f"{p}.conv3.weight")), sd, f"{p}.bn3")
            if b == 0:
                x = np_bn(np_conv(x, w(sd, f"{p}.downsample.0.weight"), stride), sd, f"{p}.downsample.1")
            x = relu(y + x)
    return x.mean(axis=(1, 2))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_encoder(feats, gen, h0=None):
    """feats (T,2048) of one sequence → (y (T,2048), h (2,1024))."""
    h = np.zeros((2, 1024)) if h0 is None else h0.copy()
    out = []
    for x in feats:
        inp = x
        for layer in range(2):
            gi = w(gen, f"encoder.gru.weight_ih_l{layer}") @ inp + w(gen, f"encoder.gru.bias_ih_l{layer}")
            gh = w(gen, f"encoder.gru.weight_hh_l{layer}") @ h[layer] + w(gen, f"encoder.gru.bias_hh_l{layer}")
            r = sigmoid(gi[:1024] + gh[:1024])
            z = sigmoid(gi[1024:2048] + gh[1024:2048])
            n = np.tanh(gi[2048:] + r * gh[2048:])
            h[layer] = (1 - z) * n + z * h[layer]
            inp = h[layer]
        out.append(w(gen, "encoder.linear.weight") @ np.maximum(inp, 0) + w(gen, "encoder.linear.bias") + x)
    return np.array(out), h


def np_feedback(x, gen):
    """x (2048,) → pose6d (144,), shape (10,), cam (3,) after 3 iterations from the mean."""
    pose, shape, cam = (w(gen, f"regressor.init_{k}")[0] for k in ("pose", "shape", "cam"))
    for _ in range(3):
        h = w(gen, "regressor.fc1.weight") @ np.concatenate([x, pose, shape, cam]) + w(gen, "regressor.fc1.bias")
        h = w(gen, "regressor.fc2.weight") @ h + w(gen, "regressor.fc2.bias")
        pose = pose + w(gen, "regressor.decpose.weight") @ h + w(gen, "regressor.decpose.bias")
        shape = shape + w(gen, "regressor.decshape.weight") @ h + w(gen, "regressor.decshape.bias")
        cam = cam + w(gen, "regressor.deccam.weight") @ h + w(gen, "regressor.deccam.bias")
    return pose, shape, cam


def np_rot6d(six):
    out = []
    for a in six.reshape(-1, 3, 2):
        b1 = a[:, 0] / max(np.linalg.norm(a[:, 0]), 1e-6)
        u = a[:, 1] - (b1 @ a[:, 1]) * b1
        b2 = u / max(np.linalg.norm(u), 1e-6)
        out.append(np.stack([b1, b2, np.cross(b1, b2)], axis=1))
    return np.array(out)


def np_smpl(smpl, rot, betas):
    """rot (24,3,3), betas (10,) → verts (6890,3), kp (49,3) per §1.5 (plain LBS)."""
    parents = smpl["kintree_table"][0].astype(np.int64)
    v_shaped = smpl["v_template"] + smpl["shapedirs"] @ betas
    j = smpl["J_regressor"] @ v_shaped
    feat = (rot[1:] - np.eye(3)).reshape(-1)
    v_posed = v_shaped + (smpl["posedirs"].reshape(-1, 207) @ feat).reshape(-1, 3)
    g = np.zeros((24, 4, 4))
    for i in range(24):
        local = np.eye(4)
        local[:3, :3] = rot[i]
        local[:3, 3] = j[i] - (j[parents[i]] if i else 0)
        g[i] = local if i == 0 else g[parents[i]] @ local
    a = g.copy()
    a[:, :3, 3] -= np.einsum("jab,jb->ja", g[:, :3, :3], j)
    t = np.einsum("vj,jab->vab", smpl["weights"], a)
    verts = np.einsum("vab,vb->va", t[:, :3, :3], v_posed) + t[:, :3, 3]
    joints54 = np.concatenate([g[:, :3, 3], verts[VERTEX_JOINTS], smpl["J_regressor_extra"] @ verts])
    return verts, joints54[SPIN_MAP]


def np_project(kp, cam):
    t = np.array([cam[1], cam[2], 2 * 5000 / (224 * cam[0] + 1e-9)])
    p = kp + t
    return 5000 * p[:, :2] / p[:, 2:] / 112.0


def np_regress(y, gen, smpl):
    pose6d, shape, cam = np_feedback(y, gen)
    rot = np_rot6d(pose6d)
    verts, kp = np_smpl(smpl, rot, shape)
    return {"rotmat": rot, "shape": shape, "cam": cam, "verts": verts, "kp_3d": kp, "kp_2d": np_project(kp, cam)}


def rodrigues(aa):
    theta = np.linalg.norm(aa)
    k = aa / theta if theta > 0 else np.zeros(3)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def assert_frame_matches(out, n, t, ref, tol=1e-4):
    """Compare one (n, t) frame of a torch output dict with a numpy reference dict."""
    theta = out["theta"][n, t].double().numpy()
    np.testing.assert_allclose(theta[:3], ref["cam"], atol=tol)
    np.testing.assert_allclose(theta[75:], ref["shape"], atol=tol)
    np.testing.assert_allclose(out["rotmat"][n, t].numpy(), ref["rotmat"], atol=tol)
    rots = np.array([rodrigues(aa) for aa in theta[3:75].reshape(24, 3)])
    np.testing.assert_allclose(rots, ref["rotmat"], atol=tol)
    np.testing.assert_allclose(out["verts"][n, t].numpy(), ref["verts"], atol=tol)
    np.testing.assert_allclose(out["kp_3d"][n, t].numpy(), ref["kp_3d"], atol=tol)
    np.testing.assert_allclose(out["kp_2d"][n, t].numpy(), ref["kp_2d"], atol=tol)


# ---------------------------------------------------------------- tests
def test_temporal_encoder_matches_numpy_gru(model, files):
    feats = torch.randn(2, 4, 2048, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        y, h = model.encode(feats)
    for n in range(2):
        ref_y, ref_h = np_encoder(feats[n].double().numpy(), files["gen"])
        np.testing.assert_allclose(y[n].numpy(), ref_y, atol=2e-5)
        np.testing.assert_allclose(h[:, n].numpy(), ref_h, atol=2e-5)


def test_streaming_chunks_with_carried_hidden_equal_one_pass(model):
    feats = torch.randn(3, 7, 2048, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        y_all, h_all = model.encode(feats)
        y1, h1 = model.encode(feats[:, :3])
        y2, h2 = model.encode(feats[:, 3:], h1)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y_all, atol=1e-6, rtol=0)
    torch.testing.assert_close(h2, h_all, atol=1e-6, rtol=0)
    assert not torch.allclose(model.encode(feats[:, 3:])[0], y2, atol=1e-3)  # the state matters


def test_regress_matches_numpy_feedback_smpl_selection_and_projection(model, files):
    y = 0.3 * torch.randn(1, 3, 2048, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        out = model.regress(y)
    for t in range(3):
        ref = np_regress(y[0, t].double().numpy(), files["gen"], files["smpl"])
        assert_frame_matches(out, 0, t, ref)
    init_cam = files["gen"]["regressor.init_cam"][0].numpy()
    assert np.abs(out["theta"][0, :, :3].numpy() - init_cam).max() > 1e-3  # feedback moved the camera


def test_regress_without_verts_has_same_joints(model):
    y = torch.randn(2, 2, 2048, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        full, lean = model.regress(y), model.regress(y, with_verts=False)
    assert "verts" not in lean
    for k in ("theta", "rotmat", "kp_3d", "kp_2d"):
        torch.testing.assert_close(lean[k], full[k], atol=0, rtol=0)


def test_backbone_matches_numpy_resnet(model, files):
    crops = make_crops(1, 1, seed=5)[0]
    with torch.inference_mode():
        feats = model.extract_features(crops)
    ref = np_backbone(crops[0].double().numpy(), files["spin_model"])
    np.testing.assert_allclose(feats[0].numpy(), ref, atol=1e-4 * np.abs(ref).max())


def test_whole_forward_matches_numpy_composition(model, files):
    crops = make_crops(1, 2, seed=6)
    with torch.inference_mode():
        out = model(crops)
    feats = np.array([np_backbone(c.double().numpy(), files["spin_model"]) for c in crops[0]])
    y, _ = np_encoder(feats, files["gen"])
    for t in range(2):
        assert_frame_matches(out, 0, t, np_regress(y[t], files["gen"], files["smpl"]), tol=2e-4)
    shapes = {"theta": (1, 2, 85), "rotmat": (1, 2, 24, 3, 3), "verts": (1, 2, 6890, 3),
              "kp_3d": (1, 2, 49, 3), "kp_2d": (1, 2, 49, 2)}
    assert {k: tuple(v.shape) for k, v in out.items()} == shapes


def test_forward_equals_composed_streaming_pieces(model):
    crops = make_crops(2, 2, seed=7)
    with torch.inference_mode():
        out = model(crops)
        feats = model.extract_features(crops.reshape(4, 3, 224, 224)).reshape(2, 2, 2048)
        parts = model.regress(model.encode(feats)[0])
    for k in out:
        torch.testing.assert_close(parts[k], out[k], atol=0, rtol=0)
