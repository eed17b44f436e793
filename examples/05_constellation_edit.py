"""UFO^3's constellation edit: a running task graph is repaired without re-running finished work.

A release graph builds a service, deploys it, checks its health, and
writes docs and runs tests alongside. The deploy fails (the image tag is
wrong). An editor - called by mce with each completion or failure - adds a
redeploy task and rewires the health check to it, while docs and tests keep
running. Every edit is checked against the graph's invariants (a task runs
at most once, only pending tasks change, references resolve, no cycle) and
journaled, so the run replays exactly - and a crashed run resumes into the
edited graph instead of diverging.

Run it:  python examples/05_constellation_edit.py [--journal PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from mce import run_sync
from mce.plan import Add, Event, GraphView, Rewire, Task, live
from mce.tools import Tool, tool

ran: list[str] = []


@tool
async def build(service: str) -> str:
    """Build a service image; its tag."""
    ran.append("build")
    await anyio.sleep(0.10)
    return f"{service}:1.4.2"


@tool
async def deploy(image: str, registry: str) -> str:
    """Deploy an image from a registry."""
    ran.append(f"deploy from {registry}")
    await anyio.sleep(0.15)
    if registry != "registry.internal":
        raise RuntimeError(f"{registry}/{image}: manifest unknown")
    return f"{image} live on 3 nodes"


@tool
async def health(deployment: str) -> str:
    """Check a deployment's health."""
    ran.append("health")
    await anyio.sleep(0.05)
    return f"healthy: {deployment}"


@tool
async def chore(name: str, seconds: float) -> str:
    """Docs, tests: independent work."""
    ran.append(name)
    await anyio.sleep(seconds)
    return f"{name} done"


CONSTELLATION = {
    "tasks": [
        {"id": "build", "tool": "build", "args": {"service": "api"}},
        {
            "id": "deploy",
            "tool": "deploy",
            "args": {"image": "$build", "registry": "registry.public"},
        },
        {"id": "check", "tool": "health", "args": {"deployment": "$deploy"}},
        {"id": "docs", "tool": "chore", "args": {"name": "docs", "seconds": 0.2}},
        {"id": "tests", "tool": "chore", "args": {"name": "tests", "seconds": 0.35}},
    ],
    "output": {"release": "$check", "docs": "$docs", "tests": "$tests"},
}


def repair(event: Event, view: GraphView) -> list[Any]:
    """The constellation agent: on a failed deploy, redeploy from the internal registry."""
    if event.ok or event.task != "deploy":
        return []
    print(f"  {event.task} failed: {event.error.error.message}")
    print(f"  status then: {dict(view.status)}")
    return [
        Add(
            Task(
                "redeploy",
                "deploy",
                {"image": view.results["build"], "registry": "registry.internal"},
            )
        ),
        Rewire("check", "deploy", "redeploy"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None)
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "constellation.jsonl")
    journal.unlink(missing_ok=True)
    tools: list[Tool] = [build, deploy, health, chore]
    graph = live(CONSTELLATION, tools, editor=repair, on_error="continue")

    start = time.perf_counter()
    out = run_sync(graph, None, journal=journal)
    wall = time.perf_counter() - start
    if not out.ok:
        raise SystemExit(f"failed: {out}")
    print("Result:", out.value)  # type: ignore[union-attr]
    print("Ran:", ", ".join(ran))
    reruns = len(ran) - len(set(ran))
    print(f"Each task ran once: {'yes' if reruns == 0 else 'NO'}; wall {wall:.2f} s")
    ran.clear()
    replayed = run_sync(graph, None, journal=journal, mode="replay")
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if replayed == out else 'DIFFERENT'} "
        f"({replayed.report.live_calls} live calls, {len(ran)} tools run)"
    )
    if replayed != out or ran:
        raise SystemExit(1)

    # A crash right after the edit was journaled: resume runs only what had not finished.
    lines = journal.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"plan.edit"' in line) + 1
    crashed = journal.with_name("crashed.jsonl")
    crashed.write_text("".join(lines[:cut]))
    resumed = run_sync(graph, None, journal=crashed, mode="resume")
    print(
        f"Resume after a crash at the edit: {'same result' if resumed == out else 'DIFFERENT'}; "
        f"ran only: {', '.join(ran)}"
    )
    if resumed != out:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
