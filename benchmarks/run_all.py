"""Reproduce every figure in docs/benchmarks.md: run each benchmark script in turn.

    pip install -e ".[bench,ray]" && python benchmarks/run_all.py [--quick]

Each script measures its own workloads in one process and rewrites its own
section of docs/benchmarks.md (with the machine and the date).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_startup.py",
    "bench_core.py",
    "bench_replay.py",
    "bench_journal_size.py",
    "bench_dag.py",
    "bench_live.py",
    "compare.py",
    "bench_durable.py",
    "bench_schema.py",
    "bench_ray.py",
]


def main() -> None:
    extra = [a for a in sys.argv[1:] if a == "--quick"]
    for script in SCRIPTS:
        args = extra if script != "bench_ray.py" else []
        print(f"== {script}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *args], check=False)
        if done.returncode != 0:
            raise SystemExit(f"{script} failed with exit code {done.returncode}")


if __name__ == "__main__":
    main()
