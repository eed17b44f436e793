"""The curated public surface, walked module by module (as anyio's test does).

Every public module (no part of its name starts with "_") declares
`__all__`; every name it exports has a docstring (and so does every public
method of the classes `mce` exports); and every type named in a public signature (a
parameter, a return, a field) is exported by some public module, so users
can import what they need to annotate their own code.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import mce

# Extras a module may need; without them the module is skipped, not failed.
OPTIONAL = {"ray", "opentelemetry", "mcp", "hypothesis"}


def public_module_names() -> list[str]:
    names = ["mce"]
    for info in pkgutil.walk_packages(mce.__path__, "mce."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


MODULES = public_module_names()


def load(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional {exc.name}")
        raise


def defined_in_mce(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "mce"


def members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties a class defines itself."""
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isfunction(value) or isinstance(value, property):
            yield attr, value


def test_the_walk_finds_the_modules() -> None:
    assert {"mce", "mce.step", "mce.tools", "mce.llm", "mce.laws"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_declares_all(name: str) -> None:
    module = load(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    for export in exported:
        assert hasattr(module, export), f"{name}.__all__ names {export!r}, which is not there"
        assert not export.startswith("_"), f"{name}.__all__ exports private {export!r}"


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_has_a_docstring(name: str) -> None:
    module = load(name)
    assert inspect.getdoc(module), f"{name} has no module docstring"
    missing = []
    for export in module.__all__:
        obj = getattr(module, export)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not defined_in_mce(obj):
            continue  # constants and type aliases are documented where they are defined
        if not (obj.__doc__ or "").strip():
            missing.append(export)
    assert not missing, f"{name}: no docstring on {missing}"


def test_the_top_level_classes_document_their_methods() -> None:
    missing = [
        f"{export}.{attr}"
        for export in mce.__all__
        if inspect.isclass(cls := getattr(mce, export))
        for attr, _ in members(cls)
        if not inspect.getdoc(getattr(cls, attr))
    ]
    assert not missing, f"no docstring on {missing}"


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def annotations_of(obj: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, annotation text, namespace to resolve it in) for a public callable or class."""
    if inspect.isclass(obj):
        namespace = vars(sys.modules[obj.__module__])
        for field, text in getattr(obj, "__annotations__", {}).items():
            if not field.startswith("_"):
                yield f"{obj.__qualname__}.{field}", str(text), namespace
        init = vars(obj).get("__init__")
        if inspect.isfunction(init):
            yield from annotations_of(init)
        for _, member in members(obj):
            yield from annotations_of(member.fget if isinstance(member, property) else member)
        return
    if not callable(obj) or not hasattr(obj, "__annotations__"):
        return
    for fn in [obj, *typing.get_overloads(obj)]:
        namespace = getattr(fn, "__globals__", None) or vars(sys.modules[fn.__module__])
        for param, text in fn.__annotations__.items():
            yield f"{fn.__qualname__}({param})", str(text), namespace


def resolve(dotted: str, namespace: dict[str, Any]) -> Any:
    head, *rest = dotted.split(".")
    if head not in namespace:
        return None
    obj = namespace[head]
    for part in rest:
        obj = getattr(obj, part, None)
    return obj


def mce_types_in(text: str, namespace: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The names in an annotation that denote a class or alias defined by mce."""
    for match in NAME.finditer(text):
        dotted = match.group()
        obj = resolve(dotted, namespace)
        if obj is None or isinstance(
            obj, (ModuleType, typing.TypeVar, typing.ParamSpec, typing.TypeVarTuple)
        ):
            continue
        if _is_mce_type(dotted, obj):
            yield dotted, obj


def _is_mce_type(dotted: str, obj: object) -> bool:
    """A class defined in mce, or a type alias (`Mode = Literal[...]`) an mce module defines."""
    if inspect.isclass(obj):
        return defined_in_mce(obj)
    is_alias = typing.get_origin(obj) is not None or not callable(obj)
    return is_alias and any(vars(m).get(dotted) is obj for m in _mce_modules())


def _mce_modules() -> list[ModuleType]:
    return [m for n, m in sorted(sys.modules.items()) if n.split(".")[0] == "mce" and m]


def test_every_type_in_a_public_signature_is_importable() -> None:
    modules = [load(name) for name in MODULES]
    exported = {id(getattr(m, n)) for m in modules for n in m.__all__}
    missing: dict[str, set[str]] = {}
    for module in modules:
        for export in module.__all__:
            obj = getattr(module, export)
            if not defined_in_mce(obj):
                continue
            for where, text, namespace in annotations_of(obj):
                for dotted, found in mce_types_in(text, namespace):
                    if id(found) not in exported:
                        missing.setdefault(dotted, set()).add(f"{module.__name__}: {where}")
    assert not missing, "types used in public signatures but exported by no public module: " + (
        "; ".join(f"{name} (in {sorted(wheres)[0]})" for name, wheres in sorted(missing.items()))
    )


def test_issue_names_are_exported() -> None:
    for export in [
        "Step",
        "pure",
        "fail",
        "get",
        "gets",
        "put",
        "modify",
        "lift",
        "par",
        "gather",
        "traverse",
        "collect",
        "share",
        "do",
        "run",
        "run_sync",
        "Outcome",
        "Ok",
        "Err",
        "StateConflict",
        "tool",
        "Tool",
        "ToolError",
    ]:
        assert export in mce.__all__
    for method in ["map", "then", "recover", "map_error", "named", "timeout"]:
        assert callable(getattr(mce.Step, method))


def test_mce_tool_is_the_decorator() -> None:
    @mce.tool
    def double(x: int) -> int:
        "Double a number."
        return 2 * x

    assert isinstance(double, mce.Tool)
    assert mce.run_sync(double(21), None).value == 42
