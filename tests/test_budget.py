"""Budgets across parallel work: calls, tokens, time; cancellation; nesting; replay."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import (
    Budget,
    BudgetExceeded,
    EffectError,
    Err,
    Journal,
    Ok,
    effect,
    fail,
    gather,
    par,
    pure,
    run,
    sleep,
    within_budget,
)
from mce.llm import AssistantMessage, ScriptedModel, Usage, chat, scripted_handler

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


# ------------------------------------------------------------- a crash that loses a refusal


def _leaf(i: int, down: set[int], calls: list[int]) -> Any:
    async def work(req: int) -> int:
        calls.append(req)
        await anyio.sleep(0)
        if req in down:
            raise ConnectionError(f"{req} is down")
        return req

    return effect("w", i, handler=work).recover(
        lambda e: pure(-1) if isinstance(e, EffectError) else fail(e)
    )


def _branches(down: set[int], calls: list[int], limit: int | None) -> Any:
    # Nine effects: while the resume serves some branches, a live effect in
    # another is charged before the served effects of the branches after it.
    w = lambda i: _leaf(i, down, calls)  # noqa: E731
    return gather(
        [
            w(0).then(lambda _: w(1)),
            gather([w(2), w(3), w(4)]).then(lambda _: w(5).then(lambda _: w(6))),
            w(7),
            w(8),
        ],
        limit=limit,
    )


@pytest.mark.parametrize("nesting", ["alone", "inside a looser budget", "around a looser one"])
@pytest.mark.parametrize("limit", [None, 3])
@pytest.mark.parametrize("retry_failed", [False, True])
async def test_a_resume_that_lost_the_refusal_keeps_every_budget(
    nesting: str, limit: int | None, retry_failed: bool
) -> None:
    def program(down: set[int], calls: list[int]) -> Any:
        work = _branches(down, calls, limit)
        if nesting == "alone":
            return within_budget(work, Budget(max_calls=8))
        if nesting == "inside a looser budget":
            return within_budget(within_budget(work, Budget(max_calls=8)), Budget(max_calls=50))
        return within_budget(within_budget(work, Budget(max_calls=50)), Budget(max_calls=8))

    calls: list[int] = []
    j = Journal()
    live = await run(program({0} if retry_failed else set(), calls), None, journal=j)
    assert live == Err(BudgetExceeded("calls", 8)) and len(calls) == 8
    header, records = j.read()
    assert header is not None
    kept = [r for r in records if r.kind == "w"]  # the crash lost the refusal and decisions
    crashed = Journal()
    crashed.append([header, *kept])
    again: list[int] = []
    resumed = await run(
        program(set(), again), None, journal=crashed, mode="resume", retry_failed=retry_failed
    )
    assert resumed == live
    served = [r.req for r in kept if r.ok or not retry_failed]
    assert len(served) + len(again) <= 8, (served, again)
    assert await run(program(set(), []), None, journal=crashed, mode="replay") == resumed


async def test_a_resume_that_lost_a_token_refusal_keeps_the_token_budget() -> None:
    calls: list[int] = []

    def reply(i: int) -> AssistantMessage:
        calls.append(i)
        return AssistantMessage(f"reply {i}", usage=Usage(4, 1))

    def step(i: int) -> Any:
        return effect("m", i, handler=reply, into=AssistantMessage)

    chain = step(0).then(lambda _: step(1).then(lambda _: step(2).then(lambda _: step(3))))
    prog = within_budget(chain, Budget(max_tokens=12))
    j = Journal()
    live = await run(prog, None, journal=j)
    assert live == Err(BudgetExceeded("tokens", 12)) and calls == [0, 1, 2]
    header, records = j.read()
    assert header is not None
    crashed = Journal()
    crashed.append([header, *(r for r in records if r.kind == "m")])  # the refusal is lost
    assert await run(prog, None, journal=crashed, mode="resume") == live
    assert calls == [0, 1, 2]  # 15 tokens were used already: nothing more runs
    assert await run(prog, None, journal=crashed, mode="replay") == live


async def test_nested_budgets_count_each_served_effect_once() -> None:
    # Nothing was lost: the journal is whole up to a crash in the middle of
    # the block. What it holds counts once against each budget - not once
    # per budget it is nested in - before the first live effect.
    def prog(calls: list[int]) -> Any:
        inner = within_budget(_branches(set(), calls, None), Budget(max_calls=9))
        return within_budget(inner, Budget(max_calls=9))

    j = Journal()
    assert await run(prog([]), None, journal=j) == Ok((1, 6, 7, 8), None)
    header, records = j.read()
    assert header is not None
    crashed = Journal()
    crashed.append([header, *records[:5]])
    again: list[int] = []
    resumed = await run(prog(again), None, journal=crashed, mode="resume")
    assert resumed == Ok((1, 6, 7, 8), None)
    assert sorted(again + [r.req for r in records[:5]]) == list(range(9))


async def test_resuming_a_block_that_a_budget_failed_records_its_decision_once() -> None:
    # The block's recorded decision (its branch 1 failed first) is served on
    # resume; that branch still awaits (its budget scope), which must not make
    # the block journal the decision a second time.
    inner = within_budget(
        gather([effect("w", i, handler=str) for i in (2, 3)]), Budget(max_calls=1)
    )
    prog = gather([effect("w", 0, handler=str), inner])
    j = Journal()
    live = await run(prog, None, journal=j)
    assert live == Err(BudgetExceeded("calls", 1))
    assert await run(prog, None, journal=j, mode="resume") == live
    assert await run(prog, None, journal=j, mode="replay") == live  # the journal still loads
