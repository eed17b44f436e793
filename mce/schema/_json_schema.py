"""JSON schemas as mce gives them: references inlined, keys ordered, and OpenAI's strict form.

pydantic writes the schema; `_inline` replaces its `$ref`s (keeping
recursive types in `$defs`), `_order` puts `type` first, and `_strict_root`
makes the schema OpenAI's strict structured output accepts, or raises
`_NotStrict` saying why it cannot be.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from pydantic.json_schema import GenerateJsonSchema


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


_KEY_ORDER = ("type", "title", "description", "enum", "const", "format")


def _order(node: Any) -> Any:
    """Keys in a readable order (type first), recursively; pydantic sorts them."""
    if isinstance(node, list):
        return [_order(v) for v in node]
    if not isinstance(node, dict):
        return node
    first = [k for k in _KEY_ORDER if k in node]
    return {k: _order(node[k]) for k in [*first, *(k for k in node if k not in first)]}
