"""`to_json`: the JSON form of a typed value (records as objects, tuples and sets as arrays)."""

from __future__ import annotations

import dataclasses
from typing import Any

import attrs
from pydantic_core import PydanticSerializationError
from pydantic_core import to_jsonable_python as _to_jsonable_python

from mce.effects import Secret


def to_json(value: Any) -> Any:
    """The JSON form of a typed value (records become objects, tuples and sets arrays).

    `Secret`s stay as they are, so that journals and traces redact them.

    >>> import datetime
    >>> to_json((1, {"a": (2,)}, datetime.date(2026, 1, 2)))
    [1, {'a': [2]}, '2026-01-02']
    """
    t = type(value)
    if value is None or t is str or t is int or t is float or t is bool:
        return value
    if t is list or t is tuple:
        return [to_json(v) for v in value]
    if t is dict:
        return {k if type(k) is str else str(to_json(k)): to_json(v) for k, v in value.items()}
    if t is set or t is frozenset:
        return [to_json(v) for v in value]
    if attrs.has(t):
        return {
            (a.alias or a.name): to_json(getattr(value, a.name)) for a in attrs.fields(t) if a.init
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
    if t is Secret:
        return value
    try:
        return _to_jsonable_python(value)
    except PydanticSerializationError:
        return value  # not JSON: building the effect names it
