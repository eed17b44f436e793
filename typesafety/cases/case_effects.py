"""`effect(..., into=T, error=E)` declares the value and error types."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import Any, assert_type

from mce import Budget, BudgetExceeded, EffectError, Step, effect, within_budget

from ._state import Desk


def counted() -> Step[Desk, EffectError, int]:
    return effect("count", "abc", into=int)


assert_type(effect("count", "abc", into=int), Step[object, EffectError, int])
typed: Step[Desk, EffectError | KeyError, str] = effect("k", 1, into=str, error=KeyError)
untyped: Step[Desk, Any, Any] = effect("k", 1)
wrong: Step[Desk, EffectError, str] = effect("count", "abc", into=int)  # E: mypy[arg-type] pyright[reportAssignmentType]
assert_type(within_budget(counted(), Budget(max_calls=1)), Step[Desk, EffectError | BudgetExceeded, int])
