"""How far streamed GRU chunks are from one pass, in float32 and in float64 (issue 14).

The chunking tests (tests/engine/test_pipeline.py) compare in float64: in float32 the two differ
by the CPU's GEMM/GRU kernel blocking (up to ~8e-5 on AVX-512 + AMX), in float64 by one float32
rounding of the pipeline's output. Prints max |streamed − one pass| per output, its scale and
the ratio, next to float32's eps.

    .venv/bin/python benchmarks/gru_chunking.py
"""
from __future__ import annotations

import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine.test_pipeline import _one_pass, _run, _stream_all  # noqa: E402
from tests.fixtures import synthetic  # noqa: E402
from vibe_engine.models.body_io import read_body_file  # noqa: E402
from vibe_engine.models.generator import VibeGenerator  # noqa: E402


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="gru-chunking-"))
    body = read_body_file(synthetic.write_smpl_npz(root / "smpl.npz", synthetic.make_smpl_arrays(0)))
    torch.manual_seed(0)
    g32 = VibeGenerator(body).eval().requires_grad_(False)
    with torch.no_grad():  # the tests' non-saturated random GRU
        for p in g32.encoder.parameters():
            p.mul_(0.5)
    g64 = copy.deepcopy(g32).double()
    g64.compute_dtype = torch.float64
    feats = np.random.default_rng(0).normal(0, 1, (200, 2048))
    print(f"| dtype | output | max abs diff | scale | ratio (f32 eps {np.finfo(np.float32).eps:.2e}) |")
    print("|---|---|---|---|---|")
    for name, model, f in (("float32", g32, feats.astype(np.float32)), ("float64", g64, feats)):
        run, _ = _run(root)
        got, ref = _stream_all(run, model, f, final_every=7), _one_pass(model, f)
        for key in ref:
            diff, scale = float(np.abs(got[key] - ref[key]).max()), float(np.abs(ref[key]).max())
            print(f"| {name} | {key} | {diff:.2e} | {scale:.3g} | {diff / scale:.2e} |")


if __name__ == "__main__":
    main()
