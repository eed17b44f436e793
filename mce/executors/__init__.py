"""Where effect handlers run: on the event loop, in worker threads, or on a cluster.

An executor is given each live handler call; `run(..., executor=...)`
chooses it. `LocalExecutor` (the default) runs handlers in this process:
an async handler is awaited on the event loop; a sync handler - which may
block, as most sync tools do - runs in a worker thread, at most `threads`
at a time, so sync tools run in parallel and timeouts and budgets around
them fire. `mce.executors.ray.RayExecutor` runs the handlers of effects
marked `remote=True` (`@tool(remote=True)`, `remote_agent(...)`) as Ray
tasks. Either way the driver journals the results, so a run recorded on
one replays on the other.

A sync handler marked with `nonblocking` is called on the event loop instead.

A thread cannot be killed: when the step awaiting a sync handler is
cancelled (a timeout, a budget, a failed sibling), the step stops waiting
at once and the handler's thread is abandoned - it runs on to completion in
the background, and its result (or exception) is discarded, never journaled.

>>> import anyio
>>> anyio.run(LocalExecutor(threads=4).call, lambda req: req * 2, 21, False)
42
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, final, runtime_checkable

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

_T = TypeVar("_T")


@runtime_checkable
class Executor(Protocol):
    """Runs a handler on a request (`remote` says whether the effect may leave the process)."""

    async def call(self, handler: Callable[[Any], Any], request: Any, remote: bool) -> Any: ...


def is_async_callable(fn: Any) -> bool:
    """Whether calling `fn` gives a coroutine to await (an async function, method or object).

    >>> async def fetch(request): ...
    >>> is_async_callable(fetch), is_async_callable(str)
    (True, False)
    """
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the method, not callability
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


def nonblocking(handler: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """Mark a sync handler that never blocks: it is called on the event loop, with no thread hop.

    For cheap handlers (a scripted model), or ones that touch event-loop
    objects. A handler marked so and then blocking stalls every branch.

    >>> import anyio, threading
    >>> on_loop = nonblocking(lambda req: threading.current_thread() is threading.main_thread())
    >>> anyio.run(LOCAL.call, on_loop, 0, False)
    True
    """
    if not callable(handler):
        raise TypeError(f"nonblocking() needs a callable handler, got {handler!r}")
    try:  # a plain function is marked as it is (it keeps its identity and doctests)
        handler.__mce_nonblocking__ = True  # type: ignore[attr-defined]
    except AttributeError:  # a bound method, a builtin: marked through a wrapper

        @functools.wraps(handler)
        def call(request: Any) -> _T:
            return handler(request)

        call.__mce_nonblocking__ = True  # type: ignore[attr-defined]
        return call
    return handler


@final
class LocalExecutor:
    """Run handlers in this process: async ones on the event loop, sync ones in worker threads.

    `threads` bounds how many sync handlers (and sync `@tool` functions) run
    at once in one event loop; None (the default) shares anyio's default
    limiter (40 threads, `anyio.to_thread.current_default_thread_limiter()`).
    A thread abandoned by a cancelled step no longer counts against the bound.

    >>> import anyio, threading
    >>> ex = LocalExecutor(threads=2)
    >>> anyio.run(ex.call, lambda req: threading.current_thread() is threading.main_thread(), 0, False)
    False
    """

    __slots__ = ("_limiters", "threads")

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
            raise TypeError(f"LocalExecutor(threads=...) must be an int or None, got {threads!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"LocalExecutor(threads=...) must be at least 1, got {threads!r}")
        self.threads = threads
        # One limiter per event loop: a limiter belongs to the loop that made it.
        self._limiters: RunVar[anyio.CapacityLimiter] = RunVar("mce.executors.threads")

    def __repr__(self) -> str:
        return f"LocalExecutor(threads={self.threads!r})"

    def limiter(self) -> anyio.CapacityLimiter | None:
        """This executor's thread limiter in the running event loop (None: anyio's default)."""
        if self.threads is None:
            return None
        try:
            return self._limiters.get()
        except LookupError:
            made = anyio.CapacityLimiter(self.threads)
            self._limiters.set(made)
            return made

    async def call(self, handler: Callable[[Any], Any], request: Any, remote: bool) -> Any:
        if is_async_callable(handler):
            # The fast path: no thread hop. A handler that runs sync code of
            # its own (a `@tool`'s function) reaches our limiter through
            # `run_in_thread`.
            token = _running.set(self)
            try:
                return await handler(request)
            finally:
                _running.reset(token)
        if getattr(handler, "__mce_nonblocking__", False):
            result = handler(request)
            if hasattr(result, "__await__"):
                result = await result
            return result
        # Boxed: trio refuses a thread function that returns a coroutine, and
        # a sync handler may return an awaitable to finish on the event loop.
        (result,) = await _to_thread(self.limiter(), _boxed, handler, request)
        if hasattr(result, "__await__"):
            result = await result
        return result


def _boxed(handler: Callable[[Any], Any], request: Any) -> tuple[Any]:
    return (handler(request),)


LOCAL = LocalExecutor()

_running: ContextVar[LocalExecutor] = ContextVar("mce.executors.running", default=LOCAL)


async def run_in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run blocking `fn(*args)` in a worker thread, under the running executor's thread limit.

    What an async handler calls to run sync code (a `@tool` does this for a
    sync function). If the awaiting step is cancelled, this returns at once
    and the thread is abandoned: it runs on, and its result is discarded.

    >>> import anyio
    >>> anyio.run(run_in_thread, sum, [1, 2, 3])
    6
    """
    return await _to_thread(_running.get().limiter(), fn, *args)


async def _to_thread(
    limiter: anyio.CapacityLimiter | None, fn: Callable[..., _T], *args: Any
) -> _T:
    """`fn(*args)` in a worker thread under `limiter`; a cancelled caller abandons the thread."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            async with limiter or anyio.to_thread.current_default_thread_limiter():
                return await _in_daemon_thread(loop, fn, args)
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=limiter)


async def _in_daemon_thread(loop: Any, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
    """`fn(*args)` in a new daemon thread; its result or exception comes back to `loop`.

    anyio's asyncio worker threads are not daemon threads: a Ctrl-C while a
    sync tool blocks would leave the interpreter waiting for the tool at
    exit. A thread abandoned by a cancelled step must never hold the process.
    """
    future = loop.create_future()
    context = contextvars.copy_context()  # report_retry and friends work in the thread

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the step was cancelled: the result is discarded
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = context.run(fn, *args), None
        except BaseException as exc:
            result, error = None, exc
        # A closed loop (RuntimeError): the run ended, cancelled or interrupted,
        # and abandoned this call - nobody is left to take its result.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name="mce-worker", daemon=True).start()
    result: _T = await future
    return result


__all__ = [
    "LOCAL",
    "Executor",
    "LocalExecutor",
    "is_async_callable",
    "nonblocking",
    "run_in_thread",
]
