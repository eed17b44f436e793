"""`Schema(T)`: a type's JSON schema, validator and serializer, and the shortcuts on it."""

from __future__ import annotations

import copy
import re
import typing
from typing import Any, Generic, TypeVar, final

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic_core import PydanticSerializationError

from mce.schema._errors import FieldError, SchemaError, _field_errors, _short
from mce.schema._json_schema import _Generator, _inline, _NotStrict, _order, _strict_root
from mce.schema._records import _prepare
from mce.schema._to_json import to_json

_T = TypeVar("_T")


@final
class Schema(Generic[_T]):
    """A type's JSON schema, validator and serializer, built once (a pydantic `TypeAdapter`).

    >>> import datetime
    >>> s = Schema(list[datetime.date])
    >>> s.json_schema()
    {'type': 'array', 'items': {'type': 'string', 'format': 'date'}}
    >>> s.validate(["2026-11-25"])
    [datetime.date(2026, 11, 25)]
    >>> s.dump([datetime.date(2026, 11, 25)])
    ['2026-11-25']
    """

    __slots__ = ("_adapter", "_json", "_strict", "type")
    _cache: typing.ClassVar[dict[Any, Schema[Any]]] = {}

    def __init__(self, tp: type[_T] | Any) -> None:
        self.type = tp
        try:
            self._adapter: TypeAdapter[_T] = TypeAdapter(_prepare(tp))
        except (PydanticSchemaGenerationError, PydanticUserError, NameError) as exc:
            raise TypeError(f"cannot derive a JSON schema for {tp!r}: {exc}") from None
        self._json: dict[str, Any] | None = None
        self._strict: dict[str, Any] | str | None = None

    @classmethod
    def of(cls, tp: type[_T] | Any) -> Schema[_T]:
        """The `Schema` of `tp`, built once per type and reused.

        >>> Schema.of(int) is Schema.of(int)
        True
        """
        try:
            found = cls._cache.get(tp)
        except TypeError:  # an unhashable annotation
            return cls(tp)
        if found is None:
            found = cls._cache[tp] = cls(tp)
        return found

    def __repr__(self) -> str:
        return f"Schema({self.type!r})"

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema (a fresh copy), references inlined except for recursive types.

        >>> from typing import Literal
        >>> Schema(Literal["a", "b"]).json_schema()
        {'type': 'string', 'enum': ['a', 'b']}
        """
        if self._json is None:
            raw = self._adapter.json_schema(schema_generator=_Generator)
            self._json = _order(_inline(raw))
        return copy.deepcopy(self._json)

    def strict_json_schema(self) -> dict[str, Any] | None:
        """The schema as OpenAI's strict structured output wants it, or None if it cannot be.

        Every object closed, every property required; a type with free-form keys
        (`dict[str, T]`), fixed-length tuples, `Any`, or a top level that is not
        an object cannot be made strict.

        >>> from typing import TypedDict
        >>> class Point(TypedDict, total=False):
        ...     x: int
        ...     y: int
        >>> Schema(Point).strict_json_schema()["required"]
        ['x', 'y']
        >>> Schema(dict[str, int]).strict_json_schema() is None
        True
        """
        if self._strict is None:
            try:
                self._strict = _strict_root(self.json_schema())
            except _NotStrict as why:
                self._strict = str(why)
        return copy.deepcopy(self._strict) if isinstance(self._strict, dict) else None

    def not_strict_because(self) -> str | None:
        """Why `strict_json_schema()` is None (None when it is not).

        >>> Schema(list[int]).not_strict_because()
        'the top level is not an object'
        """
        self.strict_json_schema()
        return self._strict if isinstance(self._strict, str) else None

    def validate(self, value: Any, path: str = "", *, show_input: bool = True) -> _T:
        """Check `value` (parsed JSON, or values of the type) and build the typed value.

        Raises `SchemaError` listing every bad field, paths prefixed by `path`;
        `show_input=False` leaves the offending values out of the messages.

        >>> Schema(tuple[int, ...]).validate([1, "2"])
        (1, 2)
        >>> Schema(list[int]).validate([1, "x", None], "ids")
        Traceback (most recent call last):
        ...
        mce.schema.SchemaError: 2 invalid fields: ids[1]: expected an integer, got 'x'; ids[2]: expected an integer, got None
        """
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            failed = exc
        # attrs classes and dataclasses are checked from their JSON form (which
        # keeps JSON fast); a value holding instances is checked through it too
        try:
            return self._adapter.validate_python(to_json(value))
        except ValidationError:
            pass  # the first attempt's errors say more about the value given
        raise SchemaError(*_field_errors(failed, path, show_input)) from None

    def validate_json(self, text: str | bytes) -> _T:
        """Parse JSON text and validate it (one pass; deep nesting is an error, not a crash).

        >>> Schema(dict[str, int]).validate_json('{"a": 1}')
        {'a': 1}
        >>> Schema(int).validate_json("{")
        Traceback (most recent call last):
        ...
        mce.schema.SchemaError: value: Invalid JSON: EOF while parsing an object at line 1 column 1
        """
        try:
            return self._adapter.validate_json(text)
        except ValidationError as exc:
            raise SchemaError(*_field_errors(exc, "", True)) from None

    def dump(self, value: _T) -> Any:
        """The JSON form of a value of this type (what `validate` turns back into it).

        A value that is not of the type is a `SchemaError`.

        >>> from enum import Enum
        >>> class Size(Enum):
        ...     S = "s"
        >>> Schema(set[Size]).dump({Size.S})
        ['s']
        >>> Schema(int).dump("x")
        Traceback (most recent call last):
        ...
        mce.schema.SchemaError: value: expected a value of int, got 'x'
        """
        try:
            return self._adapter.dump_python(value, mode="json", round_trip=True, warnings="error")
        except (PydanticSerializationError, ValueError, TypeError):
            name = getattr(self.type, "__name__", None) or repr(self.type)
            raise SchemaError(
                FieldError("", f"expected a value of {name}, got {_short(value)}")
            ) from None


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON schema of a type (`Schema.of(tp).json_schema()`).

    >>> schema_of(list[int])
    {'type': 'array', 'items': {'type': 'integer'}}
    """
    return Schema.of(tp).json_schema()


def convert(value: Any, tp: Any, path: str = "") -> Any:
    """Check `value` (parsed JSON) against `tp` and build the typed value.

    >>> convert([1, 2], tuple[int, ...])
    (1, 2)
    >>> convert(1.5, int, "limit")
    Traceback (most recent call last):
    ...
    mce.schema.SchemaError: limit: expected an integer, got 1.5
    """
    return Schema.of(tp).validate(value, path)


_NAME = re.compile(r"[^A-Za-z0-9_-]")


def response_format(into: Any, *, strict: bool | None = None) -> dict[str, Any]:
    """A chat request's `response_format` asking for JSON of type `into`.

    Strict (`"strict": true`, OpenAI structured outputs) when the type can be
    made strict; `strict=True` insists (a `TypeError` if it cannot be),
    `strict=False` never asks for it.

    >>> from attrs import frozen
    >>> @frozen
    ... class City:
    ...     name: str
    ...     population: int = 0
    >>> fmt = response_format(City)
    >>> fmt["json_schema"]["strict"], fmt["json_schema"]["schema"]["required"]
    (True, ['name', 'population'])
    >>> "strict" in response_format(dict[str, int])["json_schema"]
    False
    """
    schema = Schema.of(into)
    name = _NAME.sub("_", getattr(into, "__name__", "") or "Output")[:64] or "Output"
    body: dict[str, Any] = {"name": name}
    strict_schema = schema.strict_json_schema() if strict is not False else None
    if strict_schema is not None:
        body["schema"] = strict_schema
        body["strict"] = True
    elif strict:
        raise TypeError(f"{into!r} cannot be asked for strictly: {schema.not_strict_because()}")
    else:
        body["schema"] = schema.json_schema()
    return {"type": "json_schema", "json_schema": body}
