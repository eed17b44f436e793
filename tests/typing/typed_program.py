"""A typical typed user program; `tests/test_typing.py` checks it with mypy --strict."""

from __future__ import annotations

from typing import Never, assert_type

from attrs import frozen

from mce import (
    Err,
    Ok,
    Question,
    Step,
    Waiting,
    ask,
    fail,
    gather,
    gets,
    lift,
    par,
    pure,
    run_sync,
    traverse,
)


@frozen
class Desk:
    count: int


async def fetch() -> str:
    return "page"


def count_of(desk: Desk) -> int:
    return desk.count


def checked() -> Step[Desk, str, int]:
    return gets(count_of).then(lambda n: pure(n + 1) if n >= 0 else fail("negative"))


def both() -> Step[Desk, str, tuple[int, str]]:
    return par(checked(), lift(fetch))


def summary() -> Step[Desk, str, str]:
    return both().map(lambda pair: pair[1] * pair[0]).recover(lambda e: pure(f"failed: {e}"))


outcome = run_sync(summary(), Desk(1))
assert_type(outcome, Ok[Desk, str] | Err[Desk, str] | Waiting[Desk])
if isinstance(outcome, Ok):
    assert_type(outcome.value, str)
elif isinstance(outcome, Waiting):
    assert_type(outcome.questions, tuple[Question, ...])
else:
    assert_type(outcome.error, str)
assert_type(ask("How many?", into=int), Step[object, Never, int])
assert_type(checked().then(lambda n: ask(f"{n}?", into=bool)), Step[Desk, str, bool])
assert_type(par(pure(1), pure("a")), Step[object, Never, tuple[int, str]])
assert_type(gather([pure(1), pure(2)]).map(lambda xs: xs[0]), Step[object, Never, int])
assert_type(traverse(["a"], lambda s: pure(len(s))), Step[object, Never, tuple[int, ...]])
assert_type(lift(fetch).then(lambda page: fail(len(page))), Step[object, int, Never])
