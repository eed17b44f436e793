"""Retries a handler reports: `report_retry` in the handler, the run's reporter per effect.

Exported by `mce.effects`; the runtime sets the reporter around each handler call.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

_retry_reporter: contextvars.ContextVar[Callable[[int, str], None] | None] = contextvars.ContextVar(
    "mce_retry_reporter", default=None
)


def report_retry(attempt: int, reason: str) -> None:
    """Tell the run that the running handler is about to retry (attempt `attempt` failed).

    A handler that retries calls this before each new attempt; the run turns
    it into an `"effect.retry"` trace event for the effect being handled.
    Outside a run (or from a run without tracing) it does nothing.

    >>> report_retry(1, "HTTP 503")  # no run here: nothing to report to
    """
    logging.getLogger("mce").info("retrying: attempt %d failed (%s)", attempt, reason)
    reporter = _retry_reporter.get()
    if reporter is not None:
        reporter(attempt, reason)


def retry_reporting(reporter: Callable[[int, str], None] | None) -> contextvars.Token[Any]:
    """Make `report_retry` call `reporter` in this context (the runtime sets it per effect);
    returns the token to reset it with `stop_retry_reporting`.

    >>> seen = []
    >>> token = retry_reporting(lambda n, why: seen.append((n, why)))
    >>> report_retry(1, "HTTP 429")
    >>> stop_retry_reporting(token); report_retry(2, "again"); seen
    [(1, 'HTTP 429')]
    """
    return _retry_reporter.set(reporter)


def stop_retry_reporting(token: contextvars.Token[Any]) -> None:
    """Undo `retry_reporting` (see its example).

    >>> stop_retry_reporting(retry_reporting(None))
    """
    _retry_reporter.reset(token)
