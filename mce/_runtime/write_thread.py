"""A thread per journal writer that writes its records in order, in groups.

The event loop hands records over with `submit` - a list append under a
lock, and a wake-up only when the thread is idle - and never waits for the
thread unless it needs a record durable (`wait`). The thread takes every
record submitted so far, writes them with one call (one write, one fsync),
and repeats: records that arrive while an fsync is under way share the next
one (group commit). A `lazy` thread makes a write durable only when someone
waits for one of its records (or the writer closes): records nobody waits
for yet - the last steps of a wide parallel block - are written as they
come, and the block's wait makes them all durable with one fsync. When a
write completes, the thread wakes the event loop once for all the effects
waiting for it, with the loop's own thread-safe call
(`call_soon_threadsafe` on asyncio, the trio token's `run_sync_soon` on
trio). A failed write is kept and raised, as itself, by `wait` and every
later `submit`: nothing submitted after a failure is written. `call` runs a
function in the same thread (a run opens its journal there).

The threads are kept for later writers: when a writer is closed, its
thread waits for the next one (up to `_KEEP` threads wait), so a run
neither starts a thread nor waits for one to end.

>>> import anyio
>>> seen = []
>>> async def main() -> None:
...     thread = WriteThread(lambda items, durable: seen.extend(items))
...     await thread.wait(thread.submit([1, 2]))
...     thread.close()
>>> anyio.run(main)
>>> seen
[1, 2]
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

from mce._runtime.context import new_event

_T = TypeVar("_T")
_R = TypeVar("_R")

__all__ = ["WriteThread"]

Notify = Callable[[Callable[[], object]], object]
Write = Callable[[list[_T], bool], object]
"""`write(items, durable)`: write the items, and make every item written so far durable if told."""


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
        "calls",
        "done",
        "durable",
        "failed",
        "jobs",
        "lazy",
        "lock",
        "notify",
        "pending",
        "stopping",
        "submitted",
        "waiters",
        "write",
        "written",
    )

    def __init__(self, write: Write[_T], lazy: bool, notify: Notify) -> None:
        self.write = write
        self.lazy = lazy
        self.notify = notify
        self.lock = threading.Lock()
        self.bell: queue.SimpleQueue[None] = queue.SimpleQueue()  # rung when the thread is idle
        self.pending: list[_T] = []  # submitted, not yet taken by the thread
        self.jobs: list[Callable[[], object]] = []  # `call`s, run before the next write
        self.calls = 0  # `call`s not yet returned
        self.submitted = 0  # items submitted so far
        self.written = 0  # items written so far, durable or not (only the thread changes it)
        self.durable = 0  # items written and made durable so far
        self.busy = False  # the thread has work: it will look at `pending` again
        self.failed: BaseException | None = None
        self.stopping = False
        self.waiters: list[tuple[int, Any]] = []  # (count, event), set once `durable >= count`
        self.done = threading.Event()  # set once the thread has let go of the pipe

    def serve(self) -> None:
        """The thread: write what is pending, group by group, until stopped."""
        while True:
            self.bell.get()
            while True:
                with self.lock:
                    jobs, self.jobs = self.jobs, []
                    batch, self.pending = self.pending, []
                    upto = self.written + len(batch)
                    # Made durable now if anyone waits for it (or the writer is closing);
                    # otherwise a later write's or `wait`'s will do.
                    sync = not self.lazy or any(w[0] <= upto for w in self.waiters) or self.stopping
                    work = self.failed is None and (batch or (sync and self.durable < upto))
                    if not jobs and not work:
                        self.busy = False
                        if self.stopping:
                            return
                        break
                for job in jobs:
                    job()
                if not work:
                    continue
                failed: BaseException | None = None
                try:
                    self.write(batch, sync)
                except BaseException as exc:  # raised on the event loop by `wait` and `submit`
                    failed = exc
                with self.lock:
                    self.written = upto
                    if failed is not None:
                        self.failed = failed
                        ready, self.waiters = self.waiters, []
                    else:
                        if sync:
                            self.durable = upto
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


_KEEP = 8
"""How many threads may wait for a writer; one more ends when its writer closes."""
_waiting: list[queue.SimpleQueue[_Pipe[Any]]] = []  # the inboxes of threads that wait
_waiting_lock = threading.Lock()


def _worker(inbox: queue.SimpleQueue[_Pipe[Any]]) -> None:
    """A thread's life: serve one writer's pipe after another, waiting in between."""
    while True:
        pipe = inbox.get()
        try:
            pipe.serve()
        finally:
            with _waiting_lock:
                keep = len(_waiting) < _KEEP
                if keep:
                    _waiting.append(inbox)
            pipe.done.set()  # after the thread is back: the next writer can take it
        if not keep:
            return


def _start(pipe: _Pipe[Any]) -> None:
    """Have a waiting thread serve `pipe`, or start one."""
    with _waiting_lock:
        inbox = _waiting.pop() if _waiting else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_worker, args=(inbox,), name="mce-journal", daemon=True).start()
    inbox.put(pipe)


def _forget_threads() -> None:
    """In a forked child: the parent's threads are not there."""
    global _waiting_lock
    _waiting_lock = threading.Lock()
    _waiting.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


class WriteThread(Generic[_T]):
    """Writes submitted items in order with `write(items, durable)`, in a thread taken on first use.

    `durable` is always true unless the thread is `lazy` (see the module docstring).
    """

    __slots__ = ("__weakref__", "_lazy", "_pipe", "_stop", "_write")

    def __init__(self, write: Write[_T], *, lazy: bool = False) -> None:
        self._write = write
        self._lazy = lazy
        self._pipe: _Pipe[_T] | None = None
        self._stop: weakref.finalize[Any, Any] | None = None

    def _open(self) -> _Pipe[_T]:
        pipe = self._pipe
        if pipe is None:
            pipe = self._pipe = _Pipe(self._write, self._lazy, _notifier())
            _start(pipe)
            # The thread lets go when the writer is closed - or forgotten.
            self._stop = weakref.finalize(self, _stop, pipe)
        return pipe

    def submit(self, items: list[_T]) -> int:
        """Hand `items` to the thread; how many items have been submitted so far, these included.

        Raises what a write raised, if one failed: nothing is written after that.
        """
        pipe = self._open()
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

    async def call(self, function: Callable[..., _R], *args: Any) -> _R:
        """`function(*args)` in the thread, before anything submitted later; what it returns.

        What it raises is raised here. Like `anyio.to_thread.run_sync`, a
        cancellation waits for the call to return.
        """
        pipe = self._open()
        event = new_event()
        outcome: list[Any] = []

        def job() -> None:
            try:
                outcome.append(function(*args))
            except BaseException as exc:  # raised by the caller, on the event loop
                outcome.append(exc)
                outcome.append(None)
            with pipe.lock:
                pipe.calls -= 1
            pipe.notify(event.set)

        with pipe.lock:
            pipe.calls += 1
            pipe.jobs.append(job)
            ring = not pipe.busy
            pipe.busy = True
        if ring:
            pipe.bell.put(None)
        with anyio.CancelScope(shield=True):
            await event.wait()
        if len(outcome) == 2:
            raise outcome[0]
        result: _R = outcome[0]
        return result

    def idle(self) -> bool:
        """Whether everything submitted is written (so the thread is not writing now)."""
        pipe = self._pipe
        if pipe is None:
            return True
        with pipe.lock:
            return pipe.durable == pipe.submitted and pipe.failed is None

    async def wait(self, count: int) -> None:
        """Return once the first `count` items submitted are durable; raise what a write raised."""
        pipe = self._pipe
        if pipe is None:
            return
        with pipe.lock:
            failed = pipe.failed
            done = pipe.durable >= count
            ring = False
            if not done and failed is None:
                event = new_event()
                pipe.waiters.append((count, event))
                ring = not pipe.busy  # written, not yet durable: the idle thread makes it so
                pipe.busy = True
        if ring:
            pipe.bell.put(None)
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
        """Let the thread write what was submitted, then let go of it; return when it has.

        When everything submitted is written (or a write failed) the thread
        has nothing left to do with the writer, and is not waited for.
        """
        pipe = self._pipe
        if pipe is None or self._stop is None:
            return
        with pipe.lock:
            quiet = pipe.calls == 0 and (pipe.durable == pipe.submitted or pipe.failed is not None)
        self._stop()
        self._stop = None
        if not quiet:
            pipe.done.wait()
