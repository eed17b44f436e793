"""What the parts of a running program share: the run, and each sequential context.

>>> seq = Seq(None, None, None, "")
>>> (seq.prefix, seq.n, seq.budget)
('', 0, None)
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from mce.events import Tracer
from mce.outcome import Err, Ok

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from mce._runtime.effects_port import Effects
    from mce.budget import Tracker
    from mce.step import Step

MergeFn = Callable[[Any, Any, Any], Any]


class Seq:
    """A sequential context: the top level, a parallel branch, a timed or shared step.

    It numbers the effects, parallel blocks and timeouts it meets in order;
    a position is the context's prefix plus that number, so positions do not
    depend on the order in which parallel branches complete. It also links
    to its parent, for the notes on bugs.
    """

    __slots__ = ("branch", "budget", "defer", "n", "parent", "parent_stack", "prefix")

    def __init__(
        self, parent: Seq | None, parent_stack: list[Any] | None, branch: int | None, prefix: str
    ) -> None:
        self.parent = parent
        self.parent_stack = parent_stack
        self.branch = branch
        self.prefix = prefix
        self.n = 0
        self.budget: Tracker | None = parent.budget if parent is not None else None
        # A branch of an unbounded parallel block: its final effect's record
        # may be made durable by the block (one wait for all branches).
        self.defer = False


class Event(Protocol):
    """What the runtime needs of an event: set it, wait for it."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[object]: ...


def new_event() -> Event:
    """An event for the running event loop: asyncio's own on asyncio.

    An `anyio.Event` asks which library runs it each time one is made, which
    costs a hundred times more than making an `asyncio.Event`; the runtime
    makes one per shared step and per journal write.

    >>> import anyio
    >>> async def main() -> bool:
    ...     done = new_event()
    ...     done.set()
    ...     await done.wait()
    ...     return done.is_set()
    >>> anyio.run(main), anyio.run(main, backend="trio")
    (True, True)
    """
    asyncio = sys.modules.get("asyncio")  # imported if it is running
    if asyncio is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            made: Event = asyncio.Event()
            return made
    return anyio.Event()


class ShareCell:
    """A shared step's once-per-run result."""

    __slots__ = ("bug", "done", "outcome")

    def __init__(self) -> None:
        self.done = new_event()
        self.outcome: Ok[Any, Any] | Err[Any, Any] | None = None
        self.bug: BaseException | None = None


class RunContext:
    """Everything one run of a program shares."""

    __slots__ = (
        "backend",
        "effects",
        "merge",
        "share_host",
        "share_keys",
        "shares",
        "tg",
        "tracer",
    )

    def __init__(
        self, merge: MergeFn, backend: str, effects: Effects, tracer: Tracer | None = None
    ) -> None:
        self.tracer = tracer
        self.merge = merge
        self.shares: dict[Step[Any, Any, Any], ShareCell] = {}
        self.share_keys: dict[str, Step[Any, Any, Any]] = {}
        self.tg: TaskGroup | None = None  # where shared steps run
        self.share_host: Any = None  # on asyncio: the bare tasks of its shared steps (scopes)
        self.backend = backend  # "asyncio", "trio" or "other": picks the branch runner
        self.effects = effects
