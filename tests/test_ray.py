"""Scale-out on a local Ray instance: remote tools and sub-agents, journals, failures, cancellation."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")

from mce import EffectError, Err, Journal, Ok, fail, gather, par, pure, run_sync  # noqa: E402
from mce.executors.ray import RayExecutor  # noqa: E402
from mce.meta import remote_agent  # noqa: E402
from mce.tools import ToolError, tool  # noqa: E402

# Functions here are shipped to the workers by value: the workers cannot import this module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def executor() -> Iterator[RayExecutor]:
    ex = RayExecutor(num_cpus=2)
    try:
        ex.start()
    except Exception as exc:  # pragma: no cover - platform without Ray support
        pytest.skip(f"cannot start a local Ray instance: {exc}")
    yield ex
    ex.shutdown()


@tool(remote=True)
def crunch(n: int) -> dict[str, int]:
    "CPU-bound work, reporting which process did it."
    total = sum(i * i for i in range(n))
    return {"total": total, "pid": os.getpid()}


@tool(remote=True)
def broken(x: int) -> int:
    "Fails."
    raise ValueError(f"bad input {x}")


@tool(remote=True)
def die(x: int) -> int:
    "Kills its worker."
    os._exit(1)


@tool(remote=True)
def slow(path: str) -> str:
    "Runs until stopped, leaving its process id, and a trace if it ever finishes."
    marker = Path(path)
    marker.write_text(f"started {os.getpid()}")
    for _ in range(12_000):  # at most about 10 minutes, so a bug cannot leave a worker behind
        time.sleep(0.05)
    marker.write_text("finished")
    return "done"


def fan_out() -> Any:
    return gather([crunch(20_000 + i) for i in range(8)]).map(
        lambda results: (sum(r["total"] for r in results), sorted({r["pid"] for r in results}))
    )


def test_remote_tools_run_on_workers_with_the_local_outcome(executor: RayExecutor) -> None:
    on_ray = run_sync(fan_out(), None, executor=executor)
    local = run_sync(fan_out(), None)
    assert isinstance(on_ray, Ok) and isinstance(local, Ok)
    assert on_ray.value[0] == local.value[0]
    assert os.getpid() not in on_ray.value[1]  # the work happened in Ray workers
    assert local.value[1] == [os.getpid()]


def test_journals_are_interchangeable(executor: RayExecutor) -> None:
    prog = gather([crunch(1000 + i) for i in range(4)]).map(lambda rs: [r["total"] for r in rs])
    recorded_on_ray = Journal()
    a = run_sync(prog, None, executor=executor, journal=recorded_on_ray)
    assert run_sync(prog, None, journal=recorded_on_ray, mode="replay") == a  # replayed locally
    recorded_locally = Journal()
    b = run_sync(prog, None, journal=recorded_locally)
    calls = executor.remote_calls
    assert run_sync(prog, None, journal=recorded_locally, mode="replay", executor=executor) == b
    assert executor.remote_calls == calls  # the replay sent nothing to Ray
    assert a == b
    strip = lambda j: {e["pos"]: (e["kind"], e["fp"]) for e in j.load()[1]}  # noqa: E731
    assert strip(recorded_on_ray) == strip(recorded_locally)


def test_remote_failures_are_typed_errors(executor: RayExecutor) -> None:
    out = run_sync(broken(3), None, executor=executor)
    assert out == Err(ToolError("broken", "failed", "bad input 3", exception_type="ValueError"))
    invalid = run_sync(crunch.call({"n": "many"}), None, executor=executor)
    assert isinstance(invalid, Err) and invalid.error.kind == "invalid_arguments"
    died = run_sync(die(1), None, executor=executor)
    assert isinstance(died, Err) and isinstance(died.error, (EffectError, ToolError))


def test_fail_fast_cancels_the_remote_task(
    executor: RayExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mce.executors import ray as ray_executor

    refs: list[Any] = []  # the Ray tasks the executor starts, to ask Ray how they ended
    remote = ray_executor._remote

    class Recording:
        def __init__(self, fn: Any) -> None:
            self.fn = fn

        def options(self, **options: Any) -> Recording:
            return Recording(self.fn.options(**options))

        def remote(self, *args: Any) -> Any:
            ref = self.fn.remote(*args)
            refs.append(ref)
            return ref

    monkeypatch.setattr(ray_executor, "_remote", lambda: Recording(remote()))
    marker = tmp_path / "slow.txt"

    async def go() -> Any:
        from mce import run

        failing = pure(0).then(lambda _: fail("stop"))
        return await run(
            par(slow(str(marker)), _after_start(marker, failing)), None, executor=executor
        )

    assert anyio.run(go) == Err("stop")
    assert len(refs) == 1
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(refs[0], timeout=120)
    # Ray reports the task cancelled at once; the worker running it must be gone.
    pid = int(marker.read_text().split()[1])
    anyio.run(_wait_until_gone, pid)
    assert marker.read_text().startswith("started")  # never finished


async def _wait_until_gone(pid: int) -> None:
    with anyio.fail_after(120):  # a guard: a task left running ends only after 10 minutes
        while _alive(pid):
            await anyio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _after_start(marker: Path, then: Any) -> Any:
    from mce import lift

    async def wait_for_start() -> None:
        with anyio.fail_after(20):
            while not marker.exists():
                await anyio.sleep(0.05)

    return lift(wait_for_start).then(lambda _: then)


def test_remote_sub_agent(executor: RayExecutor) -> None:
    agent = remote_agent(
        "squares",
        lambda text: pure([int(x) ** 2 for x in text.split()]).map(lambda v: (v, os.getpid())),
    )
    out = run_sync(agent("1 2 3"), None, executor=executor)
    assert isinstance(out, Ok) and out.value[0] == [1, 4, 9] and out.value[1] != os.getpid()


def test_remote_tools_on_trio(executor: RayExecutor) -> None:
    on_trio = run_sync(fan_out(), None, executor=executor, backend="trio")
    local = run_sync(fan_out(), None)
    assert isinstance(on_trio, Ok) and isinstance(local, Ok)
    assert on_trio.value[0] == local.value[0] and os.getpid() not in on_trio.value[1]
