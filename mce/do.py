"""Generator do-notation: write a sequence of binds as straight-line code.

Inside a function decorated with `@do`, `x = yield step` binds the step's
value to `x`, and `return value` ends the workflow with that value. Each run
of the resulting step starts a fresh generator, so the step is reusable.

>>> from mce import get, put, pure, run_sync
>>> @do
... def bump(by: int):
...     n = yield get()
...     yield put(n + by)
...     return n
>>> run_sync(bump(5), 1)
Ok(value=1, state=6)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Any, ParamSpec, TypeVar

from mce.step import Step, _Defer, _Pure, _Then

_P = ParamSpec("_P")
_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")


def do(
    fn: Callable[_P, Generator[Step[_S, _E, Any], Any, _A]],
) -> Callable[_P, Step[_S, _E, _A]]:
    """Turn a generator function yielding steps into a function returning a step.

    A yielded value that is not a `Step` is a bug: `TypeError` names the
    function and the value.

    >>> from mce import fail, run_sync
    >>> @do
    ... def checked(x: int):
    ...     if x < 0:
    ...         yield fail("negative")
    ...     return x * 2
    >>> run_sync(checked(-1), None), run_sync(checked(4), None)
    (Err(error='negative', state=None), Ok(value=8, state=None))
    """

    @functools.wraps(fn)
    def build(*args: _P.args, **kwargs: _P.kwargs) -> Step[_S, _E, _A]:
        return _Defer(lambda: _resume(fn, fn(*args, **kwargs), None), fn)

    return build


def _resume(
    fn: Callable[..., Any], gen: Generator[Step[Any, Any, Any], Any, Any], sent: object
) -> Step[Any, Any, Any]:
    try:
        step = gen.send(sent)
    except StopIteration as stop:
        return _Pure(stop.value)
    if not isinstance(step, Step):
        gen.close()
        raise TypeError(
            f"@do function {fn.__qualname__} yielded {step!r}, which is not a Step; "
            "yield only steps (x = yield step)"
        )
    return _Then(step, lambda value: _resume(fn, gen, value))


__all__ = [
    "do",
]
