"""Replay lookup: serve effects and scheduling decisions from a loaded journal.

In `replay` and `resume` modes the interpreter asks, for each effect at a
position, whether the journal has it; the answer is checked against the
effect's kind and request fingerprint, so a program and a journal that do
not belong together raise `ReplayDivergence` at the first difference.

>>> lookup = ReplayLookup("replay", [{"pos": "0", "kind": "k", "fp": "f", "ok": 1}])
>>> lookup.lookup("0", "k", None, "f")["ok"]
1
>>> lookup.served
1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from mce.codec import decode
from mce.journal import ReplayDivergence
from mce.questions import ASK

Mode = Literal["live", "replay", "resume"]
"""How `run` treats its journal: record, serve everything, or serve then continue."""

MODES: Final = ("live", "replay", "resume")

PAR_DECISION: Final = "mce.par"  # which branch of a fail-fast block failed first
TIMEOUT_DECISION: Final = "mce.timeout"  # whether a timeout fired
BUDGET_DECISION: Final = "mce.budget"  # whether a budget ran out of time
DECISIONS: Final = frozenset({PAR_DECISION, TIMEOUT_DECISION, BUDGET_DECISION})
"""Journal entries that record a scheduling decision rather than an effect."""


class ReplayLookup:
    """The recorded entries of one run, by position (the first entry at a position wins)."""

    __slots__ = ("mode", "recorded", "served")

    def __init__(self, mode: Mode, entries: Iterable[dict[str, Any]]) -> None:
        self.mode = mode
        self.recorded: dict[str, dict[str, Any]] = {}
        for entry in entries:
            self.recorded.setdefault(entry["pos"], entry)
        self.served = 0

    def lookup(self, position: str, kind: str, request: Any, fp: str) -> dict[str, Any] | None:
        """The recorded entry for this effect, checked against the request; None to run live."""
        entry = self.recorded.get(position)
        if entry is None:
            # An unanswered question is no divergence: the replay ends waiting, like the run.
            if self.mode == "replay" and kind != ASK:
                raise ReplayDivergence(
                    position, kind, "the journal has no entry here", None, request
                )
            return None
        if entry["kind"] != kind:
            raise ReplayDivergence(
                position,
                kind,
                f"the journal recorded a {entry['kind']!r} effect here",
                entry.get("req"),
                request,
            )
        if entry["fp"] != fp:
            raise ReplayDivergence(
                position,
                kind,
                "the request differs from the recorded one",
                entry.get("req"),
                request,
            )
        self.served += 1
        return entry

    def decision(self, position: str, kind: str) -> Any:
        """A recorded scheduling decision (which branch failed, whether a timeout fired).

        None when the journal has none here: in `replay` mode that is a
        divergence, which the caller names (it knows what was expected).
        """
        entry = self.recorded.get(position)
        if entry is None:
            return None
        if entry["kind"] != kind:
            raise ReplayDivergence(
                position, kind, f"the journal recorded a {entry['kind']!r} here, not {kind!r}"
            )
        return decode(entry["ok"])
