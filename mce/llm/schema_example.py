"""Example values valid against a JSON schema: what the scripted model answers by default.

>>> example_from_schema({"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True})
['example', 'example1']
"""

from __future__ import annotations

import math
from typing import Any


def example_from_schema(schema: dict[str, Any]) -> Any:
    """A small value valid against a JSON schema (what the default model answers).

    It follows `$ref`s into `$defs`, and honours `enum`/`const`, the first
    usable branch of `anyOf`/`oneOf`, `allOf`, numeric bounds and
    `multipleOf`, string lengths and common formats (date, date-time, time,
    uuid, email, uri), `minItems`/`uniqueItems`, and required properties.

    >>> example_from_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    {'n': 0}
    >>> example_from_schema({"type": "integer", "exclusiveMinimum": 3, "multipleOf": 2})
    4
    >>> example_from_schema({"type": "string", "format": "date", "minLength": 1})
    '2024-01-01'
    """
    return _example(schema, schema, 0)


_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "P1D",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
}


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"cannot follow the external $ref {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else ():
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise ValueError(f"$ref {ref!r} does not name a schema")
    return node


def _example(schema: Any, root: dict[str, Any], depth: int, index: int = 0) -> Any:
    if schema is True or schema == {}:
        return None if index == 0 else index
    if not isinstance(schema, dict) or depth > 64:
        return None
    if "$ref" in schema:
        return _example(_resolve(schema["$ref"], root), root, depth + 1, index)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        options = schema["enum"]
        return options[index % len(options)]
    if "default" in schema and index == 0:
        return schema["default"]
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if "$ref" in part else part
            merged.update(part)
        return _example(merged, root, depth + 1, index)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = schema[key]
            usable = [b for b in branches if b.get("type") != "null"] or branches
            return _example(usable[index % len(usable)], root, depth + 1, index)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        return _example({**schema, "type": kinds[0]}, root, depth + 1, index)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties", {})
        value = {
            name: _example(props.get(name, {}), root, depth + 1)
            for name in schema.get("required", ())
        }
        missing = schema.get("minProperties", 0) - len(value)
        for name in props:
            if missing <= 0:
                break
            if name not in value:
                value[name] = _example(props[name], root, depth + 1)
                missing -= 1
        return value
    if kind == "array":
        prefix = schema.get("prefixItems")
        if prefix is not None:
            return [_example(s, root, depth + 1) for s in prefix]
        count = schema.get("minItems", 0)
        items = schema.get("items", {})
        distinct = schema.get("uniqueItems", False)
        return [_example(items, root, depth + 1, i if distinct else 0) for i in range(count)]
    if kind == "string":
        return _string_example(schema, index)
    if kind in ("integer", "number"):
        return _number_example(schema, kind == "integer", index)
    if kind == "boolean":
        return bool(index % 2)
    if kind == "null":
        return None
    return None


def _string_example(schema: dict[str, Any], index: int) -> str:
    text = _FORMATS.get(schema.get("format", ""), "example")
    if index and schema.get("format") not in _FORMATS:
        text = f"example{index}"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < low:
        text += "x" * (low - len(text))
    if high is not None and len(text) > high:
        text = text[:high]
    return text


def _number_example(schema: dict[str, Any], integer: bool, index: int) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    value: float = 0
    if low is not None and value < low:
        value = low
    if xlow is not None and value <= xlow:
        value = math.floor(xlow) + 1 if integer else xlow + 1
        if xhigh is not None and value >= xhigh:
            value = (xlow + xhigh) / 2
    if high is not None and value > high:
        value = high
    if xhigh is not None and value >= xhigh:
        value = math.ceil(xhigh) - 1 if integer else xhigh - 1
    value += index * (step or 1)
    if step:
        value = math.ceil(value / step) * step
        if xlow is not None and value <= xlow:
            value += step
    return math.ceil(value) if integer else float(value)


__all__ = ["example_from_schema"]
