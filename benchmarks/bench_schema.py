"""Validation speed: a 50-item nested record checked against its type.

The record is an order of 50 line items (attrs classes, each with a nested
product, a list of tags and an optional discount), as a model would send it
as a tool argument or a structured reply. Measured, in µs per validation:

* `mce.schema.convert(data, Order)` - what structured output and plans use;
* `tool.validate({"order": data})` - a `@tool`'s argument check;
* pydantic's own `TypeAdapter` on the same shape written as `BaseModel`s
  (the reference: what pydantic costs without mce around it).

`--before REV` also measures the mce of git revision REV (exported to a
temporary directory and run in a subprocess), for a before/after figure;
by default the last revision with the hand-written validator that pydantic
replaced (`--before ""` skips it).

Usage:  python benchmarks/bench_schema.py [--repeats 7] [--before REV] [--quick] [--no-write]
"""

# No `from __future__ import annotations`: the "before" validator resolved a
# record's type hints on every call, which string annotations make far slower.
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from typing import Any

from _common import ROOT, Stat, machine, publish, today
from attrs import frozen
from pydantic import BaseModel, TypeAdapter

START, END = "<!-- bench_schema:start -->", "<!-- bench_schema:end -->"
HAND_WRITTEN = "dfa819c"  # the last revision before schemas moved to pydantic
ITEMS = 50


@frozen
class Product:
    sku: str
    name: str
    price: float


@frozen
class Line:
    product: Product
    quantity: int
    tags: list[str]
    discount: float | None = None


@frozen
class Order:
    id: str
    customer: str
    lines: list[Line]
    note: str | None = None


class ProductModel(BaseModel):
    sku: str
    name: str
    price: float


class LineModel(BaseModel):
    product: ProductModel
    quantity: int
    tags: list[str]
    discount: float | None = None


class OrderModel(BaseModel):
    id: str
    customer: str
    lines: list[LineModel]
    note: str | None = None


def record() -> dict[str, Any]:
    return {
        "id": "order-1",
        "customer": "ACME",
        "lines": [
            {
                "product": {"sku": f"sku-{i}", "name": f"Product {i}", "price": 9.5 + i},
                "quantity": i + 1,
                "tags": ["a", "b", "c"],
                "discount": 0.1 if i % 2 else None,
            }
            for i in range(ITEMS)
        ],
    }


def samples(fn: Any, repeats: int, n: int) -> list[float]:
    """Seconds per `n` calls, `repeats` times (after one warm-up call)."""
    fn()  # warm-up (and any lazily built validator)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(repeats: int, n: int) -> dict[str, list[float]]:
    from mce.schema import convert
    from mce.tools import tool

    def place(order: Order) -> str:
        "Place an order."
        return order.id

    place.__annotations__ = {"order": Order, "return": str}
    placing = tool(place)
    data = record()
    assert convert(data, Order).lines[49].quantity == 50
    adapter = TypeAdapter(OrderModel)
    return {
        "convert": samples(lambda: convert(data, Order), repeats, n),
        "tool": samples(lambda: placing.validate({"order": data}), repeats, n),
        "pydantic": samples(lambda: adapter.validate_python(data), repeats, n),
    }


def measure_revision(rev: str, repeats: int, n: int) -> dict[str, list[float]]:
    """Run this script's measurement against mce as of git revision `rev`."""
    archive = subprocess.run(
        ["git", "archive", rev, "mce"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp}
        done = subprocess.run(
            [sys.executable, __file__, "--measure-only", f"--repeats={repeats}", f"--n={n}"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    result: dict[str, list[float]] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=300, help="validations per sample")
    parser.add_argument(
        "--before", default=HAND_WRITTEN, help="git revision to measure as 'before'"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats, n = (3, 50) if args.quick else (args.repeats, args.n)
    if args.measure_only:
        print(json.dumps(measure(repeats, n)))
        return
    now = measure(repeats, n)
    before = measure_revision(args.before, repeats, n) if args.before else None

    stats = {key: Stat(v, per=n) for key, v in now.items()}
    old = {key: Stat(v, per=n) for key, v in before.items()} if before else {}
    reference = stats["pydantic"].median
    rows = ["| what | µs per validation | ÷ pydantic alone |", "|---|---:|---:|"]
    for key, label in [
        ("convert", "`mce.schema.convert(data, Order)`"),
        ("tool", "`@tool` argument check"),
    ]:
        if key in old:
            rows.append(
                f"| {label}, before (`{args.before}`) | {old[key].cell(1)} | "
                f"{old[key].median / reference:.1f}× |"
            )
        rows.append(f"| {label} | {stats[key].cell(1)} | {stats[key].median / reference:.1f}× |")
    rows.append(
        f"| pydantic `TypeAdapter` on `BaseModel`s (reference) | {stats['pydantic'].cell(1)} | 1.0× |"
    )
    speedup = ""
    if old:
        ratio = old["convert"].median / stats["convert"].median
        speedup = f"\nValidation is **{ratio:.0f}×** faster than before (target ≥ 10×).\n"
    section = "\n".join(
        [
            START,
            "## Validation (`benchmarks/bench_schema.py`)",
            "",
            f"Measured {today()} on {machine()}.",
            f"A {ITEMS}-item nested order (attrs classes) validated from parsed JSON; "
            f"median of {repeats} samples of {n} validations, min–max in brackets.",
            "Reproduce with `python benchmarks/bench_schema.py`; *before* is mce at "
            f"`{args.before}`, the hand-written validator pydantic replaced."
            if args.before
            else "Reproduce with `python benchmarks/bench_schema.py`.",
            "",
            *rows,
            speedup,
            END,
        ]
    )
    publish(section, START, END, write=not args.no_write)


if __name__ == "__main__":
    main()
