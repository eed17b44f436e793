"""Journal storage: files, torn lines, corruption, value round trips."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Sequence
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
    JournalInUse,
    JournalWarning,
    Ok,
    effect,
    gather,
    run_sync,
)
from mce.codec import decode, encode
from mce.effects import fingerprint
from mce.journal import Header, Record


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


def _classes_program() -> Any:
    value = Page("results", [Hit("a", 0.5, ("x",)), Hit("b", 1.0)])
    return value, gather(
        [
            effect("search", "q", handler=lambda r: value, into=Page),
            effect("c", None, handler=lambda r: Colour.RED, into=Colour),
        ]
    )


def test_attrs_dataclass_and_enum_values_round_trip_through_a_file(tmp_path: Path) -> None:
    value, prog = _classes_program()
    path = tmp_path / "j.jsonl"
    live = run_sync(prog, None, journal=path)
    replayed = run_sync(prog, None, journal=path, mode="replay")
    assert live == replayed == Ok((value, Colour.RED), None)


def test_values_decode_by_the_declared_type_never_by_the_name_in_the_journal(
    tmp_path: Path,
) -> None:
    """A journal naming a module that does not exist (or `__main__`) replays: nothing is imported."""
    import sys

    from mce import ReplayDivergence
    from mce._journal.lines import encode_line

    _, prog = _classes_program()
    path = tmp_path / "j.jsonl"
    live = run_sync(prog, None, journal=path)
    renamed = []
    for line in path.read_bytes().splitlines():
        text = line.decode().replace("test_journal:Page", "mce_never_imported_module:Page")
        text = text.replace("test_journal:Colour", "__main__:Colour")
        data = json.loads(text)
        del data["sum"]
        renamed.append(encode_line(data))  # a valid checksum: only the names changed
    path.write_bytes(b"".join(renamed))
    assert run_sync(prog, None, journal=path, mode="replay") == live
    assert "mce_never_imported_module" not in sys.modules
    undeclared = gather([effect("search", "q"), effect("c", None, into=Colour)])
    with pytest.raises(ReplayDivergence, match=r"position 0/0/0.*declares no such type"):
        run_sync(undeclared, None, journal=path, mode="replay")


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
    assert decode(json.loads(json.dumps(encode(value)))) == value


def test_dict_keys_that_look_like_tags_are_escaped() -> None:
    tricky = {"$tuple": [1, 2]}
    assert decode(encode(tricky)) == tricky


def test_classes_defined_in_a_function_journal_and_replay_when_declared() -> None:
    @frozen
    class Local:
        x: int

    prog = effect("k", 1, handler=lambda r: Local(r), into=Local)
    j = Journal()
    live = run_sync(prog, None, journal=j)
    assert run_sync(prog, None, journal=j, mode="replay") == live == Ok(Local(1), None)


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
    from mce._journal.lines import encode_line

    path = tmp_path / "j.jsonl"
    _record(path)
    lines = path.read_bytes().split(b"\n")
    lines[1] = encode_line({"pos": "0"}).rstrip(b"\n")  # a correct checksum, a wrong schema
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalCorrupt, match="line 2: a record needs pos, kind and fp"):
        FileJournal(path).read()


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
        def append(self, records: Sequence[Header | Record]) -> None:
            writes.append(len(records))
            super().append(records)

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
        def append(self, records: Sequence[Header | Record]) -> None:
            raise OSError(28, "No space left on device")

    prog = gather([effect("io", i, handler=lambda r: r) for i in range(5)])
    with pytest.raises(OSError, match="No space left"):
        run_sync(prog, None, journal=Full(tmp_path / "j.jsonl"))


# ---------------------------------------------------------------- the format as a contract


def _fuzz_program() -> Any:
    from mce import EffectFailed, par

    def boom(r: Any) -> Any:
        raise EffectFailed({"code": 7})

    return (
        effect("a", {"q": "héllo"}, handler=lambda r: {"n": 1, "s": "wörld"})
        .then(lambda _: effect("b", 2, handler=lambda r: b"\x00\xff"))
        .then(
            lambda _: par(effect("c", 3, handler=lambda r: (1, 2.5)), effect("d", 4, handler=str))
        )
        .then(lambda _: effect("e", 5, handler=lambda r: {1: "one"}))
        .then(lambda v: effect("f", 6, handler=boom).recover(lambda e: effect("g", e, handler=str)))
    )


def test_every_single_bit_flip_is_caught_or_harmless(tmp_path: Path) -> None:
    """No flip of one bit of a journal replays a different value or raises a raw exception."""
    import warnings

    import anyio

    from mce import ReplayDivergence, run

    prog = _fuzz_program()
    good = tmp_path / "good.jsonl"
    expected = run_sync(prog, None, journal=good)
    assert expected.ok
    data = good.read_bytes()
    assert data.count(b"\n") == 8  # a header and seven records
    path = tmp_path / "flipped.jsonl"
    path.write_bytes(data)
    tally = {"corrupt": 0, "torn": 0, "divergence": 0, "same": 0}

    async def fuzz(fd: int) -> None:
        for i in range(len(data) * 8):
            at = i // 8
            if i % 8 == 0 and at:
                os.pwrite(fd, data[at - 1 : at], at - 1)  # undo the previous byte's flips
            os.pwrite(fd, bytes([data[at] ^ (1 << (i % 8))]), at)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", JournalWarning)
                try:
                    FileJournal(path).read()  # what every run does first
                except JournalCorrupt:
                    tally["corrupt"] += 1
                    continue
                if caught:
                    assert all(w.category is JournalWarning for w in caught)
                    tally["torn"] += 1
                try:  # the flip left the file readable: the replay must still be right
                    out = await run(prog, None, journal=path, mode="replay")
                except ReplayDivergence:
                    tally["divergence"] += 1
                    continue
            assert out == expected, f"bit {i} replayed {out!r}"
            tally["same"] += 1

    fd = os.open(path, os.O_WRONLY)
    try:
        anyio.run(fuzz, fd)
    finally:
        os.close(fd)
    assert tally["corrupt"] + tally["divergence"] + tally["same"] == len(data) * 8
    assert tally["corrupt"] > 0.99 * len(data) * 8, tally  # everything else is a torn last line


def test_records_are_typed_and_round_trip(tmp_path: Path) -> None:
    from mce.journal import Header, Record

    path = tmp_path / "j.jsonl"
    run_sync(_fuzz_program(), None, journal=path)
    header, records = FileJournal(path).read()
    assert type(header) is Header and header.version == 2
    assert all(type(r) is Record for r in records)
    copy = FileJournal(tmp_path / "copy.jsonl")
    copy.append([header, *records])
    assert copy.read() == (header, records)
    failed = [r for r in records if not r.ok]
    assert [r.kind for r in failed] == ["f"] and failed[0].value == {"code": 7}


def test_a_version_this_mce_does_not_know_is_refused(tmp_path: Path) -> None:
    from mce._journal.lines import encode_line

    path = tmp_path / "j.jsonl"
    path.write_bytes(encode_line({"mce_journal": 99, "run": "r", "seed": 1, "t0": 0.0}))
    with pytest.raises(JournalCorrupt, match="line 1: format version 99"):
        FileJournal(path).read()


def test_a_version_1_journal_still_replays(tmp_path: Path) -> None:
    path = tmp_path / "old.jsonl"
    path.write_text(
        '{"mce_journal":1,"run":"r","seed":3,"t0":1.0}\n'
        f'{{"run":"r","pos":"0","kind":"k","fp":"{fingerprint(1)}","req":1,"ok":10,"t1":1.0}}\n'
    )
    assert run_sync(effect("k", 1), None, journal=path, mode="replay") == Ok(10, None)


def test_an_intact_last_line_that_lost_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    path.write_bytes(path.read_bytes()[:-1])
    assert len(FileJournal(path).read()[1]) == 3


def test_damage_to_a_complete_last_line_is_corrupt_not_torn(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _record(path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 1  # inside the last line's checksum; its newline is intact
    path.write_bytes(data)
    with pytest.raises(JournalCorrupt, match="line 4: the checksum does not match"):
        FileJournal(path).read()


def test_a_lone_surrogate_is_journaled_and_replays_exactly(tmp_path: Path) -> None:
    import json

    broken = json.loads('"\\ud83d"')  # what a reply with a truncated emoji escape decodes to
    prog = gather(
        [effect("sib", i, handler=lambda r: r) for i in range(3)]
        + [effect("llm", broken, handler=lambda r: {"text": r + "!"})]
    )
    path = tmp_path / "j.jsonl"
    live = run_sync(prog, None, journal=path)
    assert live.ok and live.value[3] == {"text": broken + "!"}
    path.read_bytes().decode("utf-8")  # the file stays valid UTF-8
    header, records = FileJournal(path).read()
    assert header is not None and len(records) == 4  # no record of the batch is lost
    assert run_sync(prog, None, journal=path, mode="replay") == live


def _two_runs_in_one_file(tmp_path: Path, second_value: int) -> Path:
    prog = effect("k", 1)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_sync(prog, None, journal=first, handlers={"k": lambda r: 10})
    run_sync(prog, None, journal=second, handlers={"k": lambda r: second_value})
    both = tmp_path / "both.jsonl"
    both.write_bytes(first.read_bytes() + b"".join(second.read_bytes().splitlines(True)[1:]))
    return both


def test_conflicting_records_of_one_position_are_corrupt(tmp_path: Path) -> None:
    both = _two_runs_in_one_file(tmp_path, 20)
    with pytest.raises(JournalCorrupt, match="line 3: position 0 is recorded twice"):
        run_sync(effect("k", 1), None, journal=both, mode="replay")


def test_a_journal_file_has_one_writer_at_a_time(tmp_path: Path) -> None:
    """A second process gets JournalInUse at once while the first holds the lock."""
    import subprocess
    import sys

    path = tmp_path / "j.jsonl"
    holder = (
        "import sys\n"
        "from mce.journal import FileJournal\n"
        f"j = FileJournal({str(path)!r})\n"
        "j.acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"  # hold the lock until the test says so
        "j.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        with pytest.raises(JournalInUse, match="in use by another run"):
            FileJournal(path).acquire()
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    j = FileJournal(path)
    j.acquire()  # free again once the holder closed it
    j.close()


def _agent_journal_size(tmp_path: Path, turns: int) -> int:
    from mce.llm import ScriptedModel, call, react, say, scripted_handler
    from mce.tools import tool

    @tool
    def lookup(key: str) -> str:
        "Look a key up."
        return f"value of {key} " * 8

    model = ScriptedModel().queue(*[call("lookup", key=f"k{i}") for i in range(turns - 1)])
    model.queue(say("done"))
    path = tmp_path / f"agent-{turns}.jsonl"
    prog = react(["Look everything up."], [lookup], max_turns=turns)
    handlers = {"llm.chat": scripted_handler(model)}
    live = run_sync(prog, None, journal=path, handlers=handlers)
    assert live.ok and live.value.turns == turns
    assert run_sync(prog, None, journal=path, mode="replay") == live
    return path.stat().st_size


def test_an_agent_journal_grows_linearly_with_turns(tmp_path: Path) -> None:
    small, large = _agent_journal_size(tmp_path, 8), _agent_journal_size(tmp_path, 32)
    assert large < 4.5 * small, (small, large)  # quadratic growth would be about 16x


def test_a_request_stored_as_a_reference_reads_back_whole(tmp_path: Path) -> None:
    from mce.journal import Header, Record

    first = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    second = {
        "model": "m",
        "messages": [*first["messages"], {"role": "assistant", "content": "yo"}],
    }
    path = tmp_path / "j.jsonl"
    j = FileJournal(path)
    records = (
        Record("0", "llm.chat", "a", True, "yo", first),
        Record("1", "llm.chat", "b", True, "ok", second),
    )
    j.append([Header("r", 1, 0.0), *records])
    lines = path.read_bytes().splitlines()
    assert b'"req_base":"0"' in lines[2] and lines[2].count(b'"hi"') == 0
    assert FileJournal(path).read()[1] == records
    j.close()
    lines[2] = lines[2].replace(b'"req_base":"0"', b'"req_base":"9"')
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(JournalCorrupt, match="line 3"):
        FileJournal(path).read()


HOLDER = """
import sys
from mce import effect, run_sync

def handler(req):
    print("running", flush=True)
    sys.stdin.readline()  # hold the run (and its journal) until the test says so
    return req

out = run_sync(effect("k", 1, handler=handler), None, journal=sys.argv[1], mode=sys.argv[2])
print(out, flush=True)
"""


@pytest.mark.parametrize("mode", ["live", "resume"])
def test_a_second_process_cannot_write_a_journal_in_use(tmp_path: Path, mode: str) -> None:
    import subprocess
    import sys

    path = tmp_path / "j.jsonl"
    marker = tmp_path / "second-ran"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "live"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == "running\n"  # the first run is inside its effect
        second = effect("k", 1, handler=lambda r: marker.write_text("ran"))
        with pytest.raises(JournalInUse, match="in use by another run"):
            run_sync(second, None, journal=path, mode=mode)  # type: ignore[arg-type]
        assert not marker.exists()  # refused before any effect ran
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        out = proc.stdout.read()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    assert out == "Ok(value=1, state=None)\n"
    header, records = FileJournal(path).read()  # one header, one record: nothing interleaved
    assert header is not None and [r.pos for r in records] == ["0"]


def _edited(path: Path, line: int, edit: Any) -> None:
    """Rewrite one line's JSON object with `edit`, with a checksum that matches again."""
    from mce._journal.lines import encode_line

    lines = path.read_bytes().splitlines()
    data = json.loads(lines[line - 1])
    del data["sum"]
    edit(data)
    lines[line - 1] = encode_line(data).rstrip(b"\n")
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize(
    ("line", "edit", "reason"),
    [
        (2, lambda d: d.update(kind_=d.pop("kind")), "unknown field 'kind_'"),
        (2, lambda d: d.update(pos=["0"]), "pos and kind must be non-empty strings"),
        (2, lambda d: d.update(t0="yesterday"), "t0 and t1 must be numbers"),
        (2, lambda d: d.update(err=d["ok"]), "exactly one of ok and err"),
        (1, lambda d: d.update(seed="x"), "seed \\(an int\\)"),
        (1, lambda d: d.update(mce_journal=True), "format version True"),
        (3, lambda d: d.update(ok={"$bytes": "not base64!"}), "position 1.*malformed \\$bytes"),
        (3, lambda d: d.update(ok={"$tuple": 5}), "position 1.*must be a list"),
        (3, lambda d: d.update(ok={"$float": "1e400"}), "position 1.*\\$float must be"),
    ],
)
def test_a_damaged_line_with_a_matching_checksum_is_corrupt_naming_the_line(
    tmp_path: Path, line: int, edit: Any, reason: str
) -> None:
    prog = effect("a", 1, handler=lambda r: (r,)).then(lambda _: effect("b", 2, handler=bytes))
    path = tmp_path / "j.jsonl"
    run_sync(prog, None, journal=path)
    _edited(path, line, edit)
    with pytest.raises(JournalCorrupt, match=f"corrupt at line {line}: .*{reason}"):
        run_sync(prog, None, journal=path, mode="replay")
