"""The interface the interpreter uses for effects: serve, run live, record, report.

One `Effects` exists per run, made by `open_effects`, which reads the
journal in a worker thread (a file journal never blocks the event loop, not
even to truncate a torn line before a resume). In `live` mode it calls
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

import logging
import random as _random
import secrets
import time
import uuid as _uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from mce._runtime.replay import MODES, Mode, ReplayLookup
from mce._runtime.report import RunStats
from mce._runtime.writer import JournalWriter
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
from mce.journal import HEADER_KEY, VERSION, Journal, JournalInUse
from mce.outcome import RunReport

_log = logging.getLogger("mce")


async def open_effects(
    mode: Mode,
    journal: Journal | None,
    handlers: dict[str, Handler],
    seed: int | None,
    executor: Executor | None = None,
) -> Effects:
    """The effects of a new run, with `journal` loaded (in a worker thread if it does I/O)."""
    if mode not in MODES:
        raise ValueError(f"run(mode=...) must be one of {MODES}, got {mode!r}")
    if mode != "live" and journal is None:
        raise ValueError(f"run(mode={mode!r}) needs a journal= to read from")
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    if journal is not None:
        read = journal.prepare_resume if mode == "resume" else journal.load
        if journal.needs_thread:
            header, entries = await anyio.to_thread.run_sync(read)
        else:
            header, entries = read()
        if mode == "resume":
            _log.info(
                "resuming journal %s: %d recorded effects are served from it, the rest runs live",
                journal.name,
                len(entries),
            )
        if mode == "live" and (header is not None or entries):
            raise JournalInUse(
                f"journal {journal.name} already holds a run; replay it "
                "(mode='replay'), continue it (mode='resume'), or record to a new journal"
            )
    return Effects(mode, journal, header, entries, handlers, seed, executor)


class Effects:
    """Serves, runs and records the effects of one run (see the module docstring).

    The interpreter uses only the methods and the `serving`/`recording` flags.
    """

    __slots__ = (
        "_executor",
        "_handlers",
        "_journal",
        "_replay",
        "_stats",
        "_writer",
        "account",
        "decision",
        "lookup",
        "mode",
        "recording",
        "run_id",
        "seed",
        "serving",
    )

    def __init__(
        self,
        mode: Mode,
        journal: Journal | None,
        header: dict[str, Any] | None,
        entries: list[dict[str, Any]],
        handlers: dict[str, Handler],
        seed: int | None,
        executor: Executor | None,
    ) -> None:
        self.mode = mode
        self.serving = mode != "live"
        self.recording = journal is not None and mode != "replay"
        self._journal = journal
        self._handlers = handlers
        self._executor: Executor = executor if executor is not None else LOCAL
        self._replay = ReplayLookup(mode, entries if self.serving else ())
        self._stats = RunStats()
        self._writer = JournalWriter(journal) if journal is not None else None
        # Bound once: the trampoline calls these per served effect.
        self.lookup = self._replay.lookup
        self.decision = self._replay.decision
        self.account = self._stats.account
        if header is not None:
            self.run_id: str = str(header.get("run", ""))
            recorded_seed = header.get("seed")
            self.seed: int = int(recorded_seed) if recorded_seed is not None else 0
        else:
            self.run_id = _uuid.uuid4().hex
            self.seed = seed if seed is not None else secrets.randbits(64)
            if self.recording and self._writer is not None:
                self._writer.append(
                    {HEADER_KEY: VERSION, "run": self.run_id, "seed": self.seed, "t0": time.time()}
                )

    def run_in_background(self, spawn: Callable[..., Any]) -> None:
        """Let deferred journal writes run as background tasks started by `spawn`."""
        if self._writer is not None:
            self._writer.run_in_background(spawn)

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
            if handler is not None:
                result = await self._executor.call(handler, reveal(request), node.remote)
            else:
                result = await self._builtin(kind, request, position)
            ok, value = True, result
        except EffectFailed as failed:
            ok, value = False, scrub_error(failed.error, secret_values(request))
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
            if not (defer and self._writer.defer(record)):
                await self._writer.commit(record)
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
            await self._writer.commit(
                {
                    "run": self.run_id,
                    "pos": position,
                    "kind": kind,
                    "fp": "",
                    "ok": encode(data),
                    "t0": now,
                    "t1": now,
                }
            )

    async def durable(self) -> None:
        """Return once every record so far is durable (raises `JournalWriteError` if not)."""
        if self._writer is not None:
            await self._writer.durable()

    async def finish(self) -> None:
        """Write what is still buffered (a header when the run made no effect)."""
        if self.recording and self._writer is not None:
            await self._writer.finish()

    def report(self, wall_seconds: float) -> RunReport:
        """The run's totals."""
        return self._stats.report(wall_seconds, served=self._replay.served)

    def close(self) -> None:
        """Release the journal's file, if it holds one."""
        if self._journal is not None:
            self._journal.close()
