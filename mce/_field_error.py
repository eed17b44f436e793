"""`FieldError`: one bad field of a value, without pydantic.

Exported by `mce.schema`; defined here so that `mce.tools` - whose
`ToolError` lists them - can name the type without importing pydantic.

>>> str(FieldError("", "expected an object"))
'value: expected an object'
"""

from __future__ import annotations

from typing import final

import attrs

from mce._public_name import public_in


@public_in("mce.schema")
@final
@attrs.frozen
class FieldError:
    """One bad field: where (`items[2].name`, empty for the whole value) and what is wrong.

    >>> str(FieldError("items[2].name", "expected a string, got 3"))
    'items[2].name: expected a string, got 3'
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or 'value'}: {self.message}"


__all__ = ["FieldError"]
