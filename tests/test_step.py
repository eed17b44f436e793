"""The program algebra: constructors, methods and their input checks."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import (
    Err,
    Ok,
    Step,
    StepTimeout,
    collect,
    defer,
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
    share,
    traverse,
)

pytestmark = pytest.mark.anyio


async def test_constructors_and_state() -> None:
    assert await run(pure(1), "s") == Ok(1, "s")
    assert await run(fail("e"), "s") == Err("e", "s")
    assert await run(get(), 3) == Ok(3, 3)
    assert await run(gets(lambda s: s + 1), 3) == Ok(4, 3)
    assert await run(put(9), 3) == Ok(None, 9)
    assert await run(modify(lambda s: s * 2), 3) == Ok(None, 6)


async def test_map_then_map_error() -> None:
    assert await run(pure(2).map(lambda x: x + 1).then(lambda x: pure(x * 10)), None) == Ok(
        30, None
    )
    assert await run(fail(1).map_error(lambda e: e + 1), None) == Err(2)
    assert await run(pure(1).map_error(lambda e: e + 1), None) == Ok(1, None)
    assert await run(fail("e").map(lambda x: x + 1).then(lambda x: pure(x)), None) == Err("e")


async def test_failure_short_circuits_and_err_state_is_last_seen() -> None:
    seen: list[int] = []
    prog = put(1).then(lambda _: fail("stop")).then(lambda _: lift(lambda: seen.append(1)))
    out = await run(prog, 0)
    assert out == Err("stop")
    assert isinstance(out, Err) and out.state == 1
    assert seen == []


async def test_recover_resumes_from_state_where_attached() -> None:
    attempt = put(5).then(lambda _: modify(lambda s: s + 1)).then(lambda _: fail("x"))
    prog = put(1).then(lambda _: attempt.recover(lambda e: gets(lambda s: (e, s))))
    assert await run(prog, 0) == Ok(("x", 1), 1)


async def test_recover_passes_success_through_and_catches_inner_errors_only() -> None:
    assert await run(pure(1).recover(lambda e: pure(2)), None) == Ok(1, None)
    inner = fail("a").recover(lambda e: fail(e + "b"))
    assert await run(inner.recover(lambda e: pure(e + "c")), None) == Ok("abc", None)


async def test_named_sets_label() -> None:
    s = pure(1).named("one")
    assert s.label == "one"
    assert pure(1).label is None
    assert await run(s, None) == Ok(1, None)
    with pytest.raises(ValueError, match="non-empty string"):
        pure(1).named("")


async def test_timeout_fires_with_label_and_keeps_start_state() -> None:
    slow = put(7).then(lambda _: lift(lambda: anyio.sleep(10)))
    out = await run(slow.named("slow").timeout(0.05), 1)
    assert out == Err(StepTimeout(0.05, "slow"))
    assert isinstance(out, Err) and out.state == 1
    fast = lift(lambda: anyio.sleep(0)).then(lambda _: pure("ok"))
    assert await run(fast.timeout(5), None) == Ok("ok", None)


async def test_timeout_label_from_enclosing_name() -> None:
    out = await run(lift(lambda: anyio.sleep(10)).timeout(0.01).named("outer"), None)
    assert out == Err(StepTimeout(0.01, "outer"))


async def test_lift_sync_async_and_awaitable_returning() -> None:
    async def coro() -> int:
        await anyio.sleep(0)
        return 1

    assert await run(lift(coro), None) == Ok(1, None)
    assert await run(lift(lambda: 2), None) == Ok(2, None)
    assert await run(lift(lambda: coro()), None) == Ok(1, None)


async def test_building_runs_nothing() -> None:
    calls: list[str] = []
    prog = lift(lambda: calls.append("lift")).then(lambda _: modify(lambda s: calls.append("m")))
    both = par(prog, lift(lambda: calls.append("par")))
    assert calls == []
    await run(both, None)
    assert sorted(calls) == ["lift", "m", "par"]


async def test_steps_are_reusable_values() -> None:
    prog = modify(lambda s: s + 1).then(lambda _: get())
    assert await run(prog, 0) == Ok(1, 1)
    assert await run(prog, 10) == Ok(11, 11)


async def test_defer_builds_at_run_time() -> None:
    built: list[int] = []

    def make() -> Step[Any, Any, int]:
        built.append(1)
        return pure(len(built))

    s = defer(make)
    assert built == []
    assert await run(s, None) == Ok(1, None)
    assert await run(s, None) == Ok(2, None)


# ---------------------------------------------------------------- bad input


def test_then_callback_returning_non_step_is_type_error_naming_it() -> None:
    def not_a_step(x: int) -> int:
        return x + 1

    with pytest.raises(TypeError, match=r"not_a_step.*returned 2 \(int\), not a Step"):
        anyio.run(run, pure(1).then(not_a_step), None)  # type: ignore[arg-type]


def test_recover_and_defer_returning_non_step() -> None:
    with pytest.raises(TypeError, match="recover callback"):
        anyio.run(run, fail(1).recover(lambda e: e), None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="deferred step builder"):
        anyio.run(run, defer(lambda: 3), None)  # type: ignore[arg-type,return-value]


def test_limits_must_be_positive() -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit >= 1"):
            gather([pure(1)], limit=bad)
        with pytest.raises(ValueError, match="limit >= 1"):
            traverse([1], pure, limit=bad)
        with pytest.raises(ValueError, match="limit >= 1"):
            collect([pure(1)], limit=bad)
    with pytest.raises(TypeError, match="int or None"):
        gather([pure(1)], limit=1.5)  # type: ignore[arg-type]


def test_empty_combinators_are_pure_unit() -> None:
    for s in (par(), gather([]), traverse([], pure), collect([])):
        assert anyio.run(run, s, "s") == Ok((), "s")


def test_timeout_must_be_positive() -> None:
    for bad in (0, -1, 0.0):
        with pytest.raises(ValueError, match="seconds > 0"):
            pure(1).timeout(bad)
    with pytest.raises(TypeError, match="number of seconds"):
        pure(1).timeout("1")  # type: ignore[arg-type]


def test_non_steps_rejected_by_combinators() -> None:
    with pytest.raises(TypeError, match=r"par\(\) argument 1 is not a Step"):
        par(pure(1), 2)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"gather\(\) argument 0"):
        gather([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="share"):
        share(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lift"):
        lift(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="run"):
        anyio.run(run, 1, None)  # type: ignore[arg-type]


def test_traverse_function_returning_non_step() -> None:
    with pytest.raises(TypeError, match=r"traverse\(\) function .* returned 1"):
        anyio.run(run, traverse([1], lambda x: x), None)  # type: ignore[arg-type,return-value]


def test_repr_is_readable() -> None:
    assert repr(pure(1).map(str)) == "pure(1).map(str)"
    assert repr(par(get(), put(1))) == "par(get(), put(1))"
