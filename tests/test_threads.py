"""Sync handlers and sync tools run in worker threads: in parallel, bounded, and abandonable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mce import (
    Budget,
    BudgetExceeded,
    Err,
    Journal,
    Ok,
    StepTimeout,
    effect,
    gather,
    par,
    run,
    within_budget,
)
from mce.events import TraceEvent
from mce.executors import LocalExecutor
from mce.tools import tool

pytestmark = pytest.mark.anyio

# Long enough never to trip on a loaded machine; a run that passes does not wait for it.
PATIENCE = 10.0


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event blocking tools wait on; set at the end of the test, so no thread is left behind."""
    event = threading.Event()
    yield event
    event.set()


async def test_three_sync_handlers_in_par_run_concurrently() -> None:
    # Each handler can only get past the barrier once all three wait on it at the same time.
    barrier = threading.Barrier(3, timeout=PATIENCE)

    def meet(request: int) -> int:
        barrier.wait()
        return request

    out = await run(par(*(effect("meet", i, handler=meet) for i in range(3))), None)
    assert out == Ok((0, 1, 2), None)


@tool
def rendezvous(key: str) -> str:
    "Wait for two others."
    _barriers[key].wait()
    return key


_barriers: dict[str, threading.Barrier] = {}


async def test_three_sync_tools_in_par_run_concurrently(anyio_backend: str) -> None:
    key = f"tools-{anyio_backend}"
    _barriers[key] = threading.Barrier(3, timeout=PATIENCE)
    out = await run(gather([rendezvous(key) for _ in range(3)]), None)
    assert out == Ok((key, key, key), None)


def _blocking(release: threading.Event, finished: threading.Event) -> Any:
    def wait(request: Any) -> str:
        release.wait(PATIENCE)
        finished.set()
        return "late"

    return wait


async def test_a_timeout_fires_around_a_blocking_handler(release: threading.Event) -> None:
    finished = threading.Event()
    journal = Journal()
    events: list[TraceEvent] = []
    prog = effect("block", 1, handler=_blocking(release, finished)).named("block").timeout(0.1)
    out = await run(prog, None, journal=journal, trace=events.append)
    assert out == Err(StepTimeout(0.1, "block"))
    assert not finished.is_set()  # the run did not wait for the thread
    # The abandoned thread runs on; its result is discarded, never journaled.
    release.set()
    assert finished.wait(PATIENCE)
    _, entries = journal.load()
    assert [e for e in entries if e.get("kind") == "block"] == []
    ends = [(e.event, e.ok) for e in events if e.name == "block" and e.event.startswith("effect")]
    assert ends == [("effect.start", None), ("effect.end", False)]


async def test_a_time_budget_fires_around_a_blocking_handler(release: threading.Event) -> None:
    finished = threading.Event()
    prog = within_budget(
        effect("block", 1, handler=_blocking(release, finished)), Budget(max_seconds=0.1)
    )
    out = await run(prog, None)
    assert out == Err(BudgetExceeded("seconds", 0.1))
    assert not finished.is_set()


_released: dict[str, threading.Event] = {}


@tool
def stuck(key: str) -> str:
    "Blocks until released."
    _released[key].wait(PATIENCE)
    return "late"


async def test_a_timeout_fires_around_a_blocking_tool(
    anyio_backend: str, release: threading.Event
) -> None:
    key = f"stuck-{anyio_backend}"
    _released[key] = release
    journal = Journal()
    out = await run(stuck(key).timeout(0.1), None, journal=journal)
    assert isinstance(out, Err) and isinstance(out.error, StepTimeout)
    _, entries = journal.load()
    assert [e for e in entries if e.get("kind") == "tool.stuck"] == []


async def test_the_thread_limit_bounds_concurrent_sync_handlers() -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def count(request: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        # Give a second thread the chance to enter while this one is inside.
        entered.wait(0.05)
        with lock:
            running[0] -= 1
        return request

    entered = threading.Event()
    prog = gather([effect("count", i, handler=count) for i in range(6)])
    out = await run(prog, None, executor=LocalExecutor(threads=1))
    assert out == Ok(tuple(range(6)), None)
    assert peak[0] == 1
    # Two threads allowed: two handlers meet at a barrier of two.
    barrier = threading.Barrier(2, timeout=PATIENCE)
    pair = par(*(effect("meet", i, handler=lambda r: barrier.wait() * 0 + r) for i in range(2)))
    assert await run(pair, None, executor=LocalExecutor(threads=2)) == Ok((0, 1), None)


def test_thread_limit_is_checked() -> None:
    with pytest.raises(ValueError, match=r"LocalExecutor\(threads=\.\.\.\) must be at least 1"):
        LocalExecutor(threads=0)
    with pytest.raises(TypeError, match=r"LocalExecutor\(threads=\.\.\.\) must be an int"):
        LocalExecutor(threads="4")  # type: ignore[arg-type]


async def test_async_handlers_stay_on_the_event_loop_thread() -> None:
    async def where(request: Any) -> bool:
        return threading.current_thread() is threading.main_thread()

    def where_sync(request: Any) -> bool:
        return threading.current_thread() is threading.main_thread()

    prog = par(effect("a", 1, handler=where), effect("s", 1, handler=where_sync))
    assert await run(prog, None) == Ok((True, False), None)


async def test_a_nonblocking_handler_stays_on_the_event_loop() -> None:
    from mce.executors import nonblocking
    from mce.llm import ScriptedModel, chat, scripted_handler

    @nonblocking
    def where(request: Any) -> bool:
        return threading.current_thread() is threading.main_thread()

    assert await run(effect("w", 1, handler=where), None) == Ok(True, None)
    # A scripted model is cheap: it answers on the event loop, as it always did.
    seen: list[bool] = []

    def on_loop(messages: Any) -> bool:
        seen.append(threading.current_thread() is threading.main_thread())
        return True

    model = ScriptedModel().when(matches=on_loop, reply="x")
    asks = gather([chat([f"q{i}"]) for i in range(3)])
    out = await run(asks, None, handlers={"llm.chat": scripted_handler(model)})
    assert isinstance(out, Ok) and seen == [True, True, True]
    with pytest.raises(TypeError, match="nonblocking\\(\\) needs a callable"):
        nonblocking(3)  # type: ignore[arg-type]
