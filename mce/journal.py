"""The journal: one entry per completed effect, keyed by position.

A journal is append-only. `Journal()` keeps entries in memory;
`FileJournal(path)` (or simply `run(..., journal=path)`) writes JSON Lines,
flushing and fsyncing every batch before any of its results is used. The
first line is a header naming the run and its seed; every other line is one
entry:

    {"run": ..., "pos": "2/0/1", "kind": "search", "fp": ..., "req": ...,
     "ok": <value> | "err": <error>, "t0": ..., "t1": ..., "branch": "2/0"}

A torn last line (a crash mid-write) is ignored with a `JournalWarning`;
an unreadable line anywhere else is `JournalCorrupt`, naming the line.

>>> j = Journal()
>>> j.write([{"pos": "0", "kind": "k", "fp": "f", "ok": 1}])
>>> [e["pos"] for e in j.load()[1]]
['0']
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from mce.effects import redact

HEADER_KEY = "mce_journal"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
VERSION = 1


class JournalCorrupt(Exception):
    """A journal line other than the last cannot be read.

    >>> str(JournalCorrupt("run.jsonl", 3, "not JSON"))
    'journal run.jsonl is corrupt at line 3: not JSON'
    """

    def __init__(self, where: str, line: int, reason: str) -> None:
        super().__init__(f"journal {where} is corrupt at line {line}: {reason}")
        self.where = where
        self.line = line
        self.reason = reason


class JournalInUse(ValueError):
    """A live run was given a journal that already holds a run (nothing is written).

    >>> issubclass(JournalInUse, ValueError)
    True
    """


class JournalWarning(UserWarning):
    """Something in a journal was skipped (a torn last line)."""


class ReplayDivergence(Exception):
    """The program asked for something the journal did not record.

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


class Journal:
    """An in-memory journal (also the interface `FileJournal` implements).

    >>> j = Journal()
    >>> j.write([{HEADER_KEY: 1, "run": "r1"}, {"pos": "0", "ok": None}])
    >>> j.load()[0]["run"], len(j.load()[1])
    ('r1', 1)
    """

    needs_thread = False
    """Whether `write` blocks (file I/O) and should run in a worker thread."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        """What the journal is called in messages: its path, or `<memory>`."""
        return "<memory>"

    def load(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The header (if any) and the entries, in the order they were written."""
        header = None
        entries = []
        for record in self._records:
            if HEADER_KEY in record:
                header = header or record
            else:
                entries.append(record)
        return header, entries

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records durably (in memory: immediately; records are JSON-compatible)."""
        self._records.extend(records)

    def prepare_resume(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Make the journal ready to be appended to after a crash; what `load` gives."""
        return self.load()

    def close(self) -> None:
        """Release any open file."""


class FileJournal(Journal):
    """A JSON Lines journal file, appended to and fsynced batch by batch.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> j = FileJournal(path)
    >>> j.write([{HEADER_KEY: 1, "run": "r"}, {"pos": "0", "kind": "k", "fp": "", "ok": 5}])
    >>> j.close()
    >>> FileJournal(path).load()[1]
    [{'pos': '0', 'kind': 'k', 'fp': '', 'ok': 5}]
    """

    needs_thread = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd: int | None = None
        self._torn_at: int | None = None  # byte offset of a torn last line

    @property
    def name(self) -> str:
        return str(self.path)

    def load(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            raise JournalCorrupt(self.name, 0, f"cannot be read: {exc}") from None
        header: dict[str, Any] | None = None
        entries: list[dict[str, Any]] = []
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()  # the text after the final newline: nothing
        self._torn_at = None
        fast = self._load_all_at_once(lines)
        if fast is not None:
            return fast
        offset = 0
        for index, raw in enumerate(lines):
            number, is_last = index + 1, index == len(lines) - 1
            start, offset = offset, offset + len(raw) + 1
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                if HEADER_KEY not in record and not {"pos", "kind", "fp"} <= record.keys():
                    raise ValueError("an entry needs pos, kind and fp")
            except ValueError as exc:
                if is_last:  # a crash mid-write: the entry never completed
                    self._torn_at = start
                    warnings.warn(
                        f"journal {self.name}: ignoring a torn last line {number} ({exc})",
                        JournalWarning,
                        stacklevel=2,
                    )
                    break
                raise JournalCorrupt(self.name, number, str(exc) or "unreadable") from None
            if HEADER_KEY in record:
                if number != 1:
                    raise JournalCorrupt(self.name, number, "a header after the first line")
                header = record
            else:
                entries.append(record)
        return header, entries

    def _load_all_at_once(
        self, lines: list[bytes]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]] | None:
        """Parse an intact journal in one call (much faster); None if any line is off."""
        try:
            records = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            return None
        if len(records) != len(lines):  # a line held two values, or none
            return None
        header = None
        entries = records
        if records and isinstance(records[0], dict) and HEADER_KEY in records[0]:
            header, entries = records[0], records[1:]
        need = {"pos", "kind", "fp"}
        for record in entries:
            if type(record) is not dict or not need <= record.keys():
                return None
        return header, entries

    def prepare_resume(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Drop a torn last line and end the file with a newline, ready to append.

        Returns what `load` gives (the file is read once): the torn line was
        never part of it.
        """
        if not self.path.exists():
            return None, []
        loaded = self.load()
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

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records as lines, then fsync them.

        Serializing happens here, in the worker thread that writes, not on the
        event loop while effects complete.
        """
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        encode = _ENCODER.encode
        view = memoryview("".join(encode(r) + "\n" for r in records).encode())
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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


__all__ = [
    "FileJournal",
    "HEADER_KEY",
    "Journal",
    "JournalCorrupt",
    "JournalInUse",
    "JournalWarning",
    "ReplayDivergence",
    "VERSION",
    "open_journal",
]
