"""`StateT`: adds a state threaded through the computation.

A value is `StateFn(fn)` with `fn(state) -> inner[(value, new_state)]`.
Over `EitherT` (`StateT(EitherT(ASYNC))`, mce's own stack) a failure loses
the state of the failed attempt, so `catch` *rolls back*: the handler runs
from the state as it was when `catch` was entered.

>>> from mce.transformers import IDENTITY
>>> S = StateT(IDENTITY)
>>> run_state(S.bind(S.get(), lambda n: S.put(n + 1)), 1)
Id(value=(None, 2))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from attrs import frozen

from mce.transformers.monad import Monad


@final
@frozen
class StateFn:
    """A StateT value: `fn(state) -> inner[(value, state)]`.

    >>> from mce.transformers import IDENTITY
    >>> StateFn(lambda s: IDENTITY.pure((s, s))).fn(3)
    Id(value=(3, 3))
    """

    fn: Callable[[Any], Any]


@final
class StateT(Monad):
    """The State transformer over `inner`.

    >>> from mce.transformers import IDENTITY
    >>> run_state(StateT(IDENTITY).pure("a"), 0)
    Id(value=('a', 0))
    """

    def __init__(self, inner: Monad) -> None:
        self.inner = inner

    def pure(self, value: Any) -> StateFn:
        inner = self.inner
        return StateFn(lambda s: inner.pure((value, s)))

    def bind(self, m: StateFn, f: Callable[[Any], Any]) -> StateFn:
        inner = self.inner
        return StateFn(lambda s: inner.bind(m.fn(s), lambda a_s: f(a_s[0]).fn(a_s[1])))

    def lift(self, m: Any) -> StateFn:
        """Run an inner value, leaving the state alone.

        >>> from mce.transformers import IDENTITY, Id
        >>> run_state(StateT(IDENTITY).lift(Id(9)), "s")
        Id(value=(9, 's'))
        """
        inner = self.inner
        return StateFn(lambda s: inner.map(m, lambda a: (a, s)))

    def get(self) -> StateFn:
        """The state as the value.

        >>> from mce.transformers import IDENTITY
        >>> run_state(StateT(IDENTITY).get(), 4)
        Id(value=(4, 4))
        """
        inner = self.inner
        return StateFn(lambda s: inner.pure((s, s)))

    def put(self, state: Any) -> StateFn:
        """Replace the state.

        >>> from mce.transformers import IDENTITY
        >>> run_state(StateT(IDENTITY).put(5), 4)
        Id(value=(None, 5))
        """
        inner = self.inner
        return StateFn(lambda _s: inner.pure((None, state)))

    def modify(self, f: Callable[[Any], Any]) -> StateFn:
        """Replace the state with `f(state)`.

        >>> from mce.transformers import IDENTITY
        >>> run_state(StateT(IDENTITY).modify(str), 4)
        Id(value=(None, '4'))
        """
        inner = self.inner
        return StateFn(lambda s: inner.pure((None, f(s))))

    def gets(self, f: Callable[[Any], Any]) -> StateFn:
        """`f(state)` as the value.

        >>> from mce.transformers import IDENTITY
        >>> run_state(StateT(IDENTITY).gets(lambda s: s * 2), 4)
        Id(value=(8, 4))
        """
        inner = self.inner
        return StateFn(lambda s: inner.pure((f(s), s)))

    # MonadError, lifted from the inner monad when it can fail.
    def throw(self, error: Any) -> StateFn:
        """The inner monad's `throw`, lifted.

        >>> from mce.transformers import IDENTITY, EitherT
        >>> run_state(StateT(EitherT(IDENTITY)).throw("e"), 0)
        Id(value=Left(error='e'))
        """
        return self.lift(self.inner.throw(error))  # type: ignore[attr-defined]

    def catch(self, m: StateFn, handler: Callable[[Any], StateFn]) -> StateFn:
        """Run `m`; on failure run `handler(error)` from the state `m` started with.

        >>> from mce.transformers import IDENTITY, EitherT
        >>> S = StateT(EitherT(IDENTITY))
        >>> attempt = S.bind(S.put(99), lambda _: S.throw("e"))
        >>> run_state(S.catch(attempt, lambda e: S.get()), 1)
        Id(value=Right(value=(1, 1)))
        """
        inner = self.inner
        return StateFn(lambda s: inner.catch(m.fn(s), lambda e: handler(e).fn(s)))  # type: ignore[attr-defined]


def run_state(m: StateFn, state: Any) -> Any:
    """Run from `state`: an inner value of `(value, final_state)`.

    >>> from mce.transformers import IDENTITY
    >>> run_state(StateT(IDENTITY).pure(1), 0)
    Id(value=(1, 0))
    """
    return m.fn(state)


def eval_state(monad: StateT, m: StateFn, state: Any) -> Any:
    """Run from `state`, keeping only the value.

    >>> from mce.transformers import IDENTITY
    >>> S = StateT(IDENTITY)
    >>> eval_state(S, S.pure(1), 0)
    Id(value=1)
    """
    return monad.inner.map(m.fn(state), lambda a_s: a_s[0])


def exec_state(monad: StateT, m: StateFn, state: Any) -> Any:
    """Run from `state`, keeping only the final state.

    >>> from mce.transformers import IDENTITY
    >>> S = StateT(IDENTITY)
    >>> exec_state(S, S.put(3), 0)
    Id(value=3)
    """
    return monad.inner.map(m.fn(state), lambda a_s: a_s[1])


__all__ = [
    "StateFn",
    "StateT",
    "eval_state",
    "exec_state",
    "run_state",
]
