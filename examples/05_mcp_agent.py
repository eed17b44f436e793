"""An agent using a filesystem MCP server's tools next to local `@tool`s.

`mcp_fs_server.py` (an MCP server written with the official SDK) serves a
folder's files; the run starts it over stdio when the agent first needs it
and stops it when the block ends. Its tools become mce tools (`fs_list_files`,
`fs_read_file`; effect kinds `mcp:fs/list_files`, `mcp:fs/read_file`) that
the agent uses next to a local `@tool`. One read asks for a file outside the
folder: the server answers `isError`, which is a `ToolError` on mce's error
channel - the agent sees it and goes on. Every call is journaled; the
script then replays the run with the server stopped.

Offline, on a scripted model (named explicitly below). Needs the extra:
pip install "mce[mcp]".

Run it:  python examples/05_mcp_agent.py [--journal PATH] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from mce import Step, run
from mce.llm import AgentResult, Reply, ScriptedModel, call, calls, react, say, scripted_handler
from mce.mcp import Connection, stdio
from mce.tools import Tool, tool

HERE = Path(__file__).resolve().parent
FILES = {
    "notes.txt": "Monads sequence steps; applicatives run independent steps in parallel.",
    "todo.txt": "write the docs",
    "ideas/replay.md": "Journal every effect, then replay the run without the world.",
}
QUESTION = "Which file in the folder has the most words?"


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def tool_results(messages: Any) -> list[str]:
    """The contents of the tool messages after the last assistant turn that called tools."""
    out: list[str] = []
    for m in reversed(messages):
        if m["role"] != "tool":
            break
        out.append(m["content"])
    return out[::-1]


def result(content: str) -> Any:
    """The value in an MCP tool result (the SDK wraps a plain value as {"result": ...})."""
    return json.loads(content)["result"]


def scripted_model() -> ScriptedModel:
    """A model that lists the files, reads them, counts their words and answers."""
    read: list[str] = []

    def read_them(messages: Any) -> Reply:
        read.extend(result(tool_results(messages)[0]))
        paths = [*read, "../outside.txt"]  # the last one is refused by the server
        return calls(*[("fs_read_file", {"path": p}) for p in paths])

    def count_them(messages: Any) -> Reply:
        texts = [c for c in tool_results(messages) if not c.startswith("ERROR:")]
        return calls(*[("word_count", {"text": result(t)}) for t in texts])

    def answer(messages: Any) -> Reply:
        counts = [int(c) for c in tool_results(messages)]
        best = max(range(len(read)), key=lambda i: counts[i])
        return say(f"{read[best]} has the most words ({counts[best]}).")

    return ScriptedModel(name="files-agent").queue(
        call("fs_list_files"), read_them, count_them, answer
    )


def agent(fs: Connection) -> Step[Any, Any, AgentResult]:
    """List the server's tools (a journaled step), then run the agent with them and local tools."""

    def with_tools(remote: list[Tool]) -> Step[Any, Any, AgentResult]:
        return react([QUESTION], [*remote, word_count], max_turns=6)

    return fs.tools(prefix="fs_").then(with_tools)


async def main(journal: Path) -> int:
    folder = Path(tempfile.mkdtemp(prefix="mce-files-"))
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    fs = stdio("fs", sys.executable, str(HERE / "mcp_fs_server.py"), str(folder))
    model = scripted_model()
    async with fs:  # the server starts when the run first calls it, and stops here
        out = await run(
            agent(fs), None, handlers={"llm.chat": scripted_handler(model)}, journal=journal
        )
    if not out.ok:
        print(f"The agent failed: {out.error}")  # type: ignore[union-attr]
        return 1
    answer: AgentResult = out.value  # type: ignore[union-attr]
    for m in answer.messages:
        if m["role"] == "tool":
            print(f"  tool -> {m['content']}")
    print(f"Answer: {answer.answer}")
    assert out.report is not None
    print(f"Run: {out.report.summary()}")

    replayed = await run(agent(fs), None, journal=journal, mode="replay")
    assert replayed.report is not None
    same = "identical" if replayed.value == out.value else "DIFFERENT"  # type: ignore[union-attr]
    print(
        f"Replay with the server stopped: {same} ({replayed.report.live_calls} live calls, "
        f"{replayed.report.replayed} served from the journal)"
    )
    return 0 if same == "identical" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journal", help="journal file (default: a new temporary file)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    path = Path(args.journal) if args.journal else Path(tempfile.mkdtemp()) / "mcp-agent.jsonl"
    path.unlink(missing_ok=True)
    sys.exit(anyio.run(main, path, backend=args.backend))
