"""Daily briefing: three sources fetched in parallel, then synthesized.

The example from the Monadic Context Engineering paper, offline: news,
weather and stock quotes come from simulated services with fixed latencies;
the three fetches run concurrently (`par`), each under a timeout with a
fallback (`timeout` + `recover`), and every fetch appends to the run's log,
a state field whose merge is declared (`concat`), so parallel writes combine
deterministically. A `@do` block then writes the briefing.

Run it:  python examples/01_daily_briefing.py
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, Never

import anyio
from attrs import evolve, field, frozen

from mce import Ok, Step, StepTimeout, do, gets, lift, modify, par, pure, run_sync
from mce.merge import add, concat, declare


@frozen
class Desk:
    """The run's state: what was fetched, and how long the services took."""

    city: str
    log: tuple[str, ...] = field(default=(), metadata=declare(concat))
    service_seconds: float = field(default=0.0, metadata=declare(add))


# Simulated services: (latency in seconds, payload).
NEWS = (
    0.30,
    (
        "Open-weights model tops reasoning benchmark",
        "City council approves night trains",
        "Rare comet visible this weekend",
    ),
)
WEATHER = (0.20, {"summary": "light rain, clearing by noon", "high_c": 14, "low_c": 7})
STOCKS = (0.25, {"ACME": (123.4, +1.2), "INITECH": (56.7, -0.8), "HOOLI": (310.0, +2.9)})
STOCKS_TIMEOUT = 1.0


def fetch(source: str, latency: float, payload: Any) -> Step[Desk, StepTimeout, Any]:
    """A simulated service call: waits `latency` seconds, logs it, returns `payload`."""

    async def call() -> Any:
        await anyio.sleep(latency)
        return payload

    def logged(d: Desk) -> Desk:
        return evolve(
            d,
            log=(*d.log, f"{source}: {latency:.2f} s"),
            service_seconds=d.service_seconds + latency,
        )

    def note(value: Any) -> Step[Desk, StepTimeout, Any]:
        return modify(logged).map(lambda _: value)

    return lift(call).named(source).then(note)


def with_fallback(
    step: Step[Desk, StepTimeout, Any], seconds: float, fallback: Any
) -> Step[Desk, Never, Any]:
    """Give up on a slow source after `seconds` and use `fallback` instead."""
    return step.timeout(seconds).recover(lambda _timeout: pure(fallback))


@do
def briefing() -> Generator[Step[Desk, Never, Any], Any, str]:
    city = yield gets(lambda d: d.city)
    news, weather, stocks = yield par(
        with_fallback(fetch("news", *NEWS), 1.0, ()),
        with_fallback(fetch("weather", *WEATHER), 1.0, None),
        with_fallback(fetch("stocks", *STOCKS), STOCKS_TIMEOUT, {}),
    )
    lines = [f"Good morning, {city}! Here is your briefing.", ""]
    if weather:
        lines.append(f"Weather: {weather['summary']}, {weather['low_c']}-{weather['high_c']} C.")
    lines.append("Headlines:")
    lines.extend(f"  - {headline}" for headline in news)
    lines.append("Markets:")
    for ticker, (price, change) in sorted(stocks.items()):
        lines.append(f"  {ticker:<8} {price:>8.2f}  {change:+.1f}%")
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    outcome = run_sync(briefing(), Desk(city="Lisbon"))
    wall = time.perf_counter() - start
    if not isinstance(outcome, Ok):
        raise SystemExit(f"briefing failed: {outcome}")
    print(outcome.value)
    desk = outcome.state
    print()
    print("Fetch log (branch order):", "; ".join(desk.log))
    print(
        f"Wall time {wall:.2f} s vs {desk.service_seconds:.2f} s of service latency "
        f"summed: {desk.service_seconds / wall:.1f}x from running the fetches in parallel."
    )


if __name__ == "__main__":
    main()
