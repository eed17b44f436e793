"""Where a bug was raised: notes on exceptions, and the error for a non-Step result.

A bug raised by a callback propagates out of `run` as itself, with a note
naming the callback and its place in the program (the `.named` labels and
parallel branches around it).

>>> from mce import pure, run_sync
>>> try:
...     run_sync(pure(1).named("outer").then(lambda x: 1 / 0), None)
... except ZeroDivisionError as exc:
...     print(exc.__notes__[0].split(" at ")[1])
the top level
"""

from __future__ import annotations

import time
from typing import Any

from mce._runtime.context import Seq
from mce._runtime.nodes import CALLBACK_KIND, EFFECT, NAMED, RECOVER
from mce.events import TraceEvent, Tracer
from mce.journal import Record


def labels(stack: list[Any]) -> list[str]:
    """Labels of the `.named` frames on a continuation stack, outermost first."""
    found: list[str] = []
    skip = False
    for entry in reversed(stack):
        if skip:  # the saved state below a recover frame
            skip = False
            continue
        tag = getattr(entry, "_tag", None)
        if tag == RECOVER:
            skip = True
        elif tag == NAMED:
            found.append(entry.name)
    found.reverse()
    return found


def describe_where(stack: list[Any], where: Seq) -> str:
    """`'label' > branch 1 > 'inner'`: where on the stacks of nested contexts we are."""
    parts: list[str] = []
    seq: Seq | None = where
    while True:
        parts[:0] = [repr(lab) for lab in labels(stack)]
        if seq is None or seq.parent_stack is None:
            break
        if seq.branch is not None:
            parts.insert(0, f"branch {seq.branch}")
        stack, seq = seq.parent_stack, seq.parent
    return " > ".join(parts) if parts else "the top level"


def annotate(
    exc: BaseException, node: object, stack: list[Any], where: Seq, kind: str | None = None
) -> None:
    """Add a note naming the node that raised `exc` and where it sits (innermost wins)."""
    notes = getattr(exc, "__notes__", ())
    if any(note.startswith("mce: ") for note in notes):
        return  # the innermost position is the useful one
    kind = kind or CALLBACK_KIND.get(getattr(node, "_tag", -1), "step")
    if getattr(node, "_tag", None) == EFFECT:
        name = repr(node.kind)  # type: ignore[attr-defined]
    else:
        fn = (
            getattr(node, "f", None)
            or getattr(node, "thunk", None)
            or getattr(node, "origin", None)
        )
        name = getattr(fn, "__qualname__", None) or repr(fn)
    exc.add_note(f"mce: raised by the {kind} {name} at {describe_where(stack, where)}")


def not_a_step(
    node: Any, result: object, stack: list[Any], where: Seq, kind: str | None = None
) -> TypeError:
    """The error for a callback that returned something other than a Step."""
    kind = kind or CALLBACK_KIND.get(node._tag, "callback")
    fn = getattr(node, "f", None) or getattr(node, "thunk", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return TypeError(
        f"the {kind} {name} at {describe_where(stack, where)} returned "
        f"{result!r} ({type(result).__name__}), not a Step; wrap plain values in pure(...)"
    )


def trace_step(tracer: Tracer, event: str, name: str, where: Seq, ok: bool | None) -> None:
    """Report a named step starting or ending."""
    tracer(TraceEvent(event, time.time(), where.prefix, name, where.prefix[:-1], ok))


def trace_served(tracer: Tracer, entry: Record, kind: str, branch: str) -> None:
    """Report an effect served from the journal (it starts and ends at once)."""
    now = time.time()
    position = entry.pos
    request = entry.req
    result = entry.value
    tracer(TraceEvent("effect.start", now, position, kind, branch, None, True, request))
    tracer(TraceEvent("effect.end", now, position, kind, branch, entry.ok, True, request, result))
