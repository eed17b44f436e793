"""Branch runners: start a parallel block's awaiting branches as tasks, cancel them, await them.

One interface, one implementation per async library (as anyio's
`_backends`): `mce._runtime.runner_asyncio` (bare tasks - an anyio task
group costs several times `asyncio.gather` per task), `mce._runtime.runner_trio`
(a bare nursery - a third of an anyio task group's cost per task) and
`TaskGroupRunner` here, for any other library anyio runs on.

>>> type(runner_for("trio")).__name__
'TrioRunner'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio

Work = Callable[[Any, int, int, Any], Coroutine[Any, Any, None]]
"""A branch task's body: `work(block, k, i, first)` finishes branch `i` as task `k`."""


class BranchRunner(ABC):
    """Runs the awaiting branches of one parallel block, each in a task of its own.

    `run` starts a task per pending branch and returns once every one has
    finished - even when the caller is cancelled meanwhile; `cancel` stops
    every started branch at its next await. A task marks itself in `started`
    when it begins and calls `finished()` when it ends.
    """

    __slots__ = ("live", "started")

    def __init__(self) -> None:
        self.started: list[bool] = []
        self.live = 0

    @abstractmethod
    async def run(self, work: Work, block: Any, pending: Sequence[tuple[int, Any]]) -> None:
        """Start `work(block, k, i, first)` for each pending `(i, first)`; await them all."""

    @abstractmethod
    def cancel(self) -> None:
        """Cancel every started branch task at its next await."""

    def finished(self) -> None:
        """A branch task has ended."""
        self.live -= 1


class TaskGroupRunner(BranchRunner):
    """Branches in an anyio task group (or a group opened by `open_group`)."""

    __slots__ = ("_open_group", "_scope")

    def __init__(self, open_group: Callable[[], Any] = anyio.create_task_group) -> None:
        super().__init__()
        self._open_group = open_group
        self._scope: Any = None  # the group's cancel scope (anyio's or trio's)

    async def run(self, work: Work, block: Any, pending: Sequence[tuple[int, Any]]) -> None:
        self.started = [False] * len(pending)
        self.live = len(pending)
        try:
            async with self._open_group() as group:
                self._scope = group.cancel_scope
                for k, (i, first) in enumerate(pending):
                    group.start_soon(work, block, k, i, first)
        except BaseExceptionGroup as group:
            # Branch tasks keep what they raise; what still reaches the group is
            # delivered to this task itself (trio raises Ctrl-C's KeyboardInterrupt
            # where the main task waits): it leaves as itself, not grouped.
            raise ungroup(group) from None

    def cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()


def ungroup(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one exception a group stands for: an interrupt or exit first, else the first.

    >>> ungroup(BaseExceptionGroup("", [ValueError(1), BaseExceptionGroup("", [KeyboardInterrupt()])]))
    KeyboardInterrupt()
    """
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)
    for leaf in leaves:
        if isinstance(leaf, (KeyboardInterrupt, SystemExit)):
            return leaf
    return leaves[0]


def runner_for(backend: str) -> BranchRunner:
    """The branch runner for the async library running us ("asyncio", "trio" or another)."""
    if backend == "asyncio":
        from mce._runtime.runner_asyncio import AsyncioRunner

        return AsyncioRunner()
    if backend == "trio":
        from mce._runtime.runner_trio import TrioRunner

        return TrioRunner()
    return TaskGroupRunner()
