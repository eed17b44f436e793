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

The implementation lives in `mce._journal`, one job per module: the
records (`records`), their checksummed lines (`lines`), requests stored as
a reference (`conversations`), loading and its checks (`loading`), the
in-memory journal (`memory`) and the file with its lock (`file`).

>>> j = Journal()
>>> j.append([Record(pos="0", kind="k", fp="f", ok=True, value=1)])
>>> [r.pos for r in j.read()[1]]
['0']
"""

from __future__ import annotations

from mce._journal.errors import JournalCorrupt as JournalCorrupt
from mce._journal.errors import JournalInUse as JournalInUse
from mce._journal.errors import JournalWarning as JournalWarning
from mce._journal.errors import ReplayDivergence as ReplayDivergence
from mce._journal.file import FileJournal as FileJournal
from mce._journal.file import open_journal as open_journal
from mce._journal.memory import Journal as Journal
from mce._journal.records import FORMATS as FORMATS
from mce._journal.records import HEADER_KEY as HEADER_KEY
from mce._journal.records import VERSION as VERSION
from mce._journal.records import Header as Header
from mce._journal.records import Record as Record
from mce._journal.records import check_seed as check_seed

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

# The classes are shown (in tracebacks, reprs and pickles) under the module
# users import them from, not under the private one that defines them.
for _cls in (
    FileJournal,
    Header,
    Journal,
    JournalCorrupt,
    JournalInUse,
    JournalWarning,
    Record,
    ReplayDivergence,
):
    _cls.__module__ = __name__
del _cls
