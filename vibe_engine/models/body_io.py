"""Body model sources: arrays embedded in VIBE's ``gen_state_dict`` or an SMPL .npz/.pkl file."""
from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vibe_engine.errors import ModelError
from vibe_engine.models.body import (NUM_BETAS, NUM_EXTRA_REGRESSED, NUM_JOINTS, NUM_POSE_BASIS,
                                     SMPLX_EXTRA_VERTEX_IDS, BodyArrays)
from vibe_engine.models.safe_pickle import load_pickle_arrays

log = logging.getLogger(__name__)

#: The SMPL buffers VIBE's checkpoint embeds under ``regressor.smpl.``.
SMPL_PREFIX = "regressor.smpl."
EXTRA_REGRESSOR_FILE = "J_regressor_extra.npy"
FILE_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def _f32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _check(name: str, arr: np.ndarray, shape: tuple[int, ...], source: object) -> None:
    if tuple(arr.shape) != shape:
        raise ModelError(f"{source}: {name} has shape {tuple(arr.shape)}, expected {shape}; "
                         "use the SMPL v1.0.0 neutral model (10 betas)")


def validate_body(body: BodyArrays, source: object) -> BodyArrays:
    """Check every array shape of ``body`` (V taken from v_template); returns ``body``."""
    v = body.v_template.shape[0]
    expected = {
        "v_template": (v, 3), "shapedirs": (v, 3, NUM_BETAS), "posedirs": (NUM_POSE_BASIS, 3 * v),
        "J_regressor": (NUM_JOINTS, v), "weights": (v, NUM_JOINTS), "parents": (NUM_JOINTS,),
        "J_regressor_extra": (NUM_EXTRA_REGRESSED, v), "extra_vertex_ids": (len(SMPLX_EXTRA_VERTEX_IDS),),
    }
    for name, shape in expected.items():
        _check(name, getattr(body, name), shape, source)
    if body.faces.ndim != 2 or body.faces.shape[1] != 3 or body.faces.max(initial=0) >= v:
        raise ModelError(f"{source}: faces must be (F,3) vertex indices < {v}")
    if int(body.extra_vertex_ids.max()) >= v:
        raise ModelError(f"{source}: extra joint vertex ids exceed the {v} vertices")
    return body


def body_from_state_dict(state: Mapping[str, Any], source: object) -> BodyArrays:
    """Body arrays from the ``regressor.smpl.*`` tensors of a VIBE ``gen_state_dict``."""
    g = {k[len(SMPL_PREFIX):]: v.detach().cpu().numpy() for k, v in state.items() if k.startswith(SMPL_PREFIX)}
    parents = g["parents"].astype(np.int32)
    parents[0] = -1
    return validate_body(BodyArrays(
        v_template=_f32(g["v_template"]), shapedirs=_f32(g["shapedirs"]), posedirs=_f32(g["posedirs"]),
        J_regressor=_f32(g["J_regressor"]), weights=_f32(g["lbs_weights"]), parents=parents,
        faces=g["faces_tensor"].astype(np.int32), J_regressor_extra=_f32(g["J_regressor_extra"]),
        extra_vertex_ids=g["vertex_joint_selector.extra_joints_idxs"].astype(np.int32)), source)


def _read_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"body model {path} is not a readable .npz ({exc}); check the file") from exc


def read_body_file(path: str | Path, fallback_extra: np.ndarray | None = None) -> BodyArrays:
    """Read an SMPL body model from ``.npz`` or the official latin1 ``.pkl``.

    Keys: v_template, shapedirs (V,3,≥10; sliced to 10), posedirs (V,3,207), J_regressor (24,V,
    dense or sparse), weights, kintree_table (2,24), f. ``J_regressor_extra`` (9,V) comes from the
    file itself, else from ``J_regressor_extra.npy`` beside it, else from ``fallback_extra``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"body model {path} not found; pass the path of SMPL_NEUTRAL.pkl or a .npz")
    if path.suffix.lower() == ".npz":
        data = _read_npz(path)
    elif path.suffix.lower() == ".pkl":
        data = load_pickle_arrays(path)
    else:
        raise ModelError(f"body model {path} must be a .npz or .pkl file")
    log.debug("body model %s: keys %s", path, sorted(data))
    missing = [k for k in FILE_KEYS if k not in data or data[k] is None]
    if missing:
        raise ModelError(f"body model {path} lacks {', '.join(missing)}; is it an SMPL model file?")
    return _body_from_file_dict(data, path, _extra_regressor(data, path, fallback_extra))


def _extra_regressor(data: Mapping[str, Any], path: Path, fallback: np.ndarray | None) -> np.ndarray:
    if data.get("J_regressor_extra") is not None:
        return _f32(data["J_regressor_extra"])
    sibling = path.with_name(EXTRA_REGRESSOR_FILE)
    if sibling.is_file():
        try:
            return _f32(np.load(sibling, allow_pickle=False))
        except (ValueError, TypeError, OSError, EOFError) as exc:
            raise ModelError(f"cannot read {sibling} ({type(exc).__name__}: {str(exc)[:120]}); it must be a "
                             f"plain float array (9, V): replace it with the official {EXTRA_REGRESSOR_FILE}") from None
    if fallback is not None:
        return fallback
    raise ModelError(f"no J_regressor_extra for body model {path}: put {EXTRA_REGRESSOR_FILE} "
                     "(VIBE data folder) next to it")


def _body_from_file_dict(data: Mapping[str, Any], path: Path, extra: np.ndarray) -> BodyArrays:
    shapedirs = _f32(data["shapedirs"])
    if shapedirs.ndim != 3 or shapedirs.shape[-1] < NUM_BETAS:
        raise ModelError(f"{path}: shapedirs {shapedirs.shape} needs at least {NUM_BETAS} components")
    posedirs = _f32(data["posedirs"])
    if posedirs.ndim != 3 or posedirs.shape[-1] != NUM_POSE_BASIS:
        raise ModelError(f"{path}: posedirs {posedirs.shape} must be (V,3,{NUM_POSE_BASIS})")
    parents = np.asarray(data["kintree_table"])[0].astype(np.int64)
    parents[0] = -1
    return validate_body(BodyArrays(
        v_template=_f32(data["v_template"]), shapedirs=np.ascontiguousarray(shapedirs[..., :NUM_BETAS]),
        posedirs=np.ascontiguousarray(posedirs.reshape(-1, NUM_POSE_BASIS).T),
        J_regressor=_f32(data["J_regressor"]), weights=_f32(data["weights"]),
        parents=parents.astype(np.int32), faces=np.asarray(data["f"]).astype(np.int32),
        J_regressor_extra=extra), path)
