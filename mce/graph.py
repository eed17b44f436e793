"""A program's static structure as a Mermaid flowchart.

Sequences become chains, parallel blocks become subgraphs with one lane per
branch, shared steps appear once however many use them, and a bind (`.then`)
is drawn as an opaque box: what it runs is only known when it runs.

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
  n6{{"then &lt;lambda&gt; (dynamic)"}}
  n2 --> n6
"""

from __future__ import annotations

import html
from typing import Any

from mce._runtime import nodes as _n
from mce.budget import BUDGET
from mce.effects import EFFECT


def _name(f: Any) -> str:
    return str(getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__)


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
            then = self.node(f"then {_name(step.f)} (dynamic)", indent, "opaque")
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
            what = f"timeout {step.seconds:g} s" if t == _n.TIMEOUT else f"budget {step.budget}"
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
        one = self.node(label, indent, "opaque" if t == _n.DEFER else "box")
        return one, one


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
        return f"defer {_name(step.origin)} (dynamic)"
    if t == EFFECT:
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


__all__ = [
    "mermaid",
]
