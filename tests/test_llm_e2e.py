"""End to end: the real `openai` client over loopback HTTP against the scripted server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from attrs import frozen

from mce import Err, Ok, gather, run, run_sync
from mce.llm import (
    LLMError,
    ScriptedModel,
    call,
    chat,
    json_reply,
    openai_handler,
    react,
    say,
    structured,
)
from mce.testing.openai_server import OpenAIServer
from mce.tools import tool

pytestmark = pytest.mark.anyio
API_KEY = "sk-loopback-5f0c3b1e9d"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    model = ScriptedModel().when("capital", say("Lisbon is the capital of Portugal."))
    with OpenAIServer(model, api_key=API_KEY) as srv:
        yield srv


def handler(server: OpenAIServer, **options: Any) -> Any:
    options.setdefault("backoff", 0.01)
    return openai_handler(base_url=server.base_url, api_key=API_KEY, model="scripted-1", **options)


async def ask(
    server: OpenAIServer, prog: Any, *, options: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """Run `prog` with a fresh handler for `server`, closing its connections after."""
    async with handler(server, **(options or {})) as h:
        return await run(prog, None, handlers={"llm.chat": h}, **kwargs)


@frozen
class Capital:
    country: str
    city: str


async def test_chat_through_the_real_client(server: OpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    out = await ask(server, chat(["What is the capital of Portugal?"]), journal=path)
    assert isinstance(out, Ok)
    assert out.value.content == "Lisbon is the capital of Portugal."
    assert out.value.model == "scripted-1" and out.value.usage.total_tokens > 0
    assert out.report is not None and out.report.total_tokens == out.value.usage.total_tokens
    text = path.read_text()
    assert API_KEY not in text  # the key lives in the client, never in a request
    assert '"prompt_tokens"' in text  # usage is journaled


async def test_tool_calls_and_structured_output_over_http(server: OpenAIServer) -> None:
    @tool
    def population(city: str) -> int:
        return {"Lisbon": 545_000, "Porto": 232_000}[city]

    server.model.queue(
        call("population", city="Lisbon"),
        say("About 545 thousand."),
        json_reply({"country": "Portugal", "city": "Lisbon"}),
    )
    agent = react(["How many live in Lisbon?"], [population])
    out = await ask(server, agent)
    assert isinstance(out, Ok) and out.value.answer == "About 545 thousand."
    assert server.requests[0]["tools"][0]["function"]["name"] == "population"
    assert server.requests[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": "545000",
    }
    typed = await ask(server, structured(["Capital?"], Capital))
    assert typed == Ok(Capital("Portugal", "Lisbon"), None)
    assert server.requests[-1]["response_format"]["type"] == "json_schema"


async def test_429_with_retry_after_is_retried(server: OpenAIServer) -> None:
    server.fail_next(429, retry_after=0.2)
    start = anyio.current_time()
    out = await ask(server, chat(["capital?"]))
    assert isinstance(out, Ok) and server.hits == 2
    assert anyio.current_time() - start >= 0.2  # it waited as told


async def test_500_retried_then_reported(server: OpenAIServer) -> None:
    server.fail_next(500, times=2)
    assert (await ask(server, chat(["capital?"]), options={"retries": 2})).ok
    server.fail_next(503, times=3)
    out = await ask(server, chat(["capital?"]), options={"retries": 1})
    assert isinstance(out, Err) and isinstance(out.error, LLMError)
    assert (out.error.kind, out.error.status, out.error.attempts) == ("server_error", 503, 2)
    server.fail_next(400, body="bad model")
    out = await ask(server, chat(["capital?"]))
    assert (
        isinstance(out, Err)
        and out.error.kind == "bad_request"
        and "bad model" in out.error.message
    )


async def test_hung_response_hits_the_timeout(server: OpenAIServer) -> None:
    server.fail_next(hang=10)
    start = anyio.current_time()
    out = await ask(server, chat(["capital?"]), options={"timeout": 0.3, "retries": 0})
    assert isinstance(out, Err) and out.error.kind == "timeout"
    assert anyio.current_time() - start < 5


async def test_malformed_tool_call_json_is_fed_back(server: OpenAIServer) -> None:
    @tool
    def lookup(key: str) -> str:
        return key.upper()

    server.model.queue(call("lookup", '{"key": "a"'), call("lookup", key="a"), say("Done: A"))
    out = await ask(server, react(["look up a"], [lookup]))
    assert isinstance(out, Ok) and out.value.answer == "Done: A"
    first_result = server.requests[1]["messages"][-1]["content"]
    assert first_result.startswith("ERROR:") and "not valid JSON" in first_result


async def test_concurrency_is_bounded(server: OpenAIServer) -> None:
    server.fail_next(hang=0.05, times=8)  # every request takes a while, so they would overlap
    prog = gather([chat([f"capital {i}"]) for i in range(8)])
    out = await ask(server, prog, options={"max_concurrency": 2})
    assert out.ok and server.max_in_flight == 2


async def test_recorded_against_the_server_replays_with_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "agent.jsonl"

    @tool
    def double(x: int) -> int:
        return 2 * x

    model = ScriptedModel().queue(call("double", x=21), say("42"))
    agent = react(["double 21"], [double])
    with OpenAIServer(model, api_key=API_KEY) as srv:
        live = await ask(srv, agent, journal=path)
    assert isinstance(live, Ok) and live.value.answer == "42"
    # The server is gone: a live call would fail to connect. The replay makes none.
    replayed = await ask(srv, agent, options={"retries": 0}, journal=path, mode="replay")
    assert replayed == live


async def test_environment_endpoint_is_the_default(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("MCE_MODEL", "from-env")
    out = await run(chat(["capital?"]), None)  # no handler given: the environment's endpoint
    assert isinstance(out, Ok) and out.value.content.startswith("Lisbon")
    assert server.requests[-1]["model"] == "from-env"
    from mce.llm import _env_handlers

    for h in list(_env_handlers.values()):  # close the connections the default handler opened
        await h.aclose()
    _env_handlers.clear()


def test_server_from_the_command_line(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import httpx

    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {"contains": "ping", "reply": "pong"},
                {"contains": "weather", "tool": "forecast", "arguments": {"city": "Porto"}},
            ]
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mce.testing.openai_server", "--port", "0", "--rules", str(rules)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        reply = httpx.post(
            f"{base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "ping"}]},
            timeout=10,
        )
        assert reply.json()["choices"][0]["message"]["content"] == "pong"
        call = httpx.post(
            f"{base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "weather?"}]},
            timeout=10,
        )
        assert (
            call.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "forecast"
        )
        assert httpx.get(f"{base_url}/models", timeout=10).json()["data"][0]["object"] == "model"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


# Streamed replies are read from the raw server-sent events, so nothing is left
# to the garbage collector (which trio would report): both backends.
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_streamed_replies_through_the_real_client(
    server: OpenAIServer, tmp_path: Path
) -> None:
    pieces: list[str] = []
    server.model.queue(say("Lisbon is the capital of Portugal."), call("lookup", key="a"))
    path = tmp_path / "stream.jsonl"
    async with handler(server, on_delta=pieces.append) as h:
        out = await run(
            chat(["capital?"], stream=True).then(
                lambda first: chat(["look up a"], stream=True).map(lambda second: (first, second))
            ),
            None,
            handlers={"llm.chat": h},
            journal=path,
        )
    assert isinstance(out, Ok)
    first, second = out.value
    assert first.content == "Lisbon is the capital of Portugal." and len(pieces) > 3
    assert "".join(pieces) == first.content
    assert first.usage.total_tokens > 0 and first.finish_reason == "stop"
    assert second.tool_calls[0].name == "lookup" and second.tool_calls[0].parsed_arguments() == {
        "key": "a"
    }
    assert server.requests[0]["stream"] is True
    replayed = await run(
        chat(["capital?"], stream=True).then(
            lambda first: chat(["look up a"], stream=True).map(lambda second: (first, second))
        ),
        None,
        journal=path,
        mode="replay",
    )
    assert replayed == out


BACKENDS = ["asyncio", "trio", "asyncio", "trio", "asyncio", "trio"]


def test_environment_handler_works_across_repeated_runs_and_backends(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    prog = chat(["capital?"]).then(lambda a: chat(["capital again?"]).map(lambda b: (a, b)))
    for i, backend in enumerate(BACKENDS):
        out = run_sync(prog, None, backend=backend)  # type: ignore[arg-type]
        assert isinstance(out, Ok), f"run {i + 1} on {backend}: {out}"
        assert out.value[1].content.startswith("Lisbon")
    assert server.hits == 2 * len(BACKENDS)
    assert server.wait_connections_closed() == 0  # closed when each loop ended


def test_own_handler_reused_across_repeated_runs_and_backends(server: OpenAIServer) -> None:
    llm = handler(server, max_concurrency=2)
    prog = gather([chat([f"capital {i}?"]) for i in range(3)])
    for i, backend in enumerate(BACKENDS):
        out = run_sync(prog, None, backend=backend, handlers={"llm.chat": llm})  # type: ignore[arg-type]
        assert isinstance(out, Ok), f"run {i + 1} on {backend}: {out}"
    assert server.hits == 3 * len(BACKENDS) and server.max_in_flight <= 2
    assert server.wait_connections_closed() == 0


async def test_429_with_an_unparsable_retry_after_is_retried(server: OpenAIServer) -> None:
    server.fail_next(429, retry_after="soon")
    out = await ask(server, chat(["capital?"]))
    assert isinstance(out, Ok) and server.hits == 2 and out.value.attempts == 2
    server.fail_next(429, retry_after="soon")
    out = await ask(server, chat(["capital?"]), options={"retries": 0})
    assert isinstance(out, Err) and isinstance(out.error, LLMError)
    assert (out.error.kind, out.error.status) == ("rate_limited", 429)


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (
            '{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}',
            "no choices",
        ),
        ("this is not JSON", "not a chat completion"),
        ('{"id": "x", "choices": [{"index": 0}]}', "no message"),
        ("[1, 2]", "not a chat completion"),
    ],
)
async def test_unusable_200_replies_are_llm_errors(
    server: OpenAIServer, raw: str, what: str
) -> None:
    server.fail_next(200, raw=raw)
    out = await ask(server, chat(["capital?"]))
    assert isinstance(out, Err) and isinstance(out.error, LLMError), out
    assert out.error.kind == "invalid_response" and what in out.error.message
    assert server.hits == 1  # not retried


@pytest.mark.parametrize(
    ("status", "headers", "retried", "kind"),
    [
        (408, {}, True, "timeout"),
        (409, {}, True, "conflict"),
        (429, {}, True, "rate_limited"),
        (500, {}, True, "server_error"),
        (502, {}, True, "server_error"),
        (400, {}, False, "bad_request"),
        (401, {}, False, "auth"),
        (404, {}, False, "not_found"),
        (500, {"x-should-retry": "false"}, False, "server_error"),
        (400, {"x-should-retry": "true"}, True, "bad_request"),
    ],
)
async def test_which_statuses_are_retried(
    server: OpenAIServer, status: int, headers: dict[str, str], retried: bool, kind: str
) -> None:
    server.fail_next(status, headers=headers)
    out = await ask(server, chat(["capital?"]))
    if retried:
        assert isinstance(out, Ok) and out.value.attempts == 2 and server.hits == 2
    else:
        assert isinstance(out, Err) and isinstance(out.error, LLMError)
        assert (out.error.kind, out.error.status, out.error.attempts) == (kind, status, 1)
        assert server.hits == 1
    server.fail_next(status, headers=headers, times=3)
    out = await ask(server, chat(["capital?"]), options={"retries": 1})
    assert isinstance(out, Err) and out.error.kind == kind
    assert out.error.attempts == (2 if retried else 1)


async def test_each_retry_is_a_trace_event_and_attempts_are_journaled(
    server: OpenAIServer, tmp_path: Path
) -> None:
    events: list[Any] = []
    path = tmp_path / "retries.jsonl"
    server.fail_next(503, times=2)
    out = await ask(server, chat(["capital?"]), journal=path, trace=events.append)
    assert isinstance(out, Ok) and out.value.attempts == 3
    retries = [e for e in events if e.event == "effect.retry"]
    assert [(e.name, e.position, e.ok) for e in retries] == [("llm.chat", "0", False)] * 2
    assert '"attempts":3' in path.read_text().replace(" ", "")  # in the journaled reply
    server.fail_next(503, times=3)
    path2 = tmp_path / "failed.jsonl"
    out = await ask(server, chat(["capital?"]), options={"retries": 2}, journal=path2)
    assert isinstance(out, Err) and out.error.attempts == 3
    assert '"attempts":3' in path2.read_text().replace(" ", "")  # in the journaled error


async def test_error_bodies_echoing_the_api_key_are_scrubbed(
    server: OpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "errors.jsonl"
    server.fail_next(401, body=f"invalid api key {API_KEY} (Authorization: Bearer {API_KEY})")
    server.fail_next(500, body=f"upstream saw key={API_KEY}", times=2)
    prog = chat(["capital?"]).recover(lambda e: chat(["capital?"]))
    events: list[Any] = []
    out = await ask(server, prog, options={"retries": 1}, journal=path, trace=events.append)
    assert isinstance(out, Err) and out.error.kind == "server_error"
    assert API_KEY not in str(out.error) and "<secret>" in out.error.message
    text = path.read_text()
    assert API_KEY not in text and "invalid api key <secret>" in text
    assert API_KEY not in repr(events)


async def test_a_reply_with_a_lone_surrogate_is_journaled_as_valid_text(
    server: OpenAIServer, tmp_path: Path
) -> None:
    completion = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "bad \ud800 text"},
            }
        ],
    }
    server.fail_next(200, raw=json.dumps(completion))
    path = tmp_path / "surrogate.jsonl"
    out = await ask(server, chat(["capital?"]), journal=path)
    assert isinstance(out, Ok) and out.value.content == "bad \ufffd text"
    assert await run(chat(["capital?"]), None, journal=path, mode="replay") == out


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_retried_streamed_reply_tells_listeners_it_starts_over(
    server: OpenAIServer,
) -> None:
    from mce.llm.stream import listening

    server.model.queue(say("one two three"))
    server.fail_next(503)
    heard: list[str | None] = []
    async with handler(server, backoff=0.001) as h:
        with listening(heard.append):
            reply = await h({"messages": [{"role": "user", "content": "count"}], "stream": True})
    assert reply.content == "one two three" and reply.attempts == 2
    assert heard[0] is None and "".join(p for p in heard[1:] if p) == "one two three"
