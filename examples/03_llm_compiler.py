"""LLMCompiler: a planner writes a DAG of tool calls, mce runs it as soon as inputs are ready.

The planner model answers with a JSON plan; mce validates it against the
tool registry (nothing runs before that), compiles it - independent tasks in
parallel, each task starting the moment its inputs exist - and a joiner
model answers from the results (or asks for a new plan). The plan is also
rendered as Python source. Offline on a scripted model; the journal replays
exactly.

Run it:  python examples/03_llm_compiler.py [--journal PATH] [--show-code]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from mce import Ok, run_sync
from mce.llm import Reply, ScriptedModel, json_reply, scripted_handler
from mce.meta import compile_and_join
from mce.plan import to_python
from mce.tools import Tool, tool

FACTS = {"Lisbon": (545_000, "sunny, 24 C"), "Porto": (232_000, "cloudy, 19 C")}


@tool
async def population(city: str) -> int:
    """Population of a city."""
    await anyio.sleep(0.2)
    return FACTS[city][0]


@tool
async def weather(city: str) -> str:
    """Current weather of a city."""
    await anyio.sleep(0.3)
    return FACTS[city][1]


@tool
async def compare(a: int, b: int) -> float:
    """Ratio a / b."""
    await anyio.sleep(0.05)
    return round(a / b, 2)


PLAN = {
    "tasks": [
        {"id": "pop_lisbon", "tool": "population", "args": {"city": "Lisbon"}},
        {"id": "pop_porto", "tool": "population", "args": {"city": "Porto"}},
        {"id": "sky_lisbon", "tool": "weather", "args": {"city": "Lisbon"}},
        {"id": "sky_porto", "tool": "weather", "args": {"city": "Porto"}},
        {"id": "ratio", "tool": "compare", "args": {"a": "$pop_lisbon", "b": "$pop_porto"}},
    ],
    "output": {"ratio": "$ratio", "lisbon": "$sky_lisbon", "porto": "$sky_porto"},
}


def planner_model() -> ScriptedModel:
    def join(messages: Sequence[dict[str, Any]]) -> Reply:
        results = json.loads(messages[-1]["content"].split("Results: ", 1)[1].split("\n", 1)[0])
        answer = (
            f"Lisbon has {results['ratio']}x the population of Porto; "
            f"Lisbon is {results['lisbon']}, Porto is {results['porto']}."
        )
        return json_reply({"action": "answer", "answer": answer, "reason": "all results in"})

    def planning(messages: Sequence[dict[str, Any]]) -> bool:
        return "You plan tool calls" in (messages[0].get("content") or "")

    return ScriptedModel().when(matches=planning, reply=json_reply(PLAN)).when("Results:", join)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None)
    parser.add_argument("--show-code", action="store_true", help="print the plan as Python")
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "compiler.jsonl")
    journal.unlink(missing_ok=True)
    tools: list[Tool] = [population, weather, compare]
    agent = compile_and_join("Compare Lisbon and Porto: people and weather.", tools)
    handlers = {"llm.chat": scripted_handler(planner_model())}

    start = time.perf_counter()
    out = run_sync(agent, None, handlers=handlers, journal=journal)
    wall = time.perf_counter() - start
    if not isinstance(out, Ok):
        raise SystemExit(f"failed: {out}")
    result = out.value
    print("Plan:", json.dumps(result.plans[-1]["tasks"], indent=None)[:160], "...")
    print("Answer:", result.answer)
    print(
        f"Rounds: {result.rounds}; wall {wall:.2f} s for 1.05 s of tool time (critical path 0.30 s)"
    )
    if args.show_code:
        print("\n" + to_python(result.plans[-1]))
    replayed = run_sync(agent, None, journal=journal, mode="replay")
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if replayed == out else 'DIFFERENT'} ({replayed.report.live_calls} live calls)"
    )
    if replayed != out:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
