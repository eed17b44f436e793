"""Meta-agents: planner/joiner with replanning, and budgeted sub-agents."""

from __future__ import annotations

from typing import Any

import anyio

from mce import Budget, BudgetExceeded, Err, Journal, Ok, effect, run_sync
from mce.llm import ScriptedModel, chat, json_reply, react, say, scripted_handler
from mce.meta import Decomposition, MetaError, Subtask, compile_and_join, meta_agent
from mce.tools import tool


@tool
def lookup(city: str) -> int:
    "Population of a city."
    return {"Lisbon": 545_000, "Porto": 232_000}[city]


@tool
def total(values: list[int]) -> int:
    "Sum numbers."
    return sum(values)


GOOD_PLAN = {
    "tasks": [
        {"id": "l", "tool": "lookup", "args": {"city": "Lisbon"}},
        {"id": "p", "tool": "lookup", "args": {"city": "Porto"}},
        {"id": "s", "tool": "total", "args": {"values": ["$l", "$p"]}},
    ],
    "output": "$s",
}


def handlers(model: ScriptedModel) -> dict[str, Any]:
    return {"llm.chat": scripted_handler(model)}


def test_invalid_plan_is_sent_back_with_its_problems() -> None:
    bad = {"tasks": [{"id": "x", "tool": "lookupp", "args": {"city": "Lisbon"}}], "output": "$x"}
    model = ScriptedModel().queue(
        json_reply(bad),
        json_reply(GOOD_PLAN),
        json_reply({"action": "answer", "answer": "777000 people", "reason": ""}),
    )
    out = run_sync(
        compile_and_join("How many live in Lisbon and Porto?", [lookup, total]),
        None,
        handlers=handlers(model),
    )
    assert isinstance(out, Ok)
    assert (
        out.value.answer == "777000 people"
        and out.value.rounds == 2
        and out.value.results == 777_000
    )
    feedback = model.requests[1]["messages"][-1]["content"]
    assert "unknown tool 'lookupp'" in feedback
    assert model.requests[0]["response_format"]["json_schema"]["name"] == "plan"


def test_failed_task_and_joiner_request_trigger_replans() -> None:
    failing = {"tasks": [{"id": "x", "tool": "lookup", "args": {"city": "Faro"}}], "output": "$x"}
    model = ScriptedModel().queue(
        json_reply(failing),
        json_reply(GOOD_PLAN),
        json_reply({"action": "replan", "reason": "also need Braga"}),
        json_reply(GOOD_PLAN),
        json_reply({"action": "answer", "answer": "done"}),
    )
    out = run_sync(
        compile_and_join("?", [lookup, total], max_replans=3), None, handlers=handlers(model)
    )
    assert isinstance(out, Ok) and out.value.rounds == 3 and len(out.value.plans) == 3
    note = model.requests[1]["messages"][-1]["content"]
    assert note.startswith("Running the plan failed.") and "- task x failed: tool 'lookup'" in note
    assert "also need Braga" in model.requests[3]["messages"][-1]["content"]


def test_a_replan_sees_the_observations_and_keeps_finished_work() -> None:
    looked: list[str] = []

    @tool
    def population(city: str) -> int:
        "Population of a city."
        looked.append(city)
        return {"Lisbon": 545_000, "Porto": 232_000}[city]

    first = {
        "tasks": [
            {"id": "l", "tool": "population", "args": {"city": "Lisbon"}},
            {"id": "x", "tool": "population", "args": {"city": "Oporto"}},
            {"id": "s", "tool": "total", "args": {"values": ["$l", "$x"]}},
        ],
        "output": "$s",
    }
    second = {  # keeps l as it was, uses it by id, replaces the failed lookup
        "tasks": [
            {"id": "l", "tool": "population", "args": {"city": "Lisbon"}},
            {"id": "p", "tool": "population", "args": {"city": "Porto"}},
            {"id": "s2", "tool": "total", "args": {"values": ["$l", "$p"]}},
        ],
        "output": "$s2",
    }
    third = {  # refers to finished tasks without redefining them
        "tasks": [{"id": "t", "tool": "total", "args": {"values": ["$s2", "$p", "$l"]}}],
        "output": "$t",
    }
    model = ScriptedModel().queue(
        json_reply(first),
        json_reply(second),
        json_reply({"action": "replan", "reason": "add them up again"}),
        json_reply(third),
        json_reply({"action": "answer", "answer": "1.5M"}),
    )
    j = Journal()
    agent = compile_and_join("?", [population, total], max_replans=3)
    out = run_sync(agent, None, handlers=handlers(model), journal=j)
    assert isinstance(out, Ok) and out.value.rounds == 3 and out.value.results == 1_554_000
    # l and x run at once, in either order; nothing that finished ran again
    assert sorted(looked[:2]) == ["Lisbon", "Oporto"] and looked[2:] == ["Porto"]
    note = model.requests[1]["messages"][-1]["content"]
    assert '"city": "Oporto"' in note  # the previous plan
    assert "- task l: 545000" in note and "- task x failed: tool 'population'" in note
    assert "- task s did not run" in note
    looked.clear()
    assert run_sync(agent, None, journal=j, mode="replay") == out
    assert looked == []


def test_out_of_replans_is_an_error() -> None:
    model = ScriptedModel().when(matches=lambda ms: True, reply=say("not a plan"))
    out = run_sync(compile_and_join("?", [lookup], max_replans=1), None, handlers=handlers(model))
    assert isinstance(out, Err) and isinstance(out.error, MetaError)
    assert out.error.kind == "out_of_replans" and len(out.error.details) == 2


def test_compile_and_join_replays() -> None:
    model = ScriptedModel().queue(
        json_reply(GOOD_PLAN), json_reply({"action": "answer", "answer": "ok"})
    )
    j = Journal()
    agent = compile_and_join("?", [lookup, total])
    live = run_sync(agent, None, handlers=handlers(model), journal=j)
    assert run_sync(agent, None, journal=j, mode="replay") == live


def researcher(instruction: str) -> Any:
    async def slow_search(req: Any) -> str:
        await anyio.sleep(0.01)
        return f"notes on {req}"

    return effect("search", instruction, handler=slow_search)


def writer(instruction: str) -> Any:
    return chat([f"write: {instruction}"]).map(lambda m: m.content)


def test_meta_agent_runs_sub_agents_and_synthesizes() -> None:
    plan = Decomposition(
        [Subtask("research", "monads"), Subtask("research", "replay"), Subtask("writer", "intro")]
    )
    model = ScriptedModel().queue(
        json_reply(
            {"subtasks": [{"agent": s.agent, "instruction": s.instruction} for s in plan.subtasks]}
        )
    )
    model.when("write:", "An introduction.").when("Results of the sub-agents", "Final report.")
    agents = {"research": researcher, "writer": writer}
    out = run_sync(
        meta_agent("Explain mce", agents, budget=Budget(max_calls=10)),
        None,
        handlers=handlers(model),
    )
    assert isinstance(out, Ok)
    assert out.value.answer == "Final report."
    assert out.value.results == ("notes on monads", "notes on replay", "An introduction.")
    synthesis = model.requests[-1]["messages"][0]["content"]
    assert "[research] monads" in synthesis and "[writer] intro" in synthesis


def test_meta_agent_budget_is_shared_by_all_sub_agents() -> None:
    subtasks = [{"agent": "research", "instruction": f"topic {i}"} for i in range(6)]
    model = ScriptedModel().queue(json_reply({"subtasks": subtasks}))
    agents = {"research": researcher}
    out = run_sync(
        meta_agent("?", agents, budget=Budget(max_calls=4)), None, handlers=handlers(model)
    )
    assert out == Err(BudgetExceeded("calls", 4))


def test_meta_agent_unknown_agent() -> None:
    model = ScriptedModel().queue(
        json_reply({"subtasks": [{"agent": "hacker", "instruction": "x"}]})
    )
    out = run_sync(meta_agent("?", {"research": researcher}), None, handlers=handlers(model))
    assert isinstance(out, Err) and out.error.kind == "unknown_agent"


def test_sub_agents_can_be_agents() -> None:
    model = ScriptedModel().queue(
        json_reply({"subtasks": [{"agent": "pop", "instruction": "Lisbon"}]})
    )
    model.when("Results", "Lisbon has 545000 people.").when("Lisbon", "545000")
    agents = {"pop": lambda instruction: react([instruction], [lookup]).map(lambda r: r.answer)}
    out = run_sync(meta_agent("?", agents), None, handlers=handlers(model))
    assert isinstance(out, Ok) and out.value.answer == "Lisbon has 545000 people."


def test_hostile_planner_replies_are_fed_back_never_raised() -> None:
    deep = '{"tasks": [], "output": ' + "[" * 50_000 + "]" * 50_000 + "}"
    chain = {
        "tasks": [
            {"id": f"t{i}", "tool": "lookup", "args": {"city": f"$t{i - 1}"}}
            for i in range(1499, 0, -1)
        ],
        "output": "$t1499",
    }
    method = {
        "tasks": [{"id": "l", "tool": "lookup", "args": {"city": "Lisbon"}}],
        "output": "$l.real",
    }
    model = ScriptedModel().queue(
        say(deep),
        json_reply(chain),
        json_reply(method),
        json_reply(GOOD_PLAN),
        json_reply({"action": "answer", "answer": "ok", "reason": ""}),
    )
    out = run_sync(
        compile_and_join("t", [lookup, total], max_replans=3), None, handlers=handlers(model)
    )
    assert isinstance(out, Ok) and out.value.rounds == 4
    notes = [r["messages"][-1]["content"] for r in model.requests[1:4]]
    assert "nests too deeply" in notes[0]
    assert "the limit is 200" in notes[1]
    assert "has no field 'real'" in notes[2]


def test_a_replan_that_changes_a_task_reruns_what_was_built_on_it() -> None:
    # s was computed from l = Lisbon. The new plan redefines l (Porto) and
    # keeps s as written: s must be computed again from the new l, not
    # reused with the old l's value.
    first = {
        "tasks": [
            {"id": "l", "tool": "lookup", "args": {"city": "Lisbon"}},
            {"id": "s", "tool": "total", "args": {"values": ["$l"]}},
        ],
        "output": "$s",
    }
    second = {
        "tasks": [
            {"id": "l", "tool": "lookup", "args": {"city": "Porto"}},
            {"id": "s", "tool": "total", "args": {"values": ["$l"]}},
        ],
        "output": ["$l", "$s"],
    }
    model = ScriptedModel().queue(
        json_reply(first),
        json_reply({"action": "replan", "reason": "Porto, not Lisbon"}),
        json_reply(second),
        json_reply({"action": "answer", "answer": "232,000"}),
    )
    out = run_sync(compile_and_join("?", [lookup, total]), None, handlers=handlers(model))
    assert isinstance(out, Ok) and out.value.results == [232_000, 232_000]


def test_a_replan_does_not_rerun_earlier_work_it_no_longer_uses() -> None:
    # s was built on l; the new plan redefines l and does not use s: s is
    # neither reused with a stale value nor run again.
    summed: list[list[int]] = []

    @tool
    def add_up(values: list[int]) -> int:
        "Sum numbers."
        summed.append(values)
        return sum(values)

    first = {
        "tasks": [
            {"id": "l", "tool": "lookup", "args": {"city": "Lisbon"}},
            {"id": "s", "tool": "add_up", "args": {"values": ["$l"]}},
        ],
        "output": "$s",
    }
    second = {"tasks": [{"id": "l", "tool": "lookup", "args": {"city": "Porto"}}], "output": "$l"}
    model = ScriptedModel().queue(
        json_reply(first),
        json_reply({"action": "replan", "reason": "Porto, not Lisbon"}),
        json_reply(second),
        json_reply({"action": "answer", "answer": "232,000"}),
    )
    out = run_sync(compile_and_join("?", [lookup, add_up]), None, handlers=handlers(model))
    assert isinstance(out, Ok) and out.value.results == 232_000
    assert summed == [[545_000]]
