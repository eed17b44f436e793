"""The async driver: await what the trampoline stopped on, then resume it.

`drive` runs a program in a sequential context to its outcome; `resume`
continues from a stop of `advance` (`mce._runtime.trampoline`): it awaits
a lifted coroutine, a live effect, a parallel block, a scope or a shared
step, then hands the result back to the trampoline.

>>> import anyio
>>> from mce import lift, pure
>>> from mce._runtime.context import Seq
>>> async def one() -> int:
...     return 1
>>> anyio.run(drive, lift(one).map(str), None, None, Seq(None, None, None, ""))
Ok(value='1', state=None)
"""

from __future__ import annotations

import time
from types import CoroutineType as _CoroutineType
from typing import Any

from mce._runtime import parallel as _parallel
from mce._runtime import scopes as _scopes
from mce._runtime import trampoline as _trampoline
from mce._runtime.asking import Unanswered
from mce._runtime.context import RunContext, Seq
from mce._runtime.diagnostics import annotate
from mce._runtime.nodes import (
    AWAIT,
    BUDGET_SCOPE,
    EFFECT_LIVE,
    ERR,
    OK,
    RUNNING_BLOCK,
    TIMEOUT_SCOPE,
)
from mce._runtime.subrun import PARENT, Parent, allowance_of
from mce.effects import redact, retry_reporting, stop_retry_reporting
from mce.events import TraceEvent, Tracer
from mce.outcome import Err, Ok
from mce.step import _NO_ARG, _Fail, _Lift, _Pure, _Then


def _retry_tracer(tracer: Any, position: str, kind: str, where: Seq) -> Any:
    """What a handler's `report_retry` calls: an `effect.retry` trace event."""

    def retried(attempt: int, reason: str) -> None:
        tracer(
            TraceEvent(
                "effect.retry", time.time(), position, kind, where.prefix[:-1], False, result=reason
            )
        )

    return retried


async def resume(
    code: int, payload: Any, stack: list[Any], state: Any, run: RunContext, where: Seq
) -> Ok[Any, Any] | Err[Any, Any]:
    """Await what `advance` stopped on, feed the result back to it; repeat until done."""
    while True:
        if code == OK:
            return Ok(payload, state)
        if code == ERR:
            return Err(payload, state)
        if code == EFFECT_LIVE:
            node: Any = await _perform_live(payload, stack, state, run, where)
        elif code == AWAIT:
            code, payload, state = await lifted_chain(
                payload[0], payload[1], stack, state, run, where
            )
            continue
        elif code in (TIMEOUT_SCOPE, BUDGET_SCOPE):
            bounded, k = payload
            if code == TIMEOUT_SCOPE:
                out = await _scopes.run_timeout(bounded, k, state, run, stack, where)
            else:
                out = await _scopes.run_budget(bounded, k, state, run, stack, where)
            node = _Pure(out.value) if type(out) is Ok else _Fail(out.error)
            state = out.state
        else:
            t = payload._tag
            if t == RUNNING_BLOCK:
                out = await _parallel.finish(payload)
            else:
                out = await _scopes.force_share(payload, state, run, where, stack)
            node = _Pure(out.value) if type(out) is Ok else _Fail(out.error)
            state = out.state
        code, payload, state = _trampoline.advance(node, stack, state, run, where)


async def _perform_live(
    payload: Any, stack: list[Any], state: Any, run: RunContext, where: Seq
) -> Any:
    """Perform a live effect, tracing and charging it; the node that carries its result."""
    effect, position = payload
    tracer = run.tracer
    if tracer is not None:
        tracer(
            TraceEvent(
                "effect.start",
                time.time(),
                position,
                effect.kind,
                where.prefix[:-1],
                request=redact(effect.request),
            )
        )
    # A remote effect may host a sub-run (a sub-agent): tell it what
    # the enclosing budgets still allow, and where to trace.
    parent = (
        PARENT.set(Parent(allowance_of(where.budget), position, tracer)) if effect.remote else None
    )
    retries = retry_reporting(
        None if tracer is None else _retry_tracer(tracer, position, effect.kind, where)
    )
    try:
        ok, value = await run.effects.perform(
            effect, position, where.prefix[:-1], defer=where.defer and not stack
        )
    except Unanswered as stop:  # this sequence stops at its question
        stop.state = state
        if tracer is not None:  # an end with ok=None: the question is left open
            _trace_end(tracer, effect, position, where, None)
        raise
    except Exception as exc:
        annotate(exc, effect, stack, where)
        raise
    except BaseException:
        # Cancelled (a timeout, a budget, a failed sibling) or interrupted: the effect
        # ended without a result, and nothing was journaled for it.
        if tracer is not None:
            _trace_end(tracer, effect, position, where, False)
        raise
    finally:
        stop_retry_reporting(retries)
        if parent is not None:
            PARENT.reset(parent)
    if tracer is not None:
        _trace_end(tracer, effect, position, where, ok, value)
    if ok and where.budget is not None:
        exceeded = run.effects.charge_value(where.budget, position, value)
        if exceeded is not None:
            ok, value = False, exceeded
    return _Pure(value) if ok else _Fail(value)


async def lifted_chain(
    lifted: Any, awaitable: Any, stack: list[Any], state: Any, run: RunContext, where: Seq
) -> tuple[int, Any, Any]:
    """Await a lifted step, and every lifted step a `.then` chain reaches after it.

    The hot path of a chain of lifted steps: where the trampoline would
    return to the driver at each of them (to await its coroutine) and be
    re-entered with its value, this loop calls the `.then` callback and the
    next lifted callable itself and awaits the coroutine at once, in the same
    task - the same calls in the same order, and a bug in any of them gets
    the same note. Any other continuation frame, or a callback that returns
    anything but a lifted step, goes back to the trampoline (`advance`),
    which returns where the sequence must stop next.
    """
    pop = stack.pop
    lift_type = _Lift
    then_type = _Then
    coroutine = _CoroutineType
    no_arg = _NO_ARG
    no_more = ()
    cur = lifted
    try:
        value = await awaitable
        while True:  # unwind to the next lifted step, await it, repeat
            try:
                frame = pop()
            except IndexError:  # nothing left to run: the sequence's value
                return (OK, value, state)
            # Types, not tags: `type(x) is C` is cheaper than reading a class attribute.
            if type(frame) is not then_type:  # a frame only the trampoline handles
                stack.append(frame)
                return _trampoline.advance(_Pure(value), stack, state, run, where)
            cur = frame
            # Each function read into a local, then called: `frame.f(value)` would
            # be a method call, and finding a function in a slot that way is slow.
            f = frame.f
            node = f(value)
            if type(node) is not lift_type:
                return _trampoline.advance(node, stack, state, run, where, frame)
            cur = node
            arg = node.arg  # `_Lift.call`, inlined
            thunk = node.thunk
            if arg is no_arg:
                value = thunk()
            elif node.more is no_more:  # `*more` of no argument: the one empty tuple
                value = thunk(arg)
            else:
                value = thunk(arg, *node.more)
            if type(value) is coroutine or hasattr(value, "__await__"):
                value = await value
    except Exception as exc:
        annotate(exc, cur, stack, where)
        raise


async def drive(node: Any, state: Any, run: RunContext, where: Seq) -> Ok[Any, Any] | Err[Any, Any]:
    """Run `node` from `state` in the sequential context `where`, to its outcome."""
    stack: list[Any] = []
    code, payload, state = _trampoline.advance(node, stack, state, run, where)
    if code == OK:
        return Ok(payload, state)
    if code == ERR:
        return Err(payload, state)
    return await resume(code, payload, stack, state, run, where)


_UNFINISHED: Any = object()


def _trace_end(
    tracer: Tracer,
    effect: Any,
    position: str,
    where: Seq,
    ok: bool | None,
    result: Any = _UNFINISHED,
) -> None:
    """The `effect.end` event of a live effect: ok, failed, cancelled (False) or open (None)."""
    extra: dict[str, Any] = {}
    if result is not _UNFINISHED:  # it finished: show its request and result
        extra = {"request": redact(effect.request), "result": result}
    tracer(
        TraceEvent("effect.end", time.time(), position, effect.kind, where.prefix[:-1], ok, **extra)
    )
