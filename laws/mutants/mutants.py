"""Deliberately broken instances: each must fail at least one law.

Each mutant breaks one thing a real implementation could get wrong; the
test next to this file checks that the law suite catches every one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from mce import Ok, fail, get, lift, par, pure, put, run
from mce.laws import MergeSubject, ReferenceInstance, StepInstance
from mce.merge import concat
from mce.transformers import IDENTITY, Id, StateFn, StateT, run_state


class BindDropsState(StepInstance):
    """bind forgets the state changes made by the continuation."""

    name = "bind that drops state"

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return m.then(lambda a: get().then(lambda s: f(a).then(lambda b: put(s).map(lambda _: b))))


class ApWrongOrder(StepInstance):
    """ap runs the argument's effects before the function's."""

    name = "ap with effects in the wrong order"

    def ap(self, mf: Any, ma: Any) -> Any:
        return ma.then(lambda a: mf.map(lambda f: f(a)))


class RecoverKeepsState(StepInstance):
    """recover resumes from the failed attempt's state instead of rolling back."""

    name = "recover that does not roll back state"

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        def resume(out: Any) -> Any:
            if isinstance(out, Ok):
                return put(out.state).map(lambda _: out.value)
            return put(out.state).then(lambda _: handler(out.error))

        return get().then(lambda s: lift(lambda: run(m, s))).then(resume)


class PureNoneIsAbsence(StepInstance):
    """pure(None) is treated as 'no value' and fails."""

    name = "pure that treats None as absence"

    def pure(self, value: Any) -> Any:
        return fail("absent") if value is None else pure(value)


class MapTwice(StepInstance):
    """map applies its function twice."""

    name = "map applied twice"

    def map(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return m.map(f).map(f)


class ThenRunsTwice(StepInstance):
    """bind runs the continuation twice (duplicated effects)."""

    name = "then that runs its continuation twice"

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return m.then(lambda a: f(a).then(lambda _: f(a)))


class CatchIgnoresHandler(StepInstance):
    """recover swallows the error and yields None instead of running the handler."""

    name = "recover that ignores its handler"

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        return m.recover(lambda _e: pure(None))


class PutIgnoredInPar(StepInstance):
    """par discards the state its branches wrote."""

    name = "put ignored inside par"

    def par(self, a: Any, b: Any) -> Any:
        return get().then(lambda s: par(a, b).then(lambda v: put(s).map(lambda _: v)))


def par_keeps_last_state() -> StepInstance:
    """par merges branch states by keeping the last branch's state."""
    return StepInstance(
        merge=lambda base, left, right: right, name="par that keeps the last branch's state"
    )


class _StateDroppingStateT(StateT):
    def bind(self, m: StateFn, f: Callable[[Any], Any]) -> StateFn:
        inner = self.inner
        return StateFn(lambda s: inner.bind(m.fn(s), lambda a_s: f(a_s[0]).fn(s)))


def reference_bind_drops_state() -> ReferenceInstance:
    """A reference StateT whose bind passes the *old* state on."""

    def observe(m: Any, s: Any) -> Any:
        out = run_state(m, s)
        assert isinstance(out, Id)
        return ("ok", *out.value)

    return ReferenceInstance(
        "StateT(Identity) whose bind drops state",
        _StateDroppingStateT(IDENTITY),
        observe,
        has_state=True,
    )


ints = st.integers(-3, 3)
averaging = MergeSubject(
    "non-associative merge (average)",
    lambda base, left, right: (left + right) / 2,
    ints,
    ints.map(lambda d: lambda b: b + d),
)
last_writer_wins = MergeSubject(
    "merge where the right branch always wins",
    lambda base, left, right: right,
    st.lists(ints, max_size=2).map(tuple),
    st.lists(ints, max_size=2).map(lambda extra: lambda b: b + tuple(extra)),
)
concat_dropping_left = MergeSubject(
    "concat that drops the left branch's items",
    lambda base, left, right: concat(base, base, right),
    st.lists(ints, max_size=2).map(tuple),
    st.lists(ints, max_size=2).map(lambda extra: lambda b: b + tuple(extra)),
)

MUTANTS: list[Any] = [
    BindDropsState(),
    ApWrongOrder(),
    RecoverKeepsState(),
    par_keeps_last_state(),
    PureNoneIsAbsence(),
    MapTwice(),
    ThenRunsTwice(),
    CatchIgnoresHandler(),
    PutIgnoredInPar(),
    reference_bind_drops_state(),
    averaging,
    last_writer_wins,
    concat_dropping_left,
]
