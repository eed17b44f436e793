"""Error values that mce's own combinators put on the error channel.

These are values, not exceptions: they arrive as `Err(error, state)`.

>>> StepTimeout(seconds=1.5, label="fetch")
StepTimeout(seconds=1.5, label='fetch')
"""

from __future__ import annotations

from typing import Generic, TypeVar, final

from attrs import frozen

_E_co = TypeVar("_E_co", covariant=True)


@final
@frozen
class StepTimeout:
    """A step wrapped in `.timeout(seconds)` did not finish in time.

    `label` is the innermost `.named(...)` label around the timed step, if any.

    >>> str(StepTimeout(2.0, "search"))
    "step 'search' timed out after 2.0 s"
    """

    seconds: float
    label: str | None = None

    def __str__(self) -> str:
        what = f"step {self.label!r}" if self.label else "step"
        return f"{what} timed out after {self.seconds} s"


@final
@frozen
class Failures(Generic[_E_co]):
    """Every error of a `collect`, in branch order, with the failing branches' indices.

    >>> f = Failures(errors=("a", "b"), branches=(0, 2))
    >>> list(f.items())
    [(0, 'a'), (2, 'b')]
    """

    errors: tuple[_E_co, ...]
    branches: tuple[int, ...]

    def items(self) -> tuple[tuple[int, _E_co], ...]:
        """Pairs of (branch index, error).

        >>> Failures(("x",), (1,)).items()
        ((1, 'x'),)
        """
        return tuple(zip(self.branches, self.errors, strict=True))


__all__ = [
    "Failures",
    "StepTimeout",
]
