"""The `mce` command line: demo, run, replay, trace, graph.

    mce demo [--out DIR]                       run the meta-agent demo offline
    mce run MODULE:ATTR [--state JSON] [--journal PATH] [--mode live|replay|resume] [--timeline HTML]
                        [--resume] [--retry-failed]
                        [--answer ID=JSON ...]
    mce replay MODULE:ATTR JOURNAL [--state JSON]
    mce trace JOURNAL [-o run.html] [--format html|perfetto]
    mce graph MODULE:ATTR | mce graph --journal JOURNAL
    mce mcp serve MODULE:ATTR [--journal-dir DIR] [--http HOST:PORT]
    mce --version

MODULE is a module name (`pkg.workflows`) or a file (`flows/agent.py`);
ATTR names a `Step`, or a function with no required arguments that returns
one. If the module defines `mce_handlers` (a dict, or a function returning
one), those are the run's handlers.

Exit codes: 0 success (a replay identical to its recording); 1 the workflow
failed, or a replay diverged; 2 bad input (target, state, journal, usage);
3 the run is waiting for answers to its questions (`mce.questions.ask`):
resume its journal with `--mode resume --answer ID=JSON` for each.

>>> main(["graph", "mce.demo:workflow"]) == 0  # doctest: +ELLIPSIS
flowchart TD
...
True
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio

from mce import JournalWriteError, __version__
from mce.effects import MissingHandler
from mce.events import TraceEvent
from mce.graph import mermaid, mermaid_run
from mce.interpret import run
from mce.journal import (
    HEADER_KEY,
    JournalCorrupt,
    JournalInUse,
    ReplayDivergence,
    open_journal,
)
from mce.outcome import Err, Ok, Waiting
from mce.step import Step
from mce.trace import perfetto_trace, timeline_html

__all__ = ["Progress", "UsageError", "display_width", "entry_point", "load_target", "main"]


class UsageError(Exception):
    """Bad input on the command line (exit code 2).

    >>> str(UsageError("no such journal: run.jsonl"))
    'no such journal: run.jsonl'
    """


# ---------------------------------------------------------------- targets


def _import_failed(module: str, exc: BaseException) -> UsageError:
    """A clear message for a target that does not import: what went wrong, and where."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename or module}"
        return UsageError(
            f"{where} has a syntax error at line {exc.lineno}: {exc.msg}"
            + (f"\n    {exc.text.strip()}" if exc.text else "")
        )
    frames = traceback.extract_tb(exc.__traceback__)
    # the target's own top-level line that raised: the outermost frame past
    # this module and the import machinery
    user = [f for f in frames if "importlib" not in f.filename and f.filename != __file__]
    where = f" (at {user[0].filename}, line {user[0].lineno})" if user else ""
    return UsageError(f"importing {module} raised {type(exc).__name__}: {exc}{where}")


def _import(module: str) -> Any:
    try:
        return _import_unchecked(module)
    except UsageError:
        raise
    except Exception as exc:
        # Importing a target runs its top-level code; any failure there is bad
        # input to the command (exit 2), not a crash of the command itself.
        raise _import_failed(module, exc) from None


def _import_unchecked(module: str) -> Any:
    if module.endswith(".py") or os.sep in module or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise UsageError(f"no such file: {module}")
        spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {module} as a module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[spec.name]
            raise
        return loaded
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(module)
    except ImportError as exc:  # a parent package that is not there
        raise UsageError(f"cannot import module {module!r}: {exc}") from None
    if found is None:
        raise UsageError(f"cannot import module {module!r}: no module named {module!r}")
    return importlib.import_module(module)


def load_target(target: str) -> tuple[Step[Any, Any, Any], dict[str, Any]]:
    """The workflow named by MODULE:ATTR, and the module's handlers.

    >>> step, handlers = load_target("mce.demo:workflow")
    >>> type(step).__name__ != "", isinstance(handlers, dict)
    (True, True)
    """
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


def display_width(text: str) -> int:
    """How many terminal columns `text` takes (wide East Asian characters take two).

    >>> display_width("abc"), display_width("检索")
    (3, 4)
    """
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def _cut(text: str, width: int) -> str:
    """`text` cut to at most `width` columns, ending in an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        w = display_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def _terminal_width(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class Progress:
    """Live progress: one refreshed status line on a terminal, plain lines otherwise.

    The status line always fits the terminal's width (read again at every
    redraw, so a resize is followed): when the full line is too wide, the
    running kinds collapse to a count, then the step names shorten, so the
    line never wraps and smears.

    >>> import io
    >>> progress = Progress(io.StringIO(), live=True, width=40)
    >>> progress(TraceEvent("effect.start", 0.0, "0", "tool.search"))
    >>> display_width(progress.line()) <= 39
    True
    """

    def __init__(self, out: TextIO, live: bool, width: int | None = None) -> None:
        self.out = out
        self.live = live
        self.width = width
        self.start = time.time()
        self.running: dict[str, str] = {}
        self.steps: list[str] = []
        self.done = 0
        self.failed = 0
        self.steps_done = 0
        self.replayed = 0
        self.retries = 0
        self._last = 0.0

    def __call__(self, event: TraceEvent) -> None:
        if event.event == "effect.start":
            self.running[event.position] = event.name
        elif event.event == "effect.end":
            self.running.pop(event.position, None)
            self.done += 1
            self.failed += event.ok is False
            self.replayed += event.replayed
        elif event.event == "effect.retry":
            self.retries += 1
        elif event.event == "step.start":
            self.steps.append(event.name)
        elif event.event == "step.end" and event.name in self.steps:
            self.steps.remove(event.name)
            self.steps_done += 1
        if self.live:
            now = time.time()
            if now - self._last > 0.05 or (event.event == "effect.end" and not self.running):
                self._last = now
                self.out.write("\r\x1b[2K" + self.line())
                self.out.flush()
        elif event.event in ("effect.end", "effect.retry", "step.start", "step.end"):
            outcome = "" if event.ok is None else (" ok" if event.ok else " FAILED")
            if event.event == "effect.retry":
                outcome = " failed, retrying"
            self.out.write(
                f"{event.time - self.start:8.3f}s {event.event:<12} {event.name} {event.position}{outcome}\n"
            )

    def status(self, *, compact: bool = False, steps_width: int | None = None) -> str:
        """The whole status; `compact` counts the running effects instead of listing their kinds;
        `steps_width` keeps only the innermost step, cut to that many columns (0: no steps)."""
        kinds: dict[str, int] = {}
        for name in self.running.values():
            kinds[name] = kinds.get(name, 0) + 1
        if compact and self.running:
            running = str(len(self.running))
        else:
            running = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "-"
        steps = " > ".join(self.steps[-3:]) or "-"
        if steps_width is not None:
            steps = _cut(self.steps[-1], steps_width) if self.steps else "-"
        line = (
            f"{time.time() - self.start:6.2f}s  running: {running}  done: {self.done} "
            f"(failed {self.failed}" + (f", {self.retries} retries)" if self.retries else ")")
        )
        if steps_width is None or steps_width > 0:
            line += f"  steps: {steps} ({self.steps_done} finished)"
        return line

    def line(self) -> str:
        """The status as it fits one terminal line (one column spare, so it never wraps)."""
        room = (self.width or _terminal_width(self.out)) - 1
        for compact in (False, True):
            text = self.status(compact=compact)
            if display_width(text) <= room:
                return text
        bare = self.status(compact=True, steps_width=0)
        spare = room - display_width(bare) - len(f"  steps:  ({self.steps_done} finished)")
        if spare >= 4:
            return self.status(compact=True, steps_width=spare)
        return _cut(bare, room)

    def close(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.line() + "\n")
            self.out.flush()


# ---------------------------------------------------------------- journal files

_HEADER_START = b'{"' + HEADER_KEY.encode() + b'"'


def _looks_like_journal(path: Path) -> str | None:
    """None if `path` starts like an mce journal, else why it is not one."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first.strip():
        return "it is empty" if not first else "its first line is blank"
    if first.startswith(_HEADER_START):
        return None  # a header (perhaps torn by a crash mid-write: the journal module decides)
    try:
        record = json.loads(first)
    except ValueError:
        return "its first line is not JSON"
    if isinstance(record, dict) and (
        HEADER_KEY in record or {"pos", "kind", "fp"} <= record.keys()
    ):
        return None
    return "its first line is neither a journal header nor an entry"


def _existing_journal(text: str) -> Path:
    """The journal file named on the command line; bad input if missing or not a journal."""
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"no such journal: {text}")
    why = _looks_like_journal(path)
    if why is not None:
        raise UsageError(f"{text} is not an mce journal ({why})")
    return path


def _check_writable(path: Path, what: str) -> None:
    """Bad input unless `path` can be created or appended to (its directories included)."""
    if path.exists():
        if not path.is_file() or not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {what} {path}: not a writable file")
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {what} {path}: {ancestor} is not a writable directory")


def _write_output(output: str, text: str, *, journal: Path) -> None:
    """Write a rendered page, never over a journal, with a clear error when it cannot."""
    target = Path(output)
    if target.exists() and (
        target.resolve() == journal.resolve()
        or (target.is_file() and _looks_like_journal(target) is None)
    ):
        raise UsageError(f"refusing to overwrite the journal {output}; choose another -o path")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- commands


def _print_outcome(out: Any, stream: TextIO) -> None:
    if out.ok:
        stream.write(f"ok: {out.value!r}\n")
    elif isinstance(out, Waiting):
        for rejected in out.rejected:
            stream.write(f"rejected: {rejected}\n")
        for key in out.unused:
            stream.write(f"unused: --answer {key}=... matched no question\n")
        stream.write(f"waiting for {len(out.questions)} answer(s):\n")
        for q in out.questions:
            schema = json.dumps(q.schema, sort_keys=True)
            stream.write(f"  {q.key} (position {q.position}): {q.text}\n    schema: {schema}\n")
        stream.write("resume with: --mode resume --answer ID=JSON for each\n")
    else:
        stream.write(f"failed: {out.error}\n")
    if out.report is not None:
        stream.write(out.report.summary() + "\n")


def _tee(*callbacks: Callable[[TraceEvent], None]) -> Callable[[TraceEvent], None]:
    def both(event: TraceEvent) -> None:
        for callback in callbacks:
            callback(event)

    return both


def cmd_run(args: argparse.Namespace) -> int:
    step, handlers = load_target(args.target)
    state = _state(args.state)
    if args.resume:
        args.mode = "resume"
    if args.mode != "live" and not args.journal:
        raise UsageError(f"--mode {args.mode} needs --journal")
    if args.timeline and not args.journal:
        raise UsageError("--timeline needs --journal (the timeline is drawn from it)")
    if args.mode == "replay":
        _existing_journal(args.journal)
    elif args.journal and Path(args.journal).is_file() and Path(args.journal).stat().st_size:
        why = _looks_like_journal(Path(args.journal))
        if why is not None:
            raise UsageError(f"{args.journal} is not an mce journal ({why})")
    if args.journal and args.mode != "replay":
        _check_writable(Path(args.journal), "the journal")
    if args.timeline:
        _check_writable(Path(args.timeline), "the timeline")
    if args.timeline and Path(args.timeline).resolve() == Path(args.journal).resolve():
        raise UsageError(f"refusing to overwrite the journal {args.journal} with the timeline")
    if args.retry_failed and args.mode != "resume":
        raise UsageError("--retry-failed needs --resume (or --mode resume)")
    answers = _answers(args.answer, args.mode)
    progress = Progress(sys.stderr, sys.stderr.isatty())
    events: list[TraceEvent] = []
    try:
        out = anyio.run(
            lambda: run(
                step,
                state,
                handlers=handlers,
                journal=args.journal,
                mode=args.mode,
                trace=_tee(progress, events.append),
                answers=answers,
                retry_failed=args.retry_failed,
            )
        )
    finally:
        progress.close()
    _print_outcome(out, sys.stdout)
    if args.timeline:
        journal = Path(args.journal)
        page = timeline_html(open_journal(journal), title=f"mce run: {journal.name}", events=events)
        _write_output(args.timeline, page, journal=journal)
        sys.stdout.write(f"Timeline: {args.timeline}\n")
    return 0 if out.ok else (3 if isinstance(out, Waiting) else 1)


def _answers(given: list[str] | None, mode: str) -> dict[str, Any] | None:
    """`--answer ID=JSON` options as `run(answers=...)`."""
    if not given:
        return None
    if mode == "replay":
        raise UsageError("--answer needs --mode resume (a replay reads answers from the journal)")
    answers: dict[str, Any] = {}
    for item in given:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--answer {item!r}: expected ID=JSON, e.g. --answer approve=true")
        try:
            answers[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--answer {key}: not JSON ({exc}): {text!r}") from None
    return answers


def cmd_replay(args: argparse.Namespace) -> int:
    step, _handlers = load_target(args.target)
    _existing_journal(args.journal)
    try:
        out = anyio.run(lambda: run(step, _state(args.state), journal=args.journal, mode="replay"))
    except ReplayDivergence as divergence:
        sys.stdout.write(f"DIVERGED\n{divergence}\n")
        return 1
    sys.stdout.write("identical: the program replays its journal with no live call\n")
    _print_outcome(out, sys.stdout)
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    path = _existing_journal(args.journal)
    if args.format == "perfetto":
        text = json.dumps(perfetto_trace(open_journal(path)), separators=(",", ":")) + "\n"
    else:
        text = timeline_html(open_journal(path), title=f"mce run: {path.name}")
    output = args.output or ("run.json" if args.format == "perfetto" else "run.html")
    _write_output(output, text, journal=path)
    sys.stdout.write(f"wrote {output}\n")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    if args.journal:
        if args.target:
            raise UsageError("give MODULE:ATTR (the program) or --journal (a run), not both")
        path = _existing_journal(args.journal)
        sys.stdout.write(mermaid_run(open_journal(path)) + "\n")
        return 0
    if not args.target:
        raise UsageError("give MODULE:ATTR (the program's structure) or --journal J (a run's)")
    step, _handlers = load_target(args.target)
    sys.stdout.write(mermaid(step) + "\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mce import demo

    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the directory {args.out}: {exc.strerror or exc}") from None
    journal = out_dir / "demo.jsonl"
    journal.unlink(missing_ok=True)
    progress = Progress(sys.stderr, sys.stderr.isatty())
    events: list[TraceEvent] = []
    try:
        out = anyio.run(
            lambda: run(
                demo.workflow(),
                None,
                handlers=demo.handlers(),
                journal=journal,
                trace=_tee(progress, events.append),
            )
        )
    finally:
        progress.close()
    if isinstance(out, Err):
        sys.stdout.write(f"the demo failed: {out.error}\n")
        return 1
    assert isinstance(out, Ok), "the demo asks no questions"
    result = out.value
    sys.stdout.write(f"Task: {demo.TASK}\n\n")
    for sub, value in zip(result.subtasks, result.results, strict=True):
        sys.stdout.write(f"  [{sub.agent}] {sub.instruction} -> {value}\n")
    sys.stdout.write(f"\nAnswer: {result.answer}\n\n")
    timeline = out_dir / "timeline.html"
    timeline.write_text(
        timeline_html(open_journal(journal), title="mce demo: meta-agent", events=events)
    )
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


class _ArgumentError(Exception):
    """argparse found bad usage; `main` adds a suggestion and reports it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


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
    parser.add_argument("--version", action="version", version=f"mce {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    replay = sub.add_parser(
        "replay",
        help="replay a journal: exit 0 when identical, 1 on divergence",
        allow_abbrev=False,
    )
    replay.add_argument("target", metavar="MODULE:ATTR")
    replay.add_argument("journal", metavar="JOURNAL")
    replay.add_argument("--state", help="the initial state, as JSON")
    replay.set_defaults(fn=cmd_replay)
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
    graph = sub.add_parser(
        "graph",
        help="print a workflow's structure, or what a recorded run did, as a Mermaid flowchart",
        allow_abbrev=False,
    )
    graph.add_argument("target", metavar="MODULE:ATTR", nargs="?")
    graph.add_argument("--journal", help="draw what this recorded run actually did instead")
    graph.set_defaults(fn=cmd_graph)
    mcp_p = sub.add_parser(
        "mcp", help="serve tools and workflows as an MCP server (extra mcp)", allow_abbrev=False
    )
    mcp_p.add_argument("action", choices=["serve"])
    mcp_p.add_argument("target", metavar="MODULE:ATTR", help="a tool, a workflow, or a list")
    mcp_p.add_argument("--journal-dir", help="journal each call's run to a new file here")
    mcp_p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP (default stdio)")
    mcp_p.add_argument("--name", default="mce", help="the server's name (default mce)")
    mcp_p.set_defaults(fn=cmd_mcp)
    return parser, dict(sub.choices)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    >>> main(["--version"])  # doctest: +ELLIPSIS
    mce ...
    0
    """
    parser, commands = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    except _ArgumentError as bad:
        bad.parser.print_usage(sys.stderr)
        hint = _suggestion(parser, commands, bad.message, argv)
        sys.stderr.write(f"{bad.parser.prog}: error: {bad.message}{hint}\n")
        return 2
    fn: Callable[[argparse.Namespace], int] = args.fn
    try:
        return fn(args)
    except UsageError as exc:
        sys.stderr.write(f"mce {args.command}: {exc}\n")
        return 2
    except (JournalCorrupt, JournalInUse, MissingHandler) as exc:
        # Only bad input is exit 2 (a damaged or busy journal, an effect - a
        # model call - nothing is configured to handle): an exception from the
        # workflow itself is a bug and keeps its traceback.
        sys.stderr.write(f"mce {args.command}: {exc}\n")
        return 2
    except JournalWriteError as exc:
        # the journal failed while the run went on (a full disk): the run stopped
        sys.stderr.write(f"mce {args.command}: {exc}\n")
        return 1


def entry_point() -> None:
    """The `mce` console script: `main` on the process's arguments, its result the exit status.

    >>> import sys
    >>> saved, sys.argv = sys.argv, ["mce", "--version"]
    >>> try:
    ...     entry_point()
    ... except SystemExit as exit_:
    ...     print(exit_.code)  # doctest: +ELLIPSIS
    ... finally:
    ...     sys.argv = saved
    mce ...
    0
    """
    raise SystemExit(main())


__all__ = [
    "UsageError",
    "entry_point",
    "main",
]
