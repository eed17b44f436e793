"""A long journaled workflow for the crash test, run as a subprocess and killed.

    python crash_workflow.py JOURNAL EXECLOG ATTEMPT [--fast]

Over 200 effects: a bounded fan-out, a sequential chain, and a bounded
traverse whose items each run a small parallel block. Every handler call
appends "ATTEMPT ID" to EXECLOG (unbuffered, so the lines survive SIGKILL)
before it sleeps, and the effect's value is a pure function of its id. The
process prints "running" once its first live effect starts (so the kill
lands among effects however long start-up and the journal's load take on
a busy machine) and the final outcome (repr) when it finishes.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

import anyio

from mce import Step, effect, gather, run, traverse

LIMIT = 4  # at most this many effects are ever in flight


def value_of(i: int) -> int:
    return (i * 7919) % 1009


def build() -> Step[Any, Any, Any]:
    def work(i: int) -> Step[Any, Any, int]:
        return effect("work", {"id": i})

    fan_out = gather([work(i) for i in range(80)], limit=LIMIT)

    def chain(i: int, acc: int) -> Step[Any, Any, int]:
        if i == 140:
            return effect("work", {"id": i, "acc": acc}).map(lambda v: v + acc)
        return work(i).then(lambda v: chain(i + 1, (acc + v) % 100_003))

    def pair(j: int) -> Step[Any, Any, Any]:
        return gather([work(200 + 2 * j), work(201 + 2 * j)])

    # In the traverse, each item runs two effects at once: limit 2 keeps LIMIT in flight.
    tail = traverse(range(40), pair, limit=LIMIT // 2)
    return fan_out.then(
        lambda xs: chain(80, sum(xs)).then(lambda c: tail.map(lambda ps: (sum(xs), c, ps)))
    )


def main() -> None:
    journal, execlog, attempt = sys.argv[1], sys.argv[2], sys.argv[3]
    fast = "--fast" in sys.argv
    fd = os.open(execlog, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rnd = random.Random(attempt)
    announced = False

    def announce() -> None:
        nonlocal announced
        if not announced:
            announced = True
            print("running", flush=True)

    async def handler(req: dict[str, Any]) -> int:
        announce()
        os.write(fd, f"{attempt} {req['id']}\n".encode())
        if not fast:
            await anyio.sleep(rnd.uniform(0.0005, 0.004))
        return value_of(req["id"])

    async def go() -> Any:
        return await run(build(), None, handlers={"work": handler}, journal=journal, mode="resume")

    outcome = anyio.run(go)
    announce()  # a resume with nothing left to run
    print(repr(outcome), flush=True)


if __name__ == "__main__":
    main()
