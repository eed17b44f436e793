"""The interpreter: runs a `Step` as a trampoline with an explicit continuation stack.

`_advance` runs everything that needs no awaiting (pure values, state, binds,
maps, error handling) in a flat loop - a chain of a million binds uses no
Python recursion. It stops at the first node that must await (a lifted
coroutine, a parallel block, a timeout, an unfinished shared step) and hands
it to `_continue`, the async driver, which awaits it and resumes the loop.

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
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from mce import step as _n
from mce.errors import Failures, StepTimeout
from mce.merge import StateConflict
from mce.merge import merge as default_merge
from mce.outcome import Err, Ok
from mce.step import Step, _Fail, _Pure

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")

# What _advance stopped on.
_OK = 0  # payload: the value
_ERR = 1  # payload: the error
_NODE = 2  # payload: a node for the async driver (lift, par, timeout, share)
_AWAIT = 3  # payload: (lift node, awaitable returned by a sync thunk)

_RUNNING_PAR = 16  # tag of a started parallel block (_Par) handed to the driver

_Where = tuple[Any, list[Any], int | None] | None
"""Where a sub-run sits: (parent's where, parent's stack, branch index or None)."""

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

    __slots__ = ("backend", "merge", "shares", "tg")

    def __init__(self, merge: MergeFn, tg: TaskGroup | None, backend: str) -> None:
        self.merge = merge
        self.shares: dict[Step[Any, Any, Any], _Cell] = {}
        self.tg = tg
        self.backend = backend


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


def _describe_where(stack: list[Any], where: _Where) -> str:
    parts: list[str] = []
    while True:
        parts[:0] = [repr(lab) for lab in _labels(stack)]
        if where is None:
            break
        parent_where, parent_stack, branch = where
        if branch is not None:
            parts.insert(0, f"branch {branch}")
        stack, where = parent_stack, parent_where
    return " > ".join(parts) if parts else "the top level"


def _annotate(
    exc: BaseException, node: object, stack: list[Any], where: _Where, kind: str | None = None
) -> None:
    notes = getattr(exc, "__notes__", ())
    if any(note.startswith("mce: ") for note in notes):
        return  # the innermost position is the useful one
    kind = kind or _CALLBACK_KIND.get(getattr(node, "_tag", -1), "step")
    fn = getattr(node, "f", None) or getattr(node, "thunk", None) or getattr(node, "origin", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    exc.add_note(f"mce: raised by the {kind} {name} at {_describe_where(stack, where)}")


def _not_a_step(
    node: Any, result: object, stack: list[Any], where: _Where, kind: str | None = None
) -> TypeError:
    kind = kind or _CALLBACK_KIND.get(node._tag, "callback")
    fn = getattr(node, "f", None) or getattr(node, "thunk", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return TypeError(
        f"the {kind} {name} at {_describe_where(stack, where)} returned "
        f"{result!r} ({type(result).__name__}), not a Step; wrap plain values in pure(...)"
    )


# ---------------------------------------------------------------- the trampoline


def _advance(
    node: Any, stack: list[Any], state: Any, run: _Run, where: _Where
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
                else:
                    return (_ERR, err, state)
                continue
            elif t == 8:  # RECOVER
                push(state)
                push(node)
                node = node.step
                continue
            elif t == 9 or t == 10:  # MAP_ERROR, NAMED
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
            elif t == 13:  # PAR: branches run inline as far as they can
                cur = node
                block = _prefix(node, state, run, (where, stack, None))
                if block.pending:
                    return (_NODE, block, state)
                out = block.outcome()
                state = out.state
                if type(out) is Err:
                    node = _Fail(out.error)
                    continue
                value = out.value
            elif t == 14:  # TIMEOUT
                return (_NODE, node, state)
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
            else:
                return (_OK, value, state)
    except Exception as exc:
        _annotate(exc, cur, stack, where)
        raise


async def _continue(
    code: int, payload: Any, stack: list[Any], state: Any, run: _Run, where: _Where
) -> Ok[Any, Any] | Err[Any, Any]:
    """The async driver: await what `_advance` stopped on, then resume it."""
    while True:
        if code == _OK:
            return Ok(payload, state)
        if code == _ERR:
            return Err(payload, state)
        if code == _AWAIT:
            lifted, awaitable = payload
            try:
                node: Any = _Pure(await awaitable)
            except Exception as exc:
                _annotate(exc, lifted, stack, where)
                raise
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
                elif t == _n.TIMEOUT:
                    out = await _run_timeout(payload, state, run, stack, where)
                else:
                    out = await _force_share(payload, state, run, (where, stack, None))
                node = _Pure(out.value) if type(out) is Ok else _Fail(out.error)
                state = out.state
        code, payload, state = _advance(node, stack, state, run, where)


async def _drive(node: Any, state: Any, run: _Run, where: _Where) -> Ok[Any, Any] | Err[Any, Any]:
    stack: list[Any] = []
    code, payload, state = _advance(node, stack, state, run, where)
    if code == _OK:
        return Ok(payload, state)
    if code == _ERR:
        return Err(payload, state)
    return await _continue(code, payload, stack, state, run, where)


# ---------------------------------------------------------------- timeout and share


async def _run_timeout(
    node: Any, state: Any, run: _Run, stack: list[Any], where: _Where
) -> Ok[Any, Any] | Err[Any, Any]:
    out: Ok[Any, Any] | Err[Any, Any] | None = None
    with anyio.move_on_after(node.seconds):
        out = await _drive(node.step, state, run, (where, stack, None))
    if out is not None:
        return out
    label = node.step.label
    if label is None:
        labels = _labels(stack)
        label = labels[-1] if labels else None
    return Err(StepTimeout(node.seconds, label), state)


async def _compute_share(node: Any, cell: _Cell, state: Any, run: _Run, where: _Where) -> None:
    try:
        cell.outcome = await _drive(node.step, state, run, where)
    except Exception as exc:  # a bug: every consumer re-raises it
        cell.bug = exc
    finally:
        cell.done.set()


async def _force_share(
    node: Any, state: Any, run: _Run, where: _Where
) -> Ok[Any, Any] | Err[Any, Any]:
    cell = run.shares.get(node)
    if cell is None:
        # The shared step runs in the run's own task group, not in this
        # consumer's task: cancelling one consumer must not cancel the others'
        # future.
        cell = run.shares[node] = _Cell()
        assert run.tg is not None, "shared steps are forced only inside run()'s task group"
        run.tg.start_soon(_compute_share, node, cell, state, run, where)
    await cell.done.wait()
    if cell.bug is not None:
        raise cell.bug
    out = cell.outcome
    assert out is not None
    if type(out) is Ok:
        return Ok(out.value, state)
    return out


# ---------------------------------------------------------------- parallel blocks


class _Par:
    """The bookkeeping of one running parallel block."""

    _tag = _RUNNING_PAR

    __slots__ = (
        "base",
        "bug",
        "cancelled",
        "errors",
        "failed",
        "live",
        "n",
        "next",
        "node",
        "pending",
        "results",
        "run",
        "scope",
        "started",
        "states",
        "tasks",
        "waiter",
        "where",
    )

    def __init__(self, node: Any, state: Any, run: _Run, where: _Where) -> None:
        self.node = node
        self.base = state
        self.run = run
        self.where = where
        self.n = n = len(node)
        self.next = 0
        self.results: list[Any] = [None] * n
        self.states: list[Any] = [state] * n
        self.errors: dict[int, Any] = {}
        self.failed: Err[Any, Any] | None = None
        self.bug: BaseException | None = None
        self.scope: Any = None  # the branches' cancel scope (anyio's or trio's)
        self.tasks: list[asyncio.Task[None]] | None = None
        self.started: list[bool] = []
        self.live = 0
        self.cancelled = False
        self.waiter: asyncio.Future[None] | None = None
        self.pending: list[tuple[int, tuple[int, Any, list[Any], Any]]] = []

    def branch(self, i: int) -> Step[Any, Any, Any]:
        node = self.node
        if node.steps is not None:
            step: Step[Any, Any, Any] = node.steps[i]
            return step
        try:
            built = node.f(node.items[i])
        except Exception as exc:
            _annotate(exc, node, [], (self.where, [], i), "traverse() function")
            raise
        if not isinstance(built, Step):
            raise _not_a_step(node, built, [], (self.where, [], i), "traverse() function")
        return built

    def start(self, i: int) -> tuple[int, Any, list[Any], Any] | None:
        """Run branch `i` inline up to its first await; None if it finished."""
        step: Any = self.branch(i)
        if step._tag == 12 and step.is_async:  # nothing to do before the await
            return (_NODE, step, [], self.base)
        stack: list[Any] = []
        code, payload, st = _advance(step, stack, self.base, self.run, (self.where, [], i))
        if code == _OK:
            self.results[i] = payload
            self.states[i] = st
            return None
        if code == _ERR:
            self.record_error(i, payload, st)
            return None
        return (code, payload, stack, st)

    def record_error(self, i: int, error: Any, st: Any) -> None:
        if self.node.mode == _n.COLLECT:
            self.errors[i] = error
        elif self.failed is None:
            self.failed = Err(error, st)
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

    @property
    def stopped(self) -> bool:
        """A failure, a bug or an outside cancellation ended this block."""
        return self.cancelled

    async def work(self, k: int, i: int, first: tuple[int, Any, list[Any], Any]) -> None:
        """Task `k`: finish branch `i`, then start unstarted branches (bounded mode).

        Mirrors `_continue`, with the common case - awaiting a lifted
        coroutine - inline, since this is the per-branch hot path.
        """
        self.started[k] = True
        try:
            if self.cancelled:
                _discard([(i, first)])
                return
            code, payload, stack, st = first
            run = self.run
            while True:
                try:
                    while code == _NODE and payload._tag == 12:  # a lifted coroutine
                        try:
                            value = await payload.thunk()
                        except Exception as exc:
                            _annotate(exc, payload, stack, (self.where, [], i))
                            raise
                        if not stack:  # the branch was just this coroutine
                            code, payload = _OK, value
                            break
                        code, payload, st = _advance(
                            _Pure(value), stack, st, run, (self.where, [], i)
                        )
                    if code == _OK:
                        self.results[i] = payload
                        self.states[i] = st
                    elif code == _ERR:
                        self.record_error(i, payload, st)
                    else:
                        out = await _continue(code, payload, stack, st, run, (self.where, [], i))
                        if type(out) is Ok:
                            self.results[i] = out.value
                            self.states[i] = out.state
                        else:
                            self.record_error(i, out.error, out.state)
                    # Take the next unstarted branch, so that at most `limit`
                    # branches are ever in flight.
                    while True:
                        if self.stopped or self.next >= self.n:
                            return
                        i = self.next
                        self.next += 1
                        started = self.start(i)
                        if started is not None:
                            code, payload, stack, st = started
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
                    f"parallel branch {i} at {_describe_where([], self.where)} was cancelled "
                    "by something other than mce (task.cancel() on a branch's task)"
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


def _prefix(node: Any, state: Any, run: _Run, where: _Where) -> _Par:
    """Start a parallel block: run its branches inline up to their first await.

    A branch that never awaits costs no task at all; the returned block's
    `pending` lists the branches that still need one.
    """
    p = _Par(node, state, run, where)
    limit = node.limit
    pending = p.pending
    while p.next < p.n and not p.stopped and (limit is None or len(pending) < limit):
        i = p.next
        p.next += 1
        started = p.start(i)
        if started is not None:
            pending.append((i, started))
    if p.stopped:
        _discard(pending)
        pending.clear()
    return p


async def _finish(p: _Par) -> Ok[Any, Any] | Err[Any, Any]:
    """Run a started block's pending branches concurrently; its outcome."""
    backend = p.run.backend
    if backend == "asyncio":
        await _spawn_asyncio(p, p.pending)
    elif backend == "trio":
        await _spawn_trio(p, p.pending)
    else:
        await _spawn_anyio(p, p.pending)
    return p.outcome()


def _discard(pending: list[tuple[int, tuple[int, Any, list[Any], Any]]]) -> None:
    """Close awaitables of branches that will never be resumed (no 'never awaited' warnings)."""
    for _i, (code, payload, _stack, _st) in pending:
        if code == _AWAIT:
            close = getattr(payload[1], "close", None)
            if close is not None:
                close()


async def _spawn_anyio(p: _Par, pending: list[tuple[int, tuple[int, Any, list[Any], Any]]]) -> None:
    p.started = [False] * len(pending)
    p.live = len(pending)
    async with anyio.create_task_group() as tg:
        p.scope = tg.cancel_scope
        for k, (i, first) in enumerate(pending):
            tg.start_soon(p.work, k, i, first)


async def _spawn_trio(p: _Par, pending: list[tuple[int, tuple[int, Any, list[Any], Any]]]) -> None:
    """Fast path on trio: a bare nursery costs a third of an anyio task group."""
    import trio

    p.started = [False] * len(pending)
    p.live = len(pending)
    async with trio.open_nursery() as nursery:
        p.scope = nursery.cancel_scope
        for k, (i, first) in enumerate(pending):
            nursery.start_soon(p.work, k, i, first)


async def _spawn_asyncio(
    p: _Par, pending: list[tuple[int, tuple[int, Any, list[Any], Any]]]
) -> None:
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
    merge: Callable[[_S, _S, _S], _S] | None = None,
) -> Ok[_S, _A] | Err[_S, _E]:
    """Run a workflow from `state`; the result is `Ok(value, state)` or `Err(error, state)`.

    Errors on the error channel come back as `Err`. Bugs - exceptions raised
    by callbacks or lifted code, `StateConflict` - propagate as themselves,
    with a note naming where in the program they were raised. `merge`
    replaces the default three-way merge of parallel branches' states.

    >>> import anyio
    >>> from mce import pure
    >>> anyio.run(run, pure("hi"), 0)
    Ok(value='hi', state=0)
    """
    if not isinstance(step, Step):
        raise TypeError(f"run() needs a Step, got {step!r}")
    ctx = _Run(merge or default_merge, None, _backend())
    stack: list[Any] = []
    # Whatever needs no awaiting runs right here; a program that never awaits
    # finishes without an event-loop round trip or a task group.
    code, payload, state = _advance(step, stack, state, ctx, None)
    if code == _OK:
        return Ok(payload, state)
    if code == _ERR:
        return Err(payload, state)
    outcome: Ok[Any, Any] | Err[Any, Any] | None = None
    bug: BaseException | None = None
    async with anyio.create_task_group() as tg:
        ctx.tg = tg  # where shared steps run
        try:
            outcome = await _continue(code, payload, stack, state, ctx, None)
        except Exception as exc:
            bug = exc  # raised as itself below, not wrapped in an ExceptionGroup
        # Shared steps nobody waits for any more (their consumers failed) stop here.
        tg.cancel_scope.cancel()
    if bug is not None:
        raise bug
    assert outcome is not None
    return outcome


def run_sync(
    step: Step[_S, _E, _A],
    state: _S,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    merge: Callable[[_S, _S, _S], _S] | None = None,
) -> Ok[_S, _A] | Err[_S, _E]:
    """Run a workflow to completion from synchronous code (`anyio.run`).

    >>> from mce import gets
    >>> run_sync(gets(lambda s: s * 2), 21, backend="trio")
    Ok(value=42, state=21)
    """
    if backend not in ("asyncio", "trio"):
        raise ValueError(f"run_sync(backend=...) must be 'asyncio' or 'trio', got {backend!r}")
    return anyio.run(functools.partial(run, step, state, merge=merge), backend=backend)
