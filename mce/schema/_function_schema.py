"""`FunctionSchema(fn)`: a function's parameters as one JSON object, from hints and docstring."""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, final

import attrs
import typing_extensions
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError
from pydantic_core import to_jsonable_python as _to_jsonable_python

from mce._signature import named_parameters
from mce.schema._errors import FieldError, SchemaError, _field_errors, _short
from mce.schema._json_schema import _Generator, _inline, _order
from mce.schema._records import _prepare, _TypedDict
from mce.schema._to_json import to_json
from mce.schema._type_schema import Schema

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:\s*$")
_OTHER_SECTION = re.compile(
    r"^(Returns?|Yields?|Raises|Examples?|Notes?|Attributes|See Also|Warnings?|Todo)\s*:\s*$"
)
_ARG = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """A docstring's summary (its first paragraph) and its parameter descriptions.

    Reads Google style (`Args:`) and Sphinx style (`:param name:`).

    >>> parse_docstring('''Search the catalogue.
    ...
    ... Args:
    ...     query: Words to look for.
    ...     limit (int): At most this many
    ...         results.
    ... ''')
    ('Search the catalogue.', {'query': 'Words to look for.', 'limit': 'At most this many results.'})
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or _SECTION.match(stripped) or _OTHER_SECTION.match(stripped):
            break
        if _SPHINX.match(stripped) or stripped.startswith(":"):
            break
        summary.append(stripped)
    params: dict[str, str] = {}
    current: str | None = None
    indent: int | None = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        width = len(line) - len(line.lstrip())
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            current, in_args = sphinx.group(1), False
            params[current] = sphinx.group(2).strip()
            continue
        if _SECTION.match(stripped):
            in_args, current, indent = True, None, None
            continue
        if _OTHER_SECTION.match(stripped) or (stripped.startswith(":") and not in_args):
            in_args, current = False, None
            continue
        if not stripped:
            continue
        if in_args:
            if width == 0:
                in_args, current = False, None
                continue
            if indent is None:
                indent = width
            match = _ARG.match(stripped)
            if width == indent and match:
                current = match.group(1).lstrip("*")
                params[current] = match.group(3).strip()
                continue
        if current is not None and (in_args or width > 0):
            params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(summary), params


@final
@attrs.frozen
class Parameter:
    """One parameter of a `FunctionSchema`: name, type, whether required, default, description."""

    name: str
    type: Any
    required: bool
    default: Any = None
    description: str | None = None


def _field_description(tp: Any) -> str | None:
    if typing.get_origin(tp) is Annotated:
        for meta in reversed(tp.__metadata__):
            if isinstance(meta, FieldInfo) and meta.description:
                return meta.description
    return None


def _jsonable(value: Any) -> tuple[bool, Any]:
    try:
        out = _to_jsonable_python(value)
        json.dumps(out, allow_nan=False)
    except (PydanticSerializationError, TypeError, ValueError):
        return False, None
    return True, out


@final
class FunctionSchema:
    """A function's parameters as one JSON object schema, with a validator built once.

    Descriptions come from `Annotated[T, Field(description=...)]` or else from
    the docstring's `Args:` section; parameters with defaults are optional,
    their defaults shown in the schema. `*args`, `**kwargs` and positional-only
    parameters are rejected: a model passes arguments by name.

    >>> def search(query: str, limit: int = 10) -> list[str]:
    ...     '''Search the catalogue.
    ...
    ...     Args:
    ...         query: Words to look for.
    ...     '''
    ...     return []
    >>> fs = FunctionSchema(search)
    >>> fs.json_schema["properties"]
    {'query': {'type': 'string', 'description': 'Words to look for.'}, 'limit': {'type': 'integer', 'default': 10}}
    >>> fs.validate({"query": "mce"})
    {'query': 'mce'}
    >>> fs.validate({"limit": "x", "other": 1})
    Traceback (most recent call last):
    ...
    mce.schema.SchemaError: 3 invalid fields: query: missing required argument; limit: expected an integer, got 'x'; other: unexpected argument (it takes ['query', 'limit'])
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.name: str = name or str(getattr(fn, "__name__", "function"))
        signature, hints = named_parameters(fn, self.name)
        self.description, docs = parse_docstring(inspect.getdoc(fn))
        params: list[Parameter] = []
        for p in signature.parameters.values():
            tp = hints.get(p.name, Any)
            description = _field_description(tp) or docs.get(p.name)
            required = p.default is p.empty
            params.append(
                Parameter(p.name, tp, required, None if required else p.default, description)
            )
        self.parameters = tuple(params)
        returns = hints.get("return", Any)
        self.returns: Schema[Any] | None = None
        if returns not in (Any, None, type(None), object):
            try:
                self.returns = Schema(returns)
            except TypeError as exc:
                raise TypeError(f"{self.name!r}: return type: {exc}") from None
        fields: dict[str, Any] = {}
        for prm in params:
            hint = _prepare(prm.type)
            if prm.description and not _field_description(prm.type):
                hint = Annotated[hint, Field(description=prm.description)]
            fields[prm.name] = hint if prm.required else typing_extensions.NotRequired[hint]
        shape = _TypedDict(f"{self.name}_arguments", fields)
        shape.__pydantic_config__ = ConfigDict(extra="forbid")
        try:
            self._adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(shape)
            raw = self._adapter.json_schema(schema_generator=_Generator)
        except (PydanticSchemaGenerationError, PydanticUserError, NameError) as exc:
            raise TypeError(f"{self.name!r}: cannot derive a JSON schema: {exc}") from None
        raw.pop("title", None)
        inlined = _order(_inline(raw))
        schema: dict[str, Any] = {
            "type": "object",
            "properties": inlined.pop("properties", {}),
            "required": [p.name for p in params if p.required],
            "additionalProperties": False,
        }
        inlined.pop("required", None)
        inlined.pop("additionalProperties", None)
        schema.update(inlined)  # `$defs` of recursive types
        for prm in params:
            if not prm.required:
                ok, value = _jsonable(prm.default)
                if ok:
                    schema["properties"][prm.name]["default"] = value
        self.json_schema: dict[str, Any] = schema
        self._each: dict[str, Schema[Any]] = {}

    def __repr__(self) -> str:
        return f"<FunctionSchema {self.name}({', '.join(p.name for p in self.parameters)})>"

    def validate(self, arguments: Any, *, show_input: bool = True) -> dict[str, Any]:
        """Typed keyword arguments from JSON arguments (only those given; defaults apply).

        Raises `SchemaError` listing every bad argument.

        >>> FunctionSchema(lambda n=1: n).validate([1])
        Traceback (most recent call last):
        ...
        mce.schema.SchemaError: value: arguments must be a JSON object, got [1]
        """
        if not isinstance(arguments, dict):
            raise SchemaError(
                FieldError("", f"arguments must be a JSON object, got {_short(arguments)}")
            )
        try:
            return self._adapter.validate_python(arguments)
        except ValidationError as exc:
            failed = exc
        try:  # arguments holding instances of records: checked through their JSON form
            return self._adapter.validate_python(to_json(arguments))
        except ValidationError:
            pass  # the first attempt's errors say more about the arguments given
        names = tuple(p.name for p in self.parameters)
        raise SchemaError(*_field_errors(failed, "", show_input, names)) from None

    def validate_argument(self, name: str, value: Any) -> Any:
        """One argument, checked alone (for plans, whose other arguments are not known yet).

        >>> FunctionSchema(lambda n=1: n).validate_argument("n", 2)
        2
        """
        schema = self._each.get(name)
        if schema is None:
            found = next((p for p in self.parameters if p.name == name), None)
            if found is None:
                raise SchemaError(FieldError(name, "unexpected argument"))
            schema = self._each[name] = Schema(found.type)
        return schema.validate(value, name)
