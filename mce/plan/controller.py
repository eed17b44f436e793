"""The controller of a live plan: one loop makes every decision, each one journaled.

`mce.plan.live.live` and `mce.plan.stream.stream_plan` build on it. Tasks
start in a spawner beside the controller; each completion, each line of a
streamed plan and its end reach the controller through one mailbox, and it
handles them one at a time, in the order it journals them (effect
`plan.next`), applying an editor's edits (effect `plan.edit`) as it goes.

>>> Event("a", True, 3).ok
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Never, final

from attrs import frozen

from mce.effects import effect
from mce.executors import nonblocking
from mce.journal import ReplayDivergence
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
    written,
)
from mce.plan.ir import Plan, Ref, Task
from mce.plan.llmcompiler import Join, after_join, renumbered, unknown_reference
from mce.plan.reply import STREAM, Mailbox, Reply, Tokens
from mce.plan.run import (
    MissingField,
    OnError,
    PlanFailed,
    TaskFailed,
    _Done,
    _Failed,
    fill,
)
from mce.plan.validate import PlanInvalid, Problem
from mce.retry import RetryPolicy
from mce.step import Step, defer, fail, lift, par, pure, share
from mce.tools import Registry, Tool

NEXT = "plan.next"
"""Effect kind: which running task's completion the controller handles next."""
EDIT = "plan.edit"
"""Effect kind: a batch of edits, recorded before it is applied."""

Feedback = Callable[[PlanInvalid, str], "Tokens | Step[object, Any, Any]"]
"""`feedback(invalid, text)`: a new planner reply answering the problems with the reply `text`."""
LineParser = Callable[[str, int, Registry], "Task | Join | Problem | None"]
"""Reads one line of a streamed plan: a task, the end (`Join`), a problem, or nothing."""


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


@nonblocking  # the record is the point: answered on the event loop, with no thread hop
def _accept(request: Any) -> None:
    return None


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
        tokens: Tokens | Step[object, Any, Any] | None = None,
        parse: LineParser | None = None,
        feedback: Feedback | None = None,
        max_feedback: int = 0,
    ) -> None:
        self.graph = Graph.start(plan, registry, max_tasks)
        self.tokens = tokens
        self.parse = parse
        self.feedback = feedback
        self.max_feedback = max_feedback
        self.open = tokens is not None  # more tasks may still arrive from the stream
        self.first: dict[str, int] = {}  # each streamed task's line
        self.done = Mailbox()  # what happened, in order: a task finished, a line arrived, the end
        self.mismatch: ReplayDivergence | None = None
        self.replies = [] if tokens is None else [Reply(0, tokens, self.done, self._diverged)]
        self.ended = False
        self.registry = registry
        self.editor = editor
        self.on_error = on_error
        self.limit = limit
        self.retry = retry
        self.steps: dict[str, Step[Any, Any, Any]] = {}
        self.running: list[str] = []
        self.reported: set[str] = set()
        self.events = 0
        self.go = Mailbox()  # ids of tasks (or replies) to start, then None

    # ------------------------------------------------------------ running tasks

    def spawner(self) -> Step[object, Never, None]:
        """Start each task the controller dispatches, alongside the ones already running."""

        async def next_task() -> str | None:
            name: str | None = await self.go.get()
            return name

        def fork(name: str | None) -> Step[object, Never, None]:
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
            call: Step[object, Any, Any] = fail(TaskFailed(name, tool.name, str(exc)))
        else:
            call = tool.call(filled)
            if self.retry is not None:
                call = call.retry(self.retry)

        def completed(outcome: Any) -> Step[object, Never, Any]:
            def tell() -> Any:
                self.done.put(("task", name))
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
        status = graph.status
        changed = True
        while changed:  # a skip can make a later task skippable too
            changed = False
            for name in [n for n, state in status.items() if state == "pending"]:
                needs = [status.get(n) for n in graph.tasks[name].needs()]
                if any(s in ("failed", "skipped") for s in needs):
                    status[name] = "skipped"
                    changed = True
                elif all(s == "done" for s in needs) and (
                    self.limit is None or len(self.running) < self.limit
                ):
                    self._start(name)

    # ------------------------------------------------------------ the controller

    def control(self) -> Step[object, Any, Any]:
        def begin() -> Step[object, Any, Any]:
            self._dispatch()
            return self._loop()

        return defer(begin)

    async def _next(self, request: Any) -> dict[str, Any]:
        while True:
            item = await self.done.get()
            if item[0] == "task":
                if item[1] not in self.reported:
                    return {"task": item[1]}
                continue
            reply = self.replies[-1]
            if not self.open or item[1] != reply.index:
                continue  # a reply already over (its lines were served from the journal)
            if item[0] == "line" and item[2] > reply.lines:
                event: dict[str, Any] = {"line": item[2], "text": item[3]}
            elif item[0] == "end":
                event = {"end": item[2]}
            else:
                continue
            if reply.index:
                event["reply"] = reply.index
            return event

    def _loop(self) -> Step[object, Any, Any]:
        if not self.running and not self.open:
            return self._finish()
        self.events += 1
        return effect(NEXT, {"event": self.events}, handler=self._next).then(self._on_event)

    def _on_event(self, event: Any) -> Step[object, Any, Any]:
        if self.mismatch is not None:
            raise self.mismatch
        if isinstance(event, dict) and ("line" in event or "end" in event) and self.open:
            reply = self.replies[-1]
            if event.get("reply", 0) != reply.index:
                raise RuntimeError(
                    f"{NEXT} #{self.events} is {event!r} while reply {reply.index} streams; "
                    "the journal does not belong to this plan"
                )
            if "end" in event:
                return self._on_end(reply)
            return self._on_line(reply, event["line"], event.get("text"))
        name = event.get("task") if isinstance(event, dict) else None
        if not isinstance(name, str) or name not in self.running:
            raise RuntimeError(
                f"{NEXT} #{self.events} is {event!r}, which this plan cannot be at "
                f"(running: {self.running}); the journal does not belong to this plan"
            )
        self.running.remove(name)
        self.reported.add(name)
        return self.steps[name].then(lambda outcome: self._settle(name, outcome))

    # ------------------------------------------------------------ the planner's stream

    def reader(self) -> Step[object, Any, None]:
        """Read the planner's first reply (see `mce.plan.reply`)."""
        return self.replies[0].reader()

    def _diverged(self, mismatch: ReplayDivergence) -> None:
        if self.mismatch is None:
            self.mismatch = mismatch

    def _on_line(self, reply: Reply, number: Any, text: Any) -> Step[object, Any, Any]:
        if number != reply.lines + 1 or not isinstance(text, str):
            raise RuntimeError(
                f"{NEXT} #{self.events} gives line {number!r} after line {reply.lines}; "
                "the journal does not belong to this plan"
            )
        reply.handle(number, text)
        if self.mismatch is not None:
            raise self.mismatch
        assert self.parse is not None
        item = self.parse(text, number, self.registry)
        if item is not None and reply.joined is not None:
            return self._reject(reply, after_join(number, reply.joined))
        if isinstance(item, Problem):
            return self._reject(reply, item)
        if isinstance(item, Join):
            reply.joined = item
        elif isinstance(item, Task):
            # The same rules as `parse_llmcompiler` reading the whole text.
            problem = renumbered(item, number, self.first) or unknown_reference(
                item, number, self.graph.live()
            )
            if problem is not None:
                return self._reject(reply, problem)
            rejected = self.graph.apply(Add(item), None)
            if rejected is not None:
                return self._reject(reply, Problem(item.id, f"line {number}: {rejected.reason}"))
            self.first[item.id] = number
        return self._next_round()

    def _reject(self, reply: Reply, problem: Problem) -> Step[object, Any, Any]:
        """A bad line: the run fails, or (with feedback) it goes back to the planner at the end."""
        if self.feedback is None:
            return fail(PlanInvalid([problem]))
        reply.problems.append(problem)  # never added: nothing that needs it can start
        return self._next_round()

    def _on_end(self, reply: Reply) -> Step[object, Any, Any]:
        if not reply.problems:
            self.open = False
            return self._next_round()
        invalid = PlanInvalid(reply.problems)
        if self.feedback is None or reply.index >= self.max_feedback:
            return fail(invalid)
        planner = self.feedback(invalid, reply.text)
        if not isinstance(planner, Step) and not callable(planner):
            raise TypeError(
                f"stream_plan(feedback=...) must return a planner step or a token function, "
                f"got {planner!r}"
            )
        answer = Reply(reply.index + 1, planner, self.done, self._diverged)
        self.replies.append(answer)
        name = f"reply {answer.index}"  # not a task id: ids have no spaces
        self.steps[name] = answer.reader()
        self.go.put(name)
        return self._next_round()

    def _settle(self, name: str, outcome: Any) -> Step[object, Any, Any]:
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

    def _next_round(self) -> Step[object, Any, Any]:
        self._dispatch()
        return self._loop()

    def _edit(self, event: Event, chosen: Any) -> Step[object, Any, Any]:
        if (
            chosen is None
            or isinstance(chosen, str | bytes | dict)
            or not isinstance(chosen, Iterable)
        ):
            shown = {"value": repr(chosen)[:80]}
            return fail(EditRejected(shown, "the editor must return a list of edits", event.task))
        parsed: list[Edit] = []
        for item in chosen:
            # An edit object reads as its JSON form would: "$a" is a reference there too.
            data = written(item) if isinstance(item, _EDIT_TYPES) else item
            try:
                parsed.append(edit_from_json(data))
            except PlanInvalid as invalid:
                shown = data if isinstance(data, dict) else {"value": repr(item)[:80]}
                reason = "; ".join(p.message for p in invalid.problems)
                return fail(EditRejected(shown, reason, event.task))
        if not parsed:
            return self._next_round()
        request = {"after": event.task, "edits": [edit_to_json(e) for e in parsed]}

        def apply(_: Any) -> Step[object, Any, Any]:
            for edit in parsed:
                rejected = self.graph.apply(edit, event.task)
                if rejected is not None:
                    return fail(rejected)
            return self._next_round()

        return effect(EDIT, request, handler=_accept).then(apply)

    def _finish(self) -> Step[object, Any, Any]:
        graph = self.graph
        self.go.put(None)
        for name, state in graph.status.items():
            if state == "pending":  # only tasks that need something that never ran
                graph.status[name] = "skipped"
        order = list(graph.tasks)
        failures = tuple(graph.errors[n] for n in order if graph.status[n] == "failed")
        skipped = tuple(n for n in order if graph.status[n] == "skipped")
        if self.tokens is not None and graph.output is None:
            graph.output = {name: Ref(name) for name in graph.live()}
        needed = graph.needed_by(graph.output)
        blocked = [n for n in needed if graph.status[n] in ("failed", "skipped")]
        if blocked or (self.editor is None and failures):
            return fail(PlanFailed(failures, skipped, dict(graph.results)))
        try:
            return pure(fill(graph.output, graph.results))
        except MissingField as exc:
            return fail(TaskFailed("output", "-", str(exc)))


def _build(
    plan: Plan,
    registry: Registry,
    editor: Editor | None,
    on_error: OnError,
    limit: int | None,
    retry: RetryPolicy | None,
    max_tasks: int,
    tokens: Tokens | Step[object, Any, Any] | None,
    parse: LineParser | None,
    feedback: Feedback | None = None,
    max_feedback: int = 0,
) -> Step[object, Any, Any]:
    def start() -> Step[object, Any, Any]:
        run = _Controller(
            plan,
            registry,
            editor,
            on_error,
            limit,
            retry,
            max_tasks,
            tokens,
            parse,
            feedback,
            max_feedback,
        )
        if tokens is None:
            return par(run.control(), run.spawner()).map(lambda parts: parts[0])
        return par(run.control(), run.spawner(), run.reader()).map(lambda parts: parts[0])

    return defer(start)


__all__ = [
    "EDIT",
    "NEXT",
    "STREAM",
    "Editor",
    "Event",
    "Feedback",
    "LineParser",
    "Tokens",
]
