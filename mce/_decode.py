"""Decoding a journaled value as the type the program declares (`mce.codec.decode`).

A union is tried member by member in the order the program writes it:
the first member a plain value fits is what it decodes as, so `A | B` and
`B | A` may decode the same JSON object differently, and always alike.

>>> decode({"$tuple": [1, "a"]})
(1, 'a')
>>> decode(["a"], list[int] | list[str])
['a']
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mce._shape import SEVERAL, Shape, field_types, is_model, shape_of

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
_COLLECTIONS = frozenset({"$tuple", "$set", "$frozenset", "$dict"})


class DecodeError(ValueError):
    """A journaled value cannot be decoded: it is malformed, or does not fit the declared type.

    `where` is the path to the offending part of the value.

    >>> str(DecodeError("value[0]", "not base64"))
    'value[0]: not base64'
    """

    __module__ = "mce.codec"  # raised and documented as `mce.codec.DecodeError`

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class UndeclaredType(DecodeError):
    """The journal holds a class instance where the program declares no class to build.

    >>> issubclass(UndeclaredType, DecodeError)
    True
    """

    __module__ = "mce.codec"


class _TooDeep(DecodeError):
    """Python's recursion limit ran out: no other member of a union would fare better."""


def decode(data: Any, into: Any = None, where: str = "value") -> Any:
    """Invert `encode`, building classes by the declared type `into` (never by a name read).

    Tags for tuples, sets, bytes and the like need no type. An attrs class,
    dataclass or enum instance is built as the class `into` declares (a
    union picks its member by the class's name); its fields decode by their
    annotations. With no class declared, such a value is `UndeclaredType`;
    a malformed value is `DecodeError`, naming where it is.

    A plain (untagged) value decodes as the declared type too: a JSON object
    becomes the declared attrs class, dataclass or pydantic model, a JSON
    array the declared list, tuple or set, a plain value the declared enum's
    member - or `DecodeError` names the part that does not fit. A union's
    members are tried in their written order, and the first that fits wins.
    `Any`, `object`, a type variable or another type the codec cannot check
    (a union member among them) serves a plain value as it was recorded.

    >>> decode({"$set": [1, 2]})
    {1, 2}
    >>> decode({"$float": "inf"})
    inf
    >>> from mce.codec import encode
    >>> from mce.errors import StepTimeout
    >>> decode(encode(StepTimeout(1.5, "fetch")), StepTimeout)
    StepTimeout(seconds=1.5, label='fetch')
    >>> decode({"seconds": 2, "label": "x"}, StepTimeout)
    StepTimeout(seconds=2, label='x')
    >>> decode({"seconds": "soon", "label": "x"}, StepTimeout)
    Traceback (most recent call last):
    ...
    mce.codec.DecodeError: value.seconds: the journal holds 'soon' where the program declares float
    """
    try:
        t = type(data)
        if t is dict:
            if len(data) <= 2:
                for tag in _TAGS:
                    if tag in data and len(data) == (2 if tag in _WITH_BODY else 1):
                        if tag == "$attrs" or tag == "$dataclass":  # one frame a level, as encode
                            shape = shape_of(into)
                            cls = _class_for(tag, data[tag], shape, where)
                            return _build(
                                cls, _fields(data, tag, where), where, shape.bound.get(cls)
                            )
                        if tag in _COLLECTIONS:
                            return _collection(tag, data, into, where)
                        return _decode_tagged(tag, data, into, where)
            of = None
            if into is not None:
                shape = shape_of(into)
                of = shape.dict_of
                if of is SEVERAL:
                    return _first(shape.objects, _object_as, data, where, shape, shape.open)
            out = {}  # loops, not comprehensions: a frame less a level, and no cell for `of`
            for k, v in data.items():
                out[k] = decode(v, of, f"{where}[{k!r}]")
            return out
        if into is None:
            if t is list:
                return [decode(v, None, f"{where}[{i}]") for i, v in enumerate(data)]
            return data
        shape = shape_of(into)
        if t is list:
            of = shape.list_of
            if of is SEVERAL:
                return _first(shape.arrays, _array_as, data, where, shape, shape.open)
            leaves = shape.leaves
            if leaves is not None:  # `list[int]`: items that fit are kept as they are
                for v in data:
                    if type(v) is dict or type(v) is list or not isinstance(v, leaves):
                        break
                else:
                    return list(data)
            items = []
            for i, v in enumerate(data):
                items.append(decode(v, of, f"{where}[{i}]"))
            return items
        if shape.open or isinstance(data, shape.scalars):
            return data
        return _plain_scalar(data, shape, where)
    except RecursionError:  # deeper than the stack allows here: say where, as a DecodeError
        raise _TooDeep(
            where,
            f"nested too deeply to decode within Python's recursion limit "
            f"({sys.getrecursionlimit()}; `sys.setrecursionlimit` raises it)",
        ) from None


def _fields(data: dict[str, Any], tag: str, where: str) -> dict[str, Any]:
    fields = data["fields"]
    if type(fields) is not dict:
        raise DecodeError(where, f"the fields of {tag} must be a JSON object")
    return fields


def _class_for(tag: str, name: Any, shape: Shape, where: str) -> type:
    """The declared class to build a tagged instance as; never looked up by `name`."""
    if tag == "$enum":
        candidates = shape.enums
    else:
        fits: Any = attrs.has if tag == "$attrs" else dataclasses.is_dataclass
        candidates = [c for c in shape.classes if fits(c)]
    shown = name.partition(":")[2] if type(name) is str else "?"
    kind = {"$attrs": "attrs class", "$dataclass": "dataclass", "$enum": "enum"}[tag]
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


def _first(
    alternatives: Sequence[tuple[str, Any]],
    attempt: Callable[[Any, Any, str], Any],
    data: Any,
    where: str,
    shape: Shape,
    open_: bool,
) -> Any:
    """`data` as the first alternative it fits: a lone one's own error, as recorded if `open_`."""
    misfits = []
    for shown, alternative in alternatives:
        try:
            return attempt(alternative, data, where)
        except _TooDeep:
            raise
        except DecodeError as exc:
            if len(alternatives) == 1 and not open_:
                raise
            misfits.append(f"{shown} ({exc})")
    if open_:
        return decode(data, None, where)
    tag = next(iter(data), None) if type(data) is dict and len(data) == 1 else None
    held = f"a {tag[1:]}" if tag in _COLLECTIONS else "a JSON object"  # a tagged value's kind
    if type(data) is list:
        held = "a JSON array"
    tried = "; tried " + ", ".join(misfits) if misfits else ""
    raise DecodeError(where, f"{_misfit(where, held, shape).reason}{tried}")


def _object_as(alternative: Any, data: dict[str, Any], where: str) -> Any:
    if len(alternative) == 2:  # a class, and its bound field types if generic
        return _build(alternative[0], data, where, alternative[1])
    _, of, by_key = alternative
    if by_key is None:
        return {k: decode(v, of, f"{where}[{k!r}]") for k, v in data.items()}
    return {k: decode(v, by_key.get(k, of), f"{where}[{k!r}]") for k, v in data.items()}


def _array_as(alternative: tuple[type, Any], data: list[Any], where: str) -> Any:
    made, of = alternative
    if made is list:
        return [decode(v, of, f"{where}[{i}]") for i, v in enumerate(data)]
    if made is tuple:
        return _tuple(data, of, where, strict=True)
    try:
        return made(decode(v, of, f"{where}.item") for v in data)
    except TypeError as exc:  # an unhashable item
        raise DecodeError(where, f"cannot make a set of the journal's items: {exc}") from None


def _tuple(items: list[Any], args: tuple[Any, ...], where: str, strict: bool = False) -> Any:
    """`items` as a tuple of the declared `args`: another length is untyped, or a misfit (`strict`)."""
    args = _tuple_args(args, len(items), where, strict)
    return tuple(
        decode(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True))
    )


def _tuple_args(args: tuple[Any, ...], n: int, where: str, strict: bool) -> tuple[Any, ...]:
    """The item types of a declared tuple of `n` items: untyped for another length, unless `strict`."""
    if len(args) == 2 and args[1] is Ellipsis:
        return (args[0],) * n
    if len(args) != n:
        if strict and args:
            raise DecodeError(where, f"the journal holds {n} items where {len(args)} are declared")
        return (None,) * n
    return args


def _plain_scalar(data: Any, shape: Shape, where: str) -> Any:
    for value in shape.literals:
        if type(value) is type(data) and value == data:
            return data
    for cls, bases in shape.subclasses:  # `class Label(str)`, journaled as its str
        if isinstance(data, bases):
            return cls(data)
    for cls in shape.enums:
        try:
            return cls(data)
        except ValueError:
            pass
    raise _misfit(where, repr(data), shape)


def _misfit(where: str, held: str, shape: Shape) -> DecodeError:
    return DecodeError(where, f"the journal holds {held} where the program declares {shape.shown}")


def _build(
    cls: type, fields: dict[str, Any], where: str, hints: dict[str, Any] | None = None
) -> Any:
    """An attrs class, dataclass or pydantic model from its fields' recorded values."""
    if hints is None:
        hints = field_types(cls)
    if is_model(cls):
        return _build_model(cls, fields, hints, where)
    init, required = _params.get(cls) or _params_of(cls)
    unknown = fields.keys() - init.keys()
    if unknown:
        raise DecodeError(
            where, f"{cls.__qualname__} has no field {sorted(unknown)[0]!r} (was it renamed?)"
        )
    for name in required:
        if name not in fields:
            raise DecodeError(
                f"{where}.{name}", f"{cls.__qualname__} needs a {name!r}; the journal has none"
            )
    kwargs = {}
    for k, v in fields.items():  # a loop, not a comprehension: a frame less a level
        kwargs[init[k]] = decode(v, hints.get(k), f"{where}.{k}")
    try:
        return cls(**kwargs)
    except Exception as exc:  # a validator that refuses the value
        raise DecodeError(
            where, f"cannot build {cls.__qualname__} from the journal: {exc}"
        ) from None


_params: dict[type, tuple[dict[str, str], tuple[str, ...]]] = {}


def _params_of(cls: type) -> tuple[dict[str, str], tuple[str, ...]]:
    """An attrs class's or dataclass's init fields (name: argument name), and the required."""
    if attrs.has(cls):
        fields = [
            (a.name, a.alias or a.name, a.default is attrs.NOTHING, a.init)
            for a in attrs.fields(cls)
        ]
    else:
        none = dataclasses.MISSING
        fields = [
            (f.name, f.name, f.default is none is f.default_factory, f.init)
            for f in dataclasses.fields(cls)
        ]
    init = {name: arg for name, arg, _, takes in fields if takes}
    required = tuple(name for name, _, needed, takes in fields if takes and needed)
    _params[cls] = (init, required)
    return init, required


def _build_model(cls: Any, fields: dict[str, Any], hints: dict[str, Any], where: str) -> Any:
    """A pydantic model, validated by pydantic: parts that fit no annotation pass as recorded.

    So the model's own coercions apply (an ISO date string to a `datetime`).
    """
    names = {f.alias: name for name, f in cls.model_fields.items() if f.alias}
    values = {}
    for k, v in fields.items():
        hint = hints.get(names.get(k, k))
        values[k] = decode(v, None if hint is None else typing.Union[hint, Any], f"{where}.{k}")  # noqa: UP007
    try:
        return cls.model_validate(values)
    except Exception as exc:  # pydantic's ValidationError, or a validator's own error
        if not hasattr(exc, "errors"):
            raise DecodeError(where, f"cannot build {cls.__qualname__}: {exc}") from None
        first = exc.errors()[0]
        path = "".join(f"[{p}]" if type(p) is int else f".{p}" for p in first["loc"])
        got = f" (the journal holds {first['input']!r})" if first["type"] != "missing" else ""
        raise DecodeError(
            f"{where}{path}", f"cannot build {cls.__qualname__}: {first['msg']}{got}"
        ) from None


def _list_body(body: Any, where: str, tag: str) -> list[Any]:
    if type(body) is not list:
        raise DecodeError(where, f"the body of {tag} must be a list, not {type(body).__name__}")
    return body


def _decode_tagged(tag: str, data: dict[str, Any], into: Any, where: str) -> Any:
    body = data[tag]
    if tag == "$bytes":
        if type(body) is not str:
            raise DecodeError(where, "the body of $bytes must be a base64 string")
        try:
            return base64.b64decode(body, validate=True)
        except ValueError as exc:
            raise DecodeError(where, f"malformed {tag} value: {exc}") from None
    if tag == "$float":
        if body not in ("inf", "-inf", "nan"):
            raise DecodeError(where, f"$float must be 'inf', '-inf' or 'nan', not {body!r}")
        return float(body)
    cls = _class_for(tag, body, shape_of(into), where)  # an enum
    value = decode(data["value"], None, f"{where}.value")
    try:
        return cls(value)
    except ValueError:
        raise DecodeError(where, f"{value!r} is not a member of {cls.__qualname__}") from None


def _collection(
    tag: str, data: dict[str, Any], into: Any, where: str, chosen: Any = SEVERAL
) -> Any:
    """A tagged tuple, set or dict, its items decoded by the declared member of its kind.

    Loops, not comprehensions, and no call between here and an item's
    `decode`: a recursive class nests no deeper here than `encode` did.
    """
    items = _list_body(data[tag], where, tag)
    if chosen is SEVERAL:
        shape = shape_of(into)
        alternatives = (
            shape.maps if tag == "$dict" else shape.sets if tag != "$tuple" else shape.tuples
        )
        if tag == "$tuple":  # a tuple of another length fits none: decoded untyped
            n = len(items)
            alternatives = [a for a in alternatives if len(a[1]) == n or a[1][1:] == (...,)]
        if len(alternatives) > 1:

            def attempt(alternative: Any, data: Any, where: str) -> Any:
                return _collection(tag, data, into, where, alternative)

            return _first(alternatives, attempt, data, where, shape, False)
        chosen = alternatives[0][1] if alternatives else None
    out: list[Any] = []
    try:
        if tag == "$dict":
            kt, vt, _ = chosen or (None, None, None)
            for pair in items:
                if type(pair) is not list or len(pair) != 2:
                    raise DecodeError(
                        where, "the body of $dict must be a list of [key, value] pairs"
                    )
                key = decode(pair[0], kt, f"{where}.key")
                out.append((key, decode(pair[1], vt, f"{where}[{key!r}]")))
            return dict(out)
        if tag == "$tuple":
            args = _tuple_args(chosen or (), len(items), where, False)
            for i, v in enumerate(items):
                out.append(decode(v, args[i], f"{where}[{i}]"))
            return tuple(out)
        of = chosen[1] if chosen else None
        for v in items:
            out.append(decode(v, of, f"{where}.item"))
        return set(out) if tag == "$set" else frozenset(out)
    except TypeError as exc:  # an unhashable set item or key
        raise DecodeError(where, f"malformed {tag} value: {exc}") from None
