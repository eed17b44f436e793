"""Rendering a plan as readable Python that builds the same workflow.

The generated module defines `build(tools, *, limit=None, on_error="fail_fast", retry=None)`, which makes
each task with `mce.plan.task` and the whole with `mce.plan.finish` - the
same calls, in the same order, as `compile` - so running the generated code
and running the compiled plan give the same outcome and the same journal.
The text passes `ruff format --check` and `mypy --strict`.

>>> code = to_python({"tasks": [{"id": "a", "tool": "search", "args": {"q": "mce"}}], "output": "$a"})
>>> print(code[code.index("    task_a"):code.index("    return")].rstrip())
    task_a = task(
        "a",
        tools["search"],
        {
            "q": "mce",
        },
        {},
        on_error=on_error,
        retry=retry,
    )
"""

from __future__ import annotations

import math
from typing import Any

from mce.plan.ir import Plan, Ref, Template
from mce.plan.run import output_needs
from mce.plan.validate import PlanInvalid, topological_order

INDENT = "    "


def _string(text: str) -> str:
    r"""A Python string literal for any text, ASCII only, quoted as ruff format leaves it.

    Non-ASCII characters are escaped by code point (so text outside the BMP
    and lone surrogates survive exactly); the quote is double unless that
    needs more escapes than single quotes would.

    >>> print(_string('say "hi" \U0001f600'), _string("it's"))
    'say "hi" \U0001f600' "it's"
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        elif ch in _SHORT:
            out.append(_SHORT[ch])
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return quote + "".join(out) + quote


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _number(value: int | float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return 'float("nan")'
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


def _ref(value: Ref) -> str:
    if not value.path:
        return f"Ref({_string(value.task)})"
    path = ", ".join(_string(p) for p in value.path)
    return f"Ref({_string(value.task)}, ({path},))"


def _literal(value: Any, depth: int) -> str:
    """A Python expression for a JSON value with `Ref`s, formatted as ruff would leave it."""
    pad = INDENT * (depth + 1)
    end = INDENT * depth
    if isinstance(value, Ref):
        return _ref(value)
    if isinstance(value, Template):
        items = "".join(f"{pad}{_literal(p, depth + 1)},\n" for p in value.parts)
        return f"template(\n{items}{end})"
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        items = "".join(f"{pad}{_literal(v, depth + 1)},\n" for v in value)
        return f"[\n{items}{end}]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(f"{pad}{_string(k)}: {_literal(v, depth + 1)},\n" for k, v in value.items())
        return f"{{\n{items}{end}}}"
    raise TypeError(f"cannot render {value!r}")


def _names(ids: list[str]) -> dict[str, str]:
    """A distinct Python variable for every task id (`a-b` and `a_b` must not collide).

    >>> _names(["a-b", "a_b", "a_b_2", "x"])
    {'a-b': 'task_a_b_3', 'a_b': 'task_a_b_4', 'a_b_2': 'task_a_b_2', 'x': 'task_x'}
    """
    base = {i: "task_" + i.replace("-", "_") for i in ids}
    count: dict[str, int] = {}
    for b in base.values():
        count[b] = count.get(b, 0) + 1
    taken = set(base.values())
    names: dict[str, str] = {}
    for i in ids:
        if count[base[i]] == 1:
            names[i] = base[i]
            continue
        n = 2
        while f"{base[i]}_{n}" in taken:
            n += 1
        names[i] = f"{base[i]}_{n}"
        taken.add(names[i])
    return names


def _needs(needed: list[str], names: dict[str, str]) -> str:
    """The `{"id": task_id, ...}` argument, one entry a line (inside `build`)."""
    if not needed:
        return "{}"
    entries = "".join(f"{INDENT * 3}{_string(n)}: {names[n]},\n" for n in needed)
    return "{\n" + entries + f"{INDENT * 2}}}"


def to_python(plan: Plan | dict[str, Any] | str) -> str:
    """A Python module that builds `plan`'s workflow with mce combinators.

    The plan's shape is checked (`PlanInvalid` otherwise); check its tools
    with `validate` before running the code.

    >>> "retry: RetryPolicy | None = None," in to_python({"tasks": [], "output": None})
    True
    """
    parsed = plan if isinstance(plan, Plan) else Plan.from_json(plan)
    by_id = {t.id: t for t in parsed.tasks}
    if len(by_id) != len(parsed.tasks):
        from mce.plan.validate import Problem

        raise PlanInvalid([Problem(None, "duplicate task ids")])
    order = topological_order(by_id)
    names = _names(order)
    lines = [
        '"""Generated by mce.plan.to_python: builds the plan\'s workflow."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "from mce import RetryPolicy, Step",
        "from mce.plan import PlanFailed, Ref, TaskFailed, finish, task, template",
        "from mce.plan.run import OnError",
        "from mce.tools import Registry",
        "",
        "",
        "def build(",
        "    tools: Registry,",
        "    *,",
        "    limit: int | None = None,",
        '    on_error: OnError = "fail_fast",',
        "    retry: RetryPolicy | None = None,",
        ") -> Step[Any, TaskFailed | PlanFailed, Any]:",
    ]
    body = INDENT
    for name in order:
        t = by_id[name]
        needs_text = _needs(t.needs(), names)
        lines.append(f"{body}{names[name]} = task(")
        lines.append(f"{body}{INDENT}{_string(name)},")
        lines.append(f"{body}{INDENT}tools[{_string(t.tool)}],")
        lines.append(f"{body}{INDENT}{_literal(t.args, 2)},")
        lines.append(f"{body}{INDENT}{needs_text},")
        lines.append(f"{body}{INDENT}on_error=on_error,")
        lines.append(f"{body}{INDENT}retry=retry,")
        lines.append(f"{body})")
    tasks_list = (
        "[\n" + "".join(f"{body}{INDENT * 2}{names[n]},\n" for n in order) + f"{body}{INDENT}]"
        if order
        else "[]"
    )
    needs_text = _needs(output_needs(parsed), names)
    lines.append(f"{body}return finish(")
    lines.append(f"{body}{INDENT}{tasks_list},")
    lines.append(f"{body}{INDENT}{_literal(parsed.output, 2)},")
    lines.append(f"{body}{INDENT}{needs_text},")
    lines.append(f"{body}{INDENT}limit=limit,")
    lines.append(f"{body}{INDENT}on_error=on_error,")
    lines.append(f"{body})")
    return "\n".join(lines) + "\n"


__all__ = [
    "to_python",
]
