"""Cancelling a running remote sync tool on Ray stops it; a remote sub-agent is charged to budgets."""

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

from mce import (  # noqa: E402
    Budget,
    BudgetExceeded,
    Err,
    effect,
    fail,
    gather,
    lift,
    par,
    run_sync,
    within_budget,
)
from mce.executors.ray import RayExecutor  # noqa: E402
from mce.llm import ScriptedModel, chat, scripted_handler  # noqa: E402
from mce.meta import remote_agent  # noqa: E402
from mce.tools import tool  # noqa: E402

# Functions here are shipped to the workers by value: the workers cannot import this module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

PATIENCE = 60.0


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
def gated(folder: str) -> str:
    "Says it started (with its pid), waits for the gate file, then says it finished."
    where = Path(folder)
    (where / "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (where / "gate").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # a sync tool that does not return until the test opens the gate
    (where / "finished").write_text("finished")
    return "done"


def _when_started(folder: Path) -> Any:
    async def wait() -> None:
        with anyio.fail_after(PATIENCE):
            while not (folder / "started").exists():
                await anyio.sleep(0.01)

    return lift(wait)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize(("backend", "how"), [("asyncio", "failed sibling"), ("trio", "budget")])
def test_a_cancelled_remote_sync_tool_is_stopped(
    executor: RayExecutor, tmp_path: Path, backend: str, how: str
) -> None:
    started = _when_started(tmp_path)
    if how == "failed sibling":
        prog: Any = par(gated(str(tmp_path)), started.then(lambda _: fail("stop")))
        expected: Any = Err("stop")
    else:  # the sibling's second effect is one call too many: the budget cancels the tool
        more = effect("more", 1, handler=lambda r: r)
        prog = within_budget(
            par(gated(str(tmp_path)), started.then(lambda _: more)), Budget(max_calls=1)
        )
        expected = Err(BudgetExceeded("calls", 1))
    out = run_sync(prog, None, executor=executor, backend=backend)  # type: ignore[call-overload]
    assert out == expected
    pid = int((tmp_path / "started").read_text())
    # Open the gate: a tool still running would now finish and write its marker.
    (tmp_path / "gate").write_text("open")
    deadline = time.monotonic() + PATIENCE
    while not _gone(pid) and not (tmp_path / "finished").exists():
        assert time.monotonic() < deadline, "the remote tool neither stopped nor finished"
        time.sleep(0.01)
    assert not (tmp_path / "finished").exists(), "the cancelled remote tool ran to completion"
    assert _gone(pid)


def test_a_remote_sub_agent_is_charged_to_the_drivers_budget(executor: RayExecutor) -> None:
    model = ScriptedModel().when("q", "one two three")
    agent = remote_agent(
        "fan",
        lambda text: gather([chat([f"q {text} {i}"]) for i in range(10)]).map(len),
        handlers={"llm.chat": scripted_handler(model)},
    )
    out = run_sync(within_budget(agent("x"), Budget(max_calls=4)), None, executor=executor)
    assert out == Err(BudgetExceeded("calls", 4))
    assert executor.remote_calls >= 1
