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
    """The running count of one budget scope (used by the interpreter).

    On replay and resume a scope starts pre-charged with every effect the
    journal recorded under its position (`precharge`): `covers` is that
    position's prefix, and a served effect under it is not charged again.
    """

    __slots__ = ("budget", "calls", "covers", "exceeded", "parent", "scope", "tokens")

    def __init__(self, budget: Limits, parent: Tracker | None) -> None:
        self.budget = budget
        self.parent = parent
        self.calls = 0
        self.tokens = 0
        self.exceeded: BudgetExceeded | None = None
        self.scope: Any = None  # the anyio cancel scope around the budgeted step
        self.covers: str | None = None  # the prefix of the positions pre-charged

    def _stop(self, reason: BudgetExceeded) -> BudgetExceeded:
        if self.exceeded is None:
            self.exceeded = reason
            if self.scope is not None:
                self.scope.cancel()
        return self.exceeded

    def charge_call(self) -> BudgetExceeded | None:
        """Count one effect about to run; the exceeded budget if it may not run."""
        tracker: Tracker | None = self
        while tracker is not None:
            if tracker.exceeded is not None:
                return tracker.exceeded
            limit = tracker.budget.max_calls
            if limit is not None and tracker.calls >= limit:
                return tracker._stop(BudgetExceeded("calls", limit))
            tracker.calls += 1
            tracker = tracker.parent
        return None

    def charge_value(self, value: Any) -> BudgetExceeded | None:
        """Count the tokens a live effect's value reports (`.usage`), and a sub-run's calls.

        A sub-agent's run (`mce.meta.SubAgentRun`) reports the calls it made
        and which of its allowance ran out; they count here as if made here.
        """
        sub = getattr(value, "__mce_subrun__", None)
        if sub is not None:
            exceeded = self._charge_subrun(*sub)
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
            if limit is not None and tracker.tokens > limit:
                return tracker._stop(BudgetExceeded("tokens", limit))
            tracker = tracker.parent
        return None

    def precharge(self, prefix: str, calls: int, tokens: int) -> BudgetExceeded | None:
        """Count what the journal recorded under `prefix` (this scope's) before anything runs.

        The recorded effects ran, whichever order a replay or a resume
        serves them in: counting them up front means a live effect of a
        resume is charged after them all, never before the later ones.
        Each scope counts them once, for itself only (an enclosing scope
        counted them when it started). Which limit the recorded effects
        already exceed, if any - the caller decides what to do with it.
        """
        self.covers = prefix
        self.calls += calls
        self.tokens += tokens
        b = self.budget
        if b.max_calls is not None and self.calls > b.max_calls:
            return BudgetExceeded("calls", b.max_calls)
        if b.max_tokens is not None and self.tokens > b.max_tokens:
            return BudgetExceeded("tokens", b.max_tokens)
        return None

    def charge_served_call(self, position: str) -> None:
        """Count a served effect, in the scopes that did not pre-charge it; never refuses."""
        tracker: Tracker | None = self
        while tracker is not None:
            covers = tracker.covers
            if covers is None or not position.startswith(covers):
                tracker.calls += 1
            tracker = tracker.parent

    def charge_served_value(self, value: Any, position: str, estimate: tuple[int, int]) -> None:
        """Count a served value's tokens (and a sub-run's calls); never refuses.

        A scope that pre-charged `position` counted `estimate` (calls,
        tokens) from the record: it is corrected to what the decoded value
        reports.
        """
        sub = getattr(value, "__mce_subrun__", None)
        calls = sub[0] if sub is not None else 0
        usage = token_usage(value)
        tokens = sum(usage) if usage is not None else 0
        tracker: Tracker | None = self
        while tracker is not None:
            covers = tracker.covers
            if covers is None or not position.startswith(covers):
                tracker.calls += calls
                tracker.tokens += tokens
            else:
                tracker.calls += calls - estimate[0]
                tracker.tokens += tokens - estimate[1]
            tracker = tracker.parent

    def refuse(self, reason: BudgetExceeded) -> BudgetExceeded:
        """Stop as a recorded run did: the budget (this one or an enclosing one) `reason` names."""
        tracker: Tracker | None = self
        while tracker is not None:
            b = tracker.budget
            if (b.max_calls if reason.resource == "calls" else b.max_tokens) == reason.limit:
                return tracker._stop(reason)
            tracker = tracker.parent
        return self._stop(reason)

    def _charge_subrun(self, calls: int, exhausted: str | None) -> BudgetExceeded | None:
        tracker: Tracker | None = self
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


def recorded_charge(raw: Any) -> tuple[int, int]:
    """(calls beyond its own, tokens) a journaled value reports, read from its journal form.

    What a scope pre-charges for a recorded effect before the program asks
    for it, so before its declared type is known: an attrs or dataclass
    value's `usage` field (`prompt_tokens`, `completion_tokens`), and a
    sub-agent's run (`mce.meta.SubAgentRun`: its `calls`, beside
    `exhausted`). When the effect is served, the decoded value's report
    replaces this estimate (`Tracker.charge_served_value`).

    >>> from mce.codec import encode
    >>> from mce.llm import AssistantMessage, Usage
    >>> recorded_charge(encode(AssistantMessage("hi", usage=Usage(3, 1)))), recorded_charge(7)
    ((0, 4), (0, 0))
    >>> recorded_charge(encode({"fields": {"usage": {"fields": {"prompt_tokens": 9}}}}))
    (0, 0)
    """
    if type(raw) is not dict or ("$attrs" not in raw and "$dataclass" not in raw):
        return 0, 0  # not a class instance (a dict with such keys is written as "$dict")
    fields = raw.get("fields")
    if type(fields) is not dict:
        return 0, 0
    tokens = 0
    usage = fields.get("usage")
    counts = usage.get("fields") if type(usage) is dict else None
    if type(counts) is dict:
        for name in ("prompt_tokens", "completion_tokens"):
            n = counts.get(name)
            if type(n) is int:
                tokens += n
    calls = fields.get("calls")
    if type(calls) is not int or "exhausted" not in fields:
        calls = 0
    return calls, tokens


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
