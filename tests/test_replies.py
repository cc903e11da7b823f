"""The reply corpus: every case (at least 30 per role, in the styles of the model families users point autoform
at) through the agents' own parsing, with what a right reading yields or that it must be refused."""

from __future__ import annotations

import pytest
from reply_corpus import ROLES, check, load


@pytest.mark.parametrize("role", ROLES)
def test_corpus_has_at_least_30_cases_per_role_with_refusals_and_styles(role):
    cases = load(role)
    assert len(cases) >= 30
    assert any("refused" in c for c in cases) and sum("expect" in c for c in cases) >= 20
    assert len({c["style"].split()[0].split("-")[0].lower() for c in cases}) >= 6  # many model families


CASES = [pytest.param(role, case, id=f"{role}:{case['id']}") for role in ROLES for case in load(role)]


@pytest.mark.parametrize("role, case", CASES)
def test_reply_is_read_right(role, case):
    problem = check(role, case)
    assert problem is None, f"{case['style']}: {problem}"
