"""State-free steps (`pure`, `fail`, `lift`, effects) are `Step[object, ...]` and fit any state."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from collections.abc import Generator
from typing import Any, Never, assert_type

from mce import Step, do, fail, get, gets, lift, modify, par, pure, put, run_sync

from ._state import Desk


def count() -> Step[Desk, Never, int]:
    raise NotImplementedError


def risky() -> Step[Desk, str, int]:
    raise NotImplementedError


def state_free() -> Step[object, str, int]:
    raise NotImplementedError


async def fetch() -> bytes:
    return b""


def bump(d: Desk) -> Desk:
    return d


def count_of(d: Desk) -> int:
    return d.count


assert_type(pure(1), Step[object, Never, int])
assert_type(lift(fetch), Step[object, Never, bytes])
assert_type(state_free().then(lambda n: count()), Step[Desk, str, int])
assert_type(count().then(lambda n: state_free()), Step[Desk, str, int])
assert_type(lift(fetch).then(lambda page: modify(bump)), Step[Desk, Never, None])
assert_type(gets(count_of), Step[Desk, Never, int])
assert_type(par(lift(fetch), count()), Step[Desk, Never, tuple[bytes, int]])
assert_type(pure(3).then(put), Step[int, Never, None])
risky().recover(lambda e: put(5))  # E: mypy[arg-type]  (pyright widens: see put_wrong)
x = pure(1)
assert_type(run_sync(x, None).state, None)


def from_context() -> Step[Desk, str, int]:
    return pure(1).then(lambda n: fail("no") if n < 0 else count())


def state_typed() -> Step[Desk, Never, Desk]:
    return get()


@do
def flow(by: int) -> Generator[Step[Desk, Never, Any], Any, int]:
    n: int = yield count()
    yield modify(bump)
    return n + by


assert_type(flow(1), Step[Desk, Never, int])
flow("one")  # E: mypy[arg-type] pyright[reportArgumentType]
run_sync(flow(1), 7)  # E: mypy[misc] pyright[reportArgumentType]


# Limits (docs/semantics.md, "What the types check").
def put_wrong() -> Step[Desk, Never, None]:
    # pyright widens put's state type to `Desk | int`, which a contravariant
    # state parameter accepts; mypy takes the state type from the context.
    return put(5)  # E: mypy[arg-type]


def lambda_without_context() -> Step[Desk, Never, int]:
    # A lambda's parameter needs a type from its context; a receiver of
    # `.then` has none. Use a typed function (`gets(count_of)`) instead.
    return gets(lambda d: d.count).then(lambda n: pure(n))  # E: mypy[return-value] pyright[reportAttributeAccessIssue]


# Where a Step[Desk, ...] is expected, both checkers type a state-free step
# followed by a write as a state-free step: the write is not checked.
risky().recover(lambda e: pure(0).then(lambda _: put(5)))

# mypy does not infer get()'s state type from the state passed to run.
run_sync(get(), 1)  # E: mypy[arg-type]
