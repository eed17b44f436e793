"""Requests stored as a reference to an earlier one plus what is new (`req_base`).

An `llm.chat` request repeats the whole conversation so far. A request that
is a JSON object with a `messages` list, whose first messages are exactly
the messages of an earlier request of the same kind, is written as a
reference to that request plus the new messages, so a conversation's
journal grows with its length, not its square (docs/journal-format.md).

>>> from mce._journal.records import Record
>>> first = Record("0", "llm.chat", "", True, "hi", req={"messages": ["a"]})
>>> c = Conversations([first])
>>> data = {"req": {"messages": ["a", "b"]}}
>>> c.compact(Record("1", "llm.chat", "", True, "", req={"messages": ["a", "b"]}), data)
>>> data
{'req': {'messages': ['b']}, 'req_base': '0'}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from mce._journal.lines import ASCII_ENCODER
from mce._journal.records import Record

__all__ = ["Conversations"]


class Conversations:
    """Which recorded requests a new request extends (`req_base` in the format).

    >>> c = Conversations()
    >>> c.remember(Record("0", "llm.chat", "", True, "", req={"messages": ["a"]}))
    >>> data = {}
    >>> c.compact(Record("1", "tool.x", "", True, "", req={"messages": ["a", "b"]}), data)
    >>> data  # another kind: not a continuation
    {}
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        self._by_prefix: dict[tuple[str, bytes], tuple[str, int]] = {}
        for record in records:
            self.remember(record)

    @staticmethod
    def _prefixes(messages: list[Any]) -> Iterable[bytes]:
        h = hashlib.sha1(usedforsecurity=False)
        for m in messages:
            h.update(ASCII_ENCODER.encode(m).encode())
            h.update(b"\n")
            yield h.digest()

    def remember(self, record: Record) -> None:
        """Note the record's request, so later requests can extend it."""
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
