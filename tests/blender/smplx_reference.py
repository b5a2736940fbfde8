"""Reference SMPL vertices from smplx, for the Blender tier (run with the engine venv's Python).

The bpy 4.2/5.2 venvs have no torch/smplx, so the tests call this script in a subprocess:
``python smplx_reference.py IN.npz OUT.npz``. IN holds a synthetic SMPL-format body
(v_template, shapedirs, posedirs or none, J_regressor, weights, parents, faces) and one track
(betas (B,), pose (T,24,3), transl (T,3)); OUT gets ``vertices`` (T,V,3) float64 in the
camera frame, computed by ``smplx.SMPL`` built from those arrays (``data_struct``), float64.
"""
import sys
from collections import defaultdict

import numpy as np
import torch
from smplx import SMPL
from smplx.utils import Struct


def smplx_vertices(d: dict) -> np.ndarray:
    """Posed vertices (T,V,3) float64 from smplx for the arrays in ``d``."""
    v = d["v_template"].shape[0]
    posedirs = d["posedirs"] if "posedirs" in d else np.zeros((207, 3 * v))
    parents = d["parents"].astype(np.int64)
    struct = Struct(v_template=d["v_template"], shapedirs=d["shapedirs"], J_regressor=d["J_regressor"],
                    posedirs=posedirs.T.reshape(v, 3, 207), weights=d["weights"], f=d["faces"],
                    kintree_table=np.stack([np.where(parents < 0, 2**32 - 1, parents), np.arange(24)]))
    t = d["pose"].shape[0]
    model = SMPL(model_path="", data_struct=struct, num_betas=d["shapedirs"].shape[2], batch_size=t,
                 vertex_ids=defaultdict(int), dtype=torch.float64)
    f64 = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
    with torch.no_grad():
        out = model(betas=f64(np.tile(d["betas"], (t, 1))), global_orient=f64(d["pose"][:, 0]),
                    body_pose=f64(d["pose"][:, 1:].reshape(t, 69)), transl=f64(d["transl"]))
    return out.vertices.numpy()


def main(argv: list[str]) -> int:
    with np.load(argv[1]) as npz:
        d = {k: npz[k] for k in npz.files}
    np.savez(argv[2], vertices=smplx_vertices(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
