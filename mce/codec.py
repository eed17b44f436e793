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
from typing import Any

import attrs

from mce._decode import DecodeError, UndeclaredType, decode

__all__ = ["DecodeError", "UndeclaredType", "decode", "encode"]


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
