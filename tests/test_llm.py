"""mce.llm on the scripted model: chat, structured output, the agent loop, reports."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from attrs import frozen

from mce import Err, Journal, Ok, run, run_sync
from mce.effects import MissingHandler
from mce.llm import (
    AssistantMessage,
    LLMError,
    ModelNotConfigured,
    ScriptedModel,
    call,
    calls,
    chat,
    json_reply,
    react,
    say,
    scripted_handler,
    structured,
)
from mce.tools import tool


@frozen
class Forecast:
    city: str
    high_c: int
    summary: str = ""


def handlers(model: ScriptedModel) -> dict[str, Any]:
    return {"llm.chat": scripted_handler(model)}


def test_chat_rules_queue_default_and_usage() -> None:
    model = ScriptedModel().when("weather", "Sunny.").queue(say("first"))
    prog = chat(["weather?"]).then(
        lambda a: chat(["weather?"]).map(lambda b: (a.content, b.content))
    )
    out = run_sync(prog, None, handlers=handlers(model))
    assert out == Ok(("first", "Sunny."), None)
    assert out.report is not None and out.report.total_tokens == 4 and out.report.effects == 2
    assert model.requests[0]["messages"] == [{"role": "user", "content": "weather?"}]


def test_chat_passes_model_tools_and_params() -> None:
    @tool
    def lookup(key: str) -> str:
        return key

    model = ScriptedModel()
    run_sync(
        chat(["x"], model="m1", tools=[lookup], temperature=0.2), None, handlers=handlers(model)
    )
    request = model.requests[0]
    assert request["model"] == "m1" and request["temperature"] == 0.2
    assert request["tools"][0]["function"]["name"] == "lookup"


def test_bad_messages_are_rejected_when_built() -> None:
    with pytest.raises(TypeError, match="message 1"):
        chat(["ok", 42])  # type: ignore[list-item]


def test_structured_output_parses_and_validates() -> None:
    model = ScriptedModel().queue(json_reply({"city": "Porto", "high_c": 24}))
    out = run_sync(structured(["Forecast for Porto"], Forecast), None, handlers=handlers(model))
    assert out == Ok(Forecast("Porto", 24), None)
    asked = model.requests[0]["response_format"]["json_schema"]
    assert asked["strict"] is True  # strict structured output: every property required
    assert asked["schema"]["required"] == ["city", "high_c", "summary"]


def test_structured_output_repairs_then_fails_with_raw_text() -> None:
    model = ScriptedModel().queue("not json at all", json_reply({"city": "Porto", "high_c": "hot"}))
    out = run_sync(structured(["?"], Forecast, repairs=1), None, handlers=handlers(model))
    assert isinstance(out, Err) and isinstance(out.error, LLMError)
    assert out.error.kind == "invalid_output" and out.error.attempts == 2
    assert out.error.raw_text == '{"city": "Porto", "high_c": "hot"}'
    assert "high_c" in out.error.message
    repair = model.requests[1]["messages"][-1]["content"]
    assert repair.startswith("That reply was not valid")


def test_scripted_model_answers_structured_requests_by_default() -> None:
    out = run_sync(structured(["anything"], Forecast), None, handlers=handlers(ScriptedModel()))
    # the request is strict, so the example value fills every property
    assert out == Ok(Forecast("example", 0, "example"), None)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_no_model_configured_is_a_typed_error_not_a_fake_answer(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelNotConfigured, match="OPENAI_API_KEY") as caught:
        run_sync(chat(["hi"]), None, backend=anyio_backend)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "scripted_handler(ScriptedModel" in message and "openai_handler" in message
    assert isinstance(caught.value, MissingHandler) and caught.value.kind == "llm.chat"
    with pytest.raises(ModelNotConfigured):
        run_sync(react(["hi"], []), None)


def test_react_runs_one_turns_tool_calls_concurrently() -> None:
    running = 0
    peak = 0

    @tool
    async def fetch(url: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1
        return f"contents of {url}"

    model = ScriptedModel().queue(
        calls(("fetch", {"url": "a"}), ("fetch", {"url": "b"}), ("fetch", {"url": "c"})),
        say("Read three pages."),
    )
    out = run_sync(react(["Read a, b and c"], [fetch]), None, handlers=handlers(model))
    assert isinstance(out, Ok)
    assert out.value.answer == "Read three pages." and out.value.turns == 2
    assert peak == 3
    tool_messages = [m for m in out.value.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_0", "call_1", "call_2"]
    assert tool_messages[1]["content"] == "contents of b"


def test_react_feeds_tool_errors_back_to_the_model() -> None:
    @tool
    def divide(a: int, b: int) -> float:
        return a / b

    model = ScriptedModel().queue(
        call("divide", a=1, b=0),
        call("divide", '{"a": 1, "b": '),
        call("nope"),
        say("I give up."),
    )
    out = run_sync(react(["1/0?"], [divide]), None, handlers=handlers(model))
    assert isinstance(out, Ok)
    errors = [m["content"] for m in out.value.messages if m["role"] == "tool"]
    assert "failed" in errors[0] and "division by zero" in errors[0]
    assert "not valid JSON" in errors[1]
    assert "unknown_tool" in errors[2]


def test_react_max_turns_is_an_error() -> None:
    @tool
    def again() -> str:
        return "again"

    model = ScriptedModel().when(matches=lambda ms: True, reply=call("again"))
    out = run_sync(react(["loop"], [again], max_turns=3), None, handlers=handlers(model))
    assert isinstance(out, Err) and out.error.kind == "max_turns"
    assert len(model.requests) == 3


def test_agent_run_replays_exactly() -> None:
    @tool
    def square(x: int) -> int:
        return x * x

    model = ScriptedModel().queue(calls(("square", {"x": 3}), ("square", {"x": 4})), say("25"))
    j = Journal()
    live = run_sync(react(["3^2 + 4^2?"], [square]), None, handlers=handlers(model), journal=j)
    replayed = run_sync(react(["3^2 + 4^2?"], [square]), None, journal=j, mode="replay")
    assert replayed == live and replayed.report is not None
    assert replayed.report.live_calls == 0 and replayed.report.replayed == 4
    entry = next(e for e in j.load()[1] if e["kind"] == "llm.chat")
    assert entry["ok"]["$attrs"] == "mce.llm.types:AssistantMessage"


def test_assistant_message_round_trip_in_conversation() -> None:
    reply = AssistantMessage(content=None, tool_calls=())
    assert reply.to_dict() == {"role": "assistant", "content": None}
    assert json.dumps(reply.to_dict())


def test_limits_on_parameters() -> None:
    with pytest.raises(ValueError, match="max_turns"):
        react(["x"], [], max_turns=0)
    with pytest.raises(ValueError, match="repairs"):
        structured(["x"], Forecast, repairs=-1)


@pytest.mark.anyio
async def test_scripted_model_with_a_function_of_messages() -> None:
    model = ScriptedModel().when(
        matches=lambda ms: len(ms) == 2, reply=lambda ms: say(f"{len(ms)} messages")
    )
    out = await run(chat(["a", "b"]), None, handlers=handlers(model))
    assert out.value.content == "2 messages"  # type: ignore[union-attr]


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_structured_reply_is_an_llm_error(depth: int) -> None:
    hostile = "[" * depth + "]" * depth
    model = ScriptedModel().queue(hostile, '{"city": ' + hostile + "}")
    out = run_sync(structured(["?"], Forecast, repairs=1), None, handlers=handlers(model))
    assert isinstance(out, Err) and isinstance(out.error, LLMError)
    assert out.error.kind == "invalid_output"
    assert any(w in out.error.message for w in ("nested too deeply", "recursion limit"))
    repair = model.requests[1]["messages"][-1]["content"]
    assert any(w in repair for w in ("nested too deeply", "recursion limit"))


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
def test_hostile_tool_arguments_are_fed_back_not_raised(anyio_backend: str, tmp_path: Any) -> None:
    seen: list[str] = []

    @tool
    def search(q: str) -> str:
        seen.append(q)
        return f"results for {q}"

    deep = "[" * 100_000 + "]" * 100_000
    model = ScriptedModel().queue(
        call("search", '{"q": "\\ud800"}'),  # a lone surrogate: not encodable text
        call("search", '{"q": ' + deep + "}"),
        call("search", q="fine"),
        say("done"),
    )
    path = tmp_path / "agent.jsonl"
    out = run_sync(
        react(["find"], [search]),
        None,
        handlers=handlers(model),
        journal=path,
        backend=anyio_backend,  # type: ignore[arg-type]
    )
    assert isinstance(out, Ok) and out.value.answer == "done"
    results = [m["content"] for m in out.value.messages if m["role"] == "tool"]
    assert results[0].startswith("ERROR:") and "surrogate" in results[0]
    assert results[1].startswith("ERROR:") and "nested too deeply" in results[1]
    assert results[2] == "results for fine" and seen == ["fine"]
    replayed = run_sync(react(["find"], [search]), None, journal=path, mode="replay")
    assert replayed == out
