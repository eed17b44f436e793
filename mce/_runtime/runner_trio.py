"""The trio branch runner: a bare nursery (a third of an anyio task group's cost per task).

>>> TrioRunner().live
0
"""

from __future__ import annotations

from mce._runtime.runners import TaskGroupRunner


class TrioRunner(TaskGroupRunner):
    """Branches in a trio nursery."""

    __slots__ = ()

    def __init__(self) -> None:
        import trio  # only needed when running on trio

        super().__init__(trio.open_nursery)
