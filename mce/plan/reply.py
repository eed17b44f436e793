"""One planner reply as it streams into a live plan: its lines, as streamed and as handled.

A `Reply` reads the planner - a step whose model call streams
(`chat(..., stream=True)`), listened to while its handler reports the
pieces, or a token function read as one journaled effect (`plan.stream`) -
and puts each complete line, then the end, in the controller's mailbox.
The reply's value (from the journal, on a replay) is the truth: a streamed
line that disagrees with it, or with the line the journal says was
handled, is a `ReplayDivergence`, never a plan mixed from two replies.

>>> reply = Reply(0, None, Mailbox(), lambda mismatch: None)
>>> reply.feed("1. a()\\n2. b")
>>> reply.feed("()\\n")
>>> list(reply.done.items)
[('line', 0, 1, '1. a()'), ('line', 0, 2, '2. b()')]
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Never, final

import anyio

from mce.effects import effect
from mce.journal import ReplayDivergence
from mce.llm.stream import Listener, current_listener, listen
from mce.llm.types import AssistantMessage
from mce.plan.llmcompiler import Join
from mce.plan.validate import Problem
from mce.step import Step, lift

STREAM = "plan.stream"
"""Effect kind: a planner's whole reply, read from a token function."""

Tokens = Callable[[], AsyncIterator[str]]
"""The planner's reply as it streams: a function giving an async iterator of text pieces."""


@final
class Mailbox:
    """An unbounded one-consumer queue (nothing to close, so nothing leaks if a run is cancelled)."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.wakeup: anyio.Event | None = None

    def put(self, item: Any) -> None:
        self.items.append(item)
        if self.wakeup is not None:
            self.wakeup.set()

    async def get(self) -> Any:
        while not self.items:
            self.wakeup = anyio.Event()
            await self.wakeup.wait()
        self.wakeup = None
        return self.items.popleft()


def reply_text(reply: Any) -> str:
    """The text of a planner step's value: a model's reply or a string.

    >>> reply_text(AssistantMessage(content="1. a()")), reply_text("2. b()")
    ('1. a()', '2. b()')
    """
    if isinstance(reply, AssistantMessage):
        return reply.content or ""
    if isinstance(reply, str):
        return reply
    raise TypeError(
        f"stream_plan(): the planner step must give an AssistantMessage or a str, got {reply!r}"
    )


@final
class Reply:
    """The planner's reply number `index` (0 the first; later ones answer feedback)."""

    def __init__(
        self,
        index: int,
        planner: Tokens | Step[object, Any, Any] | None,
        done: Mailbox,
        diverged: Callable[[ReplayDivergence], None],
    ) -> None:
        self.index = index
        self.planner = planner
        self.done = done
        self.diverged = diverged
        self.pushed = 0  # lines put in the mailbox
        self.partial: list[str] = []  # the streamed line not yet complete
        self.lines = 0  # lines the controller handled
        # Each line's text as the controller handled it (live or from the
        # journal) and as the reader streamed it: on a resume after a crash
        # mid-reply the planner is asked again, and a reply that rewrites a
        # recorded line must not be mixed into the recorded plan.
        self.handled: dict[int, str] = {}
        self.streamed: dict[int, str] = {}
        self.joined: Join | None = None
        self.problems: list[Problem] = []  # lines rejected (with feedback to the planner)
        self.text = ""  # the whole reply, once it ended
        self.outer: Listener | None = None  # who listened before this reply did

    def reader(self) -> Step[object, Any, None]:
        """Read the reply, handing on each line as it arrives, then the end."""
        planner = self.planner
        assert planner is not None

        def finished(text: str) -> Step[object, Never, None]:
            def tell() -> None:
                # A served reply (replay, resume) hands on its lines only now; the
                # reply's value is the truth the streamed lines must agree with.
                self.text = text
                lines = text.split("\n")
                for number in range(1, self.pushed + 1):
                    final = lines[number - 1] if number <= len(lines) else None
                    if self.streamed[number] != final:
                        self.diverged(
                            self._divergence(
                                number, "than it streamed", self.streamed[number], final
                            )
                        )
                for piece in lines[self.pushed :]:
                    self.push(piece)
                self.done.put(("end", self.index, self.pushed))

            return lift(tell)

        if isinstance(planner, Step):
            asked: Step[object, Any, Any] = planner

            async def start() -> None:
                # This branch's own task: its model call reports here, and to
                # whoever listened around the run (a UI showing the plan).
                outer = self.outer = current_listener()

                def both(piece: str | None) -> None:
                    self.feed(piece)
                    if outer is not None:
                        outer(piece)

                listen(both if outer is not None else self.feed)

            def heard(value: Any) -> Step[object, Never, None]:
                listen(self.outer)
                return finished(reply_text(value))

            return lift(start).then(lambda _: asked).then(heard)

        tokens = planner

        async def read(request: Any) -> str:
            text: list[str] = []
            async for chunk in tokens():
                text.append(chunk)
                self.feed(chunk)
            return "".join(text)

        request: dict[str, Any] = {"stream": "planner"}
        if self.index:
            request["reply"] = self.index
        return effect(STREAM, request, handler=read).then(lambda text: finished(str(text)))

    def feed(self, chunk: str | None) -> None:
        """A piece of the reply as it streams (None: the reply starts over)."""
        if chunk is None:
            # A retried request: lines not yet handled are dropped, and the new
            # attempt's lines are numbered from 1 again (handled ones must match).
            self.done.items = deque(
                i for i in self.done.items if not (i[0] == "line" and i[1] == self.index)
            )
            self.partial = []
            self.pushed = 0
            return
        *complete, rest = chunk.split("\n")
        for piece in complete:
            self.push("".join(self.partial) + piece)
            self.partial = []
        self.partial.append(rest)

    def push(self, line: str) -> None:
        self.pushed += 1
        self.streamed[self.pushed] = line
        self.compare(self.pushed)
        self.done.put(("line", self.index, self.pushed, line))

    def handle(self, number: int, text: str) -> None:
        """The controller handles line `number` (live, or as the journal says it did)."""
        self.lines = number
        self.handled[number] = text
        self.compare(number)

    def compare(self, number: int) -> None:
        """Note a line the journal and the planner's (resumed) reply disagree on."""
        recorded, streamed = self.handled.get(number), self.streamed.get(number)
        if None not in (recorded, streamed) and recorded != streamed:
            self.diverged(self._divergence(number, "than the journal", recorded, streamed))

    def _divergence(self, number: int, than: str, recorded: Any, streamed: Any) -> ReplayDivergence:
        which = f"reply {self.index}, " if self.index else ""
        return ReplayDivergence(
            f"plan {which}line {number}",
            STREAM,
            f"the planner's reply has a different line {number} {than}",
            recorded,
            streamed,
        )


__all__ = ["STREAM", "Mailbox", "Reply", "Tokens", "reply_text"]
