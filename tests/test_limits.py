"""Concurrency limits: `react(..., limit=k)` per turn, and a tool's own `limit`."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mce import gather, run_sync
from mce.llm import ScriptedModel, calls, react, say, scripted_handler
from mce.tools import tool

BACKENDS = ["asyncio", "trio"]


class Gauge:
    """How many calls run at once, and the most seen."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def hold(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await anyio.sleep(0.02)
        self.running -= 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("limit", "peak"), [(None, 4), (2, 2), (1, 1)])
def test_react_limit_bounds_the_tool_calls_of_a_turn(
    backend: Any, limit: int | None, peak: int
) -> None:
    gauge = Gauge()

    @tool
    async def look(city: str) -> str:
        "Look a city up."
        await gauge.hold()
        return city

    model = ScriptedModel().queue(calls(*[("look", {"city": c}) for c in "abcd"]), say("done"))
    out = run_sync(
        react(["go"], [look], limit=limit),
        None,
        handlers={"llm.chat": scripted_handler(model)},
        backend=backend,
    )
    assert out.ok and out.value.answer == "done"
    assert gauge.peak == peak


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_react_limit_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"react\(limit=\.\.\.\) needs an int >= 1"):
        react(["go"], [], limit=bad)


def test_a_tool_carries_its_own_capacity_limit_on_every_loop() -> None:
    gauge = Gauge()

    @tool(limit=2)
    async def fetch(url: str) -> str:
        "Fetch a page."
        await gauge.hold()
        return url

    for backend in ["asyncio", "trio", "asyncio"]:  # a limiter per event loop
        gauge.peak = 0
        out = run_sync(gather([fetch(f"u{i}") for i in range(5)]), None, backend=backend)
        assert out.ok and gauge.peak == 2
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        tool(limit=0, name="zero")(lambda: None)
