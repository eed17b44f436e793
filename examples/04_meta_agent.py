"""Meta-agent (the MCE paper, section 5): decompose, run sub-agents in parallel, synthesize.

A coordinating model splits the task among three sub-agents - a search
agent (a tool-calling loop), a data agent (a compiled plan of tool calls)
and a writer (a model call) - which run concurrently inside the parent's
run, under one budget for the whole team. A final model call writes the
answer. The workflow is `mce.demo` (what `mce demo` runs); read it there.
Offline on a scripted model; the journal replays exactly.

Run it:  python examples/04_meta_agent.py [--journal PATH] [--max-calls N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mce import Err, Ok, run_sync
from mce.demo import handlers, workflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journal", default=None)
    parser.add_argument("--max-calls", type=int, default=20)
    args = parser.parse_args()
    journal = Path(args.journal or Path(tempfile.mkdtemp()) / "meta.jsonl")
    journal.unlink(missing_ok=True)
    agent = workflow(args.max_calls)
    out = run_sync(agent, None, handlers=handlers(), journal=journal)
    if not isinstance(out, Ok):
        print(f"The meta-agent stopped: {out.error if isinstance(out, Err) else out}")
        raise SystemExit(2)
    result = out.value
    for sub, value in zip(result.subtasks, result.results, strict=True):
        print(f"[{sub.agent}] {sub.instruction} -> {value}")
    print("\nAnswer:", result.answer)
    assert out.report is not None
    print("Run:", out.report.summary())
    replayed = run_sync(agent, None, journal=journal, mode="replay")
    assert replayed.report is not None
    print(
        f"Replay: {'identical' if replayed == out else 'DIFFERENT'} ({replayed.report.live_calls} live calls)"
    )
    if replayed != out:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
