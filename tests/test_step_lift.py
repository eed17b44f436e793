"""`lift(fn, *args)`: the arguments given to `lift`, not captured in a closure.

The step calls `fn(*args)` each time it runs, and must behave exactly as
`lift(lambda: fn(*args))`: the same values, errors, bugs (with the same
note), trace and journal, on every path that runs a lifted step - the
trampoline, the driver's chain of lifted steps, a parallel block's lean
branches (asyncio) and its general branches - on both backends. Generated
programs built both ways are compared at the end.
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mce import (
    Journal,
    Ok,
    Step,
    effect,
    fail,
    gather,
    lift,
    modify,
    par,
    pure,
    run,
    traverse,
)
from mce.transformers.denote import run_denotation
from mce.transformers.either import Right
from tests._exact import observe

BACKENDS = ["asyncio", "trio"]


async def _add(*xs: Any) -> Any:
    await anyio.sleep(0)
    return ("sum", *xs)


async def _instant(*xs: Any) -> Any:
    return ("now", *xs)


def _sync(*xs: Any) -> Any:
    return ("sync", *xs)


def _makes_coroutine(*xs: Any) -> Any:
    return _add("made", *xs)


async def _boom(*xs: Any) -> Any:
    await anyio.sleep(0)
    raise ValueError(f"boom {xs!r}")


async def _one(x: Any) -> Any:
    return ("one", x)


def outcome(prog: Step[Any, Any, Any], backend: str, state: Any = None) -> Any:
    async def main() -> Any:
        return await run(prog, state)

    try:
        return ("outcome", anyio.run(main, backend=backend))
    except Exception as exc:
        return ("bug", type(exc), str(exc), getattr(exc, "__notes__", None))


# ---------------------------------------------------------------- values


ARGUMENTS: list[tuple[Any, ...]] = [
    (),
    (1,),
    (None,),
    ((1, 2),),  # one argument that is a tuple: passed as it is, not spread
    ([],),
    (1, 2),
    (1, (2,), None),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args", ARGUMENTS)
@pytest.mark.parametrize("fn", [_add, _instant, _sync, _makes_coroutine])
def test_every_path_calls_fn_with_its_arguments(
    backend: str, args: tuple[Any, ...], fn: Any
) -> None:
    """The trampoline (a lifted step alone, or after a map), the driver's chain (a
    lifted step returned by a `.then` callback after a lifted coroutine), a lean
    branch, a general branch and a traverse's branch all call `fn(*args)`."""
    expected = (
        ("sum", "made", *args) if fn is _makes_coroutine else (fn(*args) if fn is _sync else None)
    )
    if expected is None:
        expected = ("sum" if fn is _add else "now", *args)
    alone = lift(fn, *args)
    chained = (
        lift(_add)
        .then(lambda _: lift(fn, *args))
        .then(lambda v: lift(fn, *args).map(lambda w: (v, w)))
    )
    programs: list[tuple[Step[Any, Any, Any], Any]] = [
        (alone, expected),
        (pure(0).map(str).then(lambda _: lift(fn, *args)), expected),
        (chained, (expected, expected)),
        (gather([lift(fn, *args), lift(fn, *args)]), (expected, expected)),
        (par(lift(fn, *args).map(list), lift(fn, *args)), (list(expected), expected)),
        (traverse([0, 1], lambda _: lift(fn, *args), limit=1), (expected, expected)),
    ]
    for prog, value in programs:
        assert outcome(prog, backend) == ("outcome", Ok(value, None)), prog


@pytest.mark.parametrize("backend", BACKENDS)
def test_callables_that_are_not_plain_functions_take_arguments(backend: str) -> None:
    class Client:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def __call__(self, *xs: Any) -> Any:
            self.calls.append(xs)
            return len(self.calls)

        async def fetch(self, url: str, page: int) -> str:
            return f"{url}#{page}"

    client = Client()
    prog = par(lift(client, "a"), lift(client.fetch, "u", 2), lift(functools.partial(_add, 1), 2))
    assert outcome(prog, backend) == ("outcome", Ok((1, "u#2", ("sum", 1, 2)), None))
    assert client.calls == [("a",)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fn_runs_each_time_the_step_runs_never_while_building(backend: str) -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x

    step = lift(record, 7)
    assert calls == []
    prog = step.then(lambda a: step.map(lambda b: a + b))
    assert outcome(prog, backend) == ("outcome", Ok(14, None))
    assert calls == [7, 7]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_arguments_are_the_values_given_when_the_step_is_built(backend: str) -> None:
    """Unlike a closure over a variable, which reads it when the step runs."""
    items = [1]
    by_value = lift(_sync, len(items))
    by_closure = lift(lambda: _sync(len(items)))
    items.append(2)
    assert outcome(par(by_value, by_closure), backend) == (
        "outcome",
        Ok((("sync", 1), ("sync", 2)), None),
    )


def test_the_denotation_calls_fn_with_its_arguments() -> None:
    for fn in (_add, _sync, _makes_coroutine):
        prog = lift(fn, 1, (2,)).then(lambda v, fn=fn: lift(fn, v))
        expected = anyio.run(run, prog, "s")
        assert anyio.run(run_denotation, prog, "s") == Right((expected.value, "s"))


# ---------------------------------------------------------------- errors


def test_anything_but_a_callable_is_refused_when_the_step_is_built() -> None:
    with pytest.raises(TypeError) as info:
        lift(3)  # type: ignore[call-overload]
    assert str(info.value) == "lift() needs a zero-argument callable, got 3"
    with pytest.raises(TypeError) as info:
        lift("fetch", 1, "x")  # type: ignore[call-overload]
    assert str(info.value) == (
        "lift() needs a callable to call with the 2 argument(s) (1, 'x'), got 'fetch'"
    )
    with pytest.raises(TypeError) as info:
        lift(None, None)  # type: ignore[call-overload]
    assert str(info.value) == (
        "lift() needs a callable to call with the 1 argument(s) (None,), got None"
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "wrap", [lambda s: s, lambda s: pure(0).then(lambda _: s), lambda s: par(pure(0), s)]
)
def test_a_bug_in_fn_is_raised_with_the_note_naming_fn(backend: str, wrap: Any) -> None:
    args_form = outcome(wrap(lift(_boom, 1, "x")), backend)
    closure = lambda: _boom(1, "x")  # noqa: E731
    closure.__qualname__ = _boom.__qualname__
    assert args_form == outcome(wrap(lift(closure)), backend)
    kind, exc_type, message, notes = args_form
    assert (kind, exc_type, message) == ("bug", ValueError, "boom (1, 'x')")
    assert notes is not None and notes[0].startswith("mce: raised by the lifted callable _boom at ")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["alone", "chain", "lean", "general"])
def test_arguments_that_do_not_fit_fn_raise_when_the_step_runs(backend: str, path: str) -> None:
    """Wrong arguments are a bug of the program, reported like any bug of a lifted
    callable (the type checkers reject them before: see typesafety/cases/case_lift.py)."""
    bad: Step[Any, Any, Any] = lift(_one, 1, 2)  # type: ignore[arg-type]
    prog = {
        "alone": bad,
        "chain": lift(_one, 0).then(lambda _: bad),
        "lean": gather([bad, lift(_one, 0)]),
        "general": traverse([0], lambda _: bad, limit=1),
    }[path]
    kind, exc_type, message, notes = outcome(prog, backend)
    assert (kind, exc_type) == ("bug", TypeError)
    assert "takes 1 positional argument but 2 were given" in message
    assert notes is not None and notes[0].startswith("mce: raised by the lifted callable _one at ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_errors_on_the_error_channel_are_unaffected(backend: str) -> None:
    prog = lift(_add, 1).then(lambda v: fail(("no", v))).recover(lambda e: lift(_sync, e))
    assert outcome(prog, backend, 0) == ("outcome", Ok(("sync", ("no", ("sum", 1))), 0))


def test_reprs_show_the_arguments() -> None:
    assert repr(lift(_sync)) == "lift(_sync)"
    assert repr(lift(_sync, 1)) == "lift(_sync, 1)"
    assert repr(lift(_sync, (1, 2))) == "lift(_sync, (1, 2))"
    assert repr(lift(_sync, "a", None)) == "lift(_sync, 'a', None)"


def test_a_lifted_step_has_no_instance_dictionary() -> None:
    """A pending branch keeps its node alive: the node stays three slots."""
    node: Any = lift(_sync, 1)
    assert not hasattr(node, "__dict__")
    assert type(node).__slots__ == ("arg", "more", "thunk")


# ---------------------------------------------------------------- journal and replay


def _effectful(form: str) -> Step[Any, Any, Any]:
    def lifted(fn: Any, *args: Any) -> Step[Any, Any, Any]:
        return lift(fn, *args) if form == "args" else lift(lambda: fn(*args))

    ask = lambda x: effect("ask", {"x": repr(x)}, handler=lambda r: r["x"])  # noqa: E731
    return (
        lifted(_add, 1)
        .then(ask)
        .then(lambda v: lifted(_add, v, 2))
        .then(lambda v: gather([lifted(_instant, v), ask(v).then(lambda w: lifted(_sync, w))]))
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_journal_and_replay_are_those_of_the_closure_form(backend: str) -> None:
    results = {}
    for form in ("args", "closure"):
        journal = Journal()

        async def live(journal: Journal = journal, form: str = form) -> Any:
            return await run(_effectful(form), None, journal=journal)

        async def replay(journal: Journal = journal, form: str = form) -> Any:
            return await run(_effectful(form), None, journal=journal, mode="replay")

        first = anyio.run(live, backend=backend)
        again = anyio.run(replay, backend=backend)
        assert again.value == first.value
        results[form] = (first.value, [(r["pos"], r["kind"], r["req"]) for r in journal.load()[1]])
    assert results["args"] == results["closure"]
    assert results["args"][1]  # effects were journaled


# ---------------------------------------------------------------- generated programs

# A link of a generated program: (what it does, a small number it uses).
Link = tuple[str, int]
KINDS = ["async", "instant", "sync", "coro", "one", "tuple", "none", "many", "boom", "wrong"]
KINDS += ["fail", "recover", "map", "put", "effect", "par", "traverse"]


def lifted(form: str, fn: Any, *args: Any) -> Step[Any, Any, Any]:
    """`lift(fn, *args)`, or the same call in a closure named like `fn` (notes compare equal)."""
    if form == "args":
        return lift(fn, *args)
    closure = lambda: fn(*args)  # noqa: E731
    closure.__qualname__ = getattr(fn, "__qualname__", "?")
    return lift(closure)


def build(form: str, links: list[Link]) -> Step[Any, Any, Any]:
    s: Step[Any, Any, Any] = lifted(form, _add, 0)
    for kind, k in links:
        s = extend(form, s, kind, k)
    return s


def extend(form: str, s: Step[Any, Any, Any], kind: str, k: int) -> Step[Any, Any, Any]:
    short = lambda x: repr(x)[:24]  # noqa: E731
    if kind == "async":
        return s.then(lambda x: lifted(form, _add, short(x), k))
    if kind == "instant":
        return s.then(lambda x: lifted(form, _instant, short(x)))
    if kind == "sync":
        return s.then(lambda x: lifted(form, _sync, short(x), k))
    if kind == "coro":
        return s.then(lambda x: lifted(form, _makes_coroutine, short(x)))
    if kind == "one":
        return s.then(lambda x: lifted(form, _one, short(x)))
    if kind == "tuple":
        return s.then(lambda x: lifted(form, _one, (short(x), k)))
    if kind == "none":
        return s.then(lambda x: lifted(form, _one, None))
    if kind == "many":
        return s.then(lambda x: lifted(form, _add, *range(k)))
    if kind == "boom":
        return s.then(lambda x: lifted(form, _boom, k))
    if kind == "wrong":
        return s.then(lambda x: lifted(form, _one, k, k))
    if kind == "fail":
        return s.then(lambda x: fail(("failed", k)))
    if kind == "recover":
        return s.recover(lambda e: lifted(form, _sync, "recovered", short(e)))
    if kind == "map":
        return s.map(lambda x: [x, k])
    if kind == "put":
        return s.then(lambda x: modify(lambda st_: (*st_, short(x))).map(lambda _: x))
    if kind == "effect":
        return s.then(lambda x: effect("ask", {"x": short(x)}, handler=lambda r: r["x"]))
    if kind == "par":  # lean branches on asyncio, next to a general one
        return s.then(
            lambda x: gather(
                [lifted(form, _add, short(x), i) for i in range(k + 1)]
                + [lifted(form, _instant, k).map(str)]
            )
        )
    assert kind == "traverse"  # bounded: no lean branch
    return s.then(lambda x: traverse(range(k + 1), lambda i: lifted(form, _sync, i), limit=1))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(links=st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 3)), max_size=8))
def test_the_arguments_form_agrees_with_the_closure_form(backend: str, links: list[Link]) -> None:
    assert observe(build("args", links), backend) == observe(build("closure", links), backend)
