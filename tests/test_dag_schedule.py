"""How a compiled plan schedules its tasks: the tasks that need nothing start first.

A parallel block sets up all its branches before any of them runs; a plan
runs the tasks that need nothing in a block of their own, so that they
start before the branches of the others are set up. What the plan
computes, in what order its outcomes come, and what it journals are those
of one block over every task.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import Err, Journal, Ok, run
from mce.plan import PlanFailed, compile
from mce.plan.ir import Plan
from mce.plan.run import observe
from mce.tools import Registry, tool

pytestmark = pytest.mark.anyio

live: list[int] = []
"""How many asyncio tasks exist when a `source` starts, while a test counts them."""
counting = [False]


@tool
async def source(n: int) -> int:
    if counting[0]:
        import asyncio

        live.append(len(asyncio.all_tasks()))
    await anyio.sleep(0)
    return n


@tool
async def step(x: int) -> int:
    await anyio.sleep(0)
    return x + 1


@tool
async def broken(x: int) -> int:
    raise RuntimeError(f"broken {x}")


TOOLS = Registry([source, step, broken])


def chain_plan(sources: int, length: int) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [
        {"id": f"s{i}", "tool": "source", "args": {"n": i}} for i in range(sources)
    ]
    tasks += [
        {"id": f"c{i}", "tool": "step", "args": {"x": f"$c{i - 1}" if i else "$s0"}}
        for i in range(length)
    ]
    return {"tasks": tasks, "output": [f"$c{length - 1}", *(f"$s{i}" for i in range(sources))]}


async def test_tasks_that_need_nothing_start_before_the_others_are_set_up(
    anyio_backend: str,
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("counts asyncio's tasks; trio runs a batch of ready tasks in any order")
    live.clear()
    plan = compile(chain_plan(3, 60), TOOLS, max_tasks=100, max_depth=100)
    counting[0] = True
    try:
        assert await run(plan, None) == Ok([60, 0, 1, 2], None)
    finally:
        counting[0] = False
    # the run, its keeper, a block of 3 + 1 branches and a first shared step:
    # none of the 60 branches of the chain exists yet
    assert live[0] < 20, live


MIXED = {
    "tasks": [
        {"id": "bad1", "tool": "broken", "args": {"x": 1}},
        {"id": "d1", "tool": "step", "args": {"x": "$s2"}},
        {"id": "s2", "tool": "source", "args": {"n": 2}},
        {"id": "d2", "tool": "step", "args": {"x": "$bad1"}},
        {"id": "bad3", "tool": "broken", "args": {"x": "$s2"}},
        {"id": "s4", "tool": "source", "args": {"n": 4}},
        {"id": "d3", "tool": "step", "args": {"x": "$d2"}},
        {"id": "d4", "tool": "step", "args": {"x": "$d1"}},
    ],
    "output": ["$d4", "$s4"],
}


async def test_outcomes_come_in_the_plans_order(anyio_backend: str) -> None:
    out = await run(compile(MIXED, TOOLS, on_error="continue"), None)
    assert isinstance(out, Err) and isinstance(out.error, PlanFailed)
    assert [f.task for f in out.error.failures] == ["bad1", "bad3"]
    assert out.error.skipped == ("d2", "d3")
    assert list(out.error.results.items()) == [("s2", 2), ("d1", 3), ("s4", 4), ("d4", 4)]
    seen = await run(observe(Plan.from_json(MIXED), TOOLS), None)
    assert isinstance(seen, Ok)
    assert (seen.value.ok, seen.value.output) == (True, [4, 4])
    assert list(seen.value.results) == ["s2", "d1", "s4", "d4"]
    assert list(seen.value.errors) == ["bad1", "bad3"]
    assert seen.value.skipped == ("d2", "d3")


async def test_a_plan_journals_and_replays_the_same_with_sources_first(anyio_backend: str) -> None:
    plan = compile(chain_plan(2, 5), TOOLS)
    j = Journal()
    assert await run(plan, None, journal=j) == Ok([5, 0, 1], None)
    positions = sorted(e["pos"] for e in j.load()[1])
    assert positions == sorted(
        [*(f"s:task:s{i}/0" for i in range(2)), *(f"s:task:c{i}/0" for i in range(5))]
    )
    assert await run(plan, None, journal=j, mode="replay") == Ok([5, 0, 1], None)


async def test_with_a_limit_every_task_counts_against_it(anyio_backend: str) -> None:
    running, peak = [0], [0]

    @tool
    async def counted(n: int, after: list[int]) -> int:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        for _ in range(5 if after else 10 * (n + 1)):  # the tasks that need nothing take longer
            await anyio.sleep(0)
        running[0] -= 1
        return n

    tasks = [{"id": f"a{i}", "tool": "counted", "args": {"n": i, "after": []}} for i in range(4)]
    tasks += [
        {"id": f"b{i}", "tool": "counted", "args": {"n": i, "after": ["$a0"]}} for i in range(4)
    ]
    plan = compile({"tasks": tasks, "output": "$b3"}, [counted], limit=2)
    assert await run(plan, None) == Ok(3, None)
    assert peak[0] == 2, peak
