"""The laws of every built-in merge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import evolve, field, frozen
from hypothesis import strategies as st

from mce.laws import MergeSubject, check_all_laws
from mce.merge import add, concat, declare, for_dict, merge, union

ints = st.integers(-3, 3)
keys = st.sampled_from("abcd")
Edit = Callable[[Any], Any]


def appending(extra: list[int]) -> Edit:
    return lambda base: base + tuple(extra)


check_all_laws(
    MergeSubject(
        "concat",
        concat,
        st.lists(ints, max_size=3).map(tuple),
        st.lists(ints, max_size=3).map(appending),
    )
)
check_all_laws(MergeSubject("add", add, ints, ints.map(lambda d: lambda base: base + d)))


def dict_edit(sets: dict[str, int], deletes: list[str]) -> Edit:
    def edit(base: dict[str, int]) -> dict[str, int]:
        out = {k: v for k, v in base.items() if k not in deletes}
        out.update(sets)
        return out

    return edit


dict_edits = st.builds(
    dict_edit, st.dictionaries(keys, ints, max_size=2), st.lists(keys, max_size=1)
)


@st.composite
def disjoint_dict_edits(draw: st.DrawFn) -> tuple[Edit, Edit]:
    mine = draw(st.sets(keys, max_size=2))
    theirs = draw(st.sets(keys.filter(lambda k: k not in mine), max_size=2))
    return (
        dict_edit({k: draw(ints) for k in mine}, []),
        dict_edit({k: draw(ints) for k in theirs}, []),
    )


dict_bases = st.dictionaries(keys, ints, max_size=4)
check_all_laws(MergeSubject("union of dicts", union, dict_bases, dict_edits, disjoint_dict_edits()))
check_all_laws(
    MergeSubject("default merge of dicts", merge, dict_bases, dict_edits, disjoint_dict_edits())
)
check_all_laws(
    MergeSubject(
        "union of sets",
        union,
        st.frozensets(ints, max_size=3),
        st.builds(
            lambda add_, drop: lambda base: (base | add_) - drop,
            st.frozensets(ints, max_size=2),
            st.frozensets(ints, max_size=1),
        ),
    )
)

counters = for_dict({"hits": add, "log": concat})
check_all_laws(
    MergeSubject(
        "for_dict(hits=add, log=concat)",
        counters,
        st.builds(lambda h, log: {"hits": h, "log": tuple(log)}, ints, st.lists(ints, max_size=2)),
        st.builds(
            lambda d, extra: (
                lambda base: {"hits": base["hits"] + d, "log": base["log"] + tuple(extra)}
            ),
            ints,
            st.lists(ints, max_size=2),
        ),
    )
)


@frozen
class Desk:
    topic: str = ""
    notes: tuple[int, ...] = field(default=(), metadata=declare(concat))
    calls: int = field(default=0, metadata=declare(add))


desk_edits = st.builds(
    lambda topic, note, calls: (
        lambda d: evolve(
            d,
            topic=d.topic if topic is None else topic,
            notes=d.notes + tuple(note),
            calls=d.calls + calls,
        )
    ),
    st.one_of(st.none(), st.sampled_from(["news", "weather"])),
    st.lists(ints, max_size=2),
    st.integers(0, 2),
)


@st.composite
def disjoint_desk_edits(draw: st.DrawFn) -> tuple[Edit, Edit]:
    topic = draw(st.sampled_from(["news", "weather"]))
    return (lambda d: evolve(d, topic=topic)), (lambda d: evolve(d, calls=d.calls + 1))


check_all_laws(
    MergeSubject(
        "attrs field-wise merge",
        merge,
        st.builds(Desk, st.sampled_from(["", "x"]), st.lists(ints, max_size=2).map(tuple), ints),
        desk_edits,
        disjoint_desk_edits(),
    )
)
