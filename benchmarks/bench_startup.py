"""Start-up: `import mce` and the commands that need no model client, as whole processes.

    python benchmarks/bench_startup.py [--repeats 21] [--baseline DIR] [--no-write]

Each command runs as a fresh `python` process, with bytecode cached (in a
temporary cache directory, warmed once) as after a `pip install`. Reported:
the fastest of the repeats, wall and CPU (user + system) time, minus a bare
`python -c pass` measured alongside - the minimum, because on a shared
machine everything else is other processes' noise. `--baseline DIR` runs
the same commands against another checkout of mce, interleaved with this
one, for a before/after in one run. Also listed: which of the heavy
libraries (`openai`, `ray`, `pydantic`, `asyncio`, `returns`) each command
imported, from `python -X importtime`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, machine, publish, today

START, END = "<!-- bench_startup:start -->", "<!-- bench_startup:end -->"
HEAVY = ("openai", "ray", "pydantic", "asyncio", "returns")

FLOW = '''
from mce import effect, gather
from mce.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def workflow():
    return gather([add(1, 2), effect("fetch", "x")]).then(lambda ab: add(ab[0], 10))


mce_handlers = {"fetch": lambda req: req.upper()}
'''


def commands(work: Path) -> dict[str, list[str]]:
    flow = f"{work / 'flow.py'}:workflow"
    return {
        "python -c pass": ["-c", "pass"],
        "import mce": ["-c", "import mce"],
        "mce --help": ["-m", "mce", "--help"],
        "mce graph (a tool workflow)": ["-m", "mce", "graph", flow],
        "mce replay (a journal of tool effects)": [
            "-m",
            "mce",
            "replay",
            flow,
            str(work / "run.jsonl"),
        ],
    }


class Checkout:
    """A copy of mce to run the commands with: its source root and its own bytecode cache."""

    def __init__(self, name: str, root: Path, work: Path) -> None:
        self.name = name
        self.cwd = work  # not a checkout: `python -c` and `-m` put the cwd first on sys.path
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPATH"] = str(root)
        self.env["PYTHONPYCACHEPREFIX"] = str(work / f"cache-{name}")

    def once(self, args: list[str]) -> tuple[float, float]:
        """Wall and CPU seconds of one process."""
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, *args],
            env=self.env,
            cwd=self.cwd,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    def heavy(self, args: list[str]) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", *args],
            env=self.env,
            cwd=self.cwd,
            check=True,
            capture_output=True,
            text=True,
        )
        names = {
            line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        }
        return [m for m in HEAVY if m in names]


def measure(
    checkouts: list[Checkout], work: Path, repeats: int
) -> dict[str, dict[str, tuple[float, float, list[str]]]]:
    cmds = commands(work)
    for c in checkouts:  # warm the bytecode caches; record the journal to replay
        for args in cmds.values():
            if "replay" in args and not Path(args[4]).exists():
                subprocess.run(
                    [sys.executable, "-m", "mce", "run", args[3], "--journal", args[4]],
                    env=c.env,
                    cwd=c.cwd,
                    check=True,
                    capture_output=True,
                )
            c.once(args)
    best: dict[str, dict[str, list[float]]] = {
        c.name: {k: [1e9, 1e9] for k in cmds} for c in checkouts
    }
    for _ in range(repeats):  # interleaved: every checkout sees the same noise
        for name, args in cmds.items():
            for c in checkouts:
                wall, cpu = c.once(args)
                b = best[c.name][name]
                b[0], b[1] = min(b[0], wall), min(b[1], cpu)
    out: dict[str, dict[str, tuple[float, float, list[str]]]] = {}
    for c in checkouts:
        base_wall, base_cpu = best[c.name]["python -c pass"]
        out[c.name] = {
            name: (
                (wall - base_wall) * 1000,
                (cpu - base_cpu) * 1000,
                c.heavy(cmds[name]),
            )
            for name, (wall, cpu) in best[c.name].items()
            if name != "python -c pass"
        }
        for name, (wall_ms, cpu_ms, heavy) in out[c.name].items():
            print(f"{c.name:<8} {name:<40} {wall_ms:6.1f} ms wall {cpu_ms:6.1f} ms cpu {heavy}")
    return out


def report(results: dict[str, dict[str, tuple[float, float, list[str]]]], repeats: int) -> str:
    names = list(next(iter(results.values())))
    lines = [
        START,
        "## Start-up (`benchmarks/bench_startup.py`)",
        "",
        f"Measured {today()} on {machine()}; load average "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        + " at the end.",
        f"Fastest of {repeats} whole-process runs each, bytecode cached, minus a bare "
        "`python -c pass` measured alongside; ms. Reproduce with "
        "`python benchmarks/bench_startup.py` (`--baseline DIR` adds another checkout, "
        "interleaved).",
        "",
        "| command | " + " | ".join(f"{c} wall | {c} CPU | {c} imports" for c in results) + " |",
        "|---|" + "---:|---:|---|" * len(results),
    ]
    for name in names:
        cells = []
        for by in results.values():
            wall, cpu, heavy = by[name]
            cells += [f"{wall:.1f}", f"{cpu:.1f}", ", ".join(heavy) or "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    now = results[next(reversed(results))]
    worst = now["import mce"][0]
    seen = sorted({m for _wall, _cpu, heavy in now.values() for m in heavy})
    lines += [
        "",
        f"Target: `import mce` ≤ 80 ms. Measured **{worst:.1f} ms** "
        f"({'met' if worst <= 80 else 'missed'}). Heavy libraries these commands import: "
        f"{', '.join(f'`{m}`' for m in seen) or 'none'} (`asyncio` to run on it; `pydantic` "
        "to check the tool calls a replay makes - a `@tool` builds its schema and validator "
        "on first use, not when it is defined).",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", type=Path, help="another mce checkout to measure alongside")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "flow.py").write_text(FLOW)
        checkouts = []
        if args.baseline is not None:
            checkouts.append(Checkout("before", args.baseline.resolve(), work))
        checkouts.append(Checkout("now", ROOT, work))
        results = measure(checkouts, work, repeats)
    publish(report(results, repeats), START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
