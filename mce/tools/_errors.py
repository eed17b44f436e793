"""What a failed tool call is: `ToolError` and its kinds.

>>> str(ToolError("search", "timeout", "no result within 5 s"))
"tool 'search': timeout: no result within 5 s"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, final

from attrs import frozen

from mce._field_error import FieldError
from mce._public_name import public_in

if TYPE_CHECKING:
    from mce.schema import SchemaError

ToolErrorKind = Literal["invalid_arguments", "failed", "timeout", "invalid_result", "unknown_tool"]
"""What went wrong in a tool call (`ToolError.kind`)."""


@public_in("mce.tools")  # the name journals give it
@final
@frozen
class ToolError:
    """A tool call failed: bad arguments, an exception, a timeout, a bad result, an unknown tool.

    For bad arguments, `errors` lists every bad field with its path; `path`
    is set when there is exactly one.

    >>> str(ToolError("search", "invalid_arguments", "expected a string", path="q"))
    "tool 'search': invalid_arguments at q: expected a string"
    """

    tool: str
    kind: ToolErrorKind
    message: str
    path: str | None = None
    exception_type: str | None = None
    errors: tuple[FieldError, ...] = ()

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"tool {self.tool!r}: {self.kind}{where}: {self.message}"


def _invalid(tool: str, kind: ToolErrorKind, exc: SchemaError) -> ToolError:
    if len(exc.errors) == 1:
        return ToolError(tool, kind, exc.message, path=exc.path or None, errors=exc.errors)
    return ToolError(tool, kind, exc.describe(), errors=exc.errors)


__all__ = ["ToolError", "ToolErrorKind"]
