"""Monad, MonadState and MonadError laws for `Step`, observed by running both sides.

Two programs are equal when, run from the same state, they give the same
outcome: value and final state, or error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mce import Step, fail, get, gets, modify, par, pure, put, run_sync

Prog = Step[int, str, Any]
Arrow = Callable[[Any], Prog]

states = st.integers(-5, 5)


def _arrow(kind: int, c: int) -> Arrow:
    """A small family of Kleisli arrows with state and failure effects."""
    if kind == 0:
        return lambda x: pure((x, c))
    if kind == 1:
        return lambda x: modify(lambda s: s + c).map(lambda _: x)
    if kind == 2:
        return lambda x: gets(lambda s: (s, x))
    if kind == 3:
        return lambda x: fail(f"e{c}") if hash(repr(x)) % 2 else pure(x)
    return lambda x: put(c).then(lambda _: pure(repr(x)))


arrows = st.builds(_arrow, st.integers(0, 4), st.integers(-3, 3))
progs = st.builds(lambda f, v: f(v), arrows, st.integers(-3, 3))


def same(a: Prog, b: Prog, s: int, backend: str = "asyncio") -> None:
    assert run_sync(a, s, backend=backend) == run_sync(b, s, backend=backend)  # type: ignore[arg-type]


@given(arrows, st.integers(), states)
def test_left_identity(f: Arrow, a: int, s: int) -> None:
    same(pure(a).then(f), f(a), s)


@given(progs, states)
def test_right_identity(m: Prog, s: int) -> None:
    same(m.then(pure), m, s)


@given(progs, arrows, arrows, states)
def test_associativity(m: Prog, f: Arrow, g: Arrow, s: int) -> None:
    same(m.then(f).then(g), m.then(lambda x: f(x).then(g)), s)


@given(progs, states)
def test_functor_identity_and_composition(m: Prog, s: int) -> None:
    same(m.map(lambda x: x), m, s)
    same(m.map(repr).map(len), m.map(lambda x: len(repr(x))), s)


@given(states, states)
def test_state_laws(s: int, t: int) -> None:
    same(get().then(put), pure(None), s)
    same(put(t).then(lambda _: get()), put(t).map(lambda _: t), s)
    same(put(t).then(lambda _: put(t + 1)), put(t + 1), s)
    same(get().then(lambda a: get().map(lambda b: (a, b))), get().map(lambda a: (a, a)), s)


@given(arrows, st.sampled_from(["x", "y"]), states)
def test_error_laws(f: Arrow, e: str, s: int) -> None:
    same(fail(e).then(f), fail(e), s)  # throw short-circuits bind
    same(fail(e).recover(lambda err: pure(err)), pure(e), s)  # catch of throw
    same(pure(e).recover(lambda err: fail("other")), pure(e), s)  # catch of pure


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(progs, progs, states)
def test_par_equals_sequence_for_disjoint_state(backend: str, a: Prog, b: Prog, s: int) -> None:
    # With an int state, "disjoint" means: the first branch leaves it alone.
    reader = a.then(lambda x: gets(lambda st: (st, x)))
    out = run_sync(reader, s)
    assume(not out.ok or out.state == s)
    sequential = reader.then(lambda x: b.map(lambda y: (x, y)))
    same(par(reader, b), sequential, s, backend)
