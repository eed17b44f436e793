"""The merge module's exact contract: messages, paths, identities and types.

These pin down what tests/test_merge.py checks only loosely (mutation testing
of mce/merge.py showed which details nothing held in place).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Annotated, Any

import pytest
from attrs import field, frozen

from mce.merge import (
    MERGE_KEY,
    FieldMerge,
    Key,
    StateConflict,
    add,
    concat,
    custom,
    declare,
    first_writer,
    for_dict,
    merge,
    render_path,
    union,
)

# ---------------------------------------------------------------- paths and messages


def test_render_path_spells_attributes_keys_and_nesting() -> None:
    assert render_path(()) == ""
    assert render_path(("a",)) == "a"
    assert render_path(("a", "b", "c")) == "a.b.c"
    assert render_path((Key("k"),)) == "['k']"
    assert render_path(("a", Key(1), "c", Key("d"))) == "a[1].c['d']"


def test_a_string_path_is_one_attribute_and_the_empty_string_the_whole_state() -> None:
    assert StateConflict("count", 1, 2).path == ("count",)
    assert StateConflict("", 1, 2).path == ()
    assert StateConflict(("a", Key("k")), 1, 2).path == ("a", Key("k"))


def test_conflict_messages_name_the_place_both_values_and_both_branches() -> None:
    suffix = "; write it in one branch only or declare a merge for it (see mce.merge)"
    assert str(StateConflict("", 1, 2)) == (
        "the state was changed differently by one parallel branch (to 1) and another (to 2)"
        + suffix
    )
    assert str(StateConflict("n", "x", "y", branches=(1, 4))) == (
        "state field 'n' was changed differently by parallel branch 1 (to 'x') and "
        "branch 4 (to 'y')" + suffix
    )
    assert str(StateConflict((Key("k"),), 1, 2, branches=(0, None))) == (
        "state key ['k'] was changed differently by parallel branch 0 (to 1) and another (to 2)"
        + suffix
    )
    assert str(StateConflict((Key("k"),), 1, 2, branches=(None, 3))) == (
        "state key ['k'] was changed differently by one parallel branch (to 1) and branch 3 (to 2)"
        + suffix
    )
    assert str(StateConflict("log", 1, 2, reason="no good")) == (
        "state field 'log' cannot be merged: no good"
    )


def test_within_and_between_keep_every_other_detail() -> None:
    base = StateConflict("k", "L", "R", branches=(2, 5), reason="why")
    inner = base.within("outer")
    assert (inner.path, inner.left, inner.right, inner.branches, inner.reason) == (
        ("outer", "k"),
        "L",
        "R",
        (2, 5),
        "why",
    )
    named = StateConflict(("a",), "L", "R", reason="why").between(1, 3)
    assert (named.path, named.left, named.right, named.branches, named.reason) == (
        ("a",),
        "L",
        "R",
        (1, 3),
        "why",
    )
    plain = StateConflict(("a",), "L", "R").between(0, 1)
    assert plain.reason is None
    assert "parallel branch 0 (to 'L') and branch 1 (to 'R')" in str(plain)


def test_first_writer_reads_through_keys_attributes_and_missing_parts() -> None:
    @frozen
    class Box:
        inner: dict[str, int]

    base = Box({"a": 0})
    states = [base, Box({"a": 0}), Box({"a": 1}), Box({"a": 2})]
    assert first_writer(("inner", Key("a")), base, states) == 2
    # a key missing from a later state differs from the base's value
    assert first_writer((Key("a"),), {"a": None}, [{"a": None}, {}]) == 1
    # a missing key differs from a key whose value is None
    assert first_writer((Key("a"),), {}, [{"a": None}]) == 0
    # an attribute missing on both sides is no change
    assert first_writer(("x",), object(), [Box({})]) is None
    # a missing attribute differs from one that is None
    assert first_writer(("x",), object(), [Box({}), _WithX(None)]) == 1
    # a key into something that is not a mapping reads as missing, not as an error
    assert first_writer((Key("a"), Key("b")), {"a": 1}, [{"a": 2}, {"a": {"b": 1}}]) == 1
    # a path through a missing part stops at the missing part
    assert first_writer(("inner", Key("z"), "deeper"), base, states) is None
    assert first_writer((Key("a"),), {"a": 1}, [{"a": 1}]) is None


# ---------------------------------------------------------------- declared merges


def test_field_merge_names() -> None:
    def keep_left(base: int, left: int, right: int) -> int:
        return left

    assert custom(keep_left).name == "keep_left"
    assert custom(keep_left).fn is keep_left
    assert custom(keep_left, "mine").name == "mine"
    assert repr(custom(keep_left, "mine")) == "FieldMerge(mine)"

    class Callable3:
        def __call__(self, base: int, left: int, right: int) -> int:
            return right

    assert FieldMerge(Callable3()).name == "custom"
    assert custom(keep_left)(0, 1, 2) == 1


def test_declare_wraps_plain_functions_and_keeps_field_merges() -> None:
    assert declare(add)[MERGE_KEY] is add

    def newest(base: int, left: int, right: int) -> int:
        return max(left, right)

    wrapped = declare(newest)[MERGE_KEY]
    assert isinstance(wrapped, FieldMerge)
    assert wrapped.fn is newest
    assert wrapped(0, 3, 9) == 9
    assert list(declare(newest)) == [MERGE_KEY]


def test_concat_conflict_names_both_sequences_and_the_rewritten_side() -> None:
    with pytest.raises(StateConflict) as info:
        concat((1, 2), (9, 2, 3), (1, 2, 4))
    c = info.value
    assert (c.path, c.left, c.right) == ((), (9, 2, 3), (1, 2, 4))
    assert c.reason == (
        "concat merges sequences that branches only append to, but a branch rewrote the "
        "existing items (base (1, 2), branch (9, 2, 3))"
    )
    with pytest.raises(StateConflict, match=r"branch \(1,\)\)$"):
        concat((1, 2), (1, 2), (1,))


def test_union_of_sets_keeps_the_set_type_and_removals() -> None:
    out = union({1, 2}, {1, 2, 3}, {2, 4})
    assert out == {2, 3, 4}
    assert type(out) is set
    frozen_out = union(frozenset({1}), frozenset({1, 2}), frozenset())
    assert frozen_out == frozenset({2})
    assert type(frozen_out) is frozenset

    class Tags(frozenset[int]):
        pass

    # set arithmetic on a subclass gives a plain frozenset; so does the merge
    sub = union(Tags({1}), Tags({1, 2}), Tags({1}))
    assert sub == frozenset({1, 2})
    assert type(sub) is frozenset


def test_union_of_anything_else_is_a_conflict_naming_the_values() -> None:
    with pytest.raises(StateConflict) as info:
        union(1, 2, 3)
    c = info.value
    assert (c.path, c.left, c.right) == ((), 2, 3)
    assert c.reason == "union needs dicts or sets, got 1"
    assert str(c) == "the state cannot be merged: union needs dicts or sets, got 1"


# ---------------------------------------------------------------- the default merge


def test_plain_values_equal_but_not_identical_are_unchanged() -> None:
    base, same_as_base = [1], [1]
    assert merge(base, same_as_base, [2]) == [2]
    assert merge(base, [2], same_as_base) == [2]
    # both sides equal to each other: no conflict
    left, right = [3], [3]
    assert merge(base, left, right) is left
    with pytest.raises(StateConflict) as info:
        merge([0], [1], [2])
    assert (info.value.path, info.value.left, info.value.right) == ((), [1], [2])


def test_merge_returns_the_changed_side_itself() -> None:
    base, changed = {"a": 0}, {"a": 1}
    assert merge(base, base, changed) is changed
    assert merge(base, changed, base) is changed
    assert merge(base, changed, changed) is changed


def test_values_of_different_types_merge_as_plain_values() -> None:
    @frozen
    class A:
        x: int = 0

    @frozen
    class B:
        x: int = 0

    # one branch replaced the state with another type: not a field-wise merge
    with pytest.raises(StateConflict) as info:
        merge(A(), A(1), B(2))
    assert info.value.path == ()
    assert merge(A(), A(), B(2)) == B(2)
    assert merge({"a": 1}, {"a": 1}, OrderedDict(a=2)) == OrderedDict(a=2)
    with pytest.raises(StateConflict):
        merge({"a": 0}, OrderedDict(a=1), {"a": 2})


def test_attrs_fields_declared_by_metadata_annotation_or_alias() -> None:
    @frozen
    class State:
        log: tuple[str, ...] = field(default=(), metadata=declare(concat))
        hits: Annotated[int, add] = 0
        _private: int = field(default=0, alias="private")
        plain: int = 0

    out = merge(State(), State(("a",), 1, 5), State(("b",), 2, 0, 7))
    assert out == State(("a", "b"), 3, 5, 7)
    with pytest.raises(StateConflict) as info:
        merge(State(), State(plain=1), State(plain=2))
    assert (info.value.path, info.value.left, info.value.right) == (("plain",), 1, 2)


def test_dataclass_fields_declared_by_metadata_or_annotation() -> None:
    @dataclasses.dataclass(frozen=True)
    class State:
        log: tuple[str, ...] = dataclasses.field(default=(), metadata=declare(concat))
        hits: Annotated[int, add] = 0
        plain: int = 0

    assert merge(State(), State(("a",), 1), State(("b",), 2, 3)) == State(("a", "b"), 3, 3)
    with pytest.raises(StateConflict) as info:
        merge(State(), State(plain=1), State(plain=2))
    assert info.value.path == ("plain",)


_MARKER = "just a note"


@frozen
class _WithX:
    x: object


def test_annotated_merges_are_read_with_their_extras_only() -> None:
    @frozen
    class State:
        noted: Annotated[int, _MARKER] = 0  # an Annotated without a merge: the default
        hits: Annotated[int, add] = 0

    assert merge(State(), State(hits=2), State(hits=3)) == State(hits=5)
    with pytest.raises(StateConflict):
        merge(State(), State(noted=1), State(noted=2))


def test_unresolvable_annotations_fall_back_to_the_default_merge() -> None:
    @dataclasses.dataclass(frozen=True)
    class State:
        n: Any = 0
        later: Unknown | None = None  # type: ignore[name-defined]  # noqa: F821

    assert merge(State(), State(n=1), State(later=None)) == State(n=1)
    assert merge(State(), State(n=1), State(n=1)) == State(n=1)


def test_a_declared_merge_conflict_is_located_under_its_field() -> None:
    @frozen
    class State:
        log: tuple[int, ...] = field(default=(), metadata=declare(concat))

    with pytest.raises(StateConflict) as info:
        merge(State((1,)), State((2,)), State((1, 3)))
    assert info.value.path == ("log",)
    assert str(info.value).startswith("state field 'log' cannot be merged: concat merges")


# ---------------------------------------------------------------- dicts


def test_dict_merge_keeps_every_change_of_the_right_branch() -> None:
    base = {"a": 0, "b": 0, "c": 0, "d": 0}
    left = {"a": 1, "b": 0, "c": 0, "d": 0, "new_left": 1}
    right = {"a": 0, "b": 2, "c": 2, "d": 0, "new_right": 2, "z": 9}
    assert merge(base, left, right) == {
        "a": 1,
        "b": 2,
        "c": 2,
        "d": 0,
        "new_left": 1,
        "new_right": 2,
        "z": 9,
    }


def test_dict_keys_added_by_both_sides() -> None:
    # equal additions agree, even when they are not the same object
    assert merge({}, {"k": [1]}, {"k": [1], "m": 2}) == {"k": [1], "m": 2}
    # the same key added after another added key: nothing is dropped
    assert merge({}, {"k": 1}, {"k": 1, "m": 2, "n": 3}) == {"k": 1, "m": 2, "n": 3}
    with pytest.raises(StateConflict) as info:
        merge({}, {"k": 1}, {"k": 2})
    c = info.value
    assert (c.path, c.left, c.right) == ((Key("k"),), 1, 2)
    assert str(c).startswith("state key ['k'] was changed differently")


def test_dict_key_deleted_on_one_side() -> None:
    # deleted on the left, unchanged on the right (equal, not identical): stays deleted
    assert merge({"k": [1], "m": 0}, {"m": 0}, {"k": [1], "m": 0}) == {"m": 0}
    # deleted on the left, and later keys changed on the right are still kept
    assert merge({"k": 1, "m": 0}, {"m": 0}, {"k": 1, "m": 5}) == {"m": 5}
    with pytest.raises(StateConflict) as info:
        merge({"k": 1}, {}, {"k": 2})
    c = info.value
    assert (c.path, c.left, c.right) == ((Key("k"),), "<deleted>", 2)
    # deleted on the right, unchanged on the left (equal, not identical): stays deleted
    assert merge({"k": [1], "m": 0}, {"k": [1], "m": 0}, {"m": 0}) == {"m": 0}
    assert merge({"k": [1], "m": 0}, {"k": [1], "m": 1}, {"m": 0}) == {"m": 1}
    with pytest.raises(StateConflict) as info:
        merge({"k": 1, "m": 0}, {"k": 2, "m": 0}, {"m": 0})
    c = info.value
    assert (c.path, c.left, c.right) == ((Key("k"),), 2, "<deleted>")
    # deleted by both: gone
    assert merge({"k": 1, "m": 0}, {"m": 1}, {"m": 0}) == {"m": 1}


def test_a_nested_dict_conflict_is_located_under_its_key() -> None:
    m = for_dict({"index": union})
    with pytest.raises(StateConflict) as info:
        m({"index": {"a": 0}}, {"index": {"a": 1}}, {"index": {"a": 2}})
    assert info.value.path == (Key("index"), Key("a"))


def test_dict_subclasses_keep_their_type() -> None:
    base = OrderedDict(a=0, b=0)
    out = merge(base, OrderedDict(a=1, b=0), OrderedDict(a=0, b=2))
    assert out == OrderedDict(a=1, b=2)
    assert type(out) is OrderedDict
    plain = merge({"a": 0}, {"a": 1}, {"a": 0, "b": 1})
    assert type(plain) is dict


def test_for_dict_short_cuts_and_defaults() -> None:
    m = for_dict({"hits": add})
    base, changed = {"hits": 0, "x": 0}, {"hits": 1, "x": 0}
    assert m(base, base, changed) is changed
    assert m(base, changed, changed) is changed
    assert m(base, changed, base) is changed
    assert m(base, {"hits": 2, "x": 1}, {"hits": 3, "x": 0}) == {"hits": 5, "x": 1}
    with pytest.raises(StateConflict) as info:
        m(base, {"hits": 0, "x": 1}, {"hits": 0, "x": 2})
    assert (info.value.path, info.value.left, info.value.right) == ((Key("x"),), 1, 2)


def test_union_of_dicts_conflicts_on_a_key_set_differently() -> None:
    assert union({"a": 1}, {"a": 1, "b": 2}, {"a": 1, "c": 3}) == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(StateConflict) as info:
        union({"a": 1}, {"a": 2}, {"a": 3})
    assert (info.value.path, info.value.left, info.value.right) == ((Key("a"),), 2, 3)


def test_a_key_added_with_the_value_none_is_kept() -> None:
    assert merge({}, {"x": 1}, {"k": None}) == {"x": 1, "k": None}


def test_a_key_deleted_on_the_left_does_not_stop_the_right_branchs_later_changes() -> None:
    # [1] == [1] but not the same list: the deletion stands, and "m" is still merged
    assert merge({"k": [1], "m": 0}, {"m": 0}, {"k": [1], "m": 5}) == {"m": 5}


def test_union_of_set_views_gives_a_frozenset() -> None:
    base, left, right = {"a": 0}.keys(), {"a": 0, "b": 0}.keys(), {"c": 0}.keys()
    out = union(base, left, right)
    assert out == {"b", "c"}
    assert type(out) is frozenset
