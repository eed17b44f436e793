"""Step.retry with RetryPolicy: attempts, which errors, backoff and jitter as journaled effects."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mce import Err, Journal, Ok, RetryPolicy, StepTimeout, effect, fail, put, run_sync
from mce.trace import TraceEvent

BACKENDS = ["asyncio", "trio"]


class Flaky:
    """A handler failing `failures` times (with `error`), then answering."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("down")
        self.calls = 0

    def __call__(self, request: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return f"{request}!"


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_until_success_counting_the_first_try(backend: Any) -> None:
    flaky = Flaky(2)
    step = effect("fetch", "x", handler=flaky).retry(RetryPolicy(attempts=3, backoff=0.001))
    assert run_sync(step, None, backend=backend) == Ok("x!", None)
    assert flaky.calls == 3
    flaky = Flaky(3)
    step = effect("fetch", "x", handler=flaky).retry(RetryPolicy(attempts=3, backoff=0.001))
    out = run_sync(step, None, backend=backend)
    assert isinstance(out, Err) and "ConnectionError: down" in str(out.error)
    assert flaky.calls == 3
    once = Flaky(5)
    assert not run_sync(effect("f", 1, handler=once).retry(RetryPolicy(attempts=1)), None).ok
    assert once.calls == 1


def test_retry_on_picks_the_errors_that_are_retried() -> None:
    seen: list[Any] = []

    def errors(request: Any) -> Any:
        seen.append(request)
        return fail(request)

    policy = RetryPolicy(attempts=4, backoff=0, retry_on=lambda e: e == "busy")
    assert run_sync(fail("fatal").retry(policy), None) == Err("fatal", None)
    by_class = RetryPolicy(attempts=3, backoff=0, retry_on=StepTimeout)
    timeout = StepTimeout(1.0, None)
    traced: list[TraceEvent] = []
    assert run_sync(fail(timeout).retry(by_class), None, trace=traced.append) == Err(timeout, None)
    assert [e.name for e in traced if e.event == "step.start"] == [
        "attempt 1/3",
        "attempt 2/3",
        "attempt 3/3",
    ]
    traced.clear()
    assert run_sync(fail(ValueError("x")).retry(by_class), None, trace=traced.append).ok is False
    assert [e.name for e in traced if e.event == "step.start"] == ["attempt 1/3"]


def test_each_attempt_starts_from_the_original_state() -> None:
    flaky = Flaky(2)
    attempt = put("dirty").then(lambda _: effect("f", 1, handler=flaky))
    out = run_sync(attempt.retry(RetryPolicy(backoff=0)), "clean")
    assert out == Ok("1!", "dirty") and flaky.calls == 3
    out = run_sync(put("dirty").then(lambda _: fail("no")).retry(RetryPolicy(backoff=0)), "clean")
    assert out == Err("no", "clean")


@pytest.mark.parametrize("backend", BACKENDS)
def test_attempts_backoff_and_jitter_are_journaled_and_replay(backend: Any) -> None:
    flaky = Flaky(2)
    policy = RetryPolicy(attempts=3, backoff=0.002, jitter=True)
    step = effect("fetch", "x", handler=flaky).named("fetch").retry(policy)
    journal = Journal()
    traced: list[TraceEvent] = []
    live = run_sync(step, None, journal=journal, seed=3, backend=backend, trace=traced.append)
    assert live == Ok("x!", None)
    entries = journal.load()[1]
    kinds = [(e["kind"], "err" not in e) for e in entries]
    assert kinds == [
        ("fetch", False),
        ("mce.random", True),
        ("mce.sleep", True),
        ("fetch", False),
        ("mce.random", True),
        ("mce.sleep", True),
        ("fetch", True),
    ]
    assert len({e["pos"] for e in entries}) == len(entries)
    delays = [e["req"] for e in entries if e["kind"] == "mce.sleep"]
    assert 0 <= delays[0] <= 0.002 and 0 <= delays[1] <= 0.004
    assert [name for name in (e.name for e in traced if e.event == "step.start")] == [
        "fetch attempt 1/3",
        "fetch",
        "fetch attempt 2/3",
        "fetch",
        "fetch attempt 3/3",
        "fetch",
    ]

    def never(request: Any) -> Any:
        raise AssertionError("a replay makes no live call")

    replay_trace: list[TraceEvent] = []
    replayed = run_sync(
        effect("fetch", "x", handler=never).named("fetch").retry(policy),
        None,
        journal=journal,
        mode="replay",
        backend=backend,
        trace=replay_trace.append,
    )
    assert replayed == live
    assert [e.name for e in replay_trace if e.event == "effect.end"] == [
        e.name for e in traced if e.event == "effect.end"
    ]


def test_delays_double_up_to_the_cap() -> None:
    assert RetryPolicy(attempts=5, backoff=1, jitter=False, max_delay=3).delays() == (1, 2, 3, 3)
    assert RetryPolicy(attempts=1).delays() == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts >= 1"),
        ({"attempts": 2.5}, "needs an int"),
        ({"backoff": -1}, "backoff=...) needs seconds >= 0"),
        ({"backoff": float("nan")}, "backoff=...) needs seconds >= 0"),
        ({"retry_on": "timeout"}, "retry_on=...) must be None, a class"),
        ({"retry_on": (ValueError, "x")}, "tuple must hold classes"),
    ],
)
def test_bad_policies_are_rejected_when_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(
        (TypeError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        RetryPolicy(**kwargs)
    with pytest.raises(TypeError, match="needs a RetryPolicy"):
        fail(1).retry(3)  # type: ignore[arg-type]


def test_each_retry_is_logged_on_the_mce_logger(caplog: pytest.LogCaptureFixture) -> None:
    from mce import RetryPolicy, effect, run_sync
    from mce.effects import report_retry

    calls = 0

    def flaky(_: object) -> int:
        nonlocal calls
        calls += 1
        if calls < 2:
            raise RuntimeError("try again")
        return calls

    with caplog.at_level(logging.INFO, logger="mce"):
        out = run_sync(
            effect("flaky", None, handler=flaky).retry(
                RetryPolicy(attempts=3, backoff=0.0, jitter=False)
            ),
            None,
        )
        report_retry(1, "HTTP 503")
    assert out.value == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "mce"]
    assert any("retrying, attempt 2 of 3" in m for m in messages), messages
    assert "retrying: attempt 1 failed (HTTP 503)" in messages


def test_many_attempts_cap_the_delay_instead_of_overflowing() -> None:
    # 2.0 ** 1100 overflows a float: the delay is capped at max_delay first.
    policy = RetryPolicy(attempts=2000, backoff=0.5, max_delay=30.0, jitter=False)
    delays = policy.delays()
    assert len(delays) == 1999
    assert delays[:3] == (0.5, 1.0, 2.0) and delays[-1] == 30.0
    step = fail("no").retry(RetryPolicy(attempts=1500, backoff=0.0))
    assert run_sync(step, None) == Err("no", None)


def test_retry_on_an_exception_class_matches_what_a_handler_or_tool_raised() -> None:
    # An effect's handler or a tool raising TimeoutError puts an EffectError /
    # ToolError on the error channel, naming the exception type: a policy
    # asking for TimeoutError (or OSError, a base class) retries it.
    from mce.tools import tool

    slow = Flaky(2, TimeoutError("slow"))
    policy = RetryPolicy(attempts=3, backoff=0, retry_on=TimeoutError)
    assert run_sync(effect("f", 1, handler=slow).retry(policy), None) == Ok("1!", None)
    assert slow.calls == 3
    reset = Flaky(1, ConnectionResetError("reset"))
    by_base = RetryPolicy(attempts=2, backoff=0, retry_on=(ValueError, OSError))
    assert run_sync(effect("f", 1, handler=reset).retry(by_base), None) == Ok("1!", None)
    wrong = Flaky(1, KeyError("k"))
    assert not run_sync(effect("f", 1, handler=wrong).retry(by_base), None).ok
    assert wrong.calls == 1

    calls: list[int] = []

    @tool
    def fetch(x: int) -> int:
        "Fetch, timing out once."
        calls.append(x)
        if len(calls) < 2:
            raise TimeoutError("upstream timed out")
        return x

    assert run_sync(fetch(7).retry(policy), None) == Ok(7, None)
    assert calls == [7, 7]


@pytest.mark.parametrize("backend", BACKENDS)
def test_retry_on_timeout_error_matches_the_timeouts_mce_raises(backend: Any) -> None:
    # A tool's own `timeout=`, `Step.timeout` and a model call that timed out
    # fail with mce's typed errors (ToolError "timeout", StepTimeout, LLMError
    # "timeout"): the documented `retry_on=TimeoutError` retries them all.
    import anyio

    from mce.llm.types import LLMError
    from mce.tools import ToolError, tool

    slow_calls: list[float] = []

    @tool(timeout=0.05)
    async def fetch(x: int) -> int:
        "Slow the first time."
        slow_calls.append(x)
        if len(slow_calls) == 1:
            await anyio.sleep(10)
        return x

    policy = RetryPolicy(attempts=2, backoff=0, retry_on=TimeoutError)
    assert run_sync(fetch(3).retry(policy), None, backend=backend) == Ok(3, None)
    assert slow_calls == [3, 3]
    assert policy.retries(ToolError("fetch", "timeout", "no result within 0.05 s"))
    assert policy.retries(StepTimeout(1.0))
    assert policy.retries(LLMError("timeout", "read timed out"))
    assert RetryPolicy(retry_on=OSError).retries(StepTimeout(1.0))  # a base class of TimeoutError
    assert not policy.retries(ToolError("fetch", "failed", "boom"))
    assert not policy.retries(LLMError("rate_limited", "429"))
    assert not RetryPolicy(retry_on=ValueError).retries(StepTimeout(1.0))
