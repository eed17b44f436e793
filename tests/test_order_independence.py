"""Positions do not depend on completion order: shuffled latencies, same journal."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mce import (
    Budget,
    BudgetExceeded,
    Err,
    Journal,
    Ok,
    Step,
    effect,
    gather,
    run,
    traverse,
    within_budget,
)

Tree = Any  # ("leaf", id) | ("seq", a, b) | ("par", [children], limit) | ("trav", [ids], limit)


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> Tree:
    ids = itertools.count()

    def build(d: int) -> Tree:
        kind = draw(st.sampled_from(["leaf", "seq", "par", "trav"] if d else ["leaf"]))
        if kind == "leaf":
            return ("leaf", next(ids))
        if kind == "seq":
            return ("seq", build(d - 1), build(d - 1))
        limit = draw(st.one_of(st.none(), st.integers(1, 3)))
        if kind == "par":
            return ("par", [build(d - 1) for _ in range(draw(st.integers(1, 4)))], limit)
        return ("trav", [next(ids) for _ in range(draw(st.integers(1, 4)))], limit)

    return build(depth)


def leaves(tree: Tree) -> list[int]:
    kind = tree[0]
    if kind == "leaf":
        return [tree[1]]
    if kind == "seq":
        return leaves(tree[1]) + leaves(tree[2])
    if kind == "par":
        return [i for child in tree[1] for i in leaves(child)]
    return list(tree[1])


def program(tree: Tree) -> Step[Any, Any, Any]:
    kind = tree[0]
    if kind == "leaf":
        return effect("work", {"id": tree[1]})
    if kind == "seq":
        first, second = program(tree[1]), program(tree[2])
        return first.then(lambda x: second.map(lambda y: (x, y)))
    if kind == "par":
        return gather([program(child) for child in tree[1]], limit=tree[2])
    return traverse(tree[1], lambda i: effect("work", {"id": i, "item": True}), limit=tree[2])


def handler(latency: dict[int, float]) -> Any:
    async def work(req: dict[str, Any]) -> int:
        await anyio.sleep(latency[req["id"]])
        return int(req["id"]) * 31 % 97

    return work


def comparable(journal: Journal) -> dict[str, Any]:
    return {
        e["pos"]: (e["kind"], e["fp"], e["req"], e.get("ok"), e["branch"])
        for e in journal.load()[1]
    }


@given(trees(), st.randoms(use_true_random=False))
def test_journal_is_independent_of_completion_order(tree: Tree, rnd: Any) -> None:
    ids = leaves(tree)
    slow_first = {i: rnd.choice([0.0, 0.001, 0.002]) for i in ids}
    shuffled = {i: rnd.choice([0.0, 0.001, 0.002]) for i in ids}
    prog = program(tree)

    async def main() -> None:
        ja, jb = Journal(), Journal()
        a = await run(prog, None, handlers={"work": handler(slow_first)}, journal=ja)
        b = await run(prog, None, handlers={"work": handler(shuffled)}, journal=jb)
        assert isinstance(a, Ok)
        assert a == b
        assert comparable(ja) == comparable(jb)
        assert len(comparable(ja)) == len(ids)
        replayed = await run(prog, None, journal=ja, mode="replay")
        assert replayed == a

    anyio.run(main)


@given(trees(), st.randoms(use_true_random=False), st.data())
def test_a_budget_decides_the_same_on_replay_and_resume(tree: Tree, rnd: Any, data: Any) -> None:
    """What a budget refuses under concurrency depends on timing; replay and resume agree."""
    ids = leaves(tree)
    limit = data.draw(st.integers(1, len(ids) + 1), label="max_calls")
    prog = within_budget(program(tree), Budget(max_calls=limit))
    latencies = [{i: rnd.choice([0.0, 0.001, 0.002]) for i in ids} for _ in range(2)]
    expected = (
        Err(BudgetExceeded("calls", limit), None) if len(ids) > limit else None
    )  # exceeded exactly when the program needs more calls, in any order

    async def main() -> None:
        for latency in latencies:
            j = Journal()
            live = await run(prog, None, handlers={"work": handler(latency)}, journal=j)
            if expected is not None:
                assert live == expected
            else:
                assert isinstance(live, Ok)
            assert await run(prog, None, journal=j, mode="replay") == live
            header, records = j.read()
            assert header is not None
            cut = data.draw(st.integers(0, len(records)), label="crash after records")
            crashed = Journal()
            crashed.append([header, *records[:cut]])
            resumed = await run(
                prog, None, handlers={"work": handler(latency)}, journal=crashed, mode="resume"
            )
            # A crash that lost a refusal record leaves the resumed run to decide
            # again, and today it can admit one call too many: see
            # test_a_resume_that_lost_a_refusal_still_keeps_the_budget below.
            lost_refusal = any(r.pos.endswith("/budget") for r in records[cut:])
            if not lost_refusal:
                assert resumed == live
            assert await run(prog, None, journal=crashed, mode="replay") == resumed

    anyio.run(main)


@pytest.mark.xfail(
    reason="known defect: on resume, a live effect is charged before later served ones, so a "
    "crash that lost the refusal record lets the resumed run make max_calls + 1 calls",
    strict=True,
)
def test_a_resume_that_lost_a_refusal_still_keeps_the_budget() -> None:
    tree: Tree = (
        "par",
        [
            ("seq", ("leaf", 0), ("leaf", 1)),
            (
                "seq",
                ("par", [("leaf", 2), ("leaf", 3), ("leaf", 4)], None),
                ("seq", ("leaf", 5), ("leaf", 6)),
            ),
            ("leaf", 7),
            ("leaf", 8),
        ],
        None,
    )
    prog = within_budget(program(tree), Budget(max_calls=8))
    latency = {i: 0.0 for i in leaves(tree)}

    async def main() -> None:
        j = Journal()
        live = await run(prog, None, handlers={"work": handler(latency)}, journal=j)
        assert live == Err(BudgetExceeded("calls", 8), None)
        header, records = j.read()
        assert header is not None
        kept = [r for r in records if r.kind == "work"]  # the crash lost the refusal
        crashed = Journal()
        crashed.append([header, *kept])
        resumed = await run(
            prog, None, handlers={"work": handler(latency)}, journal=crashed, mode="resume"
        )
        assert resumed == live

    anyio.run(main)
