"""Sub-runs: a workflow run inside one effect of a parent run (`mce.meta.remote_agent`).

While a remote effect's handler runs, `PARENT` tells it what the parent
allows: the calls, tokens and seconds left in every enclosing budget (the
tightest of each), where the effect sits, and the parent's tracer. The
sub-run (`run_child`) runs under that allowance, records its own effects in
a journal of its own, forwards its trace events to the parent's tracer with
positions under the effect's, and reports what it used; the parent charges
that to its budgets (`mce.budget.Tracker.charge_value`), live and on replay
alike, since the report is the effect's journaled value. On a Ray worker
the executor ships the allowance (plain numbers) instead of the tracer.

>>> allowance_of(None) is None
True
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio
from attrs import evolve, frozen

from mce.events import TraceEvent, Tracer

if TYPE_CHECKING:
    from mce.budget import Tracker


@frozen
class Allowance:
    """What every enclosing budget still allows (None: unlimited), as plain numbers.

    >>> Allowance(calls=3, tokens=None, seconds=None).max_calls
    3
    """

    calls: int | None
    tokens: int | None
    seconds: float | None

    # `mce.budget.Limits`: a `Tracker` counts against these as against a `Budget`'s.
    @property
    def max_calls(self) -> int | None:
        return self.calls

    @property
    def max_tokens(self) -> int | None:
        return self.tokens

    @property
    def max_seconds(self) -> float | None:
        return self.seconds


@frozen
class Parent:
    """The parent effect a sub-run runs inside."""

    allowance: Allowance | None
    position: str
    tracer: Tracer | None = None


PARENT: ContextVar[Parent | None] = ContextVar("mce.parent_effect", default=None)


def _tighter(current: Any, left: Any) -> Any:
    return left if current is None else min(current, left)


def allowance_of(tracker: Tracker | None) -> Allowance | None:
    """The tightest calls, tokens and seconds left over a chain of budget trackers."""
    if tracker is None:
        return None
    calls: int | None = None
    tokens: int | None = None
    seconds: float | None = None
    now = anyio.current_time()
    t: Tracker | None = tracker
    while t is not None:
        budget = t.budget
        if budget.max_calls is not None:
            calls = _tighter(calls, max(0, budget.max_calls - t.calls))
        if budget.max_tokens is not None:
            tokens = _tighter(tokens, max(0, budget.max_tokens - t.tokens))
        deadline = getattr(t.scope, "deadline", math.inf)
        if deadline != math.inf:
            seconds = _tighter(seconds, max(0.0, deadline - now))
        t = t.parent
    return Allowance(calls, tokens, seconds)


def child_tracer(parent: Parent | None) -> Tracer | None:
    """The sub-run's tracer: the parent's, with positions under the parent effect's."""
    if parent is None or parent.tracer is None:
        return None
    tracer = parent.tracer
    prefix = f"{parent.position}/"

    def forward(event: TraceEvent) -> None:
        tracer(evolve(event, position=prefix + event.position))

    return forward


@frozen
class ChildRun:
    """What a sub-run did: its outcome, its journal records, what it used, what ran out."""

    ok: bool
    result: Any  # the value, or the error
    records: tuple[dict[str, Any], ...]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    exhausted: str | None  # "calls" | "tokens" | "seconds": the allowance ran out


async def run_child(step: Any, handlers: dict[str, Any]) -> ChildRun:
    """Run `step` as a sub-run of the effect whose handler calls this (see the module docstring)."""
    from mce._runtime.entry import run_under
    from mce.budget import Tracker
    from mce.journal import Journal

    parent = PARENT.get()
    allowance = parent.allowance if parent is not None else None
    tracker = Tracker(allowance, None) if allowance is not None else None
    journal = Journal()
    out: Any = None
    with anyio.move_on_after(
        allowance.seconds if allowance is not None and allowance.seconds is not None else math.inf
    ):
        out = await run_under(
            step, handlers=handlers, journal=journal, trace=child_tracer(parent), budget=tracker
        )
    _, records = journal.load()
    if out is None:  # the allowance's time ran out
        made = sum(1 for r in records if r.get("fp"))  # effects, not scheduling decisions
        return ChildRun(False, None, tuple(records), made, 0, 0, "seconds")
    from mce.outcome import Waiting

    if isinstance(out, Waiting):  # a sub-run has no journal of its own to resume
        asked = ", ".join(q.text for q in out.questions)
        raise RuntimeError(f"a sub-agent cannot wait for a person (it asked: {asked})")
    report = out.report
    exhausted = None
    if tracker is not None and tracker.exceeded is not None:
        exhausted = tracker.exceeded.resource
    return ChildRun(
        out.ok,
        out.value if out.ok else out.error,
        tuple(records),
        # Under an allowance, the calls it let through (as the parent counts
        # its own: when dispatched, run to the end or not).
        tracker.calls if tracker is not None else report.live_calls,
        report.prompt_tokens,
        report.completion_tokens,
        exhausted,
    )
