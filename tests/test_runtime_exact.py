"""The runtime's exact contract: what the trampoline, the driver, parallel
blocks and scopes promise in detail - the notes and messages that name a
bug's position, trace events, journal positions and replay decisions,
cancellation, limits and state roll-back.

Mutation testing of `mce/_runtime/` showed these details were held by nothing.
"""

from __future__ import annotations

from typing import Any, Never

import anyio
import pytest

from mce import (
    Budget,
    BudgetExceeded,
    EffectFailed,
    Err,
    Journal,
    MissingHandler,
    Ok,
    Step,
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
    within_budget,
)
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
    assert await run(tight, None, journal=j, mode="replay") == Err(
        BudgetExceeded("tokens", total - 1)
    )


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
