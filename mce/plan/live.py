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

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Never, final

import anyio
from attrs import frozen

from mce.effects import effect
from mce.plan.edits import (
    Add,
    Edit,
    EditRejected,
    Graph,
    GraphView,
    Remove,
    Rewire,
    SetOutput,
    Update,
    edit_from_json,
    edit_to_json,
)
from mce.plan.ir import Plan
from mce.plan.run import (
    MissingField,
    OnError,
    PlanFailed,
    TaskFailed,
    _check_on_error,
    _Done,
    _Failed,
    fill,
)
from mce.plan.validate import MAX_TASKS, PlanInvalid, topological_order, validate
from mce.retry import RetryPolicy
from mce.step import Step, defer, fail, lift, par, pure, share
from mce.tools import Registry, Tool

NEXT = "plan.next"
"""Effect kind: which running task's completion the controller handles next."""
EDIT = "plan.edit"
"""Effect kind: a batch of edits, recorded before it is applied."""


@final
@frozen
class Event:
    """A task finished (`ok`, with its `value`) or failed (with its `error`, a `TaskFailed`).

    >>> Event("a", True, 3)
    Event(task='a', ok=True, value=3, error=None)
    """

    task: str
    ok: bool
    value: Any = None
    error: Any = None


Editor = Callable[[Event, GraphView], Any]
"""`editor(event, view)` returns edits: a list (of `Edit`s or their JSON), or a `Step` yielding one."""

_EDIT_TYPES = (Add, Remove, Update, Rewire, SetOutput)


def _accept(request: Any) -> None:
    return None


@final
class _Mailbox:
    """An unbounded one-consumer queue (nothing to close, so nothing leaks if a run is cancelled)."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.wakeup: anyio.Event | None = None

    def put(self, item: Any) -> None:
        self.items.append(item)
        if self.wakeup is not None:
            self.wakeup.set()

    async def get(self) -> Any:
        while not self.items:
            self.wakeup = anyio.Event()
            await self.wakeup.wait()
        self.wakeup = None
        return self.items.popleft()


@final
class _Controller:
    """One run of a live plan: the graph, and the channels to the task spawner."""

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        editor: Editor | None,
        on_error: OnError,
        limit: int | None,
        retry: RetryPolicy | None,
        max_tasks: int,
    ) -> None:
        self.graph = Graph.start(plan, registry, max_tasks)
        self.registry = registry
        self.editor = editor
        self.on_error = on_error
        self.limit = limit
        self.retry = retry
        self.steps: dict[str, Step[Any, Any, Any]] = {}
        self.running: list[str] = []
        self.reported: set[str] = set()
        self.events = 0
        self.done = _Mailbox()  # ids of tasks that finished, in the order they did
        self.go = _Mailbox()  # ids of tasks to start, then None

    # ------------------------------------------------------------ running tasks

    def spawner(self) -> Step[Never, Never, None]:
        """Start each task the controller dispatches, alongside the ones already running."""

        async def next_task() -> str | None:
            name: str | None = await self.go.get()
            return name

        def fork(name: str | None) -> Step[Never, Never, None]:
            if name is None:
                return pure(None)
            return par(self.steps[name], defer(self.spawner)).map(lambda _: None)

        return lift(next_task).then(fork)

    def _start(self, name: str) -> None:
        task = self.graph.tasks[name]
        tool: Tool = self.registry[task.tool]

        def named(e: Any) -> TaskFailed:
            return e if isinstance(e, TaskFailed) else TaskFailed(name, tool.name, e)

        try:
            filled = fill(task.args, self.graph.results)
        except MissingField as exc:
            call: Step[Never, Any, Any] = fail(TaskFailed(name, tool.name, str(exc)))
        else:
            call = tool.call(filled)
            if self.retry is not None:
                call = call.retry(self.retry)

        def completed(outcome: Any) -> Step[Never, Never, Any]:
            def tell() -> Any:
                self.done.put(name)
                return outcome

            return lift(tell)

        wrapped = (
            call.map_error(named)
            .map(lambda v: _Done(name, v))
            .recover(lambda e: pure(_Failed(name, e)))
            .then(completed)
        )
        self.steps[name] = share(wrapped, key=f"task:{name}")
        self.graph.status[name] = "running"
        self.running.append(name)
        self.go.put(name)

    def _dispatch(self) -> None:
        """Start every pending task whose needs are done; skip those that can never run."""
        graph = self.graph
        live = graph.live()
        for name in topological_order(live):
            if graph.status[name] != "pending":
                continue
            needs = [graph.status.get(n) for n in live[name].needs()]
            if any(s in ("failed", "skipped") for s in needs):
                graph.status[name] = "skipped"
            elif all(s == "done" for s in needs) and (
                self.limit is None or len(self.running) < self.limit
            ):
                self._start(name)

    # ------------------------------------------------------------ the controller

    def control(self) -> Step[Never, Any, Any]:
        def begin() -> Step[Never, Any, Any]:
            self._dispatch()
            return self._loop()

        return defer(begin)

    async def _next(self, request: Any) -> str:
        while True:
            name: str = await self.done.get()
            if name not in self.reported:
                return name

    def _loop(self) -> Step[Never, Any, Any]:
        if not self.running:
            return self._finish()
        self.events += 1
        return effect(NEXT, {"event": self.events}, handler=self._next).then(self._on_event)

    def _on_event(self, name: Any) -> Step[Never, Any, Any]:
        if not isinstance(name, str) or name not in self.running:
            raise RuntimeError(
                f"{NEXT} #{self.events} names {name!r}, which is not a running task "
                f"(running: {self.running}); the journal does not belong to this plan"
            )
        self.running.remove(name)
        self.reported.add(name)
        return self.steps[name].then(lambda outcome: self._settle(name, outcome))

    def _settle(self, name: str, outcome: Any) -> Step[Never, Any, Any]:
        graph = self.graph
        if isinstance(outcome, _Done):
            graph.status[name] = "done"
            graph.results[name] = outcome.value
            event = Event(name, True, outcome.value)
        else:
            graph.status[name] = "failed"
            graph.errors[name] = outcome.error
            if self.on_error == "fail_fast":
                return fail(outcome.error)
            event = Event(name, False, error=outcome.error)
        if self.editor is None:
            return self._next_round()
        asked = self.editor(event, graph.view())
        edits: Step[Any, Any, Any] = asked if isinstance(asked, Step) else pure(asked)
        return edits.then(lambda chosen: self._edit(event, chosen))

    def _next_round(self) -> Step[Never, Any, Any]:
        self._dispatch()
        return self._loop()

    def _edit(self, event: Event, chosen: Any) -> Step[Never, Any, Any]:
        if (
            chosen is None
            or isinstance(chosen, str | bytes | dict)
            or not isinstance(chosen, Iterable)
        ):
            shown = {"value": repr(chosen)[:80]}
            return fail(EditRejected(shown, "the editor must return a list of edits", event.task))
        parsed: list[Edit] = []
        for item in chosen:
            if isinstance(item, _EDIT_TYPES):
                parsed.append(item)
                continue
            try:
                parsed.append(edit_from_json(item))
            except PlanInvalid as invalid:
                shown = item if isinstance(item, dict) else {"value": repr(item)[:80]}
                reason = "; ".join(p.message for p in invalid.problems)
                return fail(EditRejected(shown, reason, event.task))
        if not parsed:
            return self._next_round()
        request = {"after": event.task, "edits": [edit_to_json(e) for e in parsed]}

        def apply(_: Any) -> Step[Never, Any, Any]:
            for edit in parsed:
                rejected = self.graph.apply(edit, event.task)
                if rejected is not None:
                    return fail(rejected)
            return self._next_round()

        return effect(EDIT, request, handler=_accept).then(apply)

    def _finish(self) -> Step[Never, Any, Any]:
        graph = self.graph
        self.go.put(None)
        for name, state in graph.status.items():
            if state == "pending":  # only tasks that need something that never ran
                graph.status[name] = "skipped"
        order = list(graph.tasks)
        failures = tuple(graph.errors[n] for n in order if graph.status[n] == "failed")
        skipped = tuple(n for n in order if graph.status[n] == "skipped")
        needed = graph.needed_by(graph.output)
        blocked = [n for n in needed if graph.status[n] in ("failed", "skipped")]
        if blocked or (self.editor is None and failures):
            return fail(PlanFailed(failures, skipped, dict(graph.results)))
        try:
            return pure(fill(graph.output, graph.results))
        except MissingField as exc:
            return fail(TaskFailed("output", "-", str(exc)))


def live(
    plan: Plan | dict[str, Any] | str,
    tools: Registry | Iterable[Tool],
    *,
    editor: Editor | None = None,
    on_error: OnError = "fail_fast",
    limit: int | None = None,
    retry: RetryPolicy | None = None,
    **limits: int,
) -> Step[Never, Any, Any]:
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

    def start() -> Step[Never, Any, Any]:
        run = _Controller(parsed, registry, editor, on_error, limit, retry, max_tasks)
        return par(run.control(), run.spawner()).map(lambda both: both[0])

    return defer(start)


__all__ = ["EDIT", "NEXT", "Editor", "Event", "live"]
