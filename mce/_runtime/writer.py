"""The journal writer: records written in batches, durable before they are used.

Records of completed effects are written in batches, in the run's writer
thread (`mce._runtime.write_thread`, for journals that do file I/O), and
every record is durable - flushed and fsynced by the journal - before its
effect's value is used. Usually an effect waits for its batch (`commit`);
the last effect of a branch of an unbounded parallel block does not
(`defer`): the block waits once, for all of its branches, in `durable()`.
Effects that complete together share one write and one fsync. A step of the
run's top-level sequence, with no write under way and no other run writing
a journal in the process, writes its record on the event loop: nothing
else of the run can go on meanwhile, and the hand-off to a thread and back
would cost more than the write.

A write that fails fails the run: every effect waiting for that batch, and
every later `commit`, `durable()` or `finish()`, raises `JournalWriteError`
(the original error is its `__cause__`). A failure in a background write is
kept, not dropped, and raised by whoever next needs the journal durable -
before any value whose record is missing is used.

>>> import anyio
>>> from mce.journal import Header, Journal, Record
>>> j = Journal()
>>> w = JournalWriter(j)
>>> from mce.journal import Record
>>> anyio.run(w.commit, Record("0", "k", "", True, 1))
>>> [r.value for r in j.read()[1]]
[1]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel

from mce._runtime.context import new_event
from mce._runtime.write_thread import WriteThread
from mce.journal import Header, Journal, Record

__all__ = ["JournalWriteError", "JournalWriter"]


class JournalWriteError(OSError):
    """Writing a journal failed (a full disk, a lost device): the run stops.

    Raised by `run` before the value whose record could not be written is
    used, so a run never ends `Ok` with a record missing. The error from the
    journal is the `__cause__` (its `errno`, if any, is copied). An `OSError`,
    so `except OSError` around a run still catches it.

    >>> str(JournalWriteError("run.jsonl", "[Errno 28] No space left on device"))
    'journal run.jsonl: a record could not be written ([Errno 28] No space left on device); the run stopped before using a value whose record is missing'
    """

    def __init__(self, journal: str, reason: str) -> None:
        self.journal = journal
        self.reason = reason
        super().__init__(
            f"journal {journal}: a record could not be written ({reason}); "
            "the run stopped before using a value whose record is missing"
        )


class _Batch:
    """Records written together; their effects wait until the write is durable."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = new_event()
        self.error: Exception | None = None


_LIVE: weakref.WeakSet[JournalWriter] = weakref.WeakSet()
"""Writers that have appended to a file journal and are not closed: the runs writing now."""


class JournalWriter:
    """Appends one run's records to its journal (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_batch",
        "_buffer",
        "_failed",
        "_flushing",
        "_spawn",
        "_thread",
        "_writing",
        "journal",
    )

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._buffer: list[Header | Record] = []  # records not yet written
        self._batch: _Batch | None = None  # created lazily, inside the event loop
        self._flushing = False
        self._writing: _Batch | None = None  # the batch being written now
        self._failed: Exception | None = None  # the first failed write: the run is over
        self._spawn: Callable[..., Any] | None = None
        self._thread = WriteThread()  # started on the first write that needs it

    def run_in_background(self, spawn: Callable[..., Any]) -> None:
        """Let `defer` start background writes with `spawn` (a task group's `start_soon`)."""
        self._spawn = spawn

    def append(self, record: Header | Record) -> None:
        """Buffer a record; it is written by the next commit, `durable()` or `finish()`."""
        self._buffer.append(record)
        if self.journal.needs_thread:
            _LIVE.add(self)  # a replay, which never appends, does not count
        if self._batch is None:  # an anyio Event needs the running event loop
            self._batch = _Batch()

    async def commit(self, record: Header | Record, *, alone: bool = False) -> None:
        """Append `record`; return once it is durable. Concurrent commits share a write.

        `alone` says that no other part of the run can go on meanwhile (the
        effect is in the run's top-level sequence): then, if no write is
        under way and no other run in this process writes a journal, the
        record is written and fsynced right here, on the event loop - the
        run would only wait for the thread doing it - sparing two thread
        hand-offs, which cost more than the write itself on a fast disk.
        """
        self._check()
        self.append(record)
        if not self.journal.needs_thread or (alone and not self._flushing and len(_LIVE) == 1):
            self._write_here()
            return
        await self._flush_or_wait()

    def defer(self, record: Header | Record) -> bool:
        """Append `record` and write it in the background; False if that is not possible.

        The caller promises that nothing uses the record's value before
        `durable()` returns.
        """
        if self._spawn is None or not self.journal.needs_thread:
            return False
        self._check()
        self.append(record)
        if not self._flushing:
            self._flushing = True  # claimed now, so one flush task at a time
            self._spawn(self._flush_in_background)
        return True

    async def durable(self) -> None:
        """Return once every record appended so far is written and fsynced."""
        if self._buffer:
            await self._flush_or_wait()
        elif self._writing is not None:
            await self._wait(self._writing)
        self._check()

    async def finish(self) -> None:
        """Write what is still buffered (a header when the run made no effect)."""
        if self.journal.needs_thread:
            await self.durable()
        else:
            self._check()
            if self._buffer:
                self._write_here()

    def close(self) -> None:
        """Stop the writer's thread; the run writes no more."""
        self._thread.close()
        _LIVE.discard(self)

    # ------------------------------------------------------------ internals

    def _failure(self, exc: Exception) -> JournalWriteError:
        error = JournalWriteError(self.journal.name, str(exc) or type(exc).__name__)
        error.errno = getattr(exc, "errno", None)
        error.__cause__ = exc
        return error

    def _check(self) -> None:
        if self._failed is not None:
            raise self._failure(self._failed)

    async def _wait(self, batch: _Batch) -> None:
        await batch.done.wait()
        if batch.error is not None:
            raise self._failure(batch.error)

    def _write_here(self) -> None:
        """Write the buffer now, on this thread (a journal that does no file I/O)."""
        records, self._buffer = self._buffer, []
        try:
            self.journal.append(records)
        except Exception as exc:
            self._failed = exc
            raise self._failure(exc) from exc

    async def _flush_or_wait(self) -> None:
        self._check()
        if self._batch is None:
            self._batch = _Batch()
        batch = self._batch
        if self._flushing:
            await self._wait(batch)
            return
        self._flushing = True
        await self._flush()

    async def _flush_in_background(self) -> None:
        try:
            await self._flush()
        except JournalWriteError:
            # Not dropped: `_failed` holds it, and every waiter, `durable()`
            # and `finish()` raises it before a value without a record is used.
            assert self._failed is not None

    async def _flush(self) -> None:
        """Write the buffer batch by batch (the caller has set `_flushing`)."""
        journal = self.journal
        try:
            # Shielded: the write must finish even if the effect that started
            # it is cancelled meanwhile - other effects' records wait on it.
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # effects completing now join this batch
                while self._buffer:
                    records, self._buffer = self._buffer, []
                    batch, self._batch = self._batch, _Batch()
                    assert batch is not None
                    self._writing = batch
                    try:
                        await self._thread.run(journal.append, records)
                    except Exception as exc:
                        self._failed = batch.error = exc
                        raise self._failure(exc) from exc
                    finally:
                        batch.done.set()
                        self._writing = None
        finally:
            self._flushing = False
            if self._failed is not None and self._batch is not None:
                # Records appended meanwhile will never be written: wake
                # their effects with the failure rather than leave them waiting.
                pending, self._batch = self._batch, _Batch()
                pending.error = self._failed
                pending.done.set()
