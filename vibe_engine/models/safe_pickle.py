"""Restricted unpickler for SMPL ``.pkl`` body models (no chumpy, no arbitrary code).

Only these globals are resolved: numpy array/dtype/scalar reconstruction, the inert builtins
set/frozenset/complex/slice (found in chumpy object states), ``_codecs.encode``
(bytes written by Python 3 with protocol ≤ 2), ``copyreg._reconstructor`` for the stubs below,
scipy's CSC/CSR sparse matrix classes (mapped to a stub and densified here, scipy is never
imported) and chumpy's ``Ch`` (mapped to a stub exposing the array as ``x``). Anything else
raises :class:`vibe_engine.errors.ModelError` naming ``module.class``.
"""
from __future__ import annotations

import _codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from vibe_engine.errors import ModelError

try:  # numpy ≥ 2 (and 1.26's forward-compatible alias)
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - older numpy
    from numpy.core import multiarray as _multiarray

_MODULE_ALIASES = {"copy_reg": "copyreg", "__builtin__": "builtins", "numpy._core.multiarray":
                   "numpy.core.multiarray", "numpy._core.numeric": "numpy.core.numeric"}


class ChumpyStub:
    """Stands in for ``chumpy.ch.Ch``; the wrapped array is ``x`` (None if the state had none)."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):
            state = state[0]
        self.x = state.get("x") if isinstance(state, dict) else None


class SparseStub:
    """Stands in for scipy's ``csc_matrix``/``csr_matrix``; ``to_dense()`` rebuilds the array."""

    column_major = True

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):
            state = state[0]
        self.state = state if isinstance(state, dict) else {}

    def to_dense(self) -> np.ndarray:
        """Dense float array of the matrix shape; duplicate entries are summed like scipy."""
        try:
            data, indices, indptr = (np.asarray(self.state[k]) for k in ("data", "indices", "indptr"))
        except KeyError as exc:
            raise ModelError(f"sparse matrix in the body model lacks {exc}; re-export the file") from exc
        shape = self.state.get("_shape", self.state.get("shape"))
        outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        rows, cols = (indices, outer) if self.column_major else (outer, indices)
        if shape is None:
            shape = (int(rows.max()) + 1, int(cols.max()) + 1)
        dense = np.zeros(tuple(int(s) for s in shape), dtype=data.dtype)
        np.add.at(dense, (rows, cols), data)
        return dense


class CsrStub(SparseStub):
    """Row-compressed variant of :class:`SparseStub`."""

    column_major = False


def _reconstructor(cls: type, base: type, state: Any) -> object:
    """Safe subset of ``copyreg._reconstructor``: only creates our stub objects."""
    if cls not in (ChumpyStub, SparseStub, CsrStub) or base is not object:
        raise ModelError(f"body model pickle reconstructs {cls!r}; only numpy/scipy/chumpy arrays are allowed")
    return object.__new__(cls)


def _allowed() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("builtins", "object"): object,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("chumpy.ch", "Ch"): ChumpyStub,
    }
    for mod in ("scipy.sparse.csc", "scipy.sparse._csc"):
        table[(mod, "csc_matrix")] = SparseStub
    for mod in ("scipy.sparse.csr", "scipy.sparse._csr"):
        table[(mod, "csr_matrix")] = CsrStub
    dtypes = getattr(np, "dtypes", None)
    for name in dir(dtypes) if dtypes is not None else ():
        if name.endswith("DType") and name != "ObjectDType":
            table[("numpy.dtypes", name)] = getattr(dtypes, name)
    return table


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the allow-listed globals of this module."""

    _table = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        key = (_MODULE_ALIASES.get(module, module), name)
        if key not in self._table:
            raise ModelError(f"body model pickle refers to {module}.{name}, which is not allowed "
                             "(only numpy/scipy-sparse/chumpy arrays); convert it to .npz")
        return self._table[key]


def _plain(value: Any) -> Any:
    if isinstance(value, ChumpyStub):
        return None if value.x is None else np.asarray(value.x)
    if isinstance(value, SparseStub):
        return value.to_dense()
    return value


def load_pickle_arrays(path: str | Path) -> dict[str, Any]:
    """Read an SMPL-style pickle (latin1, protocol 0–5) into a dict of plain numpy values.

    Raises ModelError for a missing file, a non-dict pickle or a forbidden global.
    """
    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, encoding="latin1").load()
    except OSError as exc:
        raise ModelError(f"cannot read body model {path}: {exc.strerror}; check the path") from exc
    except ModelError as exc:  # a forbidden global: name the file it came from
        raise ModelError(f"{Path(path).name}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"body model {path} is not a readable SMPL pickle ({exc}); "
                         "re-download it or convert it to .npz") from exc
    if not isinstance(obj, dict):
        raise ModelError(f"body model {path} holds a {type(obj).__name__}, not an SMPL dict")
    return {str(k): _plain(v) for k, v in obj.items()}
