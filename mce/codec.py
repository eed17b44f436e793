"""Encoding effect values for the journal: JSON that round-trips Python values.

Plain JSON values pass through unchanged. Everything JSON cannot say
exactly is tagged with a one-key object: tuples, sets, bytes, dicts whose
keys are not strings (or whose keys look like tags), and attrs or dataclass
instances, which are stored with their fields (and, for people and other
tools, their class name). `decode` inverts `encode`, building classes by
the type the program declares - it never imports or looks up a class by a
name read from the journal - and makes a plain value the declared type
too, or says which part does not fit. A value `encode` cannot journal is
a `TypeError` naming the offending value and where it sits in the structure.

>>> from attrs import frozen
>>> encode((1, {"a": b"x"}))
{'$tuple': [1, {'a': {'$bytes': 'eA=='}}]}
>>> decode(encode((1, {"a": b"x"})))
(1, {'a': b'x'})
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import re
import sys
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


def _class_for(tag: str, name: Any, into: Any, where: str) -> type:
    """The declared class to build a tagged instance as; never looked up by `name`."""
    shape = _shape(into)
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
    member - or `DecodeError` names the part that does not fit. `Any`,
    `object`, a type variable or another type the codec cannot check (a
    union member among them) serves a plain value as it was recorded.

    >>> decode({"$set": [1, 2]})
    {1, 2}
    >>> decode({"$float": "inf"})
    inf
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
    t = type(data)
    if t is dict:
        if len(data) <= 2:
            for tag in _TAGS:
                if tag in data and len(data) == (2 if tag in _WITH_BODY else 1):
                    return _decode_tagged(tag, data, into, where)
        if into is None:
            return {k: decode(v, None, f"{where}[{k!r}]") for k, v in data.items()}
        return _plain_object(data, _shape(into), where)
    if into is None:
        if t is list:
            return [decode(v, None, f"{where}[{i}]") for i, v in enumerate(data)]
        return data
    shape = _shape(into)
    if t is list:
        return _plain_array(data, shape, where)
    if shape.open or isinstance(data, shape.scalars):
        return data
    return _plain_scalar(data, shape, where)


class _Shape:
    """What a declared type accepts of a plain JSON value, worked out once per type."""

    def __init__(self, into: Any) -> None:
        self.shown = _show(into)
        self.open = False  # a member the codec cannot check: a misfit is served as recorded
        self.mapping: tuple[Any, Any] | None = None  # (key, value type): a dict fits
        self.typed_dict: dict[str, Any] = {}  # a TypedDict's value types, by key
        self.sequence: tuple[Any] | None = None  # (item type,): a list fits
        self.tuple_: tuple[Any, ...] | None = None  # the tuple's type arguments
        self.set_: tuple[type, Any] | None = None  # (set or frozenset, item type)
        self.classes: list[type] = []  # built from a JSON object's fields
        self.enums: list[type] = []
        self.literals: list[Any] = []
        scalars: list[type] = []
        for member in _members(into):
            while hasattr(member, "__supertype__"):  # a NewType: its base is what is journaled
                member = member.__supertype__
            origin = typing.get_origin(member) or member
            args = typing.get_args(member)
            if origin is typing.Literal:
                self.literals.extend(args)  # an enum member's class decodes it tagged:
                self.enums.extend(type(v) for v in args if isinstance(v, enum.Enum))
            elif member in _NO_TYPE or not isinstance(origin, type) or _is_protocol(origin):
                self.open = True  # Any, a TypeVar, an unresolved forward reference, a Protocol
            elif issubclass(origin, enum.Enum):
                self.enums.append(origin)
            elif attrs.has(origin) or dataclasses.is_dataclass(origin) or _is_model(origin):
                self.classes.append(origin)
            elif typing.is_typeddict(origin):  # a dict whose values decode by key
                self.mapping = self.mapping or (None, None)
                self.typed_dict = _field_types(origin)
            else:
                self._container(origin, args)
                scalars.append(origin)
                if origin is float:
                    scalars.append(int)  # JSON writes a whole float as an integer
                elif origin is not bool:  # a subclass of int or str is journaled as its base
                    scalars.extend(b for b in (int, str, float) if issubclass(origin, b))
        self.scalars = tuple(scalars)
        self.enums = list(dict.fromkeys(self.enums))  # each once (`Literal[E.A] | E`)

    def _container(self, origin: type, args: tuple[Any, ...]) -> None:
        two = args if len(args) == 2 else (None, None)
        one = args[0] if len(args) == 1 else None
        if self.mapping is None and issubclass(dict, origin):
            self.mapping = two
        if self.sequence is None and issubclass(list, origin):
            self.sequence = (one,)
        if self.tuple_ is None and origin is tuple:
            self.tuple_ = args
        if self.set_ is None and (issubclass(frozenset, origin) or issubclass(set, origin)):
            self.set_ = (frozenset if issubclass(frozenset, origin) else set, one)


_shapes: dict[Any, _Shape] = {}


def _shape(into: Any) -> _Shape:
    try:
        shape = _shapes.get(into)
    except TypeError:  # an unhashable annotation (Annotated metadata): worked out each time
        return _Shape(into)
    if shape is None:
        shape = _shapes[into] = _Shape(into)
    return shape


def _show(into: Any) -> str:
    """A declared type as a reader writes it: `list[Point] | None`, no module paths."""
    if isinstance(into, type) and not typing.get_args(into):
        return into.__qualname__
    return re.sub(r"(?<![\w'\".])(?:\w+\.)+", "", repr(into)).replace("NoneType", "None")


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def _is_model(cls: type) -> bool:
    """Whether `cls` is a pydantic model (pydantic is never imported for this)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


def _plain_object(data: dict[str, Any], shape: _Shape, where: str) -> Any:
    if shape.mapping is None:
        misfits = []
        for cls in shape.classes:
            try:
                return _build(cls, data, where)
            except DecodeError as exc:
                misfits.append(exc)
        if len(misfits) == 1 and not shape.open:
            raise misfits[0]
        if not shape.open:  # several classes refuse it: say why each does
            raise _misfit(where, "a JSON object" + "".join(f" ({e})" for e in misfits), shape)
    of = shape.mapping[1] if shape.mapping else None
    return {k: decode(v, shape.typed_dict.get(k, of), f"{where}[{k!r}]") for k, v in data.items()}


def _plain_array(data: list[Any], shape: _Shape, where: str) -> Any:
    if shape.sequence is None:
        if shape.tuple_ is not None:
            return _tuple(data, shape.tuple_, where, shape)
        if shape.set_ is not None:
            made, of = shape.set_
            try:
                return made(decode(v, of, f"{where}.item") for v in data)
            except TypeError as exc:  # an unhashable item
                raise DecodeError(
                    where, f"cannot make a set of the journal's items: {exc}"
                ) from None
        if not shape.open:
            raise _misfit(where, "a JSON array", shape)
    of = shape.sequence[0] if shape.sequence else None
    return [decode(v, of, f"{where}[{i}]") for i, v in enumerate(data)]


def _tuple(items: list[Any], args: tuple[Any, ...], where: str, plain: _Shape | None = None) -> Any:
    """`items` as a tuple of the declared `args`: another length is untyped, or a misfit (`plain`)."""
    n = len(items)
    if len(args) == 2 and args[1] is Ellipsis:
        args = (args[0],) * n
    elif len(args) != n:
        if plain is not None and args:
            raise _misfit(where, f"{n} items", plain)
        args = (None,) * n
    return tuple(
        decode(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True))
    )


def _plain_scalar(data: Any, shape: _Shape, where: str) -> Any:
    for value in shape.literals:
        if type(value) is type(data) and value == data:
            return data
    for cls in shape.enums:
        try:
            return cls(data)
        except ValueError:
            pass
    raise _misfit(where, repr(data), shape)


def _misfit(where: str, held: str, shape: _Shape) -> DecodeError:
    return DecodeError(where, f"the journal holds {held} where the program declares {shape.shown}")


def _build(cls: type, fields: dict[str, Any], where: str) -> Any:
    """An attrs class, dataclass or pydantic model from its fields' recorded values."""
    hints = _field_types(cls)
    if _is_model(cls):
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
    kwargs = {init[k]: decode(v, hints.get(k), f"{where}.{k}") for k, v in fields.items()}
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
    shape = _shape(into)
    try:
        if tag == "$tuple":
            return _tuple(_list_body(body, where, tag), shape.tuple_ or (), where)
        if tag == "$set" or tag == "$frozenset":
            of = shape.set_[1] if shape.set_ is not None else None
            items = [decode(v, of, f"{where}.item") for v in _list_body(body, where, tag)]
            return set(items) if tag == "$set" else frozenset(items)
        if tag == "$bytes":
            if type(body) is not str:
                raise DecodeError(where, "the body of $bytes must be a base64 string")
            return base64.b64decode(body, validate=True)
        if tag == "$dict":
            kt, vt = shape.mapping or (None, None)
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
    return _build(cls, fields, where)
