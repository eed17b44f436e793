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
import os
import random
import time
from collections.abc import Callable
from typing import Any, final

import anyio
import openai

from mce._perloop import PerLoop
from mce.effects import EffectFailed
from mce.llm.types import AssistantMessage, LLMError, LLMErrorKind, ToolCall, Usage

DEFAULT_MODEL = "gpt-4o-mini"


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from `Retry-After` / `retry-after-ms` headers, if present.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "150"}), retry_after({})
    (2.0, 0.15, None)
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
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def to_message(response: Any) -> AssistantMessage:
    """Convert an `openai` chat completion into an `AssistantMessage`."""
    choice = response.choices[0]
    message = choice.message
    calls = tuple(
        ToolCall(c.id, c.function.name, c.function.arguments or "")
        for c in (message.tool_calls or ())
        if getattr(c, "function", None) is not None
    )
    usage = response.usage
    return AssistantMessage(
        content=message.content,
        tool_calls=calls,
        usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else Usage(),
        model=response.model,
        finish_reason=choice.finish_reason,
    )


async def from_stream(
    chunks: Any, on_delta: Callable[[str], None] | None = None
) -> AssistantMessage:
    """Assemble a streamed chat completion; `on_delta` sees each piece of text as it arrives.

    The journal records the assembled message, so a streamed call replays
    like any other.
    """
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish_reason = None
    model = None
    usage = Usage()
    async with contextlib.AsyncExitStack() as stack:
        if hasattr(chunks, "__aenter__"):
            await stack.enter_async_context(chunks)  # closes the response however we leave
        async for chunk in chunks:
            _absorb(chunk, text, calls, on_delta)
            model = chunk.model or model
            if chunk.usage is not None:
                usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices or ():
                finish_reason = choice.finish_reason or finish_reason
    return AssistantMessage(
        content="".join(text) if text else None,
        tool_calls=tuple(
            ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())
        ),
        usage=usage,
        model=model,
        finish_reason=finish_reason,
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
        self.owns_client = callable(client) and not isinstance(client, openai.AsyncOpenAI)
        self._client = None if self.owns_client else client
        self._clients: PerLoop[openai.AsyncOpenAI] | None = (
            PerLoop(client, _close_client) if self.owns_client else None  # type: ignore[arg-type]
        )
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
        attempt = 0
        while True:
            try:
                if kwargs.get("stream"):
                    kwargs.setdefault("stream_options", {"include_usage": True})
                    chunks = await client.chat.completions.create(**kwargs)
                    return await from_stream(chunks, self.on_delta)
                response = await client.chat.completions.create(**kwargs)
                return to_message(response)
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status == 429 or status >= 500
                kind: LLMErrorKind = (
                    "rate_limited"
                    if status == 429
                    else "server_error"
                    if status >= 500
                    else "bad_request"
                )
                error = LLMError(kind, _message(exc), status=status, attempts=attempt + 1)
                hinted = retry_after(exc.response.headers if exc.response is not None else None)
            except openai.APITimeoutError as exc:
                retryable, hinted = True, None
                error = LLMError("timeout", _message(exc), attempts=attempt + 1)
            except openai.APIConnectionError as exc:
                retryable, hinted = True, None
                error = LLMError("connection", _message(exc), attempts=attempt + 1)
            if not retryable or attempt >= self.retries:
                raise EffectFailed(error)
            await anyio.sleep(self._delay(attempt, hinted))
            attempt += 1


async def _close_client(client: openai.AsyncOpenAI) -> None:
    await client.close()


def _message(exc: Exception) -> str:
    text = str(exc)
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
    key = api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"

    def make() -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=timeout)

    return OpenAIHandler(make, chosen, max_concurrency, retries, backoff, max_backoff, on_delta)


__all__ = [
    "DEFAULT_MODEL",
    "OpenAIHandler",
    "from_stream",
    "openai_handler",
    "retry_after",
    "to_message",
]
