"""The main demo: the MCE paper's meta-agent, offline, with a timeline of its run.

A coordinating model splits a task among three sub-agents - a search agent
(a tool-calling loop), a data agent (a compiled plan of tool calls) and a
writer (a model call) - which run concurrently under one budget; a model
writes the answer. Everything runs on the embedded scripted model and
simulated tools. `mce demo` runs it, prints the answer and a summary, and
writes the journal and a timeline page.

>>> from mce import run_sync
>>> out = run_sync(workflow(), None, handlers=handlers())
>>> out.value.answer.startswith("Agents are programs")
True
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from mce.budget import Budget
from mce.llm import ScriptedModel, call, chat, json_reply, react, say, scripted_handler
from mce.meta import MetaResult, meta_agent
from mce.plan import compile
from mce.step import Step
from mce.tools import tool

TASK = "Brief me on agent frameworks, replay and costs."

ARTICLES = {
    "agent frameworks": "LangGraph runs graphs in supersteps; mce runs DAGs as soon as inputs are ready.",
    "replay": "Journaling every effect by position lets a run replay exactly and resume after a crash.",
}
PRICES = {"gpu-hour": 2.5, "cpu-hour": 0.1}


@tool
async def search(query: str) -> str:
    """Search articles."""
    await anyio.sleep(0.2)
    return ARTICLES.get(query, "no results")


@tool
async def price(item: str) -> float:
    """Price of an item, per unit."""
    await anyio.sleep(0.15)
    return PRICES[item]


@tool
def cost(unit_price: float, units: int) -> float:
    """Total cost."""
    return round(unit_price * units, 2)


def search_agent(instruction: str) -> Step[Any, Any, str]:
    return react([instruction], [search], max_turns=4).map(lambda r: r.answer)


def data_agent(instruction: str) -> Step[Any, Any, Any]:
    plan = {
        "tasks": [
            {"id": "gpu", "tool": "price", "args": {"item": "gpu-hour"}},
            {"id": "cpu", "tool": "price", "args": {"item": "cpu-hour"}},
            {"id": "gpu_cost", "tool": "cost", "args": {"unit_price": "$gpu", "units": 100}},
            {"id": "cpu_cost", "tool": "cost", "args": {"unit_price": "$cpu", "units": 1000}},
        ],
        "output": {"gpu_100h": "$gpu_cost", "cpu_1000h": "$cpu_cost"},
    }
    return compile(plan, [price, cost])


def writer_agent(instruction: str) -> Step[Any, Any, str]:
    return chat([{"role": "user", "content": f"Write: {instruction}"}]).map(
        lambda m: m.content or ""
    )


def coordinator_model() -> ScriptedModel:
    model = ScriptedModel()
    model.when(
        matches=lambda ms: "Split it into subtasks" in str(ms[-1].get("content")),
        reply=json_reply(
            {
                "subtasks": [
                    {"agent": "search", "instruction": "agent frameworks"},
                    {"agent": "search", "instruction": "replay"},
                    {"agent": "data", "instruction": "compute run costs"},
                    {"agent": "writer", "instruction": "an opening line"},
                ]
            }
        ),
    )
    model.when("Results of the sub-agents", lambda ms: say(synthesis(ms[-1]["content"])))
    model.when("Write:", say("Agents are programs; programs deserve laws."))
    model.when(
        matches=lambda ms: ms[-1].get("role") == "tool", reply=lambda ms: say(ms[-1]["content"])
    )
    model.when(matches=lambda ms: True, reply=lambda ms: call("search", query=ms[-1]["content"]))
    return model


def synthesis(prompt: str) -> str:
    """What a model might write from the sub-agents' results (one per line: `[agent] task: json`)."""
    found = [
        json.loads(line.split(": ", 1)[1]) for line in prompt.splitlines() if line.startswith("[")
    ]
    facts = [f for f in found if isinstance(f, str)]
    costs = next(f for f in found if isinstance(f, dict))
    return (
        f"{facts[-1]} {facts[0]} {facts[1]} Running it costs about ${costs['gpu_100h']:.0f} for "
        f"100 GPU-hours and ${costs['cpu_1000h']:.0f} for 1,000 CPU-hours."
    )


def workflow(max_calls: int = 20) -> Step[Any, Any, MetaResult]:
    """The demo's meta-agent, under a budget of `max_calls` effects."""
    agents = {"search": search_agent, "data": data_agent, "writer": writer_agent}
    return meta_agent(TASK, agents, budget=Budget(max_calls=max_calls))


def handlers() -> dict[str, Any]:
    """The scripted coordinator model standing in for a real one."""
    return {"llm.chat": scripted_handler(coordinator_model())}


__all__ = [
    "TASK",
    "handlers",
    "workflow",
]
