"""The trampoline: run a program's nodes in a flat loop until one must await.

`advance` runs everything that needs no awaiting (pure values, state,
binds, maps, error handling, effects served from a journal) with an
explicit continuation stack - a chain of a million binds uses no Python
recursion. It stops at the first node that must await (a lifted coroutine,
a live effect, a parallel block with awaiting branches, a timeout or budget,
an unfinished shared step) and returns a stop code with a payload for the
async driver (`mce._runtime.driver`), which awaits it and calls `advance`
again.

>>> from mce import pure
>>> from mce._runtime.context import Seq
>>> advance(pure(1).map(str), [], None, None, Seq(None, None, None, ""))  # no run needed here
(0, '1', None)
"""

from __future__ import annotations

from typing import Any

from mce._runtime import parallel as _parallel
from mce._runtime.context import RunContext, Seq
from mce._runtime.diagnostics import annotate, not_a_step, trace_served, trace_step
from mce._runtime.nodes import AWAIT, BUDGET_SCOPE, EFFECT_LIVE, ERR, NODE, OK, TIMEOUT_SCOPE
from mce._runtime.replay import error_type
from mce.outcome import Err
from mce.step import _NO_ARG, _Fail, _Then


def advance(
    node: Any, stack: list[Any], state: Any, run: RunContext, where: Seq, came_from: Any = None
) -> tuple[int, Any, Any]:
    """Run `node` with continuation `stack` until it finishes or must await.

    `came_from` is the frame whose callback returned `node`, when the
    caller has just called it (the driver's chain of lifted steps): a bug
    - `node` not being a step, say - is then reported against that
    callback, as if this loop had called it.

    The stack holds continuation frames - the `.then`/`.map`/`.recover`/
    `.map_error`/`.named` nodes themselves, so pushing allocates nothing; a
    recover frame sits on top of the state saved when it was entered.
    Node tags are literal ints, not the named constants of
    `mce._runtime.nodes`: this loop is the hot path, and a literal saves a
    global lookup per node. Each literal carries its constant's name in a
    comment; `tests/test_runtime_nodes.py` checks that they agree and that
    every tag of the closed set is handled here.
    """
    cur = node if came_from is None else came_from
    push = stack.append
    pop = stack.pop
    then_type = _Then
    no_arg = _NO_ARG
    no_more = ()
    try:
        while True:
            # A callback's result is checked here: a Step has a `_tag`. (An
            # isinstance check per bind would cost a tenth of the bind.)
            try:
                t = node._tag
            except AttributeError:
                raise not_a_step(cur, node, stack, where) from None
            if t == 1:  # THEN
                push(node)
                node = node.step
                # A left-nested chain (`s.then(f).then(g)...`): descend it in one go,
                # testing the type (cheaper than reading the `_tag` class attribute).
                while type(node) is then_type:
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
                        trace_step(run.tracer, "step.end", frame.name, where, False)
                else:
                    return (ERR, err, state)
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
                    trace_step(run.tracer, "step.start", node.name, where, None)
                push(node)
                node = node.step
                continue
            elif t == 11:  # DEFER
                cur = node
                node = node.thunk()  # checked at the top of the loop
                continue
            elif t == 12:  # LIFT: an async callable returns its coroutine, awaited by the driver
                cur = node
                arg = node.arg  # `_Lift.call`, inlined
                thunk = node.thunk
                if arg is no_arg:
                    value = thunk()
                elif node.more is no_more:  # `*more` of no argument: the one empty tuple
                    value = thunk(arg)
                else:
                    value = thunk(arg, *node.more)
                if hasattr(value, "__await__"):
                    return (AWAIT, (node, value), state)
            elif t == 15:  # SHARE: finished already? then no need to await
                cell = run.shares.get(node)
                if cell is None or cell.outcome is None:
                    return (NODE, node, state)
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
                    exceeded = effects.charge_call(where.budget, position)
                    if exceeded is not None:
                        node = _Fail(exceeded)
                        continue
                if effects.serving:
                    cur = node
                    entry = effects.lookup(position, node.kind, node.request, node.fp)
                    if entry is not None and run.tracer is not None:
                        trace_served(run.tracer, entry, node.kind, where.prefix[:-1])
                    if entry is not None:
                        if entry.ok:
                            value = entry.value
                            if type(value) is dict or type(value) is list or node.into is not None:
                                value = effects.value(entry, node.into)
                            if type(value) is not int and type(value) is not str:
                                effects.account(value)
                                if where.budget is not None:
                                    exceeded = effects.charge_served(where.budget, position, value)
                                    if exceeded is not None:
                                        node = _Fail(exceeded)
                                        continue
                        else:
                            node = _Fail(effects.value(entry, error_type(node)))
                            continue
                    else:
                        return (EFFECT_LIVE, (node, position), state)
                else:
                    return (EFFECT_LIVE, (node, position), state)
            elif t == 13:  # PAR: branches run inline as far as they can
                cur = node
                k = where.n
                where.n = k + 1
                block = _parallel.start_block(node, state, run, where, stack, k)
                if block.pending or block.lean_count or block.must_record:
                    return (NODE, block, state)
                out = _parallel.outcome(block)
                state = out.state
                if type(out) is Err:
                    node = _Fail(out.error)
                    continue
                value = out.value
            elif t == 14:  # TIMEOUT
                k = where.n
                where.n = k + 1
                return (TIMEOUT_SCOPE, (node, k), state)
            elif t == 17:  # BUDGET
                k = where.n
                where.n = k + 1
                return (BUDGET_SCOPE, (node, k), state)
            else:
                raise not_a_step(cur, node, stack, where)

            # A value: unwind to the nearest .then, applying maps on the way.
            while stack:
                frame = pop()
                if type(frame) is then_type:  # THEN
                    cur = frame
                    f = frame.f  # read, then called: a method call would look it up slowly
                    node = f(value)  # checked at the top of the loop
                    break
                ft = frame._tag
                if ft == 2:  # MAP
                    cur = frame
                    f = frame.f
                    value = f(value)
                elif ft == 8:  # RECOVER: not needed, drop its saved state
                    pop()
                elif ft == 10 and run.tracer is not None:
                    trace_step(run.tracer, "step.end", frame.name, where, True)
            else:
                return (OK, value, state)
    except Exception as exc:
        annotate(exc, cur, stack, where)
        raise
