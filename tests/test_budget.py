"""Budgets across parallel work: calls, tokens, time; cancellation; nesting; replay."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import (
    Budget,
    BudgetExceeded,
    Err,
    Journal,
    Ok,
    effect,
    gather,
    par,
    run,
    sleep,
    within_budget,
)
from mce.llm import ScriptedModel, chat, scripted_handler

pytestmark = pytest.mark.anyio


async def test_calls_across_parallel_branches_and_the_rest_is_cancelled() -> None:
    started: list[int] = []
    cancelled: list[int] = []
    finished: list[int] = []
    all_started = anyio.Event()
    never = anyio.Event()  # the work stays in flight until something cancels it

    async def block(i: int) -> int:
        started.append(i)
        if len(started) == 3:
            all_started.set()
        try:
            await never.wait()
        except anyio.get_cancelled_exc_class():
            cancelled.append(i)
            raise
        finished.append(i)
        return i

    async def gate(_: object) -> None:
        await all_started.wait()

    # Three calls start and stay in flight; the fourth branch makes the
    # fourth call (the gate) once they have, then a fifth, which is refused
    # and must cancel the three.
    branches = [effect("w", i, handler=block) for i in range(3)]
    branches.append(
        effect("gate", None, handler=gate).then(lambda _: effect("w", 3, handler=block))
    )
    with anyio.fail_after(30):  # a guard: without the cancellation the run never ends
        out = await run(within_budget(gather(branches), Budget(max_calls=4)), None)
    assert out == Err(BudgetExceeded("calls", 4))
    assert sorted(started) == [0, 1, 2]  # the fifth call was refused
    assert sorted(cancelled) == [0, 1, 2]  # in-flight work was cancelled, not awaited
    assert finished == []


async def test_tokens_from_model_usage() -> None:
    model = ScriptedModel().when("q", "one two three four five")
    asks = gather([chat([f"q{i}"]) for i in range(4)])
    handlers = {"llm.chat": scripted_handler(model)}
    out = await run(within_budget(asks, Budget(max_tokens=10)), None, handlers=handlers)
    assert out == Err(BudgetExceeded("tokens", 10))
    assert (await run(within_budget(asks, Budget(max_tokens=1000)), None, handlers=handlers)).ok


async def test_seconds() -> None:
    out = await run(within_budget(par(sleep(5), sleep(5)), Budget(max_seconds=0.02)), None)
    assert out == Err(BudgetExceeded("seconds", 0.02))


async def test_nested_budgets_both_count() -> None:
    inner = within_budget(
        gather([effect("k", i, handler=lambda r: r) for i in range(3)]), Budget(max_calls=10)
    )
    outer = within_budget(par(inner, inner), Budget(max_calls=5))
    assert await run(outer, None) == Err(BudgetExceeded("calls", 5))
    assert await run(within_budget(par(inner, inner), Budget(max_calls=6)), None) == Ok(
        ((0, 1, 2), (0, 1, 2)), None
    )


async def test_replay_agrees() -> None:
    j = Journal()
    prog = within_budget(
        par(sleep(5), effect("k", 1, handler=lambda r: r)), Budget(max_seconds=0.02, max_calls=9)
    )
    live = await run(prog, None, journal=j)
    assert live == Err(BudgetExceeded("seconds", 0.02))
    start = anyio.current_time()
    assert await run(prog, None, journal=j, mode="replay") == live
    assert anyio.current_time() - start < 1


def test_budget_values_are_checked() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        Budget(max_calls=0)
    with pytest.raises(TypeError, match="Budget"):
        within_budget(sleep(0), {"max_calls": 1})  # type: ignore[arg-type]


async def test_within_budget_is_transparent_when_not_exceeded() -> None:
    prog: Any = effect("k", 2, handler=lambda r: r * 2)
    assert await run(
        within_budget(prog, Budget(max_calls=1, max_tokens=5, max_seconds=5)), None
    ) == Ok(4, None)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_calls": "5"}, TypeError),
        ({"max_calls": 2.5}, TypeError),
        ({"max_tokens": True}, TypeError),
        ({"max_seconds": "1"}, TypeError),
        ({"max_calls": 0}, ValueError),
        ({"max_seconds": float("nan")}, ValueError),
        ({"max_seconds": -1.0}, ValueError),
    ],
)
def test_a_bad_budget_is_refused_where_it_is_made(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    (name,) = kwargs
    with pytest.raises(error, match=rf"Budget\({name}=\.\.\.\)") as info:
        Budget(**kwargs)
    assert type(info.value) is error and repr(kwargs[name]) in str(info.value)


def test_within_budget_refuses_what_is_not_a_step() -> None:
    with pytest.raises(
        TypeError, match=r"within_budget\(step, budget\) needs a Step as step, got 5"
    ):
        within_budget(5, Budget(max_calls=1))  # type: ignore[type-var]
    with pytest.raises(TypeError, match=r"needs a Budget as budget, got 3"):
        within_budget(effect("k", 1), 3)  # type: ignore[arg-type]
