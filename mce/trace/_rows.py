"""The trace model: a journal's effects as rows to draw, named by tool, model and step.

`_rows(journal, events)` reads a recorded run into `_Row`s (one per effect,
sorted by start time, with redacted requests and results) and the names of
its branches; both renderers draw from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from attrs import frozen

from mce._runtime.replay import DECISIONS
from mce.effects import redact
from mce.events import TraceEvent
from mce.journal import Journal, open_journal

_SENSITIVE = ("authorization", "api_key", "apikey", "password", "secret", "token", "cookie")


def _plain(value: Any) -> Any:
    """A journaled value as a reader wants it: codec tags unwrapped, secrets redacted."""
    value = redact(value)
    if isinstance(value, dict):
        if "$attrs" in value and isinstance(value.get("fields"), dict):
            kind = str(value["$attrs"]).rpartition(":")[2]
            return {"type": kind, **{k: _plain(v) for k, v in value["fields"].items()}}
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag in ("$tuple", "$set", "$frozenset") and isinstance(inner, list):
                return [_plain(v) for v in inner]
        return {
            k: "<redacted>" if any(w in str(k).lower() for w in _SENSITIVE) else _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(_plain(value), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@frozen
class _Row:
    """One effect of the run, ready to draw."""

    index: int
    pos: str
    kind: str
    branch: str
    t0: float
    t1: float
    name: str  # what the row is labelled with: the tool, the model, the kind
    step: str  # the innermost named step it ran in ("" if none is known)
    failed: bool
    attempts: int
    request: Any
    result: Any


def _model(entry: dict[str, Any]) -> str:
    request, result = entry.get("req"), _plain(entry.get("ok"))
    for source in (request, result):
        if isinstance(source, dict) and isinstance(source.get("model"), str):
            return str(source["model"])
    return ""


def _display_name(entry: dict[str, Any]) -> str:
    """A row's name: `search(query='mce')`, `chat gpt-4o → search`, or the effect's kind."""
    kind = str(entry["kind"])
    if kind.startswith("tool."):
        request = _plain(entry.get("req"))
        if isinstance(request, dict) and request:
            args = ", ".join(
                f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in request.items()
            ).replace('"', "'")
            args = args if len(args) <= 32 else args[:31] + "…"
            return f"{kind[len('tool.') :]}({args})"
        return kind[len("tool.") :]
    if kind.startswith("llm."):
        name = f"{kind[len('llm.') :]} {_model(entry)}".strip()
        result = _plain(entry.get("ok"))
        calls = result.get("tool_calls") if isinstance(result, dict) else None
        called = [c.get("name") for c in calls or () if isinstance(c, dict)]
        return name + (" → " + ", ".join(str(c) for c in called) if called else "")
    return kind


def _attempts(entry: dict[str, Any]) -> int:
    """How many attempts an effect took: the record's count, else its reply's or error's."""
    count = entry.get("attempts")
    if count is None:
        outcome = _plain(entry["err"] if "err" in entry else entry.get("ok"))
        count = outcome.get("attempts") if isinstance(outcome, dict) else None
    return count if isinstance(count, int) and count > 1 else 1


def _step_names(events: Iterable[TraceEvent]) -> tuple[dict[str, str], dict[str, str]]:
    """From trace events: the innermost named step of each effect position, and
    the outermost named step of each branch (the branch's name)."""
    open_steps: dict[str, list[str]] = {}
    of_effect: dict[str, str] = {}
    of_branch: dict[str, str] = {}
    for event in events:
        if event.event == "step.start":
            open_steps.setdefault(event.branch, []).append(event.name)
            of_branch.setdefault(event.branch, event.name)
        elif event.event == "step.end":
            stack = open_steps.get(event.branch, [])
            if event.name in stack:
                del stack[len(stack) - 1 - stack[::-1].index(event.name)]
        elif event.event == "effect.start":
            branch = event.branch
            while True:
                found = open_steps.get(branch)
                if found:
                    of_effect[event.position] = found[-1]
                    break
                if not branch:
                    break
                branch = _parent_branch(branch, open_steps)
    return of_effect, of_branch


def _parent_branch(branch: str, known: Iterable[str]) -> str:
    """The longest known branch that `branch` lies inside ("" for the top)."""
    best = ""
    for other in known:
        if other and other != branch and branch.startswith(other + "/") and len(other) > len(best):
            best = other
    return best


def _rows(
    journal: Journal | str | Any, events: Iterable[TraceEvent] | None
) -> tuple[dict[str, Any], list[_Row], dict[str, str]]:
    header, entries = open_journal(journal).load()
    effects = [e for e in entries if e["kind"] not in DECISIONS and "t0" in e and "t1" in e]
    effects.sort(key=lambda e: (e["t0"], e["pos"]))
    of_effect, of_branch = _step_names(events or ())
    rows = [
        _Row(
            index=i,
            pos=str(e["pos"]),
            kind=str(e["kind"]),
            branch=str(e.get("branch") or ""),
            t0=float(e["t0"]),
            t1=float(e["t1"]),
            name=_display_name(e),
            step=of_effect.get(str(e["pos"]), ""),
            failed="err" in e,
            attempts=_attempts(e),
            request=_plain(e.get("req")),
            result=_plain(e["err"] if "err" in e else e.get("ok")),
        )
        for i, e in enumerate(effects)
    ]
    return header or {}, rows, of_branch
