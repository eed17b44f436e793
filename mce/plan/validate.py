"""Validation of untrusted plans: every problem at once, each naming its task.

A plan may come from a model, so nothing about it is trusted. `validate`
checks its shape, that every tool exists in the registry, that arguments
match the tool's schema (a whole-value reference is checked against the
referenced tool's return type when that is known), that ids are unique and
references resolve, that there is no cycle (naming it), and the size limits.
Nothing runs and no code is evaluated while validating.

>>> from mce.tools import tool
>>> @tool
... def search(q: str) -> list[str]:
...     return []
>>> for p in validate({"tasks": [{"id": "a", "tool": "serch", "args": {}},
...                              {"id": "b", "tool": "search", "args": {"q": "$c"}}], "output": "$b"}, [search]):
...     print(p)
task 'a': unknown tool 'serch' (available: ['search'])
task 'b': argument 'q' refers to unknown task 'c'
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any, final

from attrs import frozen

from mce.plan.ir import ID, Plan, Ref, RefSyntaxError, Task, parse_refs, parse_string, refs_in
from mce.schema import SchemaError
from mce.tools import Registry, Tool

MAX_TASKS = 200
MAX_FAN_OUT = 50
MAX_DEPTH = 50


@final
@frozen
class Problem:
    """One thing wrong with a plan; `task` is None for problems of the whole plan."""

    task: str | None
    message: str

    def __str__(self) -> str:
        return f"task {self.task!r}: {self.message}" if self.task is not None else self.message


class PlanInvalid(Exception):
    """A plan failed validation; `problems` lists every problem found.

    >>> str(PlanInvalid([Problem("a", "unknown tool 'x'"), Problem(None, "no output")]))
    "the plan is invalid (2 problems):\\n  - task 'a': unknown tool 'x'\\n  - no output"
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"the plan is invalid ({n} problem{'s' if n != 1 else ''}):\n{lines}")


MAX_NESTING = 32


def _json_problem(value: Any) -> str | None:
    """Why `value` is not plain, journalable JSON within `MAX_NESTING` levels (None if it is).

    Iterative, so hostile nesting costs no Python stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"it nests deeper than {MAX_NESTING} levels"
        if isinstance(item, str):
            if not _encodable(item):
                return f"the text {item[:40]!r} is not valid Unicode (a lone surrogate)"
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    return f"the key {k!r} is not a string"
                if not _encodable(k):
                    return f"the key {k[:40]!r} is not valid Unicode (a lone surrogate)"
                stack.append((v, depth + 1))
        elif not (item is None or isinstance(item, bool | int | float)):
            return f"{type(item).__name__} is not a JSON value"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _syntax_problem(value: Any) -> str | None:
    """The first malformed `$` in the strings of a JSON value (None if there is none)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                parse_string(item)
            except RefSyntaxError as exc:
                return str(exc)
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
    return None


def structural_problems(data: Any) -> list[Problem]:
    """Problems with the JSON shape of a plan (before its meaning is looked at)."""
    if not isinstance(data, dict):
        return [Problem(None, f"a plan must be a JSON object, got {type(data).__name__}")]
    problems = []
    extra = sorted(set(data) - {"tasks", "output"})
    if extra:
        problems.append(
            Problem(None, f"unknown plan keys {extra} (a plan has 'tasks' and 'output')")
        )
    if "output" not in data:
        problems.append(Problem(None, "the plan has no 'output'"))
    elif (why := _json_problem(data["output"])) is not None:
        problems.append(Problem(None, f"the plan's 'output' is not plain JSON: {why}"))
    elif (why := _syntax_problem(data["output"])) is not None:
        problems.append(Problem(None, f"the plan's 'output': {why}"))
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        problems.append(Problem(None, "'tasks' must be a list of task objects"))
        return problems
    for i, t in enumerate(tasks):
        name = t.get("id") if isinstance(t, dict) and isinstance(t.get("id"), str) else f"#{i}"
        if not isinstance(t, dict):
            problems.append(Problem(name, "a task must be a JSON object"))
            continue
        extra = sorted(set(t) - {"id", "tool", "args", "deps"})
        if extra:
            problems.append(Problem(name, f"unknown task keys {extra}"))
        if not isinstance(t.get("id"), str) or not ID.fullmatch(t["id"]):
            problems.append(
                Problem(
                    name,
                    "'id' must be 1-64 letters, digits, _ or - (no - at either end), "
                    f"got {t.get('id')!r}",
                )
            )
        if not isinstance(t.get("tool"), str) or not t["tool"]:
            problems.append(Problem(name, f"'tool' must be a tool name (got {t.get('tool')!r})"))
        if "args" in t:
            if not isinstance(t["args"], dict):
                problems.append(Problem(name, "'args' must be a JSON object"))
            elif (why := _json_problem(t["args"])) is not None:
                problems.append(Problem(name, f"'args' must be plain JSON: {why}"))
            else:
                for arg, value in t["args"].items():
                    if (why := _syntax_problem(value)) is not None:
                        problems.append(Problem(name, f"argument {arg!r}: {why}"))
        deps = t.get("deps", [])
        if not isinstance(deps, list) or not all(
            isinstance(d, str) and ID.fullmatch(d) for d in deps
        ):
            problems.append(Problem(name, "'deps' must be a list of task ids"))
    return problems


def _cycle(tasks: dict[str, Task]) -> list[str] | None:
    """A cycle among the tasks' needs, as a path that returns to its start (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in tasks:
        if root in state:
            continue
        path: list[str] = [root]
        pending: list[list[str]] = [[n for n in reversed(tasks[root].needs()) if n in tasks]]
        state[root] = 1
        while path:
            if not pending[-1]:
                state[path.pop()] = 2
                pending.pop()
                continue
            nxt = pending[-1].pop()
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append([n for n in reversed(tasks[nxt].needs()) if n in tasks])
    return None


def _depth(tasks: dict[str, Task]) -> int:
    memo: dict[str, int] = {}
    for name in topological_order(tasks):
        memo[name] = 1 + max((memo[d] for d in tasks[name].needs() if d in memo), default=0)
    return max(memo.values(), default=0)


def topological_order(tasks: dict[str, Task]) -> list[str]:
    """Task ids, each after everything it needs; ties keep the plan's order (acyclic plans).

    Iterative (a depth-first post-order), so a long chain costs no Python stack.

    >>> from mce.plan.ir import Ref
    >>> topological_order({"b": Task("b", "t", {"x": Ref("a")}), "a": Task("a", "t")})
    ['a', 'b']
    """
    order: list[str] = []
    done: set[str] = set()
    for root in tasks:
        if root in done:
            continue
        done.add(root)
        path = [root]
        pending = [[n for n in reversed(tasks[root].needs()) if n in tasks]]
        while path:
            if not pending[-1]:
                order.append(path.pop())
                pending.pop()
                continue
            nxt = pending[-1].pop()
            if nxt not in done:
                done.add(nxt)
                path.append(nxt)
                pending.append([n for n in reversed(tasks[nxt].needs()) if n in tasks])
    return order


def _return_type(tool: Tool) -> Any:
    try:
        return typing.get_type_hints(tool.fn).get("return", Any)
    except Exception:
        return Any


_SIMPLE = (str, int, float, bool)


def _argument_problems(
    task: Task, tool: Tool, registry: Registry, tasks: dict[str, Task]
) -> list[Problem]:
    problems = []
    params = {name: (tp, required) for name, tp, required in tool.params}
    for name in task.args:
        if name not in params:
            problems.append(
                Problem(
                    task.id,
                    f"tool {tool.name!r} has no argument {name!r} (it takes {sorted(params)})",
                )
            )
    for name, (tp, required) in params.items():
        if name not in task.args:
            if required:
                problems.append(
                    Problem(task.id, f"missing required argument {name!r} for tool {tool.name!r}")
                )
            continue
        value = task.args[name]
        if isinstance(value, Ref):
            source = tasks.get(value.task)
            if source is None or value.path or source.tool not in registry:
                continue
            produced = _return_type(registry[source.tool])
            if (
                produced in _SIMPLE
                and tp in _SIMPLE
                and produced is not tp
                and not (produced is int and tp is float)
            ):
                problems.append(
                    Problem(
                        task.id,
                        f"argument {name!r} expects {tp.__name__} but task {value.task!r} "
                        f"returns {produced.__name__}",
                    )
                )
            continue
        if any(True for _ in refs_in(value)):
            continue  # known only when the referenced tasks have run
        try:
            tool.validate_argument(name, value)
        except SchemaError as exc:
            problems.append(Problem(task.id, f"argument {exc}"))
    return problems


def validate(
    plan: Plan | dict[str, Any] | str,
    tools: Registry | Iterable[Tool],
    *,
    max_tasks: int = MAX_TASKS,
    max_fan_out: int = MAX_FAN_OUT,
    max_depth: int = MAX_DEPTH,
) -> list[Problem]:
    """Every problem with `plan` against `tools` (empty when it is valid).

    >>> validate({"tasks": [], "output": None}, [])
    []
    """
    registry = tools if isinstance(tools, Registry) else Registry(tools)
    if not isinstance(plan, Plan):
        try:
            plan = Plan.from_json(plan)
        except PlanInvalid as invalid:
            return invalid.problems
    problems: list[Problem] = []
    tasks: dict[str, Task] = {}
    for t in plan.tasks:
        if t.id in tasks:
            problems.append(Problem(t.id, "duplicate task id"))
        else:
            tasks[t.id] = t
    if len(plan.tasks) > max_tasks:
        problems.append(
            Problem(None, f"the plan has {len(plan.tasks)} tasks; the limit is {max_tasks}")
        )
    for t in tasks.values():
        if t.tool not in registry:
            problems.append(Problem(t.id, f"unknown tool {t.tool!r} (available: {registry.names})"))
        for name, value in t.args.items():
            for r in refs_in(value):
                if r.task not in tasks:
                    problems.append(
                        Problem(t.id, f"argument {name!r} refers to unknown task {r.task!r}")
                    )
        for d in t.deps:
            if d not in tasks:
                problems.append(Problem(t.id, f"depends on unknown task {d!r}"))
        if t.id in t.needs():
            problems.append(Problem(t.id, "depends on itself"))
        elif t.tool in registry:
            problems.extend(_argument_problems(t, registry[t.tool], registry, tasks))
    for r in refs_in(plan.output):
        if r.task not in tasks:
            problems.append(Problem(None, f"the output refers to unknown task {r.task!r}"))
    cycle = _cycle(tasks)
    if cycle is not None and len(cycle) > 2:
        problems.append(Problem(cycle[0], "cycle: " + " -> ".join(cycle)))
    fan_out: dict[str, int] = {}
    for t in tasks.values():
        for d in t.needs():
            fan_out[d] = fan_out.get(d, 0) + 1
    for name, count in fan_out.items():
        if count > max_fan_out:
            problems.append(
                Problem(name, f"{count} tasks depend on it; the limit is {max_fan_out}")
            )
    if cycle is None:
        depth = _depth(tasks)
        if depth > max_depth:
            problems.append(
                Problem(None, f"the longest chain has {depth} tasks; the limit is {max_depth}")
            )
    return problems


__all__ = ["PlanInvalid", "Problem", "parse_refs", "topological_order", "validate"]
