"""The journal writer, pinned down exactly: what is durable when, which error, which message.

These tests kill the mutants of `mce/_runtime/writer.py` that the
behavioural tests in tests/test_writer.py let live (benchmarks/mutation.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest

from mce import Journal
from mce._runtime.writer import JournalWriter
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
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
            await anyio.to_thread.run_sync(journal.entered.wait)  # the write is under way
            scopes[0].cancel()  # the effect whose commit started the write is cancelled
            for _ in range(5):
                await anyio.lowlevel.checkpoint()
            assert seen_by_second == []  # the shared write has not ended: nobody returned
            journal.release.set()
    finally:
        journal.release.set()
        writer.close()
    # one write, both records, whole (in the order the backend ran the two tasks)
    assert len(journal.writes) == 1
    assert sorted(r.pos for r in journal.writes[0]) == ["0", "1"]
    assert len(seen_by_second) == 1 and sorted(r.pos for r in seen_by_second[0]) == ["0", "1"]
