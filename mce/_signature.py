"""The parameters of a function that a model calls by name, checked without pydantic.

`@tool` checks a function's signature when it is defined - every parameter
can be passed by name, every type hint resolves - and leaves building its
JSON schema and validator (`mce.schema.FunctionSchema`, on pydantic) to the
first use, so that a module of tools loads without pydantic.

>>> def search(query: str, limit: int = 10) -> list[str]:
...     return []
>>> signature, hints = named_parameters(search, "search")
>>> list(signature.parameters), hints["limit"]
(['query', 'limit'], <class 'int'>)
>>> named_parameters(lambda *xs: None, "spread")
Traceback (most recent call last):
...
TypeError: 'spread': *args and **kwargs cannot be described to a model
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["named_parameters"]


def named_parameters(fn: Callable[..., Any], name: str) -> tuple[inspect.Signature, dict[str, Any]]:
    """`fn`'s signature and resolved type hints; `TypeError` naming `name` if a model cannot call it.

    A parameter must be passable by name (not positional-only, not `*args`
    or `**kwargs`), and every type hint must resolve.
    """
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise TypeError(f"{name!r}: cannot resolve a type hint: {exc}") from None
    for p in signature.parameters.values():
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(
                f"{name!r}: parameter {p.name!r} is positional-only (before '/'); "
                "a model passes arguments by name, so no call could fill it - "
                "make it a regular parameter"
            )
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{name!r}: *args and **kwargs cannot be described to a model")
    return signature, hints
