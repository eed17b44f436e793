"""Resources that belong to one event loop: made on first use in a loop, closed when it ends.

HTTP clients and anyio primitives are bound to the event loop that first
used them; a handler reused across `run_sync` calls (each with its own loop,
asyncio or trio) must not carry them over. `PerLoop` keeps one resource per
running loop and closes it when that loop shuts down: on asyncio, a waiting
task that the loop cancels at shutdown (`asyncio.run`, `anyio.run`); on
trio, a system task, cancelled when the run's main task returns.
"""

from __future__ import annotations

import asyncio
import warnings
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, final

import sniffio

_T = TypeVar("_T")


def _loop_token() -> Any:
    """The running event loop (asyncio) or trio run's token: the key of per-loop resources."""
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


@final
class PerLoop(Generic[_T]):
    """One `make()` per running event loop; `close(resource)` runs when that loop ends.

    >>> import anyio
    >>> made, closed = [], []
    >>> async def close(r): closed.append(r)
    >>> per_loop = PerLoop(lambda: made.append(1) or len(made), close)
    >>> async def use():
    ...     return per_loop.get(), per_loop.get()
    >>> anyio.run(use), anyio.run(use, backend="trio"), closed
    ((1, 1), (2, 2), [1, 2])
    """

    def __init__(
        self, make: Callable[[], _T], close: Callable[[_T], Awaitable[None]] | None = None
    ) -> None:
        self._make = make
        self._close = close
        self._items: weakref.WeakKeyDictionary[Any, _T] = weakref.WeakKeyDictionary()
        self._guards: set[Any] = set()  # strong references to the asyncio closing tasks

    def get(self) -> _T:
        """The resource of the running loop (made now if this loop has none)."""
        token = _loop_token()
        try:
            return self._items[token]
        except KeyError:
            pass
        item = self._items[token] = self._make()
        if self._close is not None:
            if isinstance(token, asyncio.AbstractEventLoop):
                task = token.create_task(self._guard_asyncio(token, item))
                self._guards.add(task)
                task.add_done_callback(self._guards.discard)
            else:
                import trio

                trio.lowlevel.spawn_system_task(self._guard_trio, token, item)
        return item

    async def aclose(self) -> None:
        """Close the running loop's resource now (a later `get` makes a new one)."""
        token = _loop_token()
        item = self._items.pop(token, None)
        if item is not None and self._close is not None:
            await self._close(item)

    async def _finish(self, token: Any, item: _T) -> None:
        if self._items.get(token) is not item:
            return  # already closed by `aclose`
        del self._items[token]
        assert self._close is not None
        try:
            await self._close(item)
        except Exception as exc:  # reported, not swallowed: the loop is ending, nobody awaits this
            warnings.warn(
                f"closing a per-loop resource failed: {exc!r}", ResourceWarning, stacklevel=1
            )

    async def _guard_asyncio(self, token: Any, item: _T) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until the loop shuts down
        finally:
            await self._finish(token, item)

    async def _guard_trio(self, token: Any, item: _T) -> None:
        import trio

        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await self._finish(token, item)
