"""The program algebra's exact contract: readable reprs, argument checks, and
what each combinator hands the interpreter (limits, failure modes, share keys).

Mutation testing of mce/step.py showed these details were held by nothing.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import (
    Err,
    Failures,
    Journal,
    Ok,
    RetryPolicy,
    collect,
    defer,
    effect,
    fail,
    gather,
    get,
    gets,
    lift,
    modify,
    par,
    pure,
    run,
    share,
    traverse,
)

pytestmark = pytest.mark.anyio


def double(x: int) -> int:
    return x * 2


def test_reprs_name_every_node_and_callback() -> None:
    assert repr(modify(double)) == "modify(double)"
    assert repr(gets(double)) == "gets(double)"
    assert repr(pure(1).then(double)) == "pure(1).then(double)"  # type: ignore[arg-type]
    assert repr(fail("e").recover(double)) == "fail('e').recover(double)"  # type: ignore[arg-type]
    assert repr(fail("e").map_error(double)) == "fail('e').map_error(double)"
    assert repr(defer(lambda: pure(1))).startswith("defer(test_reprs_name_every_node_and_callback.")
    assert repr(lift(double)) == "lift(double)"
    assert repr(collect([get(), pure(2)])) == "collect(get(), pure(2))"
    assert repr(gather([get(), pure(2)])) == "par(get(), pure(2))"
    assert repr(traverse([1, 2, 3], lambda x: pure(x))).startswith("traverse(<3 items>, ")
    assert repr(traverse([1, 2], double)) == "traverse(<2 items>, double)"  # type: ignore[arg-type]

    class NoName:
        def __call__(self, x: int) -> int:
            return x

        def __repr__(self) -> str:
            return "<no name>"

    assert repr(modify(NoName())) == "modify(<no name>)"


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda lim: gather([pure(1)], limit=lim), "gather"),
        (lambda lim: collect([pure(1)], limit=lim), "collect"),
        (lambda lim: traverse([1], pure, limit=lim), "traverse"),
    ],
)
def test_limits_are_checked_with_the_combinators_name(build: Any, where: str) -> None:
    with pytest.raises(ValueError, match=rf"^{where}\(limit=\.\.\.\) needs limit >= 1, got 0$"):
        build(0)
    with pytest.raises(TypeError, match=rf"^{where}\(limit=\.\.\.\) needs an int or None"):
        build("2")
    build(1)  # the smallest limit is fine


def test_combinators_name_themselves_for_a_non_step() -> None:
    with pytest.raises(TypeError, match=r"^collect\(\) argument 1 is not a Step: 5$"):
        collect([pure(1), 5])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^traverse\(\) needs a callable returning a Step, got 3$"):
        traverse([1], 3)  # type: ignore[arg-type]


def test_share_keys_are_non_empty_strings() -> None:
    for bad in ("", 3):
        with pytest.raises(
            ValueError, match=r"^share\(key=\.\.\.\) needs a non-empty string, got "
        ):
            share(pure(1), key=bad)  # type: ignore[arg-type]
    share(pure(1), key="k")
    share(pure(1))


async def test_a_shared_steps_effects_are_positioned_under_its_key() -> None:
    journal = Journal()
    shared = share(effect("fetch", 1, handler=lambda r: r + 1), key="source")
    out = await run(par(shared, shared), None, journal=journal)
    assert out == Ok((2, 2), None)
    positions = [e["pos"] for e in journal.load()[1] if e.get("kind") == "fetch"]
    assert positions == ["s:source/0"]


async def _concurrency(build: Any, n: int) -> tuple[int, Any]:
    active = peak = 0

    async def work(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        active -= 1
        return i

    out = await run(build([lift(lambda i=i: work(i)) for i in range(n)]), None)
    return peak, out


async def test_gather_and_collect_honour_their_limit(anyio_backend: str) -> None:
    peak, out = await _concurrency(lambda steps: gather(steps, limit=2), 5)
    assert (peak, out) == (2, Ok((0, 1, 2, 3, 4), None))
    peak, out = await _concurrency(lambda steps: collect(steps, limit=3), 6)
    assert (peak, out.value) == (3, (0, 1, 2, 3, 4, 5))
    peak, _ = await _concurrency(lambda steps: gather(steps), 4)
    assert peak == 4


async def test_traverse_honours_its_limit(anyio_backend: str) -> None:
    peak, out = await _concurrency(
        lambda steps: traverse(range(len(steps)), lambda i: steps[i], limit=2), 5
    )
    assert (peak, out.value) == (2, (0, 1, 2, 3, 4))


async def test_par_gather_and_traverse_fail_fast_collect_accumulates() -> None:
    steps = [pure(1), fail("a"), fail("b")]
    assert await run(par(*steps), None) == Err("a", None)
    assert await run(gather(steps), None) == Err("a", None)
    assert await run(traverse([0, 1, 2], lambda i: steps[i]), None) == Err("a", None)
    out = await run(collect(steps), None)
    assert out == Err(Failures(("a", "b"), (1, 2)), None)


async def test_empty_combinators_give_unit() -> None:
    for step in (gather([]), collect([]), traverse([], pure)):
        assert await run(step, None) == Ok((), None)
    assert await run(gather([pure(1)]), None) == Ok((1,), None)


async def test_defer_keeps_its_builder_for_diagnostics() -> None:
    def build() -> Any:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError) as info:
        await run(defer(build), None)
    assert any("build" in note for note in getattr(info.value, "__notes__", ()))


async def test_retry_method_retries_this_step() -> None:
    calls = 0

    def attempt(_: object) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("flaky")
        return calls

    step = effect("flaky", None, handler=attempt)
    out = await run(step.retry(RetryPolicy(attempts=3, backoff=0.0, jitter=False)), None)
    assert out.value == 3
    assert calls == 3


async def _pause() -> None:
    await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize(
    "build",
    [
        lambda steps: par(*steps),
        lambda steps: gather(steps),
        lambda steps: traverse([0, 1], lambda i: steps[i]),
    ],
    ids=["par", "gather", "traverse"],
)
async def test_fail_fast_blocks_journal_which_branch_failed_first(build: Any) -> None:
    failing = lift(_pause).then(lambda _: fail("late"))
    waiting = lift(_pause).map(lambda _: 1)
    journal = Journal()
    assert await run(build([waiting, failing]), None, journal=journal) == Err("late", None)
    kinds = [e["kind"] for e in journal.load()[1]]
    assert kinds == ["mce.par"]
    assert await run(build([waiting, failing]), None, journal=journal, mode="replay") == Err(
        "late", None
    )


async def test_lift_takes_any_callable_and_refuses_anything_else(anyio_backend: str) -> None:
    import functools

    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def __call__(self) -> int:
            self.n += 1
            return self.n

        async def fetch(self) -> str:
            return "fetched"

    counter = Counter()
    # callables that are not plain functions: an instance, a bound method, a partial
    assert await run(lift(counter), None) == Ok(1, None)
    assert await run(lift(counter.fetch), None) == Ok("fetched", None)
    assert await run(lift(functools.partial(double, 4)), None) == Ok(8, None)
    with pytest.raises(TypeError) as info:
        lift(3)  # type: ignore[call-overload]
    assert str(info.value) == "lift() needs a zero-argument callable, got 3"
