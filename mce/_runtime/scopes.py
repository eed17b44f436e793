"""Scopes: a timeout, a budget, a shared step - each runs a step in a nested context.

Each records what it decided (a timer fired, a budget ran out of time) in
the journal, so a replay or a resume decides the same; a shared step runs
once per run, in a task of its own that ends before the run does, whoever
asks for it first.

>>> from mce import Budget, effect, run_sync, share, within_budget
>>> once = share(effect("k", 1, handler=lambda r: r + 1))
>>> run_sync(once.then(lambda a: once.map(lambda b: (a, b))), None).value
(2, 2)
>>> two = effect("k", 1, handler=str).then(lambda _: effect("k", 2, handler=str))
>>> run_sync(within_budget(two, Budget(max_calls=1)), None).error
BudgetExceeded(resource='calls', limit=1)
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import anyio

from mce._runtime import driver as _driver
from mce._runtime.context import RunContext, Seq, ShareCell
from mce._runtime.diagnostics import labels
from mce._runtime.replay import BUDGET_DECISION, TIMEOUT_DECISION
from mce._runtime.replay import exceeded as _exceeded
from mce.budget import BudgetExceeded, Tracker
from mce.errors import StepTimeout
from mce.journal import ReplayDivergence
from mce.outcome import Err, Ok

if TYPE_CHECKING:
    import asyncio


async def run_timeout(
    node: Any, k: int, state: Any, run: RunContext, stack: list[Any], where: Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a timed step. Whether the timer fired is journaled, so a replay agrees."""
    position = f"{where.prefix}{k}"
    inner = Seq(where, stack, None, f"{position}/")
    effects = run.effects
    recorded = effects.decision(position, TIMEOUT_DECISION) if effects.serving else None
    if recorded is not None and recorded["fired"] and effects.retrying:
        # A resume that re-runs what failed runs a timed-out step again, under a
        # new timer; its new decision is journaled and supersedes the recorded one.
        recorded = None
    if recorded is None and effects.mode == "replay":
        raise ReplayDivergence(
            position, TIMEOUT_DECISION, "the journal has no record of this timeout"
        )
    out: Ok[Any, Any] | Err[Any, Any] | None = None
    if recorded is not None:
        if not recorded["fired"]:
            out = await _driver.drive(node.step, state, run, inner)
        else:
            effects.skip(inner.prefix)  # what ran before the timer fired is not asked for
    else:
        with anyio.move_on_after(node.seconds):
            out = await _driver.drive(node.step, state, run, inner)
        await effects.record_decision(position, TIMEOUT_DECISION, {"fired": out is None})
    if out is not None:
        return out
    label = node.step.label
    if label is None:
        named = labels(stack)
        label = named[-1] if named else None
    return Err(StepTimeout(node.seconds, label), state)


async def run_budget(
    node: Any, k: int, state: Any, run: RunContext, stack: list[Any], where: Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a step under a budget: charge its effects; cancel it all when one runs out.

    Which effect a budget refuses under concurrency depends on timing, and
    so does running out of time: when a budget runs out, that is journaled
    as a decision at the budget's position, and a replay or a resume that
    finds it does not run the step again - it fails the same way, like a
    timed-out timeout. A budget that did not run out ran every effect, so
    replaying them charges the same totals and refuses none.

    On replay and resume the budget starts charged with every effect the
    journal holds under it, so a resumed run's live effects can only spend
    what the recorded ones left - even when a crash lost a refusal.
    """
    position = f"{where.prefix}{k}"
    budget = node.budget
    inner = Seq(where, stack, None, f"{position}/")
    tracker = Tracker(budget, where.budget)
    inner.budget = tracker
    effects = run.effects
    if effects.serving:
        recorded = effects.decision(position, BUDGET_DECISION)
        if recorded is None and budget.max_seconds is not None and effects.mode == "replay":
            raise ReplayDivergence(
                position, BUDGET_DECISION, "the journal has no record of this budget"
            )
        if recorded is not None and recorded.get("exceeded") is not None:
            effects.skip(inner.prefix)
            return Err(_exceeded(recorded["exceeded"], position), state)
        if recorded is not None and recorded["out_of_time"]:
            effects.skip(inner.prefix)
            return Err(BudgetExceeded("seconds", budget.max_seconds), state)
        decided = recorded is not None
        # What the journal holds under the budget ran: it counts before any
        # effect runs live, whatever order the step asks for it in.
        spent = effects.precharge(tracker, inner.prefix)
        if spent is not None and effects.mode == "resume" and not decided:
            # The recorded run went past this limit and the crash lost the
            # decision: fail as it did, and journal the decision now.
            await effects.record_decision(
                position,
                BUDGET_DECISION,
                {
                    "out_of_time": False,
                    "exceeded": {"resource": spent.resource, "limit": spent.limit},
                },
            )
            return Err(spent, state)
    else:
        decided = False
    out: Ok[Any, Any] | Err[Any, Any] | None = None
    with anyio.CancelScope() as scope:
        if budget.max_seconds is not None and not decided:
            scope.deadline = anyio.current_time() + budget.max_seconds
        tracker.scope = scope
        out = await _driver.drive(node.step, state, run, inner)
    exceeded = tracker.exceeded
    out_of_time = out is None and exceeded is None
    if not decided and (budget.max_seconds is not None or exceeded is not None):
        await effects.record_decision(
            position,
            BUDGET_DECISION,
            {
                "out_of_time": out_of_time,
                "exceeded": None
                if exceeded is None
                else {"resource": exceeded.resource, "limit": exceeded.limit},
            },
        )
    if exceeded is not None:
        return Err(exceeded, state)
    if out is None:
        return Err(BudgetExceeded("seconds", budget.max_seconds), state)
    return out


async def _compute_share(
    node: Any, cell: ShareCell, state: Any, run: RunContext, where: Seq
) -> None:
    try:
        cell.outcome = await _driver.drive(node.step, state, run, where)
    except anyio.get_cancelled_exc_class():
        raise
    except BaseException as exc:  # a bug (or an interrupt): every consumer re-raises it
        cell.bug = exc
    finally:
        cell.done.set()


def _share_key(node: Any, run: RunContext) -> str:
    """The name a shared step's effects are positioned under: its key, label or order."""
    base = node.key or node.step.label or f"#{len(run.shares)}"
    key, n = base, 1
    while key in run.share_keys and run.share_keys[key] is not node:
        n += 1
        key = f"{base}#{n}"
    run.share_keys[key] = node
    return key


class _Host:
    """A run's shared steps as bare asyncio tasks, ended before the run's task group ends.

    An anyio task-group task costs several times a bare asyncio task to
    start, and steps a wrapper coroutine (in a cancel scope) on every
    resume. Only `keep` runs in the run's task group: when the group is
    cancelled - the run is over, or is cancelled itself - it cancels every
    shared step still running and waits for them, so none outlives its run.
    """

    __slots__ = ("asyncio", "tasks")

    def __init__(self) -> None:
        import asyncio  # running: imported already

        self.asyncio = asyncio
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self.asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def keep(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            # Shielded: the group's cancellation must not cut this wait short.
            with anyio.CancelScope(shield=True):
                while self.tasks:
                    for task in self.tasks:
                        task.cancel()
                    await self.asyncio.wait(self.tasks)


def _start(node: Any, cell: ShareCell, state: Any, run: RunContext, seq: Seq) -> None:
    """Start computing a shared step: beside the run's task group on asyncio, else in it."""
    tg = run.tg
    assert tg is not None, "shared steps are forced only inside run()'s task group"
    if run.backend != "asyncio":
        tg.start_soon(_compute_share, node, cell, state, run, seq)
        return
    host = run.share_host
    if host is None:
        host = run.share_host = _Host()
        tg.start_soon(host.keep)
    host.start(_compute_share(node, cell, state, run, seq))


async def force_share(
    node: Any, state: Any, run: RunContext, where: Seq, stack: list[Any]
) -> Ok[Any, Any] | Err[Any, Any]:
    cell = run.shares.get(node)
    if cell is None:
        # The shared step runs in a task of its own, not in this consumer's
        # task: cancelling one consumer must not cancel the others' future.
        cell = run.shares[node] = ShareCell()
        _start(node, cell, state, run, Seq(where, stack, None, f"s:{_share_key(node, run)}/"))
    await cell.done.wait()
    if cell.bug is not None:
        raise cell.bug
    out = cell.outcome
    assert out is not None
    if type(out) is Ok:
        return Ok(out.value, state)
    return out
