"""The journal, pinned down exactly: bytes on disk, error types, messages with line numbers.

These tests kill the mutants of `mce/_journal/` that the behavioural tests
in tests/test_journal.py let live (benchmarks/mutation.py).
"""

from __future__ import annotations

import enum
import json
import zlib
from pathlib import Path

import pytest

from mce import FileJournal, Journal, JournalInUse, Secret, effect, run_sync
from mce._journal.lines import encode_line, sum_holds, summed
from mce._journal.records import build_record, header_json
from mce.journal import (
    Header,
    JournalCorrupt,
    JournalWarning,
    Record,
    ReplayDivergence,
    check_seed,
)


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


# ---------------------------------------------------------------- errors


def test_journal_corrupt_keeps_where_line_and_reason() -> None:
    error = JournalCorrupt("run.jsonl", 4, "not JSON")
    assert (error.where, error.line, error.reason) == ("run.jsonl", 4, "not JSON")
    assert str(error) == "journal run.jsonl is corrupt at line 4: not JSON"


def test_replay_divergence_names_what_it_was_given() -> None:
    bare = ReplayDivergence("2", "search", "the journal has no entry here")
    assert str(bare) == (
        "replay diverged at position 2 (effect 'search'): the journal has no entry here"
    )
    assert (bare.position, bare.kind, bare.reason, bare.recorded, bare.requested) == (
        "2",
        "search",
        "the journal has no entry here",
        None,
        None,
    )
    only_recorded = ReplayDivergence("0", "k", "differs", recorded={"q": 1})
    assert str(only_recorded) == (
        "replay diverged at position 0 (effect 'k'): differs\n"
        "  recorded:  {'q': 1}\n  requested: None"
    )
    only_requested = ReplayDivergence("0", "k", "differs", requested={"key": Secret("hunter2")})
    assert str(only_requested) == (
        "replay diverged at position 0 (effect 'k'): differs\n"
        "  recorded:  None\n  requested: {'key': '<secret>'}"
    )
    assert only_requested.requested == {"key": "<secret>"}


def test_the_errors_are_shown_under_mce_journal() -> None:
    for cls in (JournalCorrupt, JournalInUse, JournalWarning, ReplayDivergence):
        assert cls.__module__ == "mce.journal"
    assert issubclass(JournalInUse, ValueError) and issubclass(JournalWarning, UserWarning)


# ---------------------------------------------------------------- records


def test_a_record_s_json_object_holds_exactly_its_fields_in_order() -> None:
    full = Record("1/0", "search", "ab", True, [1], req={"q": "x"}, t0=1.5, t1=2, branch="1")
    assert list(full.to_json().items()) == [
        ("pos", "1/0"),
        ("kind", "search"),
        ("fp", "ab"),
        ("ok", [1]),
        ("req", {"q": "x"}),
        ("t0", 1.5),
        ("t1", 2),
        ("branch", "1"),
    ]
    falsy = Record("0", "k", "", False, None, req=0, t0=0.0, t1=0.0, branch="")
    assert falsy.to_json() == {
        "pos": "0",
        "kind": "k",
        "fp": "",
        "err": None,
        "req": 0,
        "t0": 0.0,
        "t1": 0.0,
        "branch": "",
    }


def test_build_record_sets_every_field() -> None:
    built = build_record("3", "k", "fp", False, "e", {"r": 1}, 1.0, 2.0, "b", 7)
    assert built == Record("3", "k", "fp", False, "e", {"r": 1}, 1.0, 2.0, "b")
    assert (built.pos, built.kind, built.fp, built.ok, built.value) == ("3", "k", "fp", False, "e")
    assert (built.req, built.t0, built.t1, built.branch, built.line) == ({"r": 1}, 1.0, 2.0, "b", 7)


def test_header_json_is_the_header_line_without_its_checksum() -> None:
    assert list(header_json(Header("r", 5, 1.25)).items()) == [
        ("mce_journal", 2),
        ("run", "r"),
        ("seed", 5),
        ("t0", 1.25),
    ]


class _Seed(enum.IntEnum):
    SEVEN = 7


def test_check_seed_takes_ints_only_and_gives_a_plain_int() -> None:
    assert check_seed(0) == 0 and check_seed(-3) == -3
    plain = check_seed(_Seed.SEVEN)
    assert plain == 7 and type(plain) is int
    for bad, shown in [(True, "True (bool)"), ("abc", "'abc' (str)"), (1.0, "1.0 (float)")]:
        with pytest.raises(TypeError) as caught:
            check_seed(bad)
        assert str(caught.value) == f"run(seed=...) must be an int, got {shown}"


# ---------------------------------------------------------------- lines


def test_a_line_is_compact_utf8_json_with_its_crc32() -> None:
    data = {"pos": "0", "kind": "k", "fp": "", "ok": "é ✓"}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    line = encode_line(data)
    assert line == text[:-1] + b',"sum":"%08x"}\n' % zlib.crc32(text)
    assert "é ✓".encode() in line


def test_a_lone_surrogate_is_written_escaped_and_the_rest_too() -> None:
    data = {"ok": "é\ud83d"}
    line = encode_line(data)
    text = b'{"ok":"\\u00e9\\ud83d"}'
    assert line == text[:-1] + b',"sum":"%08x"}\n' % zlib.crc32(text)
    line.decode("utf-8")  # valid UTF-8


def test_a_checksum_holds_only_for_the_exact_line() -> None:
    line = encode_line({"pos": "0", "kind": "k", "fp": "", "ok": 1})[:-1]
    assert sum_holds(line) and summed(line)
    digits = line[-10:-2]
    assert not sum_holds(line[:-1] + b"]")  # the closing characters are part of the check
    assert not sum_holds(line[:-2] + b"'}")
    assert not sum_holds(line[:-18] + b',"sun":"' + digits + b'"}')
    assert not summed(line[:-18] + b',"sun":"' + digits + b'"}')
    assert not sum_holds(b"x" + line[1:])
    assert not sum_holds(line + b" ")
    assert not summed(b'{"a":1}') and not sum_holds(b'{"a":1}')
    assert not sum_holds(b"")


def test_uppercase_checksum_digits_do_not_check_out() -> None:
    # a line whose CRC-32 has letters, written in upper case: the digits are lowercase only
    for n in range(100):
        line = encode_line({"pos": str(n), "kind": "k", "fp": "", "ok": n})[:-1]
        digits = line[-10:-2]
        if digits != digits.upper():
            break
    assert sum_holds(line)
    assert not sum_holds(line[:-10] + digits.upper() + b'"}')
