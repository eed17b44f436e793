"""One long-lived thread per journal writer that writes its records in order, in groups.

The event loop hands records over with `submit` - a list append under a
lock, and a wake-up only when the thread is idle - and never waits for the
thread unless it needs a record durable (`wait`). The thread takes every
record submitted so far, writes them with one call (one write, one fsync),
and repeats: records that arrive while an fsync is under way share the next
one (group commit). When a write completes, the thread wakes the event loop
once for all the effects waiting for it, with the loop's own thread-safe
call (`call_soon_threadsafe` on asyncio, the trio token's `run_sync_soon`
on trio). A failed write is kept and raised, as itself, by `wait` and every
later `submit`: nothing submitted after a failure is written.

>>> import anyio
>>> seen = []
>>> async def main() -> None:
...     thread = WriteThread(seen.extend)
...     await thread.wait(thread.submit([1, 2]))
...     thread.close()
>>> anyio.run(main)
>>> seen
[1, 2]
"""

from __future__ import annotations

import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from mce._runtime.context import new_event

_T = TypeVar("_T")

__all__ = ["WriteThread"]

Notify = Callable[[Callable[[], object]], object]


def _notifier() -> Notify:
    """How a thread schedules a call on the event loop running here."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            call: Notify = loop.call_soon_threadsafe
            return call
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            run_soon: Notify = token.run_sync_soon
            return run_soon
    # anyio runs on asyncio or trio only: this is a call from outside an event loop.
    raise RuntimeError("a journal writer thread is used from outside an asyncio or trio event loop")


class _Pipe(Generic[_T]):
    """The state the event loop and the thread share; every field is guarded by `lock`."""

    __slots__ = (
        "bell",
        "busy",
        "durable",
        "failed",
        "lock",
        "notify",
        "pending",
        "stopping",
        "submitted",
        "waiters",
        "write",
    )

    def __init__(self, write: Callable[[list[_T]], object], notify: Notify) -> None:
        self.write = write
        self.notify = notify
        self.lock = threading.Lock()
        self.bell: queue.SimpleQueue[None] = queue.SimpleQueue()  # rung when the thread is idle
        self.pending: list[_T] = []  # submitted, not yet taken by the thread
        self.submitted = 0  # items submitted so far
        self.durable = 0  # items written so far (the write call returned)
        self.busy = False  # the thread has work: it will look at `pending` again
        self.failed: BaseException | None = None
        self.stopping = False
        self.waiters: list[tuple[int, Any]] = []  # (count, event), set once `durable >= count`

    def serve(self) -> None:
        """The thread: write what is pending, group by group, until stopped."""
        while True:
            self.bell.get()
            while True:
                with self.lock:
                    batch, self.pending = self.pending, []
                    if not batch or self.failed is not None:
                        self.busy = False
                        if self.stopping:
                            return
                        break
                failed: BaseException | None = None
                try:
                    self.write(batch)
                except BaseException as exc:  # raised on the event loop by `wait` and `submit`
                    failed = exc
                with self.lock:
                    if failed is not None:
                        self.failed = failed
                        ready, self.waiters = self.waiters, []
                    else:
                        self.durable += len(batch)
                        ready = [w for w in self.waiters if w[0] <= self.durable]
                        if ready:
                            self.waiters = [w for w in self.waiters if w[0] > self.durable]
                if ready:
                    self.notify(_setter([event for _, event in ready]))


def _setter(events: list[Any]) -> Callable[[], None]:
    def wake() -> None:
        for event in events:
            event.set()

    return wake


def _stop(pipe: _Pipe[Any]) -> None:
    with pipe.lock:
        pipe.stopping = True
        ring = not pipe.busy
        pipe.busy = True
    if ring:
        pipe.bell.put(None)


class WriteThread(Generic[_T]):
    """Writes submitted items in order with `write(items)`, in a thread started on first use."""

    __slots__ = ("__weakref__", "_pipe", "_stop", "_thread", "_write")

    def __init__(self, write: Callable[[list[_T]], object]) -> None:
        self._write = write
        self._pipe: _Pipe[_T] | None = None
        self._thread: threading.Thread | None = None
        self._stop: weakref.finalize[Any, Any] | None = None

    def submit(self, items: list[_T]) -> int:
        """Hand `items` to the thread; how many items have been submitted so far, these included.

        Raises what a write raised, if one failed: nothing is written after that.
        """
        pipe = self._pipe
        if pipe is None:
            pipe = self._pipe = _Pipe(self._write, _notifier())
            self._thread = threading.Thread(target=pipe.serve, name="mce-journal", daemon=True)
            self._thread.start()
            # The thread ends when the writer is closed - or forgotten.
            self._stop = weakref.finalize(self, _stop, pipe)
        with pipe.lock:
            if pipe.failed is not None:
                raise pipe.failed
            pipe.pending += items
            pipe.submitted += len(items)
            count = pipe.submitted
            ring = not pipe.busy
            pipe.busy = True
        if ring:
            pipe.bell.put(None)
        return count

    def idle(self) -> bool:
        """Whether everything submitted is written (so the thread is not writing now)."""
        pipe = self._pipe
        if pipe is None:
            return True
        with pipe.lock:
            return pipe.durable == pipe.submitted and pipe.failed is None

    async def wait(self, count: int) -> None:
        """Return once the first `count` items submitted are written; raise what a write raised."""
        pipe = self._pipe
        if pipe is None:
            return
        with pipe.lock:
            failed = pipe.failed
            done = pipe.durable >= count
            if not done and failed is None:
                event = new_event()
                pipe.waiters.append((count, event))
        if failed is not None:
            raise failed
        if done:
            return
        await event.wait()
        with pipe.lock:
            failed = pipe.failed if pipe.durable < count else None
        if failed is not None:
            raise failed

    def close(self) -> None:
        """Let the thread write what was submitted, then end; return when it has."""
        if self._stop is not None:
            self._stop()
            assert self._thread is not None
            self._thread.join()
            self._stop = self._thread = None
