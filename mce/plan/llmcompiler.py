"""LLMCompiler's numbered plan format, read into a `Plan`.

LLMCompiler's planner writes one task a line, numbered, calling a tool with
Python-literal arguments; `$1` or `${1}` stands for task 1's output (bare or
inside a string), and a final `join()` ends the plan:

    Thought: I need both populations.
    1. search("Lisbon population")
    2. search("Porto population")
    3. math("$1 / $2", context=["$1", "$2"])
    4. join()<END_OF_PLAN>

Each numbered call becomes a task whose id is its number; positional
arguments are named by the tool's parameters (pass `tools`), keyword
arguments by themselves. A reference is to a task on an earlier line (a
streamed plan starts each task as its line arrives, so `stream_plan` holds
a plan to the same rule). The plan's output maps every task id to its
output - what LLMCompiler's joiner sees. `Label: text` lines (`Thought:`)
are commentary. Nothing is evaluated: arguments are read as literals only.
Every malformed line is reported, with its number, in one `PlanInvalid`.

>>> from mce.tools import tool
>>> @tool
... def search(query: str) -> str:
...     return query
>>> plan = parse_llmcompiler('1. search("mce")\\n2. search(query="about $1")\\n3. join()', [search])
>>> plan.to_json()
{'tasks': [{'id': '1', 'tool': 'search', 'args': {'query': 'mce'}}, {'id': '2', 'tool': 'search', 'args': {'query': 'about $1'}}], 'output': {'1': '$1', '2': '$2'}}
"""

from __future__ import annotations

import ast
import re
from collections.abc import Container, Iterable
from typing import Any, final

from attrs import frozen

from mce.plan.ir import Plan, RefSyntaxError, Task, parse_refs
from mce.plan.validate import MAX_NESTING, PlanInvalid, Problem
from mce.tools import Registry, Tool

MAX_LINE = 20_000
_CALL = re.compile(r"\s*(\d{1,9})\s*\.\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\((.*)\)\s*(?:#.*)?")
_NUMBERED = re.compile(r"\s*\d+\s*\.")
_LABEL = re.compile(r"\s*[A-Za-z][A-Za-z ]{0,30}:")
_END = "<END_OF_PLAN>"
_BARE_REF = re.compile(r"\$\{?(\d{1,9})\}?")


@final
@frozen
class Join:
    """The `join()` line: the plan is complete."""

    line: int


def _quote_bare_refs(text: str) -> str:
    """`$1` / `${1}` outside string literals become the strings `"$1"` (Python's own lexing)."""
    out: list[str] = []
    i = 0
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote is not None:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if text.startswith(quote, i):
                out.append(text[i + 1 : i + len(quote)])
                i += len(quote)
                quote = None
                continue
            i += 1
            continue
        if ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            out.append(quote)
            i += len(quote)
            continue
        if ch == "$":
            bare = _BARE_REF.match(text, i)
            if bare:
                out.append(f'"${bare.group(1)}"')
                i = bare.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _nesting(text: str) -> int:
    """How deeply brackets nest in `text`, outside its string literals."""
    depth = deepest = 0
    i = 0
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
            i += 1
            continue
        if ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(quote)
            continue
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
        i += 1
    return deepest


def _literal(node: ast.expr) -> Any:
    """A JSON value from a literal expression node; ValueError names anything else."""
    if isinstance(node, ast.Constant) and (
        node.value is None or isinstance(node.value, bool | int | float | str)
    ):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                raise ValueError("dictionary keys must be strings")
            result[k.value] = _literal(v)
        return result
    raise ValueError(f"{ast.unparse(node)!r} is not a literal value")


def parse_line(
    text: str, line: int, registry: Registry | None = None
) -> Task | Join | Problem | None:
    """One line of an LLMCompiler plan: a task, the final `join()`, a problem, or None (commentary).

    >>> parse_line("2. search($1, 3)", 2)
    Task(id='2', tool='search', args={'0': Ref(task='1', path=()), '1': 3}, deps=())
    >>> parse_line("2. search(", 7)
    Problem(task=None, message="line 7: expected '<n>. tool(arguments)', got '2. search('")
    """
    stripped = text.replace(_END, "").strip()
    if not stripped or (_LABEL.match(stripped) and not _NUMBERED.match(stripped)):
        return None
    shown = stripped if len(stripped) <= 80 else stripped[:77] + "..."

    def problem(message: str) -> Problem:
        return Problem(None, f"line {line}: {message}")

    if len(stripped) > MAX_LINE:
        return problem(f"the line is longer than {MAX_LINE} characters")
    call = _CALL.fullmatch(stripped)
    if call is None:
        return problem(f"expected '<n>. tool(arguments)', got {shown!r}")
    number, tool, raw = call.groups()
    if tool == "join":
        return Join(line)
    if _nesting(raw) > MAX_NESTING:
        return problem(f"the arguments nest deeper than {MAX_NESTING} levels")
    try:
        tree = ast.parse(f"f({_quote_bare_refs(raw)})", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        return problem(f"cannot read the arguments of {shown!r}: {reason}")
    node = tree.body
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f"):
        # `1. a(x), b(y)`, `1. a(x) + b(y)`, `1. a(x)(y)`: the last ")" closes something else.
        return problem(f"expected one call '<n>. tool(arguments)', got {shown!r}")
    names = [name for name, _, _ in registry[tool].params] if registry and tool in registry else []
    args: dict[str, Any] = {}
    try:
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                raise ValueError("*arguments are not allowed")
            args[names[i] if i < len(names) else str(i)] = _literal(arg)
        for kw in node.keywords:
            if kw.arg is None:
                raise ValueError("**arguments are not allowed")
            if kw.arg in args:
                raise ValueError(f"argument {kw.arg!r} is given twice")
            args[kw.arg] = _literal(kw.value)
        parsed = parse_refs(args)
    except (ValueError, RefSyntaxError) as exc:
        return problem(f"in {shown!r}: {exc}")
    return Task(str(int(number)), tool, parsed)


def unknown_reference(task: Task, line: int, earlier: Container[str]) -> Problem | None:
    """The problem with a line whose task refers to a task no earlier line defines, if any.

    A streamed plan starts each task as its line arrives, so a reference can
    only be to a task before it; `parse_llmcompiler` and `stream_plan` both
    hold a plan to that.

    >>> print(unknown_reference(Task("1", "search", parse_refs({"q": "$2"})), 1, set()))
    task '1': line 1: task 1 refers to task 2, which no earlier line defines
    """
    for name in task.needs():
        if name not in earlier:
            return Problem(
                task.id,
                f"line {line}: task {task.id} refers to task {name}, which no earlier line defines",
            )
    return None


def renumbered(task: Task, line: int, first: dict[str, int]) -> Problem | None:
    """The problem with a line that numbers a task again, if it does.

    >>> print(renumbered(Task("1", "search"), 3, {"1": 1}))
    line 3: task 1 is numbered again (first on line 1)
    """
    if task.id in first:
        return Problem(
            None, f"line {line}: task {task.id} is numbered again (first on line {first[task.id]})"
        )
    return None


def after_join(line: int, joined: Join) -> Problem:
    """The problem with a task (or anything but commentary) after `join()`.

    >>> print(after_join(5, Join(4)))
    line 5: text after join() on line 4
    """
    return Problem(None, f"line {line}: text after join() on line {joined.line}")


def parse_llmcompiler(text: str, tools: Registry | Iterable[Tool] | None = None) -> Plan:
    """Read LLMCompiler's numbered plan text into a `Plan`; `PlanInvalid` lists each bad line.

    Pass `tools` to name positional arguments by each tool's parameters
    (without it they are named `"0"`, `"1"`, ...). Validate the plan against
    the tools (`validate`, or `compile` does it) before running it.

    >>> parse_llmcompiler("1. search('x')\\nwhat now?\\n1. search('y')")
    Traceback (most recent call last):
    ...
    mce.plan.validate.PlanInvalid: the plan is invalid (2 problems):
      - line 2: expected '<n>. tool(arguments)', got 'what now?'
      - line 3: task 1 is numbered again (first on line 1)
    """
    registry = None if tools is None else tools if isinstance(tools, Registry) else Registry(tools)
    tasks: list[Task] = []
    first: dict[str, int] = {}
    problems: list[Problem] = []
    joined: Join | None = None
    # Lines end at "\n" only (a "\r" before it is stripped), as `stream_plan` reads them:
    # str.splitlines would also split at U+2028 and others inside a quoted argument.
    for number, line in enumerate(text.split("\n"), start=1):
        item = parse_line(line, number, registry)
        if item is None:
            continue
        if joined is not None:
            problems.append(after_join(number, joined))
        elif isinstance(item, Problem):
            problems.append(item)
        elif isinstance(item, Join):
            joined = item
        else:
            problem = renumbered(item, number, first) or unknown_reference(item, number, first)
            if problem is not None:
                problems.append(problem)
            if item.id not in first:  # defined, if badly: later lines may refer to it
                first[item.id] = number
                tasks.append(item)
    if problems:
        raise PlanInvalid(problems)
    return Plan(tuple(tasks), {t.id: parse_refs("$" + t.id) for t in tasks})


__all__ = [
    "Join",
    "after_join",
    "parse_line",
    "parse_llmcompiler",
    "renumbered",
    "unknown_reference",
]
