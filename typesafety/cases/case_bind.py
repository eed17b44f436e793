"""`.then` checks its callback's argument and keeps one state type along the chain."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import Never, assert_type

from mce import Step, StepTimeout, fail, gets, pure, put

from ._state import Desk


def count() -> Step[Desk, Never, int]:
    raise NotImplementedError


def risky() -> Step[Desk, int, int]:
    raise NotImplementedError


def on_int() -> Step[int, Never, int]:
    raise NotImplementedError


def needs_str(text: str) -> Step[Desk, Never, str]:
    raise NotImplementedError




assert_type(count().then(lambda n: pure(str(n))), Step[Desk, Never, str])
assert_type(count().then(lambda n: fail("no") if n < 0 else pure(n)), Step[Desk, str, int])
count().then(needs_str)  # E: mypy[arg-type] pyright[reportArgumentType]
count().then(lambda n: on_int())  # E: mypy[arg-type,return-value] pyright[reportArgumentType]
# pyright widens put's state type to `Desk | int` here (docs/semantics.md).
count().then(lambda n: put(n))  # E: mypy[arg-type]
assert_type(count().map(str), Step[Desk, Never, str])
assert_type(count().timeout(1.0), Step[Desk, StepTimeout, int])
assert_type(risky().recover(lambda e: pure(str(e))), Step[Desk, Never, int | str])
assert_type(count().map_error(str), Step[Desk, str, int])


def typed_state() -> Step[Desk, Never, int]:
    return gets(lambda d: d.count)


def wrong_state() -> Step[Desk, Never, int]:
    return on_int()  # E: mypy[return-value] pyright[reportReturnType]
