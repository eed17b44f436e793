"""One long-lived thread per journal writer, that runs its blocking writes.

`anyio.to_thread.run_sync` per batch costs a worker-pool round trip (a
capacity limiter, a cancel scope, a queue, a future) on every write; a
durable step pays it once per record. `WriteThread` keeps one thread for
the writer's whole run and hands it a job through a `queue.SimpleQueue`;
the thread wakes the event loop with the loop's own thread-safe call
(`call_soon_threadsafe` on asyncio, the trio token's `run_sync_soon` on
trio). On any other event loop anyio supports, it falls back to
`anyio.to_thread`. An exception raised by the job is raised to the caller
on the event loop - never dropped in the thread.

>>> import anyio
>>> seen = []
>>> async def main() -> None:
...     thread = WriteThread()
...     await thread.run(seen.append, 1)
...     thread.close()
>>> anyio.run(main)
>>> seen
[1]
"""

from __future__ import annotations

import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from mce._runtime.context import new_event

_T = TypeVar("_T")

__all__ = ["WriteThread"]


def _notifier() -> Callable[[Callable[[], object]], object] | None:
    """How a thread schedules a call on the running event loop; None if not known here."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            call: Callable[[Callable[[], object]], object] = loop.call_soon_threadsafe
            return call
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None
        run_soon: Callable[[Callable[[], object]], object] = token.run_sync_soon
        return run_soon
    return None  # pragma: no cover - another event loop: anyio's worker threads


class WriteThread:
    """Runs one blocking job at a time in a thread of its own, started on first use."""

    __slots__ = ("__weakref__", "_jobs", "_notify", "_stop", "_thread")

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._notify: Callable[[Callable[[], object]], object] | None = None
        self._stop: weakref.finalize[Any, Any] | None = None

    async def run(self, fn: Callable[[_T], object], arg: _T) -> None:
        """`fn(arg)` in the thread; return when it has, raising what it raised."""
        if self._thread is None:
            self._notify = _notifier()
            if self._notify is None:  # pragma: no cover - not asyncio, not trio
                await anyio.to_thread.run_sync(fn, arg)
                return
            self._thread = threading.Thread(
                target=_serve, args=(self._jobs,), name="mce-journal", daemon=True
            )
            self._thread.start()
            # The thread ends when the writer is closed - or forgotten.
            self._stop = weakref.finalize(self, self._jobs.put, None)
        notify = self._notify
        assert notify is not None
        done = new_event()
        failed: list[BaseException] = []

        def job() -> None:
            try:
                fn(arg)
            except BaseException as exc:  # raised on the event loop, below
                failed.append(exc)
            finally:
                notify(done.set)

        self._jobs.put(job)
        await done.wait()
        if failed:
            raise failed[0]

    def close(self) -> None:
        """Let the thread end (it finishes the job it is running first)."""
        if self._stop is not None:
            self._stop()
            self._stop = self._thread = None


def _serve(jobs: queue.SimpleQueue[Callable[[], None] | None]) -> None:
    """The thread's loop: run jobs until told to stop (it holds no reference to its owner)."""
    while True:
        job = jobs.get()
        if job is None:
            return
        job()
