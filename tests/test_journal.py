"""Journal storage: files, torn lines, corruption, value round trips."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen
from hypothesis import given
from hypothesis import strategies as st

from mce import (
    FileJournal,
    Journal,
    JournalCorrupt,
    JournalWarning,
    Ok,
    effect,
    gather,
    run_sync,
)
from mce.codec import decode, encode


@frozen
class Hit:
    url: str
    score: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Page:
    title: str
    hits: list[Hit]


class Colour(enum.Enum):
    RED = "red"


def test_attrs_dataclass_and_enum_values_round_trip_through_a_file(tmp_path: Path) -> None:
    value = Page("results", [Hit("a", 0.5, ("x",)), Hit("b", 1.0)])
    prog = gather(
        [
            effect("search", "q", handler=lambda r: value),
            effect("c", None, handler=lambda r: Colour.RED),
        ]
    )
    path = tmp_path / "j.jsonl"
    live = run_sync(prog, None, journal=path)
    replayed = run_sync(prog, None, journal=path, mode="replay")
    assert live == replayed == Ok((value, Colour.RED), None)


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
)
values = st.recursive(
    json_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.dictionaries(st.integers(), inner, max_size=2),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=10,
)


@given(values)
def test_codec_round_trips(value: Any) -> None:
    import json

    assert decode(json.loads(json.dumps(encode(value)))) == value


def test_dict_keys_that_look_like_tags_are_escaped() -> None:
    tricky = {"$tuple": [1, 2]}
    assert decode(encode(tricky)) == tricky


def test_locally_defined_classes_are_refused_with_a_reason() -> None:
    @frozen
    class Local:
        x: int

    with pytest.raises(TypeError, match="defined inside a function"):
        encode(Local(1))


def _record(path: Path, n: int = 3) -> None:
    prog = gather([effect("k", i, handler=lambda r: r * 10) for i in range(n)])
    run_sync(prog, None, journal=path)


def test_torn_last_line_is_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    with path.open("ab") as f:
        f.write(b'{"run": "x", "pos": "9", "ki')
    with pytest.warns(JournalWarning, match="torn last line 5"):
        header, entries = FileJournal(path).load()
    assert header is not None and len(entries) == 3


def test_corruption_in_the_middle_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match="corrupt at line 3"):
        FileJournal(path).load()
    with pytest.raises(JournalCorrupt, match="line 3"):
        run_sync(effect("k", 0), None, journal=path, mode="replay")


def test_entry_missing_fields_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    lines = path.read_bytes().split(b"\n")
    lines[1] = b'{"pos": "0"}'
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match="line 2: an entry needs pos, kind and fp"):
        FileJournal(path).load()


def test_live_run_refuses_a_journal_that_holds_a_run(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="already holds a run"):
        _record(path)
    assert path.read_bytes() == before


def test_replay_and_resume_need_a_journal() -> None:
    with pytest.raises(ValueError, match="needs a journal"):
        run_sync(effect("k", 1), None, mode="replay")
    with pytest.raises(ValueError, match="mode"):
        run_sync(effect("k", 1), None, journal=Journal(), mode="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="journal="):
        run_sync(effect("k", 1), None, journal=42)  # type: ignore[arg-type]


def test_header_is_written_even_without_effects(tmp_path: Path) -> None:
    from mce import pure

    path = tmp_path / "j.jsonl"
    run_sync(pure(1), None, journal=path)
    header, entries = FileJournal(path).load()
    assert header is not None and entries == []


def test_concurrent_effects_share_fsyncs(tmp_path: Path) -> None:
    writes: list[int] = []

    class Counting(FileJournal):
        def write(self, records: list[dict[str, Any]]) -> None:
            writes.append(len(records))
            super().write(records)

    async def io(r: int) -> int:
        import anyio

        await anyio.sleep(0.001)
        return r

    prog = gather([effect("io", i, handler=io) for i in range(200)])
    out = run_sync(prog, None, journal=Counting(tmp_path / "j.jsonl"))
    assert out.ok
    assert sum(writes) == 201  # the header and every entry
    assert len(writes) < 20, writes  # ...in a handful of grouped, fsynced writes


def test_parallel_results_are_durable_before_they_are_used(tmp_path: Path) -> None:
    import anyio

    from mce import lift

    path = tmp_path / "j.jsonl"

    async def io(r: int) -> int:
        await anyio.sleep(0.001 * (r % 3))
        return r

    def lines_on_disk(values: Any) -> Any:
        return lift(lambda: (sum(values), len(path.read_bytes().splitlines())))

    prog = gather([effect("io", i, handler=io) for i in range(50)]).then(lines_on_disk)
    out = run_sync(prog, None, journal=path)
    assert out == Ok((sum(range(50)), 51), None)  # the header and all 50 entries, already written


def test_a_failing_journal_write_is_raised_not_grouped(tmp_path: Path) -> None:
    class Full(FileJournal):
        def write(self, records: list[dict[str, Any]]) -> None:
            raise OSError(28, "No space left on device")

    prog = gather([effect("io", i, handler=lambda r: r) for i in range(5)])
    with pytest.raises(OSError, match="No space left"):
        run_sync(prog, None, journal=Full(tmp_path / "j.jsonl"))
