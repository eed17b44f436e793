"""The interpreter agrees with the reference denotation on generated programs."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mce import Err, Ok, Step, fail, get, gets, lift, modify, par, pure, put, run
from mce.transformers import Left, Right, run_denotation

_fresh = itertools.count()
Prog = Step[dict[str, Any], Any, Any]


def _read(key: str | None) -> Prog:
    return get() if key is None else gets(lambda s: s.get(key, 0))


def _write(key: str | None, value: int) -> Prog:
    if key is None:
        return put({"w": value})
    return modify(lambda s: {**s, key: value})


def _bump(key: str | None, by: int) -> Prog:
    k = key or "top"
    return modify(lambda s: {**s, k: s.get(k, 0) + by})


@st.composite
def programs(draw: st.DrawFn, depth: int = 3, key: str | None = None, failing: bool = True) -> Prog:
    """Programs over a dict state; under `par`, each branch touches only its own key.

    Fail-fast reports the branch that fails first *in time*; the sequential
    reference reports the first in branch order. The two agree when nothing
    inside a parallel branch awaits, so programs that may fail have no lifts
    under `par`.
    """
    leaves = [
        st.integers(-3, 3).map(pure),
        st.just(_read(key)),
        st.integers(0, 5).map(lambda v: _write(key, v)),
        st.integers(1, 3).map(lambda v: _bump(key, v)),
    ]
    if failing:
        leaves.append(st.sampled_from(["e1", "e2", "e3"]).map(fail))
    if depth == 0:
        return draw(st.one_of(leaves))
    kinds = ["leaf", "map", "then", "recover", "map_error", "par"]
    if not (failing and key is not None):
        kinds.append("lift")
    kind = draw(st.sampled_from(kinds))
    sub = programs(depth - 1, key, failing)
    if kind == "leaf":
        return draw(st.one_of(leaves))
    if kind == "map":
        c = draw(st.integers(0, 3))
        return draw(sub).map(lambda x: (c, x))
    if kind == "then":
        first, second = draw(sub), draw(sub)
        return first.then(lambda x: second.map(lambda y: (x, y)))
    if kind == "recover":
        body, handler = draw(sub), draw(sub)
        return body.recover(lambda e: handler.map(lambda y: (e, y)))
    if kind == "map_error":
        return draw(sub).map_error(lambda e: ("wrapped", e))
    if kind == "lift":
        value = draw(st.integers(0, 3))

        async def io() -> int:
            await anyio.sleep(0)
            return value

        return lift(io).map(lambda v: ("io", v))
    n = draw(st.integers(2, 3))
    tag = next(_fresh)
    branches = [draw(programs(depth - 1, f"{key or ''}/{tag}.{i}", failing)) for i in range(n)]
    return par(*branches)


def _observe_interpreter(prog: Prog, backend: str) -> Any:
    out = anyio.run(run, prog, {"top": 0}, backend=backend)
    if isinstance(out, Ok):
        return ("ok", out.value, out.state)
    assert isinstance(out, Err)
    return ("err", out.error)


def _observe_reference(prog: Prog) -> Any:
    result = anyio.run(run_denotation, prog, {"top": 0})
    if isinstance(result, Right):
        value, state = result.value
        return ("ok", value, state)
    assert isinstance(result, Left)
    return ("err", result.error)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(prog=programs(failing=True))
def test_interpreter_equals_reference(backend: str, prog: Prog) -> None:
    assert _observe_interpreter(prog, backend) == _observe_reference(prog)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(prog=programs(depth=4, failing=False))
def test_interpreter_equals_reference_deeper_without_failures(backend: str, prog: Prog) -> None:
    assert _observe_interpreter(prog, backend) == _observe_reference(prog)
