"""The monad interface in dictionary-passing style.

Python has no higher-kinded types, so a monad here is an *instance object*
with `pure`, `bind`, `map`, `ap` (and `lift` for transformers); its values
are whatever representation that instance documents. `map` and `ap` have
lawful defaults written with `bind` and `pure`.

>>> from mce.transformers import IDENTITY, Id
>>> IDENTITY.ap(Id(lambda x: x + 1), Id(1))
Id(value=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Monad:
    """Base of the reference monads: override `pure` and `bind`."""

    def pure(self, value: Any) -> Any:
        """Inject a value.

        >>> from mce.transformers import IDENTITY
        >>> IDENTITY.pure(3)
        Id(value=3)
        """
        raise NotImplementedError

    def bind(self, m: Any, f: Callable[[Any], Any]) -> Any:
        """Sequence: run `m`, feed its value to `f`, run the result.

        >>> from mce.transformers import IDENTITY, Id
        >>> IDENTITY.bind(Id(2), lambda x: Id(x * 3))
        Id(value=6)
        """
        raise NotImplementedError

    def map(self, m: Any, f: Callable[[Any], Any]) -> Any:
        """Apply a pure function to the value: `bind(m, pure . f)`.

        >>> from mce.transformers import IDENTITY, Id
        >>> IDENTITY.map(Id(2), str)
        Id(value='2')
        """
        return self.bind(m, lambda a: self.pure(f(a)))

    def ap(self, mf: Any, ma: Any) -> Any:
        """Applicative apply, effects left to right: `mf` first, then `ma`.

        >>> from mce.transformers import IDENTITY, Id
        >>> IDENTITY.ap(Id(len), Id("abc"))
        Id(value=3)
        """
        return self.bind(mf, lambda f: self.map(ma, f))


__all__ = [
    "Monad",
]
