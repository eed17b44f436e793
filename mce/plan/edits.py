"""Edits to a running plan, and the invariants every edit must keep.

A running graph (`mce.plan.live`) accepts these commands while it runs:

* `Add(task)` - a new task; it starts when what it needs has finished.
* `Remove(id)` - drop a pending task that nothing refers to any more.
* `Update(id, args=..., deps=...)` - new arguments and/or ordering edges for a pending task.
* `Rewire(id, old, new)` - a pending task uses `new` wherever it used `old`.
* `SetOutput(output)` - a new output for the plan.

Invariants, checked on every edit (`EditRejected` names the edit and why):
a task runs at most once (ids are never reused, even after a removal);
only pending tasks change (a task that started, finished or failed is
history); every reference resolves; there is no cycle; arguments match the
tool's schema; the size limit holds.

Edits have a JSON form (`edit_from_json` / `edit_to_json`), so a model can
write them and the journal can record them.

>>> graph = Graph.start(Plan.from_json({"tasks": [{"id": "a", "tool": "t"}], "output": "$a"}))
>>> graph.status["a"] = "running"
>>> graph.apply(Update("a", deps=("b",)), None)
EditRejected(edit={'op': 'update', 'task': 'a', 'deps': ['b']}, reason="task 'a' is running; only pending tasks change", after=None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, final

from attrs import evolve, frozen

from mce.plan.ir import ID, Plan, Ref, Task, Template, parse_refs, refs_in, unparse_refs
from mce.plan.validate import (
    MAX_TASKS,
    PlanInvalid,
    Problem,
    _argument_problems,
    _cycle,
    _json_problem,
    _syntax_problem,
)
from mce.tools import Registry

Status = Literal["pending", "running", "done", "failed", "skipped", "removed"]


@final
@frozen
class Add:
    """Add a task (`Add(Task("c", "search", {"q": Ref("a")}))`)."""

    task: Task


@final
@frozen
class Remove:
    """Remove a pending task that nothing refers to."""

    task: str


@final
@frozen
class Update:
    """Replace a pending task's `args` and/or `deps` (None keeps them)."""

    task: str
    args: dict[str, Any] | None = None
    deps: tuple[str, ...] | None = None


@final
@frozen
class Rewire:
    """Make a pending task use task `new` wherever it used task `old` (arguments and deps)."""

    task: str
    old: str
    new: str


@final
@frozen
class SetOutput:
    """Give the plan a new output (a JSON value with references)."""

    output: Any


Edit = Add | Remove | Update | Rewire | SetOutput


def edit_to_json(edit: Edit) -> dict[str, Any]:
    """The JSON form of an edit (what `edit_from_json` reads, and the journal records).

    >>> edit_to_json(Rewire("health", "deploy", "redeploy"))
    {'op': 'rewire', 'task': 'health', 'old': 'deploy', 'new': 'redeploy'}
    """
    return _as_json(edit, unparse_refs, list)


def _as_json(
    edit: Edit, values: Callable[[Any], Any], deps: Callable[[Any], Any]
) -> dict[str, Any]:
    """An edit's JSON form, its values and dependency lists written by `values` and `deps`."""
    if isinstance(edit, Add):
        t = edit.task
        item: dict[str, Any] = {"id": t.id, "tool": t.tool, "args": values(t.args)}
        if t.deps:
            item["deps"] = deps(t.deps)
        return {"op": "add", "task": item}
    if isinstance(edit, Remove):
        return {"op": "remove", "task": edit.task}
    if isinstance(edit, Update):
        out: dict[str, Any] = {"op": "update", "task": edit.task}
        if edit.args is not None:
            out["args"] = values(edit.args)
        if edit.deps is not None:
            out["deps"] = deps(edit.deps)
        return out
    if isinstance(edit, Rewire):
        return {"op": "rewire", "task": edit.task, "old": edit.old, "new": edit.new}
    return {"op": "output", "output": values(edit.output)}


def _as_text(value: Any) -> Any:
    """A Python value as plan JSON: strings as written (references parsed later), `Ref` and
    `Template` as their text, mappings as dicts, tuples as lists."""
    if isinstance(value, Ref | Template):
        return value.text
    if isinstance(value, Mapping):
        return {k: _as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_text(v) for v in value]
    return value


def written(edit: Edit) -> dict[str, Any]:
    """An edit built in Python, as the JSON a model would write for it.

    Its strings are plan text, as in an edit's JSON form: `"$a"` is a
    reference to task `a` and `"$$"` a dollar. `edit_from_json(written(e))`
    is how a running graph reads an edit object, so both forms mean the same.

    >>> written(Update("c", args={"q": "about $a", "n": Ref("b")}))
    {'op': 'update', 'task': 'c', 'args': {'q': 'about $a', 'n': '$b'}}
    >>> edit_from_json(written(Add(Task("c", "t", {"q": "$a"})))).task.args
    {'q': Ref(task='a', path=())}
    """
    return _as_json(edit, _as_text, _as_text)


def edit_from_json(data: Any) -> Edit:
    """Read one edit's JSON form; `PlanInvalid` says what is wrong with it.

    >>> edit_from_json({"op": "add", "task": {"id": "c", "tool": "t", "args": {"x": "$a"}}})
    Add(task=Task(id='c', tool='t', args={'x': Ref(task='a', path=())}, deps=()))
    >>> edit_from_json({"op": "drop"})
    Traceback (most recent call last):
    ...
    mce.plan.validate.PlanInvalid: the plan is invalid (1 problem):
      - edit {'op': 'drop'}: 'op' must be one of add, remove, update, rewire, output
    """

    def bad(message: str) -> PlanInvalid:
        shown = repr(data) if len(repr(data)) <= 80 else repr(data)[:77] + "..."
        return PlanInvalid([Problem(None, f"edit {shown}: {message}")])

    if not isinstance(data, dict):
        raise bad("an edit must be a JSON object")
    op = data.get("op")
    keys = {
        "add": {"op", "task"},
        "remove": {"op", "task"},
        "update": {"op", "task", "args", "deps"},
        "rewire": {"op", "task", "old", "new"},
        "output": {"op", "output"},
    }
    if op not in keys:
        raise bad("'op' must be one of add, remove, update, rewire, output")
    extra = sorted(set(data) - keys[op])
    if extra:
        raise bad(f"unknown keys {extra}")
    if op == "output":
        if "output" not in data:
            raise bad("missing 'output'")
        why = _json_problem(data["output"]) or _syntax_problem(data["output"])
        if why:
            raise bad(why)
        return SetOutput(parse_refs(data["output"]))
    if op == "add":
        shell = {"tasks": [data.get("task")], "output": None}
        from mce.plan.validate import structural_problems

        problems = structural_problems(shell)
        if problems:
            raise bad("; ".join(str(p) for p in problems))
        return Add(Plan.from_json(shell).tasks[0])
    name = data.get("task")
    if not isinstance(name, str) or not ID.fullmatch(name):
        raise bad(f"'task' must be a task id, got {name!r}")
    if op == "remove":
        return Remove(name)
    if op == "rewire":
        old, new = data.get("old"), data.get("new")
        if not (
            isinstance(old, str)
            and ID.fullmatch(old)
            and isinstance(new, str)
            and ID.fullmatch(new)
        ):
            raise bad("'old' and 'new' must be task ids")
        return Rewire(name, old, new)
    args = data.get("args")
    if args is not None:
        if not isinstance(args, dict):
            raise bad("'args' must be a JSON object")
        why = _json_problem(args) or _syntax_problem(args)
        if why:
            raise bad(why)
    deps = data.get("deps")
    if deps is not None and not (
        isinstance(deps, list) and all(isinstance(d, str) and ID.fullmatch(d) for d in deps)
    ):
        raise bad("'deps' must be a list of task ids")
    return Update(
        name,
        parse_refs(args) if args is not None else None,
        tuple(deps) if deps is not None else None,
    )


@final
@frozen
class EditRejected:
    """An edit broke an invariant: the edit (JSON form), why, and the event it answered.

    >>> print(EditRejected({"op": "remove", "task": "a"}, "task 'a' is done; only pending tasks change", "b"))
    edit {'op': 'remove', 'task': 'a'} (answering task 'b') rejected: task 'a' is done; only pending tasks change
    """

    edit: dict[str, Any]
    reason: str
    after: str | None = None

    def __str__(self) -> str:
        when = f" (answering task {self.after!r})" if self.after is not None else ""
        return f"edit {self.edit}{when} rejected: {self.reason}"


def _rewired(value: Any, old: str, new: str) -> Any:
    if isinstance(value, Ref):
        return Ref(new, value.path) if value.task == old else value
    if isinstance(value, Template):
        return Template(tuple(_rewired(p, old, new) for p in value.parts))
    if isinstance(value, list):
        return [_rewired(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _rewired(v, old, new) for k, v in value.items()}
    return value


def _frozen(value: Any) -> Any:
    """A read-only copy of plan JSON: dicts as read-only mappings, lists as tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


@final
@frozen
class GraphView:
    """What an editor sees: every task's definition and status, results, errors and the output.

    It is read-only - the mappings refuse writes, and a task's `args` (and
    the output) are read-only copies, lists as tuples - so the graph changes
    only through edits, under the invariants. Build an edit from it
    (`Update(id, args={**view.tasks[id].args, "n": 2})`) to change a task.
    (The results are the tools' own values, as the tasks that use them get them.)

    >>> view = Graph.start(Plan.from_json({"tasks": [{"id": "a", "tool": "t", "args": {"n": [1]}}],
    ...                                     "output": "$a"})).view()
    >>> view.tasks["a"].args["n"], view.status["a"]
    ((1,), 'pending')
    >>> view.tasks["a"].args["n"] = 2
    Traceback (most recent call last):
    ...
    TypeError: 'mappingproxy' object does not support item assignment
    """

    tasks: Mapping[str, Task]
    status: Mapping[str, Status]
    results: Mapping[str, Any]
    errors: Mapping[str, Any]
    output: Any


@final
class Graph:
    """The mutable state of a running plan: tasks, their status, results and errors.

    Only `apply` changes the set of tasks, and it keeps the invariants.
    """

    def __init__(
        self,
        tasks: dict[str, Task],
        output: Any,
        registry: Registry | None = None,
        max_tasks: int = MAX_TASKS,
    ) -> None:
        self.tasks = tasks
        self.output = output
        self.registry = registry
        self.max_tasks = max_tasks
        self.status: dict[str, Status] = dict.fromkeys(tasks, "pending")
        self.ever: set[str] = set(tasks)
        self.results: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        self._shown: dict[str, tuple[Task, Task]] = {}  # each task and its read-only copy

    @staticmethod
    def start(plan: Plan, registry: Registry | None = None, max_tasks: int = MAX_TASKS) -> Graph:
        """A graph of a (validated) plan's tasks, all pending."""
        return Graph({t.id: t for t in plan.tasks}, plan.output, registry, max_tasks)

    def live(self) -> dict[str, Task]:
        """The tasks that are not removed."""
        return {k: t for k, t in self.tasks.items() if self.status[k] != "removed"}

    def view(self) -> GraphView:
        """A read-only snapshot for an editor."""
        shown: dict[str, Task] = {}
        for name, task in self.live().items():
            cached = self._shown.get(name)
            if cached is None or cached[0] is not task:  # tasks change only by being replaced
                cached = self._shown[name] = (task, evolve(task, args=_frozen(task.args)))
            shown[name] = cached[1]
        return GraphView(
            MappingProxyType(shown),
            MappingProxyType(dict(self.status)),
            MappingProxyType(dict(self.results)),
            MappingProxyType(dict(self.errors)),
            _frozen(self.output),
        )

    def needed_by(self, value: Any) -> set[str]:
        """Every task `value` refers to, transitively."""
        seen: set[str] = set()
        todo = [r.task for r in refs_in(value)]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.tasks:
                continue
            seen.add(name)
            todo.extend(self.tasks[name].needs())
        return seen

    def _check_task(self, task: Task, tasks: dict[str, Task]) -> str | None:
        for name in task.needs():
            if name == task.id:
                return f"task {task.id!r} would depend on itself"
            if name not in tasks:
                return f"task {task.id!r} would refer to unknown task {name!r}"
        if self.registry is not None:
            if task.tool not in self.registry:
                return f"unknown tool {task.tool!r} (available: {self.registry.names})"
            problems = _argument_problems(task, self.registry[task.tool], self.registry, tasks)
            if problems:
                return "; ".join(p.message for p in problems)
        return None

    def _pending(self, name: str) -> str | None:
        state = self.status.get(name)
        if state is None or state == "removed":
            return f"there is no task {name!r}"
        if state != "pending":
            return f"task {name!r} is {state}; only pending tasks change"
        return None

    def apply(self, edit: Edit, after: str | None) -> EditRejected | None:
        """Apply `edit` if it keeps every invariant; otherwise change nothing and say why."""
        reason = self._reason(edit)
        if reason is not None:
            return EditRejected(edit_to_json(edit), reason, after)
        return None

    def _reason(self, edit: Edit) -> str | None:
        live = self.live()
        if isinstance(edit, SetOutput):
            missing = [r.task for r in refs_in(edit.output) if r.task not in live]
            if missing:
                return f"the output would refer to unknown task {missing[0]!r}"
            self.output = edit.output
            return None
        if isinstance(edit, Add):
            task = edit.task
            if not ID.fullmatch(task.id):
                return f"{task.id!r} is not a task id"
            if task.id in self.ever:
                return f"task id {task.id!r} is already used (a task runs at most once)"
            if len(live) >= self.max_tasks:
                return f"the plan would have more than {self.max_tasks} tasks"
            why = self._check_task(task, {**live, task.id: task})
            if why:
                return why
            self.tasks[task.id] = task
            self.status[task.id] = "pending"
            self.ever.add(task.id)
            return None
        why = self._pending(edit.task)
        if why:
            return why
        if isinstance(edit, Remove):
            users = [k for k, t in live.items() if k != edit.task and edit.task in t.needs()]
            if users:
                return f"task {users[0]!r} still needs task {edit.task!r}"
            if edit.task in {r.task for r in refs_in(self.output)}:
                return f"the output still refers to task {edit.task!r}"
            self.status[edit.task] = "removed"
            return None
        old = self.tasks[edit.task]
        if isinstance(edit, Rewire):
            if edit.old not in old.needs():
                return f"task {edit.task!r} does not use task {edit.old!r}"
            new = evolve(
                old,
                args=_rewired(old.args, edit.old, edit.new),
                deps=tuple(edit.new if d == edit.old else d for d in old.deps),
            )
        else:
            new = evolve(
                old,
                args=old.args if edit.args is None else edit.args,
                deps=old.deps if edit.deps is None else edit.deps,
            )
        tasks = {**live, edit.task: new}
        why = self._check_task(new, tasks)
        if why:
            return why
        cycle = _cycle(tasks)
        if cycle is not None:
            return "it would make a cycle: " + " -> ".join(cycle)
        self.tasks[edit.task] = new
        return None


__all__ = [
    "Add",
    "Edit",
    "EditRejected",
    "Graph",
    "GraphView",
    "Remove",
    "Rewire",
    "SetOutput",
    "Status",
    "Update",
    "edit_from_json",
    "edit_to_json",
    "written",
]
