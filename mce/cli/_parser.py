"""The argument parser: every command and option, and a suggestion for a mistyped one."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import mce
from mce.cli._draw_commands import cmd_graph, cmd_trace
from mce.cli._mcp_command import cmd_mcp
from mce.cli._run_commands import cmd_demo, cmd_replay, cmd_run


class _ArgumentError(Exception):
    """argparse found bad usage; `main` adds a suggestion and reports it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _VersionAction(argparse.Action):
    """`--version`: looks the installed version up only when asked (the lookup
    costs about as much as the rest of `mce --help`)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show mce's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser._print_message(f"mce {mce.__version__}\n", sys.stdout)
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self, message)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings]


def _suggestion(
    parser: argparse.ArgumentParser,
    commands: dict[str, argparse.ArgumentParser],
    message: str,
    argv: Sequence[str],
) -> str:
    """' (did you mean ...?)' for a mistyped command or option, or ''."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        candidates = re.findall(r"'([^']*)'", choice.group(2))
        near = difflib.get_close_matches(choice.group(1), candidates, n=1, cutoff=0.5)
        return f"; did you mean {near[0]!r}?" if near else ""
    command = next((a for a in argv if a in commands), None)
    known = _options(parser) + (_options(commands[command]) if command else [])
    for token in argv:
        word = token.split("=", 1)[0]
        if word.startswith("-") and word not in known:
            near = difflib.get_close_matches(word, known, n=1, cutoff=0.5)
            if near:
                return f"; did you mean {near[0]!r}?"
    return ""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(
        prog="mce", description="Run, replay and inspect mce workflows.", allow_abbrev=False
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_demo, _add_run, _add_replay, _add_trace, _add_graph, _add_mcp):
        add(sub)
    return parser, dict(sub.choices)


def _add_demo(sub: argparse._SubParsersAction[_Parser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="run the meta-agent demo offline; write its journal and timeline",
        allow_abbrev=False,
    )
    demo.add_argument(
        "--out",
        default="mce-demo",
        help="directory for the journal and timeline (default mce-demo)",
    )
    demo.set_defaults(fn=cmd_demo)


def _add_run(sub: argparse._SubParsersAction[_Parser]) -> None:
    run_p = sub.add_parser("run", help="run a workflow with live progress", allow_abbrev=False)
    run_p.add_argument("target", metavar="MODULE:ATTR")
    run_p.add_argument("--state", help="the initial state, as JSON")
    run_p.add_argument("--journal", help="journal file to record to (or replay/resume from)")
    run_p.add_argument("--mode", choices=["live", "replay", "resume"], default="live")
    run_p.add_argument(
        "--timeline",
        metavar="HTML",
        help="also write the run's timeline page, with the names of its named steps",
    )
    run_p.add_argument(
        "--answer",
        action="append",
        metavar="ID=JSON",
        help="answer the question with this id or position (repeat for several)",
    )
    run_p.add_argument("--resume", action="store_true", help="the same as --mode resume")
    run_p.add_argument(
        "--retry-failed",
        action="store_true",
        help="with --resume: run effects recorded as failed again instead of serving their errors",
    )
    run_p.set_defaults(fn=cmd_run)


def _add_replay(sub: argparse._SubParsersAction[_Parser]) -> None:
    replay = sub.add_parser(
        "replay",
        help="replay a journal: exit 0 when identical, 1 on divergence",
        allow_abbrev=False,
    )
    replay.add_argument("target", metavar="MODULE:ATTR")
    replay.add_argument("journal", metavar="JOURNAL")
    replay.add_argument("--state", help="the initial state, as JSON")
    replay.set_defaults(fn=cmd_replay)


def _add_trace(sub: argparse._SubParsersAction[_Parser]) -> None:
    trace = sub.add_parser(
        "trace",
        help="write a run's timeline: a self-contained HTML page, or Perfetto trace JSON",
        allow_abbrev=False,
    )
    trace.add_argument("journal", metavar="JOURNAL")
    trace.add_argument(
        "-o", "--output", help="where to write it (default run.html, or run.json for perfetto)"
    )
    trace.add_argument(
        "--format",
        choices=["html", "perfetto"],
        default="html",
        help="html (default): the timeline page; perfetto: Chrome/Perfetto trace JSON",
    )
    trace.set_defaults(fn=cmd_trace)


def _add_graph(sub: argparse._SubParsersAction[_Parser]) -> None:
    graph = sub.add_parser(
        "graph",
        help="print a workflow's structure, or what a recorded run did, as a Mermaid flowchart",
        allow_abbrev=False,
    )
    graph.add_argument("target", metavar="MODULE:ATTR", nargs="?")
    graph.add_argument("--journal", help="draw what this recorded run actually did instead")
    graph.set_defaults(fn=cmd_graph)


def _add_mcp(sub: argparse._SubParsersAction[_Parser]) -> None:
    mcp_p = sub.add_parser(
        "mcp", help="serve tools and workflows as an MCP server (extra mcp)", allow_abbrev=False
    )
    mcp_p.add_argument("action", choices=["serve"])
    mcp_p.add_argument("target", metavar="MODULE:ATTR", help="a tool, a workflow, or a list")
    mcp_p.add_argument("--journal-dir", help="journal each call's run to a new file here")
    mcp_p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP (default stdio)")
    mcp_p.add_argument("--name", default="mce", help="the server's name (default mce)")
    mcp_p.set_defaults(fn=cmd_mcp)
