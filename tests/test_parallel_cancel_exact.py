"""A branch task cancelled by lifted code, and the step a branch task's bug names.

A branch with more to do after its lifted coroutine (a continuation, a
bounded block's next branch) runs in the general branch worker, not as a
lean task (`mce._runtime.parallel._work`). On asyncio, lifted code can call
`task.cancel()` on such a task: mce did not cancel it, so the block stops
with a bug that names the branch and where its block is, and cancels the
siblings. trio has no `task.cancel()`: a branch there is cancelled only by
a cancel scope around it, which is never a bug; that part runs on both
backends.

Mutation testing of `mce/_runtime/parallel.py` showed these details were
held by nothing once lifted branches became lean.
"""

from __future__ import annotations

import asyncio
from typing import Any, Never

import anyio
import pytest

from mce import Ok, Step, lift, par, pure, run, traverse
from tests._exact import sleeper

pytestmark = pytest.mark.anyio

_BUG = "was cancelled by something other than mce (task.cancel() on a branch's task)"


async def cancels_itself() -> int:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(0)
    return 1


async def run_guarded(prog: Step[Any, Any, Any]) -> Any:
    """Run `prog`; a run that hangs (a sibling nobody cancelled) fails the test instead."""
    with anyio.fail_after(10):
        return await run(prog, None)


def waits_forever(cleanups: list[int], i: int) -> Step[Any, Any, Any]:
    """A branch that only a cancellation ends; it notes that it was cancelled."""

    async def waits() -> int:
        try:
            await anyio.sleep_forever()
        finally:
            cleanups.append(i)
        return i

    return lift(waits).map(str)


# ---------------------------------------------------------------- asyncio: task.cancel() is a bug


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio has no task.cancel()
async def test_a_branch_task_with_a_continuation_cancelled_by_its_own_code_is_a_bug() -> None:
    cleanups: list[int] = []
    inner = par(waits_forever(cleanups, 0), lift(cancels_itself).map(str))
    with pytest.raises(RuntimeError) as info:
        await run_guarded(par(pure(0), inner).named("p"))
    assert str(info.value) == f"parallel branch 1 at 'p' > branch 1 {_BUG}"
    assert cleanups == [0]  # the sibling was cancelled, not left running


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio has no task.cancel()
async def test_a_bounded_branch_cancelled_by_its_code_names_the_branch_not_the_task() -> None:
    # limit=1: one task runs branch 0, then 1, then 2; branch 2 is cancelled, and
    # branch 3 is never started
    started: list[int] = []

    def branch(i: int) -> Step[Any, Any, Any]:
        body = lift(cancels_itself) if i == 2 else sleeper(i)
        return lift(lambda: started.append(i)).then(lambda _: body)

    with pytest.raises(RuntimeError) as info:
        await run_guarded(traverse(range(4), branch, limit=1).named("t"))
    assert str(info.value) == f"parallel branch 2 at 't' {_BUG}"
    assert started == [0, 1, 2]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio has no task.cancel()
async def test_a_branch_task_cancelled_by_a_siblings_code_names_the_cancelled_branch() -> None:
    tasks: dict[str, asyncio.Task[Any]] = {}
    ready = asyncio.Event()

    async def waits() -> int:
        task = asyncio.current_task()
        assert task is not None
        tasks["victim"] = task
        ready.set()
        await asyncio.Event().wait()
        return 0

    async def cancels_the_other() -> int:
        await ready.wait()
        tasks["victim"].cancel()
        await asyncio.sleep(0)
        return 1

    prog = par(lift(waits).map(str), pure(1), lift(cancels_the_other).map(str))
    with pytest.raises(RuntimeError) as info:
        await run_guarded(prog.named("outer"))
    assert str(info.value) == f"parallel branch 0 at 'outer' {_BUG}"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio has no task.cancel()
async def test_a_branch_cancelled_by_its_code_in_a_timeout_is_a_bug_not_a_timeout() -> None:
    cleanups: list[int] = []
    block = par(lift(cancels_itself).map(str), waits_forever(cleanups, 1)).named("in")
    with pytest.raises(RuntimeError) as info:
        await run_guarded(block.timeout(60).named("t"))
    assert str(info.value) == f"parallel branch 0 at 't' > 'in' {_BUG}"
    assert cleanups == [1]


# ---------------------------------------------------------------- both: an enclosing scope


async def test_a_branch_task_cancelled_by_a_scope_around_the_run_is_no_bug(
    anyio_backend: str,
) -> None:
    # lifted code cancels a scope the user opened around the run: every branch
    # ends, the cancellation leaves through the scope, and nothing is raised
    cleanups: list[int] = []
    with anyio.fail_after(10), anyio.CancelScope() as scope:

        async def cancels_the_scope() -> int:
            await anyio.sleep(0)
            scope.cancel()
            await anyio.sleep(0)
            return 1

        prog = par(waits_forever(cleanups, 0), lift(cancels_the_scope).map(str))
        await run(prog, None)
    assert scope.cancelled_caught
    assert cleanups == [0]


# ---------------------------------------------------------------- the step a bug names


class Broken(Exception):
    pass


async def broken() -> Never:
    await anyio.sleep(0)
    raise Broken("late")


async def test_a_lifted_coroutine_with_a_continuation_failing_in_its_task_names_itself(
    anyio_backend: str,
) -> None:
    # the branch goes on after its coroutine, so its task awaits the coroutine
    # with the rest of the branch on its stack (the driver's lifted_chain)
    with pytest.raises(Broken) as info:
        await run(par(sleeper(0), lift(broken).map(str)).named("p"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the lifted callable {broken.__qualname__} at 'p' > branch 1"
    ]
    # the same in a bounded block, whose branches are never lean
    with pytest.raises(Broken) as info:
        await run(traverse([0, 1], lambda i: lift(broken) if i else pure(i), limit=1), None)
    assert info.value.__notes__ == [
        f"mce: raised by the lifted callable {broken.__qualname__} at branch 1"
    ]


async def test_a_chain_in_a_branch_task_that_succeeds_gives_its_value(anyio_backend: str) -> None:
    prog = par(sleeper(1).then(lambda v: sleeper(v + 1)).map(str), sleeper(0))
    assert await run(prog, None) == Ok(("2", 0), None)
