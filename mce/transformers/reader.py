"""`ReaderT`: adds a read-only environment.

A value is `ReaderFn(fn)` with `fn(env) -> inner[value]`.

>>> from mce.transformers import IDENTITY
>>> R = ReaderT(IDENTITY)
>>> run_reader(R.bind(R.ask(), lambda env: R.pure(env["model"])), {"model": "m1"})
Id(value='m1')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from attrs import frozen

from mce.transformers.monad import Monad


@final
@frozen
class ReaderFn:
    """A ReaderT value: `fn(env) -> inner[value]`.

    >>> from mce.transformers import IDENTITY
    >>> ReaderFn(IDENTITY.pure).fn(1)
    Id(value=1)
    """

    fn: Callable[[Any], Any]


@final
class ReaderT(Monad):
    """The Reader transformer over `inner`.

    >>> from mce.transformers import IDENTITY
    >>> run_reader(ReaderT(IDENTITY).pure(2), "env")
    Id(value=2)
    """

    def __init__(self, inner: Monad) -> None:
        self.inner = inner

    def pure(self, value: Any) -> ReaderFn:
        inner = self.inner
        return ReaderFn(lambda _env: inner.pure(value))

    def bind(self, m: ReaderFn, f: Callable[[Any], Any]) -> ReaderFn:
        inner = self.inner
        return ReaderFn(lambda env: inner.bind(m.fn(env), lambda a: f(a).fn(env)))

    def lift(self, m: Any) -> ReaderFn:
        """Run an inner value, ignoring the environment.

        >>> from mce.transformers import IDENTITY, Id
        >>> run_reader(ReaderT(IDENTITY).lift(Id(1)), None)
        Id(value=1)
        """
        return ReaderFn(lambda _env: m)

    def ask(self) -> ReaderFn:
        """The environment as the value.

        >>> from mce.transformers import IDENTITY
        >>> run_reader(ReaderT(IDENTITY).ask(), "e")
        Id(value='e')
        """
        return ReaderFn(self.inner.pure)

    def local(self, f: Callable[[Any], Any], m: ReaderFn) -> ReaderFn:
        """Run `m` with the environment changed by `f`.

        >>> from mce.transformers import IDENTITY
        >>> R = ReaderT(IDENTITY)
        >>> run_reader(R.local(str.upper, R.ask()), "e")
        Id(value='E')
        """
        return ReaderFn(lambda env: m.fn(f(env)))


def run_reader(m: ReaderFn, env: Any) -> Any:
    """Run with environment `env`.

    >>> from mce.transformers import IDENTITY
    >>> run_reader(ReaderT(IDENTITY).ask(), 3)
    Id(value=3)
    """
    return m.fn(env)


__all__ = [
    "ReaderFn",
    "ReaderT",
    "run_reader",
]
