"""A set of tools by name: what a model may call.

>>> from mce.tools import tool
>>> @tool
... def ping() -> str:
...     "Answer pong."
...     return "pong"
>>> len(Registry([ping]))
1
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, final

from mce.step import Step, fail
from mce.tools._errors import ToolError

if TYPE_CHECKING:
    from mce.effects import EffectError
    from mce.tools import Tool


@final
class Registry:
    """Tools by name: the set a model may call.

    >>> from mce.tools import tool
    >>> @tool
    ... def ping() -> str:
    ...     "Answer pong."
    ...     return "pong"
    >>> reg = Registry([ping])
    >>> reg.names, "ping" in reg
    (['ping'], True)
    >>> from mce import run_sync
    >>> run_sync(reg.call("nope", "{}"), None).error.kind
    'unknown_tool'
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> Tool:
        """Add a tool; a name already taken is a `ValueError`."""
        from mce.tools import Tool  # defined after this module is loaded

        if not isinstance(t, Tool):
            raise TypeError(f"Registry holds tools made with @tool, got {t!r}")
        if t.name in self._tools:
            raise ValueError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool's schema, for `chat(..., tools=...)`."""
        return [t.schema() for t in self._tools.values()]

    def call(
        self, name: str, arguments: str | dict[str, Any]
    ) -> Step[object, ToolError | EffectError, Any]:
        """A step calling tool `name` with JSON text or a dict (as a model sends them).

        Unknown tools and malformed JSON fail with a `ToolError`.
        """
        found = self._tools.get(name)
        if found is None:
            return fail(ToolError(name, "unknown_tool", f"no such tool; available: {self.names}"))
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments) if arguments.strip() else {}
            except ValueError as exc:
                return fail(
                    ToolError(name, "invalid_arguments", f"arguments are not valid JSON: {exc}")
                )
        else:
            parsed = arguments
        return found.call(parsed)


__all__ = ["Registry"]
