"""The asyncio branch runner: bare tasks and one completion future.

An anyio task group costs several times `asyncio.gather` per task. This
keeps the same structure by hand: every branch runs in a task of its own
(so cancel scopes inside it behave), failure cancels the siblings, and
`run` does not return - even when cancelled itself - until every branch
task has finished.

>>> AsyncioRunner().live
0
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from mce._runtime.runners import BranchRunner, Work


class AsyncioRunner(BranchRunner):
    """Branches as bare asyncio tasks."""

    __slots__ = ("_tasks", "_waiter")

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[asyncio.Task[None]] = []
        self._waiter: asyncio.Future[None] | None = None

    async def run(self, work: Work, block: Any, pending: Sequence[tuple[int, Any]]) -> None:
        loop = asyncio.get_running_loop()
        n = len(pending)
        self.started = [False] * n
        self.live = n
        tasks = self._tasks
        make = asyncio.Task if loop.get_task_factory() is None else loop.create_task
        for k, (i, first) in enumerate(pending):
            tasks.append(make(work(block, k, i, first)))
        cancelled: BaseException | None = None
        while self.live:
            self._waiter = loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError as exc:
                # Cancelled from outside (a timeout, an enclosing failure): cancel
                # the branches and wait for them before letting the cancellation on.
                if cancelled is None:
                    cancelled = exc
                    block.cancelled = True
                    self.cancel()
        if cancelled is not None:
            raise cancelled

    def cancel(self) -> None:
        # Only tasks that have started are cancelled; one that has not
        # started yet sees the block cancelled when it does, and ends at once.
        me = asyncio.current_task()
        started = self.started
        for k, task in enumerate(self._tasks):
            if started[k] and task is not me:
                task.cancel()

    def finished(self) -> None:
        self.live -= 1
        waiter = self._waiter
        if self.live == 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)
