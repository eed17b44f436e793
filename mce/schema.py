"""JSON schemas from type hints, and validation of JSON values against them.

Supported: `str`, `int`, `float`, `bool`, `None`, `Literal[...]`,
`Optional[T]` / `T | None`, unions of those, `list[T]`, `tuple[T, ...]`,
`dict[str, T]`, and attrs classes and dataclasses (fields with defaults are
optional). `schema_of` writes the JSON schema that tool calling and
structured output send to a model; `convert` checks a JSON value against a
type and builds it, raising `SchemaError` that names the offending path.

>>> from attrs import frozen
>>> @frozen
... class Query:
...     text: str
...     limit: int = 5
>>> schema_of(Query)["required"]
['text']
>>> convert({"text": "mce"}, Query)
Query(text='mce', limit=5)
>>> convert({"text": 3}, Query)
Traceback (most recent call last):
...
mce.schema.SchemaError: text: expected a string, got 3
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

import attrs


class SchemaError(ValueError):
    """A value does not match its type; `path` names where (`items[2].name`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or 'value'}: {message}")
        self.path = path
        self.message = message


def _join(path: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _fields(cls: type) -> list[tuple[str, Any, bool]]:
    """(name, type, required) for an attrs class or dataclass."""
    hints = typing.get_type_hints(cls)
    if attrs.has(cls):
        return [
            (a.name, hints.get(a.name, Any), a.default is attrs.NOTHING)
            for a in attrs.fields(cls)
            if a.init
        ]
    return [
        (
            f.name,
            hints.get(f.name, Any),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp))


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON schema of a type (objects are closed: no extra properties).

    >>> schema_of(list[int])
    {'type': 'array', 'items': {'type': 'integer'}}
    >>> schema_of(Literal["a", "b"])
    {'type': 'string', 'enum': ['a', 'b']}
    """
    if tp is Any:
        return {}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is None or tp is type(None):
        return {"type": "null"}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        kinds = {type(a) for a in args}
        schema: dict[str, Any] = {"enum": list(args)}
        if kinds == {str}:
            schema = {"type": "string", "enum": list(args)}
        elif kinds == {int}:
            schema = {"type": "integer", "enum": list(args)}
        return schema
    if origin in (Union, types.UnionType):
        return {"anyOf": [schema_of(a) for a in args]}
    if origin in (list, tuple) or tp in (list, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return {
                "type": "array",
                "prefixItems": [schema_of(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        return {"type": "array", "items": schema_of(args[0] if args else Any)}
    if origin is dict or tp is dict:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object", "additionalProperties": schema_of(value)}
    if _is_record(tp):
        fields = _fields(tp)
        return {
            "type": "object",
            "title": tp.__name__,
            "properties": {name: schema_of(t) for name, t, _ in fields},
            "required": [name for name, _, required in fields if required],
            "additionalProperties": False,
        }
    raise TypeError(f"cannot derive a JSON schema for {tp!r}")


def convert(value: Any, tp: Any, path: str = "") -> Any:
    """Check `value` (parsed JSON) against `tp` and build the typed value.

    >>> convert([1, 2], tuple[int, ...])
    (1, 2)
    >>> convert(1.5, int, "limit")
    Traceback (most recent call last):
    ...
    mce.schema.SchemaError: limit: expected an integer, got 1.5
    """
    if tp is Any:
        return value
    if tp is str:
        if type(value) is not str:
            raise SchemaError(path, f"expected a string, got {value!r}")
        return value
    if tp is bool:
        if type(value) is not bool:
            raise SchemaError(path, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if type(value) is not int:
            raise SchemaError(path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if type(value) not in (int, float):
            raise SchemaError(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is None or tp is type(None):
        if value is not None:
            raise SchemaError(path, f"expected null, got {value!r}")
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if value not in args or type(value) not in {type(a) for a in args}:
            raise SchemaError(path, f"expected one of {list(args)!r}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        problems = []
        for option in args:
            try:
                return convert(value, option, path)
            except SchemaError as exc:
                problems.append(exc.message)
        raise SchemaError(path, " or ".join(problems))
    if origin in (list, tuple) or tp in (list, tuple):
        if type(value) is not list:
            raise SchemaError(path, f"expected an array, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise SchemaError(path, f"expected {len(args)} items, got {len(value)}")
            return tuple(
                convert(v, t, _join(path, i))
                for i, (v, t) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        items = [convert(v, item, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if type(value) is not dict:
            raise SchemaError(path, f"expected an object, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: convert(v, vt, _join(path, k)) for k, v in value.items()}
    if _is_record(tp):
        if type(value) is not dict:
            raise SchemaError(path, f"expected an object ({tp.__name__}), got {value!r}")
        fields = _fields(tp)
        known = {name for name, _, _ in fields}
        extra = sorted(set(value) - known)
        if extra:
            raise SchemaError(_join(path, extra[0]), f"unexpected field (known: {sorted(known)})")
        kwargs = {}
        for name, ftype, required in fields:
            if name in value:
                kwargs[name] = convert(value[name], ftype, _join(path, name))
            elif required:
                raise SchemaError(_join(path, name), "missing required field")
        return tp(**kwargs)
    raise TypeError(f"cannot validate against {tp!r}")


def to_json(value: Any) -> Any:
    """The JSON form of a typed value (records become objects, tuples arrays).

    >>> to_json((1, {"a": (2,)}))
    [1, {'a': [2]}]
    """
    if _is_record(type(value)):
        return {name: to_json(getattr(value, name)) for name, _, _ in _fields(type(value))}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
