"""The laws, each a pair of programs that must be observed equal, and how to check them.

A `Law` draws its inputs from an instance's strategies and returns the two
sides and a starting state; `check_law` runs it under hypothesis and raises
`LawViolation` with both observations on the first counterexample;
`check_all_laws` registers every law that applies to a subject as a pytest
test in the calling module.

>>> from mce.laws.instances import STEP
>>> [law.title for law in laws_for(STEP)][:3]
['Functor: identity', 'Functor: composition', 'Applicative: identity']
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, final

from attrs import frozen
from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st

from mce.laws._examples import Sides as Sides
from mce.laws._examples import (
    _always,
    _ap_composition,
    _ap_homomorphism,
    _ap_identity,
    _ap_interchange,
    _ap_is_bind,
    _associativity,
    _catch_pure,
    _catch_state,
    _catch_throw,
    _functor_composition,
    _functor_identity,
    _get_get,
    _get_put,
    _has_error,
    _has_lift,
    _has_par,
    _has_state,
    _left_identity,
    _lift_bind,
    _lift_pure,
    _merge_assoc,
    _merge_commute,
    _merge_identity,
    _par_is_sequence,
    _put_get,
    _put_put,
    _right_identity,
    _throw_bind,
)
from mce.laws.instances import Instance, MergeSubject


class LawViolation(AssertionError):
    """A law does not hold: names the law, the subject, and both observations."""


@final
@frozen
class Law:
    """One law: `family: name`, a statement, and how to draw an example of it."""

    family: str
    name: str
    statement: str
    applies: Callable[[Any], bool]
    example: Callable[[Any, st.DataObject], Sides]

    @property
    def title(self) -> str:
        return f"{self.family}: {self.name}"


INSTANCE_LAWS: tuple[Law, ...] = (
    Law("Functor", "identity", "map(m, id) = m", _always, _functor_identity),
    Law(
        "Functor", "composition", "map(map(m, f), g) = map(m, g . f)", _always, _functor_composition
    ),
    Law("Applicative", "identity", "ap(pure(id), v) = v", _always, _ap_identity),
    Law(
        "Applicative",
        "homomorphism",
        "ap(pure(f), pure(x)) = pure(f(x))",
        _always,
        _ap_homomorphism,
    ),
    Law(
        "Applicative",
        "interchange",
        "ap(u, pure(y)) = ap(pure(f -> f(y)), u)",
        _always,
        _ap_interchange,
    ),
    Law(
        "Applicative",
        "composition",
        "ap(ap(ap(pure(compose), u), v), w) = ap(u, ap(v, w))",
        _always,
        _ap_composition,
    ),
    Law("Monad", "left identity", "bind(pure(a), k) = k(a)", _always, _left_identity),
    Law("Monad", "right identity", "bind(m, pure) = m", _always, _right_identity),
    Law(
        "Monad",
        "associativity",
        "bind(bind(m, f), g) = bind(m, x -> bind(f(x), g))",
        _always,
        _associativity,
    ),
    Law(
        "Monad",
        "ap agrees with bind",
        "ap(u, m) = bind(u, f -> bind(m, a -> pure(f(a))))",
        _always,
        _ap_is_bind,
    ),
    Law("MonadState", "get-put", "bind(get, put) = pure(None)", _has_state, _get_put),
    Law(
        "MonadState",
        "put-get",
        "bind(put(s), _ -> get) = bind(put(s), _ -> pure(s))",
        _has_state,
        _put_get,
    ),
    Law("MonadState", "put-put", "bind(put(s1), _ -> put(s2)) = put(s2)", _has_state, _put_put),
    Law("MonadState", "get-get", "get twice = get once, used twice", _has_state, _get_get),
    Law(
        "MonadError",
        "throw short-circuits bind",
        "bind(throw(e), k) = throw(e)",
        _has_error,
        _throw_bind,
    ),
    Law("MonadError", "catch of throw", "catch(throw(e), h) = h(e)", _has_error, _catch_throw),
    Law("MonadError", "catch of pure", "catch(pure(a), h) = pure(a)", _has_error, _catch_pure),
    Law(
        "MonadError",
        "state across catch",
        "catch(bind(put(s), _ -> throw(e)), _ -> get) = get (rollback) or = bind(put(s), _ -> get)",
        lambda inst: _has_state(inst) and _has_error(inst),
        _catch_state,
    ),
    Law("MonadTrans", "lift . pure = pure", "lift(pure(a)) = pure(a)", _has_lift, _lift_pure),
    Law(
        "MonadTrans",
        "lift distributes over bind",
        "lift(bind(m, f)) = bind(lift(m), a -> lift(f(a)))",
        _has_lift,
        _lift_bind,
    ),
    Law(
        "Parallel",
        "par equals sequence for disjoint writes",
        "par(a, b) = bind(a, x -> map(b, y -> (x, y))) when a and b write different keys",
        _has_par,
        _par_is_sequence,
    ),
)


MERGE_LAWS: tuple[Law, ...] = (
    Law(
        "Merge",
        "associativity",
        "merge(b, merge(b, x, y), z) = merge(b, x, merge(b, y, z))",
        _always,
        _merge_assoc,
    ),
    Law(
        "Merge",
        "untouched branch is identity",
        "merge(b, x, b) = x = merge(b, b, x)",
        _always,
        _merge_identity,
    ),
    Law(
        "Merge",
        "disjoint writes commute",
        "merge(b, x, y) = merge(b, y, x) when x and y change different fields",
        lambda subject: subject.disjoint is not None,
        _merge_commute,
    ),
)


# ---------------------------------------------------------------- checking


def laws_for(subject: Instance | MergeSubject) -> list[Law]:
    """The laws that apply to `subject`.

    >>> from mce.laws.instances import STEP
    >>> len(laws_for(STEP))
    21
    """
    catalog = MERGE_LAWS if isinstance(subject, MergeSubject) else INSTANCE_LAWS
    return [law for law in catalog if law.applies(subject)]


def _observe_pair(subject: Any, sides: Sides) -> tuple[Any, Any]:
    left, right, state = sides
    if isinstance(subject, MergeSubject):
        return left(), right()
    return subject.observe(left, state), subject.observe(right, state)


def _law_test(subject: Any, law: Law, config: settings | None) -> Callable[..., None]:
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        left, right = _observe_pair(subject, law.example(subject, data))
        if left != right:
            raise LawViolation(
                f"{law.title} fails for {subject.name}: {law.statement}\n"
                f"  left side observed:  {left!r}\n  right side observed: {right!r}"
            )

    if config is not None:
        test = config(test)
    return test


def check_law(
    subject: Instance | MergeSubject, law: Law, *, config: settings | None = None
) -> None:
    """Check one law with hypothesis; raise `LawViolation` on a counterexample.

    >>> from mce.laws.instances import STEP
    >>> check_law(STEP, laws_for(STEP)[0])
    """
    _law_test(subject, law, config)()


def broken_laws(
    subject: Instance | MergeSubject, *, max_examples: int = 100, first_only: bool = False
) -> list[str]:
    """Titles of the laws `subject` breaks (for checking that the laws have teeth).

    Anything a law's example raises counts as breaking it. With
    `first_only`, stop at the first broken law.

    >>> from mce.laws.instances import STEP
    >>> broken_laws(STEP, max_examples=5)
    []
    """
    quiet = settings(
        max_examples=max_examples,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    broken = []
    for law in laws_for(subject):
        try:
            check_law(subject, law, config=quiet)
        except Exception:
            broken.append(law.title)
            if first_only:
                break
    return broken


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def check_all_laws(
    subject: Instance | MergeSubject, *, config: settings | None = None, prefix: str | None = None
) -> list[str]:
    """Register every law that applies to `subject` as a pytest test in the calling module.

    Call it at module level in a test file; each law becomes a test named
    `test_<subject>__<family>_<law>`. Returns the names.

    >>> from mce.laws.instances import STEP
    >>> names = check_all_laws(STEP)
    >>> names[0]
    'test_step__functor_identity'
    """
    namespace = sys._getframe(1).f_globals
    base = prefix or _slug(subject.name)
    names = []
    for law in laws_for(subject):
        name = f"test_{base}__{_slug(law.family)}_{_slug(law.name)}"
        test = _law_test(subject, law, config)
        test.__name__ = test.__qualname__ = name
        test.__doc__ = f"{law.title} for {subject.name}: {law.statement}"
        namespace[name] = test
        names.append(name)
    return names


__all__ = [
    "INSTANCE_LAWS",
    "MERGE_LAWS",
    "Sides",
    "Law",
    "LawViolation",
    "broken_laws",
    "check_all_laws",
    "check_law",
    "laws_for",
]
