"""The reference monads: their laws, runners and both State/Either orders."""

from __future__ import annotations

import anyio
from hypothesis import strategies as st

from mce.transformers import (
    ASYNC,
    IDENTITY,
    EitherT,
    Id,
    Left,
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


# The monad, lift and state laws of every instance here are checked in
# laws/test_reference_laws.py (mce.laws); these tests cover the runners and
# the two orders of state and failure.


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
