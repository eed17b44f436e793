"""The `llm.chat` handler for OpenAI-compatible endpoints, on the official `openai` client.

Concurrency is bounded by an anyio `CapacityLimiter`; rate limits (429),
server errors (5xx), timeouts and dropped connections are retried with
exponential backoff and jitter, honouring `Retry-After`. What still fails
becomes an `LLMError` on the error channel. The API key lives in the client,
never in a request: it cannot reach a journal or a trace.

>>> handler = openai_handler(base_url="http://127.0.0.1:9/v1", api_key="sk-test", model="m")
>>> handler.model
'm'
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, final

import anyio
import openai

from mce._perloop import PerLoop
from mce.effects import EffectFailed, report_retry, scrub
from mce.llm.stream import report_delta, report_restart
from mce.llm.types import AssistantMessage, LLMError, LLMErrorKind, ToolCall, Usage

DEFAULT_MODEL = "gpt-4o-mini"
_NO_KEY = "not-needed"  # the client insists on a key; a local endpoint may need none


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from `Retry-After` / `retry-after-ms` headers, if present.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "150"}), retry_after({})
    (2.0, 0.15, None)
    >>> retry_after({"retry-after": "soon"}) is None  # unparsable: ignored, not an error
    True
    """
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # unparsable ("soon"): the caller's own backoff applies
    if parsed.tzinfo is None:
        return None
    return max(0.0, parsed.timestamp() - time.time())


class InvalidResponse(ValueError):
    """A reply from the endpoint that is not a usable chat completion (see `to_message`).

    >>> isinstance(InvalidResponse("no choices"), ValueError)
    True
    """


def to_message(response: Any, attempts: int = 1) -> AssistantMessage:
    """Convert an `openai` chat completion into an `AssistantMessage`.

    A reply that is not a usable completion (no choices, no message, not
    even an object) raises `InvalidResponse` saying what is missing.

    >>> to_message({"choices": []})
    Traceback (most recent call last):
    ...
    mce.llm.endpoint.InvalidResponse: the reply has no choices: {'choices': []}
    """
    if isinstance(response, dict):
        raise InvalidResponse(f"the reply has no choices: {_preview(response)}")
    if isinstance(response, str | bytes | list) or response is None:
        raise InvalidResponse(f"the reply is not a chat completion: {_preview(response)}")
    choices = getattr(response, "choices", None)
    if not choices:
        raise InvalidResponse(f"the reply has no choices: {_preview(response)}")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise InvalidResponse(f"the reply's first choice has no message: {_preview(response)}")
    calls = tuple(
        ToolCall(_text(c.id), _text(c.function.name), _text(c.function.arguments or ""))
        for c in (message.tool_calls or ())
        if getattr(c, "function", None) is not None
    )
    usage = getattr(response, "usage", None)
    return AssistantMessage(
        content=None if message.content is None else _text(message.content),
        tool_calls=calls,
        usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else Usage(),
        model=getattr(response, "model", None),
        finish_reason=getattr(choice, "finish_reason", None),
        attempts=attempts,
    )


def _text(value: Any) -> str:
    """Text as a model sent it, with lone surrogates (not encodable) made U+FFFD.

    >>> _text("ok \\ud800") == "ok \\ufffd"
    True
    """
    text = str(value)
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _preview(value: Any) -> str:
    text = value.model_dump_json() if hasattr(value, "model_dump_json") else repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


async def from_stream(
    chunks: Any, on_delta: Callable[[str], None] | None = None, attempts: int = 1
) -> AssistantMessage:
    """Assemble a streamed chat completion; `on_delta` sees each piece of text as it arrives.

    Each piece is also reported to whoever listens (`mce.llm.stream.report_delta`).
    The journal records the assembled message, so a streamed call replays
    like any other.
    """
    reply = _Assembly(on_delta)
    async with contextlib.AsyncExitStack() as stack:
        if hasattr(chunks, "__aenter__"):
            await stack.enter_async_context(chunks)  # closes the response however we leave
        async for chunk in chunks:
            reply.absorb(chunk)
    return reply.message(attempts)


async def _read_stream(
    response: Any, on_delta: Callable[[str], None] | None, attempts: int
) -> AssistantMessage:
    """A streamed reply read from its raw server-sent events, line by line.

    Nothing is left half-consumed when the reply ends (the client's own
    stream leaves async generators to the garbage collector, which trio
    reports), on trio as on asyncio.
    """
    reply = _Assembly(on_delta)
    async for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            continue
        reply.absorb(openai.types.chat.ChatCompletionChunk.model_validate(json.loads(data)))
    return reply.message(attempts)


@final
class _Assembly:
    """A streamed reply being put together from its chunks."""

    def __init__(self, on_delta: Callable[[str], None] | None) -> None:
        self.on_delta = on_delta
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage = Usage()

    def absorb(self, chunk: Any) -> None:
        _absorb(chunk, self.text, self.calls, self.on_delta)
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
        for choice in chunk.choices or ():
            self.finish_reason = choice.finish_reason or self.finish_reason

    def message(self, attempts: int) -> AssistantMessage:
        return AssistantMessage(
            content=_text("".join(self.text)) if self.text else None,
            tool_calls=tuple(
                ToolCall(_text(c["id"]), _text(c["name"]), _text(c["arguments"]))
                for _, c in sorted(self.calls.items())
            ),
            usage=self.usage,
            model=self.model,
            finish_reason=self.finish_reason,
            attempts=attempts,
        )


def _absorb(
    chunk: Any,
    text: list[str],
    calls: dict[int, dict[str, str]],
    on_delta: Callable[[str], None] | None,
) -> None:
    for choice in chunk.choices or ():
        delta = choice.delta
        if delta.content:
            text.append(delta.content)
            report_delta(delta.content)
            if on_delta is not None:
                on_delta(delta.content)
        for part in delta.tool_calls or ():
            slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] = part.id or slot["id"]
            if part.function is not None:
                slot["name"] += part.function.name or ""
                slot["arguments"] += part.function.arguments or ""


@final
class OpenAIHandler:
    """Calls `chat.completions.create`; see `openai_handler`.

    A handler that made its own client keeps one client per event loop (each
    `run_sync` has its own loop, asyncio or trio) and closes it when that
    loop ends, so one handler serves any number of runs. The concurrency
    limit applies per event loop.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI | Callable[[], openai.AsyncOpenAI],
        model: str,
        max_concurrency: int | None,
        retries: int,
        backoff: float,
        max_backoff: float,
        on_delta: Callable[[str], None] | None = None,
    ) -> None:
        self._client: openai.AsyncOpenAI | None = None
        self._clients: PerLoop[openai.AsyncOpenAI] | None = None
        if isinstance(client, openai.AsyncOpenAI):
            self._client = client
        else:
            self._clients = PerLoop(client, _close_client)
        self.owns_client = self._clients is not None
        self.on_delta = on_delta
        self.model = model
        self.max_concurrency = max_concurrency
        self._limiters: PerLoop[anyio.CapacityLimiter] = PerLoop(
            lambda: anyio.CapacityLimiter(max_concurrency or 1)
        )
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The client for the running event loop (made on first use in that loop)."""
        if self._clients is not None:
            return self._clients.get()
        assert self._client is not None
        return self._client

    async def aclose(self) -> None:
        """Close the running loop's connections now (if this handler made the client)."""
        if self._clients is not None:
            await self._clients.aclose()

    async def __aenter__(self) -> OpenAIHandler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _delay(self, attempt: int, hinted: float | None) -> float:
        if hinted is not None:
            return min(hinted, self.max_backoff)
        base: float = min(self.max_backoff, self.backoff * 2.0**attempt)
        return base / 2 + random.uniform(0, base / 2)  # jitter: spread retrying clients

    async def __call__(self, request: dict[str, Any]) -> AssistantMessage:
        if self.max_concurrency is None:
            return await self._call(request)
        async with self._limiters.get():
            return await self._call(request)

    async def _call(self, request: dict[str, Any]) -> AssistantMessage:
        kwargs = {k: v for k, v in request.items() if v is not None}
        kwargs["model"] = kwargs.get("model") or self.model
        if not kwargs.get("tools"):
            kwargs.pop("tools", None)
        client = self.client
        secrets = _client_secrets(client)
        attempt = 0
        while True:
            try:
                if kwargs.get("stream"):
                    kwargs.setdefault("stream_options", {"include_usage": True})
                    streaming = client.chat.completions.with_streaming_response
                    async with streaming.create(**kwargs) as response:
                        return await _read_stream(response, self.on_delta, attempt + 1)
                response = await client.chat.completions.create(**kwargs)
                return to_message(response, attempt + 1)
            except openai.APIStatusError as exc:
                status = exc.status_code
                headers = exc.response.headers if exc.response is not None else None
                retryable = _should_retry(status, headers)
                error = LLMError(
                    _status_kind(status),
                    _message(exc, secrets),
                    status=status,
                    attempts=attempt + 1,
                )
                hinted = retry_after(headers)
            except openai.APITimeoutError as exc:
                retryable, hinted = True, None
                error = LLMError("timeout", _message(exc, secrets), attempts=attempt + 1)
            except openai.APIConnectionError as exc:
                retryable, hinted = True, None
                error = LLMError("connection", _message(exc, secrets), attempts=attempt + 1)
            except (openai.APIError, InvalidResponse, ValueError, TypeError, AttributeError) as exc:
                # A 200 that is not a chat completion: not JSON, no choices, a wrong shape.
                reason = (
                    str(exc)
                    if isinstance(exc, InvalidResponse)
                    else (f"the reply is not a chat completion ({type(exc).__name__}: {exc})")
                )
                raise EffectFailed(
                    LLMError("invalid_response", scrub(reason, secrets)[:500], attempts=attempt + 1)
                ) from None
            if not retryable or attempt >= self.retries:
                raise EffectFailed(error)
            report_retry(attempt + 1, str(error))
            await anyio.sleep(self._delay(attempt, hinted))
            if kwargs.get("stream"):
                report_restart()  # what the failed attempt streamed is void
            attempt += 1


_KINDS: dict[int, LLMErrorKind] = {
    401: "auth",
    403: "auth",
    404: "not_found",
    408: "timeout",
    409: "conflict",
}


def _status_kind(status: int) -> LLMErrorKind:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return _KINDS.get(status, "bad_request")


def _should_retry(status: int, headers: Any) -> bool:
    """408, 409, 429 and 5xx are retried, unless the server says otherwise (`x-should-retry`)."""
    told = headers.get("x-should-retry") if headers is not None else None
    if told == "true":
        return True
    if told == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def _client_secrets(client: Any) -> list[str]:
    key = getattr(client, "api_key", None)
    return [key] if isinstance(key, str) and key != _NO_KEY else []


async def _close_client(client: openai.AsyncOpenAI) -> None:
    await client.close()


def _message(exc: Exception, secrets: list[str]) -> str:
    text = scrub(str(exc), secrets)
    return text if len(text) < 500 else text[:500] + "..."


def openai_handler(
    client: openai.AsyncOpenAI | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    max_concurrency: int | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    on_delta: Callable[[str], None] | None = None,
) -> OpenAIHandler:
    """An `llm.chat` handler for any OpenAI-compatible endpoint.

    Without `client`, one is made from `base_url`/`api_key` (default: the
    `OPENAI_BASE_URL`/`OPENAI_API_KEY` environment). `model` (default
    `MCE_MODEL`, then gpt-4o-mini) is used when a request names none.
    `retries` counts retries after the first attempt; the client's own
    retries are off so that this handler's backoff is the only one.

    Without `client`, the handler makes one client per event loop and
    closes it when that loop ends, so the same handler can serve repeated
    `run_sync` calls on asyncio and trio; `async with` (or `aclose()`) closes
    the running loop's connections early. A `client` you pass is yours: it is
    used as is, on the loop it was made for, and you close it. For `chat(..., stream=True)`, the
    reply is streamed and `on_delta` (if given) sees each piece of text as
    it arrives; the value, and the journal, hold the assembled message.

    >>> openai_handler(base_url="http://127.0.0.1:9/v1", api_key="k", max_concurrency=2).max_concurrency
    2
    """
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    chosen = model or os.environ.get("MCE_MODEL") or DEFAULT_MODEL
    if client is not None:
        return OpenAIHandler(
            client, chosen, max_concurrency, retries, backoff, max_backoff, on_delta
        )
    url = base_url or os.environ.get("OPENAI_BASE_URL")
    key = api_key or os.environ.get("OPENAI_API_KEY") or _NO_KEY

    def make() -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=timeout)

    return OpenAIHandler(make, chosen, max_concurrency, retries, backoff, max_backoff, on_delta)


__all__ = [
    "DEFAULT_MODEL",
    "InvalidResponse",
    "OpenAIHandler",
    "from_stream",
    "openai_handler",
    "retry_after",
    "to_message",
]
