"""The per-run effect runtime: serve effects from the journal or run them live, and record.

One `Recorder` exists per `run`. In `live` mode it calls handlers and, with a
journal, records every completed effect; in `replay` mode it serves every
effect from the journal and never calls a handler; in `resume` mode it
serves what the journal has and runs the rest live, appending.

Records of completed effects are written in batches, in a worker thread,
and every record is durable (flushed and fsynced) before its effect's value
is used. Usually the effect waits for its batch; the last effect of a branch
of an unbounded parallel block does not - the block waits once, for all of
them, in `durable()`. Effects that complete together share one fsync.

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

import contextlib
import random as _random
import secrets
import time
import uuid as _uuid
from typing import Any, Literal

import anyio
import anyio.lowlevel
import anyio.to_thread

from mce.codec import decode, encode
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
    token_usage,
)
from mce.executors import LOCAL, Executor
from mce.journal import HEADER_KEY, VERSION, Journal, JournalInUse, ReplayDivergence
from mce.outcome import RunReport

Mode = Literal["live", "replay", "resume"]

PAR_DECISION = "mce.par"  # which branch of a fail-fast block failed first
TIMEOUT_DECISION = "mce.timeout"  # whether a timeout fired
BUDGET_DECISION = "mce.budget"  # whether a budget ran out of time
DECISIONS = frozenset({PAR_DECISION, TIMEOUT_DECISION, BUDGET_DECISION})
"""Journal entries that record a scheduling decision rather than an effect."""
MODES = ("live", "replay", "resume")


class _Batch:
    """Records written together; their effects wait until the write is durable."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: BaseException | None = None

    async def wait(self) -> None:
        await self.done.wait()
        if self.error is not None:
            raise self.error


class Recorder:
    """Serves and records the effects of one run (see the module docstring)."""

    def __init__(
        self,
        mode: Mode,
        journal: Journal | None,
        handlers: dict[str, Handler],
        seed: int | None,
        executor: Executor | None = None,
    ) -> None:
        self.executor: Executor = executor if executor is not None else LOCAL
        if mode not in MODES:
            raise ValueError(f"run(mode=...) must be one of {MODES}, got {mode!r}")
        if mode != "live" and journal is None:
            raise ValueError(f"run(mode={mode!r}) needs a journal= to read from")
        self.mode = mode
        self.journal = journal
        self.handlers = handlers
        self.serving = mode != "live"
        self.recording = journal is not None and mode != "replay"
        self.recorded: dict[str, dict[str, Any]] = {}
        self.live_calls = 0
        self.served = 0
        self.effect_seconds = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._buffer: list[dict[str, Any]] = []  # records not yet written
        self._batch: _Batch | None = None  # created lazily, inside the event loop
        self._flushing = False
        self._writing: _Batch | None = None  # the batch being written now
        self.spawn: Any = None  # starts a background task in the run (set by run)
        header: dict[str, Any] | None = None
        if journal is not None:
            if mode == "resume":
                header, entries = journal.prepare_resume()
            else:
                header, entries = journal.load()
            if mode == "live" and (header is not None or entries):
                raise JournalInUse(
                    f"journal {journal.name} already holds a run; replay it "
                    "(mode='replay'), continue it (mode='resume'), or record to a new journal"
                )
            if self.serving:
                for entry in entries:
                    self.recorded.setdefault(entry["pos"], entry)
        if header is not None:
            self.run_id: str = str(header.get("run", ""))
            recorded_seed = header.get("seed")
            self.seed: int = int(recorded_seed) if recorded_seed is not None else 0
        else:
            self.run_id = _uuid.uuid4().hex
            self.seed = seed if seed is not None else secrets.randbits(64)
            if self.recording:
                assert journal is not None
                self._buffer.append(
                    {HEADER_KEY: VERSION, "run": self.run_id, "seed": self.seed, "t0": time.time()}
                )

    # ------------------------------------------------------------ serving

    def lookup(self, position: str, kind: str, request: Any, fp: str) -> dict[str, Any] | None:
        """The recorded entry for this effect, checked against the request; None to run live."""
        entry = self.recorded.get(position)
        if entry is None:
            if self.mode == "replay":
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
        """A recorded scheduling decision (which branch failed, whether a timeout fired)."""
        entry = self.recorded.get(position)
        if entry is None:
            return None
        if entry["kind"] != kind:
            raise ReplayDivergence(
                position, kind, f"the journal recorded a {entry['kind']!r} here, not {kind!r}"
            )
        return decode(entry["ok"])

    # ------------------------------------------------------------ running live

    async def perform(
        self, node: Any, position: str, branch: str, *, defer: bool = False
    ) -> tuple[bool, Any]:
        """Run an effect's handler; record it; (ok, value or error).

        With `defer`, the record is written in the background and this does
        not wait for it: the caller promises that nothing uses the value
        before `durable()` returns (the last step of an unbounded parallel
        branch, whose value only the block's outcome uses).
        """
        kind = node.kind
        request = node.request
        handler = self.handlers.get(kind) or node.handler
        t0 = time.time()
        self.live_calls += 1
        try:
            if handler is not None:
                result = await self.executor.call(handler, reveal(request), node.remote)
            else:
                result = await self._builtin(kind, request, position)
            ok, value = True, result
        except EffectFailed as failed:
            ok, value = False, failed.error
        except MissingHandler:
            raise
        except Exception as exc:
            ok, value = False, EffectError(kind, position, str(exc), type(exc).__qualname__)
        t1 = time.time()
        self.effect_seconds += t1 - t0
        if ok:
            self.account(value)
        if self.recording:
            record = {
                "run": self.run_id,
                "pos": position,
                "kind": kind,
                "fp": node.fp,
                "req": encode(redact(request), "request"),
                "t0": t0,
                "t1": t1,
                "branch": branch,
            }
            try:
                record["ok" if ok else "err"] = encode(value, f"effect {kind!r} at {position}")
            except TypeError as exc:
                exc.add_note("effect values must be journalable to record or replay a run")
                raise
            if (
                defer
                and self.spawn is not None
                and self.journal is not None
                and self.journal.needs_thread
            ):
                self._append(record)
                if not self._flushing:
                    self._flushing = True  # claimed now, so one flush task at a time
                    self.spawn(self._flush_in_background)
            else:
                await self.commit(record)
        return ok, value

    def account(self, value: Any) -> None:
        """Add a value's token usage (see `token_usage`) to the totals."""
        used = token_usage(value)
        if used is not None:
            self.prompt_tokens += used[0]
            self.completion_tokens += used[1]

    def report(self, wall_seconds: float) -> RunReport:
        return RunReport(
            effects=self.live_calls + self.served,
            live_calls=self.live_calls,
            replayed=self.served,
            wall_seconds=wall_seconds,
            effect_seconds=self.effect_seconds,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )

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
        if self.recording:
            await self.commit(
                {
                    "run": self.run_id,
                    "pos": position,
                    "kind": kind,
                    "fp": "",
                    "ok": encode(data),
                    "t0": time.time(),
                    "t1": time.time(),
                }
            )

    def _append(self, record: dict[str, Any]) -> None:
        self._buffer.append(record)
        if self._batch is None:  # an anyio Event needs the running event loop
            self._batch = _Batch()

    async def commit(self, record: dict[str, Any]) -> None:
        """Append `record`; return once it is durable. Concurrent commits share a write."""
        journal = self.journal
        assert journal is not None
        self._append(record)
        if not journal.needs_thread:
            records, self._buffer = self._buffer, []
            journal.write(records)
            return
        await self._flush_or_wait()

    async def durable(self) -> None:
        """Return once every record appended so far is written and fsynced."""
        if self._buffer:
            await self._flush_or_wait()
        elif self._writing is not None:
            await self._writing.wait()

    async def _flush_or_wait(self) -> None:
        if self._batch is None:
            self._batch = _Batch()
        batch = self._batch
        if self._flushing:
            await batch.wait()
            return
        self._flushing = True
        await self._flush()

    async def _flush_in_background(self) -> None:
        # A failure is kept on the batch: whoever waits for the batch raises it.
        with contextlib.suppress(Exception):
            await self._flush()

    async def _flush(self) -> None:
        """Write the buffer batch by batch (the caller has set `_flushing`)."""
        journal = self.journal
        assert journal is not None
        try:
            # Shielded: the write must finish even if the effect that started
            # it is cancelled meanwhile - other effects' records wait on it.
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # effects completing now join this batch
                while self._buffer:
                    records, self._buffer = self._buffer, []
                    batch, self._batch = self._batch, _Batch()
                    assert batch is not None
                    self._writing = batch
                    try:
                        await anyio.to_thread.run_sync(journal.write, records)
                    except BaseException as exc:
                        batch.error = exc
                        raise
                    finally:
                        batch.done.set()
                        self._writing = None
        finally:
            self._flushing = False

    async def finish(self) -> None:
        """Write what is still buffered (a header when the run made no effect)."""
        journal = self.journal
        if not self.recording or journal is None:
            return
        if journal.needs_thread:
            await self.durable()
        elif self._buffer:
            records, self._buffer = self._buffer, []
            journal.write(records)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
