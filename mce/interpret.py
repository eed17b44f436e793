"""The interpreter: runs a `Step` as a trampoline with an explicit continuation stack.

`_advance` runs everything that needs no awaiting (pure values, state, binds,
maps, error handling) in a flat loop - a chain of a million binds uses no
Python recursion. It stops at the first node that must await (a lifted
coroutine, a live effect, a parallel block with awaiting branches, a
timeout or budget, an unfinished shared step) and hands it to `_continue`,
the async driver, which awaits it and resumes the loop. Effects served from
a journal need no awaiting and are served inside the loop.

Parallel branches first run inline, in the parent, up to their first await;
only branches that really await get a task of their own, and they get it
*before* they start awaiting, so a lifted coroutine always runs wholly inside
its own task (anyio cancel scopes stay correct on every backend).

>>> from mce import par, pure, run_sync
>>> run_sync(par(pure(1), pure(2)).map(sum), None)
Ok(value=3, state=None)
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from mce import step as _n
from mce.budget import BudgetExceeded, Tracker
from mce.codec import decode
from mce.effects import EFFECT, Handler
from mce.errors import Failures, StepTimeout
from mce.executors import Executor
from mce.journal import Journal, ReplayDivergence, open_journal
from mce.merge import StateConflict
from mce.merge import merge as default_merge
from mce.outcome import Err, Ok
from mce.recorder import BUDGET_DECISION, PAR_DECISION, TIMEOUT_DECISION, Mode, Recorder
from mce.step import Step, _Fail, _Pure
from mce.trace import TraceEvent

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")

# What _advance stopped on.
_OK = 0  # payload: the value
_ERR = 1  # payload: the error
_NODE = 2  # payload: a node for the async driver (lift, started par, share)
_AWAIT = 3  # payload: (lift node, awaitable returned by a sync thunk)
_EFFECT = 4  # payload: (effect node, position) to run live
_TIMEOUT = 5  # payload: (timeout node, its index in the sequence)
_BUDGET = 6  # payload: (budgeted node, its index in the sequence)

_RUNNING_PAR = 90  # tag of a started parallel block (_Par) handed to the driver


class _Seq:
    """A sequential context: the top level, a parallel branch, a timed or shared step.

    It numbers the effects, parallel blocks and timeouts it meets in order;
    a position is the context's prefix plus that number, so positions do not
    depend on the order in which parallel branches complete. It also links
    to its parent, for the notes on bugs.
    """

    __slots__ = ("branch", "budget", "defer", "n", "parent", "parent_stack", "prefix")

    def __init__(
        self, parent: _Seq | None, parent_stack: list[Any] | None, branch: int | None, prefix: str
    ) -> None:
        self.parent = parent
        self.parent_stack = parent_stack
        self.branch = branch
        self.prefix = prefix
        self.n = 0
        self.budget: Tracker | None = parent.budget if parent is not None else None
        # A branch of an unbounded parallel block: its final effect's record
        # may be made durable by the block (one wait for all branches).
        self.defer = False


_CALLBACK_KIND = {
    _n.THEN: ".then callback",
    _n.MAP: ".map callback",
    _n.RECOVER: ".recover callback",
    _n.MAP_ERROR: ".map_error callback",
    _n.MODIFY: "modify() function",
    _n.GETS: "gets() function",
    _n.DEFER: "deferred step builder",
    _n.LIFT: "lifted callable",
    _n.PAR: "parallel block",
    EFFECT: "effect",
}

MergeFn = Callable[[Any, Any, Any], Any]


class _Cell:
    """A shared step's once-per-run result."""

    __slots__ = ("bug", "done", "outcome")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.outcome: Ok[Any, Any] | Err[Any, Any] | None = None
        self.bug: BaseException | None = None


class _Run:
    """Everything one run of a program shares."""

    __slots__ = ("backend", "effects", "merge", "share_keys", "shares", "tg", "tracer")

    def __init__(
        self,
        merge: MergeFn,
        backend: str,
        effects: Recorder,
        tracer: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        self.tracer = tracer
        self.merge = merge
        self.shares: dict[Step[Any, Any, Any], _Cell] = {}
        self.share_keys: dict[str, Step[Any, Any, Any]] = {}
        self.tg: TaskGroup | None = None
        self.backend = backend
        self.effects = effects


# ---------------------------------------------------------------- diagnostics


def _labels(stack: list[Any]) -> list[str]:
    """Labels of the `.named` frames on a continuation stack, outermost first."""
    found: list[str] = []
    skip = False
    for entry in reversed(stack):
        if skip:  # the saved state below a recover frame
            skip = False
            continue
        tag = getattr(entry, "_tag", None)
        if tag == _n.RECOVER:
            skip = True
        elif tag == _n.NAMED:
            found.append(entry.name)
    found.reverse()
    return found


def _describe_where(stack: list[Any], where: _Seq) -> str:
    parts: list[str] = []
    seq: _Seq | None = where
    while True:
        parts[:0] = [repr(lab) for lab in _labels(stack)]
        if seq is None or seq.parent_stack is None:
            break
        if seq.branch is not None:
            parts.insert(0, f"branch {seq.branch}")
        stack, seq = seq.parent_stack, seq.parent
    return " > ".join(parts) if parts else "the top level"


def _annotate(
    exc: BaseException, node: object, stack: list[Any], where: _Seq, kind: str | None = None
) -> None:
    notes = getattr(exc, "__notes__", ())
    if any(note.startswith("mce: ") for note in notes):
        return  # the innermost position is the useful one
    kind = kind or _CALLBACK_KIND.get(getattr(node, "_tag", -1), "step")
    if getattr(node, "_tag", None) == EFFECT:
        name = repr(node.kind)  # type: ignore[attr-defined]
    else:
        fn = (
            getattr(node, "f", None)
            or getattr(node, "thunk", None)
            or getattr(node, "origin", None)
        )
        name = getattr(fn, "__qualname__", None) or repr(fn)
    exc.add_note(f"mce: raised by the {kind} {name} at {_describe_where(stack, where)}")


def _not_a_step(
    node: Any, result: object, stack: list[Any], where: _Seq, kind: str | None = None
) -> TypeError:
    kind = kind or _CALLBACK_KIND.get(node._tag, "callback")
    fn = getattr(node, "f", None) or getattr(node, "thunk", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return TypeError(
        f"the {kind} {name} at {_describe_where(stack, where)} returned "
        f"{result!r} ({type(result).__name__}), not a Step; wrap plain values in pure(...)"
    )


def _trace_step(
    tracer: Callable[[TraceEvent], None], event: str, name: str, where: _Seq, ok: bool | None
) -> None:
    tracer(TraceEvent(event, time.time(), where.prefix, name, where.prefix[:-1], ok))


def _trace_served(tracer: Callable[[TraceEvent], None], entry: Any, kind: str, branch: str) -> None:
    now = time.time()
    position = entry["pos"]
    tracer(TraceEvent("effect.start", now, position, kind, branch, None, True))
    tracer(TraceEvent("effect.end", now, position, kind, branch, "ok" in entry, True))


# ---------------------------------------------------------------- the trampoline


def _advance(
    node: Any, stack: list[Any], state: Any, run: _Run, where: _Seq
) -> tuple[int, Any, Any]:
    """Run `node` with continuation `stack` until it finishes or must await.

    The stack holds continuation frames - the `.then`/`.map`/`.recover`/
    `.map_error`/`.named` nodes themselves, so pushing allocates nothing; a
    recover frame sits on top of the state saved when it was entered.
    Node tags are literal ints (see mce.step) because this loop is the hot path.
    """
    cur = node
    push = stack.append
    pop = stack.pop
    try:
        while True:
            # A callback's result is checked here: a Step has a `_tag`. (An
            # isinstance check per bind would cost a tenth of the bind.)
            try:
                t = node._tag
            except AttributeError:
                raise _not_a_step(cur, node, stack, where) from None
            if t == 1:  # THEN
                push(node)
                node = node.step
                continue
            if t == 0:  # PURE
                value = node.value
            elif t == 2:  # MAP
                push(node)
                node = node.step
                continue
            elif t == 3:  # GET
                value = state
            elif t == 4:  # PUT
                state = node.state
                value = None
            elif t == 5:  # MODIFY
                cur = node
                state = node.f(state)
                value = None
            elif t == 6:  # GETS
                cur = node
                value = node.f(state)
            elif t == 7:  # FAIL: unwind to the nearest recover
                err = node.error
                while stack:
                    frame = pop()
                    ft = frame._tag
                    if ft == 8:  # RECOVER: roll back, run the handler
                        state = pop()
                        cur = frame
                        node = frame.f(err)  # checked at the top of the loop
                        break
                    if ft == 9:  # MAP_ERROR
                        cur = frame
                        err = frame.f(err)
                    elif ft == 10 and run.tracer is not None:
                        _trace_step(run.tracer, "step.end", frame.name, where, False)
                else:
                    return (_ERR, err, state)
                continue
            elif t == 8:  # RECOVER
                push(state)
                push(node)
                node = node.step
                continue
            elif t == 9:  # MAP_ERROR
                push(node)
                node = node.step
                continue
            elif t == 10:  # NAMED
                if run.tracer is not None:
                    _trace_step(run.tracer, "step.start", node.name, where, None)
                push(node)
                node = node.step
                continue
            elif t == 11:  # DEFER
                cur = node
                node = node.thunk()  # checked at the top of the loop
                continue
            elif t == 12:  # LIFT
                if node.is_async:
                    return (_NODE, node, state)
                cur = node
                value = node.thunk()
                if hasattr(value, "__await__"):
                    return (_AWAIT, (node, value), state)
            elif t == 15:  # SHARE: finished already? then no need to await
                cell = run.shares.get(node)
                if cell is None or cell.outcome is None:
                    return (_NODE, node, state)
                if type(cell.outcome) is Err:
                    node = _Fail(cell.outcome.error)
                    continue
                value = cell.outcome.value
            elif t == 16:  # EFFECT
                k = where.n
                where.n = k + 1
                effects = run.effects
                position = f"{where.prefix}{k}"
                if where.budget is not None:
                    exceeded = where.budget.charge_call()
                    if exceeded is not None:
                        node = _Fail(exceeded)
                        continue
                if effects.serving:
                    cur = node
                    entry = effects.lookup(position, node.kind, node.request, node.fp)
                    if entry is not None and run.tracer is not None:
                        _trace_served(run.tracer, entry, node.kind, where.prefix[:-1])
                    if entry is not None:
                        if "ok" in entry:
                            value = decode(entry["ok"])
                            if type(value) is not int and type(value) is not str:
                                effects.account(value)
                                if where.budget is not None:
                                    exceeded = where.budget.charge_value(value)
                                    if exceeded is not None:
                                        node = _Fail(exceeded)
                                        continue
                        else:
                            node = _Fail(decode(entry["err"]))
                            continue
                    else:
                        return (_EFFECT, (node, position), state)
                else:
                    return (_EFFECT, (node, position), state)
            elif t == 13:  # PAR: branches run inline as far as they can
                cur = node
                k = where.n
                where.n = k + 1
                block = _prefix(node, state, run, where, stack, k)
                if block.pending or block.must_record:
                    return (_NODE, block, state)
                out = block.outcome()
                state = out.state
                if type(out) is Err:
                    node = _Fail(out.error)
                    continue
                value = out.value
            elif t == 14:  # TIMEOUT
                k = where.n
                where.n = k + 1
                return (_TIMEOUT, (node, k), state)
            elif t == 17:  # BUDGET
                k = where.n
                where.n = k + 1
                return (_BUDGET, (node, k), state)
            else:
                raise _not_a_step(cur, node, stack, where)

            # A value: unwind to the nearest .then, applying maps on the way.
            while stack:
                frame = pop()
                ft = frame._tag
                if ft == 1:  # THEN
                    cur = frame
                    node = frame.f(value)  # checked at the top of the loop
                    break
                if ft == 2:  # MAP
                    cur = frame
                    value = frame.f(value)
                elif ft == 8:  # RECOVER: not needed, drop its saved state
                    pop()
                elif ft == 10 and run.tracer is not None:
                    _trace_step(run.tracer, "step.end", frame.name, where, True)
            else:
                return (_OK, value, state)
    except Exception as exc:
        _annotate(exc, cur, stack, where)
        raise


async def _continue(
    code: int, payload: Any, stack: list[Any], state: Any, run: _Run, where: _Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """The async driver: await what `_advance` stopped on, then resume it."""
    while True:
        if code == _OK:
            return Ok(payload, state)
        if code == _ERR:
            return Err(payload, state)
        if code == _EFFECT:
            effect, position = payload
            tracer = run.tracer
            if tracer is not None:
                tracer(
                    TraceEvent(
                        "effect.start", time.time(), position, effect.kind, where.prefix[:-1]
                    )
                )
            try:
                ok, value = await run.effects.perform(
                    effect, position, where.prefix[:-1], defer=where.defer and not stack
                )
            except Exception as exc:
                _annotate(exc, effect, stack, where)
                raise
            if tracer is not None:
                tracer(
                    TraceEvent(
                        "effect.end", time.time(), position, effect.kind, where.prefix[:-1], ok
                    )
                )
            if ok and where.budget is not None:
                exceeded = where.budget.charge_value(value)
                if exceeded is not None:
                    ok, value = False, exceeded
            node: Any = _Pure(value) if ok else _Fail(value)
        elif code == _AWAIT:
            lifted, awaitable = payload
            try:
                node = _Pure(await awaitable)
            except Exception as exc:
                _annotate(exc, lifted, stack, where)
                raise
        elif code in (_TIMEOUT, _BUDGET):
            bounded, k = payload
            if code == _TIMEOUT:
                out = await _run_timeout(bounded, k, state, run, stack, where)
            else:
                out = await _run_budget(bounded, k, state, run, stack, where)
            node = _Pure(out.value) if type(out) is Ok else _Fail(out.error)
            state = out.state
        else:
            t = payload._tag
            if t == _n.LIFT:
                try:
                    node = _Pure(await payload.thunk())
                except Exception as exc:
                    _annotate(exc, payload, stack, where)
                    raise
            else:
                if t == _RUNNING_PAR:
                    out = await _finish(payload)
                else:
                    out = await _force_share(payload, state, run, where, stack)
                node = _Pure(out.value) if type(out) is Ok else _Fail(out.error)
                state = out.state
        code, payload, state = _advance(node, stack, state, run, where)


async def _drive(node: Any, state: Any, run: _Run, where: _Seq) -> Ok[Any, Any] | Err[Any, Any]:
    stack: list[Any] = []
    code, payload, state = _advance(node, stack, state, run, where)
    if code == _OK:
        return Ok(payload, state)
    if code == _ERR:
        return Err(payload, state)
    return await _continue(code, payload, stack, state, run, where)


# ---------------------------------------------------------------- timeout and share


async def _run_timeout(
    node: Any, k: int, state: Any, run: _Run, stack: list[Any], where: _Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a timed step. Whether the timer fired is journaled, so a replay agrees."""
    position = f"{where.prefix}{k}"
    inner = _Seq(where, stack, None, f"{position}/")
    effects = run.effects
    recorded = effects.decision(position, TIMEOUT_DECISION) if effects.serving else None
    if recorded is None and effects.mode == "replay":
        raise ReplayDivergence(
            position, TIMEOUT_DECISION, "the journal has no record of this timeout"
        )
    out: Ok[Any, Any] | Err[Any, Any] | None = None
    if recorded is not None:
        if not recorded["fired"]:
            out = await _drive(node.step, state, run, inner)
    else:
        with anyio.move_on_after(node.seconds):
            out = await _drive(node.step, state, run, inner)
        await effects.record_decision(position, TIMEOUT_DECISION, {"fired": out is None})
    if out is not None:
        return out
    label = node.step.label
    if label is None:
        labels = _labels(stack)
        label = labels[-1] if labels else None
    return Err(StepTimeout(node.seconds, label), state)


async def _run_budget(
    node: Any, k: int, state: Any, run: _Run, stack: list[Any], where: _Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a step under a budget: charge its effects; cancel it all when one runs out.

    Running out of calls or tokens is decided by journaled values, so a
    replay agrees; running out of time is journaled like a timeout.
    """
    position = f"{where.prefix}{k}"
    budget = node.budget
    inner = _Seq(where, stack, None, f"{position}/")
    tracker = Tracker(budget, where.budget)
    inner.budget = tracker
    effects = run.effects
    out: Ok[Any, Any] | Err[Any, Any] | None = None
    fired = None
    if budget.max_seconds is not None and effects.serving:
        recorded = effects.decision(position, BUDGET_DECISION)
        if recorded is None and effects.mode == "replay":
            raise ReplayDivergence(
                position, BUDGET_DECISION, "the journal has no record of this budget"
            )
        fired = None if recorded is None else bool(recorded["out_of_time"])
    seconds = budget.max_seconds if fired is None else None
    with anyio.CancelScope() as scope:
        if seconds is not None:
            scope.deadline = anyio.current_time() + seconds
        tracker.scope = scope
        if fired:
            out = None
        else:
            out = await _drive(node.step, state, run, inner)
    out_of_time = out is None and tracker.exceeded is None
    if budget.max_seconds is not None and fired is None:
        await effects.record_decision(position, BUDGET_DECISION, {"out_of_time": out_of_time})
    if tracker.exceeded is not None:
        return Err(tracker.exceeded, state)
    if out is None:
        return Err(BudgetExceeded("seconds", budget.max_seconds), state)
    return out


async def _compute_share(node: Any, cell: _Cell, state: Any, run: _Run, where: _Seq) -> None:
    try:
        cell.outcome = await _drive(node.step, state, run, where)
    except Exception as exc:  # a bug: every consumer re-raises it
        cell.bug = exc
    finally:
        cell.done.set()


def _share_key(node: Any, run: _Run) -> str:
    """The name a shared step's effects are positioned under: its key, label or order."""
    base = node.key or node.step.label or f"#{len(run.shares)}"
    key, n = base, 1
    while key in run.share_keys and run.share_keys[key] is not node:
        n += 1
        key = f"{base}#{n}"
    run.share_keys[key] = node
    return key


async def _force_share(
    node: Any, state: Any, run: _Run, where: _Seq, stack: list[Any]
) -> Ok[Any, Any] | Err[Any, Any]:
    cell = run.shares.get(node)
    if cell is None:
        # The shared step runs in the run's own task group, not in this
        # consumer's task: cancelling one consumer must not cancel the others'
        # future.
        cell = run.shares[node] = _Cell()
        seq = _Seq(where, stack, None, f"s:{_share_key(node, run)}/")
        assert run.tg is not None, "shared steps are forced only inside run()'s task group"
        run.tg.start_soon(_compute_share, node, cell, state, run, seq)
    await cell.done.wait()
    if cell.bug is not None:
        raise cell.bug
    out = cell.outcome
    assert out is not None
    if type(out) is Ok:
        return Ok(out.value, state)
    return out


# ---------------------------------------------------------------- parallel blocks


_Pending = tuple[int, Any, list[Any], Any, _Seq | None]
"""A branch stopped at its first await: (code, payload, stack, state, sequence)."""


class _Par:
    """The bookkeeping of one running parallel block."""

    _tag = _RUNNING_PAR

    __slots__ = (
        "base",
        "bug",
        "cancelled",
        "errors",
        "failed",
        "failed_branch",
        "live",
        "must_record",
        "n",
        "next",
        "node",
        "only",
        "parent",
        "parent_stack",
        "pending",
        "position",
        "results",
        "run",
        "scope",
        "started",
        "states",
        "tasks",
        "waiter",
        "went_async",
    )

    def __init__(
        self, node: Any, state: Any, run: _Run, parent: _Seq, parent_stack: list[Any], k: int
    ) -> None:
        self.node = node
        self.base = state
        self.run = run
        self.parent = parent
        self.parent_stack = parent_stack
        self.position = f"{parent.prefix}{k}"
        self.n = n = len(node)
        self.next = 0
        self.results: list[Any] = [None] * n
        self.states: list[Any] = [state] * n
        self.errors: dict[int, Any] = {}
        self.failed: Err[Any, Any] | None = None
        self.failed_branch = -1
        self.bug: BaseException | None = None
        self.scope: Any = None  # the branches' cancel scope (anyio's or trio's)
        self.tasks: list[asyncio.Task[None]] | None = None
        self.started: list[bool] = []
        self.live = 0
        self.cancelled = False
        self.waiter: asyncio.Future[None] | None = None
        self.pending: list[tuple[int, _Pending]] = []
        self.went_async = False  # some branch awaited: the first failure depends on timing
        self.must_record = False
        self.only: int | None = None  # on replay: the branch recorded as failing first

    def seq(self, i: int) -> _Seq:
        seq = _Seq(self.parent, self.parent_stack, i, f"{self.position}/{i}/")
        seq.defer = self.node.limit is None
        return seq

    def branch(self, i: int) -> Step[Any, Any, Any]:
        node = self.node
        if node.steps is not None:
            step: Step[Any, Any, Any] = node.steps[i]
            return step
        try:
            built = node.f(node.items[i])
        except Exception as exc:
            _annotate(exc, node, [], self.seq(i), "traverse() function")
            raise
        if not isinstance(built, Step):
            raise _not_a_step(node, built, [], self.seq(i), "traverse() function")
        return built

    def start(self, i: int) -> _Pending | None:
        """Run branch `i` inline up to its first await; None if it finished."""
        step: Any = self.branch(i)
        if step._tag == 12:  # a lifted callable: the commonest branch, kept lean
            if step.is_async:  # nothing to do before the await
                self.went_async = True
                return (_NODE, step, [], self.base, None)  # the sequence is made if needed
            try:
                value = step.thunk()
            except Exception as exc:
                _annotate(exc, step, [], self.seq(i))
                raise
            if hasattr(value, "__await__"):
                self.went_async = True
                return (_AWAIT, (step, value), [], self.base, None)
            self.results[i] = value
            return None
        stack: list[Any] = []
        seq = self.seq(i)
        code, payload, st = _advance(step, stack, self.base, self.run, seq)
        if code == _OK:
            self.results[i] = payload
            self.states[i] = st
            return None
        if code == _ERR:
            self.record_error(i, payload, st)
            return None
        self.went_async = True
        return (code, payload, stack, st, seq)

    def record_error(self, i: int, error: Any, st: Any) -> None:
        if self.node.mode == _n.COLLECT:
            self.errors[i] = error
        elif self.failed is None:
            self.failed = Err(error, st)
            self.failed_branch = i
            self.cancel()

    def record_bug(self, exc: BaseException) -> None:
        if self.bug is None:
            self.bug = exc
        self.cancel()

    def cancel(self) -> None:
        """Stop every sibling at its next await."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()
        tasks = self.tasks
        if tasks:
            # Only tasks that have started are cancelled; one that has not
            # started yet sees `cancelled` when it does, and ends at once.
            me = asyncio.current_task()
            started = self.started
            for k, task in enumerate(tasks):
                if started[k] and task is not me:
                    task.cancel()

    async def work(self, k: int, i: int, first: _Pending) -> None:
        """Task `k`: finish branch `i`, then start unstarted branches (bounded mode).

        Mirrors `_continue`, with the common case - awaiting a lifted
        coroutine - inline, since this is the per-branch hot path.
        """
        self.started[k] = True
        try:
            if self.cancelled:
                _discard([(i, first)])
                return
            code, payload, stack, st, seq = first
            run = self.run
            while True:
                try:
                    # A lifted coroutine, made by the interpreter (_NODE) or
                    # returned by a sync thunk (_AWAIT).
                    while code == _AWAIT or (code == _NODE and payload._tag == 12):
                        lifted = payload[0] if code == _AWAIT else payload
                        try:
                            if code == _AWAIT:
                                value = await payload[1]
                            else:
                                value = await payload.thunk()
                        except Exception as exc:
                            _annotate(exc, lifted, stack, seq or self.seq(i))
                            raise
                        if not stack:  # the branch was just this coroutine
                            code, payload = _OK, value
                            break
                        if seq is None:
                            seq = self.seq(i)
                        code, payload, st = _advance(_Pure(value), stack, st, run, seq)
                    if code == _OK:
                        self.results[i] = payload
                        self.states[i] = st
                    elif code == _ERR:
                        self.record_error(i, payload, st)
                    else:
                        out = await _continue(code, payload, stack, st, run, seq or self.seq(i))
                        if type(out) is Ok:
                            self.results[i] = out.value
                            self.states[i] = out.state
                        else:
                            self.record_error(i, out.error, out.state)
                    # Take the next unstarted branch, so that at most `limit`
                    # branches are ever in flight.
                    while True:
                        if self.cancelled or self.next >= self.n:
                            return
                        i = self.next
                        self.next += 1
                        started = self.start(i)
                        if started is not None:
                            code, payload, stack, st, seq = started
                            break
                except Exception as exc:
                    self.record_bug(exc)
                    return
        except asyncio.CancelledError:
            if self.cancelled or self.run.backend != "asyncio":
                raise
            # Nobody in mce cancelled this bare task: lifted code cancelled it.
            self.record_bug(
                RuntimeError(
                    f"parallel branch {i} at {_describe_where(self.parent_stack, self.parent)} "
                    "was cancelled by something other than mce (task.cancel() on a branch's task)"
                )
            )
        finally:
            self.live -= 1
            if self.live == 0 and self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def outcome(self) -> Ok[Any, Any] | Err[Any, Any]:
        if self.bug is not None:
            raise self.bug
        if self.failed is not None:
            return self.failed
        if self.only is not None:
            raise ReplayDivergence(
                self.position,
                PAR_DECISION,
                f"the journal records that branch {self.only} failed first, "
                "but on replay it succeeded",
            )
        if self.errors:
            order = sorted(self.errors)
            return Err(Failures(tuple(self.errors[i] for i in order), tuple(order)), self.base)
        return Ok(tuple(self.results), self.merged())

    def merged(self) -> Any:
        base = self.base
        acc = base
        acc_from = None
        merge = self.run.merge
        for j, st in enumerate(self.states):
            if st is base:
                continue
            if acc is base:
                acc, acc_from = st, j
                continue
            try:
                acc = merge(base, acc, st)
            except StateConflict as conflict:
                raise conflict.between(self._writer(conflict.field, j, acc_from), j) from None
        return acc

    def _writer(self, field: str, j: int, fallback: int | None) -> int | None:
        """The earliest branch before `j` that changed `field` (for the conflict message)."""
        if field.startswith("["):
            top = field[: field.index("]") + 1]
        else:
            top = field.split(".", 1)[0].split("[", 1)[0]
        missing = object()

        def read(s: Any) -> Any:
            if isinstance(s, dict):
                for key, value in s.items():
                    if f"[{key!r}]" == top:
                        return value
                return missing
            return getattr(s, top, missing) if top else s

        before = read(self.base)
        for k in range(j):
            st = self.states[k]
            if st is not self.base and read(st) != before:
                return k
        return fallback


def _prefix(node: Any, state: Any, run: _Run, parent: _Seq, stack: list[Any], k: int) -> _Par:
    """Start a parallel block: run its branches inline up to their first await.

    A branch that never awaits costs no task at all; the returned block's
    `pending` lists the branches that still need one. On replay, a block
    whose failure was recorded runs only the branch that failed first.
    """
    p = _Par(node, state, run, parent, stack, k)
    effects = run.effects
    if effects.serving and node.mode == _n.FAIL_FAST:
        recorded = effects.decision(p.position, PAR_DECISION)
        if recorded is not None:
            p.only = recorded["branch"]
            p.next = p.only
    limit = node.limit
    pending = p.pending
    while p.next < p.n and not p.cancelled and (limit is None or len(pending) < limit):
        i = p.next
        p.next = p.n if p.only is not None else i + 1
        started = p.start(i)
        if started is not None:
            pending.append((i, started))
    if p.cancelled:
        _discard(pending)
        pending.clear()
    # Which branch failed first depends on timing once a branch has awaited:
    # the choice is journaled so that a replay reports the same error.
    p.must_record = effects.recording and p.went_async and node.mode == _n.FAIL_FAST
    return p


async def _finish(p: _Par) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a started block's pending branches concurrently; its outcome."""
    if p.pending:
        backend = p.run.backend
        if backend == "asyncio":
            await _spawn_asyncio(p, p.pending)
        elif backend == "trio":
            import trio

            await _spawn_in_group(p, p.pending, trio.open_nursery)
        else:
            await _spawn_in_group(p, p.pending, anyio.create_task_group)
        # Branches may have left their last records to be written in the
        # background: they must be durable before the block's value is used.
        await p.run.effects.durable()
    if p.must_record and p.failed is not None and p.bug is None:
        await p.run.effects.record_decision(p.position, PAR_DECISION, {"branch": p.failed_branch})
    return p.outcome()


def _discard(pending: list[tuple[int, _Pending]]) -> None:
    """Close awaitables of branches that will never be resumed (no 'never awaited' warnings)."""
    for _i, (code, payload, _stack, _st, _seq) in pending:
        if code == _AWAIT:
            close = getattr(payload[1], "close", None)
            if close is not None:
                close()


async def _spawn_in_group(
    p: _Par, pending: list[tuple[int, _Pending]], open_group: Callable[[], Any]
) -> None:
    """Run the pending branches in a task group (anyio's) or nursery (trio's).

    On trio a bare nursery costs a third of an anyio task group per task.
    """
    p.started = [False] * len(pending)
    p.live = len(pending)
    async with open_group() as group:
        p.scope = group.cancel_scope
        for k, (i, first) in enumerate(pending):
            group.start_soon(p.work, k, i, first)


async def _spawn_asyncio(p: _Par, pending: list[tuple[int, _Pending]]) -> None:
    """Fast path on asyncio: bare tasks and one completion future.

    An anyio task group costs several times `asyncio.gather` per task. This
    keeps the same structure by hand: every branch runs in a task of its own
    (so cancel scopes inside it behave), failure cancels the siblings, and
    this function does not return - even when cancelled itself - until every
    branch task has finished.
    """
    loop = asyncio.get_running_loop()
    n = len(pending)
    p.started = [False] * n
    p.live = n
    tasks: list[asyncio.Task[None]] = []
    p.tasks = tasks
    make = asyncio.Task if loop.get_task_factory() is None else loop.create_task
    work = p.work
    for k, (i, first) in enumerate(pending):
        tasks.append(make(work(k, i, first)))
    cancelled: BaseException | None = None
    while p.live:
        p.waiter = loop.create_future()
        try:
            await p.waiter
        except asyncio.CancelledError as exc:
            # Cancelled from outside (a timeout, an enclosing failure): cancel
            # the branches and wait for them before letting the cancellation on.
            if cancelled is None:
                cancelled = exc
                p.cancel()
    if cancelled is not None:
        raise cancelled


# ---------------------------------------------------------------- public entry points


def _backend() -> str:
    """The async library running us: 'asyncio', 'trio', or another one anyio knows."""
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
    trace: Callable[[TraceEvent], None] | None = None,
    executor: Executor | None = None,
) -> Ok[_S, _A] | Err[_S, _E]:
    """Run a workflow from `state`; the result is `Ok(value, state)` or `Err(error, state)`.

    Errors on the error channel come back as `Err`. Bugs - exceptions raised
    by callbacks or lifted code, `StateConflict` - propagate as themselves,
    with a note naming where in the program they were raised.

    * `handlers` maps effect kinds to handlers (overriding an effect's own).
    * `journal` (a path or a `Journal`) records every effect; `mode` is
      `"live"` (run and record), `"replay"` (serve every effect from the
      journal, call no handler) or `"resume"` (serve what the journal has,
      run the rest live and append). A program and a journal that do not
      belong together raise `ReplayDivergence`.
    * `seed` fixes `random()` and `uuid()` (by default a fresh seed per run,
      kept in the journal).
    * `merge` replaces the default three-way merge of parallel branches' states.
    * `trace` is called with a `TraceEvent` when effects and named steps start and end.
    * `executor` decides where handlers run (`mce.executors`; default: here).

    >>> import anyio
    >>> from mce import pure
    >>> anyio.run(run, pure("hi"), 0)
    Ok(value='hi', state=0)
    """
    if not isinstance(step, Step):
        raise TypeError(f"run() needs a Step, got {step!r}")
    table = dict(handlers or {})
    for kind, handler in table.items():
        if not isinstance(kind, str) or not callable(handler):
            raise TypeError(
                f"run(handlers=...) maps effect kinds to callables; got {kind!r}: {handler!r}"
            )
    if executor is not None and not isinstance(executor, Executor):
        raise TypeError(f"run(executor=...) needs an executor (mce.executors), got {executor!r}")
    recorder = Recorder(
        mode, open_journal(journal) if journal is not None else None, table, seed, executor
    )
    started = time.perf_counter()
    try:
        ctx = _Run(merge or default_merge, _backend(), recorder, trace)
        root = _Seq(None, None, None, "")
        stack: list[Any] = []
        # Whatever needs no awaiting runs right here; a program that never
        # awaits finishes without an event-loop round trip or a task group.
        code, payload, state = _advance(step, stack, state, ctx, root)
        if code == _OK:
            outcome: Ok[Any, Any] | Err[Any, Any] | None = Ok(payload, state)
        elif code == _ERR:
            outcome = Err(payload, state)
        else:
            outcome = None
            bug: BaseException | None = None
            async with anyio.create_task_group() as tg:
                ctx.tg = tg  # where shared steps (and background journal writes) run
                recorder.spawn = tg.start_soon
                try:
                    outcome = await _continue(code, payload, stack, state, ctx, root)
                except Exception as exc:
                    bug = exc  # raised as itself below, not wrapped in an ExceptionGroup
                # Shared steps nobody waits for any more (their consumers failed) stop here.
                tg.cancel_scope.cancel()
            if bug is not None:
                raise bug
        await recorder.finish()
        assert outcome is not None
        report = recorder.report(time.perf_counter() - started)
        if type(outcome) is Ok:
            return Ok(outcome.value, outcome.state, report)
        return Err(outcome.error, outcome.state, report)
    finally:
        recorder.close()


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
    trace: Callable[[TraceEvent], None] | None = None,
    executor: Executor | None = None,
) -> Ok[_S, _A] | Err[_S, _E]:
    """Run a workflow to completion from synchronous code (`anyio.run`); see `run`.

    `backend` picks the async library (asyncio or trio); `executor` picks
    where effect handlers run - they are different things.

    >>> from mce import gets
    >>> run_sync(gets(lambda s: s * 2), 21, backend="trio")
    Ok(value=42, state=21)
    """
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"run_sync(backend=...) must be 'asyncio' or 'trio', got {backend!r}")
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
    )
    return anyio.run(go, backend=backend)
