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

from mce.plan.ir import ID, Plan, Ref, Task, parse_refs, refs_in
from mce.schema import SchemaError, convert
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


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


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
    elif not _is_json(data["output"]):
        problems.append(Problem(None, "the plan's 'output' is not plain JSON"))
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
        if not isinstance(t.get("id"), str) or not ID.match(t["id"]):
            problems.append(
                Problem(
                    name, f"'id' must be a name of letters, digits, _ or - (got {t.get('id')!r})"
                )
            )
        if not isinstance(t.get("tool"), str) or not t["tool"]:
            problems.append(Problem(name, f"'tool' must be a tool name (got {t.get('tool')!r})"))
        if "args" in t and (not isinstance(t["args"], dict) or not _is_json(t["args"])):
            problems.append(Problem(name, "'args' must be a JSON object"))
        deps = t.get("deps", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append(Problem(name, "'deps' must be a list of task ids"))
    return problems


def _cycle(tasks: dict[str, Task]) -> list[str] | None:
    """A cycle among the tasks' needs, as a path that returns to its start."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in tasks[node].needs():
            if nxt not in tasks:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for name in tasks:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def _depth(tasks: dict[str, Task]) -> int:
    memo: dict[str, int] = {}
    for name in topological_order(tasks):
        memo[name] = 1 + max((memo[d] for d in tasks[name].needs() if d in memo), default=0)
    return max(memo.values(), default=0)


def topological_order(tasks: dict[str, Task]) -> list[str]:
    """Task ids, each after everything it needs; ties keep the plan's order (acyclic plans)."""
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name not in tasks:
            return
        done.add(name)
        for d in tasks[name].needs():
            visit(d)
        order.append(name)

    for name in tasks:
        visit(name)
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
            convert(value, tp, name)
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
