"""The driver's loop for chains of lifted steps agrees with the trampoline it short-cuts.

`mce._runtime.driver.lifted_chain` awaits a lifted step and then calls the
`.then` callbacks and lifted callables that follow it itself, instead of
returning to the trampoline at every step. The reference below is what the
driver did before: await the coroutine, then hand its value back to
`advance`. Generated programs - chains of lifted steps (async, sync, sync
returning a coroutine), maps, named steps, state updates, effects,
failures, recovers, bugs, callbacks that return no step, parallel blocks
and timeouts that cancel a waiting coroutine - give the same outcome (or
the same bug, with the same note), the same trace events and the same
journal on both paths, on both backends.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mce import Step, defer, effect, fail, gather, lift, modify, pure, run
from mce._runtime import driver, trampoline
from mce._runtime.diagnostics import annotate
from mce.step import _Pure
from tests._exact import observe

BACKENDS = ["asyncio", "trio"]


async def _reference_chain(
    lifted: Any, awaitable: Any, stack: list[Any], state: Any, run: Any, where: Any
) -> tuple[int, Any, Any]:
    """The driver before its fast path: one lifted step, then back to the trampoline."""
    try:
        value = await awaitable
    except Exception as exc:
        annotate(exc, lifted, stack, where)
        raise
    return trampoline.advance(_Pure(value), stack, state, run, where)


Op = Any  # a tuple naming one link of a generated chain


SAFE = ["async", "sync", "sync_coro", "map", "put", "effect", "named", "recover", "map_error"]
FAILING = ["fail", "raise", "raise_in_then", "not_a_step", "timeout"]


def ops(depth: int = 2, failing: bool = True) -> st.SearchStrategy[list[Op]]:
    """Links of a chain. Inside a parallel block nothing fails: how far a failure
    finds its siblings depends on the scheduler (trio shuffles its run queue); a
    `race` block, outside any other, fails once its other branches surely wait."""
    kinds = SAFE + FAILING if failing else SAFE
    leaf = st.tuples(st.sampled_from(kinds), st.integers(0, 3))
    if depth == 0:
        return st.lists(leaf, max_size=6)
    blocks = ["par", "race"] if failing else ["par"]
    nested = st.one_of(
        st.tuples(st.just("nested"), st.lists(ops(depth - 1, failing), min_size=1, max_size=1)),
        st.tuples(
            st.sampled_from(blocks),
            st.lists(ops(depth - 1, failing=False), min_size=1, max_size=3),
        ),
    )
    return st.lists(st.one_of(leaf, leaf, leaf, nested), max_size=8)


async def _add(x: Any, k: int) -> Any:
    await anyio.sleep(0)
    return (x, k)


async def _boom(x: Any) -> Any:
    await anyio.sleep(0)
    raise ValueError(f"boom {x!r}")


def _double(r: dict[str, Any]) -> Any:
    return r["x"]


def chain(links: list[Op], start: Step[Any, Any, Any]) -> Step[Any, Any, Any]:
    """A left-nested chain of `links` after `start`."""
    s = start
    for op in links:
        s = link(s, op)
    return s


def link(s: Step[Any, Any, Any], op: Op) -> Step[Any, Any, Any]:
    kind, k = op
    if kind == "async":
        return s.then(lambda x: lift(functools.partial(_add, x, k)))
    if kind == "sync":
        return s.then(lambda x: lift(lambda: (x, k)))
    if kind == "sync_coro":
        return s.then(lambda x: lift(lambda: _add(x, k)))
    if kind == "map":
        return s.map(lambda x: [x, k])
    if kind == "put":
        return s.then(lambda x: modify(lambda st_: (*st_, repr(x)[:20])).map(lambda _: x))
    if kind == "effect":
        return s.then(lambda x: effect("double", {"x": repr(x)[:20]}, handler=_double))
    if kind == "named":
        return s.named(f"n{k}")
    if kind == "recover":
        return s.recover(lambda e: lift(functools.partial(_add, ("recovered", repr(e)[:30]), k)))
    if kind == "map_error":
        return s.map_error(lambda e: ("mapped", e))
    if kind == "fail":
        return s.then(lambda x: fail(("failed", k)))
    if kind == "raise":
        return s.then(lambda x: lift(functools.partial(_boom, k)))
    if kind == "raise_in_then":
        return s.then(lambda x: 1 // 0)
    if kind == "not_a_step":
        return s.then(lambda x: x)
    if kind == "timeout":  # a coroutine that waits forever, cancelled by its timeout
        return s.then(lambda x: lift(anyio.sleep_forever).timeout(0.001)).recover(
            lambda e: pure(("timed out", type(e).__name__))
        )
    if kind == "par":
        return s.then(lambda x: gather([chain(sub, lift(lambda: _add(x, 0))) for sub in k]))
    if kind == "race":  # the last branch fails once the others wait forever: they are cancelled
        return s.then(lambda x: defer(lambda: race(x, k)))
    assert kind == "nested"  # a right-nested chain: each link's callback holds the rest
    return s.then(lambda x: chain(k[0], lift(functools.partial(_add, x, 1))))


def race(x: Any, subs: list[list[Op]]) -> Step[Any, Any, Any]:
    waiting = [anyio.Event() for _ in subs]

    def wait_forever(i: int) -> Any:
        async def wait() -> None:
            waiting[i].set()
            await anyio.sleep_forever()

        return wait

    async def all_waiting() -> None:
        for event in waiting:
            await event.wait()

    waiters = [
        chain(sub, lift(functools.partial(_add, x, i))).then(lambda _, i=i: lift(wait_forever(i)))
        for i, sub in enumerate(subs)
    ]
    return gather([*waiters, lift(all_waiting).then(lambda _: fail("raced"))])


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(links=ops())
def test_lifted_chains_agree_with_the_trampoline(backend: str, links: list[Op]) -> None:
    prog = chain(links, lift(functools.partial(_add, 0, 0)))
    fast = observe(prog, backend)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(driver, "lifted_chain", _reference_chain)
        reference = observe(prog, backend)
    assert fast == reference


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_long_chain_of_lifted_steps(backend: str) -> None:
    """10,000 lifted steps: no recursion, the value threaded through every one."""

    async def inc(x: int) -> int:
        return x + 1

    s: Step[Any, Any, int] = pure(0)
    for i in range(10_000):
        if i % 3 == 0:
            s = s.then(lambda x: lift(lambda: inc(x)))  # sync callable returning a coroutine
        elif i % 3 == 1:
            s = s.then(lambda x: lift(functools.partial(inc, x)))  # an async callable
        else:
            s = s.then(lambda x: lift(lambda: x + 1))  # a plain value

    async def main() -> Any:
        return await run(s, None)

    assert anyio.run(main, backend=backend).value == 10_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bug_deep_in_a_lifted_chain_names_its_callback(backend: str) -> None:
    async def inc(x: int) -> int:
        return x + 1

    def bad(x: int) -> Any:
        return x  # not a step

    s: Step[Any, Any, Any] = lift(lambda: inc(0)).named("outer")
    s = s.then(lambda x: lift(lambda: inc(x))).then(bad).named("tail")

    async def main() -> Any:
        return await run(s, None)

    with pytest.raises(TypeError, match="bad at 'tail' returned 2") as caught:
        anyio.run(main, backend=backend)
    assert caught.value.__notes__ == [
        f"mce: raised by the .then callback {bad.__qualname__} at 'tail'"
    ]
