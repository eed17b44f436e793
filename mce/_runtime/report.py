"""A run's totals: effects run live and served, time in effects, tokens used.

>>> stats = RunStats()
>>> stats.live_calls += 1
>>> stats.report(0.5, served=2).effects
3
"""

from __future__ import annotations

from typing import Any

from mce.effects import token_usage
from mce.outcome import RunReport


class RunStats:
    """Counts what one run did, for its `RunReport`."""

    __slots__ = ("completion_tokens", "effect_seconds", "live_calls", "prompt_tokens")

    def __init__(self) -> None:
        self.live_calls = 0
        self.effect_seconds = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def account(self, value: Any) -> None:
        """Add a value's token usage (see `token_usage`) to the totals."""
        used = token_usage(value)
        if used is not None:
            self.prompt_tokens += used[0]
            self.completion_tokens += used[1]

    def report(self, wall_seconds: float, *, served: int) -> RunReport:
        """The run's report, given its wall time and how many effects were replayed."""
        return RunReport(
            effects=self.live_calls + served,
            live_calls=self.live_calls,
            replayed=served,
            wall_seconds=wall_seconds,
            effect_seconds=self.effect_seconds,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )
