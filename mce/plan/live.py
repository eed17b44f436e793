"""Live plans: a graph that changes while it runs, with every change journaled.

`live(plan, tools, editor=...)` runs a plan like `compile` - each task the
moment what it needs has finished - and calls `editor(event, view)` with
each task's completion or failure. The editor returns edits (`Add`,
`Remove`, `Update`, `Rewire`, `SetOutput` from `mce.plan.edits`, or their
JSON form, e.g. written by a model) - as a list, or as a `Step` that yields
one, so an editor may itself call models and tools. Every edit is checked
against the invariants (a task runs at most once, only pending tasks change,
references resolve, no cycle); a bad one fails the run with `EditRejected`
naming it.

One controller makes every decision, in the order the completions are
journaled (effect `plan.next`), and records each batch of edits (effect
`plan.edit`) before applying it. So a replay makes the same decisions and
dispatches; a resumed run rebuilds the edited graph from the journal and
carries on from there; and an editor that now answers differently is a
`ReplayDivergence` naming the edit, not a silent fork.

With `on_error="fail_fast"` (the default) a failure fails the run with its
`TaskFailed`. With `"continue"` it goes to the editor, independent tasks
run on, and tasks that still need the failed one are skipped; the run then
fails with `PlanFailed` if its output needs a failed or skipped task (or,
with no editor to deal with them, if any task failed).

>>> from mce import run_sync
>>> from mce.plan.edits import Add, Rewire, SetOutput
>>> from mce.plan.ir import Task, parse_refs
>>> from mce.tools import tool
>>> @tool
... def deploy(version: int) -> str:
...     if version < 2:
...         raise RuntimeError("image missing")
...     return f"v{version} live"
>>> @tool
... def check(target: str) -> str:
...     return f"healthy: {target}"
>>> plan = {"tasks": [{"id": "deploy", "tool": "deploy", "args": {"version": 1}},
...                   {"id": "health", "tool": "check", "args": {"target": "$deploy"}}],
...         "output": "$health"}
>>> def editor(event, view):
...     if event.ok:
...         return []
...     return [Add(Task("redeploy", "deploy", {"version": 2})), Rewire("health", "deploy", "redeploy")]
>>> run_sync(live(plan, [deploy, check], editor=editor, on_error="continue"), None).value
'healthy: v2 live'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mce.plan.controller import EDIT, NEXT, STREAM, Editor, Event, LineParser, Tokens, _build
from mce.plan.ir import Plan
from mce.plan.run import OnError, _check_on_error
from mce.plan.stream import openai_stream, scripted_stream, stream_plan
from mce.plan.validate import MAX_TASKS, PlanInvalid, validate
from mce.retry import RetryPolicy
from mce.step import Step
from mce.tools import Registry, Tool


def live(
    plan: Plan | dict[str, Any] | str,
    tools: Registry | Iterable[Tool],
    *,
    editor: Editor | None = None,
    on_error: OnError = "fail_fast",
    limit: int | None = None,
    retry: RetryPolicy | None = None,
    **limits: int,
) -> Step[object, Any, Any]:
    """Validate `plan` and run it as a live graph that `editor` may change (see the module doc).

    `limit` bounds how many tasks run at once, `retry` retries each task's
    tool call, and `max_tasks`, `max_fan_out`, `max_depth` go to `validate`
    (`max_tasks` also caps the tasks edits may add).

    >>> from mce import run_sync
    >>> from mce.tools import tool
    >>> @tool
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> plan = {"tasks": [{"id": "a", "tool": "double", "args": {"x": 2}},
    ...                   {"id": "b", "tool": "double", "args": {"x": "$a"}}], "output": ["$a", "$b"]}
    >>> run_sync(live(plan, [double]), None).value
    [4, 8]
    """
    registry = tools if isinstance(tools, Registry) else Registry(tools)
    problems = validate(plan, registry, **limits)
    if problems:
        raise PlanInvalid(problems)
    parsed = plan if isinstance(plan, Plan) else Plan.from_json(plan)
    _check_on_error(on_error)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"live(limit=...) needs an int >= 1, got {limit!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"live(retry=...) needs a RetryPolicy, got {retry!r}")
    if editor is not None and not callable(editor):
        raise TypeError(f"live(editor=...) must be callable, got {editor!r}")
    max_tasks = limits.get("max_tasks", MAX_TASKS)

    return _build(parsed, registry, editor, on_error, limit, retry, max_tasks, None, None)


__all__ = [
    "EDIT",
    "NEXT",
    "STREAM",
    "Editor",
    "Event",
    "LineParser",
    "Tokens",
    "live",
    "openai_stream",
    "scripted_stream",
    "stream_plan",
]
