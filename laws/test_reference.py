"""The interpreter agrees with the reference denotation on generated programs."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given

from mce import Err, Ok, Step, run
from mce.laws.strategies import steps
from mce.transformers import Left, Right, run_denotation

Prog = Step[dict[str, Any], Any, Any]


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
@given(prog=steps(failing=True))
def test_interpreter_equals_reference(backend: str, prog: Prog) -> None:
    assert _observe_interpreter(prog, backend) == _observe_reference(prog)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(prog=steps(depth=4, failing=False))
def test_interpreter_equals_reference_deeper_without_failures(backend: str, prog: Prog) -> None:
    assert _observe_interpreter(prog, backend) == _observe_reference(prog)
