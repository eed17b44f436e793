"""`ScriptedModel`: a deterministic in-process model for offline runs and tests.

Replies come from a queue (first in, first out), then from rules matched on
the last user message (or on any function of the messages), then from a
default: for structured output, a JSON value built from the requested
schema; after tool results, a summary of them; otherwise an echo. Replies
can be text, tool calls (including malformed ones, for testing) or JSON.

>>> model = ScriptedModel().when("weather", say("Sunny, 21 C."))
>>> model.respond({"messages": [{"role": "user", "content": "What's the weather?"}]}).content
'Sunny, 21 C.'
>>> model.respond({"messages": [{"role": "user", "content": "hello"}]}).content
'(scripted reply to: hello)'
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, final

from attrs import frozen

from mce.executors import nonblocking
from mce.llm.types import AssistantMessage, ToolCall, Usage

Messages = Sequence[dict[str, Any]]


@final
@frozen
class Reply:
    """What a scripted model says: text, tool calls (name, raw JSON arguments), or both."""

    content: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()


def say(text: str) -> Reply:
    """A text reply.

    >>> say("hi")
    Reply(content='hi', tool_calls=())
    """
    return Reply(content=text)


def call(name: str, arguments: dict[str, Any] | str | None = None, **kwargs: Any) -> Reply:
    """A reply that calls one tool. A string `arguments` is sent as is (malformed JSON too).

    >>> call("search", q="mce").tool_calls
    (('search', '{"q": "mce"}'),)
    """
    return calls((name, arguments if arguments is not None else kwargs))


def calls(*requests: tuple[str, dict[str, Any] | str]) -> Reply:
    """A reply that calls several tools in one turn (they run concurrently).

    >>> len(calls(("a", {}), ("b", {})).tool_calls)
    2
    """
    return Reply(
        tool_calls=tuple(
            (name, args if isinstance(args, str) else json.dumps(args)) for name, args in requests
        )
    )


def json_reply(value: Any) -> Reply:
    """A reply whose text is `value` as JSON (for structured output).

    >>> json_reply({"a": 1}).content
    '{"a": 1}'
    """
    return Reply(content=json.dumps(value))


ReplySource = Reply | str | Callable[[Messages], Reply | str]


def _as_reply(source: ReplySource, messages: Messages) -> Reply:
    if callable(source) and not isinstance(source, Reply):
        source = source(messages)
    if isinstance(source, str):
        return Reply(content=source)
    assert isinstance(source, Reply)
    return source


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content or ""


def last_user_message(messages: Messages) -> str:
    """The text of the last user message ("" if none).

    >>> last_user_message([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    'a'
    """
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message)
    return ""


def example_from_schema(schema: dict[str, Any]) -> Any:
    """A small value valid against a JSON schema (what the default model answers).

    >>> example_from_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    {'n': 0}
    """
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_from_schema(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_from_schema(props[name]) for name in schema.get("required", props)}
    if kind == "array":
        if "prefixItems" in schema:
            return [example_from_schema(s) for s in schema["prefixItems"]]
        return []
    return {"string": "example", "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(
        str(kind)
    )


@final
class ScriptedModel:
    """A deterministic model: queued replies, then rules, then a default (see module)."""

    def __init__(self, *, name: str = "scripted", keep_requests: bool = True) -> None:
        self.name = name
        self.keep_requests = keep_requests
        self._queue: deque[ReplySource] = deque()
        self._rules: list[tuple[Callable[[Messages], bool], ReplySource]] = []
        self.requests: list[dict[str, Any]] = []

    def when(
        self,
        contains: str | None = None,
        reply: ReplySource | None = None,
        *,
        matches: Callable[[Messages], bool] | None = None,
    ) -> ScriptedModel:
        """Add a rule: reply with `reply` when the last user message contains `contains`
        (case-insensitively) or when `matches(messages)` is true. Rules are tried in order.

        >>> ScriptedModel().when(matches=lambda ms: len(ms) > 2, reply="long").respond(
        ...     {"messages": [{"role": "user", "content": "x"}] * 3}).content
        'long'
        """
        if reply is None:
            raise ValueError("when() needs a reply")
        if contains is None and matches is None:
            raise ValueError("when() needs contains= or matches=")
        if matches is None:
            needle = str(contains).lower()

            def matches(messages: Messages) -> bool:
                return needle in last_user_message(messages).lower()

        self._rules.append((matches, reply))
        return self

    def queue(self, *replies: ReplySource) -> ScriptedModel:
        """Queue replies: the next requests get them in order, before any rule.

        >>> m = ScriptedModel().queue("one", "two")
        >>> [m.respond({"messages": []}).content for _ in range(3)]
        ['one', 'two', '(scripted reply to: )']
        """
        self._queue.extend(replies)
        return self

    def reply_for(self, request: dict[str, Any]) -> Reply:
        messages: Messages = request.get("messages", [])
        if self._queue:
            return _as_reply(self._queue.popleft(), messages)
        for matches, reply in self._rules:
            if matches(messages):
                return _as_reply(reply, messages)
        return self._default(request)

    def _default(self, request: dict[str, Any]) -> Reply:
        messages: Messages = request.get("messages", [])
        response_format = request.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return json_reply(example_from_schema(response_format["json_schema"]["schema"]))
        if response_format.get("type") == "json_object":
            return json_reply({})
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(_text(message))
        if results:
            return say("Based on the tools: " + " | ".join(reversed(results)))
        return say(f"(scripted reply to: {last_user_message(messages)})")

    def respond(self, request: dict[str, Any]) -> AssistantMessage:
        """Answer a chat request (the `llm.chat` effect's request)."""
        if self.keep_requests:
            self.requests.append(request)
        messages: Messages = request.get("messages", [])
        reply = self.reply_for(request)
        earlier = sum(len(m.get("tool_calls") or ()) for m in messages)
        tool_calls = tuple(
            ToolCall(f"call_{earlier + i}", name, args)
            for i, (name, args) in enumerate(reply.tool_calls)
        )
        prompt = sum(len(_text(m).split()) for m in messages)
        completion = len((reply.content or "").split()) + sum(
            len(a.split()) for _, a in reply.tool_calls
        )
        return AssistantMessage(
            content=reply.content,
            tool_calls=tool_calls,
            usage=Usage(prompt, completion),
            model=request.get("model") or self.name,
            finish_reason="tool_calls" if tool_calls else "stop",
        )


def scripted_handler(model: ScriptedModel) -> Callable[[dict[str, Any]], AssistantMessage]:
    """An `llm.chat` handler answering from `model`.

    >>> handler = scripted_handler(ScriptedModel().queue("ok"))
    >>> handler({"messages": []}).content
    'ok'
    """
    # Cheap and never blocking: answered on the event loop, with no thread hop.
    return nonblocking(model.respond)


def rules(pairs: Iterable[tuple[str, ReplySource]]) -> ScriptedModel:
    """A model from (substring, reply) pairs.

    >>> rules([("hi", "hello")]).respond({"messages": [{"role": "user", "content": "hi"}]}).content
    'hello'
    """
    model = ScriptedModel()
    for needle, reply in pairs:
        model.when(needle, reply)
    return model


__all__ = [
    "Messages",
    "Reply",
    "ReplySource",
    "ScriptedModel",
    "call",
    "calls",
    "example_from_schema",
    "json_reply",
    "last_user_message",
    "rules",
    "say",
    "scripted_handler",
]
