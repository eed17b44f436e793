"""The plan IR: tasks that call tools, with arguments that reference other tasks' outputs.

A plan is JSON:

    {"tasks": [{"id": "a", "tool": "search", "args": {"q": "x"}},
               {"id": "b", "tool": "summarize", "args": {"text": "$a"}, "deps": ["c"]}, ...],
     "output": "$b"}

A string argument `"$id"` (or `"${id}"`) is the output of task `id`;
`"$id.field"` a field of it (a key of a dict, a field of a record, an index
of a list). A reference may also sit inside a longer string
(`"max($a, $b.total) / 2"`): it is a dependency like any other, and the
referenced value is interpolated (a string as itself, anything else as
JSON). `$$` is a literal dollar; any other `$` is an error, so nothing that
looks like a reference is silently literal. Task ids are letters, digits,
`_` and `-` (not at either end), so `"1"` is an id too; write `${id}` when a
reference is followed by a character that could continue it. `deps` adds
ordering-only edges. `output` is a reference, or any JSON value containing
references.

>>> plan = Plan.from_json({"tasks": [{"id": "a", "tool": "t", "args": {"x": "$b.n", "y": "$$ $1!"}}],
...                        "output": "$a"})
>>> plan.tasks[0].args
{'x': Ref(task='b', path=('n',)), 'y': Template(parts=('$ ', Ref(task='1', path=()), '!'))}
>>> plan.to_json()["tasks"][0]["args"]
{'x': '$b.n', 'y': '$$ $1!'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, final

from attrs import field, frozen

_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9_])?"
ID = re.compile(_NAME)
"""A task id (match it with `fullmatch`)."""
_PATH = rf"{_NAME}(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
_BARE = re.compile(_PATH)
_WHOLE = re.compile(rf"\$(?:(?P<bare>{_PATH})|\{{(?P<braced>{_PATH})\}})")
_CONTINUES = re.compile(r"[A-Za-z0-9_-]|\.[A-Za-z0-9_]")


class RefSyntaxError(ValueError):
    """A `$` in a plan string that is neither a reference nor an escaped dollar.

    >>> parse_refs("costs 5$")
    Traceback (most recent call last):
    ...
    mce.plan.ir.RefSyntaxError: '$' at offset 7 of 'costs 5$' is not a reference ($id, ${id}) or an escaped dollar ($$)
    """

    def __init__(self, text: str, offset: int) -> None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        super().__init__(
            f"'$' at offset {offset} of {shown!r} is not a reference ($id, ${{id}}) "
            "or an escaped dollar ($$)"
        )
        self.text = text
        self.offset = offset


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


@final
@frozen
class Template:
    """A string with references inside it: `parts` are literal text and `Ref`s.

    Running the plan interpolates each referenced value: a string as itself,
    anything else as JSON.

    >>> t = parse_refs("max($a, $b.total) / 2")
    >>> [r.task for r in refs_in(t)], t.text
    (['a', 'b'], 'max($a, $b.total) / 2')
    """

    parts: tuple[str | Ref, ...]

    @property
    def text(self) -> str:
        """The template as plan text (literal dollars doubled, braces where needed)."""
        out: list[str] = []
        for i, part in enumerate(self.parts):
            if isinstance(part, str):
                out.append(part.replace("$", "$$"))
                continue
            following = self.parts[i + 1] if i + 1 < len(self.parts) else ""
            if isinstance(following, str) and _CONTINUES.match(following):
                out.append("${" + part.text[1:] + "}")
            else:
                out.append(part.text)
        return "".join(out)


def template(*parts: str | Ref) -> Template:
    """A `Template` from its parts (what generated plan code calls).

    >>> template("n=", Ref("a")).text
    'n=$a'
    """
    return Template(tuple(parts))


def _ref(text: str) -> Ref:
    task, *path = text.split(".")
    return Ref(task, tuple(path))


def parse_string(text: str) -> str | Ref | Template:
    """One plan string: a whole reference, a template, or plain text (`$$` unescaped).

    `RefSyntaxError` names a `$` that is neither.

    >>> parse_string("$a.x"), parse_string("${7}"), parse_string("$$5")
    (Ref(task='a', path=('x',)), Ref(task='7', path=()), '$5')
    """
    if "$" not in text:
        return text
    whole = _WHOLE.fullmatch(text)
    if whole:
        return _ref(whole.group("bare") or whole.group("braced"))
    parts: list[str | Ref] = []
    literal: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:j])
        if text.startswith("$$", j):
            literal.append("$")
            i = j + 2
            continue
        if text.startswith("${", j):
            end = text.find("}", j)
            if end < 0 or not _BARE.fullmatch(text, j + 2, end):
                raise RefSyntaxError(text, j)
            ref, i = _ref(text[j + 2 : end]), end + 1
        else:
            bare = _BARE.match(text, j + 1)
            if bare is None:
                raise RefSyntaxError(text, j)
            ref, i = _ref(bare.group()), bare.end()
        parts.append("".join(literal))
        literal = []
        parts.append(ref)
    parts.append("".join(literal))
    kept = tuple(p for p in parts if p != "")
    if not any(isinstance(p, Ref) for p in kept):
        return "".join(p for p in kept if isinstance(p, str))
    return Template(kept)


def parse_refs(value: Any) -> Any:
    """JSON with its strings parsed by `parse_string` (references, templates, `$$`).

    >>> parse_refs(["$a", "$$5", "plain", "n=${b}!"])
    [Ref(task='a', path=()), '$5', 'plain', Template(parts=('n=', Ref(task='b', path=()), '!'))]
    """
    if isinstance(value, str):
        return parse_string(value)
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
    if isinstance(value, Ref | Template):
        return value.text
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list | tuple):
        return [unparse_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: unparse_refs(v) for k, v in value.items()}
    return value


def refs_in(value: Any) -> Iterator[Ref]:
    """Every reference inside a value (templates included).

    >>> [r.task for r in refs_in(parse_refs({"a": ["$x", {"b": "$y.z"}], "c": "$x and $w"}))]
    ['x', 'y', 'x', 'w']
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Ref):
            yield item
        elif isinstance(item, Template):
            stack.extend(p for p in reversed(item.parts) if isinstance(p, Ref))
        elif isinstance(item, list | tuple):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))


@final
@frozen
class Task:
    """One task: call `tool` with `args` (which may hold `Ref`s), after `deps`.

    >>> Task("c", "add", {"a": Ref("a"), "b": parse_refs("$b!")}, deps=("z",)).needs()
    ['a', 'b', 'z']
    """

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
            data = load_json(data)
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
    "description": (
        'Tasks calling tools; "$id", "${id}" or "$id.field" refers to a task\'s output, '
        'also inside a longer string; "$$" is a literal dollar.'
    ),
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
                    "id": {"type": "string", "pattern": f"^{ID.pattern}$"},
                    "tool": {"type": "string"},
                    "args": {"type": "object"},
                    "deps": {
                        "type": "array",
                        "items": {"type": "string", "pattern": f"^{ID.pattern}$"},
                    },
                },
            },
        },
        "output": {},
    },
}
"""The JSON Schema of a plan (published as docs/plan.schema.json)."""


def load_json(text: str | bytes) -> Any:
    """Parse untrusted JSON text; `PlanInvalid` if it is not JSON or nests too deeply.

    >>> load_json("[" * 100_000)
    Traceback (most recent call last):
    ...
    mce.plan.validate.PlanInvalid: the plan is invalid (1 problem):
      - the plan is not JSON: it nests too deeply
    """
    from mce.plan.validate import PlanInvalid, Problem

    try:
        return json.loads(text)
    except RecursionError:
        raise PlanInvalid([Problem(None, "the plan is not JSON: it nests too deeply")]) from None
    except ValueError as exc:
        raise PlanInvalid([Problem(None, f"the plan is not JSON: {exc}")]) from None


__all__ = [
    "ID",
    "PLAN_SCHEMA",
    "Plan",
    "Ref",
    "RefSyntaxError",
    "Task",
    "Template",
    "load_json",
    "parse_refs",
    "parse_string",
    "refs_in",
    "template",
    "unparse_refs",
]
