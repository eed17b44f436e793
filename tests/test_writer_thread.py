"""The writer thread: a call run in it, writes after it, and threads kept for later writers.

A run opens its journal file in the thread that will write it (`WriteThread.call`),
and a closed writer's thread waits for the next writer instead of ending, so a
run neither starts a thread nor waits for one to end.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mce._runtime import write_thread
from mce._runtime.write_thread import WriteThread

pytestmark = pytest.mark.anyio


class Seen:
    """A `write` that notes what it wrote and on which thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.threads: list[int] = []

    def __call__(self, items: list[Any]) -> None:
        self.items += items
        self.threads.append(threading.get_ident())


def _let_go(thread: WriteThread[Any]) -> None:
    """Close `thread` and return once its thread waits for the next writer."""
    pipe = thread._pipe
    thread.close()
    assert pipe is not None
    assert pipe.done.wait(30), "the thread never let go"


async def test_a_call_runs_in_the_writer_thread_before_the_writes(anyio_backend: str) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    ident = await thread.call(threading.get_ident)
    assert ident != threading.get_ident()  # not the event loop's thread
    assert await thread.call(lambda: threading.current_thread().name) == "mce-journal"
    await thread.wait(thread.submit([1, 2]))
    assert seen.items == [1, 2] and seen.threads == [ident]
    assert await thread.call(lambda a, b: a + b, 3, 4) == 7
    _let_go(thread)


async def test_what_a_call_raises_is_raised_and_the_thread_still_writes(
    anyio_backend: str,
) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    error = OSError(13, "Permission denied")

    def fails() -> None:
        raise error

    with pytest.raises(OSError) as caught:
        await thread.call(fails)
    assert caught.value is error
    await thread.wait(thread.submit(["after"]))
    assert seen.items == ["after"]
    _let_go(thread)


async def test_a_closed_writers_thread_writes_for_the_next_writer(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_thread, "_KEEP", len(write_thread._waiting) + 1)  # room for one
    first, second = Seen(), Seen()
    one = WriteThread(first)
    await one.wait(one.submit([1]))
    _let_go(one)
    two = WriteThread(second)
    await two.wait(two.submit([2]))
    assert second.threads == first.threads  # the same thread, not a new one
    _let_go(two)


async def test_close_lets_the_thread_write_what_was_submitted(anyio_backend: str) -> None:
    seen = Seen()
    thread = WriteThread(seen)
    thread.submit(list(range(50)))
    thread.close()  # not waited for: close writes it first
    assert seen.items == list(range(50))
    thread.close()  # closing twice does nothing


async def test_only_so_many_threads_wait_for_a_writer(anyio_backend: str) -> None:
    threads = [WriteThread(Seen()) for _ in range(write_thread._KEEP + 2)]
    for thread in threads:  # every writer busy at once: each has a thread of its own
        thread.submit([0])
    for thread in threads:
        await thread.wait(1)
    idents = {t._write.threads[0] for t in threads}  # type: ignore[attr-defined]
    assert len(idents) == len(threads)
    for thread in threads:
        _let_go(thread)
    assert len(write_thread._waiting) == write_thread._KEEP
