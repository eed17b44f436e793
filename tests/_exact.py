"""Helpers shared by the exact tests of the runtime (test_parallel_exact, test_scopes_exact)."""

from __future__ import annotations

from typing import Any

import anyio

from mce import Err, Ok, Step, lift
from mce.executors import nonblocking

__all__ = ["err_and_state", "sleeper", "to_str"]


@nonblocking
def to_str(request: Any) -> str:
    """A handler called on the event loop: it ends before any timer can fire."""
    return str(request)


def sleeper(value: Any) -> Step[Any, Any, Any]:
    async def go() -> Any:
        await anyio.sleep(0)
        return value

    return lift(go)


def err_and_state(out: Ok[Any, Any] | Err[Any, Any]) -> tuple[Any, Any]:
    """An Err's error and state (its equality ignores the state)."""
    assert isinstance(out, Err), out
    return out.error, out.state
