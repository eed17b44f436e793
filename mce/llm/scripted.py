"""`ScriptedModel`: a deterministic in-process model for offline runs and tests.

Replies come from a queue (first in, first out), then from rules (matched on
the last user message, on the last message of any role, on the turn number,
or on any function of the messages), then from a default: with
`call_tools=True`, a first reply that calls every offered tool with
schema-valid arguments (like pydantic-ai's `TestModel`); for structured
output, a JSON value built from the requested schema; after tool results, a
summary of them; otherwise an echo. Replies can be text, tool calls
(several in one reply, malformed ones too, for testing) or JSON. Rules can
also be read from JSON data (`from_rules`), as the loopback server does.

>>> model = ScriptedModel().when("weather", say("Sunny, 21 C."))
>>> model.respond({"messages": [{"role": "user", "content": "What's the weather?"}]}).content
'Sunny, 21 C.'
>>> model.respond({"messages": [{"role": "user", "content": "hello"}]}).content
'(scripted reply to: hello)'
"""

from __future__ import annotations

import difflib
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, final

from attrs import frozen

from mce.executors import nonblocking
from mce.llm.schema_example import example_from_schema
from mce.llm.stream import deliver
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


def turn_number(messages: Messages) -> int:
    """Which model call of the conversation this is: 1 + the assistant messages so far.

    >>> turn_number([{"role": "user", "content": "hi"}])
    1
    >>> turn_number([{"role": "user"}, {"role": "assistant"}, {"role": "tool"}])
    2
    """
    return 1 + sum(1 for m in messages if m.get("role") == "assistant")


def _trailing(messages: Messages, role: str) -> list[dict[str, Any]]:
    """The messages of `role` that end the conversation (none if it ends with another role)."""
    out: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != role:
            break
        out.append(message)
    return out


def _tools_answered(messages: Messages) -> bool:
    """Whether tool results came back since the last user message."""
    for message in reversed(messages):
        role = message.get("role")
        if role == "tool":
            return True
        if role == "user":
            return False
    return False


@final
class ScriptedModel:
    """A deterministic model: queued replies, then rules, then a default (see module).

    `per_token` (seconds) makes it write like a real model, a token of
    `chars_per_token` characters at a time: a reply arrives once all its
    tokens are written, and a streamed one (`chat(..., stream=True)`) hands
    on each piece of text when its token is due (`scripted_handler`, and the
    loopback server, follow this schedule).
    """

    def __init__(
        self,
        *,
        name: str = "scripted",
        keep_requests: bool = True,
        call_tools: bool | Iterable[str] = False,
        per_token: float = 0.0,
        chars_per_token: int = 4,
    ) -> None:
        if isinstance(per_token, bool) or not isinstance(per_token, int | float):
            raise TypeError(f"ScriptedModel(per_token=...) needs seconds, got {per_token!r}")
        if not (per_token >= 0 and math.isfinite(per_token)):
            raise ValueError(f"ScriptedModel(per_token=...) needs seconds >= 0, got {per_token!r}")
        if (
            isinstance(chars_per_token, bool)
            or not isinstance(chars_per_token, int)
            or chars_per_token < 1
        ):
            raise ValueError(
                f"ScriptedModel(chars_per_token=...) needs an int >= 1, got {chars_per_token!r}"
            )
        self.per_token = float(per_token)
        self.chars_per_token = chars_per_token
        self.name = name
        self.keep_requests = keep_requests
        if isinstance(call_tools, str):
            raise TypeError("call_tools= takes True or a list of tool names, not a str")
        self.call_tools: bool | frozenset[str] = (
            call_tools if isinstance(call_tools, bool) else frozenset(call_tools)
        )
        self._queue: deque[ReplySource] = deque()
        self._rules: list[tuple[Callable[[Messages], bool], ReplySource]] = []
        self.requests: list[dict[str, Any]] = []

    def when(
        self,
        contains: str | None = None,
        reply: ReplySource | None = None,
        *,
        role: str | None = None,
        turn: int | None = None,
        matches: Callable[[Messages], bool] | None = None,
    ) -> ScriptedModel:
        """Add a rule; rules are tried in order, and all of a rule's conditions must hold.

        * `contains`: the last user message contains this text (case-insensitively);
          with `role`, the conversation's *last message* has that role
          ("user", "tool", "assistant", "system") and contains it - or, when
          the conversation ends with several messages of that role (the
          results of parallel tool calls), one of them does;
        * `turn`: this is the conversation's n-th model call (1 + the
          assistant messages so far), for scripting a multi-turn agent;
        * `matches(messages)`: any condition of your own.

        >>> m = ScriptedModel()
        >>> m = m.when(turn=1, reply=call("forecast", city="Porto"))
        >>> m = m.when("sunny", role="tool", reply="Sunny in Porto.")
        >>> m.respond({"messages": [{"role": "user", "content": "weather?"}]}).tool_calls[0].name
        'forecast'
        >>> m.respond({"messages": [{"role": "user", "content": "weather?"},
        ...     {"role": "assistant", "content": None}, {"role": "tool", "content": "sunny"}]}).content
        'Sunny in Porto.'
        """
        if reply is None:
            raise ValueError("when() needs a reply")
        if contains is None and matches is None and turn is None and role is None:
            raise ValueError("when() needs contains=, role=, turn= or matches=")
        if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int) or turn < 1):
            raise ValueError(f"when(turn=...) must be an int >= 1, got {turn!r}")
        conditions: list[Callable[[Messages], bool]] = []
        if contains is not None or role is not None:
            needle = "" if contains is None else str(contains).lower()
            if role is None:
                conditions.append(lambda ms: needle in last_user_message(ms).lower())
            else:
                wanted = role

                def last_is(ms: Messages) -> bool:
                    return any(needle in _text(m).lower() for m in _trailing(ms, wanted))

                conditions.append(last_is)
        if turn is not None:
            n = turn
            conditions.append(lambda ms: turn_number(ms) == n)
        if matches is not None:
            conditions.append(matches)

        def all_hold(messages: Messages) -> bool:
            return all(condition(messages) for condition in conditions)

        self._rules.append((all_hold, reply))
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
        if self.call_tools and request.get("tools") and not _tools_answered(messages):
            offered = [t.get("function", t) for t in request["tools"]]
            chosen = [
                t
                for t in offered
                if self.call_tools is True
                or (isinstance(self.call_tools, frozenset) and t.get("name") in self.call_tools)
            ]
            if chosen:
                return calls(
                    *(
                        (str(t["name"]), example_from_schema(t.get("parameters") or {}))
                        for t in chosen
                    )
                )
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


_RULE_KEYS = ("contains", "role", "turn", "reply", "json", "tool", "arguments", "tool_calls")
_REPLY_KEYS = ("reply", "json", "tool", "tool_calls")


def from_rules(data: Any, *, call_tools: bool | Iterable[str] = False) -> ScriptedModel:
    """A model from JSON rules, tried in order (the loopback server's `--rules` format).

    Each rule is an object. Conditions (all must hold; at least one):
    `"contains"` (text in the last user message - or, with `"role"`, in the
    messages of that role that end the conversation), `"role"`, and `"turn"` (the n-th model call of the conversation). Reply (exactly one):
    `"reply"` (text), `"json"` (a JSON value as text), `"tool"` with
    `"arguments"` (one call), or `"tool_calls"`: a list of `{"name": ...,
    "arguments": {...}}` made in one reply (they run in parallel).

    >>> model = from_rules([
    ...     {"turn": 1, "tool_calls": [{"name": "forecast", "arguments": {"city": "Porto"}},
    ...                                {"name": "forecast", "arguments": {"city": "Lisbon"}}]},
    ...     {"role": "tool", "contains": "sunny", "reply": "Sunny somewhere."},
    ... ])
    >>> [c.arguments for c in model.respond({"messages": [{"role": "user", "content": "?"}]}).tool_calls]
    ['{"city": "Porto"}', '{"city": "Lisbon"}']
    >>> from_rules([{"contians": "x", "reply": "y"}])
    Traceback (most recent call last):
    ...
    ValueError: rule 0: unknown key 'contians' (did you mean 'contains'?)
    """
    if not isinstance(data, list):
        raise ValueError(f"rules must be a JSON list of objects, got {type(data).__name__}")
    model = ScriptedModel(call_tools=call_tools)
    for i, rule in enumerate(data):
        if not isinstance(rule, dict):
            raise ValueError(f"rule {i}: must be an object, got {rule!r}")
        for key in rule:
            if key not in _RULE_KEYS:
                near = difflib.get_close_matches(str(key), _RULE_KEYS, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {list(_RULE_KEYS)})"
                raise ValueError(f"rule {i}: unknown key {key!r}{hint}")
        replies = [k for k in _REPLY_KEYS if k in rule]
        if len(replies) != 1:
            raise ValueError(f"rule {i}: needs exactly one of {list(_REPLY_KEYS)}, got {replies}")
        if "arguments" in rule and "tool" not in rule:
            raise ValueError(f"rule {i}: 'arguments' goes with 'tool'")
        kind = replies[0]
        reply: Reply
        if kind == "reply":
            reply = say(str(rule["reply"]))
        elif kind == "json":
            reply = json_reply(rule["json"])
        elif kind == "tool":
            reply = call(str(rule["tool"]), rule.get("arguments", {}))
        else:
            parts = rule["tool_calls"]
            if not isinstance(parts, list) or not parts:
                raise ValueError(f"rule {i}: 'tool_calls' must be a non-empty list")
            requests: list[tuple[str, dict[str, Any] | str]] = []
            for j, part in enumerate(parts):
                if not isinstance(part, dict) or "name" not in part:
                    raise ValueError(f"rule {i}: tool_calls[{j}] needs a 'name'")
                extra = set(part) - {"name", "arguments"}
                if extra:
                    raise ValueError(f"rule {i}: tool_calls[{j}] has unknown keys {sorted(extra)}")
                requests.append((str(part["name"]), part.get("arguments", {})))
            reply = calls(*requests)
        try:
            model.when(rule.get("contains"), reply, role=rule.get("role"), turn=rule.get("turn"))
        except ValueError as exc:
            raise ValueError(f"rule {i}: {exc}") from None
    return model


def scripted_handler(model: ScriptedModel) -> Callable[[dict[str, Any]], Any]:
    """An `llm.chat` handler answering from `model`.

    A request with `stream=True` (`chat(..., stream=True)`) streams: each
    piece of the reply's text is reported (`mce.llm.stream.report_delta`) as
    its token is due, on the model's `per_token` schedule; the value is the
    whole reply either way.

    >>> handler = scripted_handler(ScriptedModel().queue("ok"))
    >>> handler({"messages": []}).content
    'ok'
    """

    def respond(request: dict[str, Any]) -> Any:
        message = model.respond(request)
        stream = bool(request.get("stream"))
        if not stream and model.per_token == 0:
            return message
        return deliver(message, stream, model.per_token, model.chars_per_token)

    # Cheap and never blocking: answered on the event loop, with no thread hop
    # (a paced reply is an awaitable the event loop finishes).
    return nonblocking(respond)


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
    "from_rules",
    "json_reply",
    "last_user_message",
    "rules",
    "say",
    "scripted_handler",
    "turn_number",
]
