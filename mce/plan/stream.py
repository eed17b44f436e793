r"""Dispatch while the planner streams: LLMCompiler's Task Fetching Unit.

`stream_plan(planner, tools)` runs a plan while the planner is still
writing it. The planner is a model call that streams -
`chat(messages, stream=True)` - or a function giving the reply as an async
iterator of text (`openai_stream`, `scripted_stream`). Each complete line is
validated and its task starts as soon as its inputs are ready.

>>> from mce import run_sync
>>> from mce.llm import ScriptedModel, chat, say, scripted_handler
>>> from mce.tools import tool
>>> @tool
... def shout(text: str) -> str:
...     return text.upper()
>>> model = ScriptedModel(per_token=0.0001).when("plan", say('1. shout("hi")\n2. shout("$1!")\n3. join()'))
>>> planner = chat(["plan it"], stream=True)
>>> run_sync(stream_plan(planner, [shout]), None, handlers={"llm.chat": scripted_handler(model)}).value
{'1': 'HI', '2': 'HI!'}
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import anyio

from mce.plan.controller import Editor, Feedback, LineParser, Tokens, _build
from mce.plan.ir import Plan
from mce.plan.llmcompiler import parse_line
from mce.plan.run import OnError, _check_on_error
from mce.plan.validate import MAX_TASKS
from mce.retry import RetryPolicy
from mce.step import Step
from mce.tools import Registry, Tool


def scripted_stream(
    text: str, per_token: float, *, chars_per_token: int = 4, arrivals: list[float] | None = None
) -> Tokens:
    r"""A planner reply that streams like a model's: `text` in pieces, one every `per_token` seconds.

    For offline runs, examples and benchmarks (like `ScriptedModel`). The
    pieces are `chars_per_token` characters long and sent on a fixed
    schedule (no drift); if `arrivals` is given, the time
    (`anyio.current_time()`) at which each line was complete is appended to it.

    >>> import anyio
    >>> async def read():
    ...     return [piece async for piece in scripted_stream("1. a()\n2. b()", 0)()]
    >>> anyio.run(read)
    ['1. a', '()\n2', '. b(', ')']
    """
    if not per_token >= 0:
        raise ValueError(f"scripted_stream() needs per_token >= 0, got {per_token!r}")
    if chars_per_token < 1:
        raise ValueError(f"scripted_stream() needs chars_per_token >= 1, got {chars_per_token!r}")
    pieces = [text[i : i + chars_per_token] for i in range(0, len(text), chars_per_token)]

    async def stream() -> AsyncIterator[str]:
        start = anyio.current_time()
        for k, piece in enumerate(pieces, start=1):
            await anyio.sleep_until(start + k * per_token)
            if arrivals is not None:
                arrivals.extend(anyio.current_time() for _ in range(piece.count("\n")))
            yield piece
        if arrivals is not None and not text.endswith("\n"):
            arrivals.append(anyio.current_time())

    return stream


def openai_stream(
    messages: Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
) -> Tokens:
    """A planner reply streamed from any OpenAI-compatible endpoint, as `stream_plan` reads it.

    Each call opens its own client (on the running event loop) and closes
    it when the reply ends, so runs on fresh event loops work. `base_url`,
    `api_key` and `model` default to `OPENAI_BASE_URL`, `OPENAI_API_KEY`
    and `MCE_MODEL`. Nothing is sent until `stream_plan` runs live: a
    replay reads the reply from the journal.

    >>> tokens = openai_stream([{"role": "user", "content": "plan"}], base_url="http://127.0.0.1:9/v1")
    >>> callable(tokens)
    True
    """
    import os

    import openai

    chosen = model or os.environ.get("MCE_MODEL") or "gpt-4o-mini"
    sent: list[Any] = [dict(m) for m in messages]

    async def tokens() -> AsyncIterator[str]:
        client = openai.AsyncOpenAI(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=timeout,
        )
        try:
            # The raw server-sent events, read line by line: nothing is left
            # half-consumed when the reply ends (on trio as on asyncio).
            async with client.chat.completions.with_streaming_response.create(
                model=chosen, messages=sent, stream=True
            ) as response:
                async for line in response.iter_lines():
                    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            yield piece
        finally:
            await client.close()

    return tokens


def stream_plan(
    tokens: Tokens | Step[object, Any, Any],
    tools: Registry | Iterable[Tool],
    *,
    parse: LineParser = parse_line,
    editor: Editor | None = None,
    on_error: OnError = "fail_fast",
    limit: int | None = None,
    retry: RetryPolicy | None = None,
    max_tasks: int = MAX_TASKS,
    feedback: Feedback | None = None,
    max_feedback: int = 2,
) -> Step[object, Any, Any]:
    r"""Run a plan while the planner still writes it: each task starts once its line is in.

    The planner is a model call that streams, `chat(messages, stream=True)`
    (any step whose value is an `AssistantMessage` or a str; its handler -
    `openai_handler`, `scripted_handler` - reports the reply's pieces as they
    arrive), or `tokens()`, a function giving the reply as an async
    iterator of text pieces (`openai_stream`, `scripted_stream`). Each
    complete line is parsed by
    `parse` (default: LLMCompiler's numbered format, `parse_line`),
    checked like an `Add` edit - tool, arguments, references to tasks
    already seen - and started as soon as what it needs has finished,
    while the rest of the plan is still arriving. A bad line fails the run
    with `PlanInvalid` naming it, before anything that needs it exists -
    or, with `feedback`, goes back to the planner: a bad line (and any line
    that refers to it) is left out, nothing that needs it starts, the rest
    of the plan runs on, and when the reply has ended
    `feedback(invalid, text)` - the problems, each naming its line, and the
    reply's text - gives a new planner (a step or token function) whose
    reply adds the corrected lines (it may reuse the ids of rejected lines;
    a task that was accepted runs once). After `max_feedback` replies that
    still have bad lines, the run fails with the last reply's `PlanInvalid`.
    The output maps every task id to its output; `editor`, `on_error`,
    `limit` and `retry` work as in `live`.

    The whole reply is one journaled effect (the model call, or
    `plan.stream` for a token function), and the order
    in which lines and completions were handled is journaled too, so a
    replay - which reads the reply from the journal at once - makes the
    same dispatches in the same order. A run resumed after a crash in the
    middle of the reply asks the planner again; a reply that differs on a
    line the journal recorded is a `ReplayDivergence` (raised out of `run`).

    >>> import anyio
    >>> from mce import run_sync
    >>> from mce.tools import tool
    >>> @tool
    ... def shout(text: str) -> str:
    ...     return text.upper()
    >>> async def planner():
    ...     for piece in ['1. shout("a', 'b")\n2. sh', 'out("$1!")\n', "3. join()"]:
    ...         await anyio.sleep(0)
    ...         yield piece
    >>> run_sync(stream_plan(planner, [shout]), None).value
    {'1': 'AB', '2': 'AB!'}
    """
    registry = tools if isinstance(tools, Registry) else Registry(tools)
    if not isinstance(tokens, Step) and not callable(tokens):
        raise TypeError(
            "stream_plan() needs a planner step (chat(..., stream=True)) or a function "
            f"returning an async iterator of text, got {tokens!r}"
        )
    _check_on_error(on_error)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"stream_plan(limit=...) needs an int >= 1, got {limit!r}")
    if editor is not None and not callable(editor):
        raise TypeError(f"stream_plan(editor=...) must be callable, got {editor!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"stream_plan(retry=...) needs a RetryPolicy, got {retry!r}")
    if feedback is not None and not callable(feedback):
        raise TypeError(f"stream_plan(feedback=...) must be callable, got {feedback!r}")
    if isinstance(max_feedback, bool) or not isinstance(max_feedback, int) or max_feedback < 0:
        raise ValueError(f"stream_plan(max_feedback=...) needs an int >= 0, got {max_feedback!r}")
    empty = Plan((), None)
    return _build(
        empty,
        registry,
        editor,
        on_error,
        limit,
        retry,
        max_tasks,
        tokens,
        parse,
        feedback,
        max_feedback,
    )


__all__ = ["openai_stream", "scripted_stream", "stream_plan"]
