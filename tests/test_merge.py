"""State merges: field-wise defaults, declared merges, conflicts."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import pytest
from attrs import field, frozen
from hypothesis import given
from hypothesis import strategies as st

from mce import Ok, StateConflict, modify, par, run_sync
from mce.merge import Key, add, concat, custom, declare, first_writer, for_dict, merge, union


@frozen
class Counters:
    name: str = ""
    hits: int = field(default=0, metadata=declare(add))
    log: tuple[str, ...] = field(default=(), metadata=declare(concat))
    seen: frozenset[str] = field(default=frozenset(), metadata=declare(union))
    best: int = field(default=0, metadata=declare(custom(lambda b, left, right: max(left, right))))


@dataclasses.dataclass(frozen=True)
class Notes:
    title: str = ""
    items: Annotated[tuple[str, ...], concat] = ()
    tally: int = dataclasses.field(default=0, metadata=declare(add))


def test_attrs_fieldwise_with_declared_merges() -> None:
    base = Counters("x", 1, ("a",), frozenset({"p"}), 3)
    left = Counters("x", 2, ("a", "l"), frozenset({"p", "q"}), 5)
    right = Counters("y", 4, ("a", "r1", "r2"), frozenset(), 4)
    assert merge(base, left, right) == Counters("y", 5, ("a", "l", "r1", "r2"), frozenset({"q"}), 5)


def test_dataclass_fieldwise_with_annotated_and_metadata() -> None:
    base = Notes("t", ("0",), 10)
    assert merge(base, Notes("t", ("0", "a"), 11), Notes("T", ("0", "b"), 13)) == Notes(
        "T", ("0", "a", "b"), 14
    )


def test_conflict_names_field() -> None:
    with pytest.raises(StateConflict, match="state field 'name'") as info:
        merge(Counters("x"), Counters("l"), Counters("r"))
    assert (info.value.left, info.value.right) == ("l", "r")


def test_equal_changes_do_not_conflict() -> None:
    assert merge({"a": 0}, {"a": 1}, {"a": 1}) == {"a": 1}
    assert merge(Counters("x"), Counters("z"), Counters("z")) == Counters("z")


def test_dict_additions_deletions_and_conflicts() -> None:
    assert merge({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2, "c": 3}) == {"a": 1, "c": 3}
    with pytest.raises(StateConflict, match=r"state key \['b'\]"):
        merge({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 5})
    with pytest.raises(StateConflict, match="'c'"):
        merge({}, {"c": 1}, {"c": 2})


def test_concat_refuses_rewrites() -> None:
    with pytest.raises(StateConflict, match="only append"):
        concat((1, 2), (9, 2), (1, 2, 3))


def test_union_conflict_on_key() -> None:
    with pytest.raises(StateConflict, match="'k'"):
        union({}, {"k": 1}, {"k": 2})


def test_for_dict_declares_per_key() -> None:
    m = for_dict({"n": add, "log": concat})
    assert m(
        {"n": 1, "log": [], "x": 0}, {"n": 2, "log": ["a"], "x": 0}, {"n": 4, "log": ["b"], "x": 7}
    ) == {
        "n": 5,
        "log": ["a", "b"],
        "x": 7,
    }


def test_par_merges_declared_fields_deterministically_in_branch_order() -> None:
    def note(tag: str) -> Any:
        return modify(lambda s: Counters(s.name, s.hits + 1, (*s.log, tag), s.seen, s.best))

    out = run_sync(par(note("a"), note("b"), note("c")), Counters())
    assert isinstance(out, Ok)
    assert out.state == Counters("", 3, ("a", "b", "c"))


# ---------------------------------------------------------------- laws of the built-in merges

small = st.integers(-5, 5)
seqs = st.lists(small, max_size=3).map(tuple)


@given(small, small, small, small)
def test_add_is_associative_with_untouched_identity(b: int, x: int, y: int, z: int) -> None:
    assert add(b, add(b, x, y), z) == add(b, x, add(b, y, z))
    assert add(b, x, b) == x == add(b, b, x)


@given(seqs, seqs, seqs, seqs)
def test_concat_is_associative_with_untouched_identity(b: Any, x: Any, y: Any, z: Any) -> None:
    x, y, z = b + x, b + y, b + z  # branches append to the base
    assert concat(b, concat(b, x, y), z) == concat(b, x, concat(b, y, z))
    assert concat(b, x, b) == x == concat(b, b, x)


keys = st.sampled_from("abcd")
dicts = st.dictionaries(keys, small, max_size=4)


@given(dicts, dicts, dicts, dicts)
def test_default_dict_merge_associative_where_defined(b: Any, x: Any, y: Any, z: Any) -> None:
    def attempt(f: Any) -> Any:
        try:
            return ("ok", f())
        except StateConflict:
            return ("conflict", None)

    left = attempt(lambda: merge(b, merge(b, x, y), z))
    right = attempt(lambda: merge(b, x, merge(b, y, z)))
    if left[0] == right[0] == "ok":
        assert left == right
    assert merge(b, x, b) == x == merge(b, b, x)


@given(dicts, dicts)
def test_disjoint_dict_writes_commute(x: Any, y: Any) -> None:
    base: dict[str, int] = {}
    y = {k: v for k, v in y.items() if k not in x}
    assert merge(base, x, y) == merge(base, y, x)


@frozen
class Index:
    index: dict[str, int] = field(factory=dict, metadata=declare(union))


def test_nested_conflict_path_names_field_and_key() -> None:
    with pytest.raises(StateConflict) as info:
        merge(Index({}), Index({"k": 1}), Index({"k": 2}))
    assert info.value.field == "index['k']"
    assert "state field \"index['k']\"" in str(info.value)


def test_conflict_in_par_names_both_branches_for_attrs_state() -> None:
    from mce import gather, lift

    def rename(to: str) -> Any:
        return lift(lambda: None).then(lambda _: modify(lambda c: Counters(to)))

    with pytest.raises(StateConflict) as info:
        run_sync(gather([rename("x"), modify(lambda c: c), rename("y")]), Counters())
    assert info.value.field == "name"
    assert info.value.branches == (0, 2)


@frozen
class Indexed:
    index: dict[str, int] = field(factory=dict, metadata=declare(union))


def test_a_conflict_carries_a_structured_path() -> None:
    base = Indexed({"k": 0})
    with pytest.raises(StateConflict) as info:
        merge(base, Indexed({"k": 1}), Indexed({"k": 2}))
    assert info.value.path == ("index", Key("k"))
    assert info.value.field == "index['k']"


def test_a_conflict_names_the_branch_that_wrote_that_key_not_the_field() -> None:
    # Branch 0 changes index['j'], branch 1 index['k'], branch 2 index['k'] again:
    # the conflict is between branches 1 and 2, though branch 0 changed `index` too.
    def write(key: str, value: int) -> Any:
        return modify(lambda s: Indexed({**s.index, key: value}))

    prog = par(write("j", 1), write("k", 1), write("k", 2))
    with pytest.raises(StateConflict) as info:
        run_sync(prog, Indexed({"j": 0, "k": 0}))
    assert info.value.path == ("index", Key("k"))
    assert info.value.branches == (1, 2)


def test_first_writer_reads_attributes_and_keys() -> None:
    base = Indexed({"k": 0})
    states = [base, Indexed({"k": 0, "x": 1}), Indexed({"k": 5})]
    assert first_writer(("index", Key("k")), base, states) == 2
    assert first_writer(("index",), base, states) == 1
    assert first_writer(("nothing",), base, states) is None
