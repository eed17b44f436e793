"""Mermaid graphs: tool names, what a bind may call, and what a recorded run did."""

from __future__ import annotations

from pathlib import Path

import pytest

from mce import Journal, effect, gather, par, run_sync
from mce.cli import main
from mce.graph import mermaid, mermaid_run
from mce.tools import tool


@tool
def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return f"page {url}"


def test_a_par_of_two_tools_shows_both_tool_names() -> None:
    chart = mermaid(par(search("mce"), fetch("https://example.org")))
    assert "tool search query='mce'" in chart
    assert "tool fetch url='https://example.org'" in chart
    assert "defer" not in chart and "build" not in chart
    assert 'subgraph n1 ["par"]' in chart


def test_the_demo_meta_agent_shows_its_sub_agents() -> None:
    from mce import demo

    chart = mermaid(demo.workflow())
    for agent in ("agent data", "agent search", "agent writer"):
        assert agent in chart
    assert "budget max_calls 20" in chart
    assert "&lt;locals&gt;" not in chart
    boxes = [line for line in chart.splitlines() if '["' in line or '{{"' in line]
    assert len(boxes) > 4


def _agent(question: str):  # type: ignore[no-untyped-def]
    return effect("llm.chat", {"messages": [question]}, handler=lambda r: "plan").then(
        lambda _: gather([search(question), fetch(question)])
    )


def test_a_recorded_run_is_drawn_as_it_ran() -> None:
    journal = Journal()
    program = effect("llm.chat", {"messages": ["split"]}, handler=lambda r: "two").then(
        lambda _: par(_agent("a"), _agent("b"))
    )
    assert run_sync(program, None, journal=journal).ok
    chart = mermaid_run(journal, names={"1/0": "agent a", "1/1": "agent b"})
    lines = chart.splitlines()
    assert lines[0] == "flowchart TD"
    # the two sub-agents are lanes of one parallel block, each with its own tool fan-out
    assert sum('["par at 1"]' in line for line in lines) == 1
    assert any('["agent a"]' in line for line in lines)
    assert any('["agent b"]' in line for line in lines)
    assert sum('["par at 1/0/1"]' in line or '["par at 1/1/1"]' in line for line in lines) == 2
    for q in ("a", "b"):
        assert f"tool search query='{q}'" in chart and f"tool fetch url='{q}'" in chart
    # the lane of agent a: its model call comes before its fan-out
    start = next(i for i, line in enumerate(lines) if '["agent a"]' in line)
    body = lines[start:]
    chat = next(i for i, line in enumerate(body) if "llm.chat" in line)
    fan = next(i for i, line in enumerate(body) if "par at 1/0/1" in line)
    assert chat < fan


def test_a_recorded_failure_is_marked() -> None:
    from mce.effects import EffectFailed

    def broken(_request: object) -> object:
        raise EffectFailed("down")

    journal = Journal()
    run_sync(effect("tool.fetch", {"url": "x"}, handler=broken), None, journal=journal)
    assert "tool fetch url='x' ✗ failed" in mermaid_run(journal)


def test_graph_command_draws_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "demo.jsonl"
    assert main(["demo", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["graph", "--journal", str(journal)]) == 0
    chart = capsys.readouterr().out
    assert chart.startswith("flowchart TD") and '["par at 0/1"]' in chart
    assert "tool search query='agent frameworks'" in chart and "shared tasks" in chart
    assert main(["graph"]) == 2
    assert "give MODULE:ATTR" in capsys.readouterr().err


def test_an_agent_loop_lists_the_tools_it_may_call() -> None:
    from mce.llm import react

    chart = mermaid(react(["find it"], [search, fetch]))
    assert "may call" in chart and '{{"tool search"}}' in chart and '{{"tool fetch"}}' in chart
