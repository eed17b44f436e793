"""The runtime's exact contract: what the trampoline, the driver, parallel
blocks and scopes promise in detail - the notes and messages that name a
bug's position, trace events, journal positions and replay decisions,
cancellation, limits and state roll-back.

Mutation testing of `mce/_runtime/` showed these details were held by nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any, Never

import anyio
import pytest

from mce import (
    Budget,
    BudgetExceeded,
    EffectFailed,
    Err,
    Failures,
    Journal,
    MissingHandler,
    Ok,
    Secret,
    Step,
    StepTimeout,
    Waiting,
    ask,
    collect,
    defer,
    effect,
    fail,
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
    within_budget,
)
from mce._runtime.context import Seq
from mce._runtime.subrun import PARENT, Allowance, Parent
from mce._runtime.trampoline import advance
from mce.effects import report_retry
from mce.events import TraceEvent
from mce.journal import ReplayDivergence
from mce.llm import ScriptedModel, chat, scripted_handler

pytestmark = pytest.mark.anyio


def boom(_: object = None) -> Never:
    raise ZeroDivisionError("boom")


def sleeper(value: Any) -> Step[Any, Any, Any]:
    async def go() -> Any:
        await anyio.sleep(0)
        return value

    return lift(go)


def err_and_state(out: Ok[Any, Any] | Err[Any, Any]) -> tuple[Any, Any]:
    """An Err's error and state (its equality ignores the state)."""
    assert isinstance(out, Err), out
    return out.error, out.state


def events_of(trace: list[TraceEvent]) -> list[tuple[str, str, str, str, bool | None, bool]]:
    return [(e.event, e.name, e.position, e.branch, e.ok, e.replayed) for e in trace]


# ---------------------------------------------------------------- the trampoline


async def test_state_nodes_give_none_and_the_new_state() -> None:
    assert await run(put(1), 0) == Ok(None, 1)
    assert await run(modify(lambda s: s + 1), 0) == Ok(None, 1)
    assert await run(gets(lambda s: s * 10), 2) == Ok(20, 2)


async def test_map_error_sees_the_error_and_chains() -> None:
    prog = fail(1).map_error(lambda e: e + 1).map_error(lambda e: e * 10)
    assert await run(prog, None) == Err(20)


async def test_recover_rolls_the_state_back_and_is_dropped_on_success() -> None:
    failing = put(5).then(lambda _: fail("e"))
    assert await run(failing.recover(lambda e: get().map(lambda s: (e, s))), 0) == Ok(("e", 0), 0)
    # on success the saved state is dropped with the frame: the next bind sees the new state
    kept = put(1).recover(lambda e: pure(None)).then(lambda _: get())
    assert await run(kept, 0) == Ok(1, 1)
    # a recover that is not the innermost frame still catches, and rolls back to its entry
    nested = put(2).then(lambda _: failing.map(str)).recover(lambda e: get())
    assert await run(nested, 0) == Ok(0, 0)


@pytest.mark.parametrize(
    ("prog", "kind"),
    [
        (gets(boom), "gets() function boom"),
        (lift(boom), "lifted callable boom"),
        (defer(boom), "deferred step builder boom"),
        (fail(1).map_error(boom), ".map_error callback boom"),
    ],
)
async def test_a_bug_note_names_the_function_that_raised(
    prog: Step[Any, Any, Any], kind: str
) -> None:
    with pytest.raises(ZeroDivisionError) as info:
        await run(prog.named("inner"), 0)
    assert info.value.__notes__ == [f"mce: raised by the {kind} at 'inner'"]


async def test_defer_builds_its_step_when_it_runs() -> None:
    built: list[int] = []

    def build() -> Step[Any, Never, int]:
        built.append(1)
        return pure(len(built))

    prog = defer(build)
    assert built == []
    assert await run(prog.then(lambda a: prog.map(lambda b: (a, b))), None) == Ok((1, 2), None)


async def test_a_callback_returning_a_non_step_is_a_type_error_naming_it() -> None:
    def five(_: object) -> Any:
        return 5

    with pytest.raises(TypeError) as info:
        await run(pure(1).then(five).named("outer"), None)
    assert str(info.value) == (
        "the .then callback "
        f"{five.__qualname__} at 'outer' returned 5 (int), not a Step; "
        "wrap plain values in pure(...)"
    )
    with pytest.raises(TypeError, match=r"^the deferred step builder .* returned 3 \(int\)"):
        await run(defer(lambda: 3), None)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"^the .recover callback .* returned 'x' \(str\)"):
        await run(fail(1).recover(lambda e: "x"), None)  # type: ignore[arg-type, return-value]


async def test_a_non_step_inside_a_branch_names_the_branch() -> None:
    def five(_: object) -> Any:
        return 5

    prog = par(pure(0), pure(1).then(five).named("inner")).named("fan")
    with pytest.raises(TypeError, match=r" at 'fan' > branch 1 > 'inner' returned 5 \(int\)"):
        await run(prog, None)


async def test_named_steps_are_traced_with_their_position_and_outcome() -> None:
    trace: list[TraceEvent] = []
    prog = (
        pure(1)
        .named("a")
        .then(lambda v: fail("e").map(str).named("b"))
        .recover(lambda e: par(pure(0), pure(1).named("c")))
    )
    assert await run(prog, None, trace=trace.append) == Ok((0, 1), None)
    assert events_of(trace) == [
        ("step.start", "a", "", "", None, False),
        ("step.end", "a", "", "", True, False),
        ("step.start", "b", "", "", None, False),
        ("step.end", "b", "", "", False, False),
        ("step.start", "c", "0/1/", "0/1", None, False),
        ("step.end", "c", "0/1/", "0/1", True, False),
    ]


async def test_a_failing_named_step_without_a_tracer() -> None:
    assert await run(fail("e").named("b").named("a"), None) == Err("e")


async def test_a_finished_shared_step_is_served_without_awaiting() -> None:
    once = share(sleeper(7))
    # Once `once` has run, using it again needs no await: the branch that
    # uses it fails inline, before the sibling that must await, and an
    # inline failure is the first of all.
    prog = once.then(
        lambda _: par(
            sleeper(0).then(lambda _: fail("awaited")), once.then(lambda _: fail("inline"))
        )
    )
    assert await run(prog, None) == Err("inline")


async def test_a_finished_shared_failure_reaches_a_later_consumer() -> None:
    failing = share(sleeper(0).then(lambda _: fail("down")))
    prog = failing.recover(lambda e: pure(e)).then(
        lambda a: failing.recover(lambda e: pure(e + "!")).map(lambda b: (a, b))
    )
    assert await run(prog, None) == Ok(("down", "down!"), None)


# ---------------------------------------------------------------- the driver


def refuse(_: object) -> Never:
    raise EffectFailed("refused")


async def test_live_effects_are_traced_with_position_branch_and_outcome() -> None:
    trace: list[TraceEvent] = []
    prog = effect("a", 1, handler=str).then(
        lambda _: par(pure(0), sleeper(0).then(lambda _: effect("b", 2, handler=refuse)))
    )
    out = await run(prog.recover(lambda e: pure(e)), None, trace=trace.append)
    assert out == Ok("refused", None)
    assert events_of(trace) == [
        ("effect.start", "a", "0", "", None, False),
        ("effect.end", "a", "0", "", True, False),
        ("effect.start", "b", "1/1/0", "1/1", None, False),
        ("effect.end", "b", "1/1/0", "1/1", False, False),
    ]


async def test_served_effects_are_traced_as_replayed() -> None:
    j = Journal()
    prog = (
        effect("a", 1, handler=str)
        .then(lambda _: par(pure(0), effect("b", 2, handler=refuse)))
        .recover(lambda e: pure(e))
    )
    live = await run(prog, None, journal=j)
    trace: list[TraceEvent] = []
    assert await run(prog, None, journal=j, mode="replay", trace=trace.append) == live
    assert events_of(trace) == [
        ("effect.start", "a", "0", "", None, True),
        ("effect.end", "a", "0", "", True, True),
        ("effect.start", "b", "1/1/0", "1/1", None, True),
        ("effect.end", "b", "1/1/0", "1/1", False, True),
    ]


async def test_a_missing_handler_is_a_bug_naming_the_effect_and_where() -> None:
    prog = par(pure(0), sleeper(0).then(lambda _: effect("nowhere", 1)).named("inner"))
    with pytest.raises(MissingHandler) as info:
        await run(prog.named("fan"), None)
    assert info.value.__notes__ == [
        "mce: raised by the effect 'nowhere' at 'fan' > branch 1 > 'inner'"
    ]


async def test_a_coroutine_from_a_sync_thunk_is_awaited_and_its_bug_named() -> None:
    async def broken() -> int:
        await anyio.sleep(0)
        raise KeyError("k")

    def starts_broken() -> Any:
        return broken()

    async def three() -> int:
        await anyio.sleep(0)
        return 3

    assert await run(lift(lambda: three()).map(str), None) == Ok("3", None)
    with pytest.raises(KeyError) as info:
        await run(pure(0).then(lambda _: lift(starts_broken)).named("io"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the lifted callable {starts_broken.__qualname__} at 'io'"
    ]


async def test_awaited_scopes_blocks_and_shares_hand_on_their_state() -> None:
    bump = modify(lambda s: s + 1)
    # a timeout and a budget keep the state their step ended in
    assert await run(sleeper(0).then(lambda _: bump).timeout(5).then(lambda _: get()), 0) == Ok(
        1, 1
    )
    budgeted = within_budget(sleeper(0).then(lambda _: bump), Budget(max_calls=5))
    assert await run(budgeted.then(lambda _: get()), 0) == Ok(1, 1)
    # ... and roll it back when they fail
    timed_out = sleeper(0).then(lambda _: bump).then(lambda _: lift(anyio.sleep_forever))
    assert await run(timed_out.timeout(0.01).recover(lambda e: get()), 0) == Ok(0, 0)
    # a block's merged state
    block = par(sleeper(0).then(lambda _: put({"a": 1})), put({"b": 2}))
    assert await run(block.then(lambda _: get()), {}) == Ok({"a": 1, "b": 2}, {"a": 1, "b": 2})
    # a shared step's state changes are discarded: its consumer keeps its own
    once = share(sleeper(0).then(lambda _: bump).map(lambda _: "v"))
    assert await run(put(10).then(lambda _: once).then(lambda v: gets(lambda s: (v, s))), 0) == Ok(
        ("v", 10), 10
    )


# ---------------------------------------------------------------- positions and replay


def _positions(j: Journal) -> list[tuple[str, str]]:
    return sorted((e["pos"], e["kind"]) for e in j.load()[1])


async def test_effects_blocks_and_scopes_are_numbered_in_order() -> None:
    j = Journal()
    one = effect("k", 1, handler=str)
    prog = (
        one.then(lambda _: par(one, sleeper(0).then(lambda _: one)))
        .then(lambda _: one.timeout(5))
        .then(lambda _: within_budget(one, Budget(max_seconds=5)))
        .then(lambda _: one)
    )
    assert await run(prog, None, journal=j) == Ok("1", None)
    assert _positions(j) == [
        ("0", "k"),
        ("1/0/0", "k"),
        ("1/1/0", "k"),
        ("2", "mce.timeout"),
        ("2/0", "k"),
        ("3", "mce.budget"),
        ("3/0", "k"),
        ("4", "k"),
    ]


async def test_an_inline_block_gives_its_values_and_state() -> None:
    assert await run(par(pure(1), gets(str)).map(list), 5) == Ok([1, "5"], 5)


async def test_replay_serves_values_and_errors_without_handlers() -> None:
    calls: list[Any] = []

    def handler(request: Any) -> Any:
        calls.append(request)
        if request == "bad":
            raise EffectFailed({"code": 429})
        return {"echo": request}

    def prog() -> Step[Any, Any, Any]:
        return effect("k", "a", handler=handler).then(
            lambda a: (
                effect("k", "bad", handler=handler).recover(lambda e: pure(e)).map(lambda b: (a, b))
            )
        )

    j = Journal()
    live = await run(prog(), None, journal=j)
    assert live == Ok(({"echo": "a"}, {"code": 429}), None)
    calls.clear()
    replayed = await run(prog(), None, journal=j, mode="replay")
    assert replayed == live and calls == []
    assert replayed.report is not None and replayed.report.replayed == 2


async def test_replay_divergence_names_the_position_and_both_requests() -> None:
    j = Journal()
    await run(pure(0).then(lambda _: effect("k", "a", handler=str)), None, journal=j)
    with pytest.raises(ReplayDivergence) as info:
        await run(effect("k", "b", handler=str), None, journal=j, mode="replay")
    assert (info.value.position, info.value.kind, info.value.requested) == ("0", "k", "b")
    assert info.value.reason == "the request differs from the recorded one"
    assert info.value.__notes__ == ["mce: raised by the effect 'k' at the top level"]
    with pytest.raises(ReplayDivergence, match="recorded a 'k' effect here"):
        await run(effect("other", "a", handler=str), None, journal=j, mode="replay")


async def test_replayed_model_replies_count_their_tokens_and_against_budgets() -> None:
    model = ScriptedModel().when("q", "one two three four five")
    handlers = {"llm.chat": scripted_handler(model)}
    asks = chat(["q0"]).then(lambda _: chat(["q1"]))
    j = Journal()
    live = await run(
        within_budget(asks, Budget(max_tokens=10_000)), None, handlers=handlers, journal=j
    )
    assert live.report is not None and live.report.prompt_tokens > 0
    replayed = await run(
        within_budget(asks, Budget(max_tokens=10_000)), None, journal=j, mode="replay"
    )
    assert replayed == live and replayed.report is not None
    assert (replayed.report.prompt_tokens, replayed.report.completion_tokens) == (
        live.report.prompt_tokens,
        live.report.completion_tokens,
    )
    total = live.report.prompt_tokens + live.report.completion_tokens
    # the first reply alone stays within the budget, both do not: on replay too
    tight = within_budget(asks, Budget(max_tokens=total - 1))
    j2 = Journal()
    over = await run(tight, None, handlers=handlers, journal=j2)
    assert over == Err(BudgetExceeded("tokens", total - 1))
    assert await run(tight, None, journal=j2, mode="replay") == over


async def test_a_refused_call_fails_where_it_stands() -> None:
    seen: list[Any] = []
    one = effect("k", 1, handler=str)
    inner = one.then(lambda _: one.recover(lambda e: lift(lambda: seen.append(e))))
    out = await run(within_budget(inner, Budget(max_calls=1)), None)
    assert out == Err(BudgetExceeded("calls", 1))
    assert seen == [BudgetExceeded("calls", 1)]


async def test_an_object_with_a_foreign_tag_is_not_a_step() -> None:
    class Tagged:
        _tag = "x"

    with pytest.raises(TypeError, match=r"^the .then callback .* at 'n' returned <.*Tagged"):
        await run(pure(1).then(lambda _: Tagged()).named("n"), None)  # type: ignore[arg-type, return-value]


# ---------------------------------------------------------------- parallel blocks


def _failing_after_await(error: str) -> Step[Any, Any, Any]:
    return sleeper(0).then(lambda _: fail(error))


async def test_the_first_failure_of_an_awaiting_block_is_journaled_and_replayed() -> None:
    started: list[int] = []

    def branch(i: int) -> Step[Any, Any, Any]:
        body = _failing_after_await("first") if i == 1 else lift(anyio.sleep_forever)
        return lift(lambda: started.append(i)).then(lambda _: body)

    prog = traverse([0, 1, 2], branch)
    j = Journal()
    assert await run(prog, None, journal=j) == Err("first")
    assert sorted(started) == [0, 1, 2]
    assert ("0", "mce.par") in _positions(j)
    assert [e["ok"] for e in j.load()[1] if e["kind"] == "mce.par"] == [{"branch": 1}]
    started.clear()
    # on replay only the branch that failed first runs
    assert await run(prog, None, journal=j, mode="replay") == Err("first")
    assert started == [1]
    # a program whose recorded first failure now succeeds has diverged
    healed = traverse([0, 1, 2], lambda i: sleeper(i))
    with pytest.raises(ReplayDivergence) as info:
        await run(healed, None, journal=j, mode="replay")
    assert (info.value.position, info.value.kind) == ("0", "mce.par")
    assert info.value.reason == (
        "the journal records that branch 1 failed first, but on replay it succeeded"
    )


async def test_no_decision_is_journaled_when_timing_cannot_matter() -> None:
    j = Journal()
    # the failure happens inline, before any branch awaits
    assert await run(par(fail("inline"), sleeper(1)), None, journal=j) == Err("inline")
    j2 = Journal()
    # collect waits for every branch: nothing depends on which failed first
    out = await run(collect([_failing_after_await("a"), sleeper(1)]), None, journal=j2)
    assert out == Err(Failures(("a",), (0,)))
    assert _positions(j) == _positions(j2) == []


async def test_a_failing_collect_keeps_the_state_it_started_from() -> None:
    prog = collect([put(1).then(lambda _: fail("a")), put(2), sleeper(0).then(lambda _: fail("b"))])
    assert err_and_state(await run(prog, 0)) == (Failures(("a", "b"), (0, 2)), 0)


async def test_bugs_in_building_or_starting_a_branch_name_the_branch() -> None:
    with pytest.raises(ZeroDivisionError) as info:
        await run(traverse([1, 2], lambda i: pure(i) if i == 1 else boom()).named("t"), None)
    assert info.value.__notes__[0].startswith("mce: raised by the traverse() function ")
    assert info.value.__notes__[0].endswith(" at 't' > branch 1")
    with pytest.raises(
        TypeError, match=r"^the traverse\(\) function .* at 't' > branch 0 returned 1"
    ):
        await run(traverse([1], lambda i: i).named("t"), None)  # type: ignore[arg-type, return-value]
    with pytest.raises(ZeroDivisionError) as info:
        await run(par(pure(0), lift(boom)).named("p"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the lifted callable {boom.__qualname__} at 'p' > branch 1"
    ]


async def test_a_sync_lifted_branch_gives_its_value() -> None:
    assert await run(par(lift(lambda: 1), lift(lambda: 2), sleeper(3)), None) == Ok((1, 2, 3), None)


async def test_a_coroutine_of_a_branch_that_never_runs_is_closed_unstarted() -> None:
    import gc
    import warnings

    ran: list[int] = []

    async def never() -> int:
        ran.append(1)
        return 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert await run(par(lift(lambda: never()), fail("x")), None) == Err("x")
        gc.collect()
    assert ran == []
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_a_limit_starts_branches_in_order_and_only_as_slots_free() -> None:
    log: list[str] = []

    def branch(i: int) -> Step[Any, Any, int]:
        async def work() -> int:
            log.append(f"start {i}")
            await anyio.sleep(0)
            await anyio.sleep(0)
            log.append(f"end {i}")
            return i

        return lift(work)

    assert await run(traverse(range(4), branch, limit=1), None) == Ok((0, 1, 2, 3), None)
    assert log == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


# ---------------------------------------------------------------- scopes


async def _empty_run() -> Journal:
    j = Journal()
    await run(pure(0), None, journal=j)
    return j


async def test_a_timeout_is_journaled_and_replayed_without_waiting() -> None:
    slow = lift(anyio.sleep_forever).named("slow").timeout(0.01)
    j = Journal()
    live = await run(slow, None, journal=j)
    assert live == Err(StepTimeout(0.01, "slow"))
    assert [e["ok"] for e in j.load()[1]] == [{"fired": True}]
    with anyio.fail_after(5):
        assert await run(slow, None, journal=j, mode="replay") == live
    quick = effect("k", 1, handler=str).timeout(5)
    j2 = Journal()
    assert await run(quick, None, journal=j2) == Ok("1", None)
    assert await run(quick, None, journal=j2, mode="replay") == Ok("1", None)
    with pytest.raises(ReplayDivergence, match="the journal has no record of this timeout"):
        await run(quick, None, journal=await _empty_run(), mode="replay")


async def test_a_timeout_names_the_innermost_label_around_it() -> None:
    inner = lift(anyio.sleep_forever).timeout(0.01)
    assert await run(inner.named("outer"), None) == Err(StepTimeout(0.01, "outer"))
    assert await run(inner, None) == Err(StepTimeout(0.01, None))


async def test_running_out_of_time_is_journaled_and_replayed() -> None:
    prog = within_budget(lift(anyio.sleep_forever), Budget(max_seconds=0.01))
    j = Journal()
    assert await run(prog, None, journal=j) == Err(BudgetExceeded("seconds", 0.01))
    assert [e["ok"]["out_of_time"] for e in j.load()[1]] == [True]
    with anyio.fail_after(5):
        assert await run(prog, None, journal=j, mode="replay") == Err(
            BudgetExceeded("seconds", 0.01)
        )
    quick = within_budget(effect("k", 1, handler=str), Budget(max_seconds=5))
    j2 = Journal()
    assert await run(quick, None, journal=j2) == Ok("1", None)
    assert [e["ok"]["out_of_time"] for e in j2.load()[1] if e["kind"] == "mce.budget"] == [False]
    assert await run(quick, None, journal=j2, mode="replay") == Ok("1", None)
    with pytest.raises(ReplayDivergence, match="the journal has no record of this budget"):
        await run(quick, None, journal=await _empty_run(), mode="replay")


async def test_shared_steps_position_their_effects_under_their_key() -> None:
    one = effect("k", 1, handler=str)
    keyed, labelled, plain, plain2 = (
        share(one, key="cfg"),
        share(one.named("lab")),
        share(one),
        share(one),
    )
    same_key = share(one.map(str), key="cfg")
    prog = keyed.then(lambda _: labelled).then(lambda _: plain)
    prog = prog.then(lambda _: plain2).then(lambda _: same_key)
    j = Journal()
    assert await run(prog, None, journal=j) == Ok("1", None)
    assert _positions(j) == [
        ("s:#3/0", "k"),
        ("s:#4/0", "k"),
        ("s:cfg#2/0", "k"),
        ("s:cfg/0", "k"),
        ("s:lab/0", "k"),
    ]


async def test_a_shared_bug_is_raised_in_every_consumer() -> None:
    s = share(sleeper(0).map(boom))
    with pytest.raises(ZeroDivisionError):
        await run(s, None)
    with pytest.raises(ZeroDivisionError):
        await run(par(s.recover(lambda e: pure(0)), sleeper(0).then(lambda _: s)), None)


# ---------------------------------------------------------------- the driver, in detail


class ThreadJournal(Journal):
    """An in-memory journal written like a file one: in a worker thread, maybe in the background."""

    needs_thread = True


async def test_an_awaited_failure_keeps_the_state_it_reached() -> None:
    prog = sleeper(0).then(lambda _: put(3)).then(lambda _: fail("e"))
    assert err_and_state(await run(prog, 0)) == ("e", 3)


async def test_live_effect_events_carry_the_time_and_records_their_branch() -> None:
    trace: list[TraceEvent] = []
    j = Journal()
    start = time.time()
    prog = par(pure(0), sleeper(0).then(lambda _: effect("b", 2, handler=str)))
    await run(prog, None, journal=j, trace=trace.append)
    assert len(trace) == 2 and all(start <= e.time <= time.time() for e in trace)
    assert [(e["pos"], e["branch"]) for e in j.load()[1]] == [("0/1/0", "0/1")]


async def test_a_value_is_used_only_once_its_record_is_durable() -> None:
    j = ThreadJournal()

    def recorded() -> Step[Any, Any, list[str]]:
        return lift(lambda: [e["pos"] for e in j.load()[1]])

    one = effect("k", 1, handler=str)
    # the last effect of an unbounded branch may be written in the background,
    # but an effect followed by more work in its branch is durable before it
    branch = sleeper(0).then(lambda _: one).then(lambda _: recorded())
    timed = one.timeout(5).then(lambda _: recorded())
    out = await run(
        par(branch, sleeper(0).then(lambda _: one)).then(lambda v: timed.map(lambda t: (v[0], t))),
        None,
        journal=j,
    )
    assert isinstance(out, Ok)
    in_branch, after_timeout = out.value
    assert "0/0/0" in in_branch
    assert "1/0" in after_timeout


async def test_a_reply_over_the_token_budget_is_not_used() -> None:
    model = ScriptedModel().when("q", "one two three four five")
    seen: list[Any] = []
    prog = within_budget(chat(["q"]).map(seen.append), Budget(max_tokens=1))
    out = await run(prog, None, handlers={"llm.chat": scripted_handler(model)})
    assert out == Err(BudgetExceeded("tokens", 1))
    assert seen == []


async def test_bugs_inside_scopes_name_the_labels_outside_them() -> None:
    async def broken() -> int:
        await anyio.sleep(0)
        raise KeyError("k")

    def starts_broken() -> Any:
        return broken()

    timed = pure(0).then(lambda _: lift(starts_broken)).timeout(5)
    with pytest.raises(KeyError) as info:
        await run(timed.named("outer"), None)
    assert info.value.__notes__[0].endswith(" at 'outer'")
    budgeted = within_budget(sleeper(0).map(boom), Budget(max_calls=3))
    with pytest.raises(ZeroDivisionError) as info2:
        await run(budgeted.named("outer"), None)
    assert info2.value.__notes__[0].endswith(" at 'outer'")


async def test_scopes_and_shares_hand_on_inline_state_and_name_outer_labels() -> None:
    async def broken() -> Never:
        await anyio.sleep(0)
        raise ZeroDivisionError("boom")

    assert await run(put(3).timeout(5).then(lambda _: get()), 0) == Ok(3, 3)
    failing = put(3).then(lambda _: fail("e")).timeout(5)
    assert err_and_state(await run(failing, 0)) == ("e", 3)
    with pytest.raises(ZeroDivisionError) as info:
        await run(sleeper(0).then(lambda _: lift(broken)).timeout(5).named("outer"), None)
    assert info.value.__notes__[0].endswith(" at 'outer'")
    shared = share(sleeper(0).map(boom))
    with pytest.raises(ZeroDivisionError) as info:
        await run(sleeper(0).then(lambda _: shared).timeout(5).named("outer"), None)
    assert info.value.__notes__[0].endswith(" at 'outer'")


# ---------------------------------------------------------------- the driver's trace events and context


def ends_of(trace: list[TraceEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.event, e.name, e.position, e.branch, e.ok, e.request, e.result)
        for e in trace
        if e.event != "effect.start"
    ]


async def test_a_live_effect_shows_its_request_redacted_and_its_result(anyio_backend: str) -> None:
    async def handle(request: dict[str, Any]) -> int:
        return int(request["q"])

    trace: list[TraceEvent] = []
    prog = par(pure(0), effect("k", {"q": 1, "s": Secret("pw")}, handler=handle))
    assert await run(prog, None, trace=trace.append) == Ok((0, 1), None)
    shown = {"q": 1, "s": "<secret>"}
    assert [(e.event, e.request) for e in trace if e.event == "effect.start"] == [
        ("effect.start", shown)
    ]
    assert ends_of(trace) == [("effect.end", "k", "0/1/0", "0/1", True, shown, 1)]


async def test_a_question_left_open_ends_its_event_unfinished_and_keeps_the_state(
    anyio_backend: str,
) -> None:
    trace: list[TraceEvent] = []
    prog = put(5).then(lambda _: ask("Go?", into=bool, id="go"))
    out = await run(prog, 0, journal=Journal(), trace=trace.append)
    assert isinstance(out, Waiting) and out.state == 5
    assert ends_of(trace) == [("effect.end", "mce.ask", "0", "", None, None, None)]


async def test_a_cancelled_effect_ends_its_event_as_failed_without_a_result(
    anyio_backend: str,
) -> None:
    async def forever(_: object) -> Never:
        await anyio.sleep_forever()

    trace: list[TraceEvent] = []
    prog = par(pure(0), effect("slow", 1, handler=forever).timeout(0.01))
    assert await run(prog, None, trace=trace.append) == Err(StepTimeout(0.01, None))
    assert ends_of(trace) == [("effect.end", "slow", "0/1/0/0", "0/1/0", False, None, None)]


async def test_a_handler_retrying_is_traced_where_its_effect_is(anyio_backend: str) -> None:
    async def flaky(request: int) -> int:
        report_retry(1, "HTTP 503")
        return request

    trace: list[TraceEvent] = []
    start = time.time()
    prog = par(pure(0), effect("k", 7, handler=flaky))
    assert await run(prog, None, trace=trace.append) == Ok((0, 7), None)
    retries = [e for e in trace if e.event == "effect.retry"]
    assert [(e.name, e.position, e.branch, e.ok, e.result) for e in retries] == [
        ("k", "0/1/0", "0/1", False, "HTTP 503")
    ]
    assert start <= retries[0].time <= time.time()
    # untraced, a retry is reported to nobody
    assert await run(prog, None) == Ok((0, 7), None)


async def test_a_remote_effect_is_told_its_parents_allowance_position_and_tracer(
    anyio_backend: str,
) -> None:
    seen: list[tuple[str, Parent | None]] = []

    async def remote(request: str) -> str:
        seen.append((request, PARENT.get()))
        return request

    def tracer(event: TraceEvent) -> None:
        pass

    prog = within_budget(
        effect("r", "remote", handler=remote, remote=True).then(
            lambda _: effect("k", "local", handler=remote)
        ),
        Budget(max_calls=5),
    )
    assert await run(par(pure(0), prog), None, trace=tracer) == Ok((0, "local"), None)
    assert seen == [
        ("remote", Parent(Allowance(4, None, None), "0/1/0/0", tracer)),
        ("local", None),
    ]
    assert PARENT.get() is None


# ---------------------------------------------------------------- the trampoline serving a journal


@dataclasses.dataclass
class Point:
    x: int


async def test_a_served_list_is_decoded_into_the_declared_type(anyio_backend: str) -> None:
    async def points(_: object) -> list[Point]:
        return [Point(1), Point(2)]

    prog = effect("k", 1, handler=points, into=list[Point])
    j = Journal()
    assert await run(prog, None, journal=j) == Ok([Point(1), Point(2)], None)
    assert await run(prog, None, journal=j, mode="replay") == Ok([Point(1), Point(2)], None)


class Colour(enum.Enum):
    RED = "red"


async def test_a_served_plain_value_is_decoded_into_the_declared_type(anyio_backend: str) -> None:
    # recorded without a type (the handler returned a plain str / dict / list) ...
    j = Journal()
    assert await run(effect("c", 1, handler=lambda _: "red"), None, journal=j) == Ok("red", None)
    replayed = await run(effect("c", 1, into=Colour), None, journal=j, mode="replay")
    assert replayed == Ok(Colour.RED, None)  # ... served as the type the program declares
    j = Journal()
    await run(effect("p", 1, handler=lambda _: {"x": 3}), None, journal=j)
    replayed = await run(effect("p", 1, into=Point), None, journal=j, mode="replay")
    assert replayed == Ok(Point(3), None)
    j = Journal()
    await run(effect("l", 1, handler=lambda _: ["red"]), None, journal=j)
    replayed = await run(effect("l", 1, into=list[Colour]), None, journal=j, mode="replay")
    assert replayed == Ok([Colour.RED], None)


async def test_a_served_tagged_value_is_decoded_with_no_type_declared(anyio_backend: str) -> None:
    for value in [(1, 2), [(1, 2)], {"t": frozenset({1})}, b"raw"]:
        prog = effect("k", 1, handler=lambda _, v=value: v)
        j = Journal()
        assert await run(prog, None, journal=j) == Ok(value, None)
        replayed = await run(prog, None, journal=j, mode="replay")
        assert replayed == Ok(value, None) and type(replayed.value) is type(value)


async def test_a_resume_counts_served_replies_and_refuses_as_the_recorded_run_did() -> None:
    model = ScriptedModel().when("q", "one two three four five")
    handlers = {"llm.chat": scripted_handler(model)}
    asks = chat(["q0"]).then(lambda _: chat(["q1"]))
    j = Journal()
    live = await run(asks, None, handlers=handlers, journal=j)
    assert live.report is not None
    total = live.report.prompt_tokens + live.report.completion_tokens
    tight = within_budget(asks, Budget(max_tokens=total - 1))
    j = Journal()
    over = await run(tight, None, handlers=handlers, journal=j)
    assert over == Err(BudgetExceeded("tokens", total - 1))
    header, recorded = j.read()
    assert [(r.pos, r.kind) for r in recorded] == [
        ("0/0", "llm.chat"),
        ("0/1", "llm.chat"),
        ("0/1/budget", "mce.budget"),
        ("0", "mce.budget"),
    ]
    # crashed after the first reply: the served reply's tokens count, and the
    # live second one goes over the budget
    crashed = Journal()
    crashed.append([header, recorded[0]])  # type: ignore[list-item]
    assert await run(tight, None, handlers=handlers, journal=crashed, mode="resume") == over
    # crashed after the refusal, before the budget's decision: the served
    # second reply is refused again, as it was
    crashed = Journal()
    crashed.append([header, *recorded[:3]])  # type: ignore[list-item]
    assert await run(tight, None, journal=crashed, mode="resume") == over


@dataclasses.dataclass(frozen=True)
class Refused:
    why: str


async def test_a_served_failure_is_decoded_as_the_error_type_it_declares(
    anyio_backend: str,
) -> None:
    async def refuses(_: object) -> Never:
        raise EffectFailed(Refused("no"))

    prog = effect("k", 1, handler=refuses, error=Refused)
    j = Journal()
    assert await run(prog, None, journal=j) == Err(Refused("no"))
    assert await run(prog, None, journal=j, mode="replay") == Err(Refused("no"))


async def test_an_object_with_a_foreign_tag_in_a_branch_names_the_branch() -> None:
    class Tagged:
        _tag = "x"

    with pytest.raises(TypeError, match=r"^the .then callback .* at 'p' > branch 1 returned <"):
        await run(par(pure(0), pure(1).then(lambda _: Tagged())).named("p"), None)  # type: ignore[arg-type, return-value]


async def test_a_recorded_decision_of_another_kind_names_the_block() -> None:
    j = Journal()
    await run(effect("k", 1, handler=str), None, journal=j)
    with pytest.raises(ReplayDivergence) as info:
        await run(par(fail("x"), pure(0)), None, journal=j, mode="replay")
    assert info.value.reason == "the journal recorded a 'k' here, not 'mce.par'"
    assert info.value.__notes__[0].startswith("mce: raised by the parallel block ")


# ---------------------------------------------------------------- after an awaited lifted step
# (the driver's lifted-chain loop: `.then` callbacks and lifted callables it calls itself)


class _Ready:
    """An awaitable that is not a coroutine."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        yield from anyio.sleep(0).__await__()
        return self.value


async def test_after_a_lifted_step_the_chain_keeps_state_and_reaches_later_nodes(
    anyio_backend: str,
) -> None:
    trace: list[TraceEvent] = []
    prog = (
        put(5)
        .then(lambda _: sleeper(1).map(lambda v: v + 1).named("awaited"))
        .then(lambda v: gets(lambda s: (v, s)))
    )
    assert await run(prog, 0, trace=trace.append) == Ok((2, 5), 5)
    assert [(e.event, e.name, e.ok) for e in trace] == [
        ("step.start", "awaited", None),
        ("step.end", "awaited", True),
    ]


async def test_after_a_lifted_step_an_awaitable_that_is_not_a_coroutine_is_awaited(
    anyio_backend: str,
) -> None:
    prog = sleeper(1).then(lambda v: lift(lambda: _Ready(v + 1))).then(lambda v: pure(v * 10))
    assert await run(prog, None) == Ok(20, None)


async def test_after_a_lifted_step_bugs_name_the_callback_or_callable(anyio_backend: str) -> None:
    def bad_then(_: object) -> Never:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError) as info:
        await run(sleeper(1).then(bad_then).named("n"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the .then callback {bad_then.__qualname__} at 'n'"
    ]
    with pytest.raises(ZeroDivisionError) as info:
        await run(sleeper(1).then(lambda _: lift(boom)).named("n"), None)
    assert info.value.__notes__ == [
        f"mce: raised by the lifted callable {boom.__qualname__} at 'n'"
    ]

    def five(_: object) -> Any:
        return 5

    with pytest.raises(TypeError) as caught:
        await run(sleeper(1).then(five).named("n"), None)
    assert str(caught.value) == (
        f"the .then callback {five.__qualname__} at 'n' returned 5 (int), not a Step; "
        "wrap plain values in pure(...)"
    )


def test_advance_entered_with_a_foreign_node_is_a_type_error_naming_it() -> None:
    # (a Step subclass with a foreign tag, run directly; a subclass made here would
    # stay among Step's subclasses, which test_runtime_nodes checks)
    class Odd:
        _tag = 99

    with pytest.raises(TypeError, match=r" at the top level returned <.*Odd object .*> \(Odd\)"):
        advance(Odd(), [], None, None, Seq(None, None, None, ""))


async def test_a_block_of_finished_shared_steps_runs_inline(anyio_backend: str) -> None:
    once = share(sleeper(7))
    # `once` has finished before the block: its branches need no await, so the
    # failure is inline and no decision about which failed first is journaled
    prog = once.then(lambda _: par(once.then(lambda v: fail(("inline", v))), once))
    j = Journal()
    assert await run(prog, None, journal=j) == Err(("inline", 7))
    assert [e["kind"] for e in j.load()[1]] == []
