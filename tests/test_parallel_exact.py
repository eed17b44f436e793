"""Parallel blocks' exact contract (`mce._runtime.parallel`): the state a
failure keeps, the notes naming a branch's bug, positions inside a branch
task, questions asked in a branch, how branch states are merged and which
branches a conflict names, and what a branch's BaseException does.

Mutation testing of `mce/_runtime/parallel.py` showed these details were
held by nothing.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any, Never

import anyio
import pytest

from mce import (
    Err,
    Failures,
    Journal,
    Ok,
    Step,
    Waiting,
    ask,
    collect,
    effect,
    fail,
    lift,
    modify,
    par,
    pure,
    put,
    run,
    traverse,
)
from mce.journal import ReplayDivergence
from mce.merge import StateConflict
from tests._exact import err_and_state, sleeper, to_str

pytestmark = pytest.mark.anyio


def positions(j: Journal) -> list[str]:
    return sorted(e["pos"] for e in j.load()[1])


class Halt(BaseException):
    """A user's own BaseException: not an error a block may turn into a value."""


# ---------------------------------------------------------------- the state a failure keeps


async def test_a_fail_fast_failure_keeps_its_branch_state(anyio_backend: str) -> None:
    # inline, before any branch awaits
    inline = par(put(5).then(lambda _: fail("e")), sleeper(0))
    assert err_and_state(await run(inline, 0)) == ("e", 5)
    # in a branch task, after a lifted coroutine
    after_await = par(sleeper(0).then(lambda _: put(7)).then(lambda _: fail("e")), sleeper(0))
    assert err_and_state(await run(after_await, 0)) == ("e", 7)
    # in a branch task, after the driver awaited an effect
    after_effect = par(
        effect("k", 1, handler=str).then(lambda _: put(9)).then(lambda _: fail("e")), sleeper(0)
    )
    assert err_and_state(await run(after_effect, 0)) == ("e", 9)


# ---------------------------------------------------------------- a branch task's bug


class Broken(Exception):
    pass


async def broken() -> Never:
    await anyio.sleep(0)
    raise Broken("late")


def starts_broken() -> Any:
    return broken()  # a sync thunk returning a coroutine: awaited in the branch task


async def test_a_lifted_coroutine_failing_in_its_task_names_itself_and_its_branch(
    anyio_backend: str,
) -> None:
    for lifted in (broken, starts_broken):
        with pytest.raises(Broken) as info:
            await run(par(sleeper(0), lift(lifted)).named("p"), None)
        assert info.value.__notes__ == [
            f"mce: raised by the lifted callable {lifted.__qualname__} at 'p' > branch 1"
        ]


async def test_a_custom_awaitable_of_a_branch_that_never_runs_is_dropped(
    anyio_backend: str,
) -> None:
    class Awaitable:
        """An awaitable with no `close` (not a coroutine)."""

        def __await__(self) -> Generator[Any, None, int]:
            yield from ()
            return 1

    assert await run(par(lift(Awaitable), fail("x")), None) == Err("x")
    assert await run(par(lift(Awaitable), pure(2)), None) == Ok((1, 2), None)


def traverse_bug(i: int) -> Step[Any, Any, int]:
    if i == 2:
        raise Broken("cannot build")
    return pure(i)


def traverse_non_step(i: int) -> Any:
    return i


async def test_a_traverse_function_that_raises_or_returns_no_step_is_named(
    anyio_backend: str,
) -> None:
    with pytest.raises(Broken) as info:
        await run(par(pure(0), traverse([1, 2], traverse_bug)).named("t"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the traverse() function {traverse_bug.__qualname__} at 't' > branch 1 > branch 1"
    ]
    with pytest.raises(TypeError) as info2:
        await run(traverse([7], traverse_non_step).named("t"), None)
    assert str(info2.value).startswith(
        f"the traverse() function {traverse_non_step.__qualname__} at 't' > branch 0 returned 7"
    )


# ---------------------------------------------------------------- positions in a branch task


async def test_a_branch_task_numbers_on_from_its_inline_start(anyio_backend: str) -> None:
    # The branch's inline part (a block that completes inline) takes position 0
    # of the branch; what the branch task runs next is numbered on from there.
    def branch(first: Step[Any, Any, Any]) -> Step[Any, Any, Any]:
        inline = par(pure(1), pure(2))
        return inline.then(lambda _: first).then(lambda _: effect("k", 2, handler=str))

    j = Journal()
    assert await run(par(pure(0), branch(sleeper(0))), None, journal=j) == Ok((0, "2"), None)
    assert positions(j) == ["0/1/1"]  # a lifted coroutine takes no position
    j = Journal()
    first = effect("k", 1, handler=str)
    assert await run(par(pure(0), branch(first)), None, journal=j) == Ok((0, "2"), None)
    assert positions(j) == ["0/1/1", "0/1/2"]


# ---------------------------------------------------------------- replaying the first failure


def _slow_failure() -> Step[Any, Any, Any]:
    return (
        sleeper(0).then(lambda _: sleeper(0)).then(lambda _: sleeper(0)).then(lambda _: fail("b"))
    )


async def test_a_replay_of_a_recorded_first_failure_skips_the_other_branches_records(
    anyio_backend: str,
) -> None:
    # branch 0 recorded an effect before branch 1 failed first: the replay
    # runs branch 1 only, and does not ask for branch 0's record
    ran: list[int] = []
    first = effect("k", 1, handler=to_str).then(lambda _: lift(anyio.sleep_forever))
    prog = par(first, lift(lambda: ran.append(1)).then(lambda _: _slow_failure()))
    j = Journal()
    assert await run(prog, None, journal=j) == Err("b")
    assert [(e["pos"], e["kind"]) for e in j.load()[1]] == [("0/0/0", "k"), ("0", "mce.par")]
    ran.clear()
    with anyio.fail_after(5):
        assert await run(prog, None, journal=j, mode="replay") == Err("b")
    assert ran == [1]


async def test_a_collect_replayed_against_a_recorded_first_failure_has_diverged(
    anyio_backend: str,
) -> None:
    # which branch failed first is a fail-fast block's decision: a collect in
    # its place runs every branch, and the recorded decision is left unused
    branches = [effect("k", 1, handler=to_str), _slow_failure()]
    j = Journal()
    assert await run(par(*branches), None, journal=j) == Err("b")
    assert [e["pos"] for e in j.load()[1]] == ["0/0/0", "0"]
    with pytest.raises(ReplayDivergence) as info:
        await run(collect(branches), None, journal=j, mode="replay")
    assert (info.value.position, info.value.kind) == ("0", "mce.par")
    assert info.value.reason.startswith("recorded, never requested")
    assert await run(collect(branches), None, journal=j, mode="resume") == Err(
        Failures(("b",), (1,))
    )


# ---------------------------------------------------------------- questions in a branch task


async def test_a_branch_task_stopped_at_a_question_leaves_the_block_waiting(
    anyio_backend: str,
) -> None:
    asking = sleeper(0).then(lambda _: put(5)).then(lambda _: ask("Go?", into=bool, id="go"))
    out = await run(par(asking, sleeper(1)), 0, journal=Journal())
    assert isinstance(out, Waiting)
    assert [(q.id, q.position) for q in out.questions] == [("go", "0/0/0")]
    assert out.state == 0  # the block's starting state: no branch's changes are kept


# ---------------------------------------------------------------- merging the branches' states


def set_key(key: str, value: int) -> Step[dict[str, int], Any, None]:
    return modify(lambda s: {**s, key: value})


async def test_every_changed_branch_state_is_merged(anyio_backend: str) -> None:
    prog = par(pure(0), set_key("a", 1), sleeper(0), set_key("b", 2), set_key("c", 3))
    out = await run(prog, {"a": 0, "b": 0, "c": 0})
    assert out == Ok((0, None, 0, None, None), {"a": 1, "b": 2, "c": 3})


async def test_a_conflict_names_the_branch_that_first_wrote_the_field() -> None:
    # branch 0 changed only "y": the earlier writer of "x" is branch 1, not
    # the first branch whose state changed
    prog = par(set_key("y", 1), set_key("x", 1), pure(None), set_key("x", 2))
    with pytest.raises(StateConflict) as info:
        await run(prog, {"x": 0, "y": 0})
    assert info.value.branches == (1, 3)
    assert (info.value.left, info.value.right) == (1, 2)


async def test_a_conflict_nobody_wrote_names_the_first_changed_branch() -> None:
    # a custom merge refuses a field no branch wrote: the conflict names the
    # first branch whose state changed and the branch being merged in
    def refuse(base: Any, left: Any, right: Any) -> Any:
        raise StateConflict("elsewhere", left, right)

    prog = par(pure(None), put(1), put(2), put(3))
    with pytest.raises(StateConflict) as info:
        await run(prog, 0, merge=refuse)
    assert info.value.branches == (1, 2)
    assert str(info.value) == (
        "state field 'elsewhere' was changed differently by parallel branch 1 (to 1) and "
        "branch 2 (to 2); write it in one branch only or declare a merge for it (see mce.merge)"
    )


# ---------------------------------------------------------------- BaseExceptions and cancellation


async def test_a_base_exception_in_a_branch_task_stops_the_block_and_leaves_as_itself(
    anyio_backend: str,
) -> None:
    # Branch 1 is woken by branch 0 just before branch 0 raises: it finishes
    # its step, but the block must start no further branch once one is broken.
    started: list[int] = []
    woken = anyio.Event()

    async def halts() -> Never:
        await anyio.sleep(0)
        woken.set()
        raise Halt("stop")

    async def waits() -> int:
        await woken.wait()
        return 1

    bodies = {0: lift(halts), 1: lift(waits), 2: pure(2)}

    def branch(i: int) -> Step[Any, Any, Any]:
        return lift(lambda: started.append(i)).then(lambda _: bodies[i])

    with pytest.raises(Halt, match=r"^stop$"):
        await run(traverse(range(3), branch, limit=2), None)
    assert started == [0, 1]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_branch_task_cancelled_by_lifted_code_is_a_bug_naming_the_branch() -> None:
    import asyncio

    async def cancels_itself() -> int:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return 1

    with pytest.raises(RuntimeError) as info:
        inner = par(sleeper(0), lift(cancels_itself))
        await run(par(pure(0), inner).named("p"), None)
    assert str(info.value) == (
        "parallel branch 1 at 'p' > branch 1 was cancelled by something other than mce "
        "(task.cancel() on a branch's task)"
    )


# ---------------------------------------------------------------- journal writes in a bounded block


class ThreadJournal(Journal):
    """An in-memory journal written like a file one: in a worker thread, maybe in the background."""

    needs_thread = True


async def test_a_bounded_branch_record_is_durable_before_the_next_branch_starts(
    anyio_backend: str,
) -> None:
    # An unbounded block's branches may leave their last record to be written
    # in the background; a bounded block's task goes on to the next branch,
    # so it waits for the record first.
    j = ThreadJournal()
    seen: dict[int, list[str]] = {}

    def branch(i: int) -> Step[Any, Any, Any]:
        look = lift(lambda: seen.setdefault(i, sorted(e["pos"] for e in j.load()[1])))
        return look.then(lambda _: sleeper(0)).then(lambda _: effect("k", i, handler=str))

    out = await run(traverse(range(2), branch, limit=1), None, journal=j)
    assert out == Ok(("0", "1"), None)
    assert seen == {0: [], 1: ["0/0/0"]}


# ---------------------------------------------------------------- retry_failed re-decides a block


def _flaky_block(attempts: list[int], fails_again: bool) -> Step[Any, Any, Any]:
    async def call(req: int) -> str:
        attempts.append(req)
        if req == 1 and (fails_again or attempts.count(1) == 1):
            raise ConnectionError(f"down {attempts.count(1)}")
        await anyio.sleep(0)  # the block goes async: which branch fails first is journaled
        return f"done {req}"

    return par(*(effect("call", i, handler=call) for i in range(3)))


def _decisions(path: Path) -> list[Any]:
    """Every decision the journal file holds, superseded ones too."""
    lines = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    return [e["ok"] for e in lines if e["kind"] == "mce.par"]


@pytest.mark.parametrize("fails_again", [False, True])
async def test_a_resume_that_retries_failures_decides_the_block_again(
    anyio_backend: str, fails_again: bool, tmp_path: Path
) -> None:
    attempts: list[int] = []
    prog = _flaky_block(attempts, fails_again)
    j = tmp_path / "run.jsonl"
    first = await run(prog, None, journal=j)
    assert isinstance(first, Err) and first.error.message == "down 1"
    assert _decisions(j) == [{"branch": 1}]
    # a plain resume serves the recorded decision, and journals none again
    assert await run(prog, None, journal=j, mode="resume") == first
    assert _decisions(j) == [{"branch": 1}]
    before = len(attempts)
    retried = await run(prog, None, journal=j, mode="resume", retry_failed=True)
    assert attempts[before:].count(1) == 1  # the failed call runs again, once
    if fails_again:
        assert isinstance(retried, Err) and retried.error.message == "down 2"
        assert _decisions(j) == [{"branch": 1}, {"branch": 1}]
    else:
        assert retried == Ok(("done 0", "done 1", "done 2"), None)
        assert _decisions(j) == [{"branch": 1}, {"branch": None}]  # none failed
    # the new decision supersedes the recorded one
    assert await run(prog, None, journal=j, mode="replay") == retried
    assert await run(prog, None, journal=j, mode="resume") == retried
    assert len(_decisions(j)) == 2


async def test_a_resume_serving_a_blocks_decision_does_not_journal_it_again(
    anyio_backend: str, tmp_path: Path
) -> None:
    async def down(req: int) -> str:
        raise ConnectionError("down")

    # the failing branch awaits live code before its served failure: the block is finished
    # with its branches in tasks, where the decision would be written
    failing = sleeper(0).then(lambda _: effect("call", 1, handler=down))
    prog = par(sleeper(0).then(lambda _: effect("k", 0, handler=to_str)), failing)
    j = tmp_path / "run.jsonl"
    first = await run(prog, None, journal=j)
    assert isinstance(first, Err) and first.error.message == "down"
    assert _decisions(j) == [{"branch": 1}]
    assert await run(prog, None, journal=j, mode="resume") == first
    assert _decisions(j) == [{"branch": 1}]
