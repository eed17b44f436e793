"""An approval workflow: a plan stops for a person before its costly task, resumed from the CLI.

A cheap plan counts the documents of a corpus and quotes the price of
re-embedding them. Then the workflow asks a person (`mce.ask`) to approve
the spend, with a structured answer (approve or not, which model, a note).
With no answer the run ends *waiting*: the journal holds the cheap work,
and `mce run` prints the question with its JSON schema and exits 3. Days
later - in another process - the run is resumed with the answer: the cheap
tasks are served from the journal, not run again, the answer is validated
against the schema and journaled, and only then does the costly plan run.

    mce run examples/07_approval_workflow.py:workflow --journal reindex.jsonl
    mce run examples/07_approval_workflow.py:workflow --journal reindex.jsonl \\
        --mode resume --answer 'approval={"approve": true, "model": "small"}'
    mce replay examples/07_approval_workflow.py:workflow reindex.jsonl

Run it:  python examples/07_approval_workflow.py [--journal PATH]
(it runs those three commands, each in a fresh process, answering as the person)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import BaseModel

from mce import Step, ask, pure
from mce.plan import compile
from mce.tools import tool

SHOWN = "examples/07_approval_workflow.py:workflow"
CORPUS = "contracts-2026"
PRICE_PER_DOC = {"small": 0.002, "large": 0.013}


@tool
async def scan(corpus: str) -> int:
    """Count the documents in a corpus (cheap)."""
    await anyio.sleep(0.01)
    return 48_000


@tool
async def quote(docs: int, model: str) -> float:
    """The price of embedding `docs` documents with `model`, in dollars (cheap)."""
    return round(docs * PRICE_PER_DOC[model], 2)


@tool
async def embed(corpus: str, docs: int, model: str) -> str:
    """Re-embed every document (costly: this is what needs approval)."""
    await anyio.sleep(0.05)
    return f"{corpus}@{model}: {docs} vectors"


@tool
async def publish(index: str) -> str:
    """Swap the live search index to the new one."""
    return f"live: {index}"


class Approval(BaseModel):
    """What the person answers."""

    approve: bool
    model: Literal["small", "large"] = "large"
    note: str = ""


ESTIMATE = {
    "tasks": [
        {"id": "docs", "tool": "scan", "args": {"corpus": CORPUS}},
        {"id": "large", "tool": "quote", "args": {"docs": "$docs", "model": "large"}},
        {"id": "small", "tool": "quote", "args": {"docs": "$docs", "model": "small"}},
    ],
    "output": {"docs": "$docs", "large": "$large", "small": "$small"},
}


def reindex(docs: int, model: str) -> Step[Any, Any, Any]:
    """The costly plan: embed, then publish."""
    plan = {
        "tasks": [
            {
                "id": "embed",
                "tool": "embed",
                "args": {"corpus": CORPUS, "docs": docs, "model": model},
            },
            {"id": "publish", "tool": "publish", "args": {"index": "$embed"}},
        ],
        "output": "$publish",
    }
    return compile(plan, [embed, publish])


def decide(estimate: dict[str, Any]) -> Step[Any, Any, Any]:
    question = (
        f"Re-embed {estimate['docs']} documents of {CORPUS}? "
        f"large model ${estimate['large']:.2f}, small model ${estimate['small']:.2f}"
    )
    return ask(question, into=Approval, id="approval").then(
        lambda answer: (
            reindex(estimate["docs"], answer.model)
            if answer.approve
            else pure(f"not approved: {answer.note or 'no reason given'}")
        )
    )


def workflow() -> Step[Any, Any, Any]:
    """Estimate (cheap plan), wait for approval, then re-index (costly plan)."""
    return compile(ESTIMATE, [scan, quote]).then(decide)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--journal", help="journal file (default: a temporary one)")
    args = parser.parse_args()
    journal = args.journal or str(Path(tempfile.mkdtemp()) / "reindex.jsonl")
    target = f"{Path(__file__).resolve()}:workflow"
    commands = [
        ("Day 1: the run stops at the question", ["run", target, "--journal", journal]),
        (
            "Day 3: a person approves the small model (a fresh process resumes the journal)",
            [
                "run",
                target,
                "--journal",
                journal,
                "--mode",
                "resume",
                "--answer",
                'approval={"approve": true, "model": "small", "note": "small is enough"}',
            ],
        ),
        ("Audit: the whole run replays from the journal", ["replay", target, journal]),
    ]
    for title, command in commands:
        shown = " ".join(SHOWN if part == target else part for part in command)
        print(f"== {title}\n$ mce {shown}")
        done = subprocess.run(
            [sys.executable, "-m", "mce", *command], capture_output=True, text=True
        )
        print(done.stdout + f"(exit {done.returncode})\n")


if __name__ == "__main__":
    main()
