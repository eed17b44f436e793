"""The journal file: JSON Lines (format version 2), locked, repaired, appended to and fsynced.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
>>> j = open_journal(path)
>>> j.append([Header("r", 1, 0.0), Record("0", "k", "", True, 5)])
>>> j.close()
>>> FileJournal(path).read()[1][0].value
5
"""

from __future__ import annotations

import fcntl
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mce._journal.conversations import Conversations
from mce._journal.errors import JournalCorrupt, JournalInUse, JournalWarning
from mce._journal.lines import encode_line, record_line
from mce._journal.loading import parse_lines, split_lines
from mce._journal.memory import Journal
from mce._journal.records import Header, Record, header_json

__all__ = ["FileJournal", "open_journal"]


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
        self._conversations: Conversations | None = None

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
        lines, self._torn_at = split_lines(data)
        if self._torn_at is not None:
            warnings.warn(
                f"journal {self.name}: ignoring a torn last line {len(lines) + 1}",
                JournalWarning,
                stacklevel=2,
            )
        if not lines:
            return None, ()
        header, self._read = parse_lines(lines, self.name)
        self._conversations = None
        return header, self._read

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
        lines = []
        for record in records:
            if type(record) is Header:
                lines.append(encode_line(header_json(record)))
                continue
            assert type(record) is Record
            r = record
            lines.append(
                self.line(r.pos, r.kind, r.fp, r.ok, r.value, r.req, r.t0, r.t1, r.branch, r)
            )
        return b"".join(lines)

    def line(
        self,
        pos: str,
        kind: str,
        fp: str,
        ok: bool,
        value: Any,
        req: Any,
        t0: float | None,
        t1: float | None,
        branch: str | None,
        record: Record | None = None,
    ) -> bytes:
        """The line of the record with these fields (`record`, if it is at hand), for `write_lines`.

        Made from the fields directly (`record_line`) unless the request may
        be stored as a reference to an earlier one, or the text holds a lone
        surrogate: then from the record's JSON object (`encode_line`). The
        same bytes either way. Lines must be written in the order they were
        made (see `lines`).

        >>> import tempfile, os
        >>> j = FileJournal(os.path.join(tempfile.mkdtemp(), "run.jsonl"))
        >>> j.line("0", "k", "", True, 5, None, None, None, None) == j.lines([Record("0", "k", "", True, 5)])
        True
        """
        if type(req) is not dict or type(req.get("messages")) is not list:
            made = record_line(pos, kind, fp, ok, value, req, t0, t1, branch)
            if made is not None:
                return made
        if record is None:
            record = Record(pos, kind, fp, ok, value, req, t0, t1, branch)
        conversations = self._conversations
        if conversations is None:
            conversations = self._conversations = Conversations(self._read)
        data = record.to_json()
        conversations.compact(record, data)
        made = encode_line(data)
        conversations.remember(record)
        return made

    def write_lines(self, data: bytes, *, fsync: bool = True) -> None:
        """Append lines made by `lines`, then fsync them (and every line written before).

        With `fsync=False` they are written only: a process killed after this
        keeps them, a machine that loses power may not, until a later fsync.
        """
        fd = self._open()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
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
