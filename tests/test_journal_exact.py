"""The journal, pinned down exactly: bytes on disk, error types, messages with line numbers.

These tests kill the mutants of `mce/_journal/` that the behavioural tests
in tests/test_journal.py let live (benchmarks/mutation.py).
"""

from __future__ import annotations

import enum
import json
import os
import zlib
from pathlib import Path

import pytest

from mce import FileJournal, Journal, JournalInUse, Secret, effect, run_sync
from mce._journal.lines import encode_line, sum_holds, summed
from mce._journal.loading import split_lines
from mce._journal.records import build_record, header_json
from mce.journal import (
    Header,
    JournalCorrupt,
    JournalWarning,
    Record,
    ReplayDivergence,
    check_seed,
    open_journal,
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


# ---------------------------------------------------------------- loading

_HEADER = {"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.0}


def _record(pos: str = "0", **fields: object) -> dict[str, object]:
    data: dict[str, object] = {"pos": pos, "kind": "k", "fp": "", "ok": 1}
    data.update(fields)
    return data


def _write(path: Path, *objects: dict[str, object]) -> None:
    path.write_bytes(b"".join(encode_line(o) for o in objects))


def _corrupt(path: Path) -> str:
    with pytest.raises(JournalCorrupt) as caught:
        FileJournal(path).read()
    assert caught.value.where == str(path)
    return f"{caught.value.line}: {caught.value.reason}"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_record(x=1), "unknown field 'x'"),
        (_record(run="r"), "unknown field 'run'"),
        ({"pos": "0", "kind": "k", "ok": 1}, "a record needs pos, kind and fp; 'fp' is missing"),
        ({"kind": "k", "fp": "", "ok": 1}, "a record needs pos, kind and fp; 'pos' is missing"),
        ({"pos": "0", "fp": "", "ok": 1}, "a record needs pos, kind and fp; 'kind' is missing"),
        (_record(pos=""), "pos and kind must be non-empty strings and fp a string"),
        (_record(pos=0), "pos and kind must be non-empty strings and fp a string"),
        (_record(kind=""), "pos and kind must be non-empty strings and fp a string"),
        (_record(kind=1), "pos and kind must be non-empty strings and fp a string"),
        (_record(fp=None), "pos and kind must be non-empty strings and fp a string"),
        (_record(err=2), "a record holds exactly one of ok and err"),
        ({"pos": "0", "kind": "k", "fp": ""}, "a record holds exactly one of ok and err"),
        (_record(t0="1"), "t0 and t1 must be numbers"),
        (_record(t1=[1]), "t0 and t1 must be numbers"),
        (_record(t0=True), "t0 and t1 must be numbers"),
        (_record(branch=1), "branch and run must be strings"),
        (
            _record(req_base=0, req={"messages": []}),
            _REQ_BASE := "req_base must be a position and the request must hold messages",
        ),
        (_record(req_base="0", req=["m"]), _REQ_BASE),
        (_record(req_base="0", req={"messages": "m"}), _REQ_BASE),
        (
            _record(req_base="9", req={"messages": []}),
            "req_base '9' names no earlier request with messages",
        ),
        ({"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.0}, "a header after the first line"),
    ],
)
def test_each_schema_error_is_named_with_its_line(
    tmp_path: Path, record: dict[str, object], reason: str
) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("a"), record, _record("b"))
    assert _corrupt(path) == f"3: {reason}"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_record(run=1), "branch and run must be strings"),
        (_record(req_base="0"), "unknown field 'req_base'"),
        (_record(t0=1, t1=2.5, branch="1", run="r"), None),
    ],
)
def test_version_1_lines_are_checked_by_the_version_1_schema(
    tmp_path: Path, record: dict[str, object], reason: str | None
) -> None:
    path = tmp_path / "run.jsonl"
    lines = [{"mce_journal": 1, "run": "r", "seed": 1, "t0": 0}, _record("a", run="r"), record]
    path.write_bytes(b"".join(json.dumps(o).encode() + b"\n" for o in lines))
    if reason is not None:
        assert _corrupt(path) == f"3: {reason}"
        return
    header, records = FileJournal(path).read()
    assert header == Header("r", 1, 0.0, version=1) and type(header.t0) is float
    assert [(r.pos, r.t0, r.t1, r.branch, r.line) for r in records] == [
        ("a", None, None, None, 2),
        ("0", 1, 2.5, "1", 3),
    ]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            {"mce_journal": 3, "run": "r", "seed": 1},
            "format version 3; this mce reads versions (1, 2)",
        ),
        (
            {"mce_journal": True, "run": "r", "seed": 1},
            "format version True; this mce reads versions (1, 2)",
        ),
        (
            {"mce_journal": "2", "run": "r", "seed": 1},
            "format version '2'; this mce reads versions (1, 2)",
        ),
        ({**_HEADER, "pos": "0"}, "unknown header field 'pos'"),
        ({**_HEADER, "zz": 1, "aa": 1}, "unknown header field 'aa'"),
        (
            {**_HEADER, "run": 1},
            _NEEDS := "the header needs run (a string), seed (an int) and t0 (a number)",
        ),
        ({**_HEADER, "seed": "x"}, _NEEDS),
        ({**_HEADER, "seed": 1.0}, _NEEDS),
        ({**_HEADER, "t0": "0"}, _NEEDS),
        ({"mce_journal": 2, "seed": 1}, _NEEDS),
        ({"mce_journal": 2, "run": "r"}, _NEEDS),
        (_record(), "the first line is not a header"),
    ],
)
def test_each_header_error_is_named_with_line_1(
    tmp_path: Path, header: dict[str, object], reason: str
) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, header, _record())
    assert _corrupt(path) == f"1: {reason}"


def test_a_header_without_t0_starts_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, {"mce_journal": 2, "run": "r", "seed": 4}, _record())
    header, _ = FileJournal(path).read()
    assert header == Header("r", 4, 0.0) and type(header.t0) is float
    _write(path, {"mce_journal": 2, "run": "r", "seed": 4, "t0": 3}, _record())
    header, _ = FileJournal(path).read()
    assert header is not None and header.t0 == 3.0 and type(header.t0) is float


def test_line_level_damage_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("a"), _record("b"))
    good = path.read_bytes()
    lines = good.splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1].replace(b'"ok":1', b'"ok":2') + lines[2])
    assert _corrupt(path) == "2: the checksum does not match"
    path.write_bytes(lines[0] + lines[1] + lines[2].replace(b'"ok":1', b'"ok":2'))
    assert _corrupt(path) == "3: the checksum does not match"
    path.write_bytes(lines[0].replace(b'"seed":1', b'"seed":2') + lines[1] + lines[2])
    assert _corrupt(path) == "1: the checksum does not match"
    unsummed = json.dumps(_record("b")).encode() + b"\n"
    path.write_bytes(lines[0] + lines[1] + unsummed)
    assert _corrupt(path) == "3: the checksum does not match"
    path.write_bytes(b"{nope\n" + lines[1])
    reason = _corrupt(path)
    assert reason.startswith("1: not JSON (Expecting property name enclosed in double quotes")


def _summed_line(text: bytes) -> bytes:
    """`text` (JSON ending with `}`) with a correct checksum spliced in, whatever it holds."""
    return text[:-1] + b',"sum":"%08x"}\n' % zlib.crc32(text)


def test_a_line_that_checks_out_but_holds_two_objects_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    two = _summed_line(
        b'{"pos":"x","kind":"k","fp":"","ok":1},{"pos":"y","kind":"k","fp":"","ok":1}'
    )
    path.write_bytes(encode_line(_HEADER) + encode_line(_record("a")) + two)
    assert _corrupt(path).startswith("3: not JSON (Extra data: line 1 column")


def test_a_line_that_checks_out_but_is_not_an_object_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    bad = b'["pos","kind",{"sum":"00000000"}]'
    path.write_bytes(encode_line(_HEADER) + encode_line(_record("a")) + bad + b"\n")
    assert _corrupt(path) == "3: the checksum does not match"
    path.write_bytes(_summed_line(b'{"mce_journal":2,"run":"r","seed":1,"t0":0.0}'))
    header, records = FileJournal(path).read()
    assert header == Header("r", 1, 0.0) and records == ()


def test_records_read_back_with_their_line_numbers_and_every_field(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(
        path,
        _HEADER,
        _record("a", t0=1, t1=2.5, branch="0", req={"q": 1}),
        {"pos": "b", "kind": "j", "fp": "f", "err": {"e": 1}},
    )
    header, records = FileJournal(path).read()
    assert header == Header("r", 1, 0.0)
    a, b = records
    assert (a.pos, a.kind, a.fp, a.ok, a.value, a.req, a.t0, a.t1, a.branch, a.line) == (
        "a",
        "k",
        "",
        True,
        1,
        {"q": 1},
        1,
        2.5,
        "0",
        2,
    )
    assert (b.pos, b.kind, b.fp, b.ok, b.value, b.req, b.t0, b.t1, b.branch, b.line) == (
        "b",
        "j",
        "f",
        False,
        {"e": 1},
        None,
        None,
        None,
        None,
        3,
    )


def test_a_request_reference_is_made_whole_from_the_record_before_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(
        path,
        _HEADER,
        _record("0", req={"model": "m", "messages": ["a"]}),
        _record("1", req={"model": "m", "messages": ["b"]}, req_base="0", t0=1, t1=2, branch="x"),
        _record("2", req={"model": "n", "messages": ["c"]}, req_base="1"),
        {"pos": "3", "kind": "k", "fp": "", "err": "e", "req": {"messages": []}, "req_base": "2"},
    )
    _, records = FileJournal(path).read()
    assert [r.req for r in records] == [
        {"model": "m", "messages": ["a"]},
        {"model": "m", "messages": ["a", "b"]},
        {"model": "n", "messages": ["a", "b", "c"]},
        {"messages": ["a", "b", "c"]},
    ]
    one = records[1]
    assert (one.pos, one.kind, one.fp, one.ok, one.value, one.t0, one.t1, one.branch, one.line) == (
        "1",
        "k",
        "",
        True,
        1,
        1,
        2,
        "x",
        3,
    )
    assert (records[3].ok, records[3].value, records[3].line) == (False, "e", 5)


def test_a_request_reference_to_a_request_without_messages_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(
        path,
        _HEADER,
        _record("0", req={"q": 1}),
        _record("1", req={"messages": ["b"]}, req_base="0"),
    )
    assert _corrupt(path) == "3: req_base '0' names no earlier request with messages"
    _write(path, _HEADER, _record("0"), _record("1", req={"messages": ["b"]}, req_base="0"))
    assert _corrupt(path) == "3: req_base '0' names no earlier request with messages"


def test_a_position_recorded_twice_is_corrupt_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("0"), _record("1"), _record("0"))
    assert _corrupt(path) == (
        "4: position 0 is recorded twice (also at line 2): two runs wrote this journal"
    )
    failed = {"pos": "0", "kind": "k", "fp": "", "err": "e"}
    _write(path, _HEADER, failed, _record("1"), {**_record("0"), "kind": "other"})
    assert _corrupt(path) == (
        "4: position 0 is recorded twice (also at line 2): two runs wrote this journal"
    )
    _write(path, _HEADER, failed, _record("1"), _record("0", ok=5), _record("0"))
    assert _corrupt(path) == (
        "5: position 0 is recorded twice (also at line 4): two runs wrote this journal"
    )


def test_a_retry_replaces_the_failure_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    failed = {"pos": "0", "kind": "k", "fp": "", "err": "e"}
    _write(path, _HEADER, failed, _record("1"), failed, _record("0", ok=5))
    _, records = FileJournal(path).read()
    assert [(r.pos, r.ok, r.value, r.line) for r in records] == [
        ("0", True, 5, 5),
        ("1", True, 1, 3),
    ]


def test_a_torn_last_line_is_named_and_its_offset_cut(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("a"))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"pos":"b"')
    with pytest.warns(JournalWarning) as caught:
        header, records = FileJournal(path).read()
    assert [str(w.message) for w in caught] == [f"journal {path}: ignoring a torn last line 3"]
    assert header == Header("r", 1, 0.0) and [r.pos for r in records] == ["a"]
    assert split_lines(whole + b"x") == (whole.splitlines(), len(whole))
    assert split_lines(b"x") == ([], 0)
    last = encode_line(_record("b"))[:-1]
    assert split_lines(last) == ([], 0)  # a lone line that checks out is still no journal
    assert split_lines(whole + last) == ([*whole.splitlines(), last], None)


def test_a_file_holding_only_a_torn_line_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"mce_jou')
    with pytest.warns(JournalWarning, match=r"ignoring a torn last line 1$"):
        assert FileJournal(path).read() == (None, ())
    path.write_bytes(b"")
    assert FileJournal(path).read() == (None, ())


def test_a_journal_that_cannot_be_read_is_corrupt_at_line_0(tmp_path: Path) -> None:
    with pytest.raises(JournalCorrupt) as caught:
        FileJournal(tmp_path).read()  # a directory
    assert caught.value.line == 0 and caught.value.where == str(tmp_path)
    assert caught.value.reason.startswith("cannot be read: [Errno 21] Is a directory")


# ---------------------------------------------------------------- conversations


def _chat(pos: str, *messages: object, kind: str = "llm.chat", **req: object) -> Record:
    return Record(pos, kind, "", True, "reply", req={**req, "messages": list(messages)})


def _lines_of(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_bytes().splitlines():
        data = json.loads(line)
        del data["sum"]
        out.append(data)
    return out


def test_a_request_extending_an_earlier_one_is_written_as_a_reference(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = FileJournal(path)
    records = [
        _chat("0", "a", model="m"),
        _chat("1", "a", "b", model="m"),
        _chat("2", "x", "y"),
        _chat("3", "a", "b", "c", model="n"),
        _chat("4", "a", "b", kind="tool.t"),
        _chat("5", "a"),
    ]
    journal.append([Header("r", 1, 0.0), *records[:2]])
    journal.append(records[2:])  # the same journal remembers what it wrote before
    journal.close()
    written = [(d["pos"], d["req"], d.get("req_base")) for d in _lines_of(path)[1:]]
    assert written == [
        ("0", {"model": "m", "messages": ["a"]}, None),
        ("1", {"model": "m", "messages": ["b"]}, "0"),
        ("2", {"messages": ["x", "y"]}, None),
        ("3", {"model": "n", "messages": ["c"]}, "1"),  # the longest earlier prefix
        ("4", {"messages": ["a", "b"]}, None),  # another kind: no reference
        ("5", {"messages": []}, "0"),
    ]
    assert FileJournal(path).read()[1] == tuple(records)


def test_messages_are_compared_one_by_one_not_as_one_text(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = FileJournal(path)
    records = [_chat("0", 1, 2), _chat("1", 12, 3), _chat("2", "1", "2", 3)]
    journal.append([Header("r", 1, 0.0), *records])
    journal.close()
    assert [d.get("req_base") for d in _lines_of(path)[1:]] == [None, None, None]
    assert FileJournal(path).read()[1] == tuple(records)


def test_requests_that_cannot_be_referenced_are_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = FileJournal(path)
    records = [
        _chat("0"),  # no messages: nothing to extend
        _chat("1", "a"),
        Record("2", "llm.chat", "", True, "", req={"messages": "a"}),
        Record("3", "llm.chat", "", True, "", req=["a"]),
        Record("4", "llm.chat", "", True, ""),
    ]
    journal.append([Header("r", 1, 0.0), *records])
    journal.close()
    assert [d.get("req_base") for d in _lines_of(path)[1:]] == [None] * 5
    assert FileJournal(path).read()[1] == tuple(records)


def test_a_resumed_journal_references_requests_it_read(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    first = FileJournal(path)
    first.append([Header("r", 1, 0.0), _chat("0", "a")])
    first.close()
    again = FileJournal(path)
    again.read()
    again.append([_chat("1", "a", "b")])
    again.close()
    assert _lines_of(path)[2] == {
        "pos": "1",
        "kind": "llm.chat",
        "fp": "",
        "ok": "reply",
        "req": {"messages": ["b"]},
        "req_base": "0",
    }
    fresh = FileJournal(tmp_path / "other.jsonl")
    fresh.append([_chat("1", "a", "b")])  # nothing read: nothing to reference
    fresh.close()
    assert "req_base" not in _lines_of(tmp_path / "other.jsonl")[0]


# ---------------------------------------------------------------- the in-memory journal


def test_the_in_memory_journal_keeps_the_first_header_and_every_record() -> None:
    journal = Journal()
    assert journal.name == "<memory>" and journal.needs_thread is False
    assert journal.read() == (None, ())
    journal.append([Record("0", "k", "", True, 1)])
    assert journal.load() == (None, [{"pos": "0", "kind": "k", "fp": "", "ok": 1}])
    journal = Journal()
    journal.append([Header("a", 1, 0.0), Record("0", "k", "", True, 1)])
    journal.append([Header("b", 2, 0.0), Record("1", "k", "", True, 2)])
    header, records = journal.read()
    assert header == Header("a", 1, 0.0) and [r.pos for r in records] == ["0", "1"]
    assert journal.load() == (
        {"mce_journal": 2, "run": "a", "seed": 1, "t0": 0.0},
        [
            {"pos": "0", "kind": "k", "fp": "", "ok": 1},
            {"pos": "1", "kind": "k", "fp": "", "ok": 2},
        ],
    )


def test_the_in_memory_journal_checks_positions_by_its_name() -> None:
    journal = Journal()
    journal.append([Record("0", "k", "", True, 1), Record("0", "k", "", True, 2)])
    with pytest.raises(JournalCorrupt) as caught:
        journal.read()
    assert str(caught.value) == (
        "journal <memory> is corrupt at line 0: position 0 is recorded twice "
        "(also at line 0): two runs wrote this journal"
    )


def test_write_checks_each_object_and_refuses_references() -> None:
    journal = Journal()
    with pytest.raises(JournalCorrupt) as caught:
        journal.write([_HEADER, _record("0"), _record("1", x=1)])
    assert str(caught.value) == "journal <memory> is corrupt at line 3: unknown field 'x'"
    assert journal.read() == (None, ())  # nothing of a refused write is kept
    with pytest.raises(JournalCorrupt) as caught:
        journal.write([_record("0"), _record("1", req={"messages": []}, req_base="0")])
    assert str(caught.value) == (
        "journal <memory> is corrupt at line 2: req_base is for files; give whole requests"
    )
    with pytest.raises(JournalCorrupt, match="at line 1: unknown field 'run'"):
        journal.write([_record("0", run="r")])  # written objects are version 2
    journal.write([_HEADER, _record("0", t0=1)])
    assert journal.read() == (Header("r", 1, 0.0), (Record("0", "k", "", True, 1, t0=1),))


def test_begin_takes_the_journal_for_live_and_resume_only() -> None:
    journal = Journal()
    assert journal.begin("replay") == (None, ())
    assert journal.begin("replay") == (None, ())  # replay takes no lock
    assert journal.begin("live") == (None, ())
    with pytest.raises(JournalInUse, match=r"^journal <memory> is in use by another run$"):
        journal.begin("resume")
    with pytest.raises(JournalInUse, match=r"^journal <memory> is in use by another run$"):
        journal.begin("live")
    journal.close()
    journal.append([Record("0", "k", "", True, 1)])
    assert journal.begin("resume")[1] == (Record("0", "k", "", True, 1),)
    with pytest.raises(JournalInUse):
        journal.acquire()
    journal.close()
    with pytest.raises(JournalInUse, match="already holds a run"):
        journal.begin("live")  # records, no header
    journal.acquire()  # the refusal released it


def test_a_failing_begin_releases_the_journal() -> None:
    journal = Journal()
    journal.append([Record("0", "k", "", True, 1), Record("0", "k", "", True, 2)])
    for mode in ("live", "resume"):
        with pytest.raises(JournalCorrupt):
            journal.begin(mode)  # type: ignore[arg-type]
    journal.acquire()


# ---------------------------------------------------------------- the file journal


def test_the_file_journal_writes_exact_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "run.jsonl"
    journal = FileJournal(path)
    assert journal.name == str(path) and journal.needs_thread is True and journal.path == path
    journal.append([Header("r", 2, 1.5), Record("0", "k", "f", False, "e", t0=1, t1=2)])
    journal.close()
    assert path.read_bytes() == encode_line(
        {"mce_journal": 2, "run": "r", "seed": 2, "t0": 1.5}
    ) + encode_line({"pos": "0", "kind": "k", "fp": "f", "err": "e", "t0": 1, "t1": 2})
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_the_file_journal_writes_every_byte_of_a_short_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mce._journal.file as file_module

    real_write = os.write
    sizes: list[int] = []

    def one_byte_at_a_time(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data[:1]))

    monkeypatch.setattr(file_module.os, "write", one_byte_at_a_time)
    path = tmp_path / "run.jsonl"
    journal = FileJournal(path)
    journal.append([Header("r", 1, 0.0)])
    journal.close()
    monkeypatch.undo()
    assert path.read_bytes() == encode_line(_HEADER)
    assert sizes == list(range(len(encode_line(_HEADER)), 0, -1))


def test_the_file_lock_names_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    first, second = FileJournal(path), FileJournal(path)
    first.acquire()
    with pytest.raises(JournalInUse) as caught:
        first.acquire()
    assert str(caught.value) == f"journal {path} is in use by another run"
    with pytest.raises(JournalInUse) as caught:
        second.acquire()
    assert str(caught.value) == (
        f"journal {path} is in use by another run (another process holds its lock)"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    first.close()
    first.close()  # closing twice is harmless
    second.acquire()  # the lock went with the close; the refused attempt kept nothing
    with pytest.raises(JournalInUse):
        first.acquire()
    second.close()
    first.acquire()
    first.close()


def test_repair_of_a_missing_or_empty_file_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    assert FileJournal(path).repair() == (None, ())
    assert not path.exists()
    path.write_bytes(b"")
    assert FileJournal(path).repair() == (None, ())
    assert path.read_bytes() == b""


def test_resume_of_a_torn_journal_cuts_the_torn_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    whole = _two_lines(path)
    path.write_bytes(whole + b'{"pos":"1","kind":"k"')
    calls, handlers = _ran()
    with pytest.warns(JournalWarning, match="ignoring a torn last line 3"):
        out = run_sync(
            effect("k", 1).then(lambda _: effect("k", 2)),
            None,
            handlers=handlers,
            journal=path,
            mode="resume",
        )
    assert out.value == 2 and calls == [2]
    data = path.read_bytes()
    assert data.startswith(whole) and data.count(b"\n") == 3
    assert [r.pos for r in FileJournal(path).read()[1]] == ["0", "1"]


def test_open_journal_makes_a_path_a_file_journal() -> None:
    memory = Journal()
    assert open_journal(memory) is memory
    for given in ("run.jsonl", Path("run.jsonl")):
        opened = open_journal(given)
        assert type(opened) is FileJournal and opened.path == Path("run.jsonl")
    with pytest.raises(TypeError) as caught:
        open_journal(3)  # type: ignore[arg-type]
    assert str(caught.value) == "journal= needs a path or a Journal, got 3"


def test_a_later_header_is_found_line_by_line_too(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    v1 = [
        {"mce_journal": 1, "run": "r", "seed": 1},
        _record("a"),
        {"mce_journal": 1, "run": "r", "seed": 1},
    ]
    path.write_bytes(b"".join(json.dumps(o).encode() + b"\n" for o in v1))
    assert _corrupt(path) == "3: a header after the first line"
    broken = _summed_line(b'{"pos":"x"]}')  # checks out, is not JSON: read line by line
    path.write_bytes(encode_line(_HEADER) + encode_line(_HEADER) + broken)
    assert _corrupt(path) == "2: a header after the first line"
    path.write_bytes(encode_line(_HEADER) + encode_line(_record("a")) + broken)
    assert _corrupt(path).startswith("3: not JSON (Expecting ',' delimiter")


def test_lines_that_check_out_but_split_objects_across_lines_are_corrupt(tmp_path: Path) -> None:
    # Each line has a correct checksum, and the lines together are valid JSON with as
    # many values as lines - but line 2 starts with a number, not an object.
    path = tmp_path / "run.jsonl"
    two = _summed_line(b'1,{"pos":"a","kind":"k","fp":"","ok":1}')
    opened = _summed_line(b'{"pos":"b","kind":"k","fp":"","ok":{"c":1}')
    closing = _summed_line(b'"t0":1}')
    path.write_bytes(encode_line(_HEADER) + two + opened + closing)
    assert _corrupt(path) == "2: not a checksummed JSON object"


@pytest.mark.parametrize("times", [{"t0": 1}, {"t1": 2.5}, {"t0": 1, "t1": 2}])
def test_a_bad_branch_is_named_even_when_the_times_are_fine(
    tmp_path: Path, times: dict[str, object]
) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("a", branch=0, **times))
    assert _corrupt(path) == "2: branch and run must be strings"


def test_a_lone_reference_names_no_earlier_request(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    _write(path, _HEADER, _record("1", req={"messages": ["b"]}, req_base="0"))
    assert _corrupt(path) == "2: req_base '0' names no earlier request with messages"


def test_a_record_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"mce_journal":1,"run":"r","seed":1}\n[1,2]\n')
    assert _corrupt(path) == "2: a record must be a JSON object, not list"
    with pytest.raises(JournalCorrupt) as caught:
        Journal().write([_HEADER, "x"])  # type: ignore[list-item]
    assert str(caught.value) == (
        "journal <memory> is corrupt at line 2: a record must be a JSON object, not str"
    )


def test_appends_and_repairs_are_fsynced_once_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.jsonl"
    synced: list[int] = []  # the size of the file each fsync made durable
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    journal = FileJournal(path)
    journal.append([Header("r", 1, 0.0)])
    header_size = path.stat().st_size
    journal.append([Record("0", "k", "", True, 1), Record("1", "k", "", True, 2)])
    journal.close()
    whole = path.read_bytes()
    assert synced == [header_size, len(whole)]
    path.write_bytes(whole[:-1])
    synced.clear()
    FileJournal(path).repair()
    assert synced == [len(whole)] and path.read_bytes() == whole


def test_an_object_without_a_checksum_among_split_lines_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    two = _summed_line(b'{"x":1},{"pos":"a","kind":"k","fp":"","ok":1}')
    opened = _summed_line(b'{"pos":"b","kind":"k","fp":"","ok":{"c":1}')
    closing = _summed_line(b'"t0":1}')
    path.write_bytes(encode_line(_HEADER) + two + opened + closing)
    assert _corrupt(path) == "2: not a checksummed JSON object"


def test_a_checksummed_line_read_line_by_line_is_checked_as_version_2(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    broken = _summed_line(b'{"pos":"x"]}')  # forces the line-by-line parse
    path.write_bytes(encode_line(_HEADER) + encode_line(_record("a", run="r")) + broken)
    assert _corrupt(path) == "2: unknown field 'run'"
