"""Sub-agents wrapped in `remote_agent`: charged to every enclosing budget, visible in journal and trace."""

from __future__ import annotations

from typing import Any

import pytest

from mce import Budget, BudgetExceeded, Err, Journal, Ok, gather, par, run, within_budget
from mce.events import TraceEvent
from mce.llm import ScriptedModel, chat, scripted_handler
from mce.meta import remote_agent

pytestmark = pytest.mark.anyio


def _agent(calls: list[Any], n: int = 10, name: str = "fan") -> Any:
    model = ScriptedModel().when("q", "one two three")
    handler = scripted_handler(model)

    def counted(request: Any) -> Any:
        calls.append(request)
        return handler(request)

    return remote_agent(
        name,
        lambda text: gather([chat([f"q {text} {i}"]) for i in range(n)]).map(len),
        handlers={"llm.chat": counted},
    )


async def test_a_sub_agents_calls_count_against_the_budget() -> None:
    calls: list[Any] = []
    out = await run(within_budget(_agent(calls)("x"), Budget(max_calls=4)), None)
    assert out == Err(BudgetExceeded("calls", 4))
    assert len(calls) <= 3  # the agent's effect is one call; its model calls the rest
    assert await run(within_budget(_agent([])("x"), Budget(max_calls=11)), None) == Ok(10, None)


async def test_a_sub_agents_tokens_count_against_the_budget() -> None:
    # Each reply costs 3 prompt + 3 completion tokens or so: ten of them are far more than 20.
    out = await run(within_budget(_agent([])("x"), Budget(max_tokens=20)), None)
    assert out == Err(BudgetExceeded("tokens", 20))
    assert (await run(within_budget(_agent([])("x"), Budget(max_tokens=10_000)), None)).ok


async def test_every_enclosing_budget_is_charged() -> None:
    agent = _agent([])
    inner = within_budget(agent("a"), Budget(max_calls=50))
    # Two sub-agents of 10 calls each (plus their own effects) under an outer budget of 15.
    out = await run(within_budget(par(inner, agent("b")), Budget(max_calls=15)), None)
    assert out == Err(BudgetExceeded("calls", 15))
    ok = await run(within_budget(par(inner, agent("b")), Budget(max_calls=22)), None)
    assert ok == Ok((10, 10), None)


async def test_inner_effects_are_in_the_parents_journal_and_trace() -> None:
    journal = Journal()
    events: list[TraceEvent] = []
    prog = within_budget(_agent([], n=3)("x"), Budget(max_calls=10))
    live = await run(prog, None, journal=journal, trace=events.append)
    assert live == Ok(3, None)
    _, entries = journal.load()
    (record,) = [e for e in entries if e.get("kind") == "agent.fan"]
    inner = str(record["ok"])
    assert inner.count("'kind': 'llm.chat'") == 3 and "q x 2" in inner
    chats = [e for e in events if e.name == "llm.chat"]
    assert len(chats) == 6  # a start and an end for each
    assert all(e.position.startswith(record["pos"] + "/") for e in chats)
    # The parent replays without running the sub-agent, and its budget decides the same.
    assert await run(prog, None, journal=journal, mode="replay") == live
    over = Journal()
    tight = within_budget(
        _agent([], n=3)("x").then(lambda _: _agent([], n=1)("y")), Budget(max_calls=5)
    )
    recorded = await run(tight, None, journal=over)
    assert recorded == Err(BudgetExceeded("calls", 5))
    assert await run(tight, None, journal=over, mode="replay") == recorded
