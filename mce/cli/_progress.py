"""Live progress of a run on the terminal: one status line that always fits, or plain lines."""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
from typing import TextIO

from mce.events import TraceEvent


def display_width(text: str) -> int:
    """How many terminal columns `text` takes (wide East Asian characters take two).

    >>> display_width("abc"), display_width("检索")
    (3, 4)
    """
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def _cut(text: str, width: int) -> str:
    """`text` cut to at most `width` columns, ending in an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        w = display_width(char)
        if used + w > width - 1:
            break
        out.append(char)
        used += w
    return "".join(out) + "…"


def _terminal_width(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class Progress:
    """Live progress: one refreshed status line on a terminal, plain lines otherwise.

    The status line always fits the terminal's width (read again at every
    redraw, so a resize is followed): when the full line is too wide, the
    running kinds collapse to a count, then the step names shorten, so the
    line never wraps and smears.

    >>> import io
    >>> progress = Progress(io.StringIO(), live=True, width=40)
    >>> progress(TraceEvent("effect.start", 0.0, "0", "tool.search"))
    >>> display_width(progress.line()) <= 39
    True
    """

    def __init__(self, out: TextIO, live: bool, width: int | None = None) -> None:
        self.out = out
        self.live = live
        self.width = width
        self.start = time.time()
        self.running: dict[str, str] = {}
        self.steps: list[str] = []
        self.done = 0
        self.failed = 0
        self.steps_done = 0
        self.replayed = 0
        self.retries = 0
        self._last = 0.0

    def __call__(self, event: TraceEvent) -> None:
        if event.event == "effect.start":
            self.running[event.position] = event.name
        elif event.event == "effect.end":
            self.running.pop(event.position, None)
            self.done += 1
            self.failed += event.ok is False
            self.replayed += event.replayed
        elif event.event == "effect.retry":
            self.retries += 1
        elif event.event == "step.start":
            self.steps.append(event.name)
        elif event.event == "step.end" and event.name in self.steps:
            self.steps.remove(event.name)
            self.steps_done += 1
        if self.live:
            now = time.time()
            if now - self._last > 0.05 or (event.event == "effect.end" and not self.running):
                self._last = now
                self.out.write("\r\x1b[2K" + self.line())
                self.out.flush()
        elif event.event in ("effect.end", "effect.retry", "step.start", "step.end"):
            outcome = "" if event.ok is None else (" ok" if event.ok else " FAILED")
            if event.event == "effect.retry":
                outcome = " failed, retrying"
            self.out.write(
                f"{event.time - self.start:8.3f}s {event.event:<12} {event.name} {event.position}{outcome}\n"
            )

    def status(self, *, compact: bool = False, steps_width: int | None = None) -> str:
        """The whole status; `compact` counts the running effects instead of listing their kinds;
        `steps_width` keeps only the innermost step, cut to that many columns (0: no steps)."""
        kinds: dict[str, int] = {}
        for name in self.running.values():
            kinds[name] = kinds.get(name, 0) + 1
        if compact and self.running:
            running = str(len(self.running))
        else:
            running = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "-"
        steps = " > ".join(self.steps[-3:]) or "-"
        if steps_width is not None:
            steps = _cut(self.steps[-1], steps_width) if self.steps else "-"
        line = (
            f"{time.time() - self.start:6.2f}s  running: {running}  done: {self.done} "
            f"(failed {self.failed}" + (f", {self.retries} retries)" if self.retries else ")")
        )
        if steps_width is None or steps_width > 0:
            line += f"  steps: {steps} ({self.steps_done} finished)"
        return line

    def line(self) -> str:
        """The status as it fits one terminal line (one column spare, so it never wraps)."""
        room = (self.width or _terminal_width(self.out)) - 1
        for compact in (False, True):
            text = self.status(compact=compact)
            if display_width(text) <= room:
                return text
        bare = self.status(compact=True, steps_width=0)
        spare = room - display_width(bare) - len(f"  steps:  ({self.steps_done} finished)")
        if spare >= 4:
            return self.status(compact=True, steps_width=spare)
        return _cut(bare, room)

    def close(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.line() + "\n")
            self.out.flush()
