"""Loading a journal: its lines to a checked header and records, or `JournalCorrupt`.

Every line's checksum (version 2) and schema is checked, requests stored as
a reference are made whole, and a position may appear only once (a retry
replacing a failure aside). Nothing here touches a file: `FileJournal`
reads the bytes and hands them over.

>>> from mce._journal.lines import encode_line
>>> text = encode_line({"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.0})
>>> text += encode_line({"pos": "0", "kind": "k", "fp": "", "ok": 1})
>>> lines, torn_at = split_lines(text + b'{"pos"')
>>> torn_at == len(text), len(lines)
(True, 2)
>>> header, records = parse_lines(lines, "run.jsonl")
>>> header.seed, records[0].value
(1, 1)
>>> parse_lines([lines[0], lines[1].replace(b'"ok":1', b'"ok":2')], "run.jsonl")
Traceback (most recent call last):
...
mce.journal.JournalCorrupt: journal run.jsonl is corrupt at line 2: the checksum does not match
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any, final

from attrs import frozen

from mce._journal.errors import JournalCorrupt
from mce._journal.lines import SUM_FIELD, SUM_TAIL, sum_holds, summed
from mce._journal.records import FORMATS, HEADER_KEY, Header, Record, build_record

__all__ = [
    "Extends",
    "check_positions",
    "parse_header",
    "parse_line",
    "parse_lines",
    "parse_object",
    "split_lines",
]

_ENTRY_KEYS_1 = frozenset({"pos", "kind", "fp", "ok", "err", "req", "t0", "t1", "branch", "run"})
_ENTRY_KEYS = (_ENTRY_KEYS_1 - {"run"}) | {"req_base"}
_HEADER_KEYS = frozenset({HEADER_KEY, "run", "seed", "t0"})  # the same in versions 1 and 2
_NUMBER = (int, float)


@final
@frozen
class Extends:
    """A record whose request is stored as a reference to an earlier one plus what is new.

    >>> Extends(Record("1", "llm.chat", "", True, ""), base="0").base
    '0'
    """

    record: Record
    base: str


# The decisions a resume with `retry_failed` may take again: which branch of a
# parallel block failed first, whether a timeout fired (mce._runtime.replay).
_REDECIDED = frozenset({"mce.par", "mce.timeout"})


def check_positions(where: str, records: Iterable[Record]) -> tuple[Record, ...]:
    """The records, checked: a position appears once, unless a retry supersedes a failure.

    A record that follows a *failed* record of the same kind at the same
    position replaces it (what `retry_failed` appends), and so does a parallel
    block's or a timeout's decision that follows one (what `retry_failed`
    decided again); any other repeat of a position is two runs writing one
    journal.

    >>> failed, retried = Record("0", "k", "", False, "e"), Record("0", "k", "", True, 1)
    >>> check_positions("j", [failed, retried]) == (retried,)
    True
    >>> check_positions("j", [retried, Record("0", "k", "", True, 2, line=3)])
    Traceback (most recent call last):
    ...
    mce.journal.JournalCorrupt: journal j is corrupt at line 3: position 0 is recorded twice (also at line 0): two runs wrote this journal
    """
    records = tuple(records)
    if len({r.pos for r in records}) == len(records):
        return records
    seen: dict[str, int] = {}
    out: list[Record] = []
    for record in records:
        i = seen.get(record.pos)
        if i is None:
            seen[record.pos] = len(out)
            out.append(record)
            continue
        earlier = out[i]
        if earlier.kind != record.kind or (earlier.ok and earlier.kind not in _REDECIDED):
            raise JournalCorrupt(
                where,
                record.line,
                f"position {record.pos} is recorded twice (also at line {earlier.line}): "
                "two runs wrote this journal",
            )
        out[i] = record
    return tuple(out)


def parse_object(data: Any, where: str, line: int, version: int) -> Header | Record | Extends:
    """One line's JSON object (checksum removed), schema-checked, in its typed form.

    >>> parse_object({"pos": "0", "kind": "k", "fp": "", "err": "e"}, "j", 2, 2)
    Record(pos='0', kind='k', fp='', ok=False, value='e', req=None, t0=None, t1=None, branch=None)
    >>> parse_object({"pos": "0", "kind": "k", "fp": "", "ok": 1, "x": 0}, "j", 2, 2)
    Traceback (most recent call last):
    ...
    mce.journal.JournalCorrupt: journal j is corrupt at line 2: unknown field 'x'
    """
    if type(data) is not dict:
        raise JournalCorrupt(
            where, line, f"a record must be a JSON object, not {type(data).__name__}"
        )
    get = data.get
    pos, kind, fp, t0, t1, branch = (
        get("pos"),
        get("kind"),
        get("fp"),
        get("t0"),
        get("t1"),
        get("branch"),
    )
    ok = "ok" in data
    if (
        type(pos) is str
        and pos
        and type(kind) is str
        and kind
        and type(fp) is str
        and ok is not ("err" in data)
        and (t0 is None or type(t0) in _NUMBER)
        and (t1 is None or type(t1) in _NUMBER)
        and (branch is None or type(branch) is str)
        and type(get("run", "")) is str  # version 1 repeated the run id on every line
        and data.keys() <= (_ENTRY_KEYS if version >= 2 else _ENTRY_KEYS_1)
    ):
        req = get("req")
        record = build_record(
            pos, kind, fp, ok, data["ok"] if ok else data["err"], req, t0, t1, branch, line
        )
        if "req_base" not in data:
            return record
        base = data["req_base"]
        if type(base) is not str or type(req) is not dict or type(req.get("messages")) is not list:
            raise JournalCorrupt(
                where, line, "req_base must be a position and the request must hold messages"
            )
        return Extends(record, base)
    if HEADER_KEY in data:
        return parse_header(data, where, line)
    raise JournalCorrupt(where, line, _schema_error(data, version))


def _schema_error(data: dict[str, Any], version: int) -> str:
    """What is wrong with a record's JSON object (it failed the checks of `parse_object`)."""
    bad = data.keys() - (_ENTRY_KEYS if version >= 2 else _ENTRY_KEYS_1)
    if bad:
        return f"unknown field {sorted(bad)[0]!r}"
    missing = [k for k in ("pos", "kind", "fp") if k not in data]
    if missing:
        return f"a record needs pos, kind and fp; {missing[0]!r} is missing"
    pos, kind, fp = data["pos"], data["kind"], data["fp"]
    if type(pos) is not str or not pos or type(kind) is not str or not kind or type(fp) is not str:
        return "pos and kind must be non-empty strings and fp a string"
    if ("ok" in data) == ("err" in data):
        return "a record holds exactly one of ok and err"
    t0, t1 = data.get("t0"), data.get("t1")
    if not (t0 is None or type(t0) in _NUMBER) or not (t1 is None or type(t1) in _NUMBER):
        return "t0 and t1 must be numbers"
    return "branch and run must be strings"


def parse_header(data: dict[str, Any], where: str, line: int) -> Header:
    """The header line's JSON object (checksum removed), schema-checked.

    >>> parse_header({"mce_journal": 3, "run": "r", "seed": 1}, "j", 1)
    Traceback (most recent call last):
    ...
    mce.journal.JournalCorrupt: journal j is corrupt at line 1: format version 3; this mce reads versions (1, 2)
    """
    version = data[HEADER_KEY]
    if type(version) is not int or version not in FORMATS:
        raise JournalCorrupt(
            where, line, f"format version {version!r}; this mce reads versions {FORMATS}"
        )
    bad = data.keys() - _HEADER_KEYS
    if bad:
        raise JournalCorrupt(where, line, f"unknown header field {sorted(bad)[0]!r}")
    run, seed, t0 = data.get("run"), data.get("seed"), data.get("t0", 0.0)
    if type(run) is not str or type(seed) is not int or type(t0) not in (int, float):
        raise JournalCorrupt(
            where, line, "the header needs run (a string), seed (an int) and t0 (a number)"
        )
    return Header(run, seed, float(t0), version)


def split_lines(data: bytes) -> tuple[list[bytes], int | None]:
    """A file's lines (without newlines), and the byte offset of a torn last line, if any.

    A last line without its newline is torn unless its checksum holds (it
    lost only the newline):

    >>> split_lines(b'{"a":1}\\n{"b"')
    ([b'{"a":1}'], 8)
    >>> split_lines(b"")
    ([], None)
    """
    lines = data.split(b"\n")
    last = lines.pop()  # the text after the final newline: empty unless torn
    if last:
        if lines and sum_holds(last):  # whole, only its newline is missing
            lines.append(last)
        else:
            return lines, len(data) - len(last)
    return lines, None


def parse_lines(lines: list[bytes], where: str) -> tuple[Header | None, tuple[Record, ...]]:
    """The header and the records of a journal's lines, every one checked.

    >>> parse_lines([], "j")
    (None, ())
    """
    if not lines:
        return None, ()
    header = parse_line(lines[0], where, 1, summed(lines[0]))
    if type(header) is not Header:
        raise JournalCorrupt(where, 1, "the first line is not a header")
    parsed = _parse_body(lines, header.version, where)
    if all(type(item) is Record for item in parsed):
        records: list[Record] = parsed  # type: ignore[assignment]
    else:  # resolve requests stored as a reference to an earlier one
        by_pos: dict[str, Record] = {}
        records = []
        for item in parsed:
            record = item if type(item) is Record else _extend(item, by_pos, where)
            by_pos[record.pos] = record
            records.append(record)
    return header, check_positions(where, records)


def parse_line(raw: bytes, where: str, number: int, has_sum: bool) -> Header | Record | Extends:
    """One line, checked: its checksum (when `has_sum`), JSON and schema.

    >>> parse_line(b'{"pos":"0","kind":"k","fp":"","ok":1', "j", 4, False)
    Traceback (most recent call last):
    ...
    mce.journal.JournalCorrupt: journal j is corrupt at line 4: not JSON (Expecting ',' delimiter: line 1 column 37 (char 36))
    """
    if has_sum and not sum_holds(raw):
        raise JournalCorrupt(where, number, "the checksum does not match")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise JournalCorrupt(where, number, f"not JSON ({exc})") from None
    if has_sum:
        # JSON text that ends with `,"sum":"<hex>"}` (what `sum_holds` checked) can only
        # be an object with a top-level "sum" member: the last `}` closes the outermost value.
        del data["sum"]
    return parse_object(data, where, number, 2 if has_sum else 1)


def _parse_body(lines: list[bytes], version: int, where: str) -> list[Record | Extends]:
    """Every line after the header, checked; one `json.loads` when all is well."""
    body = lines[1:]
    fast = version >= 2
    if fast:
        # `sum_holds` for every line, inlined: this loop is a large share of a replay.
        crc, field, tail = zlib.crc32, SUM_FIELD, SUM_TAIL
        for number, raw in enumerate(body, 2):
            if raw[-tail:] != field % crc(raw[:-tail] + b"}"):
                raise JournalCorrupt(where, number, "the checksum does not match")
        try:
            objects = json.loads(b"[" + b",".join(body) + b"]")
            fast = len(objects) == len(body)
        except ValueError:
            fast = False
    out: list[Record | Extends] = []
    if fast:
        for number, data in enumerate(objects, 2):
            if type(data) is not dict or data.pop("sum", None) is None:
                raise JournalCorrupt(where, number, "not a checksummed JSON object")
            item = parse_object(data, where, number, version)
            if type(item) is Header:
                raise JournalCorrupt(where, number, "a header after the first line")
            out.append(item)
        return out
    for number, raw in enumerate(body, 2):  # find the line that is off (or read version 1)
        # a version-2 line here has passed `sum_holds`; a version-1 journal that was
        # resumed holds version-2 lines after its own
        item = parse_line(raw, where, number, summed(raw))
        if type(item) is Header:
            raise JournalCorrupt(where, number, "a header after the first line")
        out.append(item)
    return out


def _extend(item: Record | Extends, by_pos: dict[str, Record], where: str) -> Record:
    assert type(item) is Extends
    r = item.record
    base = by_pos.get(item.base)
    base_req = None if base is None else base.req
    if type(base_req) is not dict or type(base_req.get("messages")) is not list:
        raise JournalCorrupt(
            where, r.line, f"req_base {item.base!r} names no earlier request with messages"
        )
    full = {**r.req, "messages": base_req["messages"] + r.req["messages"]}
    return Record(r.pos, r.kind, r.fp, r.ok, r.value, full, r.t0, r.t1, r.branch, r.line)
