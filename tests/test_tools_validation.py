"""A tool call validates its arguments once: when its step runs, before the effect.

The function then runs with those very arguments; a retry builds the call
again (validating again), so no attempt sees what an earlier one did to its
arguments. A tool's own handler, called by anything else, still validates
what it is given.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import pytest
from pydantic import AfterValidator

from mce import Journal, Ok, RetryPolicy, Secret, gather, run
from mce.effects import EffectFailed
from mce.tools import ToolError, tool

pytestmark = pytest.mark.anyio

checked: list[int] = []


def counted(n: int) -> int:
    checked.append(n)
    return n


Counted = Annotated[int, AfterValidator(counted)]


@tool
async def double(n: Counted) -> int:
    await anyio.sleep(0)
    return 2 * n


@tool
def double_sync(n: Counted) -> int:
    return 2 * n


@tool(limit=1)
async def double_limited(n: Counted) -> int:
    await anyio.sleep(0)
    return 2 * n


@pytest.fixture(autouse=True)
def _fresh() -> None:
    checked.clear()


@pytest.mark.parametrize("which", [double, double_sync, double_limited])
async def test_each_call_validates_its_arguments_once(anyio_backend: str, which: Any) -> None:
    assert await run(gather([which(n=1), which.call({"n": 2})]), None) == Ok((2, 4), None)
    assert sorted(checked) == [1, 2]


async def test_a_replay_validates_as_the_live_run_did(anyio_backend: str) -> None:
    j = Journal()
    assert await run(double(n=3), None, journal=j) == Ok(6, None)
    assert await run(double(n=3), None, journal=j, mode="replay") == Ok(6, None)
    assert checked == [3, 3]


async def test_a_tools_own_handler_validates_what_it_is_given(anyio_backend: str) -> None:
    assert await double.handle({"n": 4}) == 8
    assert checked == [4]
    with pytest.raises(EffectFailed) as info:
        await double.handle({"n": "four"})
    assert isinstance(info.value.error, ToolError)
    assert info.value.error.kind == "invalid_arguments"


async def test_a_handler_given_to_the_run_gets_the_json_arguments(anyio_backend: str) -> None:
    seen: list[Any] = []

    async def instead(arguments: Any) -> int:
        seen.append(arguments)
        return 0

    out = await run(double(n=5), None, handlers={"tool.double": instead})
    assert (out, seen, checked) == (Ok(0, None), [{"n": 5}], [5])


async def test_every_retry_attempt_gets_arguments_of_its_own(anyio_backend: str) -> None:
    seen: list[list[int]] = []

    @tool
    async def pop_last(items: list[int]) -> int:
        seen.append(list(items))
        last = items.pop()
        if len(seen) == 1:
            raise RuntimeError("once")
        return last

    step = pop_last(items=[1, 2]).retry(RetryPolicy(attempts=2, backoff=0))
    assert await run(step, None) == Ok(2, None)
    assert seen == [[1, 2], [1, 2]]


async def test_a_secret_argument_reaches_the_function_as_its_value(anyio_backend: str) -> None:
    got: list[Any] = []

    @tool
    async def login(token: str, extra: Any = None) -> int:
        got.append((token, extra))
        return len(token)

    j = Journal()
    call = login.call({"token": Secret("s3cret"), "extra": [Secret("more")]})
    assert await run(call, None, journal=j) == Ok(6, None)
    # a secret where anything goes is valid as it is: the function still gets its value
    untyped = login.call({"token": "plain", "extra": [Secret("more")]})
    j2 = Journal()
    assert await run(untyped, None, journal=j2) == Ok(5, None)
    assert got == [("s3cret", ["more"]), ("plain", ["more"])]
    assert "s3cret" not in repr(j.load()) and "more" not in repr((j.load(), j2.load()))
