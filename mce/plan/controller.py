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

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Never, final

import anyio
from attrs import frozen

from mce.effects import effect
from mce.journal import ReplayDivergence
from mce.llm.stream import listen
from mce.llm.types import AssistantMessage
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
STREAM = "plan.stream"
"""Effect kind: the planner's whole streamed reply."""

Tokens = Callable[[], AsyncIterator[str]]
"""The planner's reply as it streams: a function giving an async iterator of text pieces."""
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
        tokens: Tokens | Step[object, Any, Any] | None = None,
        parse: LineParser | None = None,
    ) -> None:
        self.graph = Graph.start(plan, registry, max_tasks)
        self.tokens = tokens
        self.parse = parse
        self.open = tokens is not None  # more tasks may still arrive from the stream
        self.joined: Join | None = None
        self.first: dict[str, int] = {}  # each task's line
        self.lines = 0  # stream lines handled
        self.pushed = 0  # stream lines put in the inbox
        self.partial: list[str] = []  # the streamed line not yet complete
        # Each line's text as the controller handled it (live or from the
        # journal) and as the reader streamed it: on a resume after a crash
        # mid-stream the planner is asked again, and a reply that rewrites a
        # recorded line must not be mixed into the recorded plan.
        self.handled: dict[int, str] = {}
        self.streamed: dict[int, str] = {}
        self.mismatch: ReplayDivergence | None = None
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
        self.done = _Mailbox()  # what happened, in order: a task finished, a line arrived, the end
        self.go = _Mailbox()  # ids of tasks to start, then None

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
            elif item[0] == "line":
                if item[1] > self.lines:
                    return {"line": item[1], "text": item[2]}
            elif self.open:
                return {"end": item[1]}

    def _loop(self) -> Step[object, Any, Any]:
        if not self.running and not self.open:
            return self._finish()
        self.events += 1
        return effect(NEXT, {"event": self.events}, handler=self._next).then(self._on_event)

    def _on_event(self, event: Any) -> Step[object, Any, Any]:
        if self.mismatch is not None:
            raise self.mismatch
        if isinstance(event, dict) and "line" in event and self.open:
            return self._on_line(event["line"], event.get("text"))
        if isinstance(event, dict) and "end" in event and self.open:
            self.open = False
            return self._next_round()
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
        """Read the planner's reply, handing on each line as it arrives.

        A `Step` planner (`chat(..., stream=True)`) is listened to while its
        handler streams; a token function is read as one journaled effect.
        """
        tokens = self.tokens
        assert tokens is not None

        def finished(text: str) -> Step[object, Never, None]:
            def tell() -> None:
                # A served reply (replay, resume) hands on its lines only now; the
                # reply's value is the truth the streamed lines must agree with.
                lines = text.split("\n")
                for number in range(1, self.pushed + 1):
                    final = lines[number - 1] if number <= len(lines) else None
                    if self.mismatch is None and self.streamed[number] != final:
                        self.mismatch = ReplayDivergence(
                            f"plan line {number}",
                            STREAM,
                            f"the planner's reply has a different line {number} than it streamed",
                            self.streamed[number],
                            final,
                        )
                for piece in lines[self.pushed :]:
                    self._push(piece)
                self.done.put(("end", self.pushed))

            return lift(tell)

        if isinstance(tokens, Step):
            planner: Step[object, Any, Any] = tokens

            async def start() -> None:
                listen(self._feed)  # this branch's own task: its model call reports here

            def heard(reply: Any) -> Step[object, Never, None]:
                listen(None)
                return finished(_reply_text(reply))

            return lift(start).then(lambda _: planner).then(heard)

        async def read(request: Any) -> str:
            text: list[str] = []
            async for chunk in tokens():
                text.append(chunk)
                self._feed(chunk)
            return "".join(text)

        return effect(STREAM, {"stream": "planner"}, handler=read).then(
            lambda text: finished(str(text))
        )

    def _feed(self, chunk: str | None) -> None:
        """A piece of the reply as it streams (None: the reply starts over)."""
        if chunk is None:
            # A retried request: lines not yet handled are dropped, and the new
            # attempt's lines are numbered from 1 again (handled ones must match).
            self.done.items = deque(i for i in self.done.items if i[0] != "line")
            self.partial = []
            self.pushed = 0
            return
        *complete, rest = chunk.split("\n")
        for piece in complete:
            self._push("".join(self.partial) + piece)
            self.partial = []
        self.partial.append(rest)

    def _push(self, line: str) -> None:
        self.pushed += 1
        self.streamed[self.pushed] = line
        self._compare(self.pushed)
        self.done.put(("line", self.pushed, line))

    def _compare(self, number: int) -> None:
        """Note a line the journal and the planner's (resumed) reply disagree on."""
        recorded, streamed = self.handled.get(number), self.streamed.get(number)
        if self.mismatch is None and None not in (recorded, streamed) and recorded != streamed:
            self.mismatch = ReplayDivergence(
                f"plan line {number}",
                STREAM,
                f"the planner's reply has a different line {number} than the journal",
                recorded,
                streamed,
            )

    def _on_line(self, number: Any, text: Any) -> Step[object, Any, Any]:
        if number != self.lines + 1 or not isinstance(text, str):
            raise RuntimeError(
                f"{NEXT} #{self.events} gives line {number!r} after line {self.lines}; "
                "the journal does not belong to this plan"
            )
        self.lines = number
        self.handled[number] = text
        self._compare(number)
        if self.mismatch is not None:
            raise self.mismatch
        assert self.parse is not None
        item = self.parse(text, number, self.registry)
        if item is not None and self.joined is not None:
            return fail(PlanInvalid([after_join(number, self.joined)]))
        if isinstance(item, Problem):
            return fail(PlanInvalid([item]))
        if isinstance(item, Join):
            self.joined = item
        elif isinstance(item, Task):
            # The same rules as `parse_llmcompiler` reading the whole text.
            problem = renumbered(item, number, self.first) or unknown_reference(
                item, number, self.graph.live()
            )
            if problem is not None:
                return fail(PlanInvalid([problem]))
            self.first[item.id] = number
            rejected = self.graph.apply(Add(item), None)
            if rejected is not None:
                return fail(PlanInvalid([Problem(item.id, f"line {number}: {rejected.reason}")]))
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


def _reply_text(reply: Any) -> str:
    """The text of a planner step's value: a model's reply or a string."""
    if isinstance(reply, AssistantMessage):
        return reply.content or ""
    if isinstance(reply, str):
        return reply
    raise TypeError(
        f"stream_plan(): the planner step must give an AssistantMessage or a str, got {reply!r}"
    )


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
) -> Step[object, Any, Any]:
    def start() -> Step[object, Any, Any]:
        run = _Controller(plan, registry, editor, on_error, limit, retry, max_tasks, tokens, parse)
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
    "LineParser",
    "Tokens",
]
