"""The entry points: `run` and `run_sync`.

`run` validates its arguments, opens the run's effects (reading the
journal in a worker thread), runs the program - on the trampoline alone
when it never awaits, else under the async driver in a task group that
also holds shared steps - and reports.

>>> from mce import par, pure
>>> run_sync(par(pure(1), pure(2)).map(sum), None)
Ok(value=3, state=None)
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio

from mce._runtime.asking import Answers, Unanswered, position_order
from mce._runtime.context import RunContext, Seq
from mce._runtime.driver import resume
from mce._runtime.effects_port import check_run_options, open_effects
from mce._runtime.nodes import ERR, OK
from mce._runtime.replay import Mode
from mce._runtime.runners import ungroup
from mce._runtime.trampoline import advance
from mce.budget import Tracker
from mce.effects import Handler, HandlerTable
from mce.events import Tracer
from mce.executors import Executor
from mce.journal import Journal, ReplayDivergence, open_journal
from mce.merge import merge as default_merge
from mce.outcome import Err, Ok, Waiting
from mce.step import Step

__all__ = ["run", "run_sync"]

_log = logging.getLogger("mce")

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")


def _backend() -> str:
    """The async library running us: 'asyncio', 'trio', or another one anyio knows."""
    # Running on asyncio means asyncio is imported: looked up, not imported,
    # so `import mce` does not pay for asyncio.
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return "asyncio"
    try:
        import trio
    except ImportError:  # pragma: no cover - trio is only needed to run on trio
        return "other"
    try:
        trio.lowlevel.current_task()
    except RuntimeError:  # pragma: no cover - some other anyio backend
        return "other"
    return "trio"


async def run(
    step: Step[_S, _E, _A],
    state: _S,
    *,
    handlers: Mapping[str, Handler] | None = None,
    journal: Journal | str | os.PathLike[str] | None = None,
    mode: Mode = "live",
    seed: int | None = None,
    merge: Callable[[_S, _S, _S], _S] | None = None,
    trace: Tracer | None = None,
    executor: Executor | None = None,
    retry_failed: bool = False,
    answers: Mapping[str, Any] | None = None,
) -> Ok[_S, _A] | Err[_S, _E] | Waiting[_S]:
    """Run a workflow from `state`; the result is `Ok(value, state)` or `Err(error, state)`.

    A run that reaches a question nobody has answered (`mce.questions.ask`)
    ends `Waiting(questions, state)` instead, after journaling everything
    done so far; `answers` (a question's id or position to its answer, with
    `mode="resume"` on the same journal) continues it from exactly there.

    Errors on the error channel come back as `Err`. Bugs - exceptions raised
    by callbacks or lifted code, `StateConflict` - propagate as themselves,
    with a note naming where in the program they were raised.

    * `handlers` maps effect kinds to handlers (overriding an effect's own).
    * `journal` (a path or a `Journal`) records every effect; `mode` is
      `"live"` (run and record), `"replay"` (serve every effect from the
      journal, call no handler) or `"resume"` (serve what the journal has,
      run the rest live and append). A program and a journal that do not
      belong together raise `ReplayDivergence` - including, after a replay,
      recorded work the program never asked for. A live or resumed run
      locks its journal file (`JournalInUse` for a second writer).
    * `retry_failed` (with `mode="resume"`) runs effects recorded as failed
      again instead of serving their errors.
    * `seed` (an int) fixes `random()` and `uuid()` (by default a fresh seed
      per run, kept in the journal).
    * `merge` replaces the default three-way merge of parallel branches' states.
    * `trace` is called with a `TraceEvent` when effects and named steps start and end.
    * `executor` decides where handlers run (`mce.executors`; default:
      `LocalExecutor()` - async handlers on the event loop, sync ones in
      worker threads; `LocalExecutor(threads=n)` bounds the threads).
    * `answers` answers questions (live or resumed runs; a replay reads
      them from the journal).

    >>> import anyio
    >>> from mce import pure
    >>> anyio.run(run, pure("hi"), 0)
    Ok(value='hi', state=0)
    """
    if not isinstance(step, Step):
        raise TypeError(f"run() needs a Step, got {step!r}")
    table = HandlerTable(handlers or {})
    for kind, handler in table.items():
        if not isinstance(kind, str) or not callable(handler):
            raise TypeError(
                f"run(handlers=...) maps effect kinds to callables; got {kind!r}: {handler!r}"
            )
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"run(executor=...) needs an executor (mce.executors), got {executor!r}")
    check_run_options(mode, journal, seed, retry_failed)  # before the journal is touched
    asked = _answers(answers, mode)
    return await _run(
        step, state, table, journal, mode, seed, merge, trace, executor, None, retry_failed, asked
    )


async def run_under(
    step: Step[Any, Any, Any],
    *,
    handlers: dict[str, Handler],
    journal: Journal,
    trace: Tracer | None,
    budget: Tracker | None,
) -> Ok[Any, Any] | Err[Any, Any] | Waiting[Any]:
    """A sub-run (`mce._runtime.subrun`): `run` from None, every effect charged to `budget`."""
    return await _run(
        step, None, handlers, journal, "live", None, None, trace, None, budget, False, None
    )


async def _run(
    step: Step[Any, Any, Any],
    state: Any,
    table: dict[str, Handler],
    journal: Journal | str | os.PathLike[str] | None,
    mode: Mode,
    seed: int | None,
    merge: Callable[[Any, Any, Any], Any] | None,
    trace: Tracer | None,
    executor: Executor | None,
    budget: Tracker | None,
    retry_failed: bool,
    asked: Answers | None,
) -> Ok[Any, Any] | Err[Any, Any] | Waiting[Any]:
    effects = await open_effects(
        mode,
        open_journal(journal) if journal is not None else None,
        table,
        seed,
        executor,
        retry_failed=retry_failed,
    )
    if asked is not None:
        effects.answers = asked
    started = time.perf_counter()
    try:
        ctx = RunContext(merge or default_merge, _backend(), effects, trace)
        try:
            outcome = await _execute(step, state, ctx, budget)
            await effects.finish()
            effects.check_complete()
        except ReplayDivergence as exc:
            _log.warning("%s", exc)
            raise
        report = effects.report(time.perf_counter() - started)
        if mode == "resume":
            _log.info(
                "resumed run finished: %d effects served from the journal, %d run live",
                report.replayed,
                report.live_calls,
            )
        if type(outcome) is Ok:
            if mode == "live" and isinstance(table, HandlerTable):  # a sub-run's is the parent's
                table.report_unused()
            return Ok(outcome.value, outcome.state, report)
        if type(outcome) is Waiting:
            return _waiting(effects.answers, outcome.state, report)
        return Err(outcome.error, outcome.state, report)
    finally:
        effects.close()


def _answers(answers: Mapping[str, Any] | None, mode: Mode) -> Answers | None:
    if answers is None:
        return None
    if mode == "replay":
        raise ValueError(
            "run(mode='replay') takes no answers=: a replay reads them from the journal"
        )
    if not isinstance(answers, Mapping) or not all(isinstance(k, str) for k in answers):
        raise TypeError(
            f"run(answers=...) maps question ids or positions (strings) to answers, got {answers!r}"
        )
    return Answers(answers)


def _waiting(answers: Answers, state: Any, report: Any) -> Waiting[Any]:
    """The outcome of a run that stopped at questions: all of them, in program order."""
    return Waiting(
        tuple(sorted(answers.open, key=lambda q: position_order(q.position))),
        state,
        tuple(answers.rejected),
        answers.unused(),
        report,
    )


async def _execute(
    step: Any, state: Any, ctx: RunContext, budget: Tracker | None
) -> Ok[Any, Any] | Err[Any, Any] | Waiting[Any]:
    """Run the program at the top level; bugs propagate as themselves."""
    root = Seq(None, None, None, "")
    root.budget = budget
    stack: list[Any] = []
    # Whatever needs no awaiting runs right here; a program that never
    # awaits finishes without an event-loop round trip or a task group.
    code, payload, state = advance(step, stack, state, ctx, root)
    if code == OK:
        return Ok(payload, state)
    if code == ERR:
        return Err(payload, state)
    outcome: Ok[Any, Any] | Err[Any, Any] | Waiting[Any] | None = None
    bug: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            ctx.tg = tg  # where shared steps run
            try:
                outcome = await resume(code, payload, stack, state, ctx, root)
            except anyio.get_cancelled_exc_class():
                raise  # the run itself is cancelled: the task group handles it
            except Unanswered as stop:  # the questions are in ctx.effects.answers
                outcome = Waiting((), stop.state)
            except BaseException as exc:
                # A bug, KeyboardInterrupt, SystemExit...: raised as itself below,
                # never wrapped in a (Base)ExceptionGroup by the task group.
                bug = exc
            # Shared steps nobody waits for any more (their consumers failed) stop here.
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Only what is delivered to this task while it waits for the group
        # (trio's Ctrl-C) or a background task's failure gets here: as itself.
        raise ungroup(group) from None
    if bug is not None:
        raise bug
    assert outcome is not None
    return outcome


def _running_event_loop() -> str | None:
    """The async library running in this thread, if any (a notebook runs asyncio)."""
    asyncio = sys.modules.get("asyncio")  # only a program that imported asyncio can be running it
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return "asyncio"
    trio = sys.modules.get("trio")  # only a program that imported trio can be running it
    if trio is not None:
        try:
            trio.lowlevel.current_root_task()
        except RuntimeError:
            return None
        return "trio"
    return None


def run_sync(
    step: Step[_S, _E, _A],
    state: _S,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    handlers: Mapping[str, Handler] | None = None,
    journal: Journal | str | os.PathLike[str] | None = None,
    mode: Mode = "live",
    seed: int | None = None,
    merge: Callable[[_S, _S, _S], _S] | None = None,
    trace: Tracer | None = None,
    executor: Executor | None = None,
    retry_failed: bool = False,
    answers: Mapping[str, Any] | None = None,
) -> Ok[_S, _A] | Err[_S, _E] | Waiting[_S]:
    """Run a workflow to completion from synchronous code (`anyio.run`); see `run`.

    `backend` picks the async library (asyncio or trio); `executor` picks
    where effect handlers run - they are different things.

    >>> from mce import gets
    >>> run_sync(gets(lambda s: s * 2), 21, backend="trio")
    Ok(value=42, state=21)
    """
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"run_sync(backend=...) must be 'asyncio' or 'trio', got {backend!r}")
    running = _running_event_loop()
    if running is not None:
        raise RuntimeError(
            f"run_sync cannot start an event loop inside a running {running} event loop "
            "(a notebook, or an async function): use `await run(...)` with the same arguments"
        )
    go = functools.partial(
        run,
        step,
        state,
        handlers=handlers,
        journal=journal,
        mode=mode,
        seed=seed,
        merge=merge,
        trace=trace,
        executor=executor,
        retry_failed=retry_failed,
        answers=answers,
    )
    return anyio.run(go, backend=backend)
