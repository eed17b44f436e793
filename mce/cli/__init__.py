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
import sys
from collections.abc import Callable, Sequence

from mce import JournalWriteError
from mce.cli._draw_commands import cmd_graph as cmd_graph
from mce.cli._draw_commands import cmd_trace as cmd_trace
from mce.cli._errors import UsageError as UsageError
from mce.cli._mcp_command import cmd_mcp as cmd_mcp
from mce.cli._parser import _ArgumentError, _parser, _suggestion
from mce.cli._progress import Progress as Progress
from mce.cli._progress import display_width as display_width
from mce.cli._run_commands import cmd_demo as cmd_demo
from mce.cli._run_commands import cmd_replay as cmd_replay
from mce.cli._run_commands import cmd_run as cmd_run
from mce.cli._targets import load_target as load_target
from mce.effects import MissingHandler
from mce.journal import JournalCorrupt, JournalInUse

__all__ = ["Progress", "UsageError", "display_width", "entry_point", "load_target", "main"]


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
