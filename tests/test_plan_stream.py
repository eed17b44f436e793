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


# ---------------------------------------------------------------- chat(..., stream=True) as the planner

PLAN_TEXT = (
    '1. search("alpha")\n2. search("beta")\n3. join_text(["$1", "$2"])\n4. join()<END_OF_PLAN>'
)
PLAN_OUT = {"1": "<alpha>", "2": "<beta>", "3": "<alpha> + <beta>"}


def _planner() -> Any:
    from mce.llm import chat

    return chat([{"role": "user", "content": "plan: alpha and beta"}], stream=True)


def _gated_handler(*pieces: str, gate: str | None = None, restart_after: int | None = None) -> Any:
    """An `llm.chat` handler streaming `pieces`; it waits for task `gate` to start before the rest."""
    from mce.llm.stream import report_delta, report_restart
    from mce.llm.types import AssistantMessage

    async def handler(request: dict[str, Any]) -> AssistantMessage:
        assert request["stream"] is True
        log.append("planner called")
        for i, piece in enumerate(pieces):
            if i == restart_after:
                report_restart()
            if gate is not None and i == 1:
                await started[gate].wait()
            await anyio.sleep(0)
            report_delta(piece)
        text = "".join(pieces[restart_after:] if restart_after is not None else pieces)
        return AssistantMessage(content=text)

    return handler


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_streaming_model_call_feeds_each_task_as_its_line_arrives(backend: Any) -> None:
    log.clear()
    handler = _gated_handler(PLAN_TEXT[:20], PLAN_TEXT[20:], gate="alpha")

    async def main() -> Any:
        started["alpha"] = anyio.Event()
        with anyio.fail_after(10):  # without dispatch while streaming this waits forever
            return await run(stream_plan(_planner(), TOOLS), None, handlers={"llm.chat": handler})

    assert anyio.run(main, backend=backend) == Ok(PLAN_OUT, None)
    assert log[:2] == ["planner called", "search alpha"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_scripted_model_streams_a_plan_and_the_run_replays_and_resumes(backend: Any) -> None:
    from mce.llm import ScriptedModel, say, scripted_handler

    model = ScriptedModel(per_token=0.0005).when("plan", say(PLAN_TEXT))
    handlers = {"llm.chat": scripted_handler(model)}
    log.clear()
    j = Journal()
    out = run_sync(
        stream_plan(_planner(), TOOLS), None, journal=j, handlers=handlers, backend=backend
    )
    assert out == Ok(PLAN_OUT, None)
    header, entries = j.load()
    assert [e["kind"] for e in entries].count("llm.chat") == 1
    assert not any(e["kind"] == "plan.stream" for e in entries)
    log.clear()
    replayed = run_sync(
        stream_plan(_planner(), TOOLS), None, journal=j, mode="replay", backend=backend
    )
    assert replayed == out and log == []  # the reply comes from the journal, nothing runs
    recorded_order = [e["ok"] for e in entries if e["kind"] == "plan.next"]
    for keep in range(len(entries)):
        crashed = Journal()
        crashed.write([header, *entries[:keep]] if header else entries[:keep])
        resumed = run_sync(
            stream_plan(_planner(), TOOLS),
            None,
            journal=crashed,
            mode="resume",
            handlers=handlers,
            backend=backend,
        )
        assert resumed == out
        order = [e["ok"] for e in crashed.load()[1] if e["kind"] == "plan.next"]
        kept = [e["ok"] for e in entries[:keep] if e["kind"] == "plan.next"]
        assert order[: len(kept)] == kept
    assert recorded_order


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_retried_streamed_reply_starts_over_without_running_a_task_twice(backend: Any) -> None:
    log.clear()
    handler = _gated_handler(
        '1. search("alpha")\n2. sea',
        *PLAN_TEXT.partition("\n")[::2][:0],
        PLAN_TEXT[:9],
        PLAN_TEXT[9:],
        restart_after=1,
    )
    out = run_sync(
        stream_plan(_planner(), TOOLS), None, handlers={"llm.chat": handler}, backend=backend
    )
    assert out == Ok(PLAN_OUT, None)
    assert sorted(log) == sorted(["planner called", "search alpha", "search beta", "join_text"])


def test_a_reply_whose_value_disagrees_with_what_it_streamed_is_a_divergence() -> None:
    from mce import ReplayDivergence
    from mce.llm.stream import report_delta
    from mce.llm.types import AssistantMessage

    async def liar(request: dict[str, Any]) -> AssistantMessage:
        report_delta('1. search("alpha")\n')
        await anyio.sleep(0)
        return AssistantMessage(content='1. search("omega")\n2. join()')

    with pytest.raises(ReplayDivergence, match="line 1"):
        run_sync(stream_plan(_planner(), TOOLS), None, handlers={"llm.chat": liar})


def test_a_planner_step_must_give_a_reply() -> None:
    from mce import pure

    out = run_sync(stream_plan(pure('1. search("a")\n2. join()'), TOOLS), None)
    assert out == Ok({"1": "<a>"}, None)
    with pytest.raises(TypeError, match="AssistantMessage or a str, got 42"):
        run_sync(stream_plan(pure(42), TOOLS), None)
    with pytest.raises(TypeError, match="planner step"):
        stream_plan(42, TOOLS)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plan_streamed_by_chat_through_the_openai_compatible_server(backend: Any) -> None:
    from mce.llm import ScriptedModel, openai_handler, say
    from mce.testing.openai_server import OpenAIServer

    model = ScriptedModel(per_token=0.0005).when("plan", say(PLAN_TEXT))
    with OpenAIServer(model, api_key="sk-plan") as server:
        pieces: list[str] = []
        handler = openai_handler(
            base_url=server.base_url, api_key="sk-plan", on_delta=pieces.append
        )
        j = Journal()
        log.clear()
        out = run_sync(
            stream_plan(_planner(), TOOLS),
            None,
            journal=j,
            handlers={"llm.chat": handler},
            backend=backend,
        )
        assert out == Ok(PLAN_OUT, None)
        assert server.requests[-1]["stream"] is True and len(pieces) > 10
        assert "".join(pieces) == PLAN_TEXT
    log.clear()
    assert (
        run_sync(stream_plan(_planner(), TOOLS), None, journal=j, mode="replay", backend=backend)
        == out
    )
    assert log == []


# ---------------------------------------------------------------- feedback to the planner

BAD_PLAN = '1. search("alpha")\n2. serch("beta")\n3. join_text(["$1", "$2"])\n4. join()'
FIXED = '2. search("beta")\n3. join_text(["$1", "$2"])\n4. join()'


def _feedback(invalid: PlanInvalid, text: str) -> Any:
    from mce.llm import chat

    problems = "\n".join(str(p) for p in invalid.problems)
    return chat(
        [
            {"role": "user", "content": "plan: alpha and beta"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": f"fix these lines:\n{problems}"},
        ],
        stream=True,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_invalid_streamed_line_goes_back_to_the_planner(backend: Any) -> None:
    from mce.llm import ScriptedModel, say, scripted_handler

    model = ScriptedModel(per_token=0.0002).when("plan:", say(BAD_PLAN), turn=1)
    model = model.when("fix these lines", say(FIXED))
    handlers = {"llm.chat": scripted_handler(model)}
    log.clear()
    j = Journal()
    step = stream_plan(_planner(), TOOLS, feedback=_feedback)
    out = run_sync(step, None, journal=j, handlers=handlers, backend=backend)
    assert out == Ok(PLAN_OUT, None)
    # the bad line and the line needing it never ran; the corrected ones ran once
    assert sorted(log) == ["join_text", "search alpha", "search beta"]
    asked = model.requests[1]["messages"][-1]["content"]
    assert asked == (
        "fix these lines:\n"
        "task '2': line 2: unknown tool 'serch' (available: ['search', 'join_text'])\n"
        "task '3': line 3: task 3 refers to task 2, which no earlier line defines"
    )
    log.clear()
    replayed = run_sync(step, None, journal=j, mode="replay", backend=backend)
    assert replayed == out and log == []
    header, entries = j.load()
    assert [e["kind"] for e in entries].count("llm.chat") == 2
    for keep in range(len(entries)):
        model.requests.clear()
        crashed = Journal()
        crashed.write([header, *entries[:keep]] if header else entries[:keep])
        resumed = run_sync(
            step, None, journal=crashed, mode="resume", handlers=handlers, backend=backend
        )
        assert resumed == out


def test_a_planner_that_keeps_writing_bad_lines_fails_the_run_in_the_end() -> None:
    from mce.llm import ScriptedModel, say, scripted_handler

    model = ScriptedModel().when("plan:", say(BAD_PLAN), turn=1)
    model = model.when("fix these lines", say('2. serch("beta")\n3. join()'))
    log.clear()
    step = stream_plan(_planner(), TOOLS, feedback=_feedback, max_feedback=1)
    out = run_sync(step, None, handlers={"llm.chat": scripted_handler(model)})
    assert isinstance(out, Err) and isinstance(out.error, PlanInvalid)
    assert [str(p) for p in out.error.problems] == [
        "task '2': line 1: unknown tool 'serch' (available: ['search', 'join_text'])"
    ]
    assert log == ["search alpha"] and len(model.requests) == 2
    with pytest.raises(ValueError, match="max_feedback"):
        stream_plan(_planner(), TOOLS, feedback=_feedback, max_feedback=-1)
    with pytest.raises(TypeError, match="feedback"):
        stream_plan(_planner(), TOOLS, feedback=42)  # type: ignore[arg-type]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streamed_plans(), st.sampled_from(BACKENDS), st.integers(0, 100))
def test_plans_streamed_by_a_model_call_replay_and_resume_exactly(
    case: Any, backend: str, cut: int
) -> None:
    pieces, _text = case
    handlers = {"llm.chat": _gated_handler(*pieces)}
    j = Journal()
    out = run_sync(
        stream_plan(_planner(), TOOLS), None, journal=j, handlers=handlers, backend=backend
    )
    assert out.ok
    replayed = run_sync(
        stream_plan(_planner(), TOOLS), None, journal=j, mode="replay", backend=backend
    )
    assert replayed == out
    header, entries = j.load()
    keep = cut * len(entries) // 100
    crashed = Journal()
    crashed.write([header, *entries[:keep]] if header else entries[:keep])
    resumed = run_sync(
        stream_plan(_planner(), TOOLS),
        None,
        journal=crashed,
        mode="resume",
        handlers=handlers,
        backend=backend,
    )
    assert resumed == out


@pytest.mark.parametrize("backend", BACKENDS)
def test_whoever_listened_around_the_run_still_hears_the_plan_stream(backend: Any) -> None:
    from mce.llm import ScriptedModel, say, scripted_handler
    from mce.llm.stream import listening

    model = ScriptedModel().when("plan", say(PLAN_TEXT))
    heard: list[str | None] = []
    with listening(heard.append):
        out = run_sync(
            stream_plan(_planner(), TOOLS),
            None,
            handlers={"llm.chat": scripted_handler(model)},
            backend=backend,
        )
    assert out == Ok(PLAN_OUT, None)
    assert "".join(p for p in heard if p) == PLAN_TEXT and len(heard) > 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_feedback_may_answer_with_a_token_function_and_replays(backend: Any) -> None:
    asked: list[str] = []

    def again(invalid: PlanInvalid, text: str) -> Any:
        asked.append(text)
        return chunks('2. search("beta")\n', '3. join_text(["$1", "$2"])\n4. join()')

    log.clear()
    j = Journal()
    step = stream_plan(chunks(BAD_PLAN[:25], BAD_PLAN[25:]), TOOLS, feedback=again)
    out = run_sync(step, None, journal=j, backend=backend)
    assert out == Ok(PLAN_OUT, None)
    assert asked == [BAD_PLAN]
    assert [e["req"] for e in j.load()[1] if e["kind"] == "plan.stream"] == [
        {"stream": "planner"},
        {"stream": "planner", "reply": 1},
    ]
    log.clear()
    replay = stream_plan(_never, TOOLS, feedback=lambda invalid, text: _never)
    assert run_sync(replay, None, journal=j, mode="replay", backend=backend) == out
    assert log == []
