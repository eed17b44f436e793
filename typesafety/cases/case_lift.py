"""`lift(fn, *args)` checks the arguments against `fn`'s parameters, as anyio's `start_soon` does."""

# fmt: off
# (an expected error's marker stays on the line the checkers report)

from typing import Never, assert_type

from mce import Step, gather, lift, pure


async def fetch(url: str, page: int) -> bytes:
    return b""


async def ping() -> None:
    return None


def parse(text: str) -> int:
    return len(text)


def pair(point: tuple[int, int]) -> int:
    return point[0]


# The zero-argument form, as before.
assert_type(lift(ping), Step[object, Never, None])
assert_type(lift(thunk=ping), Step[object, Never, None])
assert_type(lift(lambda: parse("x")), Step[object, Never, int])
# Arguments of the right types: the step's value is what `fn` returns (awaited).
assert_type(lift(fetch, "u", 2), Step[object, Never, bytes])
assert_type(lift(parse, "text"), Step[object, Never, int])
assert_type(lift(pair, (1, 2)), Step[object, Never, int])
assert_type(pure(3).then(lambda n: lift(fetch, "u", n)), Step[object, Never, bytes])
assert_type(gather([lift(fetch, "u", n) for n in range(3)]), Step[object, Never, tuple[bytes, ...]])
# Arguments of the wrong types, too many or too few.
lift(fetch, "u", "2")  # E: mypy[arg-type,call-arg] pyright[reportArgumentType,reportCallIssue]
lift(parse, 1)  # E: mypy[arg-type] pyright[reportArgumentType,reportCallIssue]
lift(pair, 1, 2)  # E: mypy[arg-type,call-arg] pyright[reportArgumentType,reportCallIssue]
lift(fetch, "u")  # E: mypy[arg-type] pyright[reportArgumentType,reportCallIssue]
lift(ping, 1)  # E: mypy[arg-type] pyright[reportArgumentType,reportCallIssue]
lift(parse)  # E: mypy[arg-type,call-arg] pyright[reportArgumentType,reportCallIssue]
