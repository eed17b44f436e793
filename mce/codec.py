"""Encoding effect values for the journal: JSON that round-trips Python values.

Plain JSON values pass through unchanged. Everything JSON cannot say
exactly is tagged with a one-key object: tuples, sets, bytes, dicts whose
keys are not strings (or whose keys look like tags), and attrs or dataclass
instances, which are stored with their fields (and, for people and other
tools, their class name). `decode` inverts `encode`, building classes by
the type the program declares - it never imports or looks up a class by a
name read from the journal. A value `encode` cannot journal is a
`TypeError` naming the offending value and where it sits in the structure.

>>> from attrs import frozen
>>> encode((1, {"a": b"x"}))
{'$tuple': [1, {'a': {'$bytes': 'eA=='}}]}
>>> decode(encode((1, {"a": b"x"})))
(1, {'a': b'x'})
"""

from __future__ import annotations

import base64
import collections.abc
import dataclasses
import enum
import math
import types
import typing
from typing import Any

import attrs

__all__ = ["DecodeError", "UndeclaredType", "decode", "encode"]

_TAGS = (
    "$tuple",
    "$set",
    "$frozenset",
    "$bytes",
    "$dict",
    "$attrs",
    "$dataclass",
    "$float",
    "$enum",
)
_WITH_BODY = {"$attrs": "fields", "$dataclass": "fields", "$enum": "value"}


def encode(value: Any, where: str = "value") -> Any:
    """A JSON-compatible form of `value` that `decode` turns back into it.

    >>> encode({1: "one"})
    {'$dict': [[1, 'one']]}
    >>> encode(object())
    Traceback (most recent call last):
    ...
    TypeError: value: cannot journal a object (<object ...>); use JSON values, tuples, sets, bytes, attrs classes or dataclasses
    """
    if value is None or value is True or value is False or type(value) in (int, str):
        return value
    t = type(value)
    if t is float:
        if math.isfinite(value):
            return value
        return {"$float": repr(value)}
    if t is list:
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            "$dict": [
                [encode(k, f"{where}.key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()
            ]
        }
    if t is tuple:
        return {"$tuple": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if t is set or t is frozenset:
        items = [encode(v, f"{where}.item") for v in value]
        items.sort(key=repr)  # a canonical order, so equal sets encode equally
        return {"$set" if t is set else "$frozenset": items}
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if attrs.has(t):
        return {
            "$attrs": _path(t),
            "fields": {
                a.name: encode(getattr(value, a.name), f"{where}.{a.name}")
                for a in attrs.fields(t)
                if a.init
            },
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$dataclass": _path(t),
            "fields": {
                f.name: encode(getattr(value, f.name), f"{where}.{f.name}")
                for f in dataclasses.fields(value)
                if f.init
            },
        }
    if isinstance(value, enum.Enum):
        return {"$enum": _path(t), "value": encode(value.value, f"{where}.value")}
    if isinstance(value, int | str | float):  # other subclasses journal as the base value
        return encode(_base(t)(value), where)
    raise TypeError(
        f"{where}: cannot journal a {t.__name__} ({value!r}); use JSON values, tuples, sets, "
        "bytes, attrs classes or dataclasses"
    )


def _base(t: type) -> type:
    for base in (int, str, float):
        if issubclass(t, base):
            return base
    raise AssertionError(t)


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class DecodeError(ValueError):
    """A journaled value cannot be decoded: it is malformed, or does not fit the declared type.

    `where` is the path to the offending part of the value.

    >>> str(DecodeError("value[0]", "not base64"))
    'value[0]: not base64'
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class UndeclaredType(DecodeError):
    """The journal holds a class instance where the program declares no class to build.

    >>> issubclass(UndeclaredType, DecodeError)
    True
    """


_NO_TYPE: frozenset[Any] = frozenset({None, Any, object})
_hints: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """A class's resolved field annotations (empty where they cannot be resolved)."""
    hints = _hints.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable forward reference: decode those fields untyped
            hints = {}
        _hints[cls] = hints
    return hints


def _members(into: Any) -> tuple[Any, ...]:
    """The alternatives a declared type allows (a union's members; Annotated unwrapped)."""
    origin = typing.get_origin(into)
    if origin is typing.Annotated:
        return _members(typing.get_args(into)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(m for a in typing.get_args(into) for m in _members(a))
    return (into,)


def _shaped(into: Any, shapes: tuple[type, ...]) -> Any:
    """The member of `into` whose container shape is one of `shapes` (None: untyped)."""
    if into in _NO_TYPE:
        return None
    for member in _members(into):
        origin = typing.get_origin(member) or member
        if isinstance(origin, type) and issubclass(origin, shapes):
            return member
    return None


def _args(into: Any) -> tuple[Any, ...]:
    return typing.get_args(into) if into is not None else ()


def _class_for(tag: str, name: Any, into: Any, where: str) -> type:
    """The declared class to build a tagged instance as; never looked up by `name`."""
    if tag == "$attrs":
        fits: Any = attrs.has
    elif tag == "$enum":
        fits = lambda c: issubclass(c, enum.Enum)  # noqa: E731
    else:
        fits = dataclasses.is_dataclass
    shown = name.partition(":")[2] if type(name) is str else "?"
    kind = {"$attrs": "attrs class", "$dataclass": "dataclass", "$enum": "enum"}[tag]
    candidates = (
        [] if into in _NO_TYPE else [m for m in _members(into) if isinstance(m, type) and fits(m)]
    )
    if len(candidates) > 1:  # a union of classes: the journal's name picks among them
        candidates = [c for c in candidates if c.__qualname__ == shown] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UndeclaredType(
            where,
            f"the journal holds an instance of the {kind} {shown!r}, but the program "
            "declares no such type here; declare the value type (`effect(..., into=T)`, a "
            "tool's return annotation, `structured(into=T)`) to replay it",
        )
    raise UndeclaredType(
        where,
        f"the journal holds a {shown!r}, and the declared type allows several of kind {kind}, "
        f"none of which is named {shown!r}",
    )


def decode(data: Any, into: Any = None, where: str = "value") -> Any:
    """Invert `encode`, building classes by the declared type `into` (never by a name read).

    Tags for tuples, sets, bytes and the like need no type. An attrs class,
    dataclass or enum instance is built as the class `into` declares (a
    union picks its member by the class's name); its fields decode by their
    annotations. With no class declared, such a value is `UndeclaredType`;
    a malformed value is `DecodeError`, naming where it is.

    >>> decode({"$set": [1, 2]})
    {1, 2}
    >>> decode({"$float": "inf"})
    inf
    >>> from mce.errors import StepTimeout
    >>> decode(encode(StepTimeout(1.5, "fetch")), StepTimeout)
    StepTimeout(seconds=1.5, label='fetch')
    """
    t = type(data)
    if t is list:
        item = _args(_shaped(into, (list, collections.abc.Sequence)))
        of = item[0] if item else None
        return [decode(v, of, f"{where}[{i}]") for i, v in enumerate(data)]
    if t is not dict:
        return data
    if len(data) <= 2:
        for tag in _TAGS:
            if tag in data and len(data) == (2 if tag in _WITH_BODY else 1):
                return _decode_tagged(tag, data, into, where)
    of = _args(_shaped(into, (dict, collections.abc.Mapping)))
    values = of[1] if len(of) == 2 else None
    return {k: decode(v, values, f"{where}[{k!r}]") for k, v in data.items()}


def _list_body(body: Any, where: str, tag: str) -> list[Any]:
    if type(body) is not list:
        raise DecodeError(where, f"the body of {tag} must be a list, not {type(body).__name__}")
    return body


def _decode_tagged(tag: str, data: dict[str, Any], into: Any, where: str) -> Any:
    body = data[tag]
    try:
        if tag == "$tuple":
            args = _args(_shaped(into, (tuple,)))
            items = _list_body(body, where, tag)
            if len(args) == 2 and args[1] is Ellipsis:
                types_: list[Any] = [args[0]] * len(items)
            elif args and len(args) == len(items):
                types_ = list(args)
            else:
                types_ = [None] * len(items)
            return tuple(
                decode(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(items, types_, strict=True))
            )
        if tag == "$set" or tag == "$frozenset":
            args = _args(_shaped(into, (set, frozenset, collections.abc.Set)))
            of = args[0] if args else None
            items = [decode(v, of, f"{where}.item") for v in _list_body(body, where, tag)]
            return set(items) if tag == "$set" else frozenset(items)
        if tag == "$bytes":
            if type(body) is not str:
                raise DecodeError(where, "the body of $bytes must be a base64 string")
            return base64.b64decode(body, validate=True)
        if tag == "$dict":
            args = _args(_shaped(into, (dict, collections.abc.Mapping)))
            kt, vt = args if len(args) == 2 else (None, None)
            out = {}
            for pair in _list_body(body, where, tag):
                if type(pair) is not list or len(pair) != 2:
                    raise DecodeError(
                        where, "the body of $dict must be a list of [key, value] pairs"
                    )
                key = decode(pair[0], kt, f"{where}.key")
                out[key] = decode(pair[1], vt, f"{where}[{key!r}]")
            return out
        if tag == "$float":
            if body not in ("inf", "-inf", "nan"):
                raise DecodeError(where, f"$float must be 'inf', '-inf' or 'nan', not {body!r}")
            return float(body)
    except DecodeError:
        raise
    except (ValueError, TypeError) as exc:  # an unhashable set item or key, a bad base64 body
        raise DecodeError(where, f"malformed {tag} value: {exc}") from None
    cls = _class_for(tag, body, into, where)
    if tag == "$enum":
        value = decode(data["value"], None, f"{where}.value")
        try:
            return cls(value)
        except ValueError:
            raise DecodeError(where, f"{value!r} is not a member of {cls.__qualname__}") from None
    fields = data["fields"]
    if type(fields) is not dict:
        raise DecodeError(where, f"the fields of {tag} must be a JSON object")
    hints = _field_types(cls)
    if tag == "$attrs":
        init = {a.name: a.alias or a.name for a in attrs.fields(cls) if a.init}
    else:
        init = {f.name: f.name for f in dataclasses.fields(cls) if f.init}
    unknown = fields.keys() - init.keys()
    if unknown:
        raise DecodeError(
            where, f"{cls.__qualname__} has no field {sorted(unknown)[0]!r} (was it renamed?)"
        )
    kwargs = {init[k]: decode(v, hints.get(k), f"{where}.{k}") for k, v in fields.items()}
    try:
        return cls(**kwargs)
    except Exception as exc:  # a missing field, a validator that refuses the value
        raise DecodeError(
            where, f"cannot build {cls.__qualname__} from the journal: {exc}"
        ) from None
