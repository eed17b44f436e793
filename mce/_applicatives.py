"""The applicative combinators: `par`, `gather`, `traverse`, `collect`.

They combine independent steps, which the interpreter runs concurrently;
each builds one parallel-block node of `mce.step`. Import them from `mce`
or `mce.step`.

>>> from mce import pure, run_sync
>>> run_sync(par(pure(1), pure(2)), None).value
(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Never, TypeVar, overload

from mce._runtime.nodes import COLLECT, FAIL_FAST
from mce.errors import Failures
from mce.step import Step, _Par, _Pure

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")
_D = TypeVar("_D")
_F = TypeVar("_F")
_G = TypeVar("_G")
_X = TypeVar("_X")


def _check_limit(limit: int | None, where: str) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"{where}(limit=...) needs an int or None, got {limit!r}")
    if limit < 1:
        raise ValueError(f"{where}(limit=...) needs limit >= 1, got {limit}")
    return limit


def _check_steps(steps: Iterable[object], where: str) -> tuple[Step[Any, Any, Any], ...]:
    result: list[Step[Any, Any, Any]] = []
    for i, s in enumerate(steps):
        if not isinstance(s, Step):
            raise TypeError(f"{where}() argument {i} is not a Step: {s!r}")
        result.append(s)
    return tuple(result)


@overload
def par() -> Step[object, Never, tuple[()]]: ...
@overload
def par(a: Step[_S, _E, _A], /) -> Step[_S, _E, tuple[_A]]: ...
@overload
def par(a: Step[_S, _E, _A], b: Step[_S, _E, _B], /) -> Step[_S, _E, tuple[_A, _B]]: ...
@overload
def par(
    a: Step[_S, _E, _A], b: Step[_S, _E, _B], c: Step[_S, _E, _C], /
) -> Step[_S, _E, tuple[_A, _B, _C]]: ...
@overload
def par(
    a: Step[_S, _E, _A], b: Step[_S, _E, _B], c: Step[_S, _E, _C], d: Step[_S, _E, _D], /
) -> Step[_S, _E, tuple[_A, _B, _C, _D]]: ...
@overload
def par(
    a: Step[_S, _E, _A],
    b: Step[_S, _E, _B],
    c: Step[_S, _E, _C],
    d: Step[_S, _E, _D],
    e: Step[_S, _E, _F],
    /,
) -> Step[_S, _E, tuple[_A, _B, _C, _D, _F]]: ...
@overload
def par(
    a: Step[_S, _E, _A],
    b: Step[_S, _E, _B],
    c: Step[_S, _E, _C],
    d: Step[_S, _E, _D],
    e: Step[_S, _E, _F],
    f: Step[_S, _E, _G],
    /,
) -> Step[_S, _E, tuple[_A, _B, _C, _D, _F, _G]]: ...
@overload
def par(*steps: Step[_S, _E, _X]) -> Step[_S, _E, tuple[_X, ...]]: ...
def par(*steps: Step[Any, Any, Any]) -> Step[Any, Any, tuple[Any, ...]]:
    """Run steps concurrently; the value is the tuple of their values.

    Each branch starts from the same state and the final states are merged
    (`mce.merge`). Fail-fast: the first branch to fail cancels the others.

    >>> from mce import gets, pure, run_sync
    >>> run_sync(par(pure(1), pure("a"), gets(str)), 0).value
    (1, 'a', '0')
    >>> run_sync(par(), 0).value
    ()
    """
    checked = _check_steps(steps, "par")
    if not checked:
        return _Pure(())
    return _Par(checked, None, None, None, FAIL_FAST)


def gather(
    steps: Iterable[Step[_S, _E, _A]], limit: int | None = None
) -> Step[_S, _E, tuple[_A, ...]]:
    """Run any number of steps concurrently, at most `limit` at a time.

    >>> from mce import fail, gets, pure, run_sync
    >>> run_sync(gather([pure(i) for i in range(4)], limit=2), None).value
    (0, 1, 2, 3)
    """
    checked = _check_steps(steps, "gather")
    lim = _check_limit(limit, "gather")
    if not checked:
        return _Pure(())
    return _Par(checked, None, None, lim, FAIL_FAST)


def traverse(
    items: Iterable[_X], f: Callable[[_X], Step[_S, _E, _A]], limit: int | None = None
) -> Step[_S, _E, tuple[_A, ...]]:
    """Apply `f` to every item and run the resulting steps concurrently.

    Branches are built as they start, so `limit` also bounds how many exist.

    >>> from mce import fail, gets, pure, run_sync
    >>> run_sync(traverse("abc", lambda ch: pure(ch.upper()), limit=2), None).value
    ('A', 'B', 'C')
    """
    if not callable(f):
        raise TypeError(f"traverse() needs a callable returning a Step, got {f!r}")
    lim = _check_limit(limit, "traverse")
    xs = tuple(items)
    if not xs:
        return _Pure(())
    return _Par(None, xs, f, lim, FAIL_FAST)


def collect(
    steps: Iterable[Step[_S, _E, _A]], limit: int | None = None
) -> Step[_S, Failures[_E], tuple[_A, ...]]:
    """Run every step concurrently, never cancelling; gather *all* errors.

    If any branch failed, the error is `Failures` listing every error in
    branch order (and the state is left as it was).

    >>> from mce import fail, gets, pure, run_sync
    >>> run_sync(collect([fail("a"), pure(1), fail("b")]), None).error
    Failures(errors=('a', 'b'), branches=(0, 2))
    """
    checked = _check_steps(steps, "collect")
    lim = _check_limit(limit, "collect")
    if not checked:
        return _Pure(())
    return _Par(checked, None, None, lim, COLLECT)


__all__ = ["collect", "gather", "par", "traverse"]
