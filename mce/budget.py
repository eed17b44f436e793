"""Budgets: bound the model calls, tokens and wall time of a part of a workflow.

`within_budget(step, Budget(...))` runs `step` so that every effect it
performs - in any of its parallel branches, sub-agents included - is counted
against the budget. The first effect that would exceed `max_calls`, or a
result that takes the tokens past `max_tokens`, or `max_seconds` of wall
time, stops the step: the remaining work is cancelled and the step fails
with `BudgetExceeded`. Budgets nest; an effect counts against each.

>>> from mce import effect, gather, run_sync
>>> work = gather([effect("k", i, handler=lambda r: r) for i in range(5)])
>>> run_sync(within_budget(work, Budget(max_calls=3)), None)
Err(error=BudgetExceeded(resource='calls', limit=3), state=None)
>>> run_sync(within_budget(work, Budget(max_calls=5)), None).value
(0, 1, 2, 3, 4)
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol, TypeVar, final

from attrs import frozen

from mce._runtime.nodes import BUDGET as BUDGET
from mce.effects import token_usage
from mce.step import Step

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")

BudgetResource = Literal["calls", "tokens", "seconds"]
"""Which limit of a `Budget` ran out (`BudgetExceeded.resource`)."""


@final
@frozen
class Budget:
    """Limits for a part of a workflow; None means unlimited.

    >>> Budget(max_calls=10, max_tokens=5000)
    Budget(max_calls=10, max_tokens=5000, max_seconds=None)
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None

    def __attrs_post_init__(self) -> None:
        for name, kinds, what in (
            ("max_calls", (int,), "an int"),
            ("max_tokens", (int,), "an int"),
            ("max_seconds", (int, float), "a number of seconds"),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise TypeError(
                    f"Budget({name}=...) must be {what} or None, "
                    f"got {value!r} of type {type(value).__name__}"
                )
            if not value > 0:  # also refuses NaN
                raise ValueError(f"Budget({name}=...) must be positive or None, got {value!r}")


@final
@frozen
class BudgetExceeded:
    """A budget ran out: which resource, and its limit.

    >>> str(BudgetExceeded("tokens", 1000))
    'budget exceeded: more than 1000 tokens'
    """

    resource: BudgetResource
    limit: float

    def __str__(self) -> str:
        return f"budget exceeded: more than {self.limit:g} {self.resource}"


@final
class _Budgeted(Step[Any, Any, Any]):
    __slots__ = ("budget", "step")
    _tag = BUDGET

    def __init__(self, step: Step[Any, Any, Any], budget: Budget) -> None:
        self.step = step
        self.budget = budget

    def __repr__(self) -> str:
        return f"within_budget({self.step!r}, {self.budget!r})"


class Limits(Protocol):
    """What a `Tracker` counts against: a `Budget`, or what is left of one for a sub-run."""

    @property
    def max_calls(self) -> int | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def max_seconds(self) -> float | None: ...


class Tracker:
    """The running count of one budget scope (used by the interpreter)."""

    __slots__ = ("budget", "calls", "exceeded", "parent", "scope", "tokens")

    def __init__(self, budget: Limits, parent: Tracker | None) -> None:
        self.budget = budget
        self.parent = parent
        self.calls = 0
        self.tokens = 0
        self.exceeded: BudgetExceeded | None = None
        self.scope: Any = None  # the anyio cancel scope around the budgeted step

    def _stop(self, reason: BudgetExceeded) -> BudgetExceeded:
        if self.exceeded is None:
            self.exceeded = reason
            if self.scope is not None:
                self.scope.cancel()
        return self.exceeded

    def charge_call(self, *, force: bool = False) -> BudgetExceeded | None:
        """Count one effect; the exceeded budget if it may not run.

        `force` counts an effect that is known to have run (a replayed one)
        without refusing it.
        """
        tracker: Tracker | None = self
        while tracker is not None:
            if not force:
                if tracker.exceeded is not None:
                    return tracker.exceeded
                limit = tracker.budget.max_calls
                if limit is not None and tracker.calls >= limit:
                    return tracker._stop(BudgetExceeded("calls", limit))
            tracker.calls += 1
            tracker = tracker.parent
        return None

    def charge_value(self, value: Any, *, force: bool = False) -> BudgetExceeded | None:
        """Count the tokens an effect's value reports (`.usage`), and a sub-run's calls.

        A sub-agent's run (`mce.meta.SubAgentRun`) reports the calls it made
        and which of its allowance ran out; they count here as if made here.
        `force` counts without refusing (a value a recorded run already used).
        """
        sub = getattr(value, "__mce_subrun__", None)
        if sub is not None:
            exceeded = self._charge_subrun(*sub, force=force)
            if exceeded is not None:
                return exceeded
        tokens = token_usage(value)
        if tokens is None:
            return None
        used = sum(tokens)
        tracker: Tracker | None = self
        while tracker is not None:
            tracker.tokens += used
            limit = tracker.budget.max_tokens
            if not force and limit is not None and tracker.tokens > limit:
                return tracker._stop(BudgetExceeded("tokens", limit))
            tracker = tracker.parent
        return None

    def refuse(self, reason: BudgetExceeded) -> BudgetExceeded:
        """Stop as a recorded run did: the budget (this one or an enclosing one) `reason` names."""
        tracker: Tracker | None = self
        while tracker is not None:
            b = tracker.budget
            if (b.max_calls if reason.resource == "calls" else b.max_tokens) == reason.limit:
                return tracker._stop(reason)
            tracker = tracker.parent
        return self._stop(reason)

    def _charge_subrun(
        self, calls: int, exhausted: str | None, *, force: bool = False
    ) -> BudgetExceeded | None:
        tracker: Tracker | None = self
        if force:
            while tracker is not None:
                tracker.calls += calls
                tracker = tracker.parent
            return None
        while tracker is not None:
            if tracker.exceeded is not None:
                return tracker.exceeded
            tracker.calls += calls
            limit = tracker.budget.max_calls
            if limit is not None and (
                tracker.calls > limit or (exhausted == "calls" and tracker.calls >= limit)
            ):
                return tracker._stop(BudgetExceeded("calls", limit))
            tracker = tracker.parent
        if exhausted == "seconds":
            # The sub-run used up the time of the enclosing budget with the earliest deadline.
            tightest: Tracker | None = None
            tracker = self
            while tracker is not None:
                deadline = getattr(tracker.scope, "deadline", math.inf)
                if deadline != math.inf and (
                    tightest is None or deadline < getattr(tightest.scope, "deadline", math.inf)
                ):
                    tightest = tracker
                tracker = tracker.parent
            if tightest is not None and tightest.budget.max_seconds is not None:
                return tightest._stop(BudgetExceeded("seconds", tightest.budget.max_seconds))
        return None


def within_budget(step: Step[_S, _E, _A], budget: Budget) -> Step[_S, _E | BudgetExceeded, _A]:
    """Run `step` under `budget` (see the module docstring).

    >>> import anyio
    >>> from mce import lift, run_sync, sleep
    >>> run_sync(within_budget(sleep(5), Budget(max_seconds=0.01)), None).error
    BudgetExceeded(resource='seconds', limit=0.01)
    """
    if not isinstance(step, Step):
        raise TypeError(f"within_budget(step, budget) needs a Step as step, got {step!r}")
    if not isinstance(budget, Budget):
        raise TypeError(f"within_budget(step, budget) needs a Budget as budget, got {budget!r}")
    return _Budgeted(step, budget)


__all__ = [
    "Budget",
    "BudgetExceeded",
    "BudgetResource",
    "within_budget",
]
