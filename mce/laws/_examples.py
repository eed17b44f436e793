"""How each law draws an example: its two sides and a starting state, from hypothesis.

One function per law of `mce.laws.catalog`, each returning `Sides`, and the
predicates saying which instances a law applies to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from mce.laws.instances import Instance, MergeSubject
from mce.laws.strategies import Fn, arrows, functions, programs
from mce.merge import StateConflict

Sides = tuple[Any, Any, Any]  # left program, right program, starting state


def _prog(inst: Instance, data: st.DataObject) -> Any:
    return data.draw(programs(inst), label="m").build(inst)


def _arrow(inst: Instance, data: st.DataObject, label: str) -> Callable[[Any], Any]:
    return data.draw(arrows(inst), label=label).build(inst)


def _state(inst: Instance, data: st.DataObject) -> Any:
    return data.draw(inst.states, label="state")


def _fn_program(inst: Instance, data: st.DataObject, label: str) -> Any:
    """A program whose value is a function (for the applicative laws)."""
    f = data.draw(functions(), label=f"{label}_fn")
    return inst.map(
        data.draw(programs(inst), label=label).build(inst),
        lambda a: Fn(f"{f!r}@{a!r}", lambda x: (a, f(x))),
    )


def _compose(f: Any) -> Any:
    return lambda g: lambda x: f(g(x))


def _always(_inst: Any) -> bool:
    return True


def _functor_identity(inst: Instance, data: st.DataObject) -> Sides:
    m = _prog(inst, data)
    return inst.map(m, lambda x: x), m, _state(inst, data)


def _functor_composition(inst: Instance, data: st.DataObject) -> Sides:
    m, f, g = (
        _prog(inst, data),
        data.draw(functions(), label="f"),
        data.draw(functions(), label="g"),
    )
    return inst.map(inst.map(m, f), g), inst.map(m, lambda x: g(f(x))), _state(inst, data)


def _ap_identity(inst: Instance, data: st.DataObject) -> Sides:
    v = _prog(inst, data)
    return inst.ap(inst.pure(lambda x: x), v), v, _state(inst, data)


def _ap_homomorphism(inst: Instance, data: st.DataObject) -> Sides:
    f, x = data.draw(functions(), label="f"), data.draw(inst.values, label="x")
    return inst.ap(inst.pure(f), inst.pure(x)), inst.pure(f(x)), _state(inst, data)


def _ap_interchange(inst: Instance, data: st.DataObject) -> Sides:
    u, y = _fn_program(inst, data, "u"), data.draw(inst.values, label="y")
    return inst.ap(u, inst.pure(y)), inst.ap(inst.pure(lambda f: f(y)), u), _state(inst, data)


def _ap_composition(inst: Instance, data: st.DataObject) -> Sides:
    u, v, w = _fn_program(inst, data, "u"), _fn_program(inst, data, "v"), _prog(inst, data)
    left = inst.ap(inst.ap(inst.ap(inst.pure(_compose), u), v), w)
    return left, inst.ap(u, inst.ap(v, w)), _state(inst, data)


def _left_identity(inst: Instance, data: st.DataObject) -> Sides:
    a, k = data.draw(inst.values, label="a"), _arrow(inst, data, "k")
    return inst.bind(inst.pure(a), k), k(a), _state(inst, data)


def _right_identity(inst: Instance, data: st.DataObject) -> Sides:
    m = _prog(inst, data)
    return inst.bind(m, inst.pure), m, _state(inst, data)


def _associativity(inst: Instance, data: st.DataObject) -> Sides:
    m, f, g = _prog(inst, data), _arrow(inst, data, "f"), _arrow(inst, data, "g")
    return (
        inst.bind(inst.bind(m, f), g),
        inst.bind(m, lambda x: inst.bind(f(x), g)),
        _state(inst, data),
    )


def _ap_is_bind(inst: Instance, data: st.DataObject) -> Sides:
    u, m = _fn_program(inst, data, "u"), _prog(inst, data)
    via_bind = inst.bind(u, lambda f: inst.bind(m, lambda a: inst.pure(f(a))))
    return inst.ap(u, m), via_bind, _state(inst, data)


def _has_state(inst: Any) -> bool:
    return bool(getattr(inst, "has_state", False))


def _has_error(inst: Any) -> bool:
    return bool(getattr(inst, "has_error", False))


def _get_put(inst: Instance, data: st.DataObject) -> Sides:
    return inst.bind(inst.get(), inst.put), inst.pure(None), _state(inst, data)


def _put_get(inst: Instance, data: st.DataObject) -> Sides:
    s = data.draw(inst.states, label="s")
    return (
        inst.bind(inst.put(s), lambda _: inst.get()),
        inst.bind(inst.put(s), lambda _: inst.pure(s)),
        _state(inst, data),
    )


def _put_put(inst: Instance, data: st.DataObject) -> Sides:
    s1, s2 = data.draw(inst.states, label="s1"), data.draw(inst.states, label="s2")
    return inst.bind(inst.put(s1), lambda _: inst.put(s2)), inst.put(s2), _state(inst, data)


def _get_get(inst: Instance, data: st.DataObject) -> Sides:
    both = inst.bind(inst.get(), lambda a: inst.bind(inst.get(), lambda b: inst.pure((a, b))))
    return both, inst.bind(inst.get(), lambda a: inst.pure((a, a))), _state(inst, data)


def _throw_bind(inst: Instance, data: st.DataObject) -> Sides:
    e, k = data.draw(inst.errors, label="e"), _arrow(inst, data, "k")
    return inst.bind(inst.throw(e), k), inst.throw(e), _state(inst, data)


def _catch_throw(inst: Instance, data: st.DataObject) -> Sides:
    e, h = data.draw(inst.errors, label="e"), _arrow(inst, data, "h")
    return inst.catch(inst.throw(e), h), h(e), _state(inst, data)


def _catch_pure(inst: Instance, data: st.DataObject) -> Sides:
    a, h = data.draw(inst.values, label="a"), _arrow(inst, data, "h")
    return inst.catch(inst.pure(a), h), inst.pure(a), _state(inst, data)


def _catch_state(inst: Instance, data: st.DataObject) -> Sides:
    s, e = data.draw(inst.states, label="s"), data.draw(inst.errors, label="e")
    attempt = inst.bind(inst.put(s), lambda _: inst.throw(e))
    handled = inst.catch(attempt, lambda _e: inst.get())
    if inst.rollback:  # the handler runs from the state where catch was attached
        return handled, inst.get(), _state(inst, data)
    return handled, inst.bind(inst.put(s), lambda _: inst.get()), _state(inst, data)


def _has_lift(inst: Any) -> bool:
    return bool(getattr(inst, "has_lift", False)) and getattr(inst, "inner", None) is not None


def _lift_pure(inst: Instance, data: st.DataObject) -> Sides:
    assert inst.inner is not None
    a = data.draw(inst.values, label="a")
    return inst.lift(inst.inner.pure(a)), inst.pure(a), _state(inst, data)


def _lift_bind(inst: Instance, data: st.DataObject) -> Sides:
    inner = inst.inner
    assert inner is not None
    m = data.draw(programs(inner), label="inner_m").build(inner)
    f = data.draw(arrows(inner), label="inner_f").build(inner)
    return (
        inst.lift(inner.bind(m, f)),
        inst.bind(inst.lift(m), lambda a: inst.lift(f(a))),
        _state(inst, data),
    )


def _has_par(inst: Any) -> bool:
    return bool(getattr(inst, "has_par", False))


def _confined(inst: Instance, data: st.DataObject, key: str) -> Any:
    """A program that reads and writes only `state[key]` (a dict state)."""
    ops = data.draw(
        st.lists(st.sampled_from(["read", "write", "pure", "throw"]), min_size=1, max_size=4),
        label=f"{key}_ops",
    )
    value = data.draw(inst.values, label=f"{key}_value")

    def op(name: str, acc: Any) -> Any:
        if name == "read":
            return inst.map(inst.get(), lambda s: (acc, s.get(key)))
        if name == "write":
            return inst.bind(
                inst.get(), lambda s: inst.map(inst.put({**s, key: (acc, value)}), lambda _: acc)
            )
        if name == "throw":
            return inst.throw(("failed", key))
        return inst.pure((acc, value))

    def then(name: str) -> Callable[[Any], Any]:
        return lambda acc: op(name, acc)

    program = inst.pure(key)
    for name in ops:
        program = inst.bind(program, then(name))
    return program


def _par_is_sequence(inst: Instance, data: st.DataObject) -> Sides:
    a, b = _confined(inst, data, "left"), _confined(inst, data, "right")
    state = {"left": 0, "right": 0, "other": 1}
    return inst.par(a, b), inst.bind(a, lambda x: inst.map(b, lambda y: (x, y))), state


# ---------------------------------------------------------------- merge laws


def _attempt(f: Callable[[], Any]) -> Any:
    try:
        return ("merged", f())
    except StateConflict:
        return ("conflict",)  # which field is reported first may depend on grouping


def _merge_assoc(subject: MergeSubject, data: st.DataObject) -> Sides:
    m = subject.merge
    b = data.draw(subject.bases, label="base")
    x, y, z = (data.draw(subject.edits, label=n)(b) for n in ("x", "y", "z"))
    return (
        lambda: _attempt(lambda: m(b, m(b, x, y), z)),
        lambda: _attempt(lambda: m(b, x, m(b, y, z))),
        None,
    )


def _merge_identity(subject: MergeSubject, data: st.DataObject) -> Sides:
    m = subject.merge
    b = data.draw(subject.bases, label="base")
    x = data.draw(subject.edits, label="x")(b)
    return (lambda: (m(b, x, b), m(b, b, x))), (lambda: (x, x)), None


def _merge_commute(subject: MergeSubject, data: st.DataObject) -> Sides:
    m = subject.merge
    assert subject.disjoint is not None
    b = data.draw(subject.bases, label="base")
    ex, ey = data.draw(subject.disjoint, label="disjoint edits")
    x, y = ex(b), ey(b)
    return (lambda: _attempt(lambda: m(b, x, y))), (lambda: _attempt(lambda: m(b, y, x))), None
