"""Chrome/Perfetto trace JSON: a recorded run for ui.perfetto.dev, one thread per branch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mce.events import TraceEvent
from mce.journal import Journal
from mce.trace._rows import _rows, _short


def perfetto_trace(
    journal: Journal | str | Any, *, events: Iterable[TraceEvent] | None = None
) -> dict[str, Any]:
    """A recorded run as Chrome/Perfetto trace JSON (open it at ui.perfetto.dev).

    Each effect is a complete event (`ph: "X"`) on the thread of its branch
    (`tid`), named by its tool or model, with its position, kind and
    (redacted, shortened) request and outcome as `args`; given the run's
    trace events, named steps are `B`/`E` pairs on their branch's thread.

    >>> j = Journal()
    >>> from mce import effect, par, run_sync
    >>> _ = run_sync(par(effect("a", 1, handler=str), effect("b", 2, handler=str)), None, journal=j)
    >>> doc = perfetto_trace(j)
    >>> sorted(e["name"] for e in doc["traceEvents"] if e["ph"] == "X")
    ['a', 'b']
    >>> len({e["tid"] for e in doc["traceEvents"] if e["ph"] == "X"})
    2
    """
    collected = list(events or ())
    header, rows, of_branch = _rows(journal, collected)
    branches = sorted({r.branch for r in rows} | {e.branch for e in collected})
    tid = {b: i + 1 for i, b in enumerate(branches)}
    t_start = min([r.t0 for r in rows] + [e.time for e in collected], default=0.0)

    def us(t: float) -> float:
        return round((t - t_start) * 1e6, 3)

    out: list[dict[str, Any]] = [
        {
            "ph": "M",
            "name": "process_name",
            "pid": 1,
            "tid": 0,
            "args": {"name": f"mce run {header.get('run', '')}".strip()},
        },
    ]
    for branch, n in tid.items():
        label = of_branch.get(branch) or ("run" if not branch else f"branch {branch}")
        out.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": n, "args": {"name": label}})
        out.append(
            {"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": n, "args": {"sort_index": n}}
        )
    for r in rows:
        out.append(
            {
                "ph": "X",
                "name": r.name,
                "cat": r.kind,
                "pid": 1,
                "tid": tid[r.branch],
                "ts": us(r.t0),
                "dur": round((r.t1 - r.t0) * 1e6, 3),
                "args": {
                    "position": r.pos,
                    "kind": r.kind,
                    "attempts": r.attempts,
                    "request": _short(r.request, 400),
                    ("error" if r.failed else "result"): _short(r.result, 400),
                },
            }
        )
    for e in collected:
        if e.event in ("step.start", "step.end"):
            record: dict[str, Any] = {
                "ph": "B" if e.event == "step.start" else "E",
                "name": e.name,
                "cat": "step",
                "pid": 1,
                "tid": tid[e.branch],
                "ts": us(e.time),
            }
            if e.event == "step.end":
                record["args"] = {"ok": e.ok}
            out.append(record)
    out.sort(key=lambda r: (r["ph"] != "M", r.get("ts", 0.0)))
    return {"traceEvents": out, "displayTimeUnit": "ms"}
