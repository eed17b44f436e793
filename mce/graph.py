"""A program's structure as a Mermaid flowchart: as written, or as a recorded run ran.

`mermaid(step)` draws the static structure. Sequences become chains,
parallel blocks become subgraphs with one lane per branch, a tool call shows
the tool's name, shared steps appear once however many use them, and a bind
(`.then`) is drawn as an opaque box: what it runs is only known when it
runs (when its callback holds tools or named sub-agents, the box lists the
ones it may call).

`mermaid_run(journal)` draws what a recorded run actually did: every
effect in order, each parallel block as a subgraph with a lane per branch
(sub-agents, tool fan-outs), shared tasks in a lane of their own.

>>> from mce import effect, par, pure, share
>>> fetch = share(effect("search", "q"), key="fetch")
>>> print(mermaid(par(fetch, fetch.map(len)).named("fan-out").then(lambda r: pure(r))))
flowchart TD
  n1["fan-out"]
  subgraph n2 ["par"]
    direction LR
    n3[/"share fetch"/]
    n4["effect search"]
    n3 --> n4
    n5["map len"]
    n3 --> n5
  end
  n1 --> n2
  n6{{"then lambda (dynamic)"}}
  n2 --> n6
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mce._runtime import nodes as _n
from mce._runtime.replay import DECISIONS
from mce.budget import BUDGET
from mce.effects import EFFECT, redact
from mce.journal import Journal, open_journal

if TYPE_CHECKING:
    from mce.tools import Tool

__all__ = ["mermaid", "mermaid_run"]


def _name(f: Any) -> str:
    """A callback's readable name: `spawn`, `lambda in attempt`, `str.upper`."""
    qual = str(getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__)
    parts = [p for p in qual.split(".") if p != "<locals>"]
    if parts and parts[-1] == "<lambda>":
        return f"lambda in {parts[-2]}" if len(parts) > 1 else "lambda"
    if len(parts) > 1 and "<locals>" in qual:
        return parts[-1]
    return ".".join(parts)


def _closure(f: Any) -> list[Any]:
    cells = getattr(f, "__closure__", None) or ()
    out = []
    for cell in cells:
        try:
            out.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return out


def _tool_classes() -> tuple[Any, Any]:
    """`(Tool, Registry)`, or `((), ())` when `mce.tools` is not loaded.

    A program can hold a tool only if `mce.tools` was imported, so drawing a
    graph never imports it (nor pydantic, which it loads).
    """
    tools = sys.modules.get("mce.tools")
    if tools is None:
        return (), ()
    return tools.Tool, tools.Registry


def _tool_of(f: Any) -> tuple[Tool, Any] | None:
    """The tool (and its arguments) a deferred tool call will run, if `f` is one."""
    tool_class, _registry = _tool_classes()
    values = _closure(f)
    tools = [v for v in values if isinstance(v, tool_class)]
    if len(tools) != 1:
        return None
    arguments = next((v for v in values if isinstance(v, dict)), None)
    return tools[0], arguments


def _choices(f: Any) -> list[str]:
    """The tools or named sub-agents a bind's callback may call.

    Looks at what the callback holds and, two levels down, what the
    functions it holds hold (a loop's callback usually calls a helper that
    holds the tools); a mapping of names to functions counts as sub-agents
    only near the top.
    """
    tool_class, registry = _tool_classes()
    names: list[str] = []
    seen: set[int] = set()
    level = [(f, 0)]
    while level:
        fn, depth = level.pop(0)
        for value in _closure(fn):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, registry):
                names += [f"tool {n}" for n in value.names]
            elif isinstance(value, tool_class):
                names.append(f"tool {value.name}")
            elif (
                depth == 0
                and isinstance(value, Mapping)
                and 0 < len(value) <= 20
                and all(isinstance(k, str) and callable(v) for k, v in value.items())
            ):
                names += [f"agent {k}" for k in sorted(value)]
            elif (
                isinstance(value, list | tuple)
                and value
                and all(isinstance(v, tool_class) for v in value)
            ):
                names += [f"tool {v.name}" for v in value]
            elif depth < 2 and getattr(value, "__closure__", None) and len(seen) < 200:
                level.append((value, depth + 1))
    return list(dict.fromkeys(names))


def _args(arguments: Any, limit: int = 40) -> str:
    """Arguments as a short `name=value` list (no double quotes: Mermaid labels are quoted)."""
    if not arguments:
        return ""
    plain = redact(arguments)
    if isinstance(plain, dict):
        text = ", ".join(
            f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in plain.items()
        )
    else:
        text = json.dumps(plain, default=str, ensure_ascii=False)
    text = text.replace('"', "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Graph:
    def __init__(self) -> None:
        self.lines = ["flowchart TD"]
        self.count = 0
        self.shared: dict[int, str] = {}

    def node(self, label: str, indent: int, shape: str = "box") -> str:
        self.count += 1
        name = f"n{self.count}"
        text = html.escape(label, quote=True).replace("&#x27;", "'")
        open_, close = {"box": ('["', '"]'), "opaque": ('{{"', '"}}'), "shared": ('[/"', '"/]')}[
            shape
        ]
        self.lines.append(f"{'  ' * indent}{name}{open_}{text}{close}")
        return name

    def edge(self, a: str, b: str, indent: int) -> None:
        self.lines.append(f"{'  ' * indent}{a} --> {b}")

    def walk(self, step: Any, indent: int, depth: int = 0) -> tuple[str, str]:
        """Draw `step`; return its (first, last) node names."""
        if depth > 200:
            last = self.node("...", indent)
            return last, last
        t = getattr(step, "_tag", None)
        if t == _n.THEN:
            first, last = self.walk(step.step, indent, depth + 1)
            choices = _choices(step.f)
            if not choices:
                then = self.node(f"then {_name(step.f)} (dynamic)", indent, "opaque")
                self.edge(last, then, indent)
                return first, then
            # a bind whose callback holds tools or sub-agents: list what it may call
            self.count += 1
            then = f"n{self.count}"
            label = html.escape(f"then {_name(step.f)} (dynamic): may call", quote=True)
            self.lines.append(f'{"  " * indent}subgraph {then} ["{label}"]')
            self.lines.append(f"{'  ' * (indent + 1)}direction LR")
            for choice in choices:
                self.node(choice, indent + 1, "opaque")
            self.lines.append(f"{'  ' * indent}end")
            self.edge(last, then, indent)
            return first, then
        if t in (_n.MAP, _n.MAP_ERROR, _n.RECOVER):
            word = {_n.MAP: "map", _n.MAP_ERROR: "map_error", _n.RECOVER: "recover"}[t]
            first, last = self.walk(step.step, indent, depth + 1)
            shape = "opaque" if t == _n.RECOVER else "box"
            nxt = self.node(f"{word} {_name(step.f)}", indent, shape)
            self.edge(last, nxt, indent)
            return first, nxt
        if t == _n.NAMED:
            label = self.node(step.name, indent)
            first, last = self.walk(step.step, indent, depth + 1)
            self.edge(label, first, indent)
            return label, last
        if t in (_n.TIMEOUT, BUDGET):
            what = f"timeout {step.seconds:g} s" if t == _n.TIMEOUT else _budget(step.budget)
            head = self.node(what, indent)
            first, last = self.walk(step.step, indent, depth + 1)
            self.edge(head, first, indent)
            return head, last
        if t == _n.PAR:
            self.count += 1
            name = f"n{self.count}"
            kind = "collect" if step.mode == _n.COLLECT else "par"
            limit = f" limit {step.limit}" if step.limit else ""
            self.lines.append(f'{"  " * indent}subgraph {name} ["{kind}{limit}"]')
            self.lines.append(f"{'  ' * (indent + 1)}direction LR")
            if step.steps is not None:
                for branch in step.steps:
                    self.walk(branch, indent + 1, depth + 1)
            else:
                self.node(
                    f"traverse {_name(step.f)} over {len(step.items)} items", indent + 1, "opaque"
                )
            self.lines.append(f"{'  ' * indent}end")
            return name, name
        if t == _n.SHARE:
            key = id(step)
            if key in self.shared:
                return self.shared[key], self.shared[key]
            head = self.node(f"share {step.key or step.step.label or ''}".strip(), indent, "shared")
            self.shared[key] = head
            first, _last = self.walk(step.step, indent, depth + 1)
            self.edge(head, first, indent)
            return head, head
        label = _leaf(step, t)
        dynamic = t == _n.DEFER and not label.startswith("tool ")
        one = self.node(label, indent, "opaque" if dynamic else "box")
        return one, one


def _budget(budget: Any) -> str:
    limits = [
        f"{name} {getattr(budget, name)}"
        for name in ("max_calls", "max_tokens", "max_seconds")
        if getattr(budget, name, None) is not None
    ]
    return "budget " + (", ".join(limits) or "unlimited")


def _leaf(step: Any, t: Any) -> str:
    if t == _n.PURE:
        return "pure"
    if t == _n.FAIL:
        return f"fail {step.error!r}"[:60]
    if t == _n.GET:
        return "get"
    if t == _n.PUT:
        return "put"
    if t == _n.MODIFY:
        return f"modify {_name(step.f)}"
    if t == _n.GETS:
        return f"gets {_name(step.f)}"
    if t == _n.LIFT:
        return f"lift {_name(step.thunk)}"
    if t == _n.DEFER:
        found = _tool_of(step.origin)
        if found is not None:
            tool, arguments = found
            return f"tool {tool.name} {_args(arguments)}".strip()
        return f"defer {_name(step.origin)} (dynamic)"
    if t == EFFECT:
        if str(step.kind).startswith("tool."):
            return f"tool {step.kind[5:]} {_args(step.request)}".strip()
        return f"effect {step.kind}"
    return type(step).__name__


def mermaid(step: Any) -> str:
    """The Mermaid flowchart of `step`'s static structure (see the module docstring).

    >>> from mce import get, put
    >>> print(mermaid(get().named("read")))
    flowchart TD
      n1["read"]
      n2["get"]
      n1 --> n2
    """
    graph = _Graph()
    graph.walk(step, 1)
    return "\n".join(graph.lines)


# ---------------------------------------------------------------- what a run did


def _segments(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in text.split("/"))


def _effect_label(entry: Mapping[str, Any]) -> str:
    kind = str(entry["kind"])
    request = entry.get("req")
    if kind.startswith("tool."):
        label = f"tool {kind[5:]} {_args(request)}".strip()
    elif kind.startswith("llm."):
        result = entry.get("ok")
        fields = result.get("fields", {}) if isinstance(result, dict) else {}
        model = (request.get("model") if isinstance(request, dict) else None) or fields.get("model")
        label = f"{kind} {model or ''}".strip()
        calls = fields.get("tool_calls")
        calls = calls.get("$tuple", calls) if isinstance(calls, dict) else calls
        names = [
            c.get("fields", c).get("name")
            for c in calls or ()
            if isinstance(c, dict) and isinstance(c.get("fields", c), dict)
        ]
        if names:
            label += " → calls " + ", ".join(str(n) for n in names)
    else:
        label = kind
    if "err" in entry:
        label += " ✗ failed"
    if int(entry.get("attempts") or 1) > 1:
        label += f" ({entry['attempts']} attempts)"
    return label


def mermaid_run(journal: Journal | str | Any, *, names: Mapping[str, str] | None = None) -> str:
    """The Mermaid flowchart of what a recorded run did.

    Effects of one branch form a chain in program order; the branches of a
    parallel block are lanes of one subgraph (a sub-agent, a fan-out), nested
    as they ran; shared tasks get a lane each. `names` may name branches
    (say, from the run's `.named` steps).

    >>> from mce import Journal, effect, par, run_sync
    >>> j = Journal()
    >>> h = lambda r: r
    >>> _ = run_sync(effect("plan", 1, handler=h).then(
    ...     lambda _: par(effect("tool.search", {"q": "a"}, handler=h), effect("tool.fetch", {"u": 1}, handler=h))), None, journal=j)
    >>> print(mermaid_run(j))
    flowchart TD
      n1["plan"]
      subgraph n2 ["par at 1"]
        direction LR
        subgraph n3 ["branch 1/0"]
          n4["tool search q='a'"]
        end
        subgraph n5 ["branch 1/1"]
          n6["tool fetch u=1"]
        end
      end
      n1 --> n2
    """
    _header, entries = open_journal(journal).load()
    effects = [e for e in entries if e["kind"] not in DECISIONS]
    by_branch: dict[str, list[Mapping[str, Any]]] = {}
    for entry in effects:
        by_branch.setdefault(str(entry.get("branch") or ""), []).append(entry)
    branches = set(by_branch)
    # every branch's ancestors are branches too, even when they ran no effect themselves
    for branch in list(branches):
        parts = branch.split("/")
        for cut in range(len(parts) - 2, 0, -2):
            branches.add("/".join(parts[:cut]))
    drawing = _RunDrawing(by_branch, branches, names or {})
    drawing.lane("", 1)
    drawing.shared_tasks()
    return "\n".join(drawing.graph.lines)


class _RunDrawing:
    """A recorded run drawn branch by branch: each branch a lane, its parallel blocks nested."""

    def __init__(
        self,
        by_branch: dict[str, list[Mapping[str, Any]]],
        branches: set[str],
        names: Mapping[str, str],
    ) -> None:
        self.by_branch = by_branch
        self.branches = branches
        self.names = names
        self.graph = _Graph()

    def children(self, branch: str) -> dict[str, list[str]]:
        """The parallel blocks started in `branch`: block position -> its branches."""
        blocks: dict[str, list[str]] = {}
        for other in self.branches:
            if not other or other == branch or other.startswith("s:"):
                continue
            block, _sep, _index = other.rpartition("/")
            if block.rpartition("/")[0] == branch or (not branch and "/" not in block):
                blocks.setdefault(block, []).append(other)
        return blocks

    def lane(self, branch: str, indent: int) -> tuple[str, str] | None:
        """Draw `branch`'s effects and blocks in program order; return its (first, last) nodes."""
        graph = self.graph
        items: list[tuple[tuple[tuple[int, int | str], ...], Any]] = [
            (_segments(str(e["pos"])), e) for e in self.by_branch.get(branch, ())
        ]
        items += [
            (_segments(block), (block, sorted(lanes, key=_segments)))
            for block, lanes in self.children(branch).items()
        ]
        items.sort(key=lambda item: item[0])
        first = last = None
        for _key, item in items:
            if isinstance(item, tuple):
                block, lanes = item
                node = self.block(block, lanes, indent)
            else:
                node = graph.node(_effect_label(item), indent)
            if last is not None:
                graph.edge(last, node, indent)
            first = first or node
            last = node
        return None if first is None or last is None else (first, last)

    def block(self, block: str, lanes: list[str], indent: int) -> str:
        """Draw a parallel block (or a scope) as a subgraph of its lanes; return its node."""
        graph, names = self.graph, self.names
        graph.count += 1
        node = f"n{graph.count}"
        if len(lanes) == 1:  # a scope (budget, timeout) or a block of one branch
            title = html.escape(names.get(lanes[0], f"branch {lanes[0]}"), quote=True)
            graph.lines.append(f'{"  " * indent}subgraph {node} ["{title}"]')
            self.lane(lanes[0], indent + 1)
            graph.lines.append(f"{'  ' * indent}end")
            return node
        title = f"par at {block}" if block else "par"
        graph.lines.append(f'{"  " * indent}subgraph {node} ["{title}"]')
        graph.lines.append(f"{'  ' * (indent + 1)}direction LR")
        for sub in lanes:
            graph.count += 1
            box = f"n{graph.count}"
            title = html.escape(names.get(sub, f"branch {sub}"), quote=True)
            graph.lines.append(f'{"  " * (indent + 1)}subgraph {box} ["{title}"]')
            self.lane(sub, indent + 2)
            graph.lines.append(f"{'  ' * (indent + 1)}end")
        graph.lines.append(f"{'  ' * indent}end")
        return node

    def shared_tasks(self) -> None:
        """Draw the shared tasks (a DAG's), a lane each, in a subgraph of their own."""
        graph = self.graph
        shared = sorted((b for b in self.branches if b.startswith("s:")), key=str)
        if shared:
            graph.count += 1
            graph.lines.append(f'  subgraph n{graph.count} ["shared tasks"]')
            graph.lines.append("    direction LR")
            for key in shared:
                graph.count += 1
                title = html.escape(self.names.get(key, key[2:]), quote=True)
                graph.lines.append(f'    subgraph n{graph.count} ["{title}"]')
                self.lane(key, 3)
                graph.lines.append("    end")
            graph.lines.append("  end")
