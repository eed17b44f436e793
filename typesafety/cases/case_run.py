"""A program runs only with a state of its state type; state-free programs run with any."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import Never, assert_type

from mce import Err, Ok, Step, Waiting, pure, run, run_sync

from ._state import Desk


def program() -> Step[Desk, str, int]:
    raise NotImplementedError


def state_free() -> Step[object, str, int]:
    raise NotImplementedError




assert_type(run_sync(program(), Desk(1)), Ok[Desk, int] | Err[Desk, str] | Waiting[Desk])
run_sync(program(), 5)  # E: mypy[misc] pyright[reportArgumentType]
run_sync(program(), None)  # E: mypy[misc] pyright[reportArgumentType]
assert_type(run_sync(state_free(), None), Ok[None, int] | Err[None, str] | Waiting[None])
assert_type(run_sync(state_free(), Desk(1)), Ok[Desk, int] | Err[Desk, str] | Waiting[Desk])
assert_type(run_sync(pure("x"), 3), Ok[int, str] | Err[int, Never] | Waiting[int])


async def main() -> None:
    assert_type(await run(program(), Desk(1)), Ok[Desk, int] | Err[Desk, str] | Waiting[Desk])
    await run(program(), "desk")  # E: mypy[misc] pyright[reportArgumentType]
