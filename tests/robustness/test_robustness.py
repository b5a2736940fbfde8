"""One test per row of the robustness table (tests/robustness/cases.py): the real CLI, batch or
API in a subprocess must fail (or succeed) exactly as the contract says; see runner.verify."""
from __future__ import annotations

import pytest

from tests.robustness.cases import CASES
from tests.robustness.runner import describe, run_case, verify


def test_the_table_has_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, assets, runs_root):
    outcome = run_case(case, assets, runs_root)
    broken = verify(case, outcome)
    assert not broken, "\n".join(broken) + "\n" + describe(case, outcome)
