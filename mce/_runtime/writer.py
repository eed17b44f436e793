"""The journal writer: records written in groups, durable before they are used.

Records of completed effects are handed to the run's writer thread
(`mce._runtime.write_thread`, for journals that do file I/O), which writes
whatever it has been handed with one write, again and again, and one fsync
whenever a record is waited for: records that arrive while an fsync is under
way share the next one. Every
record is durable - flushed and fsynced by the journal - before its effect's
value is used. Usually an effect waits for its record (`commit`); the last
effect of a branch of an unbounded parallel block does not (`defer`): the
block waits once, for all of its branches, in `durable()`. A journal file's
deferred records are written as they come and fsynced only when someone
waits: the block's wait makes them all durable with one fsync, not one per
group (a killed process keeps what was written; only the machine losing
power could lose them, and nothing used their values yet). The thread wakes
the event loop once per write, for every effect waiting for it, and never
for a record nobody waits for yet. A step of the run's top-level sequence,
with nothing left for the thread to write and no other run writing a
journal in the process, writes its record on the event loop: nothing else
of the run can go on meanwhile, and the hand-off to a thread and back would
cost more than the write.

A write that fails fails the run: every effect waiting for it, and every
later `commit`, `defer` or `durable()`, raises `JournalWriteError` (the
original error is its `__cause__`), and no record handed to the thread
after the failed write is written. A failure in a write nobody waits
for is kept, not dropped, and raised by whoever next needs the journal
durable - before any value whose record is missing is used.

>>> import anyio
>>> from mce.journal import FileJournal, Header, Journal, Record
>>> j = Journal()
>>> w = JournalWriter(j)
>>> anyio.run(w.commit, Record("0", "k", "", True, 1))
>>> [r.value for r in j.read()[1]]
[1]
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from mce._runtime.write_thread import WriteThread
from mce.journal import FileJournal, Header, Journal, Record

__all__ = ["JournalWriteError", "JournalWriter"]

_R = TypeVar("_R")


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


_FILE_APPEND = FileJournal.append
"""`FileJournal.append` as mce defines it: `lines`, then `write_lines`."""

_LIVE: weakref.WeakSet[JournalWriter] = weakref.WeakSet()
"""Writers that have appended to a file journal and are not closed: the runs writing now."""


class JournalWriter:
    """Appends one run's records to its journal (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_failed",
        "_handed",
        "_lines",
        "_live",
        "_thread",
        "journal",
        "threaded",
    )

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.threaded = journal.needs_thread  # records go to a writer thread
        self._buffer: list[Header | Record] = []  # records not yet handed to a write
        self._failed: Exception | None = None  # the first failed write: the run is over
        self._handed = 0  # records handed to the thread so far
        self._live = False  # in `_LIVE`
        # A journal file's lines are made here, on the event loop, and only
        # written in the thread: a thread that encodes competes with the
        # loop for the GIL (and holds it while the OS runs something else).
        self._lines = type(journal).append is _FILE_APPEND  # not one replaced or overridden
        # Taken on the first item handed to it. A journal file's lines are fsynced
        # when someone waits for one of them; another journal makes every append durable.
        self._thread: WriteThread[Any] = (
            WriteThread(_writer_of(journal), lazy=True)
            if self._lines
            else WriteThread(lambda records, _durable: journal.append(records))
        )

    def append(self, record: Header | Record) -> None:
        """Buffer a record; it is written by the next `commit`, `defer` or `durable()`."""
        self._buffer.append(record)
        if not self._live and self.journal.needs_thread:
            self._live = True  # a replay, which never appends, does not count
            _LIVE.add(self)

    async def commit(self, record: Header | Record, *, alone: bool = False) -> None:
        """Append `record`; return once it is durable. Concurrent commits share a write.

        `alone` says that no other part of the run can go on meanwhile (the
        effect is in the run's top-level sequence): then, if the writer
        thread has nothing left to write and no other run in this process
        writes a journal, the record is written and fsynced right here, on
        the event loop - the run would only wait for the thread doing it -
        sparing two thread hand-offs, which cost more than the write itself
        on a fast disk.
        """
        self._check()
        self.append(record)
        if not self.journal.needs_thread:
            self._write_here()
            return
        if alone and len(_LIVE) == 1 and self._thread.idle():
            self._write_here()
            return
        await self._wait(self._submit())

    def defer(self, record: Header | Record) -> bool:
        """Hand `record` to the writer thread and return at once; False if there is no thread.

        The caller promises that nothing uses the record's value before
        `durable()` returns.
        """
        if not self.journal.needs_thread:
            return False
        self._check()
        self.append(record)
        self._submit()
        return True

    def defer_effect(
        self,
        pos: str,
        kind: str,
        fp: str,
        ok: bool,
        value: Any,
        req: Any,
        t0: float,
        t1: float,
        branch: str,
    ) -> None:
        """`defer` the record of an effect with these fields; the writer has a thread.

        For a journal file with nothing buffered, the record's line is made
        from the fields and handed over at once, without a `Record`: this is
        the write of every branch of a wide parallel block.
        """
        assert self.threaded
        if not self._lines or self._buffer:
            self.defer(Record(pos, kind, fp, ok, value, req, t0, t1, branch))
            return
        self._check()
        if not self._live:
            self._live = True
            _LIVE.add(self)
        journal = self.journal
        assert isinstance(journal, FileJournal)
        try:
            line = journal.line(pos, kind, fp, ok, value, req, t0, t1, branch)
            self._handed = self._thread.submit([line])
        except Exception as exc:
            self._failed = exc
            raise self._failure(exc) from exc

    async def durable(self) -> None:
        """Return once every record appended so far is written and fsynced.

        Also what a run does last: it writes what is still buffered (a
        header, when the run made no effect).
        """
        self._check()
        if self._buffer and not self.journal.needs_thread:
            self._write_here()
            return
        await self._wait(self._submit() if self._buffer else self._handed)

    async def call(self, function: Callable[..., _R], *args: Any) -> _R:
        """`function(*args)` in the writer's thread (opening the journal there); what it returns.

        Before the first record is handed over: a run with a journal file
        opens it in the thread that will write it, and needs no other.
        """
        return await self._thread.call(function, *args)

    def close(self) -> None:
        """Let the writer's thread write what it was handed, and stop it; the run writes no more."""
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

    def _write_here(self) -> None:
        """Write the buffer now, on this thread."""
        records, self._buffer = self._buffer, []
        try:
            self.journal.append(records)
        except Exception as exc:
            self._failed = exc
            raise self._failure(exc) from exc

    def _submit(self) -> int:
        """Hand the buffer to the writer thread; the count of items to wait for."""
        records, self._buffer = self._buffer, []
        try:
            if self._lines:
                assert isinstance(self.journal, FileJournal)
                self._handed = self._thread.submit([self.journal.lines(records)])
            else:
                self._handed = self._thread.submit(records)
        except Exception as exc:
            self._failed = exc
            raise self._failure(exc) from exc
        return self._handed

    async def _wait(self, count: int) -> None:
        try:
            await self._thread.wait(count)
        except Exception as exc:
            self._failed = exc
            raise self._failure(exc) from exc


def _writer_of(journal: Journal) -> Callable[[list[bytes], bool], None]:
    """What the writer thread calls with the lines made since its last write."""
    assert isinstance(journal, FileJournal)

    def write(chunks: list[bytes], durable: bool) -> None:
        journal.write_lines(chunks[0] if len(chunks) == 1 else b"".join(chunks), fsync=durable)

    return write
