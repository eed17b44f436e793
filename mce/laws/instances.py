"""Subjects of the laws: monad instances (with how to observe them) and merges.

An `Instance` bundles a monad's operations - `pure`, `bind`, `map`, `ap`,
and, when it has them, `get`/`put` (MonadState), `throw`/`catch`
(MonadError), `lift` with its inner instance (MonadTrans) and `par` - with
`observe(program, state)`, which runs a program and returns something
comparable. Two programs are equal when they are observed equal from the
same state: that is the only equality the laws use.

`STEP` is mce's own `Step`; `step_instance(...)` makes one with your
handlers, states or merge. `reference_instances()` lists the reference
monads of `mce.transformers`. `MergeSubject` wraps a three-way merge.

>>> STEP.observe(STEP.bind(STEP.pure(1), lambda x: STEP.put(x + 1)), 0)
('ok', None, 2)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, final

import anyio
from hypothesis import strategies as st

from mce.effects import UnusedHandler
from mce.interpret import run_sync
from mce.outcome import Err, Ok
from mce.step import fail, get, lift, par, pure, put
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
    Thunk,
    WriterT,
    run_async,
    run_reader,
    run_state,
)

DEFAULT_STATES: st.SearchStrategy[Any] = st.integers(-3, 3)
DEFAULT_ERRORS: st.SearchStrategy[Any] = st.sampled_from(["e1", "e2", "e3"])
DEFAULT_VALUES: st.SearchStrategy[Any] = st.one_of(st.none(), st.integers(-3, 3))


class Instance:
    """A monad under test (see the module docstring). Override what you have.

    Capabilities are discovered from the flags: `has_state`, `has_error`,
    `has_lift`, `has_par`. `rollback` says whether `catch` resumes from the
    state where it was attached (mce's order) rather than keeping the failed
    attempt's state.
    """

    name = "instance"
    has_state = False
    has_error = False
    has_lift = False
    has_par = False
    rollback = True

    def __init__(
        self,
        *,
        states: st.SearchStrategy[Any] = DEFAULT_STATES,
        errors: st.SearchStrategy[Any] = DEFAULT_ERRORS,
        values: st.SearchStrategy[Any] = DEFAULT_VALUES,
    ) -> None:
        self.states = states
        self.errors = errors
        self.values = values

    # -- Monad
    def pure(self, value: Any) -> Any:
        raise NotImplementedError

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    def map(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return self.bind(m, lambda a: self.pure(f(a)))

    def ap(self, mf: Any, ma: Any) -> Any:
        return self.bind(mf, lambda f: self.map(ma, f))

    # -- MonadState
    def get(self) -> Any:
        raise NotImplementedError

    def put(self, state: Any) -> Any:
        raise NotImplementedError

    # -- MonadError
    def throw(self, error: Any) -> Any:
        raise NotImplementedError

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    # -- MonadTrans
    inner: Instance | None = None

    def lift(self, inner_value: Any) -> Any:
        raise NotImplementedError

    # -- parallel
    def par(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    # -- observation
    def observe(self, m: Any, state: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<instance {self.name}>"


class StepInstance(Instance):
    """mce's `Step`, observed by `run_sync` with the given handlers, seed and merge.

    >>> StepInstance().observe(fail("no"), 0)
    ('err', 'no')
    """

    name = "Step"
    has_state = True
    has_error = True
    has_lift = True
    has_par = True

    def __init__(
        self,
        *,
        handlers: Mapping[str, Callable[[Any], Any]] | None = None,
        merge: Callable[[Any, Any, Any], Any] | None = None,
        backend: str = "asyncio",
        name: str | None = None,
        **strategies: Any,
    ) -> None:
        super().__init__(**strategies)
        self.handlers = dict(handlers or {})
        self.merge_fn = merge
        self.backend = backend
        self.inner = AsyncInstance(values=self.values)
        if name:
            self.name = name

    def pure(self, value: Any) -> Any:
        return pure(value)

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return m.then(f)

    def map(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return m.map(f)

    def get(self) -> Any:
        return get()

    def put(self, state: Any) -> Any:
        return put(state)

    def throw(self, error: Any) -> Any:
        return fail(error)

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        return m.recover(handler)

    def lift(self, inner_value: Any) -> Any:
        return lift(inner_value.make)

    def par(self, a: Any, b: Any) -> Any:
        return par(a, b)

    def observe(self, m: Any, state: Any) -> Any:
        with warnings.catch_warnings():  # a generated term need not use every handler
            warnings.simplefilter("ignore", UnusedHandler)
            out = run_sync(
                m,
                state,
                handlers=self.handlers,
                seed=0,
                merge=self.merge_fn,
                backend=self.backend,  # type: ignore[arg-type]
            )
        if isinstance(out, Ok):
            return ("ok", out.value, out.state)
        assert isinstance(out, Err), f"law programs ask no questions, got {out!r}"
        return ("err", out.error)


def step_instance(**options: Any) -> StepInstance:
    """A `Step` instance with your handlers, merge, backend or strategies.

    >>> step_instance(handlers={"k": lambda r: r}).handlers
    {'k': <function <lambda> at ...>}
    """
    return StepInstance(**options)


# ---------------------------------------------------------------- reference monads


class ReferenceInstance(Instance):
    """A monad from `mce.transformers`, observed through its runner.

    `observe_value` turns what the runner returns into a comparable tuple.
    """

    def __init__(
        self,
        name: str,
        monad: Monad,
        observe_value: Callable[[Any, Any], Any],
        *,
        inner: Instance | None = None,
        has_state: bool = False,
        has_error: bool = False,
        rollback: bool = True,
        **strategies: Any,
    ) -> None:
        super().__init__(**strategies)
        self.name = name
        self.monad = monad
        self._observe = observe_value
        self.inner = inner
        self.has_lift = inner is not None
        self.has_state = has_state
        self.has_error = has_error
        self.rollback = rollback

    def pure(self, value: Any) -> Any:
        return self.monad.pure(value)

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return self.monad.bind(m, f)

    def map(self, m: Any, f: Callable[[Any], Any]) -> Any:
        return self.monad.map(m, f)

    def ap(self, mf: Any, ma: Any) -> Any:
        return self.monad.ap(mf, ma)

    def get(self) -> Any:
        return self.monad.get()  # type: ignore[attr-defined]

    def put(self, state: Any) -> Any:
        return self.monad.put(state)  # type: ignore[attr-defined]

    def throw(self, error: Any) -> Any:
        return self.monad.throw(error)  # type: ignore[attr-defined]

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        return self.monad.catch(m, handler)  # type: ignore[attr-defined]

    def lift(self, inner_value: Any) -> Any:
        return self.monad.lift(inner_value)  # type: ignore[attr-defined]

    def observe(self, m: Any, state: Any) -> Any:
        return self._observe(m, state)


class AsyncInstance(ReferenceInstance):
    """The reference `Async` monad (awaitable thunks), observed by running them."""

    def __init__(self, **strategies: Any) -> None:
        super().__init__(
            "Async", ASYNC, lambda m, _s: ("ok", anyio.run(run_async, m)), **strategies
        )


def _either(result: Any) -> Any:
    if isinstance(result, Right):
        return ("ok", result.value)
    assert isinstance(result, Left)
    return ("err", result.error)


def _state_either(result: Any) -> Any:  # StateT over EitherT: Right((a, s)) | Left(e)
    if isinstance(result, Right):
        value, state = result.value
        return ("ok", value, state)
    return ("err", result.error)


def _either_state(pair: Any) -> Any:  # EitherT over StateT: (Right(a) | Left(e), s)
    result, state = pair
    if isinstance(result, Right):
        return ("ok", result.value, state)
    return ("err", result.error, state)


def reference_instances() -> list[ReferenceInstance]:
    """Every transformer of `mce.transformers` over `Identity` and `Async`, both State/Either orders.

    >>> [i.name for i in reference_instances()][:3]
    ['Identity', 'StateT(Identity)', 'EitherT(Identity)']
    """
    out: list[ReferenceInstance] = []
    for base_name, base, unwrap in (
        ("Identity", IDENTITY, _unwrap_identity),
        ("Async", ASYNC, _run_async_value),
    ):
        out += _transformers_over(base_name, base, unwrap)
    return out


def _transformers_over(
    base_name: str, base: Any, unwrap: Callable[[Any], Any]
) -> list[ReferenceInstance]:
    """The base monad's instance, then every transformer stacked on it."""
    base_instance = ReferenceInstance(base_name, base, _observer(unwrap, _as_is, _ok))
    return [
        base_instance,
        ReferenceInstance(
            f"StateT({base_name})",
            StateT(base),
            _observer(unwrap, run_state, _ok_pair),
            has_state=True,
            inner=base_instance,
        ),
        ReferenceInstance(
            f"EitherT({base_name})",
            EitherT(base),
            _observer(unwrap, _as_is, _either),
            has_error=True,
            inner=base_instance,
        ),
        ReferenceInstance(
            f"ReaderT({base_name})",
            ReaderT(base),
            _observer(unwrap, run_reader, _ok),
            inner=base_instance,
        ),
        ReferenceInstance(
            f"WriterT({base_name})",
            WriterT(base),
            _observer(unwrap, _as_is, _ok_pair),
            inner=base_instance,
        ),
        ReferenceInstance(
            f"StateT(EitherT({base_name}))",
            StateT(EitherT(base)),
            _observer(unwrap, run_state, _state_either),
            has_state=True,
            has_error=True,
            rollback=True,
        ),
        ReferenceInstance(
            f"EitherT(StateT({base_name}))",
            EitherT(StateT(base)),
            _observer(unwrap, run_state, _either_state),
            has_state=True,
            has_error=True,
            rollback=False,
        ),
    ]


def _unwrap_identity(m: Any) -> Any:
    assert isinstance(m, Id)
    return m.value


def _run_async_value(m: Any) -> Any:
    assert isinstance(m, Thunk)
    return anyio.run(run_async, m)


def _observer(
    unwrap: Callable[[Any], Any],
    runner: Callable[[Any, Any], Any],
    shape: Callable[[Any], Any],
) -> Callable[[Any, Any], Any]:
    def observe(m: Any, s: Any) -> Any:
        return shape(unwrap(runner(m, s)))

    return observe


def _as_is(m: Any, _s: Any) -> Any:
    return m


def _ok(value: Any) -> Any:
    return ("ok", value)


def _ok_pair(pair: Any) -> Any:
    return ("ok", *pair)


# ---------------------------------------------------------------- merges


@final
class MergeSubject:
    """A three-way merge under test, with strategies for bases and branch edits.

    `edits` draws functions `base -> branch state` (what one branch does);
    `disjoint` draws pairs of edits that touch different parts of the state,
    for the commutation law (None to skip it).

    >>> from mce.merge import add
    >>> subject = MergeSubject("add", add, st.integers(), st.integers().map(lambda d: lambda b: b + d))
    >>> subject.merge(10, 11, 13)
    14
    """

    def __init__(
        self,
        name: str,
        merge: Callable[[Any, Any, Any], Any],
        bases: st.SearchStrategy[Any],
        edits: st.SearchStrategy[Callable[[Any], Any]],
        disjoint: st.SearchStrategy[tuple[Callable[[Any], Any], Callable[[Any], Any]]]
        | None = None,
    ) -> None:
        self.name = name
        self.merge = merge
        self.bases = bases
        self.edits = edits
        self.disjoint = disjoint

    def __repr__(self) -> str:
        return f"<merge {self.name}>"


STEP: StepInstance = StepInstance()
"""mce's `Step` with the default strategies and no handlers."""


__all__ = [
    "AsyncInstance",
    "DEFAULT_ERRORS",
    "DEFAULT_STATES",
    "DEFAULT_VALUES",
    "Instance",
    "MergeSubject",
    "ReferenceInstance",
    "STEP",
    "StepInstance",
    "reference_instances",
    "step_instance",
]
