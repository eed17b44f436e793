"""The plan IR: tasks that call tools, with arguments that reference other tasks' outputs.

A plan is JSON:

    {"tasks": [{"id": "a", "tool": "search", "args": {"q": "x"}},
               {"id": "b", "tool": "summarize", "args": {"text": "$a"}, "deps": ["c"]}, ...],
     "output": "$b"}

A string argument `"$id"` is the output of task `id`; `"$id.field"` a field
of it (a key of a dict, an attribute of an object, an index of a list).
`"$$..."` is the literal string `"$..."`. `deps` adds ordering-only edges.
`output` is a reference, or any JSON value containing references.

>>> plan = Plan.from_json({"tasks": [{"id": "a", "tool": "t", "args": {"x": "$b.n"}}], "output": "$a"})
>>> plan.tasks[0].args
{'x': Ref(task='b', path=('n',))}
>>> plan.to_json()["tasks"][0]["args"]
{'x': '$b.n'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, final

from attrs import field, frozen

ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_-]{0,63})((?:\.[A-Za-z0-9_-]+)*)$")


@final
@frozen
class Ref:
    """A reference to a task's output (or a field path inside it).

    >>> Ref("a", ("items", "0")).text
    '$a.items.0'
    """

    task: str
    path: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "$" + ".".join((self.task, *self.path))


def parse_refs(value: Any) -> Any:
    """JSON with `"$..."` strings turned into `Ref`s (and `"$$"` unescaped).

    >>> parse_refs(["$a", "$$5", "plain"])
    [Ref(task='a', path=()), '$5', 'plain']
    """
    if isinstance(value, str):
        if value.startswith("$$"):
            return value[1:]
        match = _REF.match(value)
        if match:
            path = tuple(p for p in match.group(2).split(".") if p)
            return Ref(match.group(1), path)
        return value
    if isinstance(value, list):
        return [parse_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: parse_refs(v) for k, v in value.items()}
    return value


def unparse_refs(value: Any) -> Any:
    """Invert `parse_refs`.

    >>> unparse_refs({"t": Ref("a", ("x",)), "s": "$1"})
    {'t': '$a.x', 's': '$$1'}
    """
    if isinstance(value, Ref):
        return value.text
    if isinstance(value, str):
        return "$" + value if value.startswith("$") else value
    if isinstance(value, list | tuple):
        return [unparse_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: unparse_refs(v) for k, v in value.items()}
    return value


def refs_in(value: Any) -> Iterator[Ref]:
    """Every reference inside a value.

    >>> [r.task for r in refs_in(parse_refs({"a": ["$x", {"b": "$y.z"}]}))]
    ['x', 'y']
    """
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from refs_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from refs_in(v)


@final
@frozen
class Task:
    """One task: call `tool` with `args` (which may hold `Ref`s), after `deps`."""

    id: str
    tool: str
    args: dict[str, Any] = field(factory=dict)
    deps: tuple[str, ...] = ()

    def needs(self) -> list[str]:
        """Every task this one waits for: referenced or listed in `deps`, in first-seen order."""
        seen: dict[str, None] = {}
        for r in refs_in(self.args):
            seen.setdefault(r.task)
        for d in self.deps:
            seen.setdefault(d)
        return list(seen)


@final
@frozen
class Plan:
    """A validated-shape plan (its meaning is checked by `mce.plan.validate`)."""

    tasks: tuple[Task, ...]
    output: Any = None

    @staticmethod
    def from_json(data: str | bytes | dict[str, Any]) -> Plan:
        """Parse a plan; `PlanInvalid` lists every structural problem.

        >>> Plan.from_json('{"tasks": [], "output": null}')
        Plan(tasks=(), output=None)
        """
        from mce.plan.validate import PlanInvalid, structural_problems

        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                from mce.plan.validate import Problem

                raise PlanInvalid([Problem(None, f"the plan is not JSON: {exc}")]) from None
        problems = structural_problems(data)
        if problems:
            raise PlanInvalid(problems)
        assert isinstance(data, dict)
        tasks = tuple(
            Task(t["id"], t["tool"], parse_refs(t.get("args", {})), tuple(t.get("deps", ())))
            for t in data["tasks"]
        )
        return Plan(tasks, parse_refs(data.get("output")))

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON data (`from_json` round-trips it)."""
        tasks = []
        for t in self.tasks:
            item: dict[str, Any] = {"id": t.id, "tool": t.tool, "args": unparse_refs(t.args)}
            if t.deps:
                item["deps"] = list(t.deps)
            tasks.append(item)
        return {"tasks": tasks, "output": unparse_refs(self.output)}

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)


PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mce plan",
    "description": 'Tasks calling tools; a string "$id" or "$id.field" refers to a task\'s output, "$$" escapes a literal dollar.',
    "type": "object",
    "required": ["tasks", "output"],
    "additionalProperties": False,
    "properties": {
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "tool"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": ID.pattern},
                    "tool": {"type": "string"},
                    "args": {"type": "object"},
                    "deps": {"type": "array", "items": {"type": "string", "pattern": ID.pattern}},
                },
            },
        },
        "output": {},
    },
}
"""The JSON Schema of a plan (published as docs/plan.schema.json)."""
