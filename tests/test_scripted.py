"""The scripted model as a testing kit: calling every offered tool, multi-turn rules."""

from __future__ import annotations

import datetime
import enum
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import pydantic
import pytest

from mce import Ok, run, run_sync
from mce.llm import (
    ScriptedModel,
    example_from_schema,
    from_rules,
    openai_handler,
    react,
    scripted_handler,
    turn_number,
)
from mce.testing.openai_server import OpenAIServer
from mce.tools import tool


@dataclass
class Point:
    x: float
    y: float


def test_call_tools_calls_every_offered_tool_with_valid_arguments_then_answers() -> None:
    called: list[str] = []

    @tool
    def forecast(city: str, days: int = 3) -> str:
        called.append("forecast")
        return f"{city}: sunny for {days} days"

    @tool
    def distance(a: Point, b: Point, unit: Literal["km", "mi"]) -> float:
        called.append("distance")
        return abs(a.x - b.x) + abs(a.y - b.y)

    @tool
    def tag(labels: list[str], weights: dict[str, float], note: str | None) -> int:
        called.append("tag")
        return len(labels)

    model = ScriptedModel(call_tools=True)
    out = run_sync(
        react(["go"], [forecast, distance, tag]),
        None,
        handlers={"llm.chat": scripted_handler(model)},
    )
    assert isinstance(out, Ok), out
    assert sorted(called) == ["distance", "forecast", "tag"]  # each once, in one turn
    tool_messages = [m["content"] for m in out.value.messages if m["role"] == "tool"]
    assert not [m for m in tool_messages if m.startswith("ERROR")], tool_messages
    assert out.value.turns == 2 and out.value.answer.startswith("Based on the tools: ")
    assert len(model.requests) == 2


def test_call_tools_can_name_the_tools_to_call() -> None:
    @tool
    def a() -> str:
        return "A"

    @tool
    def b() -> str:
        return "B"

    model = ScriptedModel(call_tools=["b"])
    out = run_sync(react(["go"], [a, b]), None, handlers={"llm.chat": scripted_handler(model)})
    assert isinstance(out, Ok) and out.value.answer == "Based on the tools: B"
    with pytest.raises(TypeError, match="list of tool names"):
        ScriptedModel(call_tools="b")


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: Annotated[str, pydantic.Field(min_length=12, max_length=40)]
    number: Annotated[int, pydantic.Field(gt=10, le=20)]


class Order(pydantic.BaseModel):
    when: datetime.date
    at: datetime.datetime
    id: uuid.UUID
    colour: Colour
    tags: Annotated[set[str], pydantic.Field(min_length=3)]
    ship_to: Address
    backup: Address | None
    price: Annotated[float, pydantic.Field(ge=0.5, multiple_of=0.25)]
    mode: Literal["air", "sea"]
    email: Annotated[str, pydantic.Field(pattern=r"^.+@.+$", json_schema_extra={"format": "email"})]
    pair: tuple[int, str]


@pytest.mark.parametrize(
    "tp",
    [Order, Address, list[Order], dict[str, Address], Annotated[int, pydantic.Field(lt=-5)]],
)
def test_examples_are_valid_against_pydantic_schemas(tp: Any) -> None:
    schema = pydantic.TypeAdapter(tp).json_schema()
    value = example_from_schema(schema)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    pydantic.TypeAdapter(tp).validate_python(value)


def test_turn_numbers_and_role_rules() -> None:
    assert turn_number([]) == 1
    model = ScriptedModel().when(turn=2, role="tool", contains="rain", reply="Take an umbrella.")
    model.when(role="tool", reply="No rain.")
    conversation = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None},
        {"role": "tool", "content": "Rain later"},
    ]
    assert model.respond({"messages": conversation}).content == "Take an umbrella."
    assert (
        model.respond({"messages": [*conversation[:2], {"role": "tool", "content": "dry"}]}).content
        == "No rain."
    )
    with pytest.raises(ValueError, match="turn"):
        ScriptedModel().when(turn=0, reply="x")


def test_bad_rules_are_rejected_with_the_rule_named() -> None:
    with pytest.raises(ValueError, match="rule 1: needs exactly one of"):
        from_rules([{"contains": "a", "reply": "b"}, {"contains": "c"}])
    with pytest.raises(ValueError, match=r"rule 0: tool_calls\[0\] needs a 'name'"):
        from_rules([{"turn": 1, "tool_calls": [{"arguments": {}}]}])
    with pytest.raises(ValueError, match="rule 0: when\\(\\) needs"):
        from_rules([{"reply": "b"}])
    with pytest.raises(ValueError, match="a JSON list"):
        from_rules({"contains": "a"})


MULTI_TURN = [
    {
        "turn": 1,
        "tool_calls": [
            {"name": "forecast", "arguments": {"city": "Porto"}},
            {"name": "forecast", "arguments": {"city": "Lisbon"}},
        ],
    },
    {"turn": 2, "role": "tool", "contains": "rain", "tool": "umbrella", "arguments": {}},
    {"turn": 2, "role": "tool", "reply": "Sunny in both."},
    {
        "turn": 3,
        "role": "tool",
        "contains": "umbrella",
        "reply": "Rain in Porto: take the umbrella.",
    },
]


def agent_tools() -> list[Any]:
    @tool
    def forecast(city: str) -> str:
        return {"Porto": "rain", "Lisbon": "sun"}[city]

    @tool
    def umbrella() -> str:
        return "umbrella packed"

    return [forecast, umbrella]


@pytest.mark.anyio
async def test_rules_script_a_multi_turn_tool_agent_over_http(tmp_path: Path) -> None:
    with OpenAIServer(from_rules(MULTI_TURN)) as server:
        async with openai_handler(base_url=server.base_url, api_key="k") as llm:
            out = await run(react(["weather?"], agent_tools()), None, handlers={"llm.chat": llm})
    assert isinstance(out, Ok), out
    assert out.value.answer == "Rain in Porto: take the umbrella." and out.value.turns == 3
    first = out.value.messages[1]
    assert [c["function"]["arguments"] for c in first["tool_calls"]] == [
        '{"city": "Porto"}',
        '{"city": "Lisbon"}',
    ]  # two parallel calls in one reply
    tool_results = [m["content"] for m in out.value.messages if m["role"] == "tool"]
    assert tool_results == ["rain", "sun", "umbrella packed"]


def test_the_server_command_line_reads_multi_turn_rules(tmp_path: Path) -> None:
    import subprocess
    import sys

    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(MULTI_TURN))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mce.testing.openai_server", "--port", "0", "--rules", str(rules)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        out = run_sync(
            react(["weather?"], agent_tools()),
            None,
            handlers={"llm.chat": openai_handler(base_url=base_url, api_key="k")},
        )
        assert isinstance(out, Ok) and out.value.answer == "Rain in Porto: take the umbrella."
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"contians": "x", "reply": "y"}]))
    done = subprocess.run(
        [sys.executable, "-m", "mce.testing.openai_server", "--port", "0", "--rules", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and "did you mean 'contains'" in done.stderr


@pytest.mark.anyio
async def test_the_server_can_call_every_offered_tool() -> None:
    called: list[str] = []

    @tool
    def lookup(key: str, limit: int = 1) -> str:
        called.append(f"lookup {key}")
        return "found"

    @tool
    def when(points: list[Point], unit: Literal["s", "ms"]) -> str:
        called.append(f"when {points} {unit}")
        return "then"

    with OpenAIServer(ScriptedModel(call_tools=True)) as server:
        async with openai_handler(base_url=server.base_url, api_key="k") as llm:
            out = await run(react(["go"], [lookup, when]), None, handlers={"llm.chat": llm})
    assert isinstance(out, Ok) and out.value.answer == "Based on the tools: found | then"
    assert sorted(called) == ["lookup example", "when [] s"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("per_token", [0.0, 0.0002])
def test_a_streamed_scripted_reply_reports_its_pieces_in_order(
    backend: str, per_token: float
) -> None:
    from mce.llm import chat, say
    from mce.llm.stream import listening

    model = ScriptedModel(per_token=per_token, chars_per_token=3).when("poem", say("roses are red"))
    heard: list[str | None] = []
    with listening(heard.append):
        streamed = run_sync(
            chat(["a poem"], stream=True),
            None,
            handlers={"llm.chat": scripted_handler(model)},
            backend=backend,
        )
        plain = run_sync(
            chat(["a poem"]), None, handlers={"llm.chat": scripted_handler(model)}, backend=backend
        )
    assert heard == ["ros", "es ", "are", " re", "d"]  # the plain call reported nothing
    assert isinstance(streamed, Ok) and streamed.value.content == "roses are red"
    assert plain == streamed


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"per_token": -1}, ValueError, "per_token=...) needs seconds >= 0"),
        ({"per_token": float("nan")}, ValueError, "per_token"),
        ({"per_token": "fast"}, TypeError, "needs seconds"),
        ({"chars_per_token": 0}, ValueError, "chars_per_token=...) needs an int >= 1"),
    ],
)
def test_a_scripted_model_with_a_bad_pace_is_refused(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        ScriptedModel(**kwargs)
