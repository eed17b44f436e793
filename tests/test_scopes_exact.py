"""Scopes' exact contract (`mce._runtime.scopes`): what a timeout and a
budget journal and how a replay or a resume follows that, the state a
scope's failure keeps, the divergences they report, and where a bug inside
a scope is said to be.

Mutation testing of `mce/_runtime/scopes.py` showed these details were
held by nothing.
"""

from __future__ import annotations

from typing import Any, Never

import anyio
import pytest

from mce import (
    Budget,
    BudgetExceeded,
    Err,
    Journal,
    Ok,
    Step,
    StepTimeout,
    collect,
    effect,
    fail,
    gather,
    get,
    lift,
    par,
    pure,
    put,
    run,
    share,
    within_budget,
)
from mce.journal import Record, ReplayDivergence
from mce.llm import AssistantMessage, Usage
from tests._exact import err_and_state, sleeper, to_str

pytestmark = pytest.mark.anyio


def records(j: Journal) -> list[tuple[str, str, Any]]:
    return [(e["pos"], e["kind"], e.get("ok", e.get("err"))) for e in j.load()[1]]


def k(n: int) -> Step[Any, Any, str]:
    return effect("k", n, handler=to_str)


async def empty_run() -> Journal:
    j = Journal()
    await run(pure(0), None, journal=j)
    return j


# ---------------------------------------------------------------- timeouts


async def test_a_fired_timeout_replays_without_asking_for_what_ran_before_it(
    anyio_backend: str,
) -> None:
    prog = k(1).then(lambda _: lift(anyio.sleep_forever)).timeout(0.01)
    j = Journal()
    assert await run(prog, None, journal=j) == Err(StepTimeout(0.01, None))
    assert records(j) == [("0/0", "k", "1"), ("0", "mce.timeout", {"fired": True})]
    with anyio.fail_after(5):
        assert await run(prog, None, journal=j, mode="replay") == Err(StepTimeout(0.01, None))


async def test_a_timeout_missing_from_the_journal_is_a_divergence_naming_it() -> None:
    with pytest.raises(ReplayDivergence) as info:
        await run(
            pure(0).then(lambda _: k(1).timeout(5)), None, journal=await empty_run(), mode="replay"
        )
    assert (info.value.position, info.value.kind, info.value.reason) == (
        "0",
        "mce.timeout",
        "the journal has no record of this timeout",
    )


async def test_a_timeout_inside_a_budget_is_charged_to_it(anyio_backend: str) -> None:
    prog = within_budget(k(1).then(lambda _: k(2)).timeout(5), Budget(max_calls=1))
    assert await run(prog, None) == Err(BudgetExceeded("calls", 1))


async def broken() -> Never:
    await anyio.sleep(0)
    raise ZeroDivisionError("boom")


async def test_a_bug_inside_a_scope_in_a_branch_names_the_branch_and_outer_labels(
    anyio_backend: str,
) -> None:
    scoped = {
        "timeout": lift(broken).named("inner").timeout(5),
        "budget": within_budget(lift(broken).named("inner"), Budget(max_calls=3)),
    }
    for scope in scoped.values():
        with pytest.raises(ZeroDivisionError) as info:
            await run(par(pure(0), scope).named("outer"), None)
        assert info.value.__notes__ == [
            f"mce: raised by the lifted callable {broken.__qualname__} "
            "at 'outer' > branch 1 > 'inner'"
        ]


# ---------------------------------------------------------------- budgets


async def test_a_refusal_is_journaled_and_replayed_with_the_state_rolled_back(
    anyio_backend: str,
) -> None:
    prog = within_budget(put(5).then(lambda _: k(1)).then(lambda _: k(2)), Budget(max_calls=1))
    j = Journal()
    assert err_and_state(await run(prog, 0, journal=j)) == (BudgetExceeded("calls", 1), 0)
    # the budget's own decision, at its position (the refused effect has its own record)
    assert [r for r in records(j) if r[0] == "0"] == [
        ("0", "mce.budget", {"out_of_time": False, "exceeded": {"resource": "calls", "limit": 1}})
    ]
    replayed = await run(prog, 0, journal=j, mode="replay")
    assert err_and_state(replayed) == (BudgetExceeded("calls", 1), 0)


async def test_running_out_of_time_rolls_the_state_back_live_and_on_replay(
    anyio_backend: str,
) -> None:
    prog = within_budget(put(5).then(lambda _: lift(anyio.sleep_forever)), Budget(max_seconds=0.01))
    j = Journal()
    assert err_and_state(await run(prog, 0, journal=j)) == (BudgetExceeded("seconds", 0.01), 0)
    with anyio.fail_after(5):
        replayed = await run(prog, 0, journal=j, mode="replay")
    assert err_and_state(replayed) == (BudgetExceeded("seconds", 0.01), 0)


async def test_a_budget_journals_a_decision_only_when_timing_could_matter(
    anyio_backend: str,
) -> None:
    # a budget without a time limit that refused nothing decides nothing
    j = Journal()
    prog = within_budget(k(1), Budget(max_calls=5))
    assert await run(prog, None, journal=j) == Ok("1", None)
    assert records(j) == [("0/0", "k", "1")]
    # one with a time limit records that it did not run out; a resume of the
    # finished run finds the decision and records nothing again
    j = Journal()
    timed = within_budget(k(1), Budget(max_seconds=5))
    assert await run(timed, None, journal=j) == Ok("1", None)
    finished = records(j)
    assert finished == [
        ("0/0", "k", "1"),
        ("0", "mce.budget", {"out_of_time": False, "exceeded": None}),
    ]
    assert await run(timed, None, journal=j, mode="resume") == Ok("1", None)
    assert records(j) == finished


async def test_a_resume_records_the_decision_a_crashed_run_did_not_make(
    anyio_backend: str,
) -> None:
    # the recorded run stopped after the effect, before its budget ended
    timed = within_budget(k(1), Budget(max_seconds=5))
    j = Journal()
    await run(timed, None, journal=j)
    header, recorded = j.read()
    crashed = Journal()
    crashed.append([header, *(r for r in recorded if r.kind == "k")])  # type: ignore[list-item]
    assert await run(timed, None, journal=crashed, mode="resume") == Ok("1", None)
    assert records(crashed) == records(j)


async def test_a_malformed_budget_decision_is_a_divergence_naming_it() -> None:
    prog = within_budget(k(1).then(lambda _: k(2)), Budget(max_calls=1))
    j = Journal()
    await run(prog, None, journal=j)
    header, recorded = j.read()
    bogus = {"out_of_time": False, "exceeded": {"resource": "bogus", "limit": 1}}
    tampered = Journal()
    tampered.append(
        [
            header,
            *(
                Record(r.pos, r.kind, r.fp, r.ok, bogus) if r.kind == "mce.budget" else r
                for r in recorded
            ),
        ]  # type: ignore[list-item]
    )
    with pytest.raises(ReplayDivergence) as info:
        await run(prog, None, journal=tampered, mode="replay")
    assert (info.value.position, info.value.kind) == ("0", "mce.budget")
    assert info.value.reason == (
        "the journal's budget decision is malformed: {'resource': 'bogus', 'limit': 1}"
    )


async def test_a_budget_missing_from_the_journal_is_a_divergence_naming_it() -> None:
    prog = pure(0).then(lambda _: within_budget(k(1), Budget(max_seconds=5)))
    with pytest.raises(ReplayDivergence) as info:
        await run(prog, None, journal=await empty_run(), mode="replay")
    assert (info.value.position, info.value.kind, info.value.reason) == (
        "0",
        "mce.budget",
        "the journal has no record of this budget",
    )


async def test_a_refusal_cancels_what_else_runs_under_the_budget(anyio_backend: str) -> None:
    # collect would wait for every branch: the sleeping one ends only because
    # the budget that ran out cancels everything under it
    prog = within_budget(collect([k(1), k(2), lift(anyio.sleep_forever)]), Budget(max_calls=1))
    with anyio.fail_after(5):
        assert await run(prog, None) == Err(BudgetExceeded("calls", 1))


async def test_a_timeout_hands_on_the_state_live_and_on_replay(anyio_backend: str) -> None:
    # a timer that fired rolls the state back to where the timeout began
    fired = put(5).then(lambda _: lift(anyio.sleep_forever)).timeout(0.01)
    j = Journal()
    assert err_and_state(await run(fired, 0, journal=j)) == (StepTimeout(0.01, None), 0)
    with anyio.fail_after(5):
        replayed = await run(fired, 0, journal=j, mode="replay")
    assert err_and_state(replayed) == (StepTimeout(0.01, None), 0)
    # one that did not fire runs its step from the state it was given, on replay too
    quick = k(1).then(lambda s: put(s)).then(lambda _: get()).timeout(5)
    j = Journal()
    assert await run(quick, "0", journal=j) == Ok("1", "1")
    assert await run(quick, "0", journal=j, mode="replay") == Ok("1", "1")
    reads = sleeper(0).then(lambda _: get()).timeout(5)
    j = Journal()
    assert await run(reads, 3, journal=j) == Ok(3, 3)
    assert await run(reads, 3, journal=j, mode="replay") == Ok(3, 3)


# ---------------------------------------------------------------- shared steps


def endless(began: anyio.Event, ended: list[str]) -> Step[Any, Any, Never]:
    """A step that runs until it is cancelled, saying when it began and when it ended."""

    async def go() -> Never:
        began.set()
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("ended")

    return lift(go)


async def test_a_shared_step_nobody_waits_for_ends_before_the_run_returns(
    anyio_backend: str,
) -> None:
    began, ended = anyio.Event(), list[str]()
    shared = share(endless(began, ended))
    failing = lift(began.wait).then(lambda _: fail("down"))
    with anyio.fail_after(5):
        assert await run(par(shared, failing), None) == Err("down")
    assert ended == ["ended"]


async def test_a_run_waits_for_a_cancelled_shared_step_to_clean_up(anyio_backend: str) -> None:
    began, ended = anyio.Event(), list[str]()

    async def go() -> Never:
        began.set()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):  # a cleanup that takes a few awaits
                for _ in range(5):
                    await anyio.sleep(0)
            ended.append("cleaned up")

    prog = par(share(lift(go)), lift(began.wait).then(lambda _: fail("down")))
    with anyio.fail_after(5):
        assert await run(prog, None) == Err("down")
    assert ended == ["cleaned up"]


async def test_a_cancelled_run_ends_its_shared_steps_before_it_returns(anyio_backend: str) -> None:
    began, ended = anyio.Event(), list[str]()
    seen: list[list[str]] = []

    async def cancel_once_begun(scope: anyio.CancelScope) -> None:
        await began.wait()
        scope.cancel()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_once_begun, tg.cancel_scope)
            try:
                await run(share(endless(began, ended)).map(str), None)
            finally:
                seen.append(list(ended))
    assert seen == [["ended"]]


async def test_a_run_leaves_no_task_behind_on_asyncio(anyio_backend: str) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("asyncio's own task list")
    import asyncio

    began, ended = anyio.Event(), list[str]()
    before = asyncio.all_tasks()
    shared = share(endless(began, ended))
    prog = par(shared, lift(began.wait).then(lambda _: fail("down")))
    with anyio.fail_after(5):
        await run(prog, None)
    assert asyncio.all_tasks() == before
    assert await run(gather_twice(share(sleeper(3))), None) == Ok((3, 3), None)
    assert asyncio.all_tasks() == before


def gather_twice(step: Step[Any, Any, Any]) -> Step[Any, Any, tuple[Any, Any]]:
    return par(step, step.map(lambda v: v))


async def test_a_timeout_inside_a_shared_step_fails_it_for_every_consumer(
    anyio_backend: str,
) -> None:
    calls: list[int] = []

    async def slow() -> Never:
        calls.append(1)
        await anyio.sleep_forever()

    shared = share(lift(slow).timeout(0.01))
    with anyio.fail_after(5):
        out = await run(par(shared.recover(pure), shared.recover(lambda e: pure(("again", e)))), 7)
    assert out == Ok((StepTimeout(0.01, None), ("again", StepTimeout(0.01, None))), 7)
    assert calls == [1]


async def test_a_shared_step_runs_once_for_consumers_in_several_tasks(anyio_backend: str) -> None:
    calls: list[int] = []

    async def once() -> int:
        calls.append(1)
        await anyio.sleep(0)
        return 5

    shared = share(lift(once))
    branches = [sleeper(i).then(lambda i: shared.map(lambda v, i=i: v + i)) for i in range(6)]
    with anyio.fail_after(5):
        assert await run(gather(branches), None) == Ok(tuple(5 + i for i in range(6)), None)
    assert calls == [1]


# ---------------------------------------------------------------- resumes


async def test_a_resume_that_finds_a_budget_spent_fails_as_the_run_did_and_journals_why(
    anyio_backend: str,
) -> None:
    # three calls of 5 tokens went past a budget of 12; the crash lost the
    # refusal and the decision: the resume fails at once, from the state the
    # budget began with, and journals the decision the run did not
    def tokens(i: int) -> AssistantMessage:
        return AssistantMessage(f"reply {i}", usage=Usage(4, 1))

    def call(i: int) -> Step[Any, Any, AssistantMessage]:
        return effect("m", i, handler=tokens, into=AssistantMessage)

    chain = call(0).then(lambda _: call(1).then(lambda _: call(2).then(lambda _: call(3))))
    prog = put("in").then(lambda _: within_budget(chain, Budget(max_tokens=12)))
    j = Journal()
    assert err_and_state(await run(prog, "start", journal=j)) == (
        BudgetExceeded("tokens", 12),
        "in",
    )
    header, recorded = j.read()
    crashed = Journal()
    crashed.append([header, *(r for r in recorded if r.kind == "m")])  # type: ignore[list-item]
    resumed = await run(prog, "start", journal=crashed, mode="resume")
    assert err_and_state(resumed) == (BudgetExceeded("tokens", 12), "in")
    assert records(crashed)[3:] == [
        ("0", "mce.budget", {"out_of_time": False, "exceeded": {"resource": "tokens", "limit": 12}})
    ]


async def test_a_resume_that_retries_what_failed_runs_a_timed_out_step_again(
    anyio_backend: str,
) -> None:
    attempts: list[int] = []

    async def slow_once() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await anyio.sleep_forever()
        return "done"

    prog = k(1).then(lambda _: lift(slow_once)).timeout(0.05)
    j = Journal()
    assert await run(prog, None, journal=j) == Err(StepTimeout(0.05, None))
    with anyio.fail_after(5):
        again = await run(prog, None, journal=j, mode="resume", retry_failed=True)
    assert again == Ok("done", None)
    assert attempts == [1, 1]
    # the new decision supersedes the recorded one: a replay follows it
    assert [r for r in records(j) if r[1] == "mce.timeout"] == [
        ("0", "mce.timeout", {"fired": False})
    ]
    assert await run(prog, None, journal=j, mode="replay") == Ok("done", None)
