"""The interpreter: bugs versus errors, deep chains, sharing, run_sync."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any, Never

import anyio
import pytest

from mce import (
    Err,
    Ok,
    Step,
    fail,
    gather,
    lift,
    modify,
    par,
    pure,
    run,
    run_sync,
    share,
)

pytestmark = pytest.mark.anyio


def boom(_: object) -> Never:
    raise ZeroDivisionError("boom")


@pytest.mark.parametrize(
    ("prog", "kind"),
    [
        (pure(1).map(boom), ".map callback"),
        (pure(1).then(boom), ".then callback"),
        (fail(1).recover(boom), ".recover callback"),
        (fail(1).map_error(boom), ".map_error callback"),
        (modify(boom), "modify() function"),
    ],
)
async def test_callback_exceptions_are_bugs_with_a_position_note(
    prog: Step[Any, Any, Any], kind: str
) -> None:
    with pytest.raises(ZeroDivisionError) as info:
        await run(prog.named("inner").named("outer"), 0)
    notes = info.value.__notes__
    assert len(notes) == 1
    assert kind in notes[0] and "boom" in notes[0]
    assert "'outer' > 'inner'" in notes[0]


async def test_bug_inside_parallel_branch_is_raised_as_itself_with_branch() -> None:
    async def slow() -> int:
        await anyio.sleep(10)
        return 0

    async def quick() -> int:
        await anyio.sleep(0)
        return 1

    prog = par(lift(slow), lift(quick).map(boom)).named("fan")
    with anyio.fail_after(5):
        with pytest.raises(ZeroDivisionError) as info:  # not an ExceptionGroup
            await run(prog, None)
    assert "'fan' > branch 1" in info.value.__notes__[0]


async def test_lifted_exception_propagates_unchanged() -> None:
    async def broken() -> None:
        await anyio.sleep(0)
        raise KeyError("k")

    with pytest.raises(KeyError) as info:
        await run(lift(broken).named("io"), None)
    assert "lifted callable" in info.value.__notes__[0]


async def test_errors_are_values_not_exceptions() -> None:
    out = await run(par(pure(1), fail("e")), None)
    assert out == Err("e")


# ---------------------------------------------------------------- deep chains

DEPTH = 1_000_000


def test_million_binds_left_nested() -> None:
    s: Step[Any, Never, int] = pure(0)
    for _ in range(DEPTH):
        s = s.then(lambda k: pure(k + 1))
    assert run_sync(s, None) == Ok(DEPTH, None)


def count(n: int) -> Step[Any, Never, int]:
    return pure(n).then(lambda k: count(k - 1) if k else pure(0))


def test_million_binds_recursive() -> None:
    assert run_sync(count(DEPTH), None) == Ok(0, None)


def test_million_maps_and_recovers_left_nested() -> None:
    s: Step[Any, Any, int] = pure(0)
    for i in range(DEPTH // 4):
        s = s.map(lambda k: k + 1) if i % 2 else s.recover(lambda e: pure(-1))
    assert run_sync(s, None) == Ok(DEPTH // 8, None)


def _peak_bytes(step: Step[Any, Any, Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run_sync(step, None)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_recursive_chain_runs_in_constant_memory() -> None:
    small, large = _peak_bytes(count(10_000)), _peak_bytes(count(200_000))
    # 20x the depth, yet the peak stays that of a handful of nodes.
    assert large < small * 2 + 64_000, (small, large)


def test_left_nested_chain_costs_one_pointer_per_pending_bind() -> None:
    n = 200_000
    s: Step[Any, Never, int] = pure(0)
    for _ in range(n):
        s = s.then(lambda k: pure(k + 1))
    # The program itself is ~n nodes; the interpreter adds only its
    # continuation stack (a list of references), never a frame per bind.
    assert _peak_bytes(s) < 16 * n, _peak_bytes(s)


# ---------------------------------------------------------------- share


async def test_share_runs_once_for_many_parallel_consumers() -> None:
    calls: list[int] = []

    async def fetch() -> int:
        calls.append(1)
        await anyio.sleep(0.01)
        return 7

    shared = share(lift(fetch))
    prog = gather([shared.map(lambda v, i=i: v + i) for i in range(20)])
    assert await run(prog, None) == Ok(tuple(7 + i for i in range(20)), None)
    assert calls == [1]
    # once per *run*: a second run computes it again
    await run(prog, None)
    assert calls == [1, 1]


async def test_share_diamond_and_sequential_reuse() -> None:
    calls: list[str] = []
    a = share(lift(lambda: calls.append("a") or 1))
    b = share(a.map(lambda x: x + 1))
    c = share(a.map(lambda x: x * 10))
    prog = par(b, c).then(lambda bc: a.map(lambda x: (*bc, x)))
    assert await run(prog, None) == Ok((2, 10, 1), None)
    assert calls == ["a"]


async def test_share_error_reaches_every_consumer_and_state_is_discarded() -> None:
    failing = share(modify(lambda s: s + 100).then(lambda _: fail("down")))
    prog = par(failing.recover(lambda e: pure(e)), failing.recover(lambda e: pure(e + "!")))
    assert await run(prog, 0) == Ok(("down", "down!"), 0)
    writer = share(modify(lambda s: s + 100).then(lambda _: pure("v")))
    assert await run(writer, 0) == Ok("v", 0)


async def test_shared_bug_raised_in_consumers() -> None:
    s = share(pure(1).map(boom))
    with pytest.raises(ZeroDivisionError):
        await run(par(s, s), None)


async def test_share_survives_cancellation_of_the_first_consumer() -> None:
    calls: list[int] = []

    async def slow() -> str:
        calls.append(1)
        await anyio.sleep(0.05)
        return "v"

    s = share(lift(slow))
    prog = par(
        s.timeout(0.001).recover(lambda e: pure("timed out")),
        lift(lambda: anyio.sleep(0.01)).then(lambda _: s),
    )
    assert await run(prog, None) == Ok(("timed out", "v"), None)
    assert calls == [1]


def test_run_sync_backends_and_bad_backend() -> None:
    assert run_sync(pure(1), None, backend="trio") == Ok(1, None)
    with pytest.raises(ValueError, match="backend"):
        run_sync(pure(1), None, backend="curio")  # type: ignore[arg-type]
