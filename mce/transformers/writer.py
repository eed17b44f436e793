"""`WriterT`: adds an append-only log combined with a monoid.

A value is an inner value of `(value, log)`. The monoid is given as
`empty` and `combine` (default: tuples, concatenated).

>>> from mce.transformers import IDENTITY
>>> W = WriterT(IDENTITY)
>>> run_writer(W.bind(W.tell(("a",)), lambda _: W.tell(("b",))))
Id(value=(None, ('a', 'b')))
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, final

from mce.transformers.monad import Monad


@final
class WriterT(Monad):
    """The Writer transformer over `inner`, logging into a monoid.

    >>> from mce.transformers import IDENTITY
    >>> WriterT(IDENTITY, empty=0, combine=lambda a, b: a + b).tell(3)
    Id(value=(None, 3))
    """

    def __init__(
        self,
        inner: Monad,
        *,
        empty: Any = (),
        combine: Callable[[Any, Any], Any] = operator.add,
    ) -> None:
        self.inner = inner
        self.empty = empty
        self.combine = combine

    def pure(self, value: Any) -> Any:
        return self.inner.pure((value, self.empty))

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        inner, combine = self.inner, self.combine
        return inner.bind(
            m,
            lambda a_w: inner.map(f(a_w[0]), lambda b_w: (b_w[0], combine(a_w[1], b_w[1]))),
        )

    def lift(self, m: Any) -> Any:
        """Run an inner value, logging nothing.

        >>> from mce.transformers import IDENTITY, Id
        >>> WriterT(IDENTITY).lift(Id(1))
        Id(value=(1, ()))
        """
        return self.inner.map(m, lambda a: (a, self.empty))

    def tell(self, entry: Any) -> Any:
        """Append `entry` to the log.

        >>> from mce.transformers import IDENTITY
        >>> WriterT(IDENTITY).tell(("x",))
        Id(value=(None, ('x',)))
        """
        return self.inner.pure((None, entry))


def run_writer(m: Any) -> Any:
    """The inner value of `(value, log)` (a WriterT value is already that).

    >>> from mce.transformers import IDENTITY
    >>> run_writer(WriterT(IDENTITY).pure(1))
    Id(value=(1, ()))
    """
    return m


__all__ = [
    "WriterT",
    "run_writer",
]
