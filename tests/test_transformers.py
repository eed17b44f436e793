"""The reference monads: their laws, runners and both State/Either orders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mce.transformers import (
    ASYNC,
    IDENTITY,
    EitherT,
    Id,
    Left,
    Monad,
    ReaderT,
    Right,
    StateT,
    WriterT,
    eval_state,
    exec_state,
    run_async,
    run_reader,
    run_state,
)

ints = st.integers(-10, 10)


def observe(monad_name: str, value: Any) -> Any:
    """Run a reference value to something comparable (observational equality)."""
    kind = monad_name
    if kind == "identity":
        return value
    if kind == "async":
        return anyio.run(run_async, value)
    if kind.startswith("state"):
        inner = kind.split(":", 1)[1]
        return observe(inner, run_state(value, 3))
    if kind.startswith("reader"):
        inner = kind.split(":", 1)[1]
        return observe(inner, run_reader(value, "env"))
    if kind.startswith("either") or kind.startswith("writer"):
        inner = kind.split(":", 1)[1]
        return observe(inner, value)
    raise AssertionError(kind)


def instances() -> list[tuple[str, Monad]]:
    out: list[tuple[str, Monad]] = []
    for base_name, base in (("identity", IDENTITY), ("async", ASYNC)):
        out.append((base_name, base))
        out.append((f"state:{base_name}", StateT(base)))
        out.append((f"either:{base_name}", EitherT(base)))
        out.append((f"reader:{base_name}", ReaderT(base)))
        out.append((f"writer:{base_name}", WriterT(base)))
        out.append((f"state:either:{base_name}", StateT(EitherT(base))))
        out.append((f"either:state:{base_name}", EitherT(StateT(base))))
    return out


def effectful(monad: Monad, name: str, tag: int) -> Callable[[int], Any]:
    """A Kleisli arrow with a visible effect in each layer, to make the laws bite."""

    def f(x: int) -> Any:
        m = monad.pure(x * 2 + tag)
        if isinstance(monad, StateT):
            return monad.bind(monad.modify(lambda s: s * 10 + tag), lambda _: m)
        if isinstance(monad, WriterT):
            return monad.bind(monad.tell((tag, x)), lambda _: m)
        if isinstance(monad, EitherT) and x % 3 == 0:
            return monad.throw(("e", tag, x))
        if isinstance(monad, EitherT) and isinstance(monad.inner, StateT):
            return monad.bind(monad.modify(lambda s: s + tag), lambda _: m)
        return m

    return f


@pytest.mark.parametrize(
    ("name", "monad"), instances(), ids=lambda v: v if isinstance(v, str) else ""
)
@given(x=ints)
def test_monad_laws(name: str, monad: Monad, x: int) -> None:
    f, g = effectful(monad, name, 1), effectful(monad, name, 2)
    m = f(x)
    # left identity, right identity, associativity
    assert observe(name, monad.bind(monad.pure(x), f)) == observe(name, f(x))
    assert observe(name, monad.bind(m, monad.pure)) == observe(name, m)
    assert observe(name, monad.bind(monad.bind(m, f), g)) == observe(
        name, monad.bind(m, lambda y: monad.bind(f(y), g))
    )
    # functor identity and composition; ap agrees with bind
    assert observe(name, monad.map(m, lambda y: y)) == observe(name, m)
    assert observe(name, monad.map(monad.map(m, lambda y: y + 1), lambda y: y * 3)) == observe(
        name, monad.map(m, lambda y: (y + 1) * 3)
    )
    mf = monad.map(g(x), lambda y: lambda z: (y, z))
    assert observe(name, monad.ap(mf, m)) == observe(
        name, monad.bind(mf, lambda fn: monad.bind(m, lambda a: monad.pure(fn(a))))
    )


@pytest.mark.parametrize("base", [IDENTITY, ASYNC], ids=["identity", "async"])
@given(x=ints)
def test_lift_laws(base: Monad, x: int) -> None:
    name = "identity" if base is IDENTITY else "async"
    for t_name, t in (
        ("state", StateT(base)),
        ("either", EitherT(base)),
        ("reader", ReaderT(base)),
        ("writer", WriterT(base)),
    ):
        full = f"{t_name}:{name}"
        assert observe(full, t.lift(base.pure(x))) == observe(full, t.pure(x))
        k = lambda y: base.pure(y + 1)  # noqa: E731
        assert observe(full, t.lift(base.bind(base.pure(x), k))) == observe(
            full, t.bind(t.lift(base.pure(x)), lambda y, t=t, k=k: t.lift(k(y)))
        )


@given(s=ints, t=ints)
def test_state_laws(s: int, t: int) -> None:
    S = StateT(IDENTITY)
    run = lambda m: run_state(m, s)  # noqa: E731
    assert run(S.bind(S.get(), S.put)) == run(S.pure(None))  # get-put
    assert run(S.bind(S.put(t), lambda _: S.get())) == run(S.bind(S.put(t), lambda _: S.pure(t)))
    assert run(S.bind(S.put(t), lambda _: S.put(t + 1))) == run(S.put(t + 1))  # put-put
    assert run(S.bind(S.get(), lambda a: S.bind(S.get(), lambda b: S.pure((a, b))))) == run(
        S.bind(S.get(), lambda a: S.pure((a, a)))
    )  # get-get


def test_runners() -> None:
    S = StateT(IDENTITY)
    m = S.bind(S.modify(lambda s: s + 1), lambda _: S.gets(lambda s: s * 10))
    assert run_state(m, 1) == Id((20, 2))
    assert eval_state(S, m, 1) == Id(20)
    assert exec_state(S, m, 1) == Id(2)
    R = ReaderT(IDENTITY)
    assert run_reader(R.local(lambda e: e + 1, R.ask()), 1) == Id(2)
    W = WriterT(IDENTITY, empty="", combine=str.__add__)
    assert W.bind(W.tell("a"), lambda _: W.bind(W.tell("b"), lambda _: W.pure(1))) == Id((1, "ab"))


def test_both_orders_of_state_and_failure() -> None:
    rollback = StateT(EitherT(IDENTITY))
    attempt = rollback.bind(rollback.put("dirty"), lambda _: rollback.throw("e"))
    assert run_state(attempt, "clean") == Id(Left("e"))
    assert run_state(rollback.catch(attempt, lambda e: rollback.get()), "clean") == Id(
        Right(("clean", "clean"))
    )
    keep = EitherT(StateT(IDENTITY))
    attempt2 = keep.bind(keep.put("dirty"), lambda _: keep.throw("e"))
    assert run_state(attempt2, "clean") == Id((Left("e"), "dirty"))
    assert run_state(keep.catch(attempt2, lambda e: keep.get()), "clean") == Id(
        (Right("dirty"), "dirty")
    )


def test_async_values_are_rerunnable() -> None:
    calls: list[int] = []

    async def effect() -> int:
        calls.append(1)
        return len(calls)

    from mce.transformers import Thunk

    m = ASYNC.bind(Thunk(effect), lambda x: ASYNC.pure(x * 10))
    assert anyio.run(run_async, m) == 10
    assert anyio.run(run_async, m) == 20
