"""The journal writer, pinned down exactly: what is durable when, which error, which message.

These tests kill the mutants of `mce/_runtime/writer.py` that the
behavioural tests in tests/test_writer.py let live (benchmarks/mutation.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from mce import FileJournal, Journal
from mce._runtime.writer import JournalWriteError, JournalWriter
from mce.journal import Header, Record

pytestmark = pytest.mark.anyio


class Held(Journal):
    """An in-memory journal that does "file I/O": each write waits until `release` is set."""

    needs_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writes: list[list[Header | Record]] = []

    def append(self, records: Sequence[Header | Record]) -> None:
        self.entered.set()
        if not self.release.wait(30):  # a safety net only: the test sets it
            raise TimeoutError("the test never released the write")
        self.writes.append(list(records))
        super().append(records)


async def _started(journal: Held) -> None:
    """Return once `journal`'s write is under way; cancellable, so a broken writer fails, not hangs."""
    started = await anyio.to_thread.run_sync(journal.entered.wait, 30, abandon_on_cancel=True)
    assert started, "the write never started"


def _rec(pos: str) -> Record:
    return Record(pos, "k", "", True, int(pos))


async def test_cancelling_an_effect_while_its_record_is_written_does_not_stop_the_write(
    anyio_backend: str,
) -> None:
    journal = Held()
    writer = JournalWriter(journal)
    scopes: list[anyio.CancelScope] = []
    seen_by_second: list[tuple[Record, ...]] = []

    async def first() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await writer.commit(_rec("0"))

    async def second() -> None:
        await writer.commit(_rec("1"))
        seen_by_second.append(journal.read()[1])  # what is durable when commit returns

    try:
        with anyio.fail_after(10):  # a safety net: a broken writer fails, not hangs
            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(second)
                await _started(journal)  # the write is under way
                scopes[0].cancel()  # the effect whose commit started the write is cancelled
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert seen_by_second == []  # the shared write has not ended: nobody returned
                journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    # both records written whole (in the order the backend ran the two tasks)
    assert sorted(r.pos for w in journal.writes for r in w) == ["0", "1"]
    assert len(seen_by_second) == 1 and "1" in [r.pos for r in seen_by_second[0]]


class Recording(Journal):
    """An in-memory journal that says which thread wrote each batch, and can fail a write."""

    def __init__(self, needs_thread: bool = True, fail: set[int] | None = None) -> None:
        super().__init__()
        self.needs_thread = needs_thread  # type: ignore[misc]
        self.fail = fail or set()
        self.batches: list[tuple[int, list[str]]] = []  # (thread id, positions)

    def append(self, records: Sequence[Header | Record]) -> None:
        number = len(self.batches) + 1
        self.batches.append(
            (threading.get_ident(), [r.pos if type(r) is Record else "header" for r in records])
        )
        if number in self.fail:
            raise OSError(28, "No space left on device")
        super().append(records)

    def threads(self) -> list[str]:
        here = threading.get_ident()
        return ["loop" if t == here else "thread" for t, _ in self.batches]

    def positions(self) -> list[list[str]]:
        return [p for _, p in self.batches]


def test_journal_write_error_says_which_journal_and_why() -> None:
    error = JournalWriteError("run.jsonl", "disk gone")
    assert (error.journal, error.reason) == ("run.jsonl", "disk gone")
    assert str(error) == (
        "journal run.jsonl: a record could not be written (disk gone); "
        "the run stopped before using a value whose record is missing"
    )
    assert isinstance(error, OSError)


async def test_a_failed_write_is_raised_with_its_cause_and_errno(anyio_backend: str) -> None:
    journal = Recording(needs_thread=False, fail={1})
    writer = JournalWriter(journal)
    with pytest.raises(JournalWriteError) as caught:
        await writer.commit(_rec("0"))
    error = caught.value
    assert str(error) == (
        "journal <memory>: a record could not be written ([Errno 28] No space left on device); "
        "the run stopped before using a value whose record is missing"
    )
    assert error.errno == 28 and error.journal == "<memory>"
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == 28
    # the run is over: every later call raises the same failure, nothing more is written
    for later in (writer.commit(_rec("1")), writer.durable()):
        with pytest.raises(JournalWriteError) as again:
            await later
        assert str(again.value) == str(error) and again.value.__cause__ is error.__cause__
    assert journal.positions() == [["0"]]
    writer.close()


async def test_an_error_without_a_message_is_named_by_its_type(anyio_backend: str) -> None:
    class Broken(Journal):
        def append(self, records: Sequence[Header | Record]) -> None:
            raise RuntimeError

    writer = JournalWriter(Broken())
    with pytest.raises(JournalWriteError) as caught:
        await writer.commit(_rec("0"))
    assert caught.value.reason == "RuntimeError" and caught.value.errno is None


async def test_an_in_memory_journal_is_written_at_once_on_the_event_loop(
    anyio_backend: str,
) -> None:
    journal = Recording(needs_thread=False)
    writer = JournalWriter(journal)
    await writer.commit(_rec("0"))
    await writer.commit(_rec("1"), alone=True)
    assert writer.defer(_rec("2")) is False  # nothing to write in the background
    assert journal.positions() == [["0"], ["1"]] and journal.threads() == ["loop", "loop"]
    writer.append(Header("r", 1, 0.0))
    assert journal.read()[0] is None  # buffered only
    await writer.durable()
    assert journal.positions() == [["0"], ["1"], ["header"]]
    await writer.durable()  # nothing buffered: nothing written
    assert len(journal.batches) == 3
    writer.close()


async def test_a_lone_step_waits_for_a_write_under_way(anyio_backend: str) -> None:
    journal = Held()
    writer = JournalWriter(journal)
    order: list[str] = []

    async def background() -> None:
        await writer.commit(_rec("0"))
        order.append("0")

    async def lone() -> None:
        await _started(journal)
        await writer.commit(_rec("1"), alone=True)  # a write is under way: join, not race it
        order.append("1")

    try:
        with anyio.fail_after(10):  # a safety net: a broken writer fails, not hangs
            async with anyio.create_task_group() as tg:
                tg.start_soon(background)
                tg.start_soon(lone)
                await _started(journal)
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert order == []
                journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    assert [[r.pos for r in w] for w in journal.writes] == [["0"], ["1"]]
    assert sorted(order) == ["0", "1"]


async def test_deferred_records_are_written_in_the_background(anyio_backend: str) -> None:
    journal = Recording()
    writer = JournalWriter(journal)
    assert writer.defer(_rec("0")) is True
    assert writer.defer(_rec("1")) is True
    await writer.durable()
    assert [r.pos for r in journal.read()[1]] == ["0", "1"]
    assert set(journal.threads()) == {"thread"}
    assert sorted(p for b in journal.positions() for p in b) == ["0", "1"]
    written = len(journal.batches)
    await writer.durable()  # nothing left: returns at once
    assert len(journal.batches) == written
    writer.close()


async def test_a_failed_background_write_is_raised_by_durable(anyio_backend: str) -> None:
    journal = Recording(fail={1})
    writer = JournalWriter(journal)
    assert writer.defer(_rec("0")) is True
    with pytest.raises(JournalWriteError) as caught:
        await writer.durable()
    assert caught.value.errno == 28
    with pytest.raises(JournalWriteError):
        writer.defer(_rec("1"))
    with pytest.raises(JournalWriteError):
        await writer.durable()
    assert journal.positions() == [["0"]]
    writer.close()


async def test_durable_waits_for_the_write_under_way(anyio_backend: str) -> None:
    journal = Held()
    writer = JournalWriter(journal)
    seen: list[list[str]] = []

    async def waiter() -> None:
        await _started(journal)
        await writer.durable()  # nothing buffered, but the write is not done yet
        seen.append([r.pos for r in journal.read()[1]])

    try:
        with anyio.fail_after(10):  # a safety net: a broken writer fails, not hangs
            async with anyio.create_task_group() as tg:
                assert writer.defer(_rec("0"))
                tg.start_soon(waiter)
                await _started(journal)
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert seen == []
                journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    assert seen == [["0"]]


async def test_records_appended_during_a_failed_write_fail_with_it(anyio_backend: str) -> None:
    journal = Held()
    failing = {"yes": True}
    original = journal.append

    def append(records: Sequence[Header | Record]) -> None:
        original(records)
        if failing["yes"]:
            raise OSError(5, "I/O error")

    journal.append = append  # type: ignore[method-assign]
    writer = JournalWriter(journal)
    errors: list[str] = []

    async def commit(pos: str) -> None:
        try:
            await writer.commit(_rec(pos))
        except JournalWriteError as exc:
            errors.append(f"{pos}: {exc.reason}")

    try:
        with anyio.fail_after(10):  # a safety net: a broken writer fails, not hangs
            async with anyio.create_task_group() as tg:
                tg.start_soon(commit, "0")
                await _started(journal)
                tg.start_soon(commit, "1")  # joins the next batch, which will never be written
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    assert sorted(errors) == ["0: [Errno 5] I/O error", "1: [Errno 5] I/O error"]
    assert [[r.pos for r in w] for w in journal.writes] == [["0"]]


async def test_records_committed_during_a_write_share_the_next_one(anyio_backend: str) -> None:
    journal = Held()
    writer = JournalWriter(journal)
    returned: list[str] = []

    async def commit(pos: str) -> None:
        await writer.commit(_rec(pos))
        returned.append(pos)

    try:
        with anyio.fail_after(10):  # a safety net: a broken writer fails, not hangs
            async with anyio.create_task_group() as tg:
                tg.start_soon(commit, "0")
                await _started(journal)
                tg.start_soon(commit, "1")
                tg.start_soon(commit, "2")
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
                assert returned == []
                journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    assert sorted(returned) == ["0", "1", "2"]
    assert [sorted(r.pos for r in w) for w in journal.writes] == [["0"], ["1", "2"]]


async def test_a_background_failure_found_when_a_record_is_handed_over_names_its_cause(
    anyio_backend: str,
) -> None:
    journal = Recording(fail={1})
    writer = JournalWriter(journal)
    assert writer.defer(_rec("0"))
    with pytest.raises(OSError):  # wait on the thread itself: the writer has not seen it fail
        await writer._thread.wait(1)
    with pytest.raises(JournalWriteError) as caught:
        writer.defer(_rec("1"))
    assert caught.value.errno == 28
    assert "No space left on device" in caught.value.reason
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(JournalWriteError):  # kept: every later hand-over fails too
        await writer.durable()
    assert journal.positions() == [["0"]]
    writer.close()


async def test_durable_writes_an_in_memory_journal_on_the_event_loop(anyio_backend: str) -> None:
    journal = Recording(needs_thread=False)
    writer = JournalWriter(journal)
    writer.append(Header(run="r", seed=1, t0=0.0))
    await writer.durable()
    assert journal.threads() == ["loop"] and journal.positions() == [["header"]]
    writer.close()


def _effect(pos: str, value: object = 1) -> tuple[object, ...]:
    """The fields `defer_effect` takes for the record of an effect at `pos`."""
    return (pos, "k", "f", True, value, int(pos), 1.5, 2.5, "")


async def test_an_effects_record_is_deferred_as_its_line_after_what_was_buffered(
    anyio_backend: str, tmp_path: Path
) -> None:
    journal = FileJournal(tmp_path / "run.jsonl")
    writer = JournalWriter(journal)
    writer.append(Header("r", 1, 0.0))  # buffered: written before the record that follows
    writer.defer_effect(*_effect("0"))  # type: ignore[arg-type]
    writer.defer_effect(*_effect("1"))  # type: ignore[arg-type]
    await writer.durable()
    writer.close()
    header, records = FileJournal(journal.path).read()
    assert header is not None and header.run == "r"
    assert records == (
        Record("0", "k", "f", True, 1, 0, 1.5, 2.5, ""),
        Record("1", "k", "f", True, 1, 1, 1.5, 2.5, ""),
    )


async def test_an_effects_record_for_a_journal_that_is_not_a_file_is_a_record(
    anyio_backend: str,
) -> None:
    journal = Recording()
    writer = JournalWriter(journal)
    writer.defer_effect(*_effect("0"))  # type: ignore[arg-type]
    await writer.durable()
    assert journal.read()[1] == (Record("0", "k", "f", True, 1, 0, 1.5, 2.5, ""),)
    writer.close()


async def test_a_record_that_cannot_be_written_fails_the_writer_for_good(
    anyio_backend: str, tmp_path: Path
) -> None:
    journal = FileJournal(tmp_path / "run.jsonl")
    writer = JournalWriter(journal)
    with pytest.raises(JournalWriteError) as caught:
        writer.defer_effect(*_effect("0", 10**5000))  # type: ignore[arg-type]  # too long to write
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.reason == str(caught.value.__cause__)  # the error it names is the cause
    with pytest.raises(JournalWriteError) as again:  # kept: nothing more is written
        writer.defer_effect(*_effect("1"))  # type: ignore[arg-type]
    assert again.value.__cause__ is caught.value.__cause__
    with pytest.raises(JournalWriteError) as again:
        await writer.durable()
    assert again.value.__cause__ is caught.value.__cause__
    writer.close()
    assert not journal.path.exists() or journal.path.read_bytes() == b""


class FsyncNoted(FileJournal):
    """A journal file noting each write its writer makes: (lines, fsynced)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[tuple[int, bool]] = []
        self.wrote = threading.Event()

    def write_lines(self, data: bytes, *, fsync: bool = True) -> None:
        super().write_lines(data, fsync=fsync)
        self.calls.append((data.count(b"\n"), fsync))
        self.wrote.set()


async def test_a_deferred_record_is_written_at_once_and_fsynced_by_the_wait_for_it(
    anyio_backend: str, tmp_path: Path
) -> None:
    journal = FsyncNoted(tmp_path / "run.jsonl")
    writer = JournalWriter(journal)
    writer.defer_effect(*_effect("0"))  # type: ignore[arg-type]
    assert await anyio.to_thread.run_sync(journal.wrote.wait, 30, abandon_on_cancel=True)
    assert journal.calls == [(1, False)]  # nobody waits for it yet: written, not fsynced
    await writer.durable()
    assert journal.calls == [(1, False), (0, True)]  # the wait fsyncs it, writing nothing more
    writer.close()
