"""Loading the official VIBE and SPIN checkpoint files safely and strictly.

* Always ``torch.load(..., map_location="cpu", weights_only=True)`` (the official files hold
  CUDA tensors). The only extra globals allowed are numpy array/scalar/dtype reconstructors
  (a numpy ``performance`` value); any other object is refused with a ModelError.
* Keys are checked exactly against the expected names and shapes; a mismatch raises a one-line
  ModelError naming the first offending keys and their count.
"""
from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vibe_engine.errors import ModelError

log = logging.getLogger(__name__)

#: SPIN's own regressor head inside ``spin_model_checkpoint.pth.tar['model']``; not used by VIBE.
SPIN_HEAD_KEYS = frozenset(
    [f"{layer}.{p}" for layer in ("fc1", "fc2", "decpose", "decshape", "deccam") for p in ("weight", "bias")]
    + ["init_pose", "init_shape", "init_cam"])
#: How many offending key names a message lists before "… (N in all)".
KEYS_SHOWN = 4
_BAD_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")

try:  # numpy ≥ 2 (and 1.26's forward-compatible alias)
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - older numpy
    from numpy.core import multiarray as _multiarray


def _numpy_safe_globals() -> list[Any]:
    """numpy reconstructors allowed inside checkpoints, under both numpy 1 and numpy 2 names."""
    allowed: list[Any] = [(np.ndarray, "numpy.ndarray"), (np.dtype, "numpy.dtype")]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(_multiarray._reconstruct, f"{mod}._reconstruct"), (_multiarray.scalar, f"{mod}.scalar")]
    dtypes = getattr(np, "dtypes", None)
    for name in dir(dtypes) if dtypes is not None else ():
        if name.endswith("DType") and name != "ObjectDType":
            allowed.append((getattr(dtypes, name), f"numpy.dtypes.{name}"))
    return allowed


def describe_keys(keys: list[str]) -> str:
    """'a, b, c, d … (N in all)' for error messages."""
    keys = sorted(keys)
    shown = ", ".join(keys[:KEYS_SHOWN])
    return shown + (f" … ({len(keys)} in all)" if len(keys) > KEYS_SHOWN else "")


def load_checkpoint(path: str | Path, what: str) -> dict[str, Any]:
    """Read a torch checkpoint (zip or legacy format) onto the CPU without running foreign code.

    Args:
        path: the file; what: its role for messages ("VIBE checkpoint", "SPIN checkpoint").
    Returns:
        The top-level dict. Raises ModelError if missing, corrupt, foreign or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{what} {path} not found; check the path")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _BAD_GLOBAL.search(str(exc))
        if found is None:
            raise ModelError(f"{what} {path} is not a readable PyTorch checkpoint "
                             f"({_reason(exc)}); re-download it") from exc
        raise ModelError(f"{what} {path} contains {found.group(1)}, which is refused for safety; "
                         "use the official file or re-save it as a plain state dict") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{what} {path} is not a readable PyTorch checkpoint ({reason}); "
                         "re-download it") from exc
    if not isinstance(obj, Mapping):
        raise ModelError(f"{what} {path} holds a {type(obj).__name__}, not a checkpoint dict")
    log.debug("%s %s: top-level keys %s", what, path, sorted(map(str, obj)))
    return dict(obj)


def _reason(exc: Exception) -> str:
    """The specific cause inside torch's multi-line weights_only error (its middle paragraph)."""
    paragraphs = [p.strip() for p in str(exc).split("\n\n") if p.strip()]
    return paragraphs[1] if len(paragraphs) > 2 else "corrupt or not a torch file"


def check_keys(
    state: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], what: str,
    ignored: frozenset[str] = frozenset(),
) -> None:
    """Raise ModelError unless ``state`` has exactly ``expected`` (names and shapes), plus
    optionally the ``ignored`` names."""
    names = set(state)
    missing = sorted(set(expected) - names)
    unexpected = sorted(names - set(expected) - ignored)
    if missing and unexpected and all(k.startswith("module.") for k in unexpected):
        raise ModelError(f"{what}: every key has a 'module.' prefix (a DataParallel save); strip "
                         f"the prefix from the state dict keys, e.g. {describe_keys(unexpected)}")
    if missing:
        raise ModelError(f"{what}: missing keys {describe_keys(missing)}; is this the right file?")
    if unexpected:
        raise ModelError(f"{what}: unexpected keys {describe_keys(unexpected)}; is this the right file?")
    wrong = [f"{k} {_shape(state[k])} (expected {tuple(shape)})" for k, shape in expected.items()
             if _shape(state[k]) != tuple(shape)]
    if wrong:
        raise ModelError(f"{what}: mis-shaped keys {describe_keys(wrong)}; is this the right file?")


def _shape(value: Any) -> tuple[int, ...] | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def section(ckpt: Mapping[str, Any], key: str, what: str, path: object, hint: str) -> Mapping[str, Any]:
    """``ckpt[key]`` as a state dict, or a ModelError explaining which file was expected."""
    value = ckpt.get(key)
    if not isinstance(value, Mapping):
        found = ", ".join(sorted(map(str, ckpt))[:KEYS_SHOWN])
        raise ModelError(f"{what} {path} has no '{key}' state dict (top-level keys: {found}); {hint}")
    return value
