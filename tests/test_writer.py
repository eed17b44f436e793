"""The journal writer: a failed write fails the run, never an Ok with a record missing."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

import mce
from mce import FileJournal, Journal, effect, gather, par, run
from mce.journal import Header, Record

pytestmark = pytest.mark.anyio


class FullDisk(FileJournal):
    """A file journal on a full disk: `FileJournal.write` to `/dev/full` gets the kernel's ENOSPC."""

    def __init__(self) -> None:
        super().__init__("/dev/full")

    def read(self) -> tuple[Header | None, tuple[Record, ...]]:
        return None, ()  # reading /dev/full never ends: the journal starts empty


class FailsOnWrite(Journal):
    """An in-memory journal whose `n`-th write (only) raises OSError (ENOSPC)."""

    def __init__(self, n: int, needs_thread: bool) -> None:
        super().__init__()
        self.n = n
        self.calls = 0
        self.needs_thread = needs_thread  # type: ignore[misc]
        self.failed = threading.Event()

    def append(self, records: Sequence[Header | Record]) -> None:
        self.calls += 1
        if self.calls == self.n:
            self.failed.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        super().append(records)


async def _echo(x: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    return x


def _fan_out(n: int) -> mce.Step[Any, Any, Any]:
    return gather([effect("pay", i, handler=_echo) for i in range(n)])


async def test_a_background_write_that_fails_is_not_dropped() -> None:
    # The reported defect: in an unbounded gather a branch's last record is
    # written in the background. The first batch (the header and branch 0's
    # record) fails; branch 1 finishes after that failure, its batch is
    # written fine, and the run used to return Ok with a journal missing its
    # header and branch 0's record.
    journal = FailsOnWrite(1, True)

    async def after_the_failure(x: Any) -> Any:
        await anyio.to_thread.run_sync(journal.failed.wait)
        for _ in range(20):  # let the failed flush unwind first (no timing involved)
            await anyio.lowlevel.checkpoint()
        return x

    prog = gather([effect("pay", 0, handler=_echo), effect("pay", 1, handler=after_the_failure)])
    with pytest.raises(mce.JournalWriteError) as info:
        await run(prog, None, journal=journal)
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_unbounded_gather_on_a_full_disk_raises() -> None:
    # Each branch's last record is written in the background; the failure
    # used to be swallowed there and the run returned Ok with no record.
    journal = FullDisk()
    with pytest.raises(mce.JournalWriteError) as info:
        await run(_fan_out(3), None, journal=journal)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert "No space left" in str(info.value)


@pytest.mark.parametrize("needs_thread", [True, False])
@pytest.mark.parametrize("n", [1, 2])
async def test_a_failed_write_fails_the_run(n: int, needs_thread: bool) -> None:
    journal = FailsOnWrite(n, needs_thread)
    with pytest.raises(mce.JournalWriteError) as info:
        await run(
            _fan_out(3).then(lambda _: effect("after", 0, handler=_echo)), None, journal=journal
        )
    assert info.value.journal == journal.name


async def test_the_value_is_not_used_before_its_record_fails() -> None:
    # The record of the first effect fails: the step that would use its value never runs.
    used: list[Any] = []

    def use(x: Any) -> mce.Step[Any, Any, Any]:
        used.append(x)
        return mce.pure(x)

    journal = FailsOnWrite(1, True)
    with pytest.raises(mce.JournalWriteError):
        await run(effect("pay", 1, handler=_echo).then(use), None, journal=journal)
    assert used == []


async def test_par_value_waits_for_its_branches_records() -> None:
    used: list[Any] = []

    def use(x: Any) -> mce.Step[Any, Any, Any]:
        used.append(x)
        return mce.pure(x)

    prog = par(effect("a", 1, handler=_echo), effect("b", 2, handler=_echo)).then(use)
    with pytest.raises(mce.JournalWriteError):
        await run(prog, None, journal=FailsOnWrite(1, True))
    assert used == []


async def test_a_decision_record_that_fails_fails_the_run() -> None:
    # The timeout's decision is the only record after the header.
    prog = effect("a", 1, handler=_echo).timeout(5)
    with pytest.raises(mce.JournalWriteError):
        await run(prog, None, journal=FailsOnWrite(2, True))


async def test_header_only_run_that_fails_to_write_raises() -> None:
    with pytest.raises(mce.JournalWriteError):
        await run(mce.pure(1), None, journal=FailsOnWrite(1, False))
