"""Where effect handlers run: in this process, or on a cluster.

An executor is given each live handler call; `run(..., executor=...)`
chooses it. `LocalExecutor` (the default) calls handlers right here.
`mce.executors.ray.RayExecutor` runs the handlers of effects marked
`remote=True` (`@tool(remote=True)`, `remote_agent(...)`) as Ray tasks.
Either way the driver journals the results, so a run recorded on one
replays on the other.

>>> import anyio
>>> anyio.run(LocalExecutor().call, lambda req: req * 2, 21, False)
42
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, final, runtime_checkable


@runtime_checkable
class Executor(Protocol):
    """Runs a handler on a request (`remote` says whether the effect may leave the process)."""

    async def call(self, handler: Callable[[Any], Any], request: Any, remote: bool) -> Any: ...


@final
class LocalExecutor:
    """Call every handler in this process (async handlers are awaited)."""

    async def call(self, handler: Callable[[Any], Any], request: Any, remote: bool) -> Any:
        result = handler(request)
        if hasattr(result, "__await__"):
            result = await result
        return result


LOCAL = LocalExecutor()


__all__ = ["LOCAL", "Executor", "LocalExecutor"]
