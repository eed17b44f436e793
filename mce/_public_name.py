"""`public_in`: a public class defined in a private module keeps its public name.

A class's module is part of what users see and of what mce writes down:
a traceback prints `mce.schema.SchemaError`, and the journal records an
attrs instance by `module:qualname` (`mce.schema:FieldError`, inside a
`ToolError`), so its fingerprint and a replay depend on it. A class that
moves into a private module for the code's sake keeps the name of the
public module that exports it; so do its methods, so that doctest finds
their examples where it finds the class's.

>>> @public_in("mce.example")
... class Thing:
...     def method(self) -> None:
...         "A method."
>>> Thing.__module__, Thing.method.__module__
('mce.example', 'mce.example')
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

_C = TypeVar("_C", bound=type)


def public_in(module: str) -> Callable[[_C], _C]:
    """A class decorator giving the class, and the methods it defines, `module` as their module."""

    def rename(cls: _C) -> _C:
        cls.__module__ = module
        for value in vars(cls).values():
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            elif isinstance(value, property):
                value = value.fget
            if inspect.isfunction(value):
                value.__module__ = module
        return cls

    return rename
