"""Trace events: what the interpreter reports while a run goes on.

`run(..., trace=callback)` calls `callback(event)` with a `TraceEvent` when
every effect and every `.named` step starts and ends. The events belong to
the core; renderers (`mce.trace`, `mce.graph`) live at the edge.

>>> from mce import effect, run_sync
>>> events: list[TraceEvent] = []
>>> _ = run_sync(effect("k", 1, handler=str), None, trace=events.append)
>>> [(e.event, e.name, e.ok) for e in events]
[('effect.start', 'k', None), ('effect.end', 'k', True)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from attrs import frozen

__all__ = ["TraceEvent", "Tracer"]


@final
@frozen
class TraceEvent:
    """Something happened in a run: an effect or a named step started or ended,
    or an effect's handler is retrying (`"effect.retry"`, `ok=False`: the
    attempt before it failed; see `mce.effects.report_retry`).

    >>> TraceEvent("step.start", 0.0, "0", "fetch").name
    'fetch'
    """

    event: str  # "effect.start" | "effect.end" | "effect.retry" | "step.start" | "step.end"
    time: float
    position: str
    name: str  # the effect's kind or the step's label
    branch: str = ""
    ok: bool | None = None  # for ends: whether it succeeded (None: a question left open)
    replayed: bool = False  # served from the journal
    request: Any = None  # for effects: the request, `Secret`s redacted
    result: Any = None  # for effect ends: the value or the error; for a retry: why


Tracer = Callable[[TraceEvent], None]
"""What `run(..., trace=...)` takes: called with each `TraceEvent`."""
