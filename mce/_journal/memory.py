"""The in-memory journal, and the interface every journal implements.

>>> j = Journal()
>>> j.append([Record(pos="0", kind="k", fp="f", ok=True, value=1)])
>>> [r.pos for r in j.read()[1]]
['0']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from mce._journal.errors import JournalCorrupt, JournalInUse
from mce._journal.loading import Extends, check_positions, parse_object
from mce._journal.records import VERSION, Header, Record, header_json

__all__ = ["Journal"]


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
        """The header (if any) and the records, in order, checked (see `check_positions`)."""
        return self._header, check_positions(self.name, self._records)

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
        header, records = self.read()
        return (None if header is None else header_json(header)), [r.to_json() for r in records]

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        """`append` records given as JSON objects (what `load` gives), schema-checked.

        >>> j = Journal()
        >>> j.write([{"mce_journal": 2, "run": "r", "seed": 1, "t0": 0.0}])
        >>> j.read()[0].seed
        1
        """
        typed: list[Header | Record] = []
        for number, data in enumerate(records, 1):
            item = parse_object(data, self.name, number, VERSION)
            if isinstance(item, Extends):
                raise JournalCorrupt(
                    self.name, number, "req_base is for files; give whole requests"
                )
            typed.append(item)
        self.append(typed)
