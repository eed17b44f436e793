"""Hypothesis strategies that generate programs, for any instance and for `Step`.

Programs are drawn as *recipes* - small trees of named operations - and
built with an instance's own operations, so the same recipe denotes a
`Step`, a `StateT(EitherT(Async))` value or a user's monad. Recipes print
readably in falsifying examples.

* `programs(instance)`: programs using what the instance has (state,
  errors), built from `pure`, `bind`, `map`, `get`, `put`, `throw`, `catch`.
* `arrows(instance)`: Kleisli arrows `value -> program` with effects.
* `functions()`: pure functions, named.
* `steps(...)`: `Step` programs, including parallel blocks whose branches
  touch disjoint keys of a dict state (so that `par` equals sequence), with
  the state, error and value strategies you give.

>>> from hypothesis import given
>>> from mce.laws.instances import STEP
>>> @given(programs(STEP))
... def test_runs(program):
...     STEP.observe(program.build(STEP), 0)
>>> test_runs()
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, final

import anyio
from hypothesis import strategies as st

from mce.step import Step, fail, get, gets, lift, modify, par, pure, put
from mce.step import gather as _gather


@final
class Fn:
    """A named pure function (hypothesis prints the name).

    >>> Fn("inc", lambda x: x + 1)(1), Fn("inc", lambda x: x + 1)
    (2, inc)
    """

    __slots__ = ("fn", "name")

    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        self.name = name
        self.fn = fn

    def __call__(self, value: Any) -> Any:
        return self.fn(value)

    def __repr__(self) -> str:
        return self.name


def functions() -> st.SearchStrategy[Fn]:
    """Pure functions on arbitrary values.

    >>> from hypothesis import find
    >>> find(functions(), lambda f: f.name == "repr")
    repr
    """
    return _FUNCTIONS


def _functions() -> st.SearchStrategy[Fn]:
    tag = st.integers(0, 3)
    return st.one_of(
        st.just(Fn("identity", lambda x: x)),
        st.just(Fn("repr", repr)),
        tag.map(lambda c: Fn(f"pair_with({c})", lambda x: (c, x))),
        tag.map(lambda c: Fn(f"hash_mod({c + 2})", lambda x: hash(repr(x)) % (c + 2))),
    )


_FUNCTIONS = _functions()


def _hash_mod(c: int) -> Fn:
    return Fn(f"hash_mod({c})", lambda x: hash(repr(x)) % c)


@final
class Recipe:
    """A program description: build it with any instance's operations.

    >>> from mce.laws.instances import STEP
    >>> r = Recipe("bind", Recipe("pure", 1), Arrow("k_pure", Fn("repr", repr)))
    >>> r
    bind(pure(1), k_pure(repr))
    >>> STEP.observe(r.build(STEP), 0)
    ('ok', '1', 0)
    """

    __slots__ = ("args", "op")

    def __init__(self, op: str, *args: Any) -> None:
        self.op = op
        self.args = args

    def build(self, inst: Any) -> Any:
        op, args = self.op, self.args
        if op == "pure":
            return inst.pure(args[0])
        if op == "get":
            return inst.get()
        if op == "put":
            return inst.put(args[0])
        if op == "throw":
            return inst.throw(args[0])
        if op == "bind":
            return inst.bind(args[0].build(inst), args[1].build(inst))
        if op == "map":
            return inst.map(args[0].build(inst), args[1])
        if op == "catch":
            return inst.catch(args[0].build(inst), args[1].build(inst))
        raise ValueError(f"unknown recipe operation {op!r}")

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.args))})"


@final
class Arrow:
    """A Kleisli arrow description: `build(inst)` gives `value -> program`.

    >>> Arrow("k_put", 5)
    k_put(5)
    """

    __slots__ = ("args", "op")

    def __init__(self, op: str, *args: Any) -> None:
        self.op = op
        self.args = args

    def build(self, inst: Any) -> Callable[[Any], Any]:
        op, args = self.op, self.args
        if op == "k_pure":
            fn = args[0]
            return lambda a: inst.pure(fn(a))
        if op == "k_put":
            s = args[0]
            return lambda a: inst.bind(inst.put(s), lambda _: inst.pure(a))
        if op == "k_get":
            return lambda a: inst.map(inst.get(), lambda s: (s, a))
        if op == "k_throw_if":
            e, fn = args
            return lambda a: inst.throw(e) if fn(a) == 0 else inst.pure(a)
        if op == "k_program":
            recipe = args[0]
            return lambda a: inst.map(recipe.build(inst), lambda b: (a, b))
        raise ValueError(f"unknown arrow {op!r}")

    def __call__(self, inst: Any) -> Callable[[Any], Any]:
        return self.build(inst)

    def __repr__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.args))})"


_cache: dict[tuple[str, Any, int], st.SearchStrategy[Any]] = {}


def _cached(kind: str, inst: Any, depth: int, make: Callable[[], st.SearchStrategy[Any]]) -> Any:
    # Building strategies anew for every draw would make hypothesis validate
    # them every time: most of a law check's cost. One per instance and depth.
    key = (kind, inst, depth)  # holds the instance: no id reuse
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = make()
    return found


def programs(inst: Any, depth: int = 2) -> st.SearchStrategy[Recipe]:
    """Recipes of programs that use what `inst` has (state, errors).

    >>> from hypothesis import find
    >>> from mce.laws.instances import STEP
    >>> find(programs(STEP), lambda r: r.op == "get")
    get()
    """
    result: st.SearchStrategy[Recipe] = _cached(
        "programs", inst, depth, lambda: _programs(inst, depth)
    )
    return result


def _programs(inst: Any, depth: int) -> st.SearchStrategy[Recipe]:
    leaves: list[st.SearchStrategy[Recipe]] = [inst.values.map(lambda v: Recipe("pure", v))]
    if inst.has_state:
        leaves.append(st.just(Recipe("get")))
        leaves.append(inst.states.map(lambda s: Recipe("put", s)))
    if inst.has_error:
        leaves.append(inst.errors.map(lambda e: Recipe("throw", e)))
    leaf = st.one_of(leaves)
    if depth == 0:
        return leaf
    sub = st.deferred(lambda: programs(inst, depth - 1))
    nodes: list[st.SearchStrategy[Recipe]] = [
        leaf,
        st.builds(lambda m, k: Recipe("bind", m, k), sub, arrows(inst, depth - 1)),
        st.builds(lambda m, f: Recipe("map", m, f), sub, functions()),
    ]
    if inst.has_error:
        nodes.append(st.builds(lambda m, k: Recipe("catch", m, k), sub, arrows(inst, depth - 1)))
    return st.one_of(nodes)


def arrows(inst: Any, depth: int = 1) -> st.SearchStrategy[Arrow]:
    """Recipes of Kleisli arrows with the effects `inst` has.

    >>> from hypothesis import find
    >>> from mce.laws.instances import STEP
    >>> find(arrows(STEP), lambda a: a.op == "k_get")
    k_get()
    """
    result: st.SearchStrategy[Arrow] = _cached("arrows", inst, depth, lambda: _arrows(inst, depth))
    return result


def _arrows(inst: Any, depth: int) -> st.SearchStrategy[Arrow]:
    options: list[st.SearchStrategy[Arrow]] = [functions().map(lambda f: Arrow("k_pure", f))]
    if inst.has_state:
        options.append(inst.states.map(lambda s: Arrow("k_put", s)))
        options.append(st.just(Arrow("k_get")))
    if inst.has_error:
        options.append(
            st.builds(
                lambda e, c: Arrow("k_throw_if", e, _hash_mod(c)), inst.errors, st.integers(2, 3)
            )
        )
    if depth > 0:
        options.append(
            st.deferred(lambda: programs(inst, depth - 1)).map(lambda r: Arrow("k_program", r))
        )
    return st.one_of(options)


# ---------------------------------------------------------------- Step programs

_fresh = itertools.count()
_SMALL_INTS = st.integers(-3, 3)
_ERRORS = st.sampled_from(["e1", "e2", "e3"])


@st.composite
def steps(
    draw: st.DrawFn,
    *,
    values: st.SearchStrategy[Any] = _SMALL_INTS,
    errors: st.SearchStrategy[Any] = _ERRORS,
    depth: int = 3,
    failing: bool = True,
    lifts: bool = True,
    key: str | None = None,
) -> Step[dict[str, Any], Any, Any]:
    """`Step` programs over a dict state, with parallel blocks on disjoint keys.

    Inside a parallel branch a program reads and writes only its own key, so
    every generated `par` equals its sequential composition - the property
    the reference denotation (`mce.transformers.denote`) relies on. A branch
    that fails after awaiting could be beaten by a sibling that fails sooner,
    so programs that may fail have no lifts inside `par`.

    The interpreter agrees with the reference denotation on them; here on
    the simplest generated program that writes the state inside a `par`:

    >>> import anyio
    >>> from hypothesis import find
    >>> from mce import Ok, run_sync
    >>> from mce.transformers.denote import run_denotation
    >>> from mce.transformers.either import Left, Right
    >>> prog = find(steps(), lambda s: "par(" in repr(s) and "modify" in repr(s))
    >>> out = run_sync(prog, {})
    >>> expected = Right((out.value, out.state)) if isinstance(out, Ok) else Left(out.error)
    >>> anyio.run(run_denotation, prog, {}) == expected and out.state != {}
    True
    """

    leaves = _leaves(values, errors, failing, key)
    if depth == 0:
        return draw(st.one_of(leaves))
    kinds = ["leaf", "map", "then", "recover", "map_error", "par"]
    if lifts and not (failing and key is not None):
        kinds.append("lift")
    kind = draw(st.sampled_from(kinds))
    sub = steps(
        values=values, errors=errors, depth=depth - 1, failing=failing, lifts=lifts, key=key
    )
    if kind == "leaf":
        return draw(st.one_of(leaves))
    if kind == "par":
        return _parallel(draw, values, errors, depth, failing, lifts, key)
    return _compound(draw, kind, sub, values)


def _leaves(
    values: st.SearchStrategy[Any],
    errors: st.SearchStrategy[Any],
    failing: bool,
    key: str | None,
) -> list[st.SearchStrategy[Step[Any, Any, Any]]]:
    """The programs of `steps` with no sub-program: pure, read, write, bump, and fail."""

    def read() -> Step[Any, Any, Any]:
        if key is None:
            return get()
        k = key
        return gets(lambda s: s.get(k, 0))

    def write(v: Any) -> Step[Any, Any, Any]:
        if key is None:
            return put({"top": v})
        k = key
        return modify(lambda s: {**s, k: v})

    def bump(by: int) -> Step[Any, Any, Any]:
        k = key or "top"
        return modify(lambda s: {**s, k: s.get(k, 0) + by})

    leaves = [
        values.map(pure),
        st.just(read()),
        values.map(write),
        st.integers(1, 3).map(bump),
    ]
    if failing:
        leaves.append(errors.map(fail))
    return leaves


def _compound(
    draw: st.DrawFn,
    kind: str,
    sub: st.SearchStrategy[Step[Any, Any, Any]],
    values: st.SearchStrategy[Any],
) -> Step[Any, Any, Any]:
    """A `steps` program of one combinator (`kind`) over sub-programs drawn from `sub`."""
    if kind == "map":
        f = draw(functions())
        return draw(sub).map(f)
    if kind == "then":
        first, second = draw(sub), draw(sub)
        return first.then(lambda x: second.map(lambda y: (x, y)))
    if kind == "recover":
        body, handler = draw(sub), draw(sub)
        return body.recover(lambda e: handler.map(lambda y: (e, y)))
    if kind == "map_error":
        return draw(sub).map_error(lambda e: ("wrapped", e))
    value = draw(values)  # a lift

    async def io() -> Any:
        await anyio.lowlevel.checkpoint()
        return value

    return lift(io).map(lambda v: ("io", v))


def _parallel(
    draw: st.DrawFn,
    values: st.SearchStrategy[Any],
    errors: st.SearchStrategy[Any],
    depth: int,
    failing: bool,
    lifts: bool,
    key: str | None,
) -> Step[Any, Any, Any]:
    """A `steps` parallel block: 2 or 3 branches, each on a key of its own."""
    n = draw(st.integers(2, 3))
    tag = next(_fresh)
    branches = [
        draw(
            steps(
                values=values,
                errors=errors,
                depth=depth - 1,
                failing=failing,
                lifts=lifts,
                key=f"{key or ''}/{tag}.{i}",
            )
        )
        for i in range(n)
    ]
    if draw(st.booleans()):
        return par(*branches)
    return _gather(branches, limit=draw(st.one_of(st.none(), st.integers(1, 2))))


__all__ = [
    "Arrow",
    "Fn",
    "Recipe",
    "arrows",
    "functions",
    "programs",
    "steps",
]
