"""Core overhead: µs per bind and per parallel branch, next to the raw floor.

Everything is measured in this one process, in one run, so the ratios
compare like with like on a shared, noisy machine: absolute times drift from
run to run, ratios hold.

* per bind: a left-nested chain `s = s.then(f)` of depth 10^3..10^6, with
  `f = lambda x: pure(x + 1)`; the floor is a plain `x = await inc(x)` loop.
  Building the chain is timed separately (build cost per `.then`).
* per branch: `gather` of N trivial lifted coroutines (N = 10^3, 10^4); the
  floors are `asyncio.gather`, an anyio task group, and a trio nursery.

Usage:  python benchmarks/bench_core.py [--repeats 7] [--quick] [--no-write]
It prints the tables and (unless --no-write) replaces the "Core overhead"
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import trio
from _common import Stat, machine, publish, repeat, timed, timed_async, today

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
        build = repeat(reps, lambda d=depth: timed(lambda: build_chain(d)), depth)
        chain = build_chain(depth)
        mce_run = repeat(reps, lambda c=chain: timed_async("asyncio", lambda: run(c, None)), depth)
        floor = repeat(reps, lambda d=depth: timed_async("asyncio", lambda: await_loop(d)), depth)
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


def bench_branches(sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        steps = [lift(trivial) for _ in range(n)]
        block = gather(steps)
        pure_block = gather([pure(i) for i in range(n)])
        row: dict[str, Any] = {"n": n}

        def per_branch(backend: str, work: Callable[[], Awaitable[Any]], n: int = n) -> Stat:
            return repeat(repeats, lambda: timed_async(backend, work), n)

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


def report(binds: list[dict[str, Any]], branches: list[dict[str, Any]], repeats: int) -> str:
    worst_bind = max(r["ratio"] for r in binds)
    worst_branch = max(r["ratio_asyncio"] for r in branches)
    lines = [
        START,
        "## Core overhead (`benchmarks/bench_core.py`)",
        "",
        f"Measured {today()} on {machine()}.",
        f"Median of {repeats} runs (fewer at depth 10^6), min–max in brackets; µs per unit.",
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
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(10_000)  # the floors do not need more; mce needs none
    depths = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    sizes = [1_000] if args.quick else [1_000, 10_000]
    binds = bench_binds(depths, args.repeats)
    branches = bench_branches(sizes, args.repeats)
    section = report(binds, branches, args.repeats)
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
