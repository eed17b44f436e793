"""mce next to LangGraph, `returns` and the raw floor - the same workloads, in one run.

Install the peers with `pip install -e ".[bench]"`, then:

    python benchmarks/compare.py [--repeats 5] [--quick] [--no-write]

Workloads (µs per unit unless stated; median of the repeats, min-max):

* chain: N sequential steps, each awaiting `inc(x)` (N = 100, 1,000, 10,000);
* fan-out: N parallel trivial branches (N = 100, 1,000, 10,000);
* deep chain: the depth at which each fails (stack overflow), up to 10^6;
* random DAG: wall time / critical path (n = 40, 200, 1,000; p = 0.15, <= 3
  deps, 10-80 ms sleeps);
* replay: µs per effect (mce only);
* memory: bytes per pending branch with 10,000 branches waiting.

Durable execution next to LangGraph and DBOS (both on SQLite: sequential
and parallel, trivial and 1 ms steps, bytes on disk per step, recovery after
a SIGKILL) is `benchmarks/bench_durable.py`, in its own section of the page.

Absolute times drift on shared machines; the ratios within this one run are
what to read. Results go to docs/benchmarks.md and docs/img/*.png.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import random
import sys
import tempfile
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, TypedDict

import anyio
from _common import ROOT, Stat, machine, publish, repeat, timed_async, today
from bench_dag import dag_plan, random_dag_parts, work

from mce import effect, gather, lift, pure, run
from mce.plan import compile as compile_plan

START, END = "<!-- compare:start -->", "<!-- compare:end -->"
IMG = ROOT / "docs" / "img"


def have(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    return timed_async("asyncio", fn)


def sample(fn: Callable[[], Awaitable[Any]], repeats: int, per: int) -> Stat:
    return repeat(repeats, lambda: timed(fn), per)


# ---------------------------------------------------------------- workloads


async def inc(x: int) -> int:
    return x + 1


async def trivial() -> int:
    return 1


def mce_chain(n: int) -> Any:
    s: Any = pure(0)
    for _ in range(n):
        s = s.then(lambda x: lift(lambda x=x: inc(x)))
    return s


async def floor_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = await inc(x)
    return x


def returns_chain(n: int) -> Any:
    from returns.future import FutureResult

    fr: Any = FutureResult.from_value(0)
    for _ in range(n):
        fr = fr.bind_async(lambda x: _returns_inc(x))
    return fr


async def _returns_inc(x: int) -> Any:
    from returns.future import FutureResult

    return FutureResult.from_value(x + 1)


class ChainState(TypedDict):
    x: int


def langgraph_chain(n: int) -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph

    async def node(state: ChainState) -> ChainState:
        return {"x": await inc(state["x"])}

    graph = StateGraph(ChainState)
    for i in range(n):
        graph.add_node(f"n{i}", node)
        graph.add_edge(LG_START if i == 0 else f"n{i - 1}", f"n{i}")
    graph.add_edge(f"n{n - 1}", LG_END)
    return graph.compile()


class FanState(TypedDict):
    results: Annotated[list[int], operator.add]


def langgraph_fan(n: int) -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph
    from langgraph.types import Send

    async def work(state: dict[str, Any]) -> FanState:
        return {"results": [await trivial()]}

    def spread(state: FanState) -> list[Any]:
        return [Send("work", {"i": i}) for i in range(n)]

    graph = StateGraph(FanState)
    graph.add_node("work", work)
    graph.add_conditional_edges(LG_START, spread, ["work"])
    graph.add_edge("work", LG_END)
    return graph.compile()


def bench_chain(sizes: list[int], repeats: int) -> dict[str, dict[int, Stat]]:
    rows: dict[str, dict[int, Stat]] = {
        "raw await": {},
        "mce": {},
        "returns": {},
        "LangGraph": {},
    }
    for n in sizes:
        chain = mce_chain(n)
        rows["mce"][n] = sample(lambda c=chain: run(c, None), repeats, n)
        rows["raw await"][n] = sample(lambda n=n: floor_chain(n), repeats, n)
        if have("returns") and n <= 400:
            # A FutureResult holds a coroutine, so it runs once: build it each time.
            rows["returns"][n] = sample(lambda n=n: returns_chain(n).awaitable(), repeats, n)
        if have("langgraph"):
            graph = langgraph_chain(n)
            config = {"recursion_limit": n + 10}
            reps = repeats if n <= 1000 else max(1, repeats // 3)
            rows["LangGraph"][n] = sample(lambda g=graph, c=config: g.ainvoke({"x": 0}, c), reps, n)
        print(
            f"chain {n:>6}: "
            + ", ".join(f"{k} {v[n].median:.2f}" for k, v in rows.items() if n in v),
            flush=True,
        )
    return rows


def bench_fan(sizes: list[int], repeats: int) -> dict[str, dict[int, Stat]]:
    rows: dict[str, dict[int, Stat]] = {
        "asyncio.gather": {},
        "mce": {},
        "LangGraph": {},
    }
    for n in sizes:
        block = gather([lift(trivial) for _ in range(n)])
        rows["mce"][n] = sample(lambda b=block: run(b, None), repeats, n)

        async def floor(n: int = n) -> None:
            await asyncio.gather(*[trivial() for _ in range(n)])

        rows["asyncio.gather"][n] = sample(floor, repeats, n)
        if have("langgraph"):
            graph = langgraph_fan(n)
            reps = repeats if n <= 1000 else max(1, repeats // 3)
            rows["LangGraph"][n] = sample(lambda g=graph: g.ainvoke({"results": []}), reps, n)
        print(
            f"fan-out {n:>6}: "
            + ", ".join(f"{k} {v[n].median:.2f}" for k, v in rows.items() if n in v),
            flush=True,
        )
    return rows


def deepest(build: Callable[[int], Callable[[], Awaitable[Any]]], limit: int) -> str:
    """The first depth (powers of ten, then bisection) at which running fails."""

    def ok(depth: int) -> bool:
        try:
            timed(build(depth))
            return True
        except RecursionError:
            return False

    depth = 10
    while depth <= limit and ok(depth):
        depth *= 10
    if depth > limit:
        return f"no failure up to {limit:,}"
    lo, hi = depth // 10, depth
    while hi - lo > max(1, lo // 50):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return f"fails at ~{hi:,}"


def bench_depth(quick: bool) -> dict[str, str]:
    limit = 10_000 if quick else 1_000_000

    def mce_at(d: int) -> Callable[[], Awaitable[Any]]:
        s: Any = pure(0)
        for _ in range(d):
            s = s.then(lambda x: pure(x + 1))
        return lambda: run(s, None)

    async def nested(d: int) -> int:
        return 0 if d == 0 else 1 + await nested(d - 1)

    rows = {
        "mce": deepest(mce_at, limit),
        "raw recursive await": deepest(lambda d: lambda: nested(d), limit),
    }
    if have("returns"):
        rows["returns FutureResult"] = deepest(lambda d: returns_chain(d).awaitable, 100_000)
    print("depth:", rows, flush=True)
    return rows


# ---------------------------------------------------------------- DAG


class DagState(TypedDict):
    done: Annotated[list[int], operator.add]


def langgraph_dag(lat: list[int], deps: list[list[int]]) -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START
    from langgraph.graph import StateGraph

    graph = StateGraph(DagState)
    has_children = set()
    for ds in deps:
        has_children.update(ds)

    def make(i: int) -> Callable[[DagState], Awaitable[DagState]]:
        async def node(state: DagState) -> DagState:
            await asyncio.sleep(lat[i] / 1000)
            return {"done": [i]}

        return node

    for i in range(len(lat)):
        graph.add_node(f"t{i}", make(i))
    for i, ds in enumerate(deps):
        if not ds:
            graph.add_edge(LG_START, f"t{i}")
        elif len(ds) == 1:
            graph.add_edge(f"t{ds[0]}", f"t{i}")
        else:
            graph.add_edge([f"t{d}" for d in ds], f"t{i}")
    for i in range(len(lat)):
        if i not in has_children:
            graph.add_edge(f"t{i}", LG_END)
    return graph.compile()


def bench_dag(sizes: list[int], graphs: int) -> dict[str, dict[int, Stat]]:
    rows: dict[str, dict[int, Stat]] = {"mce": {}, "LangGraph": {}}
    for n in sizes:
        rnd = random.Random(11 + n)
        mce_r, lg_r = [], []
        for _ in range(graphs if n < 1000 else max(1, graphs // 2)):
            lat, deps, critical = random_dag_parts(n, rnd)
            plan = dag_plan(lat, deps)
            step = compile_plan(plan, [work], max_tasks=n, max_depth=n, max_fan_out=n)
            mce_r.append(timed(lambda s=step: run(s, None)) / critical)
            if have("langgraph"):
                graph = langgraph_dag(lat, deps)
                lg_r.append(
                    timed(lambda g=graph, n=n: g.ainvoke({"done": []}, {"recursion_limit": n + 10}))
                    / critical
                )
        rows["mce"][n] = Stat(mce_r, scale=1)
        if lg_r:
            rows["LangGraph"][n] = Stat(lg_r, scale=1)
        print(
            f"dag {n}: " + ", ".join(f"{k} {v[n].median:.3f}" for k, v in rows.items() if n in v),
            flush=True,
        )
    return rows


# ---------------------------------------------------------------- replay and memory


def bench_replay(n: int, repeats: int) -> Stat:
    prog = gather([effect("k", {"i": i}) for i in range(n)])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "j.jsonl")
        asyncio.run(run(prog, None, handlers={"k": lambda r: r["i"]}, journal=path))
        result = sample(lambda: run(prog, None, journal=path, mode="replay"), repeats, n)
    print(f"replay: {result.median:.2f} µs/effect", flush=True)
    return result


def bench_memory(n: int) -> dict[str, float]:
    """Bytes per pending branch: n branches all waiting on one event."""

    def measure(make: Callable[[anyio.Event], Awaitable[Any]]) -> float:
        async def main() -> float:
            release = anyio.Event()
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            peak_at: list[float] = []

            async def sampler() -> None:
                await anyio.sleep(0.2)
                peak_at.append(tracemalloc.get_traced_memory()[0] - base)
                release.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(sampler)
                await make(release)
            tracemalloc.stop()
            return peak_at[0] / n

        return asyncio.run(main())

    async def waiter(release: anyio.Event) -> None:
        await release.wait()

    # The first round pays one-time costs (imports, caches) for whichever row comes
    # first: it is a warm-up, and the second round is reported.
    for _ in range(2):
        rows = _memory_rows(n, measure, waiter)
    print("memory:", {k: f"{v:.0f} B" for k, v in rows.items()}, flush=True)
    return rows


def _memory_rows(
    n: int,
    measure: Callable[[Callable[[anyio.Event], Awaitable[Any]]], float],
    waiter: Callable[[anyio.Event], Awaitable[None]],
) -> dict[str, float]:
    rows = {
        "mce, lift(waiter, ev)": measure(
            lambda ev: run(gather([lift(waiter, ev) for _ in range(n)]), None)
        ),
        "mce, lift(lambda: waiter(ev))": measure(
            lambda ev: run(gather([lift(lambda: waiter(ev)) for _ in range(n)]), None)
        ),
        "asyncio.gather": measure(lambda ev: asyncio.gather(*[waiter(ev) for _ in range(n)])),
    }

    async def anyio_group(ev: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(waiter, ev)

    rows["anyio task group"] = measure(anyio_group)
    return rows


# ---------------------------------------------------------------- report


def table(title: str, rows: dict[str, dict[int, Stat]], unit: str, digits: int = 2) -> list[str]:
    sizes = sorted({n for v in rows.values() for n in v})
    out = [
        f"### {title}",
        "",
        "| | " + " | ".join(f"{n:,}" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name, values in rows.items():
        if values:
            out.append(
                f"| {name} | "
                + " | ".join(values[n].cell(digits) if n in values else "n/a" for n in sizes)
                + " |"
            )
    out += ["", f"Unit: {unit}.", ""]
    return out


def plot(name: str, rows: dict[str, dict[int, Stat]], ylabel: str, log: bool = True) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    IMG.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, values in rows.items():
        if values:
            xs = sorted(values)
            ax.plot(xs, [values[x].median for x in xs], marker="o", label=label)
    ax.set_xscale("log")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("size")
    ax.set_ylabel(ylabel)
    ax.set_title(name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = IMG / f"compare_{name.lower().replace(' ', '_').replace('-', '_')}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(ROOT / "docs"))


def report(results: dict[str, Any], repeats: int) -> str:
    versions = ", ".join(f"{p} {have(p)}" for p in ("langgraph", "returns") if have(p))
    lines = [
        START,
        "## mce next to its peers (`benchmarks/compare.py`)",
        "",
        f"Measured {today()} on {machine()}; {versions}.",
        f"Median of {repeats} runs (fewer for the largest LangGraph graphs), min-max in brackets.",
        'Reproduce with `pip install -e ".[bench]" && python benchmarks/compare.py`.',
        "",
    ]
    lines += table(
        "Sequential chain: cost per step",
        results["chain"],
        "µs per step (each step awaits a coroutine)",
    )
    lines += table("Fan-out: cost per parallel branch", results["fan"], "µs per branch")
    lines += [
        "### Deep chains: where each fails",
        "",
        "With the recursion limit raised to 10,000 for everyone (at the default 1,000,",
        "`returns` fails near 490 binds).",
        "",
        "| | depth |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in results["depth"].items()]
    lines += [""]
    lines += table(
        "Random DAGs: wall time over critical path",
        results["dag"],
        "ratio (1.00 is the critical path)",
        3,
    )
    lines += [
        "### Replay and memory",
        "",
        f"* mce replay: {results['replay'].cell(2)} µs per effect (10,000-effect journal file).",
        "* Memory per pending branch (10,000 branches waiting on one event): "
        + ", ".join(f"{k} {v:,.0f} bytes" for k, v in results["memory"].items())
        + ".",
        "* Durable steps next to LangGraph and DBOS on SQLite, and recovery after a SIGKILL: "
        "see *Durability* below (`benchmarks/bench_durable.py`).",
        "",
    ]
    for name, key, label in (
        ("Chain", "chain", "µs per step"),
        ("Fan-out", "fan", "µs per branch"),
        ("DAG", "dag", "wall / critical path"),
    ):
        path = plot(name, results[key], label, log=key != "dag")
        if path:
            lines.append(f"![{name}]({path})")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    q = args.quick
    results = {
        "chain": bench_chain([100, 1000] if q else [100, 1_000, 10_000], args.repeats),
        "fan": bench_fan([100, 1000] if q else [100, 1_000, 10_000], args.repeats),
        "depth": bench_depth(q),
        "dag": bench_dag([40] if q else [40, 200, 1_000], 3 if q else 5),
        "replay": bench_replay(2_000 if q else 10_000, args.repeats),
        "memory": bench_memory(2_000 if q else 10_000),
    }
    section = report(results, args.repeats)
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
