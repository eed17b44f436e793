"""The denotation of a `Step` in the reference stack `StateT(EitherT(ASYNC))`.

`denote(step)` translates a program into the slow, obviously-correct
reference monads. The interpreter (`mce.run`) must agree with it on every
program it covers - the property `laws/` and `tests/` check. A parallel
block is denoted by sequential composition (left to right), which is what it
equals when its branches touch disjoint parts of the state.

>>> import anyio
>>> from mce import get, put, pure
>>> prog = get().then(lambda n: put(n + 1)).then(lambda _: pure("done"))
>>> anyio.run(run_denotation, prog, 1)
Right(value=('done', 2))
"""

from __future__ import annotations

import inspect
from typing import Any

from mce._runtime import nodes as n
from mce.step import Step
from mce.transformers.async_ import ASYNC, Thunk
from mce.transformers.either import EitherT, Left, Right
from mce.transformers.state import StateFn, StateT, run_state

EITHER = EitherT(ASYNC)
STACK = StateT(EITHER)
"""mce's stack, `StateT S (EitherT E Async)`: failure rolls the state back."""


def _lift_thunk(node: Any) -> Thunk:
    if inspect.iscoroutinefunction(node.thunk):
        return Thunk(node.call)

    async def call() -> Any:
        value = node.call()
        if hasattr(value, "__await__"):
            return await value
        return value

    return Thunk(call)


def denote(step: Step[Any, Any, Any]) -> StateFn:
    """The reference meaning of `step`: a `StateT(EitherT(ASYNC))` value.

    Covers every constructor except `.timeout` and `collect`, whose meaning
    involves time and error accumulation (`TypeError` for those).

    >>> import anyio
    >>> from mce import fail, pure
    >>> anyio.run(run_denotation, fail("e").recover(lambda e: pure(e * 2)), None)
    Right(value=('ee', None))
    """
    S = STACK
    node: Any = step
    t = node._tag
    if t == n.PURE:
        return S.pure(node.value)
    if t == n.FAIL:
        return S.throw(node.error)
    if t == n.GET:
        return S.get()
    if t == n.PUT:
        return S.put(node.state)
    if t == n.MODIFY:
        return S.modify(node.f)
    if t == n.GETS:
        return S.gets(node.f)
    if t == n.THEN:
        return S.bind(denote(node.step), lambda a: denote(node.f(a)))
    if t == n.RECOVER:
        return S.catch(denote(node.step), lambda e: denote(node.f(e)))
    if t == n.MAP_ERROR:
        return S.catch(denote(node.step), lambda e: S.throw(node.f(e)))
    if t in (n.NAMED, n.SHARE):
        return denote(node.step)
    if t == n.DEFER:
        return StateFn(lambda s: denote(node.thunk()).fn(s))
    if t == n.MAP:
        mapped: StateFn = S.map(denote(node.step), node.f)
        return mapped
    if t == n.LIFT:
        return S.lift(EITHER.lift(_lift_thunk(node)))
    if t == n.PAR and node.mode == n.FAIL_FAST:
        count = len(node)

        def branch(i: int) -> Step[Any, Any, Any]:
            built: Step[Any, Any, Any] = (
                node.steps[i] if node.steps is not None else node.f(node.items[i])
            )
            return built

        def from_(i: int, acc: tuple[Any, ...]) -> StateFn:
            if i == count:
                return S.pure(acc)
            return S.bind(denote(branch(i)), lambda a: from_(i + 1, (*acc, a)))

        return from_(0, ())
    raise TypeError(f"no reference denotation for {step!r}")


async def run_denotation(step: Step[Any, Any, Any], state: Any) -> Left | Right:
    """Run `denote(step)` from `state`: `Right((value, state))` or `Left(error)`.

    >>> import anyio
    >>> from mce import gets
    >>> anyio.run(run_denotation, gets(len), "abc")
    Right(value=(3, 'abc'))
    """
    result: Left | Right = await run_state(denote(step), state).make()
    return result


__all__ = ["EITHER", "STACK", "denote", "run_denotation"]
