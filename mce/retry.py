"""Retrying a step: `RetryPolicy` and `Step.retry`, built from the algebra.

A retry is `recover` plus journaled effects: each attempt is the same step
run again (named `"attempt n/k"`, so every attempt is a step in the trace),
the wait between attempts is a `sleep` effect and its jitter a `random`
effect. The attempts' effects sit at their own positions in the journal, so
a replay serves each attempt - failures included - and waits for nothing.
Each attempt starts from the state the step started from.

>>> from mce import effect, run_sync
>>> calls = []
>>> def flaky(request):
...     calls.append(request)
...     if len(calls) < 3:
...         raise ConnectionError("try again")
...     return "ok"
>>> step = effect("fetch", "x", handler=flaky).retry(RetryPolicy(attempts=3, backoff=0.001))
>>> run_sync(step, None).value, len(calls)
('ok', 3)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, final

from attrs import field, frozen

from mce.effects import random, sleep
from mce.step import Step, fail, pure

_log = logging.getLogger("mce")

_S = TypeVar("_S")
_E = TypeVar("_E")
_A = TypeVar("_A")

RetryOn = type | tuple[type, ...] | Callable[[Any], bool] | None
"""Which errors are retried: None for all, error classes, or a predicate on the error."""


def _check_retry_on(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is None or isinstance(value, type):
        return
    if isinstance(value, tuple):
        if not value or not all(isinstance(t, type) for t in value):
            raise TypeError(f"RetryPolicy(retry_on=...) tuple must hold classes, got {value!r}")
        return
    if not callable(value):
        raise TypeError(
            f"RetryPolicy(retry_on=...) must be None, a class, a tuple of classes or a predicate, got {value!r}"
        )


def _check_attempts(_instance: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"RetryPolicy(attempts=...) needs an int, got {value!r}")
    if value < 1:
        raise ValueError(f"RetryPolicy(attempts=...) needs attempts >= 1, got {value}")


def _check_seconds(_instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"RetryPolicy({attribute.name}=...) needs seconds, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"RetryPolicy({attribute.name}=...) needs seconds >= 0, got {value!r}")


@final
@frozen
class RetryPolicy:
    """How to retry: `attempts` tries in all, waiting `backoff * 2**(n-1)` seconds after try n.

    `attempts` counts the first try. `backoff` is the base delay in seconds
    (doubled after each failed try, capped at `max_delay`); with `jitter` the
    delay is drawn uniformly from `[0, delay]` ("full jitter", journaled). `retry_on`
    picks the errors that are retried: None (every error), a class or a
    tuple of classes (`isinstance`; an exception class also matches the
    `EffectError` or `ToolError` of a handler or tool that raised it or a
    subclass, by its `exception_type`; `TimeoutError` also matches the
    timeouts mce reports as typed errors: a tool's own `timeout=`,
    `Step.timeout`'s `StepTimeout`, a model call's `LLMError("timeout")`), or
    a predicate on the error; any other error fails at once.

    >>> RetryPolicy(attempts=4, backoff=0.5, jitter=False).delays()
    (0.5, 1.0, 2.0)
    >>> RetryPolicy(retry_on=TimeoutError).retries(TimeoutError()), RetryPolicy(retry_on=TimeoutError).retries("x")
    (True, False)
    """

    attempts: int = field(default=3, validator=_check_attempts)
    backoff: float = field(default=0.5, validator=_check_seconds)
    jitter: bool = True
    retry_on: RetryOn = field(default=None, validator=_check_retry_on)
    max_delay: float = field(default=60.0, validator=_check_seconds)

    def retries(self, error: object) -> bool:
        """Whether `error` is one this policy retries."""
        rule = self.retry_on
        if rule is None:
            return True
        if isinstance(rule, type | tuple):
            return isinstance(error, rule) or _raised(error, rule) or _timed_out(error, rule)
        return bool(rule(error))

    def delays(self) -> tuple[float, ...]:
        """The delay before each retry, without jitter (one fewer than `attempts`)."""
        # The exponent is bounded so that many attempts cap at max_delay
        # instead of overflowing (2.0 ** 1024 raises OverflowError).
        return tuple(
            min(self.backoff * 2.0 ** min(n - 1, 1000), self.max_delay)
            for n in range(1, self.attempts)
        )


def _subclasses(cls: type) -> Iterator[type]:
    yield cls
    try:
        below: list[type] = cls.__subclasses__()
    except TypeError:  # `type` itself
        return
    for sub in below:
        yield from _subclasses(sub)


def _raised(error: object, rule: type | tuple[type, ...]) -> bool:
    """Whether `error` records a raised exception (`EffectError`, `ToolError`) of a class in `rule`.

    A handler's or a tool's exception reaches the error channel as a typed
    error naming the exception's type (`exception_type`); `retry_on=TimeoutError`
    is meant for it too.
    """
    name = getattr(error, "exception_type", None)
    if not isinstance(name, str):
        return False
    for cls in rule if isinstance(rule, tuple) else (rule,):
        if issubclass(cls, BaseException) and any(
            sub.__qualname__ == name for sub in _subclasses(cls)
        ):
            return True
    return False


def _timed_out(error: object, rule: type | tuple[type, ...]) -> bool:
    """Whether `error` is a timeout mce reports as a typed error, and `rule` asks for timeouts.

    A tool's own `timeout=` (`ToolError` of kind "timeout"), `Step.timeout`
    (`StepTimeout`) and a model call that timed out (`LLMError` of kind
    "timeout") raise no `TimeoutError` the caller could see: a policy with
    `retry_on=TimeoutError` (or a base class of it, such as `OSError`) means them.
    """
    from mce.errors import StepTimeout
    from mce.llm.types import LLMError
    from mce.tools import ToolError

    timeout = isinstance(error, StepTimeout) or (
        isinstance(error, ToolError | LLMError) and error.kind == "timeout"
    )
    if not timeout:
        return False
    return any(
        issubclass(TimeoutError, cls) for cls in (rule if isinstance(rule, tuple) else (rule,))
    )


def _wait(delay: float, jitter: bool) -> Step[Any, Any, None]:
    if delay <= 0:
        return pure(None)
    if not jitter:
        return sleep(delay)
    return random().then(lambda r: sleep(delay * r))


def retry(step: Step[_S, _E, _A], policy: RetryPolicy) -> Step[_S, _E, _A]:
    """`step`, tried up to `policy.attempts` times while it fails with an error `policy` retries.

    The value is the first successful attempt's; the error, if every attempt
    failed (or one failed with an error that is not retried), is the last
    attempt's error, unchanged.

    >>> from mce import run_sync
    >>> run_sync(retry(fail("no"), RetryPolicy(attempts=2, backoff=0)), None)
    Err(error='no', state=None)
    """
    if not isinstance(step, Step):
        raise TypeError(f"retry() needs a Step, got {step!r}")
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"retry() needs a RetryPolicy, got {policy!r}")
    delays = policy.delays()
    base = step.label

    def attempt(n: int) -> Step[_S, _E, _A]:
        name = f"attempt {n}/{policy.attempts}"
        tried = step.named(f"{base} {name}" if base else name)
        if n == policy.attempts:
            return tried

        def again(error: _E) -> Step[_S, _E, _A]:
            if not policy.retries(error):
                return fail(error)
            _log.info(
                "%s failed (%r); retrying, attempt %d of %d", name, error, n + 1, policy.attempts
            )
            return _wait(delays[n - 1], policy.jitter).then(lambda _: attempt(n + 1))

        return tried.recover(again)

    return attempt(1)


__all__ = ["RetryOn", "RetryPolicy", "retry"]
