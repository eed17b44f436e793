"""The laws have teeth: every deliberately broken instance fails at least one law."""

from __future__ import annotations

from typing import Any

import pytest

from mce.laws import broken_laws

from .mutants import MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed(mutant: Any) -> None:
    assert broken_laws(mutant, max_examples=100, first_only=True), f"no law catches: {mutant.name}"


def test_the_real_instances_pass_the_same_checks() -> None:
    from mce.laws import STEP

    assert broken_laws(STEP, max_examples=50) == []
