"""Models as journaled effects: chat, structured output, and a tool-calling agent loop.

`chat(messages, ...)` is a step (effect kind `"llm.chat"`) whose value is an
`AssistantMessage`. Which model answers is chosen when the workflow runs:
the `"llm.chat"` handler given to `run` - `openai_handler(...)` for any
OpenAI-compatible endpoint, `scripted_handler(ScriptedModel(...))` for
deterministic offline runs - or, when none is given, the endpoint named by
`OPENAI_BASE_URL`/`OPENAI_API_KEY` (model: `MCE_MODEL`). With neither, a
model call raises `ModelNotConfigured`, saying how to configure one: there
is no silent fallback to a fake model.

>>> from mce import run_sync
>>> model = ScriptedModel().when("capital", say("Lisbon."))
>>> out = run_sync(chat([{"role": "user", "content": "Capital of Portugal?"}]), None,
...                handlers={"llm.chat": scripted_handler(model)})
>>> out.value.content, out.value.usage.total_tokens
('Lisbon.', 4)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Never, TypeVar, final

from attrs import frozen

from mce.effects import MissingHandler, effect
from mce.executors import nonblocking
from mce.llm.scripted import (
    Reply,
    ScriptedModel,
    call,
    calls,
    example_from_schema,
    from_rules,
    json_reply,
    say,
    scripted_handler,
    turn_number,
)
from mce.llm.types import AssistantMessage, LLMError, LLMErrorKind, ToolCall, Usage
from mce.schema import Schema, to_json
from mce.schema import response_format as schema_response_format
from mce.step import Step, fail, gather, pure
from mce.tools import Registry, Tool, ToolError

if TYPE_CHECKING:
    from mce.llm.endpoint import OpenAIHandler as OpenAIHandler
    from mce.llm.endpoint import openai_handler as openai_handler

_T = TypeVar("_T")

CHAT = "llm.chat"
"""The effect kind of a model call."""

Message = dict[str, Any] | AssistantMessage | str
"""A chat message: an OpenAI-style dict, a model's reply, or text (a user message)."""


def _messages(messages: Iterable[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            out.append(m.to_dict())
        elif isinstance(m, str):
            out.append({"role": "user", "content": m})
        elif isinstance(m, dict) and "role" in m:
            out.append(m)
        else:
            raise TypeError(
                f"message {i} must be a dict with a 'role', a str or an AssistantMessage, got {m!r}"
            )
    return out


def _tool_schemas(tools: Registry | Iterable[Tool | dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(tools, Registry):
        return tools.schemas()
    return [t.schema() if isinstance(t, Tool) else t for t in tools]


_env_handlers: dict[tuple[str | None, str | None, str | None], OpenAIHandler] = {}


class ModelNotConfigured(MissingHandler):
    """A model call with no model configured: a configuration bug, raised out of `run`.

    >>> print(ModelNotConfigured())  # doctest: +ELLIPSIS
    no model is configured for 'llm.chat' effects: set OPENAI_API_KEY (and OPENAI_BASE_URL ...
    """

    def __init__(self, position: str = "") -> None:
        LookupError.__init__(
            self,
            f"no model is configured for {CHAT!r} effects"
            + (f" (at position {position})" if position else "")
            + ": set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible endpoint, "
            "MCE_MODEL for the model name), or pass run(..., handlers={'llm.chat': "
            "openai_handler(...)}) (with `mce run`: a module-level `mce_handlers` dict); for "
            "offline runs and tests name the scripted model: "
            "handlers={'llm.chat': scripted_handler(ScriptedModel(...))}",
        )
        self.kind = CHAT
        self.position = position


@nonblocking  # builds a client or raises: never blocks
def default_chat_handler(request: dict[str, Any]) -> Any:
    """The handler `chat` uses when `run` is given none for `"llm.chat"`.

    The endpoint named by the `openai` client's environment variables
    (`OPENAI_BASE_URL`, `OPENAI_API_KEY`; model from `MCE_MODEL`) when one of
    them is set; otherwise it raises `ModelNotConfigured` - never a fake answer.
    One handler is kept per configuration; it opens connections per event
    loop and closes them when that loop ends (see `openai_handler`).

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OPENAI_BASE_URL": "", "OPENAI_API_KEY": ""}):
    ...     default_chat_handler({"messages": [{"role": "user", "content": "hi"}]})
    Traceback (most recent call last):
    ...
    mce.llm.ModelNotConfigured: no model is configured for 'llm.chat' effects: set OPENAI_API_KEY ...
    """
    base_url, api_key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
    if not (base_url or api_key):
        raise ModelNotConfigured()
    key = (base_url, api_key, os.environ.get("MCE_MODEL"))
    handler = _env_handlers.get(key)
    if handler is None:
        from mce.llm.endpoint import openai_handler

        handler = _env_handlers[key] = openai_handler()
    return handler(request)


def chat(
    messages: Iterable[Message],
    *,
    model: str | None = None,
    tools: Registry | Iterable[Tool | dict[str, Any]] = (),
    response_format: dict[str, Any] | None = None,
    **params: Any,
) -> Step[object, LLMError, AssistantMessage]:
    """One model call: a step whose value is the `AssistantMessage`.

    `messages` are OpenAI-format dicts (a plain str is a user message);
    `tools` are `@tool`s, a `Registry` or raw tool schemas; other keyword
    arguments (temperature, max_tokens, seed, ...) go to the endpoint.
    With `stream=True` the reply streams: the handler reports each piece as
    it arrives (`mce.llm.stream`; `mce.plan.stream_plan` listens, to run a
    plan while the model writes it); the value, and the journal, hold the
    whole message.

    >>> from mce import run_sync
    >>> model = ScriptedModel()  # offline: name the scripted model explicitly
    >>> run_sync(chat(["hi"]), None, handlers={"llm.chat": scripted_handler(model)}).value.content
    '(scripted reply to: hi)'
    """
    request: dict[str, Any] = {"messages": _messages(messages)}
    if model is not None:
        request["model"] = model
    schemas = _tool_schemas(tools)
    if schemas:
        request["tools"] = schemas
    if response_format is not None:
        request["response_format"] = response_format
    request.update({k: v for k, v in params.items() if v is not None})
    # into= and error= are what a replay decodes the recorded reply or LLMError as; the
    # declared error type stays LLMError as before (a handler bug is an EffectError too)
    asked: Step[object, Any, AssistantMessage] = effect(
        CHAT, request, handler=default_chat_handler, into=AssistantMessage, error=LLMError
    )
    return asked


def structured(
    messages: Iterable[Message],
    into: type[_T],
    *,
    model: str | None = None,
    repairs: int = 1,
    **params: Any,
) -> Step[object, LLMError, _T]:
    """A model call whose reply is parsed and validated into `into` (attrs class, dataclass...).

    The JSON schema of `into` is sent as structured-output `response_format`.
    A reply that is not valid JSON or does not match gets `repairs` more
    tries, each telling the model what was wrong; then an `LLMError`
    ("invalid_output") carrying the raw text.

    >>> from attrs import frozen
    >>> from mce import run_sync
    >>> @frozen
    ... class City:
    ...     name: str
    ...     population: int
    >>> model = ScriptedModel().queue('{"name": "Lisbon"}', json_reply({"name": "Lisbon", "population": 545000}))
    >>> run_sync(structured(["Largest city?"], City), None, handlers={"llm.chat": scripted_handler(model)}).value
    City(name='Lisbon', population=545000)
    """
    if repairs < 0:
        raise ValueError(f"repairs must be >= 0, got {repairs}")
    output: Schema[_T] = Schema.of(into)
    response_format = schema_response_format(into)

    def attempt(history: list[dict[str, Any]], left: int) -> Step[object, LLMError, _T]:
        asked = chat(history, model=model, response_format=response_format, **params)
        return asked.then(lambda reply: parse(reply, history, left))

    def parse(reply: AssistantMessage, history: list[dict[str, Any]], left: int) -> Any:
        raw = reply.content or ""
        try:
            value = output.validate_json(raw)
        except (ValueError, RecursionError) as exc:
            problem = _NESTED if isinstance(exc, RecursionError) else str(exc)
            if left > 0:
                correction = {
                    "role": "user",
                    "content": f"That reply was not valid: {problem}. Reply again with only a "
                    "JSON value that matches the schema.",
                }
                return attempt([*history, reply.to_dict(), correction], left - 1)
            return fail(LLMError("invalid_output", problem, raw_text=raw, attempts=repairs + 1))
        return pure(value)

    return attempt(_messages(messages), repairs)


_NESTED = "the JSON is nested too deeply"


def _loads(text: str) -> Any:
    """JSON from a model: `ValueError` for malformed or unencodable text, `RecursionError` for
    nesting deeper than Python's recursion limit."""
    value = json.loads(text)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:  # "\ud800": a lone surrogate is not text
        raise ValueError(f"the JSON holds a lone surrogate ({exc.reason})") from None
    return value


def _tool_arguments(call_: ToolCall) -> dict[str, Any] | str:
    """The call's arguments as JSON, or what is wrong with them (to tell the model)."""
    if not call_.arguments.strip():
        return {}
    try:
        value = _loads(call_.arguments)
    except RecursionError:
        return f"arguments are not usable: {_NESTED}"
    except ValueError as exc:
        return f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return f"arguments must be a JSON object, got {type(value).__name__}"
    return value


@final
@frozen
class AgentResult:
    """The end of an agent loop: the answer, the whole conversation, turns and tokens."""

    answer: str
    messages: tuple[dict[str, Any], ...]
    turns: int
    usage: Usage


def _tool_message(call_: ToolCall, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_.id, "content": content}


def _result_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(to_json(value), default=str)


def react(
    messages: Iterable[Message],
    tools: Registry | Iterable[Tool],
    *,
    max_turns: int = 8,
    model: str | None = None,
    limit: int | None = None,
    **params: Any,
) -> Step[object, LLMError, AgentResult]:
    """A tool-calling agent loop: ask the model, run the turn's tool calls concurrently, repeat.

    All tool calls of one turn run in parallel (applicatively); their
    results - or their errors, so the model can correct itself - go back as
    tool messages. The loop ends with the first reply that calls no tool, or
    fails with `LLMError("max_turns")` after `max_turns` model calls.
    `limit=k` runs at most k of a turn's tool calls at once.

    >>> from mce import run_sync
    >>> from mce.tools import tool
    >>> @tool
    ... def weather(city: str) -> str:
    ...     "Current weather."
    ...     return f"{city}: sunny"
    >>> model = ScriptedModel().queue(call("weather", city="Porto"), say("It is sunny in Porto."))
    >>> out = run_sync(react(["Weather in Porto?"], [weather]), None,
    ...                handlers={"llm.chat": scripted_handler(model)})
    >>> out.value.answer, out.value.turns
    ('It is sunny in Porto.', 2)
    """
    if max_turns < 1:
        raise ValueError(f"max_turns must be >= 1, got {max_turns}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"react(limit=...) needs an int >= 1, got {limit!r}")
    registry = tools if isinstance(tools, Registry) else Registry(tools)

    def turn(history: list[dict[str, Any]], n: int, usage: Usage) -> Any:
        if n == max_turns:
            return fail(LLMError("max_turns", f"no final answer after {max_turns} model calls"))
        asked = chat(history, model=model, tools=registry, **params)
        return asked.then(lambda reply: after(reply, history, n + 1, usage + reply.usage))

    def after(reply: AssistantMessage, history: list[dict[str, Any]], n: int, usage: Usage) -> Any:
        history = [*history, reply.to_dict()]
        if not reply.tool_calls:
            return pure(AgentResult(reply.content or "", tuple(history), n, usage))

        def run_call(c: ToolCall) -> Step[object, Never, dict[str, Any]]:
            arguments = _tool_arguments(c)
            if isinstance(arguments, str):
                error = ToolError(c.name, "invalid_arguments", arguments)
                return pure(_tool_message(c, f"ERROR: {error}"))
            ran = registry.call(c.name, arguments).map(lambda v: _tool_message(c, _result_text(v)))
            return ran.recover(lambda e: pure(_tool_message(c, f"ERROR: {e}")))

        results = gather([run_call(c) for c in reply.tool_calls], limit=limit)
        return results.then(lambda tool_messages: turn([*history, *tool_messages], n, usage))

    agent: Step[object, LLMError, AgentResult] = turn(_messages(messages), 0, Usage())
    return agent


_LAZY = ("OpenAIHandler", "openai_handler")


def __getattr__(name: str) -> Any:
    # The endpoint needs the `openai` client, a slow import: only a program
    # that names it pays for it (`mce graph`, a scripted run, a replay do not).
    if name in _LAZY:
        from mce.llm import endpoint

        value = globals()[name] = getattr(endpoint, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CHAT",
    "AgentResult",
    "AssistantMessage",
    "LLMError",
    "LLMErrorKind",
    "Message",
    "ModelNotConfigured",
    "OpenAIHandler",
    "Reply",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "call",
    "calls",
    "chat",
    "default_chat_handler",
    "example_from_schema",
    "from_rules",
    "json_reply",
    "openai_handler",
    "react",
    "say",
    "scripted_handler",
    "structured",
    "turn_number",
]
