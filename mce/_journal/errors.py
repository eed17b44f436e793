"""What can go wrong with a journal: damage, a second writer, a skipped line, a divergence.

>>> str(JournalCorrupt("run.jsonl", 3, "not JSON"))
'journal run.jsonl is corrupt at line 3: not JSON'
"""

from __future__ import annotations

from typing import Any

from mce.effects import redact

__all__ = ["JournalCorrupt", "JournalInUse", "JournalWarning", "ReplayDivergence"]


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
