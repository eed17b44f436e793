"""Journal size against the length of an agent's conversation.

A tool-calling agent (`mce.llm.react` on the scripted model, one tool call
per turn, then a final answer) runs for 4, 32 and 128 turns, recording to a
journal file. Every `llm.chat` request repeats the conversation so far; the
journal stores a request that extends an earlier one as a reference plus the
new messages (`req_base`, docs/journal-format.md), so the file grows with the
conversation's length, not its square. The table also gives what the same
records take with every request stored whole (the size before references).

Usage:  python benchmarks/bench_journal_size.py [--no-write]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import machine, publish, today

from mce import run_sync
from mce._journal.lines import encode_line
from mce.journal import FileJournal
from mce.llm import ScriptedModel, call, react, say, scripted_handler
from mce.tools import tool

START, END = "<!-- bench_journal_size:start -->", "<!-- bench_journal_size:end -->"
TURNS = (4, 32, 128)


@tool
def lookup(key: str) -> str:
    "Look a key up."
    return f"the value stored under {key} is {len(key) * 7}"


def measure(turns: int, tmp: Path) -> tuple[int, int]:
    """(bytes on disk, bytes with every request stored whole) for one run."""
    model = ScriptedModel().queue(*[call("lookup", key=f"k{i}") for i in range(turns - 1)])
    model.queue(say("done"))
    path = tmp / f"agent-{turns}.jsonl"
    out = run_sync(
        react(["Look everything up."], [lookup], max_turns=turns),
        None,
        journal=path,
        handlers={"llm.chat": scripted_handler(model)},
    )
    assert out.ok and out.value.turns == turns, out
    header, records = FileJournal(path).read()
    assert header is not None
    whole = len(path.read_bytes().split(b"\n", 1)[0]) + 1
    whole += sum(len(encode_line(r.to_json())) for r in records)
    return path.stat().st_size, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="accepted; the run is quick anyway")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {n: measure(n, Path(tmp)) for n in TURNS}
    rows = [
        f"| {n} | {size / 1024:,.1f} | {size / n / 1024:.2f} | {whole / 1024:,.1f} |"
        for n, (size, whole) in sizes.items()
    ]
    section = "\n".join(
        [
            START,
            "## Journal size against agent turns (`benchmarks/bench_journal_size.py`)",
            "",
            f"Measured {today()} on {machine()}.",
            "A tool-calling agent (`react`, scripted model, one tool call per turn). "
            "Reproduce with `python benchmarks/bench_journal_size.py`.",
            "",
            "| turns | journal KiB | KiB per turn | KiB with requests stored whole |",
            "|---:|---:|---:|---:|",
            *rows,
            "",
            "Target: linear growth. A request that extends an earlier one is stored as a "
            "reference plus its new messages, so the size per turn stays flat; stored whole, "
            "it grows with the turn count.",
            END,
        ]
    )
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
