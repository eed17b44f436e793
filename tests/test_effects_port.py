"""Opening a run's effects: the journal is read (and repaired) off the event loop.

Records are written off the event loop too, except the record of a step in
the run's top-level sequence while no other run writes a journal: nothing
else of the run can go on while it waits for that write, so it is written
right there (see docs/replay.md).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from attrs import evolve

from mce import FileJournal, Journal, JournalWarning, effect, gather, par, run
from mce.journal import Header, Record

pytestmark = pytest.mark.anyio


class Watched(FileJournal):
    """A file journal that notes which thread loads, repairs and writes it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: dict[str, set[str]] = {}

    def _note(self, what: str) -> None:
        self.threads.setdefault(what, set()).add(threading.current_thread().name)

    def read(self) -> tuple[Header | None, tuple[Record, ...]]:
        self._note("read")
        return super().read()

    def repair(self) -> tuple[Header | None, tuple[Record, ...]]:
        self._note("repair")
        return super().repair()

    def append(self, records: Sequence[Header | Record]) -> None:
        self._note("append")
        super().append(records)


async def _loop_thread() -> str:
    return threading.current_thread().name


@pytest.mark.parametrize("mode", ["live", "replay", "resume"])
async def test_the_journal_is_read_and_written_off_the_event_loop(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "run.jsonl"
    # Effects in parallel branches: their records go to the writer thread.
    prog = par(effect("k", 1, handler=str), effect("k", 2, handler=str))
    if mode != "live":
        await run(prog, None, journal=path)
        with path.open("ab") as f:
            f.write(b'{"torn')  # a crash mid-write: resume repairs it
    journal = Watched(path)
    if mode == "live":
        out = await run(prog, None, journal=journal)
    else:
        with pytest.warns(JournalWarning, match="torn last line"):
            out = await run(prog, None, journal=journal, mode=mode)  # type: ignore[arg-type]
    assert out.ok
    loop = await _loop_thread()
    assert journal.threads, "the journal was used"
    for what, threads in journal.threads.items():
        assert loop not in threads, f"{what} ran on the event loop's thread"
    read = "repair" if mode == "resume" else "read"
    assert read in journal.threads


async def test_a_lone_top_level_step_is_written_on_the_event_loop(tmp_path: Path) -> None:
    journal = Watched(tmp_path / "run.jsonl")
    out = await run(
        effect("k", 1, handler=str).then(lambda _: effect("k", 2)),
        None,
        journal=journal,
        handlers={"k": str},
    )
    assert out.ok
    assert journal.threads["append"] == {await _loop_thread()}


async def test_the_journal_is_loaded_with_the_collector_paused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await run(effect("k", 1, handler=str), None, journal=path)
    seen: list[bool] = []

    class Noting(FileJournal):
        def read(self) -> tuple[Header | None, tuple[Record, ...]]:
            seen.append(gc.isenabled())
            return super().read()

    assert gc.isenabled()
    out = await run(effect("k", 1), None, journal=Noting(path), mode="replay")
    assert out.ok and seen == [False] and gc.isenabled()


async def test_a_deferred_record_holds_what_a_waited_for_one_holds(tmp_path: Path) -> None:
    prog = gather([effect("k", {"q": i}, handler=lambda r: r["q"]) for i in range(3)])
    memory = Journal()  # every record is committed there: the reference
    on_file = tmp_path / "run.jsonl"
    for journal in (memory, on_file):
        assert (await run(prog, None, journal=journal)).ok
    written, expected = FileJournal(on_file).read()[1], memory.read()[1]

    def untimed(records: tuple[Record, ...]) -> list[Record]:  # in position order
        return sorted((evolve(r, t0=None, t1=None) for r in records), key=lambda r: r.pos)

    assert untimed(written) == untimed(expected)
    for r in written:
        assert type(r.t0) is float and type(r.t1) is float and r.t0 <= r.t1
        assert r.branch is not None and r.req == {"q": r.value}
