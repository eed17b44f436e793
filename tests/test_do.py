"""Generator do-notation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import Err, Ok, do, fail, get, lift, par, pure, put, run_sync


@do
def transfer(amount: int):  # type: ignore[no-untyped-def]
    balance = yield get()
    if balance < amount:
        yield fail(f"insufficient: {balance} < {amount}")
    yield put(balance - amount)
    return balance - amount


def test_do_binds_and_returns() -> None:
    assert run_sync(transfer(30), 100) == Ok(70, 70)
    assert run_sync(transfer(300), 100) == Err("insufficient: 100 < 300")


def test_do_step_is_reusable_and_fresh_per_run() -> None:
    step = transfer(10)
    assert run_sync(step, 50) == Ok(40, 40)
    assert run_sync(step, 20) == Ok(10, 10)


def test_do_with_parallel_and_async() -> None:
    async def fetch(x: int) -> int:
        await anyio.sleep(0)
        return x * 2

    @do
    def flow():  # type: ignore[no-untyped-def]
        a, b = yield par(lift(lambda: fetch(1)), lift(lambda: fetch(2)))
        c = yield pure(a + b)
        return c

    assert run_sync(flow(), None, backend="trio") == Ok(6, None)


def test_do_long_loop_does_not_recurse() -> None:
    @do
    def loop(n: int):  # type: ignore[no-untyped-def]
        total = 0
        for i in range(n):
            total += yield pure(i)
        return total

    assert run_sync(loop(100_000), None) == Ok(sum(range(100_000)), None)


def test_yielding_a_non_step_is_a_type_error_naming_the_function() -> None:
    @do
    def wrong():  # type: ignore[no-untyped-def]
        yield 42

    with pytest.raises(TypeError, match=r"@do function .*wrong yielded 42"):
        run_sync(wrong(), None)


def test_recover_around_a_do_block() -> None:
    @do
    def risky():  # type: ignore[no-untyped-def]
        yield put("dirty")
        yield fail("boom")
        return "unreachable"

    out = run_sync(risky().recover(lambda e: get().map(lambda s: (e, s))), "clean")
    assert out == Ok(("boom", "clean"), "clean")


def test_exception_inside_generator_is_a_bug() -> None:
    @do
    def broken():  # type: ignore[no-untyped-def]
        x: Any = yield pure(0)
        return 1 // x

    with pytest.raises(ZeroDivisionError):
        run_sync(broken(), None)
