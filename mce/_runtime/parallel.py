"""Parallel blocks: `par`, `gather`, `traverse` and `collect` while they run.

A block's branches first run inline, in the parent, up to their first
await (`start_block`); only branches that really await get a task of their
own (`finish`, through a branch runner, `mce._runtime.runners`), and they
get it *before* they start awaiting, so a lifted coroutine always runs
wholly inside its own task (anyio cancel scopes stay correct on every
backend). A `Block` is the plain data of one running block; the functions
here act on it. The branches' states are combined by the run's three-way
merge; a conflict names the branches that wrote the field
(`mce.merge.first_writer`).

>>> from mce import par, pure, run_sync
>>> run_sync(par(pure(1), pure(2)).map(sum), None)
Ok(value=3, state=None)
"""

from __future__ import annotations

from inspect import CO_COROUTINE
from types import CoroutineType, FunctionType, MethodType
from typing import Any

import anyio

from mce._runtime import driver as _driver
from mce._runtime import trampoline as _trampoline
from mce._runtime.asking import Unanswered
from mce._runtime.context import RunContext, Seq
from mce._runtime.diagnostics import annotate, describe_where, not_a_step
from mce._runtime.nodes import AWAIT, COLLECT, ERR, FAIL_FAST, LIFT, NODE, OK, RUNNING_BLOCK
from mce._runtime.replay import PAR_DECISION
from mce._runtime.runners import BranchRunner, runner_for
from mce.errors import Failures
from mce.journal import ReplayDivergence
from mce.merge import StateConflict, first_writer
from mce.outcome import Err, Ok
from mce.step import _NO_ARG, Step

Pending = tuple[int, Any, list[Any], Any, Seq | None]
"""A branch stopped at its first await: (code, payload, stack, state, sequence)."""


class Block:
    """The bookkeeping of one running parallel block: plain data."""

    _tag = RUNNING_BLOCK  # what the async driver dispatches on

    __slots__ = (
        "base",
        "bug",
        "cancelled",
        "errors",
        "failed",
        "failed_branch",
        "lean",
        "lean_count",
        "must_record",
        "n",
        "next",
        "node",
        "only",
        "parent",
        "parent_stack",
        "pending",
        "position",
        "redecided",
        "results",
        "run",
        "runner",
        "states",
        "waiting",
        "went_async",
    )

    def __init__(
        self, node: Any, state: Any, run: RunContext, parent: Seq, parent_stack: list[Any], k: int
    ) -> None:
        self.node = node
        self.base = state  # every branch starts from it
        self.run = run
        self.parent = parent
        self.parent_stack = parent_stack
        self.position = f"{parent.prefix}{k}"
        self.n = n = len(node)
        self.next = 0  # the next branch to start
        self.results: list[Any] = [None] * n
        self.states: list[Any] = [state] * n
        self.errors: dict[int, Any] = {}  # collect: every branch's error
        self.failed: Err[Any, Any] | None = None  # fail-fast: the first failure
        self.failed_branch = -1
        self.bug: BaseException | None = None
        self.cancelled = False
        self.runner: BranchRunner | None = None  # once branches run as tasks
        self.pending: list[tuple[int, Pending]] = []  # branches that need a task
        self.went_async = False  # some branch awaited: the first failure depends on timing
        self.must_record = False  # the first failure must be journaled
        self.waiting = False  # some branch stopped at a question nobody has answered
        self.only: int | None = None  # on replay: the branch recorded as failing first
        self.redecided = False  # a resume with retry_failed decides again (see start_block)
        # Lean branches (see `_start`): lean[i] is 1 when results[i] holds branch
        # i's coroutine - then its task, then its value. None: no branch may be lean.
        self.lean: bytearray | None = None
        self.lean_count = 0


def _seq(b: Block, i: int) -> Seq:
    seq = Seq(b.parent, b.parent_stack, i, f"{b.position}/{i}/")
    seq.defer = b.node.limit is None
    return seq


def _branch(b: Block, i: int) -> Step[Any, Any, Any]:
    node = b.node
    if node.steps is not None:
        step: Step[Any, Any, Any] = node.steps[i]
        return step
    try:
        built = node.f(node.items[i])
    except Exception as exc:
        annotate(exc, node, [], _seq(b, i), "traverse() function")
        raise
    if not isinstance(built, Step):
        raise not_a_step(node, built, [], _seq(b, i), "traverse() function")
    return built


LEAN = True
"""Whether lifted branches may be lean (tests turn it off to compare with the general path)."""

_LEAN: Pending = (-1, None, [], None, None)
"""What `_start` returns for a lean branch (kept in the block, not in `pending`)."""


def _async_function(fn: Any) -> bool:
    """Whether `fn` is a plain `async def` function or method (read from its code flags)."""
    if type(fn) is MethodType:
        fn = fn.__func__
    return type(fn) is FunctionType and bool(fn.__code__.co_flags & CO_COROUTINE)


def _start(b: Block, i: int) -> Pending | None:
    """Run branch `i` inline up to its first await; None if it finished.

    A branch that is just a lifted coroutine is *lean* where the runner
    allows it (asyncio, unbounded block): its coroutine waits in `results`
    for a bare task of its own, finished by a done-callback (`lean_done`) -
    no per-branch record, continuation stack or wrapping coroutine.
    """
    step: Any = _branch(b, i)
    if step._tag == LIFT:  # a lifted callable: the commonest branch
        if b.lean is None and _async_function(step.thunk):
            # Its coroutine is made in its own task: thousands of coroutines made
            # up front, before any task runs, cost a third more per branch.
            b.went_async = True
            return (NODE, step, [], b.base, None)
        try:  # an async callable only makes its coroutine: nothing runs before the task
            arg = step.arg  # `_Lift.call`, inlined: this is the per-branch hot path
            value = step.thunk() if arg is _NO_ARG else step.thunk(arg, *step.more)
        except Exception as exc:
            annotate(exc, step, [], _seq(b, i))
            raise
        if hasattr(value, "__await__"):
            b.went_async = True
            lean = b.lean
            if lean is not None and type(value) is CoroutineType:
                b.results[i] = value
                lean[i] = 1
                b.lean_count += 1
                return _LEAN
            return (AWAIT, (step, value), [], b.base, None)
        b.results[i] = value
        return None
    stack: list[Any] = []
    seq = _seq(b, i)
    code, payload, st = _trampoline.advance(step, stack, b.base, b.run, seq)
    if code == OK:
        b.results[i] = payload
        b.states[i] = st
        return None
    if code == ERR:
        _record_error(b, i, payload, st)
        return None
    b.went_async = True
    return (code, payload, stack, st, seq)


def _record_error(b: Block, i: int, error: Any, st: Any) -> None:
    if b.node.mode == COLLECT:
        b.errors[i] = error
    elif b.failed is None:
        b.failed = Err(error, st)
        b.failed_branch = i
        _cancel(b)


def _record_bug(b: Block, exc: BaseException) -> None:
    if b.bug is None:
        b.bug = exc
    _cancel(b)


def _cancel(b: Block) -> None:
    """Stop every sibling at its next await."""
    b.cancelled = True
    if b.runner is not None:
        b.runner.cancel()


async def _work(b: Block, k: int, i: int, first: Pending) -> None:
    """Task `k`: finish branch `i`, then start unstarted branches (bounded mode).

    Mirrors the driver's `resume`, with the common case - awaiting a lifted
    coroutine - inline, since this is the per-branch hot path (hence its
    length: a helper call per branch would cost a tenth of a branch).
    """
    runner = b.runner
    assert runner is not None
    runner.started[k] = True
    try:
        if b.cancelled:
            _close(first)
            return
        code, payload, stack, st, seq = first
        run = b.run
        while True:
            try:
                if code == NODE and payload._tag == LIFT:  # an async function, called here
                    try:
                        payload = (payload, payload.call())
                    except Exception as exc:
                        annotate(exc, payload, stack, seq or _seq(b, i))
                        raise
                    code = AWAIT
                # A lifted coroutine: the branch is just this coroutine, or it
                # goes on (a chain of lifted steps is awaited by the driver's loop).
                if code == AWAIT:
                    if stack:
                        seq = seq or _seq(b, i)
                        code, payload, st = await _driver.lifted_chain(
                            payload[0], payload[1], stack, st, run, seq
                        )
                    else:
                        try:
                            value = await payload[1]
                        except Exception as exc:
                            annotate(exc, payload[0], stack, seq or _seq(b, i))
                            raise
                        code, payload = OK, value
                if code == OK:
                    b.results[i] = payload
                    b.states[i] = st
                elif code == ERR:
                    _record_error(b, i, payload, st)
                else:
                    try:
                        out = await _driver.resume(code, payload, stack, st, run, seq or _seq(b, i))
                    except Unanswered:
                        # This branch waits for a person; its siblings run on,
                        # so that every question of the block is asked at once.
                        b.waiting = True
                    else:
                        if type(out) is Ok:
                            b.results[i] = out.value
                            b.states[i] = out.state
                        else:
                            _record_error(b, i, out.error, out.state)
                # Take the next unstarted branch, so that at most `limit`
                # branches are ever in flight.
                while True:
                    if b.cancelled or b.next >= b.n:
                        return
                    i = b.next
                    b.next += 1
                    started = _start(b, i)
                    if started is not None:
                        code, payload, stack, st, seq = started
                        break
            except Exception as exc:
                _record_bug(b, exc)
                return
    except anyio.get_cancelled_exc_class():  # evaluated only when something is raised
        if b.cancelled or b.run.backend != "asyncio":
            raise
        # Nobody in mce cancelled this bare task: lifted code cancelled it.
        _record_bug(
            b,
            RuntimeError(
                f"parallel branch {i} at {describe_where(b.parent_stack, b.parent)} "
                "was cancelled by something other than mce (task.cancel() on a branch's task)"
            ),
        )
    except BaseException as exc:
        if b.run.backend != "asyncio" and isinstance(exc, anyio.get_cancelled_exc_class()):
            raise
        # KeyboardInterrupt, SystemExit, a test's failure, a user's own
        # BaseException: the block re-raises it as itself once no branch runs
        # (left in a bare task it would be lost; in a nursery, grouped).
        _record_bug(b, exc)
    finally:
        runner.finished()


def outcome(b: Block) -> Ok[Any, Any] | Err[Any, Any]:
    """The block's outcome once no branch runs: the first failure, all errors, or the tuple."""
    if b.bug is not None:
        raise b.bug
    if b.failed is not None:
        return b.failed
    if b.only is not None:
        raise ReplayDivergence(
            b.position,
            PAR_DECISION,
            f"the journal records that branch {b.only} failed first, but on replay it succeeded",
        )
    if b.waiting:  # a failure (above) ends the block whatever the answers; else it waits
        stop = Unanswered(None)
        stop.state = b.base
        raise stop
    if b.errors:
        order = sorted(b.errors)
        return Err(Failures(tuple(b.errors[i] for i in order), tuple(order)), b.base)
    results = b.results
    lean = b.lean
    if b.lean_count and lean is not None:  # every lean branch's task has its value
        results = [r.result() if lean[i] else r for i, r in enumerate(results)]
    return Ok(tuple(results), _merged(b))


def _merged(b: Block) -> Any:
    base = b.base
    acc = base
    acc_from = None
    merge = b.run.merge
    for j, st in enumerate(b.states):
        if st is base:
            continue
        if acc is base:
            acc, acc_from = st, j
            continue
        try:
            acc = merge(base, acc, st)
        except StateConflict as conflict:
            writer = first_writer(conflict.path, base, b.states[:j])
            raise conflict.between(acc_from if writer is None else writer, j) from None
    return acc


def start_block(
    node: Any, state: Any, run: RunContext, parent: Seq, stack: list[Any], k: int
) -> Block:
    """Start a parallel block: run its branches inline up to their first await.

    A branch that never awaits costs no task at all; the returned block's
    `pending` lists the branches that still need one. On replay, a block
    whose failure was recorded runs only the branch that failed first.
    """
    b = Block(node, state, run, parent, stack, k)
    limit = node.limit
    if LEAN and limit is None and node.steps is not None and run.backend == "asyncio":
        b.lean = bytearray(b.n)
    effects = run.effects
    if effects.serving and node.mode == FAIL_FAST:
        recorded = effects.decision(b.position, PAR_DECISION)
        if recorded is not None and effects.retrying:
            # A resume that re-runs what failed decides again which branch fails
            # first (the failure may not recur); the new decision, or "none
            # failed", is journaled and supersedes the recorded one.
            b.redecided = True
        elif recorded is not None and recorded["branch"] is not None:
            b.only = recorded["branch"]
            b.next = b.only
            for i in range(b.n):  # the other branches' records are not asked for
                if i != b.only:
                    effects.skip(f"{b.position}/{i}/")
    pending = b.pending
    try:
        while b.next < b.n and not b.cancelled and (limit is None or len(pending) < limit):
            i = b.next
            b.next = b.n if b.only is not None else i + 1
            started = _start(b, i)
            if started is not None and started is not _LEAN:
                pending.append((i, started))
    except BaseException:  # a bug in a branch: nothing started will be awaited
        _discard(b)
        raise
    if b.cancelled:
        _discard(b)
    # Which branch failed first depends on timing once a branch has awaited:
    # the choice is journaled so that a replay reports the same error (once:
    # not again by a resume that served it).
    b.must_record = (
        effects.recording
        and node.mode == FAIL_FAST
        and ((b.went_async and b.only is None) or b.redecided)
    )
    return b


async def finish(b: Block) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a started block's pending branches concurrently; its outcome."""
    effects = b.run.effects
    if b.pending or b.lean_count:
        b.runner = runner_for(b.run.backend)
        await b.runner.run(_work, b, b.pending)
        # Branches may have left their last records to be written in the
        # background: they must be durable before the block's value is used.
        await effects.durable()
    if b.must_record and b.bug is None:
        if b.failed is not None:
            await effects.record_decision(b.position, PAR_DECISION, {"branch": b.failed_branch})
        elif b.redecided:  # the recorded failure did not recur: no branch failed
            await effects.record_decision(b.position, PAR_DECISION, {"branch": None})
    return outcome(b)


def _discard(b: Block) -> None:
    """Close awaitables of branches that will never be resumed (no 'never awaited' warnings)."""
    for _i, first in b.pending:
        _close(first)
    b.pending.clear()
    lean = b.lean
    if b.lean_count and lean is not None:
        for i, coroutine in enumerate(b.results):
            if lean[i]:
                coroutine.close()
                lean[i] = 0
        b.lean_count = 0


def _close(first: Pending) -> None:
    code, payload, _stack, _st, _seq = first
    if code == AWAIT:
        close = getattr(payload[1], "close", None)
        if close is not None:
            close()


def lean_done(b: Block, task: Any) -> None:
    """A lean branch's task has ended: record what it raised, count it out.

    Runs as the task's done-callback, so it must not raise: whatever goes
    wrong here is the block's bug. Only the block's first bug is kept (as
    when a branch's own task records it), so only that one needs to know
    which branch raised - a search through the block's results.
    """
    runner = b.runner
    assert runner is not None
    try:
        if b.bug is None:
            if task.cancelled():
                if not b.cancelled:  # nobody in mce cancelled it: lifted code did
                    raise RuntimeError(
                        f"parallel branch {_lean_index(b, task)} at "
                        f"{describe_where(b.parent_stack, b.parent)} was cancelled by something "
                        "other than mce (task.cancel() on a branch's task)"
                    )
            else:
                exc = task.exception()
                if exc is not None:
                    if isinstance(exc, Exception):
                        i = _lean_index(b, task)
                        annotate(exc, b.node.steps[i], [], _seq(b, i))
                    _record_bug(b, exc)
    except BaseException as exc:
        _record_bug(b, exc)
    finally:
        runner.finished()


def _lean_index(b: Block, task: Any) -> int:
    for i, r in enumerate(b.results):
        if r is task:
            return i
    raise AssertionError("a lean branch's task is not among its block's results")
