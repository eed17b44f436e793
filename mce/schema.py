"""JSON schemas from type hints, and validation of JSON values against them, on pydantic.

`Schema(T)` builds pydantic's validator and serializer for a type once, and
then describes (`json_schema`, `strict_json_schema`), checks and builds
(`validate`, `validate_json`) and writes back (`dump`) values of that type.
`FunctionSchema(fn)` does the same for a function's parameters: one JSON
object, with descriptions from `Annotated[..., Field(description=...)]` and
from the docstring's `Args:` section, and the defaults. A `SchemaError`
lists *every* bad field, each with its path (`items[2].name`).

Types understood: everything pydantic understands (`BaseModel`s,
dataclasses, `TypedDict`s, `Enum`s, `Literal`, `datetime`/`date`/`UUID`,
`set`, `tuple`, unions, `Annotated[..., Field(...)]`, ...) and attrs classes.

>>> from attrs import frozen
>>> @frozen
... class Query:
...     text: str
...     limit: int = 5
>>> schema_of(Query)["required"]
['text']
>>> convert({"text": "mce"}, Query)
Query(text='mce', limit=5)
>>> convert({"text": 3, "limit": "many"}, Query)
Traceback (most recent call last):
...
mce.schema.SchemaError: 2 invalid fields: text: expected a string, got 3; limit: expected an integer, got 'many'
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
import threading
import types
import typing
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar, final, overload

import attrs
import typing_extensions
from pydantic import ConfigDict, Field, GetPydanticSchema, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticCustomError, PydanticSerializationError, core_schema
from pydantic_core import to_jsonable_python as _to_jsonable_python

from mce.effects import Secret

_T = TypeVar("_T")


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- types pydantic lacks

_local = threading.local()
_TypedDict: Any = typing_extensions.TypedDict  # called with a name not known to the type checker
_wrapped: dict[Any, Any] = {}


def _record_fields(cls: type) -> list[tuple[str, str, Any, Any]]:
    """(attribute, init argument, type, default) per init field; default `attrs.NOTHING`."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out: list[tuple[str, str, Any, Any]] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if a.init:
                out.append((a.name, a.alias or a.name, hints.get(a.name, Any), a.default))
        return out
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default: Any = attrs.NOTHING
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = attrs.Factory(f.default_factory)
        out.append((f.name, f.name, hints.get(f.name, Any), default))
    return out


def _record_core_schema(cls: type, handler: Any) -> core_schema.CoreSchema:
    """An attrs class or a dataclass as a closed object whose validation builds `cls`."""
    ref = f"{cls.__module__}.{cls.__qualname__}:{id(cls)}"
    building: set[type] = _local.__dict__.setdefault("building", set())
    if cls in building:  # a recursive type: refer to the definition being built
        return core_schema.definition_reference_schema(ref)
    building.add(cls)
    try:
        params: list[core_schema.ArgumentsParameter] = []
        checked: dict[str, core_schema.TypedDictField] = {}
        plain: dict[str, core_schema.TypedDictField] = {}
        names = []
        takes_self = False
        for name, init, tp, default in _record_fields(cls):
            inner = handler.generate_schema(_prepare(tp))
            names.append((name, init))
            plain[init] = core_schema.typed_dict_field(inner)
            required = default is attrs.NOTHING
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                if default.takes_self:  # left out, for the class to compute
                    takes_self = True
                else:
                    inner = core_schema.with_default_schema(inner, default_factory=default.factory)
            elif not required:
                inner = core_schema.with_default_schema(inner, default=default)
            params.append(core_schema.arguments_parameter(init, inner, mode="keyword_only"))
            checked[init] = core_schema.typed_dict_field(inner, required=required)
    finally:
        building.discard(cls)

    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise PydanticCustomError(
                "record",
                "{cls} rejected these values: {error}",
                {"cls": cls.__name__, "error": str(exc)},
            ) from None

    def fields_of(value: Any, serialize: Callable[[Any], Any]) -> Any:
        if not isinstance(value, cls):
            raise PydanticSerializationError(f"expected a {cls.__name__}, got {_short(value)}")
        return serialize({init: getattr(value, name) for name, init in names})

    about: dict[str, Any] = {"title": cls.__name__}
    doc = cls.__doc__
    if doc and not (dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}(")):
        about["description"] = inspect.cleandoc(doc)
    serialization = core_schema.wrap_serializer_function_ser_schema(
        fields_of, schema=core_schema.typed_dict_schema(plain)
    )
    if _plain_init(cls) and not takes_self:
        # pydantic-core checks the arguments and calls the class, no Python frame between
        return core_schema.call_schema(
            core_schema.arguments_schema(params),
            cls,
            ref=ref,
            serialization=serialization,
            metadata={"pydantic_js_updates": about},
        )
    # a class that may still reject checked values: its failure becomes a field error
    return core_schema.no_info_after_validator_function(
        build,
        core_schema.typed_dict_schema(checked, extra_behavior="forbid"),
        ref=ref,
        serialization=serialization,
        metadata={"pydantic_js_updates": about},
    )


def _plain_init(cls: type) -> bool:
    """Whether `cls(**checked_values)` cannot raise: no validators, converters or hooks."""
    if attrs.has(cls):
        hooks = ("__attrs_pre_init__", "__attrs_post_init__")
        return not any(hasattr(cls, h) for h in hooks) and not any(
            a.validator is not None or a.converter is not None for a in attrs.fields(cls)
        )
    return not hasattr(cls, "__post_init__")


def _record(cls: type) -> Any:
    found = _wrapped.get(cls)
    if found is None:
        found = _wrapped[cls] = Annotated[
            cls,
            GetPydanticSchema(lambda _source, handler: _record_core_schema(cls, handler)),
        ]
    return found


def _typed_dict(tp: Any) -> Any:
    """A TypedDict that pydantic accepts (typing's is not, before 3.12), fields prepared."""
    found = _wrapped.get(tp)
    if found is not None:
        return found
    _wrapped[tp] = tp  # a recursive TypedDict refers to itself as is
    hints = typing.get_type_hints(tp, include_extras=True)
    fields: dict[str, Any] = {}
    for name, hint in hints.items():
        # from the hint, not `__required_keys__`: typing cannot see a NotRequired
        # inside a string annotation before Python 3.12
        required = name in tp.__required_keys__
        while typing.get_origin(hint) in (
            typing_extensions.Required,
            typing_extensions.NotRequired,
        ):
            required = typing.get_origin(hint) is typing_extensions.Required
            hint = typing.get_args(hint)[0]
        marker = typing_extensions.Required if required else typing_extensions.NotRequired
        fields[name] = marker[_prepare(hint)]
    made = _TypedDict(tp.__name__, fields)
    made.__doc__ = tp.__doc__
    made.__module__ = tp.__module__
    made.__pydantic_config__ = getattr(tp, "__pydantic_config__", None) or ConfigDict(
        extra="forbid"
    )
    _wrapped[tp] = made
    return made


def _prepare(tp: Any) -> Any:
    """`tp` with its attrs classes, dataclasses and TypedDicts made closed records for pydantic.

    pydantic has no attrs support, takes typing's TypedDict only from 3.12 on,
    and lets dataclasses and TypedDicts ignore unknown keys; here all three
    are closed objects (an unknown field is an error), as pydantic's own
    models are when their `model_config` says `extra="forbid"`.
    """
    if isinstance(tp, type):
        if attrs.has(tp) or (
            dataclasses.is_dataclass(tp) and not hasattr(tp, "__pydantic_fields__")
        ):
            return _record(tp)
        if typing_extensions.is_typeddict(tp):
            return _typed_dict(tp)
        return tp
    origin = typing.get_origin(tp)
    if origin is None or origin is typing.Literal:
        return tp
    args = typing.get_args(tp)
    if origin is Annotated:
        inner = _prepare(args[0])
        return tp if inner is args[0] else Annotated[(inner, *tp.__metadata__)]
    new = tuple(_prepare(a) if a is not Ellipsis else a for a in args)
    if all(a is b for a, b in zip(new, args, strict=True)):
        return tp
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[new]  # noqa: UP007 - built from a tuple of types
    if isinstance(tp, types.GenericAlias):
        return types.GenericAlias(origin, new)
    return tp.copy_with(new)


# --------------------------------------------------------------------------- JSON schemas


class _Generator(GenerateJsonSchema):
    """pydantic's generator without a title on every field (noise a model pays for)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `$ref`s by their definitions, except for recursive types (kept in `$defs`)."""
    defs: dict[str, Any] = schema.pop("$defs", {})
    if not defs:
        return schema
    uses = {name: set(_refs(d)) for name, d in defs.items()}
    recursive = set()
    for name in defs:
        seen, todo = set(), list(uses[name])
        while todo:
            n = todo.pop()
            if n == name:
                recursive.add(name)
                break
            if n not in seen and n in uses:
                seen.add(n)
                todo.extend(uses[n])

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in recursive:
                rest = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {**walk(defs[name]), **rest}
        return {k: walk(v) for k, v in node.items()}

    out = walk(schema)
    root = out.get("$ref")
    if isinstance(root, str) and root.startswith("#/$defs/"):  # a recursive type at the top
        out = {
            **walk(defs[root.rsplit("/", 1)[-1]]),
            **{k: v for k, v in out.items() if k != "$ref"},
        }
    if recursive:
        out["$defs"] = {name: walk(defs[name]) for name in defs if name in recursive}
    return typing.cast(dict[str, Any], out)


_STRICT_DROPPED = frozenset(
    {
        "default",
        "minLength",
        "maxLength",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "discriminator",
        "examples",
    }
)
_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_STRICT_BLOCKING = (
    "prefixItems",
    "patternProperties",
    "propertyNames",
    "not",
    "if",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
)


class _NotStrict(Exception):
    pass


def _strict(node: Any, where: str) -> Any:
    """A schema OpenAI's strict mode accepts, or `_NotStrict` saying why it cannot be.

    Dropped keywords (lengths, defaults, ...) are still checked by validation.
    """
    if isinstance(node, list):
        return [_strict(v, where) for v in node]
    if not isinstance(node, dict):
        return node
    for key in _STRICT_BLOCKING:
        if key in node:
            raise _NotStrict(f"{where or 'the value'} uses {key!r}")
    if not ({"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const"} & node.keys()):
        raise _NotStrict(f"{where or 'the value'} may be anything")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _STRICT_DROPPED or (key == "format" and value not in _STRICT_FORMATS):
            continue
        if key == "properties":
            out[key] = {k: _strict(v, f"{where}.{k}" if where else k) for k, v in value.items()}
        elif key == "$defs":
            out[key] = {k: _strict(v, k) for k, v in value.items()}
        elif key == "oneOf":
            out["anyOf"] = _strict(value, where)
        elif key == "allOf":
            if len(value) != 1:
                raise _NotStrict(f"{where or 'the value'} combines schemas with allOf")
            out.update(_strict(value[0], where))
        elif key in ("items", "anyOf"):
            out[key] = _strict(value, f"{where}[]" if key == "items" else where)
        else:
            out[key] = value
    if out.get("type") == "object" or "properties" in out:
        extra = out.get("additionalProperties", False)
        if extra is not False:
            raise _NotStrict(f"{where or 'the value'} is an object with free-form keys")
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
        out.setdefault("properties", {})
    return out


def _strict_root(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") != "object":
        raise _NotStrict("the top level is not an object")
    return typing.cast(dict[str, Any], _strict(schema, ""))


# --------------------------------------------------------------------------- Schema


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


_KEY_ORDER = ("type", "title", "description", "enum", "const", "format")


def _order(node: Any) -> Any:
    """Keys in a readable order (type first), recursively; pydantic sorts them."""
    if isinstance(node, list):
        return [_order(v) for v in node]
    if not isinstance(node, dict):
        return node
    first = [k for k in _KEY_ORDER if k in node]
    return {k: _order(node[k]) for k in [*first, *(k for k in node if k not in first)]}


# --------------------------------------------------------------------------- functions

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
        self.name = name or getattr(fn, "__name__", "function")
        signature = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except NameError as exc:
            raise TypeError(f"{self.name!r}: cannot resolve a type hint: {exc}") from None
        self.description, docs = parse_docstring(inspect.getdoc(fn))
        params: list[Parameter] = []
        for p in signature.parameters.values():
            if p.kind is p.POSITIONAL_ONLY:
                raise TypeError(
                    f"{self.name!r}: parameter {p.name!r} is positional-only (before '/'); "
                    "a model passes arguments by name, so no call could fill it - "
                    "make it a regular parameter"
                )
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"{self.name!r}: *args and **kwargs cannot be described to a model")
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


# --------------------------------------------------------------------------- shortcuts


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


__all__ = [
    "FieldError",
    "FunctionSchema",
    "Parameter",
    "Schema",
    "SchemaError",
    "convert",
    "parse_docstring",
    "response_format",
    "schema_of",
    "to_json",
]
