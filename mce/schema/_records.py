"""Types pydantic lacks: attrs classes, dataclasses and TypedDicts as closed records.

`_prepare(tp)` rewrites a type so that pydantic validates its attrs classes
(which it does not know), its dataclasses and its TypedDicts (typing's,
before Python 3.12) as closed objects that build the class.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import attrs
import typing_extensions
from pydantic import ConfigDict, GetPydanticSchema
from pydantic_core import PydanticCustomError, PydanticSerializationError, core_schema

from mce.schema._errors import _short

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
