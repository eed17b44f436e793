"""The commands that run a workflow: `mce run`, `mce replay` and `mce demo`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from mce.cli._errors import UsageError
from mce.cli._journal_files import (
    _check_writable,
    _existing_journal,
    _looks_like_journal,
    _write_output,
)
from mce.cli._progress import Progress
from mce.cli._targets import _state, load_target
from mce.events import TraceEvent
from mce.interpret import run
from mce.journal import ReplayDivergence, open_journal
from mce.outcome import Err, Ok, Waiting
from mce.trace import timeline_html


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
