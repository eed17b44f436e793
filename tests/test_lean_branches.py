"""Lean branches: a branch that is just a lifted coroutine runs as a bare task.

On asyncio, such a branch of an unbounded block gets a task on its own
coroutine, finished by a done-callback (`mce._runtime.parallel.lean_done`),
instead of a task running the general branch worker (`_work`). Generated
blocks of such branches, mixed with branches the worker runs, give the same
outcome - or the same bug with the same note - either way; the rest attacks
what the lean path does differently: cancelling tasks that have not started,
closing coroutines that will never run, and exits raised by lifted code.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mce import Step, effect, fail, gather, lift, par, pure, run, traverse
from mce._runtime import parallel

BACKENDS = ["asyncio", "trio"]

Branch = tuple[str, int]  # (what the branch does, how many event-loop turns it takes first)


async def _after(turns: int, then: Any) -> Any:
    for _ in range(turns):
        await anyio.sleep(0)
    if isinstance(then, BaseException):
        raise then
    return then


def branch(spec: Branch, i: int) -> Step[Any, Any, Any]:
    kind, turns = spec
    if kind == "value":  # lean on asyncio
        return lift(lambda: _after(turns, ("v", i)))
    if kind == "async_def":  # lean; on the general path, its coroutine is made in its task

        async def made_late() -> Any:
            return await _after(turns, ("a", i))

        return lift(made_late)
    if kind == "raise":  # lean, a bug
        return lift(lambda: _after(turns, ValueError(f"boom {i}")))
    if kind == "mapped":  # the general path: a continuation after the coroutine
        return lift(lambda: _after(turns, i)).map(lambda v: ("m", v))
    if kind == "fails":  # the general path: a failure on the error channel
        return lift(lambda: _after(turns, i)).then(lambda v: fail(("failed", v)))
    if kind == "effect":
        return effect("k", {"i": i}, handler=lambda r: r["i"])
    assert kind == "plain"  # a sync callable: finished inline, no task at all
    return lift(lambda: ("p", i))


# Distinct multiples of 3 turns: which branch ends first never depends on the
# one turn a done-callback takes to run.
blocks = st.lists(
    st.tuples(
        st.sampled_from(["value", "async_def", "raise", "mapped", "fails", "effect", "plain"]),
        st.integers(0, 6).map(lambda t: 3 * t),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda b: b[1] if b[0] in ("raise", "fails") else object(),
)


def outcome(prog: Step[Any, Any, Any]) -> Any:
    async def main() -> Any:
        return await run(prog, None)

    try:
        return ("outcome", anyio.run(main))
    except Exception as exc:
        return ("bug", type(exc), str(exc), getattr(exc, "__notes__", None))


@settings(max_examples=80, deadline=None)
@given(specs=blocks, collect=st.booleans())
def test_lean_branches_agree_with_the_general_path(specs: list[Branch], collect: bool) -> None:
    from mce import collect as collect_all

    steps = [branch(spec, i) for i, spec in enumerate(specs)]
    prog = (collect_all(steps) if collect else gather(steps)).map(list)
    lean = outcome(prog)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "LEAN", False)
        general = outcome(prog)
    assert lean == general


def test_the_lean_path_is_taken() -> None:
    """A block of lifted coroutines starts no branch worker on asyncio."""
    started: list[Any] = []
    original = parallel._work

    async def spy(*args: Any) -> None:
        started.append(args[2])
        await original(*args)

    async def one() -> int:
        await anyio.sleep(0)
        return 1

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "_work", spy)
        prog = par(lift(one), lift(one).map(str), lift(one))
        assert anyio.run(run, prog, None).value == (1, "1", 1)
    assert started == [1]  # only the branch with a continuation


async def _at_once() -> int:
    return 0


@pytest.mark.parametrize(
    ("backend", "where"),
    # trio starts a nursery's tasks in a shuffled order: only asyncio says which runs first
    [("asyncio", "inline"), ("trio", "inline"), ("asyncio", "in its task")],
)
def test_a_failure_cancels_lean_branches_that_have_not_started(backend: str, where: str) -> None:
    """A first branch failing before its siblings ran - inline, or in the first step
    of its own task, the siblings' tasks made but not started: their coroutines never
    run, and no 'coroutine was never awaited' warning is left behind."""
    ran: list[int] = []

    async def never(i: int) -> int:
        ran.append(i)
        await anyio.sleep_forever()
        return i

    first: Step[Any, Any, Any] = (
        fail("first") if where == "inline" else lift(_at_once).then(lambda _: fail("first"))
    )
    steps = [first] + [lift(lambda i=i: never(i)) for i in range(5)]
    prog = gather(steps)  # the failing branch goes first
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = anyio.run(run, prog, None, backend=backend)
        gc.collect()
    assert result.error == "first"  # type: ignore[union-attr]
    assert ran == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bug_after_lean_branches_closes_their_coroutines(backend: str) -> None:
    """A branch raising inline, after earlier branches made their coroutines: those
    coroutines are closed, not left for the garbage collector to warn about."""
    made: list[Any] = []

    async def waits() -> int:
        await anyio.sleep(0)
        return 1

    def make() -> Any:
        coroutine = waits()
        made.append(coroutine)
        return coroutine

    prog = par(lift(make), lift(make), pure(0).then(lambda _: 1 // 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ZeroDivisionError):
            anyio.run(run, prog, None, backend=backend)
        gc.collect()
    assert len(made) == 2
    assert all(c.cr_frame is None for c in made)  # closed


@pytest.mark.parametrize("backend", BACKENDS)
def test_system_exit_in_a_lifted_branch_keeps_its_status(backend: str) -> None:
    async def exits() -> int:
        await anyio.sleep(0)
        sys.exit(3)

    async def waits() -> int:
        await anyio.sleep_forever()
        return 0

    with pytest.raises(SystemExit) as caught:
        anyio.run(run, par(lift(waits), lift(exits)), None, backend=backend)
    assert caught.value.code == 3


def test_lean_tasks_are_named_after_their_block() -> None:
    names: list[str] = []

    async def name() -> str:
        task = asyncio.current_task()
        assert task is not None
        names.append(task.get_name())
        await asyncio.sleep(0)
        return task.get_name()

    result = anyio.run(run, pure(0).then(lambda _: par(lift(name), lift(name))), None)
    assert result.value == ("mce branch of 0", "mce branch of 0")


def test_a_context_variable_set_in_one_lean_branch_stays_there() -> None:
    import contextvars

    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)

    async def sets(i: int) -> int:
        var.set(i)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return var.get()

    result = anyio.run(run, gather([lift(lambda i=i: sets(i)) for i in range(1, 4)]), None)
    assert result.value == (1, 2, 3)
    assert var.get() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_async_function_that_cannot_be_lean_is_called_in_its_own_task(backend: str) -> None:
    """Where no branch may be lean (a traverse), a branch that is a lifted `async def`
    function or method is called in its own task: the branches after it start first.
    (A call that raises shows when it is made.)"""

    async def needs(x: int) -> int:
        return x

    class Client:
        async def needs(self, x: int) -> int:
            return x

    ran: list[int] = []
    for fn in (needs, Client().needs):
        ran.clear()
        prog = traverse(
            [0, 1],
            lambda i, fn=fn: lift(fn) if i == 0 else lift(lambda: ran.append(i)),  # type: ignore[arg-type]
        )
        with pytest.raises(TypeError, match="missing 1 required positional argument") as info:
            anyio.run(run, prog, None, backend=backend)
        assert ran == [1]
        assert info.value.__notes__ == [
            f"mce: raised by the lifted callable {fn.__qualname__} at branch 0"
        ]
