"""Streamed model replies: handlers report each piece of text as it arrives.

A model call made with `chat(..., stream=True)` is one journaled effect
whose value is the whole `AssistantMessage`. While it streams, the handler
reports each piece of text with `report_delta` - the OpenAI-compatible
handler as the server sends it, the scripted handler on the model's
per-token schedule - and whoever listens in that context (`listening`;
`mce.plan.stream_plan` does, to start tasks while the plan is still being
written) sees them. A replay reads the whole reply from the journal, so it
reports nothing: a listener must treat the final value as the truth.

>>> seen = []
>>> with listening(seen.append):
...     report_delta("1. search(")
...     report_restart()
>>> report_delta("nobody listens now")
>>> seen
['1. search(', None]
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import anyio

from mce.llm.types import AssistantMessage

Listener = Callable[[str | None], None]
"""Called with each piece of a streamed reply, and with None when the reply starts over."""

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "mce_llm_listener", default=None
)


def report_delta(text: str) -> None:
    """Tell whoever listens that this piece of the reply has arrived (a handler calls it).

    Outside a listening context it does nothing (see the module example).
    """
    listener = _listener.get()
    if listener is not None and text:
        listener(text)


def report_restart() -> None:
    """Tell whoever listens that the reply starts over (a handler retrying a streamed request).

    The pieces reported so far are void; the new attempt's pieces follow.
    """
    listener = _listener.get()
    if listener is not None:
        listener(None)


def current_listener() -> Listener | None:
    """Who listens to streamed replies in this context (None: nobody).

    >>> current_listener() is None
    True
    """
    return _listener.get()


def listen(listener: Listener | None) -> contextvars.Token[Listener | None]:
    """Make `report_delta` in this context (and tasks started from it) call `listener`.

    Returns the token for `stop_listening`. `listening` is the context-manager form.

    >>> stop_listening(listen(print))
    """
    return _listener.set(listener)


def stop_listening(token: contextvars.Token[Listener | None]) -> None:
    """Undo `listen` (see its example)."""
    _listener.reset(token)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Within the block, pieces of streamed replies go to `listener` (see the module example)."""
    token = listen(listener)
    try:
        yield
    finally:
        stop_listening(token)


def pieces(text: str, chars_per_token: int) -> list[str]:
    """`text` cut into tokens of `chars_per_token` characters (the scripted model's tokens).

    >>> pieces("1. a()\\n2. b()", 4)
    ['1. a', '()\\n2', '. b(', ')']
    """
    if chars_per_token < 1:
        raise ValueError(f"chars_per_token must be >= 1, got {chars_per_token!r}")
    return [text[i : i + chars_per_token] for i in range(0, len(text), chars_per_token)]


def _reply_text(message: AssistantMessage) -> tuple[str, str]:
    """The text a reply streams, and the text it takes time to write but streams no delta of."""
    silent = "".join(c.name + c.arguments for c in message.tool_calls)
    return message.content or "", silent


def deliver(message: AssistantMessage, stream: bool, per_token: float, chars_per_token: int) -> Any:
    """A scripted reply as a model would give it: `message`, or an awaitable of it.

    With `per_token` > 0 the reply takes one `per_token` seconds per token
    (on a fixed schedule, so a late wake-up does not push later tokens back);
    with `stream` each piece of text is reported (`report_delta`) when its
    token is due. Without either, `message` comes back at once.

    >>> m = AssistantMessage(content="hello world")
    >>> seen = []
    >>> with listening(seen.append):
    ...     deliver(m, True, 0, 6) is m
    True
    >>> seen
    ['hello ', 'world']
    """
    text, silent = _reply_text(message)
    if per_token <= 0:
        if stream:
            for piece in pieces(text, chars_per_token):
                report_delta(piece)
        return message
    return _paced(message, text, silent, stream, per_token, chars_per_token)


async def _paced(
    message: AssistantMessage,
    text: str,
    silent: str,
    stream: bool,
    per_token: float,
    chars_per_token: int,
) -> AssistantMessage:
    start = anyio.current_time()
    k = 0
    for piece in pieces(text, chars_per_token):
        k += 1
        await anyio.sleep_until(start + k * per_token)
        if stream:
            report_delta(piece)
    k += len(pieces(silent, chars_per_token))
    await anyio.sleep_until(start + k * per_token)
    return message


__all__ = [
    "Listener",
    "current_listener",
    "deliver",
    "listen",
    "listening",
    "pieces",
    "report_delta",
    "report_restart",
    "stop_listening",
]
