"""Run remote effects on a Ray cluster: `run(..., executor=RayExecutor())`.

The handlers of effects marked `remote=True` - `@tool(remote=True)`,
`remote_agent(...)` - run as Ray tasks; everything else runs on the driver,
as under `LocalExecutor(threads=threads)`.
Results come back to the driver, which journals them exactly as a local run
would, so a run recorded on Ray replays locally and the reverse.

* A task that raises is an error on the error channel, as locally: a tool's
  `ToolError`, or an `EffectError` naming the original exception type.
* A worker that dies is an `EffectError` (`WorkerCrashedError`).
* Cancelling the step that awaits a remote task (a fail-fast sibling, a
  timeout, a budget) force-cancels the Ray task: a running one has its
  worker process killed, so a sync tool stops mid-way too.
* A `remote_agent` sub-agent runs under what the driver's enclosing budgets
  still allow; what it used is charged to them when it returns.

Ray is optional (`pip install -e ".[ray]"`).

    from mce.executors.ray import RayExecutor

    executor = RayExecutor(address="ray://head:10001")   # or None: a local Ray
    out = await run(workflow, state, executor=executor)

>>> RayExecutor(num_cpus=2).init_options["num_cpus"]
2
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, final

import anyio
import anyio.to_thread

from mce._runtime.subrun import PARENT, Parent
from mce.effects import EffectFailed
from mce.executors import LocalExecutor


def _run_on_worker(handler: Callable[[Any], Any], request: Any, parent: Parent | None) -> Any:
    """Inside a Ray worker: call the handler, running it to completion if async.

    `parent` is what the driver's enclosing budgets still allow, for a
    sub-agent's run (`mce.meta.remote_agent`) inside the handler.
    """
    token = PARENT.set(parent)
    try:
        result = handler(request)
        if hasattr(result, "__await__"):

            async def wait() -> Any:
                return await result

            result = anyio.run(wait)
        return result
    finally:
        PARENT.reset(token)


_remote_fn: Any = None


def _remote() -> Any:
    global _remote_fn
    if _remote_fn is None:
        import ray

        _remote_fn = ray.remote(max_retries=0)(_run_on_worker)
    return _remote_fn


class RemoteTaskError(RuntimeError):
    """A remote task failed in a way that carries no exception of the handler's own."""


@final
class RayExecutor:
    """Send remote effects to Ray; run the rest here (see the module docstring)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        task_options: dict[str, Any] | None = None,
        threads: int | None = None,
        **init_options: Any,
    ) -> None:
        self.address = address
        self.local = LocalExecutor(threads=threads)  # effects not marked remote
        self.init_options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "ignore_reinit_error": True,
            **init_options,
        }
        if num_cpus is not None:
            self.init_options["num_cpus"] = num_cpus
        self.task_options = dict(task_options or {})
        self.remote_calls = 0

    def start(self) -> None:
        """Connect to (or start) Ray; done on the first remote call anyway."""
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, **self.init_options)

    def shutdown(self) -> None:
        """Disconnect from Ray (stopping a local instance this process started)."""
        import ray

        if ray.is_initialized():
            ray.shutdown()

    async def call(self, handler: Callable[[Any], Any], request: Any, remote: bool) -> Any:
        if not remote:
            return await self.local.call(handler, request, remote)
        import ray
        from ray.exceptions import RayTaskError

        self.start()
        fn = _remote().options(**self.task_options) if self.task_options else _remote()
        parent = PARENT.get()
        if parent is not None:  # the allowance crosses the wire; the tracer stays here
            parent = Parent(parent.allowance, parent.position)
        ref = fn.remote(handler, request, parent)
        self.remote_calls += 1
        try:
            return await _wait(ref)
        except RayTaskError as failed:
            cause = failed.cause if getattr(failed, "cause", None) is not None else None
            if isinstance(cause, EffectFailed):
                raise EffectFailed(cause.error) from None
            if isinstance(cause, Exception):
                raise cause from None
            raise RemoteTaskError(str(failed)) from None
        except BaseException:
            # Cancelled here (a timeout, a budget, a failed sibling) or the driver
            # is stopping: stop the remote work too. Only killing the worker
            # process stops a sync function for sure - a KeyboardInterrupt
            # (force=False) does not reach one running in a thread, nor code
            # that catches it - so the worker running the task is killed; Ray
            # starts a fresh one. A task not started yet is simply dropped.
            ray.cancel(ref, force=True)
            # Cancelling is asynchronous in Ray: wait (shielded) until Ray reports
            # the task ended, so that once the step is cancelled the work has stopped.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_wait_ended, ref)
            raise


_CANCEL_WAIT = 30.0
"""How long a cancelled step waits for Ray to report its task ended."""


def _wait_ended(ref: Any) -> None:
    import ray

    ray.wait([ref], timeout=_CANCEL_WAIT, fetch_local=False)


async def _wait(ref: Any) -> Any:
    import ray

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio: wait in a worker thread
        return await anyio.to_thread.run_sync(ray.get, ref, abandon_on_cancel=True)
    return await asyncio.wrap_future(ref.future())


__all__ = ["RayExecutor", "RemoteTaskError"]
