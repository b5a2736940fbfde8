"""Fixtures shared by the engine tests."""
from __future__ import annotations

import pytest
import torch

from tests.fixtures import synthetic


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    """A random-init VIBE generator on a synthetic SMPL body (the encoder and regressor are what
    the chunking and out-of-memory tests exercise)."""
    from vibe_engine.models.body_io import read_body_file
    from vibe_engine.models.generator import VibeGenerator

    root = tmp_path_factory.mktemp("body")
    body = read_body_file(synthetic.write_smpl_npz(root / "smpl.npz", synthetic.make_smpl_arrays(0)))
    torch.manual_seed(0)
    model = VibeGenerator(body).eval().requires_grad_(False)
    with torch.no_grad():  # keep the random GRU in a non-saturated regime
        for p in model.encoder.parameters():
            p.mul_(0.5)
    return model


@pytest.fixture(autouse=True, scope="session")
def _private_compile_cache(tmp_path_factory):
    """Engine runs in tests (also CLI subprocesses) use a private compiled-artefact folder, never
    the user's cache (vibe_engine/models/compiled.py)."""
    import os

    from vibe_engine.models.compiled import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("compiled_artefacts"))
    yield
