"""What a declared type accepts of a plain JSON value: the decoder's view of a type.

>>> shape = shape_of(list[int] | list[str])
>>> [shown for shown, _ in shape.arrays]
['list[int]', 'list[str]']
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
import types
import typing
from typing import Any

import attrs

_NO_TYPE: frozenset[Any] = frozenset({None, Any, object})
_hints: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """A class's resolved field annotations (empty where they cannot be resolved)."""
    hints = _hints.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable forward reference: decode those fields untyped
            hints = {}
        _hints[cls] = hints
    return hints


def bound_field_types(cls: type, args: tuple[Any, ...]) -> dict[str, Any]:
    """A generic class's field annotations with its type parameters bound to `args`."""
    binding = dict(zip(getattr(cls, "__parameters__", ()), args, strict=False))
    return {name: _bind(hint, binding) for name, hint in field_types(cls).items()}


def _bind(hint: Any, binding: dict[Any, Any]) -> Any:
    try:
        if hint in binding:
            return binding[hint]
        params = getattr(hint, "__parameters__", ())
        return hint[tuple(binding.get(p, p) for p in params)] if params else hint
    except TypeError:  # unhashable metadata, or an alias that takes no arguments
        return hint


def _members(into: Any) -> tuple[Any, ...]:
    """The alternatives a declared type allows (a union's members; Annotated unwrapped)."""
    origin = typing.get_origin(into)
    if origin is typing.Annotated:
        return _members(typing.get_args(into)[0])
    if origin is typing.Union or origin is types.UnionType:
        return tuple(m for a in typing.get_args(into) for m in _members(a))
    return (into,)


SEVERAL: Any = object()  # a shape's plain values need `_first`: several alternatives, or none


class Shape:
    """What a declared type accepts of a plain JSON value, worked out once per type.

    Alternatives are `(shown, what)` pairs in the union's written order,
    except that a plain JSON object is tried as a declared dict before a
    class, and a plain array as a list before a tuple or set: what `encode`
    writes plainly is a dict or a list, so a replay gives what the live run had.
    """

    __slots__ = (
        *("into", "other", "shown", "open", "scalars", "enums", "literals", "subclasses"),
        *("classes", "bound", "maps", "lists", "tuples", "sets", "objects", "arrays"),
        *("dict_of", "list_of", "leaves"),
    )

    def __init__(self, into: Any) -> None:
        self.into = into
        self.other: Shape | None = None  # the type written in another member order
        self.shown = show(into)
        self.open = False  # a member the codec cannot check: a misfit is served as recorded
        self.maps: list[tuple[str, Any]] = []  # (key, value type, a TypedDict's by key or None)
        self.classes: list[type] = []  # built from a JSON object's fields
        self.bound: dict[type, dict[str, Any]] = {}  # a generic class's bound field types
        self.lists: list[tuple[str, Any]] = []  # (list, item type)
        self.tuples: list[tuple[str, Any]] = []  # the tuple's type arguments
        self.sets: list[tuple[str, Any]] = []  # (set or frozenset, item type)
        self.enums: list[type] = []
        self.literals: list[Any] = []
        self.subclasses: list[tuple[type, tuple[type, ...]]] = []  # (class, what it is made of)
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
            elif attrs.has(origin) or dataclasses.is_dataclass(origin) or is_model(origin):
                self.classes.append(origin)
                if args:  # a generic class: its fields decode by the declared arguments
                    self.bound[origin] = bound_field_types(origin, args)
            elif typing.is_typeddict(origin):  # a dict whose values decode by key
                self.maps.append((show(member), (None, None, field_types(origin))))
            else:
                self._container(origin, args, show(member))
                scalars.append(origin)
                bases = tuple(b for b in (int, str, float) if issubclass(origin, b))
                if origin is float:
                    scalars.append(int)  # JSON writes a whole float as an integer
                elif bases and origin is not bool and origin not in bases:
                    # a subclass of int, str or float is journaled as its base: made again
                    self.subclasses.append((origin, (*bases, int) if float in bases else bases))
        self.scalars = tuple(scalars)
        self.enums = list(dict.fromkeys(self.enums))  # each once (`Literal[E.A] | E`)
        self.objects = self.maps + [(c.__qualname__, (c, self.bound.get(c))) for c in self.classes]
        self.arrays = self.lists + [(s, (tuple, a)) for s, a in self.tuples] + self.sets
        self.dict_of = self.list_of = None if self.open else SEVERAL  # none: as recorded
        if self.objects:
            lone = self.objects[0][1]
            typed = len(self.objects) == 1 and len(lone) == 3 and lone[2] is None  # a dict
            self.dict_of = lone[1] if typed and not self.open else SEVERAL
        if self.arrays:
            lone = self.arrays[0][1]
            typed = len(self.arrays) == 1 and lone[0] is list
            self.list_of = lone[1] if typed and not self.open else SEVERAL
        self.leaves = None  # a list's items' types when only plain scalars fit: kept as they are
        if self.list_of is not SEVERAL and self.list_of is not None:
            item = shape_of(self.list_of)
            if not (item.open or item.objects or item.arrays or item.tuples or item.sets):
                self.leaves = item.scalars or None

    def _container(self, origin: type, args: tuple[Any, ...], shown: str) -> None:
        two = args if len(args) == 2 else (None, None)
        one = args[0] if len(args) == 1 else None
        if issubclass(dict, origin):
            self.maps.append((shown, (*two, None)))
        if issubclass(list, origin):
            self.lists.append((shown, (list, one)))
        if origin is tuple:
            self.tuples.append((shown, args))
        if issubclass(frozenset, origin) or issubclass(set, origin):
            self.sets.append((shown, (frozenset if issubclass(frozenset, origin) else set, one)))


_shapes: dict[Any, Shape] = {}


def shape_of(into: Any) -> Shape:
    """The shape of `into`, cached by the type itself, and by its members' written order.

    Unions compare equal in any order (`A | B == B | A`), and the order
    decides what a plain value decodes as: equal types written in another
    order get a shape of their own, whatever was decoded before.
    """
    try:
        shape = _shapes[into]
    except KeyError:
        shape = _shapes[into] = Shape(into)
        return shape
    except TypeError:  # an unhashable annotation (Annotated metadata): worked out each time
        return Shape(into)
    if shape.into is into:
        return shape
    while not _written_alike(shape.into, into):
        if shape.other is None:
            shape.other = Shape(into)
        shape = shape.other
    return shape


def _written_alike(a: Any, b: Any) -> bool:
    """Whether two equal types have their arguments in the same order, all the way down."""
    if a is b:
        return True
    args, others = typing.get_args(a), typing.get_args(b)
    return len(args) == len(others) and all(
        x == y and _written_alike(x, y) for x, y in zip(args, others, strict=True)
    )


def show(into: Any) -> str:
    """A declared type as a reader writes it: `list[Point] | None`, no module paths."""
    if isinstance(into, type) and not typing.get_args(into):
        return into.__qualname__
    return re.sub(r"(?<![\w'\".])(?:\w+\.)+", "", repr(into)).replace("NoneType", "None")


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def is_model(cls: type) -> bool:
    """Whether `cls` is a pydantic model (pydantic is never imported for this)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)
