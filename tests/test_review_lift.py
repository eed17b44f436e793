"""Review of `lift(fn, *args)`: copies of a lifted step, its keyword, concurrent runs.

A lifted step without arguments must stay one without arguments when it is
copied or pickled (its "no argument" marker is compared by identity), and
one node run many times at once, on both backends, calls `fn` with the same
arguments every time.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import anyio
import pytest

from mce import Ok, gather, lift, par, run, run_sync, traverse

BACKENDS = ["asyncio", "trio"]


def _defaults(x: Any = "default") -> Any:
    return ("called with", x)


async def _a_defaults(x: Any = "default") -> Any:
    await anyio.sleep(0)
    return ("called with", x)


def _pickled(step: Any) -> Any:
    return pickle.loads(pickle.dumps(step))


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, _pickled])
@pytest.mark.parametrize("fn", [_defaults, _a_defaults])
def test_a_copied_or_pickled_lift_without_arguments_calls_fn_without_arguments(
    clone: Any, fn: Any
) -> None:
    """Before: a deep copy or a pickle of `lift(fn)` called `fn(<object object at ...>)`
    (the "no argument" marker was a plain `object()`, copied as a new object)."""
    cloned = clone(lift(fn))
    assert repr(cloned) == f"lift({fn.__name__})"
    assert run_sync(cloned, None) == Ok(("called with", "default"), None)
    assert run_sync(clone(lift(fn, None)), None) == Ok(("called with", None), None)


@pytest.mark.xfail(
    strict=True,
    reason="lift's implementation takes `arg` by keyword: `lift(fn, arg=x)` runs fn(x), "
    "where any other keyword (`lift(fn, x=1)`) is refused and type checkers refuse both",
)
def test_a_keyword_argument_for_fn_is_refused_whatever_its_name() -> None:
    def takes(arg: int) -> int:
        return arg

    with pytest.raises(TypeError):
        lift(takes, arg=1)  # type: ignore[call-overload]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_lifted_node_run_many_times_at_once_reuses_its_arguments(backend: str) -> None:
    """The same node in many branches and many concurrent runs: the arguments
    are read, never consumed or shared between calls."""
    seen: list[Any] = []

    async def record(box: list[Any], n: int) -> Any:
        seen.append(n)
        await anyio.sleep(0)
        return (len(box), n)

    box: list[Any] = []
    node = lift(record, box, 7)
    program = gather([node, node, par(node, node).map(list)]).then(
        lambda v: traverse([0, 1, 2], lambda _: node, limit=2).map(lambda w: (v, w))
    )
    expected = ([(0, 7), (0, 7), [(0, 7), (0, 7)]], ((0, 7),) * 3)
    outcomes: list[Any] = []

    async def main() -> None:
        async def one() -> None:
            out = await run(program, None)
            outcomes.append((list(out.value[0]), out.value[1]))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)

    anyio.run(main, backend=backend)
    assert outcomes == [expected] * 10
    assert seen == [7] * 70
