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
    EffectError,
    Err,
    Journal,
    Ok,
    Step,
    effect,
    fail,
    gather,
    pure,
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


def _crash_point(data: st.DataObject, n: int) -> int:
    """How many of `n` records survive a crash, drawn the same whatever `n` is.

    How many records a concurrent run writes depends on timing; drawing
    `integers(0, n)` directly would make the draw itself depend on it, which
    Hypothesis rejects as a flaky strategy when it replays an example.
    """
    share = data.draw(st.integers(0, 1000), label="crash after this share of the records")
    return share * n // 1000


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


def calls_of(latency: dict[int, float], called: list[int]) -> Any:
    """A `work` handler that notes every call it gets (cancelled ones too)."""
    inner = handler(latency)

    async def work(req: dict[str, Any]) -> int:
        called.append(req["id"])
        return int(await inner(req))

    return work


def kept_ids(records: Any, *, retry_failed: bool = False) -> list[int]:
    """The leaves whose records survived a crash (and are served, not retried, on resume)."""
    return [r.req["id"] for r in records if r.kind == "work" and (r.ok or not retry_failed)]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(trees(), st.randoms(use_true_random=False), st.data())
def test_a_budget_decides_the_same_on_replay_and_resume(
    backend: str, tree: Tree, rnd: Any, data: Any
) -> None:
    """What a budget refuses under concurrency depends on timing; replay and resume agree.

    A crash may lose any tail of the journal - a refusal record included:
    the resume still fails exactly when the live run did, and the effects
    the journal kept plus those the resume runs never exceed the budget.
    """
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
            called: list[int] = []
            live = await run(prog, None, handlers={"work": calls_of(latency, called)}, journal=j)
            assert len(called) <= limit
            if expected is not None:
                assert live == expected
            else:
                assert isinstance(live, Ok)
            assert await run(prog, None, journal=j, mode="replay") == live
            header, records = j.read()
            assert header is not None
            cut = _crash_point(data, len(records))
            crashed = Journal()
            crashed.append([header, *records[:cut]])
            again: list[int] = []
            resumed = await run(
                prog,
                None,
                handlers={"work": calls_of(latency, again)},
                journal=crashed,
                mode="resume",
            )
            assert resumed == live
            kept = kept_ids(records[:cut])
            assert not set(kept) & set(again)  # nothing that completed runs again
            assert len(kept) + len(again) <= limit
            assert await run(prog, None, journal=crashed, mode="replay") == resumed

    anyio.run(main, backend=backend)


# A tree with budgets in it: ("budget", child, max_calls) anywhere.
@st.composite
def budgeted_trees(draw: st.DrawFn, depth: int = 3) -> Tree:
    ids = itertools.count()

    def build(d: int) -> Tree:
        kind = draw(st.sampled_from(["leaf", "seq", "par", "trav", "budget"] if d else ["leaf"]))
        if kind == "leaf":
            return ("leaf", next(ids))
        if kind == "seq":
            return ("seq", build(d - 1), build(d - 1))
        if kind == "budget":
            return ("budget", build(d - 1), draw(st.integers(1, 6)))
        limit = draw(st.one_of(st.none(), st.integers(1, 3)))
        if kind == "par":
            return ("par", [build(d - 1) for _ in range(draw(st.integers(1, 4)))], limit)
        return ("trav", [next(ids) for _ in range(draw(st.integers(1, 4)))], limit)

    return ("budget", build(depth), draw(st.integers(1, 12)))


def budgets(tree: Tree) -> list[tuple[int, set[int]]]:
    """Every budget in the tree: its max_calls and the leaves it covers."""
    kind = tree[0]
    if kind == "budget":
        return [(tree[2], set(leaves_of(tree[1]))), *budgets(tree[1])]
    if kind == "seq":
        return budgets(tree[1]) + budgets(tree[2])
    if kind == "par":
        return [b for child in tree[1] for b in budgets(child)]
    return []


def leaves_of(tree: Tree) -> list[int]:
    if tree[0] == "budget":
        return leaves_of(tree[1])
    if tree[0] == "seq":
        return leaves_of(tree[1]) + leaves_of(tree[2])
    if tree[0] == "par":
        return [i for child in tree[1] for i in leaves_of(child)]
    return leaves(tree)


def recovering(tree: Tree) -> Step[Any, Any, Any]:
    """`program`, with budgets, and a leaf whose effect fails giving -1 instead."""
    kind = tree[0]
    if kind == "leaf":
        return effect("work", {"id": tree[1]}).recover(
            lambda e: pure(-1) if isinstance(e, EffectError) else fail(e)
        )
    if kind == "budget":
        return within_budget(recovering(tree[1]), Budget(max_calls=tree[2]))
    if kind == "seq":
        first, second = recovering(tree[1]), recovering(tree[2])
        return first.then(lambda x: second.map(lambda y: (x, y)))
    if kind == "par":
        return gather([recovering(child) for child in tree[1]], limit=tree[2])
    return traverse(
        tree[1],
        lambda i: effect("work", {"id": i, "item": True}).recover(
            lambda e: pure(-1) if isinstance(e, EffectError) else fail(e)
        ),
        limit=tree[2],
    )


def value_of(tree: Tree, failed: set[int]) -> Any:
    """What `recovering(tree)` gives when the leaves in `failed` fail and no budget runs out."""
    kind = tree[0]
    if kind == "leaf":
        return -1 if tree[1] in failed else tree[1] * 31 % 97
    if kind == "budget":
        return value_of(tree[1], failed)
    if kind == "seq":
        return (value_of(tree[1], failed), value_of(tree[2], failed))
    if kind == "par":
        return tuple(value_of(child, failed) for child in tree[1])
    return tuple(-1 if i in failed else i * 31 % 97 for i in tree[1])


def failing(latency: dict[int, float], failed: set[int], called: list[int]) -> Any:
    """A `work` handler that notes its calls and fails for the leaves in `failed`."""
    inner = calls_of(latency, called)

    async def work(req: dict[str, Any]) -> int:
        out = int(await inner(req))
        if req["id"] in failed:
            raise ConnectionError(f"leaf {req['id']} is down")
        return out

    return work


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@given(budgeted_trees(), st.randoms(use_true_random=False), st.data())
def test_nested_budgets_keep_their_limits_across_a_crash_and_a_resume(
    backend: str, tree: Tree, rnd: Any, data: Any
) -> None:
    """Budgets inside budgets (around gathers bounded or not), a crash anywhere, a resume
    that may retry what failed: every budget admits at most its max_calls over the
    journal's surviving effects and the resume's, and the run fails exactly when a
    budget is too small for its part of the program."""
    ids = leaves_of(tree)
    scopes = budgets(tree)
    too_small = {limit for limit, under in scopes if len(under) > limit}
    prog = recovering(tree)
    latency = {i: rnd.choice([0.0, 0.001, 0.002]) for i in ids}
    down = set(data.draw(st.lists(st.sampled_from(ids), unique=True), label="failing leaves"))
    retry_failed = data.draw(st.booleans(), label="retry_failed")

    def within_limits(*groups: list[int]) -> None:
        for limit, under in scopes:
            assert sum(len([i for i in g if i in under]) for g in groups) <= limit

    async def main() -> None:
        j = Journal()
        called: list[int] = []
        live = await run(prog, None, handlers={"work": failing(latency, down, called)}, journal=j)
        within_limits(called)
        if too_small:
            assert isinstance(live, Err)
            assert live.error.resource == "calls" and live.error.limit in too_small
        else:
            assert isinstance(live, Ok)
        header, records = j.read()
        assert header is not None
        cut = _crash_point(data, len(records))
        crashed = Journal()
        crashed.append([header, *records[:cut]])
        again: list[int] = []
        resumed = await run(
            prog,
            None,
            handlers={"work": failing(latency, set(), again)},
            journal=crashed,
            mode="resume",
            retry_failed=retry_failed,
        )
        kept = kept_ids(records[:cut], retry_failed=retry_failed)
        assert not set(kept) & set(again)  # nothing served runs again
        within_limits(kept, again)
        if too_small:
            assert isinstance(resumed, Err)
            assert resumed.error.resource == "calls" and resumed.error.limit in too_small
        else:
            # A failure the journal kept is served again (-1), unless it is retried.
            served_failed = {r.req["id"] for r in records[:cut] if r.kind == "work" and not r.ok}
            assert live == Ok(value_of(tree, down), None)
            assert resumed == Ok(value_of(tree, set() if retry_failed else served_failed), None)
        assert await run(prog, None, journal=crashed, mode="replay") == resumed

    anyio.run(main, backend=backend)


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
