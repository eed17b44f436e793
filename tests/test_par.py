"""Parallel combinators: concurrency, fail-fast cancellation, limits, cancel scopes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from mce import (
    Err,
    Failures,
    Ok,
    Step,
    collect,
    fail,
    gather,
    get,
    gets,
    lift,
    modify,
    par,
    pure,
    put,
    run,
    traverse,
)

pytestmark = pytest.mark.anyio


def sleeper(seconds: float, value: Any) -> Step[Any, Any, Any]:
    async def go() -> Any:
        await anyio.sleep(seconds)
        return value

    return lift(go)


async def test_par_values_in_argument_order() -> None:
    prog = par(sleeper(0.03, "a"), sleeper(0.0, "b"), pure("c"), gets(str))
    assert await run(prog, 5) == Ok(("a", "b", "c", "5"), 5)


async def test_branches_overlap_in_time() -> None:
    started: list[int] = []
    both_running = anyio.Event()

    async def branch(i: int) -> int:
        started.append(i)
        if len(started) == 3:
            both_running.set()
        with anyio.fail_after(5):
            await both_running.wait()  # deadlocks unless all three run at once
        return i

    assert await run(gather([lift(lambda i=i: branch(i)) for i in range(3)]), None) == Ok(
        (0, 1, 2), None
    )


async def test_gather_traverse_collect_values() -> None:
    assert await run(gather([sleeper(0.01, i) for i in range(5)]), None) == Ok(
        tuple(range(5)), None
    )
    assert await run(traverse(range(5), lambda i: sleeper(0, i * i)), None) == Ok(
        (0, 1, 4, 9, 16), None
    )
    assert await run(collect([sleeper(0, 1), pure(2)]), None) == Ok((1, 2), None)


async def test_fail_fast_cancels_the_waiting_siblings() -> None:
    cancelled: list[str] = []
    never = anyio.Event()  # a sibling waits for it until something cancels it

    async def wait_forever() -> None:
        try:
            await never.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append("sibling")
            raise

    def failing() -> Step[Any, str, Any]:
        return lift(anyio.lowlevel.checkpoint).then(lambda _: fail("bad"))

    for prog in (
        par(lift(wait_forever), failing()),
        gather([lift(wait_forever), failing(), lift(wait_forever)]),
        traverse([0, 1], lambda i: failing() if i else lift(wait_forever)),
        gather([lift(wait_forever), failing()], limit=2),
    ):
        cancelled.clear()
        with anyio.fail_after(30):  # a guard: without fail-fast the run never ends
            assert await run(prog, None) == Err("bad")
        assert cancelled and set(cancelled) == {"sibling"}, "siblings were not cancelled"


async def test_first_branch_to_fail_wins() -> None:
    # The first argument fails only after the second has failed - had it the
    # chance; fail-fast reports the second's error and cancels the first.
    second_failed = anyio.Event()

    async def wait_for_the_other() -> None:
        await second_failed.wait()

    def fail_after_signal() -> Step[Any, str, Any]:
        return lift(anyio.lowlevel.checkpoint).then(
            lambda _: lift(second_failed.set).then(lambda _: fail("fast"))
        )

    prog = par(lift(wait_for_the_other).then(lambda _: fail("slow")), fail_after_signal())
    with anyio.fail_after(30):  # a guard against a hang, not a timing
        assert await run(prog, None) == Err("fast")
    # an inline failure (no await before it) is the first of all
    prog2 = gather([lift(anyio.lowlevel.checkpoint).then(lambda _: fail("later")), fail("inline")])
    assert await run(prog2, None) == Err("inline")


async def test_failure_stops_unstarted_branches_under_limit() -> None:
    started: list[int] = []

    def branch(i: int) -> Step[Any, str, int]:
        return lift(lambda: started.append(i)).then(
            lambda _: sleeper(0.01, i).then(lambda v: fail("x") if v == 1 else pure(v))
        )

    assert await run(traverse(range(10), branch, limit=2), None) == Err("x")
    assert len(started) <= 4


async def test_collect_runs_everything_and_accumulates_errors() -> None:
    done: list[int] = []

    def branch(i: int) -> Step[Any, str, int]:
        work = sleeper(0.01 * (5 - i), i).then(lambda v: lift(lambda: done.append(v)))
        return work.then(lambda _: fail(f"e{i}") if i % 2 else pure(i))

    out = await run(collect([branch(i) for i in range(5)]), "s")
    assert out == Err(Failures(("e1", "e3"), (1, 3)))
    assert sorted(done) == [0, 1, 2, 3, 4]
    out2 = await run(collect([branch(i) for i in range(5)], limit=2), "s")
    assert out2 == Err(Failures(("e1", "e3"), (1, 3)))


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("combinator", ["gather", "traverse", "collect"])
async def test_limit_bounds_concurrency(k: int, combinator: str) -> None:
    running = 0
    peak = 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(5):
            await anyio.sleep(0)
        running -= 1

    steps = [lift(work) for _ in range(12)]
    if combinator == "gather":
        prog: Step[Any, Any, Any] = gather(steps, limit=k)
    elif combinator == "traverse":
        prog = traverse(steps, lambda s: s, limit=k)
    else:
        prog = collect(steps, limit=k)
    out = await run(prog, None)
    assert out.ok
    assert peak == k


def _combinators() -> list[tuple[str, Callable[[list[Step[Any, Any, Any]]], Step[Any, Any, Any]]]]:
    return [
        ("par", lambda ss: par(*ss)),
        ("gather", gather),
        ("gather-limit", lambda ss: gather(ss, limit=2)),
        ("traverse", lambda ss: traverse(ss, lambda s: s)),
        ("traverse-limit", lambda ss: traverse(ss, lambda s: s, limit=2)),
        ("collect", collect),
        ("collect-limit", lambda ss: collect(ss, limit=2)),
    ]


@pytest.mark.parametrize(("name", "combine"), _combinators())
async def test_cancel_scope_before_first_await_works_in_every_combinator(
    name: str, combine: Callable[[list[Step[Any, Any, Any]]], Step[Any, Any, Any]]
) -> None:
    async def scoped(i: int) -> int:
        with anyio.fail_after(5):
            await anyio.sleep(0.001 * i)
        with anyio.move_on_after(0.005) as scope:
            await anyio.sleep(10)
        assert scope.cancelled_caught
        return i

    steps = [lift(lambda i=i: scoped(i)) for i in range(4)]
    assert await run(combine(steps), None) == Ok((0, 1, 2, 3), None)


@pytest.mark.parametrize(("name", "combine"), _combinators())
async def test_fail_after_firing_inside_a_branch_is_a_plain_timeout_error(
    name: str, combine: Callable[[list[Step[Any, Any, Any]]], Step[Any, Any, Any]]
) -> None:
    async def too_slow() -> None:
        with anyio.fail_after(0.01):
            await anyio.sleep(10)

    with pytest.raises(TimeoutError):
        await run(combine([sleeper(0, 1), lift(too_slow)]), None)


async def test_outer_timeout_cancels_all_branches() -> None:
    finished: list[int] = []

    async def slow(i: int) -> None:
        await anyio.sleep(10)
        finished.append(i)

    prog = gather([lift(lambda i=i: slow(i)) for i in range(5)]).timeout(0.02)
    start = anyio.current_time()
    assert (await run(prog, None)).ok is False
    assert anyio.current_time() - start < 1
    assert finished == []


async def test_outside_cancellation_waits_for_branches() -> None:
    cleaned: list[int] = []

    async def slow(i: int) -> None:
        try:
            await anyio.sleep(10)
        finally:
            cleaned.append(i)

    with anyio.move_on_after(0.02):
        await run(gather([lift(lambda i=i: slow(i)) for i in range(3)]), None)
    assert sorted(cleaned) == [0, 1, 2]


async def test_nested_parallel_blocks() -> None:
    inner = gather([sleeper(0.001, i) for i in range(3)])
    prog = par(inner, inner.map(sum), traverse([1, 2], lambda x: par(sleeper(0, x), pure(-x))))
    assert await run(prog, None) == Ok(((0, 1, 2), 3, ((1, -1), (2, -2))), None)


# ---------------------------------------------------------------- state in parallel


async def test_each_branch_starts_from_the_same_state() -> None:
    prog = par(put(1).then(lambda _: get()), get(), sleeper(0, None).then(lambda _: get()))
    out = await run(prog, 0)
    assert out.ok and isinstance(out, Ok)
    assert out.value == (1, 0, 0)
    assert out.state == 1


async def test_disjoint_dict_writes_merge() -> None:
    def set_key(k: str, v: int) -> Step[dict[str, int], Any, None]:
        return sleeper(0, None).then(lambda _: modify(lambda s: {**s, k: v}))

    out = await run(gather([set_key("a", 1), set_key("b", 2), pure(0)]), {"a": 0, "z": 9})
    assert isinstance(out, Ok) and out.state == {"a": 1, "b": 2, "z": 9}


async def test_conflicting_writes_raise_state_conflict_naming_field_and_branches() -> None:
    from mce import StateConflict

    def set_key(k: str, v: int) -> Step[dict[str, int], Any, None]:
        return sleeper(0, None).then(lambda _: modify(lambda s: {**s, k: v}))

    prog = gather([set_key("a", 1), set_key("b", 2), set_key("a", 3)])
    with pytest.raises(StateConflict) as info:
        await run(prog, {"a": 0})
    assert info.value.field == "['a']"
    assert info.value.branches == (0, 2)
    assert "branch 0 (to 1) and branch 2 (to 3)" in str(info.value)


async def test_custom_merge_passed_to_run() -> None:
    prog = par(put(2), put(3))
    out = await run(prog, 1, merge=lambda base, left, right: max(left, right))
    assert isinstance(out, Ok) and out.state == 3


async def test_fsum_counter_example_with_dict_merge() -> None:
    from mce.merge import add, for_dict

    prog = traverse(range(10), lambda i: modify(lambda s: {**s, "n": s["n"] + i}))
    out = await run(prog, {"n": 0}, merge=for_dict({"n": add}))
    assert isinstance(out, Ok) and out.state["n"] == math.fsum(range(10))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_branch_task_cancelled_by_lifted_code_is_a_bug_not_a_silent_none() -> None:
    import asyncio

    async def cancels_itself() -> int:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)
        return 1

    with pytest.raises(RuntimeError, match=r"branch 1 .* cancelled by something other than mce"):
        await run(par(sleeper(0, 0), lift(cancels_itself)), None)
