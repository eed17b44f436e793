"""The journal, pinned down exactly: bytes on disk, error types, messages with line numbers.

These tests kill the mutants of `mce/_journal/` that the behavioural tests
in tests/test_journal.py let live (benchmarks/mutation.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mce import FileJournal, Journal, JournalInUse, effect, run_sync
from mce.journal import Header


def _ran() -> tuple[list[object], dict[str, object]]:
    calls: list[object] = []

    def handler(request: object) -> object:
        calls.append(request)
        return request

    return calls, {"k": handler}


def test_a_live_run_refuses_a_journal_holding_only_a_header(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    FileJournal(path).append([Header("r", 1, 0.0)])
    before = path.read_bytes()
    calls, handlers = _ran()
    with pytest.raises(JournalInUse) as caught:
        run_sync(effect("k", 1), None, handlers=handlers, journal=path)
    assert str(caught.value) == (
        f"journal {path} already holds a run; replay it (mode='replay'), "
        "continue it (mode='resume'), or record to a new journal"
    )
    assert calls == [] and path.read_bytes() == before


def test_a_live_run_refuses_an_in_memory_journal_holding_only_a_header() -> None:
    journal = Journal()
    journal.append([Header("r", 1, 0.0)])
    with pytest.raises(JournalInUse, match=r"^journal <memory> already holds a run; "):
        journal.begin("live")
    # the refusal released the journal: another run may take it
    journal.acquire()


def _two_lines(path: Path) -> bytes:
    """A journal of one run of one effect: a header and a record."""
    _, handlers = _ran()
    run_sync(effect("k", 1), None, handlers=handlers, journal=path, seed=3)
    text = path.read_bytes()
    assert text.count(b"\n") == 2
    return text


def test_resume_ends_a_last_line_that_lost_only_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    whole = _two_lines(path)
    path.write_bytes(whole[:-1])  # the last line checks out but has no newline
    calls, handlers = _ran()
    out = run_sync(
        effect("k", 1).then(lambda _: effect("k", 2)),
        None,
        handlers=handlers,
        journal=path,
        mode="resume",
    )
    assert out.value == 2 and calls == [2]  # the recorded effect was not run again
    data = path.read_bytes()
    assert data.startswith(whole)  # the newline was put back, nothing else changed
    rest = data[len(whole) :].splitlines()
    assert len(rest) == 1 and rest[0].startswith(b'{"pos":"1","kind":"k",')
    header, records = FileJournal(path).read()
    assert header is not None and [(r.pos, r.value) for r in records] == [("0", 1), ("1", 2)]


def test_repair_puts_back_a_lost_newline_and_cuts_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    whole = _two_lines(path)
    path.write_bytes(whole[:-1])
    journal = FileJournal(path)
    header, records = journal.repair()
    assert path.read_bytes() == whole
    assert header is not None and header.seed == 3 and [r.pos for r in records] == ["0"]
    path.write_bytes(whole + b'{"pos":"1","ki')
    with pytest.warns(UserWarning, match=f"^journal {path}: ignoring a torn last line 3$"):
        assert FileJournal(path).repair() == (header, records)
    assert path.read_bytes() == whole
