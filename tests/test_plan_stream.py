"""Dispatch while the plan streams: tasks start as their lines arrive; replay and resume agree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mce import Err, Journal, Ok, run, run_sync
from mce.plan import PlanInvalid
from mce.plan.live import stream_plan
from mce.tools import Registry, tool

BACKENDS = ["asyncio", "trio"]
started: dict[str, anyio.Event] = {}
log: list[str] = []


@tool
async def search(query: str) -> str:
    "Search."
    log.append(f"search {query}")
    if query in started:
        started[query].set()
    await anyio.sleep(0)
    return f"<{query}>"


@tool
def join_text(parts: list[str]) -> str:
    "Join texts."
    log.append("join_text")
    return " + ".join(parts)


TOOLS = Registry([search, join_text])


def chunks(
    *pieces: str, wait_for: dict[int, str] | None = None
) -> Callable[[], AsyncIterator[str]]:
    """A planner that streams `pieces`, optionally waiting for a task to start before piece i."""

    async def stream() -> AsyncIterator[str]:
        log.append("planner called")
        for i, piece in enumerate(pieces):
            if wait_for and i in wait_for:
                await started[wait_for[i]].wait()
            await anyio.sleep(0)
            yield piece

    return stream


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_starts_while_the_rest_of_the_plan_is_still_streaming(backend: Any) -> None:
    log.clear()
    planner = chunks(
        '1. search("a',
        'lpha")\n2. sear',
        'ch("beta")\n3. join_text(["$1", $2])\n',
        "4. join()<END_OF_PLAN>",
        wait_for={2: "alpha"},  # the planner only goes on once task 1 has started
    )

    async def main() -> Any:
        started["alpha"] = anyio.Event()
        with anyio.fail_after(
            10
        ):  # a safety net: without dispatch while streaming this waits forever
            return await run(stream_plan(planner, TOOLS), None)

    out = anyio.run(main, backend=backend)
    assert out == Ok({"1": "<alpha>", "2": "<beta>", "3": "<alpha> + <beta>"}, None)
    assert log[:2] == ["planner called", "search alpha"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_invalid_line_fails_the_run_before_anything_that_needs_it_starts(backend: Any) -> None:
    log.clear()
    planner = chunks('1. search("x")\n', "2. serch('y')\n", '3. join_text(["$2"])\n', "4. join()")
    j = Journal()
    out = run_sync(stream_plan(planner, TOOLS), None, journal=j, backend=backend)
    assert isinstance(out, Err) and isinstance(out.error, PlanInvalid)
    assert (
        str(out.error.problems[0])
        == "task '2': line 2: unknown tool 'serch' (available: ['search', 'join_text'])"
    )
    assert "join_text" not in log
    assert not any(e["pos"].startswith("s:task:3") for e in j.load()[1])
    out = run_sync(stream_plan(chunks("1. search(", "'x'"), TOOLS), None, backend=backend)
    assert isinstance(out, Err) and "line 1: expected" in str(out.error.problems[0])


def _never() -> AsyncIterator[str]:
    raise AssertionError("a replay does not call the planner")


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_and_resume_make_the_same_dispatches(backend: Any) -> None:
    log.clear()
    planner = chunks('1. search("a")\n2. search("b")\n', '3. join_text(["$1", "$2"])\n4. join()')
    j = Journal()
    out = run_sync(stream_plan(planner, TOOLS), None, journal=j, backend=backend)
    assert out.ok
    order = [e["ok"] for e in j.load()[1] if e["kind"] == "plan.next"]
    log.clear()
    assert (
        run_sync(stream_plan(_never, TOOLS), None, journal=j, mode="replay", backend=backend) == out
    )
    assert log == []
    header, entries = j.load()
    for keep in range(len(entries)):
        crashed = Journal()
        crashed.write([header, *entries[:keep]] if header else entries[:keep])
        assert (
            run_sync(
                stream_plan(planner, TOOLS), None, journal=crashed, mode="resume", backend=backend
            )
            == out
        )
        resumed_order = [e["ok"] for e in crashed.load()[1] if e["kind"] == "plan.next"]
        recorded = [e["ok"] for e in entries[:keep] if e["kind"] == "plan.next"]
        assert resumed_order[: len(recorded)] == recorded
    assert order  # every line and completion was a journaled decision


@st.composite
def streamed_plans(draw: st.DrawFn) -> tuple[list[str], str]:
    n = draw(st.integers(1, 6))
    lines = []
    for i in range(1, n + 1):
        refs = draw(st.lists(st.integers(1, i - 1), max_size=2, unique=True)) if i > 1 else []
        if refs:
            lines.append(f"{i}. join_text([{', '.join(f'${r}' for r in refs)}])")
        else:
            lines.append(f'{i}. search("q{i}")')
    text = "\n".join([*lines, f"{n + 1}. join()"])
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8, unique=True)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]
    return pieces, text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streamed_plans(), st.sampled_from(BACKENDS), st.integers(0, 100))
def test_streamed_runs_replay_and_resume_exactly(case: Any, backend: str, cut: int) -> None:
    pieces, _text = case
    planner = chunks(*pieces)
    j = Journal()
    out = run_sync(stream_plan(planner, TOOLS), None, journal=j, backend=backend)
    assert out.ok
    assert (
        run_sync(stream_plan(_never, TOOLS), None, journal=j, mode="replay", backend=backend) == out
    )
    header, entries = j.load()
    keep = cut * len(entries) // 100
    crashed = Journal()
    crashed.write([header, *entries[:keep]] if header else entries[:keep])
    assert (
        run_sync(stream_plan(planner, TOOLS), None, journal=crashed, mode="resume", backend=backend)
        == out
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plan_streamed_by_an_openai_compatible_endpoint(backend: Any) -> None:
    from mce.llm import ScriptedModel, say
    from mce.plan.live import openai_stream
    from mce.testing.openai_server import OpenAIServer

    text = '1. search("a")\n2. search("b")\n3. join_text(["$1", "$2"])\n4. join()<END_OF_PLAN>'
    model = ScriptedModel().when("plan", say(text))
    with OpenAIServer(model, api_key="sk-plan") as server:
        planner = openai_stream(
            [{"role": "user", "content": "plan it"}],
            base_url=server.base_url,
            api_key="sk-plan",
            model="scripted-1",
        )
        j = Journal()
        for _ in range(2):  # a fresh client per run: a second event loop works too
            out = run_sync(stream_plan(planner, TOOLS), None, journal=Journal(), backend=backend)
            assert out == Ok({"1": "<a>", "2": "<b>", "3": "<a> + <b>"}, None)
        out = run_sync(stream_plan(planner, TOOLS), None, journal=j, backend=backend)
        assert server.hits == 3 and server.requests[-1]["stream"] is True
    assert (
        run_sync(stream_plan(_never, TOOLS), None, journal=j, mode="replay", backend=backend) == out
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_stream_that_rewrites_a_recorded_line_is_a_divergence(backend: Any) -> None:
    # The run crashed after line 1 was handled but before the reply ended, so
    # the resumed run asks the planner again. A reply whose line 1 differs
    # from the journal's must not be mixed into the recorded plan.
    from mce import ReplayDivergence

    first = chunks('1. search("a")\n', '2. join_text(["$1"])\n3. join()')
    j = Journal()
    assert run_sync(stream_plan(first, TOOLS), None, journal=j, backend=backend).ok
    header, entries = j.load()
    keep = next(i for i, e in enumerate(entries) if e["kind"] == "plan.next") + 1
    kept = [e for e in entries[:keep] if e["kind"] != "plan.stream"]  # the reply had not ended
    crashed = Journal()
    crashed.write([header, *kept] if header else kept)
    assert [e["ok"].get("text") for e in crashed.load()[1]] == ['1. search("a")']
    rewritten = chunks('1. search("z")\n', '2. join_text(["$1", "z"])\n3. join()')
    with pytest.raises(ReplayDivergence, match="line 1") as raised:
        run_sync(
            stream_plan(rewritten, TOOLS), None, journal=crashed, mode="resume", backend=backend
        )
    assert raised.value.recorded == '1. search("a")'
    assert raised.value.requested == '1. search("z")'
    # The same reply resumes as before.
    again = Journal()
    again.write([header, *kept] if header else kept)
    out = run_sync(stream_plan(first, TOOLS), None, journal=again, mode="resume", backend=backend)
    assert out == Ok({"1": "<a>", "2": "<a>"}, None)
