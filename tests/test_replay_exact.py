"""The replay lookup's exact contract (`mce._runtime.replay`): what is served,
what each divergence names (position, kind, reason, both requests), which
records count as used, what a replay skips by design, and how recorded
budget decisions are read back.

Mutation testing of the module showed these details were held by nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from attrs import frozen

from mce import (
    Budget,
    BudgetExceeded,
    EffectError,
    Err,
    Journal,
    Ok,
    effect,
    gather,
    par,
    pure,
    run,
    within_budget,
)
from mce._runtime.replay import (
    BUDGET_DECISION,
    DECISIONS,
    MODES,
    PAR_DECISION,
    REFUSED,
    TIMEOUT_DECISION,
    ReplayLookup,
    error_type,
    exceeded,
)
from mce.codec import encode
from mce.journal import JournalCorrupt, Record, ReplayDivergence
from mce.questions import ASK


@frozen
class Forecast:
    city: str
    celsius: float


@frozen
class Refused:
    reason: str


def rec(
    pos: str, kind: str = "k", fp: str = "f", ok: bool = True, value: Any = 1, **kw: Any
) -> Record:
    return Record(pos, kind, fp, ok, value, **kw)


# ------------------------------------------------------------- constants


def test_the_decision_kinds_and_modes() -> None:
    assert MODES == ("live", "replay", "resume")
    assert PAR_DECISION == "mce.par"
    assert TIMEOUT_DECISION == "mce.timeout"
    assert BUDGET_DECISION == "mce.budget"
    assert {"mce.par", "mce.timeout", "mce.budget"} == DECISIONS
    assert REFUSED == "budget"


# ------------------------------------------------------------- exceeded()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"resource": "calls", "limit": 3}, BudgetExceeded("calls", 3)),
        ({"resource": "tokens", "limit": 100}, BudgetExceeded("tokens", 100)),
        ({"resource": "seconds", "limit": 0.5}, BudgetExceeded("seconds", 0.5)),
        ({"resource": "seconds", "limit": 2, "extra": "ignored"}, BudgetExceeded("seconds", 2)),
    ],
)
def test_exceeded_reads_a_recorded_budget_decision(data: Any, expected: BudgetExceeded) -> None:
    got = exceeded(data, "3/1")
    assert got == expected
    assert type(got.limit) is type(expected.limit)


@pytest.mark.parametrize(
    "data",
    [
        None,
        ["calls", 3],
        {"resource": "money", "limit": 3},
        {"limit": 3},
        {"resource": "calls"},
        {"resource": "calls", "limit": "3"},
        {"resource": "calls", "limit": True},
        {"resource": "calls", "limit": None},
    ],
)
def test_a_malformed_budget_decision_is_a_divergence_naming_position_and_data(data: Any) -> None:
    with pytest.raises(ReplayDivergence) as caught:
        exceeded(data, "2/0/4")
    err = caught.value
    assert err.position == "2/0/4"
    assert err.kind == "mce.budget"
    assert err.reason == f"the journal's budget decision is malformed: {data!r}"
    assert err.recorded is None and err.requested is None


# ------------------------------------------------------------- error_type()


def test_error_type_is_effect_error_unless_the_effect_declares_one() -> None:
    assert error_type(effect("k", 1)) == EffectError | Any
    declared = error_type(effect("k", 1, error=Refused))
    assert declared == EffectError | Refused | Any


# ------------------------------------------------------------- lookup()


def test_a_fresh_lookup_has_served_nothing_and_everything_unused() -> None:
    lookup = ReplayLookup("replay", [rec("0"), rec("1")])
    assert lookup.mode == "replay"
    assert lookup.retry_failed is False
    assert lookup.served == 0
    assert list(lookup.recorded) == ["0", "1"]
    assert lookup.unused() == rec("0")


def test_lookup_serves_the_recorded_entry_and_counts_it() -> None:
    entries = [rec("0", value="a"), rec("1", kind="j", fp="g", value="b")]
    lookup = ReplayLookup("replay", entries)
    assert lookup.lookup("0", "k", "req", "f") is entries[0]
    assert lookup.served == 1
    assert lookup.unused() is entries[1]
    assert lookup.lookup("1", "j", "req", "g") is entries[1]
    assert lookup.served == 2
    assert lookup.unused() is None
    lookup.check_complete()  # everything used: no divergence


def test_a_later_record_at_a_position_replaces_an_earlier_one() -> None:
    first, retried = rec("0", ok=False, value="boom"), rec("0", value="fine")
    lookup = ReplayLookup("resume", [first, retried])
    assert lookup.recorded == {"0": retried}
    assert lookup.lookup("0", "k", None, "f") is retried


def test_lookup_without_an_entry_in_replay_is_a_divergence_with_the_request() -> None:
    lookup = ReplayLookup("replay", [rec("0")])
    with pytest.raises(ReplayDivergence) as caught:
        lookup.lookup("1/2", "search", {"q": "x"}, "f")
    err = caught.value
    assert (err.position, err.kind) == ("1/2", "search")
    assert err.reason == "the journal has no entry here"
    assert err.recorded is None and err.requested == {"q": "x"}
    assert str(err) == (
        "replay diverged at position 1/2 (effect 'search'): the journal has no entry here\n"
        "  recorded:  None\n  requested: {'q': 'x'}"
    )
    assert lookup.served == 0


def test_lookup_without_an_entry_in_resume_runs_live() -> None:
    lookup = ReplayLookup("resume", [rec("0")])
    assert lookup.lookup("1", "k", "req", "f") is None
    assert lookup.served == 0


def test_an_unanswered_question_in_replay_is_no_divergence() -> None:
    lookup = ReplayLookup("replay", [])
    assert lookup.lookup("0", ASK, {"text": "ok?"}, "f") is None
    assert lookup.served == 0


def test_lookup_of_a_different_kind_names_both_kinds_and_requests() -> None:
    lookup = ReplayLookup("replay", [rec("3", kind="fetch", req={"url": "a"})])
    with pytest.raises(ReplayDivergence) as caught:
        lookup.lookup("3", "search", {"q": "a"}, "f")
    err = caught.value
    assert (err.position, err.kind) == ("3", "search")
    assert err.reason == "the journal recorded a 'fetch' effect here"
    assert (err.recorded, err.requested) == ({"url": "a"}, {"q": "a"})
    assert lookup.served == 0
    assert lookup.unused() is not None  # a divergent entry was not used


def test_lookup_of_a_different_request_names_both_requests() -> None:
    lookup = ReplayLookup("replay", [rec("0", fp="aaa", req="old")])
    with pytest.raises(ReplayDivergence) as caught:
        lookup.lookup("0", "k", "new", "bbb")
    err = caught.value
    assert (err.position, err.kind) == ("0", "k")
    assert err.reason == "the request differs from the recorded one"
    assert (err.recorded, err.requested) == ("old", "new")
    assert lookup.served == 0
    assert lookup.unused() is not None


def test_retry_failed_runs_a_recorded_failure_again_and_serves_a_success() -> None:
    failed, succeeded = rec("0", ok=False, value="boom"), rec("1", value="fine")
    lookup = ReplayLookup("resume", [failed, succeeded], retry_failed=True)
    assert lookup.retry_failed is True
    assert lookup.lookup("0", "k", None, "f") is None
    assert lookup.lookup("1", "k", None, "f") is succeeded
    assert lookup.served == 1


def test_without_retry_failed_a_recorded_failure_is_served() -> None:
    failed = rec("0", ok=False, value="boom")
    for mode in ("replay", "resume"):
        lookup = ReplayLookup(mode, [failed])  # type: ignore[arg-type]
        assert lookup.lookup("0", "k", None, "f") is failed
        assert lookup.served == 1


def test_retry_failed_in_replay_mode_is_a_divergence_at_a_failure() -> None:
    lookup = ReplayLookup("replay", [rec("0", ok=False, value="boom")], retry_failed=True)
    with pytest.raises(ReplayDivergence, match="the journal has no entry here"):
        lookup.lookup("0", "k", None, "f")


# ------------------------------------------------------------- value()


def test_value_decodes_by_the_declared_type() -> None:
    lookup = ReplayLookup("replay", [])
    entry = rec("0", value=encode(Forecast("Porto", 21.0)))
    assert lookup.value(entry, Forecast) == Forecast("Porto", 21.0)
    assert lookup.value(rec("0", value={"$tuple": [1, 2]}), Any) == (1, 2)


def test_an_undeclared_class_is_a_divergence_naming_position_and_kind() -> None:
    lookup = ReplayLookup("replay", [])
    entry = rec("4/1", kind="weather", value=encode(Forecast("Porto", 21.0)))
    with pytest.raises(ReplayDivergence) as caught:
        lookup.value(entry, Any)
    err = caught.value
    assert (err.position, err.kind) == ("4/1", "weather")
    assert err.reason.startswith(
        "value: the journal holds an instance of the attrs class 'Forecast'"
    )
    assert "declare the value type" in err.reason
    assert err.__suppress_context__ and err.__cause__ is None


def test_a_malformed_value_is_journal_corrupt_naming_journal_line_and_position() -> None:
    lookup = ReplayLookup("replay", [], journal="run.jsonl")
    entry = rec("2/0", value={"$bytes": "!!"}, line=7)
    with pytest.raises(JournalCorrupt) as caught:
        lookup.value(entry, Any)
    err = caught.value
    assert (err.where, err.line) == ("run.jsonl", 7)
    assert err.reason.startswith("position 2/0: value: malformed $bytes value")
    assert err.__suppress_context__ and err.__cause__ is None


def test_a_malformed_value_in_memory_names_memory() -> None:
    with pytest.raises(JournalCorrupt) as caught:
        ReplayLookup("replay", []).value(rec("0", value={"$bytes": "!!"}), Any)
    assert caught.value.where == "<memory>" and caught.value.line == 0


# ------------------------------------------------------------- decision()


def test_decision_serves_the_recorded_data_and_uses_it() -> None:
    entry = rec("2", kind=PAR_DECISION, fp="", value={"branch": 1})
    lookup = ReplayLookup("replay", [entry])
    assert lookup.decision("2", PAR_DECISION) == {"branch": 1}
    assert lookup.unused() is None
    assert lookup.served == 0  # a decision is not a served effect


def test_decision_missing_is_none_and_uses_nothing() -> None:
    lookup = ReplayLookup("replay", [rec("0")])
    assert lookup.decision("1", TIMEOUT_DECISION) is None
    assert lookup.unused() == rec("0")


def test_decision_of_another_kind_is_a_divergence_naming_both() -> None:
    lookup = ReplayLookup("replay", [rec("2", kind="search")])
    with pytest.raises(ReplayDivergence) as caught:
        lookup.decision("2", TIMEOUT_DECISION)
    err = caught.value
    assert (err.position, err.kind) == ("2", "mce.timeout")
    assert err.reason == "the journal recorded a 'search' here, not 'mce.timeout'"
    assert err.recorded is None and err.requested is None
    assert lookup.unused() is not None


def test_decision_data_is_decoded_as_a_dict() -> None:
    lookup = ReplayLookup("replay", [rec("0", kind=BUDGET_DECISION, value={"x": {"$tuple": [1]}})])
    assert lookup.decision("0", BUDGET_DECISION) == {"x": (1,)}


@pytest.mark.parametrize("value", [[1, 2], "fired", 3, None])
def test_a_decision_that_is_not_an_object_is_corrupt_naming_its_position(value: Any) -> None:
    lookup = ReplayLookup("replay", [rec("4", kind=BUDGET_DECISION, fp="", value=value)])
    with pytest.raises(JournalCorrupt, match=r"position 4: value: the journal holds .* dict"):
        lookup.decision("4", BUDGET_DECISION)


# ------------------------------------------------------------- ran()


def test_ran_says_whether_a_served_effect_is_recorded_there() -> None:
    lookup = ReplayLookup("resume", [rec("0"), rec("1", ok=False)])
    assert lookup.ran("0") is True
    assert lookup.ran("1") is True  # a failure is served: it ran
    assert lookup.ran("2") is False
    retrying = ReplayLookup("resume", [rec("0"), rec("1", ok=False)], retry_failed=True)
    assert retrying.ran("0") is True
    assert retrying.ran("1") is False  # it runs again
    assert retrying.ran("2") is False
    assert lookup.unused() == rec("0")  # asking whether it ran does not use it


# ------------------------------------------------------------- refusal()


def test_refusal_reads_the_record_at_the_budget_subposition() -> None:
    data = {"refused": {"resource": "calls", "limit": 2}}
    lookup = ReplayLookup("replay", [rec("0/3/budget", kind=BUDGET_DECISION, fp="", value=data)])
    assert lookup.refusal("0/3") == {"resource": "calls", "limit": 2}
    assert lookup.unused() is None


def test_no_refusal_where_none_is_recorded() -> None:
    lookup = ReplayLookup("replay", [rec("0"), rec("1/budget", kind="other", value={"refused": 1})])
    assert lookup.refusal("0") is None
    assert lookup.refusal("1") is None  # not a budget decision
    assert lookup.unused() == rec("0")  # neither was used


def test_a_refusal_record_without_refused_data_is_none_but_used() -> None:
    lookup = ReplayLookup(
        "replay",
        [
            rec("0/budget", kind=BUDGET_DECISION, value={"other": 1}),
            rec("1/budget", kind=BUDGET_DECISION, value=[1, 2]),
        ],
    )
    assert lookup.refusal("0") is None
    assert lookup.refusal("1") is None
    assert lookup.unused() is None


# ------------------------------------------------------------- skip(), unused(), check_complete()


def test_unused_is_the_first_unused_entry_in_journal_order() -> None:
    entries = [rec("1"), rec("0"), rec("2")]
    lookup = ReplayLookup("replay", entries)
    lookup.lookup("1", "k", None, "f")
    assert lookup.unused() is entries[1]
    lookup.lookup("0", "k", None, "f")
    assert lookup.unused() is entries[2]


def test_skipped_prefixes_are_not_unused() -> None:
    entries = [rec("0/0/0"), rec("0/1/0"), rec("0/1/1"), rec("0/10/0"), rec("1")]
    lookup = ReplayLookup("replay", entries)
    lookup.skip("0/1/")
    assert lookup.unused() is entries[0]
    lookup.skip("0/0/")
    assert lookup.unused() is entries[3]  # "0/10/0" is not under "0/1/"
    lookup.skip("0/10/")
    assert lookup.unused() is entries[4]
    lookup.lookup("1", "k", None, "f")
    assert lookup.unused() is None
    lookup.check_complete()


def test_check_complete_names_an_unused_effect_with_its_request() -> None:
    lookup = ReplayLookup("replay", [rec("0"), rec("1", kind="fetch", req={"url": "a"})])
    lookup.lookup("0", "k", None, "f")
    with pytest.raises(ReplayDivergence) as caught:
        lookup.check_complete()
    err = caught.value
    assert (err.position, err.kind) == ("1", "fetch")
    assert err.reason == (
        "recorded, never requested: the journal holds this effect but the program did not "
        "ask for it (it dropped or skipped work the recorded run did)"
    )
    assert err.recorded == {"url": "a"} and err.requested is None


@pytest.mark.parametrize("kind", sorted(DECISIONS))
def test_check_complete_names_an_unused_decision_as_a_decision(kind: str) -> None:
    lookup = ReplayLookup("replay", [rec("5", kind=kind, value={})])
    with pytest.raises(ReplayDivergence) as caught:
        lookup.check_complete()
    assert (caught.value.position, caught.value.kind) == ("5", kind)
    assert caught.value.reason.startswith(
        "recorded, never requested: the journal holds this decision but"
    )


def test_check_complete_of_an_empty_journal_passes() -> None:
    lookup = ReplayLookup("replay", [])
    assert lookup.unused() is None
    lookup.check_complete()


# ------------------------------------------------------------- through run()


@pytest.mark.anyio
async def test_a_replay_reports_what_it_served() -> None:
    j = Journal()
    prog = par(effect("k", 1, handler=str), effect("k", 2, handler=str))
    live = await run(prog, None, journal=j)
    assert live.report is not None and (live.report.live_calls, live.report.replayed) == (2, 0)
    replayed = await run(prog, None, journal=j, mode="replay")
    report = replayed.report
    assert report is not None
    assert (report.live_calls, report.replayed, report.effects) == (0, 2, 2)


@pytest.mark.anyio
async def test_a_replayed_failure_is_the_recorded_error_of_the_declared_type() -> None:
    def raises(req: Any) -> Any:
        from mce import EffectFailed

        raise EffectFailed(Refused("no"))

    j = Journal()
    prog = effect("k", 1, handler=raises, error=Refused)
    live = await run(prog, None, journal=j)
    assert isinstance(live, Err)
    replayed = await run(prog, None, journal=j, mode="replay")
    assert live == Err(Refused("no"), None)
    assert replayed == live


@pytest.mark.anyio
async def test_a_budget_refusal_is_served_back_on_replay() -> None:
    work = within_budget(
        gather([effect("k", i, handler=str) for i in range(4)]), Budget(max_calls=2)
    )
    j = Journal()
    live = await run(work, None, journal=j)
    assert live == Err(BudgetExceeded("calls", 2), None)
    refusals = [r for r in j.read()[1] if r.pos.endswith(f"/{REFUSED}")]
    assert refusals and all(r.kind == BUDGET_DECISION for r in refusals)
    assert refusals[0].value == {"refused": {"resource": "calls", "limit": 2}}
    assert await run(work, None, journal=j, mode="replay") == live


@pytest.mark.anyio
async def test_a_resume_of_a_finished_run_runs_nothing_again() -> None:
    j = Journal()
    ran: list[int] = []

    def work(req: int) -> int:
        ran.append(req)
        return req

    prog = par(effect("w", 1, handler=work), effect("w", 2, handler=work)).then(
        lambda _: pure("done")
    )
    assert await run(prog, None, journal=j) == Ok("done", None)
    assert await run(prog, None, journal=j, mode="resume") == Ok("done", None)
    assert sorted(ran) == [1, 2]
