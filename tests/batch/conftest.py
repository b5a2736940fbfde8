"""Fixtures of the batch tests: six small clips cut from the demo and their single-run references."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.batch import helpers as h


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> list[Path]:
    """Six 12-frame clips (442x248) from different parts of the demo, in one folder."""
    return h.cut_clips(tmp_path_factory.mktemp("clips") / "in")


@pytest.fixture(scope="session")
def references(clips, tmp_path_factory) -> dict[str, Path]:
    """One `python -m vibe_engine run` per clip with the batch tests' options, by clip stem."""
    return h.single_runs(clips, tmp_path_factory.mktemp("single"))
