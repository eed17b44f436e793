"""Values exchanged with models: tool calls, usage, assistant messages, errors.

They are attrs classes, so they journal and replay exactly.

>>> m = AssistantMessage(content="hi", usage=Usage(3, 1))
>>> m.usage.total_tokens, m.to_dict()
(4, {'role': 'assistant', 'content': 'hi'})
"""

from __future__ import annotations

import json
from typing import Any, Literal, final

from attrs import field, frozen


@final
@frozen
class ToolCall:
    """A model's request to call a tool; `arguments` is the raw JSON text it wrote.

    >>> ToolCall("call_1", "search", '{"q": "mce"}').parsed_arguments()
    {'q': 'mce'}
    """

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; `ValueError` if the model wrote malformed JSON."""
        return json.loads(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@final
@frozen
class Usage:
    """Tokens used by one model call.

    >>> Usage(10, 5) + Usage(1, 1)
    Usage(prompt_tokens=11, completion_tokens=6)
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@final
@frozen
class AssistantMessage:
    """A model's reply: text and/or tool calls, with token usage.

    `attempts` counts the requests it took (1 unless the endpoint was retried);
    it is journaled with the reply.

    >>> AssistantMessage(tool_calls=(ToolCall("1", "f", "{}"),)).wants_tools
    True
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(factory=Usage)
    model: str | None = None
    finish_reason: str | None = None
    attempts: int = 1

    @property
    def wants_tools(self) -> bool:
        return bool(self.tool_calls)

    def to_dict(self) -> dict[str, Any]:
        """The message in OpenAI chat format, to append to a conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        return message


LLMErrorKind = Literal[
    "rate_limited",
    "server_error",
    "timeout",
    "conflict",
    "auth",
    "not_found",
    "connection",
    "bad_request",
    "invalid_response",
    "invalid_output",
    "max_turns",
]
"""What went wrong in a model call (`LLMError.kind`)."""


@final
@frozen
class LLMError:
    """A model call failed in an expected way (on the error channel).

    `kind` is one of "rate_limited" (429), "server_error" (5xx), "timeout"
    (408, or no reply in time), "conflict" (409), "auth" (401, 403),
    "not_found" (404), "bad_request" (other 4xx), "connection",
    "invalid_response" (a reply that is not a chat completion),
    "invalid_output" (a reply that does not parse as asked), "max_turns";
    `status` is the HTTP status, `attempts` the requests made, and
    `raw_text` what the model wrote when its output was unusable.

    >>> str(LLMError("invalid_output", "not JSON", raw_text="{oops"))
    "invalid_output: not JSON (raw text: '{oops')"
    """

    kind: LLMErrorKind
    message: str
    status: int | None = None
    raw_text: str | None = None
    attempts: int = 1

    def __str__(self) -> str:
        text = f"{self.kind}: {self.message}"
        if self.raw_text is not None:
            text += f" (raw text: {self.raw_text[:200]!r})"
        return text


__all__ = [
    "AssistantMessage",
    "LLMError",
    "LLMErrorKind",
    "ToolCall",
    "Usage",
]
