"""A CPU-bound tool fanned out 100 ways: locally versus on a local Ray instance.

Locally, CPU-bound tool calls share one interpreter (the GIL): fanning them
out gains nothing. On Ray they run in worker processes, one per CPU. The
per-task overhead of the Ray path is measured with a trivial remote tool.

Usage:  python benchmarks/bench_ray.py [--cpus 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from _common import machine, publish, today

from mce import gather, run_sync
from mce.executors.ray import RayExecutor
from mce.tools import tool

START, END = "<!-- bench_ray:start -->", "<!-- bench_ray:end -->"


@tool(remote=True)
def crunch(n: int) -> int:
    "CPU-bound work."
    return sum(i * i % 7 for i in range(n))


@tool(remote=True)
def noop(i: int) -> int:
    "Nothing at all."
    return i


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    out = fn()
    assert out.ok, out
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--work", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = RayExecutor(num_cpus=args.cpus)
    executor.start()
    fan = gather([crunch(args.work) for _ in range(100)])
    trivial = gather([noop(i) for i in range(200)])
    timed(lambda: run_sync(fan, None, executor=executor))  # warm up the workers
    local = [timed(lambda: run_sync(fan, None)) for _ in range(args.repeats)]
    remote = [timed(lambda: run_sync(fan, None, executor=executor)) for _ in range(args.repeats)]
    overhead = [
        timed(lambda: run_sync(trivial, None, executor=executor)) / 200 for _ in range(args.repeats)
    ]
    local_overhead = [timed(lambda: run_sync(trivial, None)) / 200 for _ in range(args.repeats)]
    executor.shutdown()
    lm, rm = statistics.median(local), statistics.median(remote)
    lines = [
        START,
        "## Scale-out on Ray (`benchmarks/bench_ray.py`)",
        "",
        f"Measured {today()} on {machine()}; Ray {ray.__version__} with {args.cpus} CPUs, local.",
        f"Median of {args.repeats} runs. Reproduce with `python benchmarks/bench_ray.py`.",
        "",
        "| workload | local | Ray | local ÷ Ray |",
        "|---|---:|---:|---:|",
        f"| 100 CPU-bound tool calls ({args.work:,} iterations each) | {lm:.2f} s | {rm:.2f} s | {lm / rm:.2f}x |",
        f"| per trivial remote call | {statistics.median(local_overhead) * 1e6:.0f} µs | "
        f"{statistics.median(overhead) * 1e6:.0f} µs | |",
        "",
        "The Ray path pays for pickling the handler and its request, scheduling a task and",
        "fetching the result: use it for work that takes milliseconds or more, on machines",
        "with more cores than this one.",
        END,
    ]
    section = "\n".join(lines) + "\n"
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
