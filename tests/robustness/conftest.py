"""Session inputs for the robustness suite (built lazily, once)."""
from __future__ import annotations

import pytest

from tests.robustness.inputs import Assets


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Assets:
    return Assets(tmp_path_factory.mktemp("robustness_assets"))


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("robustness_runs")
