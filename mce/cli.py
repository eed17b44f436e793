"""The `mce` command line: demo, run, replay, trace, graph.

    mce demo [--out DIR]                       run the meta-agent demo offline
    mce run MODULE:ATTR [--state JSON] [--journal PATH] [--mode live|replay|resume]
    mce replay MODULE:ATTR JOURNAL [--state JSON]
    mce trace JOURNAL -o run.html
    mce graph MODULE:ATTR
    mce mcp serve MODULE:ATTR [--journal-dir DIR] [--http HOST:PORT]

MODULE is a module name (`pkg.workflows`) or a file (`flows/agent.py`);
ATTR names a `Step`, or a function with no required arguments that returns
one. If the module defines `mce_handlers` (a dict, or a function returning
one), those are the run's handlers.

Exit codes: 0 success (a replay identical to its recording); 1 the workflow
failed, or a replay diverged; 2 bad input (target, state, journal, usage).

>>> main(["graph", "mce.demo:workflow"]) == 0  # doctest: +ELLIPSIS
flowchart TD
...
True
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio

from mce.graph import mermaid
from mce.interpret import run
from mce.journal import JournalCorrupt, JournalInUse, ReplayDivergence, open_journal
from mce.outcome import Err
from mce.step import Step
from mce.trace import TraceEvent, timeline_html


class UsageError(Exception):
    """Bad input on the command line (exit code 2)."""


# ---------------------------------------------------------------- targets


def _import(module: str) -> Any:
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise UsageError(f"no such file: {module}")
        spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {module} as a module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module!r}: {exc}") from None


def load_target(target: str) -> tuple[Step[Any, Any, Any], dict[str, Any]]:
    """The workflow named by MODULE:ATTR, and the module's handlers."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR (like flows.agent:workflow), got {target!r}")
    module = _import(module_name)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, Step) and callable(value):
        try:
            value = value()
        except TypeError as exc:
            raise UsageError(
                f"{target} must be a Step or a function with no required arguments: {exc}"
            ) from None
    if not isinstance(value, Step):
        raise UsageError(f"{target} is a {type(value).__name__}, not a Step")
    handlers = getattr(module, "mce_handlers", {})
    if callable(handlers):
        handlers = handlers()
    if not isinstance(handlers, dict):
        raise UsageError(f"{module_name}.mce_handlers must be a dict of handlers")
    return value, handlers


def _state(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--state is not valid JSON: {exc}") from None


# ---------------------------------------------------------------- progress


class Progress:
    """Live progress: one refreshed status line on a terminal, plain lines otherwise."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.start = time.time()
        self.running: dict[str, str] = {}
        self.steps: list[str] = []
        self.done = 0
        self.failed = 0
        self.steps_done = 0
        self.replayed = 0
        self._last = 0.0

    def __call__(self, event: TraceEvent) -> None:
        if event.event == "effect.start":
            self.running[event.position] = event.name
        elif event.event == "effect.end":
            self.running.pop(event.position, None)
            self.done += 1
            self.failed += event.ok is False
            self.replayed += event.replayed
        elif event.event == "step.start":
            self.steps.append(event.name)
        elif event.event == "step.end" and event.name in self.steps:
            self.steps.remove(event.name)
            self.steps_done += 1
        if self.live:
            now = time.time()
            if now - self._last > 0.05 or (event.event == "effect.end" and not self.running):
                self._last = now
                self.out.write("\r\x1b[2K" + self.status())
                self.out.flush()
        elif event.event in ("effect.end", "step.start", "step.end"):
            outcome = "" if event.ok is None else (" ok" if event.ok else " FAILED")
            self.out.write(
                f"{event.time - self.start:8.3f}s {event.event:<12} {event.name} {event.position}{outcome}\n"
            )

    def status(self) -> str:
        kinds: dict[str, int] = {}
        for name in self.running.values():
            kinds[name] = kinds.get(name, 0) + 1
        running = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "-"
        steps = " > ".join(self.steps[-3:]) or "-"
        return (
            f"{time.time() - self.start:6.2f}s  running: {running}  done: {self.done} "
            f"(failed {self.failed})  steps: {steps} ({self.steps_done} finished)"
        )

    def close(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.status() + "\n")
            self.out.flush()


# ---------------------------------------------------------------- commands


def _print_outcome(out: Any, stream: TextIO) -> None:
    if out.ok:
        stream.write(f"ok: {out.value!r}\n")
    else:
        stream.write(f"failed: {out.error}\n")
    if out.report is not None:
        stream.write(out.report.summary() + "\n")


def cmd_run(args: argparse.Namespace) -> int:
    step, handlers = load_target(args.target)
    state = _state(args.state)
    if args.mode != "live" and not args.journal:
        raise UsageError(f"--mode {args.mode} needs --journal")
    progress = Progress(sys.stderr, sys.stderr.isatty())
    try:
        out = anyio.run(
            lambda: run(
                step, state, handlers=handlers, journal=args.journal, mode=args.mode, trace=progress
            )
        )
    finally:
        progress.close()
    _print_outcome(out, sys.stdout)
    return 0 if out.ok else 1


def cmd_replay(args: argparse.Namespace) -> int:
    step, _handlers = load_target(args.target)
    if not Path(args.journal).is_file():
        raise UsageError(f"no such journal: {args.journal}")
    try:
        out = anyio.run(lambda: run(step, _state(args.state), journal=args.journal, mode="replay"))
    except ReplayDivergence as divergence:
        sys.stdout.write(f"DIVERGED\n{divergence}\n")
        return 1
    sys.stdout.write("identical: the program replays its journal with no live call\n")
    _print_outcome(out, sys.stdout)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    path = Path(args.journal)
    if not path.is_file():
        raise UsageError(f"no such journal: {args.journal}")
    page = timeline_html(open_journal(path), title=f"mce run: {path.name}")
    Path(args.output).write_text(page)
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    step, _handlers = load_target(args.target)
    sys.stdout.write(mermaid(step) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mce import demo

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = out_dir / "demo.jsonl"
    journal.unlink(missing_ok=True)
    progress = Progress(sys.stderr, sys.stderr.isatty())
    try:
        out = anyio.run(
            lambda: run(
                demo.workflow(), None, handlers=demo.handlers(), journal=journal, trace=progress
            )
        )
    finally:
        progress.close()
    if isinstance(out, Err):
        sys.stdout.write(f"the demo failed: {out.error}\n")
        return 1
    result = out.value
    sys.stdout.write(f"Task: {demo.TASK}\n\n")
    for sub, value in zip(result.subtasks, result.results, strict=True):
        sys.stdout.write(f"  [{sub.agent}] {sub.instruction} -> {value}\n")
    sys.stdout.write(f"\nAnswer: {result.answer}\n\n")
    timeline = out_dir / "timeline.html"
    timeline.write_text(timeline_html(open_journal(journal), title="mce demo: meta-agent"))
    assert out.report is not None
    sys.stdout.write(f"Run: {out.report.summary()}\n")
    sys.stdout.write(f"Journal: {journal}\nTimeline: {timeline}\n")
    sys.stdout.write(f"Replay it: mce replay mce.demo:workflow {journal}\n")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from mce.mcp._server import serve_command
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    try:
        start = serve_command(args.target, _import, args.journal_dir, args.http, args.name)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    start()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mce", description="Run, replay and inspect mce workflows."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="run the meta-agent demo offline; write its journal and timeline"
    )
    demo.add_argument(
        "--out",
        default="mce-demo",
        help="directory for the journal and timeline (default mce-demo)",
    )
    demo.set_defaults(fn=cmd_demo)
    run_p = sub.add_parser("run", help="run a workflow with live progress")
    run_p.add_argument("target", metavar="MODULE:ATTR")
    run_p.add_argument("--state", help="the initial state, as JSON")
    run_p.add_argument("--journal", help="journal file to record to (or replay/resume from)")
    run_p.add_argument("--mode", choices=["live", "replay", "resume"], default="live")
    run_p.set_defaults(fn=cmd_run)
    replay = sub.add_parser(
        "replay", help="replay a journal: exit 0 when identical, 1 on divergence"
    )
    replay.add_argument("target", metavar="MODULE:ATTR")
    replay.add_argument("journal", metavar="JOURNAL")
    replay.add_argument("--state", help="the initial state, as JSON")
    replay.set_defaults(fn=cmd_replay)
    trace = sub.add_parser("trace", help="write a run's timeline as a self-contained HTML page")
    trace.add_argument("journal", metavar="JOURNAL")
    trace.add_argument("-o", "--output", default="run.html")
    trace.set_defaults(fn=cmd_trace)
    graph = sub.add_parser("graph", help="print a workflow's structure as a Mermaid flowchart")
    graph.add_argument("target", metavar="MODULE:ATTR")
    graph.set_defaults(fn=cmd_graph)
    mcp_p = sub.add_parser("mcp", help="serve tools and workflows as an MCP server (extra mcp)")
    mcp_p.add_argument("action", choices=["serve"])
    mcp_p.add_argument("target", metavar="MODULE:ATTR", help="a tool, a workflow, or a list")
    mcp_p.add_argument("--journal-dir", help="journal each call's run to a new file here")
    mcp_p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP (default stdio)")
    mcp_p.add_argument("--name", default="mce", help="the server's name (default mce)")
    mcp_p.set_defaults(fn=cmd_mcp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except UsageError as exc:
        sys.stderr.write(f"mce {args.command}: {exc}\n")
        return 2
    except (JournalCorrupt, JournalInUse) as exc:
        # Only bad input is exit 2: an exception from the workflow itself is a
        # bug and keeps its traceback.
        sys.stderr.write(f"mce {args.command}: {exc}\n")
        return 2


def entry_point() -> None:
    """The `mce` console script."""
    raise SystemExit(main())


__all__ = [
    "UsageError",
    "entry_point",
    "main",
]
