"""The journal: a versioned, checked, append-only record of a run's effects.

A journal holds a `Header` (the run id and seed) and one `Record` per
completed effect or scheduling decision, keyed by position. `Journal()`
keeps them in memory; `FileJournal(path)` (or simply `run(...,
journal=path)`) writes them as JSON Lines, flushed and fsynced batch by
batch. The format is a contract, documented field by field in
docs/journal-format.md: the header carries the format version, every line
carries a CRC-32 of its own bytes, and loading checks every line's checksum
and schema. Any damage is `JournalCorrupt` naming the line; only a torn
last line (a crash mid-write: no final newline) is skipped, with a
`JournalWarning`.

A live or resumed run holds an exclusive lock on its journal file for the
whole run: a second writer gets `JournalInUse` before anything runs.

>>> j = Journal()
>>> j.append([Record(pos="0", kind="k", fp="f", ok=True, value=1)])
>>> [r.pos for r in j.read()[1]]
['0']
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, final

from attrs import field, frozen
from attrs import fields as attrs_fields

from mce.effects import redact

__all__ = [
    "FORMATS",
    "HEADER_KEY",
    "VERSION",
    "FileJournal",
    "Header",
    "Journal",
    "JournalCorrupt",
    "JournalInUse",
    "JournalWarning",
    "Record",
    "ReplayDivergence",
    "check_seed",
    "open_journal",
]

HEADER_KEY = "mce_journal"
"""The header line's key; its value is the format version."""
VERSION = 2
"""The format version this mce writes."""
FORMATS = (1, 2)
"""The format versions this mce reads (1: no checksums)."""

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_SUM = b',"sum":"'  # every version-2 line ends with ,"sum":"<8 hex digits>"}
_SUM_TAIL = len(_SUM) + 8 + 2
_SUM_FIELD = _SUM + b'%08x"}'  # the field, given the CRC-32 of the line without it
_ENTRY_KEYS_1 = frozenset({"pos", "kind", "fp", "ok", "err", "req", "t0", "t1", "branch", "run"})
_ENTRY_KEYS = (_ENTRY_KEYS_1 - {"run"}) | {"req_base"}
_HEADER_KEYS = _HEADER_KEYS_1 = frozenset({HEADER_KEY, "run", "seed", "t0"})


class JournalCorrupt(Exception):
    """A journal line fails its checksum or its schema (or cannot be read at all).

    >>> str(JournalCorrupt("run.jsonl", 3, "not JSON"))
    'journal run.jsonl is corrupt at line 3: not JSON'
    """

    def __init__(self, where: str, line: int, reason: str) -> None:
        super().__init__(f"journal {where} is corrupt at line {line}: {reason}")
        self.where = where
        self.line = line
        self.reason = reason


class JournalInUse(ValueError):
    """The journal cannot be written: another run holds it, or it already holds a run.

    Nothing is written and no effect runs.

    >>> issubclass(JournalInUse, ValueError)
    True
    """


class JournalWarning(UserWarning):
    """Something in a journal was skipped (a torn last line)."""


class ReplayDivergence(Exception):
    """The program and the journal do not agree.

    Raised out of `run`: a program and a journal that do not belong together
    is not a workflow error. It names the position and both requests.

    >>> str(ReplayDivergence("0/1", "search", "request differs", {"q": "a"}, {"q": "b"}))
    "replay diverged at position 0/1 (effect 'search'): request differs\\n  recorded:  {'q': 'a'}\\n  requested: {'q': 'b'}"
    """

    def __init__(
        self,
        position: str,
        kind: str,
        reason: str,
        recorded: Any = None,
        requested: Any = None,
    ) -> None:
        message = f"replay diverged at position {position} (effect {kind!r}): {reason}"
        if recorded is not None or requested is not None:
            message += f"\n  recorded:  {recorded!r}\n  requested: {redact(requested)!r}"
        super().__init__(message)
        self.position = position
        self.kind = kind
        self.reason = reason
        self.recorded = recorded
        self.requested = redact(requested)


@final
@frozen
class Header:
    """The first record of a journal: the run it belongs to and its seed.

    >>> Header(run="r1", seed=7, t0=0.0).version
    2
    """

    run: str
    seed: int
    t0: float
    version: int = VERSION


@final
@frozen
class Record:
    """One completed effect (or scheduling decision) at a position.

    `value` is the result when `ok` is true and the error otherwise, both in
    the JSON form `mce.codec.encode` gives; `req` is the request in the same
    form (secrets redacted), `fp` its fingerprint. `line` is where the
    record was read from (0 when it was not read from a file); it takes no
    part in equality.

    >>> r = Record(pos="1/0", kind="search", fp="ab", ok=True, value=[1, 2])
    >>> r.branch is None and r == Record("1/0", "search", "ab", True, [1, 2], line=9)
    True
    """

    pos: str
    kind: str
    fp: str
    ok: bool
    value: Any
    req: Any = None
    t0: float | None = None
    t1: float | None = None
    branch: str | None = None
    line: int = field(default=0, eq=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The record as its version-2 JSON object (without checksum or request reference).

        >>> Record("0", "k", "f", False, "boom").to_json()
        {'pos': '0', 'kind': 'k', 'fp': 'f', 'err': 'boom'}
        """
        data: dict[str, Any] = {"pos": self.pos, "kind": self.kind, "fp": self.fp}
        data["ok" if self.ok else "err"] = self.value
        if self.req is not None:
            data["req"] = self.req
        for key in ("t0", "t1", "branch"):
            v = getattr(self, key)
            if v is not None:
                data[key] = v
        return data


def check_seed(seed: object) -> int | None:
    """`seed` if it is a valid `run(seed=...)` (an int, not a bool, or None); else `TypeError`.

    >>> check_seed(7), check_seed(None)
    (7, None)
    >>> check_seed(1.5)
    Traceback (most recent call last):
    ...
    TypeError: run(seed=...) must be an int, got 1.5 (float)
    """
    if seed is None:
        return None
    if isinstance(seed, int) and not isinstance(seed, bool):
        return int(seed)
    raise TypeError(f"run(seed=...) must be an int, got {seed!r} ({type(seed).__name__})")


# The decisions a resume with `retry_failed` may take again: which branch of a
# parallel block failed first, whether a timeout fired (mce._runtime.replay).
_REDECIDED = frozenset({"mce.par", "mce.timeout"})


def _conflicts(where: str, records: Iterable[Record]) -> tuple[Record, ...]:
    """The records, checked: a position appears once, unless a retry supersedes a failure.

    A record that follows a *failed* record of the same kind at the same
    position replaces it (what `retry_failed` appends), and so does a parallel
    block's or a timeout's decision that follows one (what `retry_failed`
    decided again); any other repeat of a position is two runs writing one
    journal.
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


class Journal:
    """An in-memory journal (also the interface `FileJournal` implements).

    >>> j = Journal()
    >>> j.append([Header(run="r1", seed=1, t0=0.0), Record("0", "k", "", True, None)])
    >>> j.read()[0].run, len(j.read()[1])
    ('r1', 1)
    """

    needs_thread = False
    """Whether `append` blocks (file I/O) and should run in a worker thread."""

    def __init__(self) -> None:
        self._header: Header | None = None
        self._records: list[Record] = []
        self._held = False

    @property
    def name(self) -> str:
        """What the journal is called in messages: its path, or `<memory>`."""
        return "<memory>"

    def read(self) -> tuple[Header | None, tuple[Record, ...]]:
        """The header (if any) and the records, in order, checked (see `_conflicts`)."""
        return self._header, _conflicts(self.name, self._records)

    def append(self, records: Sequence[Header | Record]) -> None:
        """Append records durably (in memory: at once)."""
        for record in records:
            if type(record) is Header:
                if self._header is None:
                    self._header = record
            else:
                assert type(record) is Record
                self._records.append(record)

    def acquire(self) -> None:
        """Take the journal for one writing run; `JournalInUse` if a run holds it.

        >>> j = Journal(); j.acquire()
        >>> j.acquire()
        Traceback (most recent call last):
        ...
        mce.journal.JournalInUse: journal <memory> is in use by another run
        """
        if self._held:
            raise JournalInUse(f"journal {self.name} is in use by another run")
        self._held = True

    def begin(
        self, mode: Literal["live", "replay", "resume"]
    ) -> tuple[Header | None, tuple[Record, ...]]:
        """Open the journal for a run in `mode`: what the run starts from.

        A live or resumed run takes the lock first (`acquire`) and keeps it
        until `close`; a resumed file is repaired (a torn last line
        dropped); a live run refuses a journal that already holds a run.
        """
        if mode != "replay":
            self.acquire()
        try:
            loaded = self.repair() if mode == "resume" else self.read()
            if mode == "live" and (loaded[0] is not None or loaded[1]):
                raise JournalInUse(
                    f"journal {self.name} already holds a run; replay it "
                    "(mode='replay'), continue it (mode='resume'), or record to a new journal"
                )
        except BaseException:
            self.close()
            raise
        return loaded

    def repair(self) -> tuple[Header | None, tuple[Record, ...]]:
        """Make the journal ready to be appended to after a crash; what `read` gives."""
        return self.read()

    def close(self) -> None:
        """Release the lock and any open file."""
        self._held = False

    def load(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """`read`, as the JSON objects of the file format (requests whole, no checksums).

        >>> j = Journal()
        >>> j.append([Record("0", "k", "", True, 1)])
        >>> j.load()
        (None, [{'pos': '0', 'kind': 'k', 'fp': '', 'ok': 1}])
        """
        return _as_dicts(self.read())

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """`append` records given as JSON objects (what `load` gives), schema-checked.

        >>> j = Journal()
        >>> j.write([{"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.0}])
        >>> j.read()[0].seed
        1
        """
        typed: list[Header | Record] = []
        for number, data in enumerate(records, 1):
            item = _parse_object(data, self.name, number, VERSION)
            if isinstance(item, _Extends):
                raise JournalCorrupt(
                    self.name, number, "req_base is for files; give whole requests"
                )
            typed.append(item)
        self.append(typed)


def _header_json(header: Header) -> dict[str, Any]:
    return {HEADER_KEY: header.version, "run": header.run, "seed": header.seed, "t0": header.t0}


def _as_dicts(
    loaded: tuple[Header | None, tuple[Record, ...]],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    header, records = loaded
    return (None if header is None else _header_json(header)), [r.to_json() for r in records]


@final
@frozen
class _Extends:
    """A record whose request is stored as a reference to an earlier one plus what is new."""

    record: Record
    base: str


_NUMBER = (int, float)
_SLOTS = {a.name: Record.__dict__[a.name].__set__ for a in attrs_fields(Record)}
_SET_POS, _SET_KIND, _SET_FP, _SET_OK = _SLOTS["pos"], _SLOTS["kind"], _SLOTS["fp"], _SLOTS["ok"]
_SET_VALUE, _SET_REQ, _SET_T0, _SET_T1 = _SLOTS["value"], _SLOTS["req"], _SLOTS["t0"], _SLOTS["t1"]
_SET_BRANCH, _SET_LINE = _SLOTS["branch"], _SLOTS["line"]
_new = object.__new__


def _record(
    pos: str,
    kind: str,
    fp: str,
    ok: bool,
    value: Any,
    req: Any,
    t0: Any,
    t1: Any,
    branch: Any,
    line: int,
) -> Record:
    """`Record(...)` for values already checked: loading a journal builds one per line, and
    attrs' frozen `__init__` (a by-name `object.__setattr__` per field) would be a large share
    of replaying a journal; the slots are set directly instead. Same object, same invariants."""
    r: Record = _new(Record)
    _SET_POS(r, pos)
    _SET_KIND(r, kind)
    _SET_FP(r, fp)
    _SET_OK(r, ok)
    _SET_VALUE(r, value)
    _SET_REQ(r, req)
    _SET_T0(r, t0)
    _SET_T1(r, t1)
    _SET_BRANCH(r, branch)
    _SET_LINE(r, line)
    return r


def _parse_object(data: Any, where: str, line: int, version: int) -> Header | Record | _Extends:
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
        record = _record(
            pos, kind, fp, ok, data["ok"] if ok else data["err"], req, t0, t1, branch, line
        )
        if "req_base" not in data:
            return record
        base = data["req_base"]
        if type(base) is not str or type(req) is not dict or type(req.get("messages")) is not list:
            raise JournalCorrupt(
                where, line, "req_base must be a position and the request must hold messages"
            )
        return _Extends(record, base)
    if HEADER_KEY in data:
        return _header(data, where, line)
    raise JournalCorrupt(where, line, _schema_error(data, version))


def _schema_error(data: dict[str, Any], version: int) -> str:
    """What is wrong with a record's JSON object (it failed the checks above)."""
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


def _header(data: dict[str, Any], where: str, line: int) -> Header:
    version = data[HEADER_KEY]
    if type(version) is not int or version not in FORMATS:
        raise JournalCorrupt(
            where, line, f"format version {version!r}; this mce reads versions {FORMATS}"
        )
    bad = data.keys() - (_HEADER_KEYS if version >= 2 else _HEADER_KEYS_1)
    if bad:
        raise JournalCorrupt(where, line, f"unknown header field {sorted(bad)[0]!r}")
    run, seed, t0 = data.get("run"), data.get("seed"), data.get("t0", 0.0)
    if type(run) is not str or type(seed) is not int or type(t0) not in (int, float):
        raise JournalCorrupt(
            where, line, "the header needs run (a string), seed (an int) and t0 (a number)"
        )
    return Header(run, seed, float(t0), version)


def _summed(raw: bytes) -> bool:
    """Whether the line ends with a checksum field (a version-2 line)."""
    return raw[-_SUM_TAIL:-10] == _SUM


def _sum_holds(raw: bytes) -> bool:
    """Whether the line ends with a checksum field that matches the rest of the line.

    The line's last 18 bytes must be exactly the field `_line` writes for
    the CRC-32 of the rest (with its `}` put back): one comparison checks
    the field's form, its 8 lowercase hex digits and their value.
    """
    return raw[-_SUM_TAIL:] == _SUM_FIELD % zlib.crc32(raw[:-_SUM_TAIL] + b"}")


# `_ENCODER.encode` makes a C encoder on every call, a third of the cost of a
# record's line; this one is made once (no circular check: values are JSON).
_encode_c = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    _encode_c(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if _encode_c is not None
    else lambda data, _level: (_ENCODER.encode(data),)
)


def _line(data: dict[str, Any]) -> bytes:
    """A record's version-2 line: its JSON text with a CRC-32 of that text spliced in."""
    try:
        text = "".join(_ENCODE(data, 0)).encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, so the file stays UTF-8
        text = _ASCII_ENCODER.encode(data).encode()
    return text[:-1] + _SUM_FIELD % zlib.crc32(text) + b"\n"


class _Conversations:
    """Which recorded requests a new request extends (`req_base` in the format).

    A request that is a JSON object with a `messages` list, whose first
    messages are exactly the messages of an earlier request of the same
    kind, is stored as a reference to that request plus the new messages,
    so a conversation's journal grows with its length, not its square.
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._by_prefix: dict[tuple[str, bytes], tuple[str, int]] = {}
        for record in records:
            self.remember(record)

    @staticmethod
    def _prefixes(messages: list[Any]) -> Iterable[bytes]:
        h = hashlib.sha1(usedforsecurity=False)
        for m in messages:
            h.update(_ASCII_ENCODER.encode(m).encode())
            h.update(b"\n")
            yield h.digest()

    def remember(self, record: Record) -> None:
        req = record.req
        if type(req) is dict and type(req.get("messages")) is list and req["messages"]:
            messages = req["messages"]
            *_, key = self._prefixes(messages)
            self._by_prefix[(record.kind, key)] = (record.pos, len(messages))

    def compact(self, record: Record, data: dict[str, Any]) -> None:
        """Rewrite `data` (the record's JSON) to reference the longest earlier prefix."""
        req = record.req
        if type(req) is not dict or type(req.get("messages")) is not list:
            return
        messages = req["messages"]
        best: tuple[str, int] | None = None
        for key in self._prefixes(messages):
            best = self._by_prefix.get((record.kind, key), best)
        if best is not None:
            data["req"] = {**req, "messages": messages[best[1] :]}
            data["req_base"] = best[0]


class FileJournal(Journal):
    """A JSON Lines journal file (format version 2), appended to and fsynced batch by batch.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> j = FileJournal(path)
    >>> j.append([Header("r", 1, 0.0), Record("0", "k", "", True, 5)])
    >>> j.close()
    >>> FileJournal(path).read()[1]
    (Record(pos='0', kind='k', fp='', ok=True, value=5, req=None, t0=None, t1=None, branch=None),)
    """

    needs_thread = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None
        self._locked = False
        self._torn_at: int | None = None  # byte offset of a torn last line
        self._read: tuple[Record, ...] = ()  # what the last read gave, for `_conversations`
        self._conversations: _Conversations | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> tuple[Header | None, tuple[Record, ...]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, ()
        except OSError as exc:
            raise JournalCorrupt(self.name, 0, f"cannot be read: {exc}") from None
        self._torn_at = None
        lines = data.split(b"\n")
        last = lines.pop()  # the text after the final newline: empty unless torn
        if last:
            if lines and _sum_holds(last):  # whole, only its newline is missing
                lines.append(last)
            else:
                self._torn_at = len(data) - len(last)
                warnings.warn(
                    f"journal {self.name}: ignoring a torn last line {len(lines) + 1}",
                    JournalWarning,
                    stacklevel=2,
                )
        if not lines:
            return None, ()
        header = self._parse(lines[0], 1, _summed(lines[0]))
        if type(header) is not Header:
            raise JournalCorrupt(self.name, 1, "the first line is not a header")
        parsed = self._parse_all(lines, header.version)
        if all(type(item) is Record for item in parsed):
            records: list[Record] = parsed  # type: ignore[assignment]
        else:  # resolve requests stored as a reference to an earlier one
            by_pos: dict[str, Record] = {}
            records = []
            for item in parsed:
                record = item if type(item) is Record else self._extend(item, by_pos)
                by_pos[record.pos] = record
                records.append(record)
        self._read = checked = _conflicts(self.name, records)
        self._conversations = None
        return header, checked

    def _parse(self, raw: bytes, number: int, summed: bool) -> Header | Record | _Extends:
        if summed and not _sum_holds(raw):
            raise JournalCorrupt(self.name, number, "the checksum does not match")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise JournalCorrupt(self.name, number, f"not JSON ({exc})") from None
        if summed:
            if type(data) is not dict:
                raise JournalCorrupt(self.name, number, "not a JSON object")
            del data["sum"]
        record = _parse_object(data, self.name, number, 2 if summed else 1)
        if number > 1 and type(record) is Header:
            raise JournalCorrupt(self.name, number, "a header after the first line")
        return record

    def _parse_all(self, lines: list[bytes], version: int) -> list[Record | _Extends]:
        """Every line after the header, checked; one `json.loads` when all is well."""
        body = lines[1:]
        fast = version >= 2
        if fast:
            # `_sum_holds` for every line, inlined: this loop is a large share of a replay.
            crc, field, tail = zlib.crc32, _SUM_FIELD, _SUM_TAIL
            for number, raw in enumerate(body, 2):
                if raw[-tail:] != field % crc(raw[:-tail] + b"}"):
                    raise JournalCorrupt(self.name, number, "the checksum does not match")
            try:
                objects = json.loads(b"[" + b",".join(body) + b"]")
                fast = len(objects) == len(body)
            except ValueError:
                fast = False
        out: list[Record | _Extends] = []
        name = self.name
        if fast:
            for number, data in enumerate(objects, 2):
                if type(data) is not dict or data.pop("sum", None) is None:
                    raise JournalCorrupt(name, number, "not a checksummed JSON object")
                item = _parse_object(data, name, number, version)
                if type(item) is Header:
                    raise JournalCorrupt(name, number, "a header after the first line")
                out.append(item)
            return out
        for number, raw in enumerate(body, 2):  # find the line that is off (or read version 1)
            item = self._parse(raw, number, version >= 2 or _summed(raw))
            if type(item) is Header:
                raise JournalCorrupt(name, number, "a header after the first line")
            out.append(item)
        return out

    def _extend(self, item: Record | _Extends, by_pos: dict[str, Record]) -> Record:
        assert type(item) is _Extends
        r = item.record
        base = by_pos.get(item.base)
        base_req = None if base is None else base.req
        if type(base_req) is not dict or type(base_req.get("messages")) is not list:
            raise JournalCorrupt(
                self.name, r.line, f"req_base {item.base!r} names no earlier request with messages"
            )
        full = {**r.req, "messages": base_req["messages"] + r.req["messages"]}
        return Record(r.pos, r.kind, r.fp, r.ok, r.value, full, r.t0, r.t1, r.branch, r.line)

    def acquire(self) -> None:
        """Take an exclusive lock on the file (creating it) until `close`.

        A second process (or a second `FileJournal` of the same file) gets
        `JournalInUse` at once; the lock goes with the process if it dies.
        """
        if self._locked:
            raise JournalInUse(f"journal {self.name} is in use by another run")
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise JournalInUse(
                f"journal {self.name} is in use by another run (another process holds its lock)"
            ) from None
        self._locked = True

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def repair(self) -> tuple[Header | None, tuple[Record, ...]]:
        """Drop a torn last line and end the file with a newline, ready to append.

        Returns what `read` gives (the file is read once): the torn line was
        never part of it.
        """
        if not self.path.exists():
            return None, ()
        loaded = self.read()
        with open(self.path, "r+b") as f:
            if self._torn_at is not None:
                f.truncate(self._torn_at)
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._torn_at = None
        return loaded

    def append(self, records: Sequence[Header | Record]) -> None:
        """Append records as checksummed lines, then fsync them (`lines`, then `write_lines`)."""
        self.write_lines(self.lines(records))

    def lines(self, records: Sequence[Header | Record]) -> bytes:
        """Records as the checksummed lines `append` writes, for `write_lines`.

        The run's writer makes them on the event loop and writes them in its
        thread, where only the write and the fsync happen (they release the
        GIL). Lines must be written in the order they were made: a request
        may be stored as a reference to an earlier one. A value holding a
        lone surrogate is written escaped (the file stays UTF-8) and reads
        back exactly.
        """
        conversations = self._conversations
        if conversations is None:
            conversations = self._conversations = _Conversations(self._read)
        lines = []
        for record in records:
            if type(record) is Header:
                lines.append(_line(_header_json(record)))
                continue
            assert type(record) is Record
            data = record.to_json()
            conversations.compact(record, data)
            lines.append(_line(data))
            conversations.remember(record)
        return b"".join(lines)

    def write_lines(self, data: bytes) -> None:
        """Append lines made by `lines`, then fsync them."""
        fd = self._open()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None
        self._locked = False


def open_journal(journal: Journal | str | os.PathLike[str]) -> Journal:
    """A journal object for `run(..., journal=...)`: a path becomes a `FileJournal`.

    >>> isinstance(open_journal(Journal()), Journal)
    True
    """
    if isinstance(journal, Journal):
        return journal
    if isinstance(journal, str | os.PathLike):
        return FileJournal(journal)
    raise TypeError(f"journal= needs a path or a Journal, got {journal!r}")
