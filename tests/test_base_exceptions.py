"""Every BaseException leaves `run` as itself: never lost, never inside an exception group."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from typing import Any

import anyio
import pytest

from mce import effect, lift, par, pure, run_sync, share

BACKENDS = ["asyncio", "trio"]


class Halt(BaseException):
    """A user's own BaseException, not an Exception."""


def _raising(exc: BaseException) -> Any:
    async def go() -> None:
        await anyio.sleep(0)  # an awaiting branch: it runs in a task of its own
        raise exc

    return go


async def _quiet() -> int:
    await anyio.sleep(0)
    return 1


def _never_group(info: pytest.ExceptionInfo[BaseException]) -> None:
    assert not isinstance(info.value, BaseExceptionGroup)


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_base_exception_in_an_awaiting_branch(backend: str) -> None:
    with pytest.raises(Halt) as info:
        run_sync(par(lift(_quiet), lift(_raising(Halt("stop")))), None, backend=backend)  # type: ignore[call-overload]
    _never_group(info)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pytest_fail_in_an_awaiting_branch(backend: str) -> None:
    async def check() -> None:
        await anyio.sleep(0)
        pytest.fail("assertion in a branch")

    with pytest.raises(pytest.fail.Exception, match="assertion in a branch") as info:
        run_sync(par(lift(check), lift(_quiet)), None, backend=backend)  # type: ignore[call-overload]
    _never_group(info)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyboard_interrupt_in_a_branch_handler(backend: str) -> None:
    async def interrupted(request: Any) -> Any:
        await anyio.sleep(0)
        raise KeyboardInterrupt

    prog = par(effect("k", 1, handler=interrupted), effect("k", 2, handler=lambda r: r))
    with pytest.raises(KeyboardInterrupt) as info:
        run_sync(prog, None, backend=backend)  # type: ignore[call-overload]
    _never_group(info)


@pytest.mark.parametrize("backend", BACKENDS)
def test_keyboard_interrupt_at_the_top_level(backend: str) -> None:
    with pytest.raises(KeyboardInterrupt) as info:
        run_sync(lift(_raising(KeyboardInterrupt())), None, backend=backend)  # type: ignore[call-overload]
    _never_group(info)


@pytest.mark.parametrize("backend", BACKENDS)
def test_base_exception_in_a_shared_step_reaches_every_consumer(backend: str) -> None:
    shared = share(lift(_raising(Halt("shared"))))
    with pytest.raises(Halt) as info:
        run_sync(par(shared, shared.map(str), pure(0)), None, backend=backend)  # type: ignore[call-overload]
    _never_group(info)


_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import anyio
    from mce import effect, lift, par, run_sync

    async def slow():
        await anyio.sleep(5)

    def handler(request):
        sys.exit(3)

    where = sys.argv[2]
    if where == "top":
        prog = effect("k", 1, handler=handler)
    else:
        prog = par(lift(slow), effect("k", 1, handler=handler))
    run_sync(prog, None, backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("where", ["top", "branch"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sys_exit_in_a_handler_keeps_its_status(backend: str, where: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, backend, where],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "ExceptionGroup" not in done.stderr
    assert "Traceback" not in done.stderr  # SystemExit exits quietly, as it does anywhere


_CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys
    import time
    import anyio
    from mce import effect, lift, par, run_sync

    async def waiting():
        print("started", flush=True)
        await anyio.sleep(60)

    async def also_waiting():
        print("started", flush=True)
        await anyio.sleep(60)

    def blocking(request):
        print("started", flush=True)
        time.sleep(60)

    if sys.argv[2] == "thread":
        prog = par(effect("b", 1, handler=blocking), lift(waiting))
    else:
        prog = par(lift(waiting), lift(also_waiting))
    run_sync(prog, None, backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("waiting", ["async", "thread"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_leaves_as_keyboard_interrupt(backend: str, waiting: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, backend, waiting],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # Both branches are waiting (the blocking one in its thread): now press Ctrl-C.
        assert [proc.stdout.readline(), proc.stdout.readline()] == ["started\n"] * 2
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert "ExceptionGroup" not in stderr
    assert stderr.strip().splitlines()[-1] == "KeyboardInterrupt", stderr
    assert proc.returncode == -signal.SIGINT  # exited by KeyboardInterrupt, as Python does
