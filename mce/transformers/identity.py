"""`Identity`: the monad with no effect at all.

>>> IDENTITY.bind(Id(1), lambda x: Id(x + 1))
Id(value=2)
>>> run_identity(IDENTITY.pure("v"))
'v'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from attrs import frozen

from mce.transformers.monad import Monad


@final
@frozen
class Id:
    """A value in the Identity monad.

    >>> Id(3).value
    3
    """

    value: Any


@final
class Identity(Monad):
    """The Identity monad instance; values are `Id`.

    >>> Identity().map(Id(2), lambda x: x * 2)
    Id(value=4)
    """

    def pure(self, value: Any) -> Id:
        return Id(value)

    def bind(self, m: Id, f: Callable[[Any], Any]) -> Any:
        return f(m.value)


IDENTITY: Identity = Identity()
"""The shared Identity instance."""


def run_identity(m: Id) -> Any:
    """The value inside.

    >>> run_identity(Id(5))
    5
    """
    return m.value


__all__ = [
    "IDENTITY",
    "Id",
    "Identity",
    "run_identity",
]
