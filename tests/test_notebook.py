"""`run_sync` inside a running event loop (a notebook, an async function) says to `await run(...)`."""

from __future__ import annotations

import asyncio

import pytest
import trio

from mce import pure, run, run_sync


def test_run_sync_inside_asyncio_says_to_await_run() -> None:
    async def cell() -> None:
        run_sync(pure(1), None)

    with pytest.raises(RuntimeError, match=r"await run\(\.\.\.\)") as info:
        asyncio.run(cell())
    assert "event loop" in str(info.value)


def test_run_sync_inside_trio_says_to_await_run() -> None:
    async def cell() -> None:
        run_sync(pure(1), None, backend="trio")

    with pytest.raises(RuntimeError, match=r"await run\(\.\.\.\)"):
        trio.run(cell)


def test_await_run_is_the_way_in_a_running_loop() -> None:
    async def cell() -> object:
        return (await run(pure(2), None)).value

    assert asyncio.run(cell()) == 2
