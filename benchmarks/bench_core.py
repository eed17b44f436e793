"""Core overhead: µs per bind and per parallel branch, next to the raw floor.

Everything is measured in this one process, in one run, so the ratios
compare like with like on a shared, noisy machine: absolute times drift from
run to run, ratios hold.

* per bind: a left-nested chain `s = s.then(f)` of depth 10^3..10^6, with
  `f = lambda x: pure(x + 1)`; the floor is a plain `x = await inc(x)` loop.
  Building the chain is timed separately (build cost per `.then`).
* per branch: `gather` of N trivial lifted coroutines (N = 10^3, 10^4); the
  floors are `asyncio.gather`, an anyio task group, and a trio nursery.
* per lifted step: a chain `s = s.then(lambda x: lift(inc, x))` of depth
  10^3..10^5 (each step awaits a coroutine), and the same chain with a
  closure per step (`lift(lambda: inc(x))`), against the same
  `x = await inc(x)` loop; and the pure bind above, at the same depths.
* memory per pending branch: tracemalloc while 10,000 branches wait on one
  event, next to `asyncio.gather` and an anyio task group (mce three times:
  with its program - `lift(waiter, ev)` nodes, or `lift` nodes and their
  lambdas, which `gather`'s input does not have - built while traced, and
  built before).

Usage:  python benchmarks/bench_core.py [--repeats 7] [--quick] [--no-write]
            [--only binds,branches,lifted,memory]
With --only, the rows are printed (one `row:` JSON line each, for pairing runs
of two checkouts) and nothing is written.
It prints the tables and (unless --no-write) replaces the "Core overhead"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import trio
from _common import Stat, machine, publish, repeat, today

from mce import Step, gather, lift, pure, run

START, END = "<!-- bench_core:start -->", "<!-- bench_core:end -->"


# ---------------------------------------------------------------- workloads


def inc_step(x: int) -> Step[Any, Any, int]:
    return pure(x + 1)


def build_chain(depth: int) -> Step[Any, Any, int]:
    s: Step[Any, Any, int] = pure(0)
    for _ in range(depth):
        s = s.then(inc_step)
    return s


async def inc(x: int) -> int:
    return x + 1


async def await_loop(depth: int) -> int:
    x = 0
    for _ in range(depth):
        x = await inc(x)
    return x


async def trivial() -> int:
    return 1


async def asyncio_gather(n: int) -> None:
    await asyncio.gather(*[trivial() for _ in range(n)])


async def anyio_group(n: int) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(trivial)


async def trio_nursery(n: int) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(trivial)


def bench_binds(depths: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for depth in depths:
        reps = max(3, repeats if depth < 1_000_000 else repeats // 2)
        build = repeat(reps, lambda d=depth: cpu(lambda: build_chain(d)), depth)
        chain = build_chain(depth)
        mce_run = repeat(reps, lambda c=chain: cpu_async(lambda: run(c, None)), depth)
        floor = repeat(reps, lambda d=depth: cpu_async(lambda: await_loop(d)), depth)
        rows.append(
            {
                "depth": depth,
                "build": build,
                "run": mce_run,
                "floor": floor,
                "ratio": mce_run.median / floor.median,
            }
        )
        print(
            f"bind depth {depth:>9,}: build {build.cell()} run {mce_run.cell()} "
            f"await {floor.cell()} -> {mce_run.median / floor.median:.2f}x",
            flush=True,
        )
    return rows


def lifted_chain(depth: int) -> Step[Any, Any, int]:
    s: Step[Any, Any, int] = pure(0)
    for _ in range(depth):
        s = s.then(lambda x: lift(lambda x=x: inc(x)))
    return s


def lifted_chain_args(depth: int) -> Step[Any, Any, int]:
    """The same chain with the arguments passed to `lift`: no closure per step."""
    s: Step[Any, Any, int] = pure(0)
    for _ in range(depth):
        s = s.then(lambda x: lift(inc, x))
    return s


def lift_takes_args() -> bool:
    """Whether this checkout's `lift` takes arguments (`lift(fn, *args)`), for pairing runs."""
    try:
        lift(inc, 0)  # type: ignore[call-arg, unused-ignore]
    except TypeError:
        return False
    return True


def cpu_async(fn: Callable[[], Awaitable[Any]], backend: str = "asyncio") -> float:
    """CPU seconds of this thread for `await fn()`: on a shared machine, time spent
    waiting for a core is not counted (everything measured here runs on this thread)."""

    async def main() -> float:
        gc.collect()
        t0 = time.thread_time()
        await fn()
        return time.thread_time() - t0

    return float(anyio.run(main, backend=backend))


def cpu(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def own_calls(depth: int) -> Callable[[], Awaitable[int]]:
    """The lifted chain's own work without an interpreter: each callback called, the
    `lift` node it builds made, its callable called and the coroutine awaited."""
    callbacks = [lambda x: lift(lambda x=x: inc(x)) for _ in range(depth)]

    async def own() -> int:
        value = 0
        for f in callbacks:
            step: Any = f(value)
            value = await step.thunk()
        return value

    return own


def own_calls_args(depth: int) -> Callable[[], Awaitable[int]]:
    """`own_calls` for the chain of `lift(inc, x)`: callback, node, `inc(x)`, await."""
    callbacks = [lambda x: lift(inc, x) for _ in range(depth)]

    async def own() -> int:
        value = 0
        for f in callbacks:
            step: Any = f(value)
            value = await step.thunk(step.arg)  # one argument: `arg`, no `more`
        return value

    return own


def bench_lifted(depths: list[int], repeats: int) -> list[dict[str, Any]]:
    """Lifted chain step and pure bind against the raw await loop, interleaved."""
    rows = []
    for depth in depths:
        lifted, bound = lifted_chain(depth), build_chain(depth)
        works: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("lifted", lambda c=lifted: run(c, None)),
            ("own", own_calls(depth)),
            ("bind", lambda c=bound: run(c, None)),
            ("floor", lambda d=depth: await_loop(d)),
        ]
        if lift_takes_args():
            lifted_args = lifted_chain_args(depth)
            works += [
                ("lifted_args", lambda c=lifted_args: run(c, None)),
                ("own_args", own_calls_args(depth)),
            ]
        samples: dict[str, list[float]] = {key: [] for key, _ in works}
        for _ in range(repeats + 1):  # interleaved; the first round is a warm-up
            for key, work in works:
                samples[key].append(cpu_async(work))
        row: dict[str, Any] = {"depth": depth}
        for key, values in samples.items():
            row[key] = Stat(values[1:], depth)
        for key in samples:
            if key != "floor":
                row[f"ratio_{key}"] = row[key].median / row["floor"].median
        rows.append(row)
        print(
            f"lifted depth {depth:>7,}: lifted {row['lifted'].cell()} own calls {row['own'].cell()} "
            f"bind {row['bind'].cell()} await {row['floor'].cell()} -> lifted "
            f"{row['ratio_lifted']:.2f}x, own calls {row['ratio_own']:.2f}x, bind {row['ratio_bind']:.2f}x",
            flush=True,
        )
        if "lifted_args" in row:
            print(
                f"  lift(inc, x) {row['lifted_args'].cell()} own calls {row['own_args'].cell()} "
                f"-> {row['ratio_lifted_args']:.2f}x, own calls {row['ratio_own_args']:.2f}x",
                flush=True,
            )
    return rows


async def waiter(release: anyio.Event) -> None:
    await release.wait()


def pending_bytes(n: int, make: Callable[[anyio.Event], Awaitable[Any]]) -> float:
    """Bytes per branch, traced while `n` branches wait on one event."""

    async def main() -> float:
        release = anyio.Event()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        seen: list[float] = []

        async def sampler() -> None:
            await anyio.sleep(0.2)
            seen.append(tracemalloc.get_traced_memory()[0] - base)
            release.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler)
            await make(release)
        tracemalloc.stop()
        return seen[0] / n

    return asyncio.run(main())


def bench_memory(n: int) -> dict[str, float]:
    async def anyio_waiters(ev: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(waiter, ev)

    def mce_block(ev: anyio.Event) -> Awaitable[Any]:
        return run(gather([lift(lambda: waiter(ev)) for _ in range(n)]), None)

    row: dict[str, float] = {
        "mce": pending_bytes(n, mce_block),
        "gather": pending_bytes(n, lambda ev: asyncio.gather(*[waiter(ev) for _ in range(n)])),
        "anyio": pending_bytes(n, anyio_waiters),
    }

    # The same block built before tracing starts: what running it costs. Its
    # event is made inside the traced loop, so the branches find it through `events`.
    events: list[anyio.Event] = []

    async def late_waiter() -> None:
        await events[0].wait()

    prebuilt = gather([lift(late_waiter) for _ in range(n)])

    def run_prebuilt(ev: anyio.Event) -> Awaitable[Any]:
        events.append(ev)
        return run(prebuilt, None)

    row["mce_run_only"] = pending_bytes(n, run_prebuilt)
    row["ratio"] = row["mce"] / row["gather"]
    row["ratio_run_only"] = row["mce_run_only"] / row["gather"]
    print(
        f"memory per pending branch ({n:,}): mce {row['mce']:.0f} B "
        f"(run only {row['mce_run_only']:.0f} B), asyncio.gather {row['gather']:.0f} B, "
        f"anyio task group {row['anyio']:.0f} B -> {row['ratio']:.2f}x ({row['ratio_run_only']:.2f}x)",
        flush=True,
    )
    if lift_takes_args():  # the program without a closure per branch
        row["mce_args"] = pending_bytes(
            n, lambda ev: run(gather([lift(waiter, ev) for _ in range(n)]), None)
        )
        row["ratio_args"] = row["mce_args"] / row["gather"]
        print(
            f"  with lift(waiter, ev): mce {row['mce_args']:.0f} B -> {row['ratio_args']:.2f}x",
            flush=True,
        )
    return row


def bench_branches(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        steps = [lift(trivial) for _ in range(n)]
        block = gather(steps)
        pure_block = gather([pure(i) for i in range(n)])
        row: dict[str, Any] = {"n": n}

        def per_branch(backend: str, work: Callable[[], Awaitable[Any]], n: int = n) -> Stat:
            return repeat(repeats, lambda: cpu_async(work, backend), n)

        for backend in ("asyncio", "trio"):
            row[f"mce_{backend}"] = per_branch(backend, lambda b=block: run(b, None))
            row[f"anyio_{backend}"] = per_branch(backend, lambda n=n: anyio_group(n))
        row["mce_pure"] = per_branch("asyncio", lambda b=pure_block: run(b, None))
        row["gather"] = per_branch("asyncio", lambda n=n: asyncio_gather(n))
        row["nursery"] = per_branch("trio", lambda n=n: trio_nursery(n))
        row["ratio_asyncio"] = row["mce_asyncio"].median / row["gather"].median
        row["ratio_trio"] = row["mce_trio"].median / row["nursery"].median
        rows.append(row)
        print(
            f"branches {n:>7,}: mce/asyncio {row['mce_asyncio'].cell()} gather {row['gather'].cell()} "
            f"-> {row['ratio_asyncio']:.2f}x; mce/trio {row['mce_trio'].cell()} nursery "
            f"{row['nursery'].cell()} -> {row['ratio_trio']:.2f}x",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------- report


def report(
    binds: list[dict[str, Any]],
    branches: list[dict[str, Any]],
    lifted: list[dict[str, Any]],
    memory: dict[str, float],
    repeats: int,
) -> str:
    worst_bind = max(r["ratio"] for r in binds)
    worst_branch = max(r["ratio_asyncio"] for r in branches)
    lines = [
        START,
        "## Core overhead (`benchmarks/bench_core.py`)",
        "",
        f"Measured {today()} on {machine()}.",
        f"Median of {repeats} runs (fewer at depth 10^6), min–max in brackets; µs per unit, CPU time",
        "of the running thread (all of it runs there), so that waiting for a core on a shared",
        "machine is not counted.",
        "Reproduce with `python benchmarks/bench_core.py`.",
        "",
        "### Per bind (left-nested `.then` chain, asyncio)",
        "",
        "| depth | build µs/`.then` | run µs/bind | plain `await` µs | run ÷ await |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in binds:
        lines.append(
            f"| {r['depth']:,} | {r['build'].cell()} | {r['run'].cell()} | "
            f"{r['floor'].cell()} | {r['ratio']:.2f}× |"
        )
    lines += [
        "",
        f"Target: run ≤ 4× a plain `await`. Worst ratio measured: **{worst_bind:.2f}×** "
        f"({'met' if worst_bind <= 4 else 'missed'}).",
        "",
        "### Per parallel branch (`gather` of trivial lifted coroutines)",
        "",
        "| branches | mce asyncio | `asyncio.gather` | mce ÷ gather | anyio task group (asyncio) "
        "| mce trio | trio nursery | mce ÷ nursery | anyio task group (trio) | mce, branches that never await |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in branches:
        lines.append(
            f"| {r['n']:,} | {r['mce_asyncio'].cell()} | {r['gather'].cell()} | "
            f"{r['ratio_asyncio']:.2f}× | {r['anyio_asyncio'].cell()} | {r['mce_trio'].cell()} | "
            f"{r['nursery'].cell()} | {r['ratio_trio']:.2f}× | {r['anyio_trio'].cell()} | "
            f"{r['mce_pure'].cell()} |"
        )
    lines += [
        "",
        f"Target: per branch ≤ 1.5× `asyncio.gather`'s per-task cost on asyncio. Worst ratio "
        f"measured: **{worst_branch:.2f}×** ({'met' if worst_branch <= 1.5 else 'missed'}).",
        "",
        "How: a branch runs inline in the parent until its first await, so a branch that never",
        "awaits costs no task at all; a branch that awaits gets a bare asyncio task (or a bare",
        "trio nursery task) *before* it starts awaiting - never an anyio task-group task, which",
        "costs several times more - so cancel scopes inside lifted code still belong to the",
        "branch's own task.",
        "",
        "### Per lifted step (`.then` chain of steps that each await a coroutine, asyncio)",
        "",
        "CPU time of the running thread (time spent waiting for a core on a shared machine is",
        "not counted); the workloads interleaved, round after round. Two forms of the same",
        "chain: `lift(lambda: inc(x))` (a closure per step) and `lift(inc, x)` (the",
        "arguments given to `lift`).",
        "",
        "*Own calls*: the chain's callbacks, `lift` nodes and callables called in a plain loop,",
        "without mce - what the workload itself costs above the `await`.",
        "",
        "| depth | `lift(inc, x)` µs | its own calls µs | `lift(lambda: inc(x))` µs "
        "| its own calls µs | pure bind µs | plain `await` µs "
        "| `lift(inc, x)` ÷ await | own calls ÷ await | lambda form ÷ await "
        "| own calls ÷ await | bind ÷ await |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lifted:
        lines.append(
            f"| {r['depth']:,} | {r['lifted_args'].cell()} | {r['own_args'].cell()} | "
            f"{r['lifted'].cell()} | {r['own'].cell()} | {r['bind'].cell()} | "
            f"{r['floor'].cell()} | {r['ratio_lifted_args']:.2f}× | {r['ratio_own_args']:.2f}× | "
            f"{r['ratio_lifted']:.2f}× | {r['ratio_own']:.2f}× | {r['ratio_bind']:.2f}× |"
        )
    at = next((r for r in lifted if r["depth"] == 10_000), lifted[-1])
    lines += [
        "",
        "Target: a lifted step ≤ 4× a plain `await` at depth 10,000: "
        f"**{at['ratio_lifted_args']:.2f}×** with `lift(inc, x)` "
        f"({'met' if at['ratio_lifted_args'] <= 4 else 'missed'}), "
        f"{at['ratio_lifted']:.2f}× with a closure per step.",
        "",
        f"### Memory per pending branch ({MEMORY_N:,} branches waiting on one event, tracemalloc)",
        "",
        "| mce, `lift(waiter, ev)` | mce, `lift(lambda: waiter(ev))` "
        "| mce, program built before tracing | `asyncio.gather` | anyio task group "
        "| mce ÷ gather |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {memory['mce_args']:,.0f} B | {memory['mce']:,.0f} B | "
        f"{memory['mce_run_only']:,.0f} B | {memory['gather']:,.0f} B | "
        f"{memory['anyio']:,.0f} B | {memory['ratio_args']:.2f}× ({memory['ratio']:.2f}× with "
        f"a closure per branch, {memory['ratio_run_only']:.2f}× without the program) |",
        "",
        f"Target: ≤ 1.0× `asyncio.gather`: **{memory['ratio_args']:.2f}×** "
        f"({'met' if memory['ratio_args'] <= 1.0 else 'missed'}). mce's side includes its",
        "program (a `lift` node per branch - and with a closure, a function object too - which",
        "`gather`'s input does not have).",
        END,
    ]
    return "\n".join(lines) + "\n"


MEMORY_N = 10_000
ROWS = ("binds", "branches", "lifted", "memory")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--only", default=",".join(ROWS), help="comma-separated: " + ",".join(ROWS))
    args = parser.parse_args(argv)
    only = args.only.split(",")
    unknown = sorted(set(only) - set(ROWS))
    if unknown:
        parser.error(f"--only: unknown rows {unknown}; choose from {list(ROWS)}")
    sys.setrecursionlimit(10_000)  # the floors do not need more; mce needs none
    depths = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    sizes = [1_000] if args.quick else [1_000, 10_000]
    lifted_depths = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    binds = bench_binds(depths, args.repeats) if "binds" in only else []
    branches = bench_branches(sizes, args.repeats) if "branches" in only else []
    lifted = bench_lifted(lifted_depths, args.repeats) if "lifted" in only else []
    memory = bench_memory(2_000 if args.quick else MEMORY_N) if "memory" in only else {}
    if len(only) < len(ROWS):  # a partial run: rows for pairing, no report
        for r in lifted:
            ratios = {k: v for k, v in r.items() if k.startswith("ratio_")}
            print(
                "row:", json.dumps({"depth": r["depth"], "lifted_us": r["lifted"].median, **ratios})
            )
        if memory:
            print("row:", json.dumps({"memory": memory}))
        return
    section = report(binds, branches, lifted, memory, args.repeats)
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
