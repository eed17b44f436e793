"""The closed set of nodes: every tag defined once, every tag handled by the trampoline."""

from __future__ import annotations

import inspect
import re
from typing import Any

import mce
import mce.budget
import mce.effects
from mce._runtime import nodes, trampoline
from mce.step import Step

_LITERAL = re.compile(r"\b(t|ft) == (\d+):(?:\s*#\s*(\w+))?")


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def _literals() -> list[tuple[str, int, str | None]]:
    source = inspect.getsource(trampoline.advance)
    return [(m[1], int(m[2]), m[3]) for m in _LITERAL.finditer(source)]


def test_the_trampolines_literal_tags_are_the_named_constants() -> None:
    found = _literals()
    assert found, "the trampoline dispatches on tags"
    for var, value, name in found:
        assert name is not None, f"`{var} == {value}` in advance() needs a `# NAME` comment"
        assert name in nodes.NODE_TAGS, f"`# {name}` is not a node tag"
        assert nodes.NODE_TAGS[name] == value, f"{name} is {nodes.NODE_TAGS[name]}, not {value}"


def test_every_tag_is_handled_by_the_trampoline() -> None:
    handled = {value for var, value, _ in _literals() if var == "t"}
    assert handled == set(nodes.NODE_TAGS.values())


def test_tags_are_distinct_and_every_node_class_has_one() -> None:
    assert len(set(nodes.NODE_TAGS.values())) == len(nodes.NODE_TAGS)
    assert nodes.RUNNING_BLOCK not in nodes.NODE_TAGS.values()
    classes = _all_subclasses(Step)
    tags: dict[int, type] = {}
    for cls in classes:
        tag: Any = cls.__dict__.get("_tag")
        assert tag in nodes.NODE_TAGS.values(), f"{cls.__qualname__} has no tag of the closed set"
        assert tag not in tags, f"{cls.__qualname__} and {tags[tag].__qualname__} share tag {tag}"
        tags[tag] = cls
    assert set(tags) == set(nodes.NODE_TAGS.values()), "a tag with no node class"


def test_the_modules_that_define_nodes_use_the_shared_tags() -> None:
    assert mce.effects.EFFECT is nodes.EFFECT
    assert mce.budget.BUDGET is nodes.BUDGET
    assert mce.step.PURE is nodes.PURE  # type: ignore[attr-defined]


def test_no_two_runtime_classes_share_a_name() -> None:
    import pkgutil
    from importlib import import_module

    import mce._runtime as runtime

    seen: dict[str, str] = {}
    modules = ["mce.step", "mce.effects", "mce.budget"] + [
        f"mce._runtime.{m.name}" for m in pkgutil.iter_modules(runtime.__path__)
    ]
    for name in modules:
        module = import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == name:
                assert attr not in seen, f"class {attr} in both {seen[attr]} and {name}"
                seen[attr] = name
