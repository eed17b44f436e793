"""Helpers shared by the benchmark scripts: timing, statistics, the report page."""

from __future__ import annotations

import datetime as dt
import gc
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def today() -> str:
    return dt.date.today().isoformat()


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timed_async(backend: str, fn: Callable[[], Awaitable[Any]]) -> float:
    """Seconds for `await fn()`, excluding event-loop start-up."""

    async def main() -> float:
        gc.collect()
        t0 = time.perf_counter()
        await fn()
        return time.perf_counter() - t0

    return anyio.run(main, backend=backend)


class Stat:
    """Samples (seconds, or any measure) per unit, scaled (default: µs), sorted."""

    def __init__(self, samples: list[float], per: int = 1, scale: float = 1e6) -> None:
        self.us = sorted(s / per * scale for s in samples)

    @property
    def median(self) -> float:
        return statistics.median(self.us)

    def cell(self, digits: int = 3) -> str:
        return f"{self.median:.{digits}f} ({self.us[0]:.{digits}f}–{self.us[-1]:.{digits}f})"


def repeat(times: int, sample: Callable[[], float], per: int) -> Stat:
    sample()  # warm-up, not counted
    return Stat([sample() for _ in range(times)], per)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"mce {version('mce')}, anyio {version('anyio')}, trio {version('trio')}"
    )


def write_section(section: str, start: str, end: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


def publish(section: str, start: str, end: str, *, write: bool) -> None:
    """Print a report section and (unless told not to) put it in docs/benchmarks.md."""
    print(section)
    if write:
        write_section(section, start, end)
        print(f"wrote {DOC.relative_to(ROOT)}")
