"""Research agent: a tool-calling model that searches and reads in parallel, then reports.

The agent loop (`mce.llm.react`) asks the model what to do; every tool call
of a turn runs concurrently. A final structured call turns the findings into
a typed `Report`. Every model and tool call is journaled; the script then
replays the journal and checks that the replay is identical with zero live
calls.

Offline by default, on a scripted model it names explicitly. With `--live`,
the same workflow runs on the endpoint that `OPENAI_API_KEY` (and
`OPENAI_BASE_URL`, `MCE_MODEL`) configure.

Run it:  python examples/02_research_agent.py [--journal PATH] [--question TEXT] [--live]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import anyio
from attrs import frozen

from mce import Ok, Step, run_sync
from mce.llm import (
    AgentResult,
    ScriptedModel,
    calls,
    json_reply,
    react,
    say,
    scripted_handler,
    structured,
)
from mce.tools import tool

# A small offline corpus standing in for the web.
PAGES = {
    "https://example.org/mce-paper": (
        "Monadic Context Engineering models agent workflows as a StateT over EitherT over "
        "Async stack: binds sequence, applicatives run independent steps in parallel."
    ),
    "https://example.org/llmcompiler": (
        "LLMCompiler plans a DAG of tool calls, runs them as soon as their inputs are ready, "
        "and reports up to 3.7x lower latency than ReAct."
    ),
    "https://example.org/durable": (
        "Durable execution journals every side effect so that a crashed workflow resumes "
        "without repeating finished work."
    ),
}
INDEX = {
    "monadic context engineering": ["https://example.org/mce-paper"],
    "parallel tool calls": ["https://example.org/llmcompiler", "https://example.org/mce-paper"],
    "replay agent runs": ["https://example.org/durable"],
}


@tool
async def search_web(query: str) -> list[str]:
    """Search the web; returns the URLs of matching pages."""
    await anyio.sleep(0.15)  # a slow search API
    return INDEX.get(query.lower(), [])


@tool
async def read_page(url: str) -> str:
    """Fetch a page and return its text."""
    await anyio.sleep(0.2)
    return PAGES.get(url, "")


@frozen
class Report:
    """What the agent found."""

    title: str
    findings: list[str]
    sources: list[str]


def research_model() -> ScriptedModel:
    """The offline stand-in for a real model: searches, reads, answers, reports."""

    def tool_results(messages: Any) -> list[str]:
        return [m["content"] for m in messages if m.get("role") == "tool"]

    def turn(messages: Any) -> int:
        return sum(1 for m in messages if m.get("role") == "assistant")

    def read_found(messages: Any) -> Any:
        urls = sorted({u for r in tool_results(messages) for u in json.loads(r)})
        return calls(*(("read_page", {"url": u}) for u in urls))

    def answer(messages: Any) -> Any:
        texts = [r for r in tool_results(messages) if not r.startswith("[")]
        return say("Findings: " + " ".join(texts))

    def report(messages: Any) -> Any:
        findings = messages[-1]["content"].split("Findings: ", 1)[-1]
        sentences = [s for s in re.split(r"(?<=\.)\s+", findings) if s]
        return json_reply(
            {
                "title": "Monads, parallel tools and replay",
                "findings": sentences,
                "sources": sorted(PAGES),
            }
        )

    model = ScriptedModel()
    model.when(matches=lambda ms: "Summarize" in str(ms[-1].get("content")), reply=report)
    model.when(
        matches=lambda ms: ms[-1].get("role") == "user" and turn(ms) == 0,
        reply=calls(*(("search_web", {"query": q}) for q in INDEX)),
    )
    model.when(matches=lambda ms: turn(ms) == 1, reply=read_found)
    model.when(matches=lambda ms: turn(ms) == 2, reply=answer)
    return model


def research(question: str) -> Step[Any, Any, tuple[AgentResult, Report]]:
    system = {
        "role": "system",
        "content": "Research with the tools. Call independent tools together.",
    }
    agent = react([system, {"role": "user", "content": question}], [search_web, read_page])
    return agent.then(
        lambda result: structured(
            [{"role": "user", "content": f"Summarize as a report: {result.answer}"}], Report
        ).map(lambda rep: (result, rep))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None, help="where to write the run's journal")
    parser.add_argument(
        "--question", default="How do agents run tools in parallel and replay runs?"
    )
    parser.add_argument(
        "--live", action="store_true", help="use the endpoint OPENAI_API_KEY/OPENAI_BASE_URL name"
    )
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "research.jsonl")
    if journal.exists():
        journal.unlink()
    handlers = {} if args.live else {"llm.chat": scripted_handler(research_model())}
    prog = research(args.question)

    out = run_sync(prog, None, handlers=handlers, journal=journal)
    if not isinstance(out, Ok):
        raise SystemExit(f"research failed: {out}")
    result, report = out.value
    print(f"Question: {args.question}")
    print(f"Answer ({result.turns} model turns): {result.answer}\n")
    print(f"Report: {report.title}")
    for finding in report.findings:
        print(f"  - {finding}")
    print(f"Sources: {', '.join(report.sources)}\n")
    assert out.report is not None
    print("Run:", out.report.summary())
    print(f"Journal: {journal}")

    replayed = run_sync(prog, None, journal=journal, mode="replay")
    same = replayed == out
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if same else 'DIFFERENT'} "
        f"({replayed.report.live_calls} live calls, {replayed.report.replayed} served from the journal, "
        f"{replayed.report.wall_seconds:.3f} s)"
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
