"""How a plan's tasks are started: the ready ones first, each of the others once its inputs are done.

>>> from mce import pure, run_sync
>>> run_sync(ready_first([pure(1), after([pure(0)], pure(2))], [True, False], None), None).value
(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio.lowlevel

from mce.step import Step, gather, lift, pure


def all_of(steps: Sequence[Step[Any, Any, Any]]) -> Step[object, Any, tuple[Any, ...]]:
    """The values of already-started shared steps, awaited one after another.

    Every task of a plan is started by `finish`, so awaiting a task's inputs
    in turn costs no time (it waits for the slowest either way) and saves a
    parallel block - an event-loop round trip - on every hop of the critical
    path.

    >>> from mce import run_sync
    >>> run_sync(all_of([pure(1), pure(2)]), None).value
    (1, 2)
    """

    def append(step: Step[Any, Any, Any]) -> Callable[[tuple[Any, ...]], Step[Any, Any, Any]]:
        return lambda acc: step.map(lambda v: (*acc, v))

    result: Step[object, Any, tuple[Any, ...]] = pure(())
    for step in steps:
        result = result.then(append(step))
    return result


_YIELD = lift(anyio.lowlevel.checkpoint)


def after(steps: Sequence[Step[Any, Any, Any]], then: Step[Any, Any, Any]) -> Step[Any, Any, Any]:
    """`then`, once every step of `steps` has finished (their values are not kept).

    With steps to wait for, it first lets the event loop run what is ready:
    the branches of a block are started one after another, and the tasks
    whose inputs are done then begin at once, instead of after every other
    branch has set up its wait.
    """
    result = then
    for step in reversed(steps):
        result = step.then(_const(result))
    return _YIELD.then(_const(result)) if steps else result


def _const(step: Step[Any, Any, Any]) -> Callable[[Any], Step[Any, Any, Any]]:
    return lambda _: step


def ready_first(
    branches: Sequence[Step[Any, Any, Any]],
    ready: Sequence[bool],
    limit: int | None,
) -> Step[Any, Any, tuple[Any, ...]]:
    """`gather(branches, limit=limit)`, the `ready` branches started before the others are set up.

    A parallel block sets up every branch before any of them runs, at
    several microseconds a branch: with a thousand tasks, the tasks that
    need nothing would start milliseconds late, on the critical path. So
    they run in a block of their own first, and the others in a block
    started once those have begun. The values come in the order of
    `branches`, and a failure anywhere still cancels everything.
    With a `limit` the branches share one block: it bounds them all.
    """
    first = [b for b, r in zip(branches, ready, strict=True) if r]
    rest = [b for b, r in zip(branches, ready, strict=True) if not r]
    if limit is not None or not first or not rest:
        return gather(branches, limit=limit)

    def in_order(parts: tuple[Any, ...]) -> tuple[Any, ...]:
        done, later = iter(parts[:-1]), iter(parts[-1])
        return tuple(next(done) if r else next(later) for r in ready)

    return gather([*first, _YIELD.then(_const(gather(rest)))]).map(in_order)
