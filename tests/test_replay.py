"""Modes: replay makes no live call and never writes; divergence; resume; decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from mce import (
    Err,
    FileJournal,
    Journal,
    Ok,
    ReplayDivergence,
    effect,
    fail,
    gather,
    now,
    par,
    pure,
    random,
    run,
    sleep,
    traverse,
    uuid,
)

pytestmark = pytest.mark.anyio


class Calls:
    def __init__(self) -> None:
        self.log: list[Any] = []

    async def __call__(self, req: Any) -> Any:
        self.log.append(req)
        await anyio.sleep(0)
        return {"echo": req}


def workflow() -> Any:
    return effect("fetch", {"url": "a"}).then(
        lambda page: traverse(
            range(4), lambda i: effect("summarize", {"i": i, "page": page}), limit=2
        ).then(lambda parts: par(now(), random(), uuid()).map(lambda extras: (parts, extras)))
    )


async def test_replay_serves_everything_and_calls_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    calls = Calls()
    handlers = {"fetch": calls, "summarize": calls}
    live = await run(workflow(), None, handlers=handlers, journal=path)
    assert live.ok and len(calls.log) == 5
    before = path.read_bytes()
    calls.log.clear()
    replayed = await run(workflow(), None, handlers=handlers, journal=path, mode="replay")
    assert replayed == live
    assert calls.log == []  # zero live calls
    assert path.read_bytes() == before  # replay never writes
    no_handlers = await run(workflow(), None, journal=path, mode="replay")
    assert no_handlers == live


async def test_changed_request_is_a_divergence_naming_position_and_both_requests() -> None:
    j = Journal()
    calls = Calls()
    await run(workflow(), None, handlers={"fetch": calls, "summarize": calls}, journal=j)
    changed = effect("fetch", {"url": "b"}).then(lambda _: pure(1))
    with pytest.raises(ReplayDivergence) as info:
        await run(changed, None, journal=j, mode="replay")
    err = info.value
    assert err.position == "0" and err.kind == "fetch"
    assert "{'url': 'a'}" in str(err) and "{'url': 'b'}" in str(err)


async def test_missing_effect_and_wrong_kind_are_divergences() -> None:
    j = Journal()
    await run(effect("a", 1, handler=lambda r: r), None, journal=j)
    longer = effect("a", 1).then(lambda _: effect("b", 2))
    with pytest.raises(ReplayDivergence, match=r"position 1 .*no entry"):
        await run(longer, None, journal=j, mode="replay")
    with pytest.raises(ReplayDivergence, match="recorded a 'a' effect here"):
        await run(effect("z", 1), None, journal=j, mode="replay")


async def test_fail_fast_error_is_the_recorded_one_on_replay() -> None:
    async def wait_then_fail(req: Any) -> None:
        await anyio.sleep(req["delay"])
        raise RuntimeError(req["name"])

    def branch(name: str, delay: float) -> Any:
        return effect("job", {"name": name, "delay": delay}, handler=wait_then_fail)

    # Branch 1 fails first in time; branch 0 would fail later. On replay every
    # effect is instant, so without the journaled decision branch 0 would win.
    prog = gather([branch("slow", 0.05), branch("fast", 0.0)])
    j = Journal()
    live = await run(prog, None, journal=j)
    assert isinstance(live, Err) and live.error.message == "fast"
    replayed = await run(prog, None, journal=j, mode="replay")
    assert replayed == live


async def test_inline_failure_after_awaiting_branches_replays_the_same() -> None:
    slow = effect("job", 1, handler=lambda r: anyio.sleep(0.01)).then(lambda _: fail("slow"))
    prog = gather([slow, fail("inline")])
    j = Journal()
    live = await run(prog, None, journal=j)
    assert live == Err("inline")
    assert await run(prog, None, journal=j, mode="replay") == live


async def test_timeouts_replay_without_waiting() -> None:
    j = Journal()
    prog = par(sleep(5).timeout(0.02).recover(lambda e: pure(str(e))), sleep(0).timeout(5))
    live = await run(prog, None, journal=j)
    assert live == Ok(("step timed out after 0.02 s", None), None)
    start = anyio.current_time()
    assert await run(prog, None, journal=j, mode="replay") == live
    assert anyio.current_time() - start < 1


async def test_timeout_without_a_record_diverges_on_replay() -> None:
    j = Journal()
    await run(pure(1), None, journal=j)
    with pytest.raises(ReplayDivergence, match="no record of this timeout"):
        await run(sleep(0).timeout(1), None, journal=j, mode="replay")


async def test_resume_serves_what_was_recorded_and_runs_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    calls = Calls()
    handlers = {"fetch": calls, "summarize": calls}
    full = await run(workflow(), None, handlers=handlers, journal=path, seed=5)
    # Simulate a crash after three effects: keep the header and three entries,
    # and a torn fourth line.
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:4]) + b"\n" + lines[4][:20])
    calls.log.clear()
    with pytest.warns(Warning, match="torn last line"):
        resumed = await run(workflow(), None, handlers=handlers, journal=path, mode="resume")
    assert isinstance(resumed, Ok) and isinstance(full, Ok)
    parts, (_time, rand, uid) = resumed.value
    assert (parts, rand, uid) == (full.value[0], *full.value[1][1:])  # seeded by the journal
    assert len(calls.log) == 2  # only the effects that had not completed
    replayed = await run(workflow(), None, journal=path, mode="replay")  # no torn-line warning
    assert replayed == resumed
    entries = FileJournal(path).load()[1]
    assert len(entries) == len(lines) - 2  # one entry per effect (header and final newline aside)
    assert len({e["pos"] for e in entries}) == len(entries)


async def test_resume_of_a_finished_run_is_a_replay(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    calls = Calls()
    full = await run(workflow(), None, handlers={"fetch": calls, "summarize": calls}, journal=path)
    calls.log.clear()
    again = await run(
        workflow(), None, handlers={"fetch": calls, "summarize": calls}, journal=path, mode="resume"
    )
    assert again == full and calls.log == []


async def test_resume_without_a_journal_file_runs_live(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    out = await run(effect("k", 2, handler=lambda r: r * 2), None, journal=path, mode="resume")
    assert out == Ok(4, None)
    assert len(FileJournal(path).load()[1]) == 1


# ------------------------------------------------------------- completeness on replay


async def _recorded(prog: Any, **handlers: Any) -> Journal:
    j = Journal()
    out = await run(prog, None, journal=j, handlers=handlers)
    assert out.ok, out
    return j


def _echo(name: str, *then: Any) -> Any:
    return effect("echo", name, handler=lambda r: r)


@pytest.mark.parametrize(
    ("recorded", "replayed", "first_unused"),
    [
        # the last effect dropped
        (_echo("a").then(lambda _: _echo("b")), _echo("a"), "1"),
        # the last parallel branch dropped
        (gather([_echo("a"), _echo("b"), _echo("c")]), gather([_echo("a"), _echo("b")]), "0/2/0"),
        # the tail of a branch dropped
        (
            par(_echo("a").then(lambda _: _echo("b")), _echo("c")),
            par(_echo("a"), _echo("c")),
            "0/0/1",
        ),
        # stopping early on a condition
        (
            _echo("a").then(lambda v: _echo("b") if v == "a" else pure(v)),
            _echo("a").then(lambda v: pure(v) if v == "a" else _echo("b")),
            "1",
        ),
    ],
    ids=["last-effect", "last-branch", "branch-tail", "early-stop"],
)
async def test_recorded_effects_never_requested_are_a_divergence(
    recorded: Any, replayed: Any, first_unused: str
) -> None:
    j = await _recorded(recorded)
    with pytest.raises(ReplayDivergence, match="recorded, never requested") as caught:
        await run(replayed, None, journal=j, mode="replay")
    assert caught.value.position == first_unused
    assert await run(recorded, None, journal=j, mode="replay") == await run(recorded, None)


async def test_a_failed_block_s_unrun_branches_are_not_a_divergence() -> None:
    a_done = anyio.Event()

    async def a(req: Any) -> Any:  # async: it sets an event of the event loop
        a_done.set()
        return req

    async def b(req: Any) -> Any:
        await a_done.wait()  # a's record is written before b fails
        raise RuntimeError("b failed")

    async def forever(req: Any) -> Any:
        await anyio.Event().wait()  # cancelled when b fails

    prog = par(
        effect("a", 1, handler=a).then(lambda _: effect("never", 2, handler=forever)),
        effect("b", 3, handler=b),
    )
    j = Journal()
    live = await run(prog, None, journal=j)
    assert isinstance(live, Err) and live.error.message == "b failed"
    assert {r["kind"] for r in j.load()[1]} >= {"a", "b"}
    assert await run(prog, None, journal=j, mode="replay") == live  # a is recorded, not requested


async def test_a_timed_out_step_s_recorded_effects_are_not_a_divergence() -> None:
    async def forever(req: Any) -> Any:
        await anyio.Event().wait()

    timed = effect("a", 1, handler=lambda r: r).then(lambda _: effect("slow", 2, handler=forever))
    prog = timed.timeout(0.05).recover(lambda e: pure("timed out"))
    j = Journal()
    live = await run(prog, None, journal=j)
    assert live == Ok("timed out", None)
    assert await run(prog, None, journal=j, mode="replay") == live


async def test_an_unused_decision_is_a_divergence() -> None:
    async def fails(req: Any) -> Any:
        raise RuntimeError("x")

    recorded = par(effect("x", 1, handler=fails), pure(2)).recover(lambda e: pure("r"))
    j = await _recorded(recorded)
    with pytest.raises(ReplayDivergence, match="recorded, never requested"):
        await run(pure("r"), None, journal=j, mode="replay")


# ------------------------------------------------------------- retry_failed


async def test_resume_can_retry_what_failed(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    attempts: list[int] = []

    def pay(req: Any) -> Any:
        attempts.append(req)
        if attempts.count(req) == 1:
            raise ConnectionError("gateway down")
        return "paid"

    def ship(req: Any) -> Any:
        attempts.append(req)
        return "shipped"

    prog = effect("ship", 0, handler=ship).then(
        lambda _: effect("pay", 1, handler=pay).then(lambda p: effect("ship", 2, handler=ship))
    )
    first = await run(prog, None, journal=path)
    assert isinstance(first, Err) and first.error.message == "gateway down"
    again = await run(prog, None, journal=path, mode="resume")
    assert again == Err(first.error, None) and attempts == [0, 1]  # the failure is served
    retried = await run(prog, None, journal=path, mode="resume", retry_failed=True)
    assert retried == Ok("shipped", None)
    assert attempts == [0, 1, 1, 2]  # only what failed (and what follows) ran again
    assert await run(prog, None, journal=path, mode="replay") == retried
    assert await run(prog, None, journal=path, mode="resume", retry_failed=True) == retried


@pytest.mark.parametrize("fails_again", [False, True])
async def test_resume_can_retry_a_failed_branch_of_a_block(
    tmp_path: Path, fails_again: bool
) -> None:
    """The block's recorded decision (which branch failed first) is decided again."""
    path = tmp_path / "run.jsonl"
    attempts: list[int] = []

    async def call(req: Any) -> Any:
        attempts.append(req)
        if req == 1 and (fails_again or attempts.count(1) == 1):
            raise ConnectionError(f"gateway down ({attempts.count(1)})")
        await anyio.sleep(0)  # the block goes async, so its failure is journaled
        return f"done {req}"

    prog = gather([effect("call", i, handler=call) for i in range(3)])
    first = await run(prog, None, journal=path)
    assert isinstance(first, Err) and first.error.message == "gateway down (1)"
    served = await run(prog, None, journal=path, mode="resume")
    assert served == first
    before = list(attempts)
    retried = await run(prog, None, journal=path, mode="resume", retry_failed=True)
    assert attempts[len(before) :].count(1) == 1  # the failed call runs again, once
    if fails_again:
        assert isinstance(retried, Err) and retried.error.message == "gateway down (2)"
    else:
        assert retried == Ok(("done 0", "done 1", "done 2"), None)
    assert await run(prog, None, journal=path, mode="replay") == retried
    assert await run(prog, None, journal=path, mode="resume") == retried


async def test_resume_can_retry_a_timed_out_step(tmp_path: Path) -> None:
    """A timeout recorded as fired is decided again: the step runs under a new timer."""
    path = tmp_path / "run.jsonl"
    attempts: list[int] = []

    async def call(req: Any) -> Any:
        attempts.append(req)
        if req == 1 and attempts.count(1) == 1:
            await anyio.sleep_forever()  # only the timer ends this one
        return f"done {req}"

    prog = effect("call", 0, handler=call).then(
        lambda _: effect("call", 1, handler=call).timeout(0.5)
    )
    first = await run(prog, None, journal=path)
    assert isinstance(first, Err) and type(first.error).__name__ == "StepTimeout"
    assert await run(prog, None, journal=path, mode="resume") == first  # served as it was
    retried = await run(prog, None, journal=path, mode="resume", retry_failed=True)
    assert retried == Ok("done 1", None)
    assert attempts == [0, 1, 1]  # what completed is served; the timed-out call ran again
    assert await run(prog, None, journal=path, mode="replay") == retried
    assert await run(prog, None, journal=path, mode="resume") == retried


async def test_retry_failed_needs_resume() -> None:
    with pytest.raises(ValueError, match="retry_failed"):
        await run(pure(1), None, journal=Journal(), mode="replay", retry_failed=True)


# ------------------------------------------------------------- seed


@pytest.mark.parametrize("seed", [1.5, True, "abc", 2.0])
async def test_seed_must_be_an_int(tmp_path: Path, seed: Any) -> None:
    path = tmp_path / "run.jsonl"
    with pytest.raises(TypeError, match=r"seed=\.\.\.\) must be an int"):
        await run(random(), None, journal=path, seed=seed)
    assert not path.exists()


# ------------------------------------------------------------- budgets under concurrency


async def test_a_budget_around_a_parallel_block_replays() -> None:
    from mce import Budget, within_budget

    async def work(req: Any) -> Any:
        for _ in range(req % 3):
            await anyio.sleep(0)
        return req

    for limit in (None, 2):
        for n in range(4, 8):
            inner = gather(
                [
                    effect("w", i, handler=work).then(lambda v: effect("w", v + 10, handler=work))
                    for i in range(n)
                ],
                limit=limit,
            )
            prog = within_budget(inner, Budget(max_calls=3))
            j = Journal()
            live = await run(prog, None, journal=j)
            assert await run(prog, None, journal=j, mode="replay") == live, (limit, n)
