"""`EitherT`: adds failure with an error value to an inner monad.

A value of `EitherT(inner)` is an `inner` value whose result is `Left(error)`
or `Right(value)`. `throw` fails; `catch` handles a failure. Over `StateT`
(`EitherT(StateT(ASYNC))`) a failure *keeps* the state changes made before
it, because the state is threaded underneath the error.

>>> from mce.transformers import IDENTITY, Id
>>> E = EitherT(IDENTITY)
>>> E.bind(E.throw("no"), lambda x: E.pure(x + 1))
Id(value=Left(error='no'))
>>> E.catch(E.throw("no"), lambda e: E.pure(len(e)))
Id(value=Right(value=2))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from attrs import frozen

from mce.transformers.monad import Monad


@final
@frozen
class Left:
    """A failure.

    >>> Left("e").error
    'e'
    """

    error: Any


@final
@frozen
class Right:
    """A success.

    >>> Right(1).value
    1
    """

    value: Any


@final
class EitherT(Monad):
    """The Either transformer over `inner`.

    >>> from mce.transformers import IDENTITY
    >>> EitherT(IDENTITY).pure(1)
    Id(value=Right(value=1))
    """

    def __init__(self, inner: Monad) -> None:
        self.inner = inner

    def pure(self, value: Any) -> Any:
        return self.inner.pure(Right(value))

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        inner = self.inner
        return inner.bind(m, lambda ea: f(ea.value) if isinstance(ea, Right) else inner.pure(ea))

    def lift(self, m: Any) -> Any:
        """Run an inner value as a success.

        >>> from mce.transformers import IDENTITY, Id
        >>> EitherT(IDENTITY).lift(Id(4))
        Id(value=Right(value=4))
        """
        return self.inner.map(m, Right)

    def throw(self, error: Any) -> Any:
        """Fail with `error`.

        >>> from mce.transformers import IDENTITY
        >>> EitherT(IDENTITY).throw(0)
        Id(value=Left(error=0))
        """
        return self.inner.pure(Left(error))

    def catch(self, m: Any, handler: Callable[[Any], Any]) -> Any:
        """Run `m`; on failure run `handler(error)` (from wherever the inner effects left off).

        >>> from mce.transformers import IDENTITY
        >>> E = EitherT(IDENTITY)
        >>> E.catch(E.pure(1), lambda e: E.pure(2))
        Id(value=Right(value=1))
        """
        inner = self.inner
        return inner.bind(
            m, lambda ea: handler(ea.error) if isinstance(ea, Left) else inner.pure(ea)
        )

    # MonadState, lifted from the inner monad when it has state.
    def get(self) -> Any:
        """The inner monad's `get`, lifted.

        >>> from mce.transformers import IDENTITY, StateT, run_state
        >>> E = EitherT(StateT(IDENTITY))
        >>> run_state(E.get(), 7)
        Id(value=(Right(value=7), 7))
        """
        return self.lift(self.inner.get())  # type: ignore[attr-defined]

    def put(self, state: Any) -> Any:
        """The inner monad's `put`, lifted."""
        return self.lift(self.inner.put(state))  # type: ignore[attr-defined]

    def modify(self, f: Callable[[Any], Any]) -> Any:
        """The inner monad's `modify`, lifted."""
        return self.lift(self.inner.modify(f))  # type: ignore[attr-defined]

    def gets(self, f: Callable[[Any], Any]) -> Any:
        """The inner monad's `gets`, lifted."""
        return self.lift(self.inner.gets(f))  # type: ignore[attr-defined]


def run_either(m: Any) -> Any:
    """The inner value carrying `Left`/`Right` (an EitherT value is already that).

    >>> from mce.transformers import IDENTITY
    >>> run_either(EitherT(IDENTITY).pure(1))
    Id(value=Right(value=1))
    """
    return m


__all__ = [
    "EitherT",
    "Left",
    "Right",
    "run_either",
]
