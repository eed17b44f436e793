"""Replay lookup: serve effects and scheduling decisions from a loaded journal.

In `replay` and `resume` modes the interpreter asks, for each effect at a
position, whether the journal has it; the answer is checked against the
effect's kind and request fingerprint, so a program and a journal that do
not belong together raise `ReplayDivergence` at the first difference.
Values are decoded by the type the program declares for the effect
(`mce.codec.decode`), never by a class name read from the journal.

After a replay, `unused()` names the first recorded effect or decision the
program never asked for: a program that drops its last effect, a branch or
the tail of one, or stops early, does not replay "identically". Records
that the replay skips by design - the branches of a parallel block recorded
as failed other than the one that failed first, the inside of a timed step
recorded as timed out or of a budget recorded as out of time - are set
aside with `skip()`.

With `retry_failed` (resume only), an effect recorded as failed is not
served: it runs again, and its new record replaces the failed one.

>>> from mce.journal import Record
>>> lookup = ReplayLookup("replay", [Record("0", "k", "f", True, 1)])
>>> lookup.lookup("0", "k", None, "f").value
1
>>> lookup.served, lookup.unused()
(1, None)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from mce.budget import BudgetExceeded
from mce.codec import DecodeError, UndeclaredType, decode
from mce.effects import EffectError
from mce.journal import JournalCorrupt, Record, ReplayDivergence
from mce.questions import ASK

Mode = Literal["live", "replay", "resume"]
"""How `run` treats its journal: record, serve everything, or serve then continue."""

MODES: Final = ("live", "replay", "resume")

PAR_DECISION: Final = "mce.par"  # which branch of a fail-fast block failed first
TIMEOUT_DECISION: Final = "mce.timeout"  # whether a timeout fired
BUDGET_DECISION: Final = "mce.budget"  # whether a budget ran out of time, or refused an effect
DECISIONS: Final = frozenset({PAR_DECISION, TIMEOUT_DECISION, BUDGET_DECISION})
REFUSED: Final = "budget"  # a budget's refusal of the effect at P is recorded at P/budget
"""Journal entries that record a scheduling decision rather than an effect."""


def exceeded(data: Any, position: str) -> BudgetExceeded:
    """The `BudgetExceeded` a budget decision or refusal recorded (JSON: resource, limit)."""
    if (
        type(data) is not dict
        or data.get("resource") not in ("calls", "tokens", "seconds")
        or type(data.get("limit")) not in (int, float)
    ):
        raise ReplayDivergence(
            position, BUDGET_DECISION, f"the journal's budget decision is malformed: {data!r}"
        )
    return BudgetExceeded(data["resource"], data["limit"])


def error_type(node: Any) -> Any:
    """What an effect's recorded error decodes as: `EffectError`, or the error type it
    declares - or, as recorded, any other value a handler failed with."""
    declared = node.error
    return EffectError | Any if declared is None else EffectError | declared | Any


class ReplayLookup:
    """The recorded entries of one run, by position (a retry's record replaces a failure)."""

    __slots__ = ("_journal", "_skipped", "_used", "mode", "recorded", "retry_failed", "served")

    def __init__(
        self,
        mode: Mode,
        entries: Iterable[Record],
        *,
        retry_failed: bool = False,
        journal: str = "<memory>",
    ) -> None:
        self.mode = mode
        self.retry_failed = retry_failed
        self.recorded: dict[str, Record] = {r.pos: r for r in entries}
        self.served = 0
        self._used: set[str] = set()
        self._skipped: list[str] = []  # prefixes whose records a replay skips by design
        self._journal = journal

    def lookup(self, position: str, kind: str, request: Any, fp: str) -> Record | None:
        """The recorded entry for this effect, checked against the request; None to run live."""
        entry = self.recorded.get(position)
        if entry is None or (self.retry_failed and not entry.ok):
            # An unanswered question is no divergence: the replay ends waiting, like the run.
            if self.mode == "replay" and kind != ASK:
                raise ReplayDivergence(
                    position, kind, "the journal has no entry here", None, request
                )
            return None
        if entry.kind != kind:
            raise ReplayDivergence(
                position,
                kind,
                f"the journal recorded a {entry.kind!r} effect here",
                entry.req,
                request,
            )
        if entry.fp != fp:
            raise ReplayDivergence(
                position,
                kind,
                "the request differs from the recorded one",
                entry.req,
                request,
            )
        self.served += 1
        self._used.add(position)
        return entry

    def value(self, entry: Record, into: Any) -> Any:
        """The entry's value (or error), decoded as the declared type `into`."""
        try:
            return decode(entry.value, into)
        except UndeclaredType as exc:
            raise ReplayDivergence(entry.pos, entry.kind, exc.args[0]) from None
        except DecodeError as exc:
            raise JournalCorrupt(
                self._journal, entry.line, f"position {entry.pos}: {exc}"
            ) from None

    def decision(self, position: str, kind: str) -> Any:
        """A recorded scheduling decision (which branch failed, whether a timeout fired).

        None when the journal has none here: in `replay` mode that is a
        divergence, which the caller names (it knows what was expected).
        """
        entry = self.recorded.get(position)
        if entry is None:
            return None
        if entry.kind != kind:
            raise ReplayDivergence(
                position, kind, f"the journal recorded a {entry.kind!r} here, not {kind!r}"
            )
        self._used.add(position)
        # a decision is an object: anything else is corrupt (DecodeError)
        return self.value(entry, dict[str, Any])

    def ran(self, position: str) -> bool:
        """Whether the journal holds an effect that ran at `position` (and is served)."""
        entry = self.recorded.get(position)
        return entry is not None and (entry.ok or not self.retry_failed)

    def refusal(self, position: str) -> Any:
        """The budget refusal recorded for the effect at `position` (its JSON), if any."""
        entry = self.recorded.get(f"{position}/{REFUSED}")
        if entry is None or entry.kind != BUDGET_DECISION:
            return None
        self._used.add(entry.pos)
        data = self.value(entry, Any)  # its shape is checked below
        return data.get("refused") if type(data) is dict else None

    def skip(self, prefix: str) -> None:
        """Records under `prefix` are not requested by design (a cut-short block or scope)."""
        self._skipped.append(prefix)

    def unused(self) -> Record | None:
        """The first recorded entry (in journal order) that nothing asked for, if any."""
        if len(self._used) == len(self.recorded):
            return None
        skipped = tuple(self._skipped)
        for entry in self.recorded.values():
            if entry.pos not in self._used and not entry.pos.startswith(skipped):
                return entry
        return None

    def check_complete(self) -> None:
        """`ReplayDivergence` naming the first recorded entry the replay never asked for."""
        entry = self.unused()
        if entry is not None:
            raise ReplayDivergence(
                entry.pos,
                entry.kind,
                "recorded, never requested: the journal holds this "
                + ("decision" if entry.kind in DECISIONS else "effect")
                + " but the program did not ask for it (it dropped or skipped work the "
                "recorded run did)",
                entry.req,
            )
