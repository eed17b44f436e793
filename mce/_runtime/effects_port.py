"""The interface the interpreter uses for effects: serve, run live, record, report.

One `Effects` exists per run, made by `open_effects`, which reads the
journal in the thread that will write it (a file journal never blocks the
event loop, not even to truncate a torn line before a resume). In `live` mode it calls
handlers and, with a journal, records every completed effect; in `replay`
mode it serves every effect from the journal (`mce._runtime.replay`) and
never calls a handler; in `resume` mode it serves what the journal has and
runs the rest live, appending. Records go through the journal writer
(`mce._runtime.writer`); totals through `mce._runtime.report`.

>>> import anyio
>>> from mce import effect, run
>>> from mce.journal import Journal
>>> j = Journal()
>>> prog = effect("add", [1, 2])
>>> anyio.run(lambda: run(prog, None, handlers={"add": sum}, journal=j))
Ok(value=3, state=None)
>>> anyio.run(lambda: run(prog, None, journal=j, mode="replay"))  # no handler needed
Ok(value=3, state=None)
"""

from __future__ import annotations

import gc
import logging
import random as _random
import secrets
import threading
import time
import uuid as _uuid
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import anyio

from mce._runtime.asking import Answers, Unanswered
from mce._runtime.replay import (
    BUDGET_DECISION,
    DECISIONS,
    MODES,
    REFUSED,
    Mode,
    ReplayLookup,
)
from mce._runtime.replay import (
    exceeded as _exceeded,
)
from mce._runtime.report import RunStats
from mce._runtime.writer import JournalWriter
from mce.budget import BudgetExceeded, Tracker, recorded_charge
from mce.codec import encode
from mce.effects import (
    NOW,
    RANDOM,
    SLEEP,
    UUID,
    EffectError,
    EffectFailed,
    Handler,
    MissingHandler,
    redact,
    reveal,
    scrub,
    scrub_error,
    secret_values,
)
from mce.executors import LOCAL, Executor
from mce.journal import Header, Journal, Record, check_seed
from mce.outcome import RunReport
from mce.questions import ASK

_log = logging.getLogger("mce")


def check_run_options(
    mode: object, journal: object, seed: object, retry_failed: object
) -> int | None:
    """Check `run`'s journal options at call time; the seed (None: a fresh one per run)."""
    if mode not in MODES:
        raise ValueError(f"run(mode=...) must be one of {MODES}, got {mode!r}")
    if mode != "live" and journal is None:
        raise ValueError(f"run(mode={mode!r}) needs a journal= to read from")
    if type(retry_failed) is not bool:
        raise TypeError(f"run(retry_failed=...) must be True or False, got {retry_failed!r}")
    if retry_failed and mode != "resume":
        raise ValueError(
            f"run(retry_failed=True) re-runs failed effects of a resumed run; it needs "
            f"mode='resume', not {mode!r}"
        )
    return check_seed(seed)


async def open_effects(
    mode: Mode,
    journal: Journal | None,
    handlers: dict[str, Handler],
    seed: int | None,
    executor: Executor | None = None,
    *,
    retry_failed: bool = False,
) -> Effects:
    """The effects of a new run, with `journal` opened (in its writer's thread if it does I/O).

    A live or resumed run takes the journal's lock first: a journal in use
    by another run is `JournalInUse` before anything runs.
    """
    seed = check_run_options(mode, journal, seed, retry_failed)
    header: Header | None = None
    entries: tuple[Record, ...] = ()
    writer = None
    if journal is not None:
        writer = JournalWriter(journal)
        if journal.needs_thread:  # read in the thread that will write it
            try:
                header, entries = await writer.call(_without_gc_pauses, journal.begin, mode)
            except BaseException:
                writer.close()
                raise
        else:
            header, entries = journal.begin(mode)
        if mode == "resume":
            _log.info(
                "resuming journal %s: %d recorded effects are served from it, the rest runs live",
                journal.name,
                len(entries),
            )
    try:
        return Effects(mode, writer, header, entries, handlers, seed, executor, retry_failed)
    except BaseException:
        if writer is not None:
            writer.close()
        if journal is not None:
            journal.close()
        raise


_gc_lock = threading.Lock()
_gc_paused = [0, False]  # loads under way; whether the first one turned the collector off


def _without_gc_pauses(begin: Callable[[Mode], Any], mode: Mode) -> Any:
    """`begin(mode)` with Python's cyclic garbage collector paused while it loads.

    Loading a journal builds objects with no reference cycles - a record per
    line - by the hundred thousand, and every few tens of thousands the
    collector would walk every object of the process again (the program's
    nodes included): three full collections, a quarter of replaying 100,000
    effects (`docs/benchmarks.md`). The collector resumes when the last
    load under way ends (unless it was off already when the first began):
    cyclic garbage that other tasks make meanwhile waits that long for it.

    >>> import gc
    >>> _without_gc_pauses(lambda mode: gc.isenabled(), "replay"), gc.isenabled()
    (False, True)
    """
    with _gc_lock:
        if _gc_paused[0] == 0:
            _gc_paused[1] = gc.isenabled()
            gc.disable()
        _gc_paused[0] += 1
    try:
        return begin(mode)
    finally:
        with _gc_lock:
            _gc_paused[0] -= 1
            if _gc_paused[0] == 0 and _gc_paused[1]:
                gc.enable()


class Effects:
    """Serves, runs and records the effects of one run (see the module docstring).

    The interpreter uses only the methods and the `serving`/`recording` flags.
    """

    __slots__ = (
        "_executor",
        "_handlers",
        "_journal",
        "_positions",
        "_replay",
        "_stats",
        "_writer",
        "account",
        "answers",
        "decision",
        "lookup",
        "mode",
        "recording",
        "retrying",
        "run_id",
        "seed",
        "serving",
        "skip",
        "value",
    )

    def __init__(
        self,
        mode: Mode,
        writer: JournalWriter | None,
        header: Header | None,
        entries: tuple[Record, ...],
        handlers: dict[str, Handler],
        seed: int | None,
        executor: Executor | None,
        retry_failed: bool = False,
    ) -> None:
        journal = writer.journal if writer is not None else None
        self.mode = mode
        self.serving = mode != "live"
        self.recording = journal is not None and mode != "replay"
        self.retrying = retry_failed and mode == "resume"  # failures recorded run again
        self._journal = journal
        self._handlers = handlers
        self._executor: Executor = executor if executor is not None else LOCAL
        self._replay = ReplayLookup(
            mode,
            entries if self.serving else (),
            retry_failed=retry_failed,
            journal=journal.name if journal is not None else "<memory>",
        )
        self._stats = RunStats()
        self._positions: list[str] | None = None  # recorded positions, sorted: for `precharge`
        self._writer = writer
        self.answers = Answers({})  # questions: the answers given, those still open
        # Bound once: the trampoline calls these per served effect.
        self.lookup = self._replay.lookup
        self.decision = self._replay.decision
        self.value = self._replay.value
        self.skip = self._replay.skip
        self.account = self._stats.account
        if header is not None:
            self.run_id: str = header.run
            self.seed: int = header.seed
        else:
            self.run_id = _uuid.uuid4().hex
            self.seed = seed if seed is not None else secrets.randbits(64)
            if self.recording and self._writer is not None:
                self._writer.append(Header(self.run_id, self.seed, time.time()))

    async def perform(
        self, node: Any, position: str, branch: str, *, defer: bool = False
    ) -> tuple[bool, Any]:
        """Run an effect's handler; record it; (ok, value or error).

        With `defer`, the record may be written in the background and this
        does not wait for it: the caller promises that nothing uses the
        value before `durable()` returns (the last step of an unbounded
        parallel branch, whose value only the block's outcome uses).
        """
        kind = node.kind
        request = node.request
        handler = self._handlers.get(kind) or node.handler
        t0 = time.time()
        self._stats.live_calls += 1
        try:
            if kind == ASK:  # a question: its answer is given to the run, not by a handler
                result = self.answers.take(node, position)
            elif handler is not None:
                result = await self._executor.call(handler, reveal(request), node.remote)
            else:
                result = await self._builtin(kind, request, position)
            ok, value = True, result
        except EffectFailed as failed:
            ok, value = False, scrub_error(failed.error, secret_values(request))
        except Unanswered:
            self._stats.live_calls -= 1  # nobody was asked anything yet
            raise
        except MissingHandler:
            raise
        except Exception as exc:
            message = scrub(str(exc), secret_values(request))  # never journal a revealed secret
            ok, value = False, EffectError(kind, position, message, type(exc).__qualname__)
        t1 = time.time()
        self._stats.effect_seconds += t1 - t0
        if ok:
            self._stats.account(value)
        if self.recording:
            assert self._writer is not None
            try:
                t = type(value)
                # A plain value is its own encoding: no need to name where it came from.
                encoded = (
                    value
                    if t is str or t is int or t is bool or value is None
                    else encode(value, f"effect {kind!r} at {position}")
                )
            except TypeError as exc:
                exc.add_note("effect values must be journalable to record or replay a run")
                raise
            t = type(request)
            # A plain request has no secret to redact and is its own encoding.
            req = (
                request
                if t is str or t is int or t is bool or request is None
                else encode(redact(request), "request")
            )
            writer = self._writer
            if defer and writer.threaded:
                writer.defer_effect(position, kind, node.fp, ok, encoded, req, t0, t1, branch)
            else:
                record = Record(position, kind, node.fp, ok, encoded, req, t0, t1, branch)
                await writer.commit(record, alone=branch == "")
        return ok, value

    async def _builtin(self, kind: str, request: Any, position: str) -> Any:
        if kind == NOW:
            return time.time()
        if kind == SLEEP:
            await anyio.sleep(request)
            return None
        if kind == RANDOM:
            return _random.Random(f"{self.seed}:{position}").random()
        if kind == UUID:
            bits = _random.Random(f"{self.seed}:{position}").getrandbits(128)
            return str(_uuid.UUID(int=bits, version=4))
        raise MissingHandler(kind, position)

    async def record_decision(self, position: str, kind: str, data: Any) -> None:
        """Journal a scheduling decision (which branch failed first, whether a timer fired)."""
        if self.recording:
            assert self._writer is not None
            now = time.time()
            record = Record(position, kind, "", True, encode(data), None, now, now, None)
            await self._writer.commit(record)

    async def durable(self) -> None:
        """Return once every record so far is durable (raises `JournalWriteError` if not)."""
        if self._writer is not None:
            await self._writer.durable()

    async def finish(self) -> None:
        """Write what is still buffered (a header when the run made no effect)."""
        if self.recording and self._writer is not None:
            await self._writer.durable()

    def precharge(self, tracker: Tracker, prefix: str) -> BudgetExceeded | None:
        """Charge a budget scope starting at `prefix` with what the journal recorded under it.

        Every recorded effect under the scope counts as one call, with the
        tokens its value reports - except a failure that `retry_failed`
        will run again (it is charged when it runs). The limit they already
        exceed, if any (`Tracker.precharge`).
        """
        recorded = self._replay.recorded
        positions = self._positions
        if positions is None:
            positions = self._positions = sorted(recorded)
        # Every position that starts with `prefix` (which ends in "/"), in
        # sorted order: from `prefix` up to the same text ending in "0",
        # the character after "/".
        lo = bisect_left(positions, prefix)
        hi = bisect_left(positions, prefix[:-1] + "0", lo)
        retry = self._replay.retry_failed
        calls = tokens = 0
        for i in range(lo, hi):
            entry = recorded[positions[i]]
            if entry.kind in DECISIONS:
                continue
            if not entry.ok:
                if not retry:
                    calls += 1
                continue
            sub, used = recorded_charge(entry.value)
            calls += 1 + sub
            tokens += used
        return tracker.precharge(prefix, calls, tokens)

    def charge_call(self, tracker: Tracker, position: str) -> BudgetExceeded | None:
        """Charge a budget for the effect at `position`; the exceeded budget if it may not run.

        Which effect a budget refuses under concurrency depends on timing,
        so a refusal is journaled (at `<position>/budget`) and served back:
        a replayed or resumed run refuses the effects the recorded run
        refused, and never one that ran. An effect served from the journal
        was counted when its budget scope started (`precharge`).
        """
        if self.serving:
            refused = self._replay.refusal(position)
            if refused is not None:
                return tracker.refuse(_exceeded(refused, position))
            if self._replay.ran(position):
                tracker.charge_served_call(position)
                return None
            if self.mode == "replay":
                return None  # the lookup names the divergence
        exceeded = tracker.charge_call()
        if exceeded is not None:
            self._record_refusal(position, exceeded)
        return exceeded

    def charge_served(self, tracker: Tracker, position: str, value: Any) -> BudgetExceeded | None:
        """Charge a budget for a served value's tokens, refusing only as the recorded run did."""
        refused = self._replay.refusal(position)
        if refused is not None:
            return tracker.refuse(_exceeded(refused, position))
        entry = self._replay.recorded[position]
        tracker.charge_served_value(value, position, recorded_charge(entry.value))
        return None

    def charge_value(self, tracker: Tracker, position: str, value: Any) -> BudgetExceeded | None:
        """Charge a budget for a live value's tokens; a refusal is journaled."""
        exceeded = tracker.charge_value(value)
        if exceeded is not None:
            self._record_refusal(position, exceeded)
        return exceeded

    def _record_refusal(self, position: str, exceeded: BudgetExceeded) -> None:
        # Buffered, not awaited: any later record - the block's or the budget's
        # decision, the next effect - is written after it, in the same order.
        if self.recording and self._writer is not None:
            now = time.time()
            refused = {"refused": {"resource": exceeded.resource, "limit": exceeded.limit}}
            self._writer.append(
                Record(
                    f"{position}/{REFUSED}",
                    BUDGET_DECISION,
                    "",
                    True,
                    refused,
                    None,
                    now,
                    now,
                    None,
                )
            )

    def check_complete(self) -> None:
        """After a replay: `ReplayDivergence` if the journal holds work nobody asked for."""
        if self.mode == "replay":
            self._replay.check_complete()

    def report(self, wall_seconds: float) -> RunReport:
        """The run's totals."""
        return self._stats.report(wall_seconds, served=self._replay.served)

    def close(self) -> None:
        """Release the journal's file, if it holds one."""
        if self._writer is not None:
            self._writer.close()
        if self._journal is not None:
            self._journal.close()
