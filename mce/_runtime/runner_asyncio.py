"""The asyncio branch runner: bare tasks and one completion future.

An anyio task group costs several times `asyncio.gather` per task. This
keeps the same structure by hand: every branch runs in a task of its own
(so cancel scopes inside it behave), failure cancels the siblings, and
`run` does not return - even when cancelled itself - until every branch
task has finished.

A lean branch (a block's `lean[i]`: a branch that is just a lifted
coroutine, see `mce._runtime.parallel`) gets a task on its own coroutine,
finished by a done-callback, as `asyncio.gather` does: no wrapping
coroutine. Every task of a block shares one name (the block's position),
and the done-callbacks one context, so that neither costs an object per
branch. The one difference a lean branch makes: a `KeyboardInterrupt` or
`SystemExit` raised by the lifted coroutine itself leaves through the event
loop, as from any asyncio task, rather than through the block.

>>> AsyncioRunner().live
0
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Sequence
from typing import Any

from mce._runtime.parallel import lean_done
from mce._runtime.runners import BranchRunner, Work


class AsyncioRunner(BranchRunner):
    """Branches as bare asyncio tasks."""

    __slots__ = ("_block", "_tasks", "_waiter")

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[asyncio.Task[None]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._block: Any = None

    async def run(self, work: Work, block: Any, pending: Sequence[tuple[int, Any]]) -> None:
        loop = asyncio.get_running_loop()
        n = len(pending)
        self.started = [False] * n
        self.live = n + block.lean_count
        self._block = block
        tasks = self._tasks
        make: Any = asyncio.Task if loop.get_task_factory() is None else loop.create_task
        name = f"mce branch of {block.position}"
        lean = block.lean
        if not block.lean_count:
            for k, (i, first) in enumerate(pending):
                tasks.append(make(work(block, k, i, first), name=name))
        else:
            done = functools.partial(lean_done, block)
            context = contextvars.Context()  # the callback reads no context variable
            results = block.results
            k = 0
            for i in range(block.n):  # in branch order, as the branches were started
                if lean[i]:
                    task = make(results[i], name=name)
                    task.add_done_callback(done, context=context)
                    results[i] = task
                elif k < n and pending[k][0] == i:
                    tasks.append(make(work(block, k, i, pending[k][1]), name=name))
                    k += 1
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
        # Only branch tasks that have started are cancelled; one that has not
        # started yet sees the block cancelled when it does, and ends at once.
        # A lean task needs no such care: cancelled before it starts, its
        # coroutine never runs, and its done-callback still counts it out.
        me = asyncio.current_task()
        started = self.started
        for k, task in enumerate(self._tasks):
            if started[k] and task is not me:
                task.cancel()
        block = self._block
        if block is not None and block.lean_count:
            lean = block.lean
            for i, task in enumerate(block.results):
                if lean[i] and task is not me:
                    task.cancel()

    def finished(self) -> None:
        self.live -= 1
        waiter = self._waiter
        if self.live == 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)
