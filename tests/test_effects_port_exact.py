"""The effects port's exact contract (`mce._runtime.effects_port`): the run
options it checks and their messages, how a journal is opened, the header a
run writes, what a live effect reports and journals (position, kind,
fingerprint, value or error, request, times, branch), the built-in effects,
the run report, and how budgets are charged for live and served effects.

Mutation testing of the module showed these details were held by nothing.
"""

from __future__ import annotations

import gc
import logging
import random as _random
import threading
import types
import uuid as _uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from attrs import frozen

from mce import (
    Budget,
    BudgetExceeded,
    EffectError,
    EffectFailed,
    Err,
    FileJournal,
    Journal,
    JournalInUse,
    MissingHandler,
    Ok,
    Secret,
    Waiting,
    effect,
    gather,
    lift,
    now,
    par,
    pure,
    random,
    run,
    sleep,
    uuid,
    within_budget,
)
from mce._runtime import effects_port
from mce._runtime.effects_port import Effects, check_run_options, open_effects
from mce._runtime.replay import BUDGET_DECISION, PAR_DECISION
from mce._runtime.writer import JournalWriter
from mce.budget import Tracker
from mce.codec import encode
from mce.journal import Header, Record, ReplayDivergence
from mce.questions import ask

pytestmark = pytest.mark.anyio


@frozen
class Usage:
    prompt_tokens: int
    completion_tokens: int


@frozen
class Reply:
    text: str
    usage: Usage


@frozen
class Refusal:
    reason: str
    usage: Usage


class Outer:
    class Boom(Exception):
        pass


class Clock:
    """A stand-in for the port's `time` module: 10.0, 20.0, 30.0, ... per call."""

    def __init__(self) -> None:
        self.ticks = 0

    def time(self) -> float:
        self.ticks += 1
        return self.ticks * 10.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(effects_port, "time", types.SimpleNamespace(time=fake.time))
    yield fake


def records(j: Journal) -> list[Record]:
    return list(j.read()[1])


# ------------------------------------------------------------- run options


def test_check_run_options_returns_the_seed() -> None:
    assert check_run_options("live", None, None, False) is None
    assert check_run_options("live", None, 7, False) == 7
    assert check_run_options("replay", Journal(), 0, False) == 0
    assert check_run_options("resume", Journal(), None, True) is None


def test_an_unknown_mode_is_a_value_error_naming_the_modes() -> None:
    with pytest.raises(ValueError) as caught:
        check_run_options("record", Journal(), None, False)
    assert str(caught.value) == (
        "run(mode=...) must be one of ('live', 'replay', 'resume'), got 'record'"
    )


@pytest.mark.parametrize("mode", ["replay", "resume"])
def test_replay_and_resume_need_a_journal(mode: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_run_options(mode, None, None, False)
    assert str(caught.value) == f"run(mode={mode!r}) needs a journal= to read from"


@pytest.mark.parametrize("flag", [1, 0, None, "yes"])
def test_retry_failed_must_be_a_bool(flag: Any) -> None:
    with pytest.raises(TypeError) as caught:
        check_run_options("resume", Journal(), None, flag)
    assert str(caught.value) == f"run(retry_failed=...) must be True or False, got {flag!r}"


@pytest.mark.parametrize("mode", ["live", "replay"])
def test_retry_failed_needs_resume(mode: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_run_options(mode, Journal(), None, True)
    assert str(caught.value) == (
        "run(retry_failed=True) re-runs failed effects of a resumed run; it needs "
        f"mode='resume', not {mode!r}"
    )


def test_the_seed_is_checked_too() -> None:
    with pytest.raises(TypeError, match=r"seed=\.\.\.\) must be an int"):
        check_run_options("live", None, 1.5, False)


# ------------------------------------------------------------- opening


async def test_opening_a_live_run_writes_a_header_with_a_fresh_run_id_and_the_seed() -> None:
    j = Journal()
    effects = await open_effects("live", j, {}, 42)
    try:
        assert (effects.mode, effects.serving, effects.recording) == ("live", False, True)
        assert effects.seed == 42
        assert len(effects.run_id) == 32 and int(effects.run_id, 16) >= 0
        await effects.finish()
        header = j.read()[0]
        assert header is not None
        assert (header.run, header.seed) == (effects.run_id, 42)
    finally:
        effects.close()
    other = await open_effects("live", Journal(), {}, 42)
    assert other.run_id != effects.run_id
    other.close()


async def test_without_a_seed_each_run_draws_a_64_bit_one() -> None:
    seeds = set()
    for _ in range(32):
        effects = await open_effects("live", None, {}, None)
        assert type(effects.seed) is int and 0 <= effects.seed < 2**64
        seeds.add(effects.seed)
        effects.close()
    assert len(seeds) > 1


async def test_a_run_without_a_journal_neither_serves_nor_records() -> None:
    effects = await open_effects("live", None, {}, 1)
    assert (effects.serving, effects.recording) == (False, False)
    await effects.finish()
    await effects.durable()
    effects.close()


@pytest.mark.parametrize("mode", ["replay", "resume"])
async def test_a_replay_or_resume_takes_run_id_and_seed_from_the_header(mode: Any) -> None:
    j = Journal()
    j.append([Header("run-1", 99, 0.0), Record("0", "k", "f", True, 1)])
    effects = await open_effects(mode, j, {}, 5)  # the recorded seed wins
    try:
        assert (effects.run_id, effects.seed) == ("run-1", 99)
        assert effects.serving is True
        assert effects.recording is (mode == "resume")
        await effects.finish()
        assert j.read()[0] == Header("run-1", 99, 0.0)  # no second header
        assert effects.lookup("0", "k", None, "f") == Record("0", "k", "f", True, 1)
    finally:
        effects.close()


async def test_a_live_run_serves_nothing_from_its_journal() -> None:
    effects = Effects(
        "live", JournalWriter(Journal()), None, (Record("0", "k", "f", True, 1),), {}, 1, None
    )
    assert effects.serving is False
    assert effects.lookup("0", "k", None, "f") is None  # a live lookup has no entries


async def test_resume_logs_how_many_records_it_serves(caplog: pytest.LogCaptureFixture) -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, 1), Record("1", "k", "g", True, 2)])
    with caplog.at_level(logging.INFO, logger="mce"):
        effects = await open_effects("resume", j, {}, None)
        effects.close()
    assert (
        "resuming journal <memory>: 2 recorded effects are served from it, the rest runs live"
        in caplog.messages
    )


async def test_a_live_run_logs_no_resume(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mce"):
        effects = await open_effects("live", Journal(), {}, None)
        effects.close()
    assert not [m for m in caplog.messages if m.startswith("resuming")]


async def test_a_journal_that_fails_while_opening_is_released() -> None:
    class Unnamed(Journal):
        closed = 0

        @property
        def name(self) -> str:
            raise RuntimeError("no name")

        def close(self) -> None:
            self.closed += 1
            super().close()

    j = Unnamed()
    with pytest.raises(RuntimeError, match="no name"):
        await open_effects("live", j, {}, None)
    assert j.closed == 1
    j.acquire()  # the lock was released


async def test_a_file_journal_is_opened_and_locked(tmp_path: Any) -> None:
    path = tmp_path / "run.jsonl"
    j = FileJournal(path)
    effects = await open_effects("live", j, {}, 3)
    try:
        with pytest.raises(JournalInUse, match="is in use by another run"):
            await open_effects("live", FileJournal(path), {}, 3)
    finally:
        effects.close()
    again = await open_effects("resume", FileJournal(path), {}, None)
    again.close()


# ------------------------------------------------------------- a live effect's record


async def test_a_top_level_effect_is_journaled_exactly(clock: Clock) -> None:
    j = Journal()
    out = await run(effect("add", [1, 2], handler=sum), None, journal=j, seed=3)
    assert out == Ok(3, None)
    header, entries = j.read()
    assert header is not None and (header.seed, header.t0) == (3, 10.0)
    (r,) = entries
    assert r == Record("0", "add", effect("add", [1, 2]).fp, True, 3, [1, 2], 20.0, 30.0, "")
    assert out.report is not None
    assert out.report.effect_seconds == 10.0
    assert (out.report.live_calls, out.report.replayed, out.report.effects) == (1, 0, 1)


async def test_effect_seconds_add_up_over_effects(clock: Clock) -> None:
    prog = effect("k", 1, handler=str).then(lambda _: effect("k", 2, handler=str))
    out = await run(prog, None)
    assert out.report is not None and out.report.effect_seconds == 20.0


async def test_a_branch_s_effect_names_its_branch(clock: Clock) -> None:
    j = Journal()
    out = await run(par(pure(0), effect("k", "x", handler=str.upper)), None, journal=j)
    assert out == Ok((0, "X"), None)
    (r,) = records(j)
    assert (r.pos, r.branch, r.req, r.value, r.ok) == ("0/1/0", "0/1", "x", "X", True)


async def test_a_failure_is_journaled_as_an_effect_error(clock: Clock) -> None:
    def fails(req: Any) -> Any:
        raise Outer.Boom(f"bad {req}")

    j = Journal()
    out = await run(effect("k", 5, handler=fails), None, journal=j)
    expected = EffectError("k", "0", "bad 5", "Outer.Boom")
    assert out == Err(expected, None)
    (r,) = records(j)
    assert r == Record("0", "k", effect("k", 5).fp, False, r.value, 5, 20.0, 30.0, "")
    assert await run(effect("k", 5), None, journal=j, mode="replay") == out


async def test_a_typed_failure_is_the_handler_s_error() -> None:
    def refuses(req: Any) -> Any:
        raise EffectFailed(Refusal("no", Usage(5, 5)))

    j = Journal()
    out = await run(effect("k", 1, handler=refuses, error=Refusal), None, journal=j)
    assert out == Err(Refusal("no", Usage(5, 5)), None)
    assert out.report is not None
    # a failure is not accounted, whatever usage its error reports
    assert out.report.prompt_tokens == out.report.completion_tokens == 0
    (r,) = records(j)
    assert r.ok is False
    assert await run(effect("k", 1, error=Refusal), None, journal=j, mode="replay") == out


async def test_a_value_s_tokens_are_accounted_live_and_served() -> None:
    j = Journal()
    prog = effect("chat", "hi", handler=lambda r: Reply(r, Usage(3, 4)), into=Reply)
    prog = prog.then(
        lambda _: effect("chat", "again", handler=lambda r: Reply(r, Usage(1, 2)), into=Reply)
    )
    live = await run(prog, None, journal=j)
    assert live.report is not None
    assert (live.report.prompt_tokens, live.report.completion_tokens) == (4, 6)
    replayed = await run(prog, None, journal=j, mode="replay")
    assert replayed.report is not None
    assert (replayed.report.prompt_tokens, replayed.report.completion_tokens) == (4, 6)


async def test_secrets_never_reach_the_journal_or_the_error() -> None:
    def fails(req: Any) -> Any:
        raise ValueError(f"key {req['key']} rejected")

    def refuses(req: Any) -> Any:
        raise EffectFailed(f"key {req['key']} refused")

    request = {"key": Secret("sk-123")}
    j = Journal()
    out = await run(effect("a", request, handler=fails), None, journal=j)
    assert out == Err(EffectError("a", "0", "key <secret> rejected", "ValueError"), None)
    (r,) = records(j)
    assert r.req == {"key": "<secret>"} and "sk-123" not in repr(r)
    assert await run(effect("a", request), None, journal=j, mode="replay") == out
    j = Journal()
    out = await run(effect("b", request, handler=refuses), None, journal=j)
    assert out == Err("key <secret> refused", None)
    (r,) = records(j)
    assert (r.ok, r.value, r.req) == (False, "key <secret> refused", {"key": "<secret>"})


async def test_the_run_s_handler_overrides_the_effect_s_own() -> None:
    out = await run(
        effect("k", 2, handler=lambda r: "own"), None, handlers={"k": lambda r: "given"}
    )
    assert out == Ok("given", None)
    assert await run(effect("k", 2, handler=lambda r: "own"), None) == Ok("own", None)


async def test_the_handler_gets_the_revealed_request_and_the_remote_flag() -> None:
    calls: list[tuple[Any, bool]] = []

    class Recording:
        async def call(self, handler: Any, request: Any, remote: bool) -> Any:
            calls.append((request, remote))
            return handler(request)

    prog = effect("k", {"key": Secret("s")}, handler=lambda r: r["key"], remote=True)
    prog = prog.then(lambda v: effect("k", v, handler=str.upper))
    out = await run(prog, None, executor=Recording())  # type: ignore[arg-type]
    assert out == Ok("S", None)
    assert calls == [({"key": "s"}, True), ("s", False)]


async def test_an_effect_without_a_handler_is_missing_handler_naming_kind_and_position() -> None:
    j = Journal()
    with pytest.raises(MissingHandler) as caught:
        await run(pure(1).then(lambda _: par(pure(0), effect("nobody", 1))), None, journal=j)
    assert (caught.value.kind, caught.value.position) == ("nobody", "0/1/0")
    assert records(j) == []


async def test_an_unjournalable_value_is_a_type_error_with_a_note() -> None:
    j = Journal()
    with pytest.raises(TypeError) as caught:
        await run(effect("k", 1, handler=lambda r: object()), None, journal=j)
    assert str(caught.value).startswith("effect 'k' at 0: cannot journal a object")
    assert caught.value.__notes__[0] == (
        "effect values must be journalable to record or replay a run"
    )
    # without a journal, nothing is encoded
    value = object()
    assert await run(effect("k", 1, handler=lambda r: value), None) == Ok(value, None)


async def test_an_unanswered_question_is_no_live_call() -> None:
    j = Journal()
    out = await run(
        effect("k", 1, handler=str).then(lambda _: ask("ok?", into=bool, id="q")), None, journal=j
    )
    assert isinstance(out, Waiting)
    assert out.report is not None and out.report.live_calls == 1
    answered = await run(
        effect("k", 1, handler=str).then(lambda _: ask("ok?", into=bool, id="q")),
        None,
        journal=j,
        mode="resume",
        answers={"q": True},
    )
    assert answered == Ok(True, None)
    assert answered.report is not None
    assert (answered.report.live_calls, answered.report.replayed) == (1, 1)
    asked = [r for r in records(j) if r.pos == "1"]
    assert [(r.ok, r.value) for r in asked] == [(True, True)]


# ------------------------------------------------------------- built-in effects


async def test_builtin_now_is_the_clock(clock: Clock) -> None:
    j = Journal()
    out = await run(now(), None, journal=j)
    # header t0, effect t0, the clock read by the handler, effect t1
    assert out == Ok(30.0, None)
    (r,) = records(j)
    assert (r.t0, r.value, r.t1) == (20.0, 30.0, 40.0)


async def test_builtin_random_and_uuid_are_drawn_from_seed_and_position() -> None:
    out = await run(par(random(), uuid(), pure(0).then(lambda _: random())), None, seed=11)
    expected_uuid = str(_uuid.UUID(int=_random.Random("11:0/1/0").getrandbits(128), version=4))
    assert out == Ok(
        (
            _random.Random("11:0/0/0").random(),
            expected_uuid,
            _random.Random("11:0/2/0").random(),
        ),
        None,
    )


async def test_builtin_sleep_sleeps_and_gives_none() -> None:
    j = Journal()
    assert await run(sleep(0), None, journal=j) == Ok(None, None)
    (r,) = records(j)
    assert (r.kind, r.req, r.value) == ("mce.sleep", 0, None)


# ------------------------------------------------------------- decisions, durability, report


async def test_a_decision_is_journaled_as_a_bare_record(clock: Clock) -> None:
    effects = await open_effects("live", Journal(), {}, 1)
    j = effects._journal
    assert j is not None
    await effects.record_decision("2/1", PAR_DECISION, {"branch": (1, 2)})
    (r,) = records(j)
    assert r == Record(
        "2/1", PAR_DECISION, "", True, {"branch": {"$tuple": [1, 2]}}, None, 20.0, 20.0, None
    )
    effects.close()


async def test_no_decision_is_journaled_in_a_replay() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0)])
    effects = await open_effects("replay", j, {}, None)
    await effects.record_decision("0", PAR_DECISION, {"branch": 0})
    await effects.finish()
    assert records(j) == []
    effects.close()


async def test_a_replay_checks_completeness_and_a_resume_does_not() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, 1)])
    resumed = await open_effects("resume", j, {}, None)
    resumed.check_complete()  # a resume runs on: the journal need not be used up
    resumed.close()
    replayed = await open_effects("replay", j, {}, None)
    with pytest.raises(Exception, match="recorded, never requested"):
        replayed.check_complete()
    replayed.close()


async def test_the_report_counts_served_and_live_effects() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, 1)])
    effects = await open_effects("resume", j, {}, None)
    effects.lookup("0", "k", None, "f")
    await effects.perform(effect("k", 2, handler=str), "1", "")
    report = effects.report(2.5)
    assert (report.effects, report.live_calls, report.replayed) == (2, 1, 1)
    assert report.wall_seconds == 2.5
    effects.close()


async def test_close_releases_the_journal() -> None:
    j = Journal()
    effects = await open_effects("live", j, {}, None)
    effects.close()
    j.acquire()


async def test_perform_of_a_deferred_record_is_durable_after_durable(tmp_path: Any) -> None:
    path = tmp_path / "run.jsonl"
    out = await run(gather([effect("k", i, handler=str) for i in range(3)]), None, journal=path)
    assert out == Ok(("0", "1", "2"), None)
    assert sorted(r.pos for r in FileJournal(path).read()[1]) == ["0/0/0", "0/1/0", "0/2/0"]


# ------------------------------------------------------------- budgets


def tracker(**limits: Any) -> Tracker:
    return Tracker(Budget(**limits), None)


async def test_a_live_call_over_budget_is_refused_and_the_refusal_journaled(clock: Clock) -> None:
    effects = await open_effects("live", Journal(), {}, 1)
    j = effects._journal
    assert j is not None
    t = tracker(max_calls=1)
    assert effects.charge_call(t, "0") is None
    assert effects.charge_call(t, "1/0/2") == BudgetExceeded("calls", 1)
    await effects.durable()
    (r,) = records(j)
    assert r == Record(
        "1/0/2/budget",
        BUDGET_DECISION,
        "",
        True,
        {"refused": {"resource": "calls", "limit": 1}},
        None,
        20.0,
        20.0,
        None,
    )
    effects.close()


async def test_a_live_value_over_budget_is_refused_and_the_refusal_journaled() -> None:
    effects = await open_effects("live", Journal(), {}, 1)
    j = effects._journal
    assert j is not None
    t = tracker(max_tokens=5)
    assert effects.charge_value(t, "0", Reply("a", Usage(2, 2))) is None
    assert effects.charge_value(t, "1", Reply("b", Usage(1, 1))) == BudgetExceeded("tokens", 5)
    await effects.durable()
    assert [(r.pos, r.value) for r in records(j)] == [
        ("1/budget", {"refused": {"resource": "tokens", "limit": 5}})
    ]
    effects.close()


async def test_without_a_journal_a_refusal_is_not_recorded() -> None:
    effects = await open_effects("live", None, {}, 1)
    t = tracker(max_calls=1)
    t.calls = 1
    assert effects.charge_call(t, "0") == BudgetExceeded("calls", 1)
    effects.close()


async def test_a_replay_serves_a_recorded_refusal() -> None:
    j = Journal()
    refused = {"refused": {"resource": "calls", "limit": 7}}
    j.append([Header("r", 1, 0.0), Record("3/budget", BUDGET_DECISION, "", True, refused)])
    effects = await open_effects("replay", j, {}, None)
    t = tracker(max_calls=7)
    assert effects.charge_call(t, "3") == BudgetExceeded("calls", 7)
    assert t.exceeded == BudgetExceeded("calls", 7) and t.calls == 0
    effects.check_complete()  # the refusal was used
    effects.close()


async def test_a_replay_charges_a_recorded_effect_even_past_the_limit() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, 1), Record("1", "k", "f", True, 1)])
    effects = await open_effects("replay", j, {}, None)
    t = tracker(max_calls=1)
    assert effects.charge_call(t, "0") is None
    assert effects.charge_call(t, "1") is None  # it ran in the recorded run: never refused
    assert t.calls == 2 and t.exceeded is None
    assert effects.charge_call(t, "2") is None  # not recorded: the lookup names the divergence
    assert t.calls == 2
    effects.close()


async def test_a_resume_charges_live_what_was_not_recorded() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, 1)])
    effects = await open_effects("resume", j, {}, None)
    t = tracker(max_calls=1)
    assert effects.charge_call(t, "0") is None
    assert t.calls == 1
    assert effects.charge_call(t, "1") == BudgetExceeded("calls", 1)
    await effects.durable()
    assert [r.pos for r in records(j)] == ["0", "1/budget"]
    effects.close()


async def test_a_resume_with_retry_failed_charges_a_recorded_failure_live() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", False, "boom")])
    effects = await open_effects("resume", j, {}, None, retry_failed=True)
    t = tracker(max_calls=1)
    t.calls = 1
    assert effects.charge_call(t, "0") == BudgetExceeded("calls", 1)  # it runs again: refused
    effects.close()
    j.close()
    served = await open_effects("resume", j, {}, None)
    t = tracker(max_calls=1)
    t.calls = 1
    assert served.charge_call(t, "0") is None  # the failure is served: it ran
    assert t.calls == 2
    served.close()


async def test_a_served_value_s_tokens_are_charged_without_refusal() -> None:
    j = Journal()
    j.append([Header("r", 1, 0.0), Record("0", "k", "f", True, encode(Reply("a", Usage(2, 2))))])
    effects = await open_effects("replay", j, {}, None)
    t = tracker(max_tokens=3)
    assert effects.charge_served(t, "0", Reply("a", Usage(2, 2))) is None
    assert t.tokens == 4 and t.exceeded is None
    effects.close()


async def test_a_served_value_is_refused_as_the_recorded_run_refused_it() -> None:
    j = Journal()
    refused = {"refused": {"resource": "tokens", "limit": 3}}
    j.append([Header("r", 1, 0.0), Record("0/budget", BUDGET_DECISION, "", True, refused)])
    effects = await open_effects("replay", j, {}, None)
    t = tracker(max_tokens=3)
    assert effects.charge_served(t, "0", Reply("a", Usage(2, 2))) == BudgetExceeded("tokens", 3)
    assert t.tokens == 0
    effects.close()


@pytest.mark.parametrize("limit", [None, 2])
async def test_a_budget_over_a_block_refuses_the_same_effects_on_replay_and_resume(
    limit: int | None,
) -> None:
    ran: list[int] = []

    async def work(req: int) -> int:
        ran.append(req)
        for _ in range(req % 3):
            await anyio.sleep(0)
        return req

    prog = within_budget(
        gather([effect("w", i, handler=work) for i in range(6)], limit=limit), Budget(max_calls=3)
    )
    j = Journal()
    live = await run(prog, None, journal=j)
    assert live == Err(BudgetExceeded("calls", 3), None)
    assert len(ran) <= 3
    refusals = [r for r in records(j) if r.pos.endswith("/budget")]
    assert refusals and all(r.kind == BUDGET_DECISION for r in refusals)
    assert await run(prog, None, journal=j, mode="replay") == live
    ran.clear()
    assert await run(prog, None, journal=j, mode="resume") == live
    assert ran == []


# ------------------------------------------------------------- more on opening and serving


@frozen
class Renamed:
    title: str


async def test_a_live_run_refuses_a_journal_that_holds_a_run() -> None:
    j = Journal()
    assert await run(effect("k", 1, handler=str), None, journal=j) == Ok("1", None)
    with pytest.raises(JournalInUse, match="already holds a run"):
        await run(effect("k", 1, handler=str), None, journal=j)
    j.acquire()  # the refused run released the journal


async def test_a_value_that_does_not_fit_the_declared_type_names_the_file_and_line(
    tmp_path: Any,
) -> None:
    from mce.journal import JournalCorrupt

    path = tmp_path / "run.jsonl"
    recorded = effect("k", 1, handler=lambda r: Renamed("x"), into=Renamed)
    assert await run(recorded, None, journal=path) == Ok(Renamed("x"), None)
    with pytest.raises(JournalCorrupt) as caught:
        await run(effect("k", 1, into=Reply), None, journal=path, mode="replay")
    assert (caught.value.where, caught.value.line) == (str(path), 2)
    assert caught.value.reason.startswith("position 0: value: Reply has no field 'title'")


async def test_a_replay_of_a_headerless_journal_writes_nothing() -> None:
    j = Journal()
    j.append([Record("0/0/0", "k", effect("k", 1).fp, True, 1)])
    j.append([Record("0/1/0", "k", effect("k", 2).fp, True, 2)])

    async def later() -> int:
        await anyio.sleep(0)
        return 3

    # A branch that awaits makes the block wait for its branches, then for the journal.
    prog = par(effect("k", 1), effect("k", 2).then(lambda _: lift(later)))
    out = await run(prog, None, journal=j, mode="replay")
    assert out == Ok((1, 3), None)
    assert j.read()[0] is None


async def test_a_question_is_answered_by_its_position() -> None:
    j = Journal()
    prog = par(pure(0), ask("how many?", into=int))
    first = await run(prog, None, journal=j)
    assert isinstance(first, Waiting)
    assert [q.position for q in first.questions] == ["0/1/0"]
    out = await run(prog, None, journal=j, mode="resume", answers={"0/1/0": 4})
    assert out == Ok((0, 4), None)
    assert [(r.pos, r.kind, r.value) for r in records(j)] == [("0/1/0", "mce.ask", 4)]


class BreaksAfterOpening(Journal):
    """A journal whose name cannot be read once it is open: setting up the effects fails."""

    opened = False
    closed = 0

    def begin(self, mode: Any) -> Any:
        loaded = super().begin(mode)
        self.opened = True
        return loaded

    @property
    def name(self) -> str:
        if self.opened:
            raise RuntimeError("broken after opening")
        return "<memory>"

    def close(self) -> None:
        self.closed += 1
        super().close()


async def test_a_journal_is_released_when_the_effects_fail_after_it_was_opened() -> None:
    j = BreaksAfterOpening()
    with pytest.raises(RuntimeError, match="broken after opening"):
        await open_effects("live", j, {}, None)
    assert j.closed == 1
    j.opened = False
    j.acquire()  # the lock was released


async def test_the_writer_that_opened_a_journal_file_lets_go_when_the_effects_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class OpenedInItsThread(BreaksAfterOpening):
        needs_thread = True  # opened in its writer's thread

    writers: list[Any] = []

    class Noted(JournalWriter):
        __slots__ = ("closed",)

        def __init__(self, journal: Journal) -> None:
            super().__init__(journal)
            self.closed = 0
            writers.append(self)

        def close(self) -> None:
            self.closed += 1
            super().close()

    monkeypatch.setattr(effects_port, "JournalWriter", Noted)
    with pytest.raises(RuntimeError, match="broken after opening"):
        await open_effects("live", OpenedInItsThread(), {}, None)
    assert [w.closed for w in writers] == [1]  # its thread is free for the next run


async def test_effects_serve_a_recorded_failure_unless_told_to_retry() -> None:
    failed = Record("0", "k", "f", False, "boom")
    header = Header("r", 1, 0.0)
    served = Effects("resume", JournalWriter(Journal()), header, (failed,), {}, None, None)
    assert served.lookup("0", "k", None, "f") is failed
    retried = Effects("resume", JournalWriter(Journal()), header, (failed,), {}, None, None, True)
    assert retried.lookup("0", "k", None, "f") is None


async def test_perform_returns_once_its_record_is_durable_unless_deferred(tmp_path: Any) -> None:
    path = tmp_path / "run.jsonl"
    effects = await open_effects("live", FileJournal(path), {}, 1)
    try:
        assert await effects.perform(effect("k", 1, handler=str), "0/0/0", "0/0") == (True, "1")
        assert [r.pos for r in FileJournal(path).read()[1]] == ["0/0/0"]
        deferred = await effects.perform(effect("k", 2, handler=str), "0/1/0", "0/1", defer=True)
        assert deferred == (True, "2")
        await effects.durable()  # what a deferring caller waits for before using the value
        assert [r.pos for r in FileJournal(path).read()[1]] == ["0/0/0", "0/1/0"]
    finally:
        effects.close()


async def test_an_unanswered_question_uncounts_only_itself() -> None:
    prog = effect("k", 1, handler=str).then(
        lambda _: effect("k", 2, handler=str).then(lambda _: ask("ok?", into=bool))
    )
    out = await run(prog, None, journal=Journal())
    assert isinstance(out, Waiting)
    assert out.report is not None and out.report.live_calls == 2


async def test_a_request_changed_after_the_effect_was_built_cannot_be_journaled() -> None:
    request: list[Any] = [1]
    prog = effect("k", request, handler=len)
    request.append(object())
    with pytest.raises(TypeError) as caught:
        await run(prog, None, journal=Journal())
    assert str(caught.value).startswith("request[1]: cannot journal a object")


@pytest.mark.parametrize("served", [False, True])
async def test_a_malformed_recorded_refusal_is_a_divergence_at_its_effect(served: bool) -> None:
    j = Journal()
    refused = {"refused": {"resource": "money", "limit": 1}}
    j.append([Header("r", 1, 0.0), Record("2/1/budget", BUDGET_DECISION, "", True, refused)])
    effects = await open_effects("replay", j, {}, None)
    with pytest.raises(ReplayDivergence) as caught:
        if served:
            effects.charge_served(tracker(max_tokens=5), "2/1", Reply("a", Usage(1, 1)))
        else:
            effects.charge_call(tracker(max_calls=5), "2/1")
    assert (caught.value.position, caught.value.kind) == ("2/1", BUDGET_DECISION)
    assert caught.value.reason == (
        "the journal's budget decision is malformed: {'resource': 'money', 'limit': 1}"
    )
    effects.close()


def _recorded_subrun(calls: int, tokens: int) -> dict[str, Any]:
    """A sub-agent's run as the journal holds it: the calls it made, its usage."""
    usage = {"$attrs": "u:Usage", "fields": {"prompt_tokens": tokens, "completion_tokens": 0}}
    return {"$attrs": "r:Run", "fields": {"calls": calls, "exhausted": None, "usage": usage}}


def _precharged(retry: bool) -> Effects:
    """A resumed run's effects over records under the scope at 1/2/ and around it."""
    under = [
        Record("1/2/0", "k", "f", True, encode(Reply("a", Usage(2, 3)))),  # a call, 5 tokens
        Record("1/2/1", PAR_DECISION, "", True, 0),  # a decision, not a call
        Record("1/2/3", "k", "f", True, 7),  # a call
        Record("1/2/4", "k", "f", False, "boom"),  # failures: calls, unless run again
        Record("1/2/5", "k", "f", False, "boom"),
        Record("1/2/6/0", "k", "f", True, _recorded_subrun(3, 4)),  # 1 + 3 calls, 4 tokens
    ]
    big = encode(Reply("a", Usage(10, 10)))
    around = [Record(p, "k", "f", True, big) for p in ("0/9", "1/1/0", "1/2", "1/20/0", "1/3/0")]
    entries = tuple(sorted([*under, *around], key=lambda r: r.pos[::-1]))  # not in order
    header = Header("r", 1, 0.0)
    return Effects("resume", JournalWriter(Journal()), header, entries, {}, None, None, retry)


@pytest.mark.parametrize("retry", [False, True])
def test_a_scope_is_precharged_with_exactly_what_was_recorded_under_it(retry: bool) -> None:
    effects = _precharged(retry)
    t = tracker()
    assert effects.precharge(t, "1/2/") is None
    assert (t.calls, t.tokens, t.covers) == ((6 if retry else 8), 9, "1/2/")
    again = tracker()  # a second scope at the same place counts the same
    assert effects.precharge(again, "1/2/") is None
    assert (again.calls, again.tokens) == (t.calls, t.tokens)
    assert effects.precharge(tracker(max_calls=5), "1/2/") == BudgetExceeded("calls", 5)
    assert effects.precharge(tracker(max_tokens=8), "1/2/") == BudgetExceeded("tokens", 8)


def test_a_served_value_corrects_what_its_scope_was_precharged() -> None:
    effects = _precharged(retry=False)
    t = tracker()
    effects.precharge(t, "1/2/")
    # recorded with 5 tokens (precharged), served with 8: the scope counts 8
    assert effects.charge_served(t, "1/2/0", Reply("a", Usage(4, 4))) is None
    assert (t.calls, t.tokens) == (8, 12)


def test_the_collector_stays_paused_until_the_last_load_ends() -> None:
    first_in, first_go = threading.Event(), threading.Event()

    def first(mode: Any) -> str:
        first_in.set()
        assert first_go.wait(30)
        return "first"

    other = threading.Thread(target=effects_port._without_gc_pauses, args=(first, "live"))
    seen: list[bool] = []

    def second(mode: Any) -> str:
        first_go.set()  # the first load ends while this one is under way
        other.join(30)
        seen.append(gc.isenabled())
        return "second"

    assert gc.isenabled()
    other.start()
    assert first_in.wait(30)
    assert effects_port._without_gc_pauses(second, "live") == "second"
    assert seen == [False]  # still paused: this load had not ended
    assert gc.isenabled()
