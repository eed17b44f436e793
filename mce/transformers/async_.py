"""`Async`: an awaitable thunk, the base effect of mce's stack.

A value is `Thunk(make)`, where `make()` returns a fresh awaitable each time
it is called, so a value can be run many times.

>>> import anyio
>>> m = ASYNC.bind(ASYNC.pure(2), lambda x: ASYNC.pure(x * 10))
>>> anyio.run(run_async, m)
20
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, final

from attrs import frozen

from mce.transformers.monad import Monad


@final
@frozen
class Thunk:
    """An Async value: a zero-argument callable returning a fresh awaitable.

    >>> import anyio
    >>> async def two() -> int:
    ...     return 2
    >>> anyio.run(run_async, Thunk(two))
    2
    """

    make: Callable[[], Awaitable[Any]]


async def _ready(value: Any) -> Any:
    return value


@final
class Async(Monad):
    """The Async monad instance; values are `Thunk`.

    >>> import anyio
    >>> anyio.run(run_async, Async().map(Async().pure(1), str))
    '1'
    """

    def pure(self, value: Any) -> Thunk:
        return Thunk(lambda: _ready(value))

    def bind(self, m: Thunk, f: Callable[[Any], Any]) -> Thunk:
        async def go() -> Any:
            a = await m.make()
            return await f(a).make()

        return Thunk(go)


ASYNC: Async = Async()
"""The shared Async instance."""


async def run_async(m: Thunk) -> Any:
    """Await the thunk's value.

    >>> import anyio
    >>> anyio.run(run_async, ASYNC.pure("x"))
    'x'
    """
    return await m.make()


__all__ = [
    "ASYNC",
    "Async",
    "Thunk",
    "run_async",
]
