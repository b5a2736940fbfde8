"""Skin-weight pruning for exports (pure numpy): keep the k largest influences per vertex.

Game engines (Unity, Unreal) and most glTF viewers skin with 4 influences per vertex; a file with
more is pruned by the importer in its own way. Exports prune beforehand, with a measured error.

Weights are dense arrays ``(V, J)`` (vertex × bone, any non-negative values); Blender's armature
modifier normalises each vertex by its weight sum, so both functions normalise rows first.
"""
from __future__ import annotations

import numpy as np


def normalised(weights: np.ndarray) -> np.ndarray:
    """Rows of ``weights`` (V, J) divided by their sums (rows summing to 0 stay 0), float64."""
    w = np.asarray(weights, np.float64)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def prune(weights: np.ndarray, max_influences: int) -> np.ndarray:
    """Keep the ``max_influences`` largest weights of each row, renormalised; (V, J) float64.

    Ties keep the lower bone index (stable order). Rows with fewer non-zero weights are only
    normalised.
    """
    w = normalised(weights)
    if max_influences >= w.shape[1]:
        return w
    order = np.argsort(-w, axis=1, kind="stable")
    drop = order[:, max_influences:]
    out = w.copy()
    np.put_along_axis(out, drop, 0.0, axis=1)
    return normalised(out)


def influence_counts(weights: np.ndarray) -> np.ndarray:
    """Number of non-zero weights per vertex, (V,) int."""
    return np.count_nonzero(np.asarray(weights) > 0, axis=1)


def pruning_error(rest: np.ndarray, weights: np.ndarray, pruned: np.ndarray,
                  skin_matrices: np.ndarray) -> np.ndarray:
    """Per-vertex maximum displacement (V,) caused by pruning, in the units of ``rest``.

    ``rest``: (V, 3) rest positions; ``weights``/``pruned``: (V, J) before/after (normalised here);
    ``skin_matrices``: (T, J, 4, 4) bone skinning matrices (posed · rest⁻¹, one space for all) at
    T frames. Linear blend skinning: v' = Σ_j w_j M_j v, so the displacement is Σ_j (w_j − p_j) M_j v.
    """
    diff = normalised(weights) - normalised(pruned)  # (V, J)
    changed = np.flatnonzero(np.any(diff != 0, axis=1))
    hom = np.concatenate([np.asarray(rest, np.float64)[changed], np.ones((len(changed), 1))], axis=1)
    worst = np.zeros(len(rest))
    for m in np.asarray(skin_matrices, np.float64):
        moved = np.einsum("jab,vb->vja", m[:, :3, :], hom)  # (changed, J, 3)
        step = np.linalg.norm(np.einsum("vj,vja->va", diff[changed], moved), axis=1)
        worst[changed] = np.maximum(worst[changed], step)
    return worst
