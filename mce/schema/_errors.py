"""Schema errors: `FieldError`, `SchemaError`, and pydantic's errors turned into them.

Both classes keep `mce.schema` as their module: a `FieldError` is journaled
by that name inside a `ToolError`, and tracebacks name `mce.schema.SchemaError`.
"""

from __future__ import annotations

import typing
from typing import Any, overload

from pydantic import ValidationError

from mce._field_error import FieldError as FieldError
from mce._public_name import public_in


@public_in("mce.schema")
class SchemaError(ValueError):
    """A value does not match its type; `errors` lists every bad field with its path.

    `path` and `message` are the first error's, for callers that show one;
    `SchemaError(path, message)` makes a one-error `SchemaError`.

    >>> err = SchemaError(FieldError("a", "expected an integer"), FieldError("b", "unexpected field"))
    >>> str(err), err.path
    ('2 invalid fields: a: expected an integer; b: unexpected field', 'a')
    """

    @overload
    def __init__(self, path: str, message: str, /) -> None: ...
    @overload
    def __init__(self, *errors: FieldError) -> None: ...
    def __init__(self, *errors: FieldError | str) -> None:
        if len(errors) == 2 and isinstance(errors[0], str) and isinstance(errors[1], str):
            errors = (FieldError(errors[0], errors[1]),)  # one error: (path, message)
        if not errors or not all(isinstance(e, FieldError) for e in errors):
            raise ValueError(
                f"SchemaError takes FieldErrors (or a path and a message), got {errors!r}"
            )
        self.errors: tuple[FieldError, ...] = typing.cast(tuple[FieldError, ...], errors)
        self.path = self.errors[0].path
        self.message = self.errors[0].message
        super().__init__(self.describe())

    def describe(self, *, paths: bool = True) -> str:
        """All errors in one line (`paths=False` leaves out a single error's path).

        >>> SchemaError(FieldError("a", "expected an integer")).describe(paths=False)
        'expected an integer'
        """
        if len(self.errors) == 1:
            return str(self.errors[0]) if paths else self.errors[0].message
        return f"{len(self.errors)} invalid fields: " + "; ".join(map(str, self.errors))


_MESSAGES = {
    "missing": "missing required field",
    "extra_forbidden": "unexpected field",
    "unexpected_keyword_argument": "unexpected field",
    "missing_keyword_only_argument": "missing required field",
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected an object",
    "list_type": "expected an array",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "dataclass_type": "expected an object",
    "none_required": "expected null",
}
_NO_INPUT = {
    "missing",
    "extra_forbidden",
    "json_invalid",
    "unexpected_keyword_argument",
    "missing_keyword_only_argument",
    "record",
}


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        elif path:
            path = f"{path}.{part}"
        else:
            path = part
    return path


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field_errors(
    exc: ValidationError, prefix: str, show_input: bool, arguments: tuple[str, ...] | None = None
) -> tuple[FieldError, ...]:
    """`arguments`: the names a function takes, when the value is its arguments."""
    out = []
    for e in exc.errors(include_url=False):
        kind = e["type"]
        message = _MESSAGES.get(kind) or e["msg"]
        if kind in ("literal_error", "enum"):
            message = f"expected one of {e.get('ctx', {}).get('expected', '')}"
        elif message.startswith("Input should be "):
            message = "should be " + message[len("Input should be ") :]
        if arguments is not None and len(e["loc"]) == 1:
            if kind == "missing":
                message = "missing required argument"
            elif kind == "extra_forbidden":
                message = f"unexpected argument (it takes {list(arguments)})"
        value = e.get("input")
        if (
            show_input
            and kind not in _NO_INPUT
            and (value is None or isinstance(value, str | int | float | bool | list | dict))
        ):
            message = f"{message}, got {_short(value)}"
        out.append(FieldError(_path(prefix, tuple(e["loc"])), message))
    return tuple(out)
