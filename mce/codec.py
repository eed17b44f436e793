"""Encoding effect values for the journal: JSON that round-trips Python values.

Plain JSON values pass through unchanged. Everything JSON cannot say
exactly is tagged with a one-key object: tuples, sets, bytes, dicts whose
keys are not strings (or whose keys look like tags), and attrs or dataclass
instances, which are stored by their import path and fields. `decode`
inverts `encode`; anything else is a `TypeError` naming the offending value
and where it sits in the structure.

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
import importlib
import math
from typing import Any

import attrs

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
    if "<locals>" in cls.__qualname__:
        raise TypeError(
            f"cannot journal an instance of {cls.__qualname__}: a class defined inside a "
            "function cannot be imported back; define it at module level"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def _load(path: str, kind: str) -> type:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"journal names class {path!r}, which cannot be imported: {exc}") from None
    if kind == "$attrs":
        ok = attrs.has(obj)
    elif kind == "$enum":
        ok = isinstance(obj, type) and issubclass(obj, enum.Enum)
    else:
        ok = dataclasses.is_dataclass(obj)
    if not isinstance(obj, type) or not ok:
        raise ValueError(f"journal names {path!r} as {kind[1:]}, but it is not one")
    return obj


def decode(data: Any) -> Any:
    """Invert `encode`.

    >>> decode({"$set": [1, 2]})
    {1, 2}
    >>> decode({"$float": "inf"})
    inf
    """
    t = type(data)
    if t is list:
        return [decode(v) for v in data]
    if t is not dict:
        return data
    if len(data) <= 2:
        for tag in _TAGS:
            if tag in data and len(data) == (2 if tag in _WITH_BODY else 1):
                return _decode_tagged(tag, data)
    return {k: decode(v) for k, v in data.items()}


def _decode_tagged(tag: str, data: dict[str, Any]) -> Any:
    body = data[tag]
    if tag == "$tuple":
        return tuple(decode(v) for v in body)
    if tag == "$set":
        return {decode(v) for v in body}
    if tag == "$frozenset":
        return frozenset(decode(v) for v in body)
    if tag == "$bytes":
        return base64.b64decode(body)
    if tag == "$dict":
        return {decode(k): decode(v) for k, v in body}
    if tag == "$float":
        return float(body)
    cls = _load(body, tag)
    if tag == "$enum":
        return cls(decode(data["value"]))
    fields = {k: decode(v) for k, v in data["fields"].items()}
    if tag == "$attrs":
        init = {a.name: a.alias or a.name for a in attrs.fields(cls)}
        return cls(**{init.get(k, k): v for k, v in fields.items()})
    return cls(**fields)


__all__ = [
    "decode",
    "encode",
]
