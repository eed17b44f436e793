"""The commands that draw a run or a program: `mce trace` and `mce graph`."""

from __future__ import annotations

import argparse
import json
import sys

from mce.cli._errors import UsageError
from mce.cli._journal_files import _existing_journal, _write_output
from mce.cli._targets import load_target
from mce.graph import mermaid, mermaid_run
from mce.journal import open_journal
from mce.trace import perfetto_trace, timeline_html


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
