"""Every record is on disk before its effect's value is used - wherever it is written.

A top-level effect alone in the process writes its record on the event
loop; effects in parallel branches, or while another run writes a journal,
hand it to the run's writer thread. Each handler here reads the journal
file (a second reader, as after a crash) and checks that the records of
every effect whose value the program has already used are there.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest

from mce import FileJournal, Step, effect, gather, pure, run

pytestmark = pytest.mark.anyio


def on_disk(path: Path) -> set[tuple[Any, ...]]:
    """The requests journaled in `path` so far."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a record being written may be torn
        _header, entries = FileJournal(path).load()
    return {tuple(e["req"]) if isinstance(e["req"], list) else (e["req"],) for e in entries}


def checked_chain(path: Path, tag: str, n: int) -> Step[Any, Any, int]:
    """n effects in sequence; effect i checks that effects 0..i-1 are journaled."""

    def check(request: list[Any]) -> int:
        tag_, i = request
        missing = {(tag_, j) for j in range(i)} - on_disk(path)
        assert not missing, f"used before journaled: {sorted(missing)}"
        return i

    def go(i: int) -> Step[Any, Any, int]:
        if i == n:
            return pure(n)
        return effect("check", [tag, i], handler=check).then(lambda _: go(i + 1))

    return go(0)


async def test_a_sequential_step_is_durable_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    out = await run(checked_chain(path, "a", 30), None, journal=path)
    assert out.ok and out.value == 30, out
    assert len(on_disk(path)) == 30


async def test_branch_steps_are_durable_before_the_next(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"

    async def pause(_: Any) -> None:
        await anyio.sleep(0)

    def branch(tag: str) -> Step[Any, Any, int]:
        # An await first, so that the branches run as tasks, interleaved.
        return effect("pause", tag, handler=pause).then(lambda _: checked_chain(path, tag, 8))

    out = await run(gather([branch(t) for t in "xyz"]).map(sum), None, journal=path)
    assert out.ok and out.value == 24, out
    assert len(on_disk(path)) == 3 + 24


async def test_two_runs_writing_at_once_are_both_durable(tmp_path: Path) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    results: list[Any] = []

    async def one(path: Path, tag: str) -> None:
        out = await run(checked_chain(path, tag, 20), None, journal=path)
        assert out.ok, out
        results.append(out.value)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, first, "p")
        tg.start_soon(one, second, "q")
    assert results == [20, 20]
    assert len(on_disk(first)) == len(on_disk(second)) == 20
