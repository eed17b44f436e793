"""Helpers shared by the exact tests of the runtime (test_parallel_exact, test_scopes_exact,
test_lifted_chain, test_step_lift)."""

from __future__ import annotations

from typing import Any

import anyio

from mce import Err, Journal, Ok, Step, lift, run
from mce.events import TraceEvent
from mce.executors import nonblocking
from mce.merge import concat

__all__ = ["err_and_state", "observe", "sleeper", "to_str"]


@nonblocking
def to_str(request: Any) -> str:
    """A handler called on the event loop: it ends before any timer can fire."""
    return str(request)


def sleeper(value: Any) -> Step[Any, Any, Any]:
    async def go() -> Any:
        await anyio.sleep(0)
        return value

    return lift(go)


def err_and_state(out: Ok[Any, Any] | Err[Any, Any]) -> tuple[Any, Any]:
    """An Err's error and state (its equality ignores the state)."""
    assert isinstance(out, Err), out
    return out.error, out.state


def observe(prog: Step[Any, Any, Any], backend: str) -> tuple[Any, ...]:
    """What a run of `prog` (from state `()`) shows: its outcome or bug, its trace
    events branch by branch, and its journal records - for comparing two runs."""
    events: list[TraceEvent] = []
    journal = Journal()

    async def main() -> Any:
        # Branches append to the state: merged in branch order, never a conflict.
        return await run(prog, (), journal=journal, trace=events.append, merge=concat)

    try:
        result: Any = ("outcome", anyio.run(main, backend=backend))
    except Exception as exc:
        result = ("bug", type(exc), str(exc), getattr(exc, "__notes__", None))
    # Branches interleave as the scheduler likes (trio shuffles its run queue):
    # events are compared in their order within each branch.
    seen: dict[str, list[Any]] = {}
    for e in events:
        seen.setdefault(e.branch, []).append((e.event, e.position, e.name, e.ok, e.result))
    records = sorted(
        (r["pos"], r["kind"], repr(r.get("req")), r.get("ok")) for r in journal.load()[1]
    )
    return result, seen, records
