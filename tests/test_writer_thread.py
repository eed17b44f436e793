"""The writer thread: a call run in it, writes after it, lazy fsyncs, threads kept for later.

A run opens its journal file in the thread that will write it (`WriteThread.call`);
a journal file's lines are fsynced when someone waits for one of them (`lazy`);
and a closed writer's thread waits for the next writer instead of ending, so a
run neither starts a thread nor waits for one to end.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from mce import FileJournal, effect, gather, run
from mce._runtime import write_thread
from mce._runtime.write_thread import WriteThread

pytestmark = pytest.mark.anyio


class Seen:
    """A `write` that notes what it wrote and on which thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.threads: list[int] = []

    def __call__(self, items: list[Any], durable: bool) -> None:
        assert durable  # not a lazy thread
        self.items += items
        self.threads.append(threading.get_ident())


class Lazy:
    """A lazy thread's `write`: notes each call (items, durable) and tells when one is made."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], bool]] = []
        self.wrote = threading.Event()

    def __call__(self, items: list[Any], durable: bool) -> None:
        self.calls.append((list(items), durable))
        self.wrote.set()

    async def next_write(self) -> None:
        assert await anyio.to_thread.run_sync(self.wrote.wait, 30, abandon_on_cancel=True)
        self.wrote.clear()


def _let_go(thread: WriteThread[Any]) -> None:
    """Close `thread` and return once its thread waits for the next writer."""
    pipe = thread._pipe
    thread.close()
    assert pipe is not None
    assert pipe.done.wait(30), "the thread never let go"


async def test_a_call_runs_in_the_writer_thread_before_the_writes(anyio_backend: str) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    ident = await thread.call(threading.get_ident)
    assert ident != threading.get_ident()  # not the event loop's thread
    assert await thread.call(lambda: threading.current_thread().name) == "mce-journal"
    await thread.wait(thread.submit([1, 2]))
    assert seen.items == [1, 2] and seen.threads == [ident]
    assert await thread.call(lambda a, b: a + b, 3, 4) == 7
    _let_go(thread)


async def test_what_a_call_raises_is_raised_and_the_thread_still_writes(
    anyio_backend: str,
) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    error = OSError(13, "Permission denied")

    def fails() -> None:
        raise error

    with pytest.raises(OSError) as caught:
        await thread.call(fails)
    assert caught.value is error
    await thread.wait(thread.submit(["after"]))
    assert seen.items == ["after"]
    _let_go(thread)


async def test_a_closed_writers_thread_writes_for_the_next_writer(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_thread, "_KEEP", len(write_thread._waiting) + 1)  # room for one
    first, second = Seen(), Seen()
    one = WriteThread(first)
    await one.wait(one.submit([1]))
    _let_go(one)
    two = WriteThread(second)
    await two.wait(two.submit([2]))
    assert second.threads == first.threads  # the same thread, not a new one
    _let_go(two)


async def test_close_lets_the_thread_write_what_was_submitted(anyio_backend: str) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    thread.submit(list(range(50)))
    thread.close()  # not waited for: close writes it first
    assert seen.items == list(range(50))
    thread.close()  # closing twice does nothing


async def test_only_so_many_threads_wait_for_a_writer(anyio_backend: str) -> None:
    threads = [WriteThread(Seen()) for _ in range(write_thread._KEEP + 2)]
    for thread in threads:  # every writer busy at once: each has a thread of its own
        thread.submit([0])
    for thread in threads:
        await thread.wait(1)
    idents = {t._write.threads[0] for t in threads}  # type: ignore[attr-defined]
    assert len(idents) == len(threads)
    for thread in threads:
        _let_go(thread)
    assert len(write_thread._waiting) == write_thread._KEEP


async def test_a_lazy_thread_makes_a_write_durable_when_someone_waits(anyio_backend: str) -> None:
    seen = Lazy()
    thread = WriteThread(seen, lazy=True)
    thread.submit([1])
    await seen.next_write()
    assert seen.calls == [([1], False)]  # nobody waits for it: written, not fsynced
    assert not thread.idle()
    await thread.wait(1)
    assert seen.calls == [([1], False), ([], True)]  # the wait fsyncs it, writing nothing more
    assert thread.idle()
    await thread.wait(thread.submit([2]))
    assert [i for items, _ in seen.calls for i in items] == [1, 2]
    assert seen.calls[-1][1] is True
    _let_go(thread)


async def test_closing_a_lazy_thread_makes_what_it_wrote_durable(anyio_backend: str) -> None:
    seen = Lazy()
    thread = WriteThread(seen, lazy=True)
    thread.submit([1])
    await seen.next_write()
    thread.close()
    assert seen.calls == [([1], False), ([], True)]


class Fsyncs(FileJournal):
    """A journal file that notes each write of its writer: (lines, fsynced)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[tuple[int, bool]] = []

    def write_lines(self, data: bytes, *, fsync: bool = True) -> None:
        super().write_lines(data, fsync=fsync)
        self.writes.append((data.count(b"\n"), fsync))


async def test_a_wide_blocks_records_are_fsynced_before_the_run_returns(
    anyio_backend: str, tmp_path: Path
) -> None:
    journal = Fsyncs(tmp_path / "run.jsonl")
    out = await run(
        gather([effect("k", i, handler=str) for i in range(200)]), None, journal=journal
    )
    assert out.ok
    assert sum(n for n, _ in journal.writes) == 201  # the header and every record
    assert journal.writes[-1][1] is True  # the last write fsyncs them all
    _, records = FileJournal(journal.path).read()
    assert sorted(r.req for r in records) == list(range(200))
