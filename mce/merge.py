"""Three-way merges that combine the states of parallel branches.

Every branch of `par`/`gather`/`traverse`/`collect` starts from the same
state, `base`. When they have all finished, their final states are folded in
branch order with `merge(base, left, right)`.

The default merge works field by field on attrs classes, dataclasses and
dicts: a field changed by one branch takes that branch's value, unchanged
fields stay, and a field changed *differently* by two branches raises
`StateConflict` (an exception: a workflow that races on a field has a bug),
unless the field declares how to merge:

* `concat` - sequences: each branch's appended items, in branch order;
* `union`  - dicts and sets: each branch's additions and removals;
* `add`    - counters: base plus the sum of every branch's delta;
* `custom(f)` - any function `f(base, left, right) -> merged`.

Declare one with attrs' or dataclasses' field metadata (`declare(concat)`)
or with `typing.Annotated[T, concat]`. For dict states, `for_dict` builds a
merge with per-key declarations; pass any merge to `run(..., merge=...)`.

>>> from attrs import frozen, field
>>> @frozen
... class Notes:
...     topic: str = ""
...     log: tuple[str, ...] = field(default=(), metadata=declare(concat))
>>> base = Notes()
>>> merge(base, Notes("news", ("a",)), Notes("", ("b",)))
Notes(topic='news', log=('a', 'b'))
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Any, Final, TypeVar, final

import attrs

_T = TypeVar("_T")

MERGE_KEY: Final = "mce.merge"
"""The field-metadata key under which a field's declared merge is stored."""


@final
@attrs.frozen
class Key:
    """A dict key on a conflict's path (a plain `str` on a path is an attribute).

    >>> Key("k")
    Key(key='k')
    """

    key: object


PathPart = str | Key
"""One step into a state: an attribute name, or a `Key` into a mapping."""


def render_path(path: tuple[PathPart, ...]) -> str:
    """A path as Python would spell it: `index['k'].count`.

    >>> render_path(("index", Key("k"), "count"))
    "index['k'].count"
    """
    text = ""
    for part in path:
        if isinstance(part, Key):
            text += f"[{part.key!r}]"
        else:
            text += f".{part}" if text else part
    return text


class StateConflict(Exception):
    """Two parallel branches changed the same state field to different values.

    This is raised, not returned: it is a bug in the workflow. It names the
    field, both values and, when known, both branches. `path` locates the
    field: a tuple of attribute names and `Key`s (`field` spells it out).

    >>> str(StateConflict("count", 1, 2, branches=(0, 3)))
    "state field 'count' was changed differently by parallel branch 0 (to 1) and branch 3 (to 2); write it in one branch only or declare a merge for it (see mce.merge)"
    >>> StateConflict(("index", Key("k")), 1, 2).field
    "index['k']"
    """

    def __init__(
        self,
        path: tuple[PathPart, ...] | str,
        left: object,
        right: object,
        *,
        branches: tuple[int | None, int | None] = (None, None),
        reason: str | None = None,
    ) -> None:
        if isinstance(path, str):
            path = (path,) if path else ()
        self.path: tuple[PathPart, ...] = path
        self.left = left
        self.right = right
        self.branches = branches
        self.reason = reason
        super().__init__(self._message())

    @property
    def field(self) -> str:
        """The path spelled out: `''` for the whole state, `"log"`, `"index['k']"`."""
        return render_path(self.path)

    def _message(self) -> str:
        if not self.path:
            where = "the state"
        elif isinstance(self.path[0], Key):
            where = f"state key {self.field}"
        else:
            where = f"state field {self.field!r}"
        lb, rb = self.branches
        first = f"parallel branch {lb}" if lb is not None else "one parallel branch"
        second = f"branch {rb}" if rb is not None else "another"
        if self.reason:
            return f"{where} cannot be merged: {self.reason}"
        return (
            f"{where} was changed differently by {first} (to {self.left!r}) and "
            f"{second} (to {self.right!r}); write it in one branch only or declare "
            "a merge for it (see mce.merge)"
        )

    def within(self, part: PathPart) -> StateConflict:
        """The same conflict, located under `part` (for nested merges).

        >>> StateConflict("k", 1, 2).within("log").field
        'log.k'
        >>> StateConflict((Key("k"),), 1, 2).within("index").path
        ('index', Key(key='k'))
        """
        return StateConflict(
            (part, *self.path), self.left, self.right, branches=self.branches, reason=self.reason
        )

    def between(self, left: int | None, right: int | None) -> StateConflict:
        """The same conflict, naming the two branches.

        >>> StateConflict("x", 1, 2).between(0, 1).branches
        (0, 1)
        """
        return StateConflict(
            self.path, self.left, self.right, branches=(left, right), reason=self.reason
        )


_MISSING: Final = object()


def _read(state: Any, path: tuple[PathPart, ...]) -> Any:
    for part in path:
        if isinstance(part, Key):
            state = state.get(part.key, _MISSING) if isinstance(state, Mapping) else _MISSING
        else:
            state = getattr(state, part, _MISSING)
        if state is _MISSING:
            break
    return state


def first_writer(path: tuple[PathPart, ...], base: Any, states: Sequence[Any]) -> int | None:
    """The index of the first of `states` that differs from `base` at `path`, if any.

    Used to name the earlier of two branches in a `StateConflict`.

    >>> first_writer((Key("a"),), {"a": 0}, [{"a": 0}, {"a": 1}, {"a": 2}])
    1
    """
    before = _read(base, path)
    for k, state in enumerate(states):
        if state is not base and _read(state, path) != before:
            return k
    return None


@final
class FieldMerge:
    """A named three-way merge for one field: `(base, left, right) -> merged`.

    >>> add(1, 3, 5)
    7
    >>> add
    FieldMerge(add)
    """

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[Any, Any, Any], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "custom")

    def __call__(self, base: _T, left: _T, right: _T) -> _T:
        result: _T = self.fn(base, left, right)
        return result

    def __repr__(self) -> str:
        return f"FieldMerge({self.name})"


def _concat(base: Sequence[Any], left: Sequence[Any], right: Sequence[Any]) -> Sequence[Any]:
    n = len(base)
    for side in (left, right):
        if len(side) < n or side[:n] != base:
            raise StateConflict(
                "",
                left,
                right,
                reason="concat merges sequences that branches only append to, "
                f"but a branch rewrote the existing items (base {base!r}, branch {side!r})",
            )
    merged: Sequence[Any] = left + right[n:]  # type: ignore[operator]
    return merged


def _union(base: Any, left: Any, right: Any) -> Any:
    if isinstance(base, Mapping):
        return _merge_mapping(base, left, right, lambda _k: _conflict_merge)
    if isinstance(base, Set):
        removed = (base - left) | (base - right)
        merged: Any = (base - removed) | (left - base) | (right - base)
        return merged if isinstance(merged, type(base)) else frozenset(merged)
    raise StateConflict("", left, right, reason=f"union needs dicts or sets, got {base!r}")


def _add(base: Any, left: Any, right: Any) -> Any:
    return left + right - base


concat: Final = FieldMerge(_concat, "concat")
"""Sequences: the items each branch appended, in branch order.

>>> concat((1,), (1, 2), (1, 3))
(1, 2, 3)
"""

union: Final = FieldMerge(_union, "union")
"""Dicts and sets: every branch's additions and removals; a key set to two
different values is a conflict.

>>> union({"a": 1}, {"a": 1, "b": 2}, {"c": 3})
{'a': 1, 'b': 2, 'c': 3}
"""

add: Final = FieldMerge(_add, "add")
"""Counters: the base plus each branch's delta.

>>> add(10, 11, 12)
13
"""


def custom(fn: Callable[[_T, _T, _T], _T], name: str | None = None) -> FieldMerge:
    """Declare a user function `(base, left, right) -> merged` as a field merge.

    >>> biggest = custom(lambda base, left, right: max(left, right), "max")
    >>> biggest(0, 4, 2)
    4
    """
    return FieldMerge(fn, name)


def declare(how: FieldMerge | Callable[[Any, Any, Any], Any]) -> dict[str, FieldMerge]:
    """Field metadata declaring a merge: `field(metadata=declare(concat))`.

    Works with attrs' `field` and dataclasses' `field`.

    >>> declare(add)
    {'mce.merge': FieldMerge(add)}
    """
    return {MERGE_KEY: how if isinstance(how, FieldMerge) else FieldMerge(how)}


def _conflict_merge(base: Any, left: Any, right: Any) -> Any:
    if left is base or left == base:
        return right
    if right is base or right == base or left == right:
        return left
    raise StateConflict("", left, right)


_FieldSpec = tuple[str, str, Callable[[Any, Any, Any], Any]]
_field_cache: dict[type, tuple[_FieldSpec, ...]] = {}


def _annotated_merges(cls: type) -> dict[str, FieldMerge]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # unresolvable forward references: no Annotated declarations
        return {}
    found: dict[str, FieldMerge] = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            for extra in hint.__metadata__:
                if isinstance(extra, FieldMerge):
                    found[name] = extra
    return found


def _fields_of(cls: type) -> tuple[_FieldSpec, ...]:
    cached = _field_cache.get(cls)
    if cached is not None:
        return cached
    annotated = _annotated_merges(cls)
    specs: list[_FieldSpec] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            how = a.metadata.get(MERGE_KEY) or annotated.get(a.name) or _conflict_merge
            specs.append((a.name, a.alias or a.name, how))
    else:
        for f in dataclasses.fields(cls):
            how = f.metadata.get(MERGE_KEY) or annotated.get(f.name) or _conflict_merge
            specs.append((f.name, f.name, how))
    result = tuple(specs)
    _field_cache[cls] = result
    return result


def _merge_record(base: Any, left: Any, right: Any) -> Any:
    cls = type(base)
    changes: dict[str, Any] = {}
    for name, alias, how in _fields_of(cls):
        b, lv, rv = getattr(base, name), getattr(left, name), getattr(right, name)
        if rv is b:
            if lv is not b:
                changes[alias] = lv
            continue
        if lv is b:
            changes[alias] = rv
            continue
        try:
            merged = how(b, lv, rv)
        except StateConflict as conflict:
            raise conflict.within(name) from None
        changes[alias] = merged
    if not changes:
        return base
    if attrs.has(cls):
        return attrs.evolve(base, **changes)
    return dataclasses.replace(base, **changes)


def _merge_mapping(
    base: Mapping[Any, Any],
    left: Mapping[Any, Any],
    right: Mapping[Any, Any],
    how_for: Callable[[Any], Callable[[Any, Any, Any], Any]],
) -> Any:
    missing = object()
    result = dict(left)
    for key, rv in right.items():
        b = base.get(key, missing)
        if rv is b:
            continue
        lv = left.get(key, missing)
        if lv is b:
            result[key] = rv
            continue
        if b is missing:  # added by the right branch
            if lv is missing or lv == rv:
                result[key] = rv
                continue
            raise StateConflict((Key(key),), lv, rv)
        if lv is missing:  # deleted by the left branch
            if rv == b:
                continue
            raise StateConflict((Key(key),), "<deleted>", rv)
        try:
            result[key] = how_for(key)(b, lv, rv)
        except StateConflict as conflict:
            raise conflict.within(Key(key)) from None
    for key, b in base.items():
        if key not in right:  # deleted by the right branch
            lv = left.get(key, missing)
            if lv is missing or lv is b or lv == b:
                result.pop(key, None)
            else:
                raise StateConflict((Key(key),), lv, "<deleted>")
    if isinstance(base, dict) and type(base) is dict:
        return result
    return type(base)(result)  # type: ignore[call-arg]


def merge(base: _T, left: _T, right: _T) -> _T:
    """The default three-way merge of two branches' states.

    attrs classes, dataclasses and dicts merge field by field (honouring
    declared field merges); any other value merges only when at most one side
    changed it, or both changed it to equal values.

    >>> merge({"a": 0, "b": 0}, {"a": 1, "b": 0}, {"a": 0, "b": 2})
    {'a': 1, 'b': 2}
    >>> merge(0, 0, 5)
    5
    >>> merge(0, 1, 2)
    Traceback (most recent call last):
    ...
    mce.merge.StateConflict: the state was changed differently by one parallel branch (to 1) and another (to 2); write it in one branch only or declare a merge for it (see mce.merge)
    """
    if left is base or right is left:
        return right
    if right is base:
        return left
    cls = type(base)
    if type(left) is cls and type(right) is cls:
        if attrs.has(cls) or dataclasses.is_dataclass(cls):
            result: _T = _merge_record(base, left, right)
            return result
        if isinstance(base, Mapping):
            merged: _T = _merge_mapping(
                base,
                left,  # type: ignore[arg-type]
                right,  # type: ignore[arg-type]
                lambda _k: _conflict_merge,
            )
            return merged
    plain: _T = _conflict_merge(base, left, right)
    return plain


def for_dict(
    declared: Mapping[str, FieldMerge | Callable[[Any, Any, Any], Any]],
) -> Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Any]:
    """A merge for dict states with per-key declared merges.

    >>> m = for_dict({"hits": add, "log": concat})
    >>> m({"hits": 0, "log": []}, {"hits": 1, "log": ["a"]}, {"hits": 2, "log": ["b"]})
    {'hits': 3, 'log': ['a', 'b']}
    """
    table = dict(declared)

    def merge_dict(
        base: Mapping[str, Any], left: Mapping[str, Any], right: Mapping[str, Any]
    ) -> Any:
        if left is base or right is left:
            return right
        if right is base:
            return left
        return _merge_mapping(base, left, right, lambda k: table.get(k, _conflict_merge))

    return merge_dict


__all__ = [
    "FieldMerge",
    "Key",
    "MERGE_KEY",
    "PathPart",
    "StateConflict",
    "add",
    "concat",
    "custom",
    "declare",
    "for_dict",
    "merge",
    "union",
]
