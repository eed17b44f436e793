"""Meta-agent (the MCE paper, section 5): decompose, run sub-agents in parallel, synthesize.

A coordinating model splits the task among three sub-agents - a search
agent (a tool-calling loop), a data agent (a compiled plan of tool calls)
and a writer (a model call) - which run concurrently inside the parent's
run, under one budget for the whole team. A final model call writes the
answer. Offline on a scripted model; the journal replays exactly.

Run it:  python examples/04_meta_agent.py [--journal PATH] [--max-calls N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import anyio

from mce import Budget, Step, run_sync
from mce.llm import ScriptedModel, call, chat, json_reply, react, say, scripted_handler
from mce.meta import meta_agent
from mce.plan import compile
from mce.tools import tool

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None)
    parser.add_argument("--max-calls", type=int, default=20)
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "meta.jsonl")
    journal.unlink(missing_ok=True)
    agents = {"search": search_agent, "data": data_agent, "writer": writer_agent}
    agent = meta_agent(
        "Brief me on agent frameworks, replay and costs.",
        agents,
        budget=Budget(max_calls=args.max_calls),
    )
    handlers = {"llm.chat": scripted_handler(coordinator_model())}
    out = run_sync(agent, None, handlers=handlers, journal=journal)
    if not out.ok:
        print(f"The meta-agent stopped: {out.error}")  # type: ignore[union-attr]
        raise SystemExit(2)
    result = out.value  # type: ignore[union-attr]
    for sub, value in zip(result.subtasks, result.results, strict=True):
        print(f"[{sub.agent}] {sub.instruction} -> {value}")
    print("\nAnswer:", result.answer)
    assert out.report is not None
    print("Run:", out.report.summary())
    replayed = run_sync(agent, None, journal=journal, mode="replay")
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if replayed == out else 'DIFFERENT'} ({replayed.report.live_calls} live calls)"
    )
    if replayed != out:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
